"""``fit`` under torchrun with two CPU processes (gloo on loopback) against the same fit in one process."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "distributed_fit.py"

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict]:
    out = tmp_path_factory.mktemp("ddp") / "result"
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", VAE_DEVICE="cpu")
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(SCRIPT), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0, rank1 = (torch.load(f"{out}.{rank}", weights_only=True) for rank in (0, 1))
    spec = importlib.util.spec_from_file_location("distributed_fit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return rank0, rank1, module.train_both()


def test_both_processes_joined_one_group_and_end_with_identical_weights(runs: tuple[dict, dict, dict]) -> None:
    rank0, rank1, _ = runs
    assert rank0["world_size"] == rank1["world_size"] == 2
    for name in ("posterior_mean", "elbo"):
        for key, value in rank0[name]["state"].items():
            assert torch.equal(value, rank1[name]["state"][key]), f"{name}: {key} differs between the processes"
        assert rank0[name]["train_elbo"] == rank1[name]["train_elbo"]


def test_sharded_gradients_match_one_process_with_the_same_global_batch(runs: tuple[dict, dict, dict]) -> None:
    # Without sampling noise, two shards whose losses are weighted by their share of the batch give the
    # gradient of the whole batch: only the order of floating-point sums differs.
    rank0, _, single = runs
    for key, value in single["posterior_mean"]["state"].items():
        torch.testing.assert_close(rank0["posterior_mean"]["state"][key], value, rtol=1e-4, atol=1e-5)
    assert rank0["posterior_mean"]["train_elbo"] == pytest.approx(single["posterior_mean"]["train_elbo"], abs=1e-3)
    assert rank0["posterior_mean"]["val_elbo"] == pytest.approx(single["posterior_mean"]["val_elbo"], abs=1e-3)


def test_the_sampled_elbo_trains_to_the_same_loss(runs: tuple[dict, dict, dict]) -> None:
    # With the sampled ELBO each process draws its own noise for its rows, so the steps differ by Monte
    # Carlo noise only: the curves agree to a small fraction of a nat.
    rank0, _, single = runs
    assert rank0["elbo"]["train_elbo"] == pytest.approx(single["elbo"]["train_elbo"], abs=0.1)
    assert rank0["elbo"]["val_elbo"] == pytest.approx(single["elbo"]["val_elbo"], abs=0.1)
