"""Checkpoints: atomic under a crash, weights-only, and clear about what is wrong with a bad file."""

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vae_lib as vl
from vae_lib.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint

WRITER = """
import sys, torch
from vae_lib.checkpoint import save_checkpoint
model = torch.nn.Linear(1000, 3000)  # 12 MB of weights: each write takes a while
for epoch in range(10_000):
    with torch.no_grad():
        model.weight.fill_(epoch)
    save_checkpoint(sys.argv[1], model, epoch=epoch)
    print(epoch, flush=True)
"""


def test_round_trip_restores_model_optimizer_rng_and_config(tmp_path: Path) -> None:
    vl.seed_everything(0)
    model = vl.VAE(64, 3, (16, 8), likelihood="gaussian", sigma=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.elbo(torch.rand(4, 64)).elbo.mean().neg().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, optimizer, epoch=4, history={"records": []})
    expected_draw = torch.rand(3)
    torch.manual_seed(123)

    clone = vl.VAE(64, 3, (16, 8), likelihood="gaussian", sigma=0.5)
    clone_optimizer = torch.optim.Adam(clone.parameters(), lr=1e-3)
    checkpoint = load_checkpoint(path, clone, clone_optimizer, restore_rng=True)
    assert torch.equal(torch.rand(3), expected_draw)
    assert checkpoint.epoch == 4 and checkpoint.history == {"records": []}
    for (name, a), b in zip(model.state_dict().items(), clone.state_dict().values()):
        assert torch.equal(a, b), name
    assert clone_optimizer.state_dict()["state"][0]["step"] == 1
    rebuilt = load_model(path)
    assert rebuilt.hidden_dims == (16, 8) and rebuilt.decoder.observation.sigma == 0.5
    assert torch.equal(rebuilt.decoder.body[0].weight, model.decoder.body[0].weight)
    assert [p.name for p in tmp_path.joinpath("run").iterdir()] == ["model.pt"]  # no temporary left behind


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "0"
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".model.pt.*.partial")):  # wait until a later write is under way
            assert time.monotonic() < deadline and writer.poll() is None
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    checkpoint = load_checkpoint(path)
    weight = checkpoint.model_state["weight"]
    assert checkpoint.epoch >= 0 and bool((weight == checkpoint.epoch).all())
    assert list(tmp_path.glob(".model.pt.*.partial")), "the killed write left its temporary file"
    save_checkpoint(path, torch.nn.Linear(1, 1))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"], "the next save removes it"


def test_a_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="folder"):
        load_checkpoint(tmp_path)


def test_a_truncated_file_is_reported(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "model.pt", vl.VAE(64, 2, (16,)), epoch=1)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="truncated"):
            load_checkpoint(path)


def test_a_checkpoint_of_another_architecture_names_the_keys(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "model.pt", vl.VAE(64, 2, (16,)))
    with pytest.raises(CheckpointError, match=r"encoder\.body\.0\.weight: checkpoint \(16, 64\) vs model \(32, 64\)"):
        load_checkpoint(path, vl.VAE(64, 2, (32,)))
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: \['encoder\.body\.4\.weight'"):
        load_checkpoint(path, vl.VAE(64, 2, (16, 16)))
    with pytest.raises(CheckpointError, match="not in the model"):
        load_checkpoint(path, torch.nn.Linear(3, 3))


def test_loading_never_runs_code(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"model_state": Payload()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="model"):
        save_checkpoint("x.pt", "not a model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint("x.pt", torch.nn.Linear(1, 1), epoch=-1)


def test_load_model_rebuilds_a_categorical_vae(tmp_path: Path) -> None:
    model = vl.VAE(16, 2, (8,), likelihood="categorical", levels=5)
    rebuilt = load_model(save_checkpoint(tmp_path / "model.pt", model))
    assert rebuilt.decoder.observation.levels == 5
    assert torch.equal(rebuilt.decoder.body[-1].weight, model.decoder.body[-1].weight)


def test_a_conditional_vae_with_a_mixture_prior_checkpoints_like_the_vae(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = vl.ConditionalVAE(12, 3, 2, (8,), likelihood="categorical", levels=5, prior=vl.MixturePrior(2, 4))
    rebuilt = load_model(save_checkpoint(tmp_path / "cvae.pt", model))
    assert type(rebuilt) is vl.ConditionalVAE and rebuilt.condition_dim == 3
    assert isinstance(rebuilt.prior, vl.MixturePrior) and rebuilt.prior.n_components == 4
    assert rebuilt.decoder.observation.levels == 5
    for (name, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_config_names_the_class_and_holds_the_models_own_config(tmp_path: Path) -> None:
    model = vl.VAE(16, 2, (8,), likelihood="gaussian", sigma=0.5)
    config = load_checkpoint(save_checkpoint(tmp_path / "model.pt", model)).model_config
    assert config == {"class": "VAE", **model.config()}
    assert config["prior"] == {"class": "StandardNormalPrior"} and config["sigma"] == 0.5
    assert load_checkpoint(save_checkpoint(tmp_path / "linear.pt", torch.nn.Linear(2, 2))).model_config is None


def test_a_checkpoint_of_an_older_vae_config_still_loads(tmp_path: Path) -> None:
    """Before priors, the config had no "prior" and a "levels" of 17 whatever the likelihood."""
    model = vl.VAE(16, 2, (8,))
    path = save_checkpoint(tmp_path / "model.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["model_config"] = {
        "class": "VAE", "data_dim": 16, "latent_dim": 2, "hidden_dims": [8],
        "likelihood": "bernoulli", "sigma": None, "levels": 17,
    }  # fmt: skip
    torch.save(payload, path)
    assert isinstance(load_model(path).prior, vl.StandardNormalPrior)


def test_loading_builds_only_registered_classes_or_the_one_given(tmp_path: Path) -> None:
    model = vl.VAE(16, 2, (8,))
    path = save_checkpoint(tmp_path / "model.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["class"] = "os.system"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"class 'os.system'; known: ConditionalVAE, VAE"):
        load_model(path)
    assert isinstance(load_model(path, model_class=vl.VAE), vl.VAE)
    payload["model_config"] = {"class": "VAE", "data_dim": 16}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not build a VAE"):
        load_model(path)


def history_with(value: object) -> dict:
    """A History's dict whose first record's train ELBO is ``value`` (e.g. a NumPy float from a metric)."""
    history = vl.History(
        [vl.EpochRecord(1, {"elbo": value, "expected_log_likelihood": 0.0, "kl": 0.0}, None, 0.1)], best_epoch=1
    )
    return history.to_dict()


@pytest.mark.parametrize(
    ("history", "extra", "offender"),
    [
        (None, {"score": np.float64(1.5)}, "extra['score']: numpy.float64"),
        (None, {"scores": np.arange(3)}, "extra['scores']: numpy.ndarray"),
        (None, {"data": Path("data")}, "extra['data']: pathlib."),
        (None, {"runs": [{"seed": 0}, {"seed": np.int64(1)}]}, "extra['runs'][1]['seed']: numpy.int64"),
        (None, {np.str_("key"): 1}, "extra: a key of type numpy.str_"),
        (None, {"tags": {object()}}, "extra['tags']{"),
        (history_with(np.float32(-80.5)), None, "history['records'][0]['train']['elbo']: numpy.float32"),
    ],
    ids=["numpy-scalar", "numpy-array", "path", "nested", "numpy-key", "object-in-set", "history-numpy"],
)
def test_a_payload_the_reader_cannot_rebuild_is_refused_before_the_old_checkpoint_is_replaced(
    tmp_path: Path, history: dict | None, extra: dict | None, offender: str
) -> None:
    path = save_checkpoint(tmp_path / "model.pt", vl.VAE(8, 2, (4,)), epoch=3, extra={"score": 1.5})
    before = path.read_bytes()
    with pytest.raises(TypeError, match=re.escape(offender)) as refused:
        save_checkpoint(path, vl.VAE(8, 2, (4,)), epoch=4, history=history, extra=extra)
    assert "Nothing was written" in str(refused.value) and ".partial" not in str(refused.value)
    assert path.read_bytes() == before, "the previous checkpoint must stay bitwise unchanged"
    assert load_checkpoint(path).epoch == 3 and load_checkpoint(path).extra == {"score": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_history_and_extra_must_be_dicts(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"history must be a dict or None, got vae_lib.history.History .*to_dict"):
        save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(1, 1), history=vl.History())
    with pytest.raises(TypeError, match="extra must be a dict or None, got list"):
        save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(1, 1), extra=[1, 2])  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_everything_a_checkpoint_may_hold_is_read_back(tmp_path: Path) -> None:
    extra = {
        "numbers": [1, 2.5, True, None, complex(1, 2)],
        "nested": {"tuple": (1, "a"), "set": {1, 2}, 3: b"bytes"},
        "tensor": torch.arange(3),
        "dtype": torch.float16,
        "device": torch.device("cpu"),
        "size": torch.Size([2, 3]),
    }
    path = save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(1, 1), extra=extra)
    loaded = load_checkpoint(path).extra
    assert torch.equal(loaded.pop("tensor"), extra.pop("tensor")) and loaded == extra


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and umask")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_checkpoint_gets_the_permissions_of_the_umask_like_every_other_file(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "model.pt", torch.nn.Linear(1, 1))
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask == stat.S_IMODE((tmp_path / "other.txt").stat().st_mode)


def test_stale_temporary_files_of_the_same_target_are_removed_at_the_next_save(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [f".model.pt.{int(dead.stdout)}-0123abcd.partial", ".model.pt.k3_x9q0a.partial"]  # this and older naming
    kept = [
        f".model.pt.{os.getpid()}-89abcdef.partial",  # a writer that is still running
        f".model.pt.v2.{int(dead.stdout)}-0123abcd.partial",  # another target, model.pt.v2
        ".model.pt.v2.k3_x9q0a.partial",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "model.pt", torch.nn.Linear(1, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["model.pt"])


def test_a_failed_write_names_the_checkpoint_not_its_temporary_file(tmp_path: Path, monkeypatch) -> None:
    def full_disk(payload, file):
        file.write(b"partly")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*model\.pt: No space left on device") as error:
        save_checkpoint(tmp_path / "model.pt", torch.nn.Linear(1, 1))
    assert error.value.errno == errno.ENOSPC and ".partial" not in str(error.value)
    assert not list(tmp_path.iterdir())


def test_a_gpu_that_is_not_there_is_not_called_a_damaged_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "model.pt", torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="map_location='garbage' is not a device name"):
        load_checkpoint(path, map_location="garbage")
    if torch.cuda.is_available():
        assert load_checkpoint(path, map_location="cuda").model_state["weight"].is_cuda
        return
    with pytest.raises(RuntimeError, match="map_location=cuda but torch sees no CUDA device") as error:
        load_checkpoint(path, map_location="cuda")
    assert "truncated" not in str(error.value) and "corrupt" not in str(error.value)


def valid_payload() -> dict:
    return {
        "format_version": 1,
        "epoch": 2,
        "model_state": {"weight": torch.zeros(1, 1), "bias": torch.zeros(1)},
        "model_config": None,
        "optimizer_state": None,
        "rng_state": {},
        "history": None,
        "extra": {},
    }


MISSING = object()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model_state", MISSING, "not a vae_lib checkpoint (it holds a dict without 'model_state')"),
        ("format_version", 7, "format version 7, expected 1"),
        ("epoch", MISSING, "not a complete vae_lib checkpoint: it lacks epoch"),
        ("model_config", MISSING, "not a complete vae_lib checkpoint: it lacks model_config"),
        ("model_config", ["VAE", 64], "its model_config is a list, expected dict or None"),
        ("model_config", {"data_dim": 64}, "its model_config has no 'class' name"),
        ("extra", [1], "its extra is a list, expected dict"),
        ("history", "long", "its history is a str, expected dict or None"),
        ("epoch", -1, "its epoch is -1"),
        ("epoch", True, "its epoch is a bool"),
        ("rng_state", None, "its rng_state is a NoneType"),
        ("optimizer_state", [], "its optimizer_state is a list"),
        ("model_state", {"weight": [[0.0]]}, "maps 'weight' to a list, expected names to tensors"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_a_checkpoint_error_naming_the_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    payload = valid_payload()
    if value is MISSING:
        del payload[field]
    else:
        payload[field] = value
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_model(path)


def test_a_torch_file_that_is_not_a_dict_is_a_checkpoint_error(tmp_path: Path) -> None:
    torch.save([valid_payload()], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=re.escape("not a vae_lib checkpoint (it holds a list)")):
        load_checkpoint(tmp_path / "list.pt")


def test_damaged_random_states_are_a_checkpoint_error_and_leave_the_generators_alone(tmp_path: Path) -> None:
    payload = valid_payload()
    payload["rng_state"] = {"torch": torch.random.get_rng_state(), "cuda": [], "python": [3], "numpy": []}
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    with pytest.raises(CheckpointError, match="random number generator states cannot be restored"):
        load_checkpoint(path, restore_rng=True)
    assert torch.equal(torch.rand(2), expected)


def test_fit_writes_every_nth_epoch_and_the_last(tmp_path: Path, monkeypatch) -> None:
    import vae_lib.training

    written = []
    monkeypatch.setattr(
        vae_lib.training, "save_checkpoint", lambda path, model, optimizer, **kw: written.append(kw["epoch"])
    )
    x = torch.rand(16, 4).round()
    vl.fit(vl.VAE(4, 1, (3,)), x, epochs=7, device="cpu", checkpoint_path=tmp_path / "m.pt", checkpoint_every=3)
    assert written == [3, 6, 7]
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        vl.fit(vl.VAE(4, 1, (3,)), x, epochs=1, device="cpu", checkpoint_path=tmp_path / "m.pt", checkpoint_every=0)
