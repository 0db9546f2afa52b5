"""A Sphinx extension for the book's HTML, loaded from ``book/_ext`` by ``_config.yml`` (not part of vae_lib).

- MathJax 3 is served by the book itself, so math renders with no internet access. It comes from the
  PyPI package ``django-static-mathjax`` (pinned in pyproject.toml's book extra), which ships MathJax's
  ``es5`` build: its files are copied into ``_static/mathjax`` and Sphinx's ``mathjax_path`` points at
  the copy instead of the CDN that Sphinx uses by default.
- Two console errors of the theme stack are fixed, so that the browser test can demand none: sphinx-thebe
  registers its inline configuration script twice (``const THEBE_JS_URL`` declared twice), and the
  theme's colour mode is left empty ("Got invalid theme mode").
- ``book/_static/book_code.css`` narrows the side padding of code and output blocks, so that the 77 columns
  a chapter's code may use fit at 1280 px, in folded cells too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

ENTRY_POINT = "tex-chtml.js"  # what Sphinx loads by default, but from the CDN
# What tex-chtml.js loads lazily: fonts, TeX extensions (autoloaded macros), the menu and accessibility.
FOLDERS = ("output", "input", "ui", "a11y", "sre", "adaptors")


def mathjax_source() -> Path:
    try:
        import mathjax  # the django-static-mathjax package
    except ImportError as error:
        raise ExtensionError(
            "offline_mathjax needs the package django-static-mathjax (pip install '.[book]')"
        ) from error
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / ENTRY_POINT).is_file():
        raise ExtensionError(f"no {ENTRY_POINT} under {source}: is django-static-mathjax installed whole?")
    return source


def use_local_mathjax(app: Sphinx, config: Config) -> None:
    mathjax_source()  # fail early, before a long build, when the package is missing
    config.mathjax_path = f"mathjax/{ENTRY_POINT}"  # relative paths are relative to _static


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / ENTRY_POINT, target / ENTRY_POINT)
    for folder in FOLDERS:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)


def fix_page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    unique, seen = [], set()
    for script in context.get("script_files", []):
        # Registered twice (once with filename None, once ""), otherwise equal: keep the first.
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "auto"  # the theme's own default, which its template fails to fill in


STATIC = Path(__file__).resolve().parent.parent / "_static"


def add_code_css(app: Sphinx, config: Config) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))
    app.add_css_file("book_code.css")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", add_code_css)
    app.connect("config-inited", use_local_mathjax, priority=900)
    app.connect("html-page-context", fix_page_context, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
