"""Input checks shared by vae_lib's public functions.

Each check raises ``TypeError`` or ``ValueError`` with a message that names the argument, so that a
reader sees what was wrong at the call they wrote, not deep inside torch.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_value_checks_on = contextvars.ContextVar("vae_lib_value_checks_on", default=True)


class NonFiniteError(ValueError):
    """A tensor holds NaN or inf. ``fit`` turns one raised inside the model into a divergence error."""


def check_tensor(name: str, value: object, *, floating: bool = True) -> Tensor:
    """Return ``value`` if it is a (floating-point) tensor, else raise ``TypeError``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def _all_finite(value: Tensor) -> bool:
    # min and max propagate NaN and show any infinity, so one fused reduction decides; it is about 15 times
    # cheaper than materialising isfinite(value), which matters since the models check every batch.
    if value.is_floating_point() and value.numel() > 0:
        low, high = torch.aminmax(value.detach())
        return math.isfinite(low.item()) and math.isfinite(high.item())
    return bool(torch.isfinite(value).all())


@contextmanager
def value_checks_skipped() -> Iterator[None]:
    """Within the block, skip the checks that read every entry of a tensor (finite, in [0, 1]).

    Types, shapes and devices are still checked. ``fit`` skips them after its first epoch, once every
    training example has passed them, as ``torch.distributions``' ``validate_args=False`` does for its
    checks.
    """
    token = _value_checks_on.set(False)
    try:
        yield
    finally:
        _value_checks_on.reset(token)


def check_finite(name: str, value: Tensor) -> Tensor:
    """Raise ``ValueError`` if ``value`` holds a NaN or an infinity."""
    if _value_checks_on.get() and not _all_finite(value):
        bad = int((~torch.isfinite(value)).sum())
        raise NonFiniteError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return value


def check_float_tensor(name: str, value: object, *, min_dim: int = 1) -> Tensor:
    """A finite floating-point tensor with at least ``min_dim`` dimensions."""
    tensor = check_tensor(name, value)
    if tensor.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)})")
    return check_finite(name, tensor)


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; they must match"
        )


def check_same_device(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` live on the same device."""
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; move them to one device")


def check_unit_interval(name: str, value: Tensor) -> Tensor:
    """Raise ``ValueError`` unless every entry of ``value`` lies in [0, 1]."""
    if not _value_checks_on.get():
        return value
    low, high = (float(v) for v in torch.aminmax(value.detach()))
    if not (low >= 0 and high <= 1):  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli likelihood, got values in [{low:.4g}, {high:.4g}]")
    return value


def check_on_grid(name: str, rounding_error: Tensor, levels: int) -> None:
    """Raise ``ValueError`` unless ``rounding_error``, a pixel times ``levels - 1`` minus its nearest integer,
    is zero everywhere (to 1e-4): the pixels lie on the grid of a ``levels``-level categorical likelihood."""
    if _value_checks_on.get() and float(rounding_error.abs().max()) > 1e-4:
        raise ValueError(f"{name} must lie on the grid k/{levels - 1} of a {levels}-level categorical likelihood")


def check_seed(name: str, value: object) -> int:
    """Return ``value`` if it is an int (not a bool) that a torch.Generator accepts as a seed."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not -(2**63) <= value < 2**64:
        raise ValueError(f"{name} must fit in 64 bits, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: what a one-line report shows."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
