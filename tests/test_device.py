"""Every place vae_lib branches on the device, with the CUDA branch's logic run on the CPU (a fake GPU), and
device names: an error says where a bad value came from (VAE_DEVICE, --device, map_location)."""

import pytest
import torch
import torch.distributed as dist

import vae_lib as vl
from vae_lib import device as device_module
from vae_lib import distributed
from vae_lib.device import parse_device


def test_default_device_honours_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAE_DEVICE", "cpu")
    assert vl.default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("VAE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        vl.default_device()


def test_default_device_takes_cuda_when_torch_sees_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("VAE_DEVICE", raising=False)
    assert vl.default_device() == torch.device("cuda")
    monkeypatch.setenv("VAE_DEVICE", "cuda:1")
    assert vl.default_device() == torch.device("cuda", 1)
    monkeypatch.setenv("VAE_DEVICE", "cpu")
    assert vl.default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("VAE_DEVICE")
    assert vl.default_device() == torch.device("cpu")


def test_fused_adam_is_used_on_the_cpu_and_on_cuda_only() -> None:
    assert device_module.use_fused_adam(torch.device("cpu"))
    assert device_module.use_fused_adam(torch.device("cuda", 0))
    assert not device_module.use_fused_adam(torch.device("mps"))
    assert not device_module.use_fused_adam(torch.device("meta"))


def test_the_sampling_generator_is_made_on_the_training_device(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []

    class RecordingGenerator:
        def __init__(self, device: torch.device) -> None:
            made.append(device)

        def manual_seed(self, seed: int) -> "RecordingGenerator":
            return self

    monkeypatch.setattr(torch, "Generator", RecordingGenerator)
    device_module.make_generator(3, "cuda:1")
    device_module.make_generator(3, torch.device("cpu"))
    assert made == [torch.device("cuda", 1), torch.device("cpu")]


def test_a_cpu_generator_draws_what_the_global_generator_seeded_alike_draws() -> None:
    generator = device_module.make_generator(5, "cpu")
    torch.manual_seed(5)
    assert torch.equal(torch.randn(40, generator=generator), torch.randn(40))


class FakeProcessGroup:
    """Stands in for torch.distributed on a machine without a GPU or a second process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend, self.devices = None, []
        monkeypatch.setattr(dist, "is_available", lambda: True)
        monkeypatch.setattr(dist, "is_initialized", lambda: self.backend is not None)
        monkeypatch.setattr(dist, "init_process_group", self.init)
        monkeypatch.setattr(dist, "get_rank", lambda: 1)
        monkeypatch.setattr(dist, "get_world_size", lambda: 2)
        monkeypatch.setattr(torch.cuda, "set_device", self.devices.append)
        monkeypatch.setattr(distributed.atexit, "register", lambda function: None)
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", "1")

    def init(self, backend: str) -> None:
        self.backend = backend


def test_joining_on_cuda_takes_the_local_rank_gpu_and_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    group = FakeProcessGroup(monkeypatch)
    world = distributed.join(torch.device("cuda"))
    assert world == distributed.World(rank=1, size=2, device=torch.device("cuda", 1))
    assert group.backend == "nccl" and group.devices == [torch.device("cuda", 1)]
    assert distributed.device_ids(world.device) == [1]


def test_joining_on_the_cpu_uses_gloo_and_no_device_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    group = FakeProcessGroup(monkeypatch)
    world = distributed.join(torch.device("cpu"))
    assert world == distributed.World(rank=1, size=2, device=torch.device("cpu"))
    assert group.backend == "gloo" and group.devices == []
    assert distributed.device_ids(world.device) is None


def test_outside_torchrun_joining_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.join(torch.device("cuda", 0)) == distributed.World(0, 1, torch.device("cuda", 0))


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
