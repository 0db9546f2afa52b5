"""The repository's own consistency: pinned environments agree, notebooks are paired, executed and listed."""

import importlib.util
import re
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEXT_FILES = sorted((ROOT / "notebooks").glob("*.md"))


def pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins |= set(extra)
    return pins


def test_environment_yml_names_the_same_pins_as_pyproject() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    conda_pins = {line for line in pip_section if not line.startswith("-")}
    assert conda_pins == pyproject_pins()
    assert "python=3.11" in environment["dependencies"]


def test_every_dependency_is_pinned_exactly() -> None:
    unpinned = [pin for pin in pyproject_pins() if "==" not in pin]
    assert not unpinned, f"pin these exactly: {unpinned}"
    pins = dict(pin.split("==") for pin in pyproject_pins())
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")


def test_book_configuration_fails_on_errors() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["allow_errors"] is False
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_every_chapter_is_in_the_table_of_contents_and_every_entry_exists() -> None:
    listed = toc_files()
    for text_file in TEXT_FILES:
        assert f"notebooks/{text_file.stem}" in listed, f"{text_file.name} is not in _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").exists() for suffix in (".md", ".ipynb")), f"{entry} is missing"


def test_there_are_chapters() -> None:
    assert TEXT_FILES, "no notebooks/*.md found"


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_text_file_and_notebook_are_in_sync(text_file: Path) -> None:
    notebook_file = text_file.with_suffix(".ipynb")
    assert notebook_file.exists(), f"{notebook_file.name} is missing: run `make notebooks`"
    text = jupytext.read(text_file)
    stored = jupytext.read(notebook_file)
    text_cells = [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in text.cells]
    stored_cells = [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in stored.cells]
    assert text_cells == stored_cells, f"{text_file.name} and {notebook_file.name} differ: run `make notebooks`"


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_top_to_bottom(text_file: Path) -> None:
    notebook = nbformat.read(text_file.with_suffix(".ipynb"), as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "store the notebook executed in one fresh run: `make notebooks`"
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"a stored output is an error: {cell.source[:80]!r}"


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_chapter_asserts_and_checks_its_claims(text_file: Path) -> None:
    notebook = jupytext.read(text_file)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert any("assert" in c.source for c in code), "a chapter asserts its claims"
    assert any("nbval-check-output" in c.metadata.get("tags", []) for c in code), "a chapter has checked outputs"
    assert "What you will learn" in notebook.cells[0].source + notebook.cells[1].source


CODE_COLUMNS = 77  # characters the page's code column shows at 1280 px (tests/test_browser.py measures it)


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_chapter_code_fits_the_page(text_file: Path) -> None:
    notebook = jupytext.read(text_file)
    too_wide = [
        f"cell {index}: {line!r} ({len(line)} characters)"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if len(line) > CODE_COLUMNS
    ]
    assert not too_wide, f"{text_file.name}: code lines wider than {CODE_COLUMNS} characters: {too_wide}"


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_stored_notebook_has_its_figures(text_file: Path) -> None:
    """Figures are stored as PNG outputs (a non-interactive MPLBACKEND during execution would drop them)."""
    notebook = nbformat.read(text_file.with_suffix(".ipynb"), as_version=4)
    images = 0
    for cell in notebook.cells:
        cell_images = sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
        images += cell_images
        if "figure" in cell.metadata.get("mystnb", {}):
            assert cell_images, f"the figure cell {cell.metadata['mystnb']['figure'].get('name')} has no image"
    assert images > 0, f"{text_file.name} stores no figure"


def test_a_run_on_another_data_set_never_replaces_the_stored_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    chapter = tmp_path / "05_training_on_digits.md"
    monkeypatch.delenv("VAE_DATASET", raising=False)
    assert script.output_path(chapter) == tmp_path / "05_training_on_digits.ipynb"
    monkeypatch.setenv("VAE_DATASET", "mnist")
    assert script.output_path(chapter) == tmp_path / "runs" / "05_training_on_digits.mnist.ipynb"


def test_every_bibliography_entry_is_cited() -> None:
    """An entry of book/references.bib that no page cites is a reference the book does not use."""
    keys = re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.MULTILINE)
    pages = [*ROOT.glob("book/*.md"), *ROOT.glob("notebooks/*.md")]
    text = "\n".join(page.read_text() for page in pages)
    cited = {key for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", text) for key in group.split(",")}
    uncited = sorted(set(keys) - {key.strip() for key in cited})
    assert keys and not uncited, f"book/references.bib entries no page cites: {uncited}"
