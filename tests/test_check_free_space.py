"""scripts/check_free_space.py (the first step of `make install`): it passes when the disk has room and stops
with a message that names the shortfall when it has not."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_free_space.py"


def run_check(folder: Path, min_free_gib: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), min_free_gib, "a new .venv"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_passes_silently_when_the_disk_has_room(tmp_path: Path) -> None:
    result = run_check(tmp_path, "0")
    assert result.returncode == 0
    assert result.stderr == ""


def test_names_what_is_needed_and_what_is_free_when_the_disk_is_short(tmp_path: Path) -> None:
    result = run_check(tmp_path, "1000000")  # a million GiB: no test machine has it
    assert result.returncode == 1
    assert "a new .venv needs about 1e+06 GiB free" in result.stderr
    assert "GiB are free" in result.stderr


def test_makefile_checks_before_it_creates_the_venv() -> None:
    makefile = (ROOT / "Makefile").read_text()
    check = makefile.index("scripts/check_free_space.py")
    create = makefile.index("-m venv $(VENV)")
    assert check < create
