"""The ELBO, the importance-weighted estimate of log p(x), and the IWAE training loss.

Both take the encoder's output (``mu``, ``log_var`` of q(z|x)) and a function ``log_likelihood(x, z)``
that returns log p(x|z), so they serve a neural VAE and the exact linear Gaussian model alike.
``log_likelihood`` receives ``x`` of shape ``(B, D)`` and ``z`` of shape ``(S, B, d)`` and returns
``(S, B)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import Module

from vae_lib._checks import check_float_tensor, check_positive_int, check_same_shape
from vae_lib.distributions import (
    diagonal_gaussian_log_prob,
    kl_standard_normal,
    reparameterize,
    standard_normal_log_prob,
)

LogLikelihoodFn = Callable[[Tensor, Tensor], Tensor]


class ELBOTerms(NamedTuple):
    """The ELBO of one batch, per example, with its two terms (each of shape ``(B,)``, in nats)."""

    elbo: Tensor
    expected_log_likelihood: Tensor
    kl: Tensor


def _check_encoder_output(x: Tensor, mu: Tensor, log_var: Tensor) -> None:
    check_float_tensor("x", x, min_dim=2)
    check_float_tensor("mu", mu, min_dim=2)
    check_float_tensor("log_var", log_var, min_dim=2)
    check_same_shape("mu", mu, "log_var", log_var)
    if mu.shape[:-1] != x.shape[:-1]:
        raise ValueError(f"x has batch shape {tuple(x.shape[:-1])} but mu has {tuple(mu.shape[:-1])}; they must match")


def _call_log_likelihood(log_likelihood: LogLikelihoodFn, x: Tensor, z: Tensor) -> Tensor:
    values = log_likelihood(x, z)
    if values.shape != z.shape[:-1]:
        raise ValueError(f"log_likelihood(x, z) must return shape {tuple(z.shape[:-1])}, got {tuple(values.shape)}")
    return values


def elbo(x: Tensor, mu: Tensor, log_var: Tensor, log_likelihood: LogLikelihoodFn, n_samples: int = 1) -> ELBOTerms:
    """The ELBO per example, the right-hand side of the notes' eq. (5), book :eq:`eq-elbo`.

    ``E_q[log p(x|z)]`` is a Monte Carlo average over ``n_samples`` reparameterized draws
    (:eq:`eq-elbo-monte-carlo`); the KL to N(0, I) is in closed form (:eq:`eq-kl-standard-normal`).
    """
    _check_encoder_output(x, mu, log_var)
    n_samples = check_positive_int("n_samples", n_samples)
    z = reparameterize(mu, log_var, n_samples)  # (S, B, d)
    expected_log_likelihood = _call_log_likelihood(log_likelihood, x, z).mean(0)  # (B,)
    kl = kl_standard_normal(mu, log_var)  # (B,)
    return ELBOTerms(expected_log_likelihood - kl, expected_log_likelihood, kl)


def _log_importance_weights(
    x: Tensor, z: Tensor, mu: Tensor, log_var: Tensor, log_likelihood: LogLikelihoodFn
) -> tuple[Tensor, Tensor]:
    """``log p(x|z) + log p(z) - log q(z|x)`` for samples ``z`` of shape ``(S, B, d)``, and ``log p(x|z)``."""
    log_p_x_given_z = _call_log_likelihood(log_likelihood, x, z)  # (S, B)
    return log_p_x_given_z + standard_normal_log_prob(z) - diagonal_gaussian_log_prob(z, mu, log_var), log_p_x_given_z


def importance_weighted_bound(
    x: Tensor,
    mu: Tensor,
    log_var: Tensor,
    log_likelihood: LogLikelihoodFn,
    k: int,
    chunk_size: int = 256,
) -> Tensor:
    """The importance-sampled estimate of log p(x) with ``k`` samples from q (the IWAE bound), per example.

    Book :eq:`eq-iwae-bound`: ``log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)``, computed with logsumexp so
    that weights of -1000 nats do not underflow. It equals the ELBO's expectation at ``k = 1`` and rises
    to log p(x) as ``k`` grows. Samples are drawn ``chunk_size`` at a time to bound memory.
    """
    _check_encoder_output(x, mu, log_var)
    k = check_positive_int("k", k)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    log_weight_chunks = []
    for start in range(0, k, chunk_size):
        z = reparameterize(mu, log_var, min(chunk_size, k - start))  # (S, B, d)
        log_weight_chunks.append(_log_importance_weights(x, z, mu, log_var, log_likelihood)[0])
    log_weights = torch.cat(log_weight_chunks, dim=0)  # (k, B)
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


def negative_elbo_loss(terms: ELBOTerms, kl_weight: float = 1.0) -> Tensor:
    """The scalar minimised in training: ``mean over the batch of -(E_q[log p(x|z)] - kl_weight * KL)``.

    Terms are summed over pixels and latent dimensions (nats per example) and averaged over the batch, so
    the learning rate does not depend on the batch size. ``kl_weight = 1`` is the ELBO of :eq:`eq-elbo`;
    other values give the beta-weighted objective of the regularization chapter.
    """
    return -(terms.expected_log_likelihood - kl_weight * terms.kl).mean()


def iwae_loss(k: int) -> Callable[[Module, tuple[Tensor, ...], int], tuple[Tensor, ELBOTerms]]:
    """A ``loss_fn`` for ``vl.fit`` that maximises the ``k``-sample IWAE bound (:eq:`eq-iwae-bound`).

    ``vl.fit(model, x, loss_fn=iwae_loss(k=5))`` trains on ``-mean(bound)`` (with ``k = 1`` this is the
    negative ELBO). The terms it returns for the history are the ELBO's, estimated from the same ``k``
    draws, so ELBO curves of IWAE and VAE training can be compared directly. ``model`` needs an
    ``encoder(x) -> (mu, log_var)`` and a ``decoder.log_likelihood(x, z)``, as ``vl.VAE`` has.
    """
    k = check_positive_int("k", k)

    def loss_fn(model: Module, batch: tuple[Tensor, ...], epoch: int) -> tuple[Tensor, ELBOTerms]:
        x = batch[0]
        mu, log_var = model.encoder(x)
        _check_encoder_output(x, mu, log_var)
        z = reparameterize(mu, log_var, k)  # (k, B, d)
        log_weights, log_p_x_given_z = _log_importance_weights(x, z, mu, log_var, model.decoder.log_likelihood)
        bound = torch.logsumexp(log_weights, dim=0) - math.log(k)  # (B,)
        expected_log_likelihood, kl = log_p_x_given_z.mean(0), kl_standard_normal(mu, log_var)
        return -bound.mean(), ELBOTerms(expected_log_likelihood - kl, expected_log_likelihood, kl)

    loss_fn.__name__ = loss_fn.__qualname__ = f"iwae_loss_k{k}"
    return loss_fn
