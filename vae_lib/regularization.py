"""Reweighting the KL term, and measuring how much of the latent code a model uses (book chapter 8).

The ``*_loss`` factories return loss functions for ``vl.fit(model, data, loss_fn=...)``: each has the
signature ``loss_fn(model, batch, epoch) -> (scalar loss, ELBOTerms)``, and the terms it returns are always
the true ELBO's, so a training history stays comparable whatever is minimised. A model must provide
``elbo(*batch)``; :func:`free_bits_loss` and :func:`active_units` also need q's parameters, from
``model.encode(*batch)`` where the model has it (a conditional VAE) or else ``model.encoder(batch[0])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vae_lib._checks import check_positive_float, check_positive_int
from vae_lib.distributions import kl_per_dimension
from vae_lib.objectives import ELBOTerms, negative_elbo_loss
from vae_lib.training import LossFn


def _batch(data: Tensor | Sequence[Tensor]) -> tuple[Tensor, ...]:
    return (data,) if isinstance(data, Tensor) else tuple(data)


def posterior_parameters(model: nn.Module, data: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """``(mu, log_var)`` of q(z|...) for a batch: ``model.encode(*batch)`` or ``model.encoder(batch[0])``."""
    batch = _batch(data)
    if hasattr(model, "encode"):
        return model.encode(*batch)
    if hasattr(model, "encoder"):
        return model.encoder(batch[0])
    raise TypeError(f"model ({type(model).__name__}) needs an encode(*batch) method or an encoder attribute")


def beta_elbo_loss(beta: float) -> LossFn:
    """The negative beta-weighted ELBO, :eq:`eq-beta-elbo`: ``-(E_q[log p(x|z)] - beta * KL)``, batch mean."""
    beta = check_positive_float("beta", beta)

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], epoch: int) -> tuple[Tensor, ELBOTerms]:
        terms = model.elbo(*batch)
        return negative_elbo_loss(terms, kl_weight=beta), terms

    return loss_fn


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

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], epoch: int) -> tuple[Tensor, ELBOTerms]:
        terms = model.elbo(*batch)
        weight = final_beta * annealing_weight(epoch, warmup_epochs)
        return negative_elbo_loss(terms, kl_weight=weight), terms

    return loss_fn


def free_bits_loss(lambda_per_dim: float, beta: float = 1.0) -> LossFn:
    """The free-bits objective, :eq:`eq-free-bits`: ``-E_q[log p(x|z)] + beta * sum_j max(lambda, KL_j)``.

    ``KL_j`` is dimension j's KL averaged over the batch, so a dimension whose average KL is below
    ``lambda_per_dim`` nats receives no gradient pushing it towards the prior. ``beta`` weights the KL
    as in :func:`beta_elbo_loss` (1 for the ELBO).
    """
    lambda_per_dim = check_positive_float("lambda_per_dim", lambda_per_dim)
    beta = check_positive_float("beta", beta)

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], epoch: int) -> tuple[Tensor, ELBOTerms]:
        terms = model.elbo(*batch)
        mu, log_var = posterior_parameters(model, batch)
        kl_per_dim = kl_per_dimension(mu, log_var).mean(0)  # (d,)
        loss = -terms.expected_log_likelihood.mean() + beta * torch.clamp(kl_per_dim, min=lambda_per_dim).sum()
        return loss, terms

    return loss_fn


@torch.no_grad()
def latent_activity(model: nn.Module, data: Tensor | Sequence[Tensor]) -> Tensor:
    """``Cov_x(E_q[z_j])`` for each latent dimension j, shape ``(d,)``: the activity of :eq:`eq-active-units`."""
    mu, _ = posterior_parameters(model, data)
    if mu.shape[0] < 2:
        raise ValueError(f"latent activity is a variance over examples: give at least 2, got {mu.shape[0]}")
    return mu.double().var(dim=0, unbiased=False).to(mu.dtype)


def active_units(model: nn.Module, data: Tensor | Sequence[Tensor], threshold: float = 0.01) -> int:
    """The number of latent dimensions whose activity exceeds ``threshold`` (:eq:`eq-active-units`)."""
    threshold = check_positive_float("threshold", threshold)
    return int((latent_activity(model, data) > threshold).sum())
