"""Log-densities, KL divergences, reparameterized sampling, and q(z|x) as a distribution object.

These are the few formulas the book derives by hand. Each says which book equation it implements, and
``tests/test_distributions.py`` checks every one against ``torch.distributions``.

Shapes: data ``x`` is ``(..., D)`` (images flattened), latents ``z`` are ``(..., d)``; every log-density
sums over that last axis and keeps the leading (sample, batch) axes.

The public functions check their inputs (types, shapes, finite values) and then call the unchecked
formula of the same name with a leading underscore, which is what the models and objectives use on
values that were checked where they entered the library.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Independent, Normal

from vae_lib._checks import (
    check_finite,
    check_float_tensor,
    check_positive_float,
    check_positive_int,
    check_same_device,
    check_same_shape,
    check_unit_interval,
)

__all__ = [
    "DiagonalGaussian",
    "bernoulli_log_likelihood",
    "diagonal_gaussian_log_prob",
    "gaussian_log_likelihood",
    "kl_diagonal_gaussians",
    "kl_per_dimension",
    "kl_standard_normal",
    "reparameterize",
    "standard_normal_log_prob",
]

LOG_2PI = math.log(2.0 * math.pi)


def _checked(**tensors: Tensor) -> None:
    """Structure and finiteness of each named floating-point tensor."""
    for name, value in tensors.items():
        check_finite(name, check_float_tensor(name, value))


def _broadcast_event(name_x: str, x: Tensor, name_p: str, params: Tensor) -> None:
    """``params`` may carry extra leading sample axes, but its last axes must match ``x``'s."""
    check_same_device(name_x, x, name_p, params)
    if params.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"{name_x} has {x.shape[-1]} dimensions per example but {name_p} has {params.shape[-1]} "
            f"(shapes {tuple(x.shape)} and {tuple(params.shape)})"
        )
    try:
        torch.broadcast_shapes(x.shape, params.shape)
    except RuntimeError as error:
        raise ValueError(
            f"{name_x} of shape {tuple(x.shape)} and {name_p} of shape {tuple(params.shape)} do not broadcast"
        ) from error


def _gaussian_log_likelihood(x: Tensor, mean: Tensor, sigma: float) -> Tensor:
    squared_error = (x - mean).pow(2).sum(-1)
    return -0.5 * x.shape[-1] * (LOG_2PI + 2.0 * math.log(sigma)) - squared_error / (2.0 * sigma**2)


def gaussian_log_likelihood(x: Tensor, mean: Tensor, sigma: float) -> Tensor:
    """log N(x | mean, sigma^2 I), summed over the last axis.

    The Gaussian observation model of the notes, eq. (2), book :eq:`eq-gaussian-observation`:
    ``-D/2 log(2 pi sigma^2) - ||x - mean||^2 / (2 sigma^2)``.
    """
    _checked(x=x, mean=mean)
    sigma = check_positive_float("sigma", sigma)
    _broadcast_event("x", x, "mean", mean)
    return _gaussian_log_likelihood(x, mean, sigma)


def _bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    return (x * logits - F.softplus(logits)).sum(-1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """log Bernoulli(x | sigmoid(logits)), summed over the last axis.

    Book :eq:`eq-bernoulli-observation`: ``sum_i x_i log p_i + (1 - x_i) log(1 - p_i)``, written as
    ``x * logits - softplus(logits)`` so that large logits do not overflow. ``x`` must lie in [0, 1].
    """
    check_unit_interval("x", check_float_tensor("x", x))
    _checked(logits=logits)
    _broadcast_event("x", x, "logits", logits)
    return _bernoulli_log_likelihood(x, logits)


def _scaled_square(difference: Tensor, log_var: Tensor) -> Tensor:
    """``difference^2 / exp(log_var)`` without the NaN of inf * 0: scaled before squaring (a huge difference
    over a huge variance stays finite), and exactly 0 where the difference is 0, even as the variance -> 0."""
    scaled = (difference * torch.exp(-0.5 * log_var)).pow(2)
    return torch.where(difference == 0, torch.zeros_like(scaled), scaled)


def _diagonal_gaussian_log_prob(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    return -0.5 * (LOG_2PI + log_var + _scaled_square(z - mu, log_var)).sum(-1)


def diagonal_gaussian_log_prob(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log N(z | mu, diag(exp(log_var))), summed over the last axis (used for q(z|x) and p(z))."""
    _checked(z=z, mu=mu, log_var=log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    _broadcast_event("z", z, "mu", mu)
    return _diagonal_gaussian_log_prob(z, mu, log_var)


def _standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z | 0, I), summed over the last axis: the prior p(z) of :eq:`eq-marginal-likelihood`."""
    _checked(z=z)
    return _standard_normal_log_prob(z)


def _kl_per_dimension(mu: Tensor, log_var: Tensor) -> Tensor:
    return 0.5 * (mu.pow(2) + torch.exp(log_var) - 1.0 - log_var)


def kl_per_dimension(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent dimension j, shape ``(B, d)`` (:eq:`eq-kl-per-dimension`).

    The terms of :func:`kl_standard_normal`, which is their sum over the last axis; chapter 8 reads them one
    dimension at a time to find the dimensions a model does not use.
    """
    _checked(mu=mu, log_var=log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    return _kl_per_dimension(mu, log_var)


def kl_standard_normal(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(log_var))) || N(0, I)), summed over the last axis.

    Book :eq:`eq-kl-standard-normal`: ``1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)``, the regularizer
    of the ELBO, notes eq. (5).
    """
    return kl_per_dimension(mu, log_var).sum(-1)


def kl_diagonal_gaussians(mu_q: Tensor, log_var_q: Tensor, mu_p: Tensor, log_var_p: Tensor) -> Tensor:
    """KL(N(mu_q, diag var_q) || N(mu_p, diag var_p)), summed over the last axis.

    Book :eq:`eq-kl-diagonal-gaussians`; with ``mu_p = 0`` and ``log_var_p = 0`` it reduces to
    :func:`kl_standard_normal`.
    """
    _checked(mu_q=mu_q, log_var_q=log_var_q, mu_p=mu_p, log_var_p=log_var_p)
    check_same_shape("mu_q", mu_q, "log_var_q", log_var_q)
    check_same_shape("mu_p", mu_p, "log_var_p", log_var_p)
    check_same_shape("mu_q", mu_q, "mu_p", mu_p)
    variance_ratio = torch.exp(log_var_q - log_var_p)
    mean_term = _scaled_square(mu_q - mu_p, log_var_p)
    return 0.5 * (variance_ratio + mean_term - 1.0 - (log_var_q - log_var_p)).sum(-1)


class DiagonalGaussian(Independent):
    """N(mu, diag exp(log_var)) over the last axis: the encoder's q(z|x), as a ``torch.distributions`` object.

    It keeps the encoder's ``mu`` and ``log_var``, so that the KL to a standard normal prior has its closed
    form (:eq:`eq-kl-standard-normal`), and :meth:`rsample` takes an explicit ``torch.Generator``. Its
    ``log_prob`` is :func:`diagonal_gaussian_log_prob`. The parameters are not checked here (the model that
    made them checked its input), hence ``validate_args=False``.
    """

    def __init__(self, mu: Tensor, log_var: Tensor) -> None:
        super().__init__(Normal(mu, torch.exp(0.5 * log_var), validate_args=False), 1, validate_args=False)
        self.mu, self.log_var = mu, log_var

    def rsample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) (:eq:`eq-reparameterization`), shape ``(*sample_shape, *mu.shape)``."""
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, generator=generator, dtype=self.mu.dtype, device=self.mu.device)
        return self.mu + self.base_dist.scale * eps

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        """Draws like :meth:`rsample`'s, cut off from the computation graph (no gradient reaches mu or log_var)."""
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, z: Tensor) -> Tensor:
        return _diagonal_gaussian_log_prob(z, self.mu, self.log_var)

    def kl_per_dimension(self) -> Tensor:
        """KL(q(z_j|x) || N(0, 1)) for each latent dimension, shape ``(B, d)`` (:eq:`eq-kl-per-dimension`)."""
        return _kl_per_dimension(self.mu, self.log_var)


def reparameterize(
    mu: Tensor, log_var: Tensor, n_samples: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Draw z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and log_var.

    The reparameterization trick, book :eq:`eq-reparameterization`. With ``n_samples=None`` the result has
    ``mu``'s shape; otherwise a leading sample axis is added: ``(n_samples, *mu.shape)``. Working with
    ``log_var`` keeps sigma = exp(log_var / 2) positive without a constraint. The noise comes from
    ``generator`` (on ``mu``'s device), or from PyTorch's global generator when it is None.
    """
    _checked(mu=mu, log_var=log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    sample_shape = () if n_samples is None else (check_positive_int("n_samples", n_samples),)
    return DiagonalGaussian(mu, log_var).rsample(sample_shape, generator)
