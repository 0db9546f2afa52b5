"""The VAE module: shapes, distributions in and out, objectives that agree with the formulas, sampling, priors."""

import pytest
import torch

import vae_lib as vl


@pytest.mark.parametrize("likelihood,sigma", [("bernoulli", None), ("gaussian", 0.3)])
def test_vae_shapes_and_elbo(likelihood: str, sigma: float | None) -> None:
    model = vl.VAE(20, 3, (16, 8), likelihood=likelihood, sigma=sigma)
    x = torch.rand(5, 20)
    q_z = model.encode(x)
    assert isinstance(q_z, vl.DiagonalGaussian) and isinstance(q_z, torch.distributions.Distribution)
    assert q_z.mu.shape == q_z.log_var.shape == (5, 3) and q_z.event_shape == (3,)
    p_x_given_z = model.decode(q_z.rsample((2,)))
    assert p_x_given_z.batch_shape == (2, 5) and p_x_given_z.log_prob(x).shape == (2, 5)
    terms = model.elbo(x, n_samples=2)
    assert terms.elbo.shape == (5,)
    assert model.sample(7).shape == (7, 20)
    assert model.sample(2, mean=False).shape == (2, 20)
    assert model.reconstruct(x).shape == (5, 20)


def test_vae_elbo_is_the_formula_by_hand_with_the_same_draws() -> None:
    model = vl.VAE(10, 2, (8,))
    x = torch.bernoulli(torch.full((4, 10), 0.5))
    via_model = model.elbo(x, n_samples=3, generator=torch.Generator().manual_seed(3))
    mu, log_var = model.encoder.body(x).chunk(2, dim=-1)
    eps = torch.randn(3, *mu.shape, generator=torch.Generator().manual_seed(3))
    z = mu + torch.exp(0.5 * log_var) * eps  # (S, B, d)
    logits = model.decoder.body(z)
    log_p = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1).mean(0)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * log_var)), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(via_model.elbo, log_p - kl)
    torch.testing.assert_close(via_model.kl, kl)


def test_importance_estimate_is_above_elbo_on_average_for_a_vae() -> None:
    model = vl.VAE(16, 2, (8,))
    x = torch.bernoulli(torch.full((6, 16), 0.4))
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x).elbo for _ in range(2000)]).mean(0)
        iwae = torch.stack([model.importance_log_likelihood(x, k=200) for _ in range(20)]).mean(0)
    assert torch.all(iwae > elbo)


def test_an_explicit_generator_makes_every_draw_repeatable_and_leaves_the_global_one_alone() -> None:
    model = vl.VAE(12, 3, (8,), likelihood="gaussian", sigma=0.5)
    x = torch.rand(4, 12)
    before = torch.random.get_rng_state()
    runs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(7)
        runs.append(
            (
                model.elbo(x, generator=generator).elbo,
                model.importance_log_likelihood(x, k=20, generator=generator),
                model.sample(3, mean=False, generator=generator),
            )
        )
    for first, second in zip(*runs):
        assert torch.equal(first, second)
    assert torch.equal(before, torch.random.get_rng_state())


def test_the_prior_is_swapped_in_one_argument_and_the_elbo_uses_it() -> None:
    """With a mixture prior the KL is the Monte Carlo average of log q - log p over the same draws."""
    torch.manual_seed(0)
    prior = vl.MixturePrior(latent_dim=2, n_components=4)
    model = vl.VAE(10, 2, (8,), prior=prior)
    assert model.prior is prior and "prior.means" in model.state_dict()
    x = torch.bernoulli(torch.full((5, 10), 0.5))
    terms = model.elbo(x, n_samples=4, generator=torch.Generator().manual_seed(1))
    q_z = model.encode(x)
    z = q_z.rsample((4,), generator=torch.Generator().manual_seed(1))
    weights = torch.softmax(prior.logits, 0)
    components = torch.distributions.Independent(
        torch.distributions.Normal(prior.means, torch.exp(0.5 * prior.log_vars)), 1
    )
    mixture = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(weights), components)
    torch.testing.assert_close(prior.log_prob(z), mixture.log_prob(z))
    torch.testing.assert_close(terms.kl, (q_z.log_prob(z) - mixture.log_prob(z)).mean(0))
    standard = vl.VAE(10, 2, (8,))
    standard.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    assert not torch.allclose(standard.elbo(x).kl, terms.kl)
    bound = model.importance_log_likelihood(x, k=7, generator=torch.Generator().manual_seed(2))
    log_w = vl.log_importance_weights(x, q_z, z, model.decode(z), prior)
    assert bound.shape == (5,) and log_w.shape == (4, 5)


def test_the_mixture_prior_samples_its_components_and_trains_with_the_model() -> None:
    prior = vl.MixturePrior(latent_dim=2, n_components=2)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-5.0, 0.0], [5.0, 0.0]]))
        prior.log_vars.fill_(-4.0)
        prior.logits.copy_(torch.tensor([0.0, 2.0]))  # weights 0.12 and 0.88
    z = prior.sample(20_000, generator=torch.Generator().manual_seed(0))
    share_right = float((z[:, 0] > 0).float().mean())
    assert abs(share_right - torch.sigmoid(torch.tensor(2.0)).item()) < 0.01
    model = vl.VAE(6, 2, (8,), prior=prior)
    before = prior.means.detach().clone()
    vl.fit(model, torch.bernoulli(torch.full((64, 6), 0.5)), epochs=2, batch_size=16, device="cpu")
    assert not torch.equal(before, prior.means.detach()), "the prior's parameters are trained with the model"


def test_mlp_structure() -> None:
    net = vl.mlp([3, 5, 2])
    assert [type(layer).__name__ for layer in net] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(ValueError, match="input and an output"):
        vl.mlp([3])


def test_one_bernoulli_elbo_reads_its_data_once() -> None:
    """The values are checked where they enter (one scan of x), not again at every layer."""
    from unittest import mock

    from vae_lib import _checks

    model = vl.VAE(8, 2, (4,))
    x = torch.bernoulli(torch.full((3, 8), 0.5))
    with mock.patch.object(_checks, "value_range", wraps=_checks.value_range) as scans:
        model.elbo(x)
    assert scans.call_count == 1
    with mock.patch.object(_checks, "value_range", wraps=_checks.value_range) as scans:
        vl.fit(model, x, epochs=3, batch_size=1, device="cpu")
    assert scans.call_count == 1, "fit checks its data once, not at every batch"


def test_importing_vae_lib_changes_no_global_state() -> None:
    import subprocess
    import sys

    code = "import torch; s = torch.random.get_rng_state(); import matplotlib; r = dict(matplotlib.rcParams); import vae_lib; assert torch.equal(s, torch.random.get_rng_state()); assert r == dict(matplotlib.rcParams)"
    subprocess.run([sys.executable, "-c", code], check=True)
