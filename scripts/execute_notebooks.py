"""Execute chapters from their MyST text files and store the results, with outputs, in the paired .ipynb.

    python scripts/execute_notebooks.py [notebooks/01_latent_variable_models.md ...]

With no arguments every ``notebooks/*.md`` is executed. The kernel runs in ``notebooks/``, as nbval's
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
    nbformat.validate(notebook)
    jupytext.write(notebook, text_file.with_suffix(".ipynb"), fmt="ipynb")
    return seconds


def main(arguments: list[str]) -> int:
    files = [Path(a).resolve() for a in arguments] or sorted((ROOT / "notebooks").glob("*.md"))
    for text_file in files:
        if text_file.suffix != ".md" or not text_file.exists():
            print(f"not a chapter text file: {text_file}", file=sys.stderr)
            return 2
        print(f"executing {text_file.relative_to(ROOT)} ...", flush=True)
        print(f"  done in {execute(text_file):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
