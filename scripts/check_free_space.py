"""Stop `make install` early, with a readable message, when the disk cannot hold a new virtual environment.

Usage: python scripts/check_free_space.py FOLDER MIN_FREE_GIB WHAT_NEEDS_IT
"""

import shutil
import sys


def main(folder: str, min_free_gib: str, what_needs_it: str) -> int:
    free_gib = shutil.disk_usage(folder).free / 2**30
    needed_gib = float(min_free_gib)
    if free_gib < needed_gib:
        print(
            f"error: {what_needs_it} needs about {needed_gib:g} GiB free on the disk of {folder!r}, "
            f"but only {free_gib:.1f} GiB are free. Free some space (an old clone's .venv, _build/) "
            "and run make again.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
