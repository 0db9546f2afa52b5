"""The one training loop of the book: :class:`Trainer`, and :func:`fit`, its one-call form.

Data stay as tensors on the training device and minibatches are sliced from a seeded permutation, which
avoids a DataLoader's per-example Python work (``make bench`` measures what that buys). Every random draw
comes from two explicit generators, one for the order of the examples and one, on the training device,
for the sampling noise of the loss; no global generator is read or reseeded. A :class:`Trainer` can be
called again and again to continue one run, with Adam's state, both generators and the history carried
over, and saved to and resumed from a checkpoint.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vae_lib import distributed
from vae_lib._checks import (
    NonFiniteError,
    as_tensors,
    check_finite,
    check_float_tensor,
    check_positive_float,
    check_positive_int,
    check_seed,
)
from vae_lib.checkpoint import CheckpointError, load_checkpoint, restore, save_checkpoint
from vae_lib.device import default_device, make_generator, use_fused_adam
from vae_lib.history import EpochRecord, History
from vae_lib.losses import LossFn, elbo_loss, require_model_for
from vae_lib.models import LatentVariableModel
from vae_lib.objectives import ELBOTerms

__all__ = ["Trainer", "TrainingDivergedError", "evaluate", "fit"]

Data = Tensor | Sequence[Tensor]


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


def checked_data(model: nn.Module, name: str, data: Data) -> tuple[Tensor, ...]:
    """``data`` as a tuple of tensors whose values were checked once: the images by the model, the rest finite."""
    tensors = as_tensors(name, data)
    check_float_tensor(f"{name}[0]", tensors[0], min_dim=2)
    checked_by_model = isinstance(model, LatentVariableModel)
    if checked_by_model:
        model.check_pixels(tensors[0], name=f"{name}[0]")
    for i, tensor in enumerate(tensors[1:] if checked_by_model else tensors, start=int(checked_by_model)):
        if tensor.is_floating_point():
            check_finite(f"{name}[{i}]", tensor)
    return tensors


@torch.no_grad()
def _mean_terms(
    model: nn.Module, tensors: tuple[Tensor, ...], batch_size: int, loss_fn: LossFn, epoch: int, seed: int
) -> ELBOTerms:
    """The loss function's terms averaged over every example, with sampling noise from a generator seeded by ``seed``."""
    generator = make_generator(seed, tensors[0].device)
    was_training = model.training
    model.eval()
    totals, terms = None, None
    for start in range(0, tensors[0].shape[0], batch_size):
        _, terms = loss_fn(model, tuple(t[start : start + batch_size] for t in tensors), epoch, generator)
        sums = torch.stack([term.sum() for term in terms]).double()
        totals = sums if totals is None else totals + sums
    model.train(was_training)
    return type(terms)(*(totals / tensors[0].shape[0]).cpu())


def evaluate(
    model: nn.Module, data: Data, batch_size: int = 1024, loss_fn: LossFn = elbo_loss, epoch: int = 0, seed: int = 0
) -> ELBOTerms:
    """Mean ELBO terms of ``model`` over ``data`` (a repeatable estimate: its noise comes from ``seed``; no gradients).

    ``data`` may sit on another device than the model (e.g. the CPU, with the model on a GPU): it is moved to
    the model's device, as :class:`Trainer` moves its data.
    """
    tensors = checked_data(model, "data", data)
    require_model_for(loss_fn, model)
    parameter = next(model.parameters(), None)
    if parameter is not None:
        tensors = tuple(t.to(parameter.device) for t in tensors)
    return _mean_terms(
        model, tensors, check_positive_int("batch_size", batch_size), loss_fn, epoch, check_seed("seed", seed)
    )


def _checked_learning_rate(learning_rate: float) -> float:
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if learning_rate > 1e30:  # Adam's steps are about learning_rate long: beyond this they overflow float32 weights
        raise ValueError(f"learning_rate must be <= 1e30, got {learning_rate:g}")
    return learning_rate


class Trainer:
    """One training run of ``model`` with Adam on minibatches of ``train``, continued by each :meth:`train` call.

    ``train`` and ``val`` are a tensor ``x`` or a tuple of tensors whose rows go together, e.g. ``(x, c)``
    for a conditional model; each batch is passed to ``loss_fn(model, batch, epoch, generator)`` as that
    tuple. Their values are checked once, here. ``seed`` seeds the order of the examples and the sampling
    noise (the model's initial weights are the caller's). With ``patience``, training stops once the
    validation ELBO has not improved for that many epochs; :meth:`keep_best` puts the best weights back.
    ``progress`` prints one line per epoch to stderr (default: only when stderr is a terminal). With
    ``checkpoint_path`` a checkpoint of the whole run is written atomically after every ``checkpoint_every``-th
    epoch (default: each) and after the last one of a :meth:`train` call, which
    :meth:`resume` continues bitwise as if the run had never stopped (on the CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        train: Data,
        val: Data | None = None,
        *,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        seed: int = 0,
        device: torch.device | str | None = None,
        loss_fn: LossFn = elbo_loss,
        patience: int | None = None,
        progress: bool | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        require_model_for(loss_fn, model)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
        self.learning_rate = _checked_learning_rate(learning_rate)
        self.patience = None if patience is None else check_positive_int("patience", patience)
        if patience is not None and val is None:
            raise ValueError("patience (early stopping) needs validation data: pass val")
        train_tensors = checked_data(model, "train", train)
        val_tensors = None if val is None else checked_data(model, "val", val)
        self.world = distributed.join(torch.device(device) if device is not None else default_device())
        self.model, self.loss_fn, self.checkpoint_path = model.to(self.world.device), loss_fn, checkpoint_path
        self.train_data = tuple(t.to(self.world.device) for t in train_tensors)
        self.val_data = None if val_tensors is None else tuple(t.to(self.world.device) for t in val_tensors)
        self.show_progress = (sys.stderr.isatty() if progress is None else progress) and self.world.is_main
        # The fused kernel updates all parameters in one pass instead of one pass per Adam operation; on the CPU
        # that alone makes a step of the MNIST-sized model about 15% faster (benchmarks/bench_speed.py).
        fused = use_fused_adam(self.world.device)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate, fused=fused)
        seed = check_seed("seed", seed)
        # Every process draws the same order (each takes its shard of a batch) but its own sampling noise.
        self.shuffle_generator = make_generator(seed, "cpu")
        self.sampling_generator = make_generator((seed + 1 + self.world.rank) % 2**64, self.world.device)
        self.history, self.epoch = History(), 0
        self.best_val, self.best_state, self.epochs_since_best, self.stopped = -math.inf, None, 0, False
        self._named_parameters = list(model.named_parameters())
        self._batch_loss = distributed.batch_loss(model, loss_fn, self.world)

    def train(self, epochs: int) -> History:
        """Train for up to ``epochs`` more epochs (fewer if early stopping ends the run); return the history."""
        last = self.epoch + check_positive_int("epochs", epochs)
        while self.epoch < last and not self.stopped:
            self.epoch += 1
            record = self._run_epoch(self.epoch)
            self.history.records.append(record)
            self._after_epoch(record, last)
        return self.history

    def _run_epoch(self, epoch: int) -> EpochRecord:
        started = time.perf_counter()
        self.model.train()
        n_train = self.train_data[0].shape[0]
        order = torch.randperm(n_train, generator=self.shuffle_generator).to(self.world.device)
        # One gather per epoch; the batches are then contiguous slices of it, which costs no copy.
        shuffled = tuple(t[order] for t in self.train_data)
        totals = None
        for step, start in enumerate(range(0, n_train, self.batch_size), start=1):
            terms = self._step(tuple(t[start : start + self.batch_size] for t in shuffled), epoch, step)
            sums = torch.stack([term.detach().sum() for term in terms]).double()
            totals = sums if totals is None else totals + sums
        train_means = (distributed.sum_across(totals, self.world) / n_train).tolist()
        val_means = None
        if self.val_data is not None:
            val_terms = _mean_terms(self.model, self.val_data, 1024, self.loss_fn, epoch, seed=0)
            val_means = {name: float(value) for name, value in val_terms._asdict().items()}
        train = dict(zip(terms._fields, train_means))
        return EpochRecord(epoch, train, val_means, seconds=time.perf_counter() - started)

    def _step(self, batch: tuple[Tensor, ...], epoch: int, step: int) -> ELBOTerms:
        """One Adam step on one batch; a non-finite loss or gradient stops the run before the step is applied."""
        try:
            loss, terms = self._batch_loss(batch, epoch, self.sampling_generator)
        except NonFiniteError as error:  # the data were checked finite: the model made these values
            problem = f"the forward pass made non-finite values ({error})"
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            problem = _non_finite(loss, self._named_parameters)
        if problem is not None:
            self.optimizer.zero_grad(set_to_none=True)
            message = (
                f"training diverged at epoch {epoch}, step {step}: {problem}. The step was not applied, so the model "
                f"keeps its parameters from before it; lower the argument learning_rate (now {self.learning_rate:g})"
            )
            raise TrainingDivergedError(message, epoch, step, self.history)
        self.optimizer.step()
        return terms

    def _after_epoch(self, record: EpochRecord, last: int) -> None:
        """Progress, early stopping and the checkpoint, once an epoch is recorded."""
        if self.show_progress:
            val_text = f"  val ELBO {record.val['elbo']:9.3f}" if record.val is not None else ""
            print(f"epoch {record.epoch:4d}/{last}  train ELBO {record.train['elbo']:9.3f}{val_text}", file=sys.stderr)
        if self.patience is None:
            self.history.best_epoch = record.epoch
        elif record.val["elbo"] > self.best_val:
            self.best_val, self.epochs_since_best = record.val["elbo"], 0
            self.best_state, self.history.best_epoch = copy.deepcopy(self.model.state_dict()), record.epoch
        else:
            self.epochs_since_best += 1
            self.stopped = self.epochs_since_best >= self.patience
        due = record.epoch % self.checkpoint_every == 0 or self.stopped or record.epoch == last
        if self.checkpoint_path is not None and self.world.is_main and due:
            self.save(self.checkpoint_path)

    def keep_best(self) -> None:
        """With early stopping, put back the weights of the best validation epoch (else nothing changes)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def _run_state(self) -> dict[str, Any]:
        return {
            "shuffle_state": self.shuffle_generator.get_state(),
            "sampling_state": self.sampling_generator.get_state(),
            "best_val": self.best_val,
            "best_state": self.best_state,
            "epochs_since_best": self.epochs_since_best,
            "stopped": self.stopped,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the run (weights, Adam's state, generators, history, early-stopping state) to a checkpoint."""
        extra = {"fit": self._run_state()}
        save_checkpoint(path, self.model, self.optimizer, epoch=self.epoch, history=self.history.to_dict(), extra=extra)

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Continue the run saved at ``path``; a learning rate other than the saved one is applied, with a warning."""
        saved = load_checkpoint(path)
        if "fit" not in saved.extra:
            raise CheckpointError(f"{path} was not written by fit(checkpoint_path=...); it cannot be resumed")
        state = saved.extra["fit"]
        try:
            history = History.from_dict(saved.history)
            generator_states = state["shuffle_state"], state["sampling_state"]
        except (KeyError, TypeError) as error:
            raise CheckpointError(
                f"{path} was written by an older vae_lib; it cannot be resumed ({error!r})"
            ) from error
        restore(saved, self.model, self.optimizer)
        saved_rate = self.optimizer.param_groups[0]["lr"]
        if saved_rate != self.learning_rate:
            warnings.warn(
                f"{path} was trained with learning_rate={saved_rate:g}; continuing with learning_rate={self.learning_rate:g}",
                stacklevel=3,
            )
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate
        self.shuffle_generator.set_state(generator_states[0])
        self.sampling_generator.set_state(generator_states[1])
        self.history, self.epoch = history, saved.epoch
        self.best_val, self.best_state = state["best_val"], state["best_state"]
        self.epochs_since_best, self.stopped = state["epochs_since_best"], state["stopped"]


def fit(
    model: nn.Module,
    train: Data,
    val: Data | None = None,
    *,
    epochs: int = 50,
    resume_from: str | os.PathLike[str] | None = None,
    **options: Any,
) -> History:
    """Train ``model`` for ``epochs`` epochs with a :class:`Trainer` and return the per-epoch :class:`~vae_lib.History`.

    ``options`` are the :class:`Trainer`'s (``batch_size``, ``learning_rate``, ``seed``, ``device``,
    ``loss_fn``, ``patience``, ``progress``, ``checkpoint_path``, ``checkpoint_every``). With ``patience`` the best epoch's weights
    are put back at the end. ``resume_from`` continues a run from a checkpoint written with
    ``checkpoint_path`` up to ``epochs`` in total, with bitwise the same weights and history on the CPU as
    the run that was never interrupted. A non-finite loss or gradient raises :class:`TrainingDivergedError`
    before the step is applied. To continue a run over several calls, use a :class:`Trainer`.
    """
    epochs = check_positive_int("epochs", epochs)
    trainer = Trainer(model, train, val, **options)
    if resume_from is not None:
        trainer.resume(resume_from)
    if trainer.epoch < epochs:
        trainer.train(epochs - trainer.epoch)
    trainer.keep_best()
    return trainer.history
