"""Checkpoints that survive a crash and cannot run code: ``save_checkpoint`` and ``load_checkpoint``.

A checkpoint is one ``torch.save`` file holding the model's weights and constructor arguments, the
optimizer's state, every random number generator's state, the epoch and the training history. It is
written to a temporary file in the same folder, flushed to disk, then renamed over the old one
(``os.replace`` is atomic), so a crash mid-write leaves the previous checkpoint whole. It is read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers only, never code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "load_model", "register_model_class", "save_checkpoint"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used: truncated, not a checkpoint, or another architecture."""


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns: the saved fields, as plain Python and tensors (on ``map_location``)."""

    path: Path
    epoch: int
    model_state: dict[str, torch.Tensor]
    model_config: dict[str, Any] | None
    optimizer_state: dict[str, Any] | None
    rng_state: dict[str, Any]
    history: dict[str, Any] | None
    extra: dict[str, Any]


MODEL_CLASSES: dict[str, type[nn.Module]] = {}
"""The model classes a checkpoint may name, by class name: :func:`load_model` rebuilds only these."""


def register_model_class(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: let checkpoints record and rebuild ``cls`` (it needs ``config()`` and ``from_config``)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """``{"class": <name>, **model.config()}`` for a registered model class, or None for any other module."""
    if MODEL_CLASSES.get(type(model).__name__) is not type(model):
        return None
    return {"class": type(model).__name__, **model.config()}


def rng_state() -> dict[str, Any]:
    """The states of PyTorch's CPU (and CUDA) generators, Python's ``random`` and NumPy's global generator."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached_gaussian],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    torch.random.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int = 0,
    history: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically to ``path`` and return the path.

    ``history`` and ``extra`` must hold only tensors, numbers, strings, None and lists/tuples/dicts of
    them (what ``weights_only`` loading accepts). The file is complete or absent: never half written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "epoch": epoch,
        "model_state": model.state_dict(),
        "model_config": model_config(model),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "rng_state": rng_state(),
        "history": history,
        "extra": extra or {},
    }
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # Make the rename itself durable: fsync the folder that holds the new name.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def _read(path: Path, map_location: torch.device | str) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        size = path.stat().st_size
        raise CheckpointError(
            f"{path} ({size} bytes) is truncated or is not a torch checkpoint; it cannot be loaded "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from error
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{path} is a torch file but not a vae_lib checkpoint (no 'model_state')")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {payload.get('format_version')}, expected {FORMAT_VERSION}")
    return payload


def check_compatible(path: Path, model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` naming every missing, unexpected and mis-shaped key."""
    current = model.state_dict()
    missing = [key for key in current if key not in saved]
    unexpected = [key for key in saved if key not in current]
    mismatched = [
        f"{key}: checkpoint {tuple(saved[key].shape)} vs model {tuple(value.shape)}"
        for key, value in current.items()
        if key in saved and saved[key].shape != value.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append("shape mismatch in " + "; ".join(mismatched))
        if missing:
            problems.append(f"missing from the checkpoint: {missing}")
        if unexpected:
            problems.append(f"not in the model: {unexpected}")
        raise CheckpointError(f"{path} was saved from a different architecture: " + "; ".join(problems))


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    map_location: torch.device | str = "cpu",
    restore_rng: bool = False,
) -> Checkpoint:
    """Read a checkpoint; load its weights into ``model`` and its state into ``optimizer`` when given.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for a truncated file,
    a file that is not a checkpoint, or one whose weights do not fit ``model``. With ``restore_rng``
    the random number generators continue exactly where they were when the checkpoint was saved.
    """
    path = Path(path)
    payload = _read(path, map_location)
    checkpoint = Checkpoint(
        path,
        payload["epoch"],
        payload["model_state"],
        payload["model_config"],
        payload["optimizer_state"],
        payload["rng_state"],
        payload["history"],
        payload["extra"],
    )
    restore(checkpoint, model, optimizer, restore_rng=restore_rng)
    return checkpoint


def restore(
    checkpoint: Checkpoint,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    restore_rng: bool = False,
) -> None:
    """Put a loaded checkpoint's weights, optimizer state and (optionally) random states back in place."""
    if model is not None:
        check_compatible(checkpoint.path, model, checkpoint.model_state)
        model.load_state_dict(checkpoint.model_state)
    if optimizer is not None:
        if checkpoint.optimizer_state is None:
            raise CheckpointError(f"{checkpoint.path} holds no optimizer state")
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except (ValueError, KeyError) as error:
            raise CheckpointError(
                f"{checkpoint.path}: its optimizer state does not fit this optimizer ({error})"
            ) from error
    if restore_rng:
        set_rng_state(checkpoint.rng_state)


def load_model(
    path: str | os.PathLike[str], map_location: torch.device | str = "cpu", model_class: type[nn.Module] | None = None
) -> nn.Module:
    """Rebuild the model saved in a checkpoint from its stored config and load its weights.

    The class is ``model_class`` when given, else the registered class (:func:`register_model_class`) that
    the file names: a file never makes this import or run anything else.
    """
    path = Path(path)
    payload = _read(path, map_location)
    config = payload["model_config"]
    name = config.get("class") if isinstance(config, dict) else None
    cls = model_class or MODEL_CLASSES.get(name)
    if cls is None or not isinstance(config, dict):
        known = ", ".join(sorted(MODEL_CLASSES))
        raise CheckpointError(f"{path} does not record how to build its model (class {name!r}; known: {known})")
    try:
        model = cls.from_config({key: value for key, value in config.items() if key != "class"})
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: its model config does not build a {cls.__name__} ({error})") from error
    check_compatible(path, model, payload["model_state"])
    model.load_state_dict(payload["model_state"])
    return model.to(map_location)
