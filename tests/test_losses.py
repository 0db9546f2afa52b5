"""The losses (beta-weighting, KL annealing, free bits), the KL per dimension, and active units."""

import pytest
import torch

import vae_lib as vl


def make_vae() -> vl.VAE:
    return vl.VAE(data_dim=10, latent_dim=3, hidden_dims=(8,))


def test_kl_per_dimension_sums_to_the_kl() -> None:
    mu, log_var = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    per_dim = vl.kl_per_dimension(mu, log_var)
    assert per_dim.shape == (6, 4)
    torch.testing.assert_close(per_dim.sum(-1), vl.kl_standard_normal(mu, log_var))
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * log_var)), torch.distributions.Normal(0.0, 1.0)
    )
    torch.testing.assert_close(per_dim, reference)
    with pytest.raises(ValueError, match="mu has shape"):
        vl.kl_per_dimension(mu, log_var[:, :2])


def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def test_every_elbo_loss_is_the_negative_elbo_with_its_kl_weight() -> None:
    model, x = make_vae(), torch.bernoulli(torch.full((5, 10), 0.5))
    terms = model.elbo(x, generator=seeded())
    for loss_fn, weight in ((vl.elbo_loss, 1.0), (vl.beta_elbo_loss(4.0), 4.0), (vl.kl_annealing_loss(4), 0.5)):
        loss, loss_terms = loss_fn(model, (x,), 2, seeded())
        torch.testing.assert_close(loss, -(terms.expected_log_likelihood - weight * terms.kl).mean())
        for mine, reference in zip(loss_terms, terms):
            torch.testing.assert_close(mine, reference)
    with pytest.raises(ValueError, match="beta"):
        vl.beta_elbo_loss(0.0)


def test_annealing_weight_schedule() -> None:
    weights = [vl.annealing_weight(epoch, 4) for epoch in range(1, 8)]
    assert weights == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_epochs"):
        vl.kl_annealing_loss(0)


def test_free_bits_loss_equals_the_formula_by_hand() -> None:
    model, x = make_vae(), torch.bernoulli(torch.full((7, 10), 0.5))
    with torch.no_grad():  # make dimension 0 carry much KL and the others little
        model.encoder.body[-1].bias[0] = 3.0
    loss, terms = vl.free_bits_loss(0.5)(model, (x,), 1, seeded())
    q_z = model.encode(x)
    mu, log_var = q_z.mu, q_z.log_var
    kl_j = (0.5 * (mu**2 + log_var.exp() - 1 - log_var)).mean(0)
    assert kl_j[0] > 0.5 and (kl_j < 0.5).any(), "the test needs dimensions on both sides of lambda"
    by_hand = -terms.expected_log_likelihood.mean() + torch.where(kl_j > 0.5, kl_j, torch.full_like(kl_j, 0.5)).sum()
    torch.testing.assert_close(loss, by_hand)
    torch.testing.assert_close(terms.kl, vl.kl_standard_normal(mu, log_var))
    # dimensions under lambda get no gradient from the KL term
    mu_leaf = mu.detach().requires_grad_()
    kl = torch.clamp(vl.kl_per_dimension(mu_leaf, log_var.detach()).mean(0), min=0.5).sum()
    kl.backward()
    assert torch.all(mu_leaf.grad[:, kl_j < 0.5] == 0) and torch.any(mu_leaf.grad[:, 0] != 0)
    with pytest.raises(TypeError, match="standard normal prior"):
        vl.free_bits_loss(0.5)(vl.VAE(10, 3, (8,), prior=vl.MixturePrior(3)), (x,), 1, seeded())


def hand_made_vae() -> vl.VAE:
    """An encoder whose mean is z = (x_0, 0.05 x_1, 0): one clearly active unit, one below 0.01, one dead."""
    model = vl.VAE(data_dim=4, latent_dim=3, hidden_dims=(4,))
    first, last = model.encoder.body[0], model.encoder.body[-1]
    with torch.no_grad():
        first.weight.copy_(torch.eye(4))
        first.bias.zero_()
        last.weight.zero_()
        last.bias.zero_()
        last.weight[0, 0] = 1.0
        last.weight[1, 1] = 0.05
    return model


def test_active_units_on_a_hand_made_encoder() -> None:
    model = hand_made_vae()
    x = torch.bernoulli(torch.full((2000, 4), 0.5, dtype=torch.float32), generator=torch.Generator().manual_seed(0))
    activity = vl.latent_activity(model, x)
    expected = torch.stack([x[:, 0].var(unbiased=False), (0.05 * x[:, 1]).var(unbiased=False), torch.tensor(0.0)])
    torch.testing.assert_close(activity, expected)
    assert vl.active_units(model, x) == 1
    assert vl.active_units(model, x, threshold=1e-4) == 2
    with pytest.raises(ValueError, match="at least 2"):
        vl.latent_activity(model, x[:1])


def test_active_units_of_a_conditional_model_uses_its_condition() -> None:
    model = vl.ConditionalVAE(6, 2, 3, (8,))
    x, c = torch.rand(50, 6), torch.randn(50, 2)
    assert vl.latent_activity(model, (x, c)).shape == (3,)
    loss, terms = vl.free_bits_loss(0.1)(model, (x, c), 1, seeded())
    assert loss.dim() == 0 and terms.kl.shape == (50,)


def test_fit_runs_with_each_loss() -> None:
    x = torch.bernoulli(torch.full((40, 10), 0.5))
    for loss_fn in (vl.beta_elbo_loss(2.0), vl.kl_annealing_loss(3), vl.free_bits_loss(0.2)):
        history = vl.fit(make_vae(), x, x, epochs=3, batch_size=20, loss_fn=loss_fn, device="cpu")
        assert len(history) == 3
