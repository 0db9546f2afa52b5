"""``fit``: the one training loop of the book, seeded and device-aware.

Data stay as tensors on the training device and minibatches are sliced from a seeded permutation, which
avoids a DataLoader's per-example Python work (``make bench`` measures what that buys). Each epoch records
the ELBO and its two terms on the training and validation data, in nats per example.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vae_lib import distributed
from vae_lib._checks import (
    NonFiniteError,
    check_float_tensor,
    check_positive_float,
    check_positive_int,
    value_checks_skipped,
)
from vae_lib.checkpoint import CheckpointError, load_checkpoint, restore, save_checkpoint
from vae_lib.device import default_device, seed_everything
from vae_lib.objectives import ELBOTerms, negative_elbo_loss

LossFn = Callable[[nn.Module, tuple[Tensor, ...], int], tuple[Tensor, ELBOTerms]]
"""``loss_fn(model, batch, epoch) -> (scalar loss to minimise, ELBO terms to record)``."""


def elbo_loss(model: nn.Module, batch: tuple[Tensor, ...], epoch: int) -> tuple[Tensor, ELBOTerms]:
    """The default loss: the negative ELBO (:eq:`eq-elbo`) averaged over the batch."""
    terms = model.elbo(*batch)
    return negative_elbo_loss(terms), terms


@dataclass(frozen=True)
class EpochRecord:
    """Means over one epoch, in nats per example; ``val_*`` are None without validation data."""

    epoch: int
    train_elbo: float
    train_expected_log_likelihood: float
    train_kl: float
    val_elbo: float | None
    val_expected_log_likelihood: float | None
    val_kl: float | None
    seconds: float


@dataclass
class History:
    """What ``fit`` returns: one :class:`EpochRecord` per epoch, and the epoch whose weights were kept."""

    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None

    def column(self, name: str) -> list[float]:
        """The values of one field over epochs, e.g. ``history.column("val_elbo")``."""
        if name not in EpochRecord.__dataclass_fields__:
            raise ValueError(f"unknown column {name!r}; choose one of {list(EpochRecord.__dataclass_fields__)}")
        return [getattr(record, name) for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def to_dict(self) -> dict:
        """Plain lists and numbers (what a checkpoint stores)."""
        return {"records": [dataclasses.asdict(r) for r in self.records], "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls([EpochRecord(**record) for record in data["records"]], data["best_epoch"])


class TrainingDivergedError(FloatingPointError):
    """``fit`` met a non-finite loss or gradient; the step was not applied, so the model keeps its last good
    parameters. ``epoch`` and ``step`` (both from 1) locate the batch; ``history`` holds the finished epochs."""

    def __init__(self, message: str, epoch: int, step: int, history: History) -> None:
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


def _non_finite(loss: Tensor, named_parameters: list[tuple[str, nn.Parameter]]) -> str | None:
    """None when the loss and every gradient are finite, else what is not (one device sync per step)."""
    grads = [(name, p.grad) for name, p in named_parameters if p.grad is not None]
    # A sum is NaN or inf whenever one of its terms is, so one scalar screens the loss and every gradient.
    # Only a flagged step pays for the exact test, since huge finite gradients can also sum to inf.
    screen = loss.detach().float().sum()
    for _, grad in grads:
        screen = screen + grad.sum()
    if math.isfinite(screen.item()):
        return None
    if not bool(torch.isfinite(loss.detach()).all()):
        return f"the loss is {loss.item()}"
    bad = [name for name, g in grads if not bool(torch.isfinite(g).all())]
    if not bad:
        return None
    return f"the gradient of {', '.join(bad)} is not finite (loss {loss.item():.6g})"


def _as_tensors(name: str, data: Tensor | Sequence[Tensor] | None) -> tuple[Tensor, ...] | None:
    if data is None:
        return None
    tensors = (data,) if isinstance(data, Tensor) else tuple(data)
    if not tensors:
        raise ValueError(f"{name} is empty")
    check_float_tensor(f"{name}[0]", tensors[0], min_dim=2)
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.shape[0] != tensors[0].shape[0]:
            raise ValueError(f"{name}[{i}] has {tensor.shape[0]} rows but {name}[0] has {tensors[0].shape[0]}")
    return tensors


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Tensor | Sequence[Tensor],
    batch_size: int = 1024,
    loss_fn: LossFn = elbo_loss,
    epoch: int = 0,
    seed: int = 0,
) -> ELBOTerms:
    """Mean ELBO terms of ``model`` over ``data`` (a seeded, repeatable estimate; no gradients)."""
    tensors = _as_tensors("data", data)
    batch_size = check_positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64)
    n = tensors[0].shape[0]
    for start in range(0, n, batch_size):
        _, terms = loss_fn(model, tuple(t[start : start + batch_size] for t in tensors), epoch)
        totals += torch.stack([t.sum() for t in terms]).double().cpu()
    torch.random.set_rng_state(rng_state)
    model.train(was_training)
    means = totals / n
    return ELBOTerms(*means)


def fit(
    model: nn.Module,
    train: Tensor | Sequence[Tensor],
    val: Tensor | Sequence[Tensor] | None = None,
    *,
    epochs: int = 50,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    loss_fn: LossFn = elbo_loss,
    patience: int | None = None,
    progress: bool | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
) -> History:
    """Train ``model`` with Adam on minibatches of ``train``; return the per-epoch :class:`History`.

    ``train`` and ``val`` are a tensor ``x`` or a tuple of tensors whose rows go together, e.g.
    ``(x, y)`` for a conditional model; each batch is passed to ``loss_fn`` as that tuple. With
    ``patience``, training stops once the validation ELBO has not improved for that many epochs and the
    best weights are restored. ``progress`` prints one line per epoch to stderr (default: only when
    stderr is a terminal, so notebook outputs stay clean).

    With ``checkpoint_path``, a checkpoint (model, optimizer, random states, history) is written atomically
    after every ``checkpoint_every``-th epoch (default: each) and after the last; ``resume_from`` continues a
    run from such a checkpoint up to ``epochs`` in total, and gives bitwise the same weights and history on the
    CPU as the run that was never interrupted. A non-finite loss or gradient raises
    :class:`TrainingDivergedError` before the step is applied.

    The models check the values of their inputs (finite, pixels in [0, 1]) at every call. ``fit`` keeps
    those checks for the first epoch of a call, in which every example passes through them, and skips
    them afterwards; the loss and the gradients are still checked at every step.
    """
    train_tensors = _as_tensors("train", train)
    val_tensors = _as_tensors("val", val)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if learning_rate > 1e30:  # Adam's steps are about learning_rate long: beyond this they overflow float32 weights
        raise ValueError(f"learning_rate must be <= 1e30, got {learning_rate:g}")
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    if patience is not None:
        patience = check_positive_int("patience", patience)
        if val_tensors is None:
            raise ValueError("patience (early stopping) needs validation data: pass val")
    device = torch.device(device) if device is not None else default_device()
    world = distributed.join(device)  # under torchrun: DDP, one shard of each batch per process
    device = world.device
    show_progress = (sys.stderr.isatty() if progress is None else progress) and world.is_main

    seed_everything(seed)
    model.to(device)
    train_tensors = tuple(t.to(device) for t in train_tensors)
    val_tensors = tuple(t.to(device) for t in val_tensors) if val_tensors is not None else None
    # The fused kernel updates all parameters in one pass instead of one pass per Adam operation; on the CPU
    # that alone makes a step of the MNIST-sized model about 15% faster (benchmarks/bench_speed.py).
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, fused=device.type in ("cpu", "cuda"))
    shuffle_generator = torch.Generator().manual_seed(seed)
    n_train = train_tensors[0].shape[0]

    history = History()
    best_val, best_state, epochs_since_best, first_epoch, stopped = -float("inf"), None, 0, 1, False
    if resume_from is not None:
        saved = load_checkpoint(resume_from)
        if "fit" not in saved.extra:
            raise CheckpointError(f"{resume_from} was not written by fit(checkpoint_path=...); it cannot be resumed")
        restore(saved, model, optimizer, restore_rng=True)
        state = saved.extra["fit"]
        shuffle_generator.set_state(state["shuffle_state"])
        history = History.from_dict(saved.history)
        best_val, best_state, epochs_since_best = state["best_val"], state["best_state"], state["epochs_since_best"]
        first_epoch, stopped = saved.epoch + 1, state["stopped"]
    named_parameters = list(model.named_parameters())
    batch_loss = distributed.batch_loss(model, loss_fn, world)
    for epoch in range(first_epoch, epochs + 1):
        if stopped:
            break
        # The first epoch of a call checks the value of every example (finite, in range) at every use; later
        # epochs see the same examples, so they skip those checks. A non-finite value the model itself makes
        # still shows in the loss or a gradient, which every step checks.
        checks = value_checks_skipped() if epoch > first_epoch else contextlib.nullcontext()
        with checks:
            started = time.perf_counter()
            model.train()
            totals = torch.zeros(3, dtype=torch.float64, device=device)
            order = torch.randperm(n_train, generator=shuffle_generator).to(device)
            # One gather per epoch; the batches are then contiguous slices of it, which costs no copy.
            shuffled = tuple(t[order] for t in train_tensors)
            for step, start in enumerate(range(0, n_train, batch_size), start=1):
                try:
                    loss, terms = batch_loss(tuple(t[start : start + batch_size] for t in shuffled), epoch)
                except NonFiniteError as error:  # the data were checked finite: the model made these values
                    problem = f"the forward pass made non-finite values ({error})"
                else:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    problem = _non_finite(loss, named_parameters)
                if problem is not None:
                    optimizer.zero_grad(set_to_none=True)
                    message = (
                        f"training diverged at epoch {epoch}, step {step}: {problem}. The step was not applied, so the "
                        f"model keeps its parameters from before it; try a smaller learning_rate (now {learning_rate:g})"
                    )
                    raise TrainingDivergedError(message, epoch, step, history)
                optimizer.step()
                totals += torch.stack([t.detach().sum() for t in terms]).double()
            train_means = (distributed.sum_across(totals, world) / n_train).tolist()
            val_means = (
                [float(v) for v in evaluate(model, val_tensors, loss_fn=loss_fn, epoch=epoch)]
                if val_tensors
                else [None] * 3
            )
        record = EpochRecord(epoch, *train_means, *val_means, seconds=time.perf_counter() - started)
        history.records.append(record)
        if show_progress:
            val_text = f"  val ELBO {record.val_elbo:9.3f}" if record.val_elbo is not None else ""
            print(f"epoch {epoch:4d}/{epochs}  train ELBO {record.train_elbo:9.3f}{val_text}", file=sys.stderr)
        if patience is not None:
            if record.val_elbo > best_val:
                best_val, epochs_since_best = record.val_elbo, 0
                best_state, history.best_epoch = copy.deepcopy(model.state_dict()), epoch
            else:
                epochs_since_best += 1
                stopped = epochs_since_best >= patience
        due = epoch % checkpoint_every == 0 or stopped or epoch == epochs
        if checkpoint_path is not None and world.is_main and due:
            fit_state = {
                "shuffle_state": shuffle_generator.get_state(),
                "best_val": best_val,
                "best_state": best_state,
                "epochs_since_best": epochs_since_best,
                "stopped": stopped,
            }
            save_checkpoint(
                checkpoint_path, model, optimizer, epoch=epoch, history=history.to_dict(), extra={"fit": fit_state}
            )
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = history.records[-1].epoch
    return history
