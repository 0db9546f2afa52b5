"""Device names: an error says where the bad value came from (VAE_DEVICE, --device, map_location)."""

import pytest
import torch

import vae_lib as vl
from vae_lib.device import parse_device


@pytest.mark.parametrize("value", ["garbage", "cuda:x", "gpu"])
def test_an_unknown_device_in_vae_device_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VAE_DEVICE", value)
    with pytest.raises(ValueError, match=f"VAE_DEVICE='{value}' is not a device name torch knows; use cpu, cuda"):
        vl.default_device()


def test_an_empty_vae_device_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAE_DEVICE", " ")
    assert vl.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_device_this_machine_lacks_names_where_it_was_asked_for() -> None:
    assert parse_device("cpu", "--device") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device=cuda:0 but torch sees no CUDA device"):
            parse_device("cuda:0", "--device")
    else:
        count = torch.cuda.device_count()
        with pytest.raises(RuntimeError, match=f"map_location=cuda:{count} but torch sees only {count} CUDA"):
            parse_device(f"cuda:{count}", "map_location")
    if not torch.backends.mps.is_available():
        with pytest.raises(RuntimeError, match="no Apple GPU"):
            parse_device(torch.device("mps"), "map_location")
