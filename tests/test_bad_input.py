"""Bad input to vae_lib gets a ValueError or TypeError that names the argument."""

import math

import pytest
import torch

import vae_lib as vl


def test_mismatched_shapes_name_both_arguments() -> None:
    with pytest.raises(ValueError, match="mu.*log_var"):
        vl.kl_standard_normal(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="x.*mean"):
        vl.gaussian_log_likelihood(torch.zeros(3, 5), torch.zeros(3, 6), 1.0)
    with pytest.raises(ValueError, match="mu_q.*mu_p"):
        vl.kl_diagonal_gaussians(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_data_is_refused(bad: float) -> None:
    x = torch.zeros(4, 3)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        vl.gaussian_log_likelihood(x, torch.zeros(4, 3), 1.0)
    model = vl.VAE(3, 2, (4,))
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        model.elbo(x)
    with pytest.raises(ValueError, match="train\\[0\\] contains"):
        vl.fit(model, x, epochs=1, device="cpu")


def test_bernoulli_targets_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match="x must lie in \\[0, 1\\]"):
        vl.bernoulli_log_likelihood(torch.tensor([[0.5, 1.2]]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="x must lie in \\[0, 1\\]"):
        vl.VAE(2, 1, (3,)).elbo(torch.tensor([[-0.1, 0.5]]))


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_refused(k: int) -> None:
    x = torch.rand(2, 4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        vl.VAE(4, 2, (8,)).importance_log_likelihood(x, k=k)


def test_k_of_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="k must be an int"):
        vl.VAE(4, 2, (8,)).importance_log_likelihood(torch.rand(2, 4), k=10.0)


def test_unknown_dataset_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset name 'cifar'"):
        vl.load_dataset("cifar")


def test_unknown_likelihood_and_missing_sigma_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        vl.VAE(4, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="needs sigma"):
        vl.VAE(4, 2, likelihood="gaussian")
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        vl.VAE(4, 2, likelihood="gaussian", sigma=-1.0)


def test_wrong_types_are_refused_with_type_error() -> None:
    with pytest.raises(TypeError, match="mu must be a torch.Tensor"):
        vl.kl_standard_normal([0.0], torch.zeros(1))
    with pytest.raises(TypeError, match="floating-point"):
        vl.kl_standard_normal(torch.zeros(2, dtype=torch.long), torch.zeros(2))


def test_model_input_of_wrong_width_dtype_or_device_is_refused() -> None:
    model = vl.VAE(6, 2, (5,))
    with pytest.raises(ValueError, match="x must have 6 features"):
        model.elbo(torch.rand(3, 7))
    with pytest.raises(TypeError, match="dtype"):
        model.elbo(torch.rand(3, 6, dtype=torch.float64))


def test_fit_arguments_are_checked() -> None:
    model, x = vl.VAE(4, 2, (8,)), torch.rand(10, 4)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        vl.fit(model, x, epochs=0, device="cpu")
    with pytest.raises(ValueError, match="learning_rate"):
        vl.fit(model, x, learning_rate=-1.0, device="cpu")
    with pytest.raises(ValueError, match="patience .* needs validation data"):
        vl.fit(model, x, patience=3, device="cpu")
    with pytest.raises(ValueError, match="train\\[1\\] has 9 rows"):
        vl.fit(model, (x, torch.zeros(9)), device="cpu")


def test_a_decoder_distribution_of_the_wrong_shape_is_reported() -> None:
    x = torch.rand(3, 4)
    q_z = vl.DiagonalGaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    z = q_z.rsample((2,))
    p_x_given_z = vl.BernoulliPixels(torch.zeros(3, 4))  # one draw's worth, not two
    with pytest.raises(ValueError, match=r"p_x_given_z.log_prob\(x\) must return shape \(2, 3\)"):
        vl.elbo(x, q_z, z, p_x_given_z)


def test_fit_says_what_it_needs_from_a_model() -> None:
    x = torch.rand(10, 4)
    with pytest.raises(TypeError, match=r"need a vl.LatentVariableModel .* got Linear.*loss_fn\(model, batch, epoch"):
        vl.fit(torch.nn.Linear(4, 4), x, epochs=1, device="cpu")
    with pytest.raises(TypeError, match="LatentVariableModel"):
        vl.evaluate(torch.nn.Linear(4, 4), x)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        vl.fit("a model", x, epochs=1, device="cpu")


def test_a_prior_of_another_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="the prior has 3 dimensions but latent_dim is 2"):
        vl.VAE(4, 2, prior=vl.MixturePrior(3))
    with pytest.raises(TypeError, match="prior must be a vae_lib prior"):
        vl.VAE(4, 2, prior=torch.distributions.Normal(0.0, 1.0))


def test_a_categorical_likelihood_needs_its_grey_levels() -> None:
    with pytest.raises(ValueError, match="needs levels"):
        vl.VAE(4, 2, likelihood="categorical")
