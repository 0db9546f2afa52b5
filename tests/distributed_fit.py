"""Two small fits, run by tests/test_distributed.py once under torchrun and once in a single process.

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_fit.py OUT_PREFIX

Each process saves its results to ``OUT_PREFIX.<rank>``.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

import vae_lib as vl


def posterior_mean_loss(
    model: vl.VAE, batch: tuple[torch.Tensor, ...], epoch: int, generator: torch.Generator
) -> tuple[torch.Tensor, vl.ELBOTerms]:
    """The ELBO with z at the posterior mean: no sampling noise, so sharding must change nothing but rounding."""
    x = batch[0]
    q_z = model.encode(x)
    z = q_z.mean[None]  # (1, B, d)
    terms = vl.elbo(x, q_z, z, model.decode(z), model.prior)
    return -terms.elbo.mean(), terms


def train_both() -> dict[str, dict]:
    splits = vl.load_digits()
    # 250 rows in batches of 64: the last batch (58 rows) splits unevenly, which the shard weights must handle.
    train, val = splits.train.x[:250], splits.val.x[:100]
    results = {}
    for name, loss_fn in (("posterior_mean", posterior_mean_loss), ("elbo", vl.elbo_loss)):
        vl.seed_everything(0)
        model = vl.VAE(64, 2, (32,))
        history = vl.fit(
            model, train, val, epochs=2, batch_size=64, seed=3, device="cpu", loss_fn=loss_fn, progress=False
        )
        results[name] = {
            "state": {key: value.detach().clone() for key, value in model.state_dict().items()},
            "train_elbo": history.series("train", "elbo"),
            "val_elbo": history.series("val", "elbo"),
        }
    return results


if __name__ == "__main__":
    results = train_both()
    rank = dist.get_rank() if dist.is_initialized() else 0
    results["world_size"] = dist.get_world_size() if dist.is_initialized() else 1
    torch.save(results, f"{sys.argv[1]}.{rank}")
