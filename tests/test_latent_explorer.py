"""book/_ext/latent_explorer.py: which export a figure takes from its notebook, and its words.

The whole path (build, page, JavaScript) is tested by tests/test_browser.py on the built book.
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch

import vae_lib as vl
from vae_lib.export import MIME_TYPE

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("latent_explorer", ROOT / "book" / "_ext" / "latent_explorer.py")
latent_explorer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(latent_explorer)


def payload(name: str) -> dict:
    vl.seed_everything(0)
    vae = vl.VAE(64, 2, (16,))
    points = torch.tensor([[1.0, 2.0], [3.0, 4.0], [-0.04, 0.0]])
    return vl.export_decoder(vae.decoder, points, torch.tensor([7, 7, 1]), (8, 8), name=name).payload


def notebook_document(*payloads: dict) -> dict:
    """A document as myst-nb leaves it while it reads a notebook: its renderer reaches the notebook."""
    outputs = [nbformat.v4.new_output("display_data", data={MIME_TYPE: p, "text/plain": "..."}) for p in payloads]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("export", outputs=outputs)])
    client = SimpleNamespace(notebook=notebook)
    return {"nb_renderer": SimpleNamespace(renderer=SimpleNamespace(nb_client=client))}


def test_the_figure_takes_the_export_of_its_name() -> None:
    first, second = payload("first"), payload("second")
    assert latent_explorer.find_export(notebook_document(first, second), "second") == second


def test_a_missing_doubled_or_foreign_export_is_an_error_that_says_so() -> None:
    with pytest.raises(ValueError, match="no output of this notebook holds the decoder export 'other'"):
        latent_explorer.find_export(notebook_document(payload("first")), "other")
    with pytest.raises(ValueError, match="2 outputs of this notebook hold a decoder export named 'twice'"):
        latent_explorer.find_export(notebook_document(payload("twice"), payload("twice")), "twice")
    old = payload("old") | {"format": "vae-book/decoder-export/0"}
    with pytest.raises(ValueError, match="re-run its notebook"):
        latent_explorer.find_export(notebook_document(old), "old")
    with pytest.raises(ValueError, match="works in notebooks only"):
        latent_explorer.find_export({}, "first")


def test_the_words_give_each_labels_centre() -> None:
    words = latent_explorer.describe(payload("first"))
    assert "latent means of 3 test digits" in words
    assert "1 around (0.0, 0.0); 7 around (2.0, 3.0)" in words  # -0.04 rounds to 0.0, not -0.0
