"""The decoder's p(x|z): observation models (Bernoulli, Gaussian, categorical) and their distributions.

An observation model is a family: from the decoder network's raw outputs f(z) it builds the distribution
p(x|z) of an image, a ``torch.distributions`` object whose event is the last axis (the pixels, independent
given z). ``log_prob`` is the book's formula for that family, ``mean`` is E[x|z] (the picture the book
shows), and ``sample`` takes an explicit ``torch.Generator``. The model checks its data once, with the
family's ``check_data``, where the data enter the library; the distributions read them unchecked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Independent, Normal

from vae_lib._checks import check_finite, check_on_grid, check_positive_float, check_positive_int, check_unit_interval
from vae_lib.distributions import _bernoulli_log_likelihood, _gaussian_log_likelihood

__all__ = [
    "BernoulliObservation",
    "BernoulliPixels",
    "CategoricalObservation",
    "CategoricalPixels",
    "GaussianObservation",
    "GaussianPixels",
    "observation_model",
]


class BernoulliPixels(Independent):
    """prod_i Bernoulli(x_i | sigmoid(logit_i)) over the last axis (:eq:`eq-bernoulli-observation`)."""

    def __init__(self, logits: Tensor) -> None:
        super().__init__(Bernoulli(logits=logits, validate_args=False), 1, validate_args=False)

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits

    def log_prob(self, x: Tensor) -> Tensor:
        return _bernoulli_log_likelihood(x, self.logits)

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        with torch.no_grad():
            return torch.bernoulli(
                self.mean.expand(self._extended_shape(torch.Size(sample_shape))), generator=generator
            )


class GaussianPixels(Independent):
    """N(x | mean, sigma^2 I) over the last axis, with a fixed ``sigma`` (notes eq. 2, :eq:`eq-gaussian-observation`)."""

    def __init__(self, mean: Tensor, sigma: float) -> None:
        super().__init__(Normal(mean, sigma, validate_args=False), 1, validate_args=False)
        self.sigma = sigma

    def log_prob(self, x: Tensor) -> Tensor:
        return _gaussian_log_likelihood(x, self.mean, self.sigma)

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        noise = torch.randn(shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return (self.mean + self.sigma * noise).detach()


class CategoricalPixels(Independent):
    """prod_i Categorical(level_i | softmax(logits_i)) over pixel values k / (levels - 1) (:eq:`eq-categorical-observation`).

    ``logits`` are laid out as ``(..., D * levels)`` with each pixel's ``levels`` logits adjacent. The values
    are pixels in [0, 1], like the data: ``log_prob(x)`` reads the level ``round(x * (levels - 1))`` of each
    pixel, ``mean`` is the expected grey value and ``sample`` draws grey values.
    """

    def __init__(self, logits: Tensor, levels: int) -> None:
        if logits.shape[-1] % levels:
            raise ValueError(f"logits' last axis ({logits.shape[-1]}) must be a multiple of levels ({levels})")
        per_pixel = logits.unflatten(-1, (logits.shape[-1] // levels, levels))  # (..., D, levels)
        super().__init__(Categorical(logits=per_pixel, validate_args=False), 1, validate_args=False)
        self.levels = levels

    def log_prob(self, x: Tensor) -> Tensor:
        log_probs = self.base_dist.logits  # normalized: log-softmax over the levels, (..., D, levels)
        index = torch.round(x * (self.levels - 1)).long().expand(log_probs.shape[:-1])
        return log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1).sum(-1)

    @property
    def mean(self) -> Tensor:
        probs = self.base_dist.probs
        return (probs * torch.linspace(0.0, 1.0, self.levels, dtype=probs.dtype, device=probs.device)).sum(-1)

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        probs = self.base_dist.probs.detach()
        shape = torch.Size(sample_shape) + probs.shape[:-1]
        flat = probs.expand(*shape, self.levels).reshape(-1, self.levels)
        levels = torch.multinomial(flat, 1, generator=generator).reshape(shape)
        return levels.to(probs.dtype) / (self.levels - 1)


class BernoulliObservation:
    """Pixels in [0, 1] with a Bernoulli likelihood; the decoder gives one logit per pixel."""

    name = "bernoulli"
    params_per_dim = 1

    def distribution(self, logits: Tensor) -> BernoulliPixels:
        return BernoulliPixels(logits)

    def check_data(self, name: str, x: Tensor) -> None:
        check_unit_interval(name, x)

    def config(self) -> dict[str, Any]:
        return {"likelihood": self.name}

    def __repr__(self) -> str:
        return "BernoulliObservation()"


class GaussianObservation:
    """Real pixels with a Gaussian likelihood of fixed ``sigma``; the decoder gives the mean of each pixel."""

    name = "gaussian"
    params_per_dim = 1

    def __init__(self, sigma: float) -> None:
        self.sigma = check_positive_float("sigma", sigma)

    def distribution(self, mean: Tensor) -> GaussianPixels:
        return GaussianPixels(mean, self.sigma)

    def check_data(self, name: str, x: Tensor) -> None:
        check_finite(name, x)

    def config(self) -> dict[str, Any]:
        return {"likelihood": self.name, "sigma": self.sigma}

    def __repr__(self) -> str:
        return f"GaussianObservation(sigma={self.sigma})"


class CategoricalObservation:
    """Pixels on a grid of ``levels`` grey values (a data set's ``grey_levels``); ``levels`` logits per pixel."""

    name = "categorical"

    def __init__(self, levels: int) -> None:
        self.levels = check_positive_int("levels", levels)
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.params_per_dim = self.levels

    def distribution(self, logits: Tensor) -> CategoricalPixels:
        return CategoricalPixels(logits, self.levels)

    def check_data(self, name: str, x: Tensor) -> None:
        check_on_grid(name, x, self.levels)

    def config(self) -> dict[str, Any]:
        return {"likelihood": self.name, "levels": self.levels}

    def __repr__(self) -> str:
        return f"CategoricalObservation(levels={self.levels})"


ObservationModel = BernoulliObservation | GaussianObservation | CategoricalObservation


def observation_model(likelihood: str, sigma: float | None = None, levels: int | None = None) -> ObservationModel:
    """Build an observation model by name: ``"bernoulli"``, ``"categorical"`` (needs ``levels``) or ``"gaussian"`` (needs ``sigma``)."""
    if likelihood == "bernoulli":
        return BernoulliObservation()
    if likelihood == "categorical":
        if levels is None:
            raise ValueError(
                "likelihood='categorical' needs levels, the number of grey levels (a data set's grey_levels)"
            )
        return CategoricalObservation(levels)
    if likelihood == "gaussian":
        if sigma is None:
            raise ValueError("likelihood='gaussian' needs sigma, the fixed standard deviation of eq. (2)")
        return GaussianObservation(sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose 'bernoulli', 'categorical' or 'gaussian'")
