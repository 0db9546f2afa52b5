"""The ELBO and the importance-weighted bound on a linear Gaussian model, where log p(x) is exact."""

import pytest
import torch

import vae_lib as vl
from vae_lib.objectives import distribution_bytes


@pytest.fixture(scope="module")
def linear_model() -> vl.LinearGaussianModel:
    return vl.LinearGaussianModel.random(data_dim=6, latent_dim=3, sigma=0.7, seed=3)


@pytest.fixture(scope="module")
def data(linear_model: vl.LinearGaussianModel) -> torch.Tensor:
    return linear_model.sample(8, generator=torch.Generator().manual_seed(11))[0]


def arbitrary_q(model: vl.LinearGaussianModel, x: torch.Tensor) -> vl.DiagonalGaussian:
    """A diagonal Gaussian q(z|x) that is not the posterior: its mean and variance are randomly moved
    (close enough that k-sample estimates converge within the tests' sample sizes)."""
    generator = torch.Generator().manual_seed(5)
    mu, log_var = model.diagonal_posterior(x)
    mu = mu + 0.3 * torch.randn(mu.shape, generator=generator, dtype=torch.float64)
    log_var = log_var + 0.4 * torch.randn(log_var.shape, generator=generator, dtype=torch.float64)
    return vl.DiagonalGaussian(mu, log_var)


def sampled_elbo(model: vl.LinearGaussianModel, x: torch.Tensor, q_z: vl.DiagonalGaussian, n: int) -> vl.ELBOTerms:
    z = q_z.rsample((n,))
    return vl.elbo(x, q_z, z, model.decode(z))


def bound(model: vl.LinearGaussianModel, x: torch.Tensor, q_z: vl.DiagonalGaussian, k: int, **options) -> torch.Tensor:
    return vl.importance_weighted_bound(x, q_z, model.decode, k, **options)


def test_elbo_terms_are_consistent(linear_model, data) -> None:
    q_z = arbitrary_q(linear_model, data)
    terms = sampled_elbo(linear_model, data, q_z, 4)
    assert all(t.shape == (data.shape[0],) for t in terms)
    torch.testing.assert_close(terms.elbo, terms.expected_log_likelihood - terms.kl)
    torch.testing.assert_close(terms.kl, vl.kl_standard_normal(q_z.mu, q_z.log_var))


def test_elbo_below_importance_estimate_below_log_px_for_arbitrary_q(linear_model, data) -> None:
    q_z = arbitrary_q(linear_model, data)
    exact = linear_model.log_marginal(data)
    elbo = sampled_elbo(linear_model, data, q_z, 20_000).elbo
    # The importance estimate is a lower bound in expectation: average independent repeats.
    repeats = torch.stack([bound(linear_model, data, q_z, k=100) for _ in range(200)])
    iwae, standard_error = repeats.mean(0), repeats.std(0) / 200**0.5
    assert float((exact - elbo).min()) > 0.05  # a real gap, not rounding
    assert torch.all(elbo < iwae - 3 * standard_error)
    assert torch.all(iwae < exact + 3 * standard_error)


def test_all_three_equal_at_the_exact_posterior(linear_model, data) -> None:
    q_z = vl.DiagonalGaussian(*linear_model.diagonal_posterior(data))
    exact = linear_model.log_marginal(data)
    # At q = p(z|x) every importance weight equals p(x): the estimates are exact whatever the sample.
    torch.testing.assert_close(bound(linear_model, data, q_z, k=1), exact)
    torch.testing.assert_close(bound(linear_model, data, q_z, k=64), exact)
    elbo = sampled_elbo(linear_model, data, q_z, 200_000).elbo
    torch.testing.assert_close(elbo, exact, atol=0.02, rtol=0)


def test_importance_estimate_approaches_log_px_as_k_grows(linear_model, data) -> None:
    q_z = arbitrary_q(linear_model, data)
    exact = linear_model.log_marginal(data)
    gaps = []
    for k in (1, 10, 100, 1000, 10_000):
        repeats = torch.stack([bound(linear_model, data, q_z, k=k) for _ in range(20)])
        gaps.append(float((exact - repeats.mean(0)).mean()))
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.05 * gaps[0]


class FixedDraws(vl.DiagonalGaussian):
    """q(z|x) whose rsample hands out pre-drawn samples in order, whatever the chunk sizes asked for."""

    def __init__(self, q_z: vl.DiagonalGaussian, z: torch.Tensor) -> None:
        super().__init__(q_z.mu, q_z.log_var)
        self.z, self.taken, self.chunks = z, 0, []

    def rsample(self, sample_shape=(), generator=None) -> torch.Tensor:
        n = sample_shape[0]
        self.chunks.append(n)
        self.taken += n
        return self.z[self.taken - n : self.taken]


def test_importance_estimate_equals_the_formula_whatever_the_memory_budget(linear_model, data) -> None:
    """With the samples fixed, the chunked logsumexp equals log (1/k) sum_j p(x, z_j) / q(z_j | x) by hand."""
    q_z = arbitrary_q(linear_model, data)
    k = 50
    z_all = vl.reparameterize(q_z.mu, q_z.log_var, n_samples=k)  # (k, B, d)
    log_weights = (
        linear_model.log_likelihood(data, z_all)
        + vl.standard_normal_log_prob(z_all)
        - vl.diagonal_gaussian_log_prob(z_all, q_z.mu, q_z.log_var)
    )
    by_hand = torch.log(torch.exp(log_weights).mean(0))
    one_draw = distribution_bytes(linear_model.decode(z_all[:1]))  # the means of one sample (float64) and sigma
    assert data.numel() * 8 <= one_draw < data.numel() * 8 + 64
    chunk_counts = []
    for budget in (1, 4 * one_draw * 7, 2**30):
        fixed = FixedDraws(q_z, z_all)
        torch.testing.assert_close(bound(linear_model, data, fixed, k=k, memory_budget=budget), by_hand)
        assert fixed.taken == k
        chunk_counts.append(len(fixed.chunks))
    assert chunk_counts[0] == k and chunk_counts[1] == 1 + 7 and chunk_counts[2] == 2


def test_importance_estimate_does_not_underflow() -> None:
    """Weights of exp(-2000) underflow to zero in float64; logsumexp keeps the estimate finite."""
    x = torch.full((1, 1000), 0.5, dtype=torch.float64)
    q_z = vl.DiagonalGaussian(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))

    def far_away(z: torch.Tensor) -> vl.GaussianPixels:
        return vl.GaussianPixels(torch.full((*z.shape[:-1], 1000), 3.0, dtype=torch.float64), 0.1)

    estimate = vl.importance_weighted_bound(x, q_z, far_away, k=10)
    assert torch.isfinite(estimate).all() and float(estimate) < -1000


def test_iwae_with_one_sample_has_the_elbo_as_its_mean(linear_model, data) -> None:
    q_z = arbitrary_q(linear_model, data)
    iwae_1 = torch.stack([bound(linear_model, data, q_z, k=1) for _ in range(20_000)]).mean(0)
    # Analytic KL vs sampled log q - log p: same expectation.
    elbo = sampled_elbo(linear_model, data, q_z, 100_000).elbo
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
    loss, terms = vl.iwae_loss(k=7)(model, (x,), 1, torch.Generator().manual_seed(11))
    q_z = model.encode(x)
    z = q_z.rsample((7,), generator=torch.Generator().manual_seed(11))
    log_weights = vl.log_importance_weights(x, q_z, z, model.decode(z))
    torch.testing.assert_close(loss, -(torch.logsumexp(log_weights, 0) - torch.log(torch.tensor(7.0))).mean())
    torch.testing.assert_close(terms.elbo, terms.expected_log_likelihood - terms.kl)
    torch.testing.assert_close(terms.kl, vl.kl_standard_normal(q_z.mu, q_z.log_var))


def test_iwae_loss_trains_with_fit_and_rejects_bad_k() -> None:
    x = vl.load_digits().binarized().train.x[:128]
    history = vl.fit(
        vl.VAE(64, 2, (16,)), x, x[:32], epochs=3, batch_size=32, seed=0, device="cpu", loss_fn=vl.iwae_loss(k=4)
    )
    assert len(history) == 3 and history.records[-1].val is not None
    with pytest.raises(ValueError, match="k"):
        vl.iwae_loss(k=0)


class RecordingDecoder(torch.nn.Module):
    """A 784-pixel Bernoulli decoder that records the largest decoded chunk (samples x images) it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 784)
        self.largest = 0

    def forward(self, z: torch.Tensor) -> vl.BernoulliPixels:
        self.largest = max(self.largest, z.shape[:-1].numel())
        return vl.BernoulliPixels(self.layer(z))


class SmallVAE(vl.LatentVariableModel):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = vl.GaussianEncoder(784, (8,), 2)
        self.decoder = RecordingDecoder()
        self.prior = vl.StandardNormalPrior(2)

    def encode(self, x: torch.Tensor) -> vl.DiagonalGaussian:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> vl.BernoulliPixels:
        return self.decoder(z)


def test_the_importance_estimate_stays_within_its_memory_budget_for_784_pixels_and_k_5000() -> None:
    model = SmallVAE()
    x = torch.bernoulli(torch.full((300, 784), 0.2), generator=torch.Generator().manual_seed(0))
    budget = 2**23  # 8 MiB: one sample of all 300 images takes 0.9 MiB of logits, 5000 samples 4.7 GB
    with torch.no_grad():
        estimate = model.importance_log_likelihood(x, k=5000, memory_budget=budget)
    assert estimate.shape == (300,) and bool(torch.isfinite(estimate).all())
    decoded_bytes = model.decoder.largest * 784 * 4
    assert decoded_bytes * 4 <= budget, "a chunk's logits and log_prob's temporaries fit in the budget"
    assert decoded_bytes * 8 > budget, "and the chunks are not needlessly small"


def test_chunked_and_unchunked_estimates_agree() -> None:
    """Every image's estimate is unbiased for the same quantity: the chunking changes only which draws it gets,
    so the averages over many repeats agree within their Monte Carlo error."""
    torch.manual_seed(0)
    model = vl.VAE(12, 2, (8,))
    x = torch.bernoulli(torch.full((6, 12), 0.4))
    with torch.no_grad():
        runs = {
            budget: torch.stack([model.importance_log_likelihood(x, k=20, memory_budget=budget) for _ in range(100)])
            for budget in (1, 2**30)
        }
    difference = runs[1].mean(0) - runs[2**30].mean(0)
    standard_error = ((runs[1].var(0) + runs[2**30].var(0)) / 100).sqrt()
    assert bool((difference.abs() < 4 * standard_error).all()), difference / standard_error
