"""Shared test settings: tests run on the CPU in float64 where exactness is checked."""

import matplotlib
import pytest
import torch

# Select Agg in this process only: an MPLBACKEND variable would reach nbval's kernels, which then draw no figures.
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
