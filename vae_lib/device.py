"""Device choice and seeding, both explicit calls (importing vae_lib changes no global state)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

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
