"""Data sets as tensors: sklearn's handwritten digits (offline, the default) and MNIST / Fashion-MNIST.

Every loader returns a :class:`DatasetSplits`: train, validation and test tensors with pixels in [0, 1],
flattened to ``(N, D)``, with labels, on the CPU. Splits are fixed by a seed, so every chapter and every
run sees the same examples.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vae_lib._checks import check_positive_int, check_seed, first_line

__all__ = ["DATASET_NAMES", "DatasetSplits", "Split", "load_dataset", "load_digits", "load_torchvision"]

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
DIGITS_GREY_LEVELS = 17  # sklearn's digits: 0 .. 16


@dataclass(frozen=True)
class Split:
    """Images ``x`` of shape ``(N, D)`` in [0, 1] (float32) and integer labels ``y`` of shape ``(N,)``."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class DatasetSplits:
    """A data set's train / validation / test splits, the shape to view each row as an image, and the number
    of grey levels its pixels take (``k / (grey_levels - 1)``, k = 0 .. grey_levels - 1)."""

    name: str
    train: Split
    val: Split
    test: Split
    image_shape: tuple[int, int]
    grey_levels: int

    @property
    def data_dim(self) -> int:
        return self.train.x.shape[1]

    def binarized(self, threshold: float = 0.5) -> DatasetSplits:
        """The same splits with each pixel set to 1 where it exceeds ``threshold`` and 0 elsewhere."""
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
        splits = [Split((s.x > threshold).float(), s.y) for s in (self.train, self.val, self.test)]
        return DatasetSplits(f"{self.name}-binarized", *splits, image_shape=self.image_shape, grey_levels=2)


def _split_fractions(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {fraction}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")
    return round(n * val_fraction), round(n * test_fraction)


def load_digits(seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2) -> DatasetSplits:
    """sklearn's 1,797 handwritten digits (8x8, 17 grey levels 0..16, scaled to [0, 1]), split by ``seed``.

    The data ship inside scikit-learn, so this never touches the network.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / (DIGITS_GREY_LEVELS - 1)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    n_val, n_test = _split_fractions(len(x), val_fraction, test_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(check_seed("seed", seed)))
    test_index, val_index, train_index = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return DatasetSplits(
        "digits",
        Split(x[train_index], y[train_index]),
        Split(x[val_index], y[val_index]),
        Split(x[test_index], y[test_index]),
        image_shape=(8, 8),
        grey_levels=DIGITS_GREY_LEVELS,
    )


# torchvision's layout: root/MNIST/raw/ (or root/FashionMNIST/raw/) holds these four files, uncompressed.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_DOWNLOAD = "download=True (the command line's --download)"


def _idx_problem(path: Path, n_dims: int) -> str | None:
    """What is wrong with the header or the size of an IDX file of unsigned bytes, or None if nothing is."""
    with path.open("rb") as file:
        header = file.read(4 + 4 * n_dims)
    expected_magic = 0x800 + n_dims  # two zero bytes, 0x08 (unsigned bytes), the number of dimensions
    if len(header) < 4 + 4 * n_dims:
        return f"it holds {len(header)} bytes, fewer than an IDX header"
    magic = int.from_bytes(header[:4], "big")
    if magic != expected_magic:
        kind = "an image" if n_dims == 3 else "a label"
        return f"its magic number is {magic:#010x}, where {kind} file of MNIST starts with {expected_magic:#010x}"
    shape = struct.unpack(f">{n_dims}I", header[4:])
    expected_size, size = len(header) + math.prod(shape), path.stat().st_size
    if size != expected_size:
        return f"its header announces shape {shape}, {expected_size} bytes in all, but it holds {size} bytes"
    return None


def _unreadable(name: str, root: Path, raw: Path, download: bool, error: Exception) -> Exception:
    """The error to raise when torchvision could not give ``name``: which file is missing or corrupt, and the fix."""
    missing = [str(raw / file) for file in IDX_FILES if not (raw / file).is_file()]
    if missing and download:
        return RuntimeError(
            f"could not download {name} into {raw} ({type(error).__name__}: {first_line(error)}); "
            f"check the internet connection, or copy the four uncompressed IDX files {', '.join(IDX_FILES)} there"
        )
    if missing:
        return FileNotFoundError(
            f"{name} not found under {root}: missing {', '.join(missing)}; pass {_DOWNLOAD} where there is "
            f"internet, or copy the files there"
        )
    for file in IDX_FILES:
        problem = _idx_problem(raw / file, 3 if "images" in file else 1)
        if problem is not None:
            return ValueError(
                f"{raw / file} is corrupt: {problem}; delete it and load again with {_DOWNLOAD}, or copy a good one there"
            )
    return ValueError(f"torchvision could not read {name} from {raw} ({type(error).__name__}: {first_line(error)})")


def _check_labels(images: Tensor, labels: Tensor, image_file: Path, label_file: Path) -> None:
    """Refuse label files that torchvision reads without complaint but that do not fit their images."""
    if len(labels) != len(images):
        raise ValueError(
            f"{image_file} holds {len(images)} images but {label_file} holds {len(labels)} labels; one of them is "
            f"corrupt: delete both and load again with {_DOWNLOAD}"
        )
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
        raise ValueError(
            f"{label_file} is corrupt: it holds labels outside 0..9; delete it and load again with {_DOWNLOAD}"
        )


def load_torchvision(
    name: str, root: str | Path, download: bool = False, val_size: int | None = None, seed: int = 0
) -> DatasetSplits:
    """MNIST or Fashion-MNIST (28x28, scaled to [0, 1]) through torchvision.

    With ``download=False`` the four IDX files must already be under ``root``, uncompressed, in torchvision's
    layout: ``root/MNIST/raw/train-images-idx3-ubyte`` (or ``root/FashionMNIST/raw/...``) and so on for
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``; with
    ``download=True`` torchvision fetches the missing ones. A missing file raises ``FileNotFoundError`` and a
    corrupt one ``ValueError``, each naming the file. The last ``val_size`` images of a seeded shuffle of the
    training images form the validation split (default: one in twelve, 5,000 of MNIST's 60,000).
    """
    import torchvision

    classes = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}
    if name not in classes:
        raise ValueError(f"unknown torchvision data set {name!r}; choose one of {sorted(classes)}")
    if val_size is not None:
        val_size = check_positive_int("val_size", val_size)
    raw = Path(root) / classes[name].__name__ / "raw"
    try:
        train_set = classes[name](str(root), train=True, download=download)
        test_set = classes[name](str(root), train=False)
    except Exception as error:  # torchvision raises RuntimeError, AssertionError, KeyError... for a bad file
        raise _unreadable(name, Path(root), raw, download, error) from error
    for split, dataset in (("train", train_set), ("t10k", test_set)):
        _check_labels(
            dataset.data, dataset.targets, raw / f"{split}-images-idx3-ubyte", raw / f"{split}-labels-idx1-ubyte"
        )
    x_train = train_set.data.reshape(len(train_set.data), -1).float() / 255.0
    y_train = train_set.targets.long()
    val_size = max(1, len(x_train) // 12) if val_size is None else val_size
    if not 0 < val_size < len(x_train):
        raise ValueError(
            f"val_size ({val_size}) must be at least 1 and smaller than the {len(x_train)} training images"
        )
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(check_seed("seed", seed)))
    train_index, val_index = order[:-val_size], order[-val_size:]
    x_test = test_set.data.reshape(len(test_set.data), -1).float() / 255.0
    height, width = train_set.data.shape[1:]
    return DatasetSplits(
        name,
        Split(x_train[train_index], y_train[train_index]),
        Split(x_train[val_index], y_train[val_index]),
        Split(x_test, test_set.targets.long()),
        image_shape=(int(height), int(width)),
        grey_levels=256,  # one byte per pixel
    )


def load_dataset(name: str, root: str | Path = "data", download: bool = False, seed: int = 0) -> DatasetSplits:
    """Load a data set by name: ``"digits"`` (offline), ``"mnist"`` or ``"fashion-mnist"``."""
    if name == "digits":
        return load_digits(seed=seed)
    if name in ("mnist", "fashion-mnist"):
        return load_torchvision(name, root, download=download, seed=seed)
    raise ValueError(f"unknown dataset name {name!r}; choose one of {list(DATASET_NAMES)}")
