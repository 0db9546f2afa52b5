"""What a chapter hands to the book's build: numbers computed in a cell, quoted in the prose.

``vl.glue("gap", 0.51)`` in a cell, then ``{glue:text}`gap:.2f``` in the chapter's text: the page shows the
number this build computed, so prose and output cannot drift apart. It is myst-nb's ``glue`` (the book's
build reads it), and does nothing where myst-nb is not installed (Colab), so a chapter runs anywhere.
"""

from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value: object) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the chapter's prose (nothing is displayed)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier (the prose refers to it), got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # outside the book's environment (Colab): nothing reads the value
        return
    myst_glue(name, value, display=False)
