"""Device choice and seeding, both explicit calls (importing vae_lib changes no global state)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["default_device", "seed_everything"]

DEVICE_ENVIRONMENT_VARIABLE = "VAE_DEVICE"


def parse_device(requested: str | torch.device, source: str) -> torch.device:
    """``requested`` as a device this machine has; errors name ``source``, where the value came from.

    ``source`` is what the user wrote, e.g. ``"--device"``, ``"VAE_DEVICE"`` or ``"map_location"``: an unknown
    name raises ``ValueError`` and a GPU that torch cannot see raises ``RuntimeError``, each naming it.
    """
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(
            f"{source}={str(requested)!r} is not a device name torch knows; use cpu, cuda, cuda:1 or mps"
        ) from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count() > 0:
        raise RuntimeError(f"{source}={requested} but torch sees only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{source}={requested} but torch sees no CUDA device on this machine; use cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"{source}={requested} but torch sees no Apple GPU (mps) on this machine; use cpu")
    return device


def default_device() -> torch.device:
    """The device the book runs on: ``$VAE_DEVICE`` if set and not empty (``cpu``, ``cuda``), else CUDA when present.

    An unknown ``$VAE_DEVICE`` raises ``ValueError`` and a GPU that is not there raises ``RuntimeError``; both
    name the variable.
    """
    requested = os.environ.get(DEVICE_ENVIRONMENT_VARIABLE, "").strip()
    if requested:
        return parse_device(requested, DEVICE_ENVIRONMENT_VARIABLE)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random number generators."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (CUDA draws need one on the GPU), seeded with ``seed``."""
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


def use_fused_adam(device: torch.device) -> bool:
    """Whether Adam's fused kernel (one pass over all parameters per step) exists for ``device``: CPU and CUDA."""
    return device.type in ("cpu", "cuda")
