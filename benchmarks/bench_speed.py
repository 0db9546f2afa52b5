"""Training speed on the CPU: vae_lib's ``fit`` against a plain DataLoader loop, and against the matmul rate.

Prints one JSON object per line (``name``, ``value``, ``unit``; comparisons add ``baseline`` and ``ratio``):

- ``fit_throughput``: examples per second of ``vl.fit`` for the MNIST-sized VAE (784-400-20, Bernoulli)
  at batch 128, on random binary data of MNIST's shape, against the textbook loop (``DataLoader`` with
  ``shuffle=True``, Adam, the same model, loss and data) measured in the same run. Goal: ratio >= 1.2.
  ``pair_ratios`` are the ratios of each fit run and the reference run right after it, and
  ``median_pair_ratio`` their median.
- ``matmul_rate``: the machine's float32 GFLOP/s on a large square matmul (the achievable peak).
- ``train_step_rate``: the GFLOP/s a ``fit`` step achieves (the linear layers' forward and backward
  FLOPs divided by the time), as a fraction of ``matmul_rate``. Goal: ratio >= 0.5.
- ``step_matmuls_only_rate``: the same FLOPs over the time of the step's matrix products alone, at the
  step's shapes on warm caches: the ceiling ``train_step_rate`` would reach if nothing else took time.

Each figure is the median of ``--repeats`` runs, the two loops interleaved so that a load change on a
shared machine hits both. Run: ``python benchmarks/bench_speed.py [--repeats 9] [--epochs 5]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _report import emit
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vae_lib as vl

DATA_DIM, HIDDEN, LATENT, BATCH = 784, 400, 20, 128


def reference_loop(model: nn.Module, x: torch.Tensor, epochs: int, seed: int) -> None:
    """The loop a tutorial writes: DataLoader, zero_grad, backward, step."""
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for (batch,) in loader:
            loss = vl.negative_elbo_loss(model.elbo(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    rates = []
    for _ in range(repeats):
        seconds = timed(torch.mm, a, b)
        rates.append(2 * size**3 / seconds / 1e9)
    return statistics.median(rates)


def step_flops(model: nn.Module, batch: int) -> int:
    """Forward (2BIO) and backward (4BIO: input and weight gradients) FLOPs of every linear layer; the first
    encoder layer needs no input gradient (the data do not require one)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    total = sum(6 * batch * m.in_features * m.out_features for m in linears)
    first = model.encoder.body[0]
    return total - 2 * batch * first.in_features * first.out_features


def gemm_only_seconds(model: nn.Module, batch: int, repeats: int = 50) -> float:
    """Seconds for the step's matrix products alone, at its shapes, run back to back on warm caches: a
    ceiling for the training step, which also runs the activations, the loss, autograd and Adam."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first = model.encoder.body[0]
    pairs = []
    for layer in linears:
        n_in, n_out = layer.in_features, layer.out_features
        pairs.append((torch.randn(batch, n_in), torch.randn(n_in, n_out)))  # forward
        pairs.append((torch.randn(n_out, batch), torch.randn(batch, n_in)))  # weight gradient
        if layer is not first:
            pairs.append((torch.randn(batch, n_out), torch.randn(n_out, n_in)))  # input gradient
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        for a, b in pairs:
            torch.mm(a, b)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--examples", type=int, default=BATCH * 40)
    args = parser.parse_args()

    vl.seed_everything(0)
    x = torch.bernoulli(torch.full((args.examples, DATA_DIM), 0.13))
    template = vl.VAE(DATA_DIM, LATENT, (HIDDEN,))
    examples = args.epochs * args.examples
    fit_seconds, reference_seconds = [], []
    vl.fit(copy.deepcopy(template), x, epochs=1, device="cpu", progress=False)  # warm-up
    for repeat in range(args.repeats):
        model = copy.deepcopy(template)
        fit_seconds.append(
            timed(
                lambda m=model, r=repeat: vl.fit(
                    m, x, epochs=args.epochs, batch_size=BATCH, seed=r, device="cpu", progress=False
                )
            )
        )
        reference_seconds.append(timed(reference_loop, copy.deepcopy(template), x, args.epochs, repeat))
    fit_rate = examples / statistics.median(fit_seconds)
    reference_rate = examples / statistics.median(reference_seconds)
    conditions = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "model": f"{DATA_DIM}-{HIDDEN}-{LATENT}",
        "batch": BATCH,
    }
    # Load on a shared machine comes in bursts of seconds: the ratio within each adjacent pair of runs is
    # steadier than the ratio of the medians, so print both.
    pair_ratios = [reference / fit for fit, reference in zip(fit_seconds, reference_seconds)]
    emit(
        "fit_throughput",
        fit_rate,
        "examples/s",
        reference_rate,
        median_pair_ratio=round(statistics.median(pair_ratios), 4),
        pair_ratios=[round(r, 3) for r in pair_ratios],
        **conditions,
    )

    peak = matmul_gflops()
    emit("matmul_rate", peak, "GFLOP/s", threads=torch.get_num_threads())
    steps = args.epochs * -(-args.examples // BATCH)
    achieved = step_flops(template, BATCH) * steps / statistics.median(fit_seconds) / 1e9
    emit("train_step_rate", achieved, "GFLOP/s", peak, **conditions)
    ceiling = step_flops(template, BATCH) / gemm_only_seconds(template, BATCH) / 1e9
    emit("step_matmuls_only_rate", ceiling, "GFLOP/s", peak, **conditions)


if __name__ == "__main__":
    main()
