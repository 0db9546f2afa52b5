"""Data-parallel training for :func:`vae_lib.fit` under ``torchrun``, with PyTorch's DistributedDataParallel.

Run any script that calls ``fit`` as ``torchrun --nproc_per_node N script.py``: ``fit`` sees the
``WORLD_SIZE``/``RANK`` variables that torchrun sets, joins the process group (NCCL for CUDA, gloo on the
CPU) and trains data-parallel. Every process draws the same seeded permutation of the training rows; each
global batch of ``batch_size`` rows is cut into ``N`` shards and process ``r`` computes the loss on rows
``r, r + N, r + 2N, ...`` of it only. DDP averages the gradients across processes; weighting each shard's
mean loss by its share of the batch makes that average the gradient of the mean over the whole batch, so
the model matches a single process with the same ``batch_size`` up to floating-point summation order.
Only rank 0 prints progress and writes checkpoints. Outside torchrun every function here is a no-op.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class World:
    """Where this process stands: its ``rank`` among ``size`` processes and the ``device`` it trains on."""

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that prints and saves (rank 0), and always outside torchrun."""
        return self.rank == 0


def requested_world_size() -> int:
    """The number of processes torchrun started (``$WORLD_SIZE``), 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank in the joined process group, 0 outside one."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def join(device: torch.device) -> World:
    """Join torchrun's process group if there is one (once per process) and return this process's :class:`World`.

    On CUDA each process takes the GPU ``$LOCAL_RANK`` (one process per GPU) and the backend is NCCL;
    on the CPU the backend is gloo.
    """
    if not dist.is_available() or (requested_world_size() <= 1 and not dist.is_initialized()):
        return World(0, 1, device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(leave)
    return World(dist.get_rank(), dist.get_world_size(), device)


def leave() -> None:
    """Leave the process group (``fit`` registers this to run at exit when it joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_ids(device: torch.device) -> list[int] | None:
    """What DDP's ``device_ids`` must be: the one GPU of this process on CUDA, None on the CPU."""
    return [device.index] if device.type == "cuda" else None


class _Loss(nn.Module):
    """The loss as a module's forward, so that DDP's gradient hooks see every parameter ``loss_fn`` uses."""

    def __init__(self, model: nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(
        self, batch: tuple[Tensor, ...], epoch: int, generator: torch.Generator | None
    ) -> tuple[Tensor, object]:
        return self.loss_fn(self.model, batch, epoch, generator)


def batch_loss(model: nn.Module, loss_fn: Callable, world: World) -> Callable:
    """``compute(batch, epoch, generator) -> (loss, terms)``: ``loss_fn`` itself, or under DDP its sharded version."""
    if world.size == 1:
        return lambda batch, epoch, generator: loss_fn(model, batch, epoch, generator)
    replicated = nn.parallel.DistributedDataParallel(_Loss(model, loss_fn), device_ids=device_ids(world.device))

    def compute(batch: tuple[Tensor, ...], epoch: int, generator: torch.Generator | None) -> tuple[Tensor, object]:
        rows = batch[0].shape[0]
        mine = torch.arange(world.rank, rows, world.size, device=batch[0].device)
        # A batch smaller than the world leaves some processes no row: they compute on one row with
        # weight 0, because every process must take part in the gradient averaging.
        weight = len(mine) * world.size / rows
        if len(mine) == 0:
            mine = mine.new_zeros(1)
        loss, terms = replicated(tuple(t[mine] for t in batch), epoch, generator)
        if weight == 0:
            terms = type(terms)(*(t[:0] for t in terms))
        return loss * weight, terms

    return compute


def sum_across(totals: Tensor, world: World) -> Tensor:
    """Sum a tensor of per-process totals over all processes (the tensor itself outside torchrun)."""
    if world.size == 1:
        return totals
    # gloo reduces CPU tensors, NCCL CUDA tensors: the tensor already lives on this process's device.
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals
