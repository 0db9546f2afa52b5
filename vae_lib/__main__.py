"""``python -m vae_lib``: see :mod:`vae_lib.cli`."""

import sys

from vae_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
