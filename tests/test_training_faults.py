"""fit under faults: resuming from a checkpoint is bitwise exact, and divergence stops cleanly."""

import warnings
from pathlib import Path

import pytest
import torch

import vae_lib as vl
from vae_lib.checkpoint import CheckpointError, load_checkpoint
from vae_lib.training import TrainingDivergedError


def data() -> tuple[torch.Tensor, torch.Tensor]:
    digits = vl.load_digits(seed=0).binarized()
    return digits.train.x[:200], digits.val.x[:64]


def records(history: vl.History) -> list[dict]:
    return [record.to_dict() | {"seconds": 0.0} for record in history.records]


def new_model(seed: int = 1) -> vl.VAE:
    vl.seed_everything(seed)
    return vl.VAE(64, 3, (16,))


@pytest.mark.parametrize("patience", [None, 2])
def test_resuming_after_epoch_k_is_bitwise_the_uninterrupted_run(tmp_path: Path, patience: int | None) -> None:
    train, val = data()
    settings = dict(epochs=5, batch_size=32, learning_rate=3e-3, seed=4, device="cpu", patience=patience)
    whole = new_model()
    whole_history = vl.fit(whole, train, val, **settings)

    path = tmp_path / "run.pt"
    interrupted = new_model()
    vl.fit(interrupted, train, val, **(settings | {"epochs": 2}), checkpoint_path=path)
    assert load_checkpoint(path).epoch == 2
    torch.manual_seed(999)  # whatever happened in between must not matter
    resumed = new_model(seed=77)  # different initial weights: all of them come from the checkpoint
    resumed_history = vl.fit(resumed, train, val, **settings, checkpoint_path=path, resume_from=path)

    assert records(resumed_history) == records(whole_history)
    assert resumed_history.best_epoch == whole_history.best_epoch
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert load_checkpoint(path).epoch == len(whole_history)


def test_resume_refuses_a_checkpoint_that_fit_did_not_write(tmp_path: Path) -> None:
    model = new_model()
    path = vl.save_checkpoint(tmp_path / "plain.pt", model)
    with pytest.raises(CheckpointError, match="not written by fit"):
        vl.fit(model, data()[0], epochs=1, device="cpu", resume_from=path)
    with pytest.raises(FileNotFoundError):
        vl.fit(model, data()[0], epochs=1, device="cpu", resume_from=tmp_path / "absent.pt")


def test_resuming_with_another_learning_rate_applies_it_and_says_so(tmp_path: Path) -> None:
    train, val = data()
    path = tmp_path / "run.pt"
    vl.fit(new_model(), train, epochs=1, learning_rate=3e-3, device="cpu", checkpoint_path=path)
    trainer = vl.Trainer(new_model(), train, learning_rate=1e-5, device="cpu")
    with pytest.warns(UserWarning, match=r"trained with learning_rate=0.003; continuing with learning_rate=1e-05"):
        trainer.resume(path)
    assert all(group["lr"] == 1e-5 for group in trainer.optimizer.param_groups)
    assert trainer.optimizer.state_dict()["state"][0]["step"] > 0, "Adam's moments come from the checkpoint"
    same = vl.Trainer(new_model(), train, learning_rate=3e-3, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.resume(path)


def test_a_diverging_learning_rate_stops_with_the_epoch_and_step_and_keeps_the_last_good_weights() -> None:
    train = torch.randn(256, 8) * 10.0
    vl.seed_everything(0)
    model = vl.VAE(8, 2, (32,), likelihood="gaussian", sigma=1e-3)
    snapshots = []

    def loss_fn(model, batch, epoch, generator):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return vl.elbo_loss(model, batch, epoch, generator)

    with pytest.raises(
        TrainingDivergedError,
        match=r"training diverged at epoch \d+, step \d+.*lower the argument learning_rate \(now 1e\+06\)",
    ) as caught:
        vl.fit(model, train, epochs=200, batch_size=32, learning_rate=1e6, device="cpu", loss_fn=loss_fn)
    error = caught.value
    assert isinstance(error, FloatingPointError) and error.step >= 1
    assert len(error.history) == error.epoch - 1
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[-1][name]), name  # the bad step was never applied
        assert bool(torch.isfinite(tensor).all()), name
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_an_injected_nan_names_its_epoch_and_step(where: str) -> None:
    train, _ = data()
    model = new_model()
    calls = []

    def loss_fn(model, batch, epoch, generator):
        calls.append(epoch)
        loss, terms = vl.elbo_loss(model, batch, epoch, generator)
        if len(calls) == 10:  # epoch 2, step 3 with 7 steps per epoch
            if where == "loss":
                loss = loss * float("nan")
            else:
                loss = loss + model.decoder.body[0].bias.sum() * torch.tensor(float("inf"))
                loss = torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))
        return loss, terms

    before = {}

    def remember(model, batch, epoch, generator):
        before.update({k: v.clone() for k, v in model.state_dict().items()})
        return loss_fn(model, batch, epoch, generator)

    with pytest.raises(TrainingDivergedError) as caught:
        vl.fit(model, train, epochs=3, batch_size=32, device="cpu", loss_fn=remember)
    assert (caught.value.epoch, caught.value.step) == (2, 3)
    expected = "the loss is nan" if where == "loss" else "the gradient of decoder.body.0.bias is not finite"
    assert expected in str(caught.value)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_the_gradient_screen_passes_huge_finite_gradients_and_names_a_non_finite_one() -> None:
    from vae_lib.training import _non_finite

    layer = torch.nn.Linear(2, 2)
    named = list(layer.named_parameters())
    layer.weight.grad = torch.full((2, 2), 3e38)  # finite, but their sum overflows to inf
    layer.bias.grad = torch.zeros(2)
    assert _non_finite(torch.tensor(1.0), named) is None
    layer.bias.grad = torch.tensor([0.0, float("nan")])
    assert "bias" in _non_finite(torch.tensor(1.0), named)
    assert "loss" in _non_finite(torch.tensor(float("inf")), named)


def test_a_checkpoint_of_an_older_fit_is_refused_clearly(tmp_path: Path) -> None:
    train, _ = data()
    path = tmp_path / "run.pt"
    vl.fit(new_model(), train, epochs=1, device="cpu", checkpoint_path=path)
    payload = torch.load(path, weights_only=True)
    del payload["extra"]["fit"]["sampling_state"]  # fit before explicit generators drew from the global one
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="written by an older vae_lib"):
        vl.fit(new_model(), train, epochs=2, device="cpu", resume_from=path)
