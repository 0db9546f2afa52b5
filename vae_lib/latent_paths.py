"""Paths between two latent codes: the straight line and the spherical path of chapter 5's interpolation.

The spherical path is the one the latent explorer draws in the page (``spherical`` in
``book/_static/latent_explorer.js``, for two dimensions): its direction moves along the great circle
between the two ends' directions at a constant rate, and its distance from the origin changes linearly
between the two ends' distances. Unlike the straight line, it keeps the norm of its codes between the
norms of its ends.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vae_lib._checks import check_finite, check_float_tensor

__all__ = ["spherical_path", "straight_path"]


def _checked_ends(z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
    """The ends as ``(d,)`` codes of one shape and device, and ``t`` as a ``(T, 1)`` column of fractions."""
    for name, value in (("z_a", z_a), ("z_b", z_b), ("t", t)):
        check_finite(name, check_float_tensor(name, value))
    if z_a.dim() != 1 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must be two codes of the same shape (d,), got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if t.dim() != 1:
        raise ValueError(f"t must be a 1-D tensor of fractions along the path, got shape {tuple(t.shape)}")
    return t.to(z_a.dtype).unsqueeze(1)


def straight_path(z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
    """``(1 - t) z_a + t z_b`` for each fraction of ``t`` ``(T,)``: codes ``(T, d)``."""
    t = _checked_ends(z_a, z_b, t)
    return (1 - t) * z_a + t * z_b


def spherical_path(z_a: Tensor, z_b: Tensor, t: Tensor) -> Tensor:
    """Codes ``(T, d)`` along the spherical path from ``z_a`` to ``z_b``, for each fraction of ``t`` ``(T,)``.

    With ``r = ||z||`` and ``u = z / r`` for each end, the code at ``t`` is
    ``((1 - t) r_a + t r_b) * slerp(u_a, u_b, t)``, where
    ``slerp(u_a, u_b, t) = (sin((1 - t) w) u_a + sin(t w) u_b) / sin(w)`` turns at a constant rate along
    the shorter great circle, ``w`` being the angle between ``u_a`` and ``u_b``. An end at the origin takes
    the other end's direction; two ends in opposite directions have no shorter great circle and are refused.
    """
    t = _checked_ends(z_a, z_b, t)
    r_a, r_b = z_a.norm(), z_b.norm()
    if r_a == 0 and r_b == 0:
        return torch.zeros(t.shape[0], z_a.shape[0], dtype=z_a.dtype, device=z_a.device)
    u_a = z_a / r_a if r_a > 0 else z_b / r_b
    u_b = z_b / r_b if r_b > 0 else u_a
    cosine, tiny = u_a @ u_b, 8 * torch.finfo(z_a.dtype).eps
    if cosine <= -1 + tiny:
        raise ValueError("z_a and z_b point in opposite directions: no shorter great circle joins them")
    radius = (1 - t) * r_a + t * r_b  # (T, 1)
    if cosine >= 1 - tiny:  # one direction, to rounding: the great circle is a point
        return radius * u_a
    angle = torch.arccos(cosine)
    direction = (torch.sin((1 - t) * angle) * u_a + torch.sin(t * angle) * u_b) / torch.sin(angle)
    return radius * direction
