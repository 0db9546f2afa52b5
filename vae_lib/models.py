"""MLP encoder, MLP decoder, and the VAE that joins them.

The encoder gives the parameters (mu, log sigma^2) of q(z|x) = N(mu(x), diag sigma^2(x)); the decoder
gives the parameters of p(x|z) (Bernoulli logits or Gaussian means). The VAE's objectives are the
functions of :mod:`vae_lib.objectives`, called with the decoder's log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vae_lib._checks import check_float_tensor, check_positive_int
from vae_lib.distributions import ObservationModel, observation_model
from vae_lib.objectives import ELBOTerms, elbo, importance_weighted_bound


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

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mu, log_var)``, each ``(B, latent_dim)``."""
        _check_input("x", x, self.data_dim, self)
        mu, log_var = self.body(x).chunk(2, dim=-1)
        return mu, log_var


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

    def forward(self, z: Tensor) -> Tensor:
        """The observation model's parameters f(z), shape ``(..., data_dim * params_per_dim)``."""
        _check_input("z", z, self.latent_dim, self)
        return self.body(z)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) summed over pixels; ``z`` may carry leading sample axes."""
        return self.observation.log_prob(x, self(z))


class VAE(nn.Module):
    """A variational autoencoder: an MLP encoder q(z|x), an MLP decoder p(x|z), and the prior N(0, I).

    ``likelihood`` is ``"bernoulli"`` (pixels in [0, 1]), ``"categorical"`` (pixels on a grid of
    ``levels`` grey values) or ``"gaussian"`` with a fixed ``sigma`` (the notes' eq. 2). The decoder
    mirrors the encoder's hidden sizes.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        levels: int = 17,
    ) -> None:
        super().__init__()
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.hidden_dims = tuple(hidden_dims)
        self.encoder = GaussianEncoder(data_dim, self.hidden_dims, latent_dim)
        self.decoder = Decoder(
            latent_dim, tuple(reversed(self.hidden_dims)), data_dim, observation_model(likelihood, sigma, levels)
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def elbo(self, x: Tensor, n_samples: int = 1) -> ELBOTerms:
        """The ELBO of each example of ``x`` (:eq:`eq-elbo`), with its two terms."""
        mu, log_var = self.encoder(x)
        return elbo(x, mu, log_var, self.decoder.log_likelihood, n_samples)

    def importance_log_likelihood(self, x: Tensor, k: int = 1000, chunk_size: int = 256) -> Tensor:
        """The k-sample importance estimate of log p(x) for each example (:eq:`eq-iwae-bound`)."""
        mu, log_var = self.encoder(x)
        return importance_weighted_bound(x, mu, log_var, self.decoder.log_likelihood, k, chunk_size)

    def posterior(self, x: Tensor) -> torch.distributions.Distribution:
        """q(z|x) as a ``torch.distributions`` object."""
        mu, log_var = self.encoder(x)
        return torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * log_var)), 1)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The mean of p(x|z) at the posterior mean z = mu(x): the usual picture of a reconstruction."""
        mu, _ = self.encoder(x)
        return self.decode_mean(mu)

    def decode_mean(self, z: Tensor) -> Tensor:
        """E[x|z], the decoder's mean image for each latent vector."""
        return self.decoder.observation.mean(self.decoder(z))

    def sample(self, n: int, mean: bool = True) -> Tensor:
        """Generate ``n`` images: z ~ N(0, I), then the decoder's mean (or a draw from p(x|z))."""
        n = check_positive_int("n", n)
        z = torch.randn(n, self.latent_dim, device=self.device)
        params = self.decoder(z)
        observation = self.decoder.observation
        return observation.mean(params) if mean else observation.sample(params)
