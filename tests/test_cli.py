"""``python -m vae_lib train`` and ``sample``, run end to end as a reader would run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAE_DEVICE": "cpu", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "vae_lib", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_help_names_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "train" in capsys.readouterr().out


def test_train_then_sample_writes_a_checkpoint_and_a_png(tmp_path: Path) -> None:
    trained = run_cli(
        "train", "--dataset", "digits", "--latent-dim", "2", "--epochs", "2", "--out", "model.pt", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    assert "epoch    2/2" in trained.stderr, "train reports its progress on stderr"
    assert "saved model.pt" in trained.stdout
    sampled = run_cli("sample", "--checkpoint", "model.pt", "--n", "64", "--out", "grid.png", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--epochs", "0", "--out", "m.pt"),
        ("train", "--latent-dim", "two", "--out", "m.pt"),
        ("train", "--dataset", "imagenet", "--out", "m.pt"),
        ("train", "--learning-rate", "-1", "--out", "m.pt"),
        ("train",),
        ("sample", "--checkpoint", "m.pt", "--n", "0", "--out", "g.png"),
        ("fly",),
    ],
    ids=["zero-epochs", "word-for-int", "unknown-dataset", "negative-rate", "no-out", "zero-images", "no-command"],
)
def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    # argparse's own path, in-process: each subprocess would spend seconds importing torch.
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_one_line_error_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    result = run_cli("sample", "--checkpoint", "corrupt.pt", "--out", "grid.png", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "corrupt.pt" in result.stderr
    assert not (tmp_path / "grid.png").exists()


def test_missing_checkpoint_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "g.png")]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "missing.pt" in error
