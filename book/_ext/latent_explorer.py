"""The ``latent-explorer`` directive: an interactive figure of a 2-D latent space that runs in the page.

In a chapter, a code cell tagged ``remove-output`` displays ``vl.export_decoder(...)``, and a directive
further down places the figure::

    :::{latent-explorer} digits-2d
    :name: fig-latent-explorer

    The caption, numbered like any figure's.
    :::

At read time the directive takes the export named ``digits-2d`` from the outputs of the notebook being
built: the outputs of the execution that just ran (``make book``, through jupyter-cache) or the outputs
stored in the ``.ipynb`` (``make test``, execution off); there is no other copy that could go stale. At
write time the HTML writer puts the export, unchanged, into
``_static/latent-explorer/<page>-<name>.js``, a script that registers it in
``window.vaeBookDecoders`` (a script rather than a JSON file, so that the page also works when opened
from disk, where browsers refuse ``fetch``), and ``book/_static/latent_explorer.js`` runs the decoder
and draws the figure. Other builders get the figure's text description in place of the canvases.

The export is an output of its own MIME type, which myst-nb has no renderer for: the cell that displays it
must be tagged ``remove-output`` (myst-nb then renders none of its outputs) or myst-nb warns "skipping
unknown output mime type", which ``-W`` turns into an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective, SphinxTranslator
from sphinx.util.osutil import relative_uri

from vae_lib.export import FORMAT, MIME_TYPE

STATIC = Path(__file__).resolve().parent.parent / "_static"
DATA_FOLDER = "_static/latent-explorer"


class latent_explorer(nodes.General, nodes.Element):  # noqa: N801 (docutils names node classes in lower case)
    """The canvases of the figure (HTML only); its children are the text description, for every builder."""


def find_export(document: nodes.document, name: str) -> dict[str, Any]:
    """The payload of the export called ``name`` among the outputs of the notebook being read."""
    renderer = document.get("nb_renderer")  # myst-nb keeps its renderer here while it reads a notebook
    if renderer is None:
        raise ValueError("latent-explorer works in notebooks only: it reads the export from a cell's output")
    found = []
    for cell in renderer.renderer.nb_client.notebook.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME_TYPE)
            if payload is not None and payload.get("name") == name:
                found.append(payload)
    if not found:
        raise ValueError(f"no output of this notebook holds the decoder export {name!r} (vl.export_decoder)")
    if len(found) > 1:
        raise ValueError(f"{len(found)} outputs of this notebook hold a decoder export named {name!r}")
    payload = found[0]
    if payload.get("format") != FORMAT or payload.get("latent_dim") != 2:
        raise ValueError(
            f"the export {name!r} is not a 2-D decoder export of format {FORMAT!r}: re-run its notebook "
            f"(format {payload.get('format')!r}, latent_dim {payload.get('latent_dim')!r})"
        )
    return payload


def tenths(value: float) -> str:
    return f"{round(float(value), 1) + 0.0:.1f}"  # + 0.0: no "-0.0"


def describe(payload: dict[str, Any]) -> str:
    """The figure in words, for readers who cannot see it: what is where, and what the controls do."""
    points = np.frombuffer(base64.b64decode(payload["points"]["z"]), "<f4").reshape(-1, 2)
    labels = np.frombuffer(base64.b64decode(payload["points"]["labels"]), "<i4")
    centres = [
        f"{label} around ({tenths(points[labels == label, 0].mean())}, {tenths(points[labels == label, 1].mean())})"
        for label in np.unique(labels)
    ]
    return (
        f"The left panel is the latent plane, z1 across and z2 up, with the encoded latent means of "
        f"{len(points)} test digits as points coloured by their label. The labels gather in regions; the "
        f"centres of their points are: {'; '.join(centres)}. As the pointer (or a finger, or the arrow keys "
        f"once the plane has the focus) moves over the plane, the right panel shows the decoder's image for "
        f"that point, and a line of text under the figure gives the point and the labels of the nearest test "
        f"digits. In the second mode, two clicks (or Enter) choose two points, and two strips of decoded "
        f"images show the path between them: the straight line, and the spherical path (slerp of the "
        f"directions), which turns at a constant rate about the origin while its distance from the origin "
        f"changes linearly."
    )


class LatentExplorerDirective(SphinxDirective):
    required_arguments = 1  # the export's name
    has_content = True  # the caption (first paragraph), then an optional legend
    option_spec = {"name": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            payload = find_export(self.state.document, name)
        except ValueError as error:
            return [self.state.document.reporter.error(f"latent-explorer: {error}", line=self.lineno)]

        content = nodes.Element()
        self.state.nested_parse(self.content, self.content_offset, content)
        if not content.children or not isinstance(content.children[0], nodes.paragraph):
            return [
                self.state.document.reporter.error("latent-explorer: the caption must come first", line=self.lineno)
            ]
        caption = nodes.caption(content[0].rawsource, "", *content[0].children)

        figure = nodes.figure(classes=["latent-explorer-figure"])
        self.set_source_info(figure)
        self.options.setdefault("name", f"latent-explorer-{name}")
        self.add_name(figure)
        description_id = f"{figure['ids'][0] if figure['ids'] else name}-description"
        explorer = latent_explorer(payload=payload, name=name, description_id=description_id)
        explorer += nodes.paragraph(text=describe(payload), ids=[description_id])
        figure += explorer
        figure += caption
        if len(content.children) > 1:
            figure += nodes.legend("", *content.children[1:])
        return [figure]


def data_file(docname: str, name: str) -> str:
    return f"{DATA_FOLDER}/{docname.replace('/', '-')}-{name}.js"


def visit_latent_explorer_html(self: SphinxTranslator, node: latent_explorer) -> None:
    docname = self.builder.current_docname
    target = data_file(docname, node["name"])
    text = json.dumps(node["payload"], separators=(",", ":"), sort_keys=True)  # the same bytes from a cache
    script = (  # the export alone on the last line, so that a test can read it as JSON
        "// The decoder export of the executed notebook, written by the book's build: do not edit.\n"
        "window.vaeBookDecoders = window.vaeBookDecoders || {};\n"
        f"window.vaeBookDecoders[{json.dumps(node['name'])}] =\n{text};\n"
    )
    path = Path(self.builder.outdir, *target.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    version = hashlib.sha256(script.encode()).hexdigest()[:12]  # a new export is a new URL: no stale cache
    src = relative_uri(self.builder.get_target_uri(docname), target)
    self.body.append(
        f'<div class="latent-explorer" data-decoder="{self.attval(node["name"])}" '
        f'data-description="{self.attval(node["description_id"])}"></div>\n'
        f'<script src="{self.attval(src)}?v={version}"></script>\n'
        '<details class="latent-explorer-description"><summary>The figure in words</summary>\n'
    )


def depart_latent_explorer_html(self: SphinxTranslator, node: latent_explorer) -> None:
    self.body.append("</details>\n")


def pass_through(self: SphinxTranslator, node: latent_explorer) -> None:
    pass  # other builders show the text description (the node's children) only


def add_static_path(app: Sphinx, config: object) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def add_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: nodes.document | None) -> None:
    if doctree is not None and any(True for _ in doctree.findall(latent_explorer)):
        app.add_css_file("latent_explorer.css")
        app.add_js_file("latent_explorer.js", loading_method="defer")


def setup(app: Sphinx) -> dict[str, object]:
    other = (pass_through, pass_through)
    app.add_node(
        latent_explorer,
        html=(visit_latent_explorer_html, depart_latent_explorer_html),
        latex=other,
        text=other,
        man=other,
        texinfo=other,
    )
    app.add_directive("latent-explorer", LatentExplorerDirective)
    app.connect("config-inited", add_static_path)
    app.connect("html-page-context", add_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
