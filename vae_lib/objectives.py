"""The ELBO and the importance-weighted estimate of log p(x), from distributions and samples.

As in the distrax and flax VAE examples, the objectives never call a model: they take the encoder's
q(z|x) (a distribution), draws ``z`` from it, the decoder's p(x|z) at those draws (a distribution), and
the prior (:mod:`vae_lib.priors`). They serve a neural VAE and the exact linear Gaussian model alike.
Shapes: ``x`` is ``(B, D)`` (or any leading axes), ``z`` is ``(S, B, d)``, and p(x|z) has batch shape
``(S, B)``, so that ``p_x_given_z.log_prob(x)`` is ``(S, B)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import Distribution

from vae_lib._checks import check_float_tensor, check_positive_int
from vae_lib.priors import Prior, StandardNormalPrior

__all__ = ["DEFAULT_MEMORY_BUDGET", "ELBOTerms", "elbo", "importance_weighted_bound", "log_importance_weights"]

DEFAULT_MEMORY_BUDGET = 2**28
"""Bytes the importance-sampled estimate may spend on decoded samples at a time (256 MiB)."""
# log_prob's temporaries (the products, the softplus, the sum) take a few times the decoder's output.
_MEMORY_PER_OUTPUT = 4


class ELBOTerms(NamedTuple):
    """The ELBO of one batch, per example, with its two terms (each of shape ``(B,)``, in nats)."""

    elbo: Tensor
    expected_log_likelihood: Tensor
    kl: Tensor


def _prior_or_standard(prior: Prior | None, z: Tensor) -> Prior:
    return prior if prior is not None else StandardNormalPrior(z.shape[-1]).to(z.device)


def log_likelihood(x: Tensor, z: Tensor, p_x_given_z: Distribution) -> Tensor:
    """``p_x_given_z.log_prob(x)``, checked to have one value per draw and example: shape ``z.shape[:-1]``."""
    values = p_x_given_z.log_prob(x)
    if values.shape != z.shape[:-1]:
        raise ValueError(
            f"p_x_given_z.log_prob(x) must return shape {tuple(z.shape[:-1])} (samples, examples), got {tuple(values.shape)}"
        )
    return values


def elbo_terms(log_p_x_given_z: Tensor, kl: Tensor) -> ELBOTerms:
    """The ELBO's terms from ``log p(x|z)`` of each draw ``(S, B)`` and the KL ``(B,)``."""
    expected_log_likelihood = log_p_x_given_z.mean(0)  # (B,)
    return ELBOTerms(expected_log_likelihood - kl, expected_log_likelihood, kl)


def elbo(x: Tensor, q_z: Distribution, z: Tensor, p_x_given_z: Distribution, prior: Prior | None = None) -> ELBOTerms:
    """The ELBO per example, the right-hand side of the notes' eq. (5), book :eq:`eq-elbo`.

    ``E_q[log p(x|z)]`` is the Monte Carlo average of ``log p(x|z)`` over the ``S`` draws ``z`` ``(S, B, d)``
    of ``q_z`` (:eq:`eq-elbo-monte-carlo`). The KL to the prior (default N(0, I)) is in closed form for the
    standard normal prior and a :class:`~vae_lib.DiagonalGaussian` q (:eq:`eq-kl-standard-normal`), and the
    Monte Carlo average of ``log q(z|x) - log p(z)`` over the same draws otherwise.
    """
    check_float_tensor("x", x)
    check_float_tensor("z", z, min_dim=2)
    prior = _prior_or_standard(prior, z)
    return elbo_terms(log_likelihood(x, z, p_x_given_z), prior.kl(q_z, z))


def weights_from_likelihood(log_p_x_given_z: Tensor, q_z: Distribution, z: Tensor, prior: Prior) -> Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` from ``log p(x|z)`` of each draw, shape ``(S, B)``."""
    return log_p_x_given_z + prior.log_prob(z) - q_z.log_prob(z)


def log_importance_weights(
    x: Tensor, q_z: Distribution, z: Tensor, p_x_given_z: Distribution, prior: Prior | None = None
) -> Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` for each draw and example, shape ``(S, B)`` (:eq:`eq-iwae-bound`)."""
    return weights_from_likelihood(log_likelihood(x, z, p_x_given_z), q_z, z, _prior_or_standard(prior, z))


def samples_per_chunk(bytes_per_sample: int, k: int, memory_budget: int) -> int:
    """How many of ``k`` samples fit in ``memory_budget`` bytes at ``bytes_per_sample`` each (at least one)."""
    return max(1, min(k, memory_budget // max(1, _MEMORY_PER_OUTPUT * bytes_per_sample)))


def importance_weighted_bound(
    x: Tensor,
    q_z: Distribution,
    decode: Callable[[Tensor], Distribution],
    k: int,
    *,
    prior: Prior | None = None,
    generator: torch.Generator | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Tensor:
    """The importance-sampled estimate of log p(x) with ``k`` samples from q (the IWAE bound), per example.

    Book :eq:`eq-iwae-bound`: ``log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)``, with ``decode(z)`` giving
    p(x|z) for draws ``z`` ``(S, B, d)``. Computed with logsumexp so that weights of -1000 nats do not
    underflow; it equals the ELBO's expectation at ``k = 1`` and rises to log p(x) as ``k`` grows.

    Samples are drawn in chunks whose decoded distributions take at most about ``memory_budget`` bytes
    (measured on the first draw), and each chunk is reduced to one logsumexp per example before the next,
    so memory does not grow with ``k``. It does grow with the number of rows of ``x``: one draw for every
    row is the smallest chunk. To bound it whatever the number of images, split ``x`` into rows, as the
    models' ``importance_log_likelihood`` does. On the CPU the chunks' draws equal one draw of all ``k``
    from the same generator; on a GPU they do not (CUDA's generator advances by whole blocks per call).
    """
    check_float_tensor("x", x)
    k = check_positive_int("k", k)
    memory_budget = check_positive_int("memory_budget", memory_budget)
    total, drawn, chunk = None, 0, 1
    while drawn < k:
        z = q_z.rsample((min(chunk, k - drawn),), generator=generator)  # (S, B, d)
        p_x_given_z = decode(z)
        chunk_total = torch.logsumexp(log_importance_weights(x, q_z, z, p_x_given_z, prior), dim=0)  # (B,)
        total = chunk_total if total is None else torch.logaddexp(total, chunk_total)
        if drawn == 0:
            chunk = samples_per_chunk(distribution_bytes(p_x_given_z), k, memory_budget)
        drawn += z.shape[0]
    return total - math.log(k)


def distribution_bytes(distribution: object) -> int:
    """Bytes of memory held by the tensors of a distribution object (through ``base_dist``), each storage once."""
    storages: dict[int, int] = {}
    while distribution is not None:
        for value in vars(distribution).values():
            if isinstance(value, Tensor):  # an expanded scalar holds one number, not one per entry
                storage = value.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        distribution = getattr(distribution, "base_dist", None)
    return sum(storages.values())
