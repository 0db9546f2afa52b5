"""How much of its latent code a model uses: the activity of each latent dimension (book chapter 8).

Both measures read only the encoder's means, ``model.encode(*batch).mean``, so they serve every
:class:`~vae_lib.LatentVariableModel`, conditional ones included.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vae_lib._checks import as_tensors, check_positive_float
from vae_lib.models import LatentVariableModel

__all__ = ["active_units", "latent_activity"]


@torch.no_grad()
def latent_activity(model: LatentVariableModel, data: Tensor | Sequence[Tensor]) -> Tensor:
    """``Cov_x(E_q[z_j])`` for each latent dimension j, shape ``(d,)``: the activity of :eq:`eq-active-units`."""
    if not isinstance(model, LatentVariableModel):
        raise TypeError(f"model must be a vl.LatentVariableModel (with encode), got {type(model).__name__}")
    batch = as_tensors("data", data)
    model.check_data(*batch)
    mu = model.encode(*batch).mean
    if mu.shape[0] < 2:
        raise ValueError(f"latent activity is a variance over examples: give at least 2, got {mu.shape[0]}")
    return mu.double().var(dim=0, unbiased=False).to(mu.dtype)


def active_units(model: LatentVariableModel, data: Tensor | Sequence[Tensor], threshold: float = 0.01) -> int:
    """The number of latent dimensions whose activity exceeds ``threshold`` (:eq:`eq-active-units`)."""
    threshold = check_positive_float("threshold", threshold)
    return int((latent_activity(model, data) > threshold).sum())
