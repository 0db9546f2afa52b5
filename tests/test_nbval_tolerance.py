"""The numeric tolerance of nbval's output comparison (tests/nbval_tolerance.py): its tokenizer and
comparison, and nbval itself run on a small notebook whose stored numbers were edited."""

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from nbval_tolerance import (
    DEFAULT_ATOL,
    DEFAULT_GPU_FACTOR,
    DEFAULT_RTOL,
    Tolerance,
    cell_tolerance,
    split_numbers,
    text_differences,
)

ROOT = Path(__file__).resolve().parent.parent
TIGHT = Tolerance(Decimal("0.001"), Decimal("0.01"), "test")
EXACT = Tolerance(Decimal(0), Decimal(0), "test")


def numbers(text: str) -> list[tuple[str, Decimal, bool]]:
    return [(number.text, number.value, number.is_integer) for number in split_numbers(text)[1]]


def test_tokenizer_reads_signs_exponents_and_the_specials() -> None:
    assert numbers("-8.93 +3 1e-10 -2.5E+03 2. .5") == [
        ("-8.93", Decimal("-8.93"), False),
        ("+3", Decimal(3), True),
        ("1e-10", Decimal("1e-10"), False),
        ("-2.5E+03", Decimal("-2500"), False),
        ("2.", Decimal(2), False),
        (".5", Decimal("0.5"), False),
    ]
    specials = [value for _, value, _ in numbers("nan -inf inf NaN")]
    assert specials[0].is_nan() and specials[3].is_nan()
    assert specials[1] == Decimal("-Infinity") and specials[2] == Decimal("Infinity")


def test_tokenizer_keeps_units_words_and_separators_apart_from_numbers() -> None:
    texts, _ = split_numbers("12.5% of 3x, 1,168 images, [1, 168], 784-400-20, 2-D, float32, x_2, infinite")
    assert numbers("12.5% of 3x") == [("12.5", Decimal("12.5"), False), ("3", Decimal(3), True)]
    assert numbers("1,168 images and 100,000 draws") == [
        ("1,168", Decimal(1168), True),
        ("100,000", Decimal(100000), True),
    ]
    assert numbers("[1, 168]") == [("1", Decimal(1), True), ("168", Decimal(168), True)]
    assert numbers("784-400-20, 2-D") == [("784", 784, True), ("400", 400, True), ("20", 20, True), ("2", 2, True)]
    assert numbers("float32, x_2, infinite, 1.2.3") == [("1.2", Decimal("1.2"), False)]
    assert texts[1] == "% of " and texts[2] == "x, "


def test_floats_compare_within_atol_plus_rtol_times_the_stored_value() -> None:
    # allowed: 0.01 + 0.001 * 8.93 = 0.01893
    assert text_differences("regressor -8.93", "regressor -8.94", TIGHT) == []
    assert text_differences("regressor -8.93", "regressor -8.92", TIGHT) == []
    (difference,) = text_differences("regressor -8.93", "regressor -8.90", TIGHT)
    assert "stored -8.93, got -8.90" in difference and "differs by 0.03" in difference and "0.0189" in difference
    # decimal arithmetic on the printed digits: exactly at the bound passes (binary floats would say 0.0100...09)
    assert text_differences("0.30", "0.31", Tolerance(Decimal(0), Decimal("0.01"), "test")) == []


def test_integers_shapes_and_text_compare_exactly() -> None:
    loose = Tolerance(Decimal("0.5"), Decimal(10), "test")
    assert text_differences("1,168 images", "1,169 images", loose)
    assert text_differences("shape (8, 8)", "shape (8, 9)", loose)
    assert text_differences("active units 8 of 8", "active units 7 of 8", loose)
    assert text_differences("10375", "10375.0", loose), "an integer printed as a float is a change"
    assert text_differences("rate 0.01 nats", "rate 0.01 bits", loose)
    assert text_differences("rate 0.01 nats", "rate 0.01 0.02 nats", loose) == [
        "stored output has 1 numbers, the new one 2"
    ]
    assert text_differences("True", "False", loose)


def test_padding_around_numbers_may_change_width() -> None:
    # numpy pads a column to its widest entry, and a format spec leaves room for a sign
    assert text_differences("[-1.   -4.01  2.  ]", "[-1. -4.  2.]", TIGHT) == []
    assert text_differences("[ 1.49 -0.61]\n", "[1.49 0.61]\n", TIGHT)  # the sign still counts
    assert text_differences("rate  0.01\n", "rate 0.01\n", EXACT) == []
    assert text_differences("a b 0.01", "ab 0.01", EXACT), "spaces inside the text still count"
    assert text_differences("0.01\n0.02", "0.01 0.02", EXACT), "a line break is not padding"


def test_negative_zero_nan_and_infinity() -> None:
    assert text_differences("rate -0.00", "rate 0.00", EXACT) == []
    assert text_differences("loss nan", "loss nan", TIGHT) == []
    assert text_differences("loss nan", "loss 1.0", TIGHT)
    assert text_differences("loss 1.0", "loss nan", TIGHT)
    assert text_differences("bound inf", "bound inf", TIGHT) == []
    assert text_differences("bound inf", "bound -inf", TIGHT)
    assert text_differences("bound 1e308", "bound inf", TIGHT)


class Options:
    """The command-line options `cell_tolerance` reads, as pytest.Config.getoption gives them."""

    def __init__(self, **options: object) -> None:
        self.options = {"nbval_rtol": 0.002, "nbval_atol": 0.01, "nbval_gpu": False, "nbval_gpu_factor": 10.0}
        self.options.update(options)

    def getoption(self, name: str) -> object:
        return self.options[name]


def test_cell_metadata_overrides_the_defaults_and_the_gpu_widens_them() -> None:
    assert cell_tolerance({}, Options(), "cell") == Tolerance(Decimal("0.002"), Decimal("0.01"), "defaults")
    cell = {"nbval": {"atol": 0.05}}
    assert cell_tolerance(cell, Options(), "cell") == Tolerance(Decimal("0.002"), Decimal("0.05"), "cell metadata")
    gpu = cell_tolerance(cell, Options(nbval_gpu=True), "cell")
    assert (gpu.rtol, gpu.atol) == (Decimal("0.02"), Decimal("0.5"))
    gpu = cell_tolerance({"nbval": {"gpu_atol": 0.2}}, Options(nbval_gpu=True), "cell")
    assert (gpu.rtol, gpu.atol) == (Decimal("0.02"), Decimal("0.2"))


@pytest.mark.parametrize(
    "metadata", [{"nbval": {"rtl": 0.1}}, {"nbval": {"atol": -1}}, {"nbval": {"atol": "0.1"}}, {"nbval": [0.1]}]
)
def test_bad_cell_metadata_is_named(metadata: dict) -> None:
    with pytest.raises(ValueError, match="04_x.ipynb, Cell 3: cell metadata '?nbval"):
        cell_tolerance(metadata, Options(), "04_x.ipynb, Cell 3")


# nbval on a notebook whose cells print fixed text; each cell's stored output is edited in its own way.
STORED = -21.6123
ALLOWED = DEFAULT_ATOL + DEFAULT_RTOL * abs(STORED)
PRINTED = "ELBO {:.4f} nats per image, 1,168 images of shape (8, 8)\n"
EDITS = {
    # cell name: (stored output, cell metadata, outcome with the defaults, on a GPU, with nothing compared)
    "unchanged": (PRINTED.format(STORED), {}, "PASSED", "PASSED", "PASSED"),
    "less": (PRINTED.format(STORED + 0.5 * ALLOWED), {}, "PASSED", "PASSED", "PASSED"),
    "more": (PRINTED.format(STORED + 2 * ALLOWED), {}, "FAILED", "PASSED", "PASSED"),
    "more-than-gpu": (PRINTED.format(STORED + 2 * DEFAULT_GPU_FACTOR * ALLOWED), {}, "FAILED", "FAILED", "PASSED"),
    "more-in-a-wide-cell": (PRINTED.format(STORED + 2 * ALLOWED), {"atol": 1.0}, "PASSED", "PASSED", "PASSED"),
    "more-with-a-strict-gpu": (
        PRINTED.format(STORED + 2 * ALLOWED),
        {"gpu_rtol": 0, "gpu_atol": 0},
        "FAILED",
        "FAILED",
        "PASSED",
    ),
    "text": (PRINTED.format(STORED).replace("nats", "bits"), {}, "FAILED", "FAILED", "PASSED"),
    "count": (PRINTED.format(STORED).replace("1,168", "1,169"), {}, "FAILED", "FAILED", "PASSED"),
    "shape": (PRINTED.format(STORED).replace("(8, 8)", "(8, 9)"), {}, "FAILED", "FAILED", "PASSED"),
}
RUNS = {"defaults": [], "gpu": ["--nbval-gpu"], "no-compare": ["--nbval-no-compare"]}


def edited_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    for execution_count, (name, (stored, tolerance, *_)) in enumerate(EDITS.items(), start=1):
        cell = nbformat.v4.new_code_cell(
            f"# {name}\nprint({PRINTED!r}.format({STORED}), end='')",
            execution_count=execution_count,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=stored)],
            metadata={"tags": ["nbval-check-output"], **({"nbval": tolerance} if tolerance else {})},
        )
        notebook.cells.append(cell)
    return notebook


def run_nbval(notebook: Path, *options: str) -> tuple[dict[str, str], str]:
    """Outcome of each cell (by its name in EDITS) under this repository's pytest configuration."""
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(notebook.parent)]
    command += ["-p", "no:cacheprovider", "-rA", "--nbval-lax", "--nbval-current-env", *options, str(notebook)]
    result = subprocess.run(
        command, cwd=notebook.parent, capture_output=True, text=True, env=os.environ | {"TQDM_DISABLE": "1"}
    )
    names = list(EDITS)
    outcomes = re.findall(r"^(PASSED|FAILED) \S+::Cell (\d+)", result.stdout, flags=re.MULTILINE)
    return {names[int(cell)]: outcome for outcome, cell in outcomes}, result.stdout


@pytest.mark.parametrize("run", RUNS)
def test_nbval_fails_an_edit_beyond_the_tolerance_and_passes_one_within(run: str, tmp_path: Path) -> None:
    notebook = tmp_path / "edited.ipynb"
    nbformat.write(edited_notebook(), notebook)
    outcomes, report = run_nbval(notebook, *RUNS[run])
    column = list(RUNS).index(run)
    assert outcomes == {name: expected[2 + column] for name, expected in EDITS.items()}, report
    if run == "defaults":
        more = PRINTED.format(STORED + 2 * ALLOWED).split()[1]
        assert f"stored {more}, got {STORED:.4f}: differs by" in report, report
        assert f"rtol={DEFAULT_RTOL}, atol={DEFAULT_ATOL} (defaults)" in report, report
        assert "line 1: stored 1,169, got 1,168 (integers compare exactly)" in report, report


def test_without_the_plugin_nbval_fails_an_edit_within_the_tolerance(tmp_path: Path) -> None:
    notebook = tmp_path / "edited.ipynb"
    nbformat.write(edited_notebook(), notebook)
    outcomes, report = run_nbval(notebook, "-p", "no:nbval_tolerance")
    assert outcomes["less"] == "FAILED" and outcomes["unchanged"] == "PASSED", report
