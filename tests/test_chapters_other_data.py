"""Chapters 5-8 on MNIST-format data: each runs end to end under ``VAE_SMOKE=1`` on a small set this test
writes (tests/idx_files.py, torchvision's layout, no network), from a working directory of its own.

The stored outputs are the digits'; these runs check that every shape, grey-level count and figure follows
the data (``VAE_DATASET``) and that the chapter's shape and sanity asserts hold there. Each chapter's time
is printed (pytest -s), never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jupytext
import pytest
from idx_files import write_idx_dataset
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = [ROOT / "notebooks" / f"{name}.md" for name in (
    "05_training_on_digits", "06_log_likelihood", "07_conditional_vae", "08_regularization_and_collapse"
)]  # fmt: skip


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("idx")
    for name in ("mnist", "fashion-mnist"):
        write_idx_dataset(root, name, n_train=600, n_test=100)
    return root


def execute(chapter: Path, workdir: Path, environment: dict[str, str]) -> float:
    """Run ``chapter`` top to bottom in a fresh kernel started in ``workdir``; return the seconds it took."""
    notebook = jupytext.read(chapter)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    ).execute(env={**os.environ, **environment})
    return time.perf_counter() - started


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem[:2])
def test_chapter_runs_under_smoke_on_mnist_format_data(
    chapter: Path, dataset: str, data_root: Path, tmp_path: Path
) -> None:
    environment = {"VAE_DATASET": dataset, "VAE_DATA_ROOT": str(data_root), "VAE_SMOKE": "1", "VAE_SEED": "0"}
    seconds = execute(chapter, tmp_path, environment)
    print(f"{chapter.stem} on {dataset} under VAE_SMOKE=1: {seconds:.1f} s")
    assert not list(tmp_path.iterdir()), f"{chapter.name} wrote into its working directory: {list(tmp_path.iterdir())}"
