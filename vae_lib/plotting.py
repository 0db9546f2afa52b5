"""Figures used by several chapters: image grids, latent scatter plots, training curves.

Nothing here runs at import time; :func:`use_book_style` applies the book's matplotlib style when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import Tensor

from vae_lib.history import History

__all__ = ["image_grid", "latent_scatter", "plot_history", "use_book_style"]


def use_book_style() -> None:
    """Figure sizes and fonts that read well at the book's page width."""
    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": False,
        }
    )


def image_grid(
    images: Tensor,
    image_shape: tuple[int, int],
    n_columns: int | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Show rows of ``images`` (``(N, H*W)`` in [0, 1]) as one grid picture, one-pixel gaps between images."""
    images = images.detach().to("cpu", torch.float32)
    height, width = image_shape
    if images.dim() != 2 or images.shape[1] != height * width:
        raise ValueError(
            f"images must be (N, {height * width}) for image_shape {image_shape}, got {tuple(images.shape)}"
        )
    n = images.shape[0]
    n_columns = n_columns or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_columns)
    # NaN marks the gaps between images, drawn in light grey so that white (0) and black (1) pixels stay
    # distinguishable from the separators.
    canvas = np.full(((height + 1) * n_rows - 1, (width + 1) * n_columns - 1), np.nan)
    for i, image in enumerate(images.reshape(n, height, width).numpy()):
        row, column = divmod(i, n_columns)
        canvas[
            row * (height + 1) : row * (height + 1) + height, column * (width + 1) : column * (width + 1) + width
        ] = image
    ax = ax or plt.figure(figsize=(0.5 * n_columns + 1, 0.5 * n_rows + 1)).gca()
    colour_map = plt.get_cmap("gray_r").copy()
    colour_map.set_bad("#c8c8c8")
    ax.imshow(canvas, cmap=colour_map, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def latent_scatter(z: Tensor, labels: Tensor | None = None, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Scatter the first two latent coordinates, coloured by label, with a legend of the labels."""
    z = z.detach().to("cpu", torch.float32).numpy()
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"z must be (N, d) with d >= 2, got shape {z.shape}")
    ax = ax or plt.figure(figsize=(5.5, 5.0)).gca()
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=6, alpha=0.6)
    else:
        labels = labels.detach().cpu().numpy()
        colours = plt.get_cmap("tab10")
        for label in np.unique(labels):
            chosen = labels == label
            ax.scatter(z[chosen, 0], z[chosen, 1], s=6, alpha=0.7, color=colours(int(label) % 10), label=str(label))
        ax.legend(title="label", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title or "Latent means $\\mu(x)$")
    return ax


def plot_history(
    history: History,
    terms: Sequence[str] = ("elbo", "expected_log_likelihood", "kl"),
    axes: Sequence[Axes] | None = None,
) -> Sequence[Axes]:
    """One panel per recorded term: train and validation curves against the epoch."""
    titles = {"elbo": "ELBO", "expected_log_likelihood": "$E_q[\\log p(x|z)]$", "kl": "KL$(q(z|x)\\,\\|\\,p(z))$"}
    if axes is None:
        _, axes = plt.subplots(1, len(terms), figsize=(4.0 * len(terms), 3.4), layout="constrained")
        axes = np.atleast_1d(axes)
    for ax, term in zip(axes, terms):
        ax.plot(history.epochs, history.series("train", term), label="train")
        val = history.series("val", term)
        if val and val[0] is not None:
            ax.plot(history.epochs, val, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.set_title(titles.get(term, term))
        ax.legend()
    return axes
