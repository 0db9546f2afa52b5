"""The chapters' run settings, read from environment variables: seed, device, data set, data folder, smoke.

``vl.settings()`` returns a frozen :class:`Settings`. Each variable is optional; a variable that is set
must hold a valid value, and an empty value is an error (unset the variable to get the default):

- ``VAE_SEED``: an integer seed (default 0, the seed of the outputs stored in the book);
- ``VAE_DEVICE``: ``cpu``, ``cuda``, ``cuda:1``... (default: CUDA when PyTorch sees it, see
  :func:`vae_lib.default_device`);
- ``VAE_DATASET``: ``digits`` (default, offline), ``mnist`` or ``fashion-mnist``;
- ``VAE_DATA_ROOT``: the folder of the MNIST / Fashion-MNIST files (default: an absolute per-user cache,
  ``$XDG_CACHE_HOME/vae-book/data`` or ``~/.cache/vae-book/data``, so a chapter finds its data from any
  working directory);
- ``VAE_SMOKE``: ``1`` shrinks epochs and sample counts so that a chapter only checks that it runs
  (:meth:`Settings.pick`), ``0`` (default) runs it in full.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vae_lib.data import DATASET_NAMES, DatasetSplits, load_dataset
from vae_lib.device import default_device

__all__ = ["Settings", "settings"]


@dataclass(frozen=True)
class Settings:
    """How a chapter runs: see :func:`settings` for where each field comes from."""

    seed: int
    device: torch.device
    dataset: str
    data_root: Path
    smoke: bool

    def pick(self, full: Any, smoke: Any) -> Any:
        """``smoke`` under ``VAE_SMOKE=1``, else ``full``: e.g. ``epochs = settings.pick(full=200, smoke=2)``."""
        return smoke if self.smoke else full

    def load_dataset(self, seed: int = 0) -> DatasetSplits:
        """The chosen data set from the chosen folder (MNIST and Fashion-MNIST are downloaded there once)."""
        return load_dataset(self.dataset, root=self.data_root, download=self.dataset != "digits", seed=seed)


def _read(name: str) -> str | None:
    """The variable's value, None when unset; an empty value is an error naming the variable."""
    value = os.environ.get(name)
    if value is not None and not value.strip():
        raise ValueError(f"{name} is set but empty; unset it for the default, or give it a value")
    return None if value is None else value.strip()


def _seed() -> int:
    text = _read("VAE_SEED")
    if text is None:
        return 0
    try:
        seed = int(text)
    except ValueError:
        raise ValueError(f"VAE_SEED must be an integer, got {text!r}") from None
    if not 0 <= seed < 2**63:
        raise ValueError(f"VAE_SEED must lie in [0, 2**63), got {seed}")
    return seed


def dataset_from_environment() -> str:
    """``$VAE_DATASET``, else ``"digits"``; a value that names no data set is an error naming the variable."""
    name = _read("VAE_DATASET") or "digits"
    if name not in DATASET_NAMES:
        raise ValueError(f"VAE_DATASET={name!r} names no data set; choose one of {', '.join(DATASET_NAMES)}")
    return name


def data_root_from_environment() -> Path:
    """``$VAE_DATA_ROOT``, else ``~/.cache/vae-book/data`` (``$XDG_CACHE_HOME`` respected): where MNIST's files are."""
    text = _read("VAE_DATA_ROOT")
    if text is not None:
        return Path(text).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return (Path(cache).expanduser() / "vae-book" / "data").resolve()


def _smoke() -> bool:
    text = _read("VAE_SMOKE")
    if text not in (None, "0", "1"):
        raise ValueError(f"VAE_SMOKE must be 0 or 1, got {text!r}")
    return text == "1"


def settings() -> Settings:
    """Read ``VAE_SEED``, ``VAE_DEVICE``, ``VAE_DATASET``, ``VAE_DATA_ROOT`` and ``VAE_SMOKE`` (see the module)."""
    _read("VAE_DEVICE")  # empty is an error here too; default_device reads the value
    return Settings(
        seed=_seed(),
        device=default_device(),
        dataset=dataset_from_environment(),
        data_root=data_root_from_environment(),
        smoke=_smoke(),
    )
