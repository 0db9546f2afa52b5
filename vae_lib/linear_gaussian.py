"""A linear Gaussian latent variable model (probabilistic PCA), where everything is exact.

z ~ N(0, I_d),  x | z ~ N(W z + b, sigma^2 I_D)   (the notes' eqs. 1-2 with a linear f).

Then p(x) = N(b, W W^T + sigma^2 I) and p(z|x) = N(M^-1 W^T (x - b), sigma^2 M^-1) with
M = W^T W + sigma^2 I (Tipping and Bishop, 1999). The chapters use it as ground truth: every estimator of
log p(x) and every approximate posterior can be checked against the exact answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vae_lib._checks import check_float_tensor, check_positive_float, check_positive_int, check_same_shape
from vae_lib.distributions import gaussian_log_likelihood
from vae_lib.observations import GaussianPixels

__all__ = ["LinearGaussianModel"]


@dataclass(frozen=True)
class LinearGaussianModel:
    """z ~ N(0, I), x|z ~ N(weight @ z + bias, sigma^2 I). ``weight`` is ``(D, d)``, ``bias`` is ``(D,)``."""

    weight: Tensor
    bias: Tensor
    sigma: float

    def __post_init__(self) -> None:
        check_float_tensor("weight", self.weight, min_dim=2)
        check_float_tensor("bias", self.bias)
        check_positive_float("sigma", self.sigma)
        if self.weight.dim() != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError(
                f"weight must be (D, d) and bias (D,), got {tuple(self.weight.shape)} and {tuple(self.bias.shape)}"
            )

    @classmethod
    def random(
        cls, data_dim: int, latent_dim: int, sigma: float = 0.5, seed: int = 0, diagonal_posterior: bool = True
    ) -> LinearGaussianModel:
        """A random model in float64. With ``diagonal_posterior`` the columns of W are orthogonal, so p(z|x)
        has a diagonal covariance and a diagonal Gaussian q can equal it exactly."""
        data_dim = check_positive_int("data_dim", data_dim)
        latent_dim = check_positive_int("latent_dim", latent_dim)
        if latent_dim > data_dim:
            raise ValueError(f"latent_dim ({latent_dim}) must not exceed data_dim ({data_dim})")
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(data_dim, latent_dim, generator=generator, dtype=torch.float64)
        if diagonal_posterior:
            orthonormal, _ = torch.linalg.qr(weight)
            scales = torch.linspace(2.0, 0.5, latent_dim, dtype=torch.float64)
            weight = orthonormal * scales
        bias = 0.5 * torch.randn(data_dim, generator=generator, dtype=torch.float64)
        return cls(weight, bias, float(sigma))

    @property
    def data_dim(self) -> int:
        return self.weight.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    def to(self, device: torch.device | str) -> LinearGaussianModel:
        """The same model with its tensors on ``device``; it samples there too (with a generator of that device)."""
        return LinearGaussianModel(self.weight.to(device), self.bias.to(device), self.sigma)

    def _identity(self, size: int) -> Tensor:
        return torch.eye(size, dtype=self.weight.dtype, device=self.weight.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` pairs (x, z) from the joint; returns ``(x, z)`` of shapes ``(n, D)``, ``(n, d)``."""
        n = check_positive_int("n", n)
        like = {"dtype": self.weight.dtype, "device": self.weight.device}
        z = torch.randn(n, self.latent_dim, generator=generator, **like)
        noise = torch.randn(n, self.data_dim, generator=generator, **like)
        return z @ self.weight.T + self.bias + self.sigma * noise, z

    def decode(self, z: Tensor) -> GaussianPixels:
        """p(x|z) = N(W z + b, sigma^2 I) as a distribution, for the objectives of :mod:`vae_lib.objectives`."""
        check_float_tensor("z", z)
        return GaussianPixels(z @ self.weight.T + self.bias, self.sigma)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) = log N(x | W z + b, sigma^2 I); ``z`` may carry leading sample axes."""
        return gaussian_log_likelihood(x, z @ self.weight.T + self.bias, self.sigma)

    def expected_log_likelihood(self, x: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
        """E_q[log p(x|z)] for q = N(mu, diag exp(log_var)), exactly: the first term of the ELBO, :eq:`eq-elbo`.

        Book :eq:`eq-linear-expected-log-likelihood`: the squared error's expectation is
        ``||x - W mu - b||^2 + sum_j exp(log_var_j) ||W[:, j]||^2``. Shapes: ``x`` ``(B, D)``, ``mu`` and
        ``log_var`` ``(B, d)``; returns ``(B,)``.
        """
        check_float_tensor("x", x, min_dim=2)
        check_float_tensor("mu", mu, min_dim=2)
        check_float_tensor("log_var", log_var, min_dim=2)
        check_same_shape("mu", mu, "log_var", log_var)
        if mu.shape[-1] != self.latent_dim or x.shape[-1] != self.data_dim or mu.shape[:-1] != x.shape[:-1]:
            raise ValueError(
                f"x must be (B, {self.data_dim}) and mu, log_var (B, {self.latent_dim}); got {tuple(x.shape)} and {tuple(mu.shape)}"
            )
        spread = (torch.exp(log_var) * self.weight.pow(2).sum(0)).sum(-1)  # trace(W diag(s^2) W^T)
        mean_term = gaussian_log_likelihood(x, mu @ self.weight.T + self.bias, self.sigma)
        return mean_term - spread / (2.0 * self.sigma**2)

    def marginal(self) -> torch.distributions.MultivariateNormal:
        """p(x) = N(b, W W^T + sigma^2 I), the integral of the notes' eq. (1) in closed form."""
        covariance = self.weight @ self.weight.T + self.sigma**2 * self._identity(self.data_dim)
        return torch.distributions.MultivariateNormal(self.bias, covariance_matrix=covariance)

    def log_marginal(self, x: Tensor) -> Tensor:
        """The exact log p(x) of each row of ``x``."""
        check_float_tensor("x", x)
        return self.marginal().log_prob(x)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The exact posterior p(z|x): its means ``(B, d)`` and its covariance ``(d, d)`` (the same for all x)."""
        check_float_tensor("x", x, min_dim=2)
        m = self.weight.T @ self.weight + self.sigma**2 * self._identity(self.latent_dim)
        m_inverse = torch.linalg.inv(m)
        means = (x - self.bias) @ self.weight @ m_inverse.T
        return means, self.sigma**2 * m_inverse

    def diagonal_posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The exact posterior as ``(mu, log_var)``, for models whose posterior covariance is diagonal."""
        means, covariance = self.posterior(x)
        off_diagonal = covariance - torch.diag(torch.diagonal(covariance))
        if float(off_diagonal.abs().max()) > 1e-9 * float(covariance.abs().max()):
            raise ValueError("this model's posterior covariance is not diagonal; build it with diagonal_posterior=True")
        log_var = torch.log(torch.diagonal(covariance)).expand_as(means)
        return means, log_var
