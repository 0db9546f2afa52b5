"""The offline digits loader, and the torchvision loaders on IDX files that tests/idx_files.py writes (no network)."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from idx_files import idx_bytes, write_idx_dataset

import vae_lib as vl
from vae_lib.data import IDX_FILES


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


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the network: a download attempt fails at once, as it would offline."""

    def offline(self: torchvision.datasets.MNIST) -> None:
        raise RuntimeError(f"Error downloading {self.resources[0][0]}: <urlopen error [Errno -3] no network>")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)  # FashionMNIST inherits it


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_the_torchvision_loader_reads_local_idx_files_without_network(tmp_path: Path, name: str, folder: str) -> None:
    raw = write_idx_dataset(tmp_path, name, n_train=36, n_test=10)
    assert raw == tmp_path / folder / "raw"
    splits = vl.load_torchvision(name, tmp_path, download=False, val_size=6)
    assert splits.image_shape == (28, 28) and splits.data_dim == 784 and splits.grey_levels == 256
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 6, 10)
    test_images = torch.frombuffer(bytearray((raw / "t10k-images-idx3-ubyte").read_bytes()[16:]), dtype=torch.uint8)
    torch.testing.assert_close(splits.test.x, test_images.reshape(10, -1).float() / 255.0)
    assert sorted(splits.test.y.tolist()) == list(range(10))
    assert 0.0 <= float(splits.train.x.min()) and float(splits.train.x.max()) == 1.0
    # Train and validation together are the training images, each once.
    train_images = torch.frombuffer(bytearray((raw / "train-images-idx3-ubyte").read_bytes()[16:]), dtype=torch.uint8)
    together = torch.cat([splits.train.x, splits.val.x])
    assert sorted(together.sum(1).tolist()) == sorted((train_images.reshape(36, -1).float() / 255.0).sum(1).tolist())


def test_load_dataset_reads_the_helper_files_with_its_defaults(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path, "mnist")
    splits = vl.load_dataset("mnist", root=tmp_path, download=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (550, 50, 100)  # one in twelve validates
    assert splits.train.x.float().std() > 0.1 and set(splits.train.y.unique().tolist()) == set(range(10))
    assert len(splits.train.x.unique()) > 100, "many grey levels, as in MNIST"


def test_missing_files_are_named_with_torchvisions_layout_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mnist not found under") as missing:
        vl.load_dataset("mnist", root=tmp_path, download=False)
    message = str(missing.value)
    for file in IDX_FILES:
        assert str(tmp_path / "MNIST" / "raw" / file) in message
    assert "download=True (the command line's --download)" in message
    raw = write_idx_dataset(tmp_path, "fashion-mnist", n_train=24, n_test=10)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \S*t10k-labels-idx1-ubyte; pass download=True"):
        vl.load_dataset("fashion-mnist", root=tmp_path)


def test_a_failed_download_does_not_ask_for_download_true(tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match=r"could not download mnist into \S*MNIST.raw \(RuntimeError: Error downl"
    ) as failed:
        vl.load_dataset("mnist", root=tmp_path, download=True)
    assert "download=True" not in str(failed.value) and "internet" in str(failed.value)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def wrong_magic(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x08\x02" + path.read_bytes()[4:])


def gzipped(path: Path) -> None:
    path.write_bytes(gzip.compress(path.read_bytes()))


@pytest.mark.parametrize(
    ("file", "damage", "problem"),
    [
        (
            "train-images-idx3-ubyte",
            truncate,
            r"header announces shape \(24, 28, 28\), 18832 bytes in all, but it holds 18732",
        ),
        ("t10k-labels-idx1-ubyte", truncate, "fewer than an IDX header"),
        (
            "t10k-images-idx3-ubyte",
            wrong_magic,
            "magic number is 0x00000802, where an image file of MNIST starts with 0x00000803",
        ),
        ("train-labels-idx1-ubyte", gzipped, "magic number is 0x1f8b0800"),
    ],
    ids=["truncated-images", "truncated-labels", "wrong-magic", "still-gzipped"],
)
def test_a_corrupt_file_is_named_with_the_fix(tmp_path: Path, file: str, damage, problem: str) -> None:
    raw = write_idx_dataset(tmp_path, "mnist", n_train=24, n_test=10)
    damage(raw / file)
    for download in (False, True):  # torchvision downloads nothing where all four files exist
        with pytest.raises(ValueError, match=problem) as corrupt:
            vl.load_dataset("mnist", root=tmp_path, download=download)
        message = str(corrupt.value)
        assert message.startswith(f"{raw / file} is corrupt: ") and "not found" not in message
        assert message.endswith(
            "delete it and load again with download=True (the command line's --download), or copy a good one there"
        )


def test_labels_that_do_not_fit_their_images_are_refused(tmp_path: Path) -> None:
    raw = write_idx_dataset(tmp_path, "mnist", n_train=24, n_test=10)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(9, dtype=np.uint8)))
    with pytest.raises(
        ValueError, match=r"t10k-images-idx3-ubyte holds 10 images but \S*t10k-labels-idx1-ubyte holds 9"
    ):
        vl.load_dataset("mnist", root=tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(10, 200, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte is corrupt: it holds labels outside 0..9"):
        vl.load_dataset("mnist", root=tmp_path)


def test_the_helper_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        write_idx_dataset(tmp_path, "cifar")
    with pytest.raises(ValueError, match="n_train >= 2"):
        write_idx_dataset(tmp_path, n_train=1)


def test_bad_split_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        vl.load_digits(val_fraction=1.5)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        vl.load_digits(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="threshold"):
        vl.load_digits().binarized(threshold=1.0)
