"""Whatever the bytes of a checkpoint file, reading it raises CheckpointError and nothing else.

Arbitrary bytes, every first byte followed by text or by noise, every truncation of a valid checkpoint and
bytes overwritten inside one: ``load_checkpoint`` either returns a checkpoint or raises :class:`CheckpointError`
(never a ``KeyError`` or ``IndexError`` from the unpickler), and one that loads also restores into its model
and random generators, or says why not.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vae_lib as vl
from vae_lib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

# derandomize: the same examples every run, so that two `make test` runs agree.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = b"model.pt is where the weights were meant to be; this is a note instead.\n" * 2


def refused(path: Path) -> bool:
    """True when reading ``path`` raised CheckpointError, False when it loaded; any other error fails the test."""
    try:
        load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error)
        return True
    return False


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    vl.seed_everything(0)
    path = save_checkpoint(tmp_path_factory.mktemp("valid") / "model.pt", vl.VAE(4, 1, (2,)), epoch=1)
    return path.read_bytes()


@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_are_a_checkpoint_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(data)
    assert refused(path)


@pytest.mark.parametrize("tail", ["text", "noise"])
def test_every_first_byte_followed_by_text_or_noise_is_a_checkpoint_error(tmp_path: Path, tail: str) -> None:
    noise = random.Random(0)
    path = tmp_path / "model.pt"
    for first in range(256):
        rest = TEXT if tail == "text" else noise.randbytes(200)
        path.write_bytes(bytes([first]) + rest)
        assert refused(path), first


def test_every_truncation_of_a_valid_checkpoint_is_a_checkpoint_error(tmp_path: Path, valid_bytes: bytes) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(valid_bytes)
    assert not refused(path)
    for size in range(len(valid_bytes) - 1, -1, -1):  # shortening the file in place costs one call each
        os.truncate(path, size)
        assert refused(path), size


@FUZZ
@given(changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4))
def test_overwritten_bytes_load_or_are_a_checkpoint_error(
    tmp_path: Path, valid_bytes: bytes, changes: list[tuple[float, int]]
) -> None:
    data = bytearray(valid_bytes)
    for where, value in changes:
        data[int(where * len(data))] = value
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(data))
    if refused(path):
        return
    try:  # a change inside the weights or the random states can load: then it must fit or say why not
        load_checkpoint(path, vl.VAE(4, 1, (2,)), restore_rng=True)
    except CheckpointError:
        pass
    finally:
        torch.manual_seed(0)
