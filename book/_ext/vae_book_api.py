"""A Sphinx extension for the book's API reference, loaded from ``book/_ext`` by ``_config.yml`` (not part of vae_lib).

The reference documents each object where it is defined (``vae_lib.models.VAE``), while docstrings and
chapters name it as readers import it: ``vae_lib.VAE`` or ``vl.VAE``. This resolves those short names to
the documented ones, so ``:class:`vae_lib.VAE``` and ``{py:func}`vl.fit``` link to the reference.
"""

from __future__ import annotations

from typing import Any

PREFIXES = ("vae_lib.", "vl.")


def resolve_short_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Sphinx's ``missing-reference`` handler: ``vae_lib.NAME[.attr]`` -> ``vae_lib.<module>.NAME[.attr]``."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    prefix = next((p for p in PREFIXES if target.startswith(p)), None)
    if prefix is None:
        return None
    import vae_lib

    name = target[len(prefix) :]
    module = getattr(getattr(vae_lib, name.partition(".")[0], None), "__module__", None)
    if not module or not module.startswith("vae_lib.") or target == f"{module}.{name}":
        return None
    return env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], f"{module}.{name}", node, contnode
    )


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", resolve_short_name)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
