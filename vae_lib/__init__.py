"""vae_lib: the small library behind *Variational Autoencoders, Derived and Checked*.

Each function that implements an equation of the book names the equation's label in its docstring.
Import it as ``import vae_lib as vl``: every name a module lists in its ``__all__`` is also ``vl.<name>``.
Importing changes no global state.
"""

import sys

if sys.argv[:1] == ["-m"]:  # `python -m vae_lib` is importing us: one line, not a traceback, on Ctrl-C from here
    from vae_lib.cli import handle_interrupts_while_starting

    handle_interrupts_while_starting()

# ruff: noqa: F403 (each module's __all__ lists its public names, once)
from vae_lib.book import *
from vae_lib.checkpoint import *
from vae_lib.conditional import *
from vae_lib.data import *
from vae_lib.device import *
from vae_lib.diagnostics import *
from vae_lib.distributions import *
from vae_lib.export import *
from vae_lib.history import *
from vae_lib.latent_paths import *
from vae_lib.linear_gaussian import *
from vae_lib.losses import *
from vae_lib.models import *
from vae_lib.objectives import *
from vae_lib.observations import *
from vae_lib.plotting import *
from vae_lib.priors import *
from vae_lib.run_settings import *
from vae_lib.training import *

__version__ = "0.1.0"

# The union of the modules' own lists (the modules imported above; cli and distributed list nothing).
__all__ = sorted(
    {
        name
        for key, module in sys.modules.items()
        if key.startswith("vae_lib.")
        for name in getattr(module, "__all__", ())
    }
)
