"""Property-based tests: vae_lib's public functions on random shapes, dtypes, devices and values.

Every call either returns a correct result (the right shape, no NaN, finite where the inputs are moderate)
or raises a clear ``ValueError``/``TypeError``; any other exception (a crash deep inside torch) fails.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_lib as vl

CLEAR = (ValueError, TypeError)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FLOAT_DTYPES = [torch.float16, torch.float32, torch.float64]
# derandomize: the same examples every run, so that two `make test` runs in a row agree.
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

values = st.one_of(
    st.floats(-5, 5, width=32),
    st.sampled_from([0.0, 1.0, -1.0, 1e30, -1e30, 3e38, math.nan, math.inf, -math.inf]),
)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
dtypes = st.sampled_from([*FLOAT_DTYPES, torch.int64, torch.bool])


@st.composite
def tensors(draw, shape=None, dtype=None, device=None, elements=values):
    shape = draw(shapes) if shape is None else shape
    dtype = draw(dtypes) if dtype is None else dtype
    device = draw(st.sampled_from(DEVICES)) if device is None else device
    flat = draw(st.lists(elements, min_size=math.prod(shape), max_size=math.prod(shape)))
    data = torch.tensor(flat, dtype=torch.float64).reshape(shape)
    if not dtype.is_floating_point:
        data = torch.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0).clamp(-9, 9)
    return data.to(dtype).to(device)


def moderate(*arrays: torch.Tensor) -> bool:
    """Finite inputs small enough that every formula stays finite in the inputs' precision."""
    return all(a.is_floating_point() and a.numel() and bool((a.abs() <= 5).all()) for a in arrays)


def call(function, *args, **kwargs):
    """The result, or None when the call refused its input with a clear error."""
    try:
        return function(*args, **kwargs)
    except CLEAR as error:
        assert str(error), "an error must say what was wrong"
        return None


def check_result(result: torch.Tensor, *inputs: torch.Tensor) -> None:
    assert not bool(torch.isnan(result).any()), "a silent NaN"
    if moderate(*inputs) and all(i.dtype != torch.float16 for i in inputs):
        assert bool(torch.isfinite(result).all())


@FUZZ
@given(
    x=tensors(), mean=tensors(), sigma=st.sampled_from([1.0, 0.1, 3, 0.0, -1.0, math.nan, math.inf, 1e-30, True, "1"])
)
def test_gaussian_log_likelihood(x, mean, sigma) -> None:
    result = call(vl.gaussian_log_likelihood, x, mean, sigma)
    if result is not None:
        assert result.shape == torch.broadcast_shapes(x.shape, mean.shape)[:-1]
        check_result(result, x, mean)


@FUZZ
@given(x=tensors(elements=st.sampled_from([0.0, 1.0, 0.5, 0.25, 2.0, -1.0, math.nan])), logits=tensors())
def test_bernoulli_log_likelihood(x, logits) -> None:
    result = call(vl.bernoulli_log_likelihood, x, logits)
    if result is not None:
        assert bool(((x >= 0) & (x <= 1)).all())
        assert bool((result <= 1e-3).all()) or result.dtype == torch.float16  # a log-probability of binary data
        check_result(result, x, logits)


@FUZZ
@given(mu=tensors(), log_var=tensors())
def test_kl_standard_normal(mu, log_var) -> None:
    result = call(vl.kl_standard_normal, mu, log_var)
    if result is not None:
        assert bool((result >= -1e-2).all()), "a KL divergence is never negative"
        check_result(result, mu, log_var)
        if moderate(mu, log_var) and mu.dtype == log_var.dtype == torch.float64:
            q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
            expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
            torch.testing.assert_close(result, expected)


def test_huge_differences_with_huge_variances_are_exact_not_nan() -> None:
    """Found while fuzzing: (1e20 - -1e20)^2 overflows float32 while exp(-200) underflows; inf * 0 was NaN.
    The mean term is (2e20)^2 / e^200 ~ 5e-47, so the KL is (e^-200 - 1 + 200) / 2 = 99.5."""
    one = lambda v: torch.tensor([[v]])  # noqa: E731
    assert math.isclose(vl.kl_diagonal_gaussians(one(1e20), one(0.0), one(-1e20), one(200.0)).item(), 99.5)
    log_prob = vl.diagonal_gaussian_log_prob(one(1e20), one(-1e20), one(200.0)).item()
    assert math.isclose(log_prob, -0.5 * (math.log(2 * math.pi) + 200.0), rel_tol=1e-6)
    # z exactly at mu as the variance goes to 0: the squared term is 0, not 0 * inf.
    assert math.isclose(vl.diagonal_gaussian_log_prob(one(1.0), one(1.0), one(-1e30)).item(), 5e29, rel_tol=1e-6)


@FUZZ
@given(st.data())
def test_kl_diagonal_gaussians_and_log_probs(data) -> None:
    shape = data.draw(shapes)
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES))
    same = tensors(shape=shape, dtype=dtype)
    mu_q, log_var_q, mu_p, log_var_p = (data.draw(same) for _ in range(4))
    if data.draw(st.booleans()):
        mu_p = data.draw(tensors())  # anything at all: another shape, dtype or device
    result = call(vl.kl_diagonal_gaussians, mu_q, log_var_q, mu_p, log_var_p)
    if result is not None:
        assert bool((result >= -1e-2).all())
        check_result(result, mu_q, log_var_q, mu_p, log_var_p)
    z = data.draw(tensors())
    result = call(vl.diagonal_gaussian_log_prob, z, mu_q, log_var_q)
    if result is not None:
        check_result(result, z, mu_q, log_var_q)
    result = call(vl.standard_normal_log_prob, z)
    if result is not None:
        check_result(result, z)


@FUZZ
@given(mu=tensors(), log_var=tensors(), n_samples=st.sampled_from([None, 1, 3, 0, -2, True, 2.5]))
def test_reparameterize(mu, log_var, n_samples) -> None:
    result = call(vl.reparameterize, mu, log_var, n_samples)
    if result is not None:
        expected = mu.shape if n_samples is None else (n_samples, *mu.shape)
        assert result.shape == expected and result.dtype == torch.promote_types(mu.dtype, log_var.dtype)
        check_result(result, mu, log_var)


sizes = st.sampled_from([1, 2, 3, 0, -1, True, 2.0, "3"])


@FUZZ
@given(
    data_dim=sizes,
    latent_dim=sizes,
    hidden=st.lists(sizes, max_size=2),
    likelihood=st.sampled_from(["bernoulli", "gaussian", "categorical", "poisson", None]),
    sigma=st.sampled_from([None, 0.5, 0.0, -1.0, math.nan]),
    x=tensors(elements=st.sampled_from([0.0, 1.0, 0.5, 2.0, math.nan, 1e30])),
    k=st.sampled_from([1, 3, 0]),
)
def test_vae_construction_elbo_and_importance_bound(data_dim, latent_dim, hidden, likelihood, sigma, x, k) -> None:
    model = call(vl.VAE, data_dim, latent_dim, hidden, likelihood, sigma)
    if model is None:
        return
    model = model.to(x.device)
    terms = call(model.elbo, x)
    if terms is not None:
        assert terms.elbo.shape == x.shape[:-1]
        for term in terms:
            assert not bool(torch.isnan(term).any())
    bound = call(model.importance_log_likelihood, x, k=k)
    if bound is not None:
        assert bound.shape == x.shape[:-1] and not bool(torch.isnan(bound).any())
    samples = call(model.sample, data_dim)
    if samples is not None:
        assert samples.shape == (data_dim, model.data_dim)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.sampled_from([0, 1, -1, 2**40, True, 1.5, None]),
    val_fraction=st.sampled_from([0.15, 0.0, 1.0, 0.5, -0.1, math.nan]),
    test_fraction=st.sampled_from([0.2, 0.0, 0.6, math.nan]),
    threshold=st.sampled_from([0.5, 0.0, 1.0, -0.5, math.nan]),
)
def test_load_digits_arguments(seed, val_fraction, test_fraction, threshold) -> None:
    splits = call(vl.load_digits, seed, val_fraction, test_fraction)
    if splits is None:
        return
    sizes = [len(splits.train), len(splits.val), len(splits.test)]
    assert sum(sizes) == 1797 and min(sizes) > 0
    binarized = call(splits.binarized, threshold)
    if binarized is not None:
        assert set(binarized.train.x.unique().tolist()) <= {0.0, 1.0}


TRAIN = torch.bernoulli(torch.full((48, 6), 0.4, dtype=torch.float32), generator=torch.Generator().manual_seed(0))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    epochs=st.sampled_from([1, 2, 0, -1, True, 1.0]),
    batch_size=st.sampled_from([16, 1000, 0, -4, 2.0]),
    learning_rate=st.sampled_from([1e-3, 0.0, -1.0, math.nan, math.inf, 1e300, "0.1"]),
    patience=st.sampled_from([None, 1, 0]),
    seed=st.sampled_from([0, 5, -1, 1.5]),
    val=st.sampled_from([None, "train", "wrong-width", "empty"]),
)
def test_fit_arguments(epochs, batch_size, learning_rate, patience, seed, val) -> None:
    validation = {"train": TRAIN[:16], "wrong-width": TRAIN[:16, :4], "empty": TRAIN[:0], None: None}[val]
    vl.seed_everything(0)
    model = vl.VAE(6, 2, (4,))
    try:
        history = vl.fit(
            model, TRAIN, validation, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            patience=patience, seed=seed, device="cpu", progress=False,
        )  # fmt: skip
    except vl.TrainingDivergedError:
        return  # a huge learning rate diverges, and says so
    except CLEAR:
        return
    assert 1 <= len(history) <= epochs
    assert all(math.isfinite(r.train["elbo"]) for r in history.records)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_devices_or_dtypes_are_refused_clearly(device: str) -> None:
    model = vl.VAE(4, 2, (3,)).to(device)
    with pytest.raises(TypeError, match="dtype"):
        model.elbo(torch.rand(2, 4, dtype=torch.float64, device=device))
    with pytest.raises(TypeError, match="floating-point"):
        vl.kl_standard_normal(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3))
