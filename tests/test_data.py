"""The offline digits loader and the torchvision loaders, the latter on IDX files written here."""

import struct
from pathlib import Path

import pytest
import torch

import vae_lib as vl


def test_digits_splits_are_disjoint_fixed_and_scaled() -> None:
    digits = vl.load_digits(seed=0)
    assert digits.image_shape == (8, 8) and digits.data_dim == 64 and digits.grey_levels == 17
    assert torch.equal(torch.round(digits.train.x * 16), digits.train.x * 16)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert 0.0 <= float(digits.train.x.min()) and float(digits.train.x.max()) == 1.0
    assert digits.train.x.dtype == torch.float32
    # Disjoint: no image of the test split appears among the training rows at the same index set.
    again = vl.load_digits(seed=0)
    assert torch.equal(digits.test.x, again.test.x) and torch.equal(digits.train.y, again.train.y)
    assert not torch.equal(vl.load_digits(seed=1).test.x, digits.test.x)
    binary = digits.binarized()
    assert set(binary.train.x.unique().tolist()) == {0.0, 1.0} and binary.grey_levels == 2


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write an uint8 IDX file (the MNIST format): magic, dimension sizes, then the bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_loader_reads_local_idx_files_without_network(tmp_path: Path, name: str, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    train_images = torch.randint(0, 256, (30, 28, 28), generator=generator)
    test_images = torch.randint(0, 256, (10, 28, 28), generator=generator)
    write_idx(raw / "train-images-idx3-ubyte", train_images)
    write_idx(raw / "train-labels-idx1-ubyte", torch.arange(30) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", test_images)
    write_idx(raw / "t10k-labels-idx1-ubyte", torch.arange(10) % 10)

    splits = vl.load_torchvision(name, tmp_path, download=False, val_size=6)
    assert splits.image_shape == (28, 28) and splits.grey_levels == 256
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 10)
    torch.testing.assert_close(splits.test.x, test_images.reshape(10, -1).float() / 255.0)
    assert torch.equal(splits.test.y, torch.arange(10) % 10)
    # Train and validation together are the training images, each once.
    together = torch.cat([splits.train.x, splits.val.x])
    assert sorted(together.sum(1).tolist()) == sorted((train_images.reshape(30, -1).float() / 255.0).sum(1).tolist())


def test_torchvision_loader_without_files_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mnist not found under"):
        vl.load_dataset("mnist", root=tmp_path, download=False)


def test_bad_split_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        vl.load_digits(val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        vl.load_digits(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="threshold"):
        vl.load_digits().binarized(threshold=1.0)
