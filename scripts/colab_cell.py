"""The first cell of every chapter: in Google Colab, install vae_lib from the repository of ``_config.yml``.

    python scripts/colab_cell.py          # write the cell into every notebooks/*.md and its .ipynb
    python scripts/colab_cell.py --check  # only say which chapters differ (exit status 1 if any)

The Git URL comes from ``repository.url`` and ``repository.branch`` of ``_config.yml``, the same place the
book's Colab and Binder buttons take it from, so a fork that changes them gets install cells that install
its own library (``make colab-cells``, which ``make notebooks`` runs first). Only the cell's source changes
in the ``.ipynb``: outside Colab the cell does nothing, so its stored result stays what it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parent.parent
TAGS = ["remove-cell"]
# Lines of at most 77 characters, as every chapter's code. {requirement} is "vae_lib @ git+URL@REF".
TEMPLATE = """\
# In Google Colab, install the book's library from its repository; anywhere
# else this cell does nothing. --no-deps on purpose: Colab's own PyTorch,
# NumPy, matplotlib and scikit-learn stay (the pinned PyTorch is a CUDA build
# of gigabytes, and replacing imported packages would need a restart), and
# the lines after the install say when Colab's torch differs from the pin.
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "{requirement}"],
        check=True,
    )
    from importlib.metadata import requires, version

    pin = next(r for r in requires("vae_lib") if r.startswith("torch=="))
    if version("torch").split("+")[0] != pin.removeprefix("torch=="):
        print(f"Note: this runtime has torch {{version('torch')}}; the book's "
              f"outputs come from {{pin}}, so numbers may differ slightly.")"""


def install_url(config_file: Path = ROOT / "_config.yml") -> str:
    """``git+URL@BRANCH`` of the book's repository, from ``_config.yml``."""
    repository = yaml.safe_load(config_file.read_text())["repository"]
    return f"git+{repository['url']}@{repository.get('branch', 'main')}"


def render(url: str) -> str:
    """The install cell's source for a pip URL such as ``git+https://github.com/o/r@main``."""
    return TEMPLATE.format(requirement=f"vae_lib @ {url}")


def install_cell(notebook: object) -> object:
    """The chapter's first code cell, where the install cell belongs."""
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


def differs(text_file: Path, source: str) -> bool:
    cell = install_cell(jupytext.read(text_file))
    return cell.source != source or cell.metadata.get("tags") != TAGS


def write(text_file: Path, source: str) -> None:
    """Replace the install cell's source in the .md (in place, text untouched around it) and the .ipynb."""
    cell = install_cell(jupytext.read(text_file))
    if cell.metadata.get("tags") != TAGS:
        raise SystemExit(f"{text_file.name}: the first code cell is not the install cell (tags {TAGS})")
    text = text_file.read_text()
    if text.count(cell.source) != 1:
        raise SystemExit(f"{text_file.name}: cannot find the install cell's source exactly once")
    text_file.write_text(text.replace(cell.source, source))
    notebook_file = text_file.with_suffix(".ipynb")
    notebook = jupytext.read(notebook_file)
    install_cell(notebook).source = source
    jupytext.write(notebook, notebook_file, fmt="ipynb")


def main(arguments: list[str]) -> int:
    source = render(install_url())
    stale = [text_file for text_file in sorted((ROOT / "notebooks").glob("*.md")) if differs(text_file, source)]
    if "--check" in arguments:
        for text_file in stale:
            print(f"{text_file.relative_to(ROOT)}: the install cell differs (make colab-cells)")
        return 1 if stale else 0
    for text_file in stale:
        write(text_file, source)
        print(f"wrote the install cell of {text_file.relative_to(ROOT)} and its .ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
