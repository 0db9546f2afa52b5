"""The conditional VAE: shapes, the ELBO it computes, bad input, and training through vl.fit."""

import pytest
import torch

import vae_lib as vl


def make_model() -> vl.ConditionalVAE:
    return vl.ConditionalVAE(data_dim=12, condition_dim=3, latent_dim=2, hidden_dims=(16,))


def test_one_hot_rows() -> None:
    c = vl.one_hot(torch.tensor([0, 2, 1]), 3)
    torch.testing.assert_close(c, torch.eye(3)[[0, 2, 1]])
    with pytest.raises(ValueError, match="labels must lie"):
        vl.one_hot(torch.tensor([3]), 3)
    with pytest.raises(TypeError, match="labels"):
        vl.one_hot(torch.tensor([0.0]), 3)


def test_shapes() -> None:
    model = make_model()
    x, c = torch.bernoulli(torch.full((5, 12), 0.5)), vl.one_hot(torch.tensor([0, 1, 2, 0, 1]), 3)
    q_z = model.encode(x, c)
    assert q_z.mu.shape == q_z.log_var.shape == (5, 2)
    assert model.decode(q_z.rsample((3,)), c).batch_shape == (3, 5)
    terms = model.elbo(x, c, n_samples=3)
    assert all(t.shape == (5,) for t in terms)
    assert model.importance_log_likelihood(x, c, k=7, memory_budget=1).shape == (5,)
    assert model.sample(c).shape == (5, 12)
    assert model.sample(c, mean=False).shape == (5, 12)
    assert model.sample(c, z=torch.zeros(5, 2)).shape == (5, 12)
    assert model.reconstruct(x, c).shape == (5, 12)


def test_elbo_is_the_formula_with_the_condition_beside_z() -> None:
    model = make_model()
    x, c = torch.bernoulli(torch.full((4, 12), 0.3)), torch.randn(4, 3)
    via_model = model.elbo(x, c, n_samples=2, generator=torch.Generator().manual_seed(5))
    mu, log_var = model.encoder.body(torch.cat([x, c], dim=1)).chunk(2, dim=-1)
    z = mu + torch.exp(0.5 * log_var) * torch.randn(2, *mu.shape, generator=torch.Generator().manual_seed(5))
    logits = model.decoder.body(torch.cat([z, c.expand(2, 4, 3)], dim=-1))
    log_p = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1).mean(0)
    torch.testing.assert_close(via_model.elbo, log_p - vl.kl_standard_normal(mu, log_var))
    torch.testing.assert_close(via_model.expected_log_likelihood, log_p)


def test_importance_estimate_with_k_1_matches_the_elbo_on_average() -> None:
    model = make_model()
    x, c = torch.bernoulli(torch.full((3, 12), 0.5)), torch.randn(3, 3)
    x_many, c_many = x.repeat(4000, 1), c.repeat(4000, 1)  # 4000 independent estimates per example
    with torch.no_grad():
        elbo = model.elbo(x_many, c_many).elbo.reshape(4000, 3).mean(0)
        iwae_1 = model.importance_log_likelihood(x_many, c_many, k=1).reshape(4000, 3).mean(0)
    torch.testing.assert_close(elbo, iwae_1, atol=0.15, rtol=0)


def test_bad_input_names_the_argument() -> None:
    model = make_model()
    x = torch.rand(4, 12)
    with pytest.raises(ValueError, match="c has 3 rows but x has 4"):
        model.elbo(x, torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"c must have shape \(B, 3\)"):
        model.elbo(x, torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 12\)"):
        model.elbo(torch.rand(4, 11), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="c contains 4 non-finite"):
        model.elbo(x, torch.tensor([[0.0, 0.0, float("nan")]]).expand(4, 3))
    with pytest.raises(TypeError, match="c must be a floating-point tensor"):
        model.sample(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="z must have shape"):
        model.sample(torch.zeros(4, 3), z=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="condition_dim"):
        vl.ConditionalVAE(12, 0, 2)


def test_fit_trains_it_with_the_default_loss() -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (60,))
    x = torch.bernoulli(torch.eye(3).repeat_interleave(4, dim=1)[labels] * 0.9 + 0.05)
    c = vl.one_hot(labels, 3)
    model = make_model()
    history = vl.fit(model, (x, c), (x, c), epochs=15, batch_size=30, learning_rate=1e-2, device="cpu")
    assert len(history) == 15
    assert history.records[-1].val["elbo"] > history.records[0].val["elbo"]
