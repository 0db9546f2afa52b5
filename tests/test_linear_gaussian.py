"""LinearGaussianModel.expected_log_likelihood against a Monte Carlo average and the KL identity."""

import pytest
import torch

import vae_lib as vl


@pytest.fixture(scope="module")
def model() -> vl.LinearGaussianModel:
    return vl.LinearGaussianModel.random(data_dim=7, latent_dim=3, sigma=0.6, seed=4, diagonal_posterior=False)


def random_q(n: int, latent_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mu = 1.5 * torch.randn(n, latent_dim, generator=generator, dtype=torch.float64)
    log_var = 4.0 * torch.rand(n, latent_dim, generator=generator, dtype=torch.float64) - 3.0
    return mu, log_var


def test_expected_log_likelihood_matches_monte_carlo(model) -> None:
    x = model.sample(6, generator=torch.Generator().manual_seed(1))[0]
    mu, log_var = random_q(6, model.latent_dim, seed=2)
    torch.manual_seed(3)
    draws = model.log_likelihood(x, vl.reparameterize(mu, log_var, 200_000))  # (S, B)
    standard_error = draws.std(0) / draws.shape[0] ** 0.5
    difference = model.expected_log_likelihood(x, mu, log_var) - draws.mean(0)
    assert bool((difference.abs() < 5 * standard_error).all()), difference / standard_error


def test_expected_log_likelihood_is_log_likelihood_at_zero_variance(model) -> None:
    x = model.sample(4, generator=torch.Generator().manual_seed(5))[0]
    mu, _ = random_q(4, model.latent_dim, seed=6)
    tiny = torch.full_like(mu, -80.0)
    torch.testing.assert_close(model.expected_log_likelihood(x, mu, tiny), model.log_likelihood(x, mu))


def test_elbo_plus_posterior_kl_is_log_marginal(model) -> None:
    """eq-kl-identity, with the posterior's full covariance: both sides computed independently."""
    x = model.sample(5, generator=torch.Generator().manual_seed(7))[0]
    mu, log_var = random_q(5, model.latent_dim, seed=8)
    posterior_means, posterior_covariance = model.posterior(x)
    q = torch.distributions.MultivariateNormal(mu, covariance_matrix=torch.diag_embed(torch.exp(log_var)))
    posterior = torch.distributions.MultivariateNormal(posterior_means, covariance_matrix=posterior_covariance)
    left = model.log_marginal(x) - torch.distributions.kl_divergence(q, posterior)
    right = model.expected_log_likelihood(x, mu, log_var) - vl.kl_standard_normal(mu, log_var)
    torch.testing.assert_close(left, right, rtol=0, atol=1e-9)


def test_expected_log_likelihood_rejects_bad_shapes(model) -> None:
    x = model.sample(2)[0]
    mu, log_var = random_q(2, model.latent_dim, seed=0)
    with pytest.raises(ValueError, match="log_var"):
        model.expected_log_likelihood(x, mu, log_var[:, :2])
    with pytest.raises(ValueError, match="x must be"):
        model.expected_log_likelihood(x[:, :3], mu, log_var)
    with pytest.raises(TypeError, match="mu"):
        model.expected_log_likelihood(x, mu.long(), log_var)


def test_to_moves_the_tensors_and_keeps_the_model(model) -> None:
    moved = model.to("cpu")
    assert moved.weight.device == torch.device("cpu") and moved.weight.dtype == model.weight.dtype
    torch.testing.assert_close(moved.weight, model.weight)
    torch.testing.assert_close(moved.bias, model.bias)
    assert moved.sigma == model.sigma


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_gives_the_cpu_model_s_log_marginal(model) -> None:
    x = model.sample(3, generator=torch.Generator().manual_seed(8))[0]
    on_gpu = model.to("cuda")
    torch.testing.assert_close(on_gpu.log_marginal(x.to("cuda")).cpu(), model.log_marginal(x))
    for got, expected in zip(on_gpu.posterior(x.to("cuda")), model.posterior(x)):
        torch.testing.assert_close(got.cpu(), expected)
    drawn_x, drawn_z = on_gpu.sample(4, generator=torch.Generator("cuda").manual_seed(1))
    assert drawn_x.device.type == drawn_z.device.type == "cuda"
