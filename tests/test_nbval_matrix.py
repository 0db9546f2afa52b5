"""scripts/nbval_matrix.py (`make test-portable`, `make test-seeds`): its settings reach the kernel, and CI runs
every one of them."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nbval_matrix", ROOT / "scripts" / "nbval_matrix.py")
nbval_matrix = sys.modules["nbval_matrix"] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
spec.loader.exec_module(nbval_matrix)


@pytest.mark.parametrize("mode", nbval_matrix.SETTINGS)
def test_ci_runs_one_job_per_setting(mode: str) -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    job = workflow["jobs"][mode]
    assert job["strategy"]["matrix"]["setting"] == [setting.name for setting in nbval_matrix.SETTINGS[mode]]
    assert f"make test-{mode} SETTING=${{{{ matrix.setting }}}}" in [step.get("run") for step in job["steps"]]


def probe_source(setting: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(nbval_matrix, "PROBE_DIR", tmp_path)
    notebook = nbformat.read(nbval_matrix.probe_notebook(setting), as_version=4)
    return notebook.cells[0].source


@pytest.mark.parametrize(
    "setting",
    [nbval_matrix.threads(1), nbval_matrix.capability("default"), nbval_matrix.seed(5)],
    ids=lambda setting: setting.name,
)
def test_the_probe_fails_where_the_setting_does_not_reach_the_kernel(
    setting: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if setting.name == "threads-1" and os.cpu_count() == 1:
        pytest.skip("one core: PyTorch runs one thread whatever the setting")
    source = probe_source(setting, tmp_path, monkeypatch)
    without = {key: value for key, value in os.environ.items() if key not in setting.environment}
    run = [sys.executable, "-c", source]
    assert subprocess.run(run, cwd=tmp_path, env=without, capture_output=True).returncode != 0
    reached = subprocess.run(run, cwd=tmp_path, env=without | setting.environment, capture_output=True, text=True)
    assert reached.returncode == 0, reached.stderr
    assert "threads" in (tmp_path / f"probe-{setting.name}.txt").read_text()
