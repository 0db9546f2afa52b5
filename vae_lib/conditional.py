"""The conditional VAE: an encoder q(z|x, c) and a decoder p(x|z, c), both given a condition c.

The condition is any feature vector per example: a one-hot class label (:func:`one_hot`), or the visible
part of an image whose hidden part is ``x``. The prior does not depend on c (N(0, I) unless another prior
is given), so the ELBO and the importance estimate are those of :class:`vae_lib.LatentVariableModel`,
with ``c`` passed beside ``x`` and fed to the decoder at ``[z, c]`` (book chapter 7,
:eq:`eq-conditional-elbo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vae_lib._checks import check_float_tensor, check_positive_int
from vae_lib.checkpoint import register_model_class
from vae_lib.distributions import DiagonalGaussian
from vae_lib.models import Decoder, GaussianEncoder, LatentVariableModel, checked_prior, mlp_model_config
from vae_lib.observations import observation_model
from vae_lib.priors import Prior

__all__ = ["ConditionalVAE", "one_hot"]


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


@register_model_class
class ConditionalVAE(LatentVariableModel):
    """q(z|x, c) = N(mu(x, c), diag sigma^2(x, c)), p(x|z, c) from an MLP on ``[z, c]``, and a prior p(z).

    ``likelihood``, ``sigma``, ``levels`` and ``prior`` are those of :class:`vae_lib.VAE`. Every method
    takes the data ``x`` of shape ``(B, data_dim)`` with its condition ``c`` of shape ``(B, condition_dim)``,
    so ``vl.fit(model, (x, c))`` trains it with the default loss.
    """

    def __init__(
        self,
        data_dim: int,
        condition_dim: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        levels: int | None = None,
        prior: Prior | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = check_positive_int("data_dim", data_dim)
        self.condition_dim = check_positive_int("condition_dim", condition_dim)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.hidden_dims = tuple(hidden_dims)
        self.encoder = GaussianEncoder(data_dim + condition_dim, self.hidden_dims, latent_dim)
        observation = observation_model(likelihood, sigma, levels)
        self.decoder = Decoder(latent_dim + condition_dim, tuple(reversed(self.hidden_dims)), data_dim, observation)
        self.prior = checked_prior(prior, self.latent_dim)

    def _check_condition(self, c: Tensor, n_rows: int | None = None) -> Tensor:
        check_float_tensor("c", c, min_dim=2)
        if c.dim() != 2 or c.shape[1] != self.condition_dim:
            raise ValueError(f"c must have shape (B, {self.condition_dim}), got {tuple(c.shape)}")
        if n_rows is not None and c.shape[0] != n_rows:
            raise ValueError(f"c has {c.shape[0]} rows but x has {n_rows}; give one condition per example")
        return c

    def encode(self, x: Tensor, c: Tensor) -> DiagonalGaussian:
        """q(z|x, c) for each row; its ``mu`` and ``log_var`` are ``(B, latent_dim)``."""
        check_float_tensor("x", x, min_dim=2)
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"x must have shape (B, {self.data_dim}), got {tuple(x.shape)}")
        self._check_condition(c, x.shape[0])
        return self.encoder(torch.cat([x, c], dim=-1))

    def decode(self, z: Tensor, c: Tensor) -> Distribution:
        """p(x|z, c); ``z`` is ``(B, d)`` or ``(S, B, d)``, and every sample of a row shares its condition."""
        c = c.expand(*z.shape[:-1], c.shape[-1])
        return self.decoder(torch.cat([z, c], dim=-1))

    def check_pixels(self, x: Tensor, name: str = "x") -> None:
        self.decoder.observation.check_data(name, check_float_tensor(name, x, min_dim=2))

    def sample(
        self, c: Tensor, mean: bool = True, z: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """One image per row of ``c``: z ~ p(z) (or the given ``z``), then p(x|z, c)'s mean or a draw."""
        self._check_condition(c)
        if z is None:
            z = self.prior.sample(c.shape[0], generator).to(c.dtype)
        elif z.shape != (c.shape[0], self.latent_dim):
            raise ValueError(f"z must have shape ({c.shape[0]}, {self.latent_dim}) to match c, got {tuple(z.shape)}")
        return self._pictures(z, c, mean=mean, generator=generator)

    def config(self) -> dict[str, Any]:
        return mlp_model_config(self) | {"condition_dim": self.condition_dim}
