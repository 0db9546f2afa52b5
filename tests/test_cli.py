"""``python -m vae_lib train`` and ``sample``, run end to end as a reader would run them.

Every way a reader can get it wrong is answered in one line on stderr, with exit status 1 or 2 and no
traceback; an interrupt says which checkpoint was kept. Each case runs the real command in a subprocess
(a few run at once: each spends seconds importing torch).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from idx_files import write_idx_dataset

import vae_lib as vl
from vae_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent


def cli_environment(**changes: str) -> dict[str, str]:
    # VAE_DATA_ROOT relative: each command's MNIST-format files sit in data/ of its own working directory.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAE_DEVICE": "cpu", "MPLBACKEND": "Agg", "VAE_DATA_ROOT": "data"}
    env.pop("VAE_DATASET", None)
    return env | changes


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vae_lib", *args]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), cwd=cwd, env=cli_environment(**env), capture_output=True, text=True, timeout=300
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
    assert (tmp_path / "grid.png").stat().st_mode & 0o777 == (tmp_path / "model.pt").stat().st_mode & 0o777


def test_train_reads_mnist_format_files_and_follows_vae_dataset(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path / "data", "fashion-mnist", n_train=120, n_test=20)
    trained = run_cli(
        "train", "--epochs", "1", "--quiet", "--out", "model.pt", cwd=tmp_path, VAE_DATASET="fashion-mnist"
    )
    assert trained.returncode == 0 and trained.stderr == "", trained.stderr
    checkpoint = vl.load_checkpoint(tmp_path / "model.pt")
    assert checkpoint.extra["dataset"] == "fashion-mnist" and checkpoint.extra["image_shape"] == [28, 28]


def test_data_root_defaults_to_the_chapters_folder_and_the_flag_overrides_it(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path / "shared", "mnist", n_train=60, n_test=20)
    args = ("train", "--dataset", "mnist", "--epochs", "1", "--quiet", "--out", "model.pt")
    from_variable = run_cli(*args, cwd=tmp_path, VAE_DATA_ROOT=str(tmp_path / "shared"))
    assert from_variable.returncode == 0, from_variable.stderr
    from_flag = run_cli(*args, "--data-root", "shared", cwd=tmp_path, VAE_DATA_ROOT=str(tmp_path / "elsewhere"))
    assert from_flag.returncode == 0, from_flag.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--epochs", "0", "--out", "m.pt"),
        ("train", "--latent-dim", "two", "--out", "m.pt"),
        ("train", "--dataset", "imagenet", "--out", "m.pt"),
        ("train", "--learning-rate", "-1", "--out", "m.pt"),
        ("train", "--hidden-dims", "256,,128", "--out", "m.pt"),
        ("train",),
        ("sample", "--checkpoint", "m.pt", "--n", "0", "--out", "g.png"),
        ("fly",),
    ],
    ids=[
        "zero-epochs",
        "word-for-int",
        "unknown-dataset",
        "negative-rate",
        "empty-size",
        "no-out",
        "zero-images",
        "no-command",
    ],
)
def test_bad_arguments_are_one_line_usage_errors(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    # argparse's own path, in-process: each subprocess would spend seconds importing torch.
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "error:" in error and "(see --help)" in error


def test_missing_checkpoint_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "g.png")]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "missing.pt" in error


# Files the cases below start from, each written into the case's own folder.


def existing_folder(folder: Path) -> None:
    (folder / "models").mkdir()


def text_file(folder: Path) -> None:
    (folder / "notes.txt").write_text("a plain text file, not a checkpoint\n")


def checkpoint(folder: Path) -> None:
    vl.seed_everything(0)
    vl.save_checkpoint(folder / "m.pt", vl.VAE(64, 2, (8,)), extra={"image_shape": [8, 8]})


def nan_checkpoint(folder: Path) -> None:
    model = vl.VAE(64, 2, (8,))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    vl.save_checkpoint(folder / "m.pt", model, extra={"image_shape": [8, 8]})


def damaged_checkpoint(field: str, value: object) -> Callable[[Path], None]:
    """A checkpoint whose ``field`` is ``value`` (or absent, for None): it passes the unpickler, not the checks."""

    def write(folder: Path) -> None:
        path = vl.save_checkpoint(folder / "m.pt", vl.VAE(64, 2, (8,)))
        payload = torch.load(path, weights_only=True)
        if value is None:
            del payload[field]
        else:
            payload[field] = value
        torch.save(payload, path)

    return write


def mnist_files(folder: Path) -> None:
    write_idx_dataset(folder / "data", "mnist", n_train=60, n_test=20)


def truncated_mnist_file(folder: Path) -> None:
    mnist_files(folder)
    images = folder / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])


@dataclass(frozen=True)
class Case:
    """A command that must fail with ``status`` and one line on stderr holding each of ``says``."""

    args: tuple[str, ...]
    status: int
    says: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    needs_no_cuda: bool = False
    in_process: bool = False  # a variant of a case that runs as a subprocess: main() here, which is faster


TRAIN = ("train", "--epochs", "2")
CASES = {
    # --out is checked before any training: nothing is lost, and the message names --out, never a temporary file.
    "out-is-a-folder": Case((*TRAIN, "--out", "models"), 1, ("--out models is a folder",), prepare=existing_folder),
    "out-is-empty": Case((*TRAIN, "--out", ""), 2, ("argument --out: expected a file name",)),
    "out-inside-a-file": Case(
        (*TRAIN, "--out", "notes.txt/m.pt"),
        1,
        ("--out notes.txt/m.pt: notes.txt is a file",),
        prepare=text_file,
        in_process=True,
    ),
    "out-unwritable": Case((*TRAIN, "--out", "/proc/m.pt"), 1, ("--out /proc/m.pt: cannot write in /proc",)),
    "learning-rate-diverges": Case(
        ("train", "--quiet", "--epochs", "20", "--learning-rate", "1e6", "--out", "m.pt"),
        1,
        ("training diverged at epoch 1", "try a smaller --learning-rate than 1e+06", "no checkpoint was saved"),
    ),
    "hidden-dims-empty": Case((*TRAIN, "--hidden-dims", "", "--out", "m.pt"), 2, ("argument --hidden-dims",)),
    "sigma-with-bernoulli": Case((*TRAIN, "--sigma", "0.1", "--out", "m.pt"), 2, ("--sigma is the noise of",)),
    "gaussian-without-sigma": Case(
        (*TRAIN, "--likelihood", "gaussian", "--out", "m.pt"),
        2,
        ("--likelihood gaussian needs --sigma",),
        in_process=True,
    ),
    "vae-dataset-empty": Case(
        (*TRAIN, "--out", "m.pt"), 2, ("VAE_DATASET is set but empty", "or pass --dataset"), env={"VAE_DATASET": ""}
    ),
    "vae-dataset-unknown": Case(
        (*TRAIN, "--out", "m.pt"),
        2,
        ("VAE_DATASET='cifar' names no data set",),
        env={"VAE_DATASET": "cifar"},
        in_process=True,
    ),
    "device-unknown": Case(
        (*TRAIN, "--device", "garbage", "--out", "m.pt"), 1, ("--device='garbage' is not a",), in_process=True
    ),
    "vae-device-unknown": Case(
        (*TRAIN, "--out", "m.pt"), 1, ("VAE_DEVICE='garbage' is not a device",), env={"VAE_DEVICE": "garbage"}
    ),
    "device-cuda-absent": Case(
        (*TRAIN, "--device", "cuda", "--out", "m.pt"), 1, ("--device=cuda but torch sees no CUDA",), needs_no_cuda=True
    ),
    "mnist-missing": Case(
        (*TRAIN, "--dataset", "mnist", "--out", "m.pt"),
        1,
        (f"{Path('data/MNIST/raw/train-images-idx3-ubyte')}", "--download"),
    ),
    "mnist-corrupt": Case(
        (*TRAIN, "--dataset", "mnist", "--out", "m.pt"),
        1,
        (f"{Path('data/MNIST/raw/train-images-idx3-ubyte')} is corrupt", "--download"),
        prepare=truncated_mnist_file,
    ),
    "checkpoint-is-text": Case(
        ("sample", "--checkpoint", "notes.txt", "--out", "g.png"),
        1,
        ("notes.txt (36 bytes) is truncated, corrupt or not a torch checkpoint",),
        prepare=text_file,
    ),
    "checkpoint-lacks-epoch": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"),
        1,
        ("m.pt is not a complete vae_lib checkpoint: it lacks epoch",),
        prepare=damaged_checkpoint("epoch", None),
    ),
    "checkpoint-config-is-a-list": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"),
        1,
        ("m.pt is damaged: its model_config is a list",),
        prepare=damaged_checkpoint("model_config", ["VAE"]),
    ),
    "checkpoint-extra-is-a-list": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"),
        1,
        ("m.pt is damaged: its extra is a list",),
        prepare=damaged_checkpoint("extra", [1]),
        in_process=True,
    ),
    "checkpoint-weights-not-tensors": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"),
        1,
        ("its model_state maps 'w' to a float",),
        prepare=damaged_checkpoint("model_state", {"w": 1.0}),
    ),
    "checkpoint-config-incomplete": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"),
        1,
        ("m.pt: its model config does not build a VAE",),
        prepare=damaged_checkpoint("model_config", {"class": "VAE"}),
        in_process=True,
    ),
    "checkpoint-weights-nan": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "g.png"), 1, ("m.pt: its weights hold NaN",), prepare=nan_checkpoint
    ),
    "too-many-samples": Case(
        ("sample", "--checkpoint", "m.pt", "--n", "1000000", "--out", "g.png"),
        2,
        ("argument --n: at most 10000 images",),
        prepare=checkpoint,
    ),
    "sample-out-not-png": Case(
        ("sample", "--checkpoint", "m.pt", "--out", "grid.jpg"),
        1,
        ("--out must name a .png file",),
        prepare=checkpoint,
        in_process=True,
    ),
}


@pytest.fixture(scope="module")
def case_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Run every selected subprocess case at once (three at a time): each one's folder and finished process."""
    selected = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_each_mistake_is_one_line" and hasattr(item, "callspec")
        if not CASES[item.callspec.params["name"]].in_process
    ]

    def run(name: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        case, folder = CASES[name], tmp_path_factory.mktemp(name)
        if case.prepare is not None:
            case.prepare(folder)
        return folder, run_cli(*case.args, cwd=folder, **case.env)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(selected, pool.map(run, selected)))


def run_in_process(case: Case, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    if case.prepare is not None:
        case.prepare(folder)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("VAE_DATASET", raising=False)
    for variable, value in case.env.items():
        monkeypatch.setenv(variable, value)
    capsys.readouterr()
    try:
        status = main(list(case.args))
    except SystemExit as exit_info:  # argparse's usage errors
        status = exit_info.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_is_one_line(
    name: str, case_results: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    case = CASES[name]
    if case.needs_no_cuda and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if case.args[-1].startswith("/proc/") and not Path("/proc").is_dir():
        pytest.skip("needs Linux's /proc")
    if case.in_process:
        folder, (status, stderr) = tmp_path, run_in_process(case, tmp_path, monkeypatch, capsys)
    else:
        folder, result = case_results[name]
        status, stderr = result.returncode, result.stderr
    assert "Traceback" not in stderr and ".partial" not in stderr, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"python -m vae_lib {case.args[0]}: error: "), stderr
    for words in case.says:
        assert words in stderr
    assert status == case.status, stderr
    assert not (folder / "m.pt").exists() or case.prepare is not None, "nothing was written"
    assert not (folder / "g.png").exists()


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        cli_command(*args), cwd=cwd, env=cli_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(300, process.kill)  # a hung run fails the test instead of stalling the suite
    watchdog.daemon = True
    watchdog.start()
    return process


def wait_for_line(process: subprocess.Popen[str], pattern: str) -> list[str]:
    """The lines of stderr read until one matches ``pattern`` (all of them if none does)."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if re.search(pattern, line):
            break
    return lines


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="watches /proc/PID/maps for torch's library")
def test_ctrl_c_while_torch_is_imported_is_one_line(tmp_path: Path) -> None:
    process = start_cli("train", "--out", "m.pt", cwd=tmp_path)
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 60
    while "libtorch" not in maps.read_text():  # torch's C++ library is loaded: `import torch` is under way
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert stderr == "python -m vae_lib: interrupted by SIGINT while starting; nothing was done\n"
    assert process.returncode == 128 + signal.SIGINT


def test_sigterm_during_training_keeps_the_last_checkpoint_and_says_which(tmp_path: Path) -> None:
    process = start_cli("train", "--epochs", "1000", "--checkpoint-every", "2", "--out", "m.pt", cwd=tmp_path)
    assert wait_for_line(process, r"epoch +5/1000")[-1].startswith("epoch    5/1000")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate()
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr
    last = stderr.splitlines()[-1]
    kept = re.fullmatch(
        r"python -m vae_lib train: interrupted by SIGTERM during training; m.pt holds the model after epoch (\d+)", last
    )
    assert kept, last
    assert int(kept[1]) >= 4 and int(kept[1]) % 2 == 0
    assert vl.load_checkpoint(tmp_path / "m.pt").epoch == int(kept[1])
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"], "no temporary file left behind"


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_kept(tmp_path: Path) -> None:
    process = start_cli("train", "--epochs", "1000", "--checkpoint-every", "500", "--out", "m.pt", cwd=tmp_path)
    wait_for_line(process, r"epoch +1/1000")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode == 128 + signal.SIGINT and "Traceback" not in stderr
    assert (
        stderr.splitlines()[-1]
        == "python -m vae_lib train: interrupted by SIGINT during training; no checkpoint was saved"
    )
    assert not list(tmp_path.iterdir())
