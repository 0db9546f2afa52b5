"""Device choice and seeding, both explicit calls (importing vae_lib changes no global state)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["default_device", "seed_everything"]

DEVICE_ENVIRONMENT_VARIABLE = "VAE_DEVICE"


def default_device() -> torch.device:
    """The device the book runs on: ``$VAE_DEVICE`` if set (``cpu``, ``cuda``), else CUDA when present."""
    requested = os.environ.get(DEVICE_ENVIRONMENT_VARIABLE, "").strip()
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENVIRONMENT_VARIABLE}={requested} but torch sees no CUDA device")
        return device
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
