"""A pytest plugin that gives nbval's output comparison a numeric tolerance.

nbval compares a checked cell's new output with the stored one as strings, so a float that another CPU,
thread count or GPU rounds to a neighbouring last digit fails the test although nothing in the book changed.
This plugin compares each text output as a sequence of numbers and the text between them:

- the text between the numbers must match exactly, except for the width of the spaces that pad a number
  (numpy and format specs pad a column to the width of its widest or signed entry);
- integers (no decimal point, no exponent: counts, shapes, epochs, ``1,168``) must be equal;
- floats (``-8.93``, ``2.``, ``1e-10``, ``nan``, ``inf``) must satisfy
  ``|got - stored| <= atol + rtol * |stored|``, computed in decimal arithmetic on the printed digits.

The tolerance of a cell comes from the command line (``--nbval-rtol``/``--nbval-atol``, whose defaults
are below), or from the cell's metadata under the key ``nbval``: ``{"rtol": ..., "atol": ...}``. With
``--nbval-gpu`` a cell uses its ``gpu_rtol``/``gpu_atol`` where it sets them, and otherwise its CPU
tolerance multiplied by ``--nbval-gpu-factor``. ``--nbval-no-compare`` runs every cell and compares no
output (the asserts still run). pyproject.toml loads the plugin with ``-p nbval_tolerance``, so that it
applies to notebooks collected outside ``tests/`` too. CONTRIBUTING.md explains the choice of defaults.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from nbval.plugin import IPyNbCell

# Chosen by running every chapter under each setting of `make test-portable` and comparing with the stored
# outputs (see CONTRIBUTING.md, "Printed numbers and tolerances").
DEFAULT_RTOL = 0.005
DEFAULT_ATOL = 0.01
# On a GPU the reductions differ, and random numbers drawn on the device come from another generator: a trained
# number then moves about as much as under another seed, which moved chapters 7 and 8 by up to 14 times the CPU
# tolerance (three seed offsets, measured on the CPU; no GPU was measured yet).
DEFAULT_GPU_FACTOR = 20.0

METADATA_KEY = "nbval"
TOLERANCE_KEYS = ("rtol", "atol", "gpu_rtol", "gpu_atol")

# A number is not part of a word (`float32`, `x_2`) and does not continue another number (`1.2.3`). A minus
# sign belongs to it unless it joins two words or numbers (`784-400`, `2-D`). A comma followed by exactly
# three digits is a thousands separator (`1,168`); Python and numpy print a list with a space after each
# comma, so `[1, 168]` stays two numbers.
NUMBER = re.compile(
    r"""
    (?<![\w.])
    (?P<sign>[-+]?)
    (?:
        (?P<magnitude>
            (?:\d{1,3}(?:,\d{3})+(?!\d)|\d+) (?P<fraction>\.\d*)? (?P<exponent>[eE][-+]?\d+)?
          | \.\d+ (?:[eE][-+]?\d+)?
        )
      | (?P<special>(?i:nan|inf(?:inity)?)) (?!\w)
    )
    """,
    re.VERBOSE,
)
PADDING = " \t"


@dataclass(frozen=True)
class Number:
    """A number as printed, where it stands in its output, and how it compares."""

    text: str
    value: Decimal
    is_integer: bool
    line: int


@dataclass(frozen=True)
class Tolerance:
    rtol: Decimal
    atol: Decimal
    origin: str

    def allows(self, stored: Decimal, got: Decimal) -> tuple[bool, Decimal]:
        allowed = self.atol + self.rtol * abs(stored)
        return abs(got - stored) <= allowed, allowed

    def __str__(self) -> str:
        return f"rtol={self.rtol}, atol={self.atol} ({self.origin})"


def split_numbers(text: str) -> tuple[list[str], list[Number]]:
    """The texts around the numbers (always one more than the numbers) and the numbers themselves."""
    texts, numbers, start = [], [], 0
    for match in NUMBER.finditer(text):
        texts.append(text[start : match.start()])
        numbers.append(parse_number(match, line=text.count("\n", 0, match.start()) + 1))
        start = match.end()
    texts.append(text[start:])
    return texts, numbers


def parse_number(match: re.Match[str], line: int) -> Number:
    sign = match["sign"]
    if match["special"]:
        name = match["special"].lower()
        value = Decimal("NaN") if name == "nan" else Decimal(f"{sign}Infinity")
        return Number(match[0], value, is_integer=False, line=line)
    is_integer = not match["fraction"] and not match["exponent"] and not match["magnitude"].startswith(".")
    return Number(match[0], Decimal(sign + match["magnitude"].replace(",", "")), is_integer, line)


def without_padding(texts: list[str]) -> list[str]:
    """Each text with the spaces that touch a number removed: the first text ends at a number, the last
    begins at one, every other text lies between two."""
    if len(texts) == 1:
        return texts
    return [texts[0].rstrip(PADDING), *(text.strip(PADDING) for text in texts[1:-1]), texts[-1].lstrip(PADDING)]


def number_differs(stored: Number, got: Number, tolerance: Tolerance) -> str | None:
    """Why `got` does not match `stored` within `tolerance`, or None when it does."""
    where = f"line {stored.line}: stored {stored.text}, got {got.text}"
    if stored.is_integer or got.is_integer:
        if stored.is_integer and got.is_integer and stored.value == got.value:
            return None
        return f"{where} (integers compare exactly)"
    if stored.value.is_nan() or got.value.is_nan():
        return None if stored.value.is_nan() and got.value.is_nan() else where
    if stored.value.is_infinite() or got.value.is_infinite():
        return None if stored.value == got.value else where
    within, allowed = tolerance.allows(stored.value, got.value)
    if within:
        return None
    return f"{where}: differs by {abs(got.value - stored.value)}, more than {allowed:.3g}"


def text_differences(stored: str, got: str, tolerance: Tolerance) -> list[str]:
    """Every reason why `got` does not match `stored` (none: it matches within the tolerance)."""
    stored_texts, stored_numbers = split_numbers(stored)
    got_texts, got_numbers = split_numbers(got)
    if len(stored_numbers) != len(got_numbers):
        return [f"stored output has {len(stored_numbers)} numbers, the new one {len(got_numbers)}"]
    differences = []
    line = 1
    for stored_text, got_text, number in zip(
        without_padding(stored_texts), without_padding(got_texts), [*stored_numbers, None]
    ):
        if stored_text != got_text:
            differences.append(f"line {line}: the text differs: stored {stored_text!r}, got {got_text!r}")
        line = number.line if number else line
    differences += filter(None, (number_differs(s, g, tolerance) for s, g in zip(stored_numbers, got_numbers)))
    return differences


def cell_tolerance(cell_metadata: dict, config: pytest.Config, where: str) -> Tolerance:
    """The tolerance that applies to one cell: its metadata's, else the command line's; GPU-widened."""
    settings = cell_metadata.get(METADATA_KEY, {})
    if not isinstance(settings, dict) or set(settings) - set(TOLERANCE_KEYS):
        raise ValueError(
            f"{where}: cell metadata {METADATA_KEY!r} must be a mapping with keys among {TOLERANCE_KEYS}, "
            f"got {settings!r}"
        )
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{where}: cell metadata {METADATA_KEY}.{key} must be a number >= 0, got {value!r}")
    option = config.getoption
    rtol = settings.get("rtol", option("nbval_rtol"))
    atol = settings.get("atol", option("nbval_atol"))
    origin = "cell metadata" if {"rtol", "atol"} & set(settings) else "defaults"
    if option("nbval_gpu"):
        factor = option("nbval_gpu_factor")
        rtol = settings.get("gpu_rtol", rtol * factor)
        atol = settings.get("gpu_atol", atol * factor)
        origin = (
            "cell metadata gpu_rtol/gpu_atol"
            if {"gpu_rtol", "gpu_atol"} & set(settings)
            else f"{origin}, times {factor:g} on a GPU"
        )
    return Tolerance(Decimal(str(rtol)), Decimal(str(atol)), origin)


def comparable_fields(outputs: list, skip: tuple[str, ...]) -> dict[str, list[tuple[dict, str]]]:
    """Where each compared value of `outputs` lives, grouped and ordered as nbval groups them: by stream
    name, by MIME type, or by output key (the value is `holder[name]`)."""
    fields = defaultdict(list)
    for output in outputs:
        if output.get("output_type") == "stream":
            fields[output["name"]].append((output, "text"))
            continue
        for key, value in output.items():
            if key in skip:
                continue
            if key == "data":
                for mime in value:
                    if mime not in skip:
                        fields[mime].append((value, mime))
            else:
                fields[key].append((output, key))
    return fields


def paired_texts(test: list, ref: list, skip: tuple[str, ...]) -> Iterator[tuple[str, str, dict, str]]:
    test_fields = comparable_fields(test, skip)
    for key, stored_fields in comparable_fields(ref, skip).items():
        for (stored_holder, stored_name), (got_holder, got_name) in zip(stored_fields, test_fields.get(key, [])):
            yield key, stored_holder[stored_name], got_holder, got_name


def tolerant_compare_outputs(cell: IPyNbCell, exact_compare: Callable) -> Callable:
    """nbval's `compare_outputs` for `cell`, which first replaces every new text that matches its stored
    text within the tolerance by the stored text, then lets nbval compare exactly and report as usual."""

    def compare_outputs(test: list, ref: list, skip_compare: tuple[str, ...] | None = None) -> bool:
        tolerance = cell_tolerance(cell.cell.metadata, cell.config, where=f"{cell.path.name}, Cell {cell.cell_num}")
        skip = skip_compare or cell.parent.skip_compare
        test = copy.deepcopy(test)
        report = []
        for key, stored, got_holder, got_name in paired_texts(test, ref, skip):
            got = got_holder[got_name]
            if not isinstance(stored, str) or not isinstance(got, str):
                continue
            if cell.sanitize(stored) == cell.sanitize(got):
                continue
            differences = text_differences(cell.sanitize(stored), cell.sanitize(got), tolerance)
            if differences:
                report += [f"  {key} {difference}" for difference in differences]
            else:
                got_holder[got_name] = stored
        if exact_compare(test, ref, skip_compare):
            return True
        if report:
            cell.comparison_traceback += [f"Numbers compared within atol + rtol * |stored|, {tolerance}:", *report]
        return False

    return compare_outputs


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nbval-tolerance", "numeric tolerance for nbval's output comparison")
    group.addoption(
        "--nbval-rtol",
        type=float,
        default=DEFAULT_RTOL,
        help=f"relative tolerance for printed floats, where a cell's metadata sets none (default {DEFAULT_RTOL})",
    )
    group.addoption(
        "--nbval-atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"absolute tolerance for printed floats, where a cell's metadata sets none (default {DEFAULT_ATOL})",
    )
    group.addoption(
        "--nbval-gpu",
        action="store_true",
        help="outputs were computed on a GPU: use each cell's gpu_rtol/gpu_atol, else its tolerance times "
        "--nbval-gpu-factor",
    )
    group.addoption(
        "--nbval-gpu-factor",
        type=float,
        default=DEFAULT_GPU_FACTOR,
        help=f"with --nbval-gpu, how much wider a tolerance is than on the CPU (default {DEFAULT_GPU_FACTOR:g})",
    )
    group.addoption(
        "--nbval-no-compare",
        action="store_true",
        help="run every notebook cell and fail on an exception, but compare no output",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, IPyNbCell):
            continue
        if config.getoption("nbval_no_compare"):
            item.options["check"] = False
        item.compare_outputs = tolerant_compare_outputs(item, item.compare_outputs)
