"""The command line: ``python -m vae_lib train ...`` and ``python -m vae_lib sample ...``.

``train`` fits a :class:`vae_lib.VAE` on a data set and writes a checkpoint that records how to rebuild
the model; ``sample`` reads such a checkpoint and saves a grid of generated images as a PNG. Every failure
is one line on stderr, never a traceback: bad arguments exit with status 2 (as argparse's usage errors do),
a file that cannot be read or written or a run that diverges with status 1, and an interrupt (Ctrl-C or
SIGTERM) with 128 + the signal's number, after saying which checkpoint a training run kept.

Arguments are checked before any work starts: a run is never lost to an ``--out`` it cannot write.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

PROG = "python -m vae_lib"
# One grid picture of this many 28x28 images is about 2,900 pixels square; a million would exhaust the memory.
MAX_SAMPLES = 10_000
DEFAULT_CHECKPOINT_EVERY = 10


class UsageError(Exception):
    """Arguments that cannot work together (exit status 2, like argparse's own errors)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised by the handler :func:`main` installs; ``note`` says what was kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum, self.note = signum, ""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line; ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def handle_interrupts_while_starting() -> None:
    """Make Ctrl-C or SIGTERM end ``python -m vae_lib`` at once, in one line, until :func:`main` takes over.

    ``python -m vae_lib`` imports the package, and torch with it (seconds), before this module's ``main`` runs,
    so a ``try`` in ``main`` cannot catch an interrupt there. The package calls this first thing when ``-m``
    is importing it: runpy sets ``sys.argv[0]`` to ``"-m"`` until the module to run is found.
    """
    command = sys.orig_argv
    started_as_command = any(a == "-m" and b.split(".")[0] == "vae_lib" for a, b in zip(command, command[1:]))
    if sys.argv[:1] == ["-m"] and started_as_command and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _exit_at_once)


def _exit_at_once(signum: int, frame: object) -> None:
    os.write(2, f"{PROG}: interrupted by {signal.Signals(signum).name} while starting; nothing was done\n".encode())
    os._exit(128 + signum)  # nothing to clean up yet; exiting here skips the half-finished imports


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`: a save in progress removes its temporary
    file, and :func:`main` reports in one line. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _sample_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"at most {MAX_SAMPLES} images fit in one grid picture, got {value}")
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
    if not text.strip():
        raise argparse.ArgumentTypeError("expected at least one hidden layer size, e.g. 256 or 256,128, got ''")
    return tuple(_positive_int(part) for part in text.split(","))


def _file_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty string")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of ``python -m vae_lib`` with its ``train`` and ``sample`` commands."""
    from vae_lib.data import DATASET_NAMES

    parser = _Parser(
        prog=PROG,
        description="Train a variational autoencoder and sample from it (the book's vae_lib, outside notebooks).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,sample}")

    train = commands.add_parser(
        "train",
        help="fit a VAE and save a checkpoint",
        description="Fit a VAE with vl.fit and save a checkpoint that `sample` can read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--dataset", choices=DATASET_NAMES, default=None, help="data set (default: $VAE_DATASET, else digits, offline)"
    )
    train.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder of the MNIST / Fashion-MNIST files (default: $VAE_DATA_ROOT, else ~/.cache/vae-book/data)",
    )
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
    train.add_argument("--quiet", action="store_true", help="print nothing on stderr but errors")
    train.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=DEFAULT_CHECKPOINT_EVERY,
        help="also write --out every N epochs, so that an interrupted run keeps its last multiple of N",
    )
    train.add_argument("--out", type=_file_path, required=True, help="checkpoint file to write, e.g. model.pt")

    sample = commands.add_parser(
        "sample",
        help="save a grid of generated images as a PNG",
        description="Draw z ~ N(0, I), decode it, and save the images as one grid picture.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sample.add_argument("--checkpoint", type=_file_path, required=True, help="a checkpoint written by `train`")
    sample.add_argument("--n", type=_sample_count, default=64, help=f"number of images (at most {MAX_SAMPLES})")
    sample.add_argument("--columns", type=_positive_int, default=None, help="images per row (default: a square)")
    sample.add_argument("--draw", action="store_true", help="draw x ~ p(x|z) instead of showing the mean E[x|z]")
    sample.add_argument("--seed", type=int, default=0, help="seeds the draws of z")
    sample.add_argument("--out", type=_file_path, required=True, help="PNG file to write, e.g. grid.png")
    return parser


def _dataset_from_environment() -> str:
    """``--dataset``'s default: ``$VAE_DATASET``, the chapters' switch, where it is set; else the offline digits."""
    from vae_lib.run_settings import dataset_from_environment

    try:
        return dataset_from_environment()
    except ValueError as error:
        raise UsageError(f"{error}; or pass --dataset") from None


def _data_root_from_environment() -> Path:
    """``--data-root``'s default: the folder the chapters read, ``$VAE_DATA_ROOT`` or the user's cache."""
    from vae_lib.run_settings import data_root_from_environment

    return data_root_from_environment()


def _check_output(path: Path, flag: str, *, example: str, create_folder: bool) -> None:
    """Refuse an output file that cannot be written, before any work is done; the message names ``flag``."""
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; name a file in it, e.g. {path / example}")
    if path.exists() and not path.is_file():
        raise FileExistsError(f"{flag} {path} exists and is not a regular file")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{flag} {path}: {folder} is a file, not a folder")
    if not create_folder and not folder.is_dir():
        raise FileNotFoundError(f"the folder of {flag} does not exist: {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # what the final write needs: to create a file there
            pass
    except OSError as error:
        raise type(error)(f"{flag} {path}: cannot write in {folder} ({error.strerror or error})") from None


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def _kept(path: Path, state_before: tuple[int, int] | None) -> str:
    """What a training run that stopped early left at ``path``: the epoch of a checkpoint it wrote, or nothing."""
    from vae_lib.checkpoint import load_checkpoint

    if _file_state(path) in (None, state_before):
        return "no checkpoint was saved" + (f" ({path} is as it was)" if state_before else "")
    try:
        return f"{path} holds the model after epoch {load_checkpoint(path).epoch}"
    except (OSError, ValueError) as error:
        return f"{path} cannot be read back ({error})"


def _train(args: argparse.Namespace) -> None:
    from vae_lib import distributed
    from vae_lib.checkpoint import save_checkpoint
    from vae_lib.data import load_dataset
    from vae_lib.device import default_device, parse_device, seed_everything
    from vae_lib.models import VAE
    from vae_lib.training import TrainingDivergedError, evaluate, fit

    if args.likelihood == "gaussian" and args.sigma is None:
        raise UsageError("--likelihood gaussian needs --sigma (the fixed observation noise, e.g. 0.1)")
    if args.likelihood != "gaussian" and args.sigma is not None:
        raise UsageError(f"--sigma is the noise of --likelihood gaussian; the {args.likelihood} likelihood has none")
    dataset = args.dataset or _dataset_from_environment()
    device = parse_device(args.device, "--device") if args.device else default_device()
    _check_output(args.out, "--out", example="model.pt", create_folder=True)
    data_root = args.data_root if args.data_root is not None else _data_root_from_environment()
    splits = load_dataset(dataset, root=data_root, download=args.download, seed=args.seed)
    seed_everything(args.seed)
    model = VAE(splits.data_dim, args.latent_dim, args.hidden_dims, args.likelihood, args.sigma)
    if not args.quiet and os.environ.get("RANK", "0") == "0":  # torchrun sets RANK; only its first process reports
        print(
            f"training a VAE (latent dim {args.latent_dim}, hidden {list(args.hidden_dims)}) on {dataset}: "
            f"{len(splits.train)} train / {len(splits.val)} validation images, {args.epochs} epochs",
            file=sys.stderr,
        )
    out_before = _file_state(args.out)
    try:
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
            checkpoint_path=args.out,
            checkpoint_every=args.checkpoint_every,
        )
    except Interrupted as interrupt:
        interrupt.note = f"during training; {_kept(args.out, out_before)}"
        raise
    except TrainingDivergedError as error:
        raise RuntimeError(
            f"training diverged at epoch {error.epoch}, step {error.step} (a non-finite loss or gradient); "
            f"try a smaller --learning-rate than {args.learning_rate:g}; {_kept(args.out, out_before)}"
        ) from error
    if distributed.rank() != 0:
        return  # under torchrun every process holds the same model: rank 0 evaluates and saves it
    test_elbo = float(evaluate(model, splits.test.x.to(model.device)).elbo)
    extra = {"dataset": dataset, "image_shape": list(splits.image_shape), "test_elbo": test_elbo}
    save_checkpoint(args.out, model.cpu(), epoch=len(history), history=history.to_dict(), extra=extra)
    print(f"test ELBO {test_elbo:.3f} nats per image; saved {args.out}")


def _image_shape(saved: object, data_dim: int, path: Path) -> tuple[int, int]:
    from vae_lib.checkpoint import CheckpointError

    if saved is None:  # written by fit(checkpoint_path=...) during training: assume square images
        side = math.isqrt(data_dim)
        return side, data_dim // side
    if (
        not isinstance(saved, (list, tuple))
        or len(saved) != 2
        or not all(isinstance(size, int) and size > 0 for size in saved)
        or saved[0] * saved[1] != data_dim
    ):
        raise CheckpointError(f"{path}: its image_shape {saved!r} is not [height, width] with {data_dim} pixels")
    return saved[0], saved[1]


def _sample(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from vae_lib.checkpoint import CheckpointError, load_checkpoint, load_model, non_finite_weights
    from vae_lib.plotting import image_grid

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {str(args.out)!r}")
    _check_output(args.out, "--out", example="grid.png", create_folder=False)
    checkpoint = load_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint)  # a config that builds no model is a CheckpointError
    broken = non_finite_weights(model.state_dict())
    if broken:
        raise CheckpointError(
            f"{args.checkpoint}: its weights hold NaN or inf (in {', '.join(broken[:3])}"
            f"{', ...' if len(broken) > 3 else ''}); such a model generates no images"
        )
    image_shape = _image_shape(checkpoint.extra.get("image_shape"), model.data_dim, args.checkpoint)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        images = model.eval().sample(args.n, mean=not args.draw)
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"the model of {args.checkpoint} decodes to NaN or inf; no picture was written")
    ax = image_grid(images, image_shape, n_columns=args.columns, title=f"{args.n} samples from {args.checkpoint.name}")
    ax.figure.savefig(args.out, bbox_inches="tight", dpi=150)
    plt.close(ax.figure)
    print(f"saved {args.n} samples to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    from vae_lib._checks import first_line

    args = build_parser().parse_args(argv)
    command = _train if args.command == "train" else _sample
    prefix = f"{PROG} {args.command}"
    with _signals_interrupt():
        try:
            command(args)
        except UsageError as error:
            print(f"{prefix}: error: {error} (see --help)", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:  # Interrupted, or a KeyboardInterrupt raised before our handler
            signum = getattr(interrupt, "signum", signal.SIGINT)
            note = getattr(interrupt, "note", "")
            print(
                f"{prefix}: interrupted by {signal.Signals(signum).name}{' ' + note if note else ''}", file=sys.stderr
            )
            return 128 + signum
        except (OSError, ValueError, TypeError, RuntimeError, ArithmeticError, MemoryError) as error:
            # CheckpointError is a ValueError; FileNotFoundError and PermissionError are OSErrors.
            print(f"{prefix}: error: {first_line(error)}", file=sys.stderr)
            return 1
    return 0
