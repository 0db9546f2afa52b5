"""The prior p(z) as an object: the standard normal of the notes, and a learnable mixture of Gaussians.

A prior has ``log_prob(z)``, ``sample(n, generator)`` and ``kl(q_z, z)``, the KL term of the ELBO. The
models and the objectives take one (``vl.VAE(..., prior=vl.MixturePrior(latent_dim, 10))``) instead of
writing N(0, I) into their formulas. The KL is in closed form for the standard normal prior and a
diagonal Gaussian q (:eq:`eq-kl-standard-normal`); for any other pair it is the Monte Carlo estimate
``mean over samples of log q(z|x) - log p(z)`` from the same draws z that estimate the reconstruction term.
A prior is a ``torch.nn.Module``, so a learnable one trains with the model and is saved with its weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vae_lib._checks import check_positive_int
from vae_lib.distributions import DiagonalGaussian, _diagonal_gaussian_log_prob, _standard_normal_log_prob

__all__ = ["MixturePrior", "Prior", "StandardNormalPrior", "prior_from_config"]


class Prior(nn.Module):
    """p(z) over ``latent_dim`` dimensions. Subclasses define ``log_prob`` and ``sample``."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z), summed over the last axis: ``(..., d) -> (...)``."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws z ~ p(z), shape ``(n, d)``, on the prior's device."""
        raise NotImplementedError

    def kl(self, q_z: torch.distributions.Distribution, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)) per example, shape ``(B,)``, by Monte Carlo over the draws ``z`` ``(S, B, d)`` of q."""
        return (q_z.log_prob(z) - self.log_prob(z)).mean(0)

    def config(self) -> dict[str, Any]:
        """What rebuilds this prior with :func:`prior_from_config` (its weights are in the model's state)."""
        return {"class": type(self).__name__}


class StandardNormalPrior(Prior):
    """p(z) = N(0, I), the prior of the notes (:eq:`eq-marginal-likelihood`)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        # Carries the device and dtype that samples are drawn on; not saved (it is always zeros).
        self.register_buffer("origin", torch.zeros(self.latent_dim), persistent=False)

    def log_prob(self, z: Tensor) -> Tensor:
        return _standard_normal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_positive_int("n", n)
        return torch.randn(n, self.latent_dim, generator=generator, dtype=self.origin.dtype, device=self.origin.device)

    def kl(self, q_z: torch.distributions.Distribution, z: Tensor) -> Tensor:
        """In closed form for a diagonal Gaussian q (:eq:`eq-kl-standard-normal`), else by Monte Carlo."""
        if isinstance(q_z, DiagonalGaussian):
            return q_z.kl_per_dimension().sum(-1)
        return super().kl(q_z, z)


class MixturePrior(Prior):
    """p(z) = sum_k pi_k N(z | m_k, diag exp(s_k)): a learnable mixture of ``n_components`` diagonal Gaussians.

    The weights pi = softmax(logits), the means m_k and the log-variances s_k are parameters, trained with
    the model. The means start as draws from N(0, I) (from PyTorch's global generator, like a layer's
    weights), the variances at 1 and the weights equal. Its KL term has no closed form: the ELBO estimates
    it by Monte Carlo.
    """

    def __init__(self, latent_dim: int, n_components: int = 10) -> None:
        super().__init__(latent_dim)
        self.n_components = check_positive_int("n_components", n_components)
        self.means = nn.Parameter(torch.randn(self.n_components, self.latent_dim))
        self.log_vars = nn.Parameter(torch.zeros(self.n_components, self.latent_dim))
        self.logits = nn.Parameter(torch.zeros(self.n_components))

    def log_prob(self, z: Tensor) -> Tensor:
        per_component = _diagonal_gaussian_log_prob(z.unsqueeze(-2), self.means, self.log_vars)  # (..., K)
        return torch.logsumexp(per_component + torch.log_softmax(self.logits, -1), dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_positive_int("n", n)
        with torch.no_grad():
            component = torch.multinomial(torch.softmax(self.logits, -1), n, replacement=True, generator=generator)
            eps = torch.randn(n, self.latent_dim, generator=generator, dtype=self.means.dtype, device=self.means.device)
            return self.means[component] + torch.exp(0.5 * self.log_vars[component]) * eps

    def config(self) -> dict[str, Any]:
        return super().config() | {"n_components": self.n_components}


PRIOR_CLASSES: dict[str, type[Prior]] = {"StandardNormalPrior": StandardNormalPrior, "MixturePrior": MixturePrior}


def prior_from_config(config: dict[str, Any] | None, latent_dim: int) -> Prior:
    """The prior a model's config names (``None``: the standard normal, as in checkpoints older than priors)."""
    if config is None:
        return StandardNormalPrior(latent_dim)
    name = config.get("class")
    if name not in PRIOR_CLASSES:
        raise ValueError(f"unknown prior {name!r}; vae_lib knows {sorted(PRIOR_CLASSES)}")
    options = {key: value for key, value in config.items() if key != "class"}
    return PRIOR_CLASSES[name](latent_dim, **options)
