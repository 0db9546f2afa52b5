"""Small MNIST-format data sets written on the spot, so that tests load MNIST and Fashion-MNIST offline.

    from idx_files import write_idx_dataset
    write_idx_dataset(tmp_path, "mnist", n_train=600, n_test=100)
    splits = vl.load_dataset("mnist", root=tmp_path, download=False)

``write_idx_dataset`` writes the four uncompressed IDX files in torchvision's layout
(``root/MNIST/raw/train-images-idx3-ubyte`` and so on), which torchvision reads without downloading
anything. Each 28x28 image is one blurred stroke through the middle whose angle follows its label 0..9, so
the pixels take many grey levels on a black background (like MNIST's) and a model has something to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
IMAGE_SIDE = 28


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` of unsigned bytes in the IDX format: 0, 0, 0x08, the number of axes, each size, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def stroke_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One ``(28, 28)`` uint8 image per label: a stroke at angle ``label * 18`` degrees (jittered), blurred edges."""
    n = len(labels)
    grid = np.linspace(-1.0, 1.0, IMAGE_SIDE)
    y, x = np.meshgrid(grid, grid, indexing="ij")  # (28, 28) each
    angle = np.pi * (labels + rng.uniform(-0.2, 0.2, n)) / 10
    centre = rng.uniform(-0.15, 0.15, (n, 2))
    width = rng.uniform(0.15, 0.3, n)
    dx, dy = x - centre[:, 0, None, None], y - centre[:, 1, None, None]  # (n, 28, 28)
    along = dx * np.cos(angle)[:, None, None] + dy * np.sin(angle)[:, None, None]
    across = -dx * np.sin(angle)[:, None, None] + dy * np.cos(angle)[:, None, None]
    ink = np.clip(1 - np.abs(across) / width[:, None, None], 0, 1) * (np.abs(along) < 0.7)
    return np.round(255 * ink).astype(np.uint8)


def write_idx_dataset(
    root: str | Path, name: str = "mnist", n_train: int = 600, n_test: int = 100, seed: int = 0
) -> Path:
    """Write a small ``name`` ("mnist" or "fashion-mnist") data set under ``root``; return its ``raw`` folder.

    ``n_train`` training and ``n_test`` test images with labels 0..9 in turn (shuffled), drawn from ``seed``.
    Existing files are replaced. ``vl.load_dataset(name, root=root)`` then holds ``n_train`` images in its train
    and validation splits together (one in twelve for validation) and ``n_test`` in its test split.
    """
    if name not in FOLDERS:
        raise ValueError(f"name must be one of {sorted(FOLDERS)}, got {name!r}")
    if n_train < 2 or n_test < 1:
        raise ValueError(f"need n_train >= 2 (a validation split) and n_test >= 1, got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    raw = Path(root) / FOLDERS[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(stroke_images(labels, rng)))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return raw
