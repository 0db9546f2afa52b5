"""MLP encoder and decoder, the model contract every VAE of the book follows, and the VAE itself.

The encoder returns q(z|x) as a :class:`~vae_lib.DiagonalGaussian`, the decoder p(x|z) as the distribution
of its observation model (:mod:`vae_lib.observations`), and the prior is an object of :mod:`vae_lib.priors`.
:class:`LatentVariableModel` joins them: it draws z ~ q(z|x) with an explicit generator and hands the
distributions and the draws to the objectives of :mod:`vae_lib.objectives`, which never call back into
the model. It checks the values of its data once, in its public methods (``elbo``,
``importance_log_likelihood``); ``forward``, which ``fit`` calls on data it checked already, does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vae_lib._checks import check_finite, check_float_tensor, check_positive_int
from vae_lib.checkpoint import register_model_class
from vae_lib.distributions import DiagonalGaussian
from vae_lib.objectives import (
    DEFAULT_MEMORY_BUDGET,
    ELBOTerms,
    distribution_bytes,
    elbo,
    importance_weighted_bound,
    samples_per_chunk,
)
from vae_lib.observations import ObservationModel, observation_model
from vae_lib.priors import Prior, StandardNormalPrior, prior_from_config

__all__ = ["VAE", "Decoder", "ForwardPass", "GaussianEncoder", "LatentVariableModel", "mlp"]


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    sizes = [check_positive_int(f"sizes[{i}]", size) for i, size in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _check_input(name: str, value: Tensor, size: int, module: nn.Module) -> None:
    """Structure only (no entry is read): a floating tensor with ``size`` features, on the module's device and dtype."""
    check_float_tensor(name, value, min_dim=2)
    if value.shape[-1] != size:
        raise ValueError(f"{name} must have {size} features in its last axis, got shape {tuple(value.shape)}")
    parameter = next(module.parameters())
    if value.device != parameter.device:
        raise ValueError(f"{name} is on {value.device} but the model is on {parameter.device}")
    if value.dtype != parameter.dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but the model's parameters are {parameter.dtype}")


class GaussianEncoder(nn.Module):
    """q(z|x) = N(mu(x), diag exp(log_var(x))), an MLP with two output heads."""

    def __init__(self, data_dim: int, hidden_dims: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.body = mlp([data_dim, *hidden_dims, 2 * latent_dim])

    def forward(self, x: Tensor) -> DiagonalGaussian:
        """q(z|x) for each row of ``x`` ``(B, data_dim)``; its ``mu`` and ``log_var`` are ``(B, latent_dim)``."""
        _check_input("x", x, self.data_dim, self)
        mu, log_var = self.body(x).chunk(2, dim=-1)
        return DiagonalGaussian(mu, log_var)


class Decoder(nn.Module):
    """p(x|z): an MLP f(z) giving the parameters of the observation model (logits or means)."""

    def __init__(
        self, latent_dim: int, hidden_dims: Sequence[int], data_dim: int, observation: ObservationModel
    ) -> None:
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.observation = observation
        self.body = mlp([latent_dim, *hidden_dims, data_dim * observation.params_per_dim])

    def forward(self, z: Tensor) -> Distribution:
        """p(x|z) for each row of ``z`` ``(..., latent_dim)``: a distribution over images of batch shape ``z.shape[:-1]``."""
        _check_input("z", z, self.latent_dim, self)
        return self.observation.distribution(self.body(z))


class ForwardPass(NamedTuple):
    """One pass through a model: q(z|x), the draws ``z`` ``(S, B, d)`` from it, and p(x|z) at those draws."""

    q_z: Distribution
    z: Tensor
    p_x_given_z: Distribution


class LatentVariableModel(nn.Module):
    """What every model of the book provides, and what ``fit`` and the losses of :mod:`vae_lib.losses` use.

    A subclass sets ``self.prior`` (a :class:`~vae_lib.Prior`) and defines ``encode(x, *condition)``, which
    returns q(z|x) (a distribution with ``rsample(sample_shape, generator)`` and ``log_prob``), and
    ``decode(z, *condition)``, which returns p(x|z) (a distribution with ``log_prob(x)``, and ``mean`` and
    ``sample(generator=...)`` for pictures). ``condition`` is whatever else a batch holds: nothing for the
    VAE, the condition ``c`` for the conditional VAE.
    """

    prior: Prior

    def encode(self, x: Tensor, *condition: Tensor) -> Distribution:
        raise NotImplementedError

    def decode(self, z: Tensor, *condition: Tensor) -> Distribution:
        raise NotImplementedError

    def check_data(self, x: Tensor, *condition: Tensor) -> None:
        """Check the values of a batch once: the pixels with :meth:`check_pixels`, a condition finite."""
        self.check_pixels(x)
        for i, value in enumerate(condition):
            name = "c" if len(condition) == 1 else f"c[{i}]"
            check_finite(name, check_float_tensor(name, value, min_dim=2))

    def check_pixels(self, x: Tensor, name: str = "x") -> None:
        """Check a batch of images once: finite here; a model with a likelihood checks what it accepts."""
        check_finite(name, check_float_tensor(name, x, min_dim=2))

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model with ``from_config``, as plain values."""
        raise NotImplementedError(f"{type(self).__name__} does not record how to rebuild it")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LatentVariableModel:
        """A new model (fresh weights) built from :meth:`config`'s output; ``prior`` is rebuilt by name."""
        options = {key: value for key, value in config.items() if key != "prior"}
        return cls(**options, prior=prior_from_config(config.get("prior"), config["latent_dim"]))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self, x: Tensor, *condition: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> ForwardPass:
        """Encode, draw ``n_samples`` reparameterized codes per example (:eq:`eq-reparameterization`), decode."""
        q_z = self.encode(x, *condition)
        z = q_z.rsample((n_samples,), generator=generator)  # (S, B, d)
        return ForwardPass(q_z, z, self.decode(z, *condition))

    def elbo(
        self, x: Tensor, *condition: Tensor, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> ELBOTerms:
        """The ELBO of each example of ``x`` (:eq:`eq-elbo`), with its two terms, from ``n_samples`` draws."""
        self.check_data(x, *condition)
        n_samples = check_positive_int("n_samples", n_samples)
        q_z, z, p_x_given_z = self(x, *condition, n_samples=n_samples, generator=generator)
        return elbo(x, q_z, z, p_x_given_z, self.prior)

    def importance_log_likelihood(
        self,
        x: Tensor,
        *condition: Tensor,
        k: int = 1000,
        generator: torch.Generator | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> Tensor:
        """The k-sample importance estimate of log p(x) (given the condition) per example (:eq:`eq-iwae-bound`).

        Images and samples are both split into chunks so that the decoded samples of one chunk take about
        ``memory_budget`` bytes at most, whatever the number of images and ``k``.
        """
        self.check_data(x, *condition)
        k = check_positive_int("k", k)
        memory_budget = check_positive_int("memory_budget", memory_budget)
        rows = self._rows_per_chunk(x, condition, k, memory_budget)
        estimates = []
        for start in range(0, x.shape[0], rows):
            x_part, *condition_part = (t[start : start + rows] for t in (x, *condition))
            q_z = self.encode(x_part, *condition_part)
            decode = self._decoder_given(condition_part)
            estimates.append(
                importance_weighted_bound(
                    x_part, q_z, decode, k, prior=self.prior, generator=generator, memory_budget=memory_budget
                )
            )
        return torch.cat(estimates)

    def _decoder_given(self, condition: Sequence[Tensor]) -> Callable[[Tensor], Distribution]:
        return lambda z: self.decode(z, *condition)

    def _rows_per_chunk(self, x: Tensor, condition: Sequence[Tensor], k: int, memory_budget: int) -> int:
        """Images per chunk: as many as leave room for min(k, 100) samples of each within the budget."""
        with torch.no_grad():  # measure one decoded sample of one image
            first = [t[:1] for t in (x, *condition)]
            bytes_per_sample = distribution_bytes(self.decode(self.encode(*first).mean[None], *first[1:]))
        samples = samples_per_chunk(bytes_per_sample, k * x.shape[0], memory_budget)
        return max(1, min(x.shape[0], samples // min(k, 100)))

    def reconstruct(self, x: Tensor, *condition: Tensor) -> Tensor:
        """The mean of p(x|z) at the posterior mean z = E_q[z]: the usual picture of a reconstruction."""
        q_z = self.encode(x, *condition)
        return self.decode(q_z.mean, *condition).mean

    def _pictures(self, z: Tensor, *condition: Tensor, mean: bool, generator: torch.Generator | None) -> Tensor:
        """Images decoded from codes ``z``: the mean of p(x|z), or one draw from it."""
        p_x_given_z = self.decode(z, *condition)
        return p_x_given_z.mean if mean else p_x_given_z.sample(generator=generator)


def mlp_model_config(model: nn.Module) -> dict[str, Any]:
    """The arguments shared by the MLP models' constructors: sizes, likelihood and prior."""
    return {
        "data_dim": model.data_dim,
        "latent_dim": model.latent_dim,
        "hidden_dims": list(model.hidden_dims),
        **model.decoder.observation.config(),
        "prior": model.prior.config(),
    }


def checked_prior(prior: Prior | None, latent_dim: int) -> Prior:
    """``prior``, or N(0, I) when it is None; a prior of another dimension is refused."""
    if prior is None:
        return StandardNormalPrior(latent_dim)
    if not isinstance(prior, Prior):
        raise TypeError(
            f"prior must be a vae_lib prior (vl.StandardNormalPrior, vl.MixturePrior), got {type(prior).__name__}"
        )
    if prior.latent_dim != latent_dim:
        raise ValueError(f"the prior has {prior.latent_dim} dimensions but latent_dim is {latent_dim}")
    return prior


@register_model_class
class VAE(LatentVariableModel):
    """A variational autoencoder: an MLP encoder q(z|x), an MLP decoder p(x|z), and a prior (default N(0, I)).

    ``likelihood`` is ``"bernoulli"`` (pixels in [0, 1]), ``"categorical"`` (pixels on a grid of
    ``levels`` grey values: a data set's ``grey_levels``) or ``"gaussian"`` with a fixed ``sigma`` (the
    notes' eq. 2). The decoder mirrors the encoder's hidden sizes. ``prior`` swaps the prior in one argument,
    e.g. ``prior=vl.MixturePrior(latent_dim, n_components=10)``.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        levels: int | None = None,
        prior: Prior | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.hidden_dims = tuple(hidden_dims)
        self.encoder = GaussianEncoder(data_dim, self.hidden_dims, latent_dim)
        observation = observation_model(likelihood, sigma, levels)
        self.decoder = Decoder(latent_dim, tuple(reversed(self.hidden_dims)), data_dim, observation)
        self.prior = checked_prior(prior, self.latent_dim)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """q(z|x) for each row of ``x`` ``(B, data_dim)``."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Distribution:
        """p(x|z) for each code of ``z`` ``(..., latent_dim)``."""
        return self.decoder(z)

    def check_pixels(self, x: Tensor, name: str = "x") -> None:
        self.decoder.observation.check_data(name, check_float_tensor(name, x, min_dim=2))

    def sample(self, n: int, mean: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Generate ``n`` images: z ~ p(z), then the decoder's mean (or a draw from p(x|z))."""
        return self._pictures(self.prior.sample(n, generator), mean=mean, generator=generator)

    def config(self) -> dict[str, Any]:
        return mlp_model_config(self)
