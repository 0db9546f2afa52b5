"""The ELBO and the importance-weighted bound on a linear Gaussian model, where log p(x) is exact."""

import pytest
import torch

import vae_lib as vl


@pytest.fixture(scope="module")
def linear_model() -> vl.LinearGaussianModel:
    return vl.LinearGaussianModel.random(data_dim=6, latent_dim=3, sigma=0.7, seed=3)


@pytest.fixture(scope="module")
def data(linear_model: vl.LinearGaussianModel) -> torch.Tensor:
    return linear_model.sample(8, generator=torch.Generator().manual_seed(11))[0]


def arbitrary_q(model: vl.LinearGaussianModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A diagonal Gaussian q(z|x) that is not the posterior: its mean and variance are randomly moved
    (close enough that k-sample estimates converge within the tests' sample sizes)."""
    generator = torch.Generator().manual_seed(5)
    mu, log_var = model.diagonal_posterior(x)
    mu = mu + 0.3 * torch.randn(mu.shape, generator=generator, dtype=torch.float64)
    log_var = log_var + 0.4 * torch.randn(log_var.shape, generator=generator, dtype=torch.float64)
    return mu, log_var


def test_elbo_terms_are_consistent(linear_model, data) -> None:
    mu, log_var = arbitrary_q(linear_model, data)
    terms = vl.elbo(data, mu, log_var, linear_model.log_likelihood, n_samples=4)
    assert all(t.shape == (data.shape[0],) for t in terms)
    torch.testing.assert_close(terms.elbo, terms.expected_log_likelihood - terms.kl)
    torch.testing.assert_close(terms.kl, vl.kl_standard_normal(mu, log_var))


def test_elbo_below_importance_estimate_below_log_px_for_arbitrary_q(linear_model, data) -> None:
    mu, log_var = arbitrary_q(linear_model, data)
    exact = linear_model.log_marginal(data)
    elbo = vl.elbo(data, mu, log_var, linear_model.log_likelihood, n_samples=20_000).elbo
    # The importance estimate is a lower bound in expectation: average independent repeats.
    repeats = torch.stack(
        [vl.importance_weighted_bound(data, mu, log_var, linear_model.log_likelihood, k=100) for _ in range(200)]
    )
    iwae, standard_error = repeats.mean(0), repeats.std(0) / 200**0.5
    assert float((exact - elbo).min()) > 0.05  # a real gap, not rounding
    assert torch.all(elbo < iwae - 3 * standard_error)
    assert torch.all(iwae < exact + 3 * standard_error)


def test_all_three_equal_at_the_exact_posterior(linear_model, data) -> None:
    mu, log_var = linear_model.diagonal_posterior(data)
    exact = linear_model.log_marginal(data)
    # At q = p(z|x) every importance weight equals p(x): the estimates are exact whatever the sample.
    torch.testing.assert_close(vl.importance_weighted_bound(data, mu, log_var, linear_model.log_likelihood, k=1), exact)
    torch.testing.assert_close(
        vl.importance_weighted_bound(data, mu, log_var, linear_model.log_likelihood, k=64), exact
    )
    elbo = vl.elbo(data, mu, log_var, linear_model.log_likelihood, n_samples=200_000).elbo
    torch.testing.assert_close(elbo, exact, atol=0.02, rtol=0)


def test_importance_estimate_approaches_log_px_as_k_grows(linear_model, data) -> None:
    mu, log_var = arbitrary_q(linear_model, data)
    exact = linear_model.log_marginal(data)
    gaps = []
    for k in (1, 10, 100, 1000, 10_000):
        repeats = torch.stack(
            [vl.importance_weighted_bound(data, mu, log_var, linear_model.log_likelihood, k=k) for _ in range(20)]
        )
        gaps.append(float((exact - repeats.mean(0)).mean()))
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.05 * gaps[0]


def test_importance_estimate_equals_the_formula_whatever_the_chunk_size(linear_model, data, monkeypatch) -> None:
    """With the samples fixed, the chunked logsumexp equals log (1/k) sum_j p(x, z_j) / q(z_j | x) by hand."""
    mu, log_var = arbitrary_q(linear_model, data)
    k = 50
    z_all = vl.reparameterize(mu, log_var, n_samples=k)  # (k, B, d)
    log_weights = (
        linear_model.log_likelihood(data, z_all)
        + vl.standard_normal_log_prob(z_all)
        - vl.diagonal_gaussian_log_prob(z_all, mu, log_var)
    )
    by_hand = torch.log(torch.exp(log_weights).mean(0))
    for chunk_size in (1, 7, 50, 256):
        draws = iter(torch.split(z_all, chunk_size))
        monkeypatch.setattr("vae_lib.objectives.reparameterize", lambda mu, log_var, n, draws=draws: next(draws))
        result = vl.importance_weighted_bound(
            data, mu, log_var, linear_model.log_likelihood, k=k, chunk_size=chunk_size
        )
        torch.testing.assert_close(result, by_hand)


def test_importance_estimate_does_not_underflow() -> None:
    """Weights of exp(-2000) underflow to zero in float64; logsumexp keeps the estimate finite."""
    x = torch.full((1, 1000), 0.5, dtype=torch.float64)
    mu, log_var = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)

    def far_away(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return vl.gaussian_log_likelihood(x, torch.full((*z.shape[:-1], 1000), 3.0, dtype=torch.float64), 0.1)

    estimate = vl.importance_weighted_bound(x, mu, log_var, far_away, k=10)
    assert torch.isfinite(estimate).all() and float(estimate) < -1000


def test_iwae_with_one_sample_has_the_elbo_as_its_mean(linear_model, data) -> None:
    mu, log_var = arbitrary_q(linear_model, data)
    iwae_1 = torch.stack(
        [vl.importance_weighted_bound(data, mu, log_var, linear_model.log_likelihood, k=1) for _ in range(20_000)]
    ).mean(0)
    # Analytic KL vs sampled log q - log p: same expectation.
    elbo = vl.elbo(data, mu, log_var, linear_model.log_likelihood, n_samples=100_000).elbo
    torch.testing.assert_close(iwae_1, elbo, atol=0.05, rtol=0)


def test_negative_elbo_loss_reduces_by_batch_mean() -> None:
    terms = vl.ELBOTerms(torch.tensor([-3.0, -5.0]), torch.tensor([-2.0, -4.0]), torch.tensor([1.0, 1.0]))
    assert float(vl.negative_elbo_loss(terms)) == 4.0
    assert float(vl.negative_elbo_loss(terms, kl_weight=0.0)) == 3.0


def test_linear_model_posterior_matches_bayes_rule(linear_model, data) -> None:
    """log p(x|z) + log p(z) - log p(z|x) = log p(x) at any z: the posterior is exact."""
    means, covariance = linear_model.posterior(data)
    z = torch.randn(4, *means.shape, dtype=torch.float64)
    log_posterior = torch.distributions.MultivariateNormal(means, covariance_matrix=covariance).log_prob(z)
    log_joint = linear_model.log_likelihood(data, z) + vl.standard_normal_log_prob(z)
    torch.testing.assert_close(log_joint - log_posterior, linear_model.log_marginal(data).expand(4, -1))


def test_iwae_loss_is_minus_the_importance_bound_and_records_elbo_terms() -> None:
    model = vl.VAE(16, 3, (8,))
    x = torch.bernoulli(torch.full((5, 16), 0.4))
    torch.manual_seed(11)
    loss, terms = vl.iwae_loss(k=7)(model, (x,), 1)
    torch.manual_seed(11)
    mu, log_var = model.encoder(x)
    bound = vl.importance_weighted_bound(x, mu, log_var, model.decoder.log_likelihood, k=7)
    torch.testing.assert_close(loss, -bound.mean())
    torch.testing.assert_close(terms.elbo, terms.expected_log_likelihood - terms.kl)
    torch.testing.assert_close(terms.kl, vl.kl_standard_normal(mu, log_var))


def test_iwae_loss_trains_with_fit_and_rejects_bad_k() -> None:
    x = vl.load_digits().binarized().train.x[:128]
    history = vl.fit(
        vl.VAE(64, 2, (16,)), x, x[:32], epochs=3, batch_size=32, seed=0, device="cpu", loss_fn=vl.iwae_loss(k=4)
    )
    assert len(history) == 3 and history.records[-1].val_elbo is not None
    with pytest.raises(ValueError, match="k"):
        vl.iwae_loss(k=0)
