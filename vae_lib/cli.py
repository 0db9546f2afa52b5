"""The command line: ``python -m vae_lib train ...`` and ``python -m vae_lib sample ...``.

``train`` fits a :class:`vae_lib.VAE` on a data set and writes a checkpoint that records how to rebuild
the model; ``sample`` reads such a checkpoint and saves a grid of generated images as a PNG. Bad
arguments exit with status 2 (argparse's usage error); a file that cannot be read or written exits with
status 1 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vae_lib.data import DATASET_NAMES


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _hidden_dims(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part) for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of ``python -m vae_lib`` with its ``train`` and ``sample`` commands."""
    parser = argparse.ArgumentParser(
        prog="python -m vae_lib",
        description="Train a variational autoencoder and sample from it (the book's vae_lib, outside notebooks).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,sample}")

    train = commands.add_parser(
        "train",
        help="fit a VAE and save a checkpoint",
        description="Fit a VAE with vl.fit and save a checkpoint that `sample` can read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--dataset", choices=DATASET_NAMES, default="digits", help="data set (digits is offline)")
    train.add_argument("--data-root", default="data", help="folder of the MNIST / Fashion-MNIST files")
    train.add_argument("--download", action="store_true", help="let torchvision download MNIST / Fashion-MNIST")
    train.add_argument("--latent-dim", type=_positive_int, default=2, help="dimension of z")
    train.add_argument("--hidden-dims", type=_hidden_dims, default="256", help="encoder hidden sizes, e.g. 256,128")
    train.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli", help="p(x|z)")
    train.add_argument("--sigma", type=_positive_float, default=None, help="fixed sigma of a Gaussian likelihood")
    train.add_argument("--epochs", type=_positive_int, default=50, help="passes over the training data")
    train.add_argument("--batch-size", type=_positive_int, default=128, help="examples per step")
    train.add_argument("--learning-rate", type=_positive_float, default=1e-3, help="Adam's step size")
    train.add_argument("--seed", type=int, default=0, help="seeds the weights, the shuffling and the sampling")
    train.add_argument("--device", default=None, help="cpu or cuda (default: $VAE_DEVICE, else CUDA when present)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    train.add_argument("--out", type=Path, required=True, help="checkpoint file to write, e.g. model.pt")

    sample = commands.add_parser(
        "sample",
        help="save a grid of generated images as a PNG",
        description="Draw z ~ N(0, I), decode it, and save the images as one grid picture.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sample.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint written by `train`")
    sample.add_argument("--n", type=_positive_int, default=64, help="number of images")
    sample.add_argument("--columns", type=_positive_int, default=None, help="images per row (default: a square)")
    sample.add_argument("--draw", action="store_true", help="draw x ~ p(x|z) instead of showing the mean E[x|z]")
    sample.add_argument("--seed", type=int, default=0, help="seeds the draws of z")
    sample.add_argument("--out", type=Path, required=True, help="PNG file to write, e.g. grid.png")
    return parser


def _train(args: argparse.Namespace) -> None:
    import torch

    from vae_lib import distributed
    from vae_lib.checkpoint import save_checkpoint
    from vae_lib.data import load_dataset
    from vae_lib.device import seed_everything
    from vae_lib.models import VAE
    from vae_lib.training import evaluate, fit

    if args.likelihood == "gaussian" and args.sigma is None:
        raise ValueError("--likelihood gaussian needs --sigma (the fixed observation noise, e.g. 0.1)")
    device = torch.device(args.device) if args.device else None
    splits = load_dataset(args.dataset, root=args.data_root, download=args.download, seed=args.seed)
    seed_everything(args.seed)
    model = VAE(splits.data_dim, args.latent_dim, args.hidden_dims, args.likelihood, args.sigma)
    if os.environ.get("RANK", "0") == "0":  # torchrun sets RANK; only its first process reports
        print(
            f"training a VAE (latent dim {args.latent_dim}, hidden {list(args.hidden_dims)}) on {args.dataset}: "
            f"{len(splits.train)} train / {len(splits.val)} validation images, {args.epochs} epochs",
            file=sys.stderr,
        )
    history = fit(
        model,
        splits.train.x,
        splits.val.x,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device=device,
        progress=not args.quiet,
    )
    if distributed.rank() != 0:
        return  # under torchrun every process holds the same model: rank 0 evaluates and saves it
    test_elbo = float(evaluate(model, splits.test.x.to(model.device)).elbo)
    extra = {"dataset": args.dataset, "image_shape": list(splits.image_shape), "test_elbo": test_elbo}
    save_checkpoint(args.out, model.cpu(), epoch=len(history), history=history.to_dict(), extra=extra)
    print(f"test ELBO {test_elbo:.3f} nats per image; saved {args.out}")


def _sample(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vae_lib.checkpoint import load_checkpoint, load_model
    from vae_lib.plotting import image_grid

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {str(args.out)!r}")
    if not args.out.parent.is_dir():
        raise FileNotFoundError(f"the folder of --out does not exist: {args.out.parent}")
    model = load_model(args.checkpoint)
    saved_shape = load_checkpoint(args.checkpoint).extra.get("image_shape")
    side = math.isqrt(model.data_dim)
    image_shape = tuple(saved_shape) if saved_shape else (side, model.data_dim // side)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        images = model.eval().sample(args.n, mean=not args.draw)
    ax = image_grid(images, image_shape, n_columns=args.columns, title=f"{args.n} samples from {args.checkpoint.name}")
    ax.figure.savefig(args.out, bbox_inches="tight", dpi=150)
    plt.close(ax.figure)
    print(f"saved {args.n} samples to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    command = _train if args.command == "train" else _sample
    try:
        command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        # CheckpointError is a ValueError; FileNotFoundError and PermissionError are OSErrors.
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"python -m vae_lib {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0
