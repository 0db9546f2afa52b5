"""The VAE module: shapes, objectives that agree with the functions they wrap, sampling."""

import pytest
import torch

import vae_lib as vl


@pytest.mark.parametrize("likelihood,sigma", [("bernoulli", None), ("gaussian", 0.3)])
def test_vae_shapes_and_elbo(likelihood: str, sigma: float | None) -> None:
    model = vl.VAE(20, 3, (16, 8), likelihood=likelihood, sigma=sigma)
    x = torch.rand(5, 20)
    mu, log_var = model.encoder(x)
    assert mu.shape == log_var.shape == (5, 3)
    terms = model.elbo(x, n_samples=2)
    assert terms.elbo.shape == (5,)
    assert model.sample(7).shape == (7, 20)
    assert model.sample(2, mean=False).shape == (2, 20)
    assert model.reconstruct(x).shape == (5, 20)
    assert isinstance(model.posterior(x), torch.distributions.Independent)


def test_vae_elbo_is_the_library_elbo_with_the_decoder_likelihood() -> None:
    model = vl.VAE(10, 2, (8,))
    x = torch.bernoulli(torch.full((4, 10), 0.5))
    torch.manual_seed(3)
    via_model = model.elbo(x)
    torch.manual_seed(3)
    mu, log_var = model.encoder(x)
    z = mu + torch.exp(0.5 * log_var) * torch.randn(1, *mu.shape)
    by_hand = model.decoder.observation.distribution(model.decoder(z)).log_prob(x).mean(0) - vl.kl_standard_normal(
        mu, log_var
    )
    torch.testing.assert_close(via_model.elbo, by_hand)


def test_importance_estimate_is_above_elbo_on_average_for_a_vae() -> None:
    model = vl.VAE(16, 2, (8,))
    x = torch.bernoulli(torch.full((6, 16), 0.4))
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x).elbo for _ in range(2000)]).mean(0)
        iwae = torch.stack([model.importance_log_likelihood(x, k=200) for _ in range(20)]).mean(0)
    assert torch.all(iwae > elbo)


def test_mlp_structure() -> None:
    net = vl.mlp([3, 5, 2])
    assert [type(layer).__name__ for layer in net] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError, match="input and an output"):
        vl.mlp([3])


def test_default_device_honours_environment(monkeypatch) -> None:
    monkeypatch.setenv("VAE_DEVICE", "cpu")
    assert vl.default_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("VAE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA device"):
            vl.default_device()


def test_importing_vae_lib_changes_no_global_state() -> None:
    import subprocess
    import sys

    code = "import torch; s = torch.random.get_rng_state(); import matplotlib; r = dict(matplotlib.rcParams); import vae_lib; assert torch.equal(s, torch.random.get_rng_state()); assert r == dict(matplotlib.rcParams)"
    subprocess.run([sys.executable, "-c", code], check=True)
