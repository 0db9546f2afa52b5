"""The conditional VAE: an encoder q(z|x, c) and a decoder p(x|z, c), both given a condition c.

The condition is any feature vector per example: a one-hot class label (:func:`one_hot`), or the visible
part of an image whose hidden part is ``x``. The prior stays N(0, I), independent of c, so the ELBO and
the importance estimate are those of :mod:`vae_lib.objectives` with the decoder's likelihood evaluated at
``[z, c]`` (book chapter 7, :eq:`eq-conditional-elbo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from vae_lib._checks import check_float_tensor, check_positive_int
from vae_lib.distributions import observation_model
from vae_lib.models import Decoder, GaussianEncoder
from vae_lib.objectives import ELBOTerms, elbo, importance_weighted_bound


def one_hot(labels: Tensor, n_classes: int) -> Tensor:
    """Integer labels ``(B,)`` as float one-hot rows ``(B, n_classes)``, the usual class condition."""
    n_classes = check_positive_int("n_classes", n_classes)
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(
            f"labels must be an integer torch.Tensor, got {getattr(labels, 'dtype', type(labels).__name__)}"
        )
    if labels.dim() != 1:
        raise ValueError(f"labels must be one-dimensional (B,), got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}], got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return nn.functional.one_hot(labels.long(), n_classes).float()


class ConditionalVAE(nn.Module):
    """q(z|x, c) = N(mu(x, c), diag sigma^2(x, c)), p(x|z, c) from an MLP on ``[z, c]``, p(z) = N(0, I).

    ``likelihood`` is ``"bernoulli"`` or ``"gaussian"`` with a fixed ``sigma``, as for :class:`vae_lib.VAE`.
    Every method takes the data ``x`` of shape ``(B, data_dim)`` with its condition ``c`` of shape
    ``(B, condition_dim)``, so ``vl.fit(model, (x, c))`` trains it with the default loss.
    """

    def __init__(
        self,
        data_dim: int,
        condition_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.condition_dim = check_positive_int("condition_dim", condition_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.hidden_dims = tuple(hidden_dims)
        self.encoder = GaussianEncoder(data_dim + condition_dim, self.hidden_dims, latent_dim)
        observation = observation_model(likelihood, sigma)
        self.decoder = Decoder(latent_dim + condition_dim, tuple(reversed(self.hidden_dims)), data_dim, observation)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_condition(self, c: Tensor, n_rows: int | None = None) -> Tensor:
        check_float_tensor("c", c, min_dim=2)
        if c.dim() != 2 or c.shape[1] != self.condition_dim:
            raise ValueError(f"c must have shape (B, {self.condition_dim}), got {tuple(c.shape)}")
        if n_rows is not None and c.shape[0] != n_rows:
            raise ValueError(f"c has {c.shape[0]} rows but x has {n_rows}; give one condition per example")
        return c

    def encode(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, log_var)`` of q(z|x, c), each ``(B, latent_dim)``."""
        check_float_tensor("x", x, min_dim=2)
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"x must have shape (B, {self.data_dim}), got {tuple(x.shape)}")
        self._check_condition(c, x.shape[0])
        return self.encoder(torch.cat([x, c], dim=-1))

    def decoder_params(self, z: Tensor, c: Tensor) -> Tensor:
        """The observation model's parameters at ``[z, c]``; ``z`` is ``(B, d)`` or ``(S, B, d)``."""
        c = c.expand(*z.shape[:-1], c.shape[-1])  # the same condition for every sample of z
        return self.decoder(torch.cat([z, c], dim=-1))

    def conditioned_log_likelihood(self, c: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """The function ``(x, z) -> log p(x|z, c)`` with ``c`` fixed, in the form vl.elbo expects."""
        return lambda x, z: self.decoder.observation.log_prob(x, self.decoder_params(z, c))

    def elbo(self, x: Tensor, c: Tensor, n_samples: int = 1) -> ELBOTerms:
        """The conditional ELBO of each example, :eq:`eq-conditional-elbo`, with its two terms."""
        mu, log_var = self.encode(x, c)
        return elbo(x, mu, log_var, self.conditioned_log_likelihood(c), n_samples)

    def importance_log_likelihood(self, x: Tensor, c: Tensor, k: int = 1000, chunk_size: int = 256) -> Tensor:
        """The k-sample importance estimate of log p(x|c) per example (the IWAE bound of chapter 6)."""
        mu, log_var = self.encode(x, c)
        return importance_weighted_bound(x, mu, log_var, self.conditioned_log_likelihood(c), k, chunk_size)

    def sample(self, c: Tensor, mean: bool = True, z: Tensor | None = None) -> Tensor:
        """One image per row of ``c``: z ~ N(0, I) (or the given ``z``), then p(x|z, c)'s mean or a draw."""
        self._check_condition(c)
        if z is None:
            z = torch.randn(c.shape[0], self.latent_dim, device=c.device, dtype=c.dtype)
        elif z.shape != (c.shape[0], self.latent_dim):
            raise ValueError(f"z must have shape ({c.shape[0]}, {self.latent_dim}) to match c, got {tuple(z.shape)}")
        params = self.decoder_params(z, c)
        observation = self.decoder.observation
        return observation.mean(params) if mean else observation.sample(params)

    def reconstruct(self, x: Tensor, c: Tensor) -> Tensor:
        """The mean of p(x|z, c) at the posterior mean z = mu(x, c)."""
        mu, _ = self.encode(x, c)
        return self.decoder.observation.mean(self.decoder_params(mu, c))
