"""Checkpoints: atomic under a crash, weights-only, and clear about what is wrong with a bad file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
