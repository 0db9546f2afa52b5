"""Every loss ``fit`` can minimise: the ELBO, the IWAE bound, the beta-weighted, annealed and free-bits ELBOs.

A loss function has the signature ``loss_fn(model, batch, epoch, generator) -> (loss, terms)``
(:data:`LossFn`): ``batch`` is the tuple of tensors of one minibatch (``(x,)``, or ``(x, c)`` for a
conditional model), ``epoch`` counts from 1, ``generator`` is the ``torch.Generator`` that every random
draw of the step must use, ``loss`` is the scalar to minimise and ``terms`` the :class:`~vae_lib.ELBOTerms`
per example to record. The terms are always the true ELBO's, so that a training history stays comparable
whatever is minimised. The losses here need a :class:`~vae_lib.LatentVariableModel` (such as ``vl.VAE``);
any other ``nn.Module`` trains with a loss function of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from vae_lib._checks import check_positive_float, check_positive_int
from vae_lib.distributions import DiagonalGaussian
from vae_lib.models import ForwardPass, LatentVariableModel
from vae_lib.objectives import ELBOTerms, elbo, elbo_terms, log_likelihood, weights_from_likelihood
from vae_lib.priors import StandardNormalPrior

__all__ = [
    "LossFn",
    "annealing_weight",
    "beta_elbo_loss",
    "elbo_loss",
    "free_bits_loss",
    "iwae_loss",
    "kl_annealing_loss",
    "negative_elbo_loss",
]

LossFn = Callable[[nn.Module, tuple[Tensor, ...], int, torch.Generator | None], tuple[Tensor, ELBOTerms]]
"""``loss_fn(model, batch, epoch, generator) -> (scalar loss to minimise, ELBO terms to record)``."""


def _require_latent_variable_model(model: nn.Module) -> None:
    if not isinstance(model, LatentVariableModel):
        raise TypeError(
            f"the losses of vae_lib (fit's default loss among them) need a vl.LatentVariableModel such as vl.VAE, "
            f"with encode, decode and a prior; got {type(model).__name__}. To train another nn.Module, pass "
            "loss_fn(model, batch, epoch, generator) returning (scalar loss, vl.ELBOTerms of the batch)"
        )


def require_model_for(loss_fn: LossFn, model: nn.Module) -> None:
    """Raise ``TypeError`` early when ``loss_fn`` is one of this module's losses and ``model`` cannot serve it."""
    if getattr(loss_fn, "__module__", None) == __name__:
        _require_latent_variable_model(model)


def forward_pass(
    model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator | None, n_samples: int = 1
) -> ForwardPass:
    """``model(*batch)``: q(z|x), draws z and p(x|z), for a :class:`~vae_lib.LatentVariableModel`."""
    _require_latent_variable_model(model)
    return model(*batch, n_samples=n_samples, generator=generator)


def negative_elbo_loss(terms: ELBOTerms, kl_weight: float = 1.0) -> Tensor:
    """The scalar minimised in training: ``mean over the batch of -(E_q[log p(x|z)] - kl_weight * KL)``.

    Terms are summed over pixels and latent dimensions (nats per example) and averaged over the batch, so
    the learning rate does not depend on the batch size. ``kl_weight = 1`` is the ELBO of :eq:`eq-elbo`;
    other values give the beta-weighted objective of :eq:`eq-beta-elbo`.
    """
    return -(terms.expected_log_likelihood - kl_weight * terms.kl).mean()


def _weighted_elbo_loss(
    model: nn.Module, batch: tuple[Tensor, ...], generator: torch.Generator | None, kl_weight: float
) -> tuple[Tensor, ELBOTerms]:
    q_z, z, p_x_given_z = forward_pass(model, batch, generator)
    terms = elbo(batch[0], q_z, z, p_x_given_z, model.prior)
    return negative_elbo_loss(terms, kl_weight), terms


def elbo_loss(
    model: nn.Module, batch: tuple[Tensor, ...], epoch: int, generator: torch.Generator | None = None
) -> tuple[Tensor, ELBOTerms]:
    """The default loss: the negative ELBO (:eq:`eq-elbo`) averaged over the batch."""
    return _weighted_elbo_loss(model, batch, generator, kl_weight=1.0)


def beta_elbo_loss(beta: float) -> LossFn:
    """The negative beta-weighted ELBO, :eq:`eq-beta-elbo`: ``-(E_q[log p(x|z)] - beta * KL)``, batch mean."""
    beta = check_positive_float("beta", beta)
    return lambda model, batch, epoch, generator=None: _weighted_elbo_loss(model, batch, generator, beta)


def annealing_weight(epoch: int, warmup_epochs: int) -> float:
    """The KL weight of :eq:`eq-kl-annealing` at an epoch (counted from 1): ``min(1, epoch / warmup_epochs)``."""
    epoch = check_positive_int("epoch", epoch)
    warmup_epochs = check_positive_int("warmup_epochs", warmup_epochs)
    return min(1.0, epoch / warmup_epochs)


def kl_annealing_loss(warmup_epochs: int, final_beta: float = 1.0) -> LossFn:
    """The negative ELBO with its KL weight raised linearly over ``warmup_epochs`` (:eq:`eq-kl-annealing`).

    The weight is ``final_beta * annealing_weight(epoch, warmup_epochs)``: from ``final_beta/warmup_epochs``
    at epoch 1 to ``final_beta`` (the plain negative ELBO when it is 1) from epoch ``warmup_epochs`` on.
    """
    warmup_epochs = check_positive_int("warmup_epochs", warmup_epochs)
    final_beta = check_positive_float("final_beta", final_beta)

    def loss_fn(model, batch, epoch, generator=None):
        weight = final_beta * annealing_weight(epoch, warmup_epochs)
        return _weighted_elbo_loss(model, batch, generator, weight)

    return loss_fn


def free_bits_loss(lambda_per_dim: float, beta: float = 1.0) -> LossFn:
    """The free-bits objective, :eq:`eq-free-bits`: ``-E_q[log p(x|z)] + beta * sum_j max(lambda, KL_j)``.

    ``KL_j`` is dimension j's KL averaged over the batch, so a dimension whose average KL is below
    ``lambda_per_dim`` nats receives no gradient pushing it towards the prior. ``beta`` weights the KL
    as in :func:`beta_elbo_loss` (1 for the ELBO). The KL per dimension needs a factorized prior: the
    standard normal, with a diagonal Gaussian q.
    """
    lambda_per_dim = check_positive_float("lambda_per_dim", lambda_per_dim)
    beta = check_positive_float("beta", beta)

    def loss_fn(model, batch, epoch, generator=None):
        q_z, z, p_x_given_z = forward_pass(model, batch, generator)
        if not (isinstance(model.prior, StandardNormalPrior) and isinstance(q_z, DiagonalGaussian)):
            raise TypeError(
                "free_bits_loss needs the KL per latent dimension: a standard normal prior and a diagonal q"
            )
        terms = elbo(batch[0], q_z, z, p_x_given_z, model.prior)
        kl_per_dim = q_z.kl_per_dimension().mean(0)  # (d,)
        loss = -terms.expected_log_likelihood.mean() + beta * torch.clamp(kl_per_dim, min=lambda_per_dim).sum()
        return loss, terms

    return loss_fn


def iwae_loss(k: int) -> LossFn:
    """A ``loss_fn`` for ``vl.fit`` that maximises the ``k``-sample IWAE bound (:eq:`eq-iwae-bound`).

    ``vl.fit(model, x, loss_fn=iwae_loss(k=5))`` trains on ``-mean(bound)`` (with ``k = 1`` this is the
    negative ELBO). The terms it returns for the history are the ELBO's, estimated from the same ``k``
    draws, so ELBO curves of IWAE and VAE training can be compared directly.
    """
    k = check_positive_int("k", k)

    def loss_fn(model, batch, epoch, generator=None):
        x = batch[0]
        q_z, z, p_x_given_z = forward_pass(model, batch, generator, n_samples=k)  # z: (k, B, d)
        log_p_x_given_z = log_likelihood(x, z, p_x_given_z)  # (k, B)
        log_weights = weights_from_likelihood(log_p_x_given_z, q_z, z, model.prior)
        bound = torch.logsumexp(log_weights, dim=0) - math.log(k)  # (B,)
        return -bound.mean(), elbo_terms(log_p_x_given_z, model.prior.kl(q_z, z))

    loss_fn.__name__ = loss_fn.__qualname__ = f"iwae_loss_k{k}"
    return loss_fn
