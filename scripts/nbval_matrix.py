"""Run nbval over every chapter once per setting, and summarise: `make test-portable` and `make test-seeds`.

    python scripts/nbval_matrix.py portable [--setting NAME ...] [-- PYTEST_ARGS]
    python scripts/nbval_matrix.py seeds [--setting NAME ...] [-- PYTEST_ARGS]

`portable` compares the stored outputs (within nbval_tolerance's tolerance) under each setting that changes
the floating-point path on one machine: PyTorch's vectorised kernels (ATEN_CPU_CAPABILITY), the number of
threads, which decides how a sum is split, and MKL's and oneDNN's vendor-neutral code paths. `seeds` runs every chapter's asserts with other seeds
(VAE_SEED) and compares no output. Each setting runs in its own pytest process; before the chapters, a
probe notebook asserts that its kernel really runs under the setting (a variable the kernel does not see,
or an instruction set the CPU lacks, would otherwise test nothing). PYTEST_ARGS (the Makefile passes its
nbval flags) go to every run. Exits non-zero when any setting fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
PROBE_DIR = ROOT / "_build" / "nbval-matrix"


@dataclass(frozen=True)
class Setting:
    name: str
    environment: dict[str, str]
    # Asserted in the probe notebook's kernel, so a setting that did not reach the kernel fails loudly.
    probe: str


def threads(count: int) -> Setting:
    # torch reads both at import; a chapter's own torch.set_num_threads() still overrides them.
    return Setting(
        f"threads-{count}",
        {"OMP_NUM_THREADS": str(count), "MKL_NUM_THREADS": str(count)},
        f"assert torch.get_num_threads() == {count}, f'the kernel runs {{torch.get_num_threads()}} threads'",
    )


def capability(name: str) -> Setting:
    # An unknown or unsupported ATEN_CPU_CAPABILITY is ignored silently: the probe notices.
    return Setting(
        f"isa-{name}",
        {"ATEN_CPU_CAPABILITY": name},
        f"assert torch.backends.cpu.get_cpu_capability() == {name.upper()!r}, "
        "f'PyTorch runs {torch.backends.cpu.get_cpu_capability()} kernels: this CPU cannot imitate the setting'",
    )


def blas_compatible() -> Setting:
    # MKL and oneDNN choose their kernels by CPU vendor and model, which is why an Intel CPU printed other last
    # digits than the AMD CPU that stored the outputs; their "compatible" paths imitate another CPU here.
    return Setting(
        "blas-compatible",
        {"MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
        "assert os.environ.get('MKL_CBWR') == 'COMPATIBLE' and os.environ.get('ONEDNN_MAX_CPU_ISA') == 'SSE41'",
    )


def seed(value: int) -> Setting:
    return Setting(f"seed-{value}", {"VAE_SEED": str(value)}, f"assert os.environ.get('VAE_SEED') == '{value}'")


NATIVE = Setting("native", {}, "")
SETTINGS = {
    "portable": [NATIVE, capability("default"), capability("avx2"), threads(1), threads(2), blas_compatible()],
    "seeds": [seed(1), seed(2)],
}
# `seeds` runs the asserts only: with other seeds the printed numbers differ by design.
MODE_OPTIONS = {"portable": [], "seeds": ["--nbval-no-compare"]}


def probe_notebook(setting: Setting) -> Path:
    source = "import os\n\nimport torch\n\n"
    source += f"{setting.probe}\n" if setting.probe else ""
    # The kernel runs in the probe's folder: it leaves what it saw there for the summary.
    source += (
        f"with open('probe-{setting.name}.txt', 'w') as report:\n"
        "    print(f'{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()} kernels', file=report)\n"
    )
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    PROBE_DIR.mkdir(parents=True, exist_ok=True)
    path = PROBE_DIR / f"probe-{setting.name}.ipynb"
    nbformat.write(notebook, path)
    return path


@dataclass
class Result:
    setting: Setting
    returncode: int
    seconds: float
    summary: str
    kernel: str


def run(setting: Setting, mode: str, pytest_args: list[str]) -> Result:
    probe = probe_notebook(setting)
    probe.with_suffix(".txt").unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", str(probe.relative_to(ROOT)), "notebooks"]
    command += ["-p", "no:cacheprovider", "-rs", *MODE_OPTIONS[mode], *pytest_args]
    environment = os.environ | setting.environment
    shown = " ".join(f"{key}={value}" for key, value in setting.environment.items()) or "(as installed)"
    print(f"\n=== {setting.name}: {shown}\n$ {' '.join(command)}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    returncode = process.wait()
    seconds = time.perf_counter() - started
    summary = next((line.strip("= \n") for line in reversed(lines) if line.startswith("=")), "no summary")
    return Result(setting, returncode, seconds, summary, kernel_report(probe))


def kernel_report(probe: Path) -> str:
    report = probe.with_suffix(".txt")
    return report.read_text().strip() if report.exists() else "probe did not run"


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=SETTINGS)
    parser.add_argument("--setting", action="append", help="run only this setting (repeatable)")
    # Split at "--" by hand: argparse's handling of "--" after an option differs between Python versions
    # (3.12 refused `--setting NAME -- ARGS`).
    own, pytest_args = (
        (arguments[: arguments.index("--")], arguments[arguments.index("--") + 1 :])
        if "--" in arguments
        else (arguments, [])
    )
    options = parser.parse_args(own)
    options.pytest_args = pytest_args
    known = {setting.name: setting for setting in SETTINGS[options.mode]}
    unknown = set(options.setting or []) - set(known)
    if unknown:
        parser.error(f"unknown setting {sorted(unknown)}; {options.mode} has {sorted(known)}")
    chosen = [known[name] for name in options.setting] if options.setting else list(known.values())

    started = time.perf_counter()
    results = [run(setting, options.mode, options.pytest_args) for setting in chosen]
    total = time.perf_counter() - started

    print(f"\n=== make test-{options.mode}: one nbval run over every notebook per setting")
    width = max(len(result.setting.name) for result in results)
    for result in results:
        verdict = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(
            f"{result.setting.name:<{width}}  {verdict:<16} {minutes(result.seconds):>13}  {result.kernel:<26} {result.summary}"
        )
    failed = [result.setting.name for result in results if result.returncode != 0]
    print(f"total wall time {minutes(total)}; {len(results) - len(failed)} of {len(results)} settings passed")
    if failed:
        print(f"failed: {', '.join(failed)} (rerun one with SETTING=<name>)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
