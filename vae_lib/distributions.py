"""Log-densities, KL divergences and reparameterized sampling.

These are the few formulas the book derives by hand. Each says which book equation it implements, and
``tests/test_distributions.py`` checks every one against ``torch.distributions``.

Shapes: data ``x`` is ``(..., D)`` (images flattened), latents ``z`` are ``(..., d)``; every log-density
sums over that last axis and keeps the leading (sample, batch) axes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vae_lib._checks import (
    check_float_tensor,
    check_on_grid,
    check_positive_float,
    check_positive_int,
    check_same_device,
    check_same_shape,
    check_unit_interval,
)

LOG_2PI = math.log(2.0 * math.pi)


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


def gaussian_log_likelihood(x: Tensor, mean: Tensor, sigma: float) -> Tensor:
    """log N(x | mean, sigma^2 I), summed over the last axis.

    The Gaussian observation model of the notes, eq. (2), book :eq:`eq-gaussian-observation`:
    ``-D/2 log(2 pi sigma^2) - ||x - mean||^2 / (2 sigma^2)``.
    """
    check_float_tensor("x", x)
    check_float_tensor("mean", mean)
    sigma = check_positive_float("sigma", sigma)
    _broadcast_event("x", x, "mean", mean)
    dim = x.shape[-1]
    squared_error = (x - mean).pow(2).sum(-1)
    return -0.5 * dim * (LOG_2PI + 2.0 * math.log(sigma)) - squared_error / (2.0 * sigma**2)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """log Bernoulli(x | sigmoid(logits)), summed over the last axis.

    Book :eq:`eq-bernoulli-observation`: ``sum_i x_i log p_i + (1 - x_i) log(1 - p_i)``, written as
    ``x * logits - softplus(logits)`` so that large logits do not overflow. ``x`` must lie in [0, 1].
    """
    check_float_tensor("x", x)
    check_float_tensor("logits", logits)
    check_unit_interval("x", x)
    _broadcast_event("x", x, "logits", logits)
    return (x * logits - F.softplus(logits)).sum(-1)


def _scaled_square(difference: Tensor, log_var: Tensor) -> Tensor:
    """``difference^2 / exp(log_var)`` without the NaN of inf * 0: scaled before squaring (a huge difference
    over a huge variance stays finite), and exactly 0 where the difference is 0, even as the variance -> 0."""
    scaled = (difference * torch.exp(-0.5 * log_var)).pow(2)
    return torch.where(difference == 0, torch.zeros_like(scaled), scaled)


def diagonal_gaussian_log_prob(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log N(z | mu, diag(exp(log_var))), summed over the last axis (used for q(z|x) and p(z))."""
    check_float_tensor("z", z)
    check_float_tensor("mu", mu)
    check_float_tensor("log_var", log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    _broadcast_event("z", z, "mu", mu)
    return -0.5 * (LOG_2PI + log_var + _scaled_square(z - mu, log_var)).sum(-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z | 0, I), summed over the last axis: the prior p(z) of :eq:`eq-marginal-likelihood`."""
    check_float_tensor("z", z)
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def kl_standard_normal(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(log_var))) || N(0, I)), summed over the last axis.

    Book :eq:`eq-kl-standard-normal`: ``1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)``, the regularizer
    of the ELBO, notes eq. (5).
    """
    return kl_per_dimension(mu, log_var).sum(-1)


def kl_per_dimension(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(q(z_j|x) || N(0, 1)) for each latent dimension j, shape ``(B, d)`` (:eq:`eq-kl-per-dimension`).

    The terms of :func:`kl_standard_normal`, which is their sum over the last axis; chapter 8 reads them one
    dimension at a time to find the dimensions a model does not use.
    """
    check_float_tensor("mu", mu)
    check_float_tensor("log_var", log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    return 0.5 * (mu.pow(2) + torch.exp(log_var) - 1.0 - log_var)


def kl_diagonal_gaussians(mu_q: Tensor, log_var_q: Tensor, mu_p: Tensor, log_var_p: Tensor) -> Tensor:
    """KL(N(mu_q, diag var_q) || N(mu_p, diag var_p)), summed over the last axis.

    Book :eq:`eq-kl-diagonal-gaussians`; with ``mu_p = 0`` and ``log_var_p = 0`` it reduces to
    :func:`kl_standard_normal`.
    """
    for name, value in (("mu_q", mu_q), ("log_var_q", log_var_q), ("mu_p", mu_p), ("log_var_p", log_var_p)):
        check_float_tensor(name, value)
    check_same_shape("mu_q", mu_q, "log_var_q", log_var_q)
    check_same_shape("mu_p", mu_p, "log_var_p", log_var_p)
    check_same_shape("mu_q", mu_q, "mu_p", mu_p)
    variance_ratio = torch.exp(log_var_q - log_var_p)
    mean_term = _scaled_square(mu_q - mu_p, log_var_p)
    return 0.5 * (variance_ratio + mean_term - 1.0 - (log_var_q - log_var_p)).sum(-1)


def reparameterize(mu: Tensor, log_var: Tensor, n_samples: int | None = None) -> Tensor:
    """Draw z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and log_var.

    The reparameterization trick, book :eq:`eq-reparameterization`. With ``n_samples=None`` the result has
    ``mu``'s shape; otherwise a leading sample axis is added: ``(n_samples, *mu.shape)``.
    Working with ``log_var`` keeps sigma = exp(log_var / 2) positive without a constraint.
    """
    check_float_tensor("mu", mu)
    check_float_tensor("log_var", log_var)
    check_same_shape("mu", mu, "log_var", log_var)
    shape = mu.shape if n_samples is None else (check_positive_int("n_samples", n_samples), *mu.shape)
    eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * log_var) * eps


class BernoulliObservation:
    """p(x|z) = prod_i Bernoulli(x_i | sigmoid(logit_i(z))), for pixels in [0, 1] (:eq:`eq-bernoulli-observation`)."""

    name = "bernoulli"
    params_per_dim = 1

    def log_prob(self, x: Tensor, logits: Tensor) -> Tensor:
        return bernoulli_log_likelihood(x, logits)

    def mean(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)

    def sample(self, logits: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(logits))

    def distribution(self, logits: Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 1)

    def __repr__(self) -> str:
        return "BernoulliObservation()"


class GaussianObservation:
    """p(x|z) = N(x | f(z), sigma^2 I) with a fixed sigma: the notes' eq. (2), :eq:`eq-gaussian-observation`."""

    name = "gaussian"
    params_per_dim = 1

    def __init__(self, sigma: float) -> None:
        self.sigma = check_positive_float("sigma", sigma)

    def log_prob(self, x: Tensor, mean: Tensor) -> Tensor:
        return gaussian_log_likelihood(x, mean, self.sigma)

    def mean(self, mean: Tensor) -> Tensor:
        return mean

    def sample(self, mean: Tensor) -> Tensor:
        return mean + self.sigma * torch.randn_like(mean)

    def distribution(self, mean: Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Normal(mean, self.sigma), 1)

    def __repr__(self) -> str:
        return f"GaussianObservation(sigma={self.sigma})"


class CategoricalObservation:
    """p(x|z) = prod_i Categorical(level_i | softmax(logits_i(z))), for pixels on a grid of ``levels`` values.

    A pixel ``x_i`` in [0, 1] is the level ``round(x_i * (levels - 1))``; the decoder gives ``levels``
    logits per pixel, laid out as ``(..., D * levels)`` with each pixel's logits adjacent. Like the
    Bernoulli model it is a probability mass, so its log-likelihoods are in nats and comparable.
    """

    name = "categorical"

    def __init__(self, levels: int = 17) -> None:
        self.levels = check_positive_int("levels", levels)
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.params_per_dim = self.levels

    def level_index(self, x: Tensor) -> Tensor:
        """The integer level of each pixel; ``ValueError`` if a pixel is not on the grid ``k / (levels - 1)``."""
        check_float_tensor("x", x)
        check_unit_interval("x", x)
        scaled = x * (self.levels - 1)
        index = torch.round(scaled)
        check_on_grid("x", scaled - index, self.levels)
        return index.long()

    def _logits(self, logits: Tensor) -> Tensor:
        check_float_tensor("logits", logits)
        if logits.shape[-1] % self.levels:
            raise ValueError(f"logits' last axis ({logits.shape[-1]}) must be a multiple of levels ({self.levels})")
        return logits.unflatten(-1, (logits.shape[-1] // self.levels, self.levels))  # (..., D, levels)

    def log_prob(self, x: Tensor, logits: Tensor) -> Tensor:
        index = self.level_index(x)
        per_pixel = self._logits(logits)
        _broadcast_event("x", x, "logits per pixel", per_pixel[..., 0])
        log_probs = torch.log_softmax(per_pixel, dim=-1)
        index = index.expand(per_pixel.shape[:-1])
        return log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1).sum(-1)

    def mean(self, logits: Tensor) -> Tensor:
        grid = torch.linspace(0.0, 1.0, self.levels, dtype=logits.dtype, device=logits.device)
        return (torch.softmax(self._logits(logits), dim=-1) * grid).sum(-1)

    def sample(self, logits: Tensor) -> Tensor:
        return self.distribution(logits).sample().to(logits.dtype) / (self.levels - 1)

    def distribution(self, logits: Tensor) -> torch.distributions.Distribution:
        """Over level indices (integers ``0 .. levels-1``), not over the pixel values in [0, 1]."""
        return torch.distributions.Independent(torch.distributions.Categorical(logits=self._logits(logits)), 1)

    def __repr__(self) -> str:
        return f"CategoricalObservation(levels={self.levels})"


ObservationModel = BernoulliObservation | GaussianObservation | CategoricalObservation


def observation_model(likelihood: str, sigma: float | None = None, levels: int = 17) -> ObservationModel:
    """Build an observation model by name: ``"bernoulli"``, ``"categorical"`` (``levels`` grey levels) or ``"gaussian"`` (needs ``sigma``)."""
    if likelihood == "bernoulli":
        return BernoulliObservation()
    if likelihood == "categorical":
        return CategoricalObservation(levels)
    if likelihood == "gaussian":
        if sigma is None:
            raise ValueError("likelihood='gaussian' needs sigma, the fixed standard deviation of eq. (2)")
        return GaussianObservation(sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose 'bernoulli', 'categorical' or 'gaussian'")
