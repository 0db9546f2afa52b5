"""vl.settings(): the chapters' environment variables, their defaults, and a clear error for a bad value."""

from pathlib import Path

import pytest
import torch

import vae_lib as vl

VARIABLES = ("VAE_SEED", "VAE_DEVICE", "VAE_DATASET", "VAE_DATA_ROOT", "VAE_SMOKE", "XDG_CACHE_HOME")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_defaults_are_the_stored_outputs_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = vl.settings()
    assert settings == vl.Settings(
        seed=0, device=torch.device("cpu"), dataset="digits", data_root=tmp_path / ".cache" / "vae-book" / "data",
        smoke=False,
    )  # fmt: skip
    assert settings.data_root.is_absolute()
    assert settings.pick(full=200, smoke=2) == 200
    with pytest.raises(AttributeError):
        settings.seed = 1  # frozen


def test_each_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    values = {"VAE_SEED": "2", "VAE_DEVICE": "cpu", "VAE_DATASET": "mnist", "VAE_DATA_ROOT": "data", "VAE_SMOKE": "1"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = vl.settings()
    assert (settings.seed, settings.dataset, settings.smoke) == (2, "mnist", True)
    assert settings.data_root == tmp_path / "data", "a relative folder is made absolute once, where it was given"
    assert settings.pick(full=200, smoke=2) == 2
    monkeypatch.delenv("VAE_DATA_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert vl.settings().data_root == tmp_path / "cache" / "vae-book" / "data"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VAE_SEED", "one", "VAE_SEED must be an integer, got 'one'"),
        ("VAE_SEED", "-1", r"VAE_SEED must lie in \[0, 2\*\*63\)"),
        ("VAE_DATASET", "cifar", "VAE_DATASET='cifar' names no data set; choose one of digits, mnist, fashion-mnist"),
        ("VAE_DATASET", "", "VAE_DATASET is set but empty"),
        ("VAE_SMOKE", "yes", "VAE_SMOKE must be 0 or 1, got 'yes'"),
        ("VAE_SMOKE", " ", "VAE_SMOKE is set but empty"),
        ("VAE_DEVICE", "", "VAE_DEVICE is set but empty"),
        ("VAE_DATA_ROOT", "", "VAE_DATA_ROOT is set but empty"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        vl.settings()


def test_the_chosen_data_set_loads_through_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    digits = vl.settings().load_dataset()
    assert digits.name == "digits" and digits.grey_levels == 17
    calls = []
    monkeypatch.setattr("vae_lib.run_settings.load_dataset", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setenv("VAE_DATASET", "mnist")
    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path))
    vl.settings().load_dataset()  # nothing is downloaded in a test: the call is recorded instead
    assert calls == [(("mnist",), {"root": tmp_path, "download": True, "seed": 0})]
