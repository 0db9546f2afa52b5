"""Execute chapters from their MyST text files and store the results, with outputs, in the paired .ipynb.

    python scripts/execute_notebooks.py [notebooks/01_latent_variable_models.md ...]

With no arguments every ``notebooks/*.md`` is executed. With ``VAE_DATASET`` set to another data set than
the digits, the results go to ``notebooks/runs/`` and the stored notebooks stay as they are. The kernel runs in ``notebooks/``, as nbval's
does, on the device ``$VAE_DEVICE`` selects (``make notebooks`` sets ``cpu``: stored outputs are CPU
outputs). The text file is the source: run this after every edit so that the stored outputs that nbval
compares are the ones the current code computes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(text_file: Path, timeout: int = 900) -> float:
    # A non-interactive MPLBACKEND (Agg) would reach the kernel and replace the inline backend: the stored
    # notebook, and so the book, would have no figures.
    os.environ.pop("MPLBACKEND", None)
    notebook = jupytext.read(text_file)
    notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,md:myst"
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(text_file.parent)}},
        record_timing=False,
    ).execute()
    seconds = time.perf_counter() - started
    # An exception raised while a figure is drawn (after the cell ran) is stored as an error output
    # without failing the execution: refuse to store such a notebook.
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise RuntimeError(f"{text_file.name}, cell {index}: {output.get('ename')}: {output.get('evalue')}")
    notebook.metadata.pop("widgets", None)
    number_cells(notebook)
    nbformat.validate(notebook)
    jupytext.write(notebook, output_path(text_file), fmt="ipynb")
    return seconds


def number_cells(notebook: nbformat.NotebookNode) -> None:
    """Cell ids by position: jupytext draws random ones at every read, which would rewrite every stored
    notebook at every execution and bury the output changes in the diff."""
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"


def output_path(text_file: Path) -> Path:
    """The paired notebook, whose outputs nbval checks, holds the digits run; a run on another data set
    (``VAE_DATASET``) goes to ``notebooks/runs/`` instead, so it never replaces the stored outputs."""
    dataset = os.environ.get("VAE_DATASET", "digits")
    if dataset == "digits":
        return text_file.with_suffix(".ipynb")
    runs = text_file.parent / "runs"
    runs.mkdir(exist_ok=True)
    return runs / f"{text_file.stem}.{dataset}.ipynb"


def main(arguments: list[str]) -> int:
    files = [Path(a).resolve() for a in arguments] or sorted((ROOT / "notebooks").glob("*.md"))
    for text_file in files:
        if text_file.suffix != ".md" or not text_file.exists():
            print(f"not a chapter text file: {text_file}", file=sys.stderr)
            return 2
        print(f"executing {text_file.relative_to(ROOT)} ...", flush=True)
        print(f"  done in {execute(text_file):.1f} s: {output_path(text_file).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
