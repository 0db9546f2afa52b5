"""Checkpoints that survive a crash and cannot run code: ``save_checkpoint`` and ``load_checkpoint``.

A checkpoint is one ``torch.save`` file holding the model's weights and constructor arguments, the
optimizer's state, every random number generator's state, the epoch and the training history. Before
anything is written, the payload is checked to hold only what the reader can rebuild, so a save never
replaces a good checkpoint with one that cannot be read back. It is written to a temporary file
``.NAME.PID-XXXXXXXX.partial`` in the same folder, flushed to disk, then renamed over the old one
(``os.replace`` is atomic), so a crash mid-write leaves the previous checkpoint whole; the next save of the
same file removes the temporary files that such a crash left behind. It is read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers only, never code, and every
field is checked before it is used: whatever the bytes, reading raises :class:`CheckpointError` (or
``FileNotFoundError``), nothing else.
"""

from __future__ import annotations

import os
import random
import warnings
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vae_lib._atomic_file import write_atomically
from vae_lib._checks import first_line

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


# What torch.load(weights_only=True) rebuilds (torch/_weights_only_unpickler.py): these exact types, not
# their subclasses, which pickle by reference to a class the loader refuses (numpy.float64 is a float).
_STORABLE_LEAVES = (type(None), bool, int, float, complex, str, bytes, bytearray, torch.dtype, torch.device, torch.Size)
_STORABLE_TENSORS = (torch.Tensor, nn.Parameter)
_STORABLE_CONTAINERS = (dict, OrderedDict, Counter, list, tuple, set)


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _unstorable(value: object, where: str) -> str | None:
    """The first part of ``value`` that weights-only loading cannot rebuild, as ``"where[...]: type"``, or None.

    ``where`` names ``value`` in the message, e.g. ``"extra"`` gives ``"extra['score']: numpy.float64"``.
    """
    pending, seen = [(value, where)], set()
    while pending:
        item, location = pending.pop()
        kind = type(item)
        if kind in _STORABLE_LEAVES or kind in _STORABLE_TENSORS:
            continue
        if kind not in _STORABLE_CONTAINERS:
            return f"{location}: {_type_name(item)}"
        if id(item) in seen:  # shared or self-containing: checked once
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            for key, entry in reversed(item.items()):
                if type(key) not in _STORABLE_LEAVES:
                    return f"{location}: a key of type {_type_name(key)} ({key!r})"
                pending.append((entry, f"{location}[{key!r}]"))
        elif isinstance(item, set):
            pending.extend((entry, f"{location}{{{entry!r}}}") for entry in item)
        else:
            pending.extend((entry, f"{location}[{i}]") for i, entry in reversed(list(enumerate(item))))
    return None


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
    them (what ``weights_only`` loading accepts); anything else (a NumPy number or array, a ``Path``) raises
    ``TypeError`` naming where it is, before anything is written. The file is complete or absent: never half
    written, and an earlier checkpoint at ``path`` stays as it was until the new one replaces it whole.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    if history is not None and not isinstance(history, dict):
        hint = " (for a History, pass history.to_dict())" if hasattr(history, "to_dict") else ""
        raise TypeError(f"history must be a dict or None, got {_type_name(history)}{hint}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {_type_name(extra)}")
    path = Path(path)
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
    for field, value in payload.items():
        problem = _unstorable(value, field)
        if problem is not None:
            raise TypeError(
                f"{problem} cannot be stored in a checkpoint, which holds only tensors, Python numbers, strings, "
                f"None and lists, tuples and dicts of them; convert it (float(), .tolist(), str()). "
                f"Nothing was written to {path}"
            )
    write_atomically(path, lambda file: torch.save(payload, file), what="the checkpoint")
    return path


_PAYLOAD_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "epoch": (int,),
    "model_state": (dict,),
    "model_config": (dict, type(None)),
    "optimizer_state": (dict, type(None)),
    "rng_state": (dict,),
    "history": (dict, type(None)),
    "extra": (dict,),
}


def _validate_payload(path: Path, payload: object) -> dict[str, Any]:
    """``payload`` if it has every field of a checkpoint with the right type, else :class:`CheckpointError`."""
    if not isinstance(payload, dict) or "model_state" not in payload:
        holds = "a dict without 'model_state'" if isinstance(payload, dict) else f"a {_type_name(payload)}"
        raise CheckpointError(f"{path} is a torch file but not a vae_lib checkpoint (it holds {holds})")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {payload.get('format_version')!r}, expected {FORMAT_VERSION}")
    missing = [key for key in _PAYLOAD_TYPES if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is not a complete vae_lib checkpoint: it lacks {', '.join(missing)}")
    for key, types in _PAYLOAD_TYPES.items():
        if not isinstance(payload[key], types) or isinstance(payload[key], bool):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise CheckpointError(f"{path} is damaged: its {key} is a {_type_name(payload[key])}, expected {expected}")
    if payload["epoch"] < 0:
        raise CheckpointError(f"{path} is damaged: its epoch is {payload['epoch']}, expected an int >= 0")
    for name, value in payload["model_state"].items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path} is damaged: its model_state maps {name!r} to a {_type_name(value)}, expected names to tensors"
            )
    config = payload["model_config"]
    if config is not None and not isinstance(config.get("class"), str):
        raise CheckpointError(f"{path} is damaged: its model_config has no 'class' name ({config!r})")
    return payload


def _read(path: Path, map_location: torch.device | str) -> dict[str, Any]:
    if isinstance(map_location, (str, torch.device)):
        from vae_lib.device import parse_device

        map_location = parse_device(map_location, "map_location")  # an absent GPU is not a damaged file
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    with path.open("rb") as file:  # opening first: a file we may not read is a PermissionError, not a bad format
        try:
            with warnings.catch_warnings():
                # Damaged bytes make the unpickler warn (an odd pickle protocol, a deprecated hook) before it
                # fails or not; the error below, or the checks after it, say what matters in one line.
                warnings.simplefilter("ignore")
                payload = torch.load(file, map_location=map_location, weights_only=True)
        except Exception as error:  # whatever the bytes make the unpickler raise is a bad file
            size = path.stat().st_size
            raise CheckpointError(
                f"{path} ({size} bytes) is truncated, corrupt or not a torch checkpoint; it cannot be loaded "
                f"({type(error).__name__}: {first_line(error)})"
            ) from error
    return _validate_payload(path, payload)


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


def non_finite_weights(state: dict[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors of ``state`` that hold a NaN or an infinity."""
    return [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all())
    ]


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
    A ``map_location`` naming a GPU this machine lacks raises ``RuntimeError``.
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
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"{checkpoint.path}: its optimizer state does not fit this optimizer ({error})"
            ) from error
    if restore_rng:
        current = rng_state()
        try:
            set_rng_state(checkpoint.rng_state)
        except Exception as error:  # a damaged state fails in torch, random or numpy alike
            set_rng_state(current)  # all generators or none
            raise CheckpointError(
                f"{checkpoint.path}: its random number generator states cannot be restored "
                f"({type(error).__name__}: {first_line(error)})"
            ) from error


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
