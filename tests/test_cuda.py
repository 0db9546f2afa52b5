"""The library on a real GPU: skipped where torch sees none (CI, the maintainers' 2-core machines).

Run on a GPU machine with ``python -m pytest tests/test_cuda.py``. The other tests replace
``torch.cuda`` with fakes where they check device choices; these run the real kernels, generators
and transfers that a reader with a GPU meets in chapters 5-8.
"""

import subprocess
import sys

import pytest
import torch

import vae_lib as vl

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible to torch")

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits() -> vl.DatasetSplits:
    return vl.load_digits(seed=0)


def small_vae(data: vl.DatasetSplits, seed: int = 0) -> vl.VAE:
    vl.seed_everything(seed)
    return vl.VAE(data.data_dim, 2, (64,), likelihood="categorical", levels=data.grey_levels)


def test_fit_trains_on_the_gpu_and_repeats_itself(digits: vl.DatasetSplits) -> None:
    runs = []
    for _ in range(2):
        model = small_vae(digits)
        history = vl.fit(model, digits.train.x, digits.val.x, epochs=3, seed=1, device=CUDA)
        assert model.device.type == "cuda"
        runs.append(history.series("val", "elbo"))
    assert all(torch.isfinite(torch.tensor(run)).all() for run in runs)
    # The same seed on the same GPU gives the same run (CUBLAS_WORKSPACE_CONFIG makes cuBLAS repeatable).
    torch.testing.assert_close(torch.tensor(runs[0]), torch.tensor(runs[1]), rtol=1e-5, atol=1e-4)
    assert runs[0][-1] > runs[0][0], "three epochs on the GPU should raise the validation ELBO"


def test_gpu_and_cpu_agree_on_the_elbo_of_the_same_draws(digits: vl.DatasetSplits) -> None:
    model = small_vae(digits)
    x = digits.test.x[:64]
    epsilon = torch.randn(x.shape[0], model.latent_dim, generator=torch.Generator().manual_seed(0))

    def elbo_on(device: torch.device) -> torch.Tensor:
        on_device = model.to(device)
        q_z = on_device.encode(x.to(device))
        z = q_z.mean + q_z.stddev * epsilon.to(device)
        terms = vl.elbo(x.to(device), q_z, z, on_device.decode(z), on_device.prior)
        return terms.elbo.cpu()

    with torch.no_grad():
        torch.testing.assert_close(elbo_on(CUDA), elbo_on(torch.device("cpu")), rtol=1e-4, atol=1e-3)


def test_importance_estimate_on_the_gpu_matches_the_cpu_within_its_noise(digits: vl.DatasetSplits) -> None:
    model = small_vae(digits)
    vl.fit(model, digits.train.x, epochs=2, seed=2, device="cpu")
    x = digits.test.x[:32]
    with torch.no_grad():
        on_cpu = model.importance_log_likelihood(x, k=2000, generator=torch.Generator().manual_seed(3))
        model.to(CUDA)
        on_gpu = model.importance_log_likelihood(
            x.to(CUDA), k=2000, generator=torch.Generator(CUDA).manual_seed(3), memory_budget=2**20
        )
    # Different random streams (and chunks): per image the estimates differ by their Monte Carlo noise, so
    # their mean difference must sit within four standard errors of zero.
    assert on_gpu.device.type == "cuda"
    difference = on_gpu.cpu() - on_cpu
    standard_error = difference.std() / difference.numel() ** 0.5
    assert difference.mean().abs() < 4 * standard_error, (difference.mean(), standard_error)


def test_a_gpu_checkpoint_loads_on_the_cpu_and_resumes_on_the_gpu(digits: vl.DatasetSplits, tmp_path) -> None:
    model = small_vae(digits)
    path = tmp_path / "run.pt"
    trainer = vl.Trainer(model, digits.train.x, digits.val.x, seed=4, device=CUDA, checkpoint_path=path)
    trainer.train(2)
    on_cpu = vl.load_model(path, map_location="cpu")
    x = digits.test.x[:16]
    with torch.no_grad():
        torch.testing.assert_close(on_cpu.reconstruct(x), model.reconstruct(x.to(CUDA)).cpu(), rtol=1e-4, atol=1e-5)
    continued = vl.Trainer(small_vae(digits, seed=9), digits.train.x, digits.val.x, seed=4, device=CUDA)
    continued.resume(path)
    assert continued.epoch == 2
    continued.train(1)
    trainer.train(1)
    torch.testing.assert_close(
        torch.tensor(continued.history.series("val", "elbo")),
        torch.tensor(trainer.history.series("val", "elbo")),
        rtol=1e-5,
        atol=1e-4,
    )


def test_evaluate_takes_cpu_data_for_a_gpu_model(digits: vl.DatasetSplits) -> None:
    model = small_vae(digits)
    on_cpu = vl.evaluate(model, digits.val.x)
    on_gpu = vl.evaluate(model.to(CUDA), digits.val.x)
    # Other random streams on the two devices: the same model's ELBO within its Monte Carlo noise.
    assert abs(float(on_gpu.elbo) - float(on_cpu.elbo)) < 1.0


def test_sampling_with_a_gpu_generator(digits: vl.DatasetSplits) -> None:
    model = small_vae(digits).to(CUDA)
    generator = torch.Generator(CUDA).manual_seed(5)
    with torch.no_grad():
        images = model.sample(8, mean=False, generator=generator)
    assert images.device.type == "cuda" and images.shape == (8, digits.data_dim)


def test_the_cli_trains_on_the_gpu(tmp_path) -> None:
    out = tmp_path / "model.pt"
    command = [sys.executable, "-m", "vae_lib", "train", "--epochs", "1", "--device", "cuda", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert vl.load_model(out).latent_dim == 2
