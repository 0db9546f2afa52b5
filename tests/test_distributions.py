"""Each hand-written density, KL and sampler of vae_lib against torch.distributions or Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vae_lib as vl


def diagonal_normal(mu: torch.Tensor, log_var: torch.Tensor) -> Independent:
    return Independent(Normal(mu, torch.exp(0.5 * log_var)), 1)


def test_gaussian_log_likelihood_matches_torch() -> None:
    x, mean = torch.randn(7, 13, dtype=torch.float64), torch.randn(7, 13, dtype=torch.float64)
    expected = Normal(mean, 0.37).log_prob(x).sum(-1)
    torch.testing.assert_close(vl.gaussian_log_likelihood(x, mean, 0.37), expected)


def test_gaussian_log_likelihood_broadcasts_over_sample_axis() -> None:
    x, mean = torch.randn(4, 5, dtype=torch.float64), torch.randn(3, 4, 5, dtype=torch.float64)
    result = vl.gaussian_log_likelihood(x, mean, 1.5)
    assert result.shape == (3, 4)
    torch.testing.assert_close(result, Normal(mean, 1.5).log_prob(x).sum(-1))


def test_bernoulli_log_likelihood_matches_torch_including_soft_targets_and_extreme_logits() -> None:
    x = torch.rand(6, 20, dtype=torch.float64)
    logits = 30 * torch.randn(6, 20, dtype=torch.float64)
    expected = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    torch.testing.assert_close(vl.bernoulli_log_likelihood(x, logits), expected)
    binary = torch.bernoulli(torch.full((6, 20), 0.3, dtype=torch.float64))
    torch.testing.assert_close(
        vl.bernoulli_log_likelihood(binary, logits), Bernoulli(logits=logits).log_prob(binary).sum(-1)
    )


def test_diagonal_and_standard_normal_log_prob_match_torch() -> None:
    z, mu, log_var = (torch.randn(3, 8, 4, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(vl.diagonal_gaussian_log_prob(z, mu, log_var), diagonal_normal(mu, log_var).log_prob(z))
    torch.testing.assert_close(
        vl.standard_normal_log_prob(z), Independent(Normal(torch.zeros_like(z), 1.0), 1).log_prob(z)
    )


def test_kl_standard_normal_matches_torch_kl_divergence() -> None:
    mu, log_var = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 6, dtype=torch.float64)
    prior = diagonal_normal(torch.zeros_like(mu), torch.zeros_like(log_var))
    torch.testing.assert_close(vl.kl_standard_normal(mu, log_var), kl_divergence(diagonal_normal(mu, log_var), prior))


def test_kl_diagonal_gaussians_matches_torch_and_reduces_to_standard_normal() -> None:
    mu_q, log_var_q, mu_p, log_var_p = (torch.randn(9, 5, dtype=torch.float64) for _ in range(4))
    expected = kl_divergence(diagonal_normal(mu_q, log_var_q), diagonal_normal(mu_p, log_var_p))
    torch.testing.assert_close(vl.kl_diagonal_gaussians(mu_q, log_var_q, mu_p, log_var_p), expected)
    zeros = torch.zeros_like(mu_q)
    torch.testing.assert_close(
        vl.kl_diagonal_gaussians(mu_q, log_var_q, zeros, zeros), vl.kl_standard_normal(mu_q, log_var_q)
    )


def test_kl_closed_form_matches_large_monte_carlo_estimate() -> None:
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    log_var = torch.tensor([[-1.0, 0.3, 0.0]], dtype=torch.float64)
    z = vl.reparameterize(mu, log_var, n_samples=400_000)
    monte_carlo = (vl.diagonal_gaussian_log_prob(z, mu, log_var) - vl.standard_normal_log_prob(z)).mean(0)
    # The estimator's standard error here is about 0.005 nats; allow five of them.
    torch.testing.assert_close(monte_carlo, vl.kl_standard_normal(mu, log_var), atol=0.025, rtol=0)


def test_kl_is_zero_only_at_the_prior_and_positive_elsewhere() -> None:
    zeros = torch.zeros(1, 4, dtype=torch.float64)
    assert float(vl.kl_standard_normal(zeros, zeros)) == 0.0
    assert float(vl.kl_standard_normal(zeros + 0.1, zeros)) > 0.0
    assert float(vl.kl_standard_normal(zeros, zeros - 0.1)) > 0.0


def test_reparameterized_samples_have_the_right_mean_and_covariance() -> None:
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    log_var = torch.log(torch.tensor([0.25, 4.0, 1.0], dtype=torch.float64))
    z = vl.reparameterize(mu, log_var, n_samples=200_000)
    assert z.shape == (200_000, 3)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    covariance = torch.cov(z.T)
    torch.testing.assert_close(covariance, torch.diag(torch.exp(log_var)), atol=0.05, rtol=0.02)


def test_reparameterize_without_sample_axis_keeps_shape() -> None:
    mu, log_var = torch.zeros(4, 2), torch.zeros(4, 2)
    assert vl.reparameterize(mu, log_var).shape == (4, 2)


def test_gradients_flow_to_mu_and_sigma_through_reparameterization() -> None:
    mu = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    log_var = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    z = vl.reparameterize(mu, log_var, n_samples=100_000)
    # E[z^2] = mu^2 + sigma^2, so d/dmu = 2 mu and d/dlog_var = sigma^2.
    (z**2).sum(-1).mean().backward()
    torch.testing.assert_close(mu.grad, 2 * mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(log_var.grad, torch.exp(log_var.detach()), atol=0.03, rtol=0)


def test_diagonal_gaussian_is_q_with_its_formula_and_an_explicit_generator() -> None:
    mu, log_var = torch.randn(4, 3, dtype=torch.float64, requires_grad=True), torch.randn(4, 3, dtype=torch.float64)
    q_z = vl.DiagonalGaussian(mu, log_var)
    z = q_z.rsample((5,), generator=torch.Generator().manual_seed(1))
    assert z.shape == (5, 4, 3) and q_z.batch_shape == (4,) and q_z.event_shape == (3,)
    torch.testing.assert_close(z, vl.reparameterize(mu, log_var, 5, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(q_z.log_prob(z), diagonal_normal(mu, log_var).log_prob(z))
    torch.testing.assert_close(q_z.mean, mu)
    drawn = q_z.sample((5,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(drawn, z.detach()) and not drawn.requires_grad
    torch.testing.assert_close(q_z.kl_per_dimension().sum(-1), vl.kl_standard_normal(mu, log_var))


def test_observation_distributions_agree_with_torch() -> None:
    params = torch.randn(2, 3, 10)  # a sample axis, then a batch axis
    x_binary = torch.bernoulli(torch.full((3, 10), 0.5))
    bernoulli = vl.observation_model("bernoulli").distribution(params)
    reference = Independent(Bernoulli(logits=params), 1)
    torch.testing.assert_close(bernoulli.log_prob(x_binary), reference.log_prob(x_binary))
    torch.testing.assert_close(bernoulli.mean, torch.sigmoid(params))
    gaussian = vl.observation_model("gaussian", sigma=0.2).distribution(params)
    x = torch.randn(3, 10)
    torch.testing.assert_close(gaussian.log_prob(x), Independent(Normal(params, 0.2), 1).log_prob(x))
    assert math.isclose(gaussian.sigma, 0.2)
    for distribution in (bernoulli, gaussian):
        draws = [distribution.sample((4,), generator=torch.Generator().manual_seed(2)) for _ in range(2)]
        assert draws[0].shape == (4, 2, 3, 10) and torch.equal(*draws)
    assert set(bernoulli.sample(generator=torch.Generator().manual_seed(0)).unique().tolist()) <= {0.0, 1.0}


def test_categorical_pixels_match_torch_categorical_over_levels() -> None:
    levels, pixels = 17, 12
    categorical = vl.observation_model("categorical", levels=levels)
    assert isinstance(categorical, vl.CategoricalObservation) and categorical.params_per_dim == levels
    logits = torch.randn(2, 5, pixels * levels, dtype=torch.float64)  # a sample axis, then a batch axis
    index = torch.randint(0, levels, (5, pixels))
    x = index.double() / (levels - 1)
    p_x_given_z = categorical.distribution(logits)
    expected = torch.distributions.Categorical(logits=logits.unflatten(-1, (pixels, levels))).log_prob(index).sum(-1)
    torch.testing.assert_close(p_x_given_z.log_prob(x), expected)
    probs = torch.softmax(logits.unflatten(-1, (pixels, levels)), -1)
    torch.testing.assert_close(p_x_given_z.mean, (probs * torch.linspace(0, 1, levels, dtype=torch.float64)).sum(-1))
    sample = p_x_given_z.sample(generator=torch.Generator().manual_seed(0))
    assert sample.shape == (2, 5, pixels)
    categorical.check_data("sample", sample[0])  # every draw lies on the grid


def test_categorical_observation_rejects_values_off_the_grid_and_a_wrong_width() -> None:
    categorical = vl.CategoricalObservation(levels=17)
    with pytest.raises(ValueError, match="grid"):
        categorical.check_data("x", torch.full((1, 4), 0.5 / 16))
    with pytest.raises(ValueError, match="multiple of levels"):
        categorical.distribution(torch.zeros(1, 4 * 17 + 1))
    with pytest.raises(ValueError, match="levels"):
        vl.CategoricalObservation(levels=1)


def test_categorical_vae_decoder_has_levels_outputs_per_pixel() -> None:
    digits = vl.load_digits()
    model = vl.VAE(64, 2, (16,), likelihood="categorical", levels=digits.grey_levels)
    assert model.decoder.body(torch.zeros(3, 2)).shape == (3, 64 * 17)
    terms = model.elbo(digits.train.x[:8])
    assert terms.elbo.shape == (8,) and bool(torch.isfinite(terms.elbo).all())
    assert model.sample(4).shape == (4, 64) and model.reconstruct(digits.train.x[:3]).shape == (3, 64)
    with pytest.raises(ValueError, match="grid k/16"):
        model.elbo(digits.train.x[:8] * 0.99)
