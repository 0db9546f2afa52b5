"""The built book as a reader sees it: every page of _build/html opened in headless Chromium.

Each page is served from a local http.server on 127.0.0.1 with every other host blocked, so math must
render from the book's own copy of MathJax. Per page: no console errors, every image loaded, every
display equation typeset, executed outputs on chapter pages, every chapter of _toc.yml in the sidebar;
on chapter pages at 1280 px, every image in a numbered, captioned figure and no code block wider than its box.
A screenshot of each chapter page goes to _build/screenshots/. Each latent explorer (the
``{latent-explorer}`` figures, book/_ext/latent_explorer.py) is driven at a phone's width (390 px, by touch)
and at 1280 px (by mouse): its decoder, run by the page's JavaScript, must give the outputs PyTorch gave
at build time, the pointer must redraw the canvas, and the figure must fit the screen and describe itself
in text. The browser is Debian's ``chromium``
(``make test`` installs it where it can), driven by Playwright; nothing is downloaded at run time.
Without a Chromium the test is skipped, except under ``CI=true``, where it fails.

``VAE_BOOK_HTML`` points the test at another build (default ``_build/html``), ``VAE_BOOK_TOC`` at the
table of contents it was built with (default ``_toc.yml``), ``CHROMIUM`` at another browser executable.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("VAE_BOOK_HTML", ROOT / "_build" / "html")).resolve()
TOC = Path(os.environ.get("VAE_BOOK_TOC", ROOT / "_toc.yml"))
SCREENSHOTS = HTML.parent / "screenshots"
IN_CI = os.environ.get("CI", "").lower() == "true"
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
RAW_TEX = ("$$", "\\begin{", "\\mathcal")
PAGES = sorted(
    p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html") if not p.relative_to(HTML).parts[0].startswith("_")
)
EXPLORER_PAGES = [page for page in PAGES if 'class="latent-explorer"' in (HTML / page).read_text()]
EXPLORER_TOLERANCE = 1e-5  # largest |page - PyTorch| allowed for a decoded pixel mean


def unavailable(reason: str) -> None:
    """Skip on a reader's machine; fail in CI, where the browser test must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


def chromium_executable() -> str | None:
    candidates = [os.environ.get("CHROMIUM"), "chromium", "chromium-browser"]
    return next((found for name in candidates if name and (found := shutil.which(name))), None)


def toc_chapters() -> list[str]:
    toc = yaml.safe_load(TOC.read_text())
    return [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not (HTML / "index.html").is_file():
        unavailable(f"no built book at {HTML} (make test builds it; or set VAE_BOOK_HTML)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_executable()
    if executable is None:
        unavailable("no Chromium found (install Debian's chromium, or set CHROMIUM=/path/to/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_FLAGS)
        yield browser
        browser.close()


def test_the_book_was_built_with_pages() -> None:
    if not PAGES:
        unavailable(f"no HTML pages under {HTML}")
    assert "index.html" in PAGES


def watch(page: object) -> tuple[list[str], list[str]]:
    """Collect the page's console errors, and block (and collect) every request to another host."""
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def offline(route: object) -> None:
        url = route.request.url
        if urlparse(url).hostname in ("127.0.0.1", None) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", offline)
    return errors, outside


@pytest.mark.parametrize("page_path", PAGES or ["index.html"])
def test_page_renders_in_a_browser(page_path: str, server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = watch(page)
    try:
        page.goto(server + page_path, wait_until="load")
        redirect = re.search(
            r'http-equiv="refresh" content="\d+; ?url=([^"]+)"', (HTML / page_path).read_text(), re.IGNORECASE
        )
        if redirect:  # index.html only forwards to the first page
            page.wait_for_url("**/" + redirect.group(1), wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        page.evaluate("() => Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")
        facts = page.evaluate(
            """() => {
                const body = document.body.cloneNode(true);
                body.querySelectorAll('pre, code, script, style, textarea, .highlight').forEach(e => e.remove());
                return {
                    brokenImages: Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src),
                    mathBlocks: document.querySelectorAll('div.math').length,
                    untypeset: Array.from(document.querySelectorAll('div.math, span.math'))
                        .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
                    text: body.textContent,
                    outputs: document.querySelectorAll('div.cell_output').length,
                    sidebar: Array.from(document.querySelectorAll('.bd-sidebar-primary nav a.reference.internal'))
                        .map(a => new URL(a.href).pathname),
                };
            }"""
        )
        layout = page.evaluate(LAYOUT_FACTS) if page_path.startswith("notebooks/") else None
        if page_path.startswith("notebooks/"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).stem}.png"), full_page=True)
    finally:
        page.close()

    assert not errors, f"console errors on {page_path}: {errors}"
    assert not outside, f"{page_path} asked for files from the internet: {outside}"
    assert not facts["brokenImages"], f"images that did not load on {page_path}: {facts['brokenImages']}"
    assert not facts["untypeset"], f"math left untypeset on {page_path}: {facts['untypeset']}"
    raw = [snippet for snippet in RAW_TEX if snippet in facts["text"]]
    assert not raw, f"raw TeX {raw} left in the text of {page_path}"
    if page_path.startswith("notebooks/"):
        assert facts["outputs"] > 0, f"{page_path} shows no executed outputs (div.cell_output)"
        assert not layout["uncaptioned"], f"images of {page_path} outside a captioned figure: {layout['uncaptioned']}"
        assert not layout["unnumbered"], f"figures of {page_path} without a number: {layout['unnumbered']}"
        assert not layout["overflowing"], f"code on {page_path} wider than its box at 1280 px: {layout['overflowing']}"
    if page_path not in ("search.html", "genindex.html"):
        listed = {path.removesuffix(".html").lstrip("/") for path in facts["sidebar"]}
        missing = [chapter for chapter in toc_chapters() if chapter not in listed]
        assert not missing, f"the sidebar of {page_path} does not list {missing}"


# On a chapter page: every image a cell drew sits in a <figure> with a numbered <figcaption>, and no code block,
# folded ones included (opened first), is wider than its box (it would scroll sideways).
LAYOUT_FACTS = """() => {
    document.querySelectorAll('details').forEach(d => { d.open = true; });
    const where = e => (e.closest('.cell') || e).querySelector('pre')?.textContent.slice(0, 60) || e.tagName;
    const images = Array.from(document.querySelectorAll('article img, article canvas'));
    const inFigure = e => e.closest('figure') && e.closest('figure').querySelector('figcaption');
    const figures = Array.from(document.querySelectorAll('article figure'));
    const blocks = Array.from(document.querySelectorAll('article div.cell pre, article div.highlight pre'));
    return {
        uncaptioned: images.filter(e => !inFigure(e)).map(e => e.src || e.getAttribute('aria-label') || where(e)),
        unnumbered: figures.filter(f => !f.querySelector('figcaption .caption-number'))
            .map(f => (f.querySelector('figcaption') || f).textContent.slice(0, 60)),
        overflowing: blocks.filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => `${p.scrollWidth} > ${p.clientWidth}: ${p.textContent.split('\\n')
                .reduce((a, b) => (b.length > a.length ? b : a), '').slice(0, 90)}`),
    };
}"""


def decoder_exports() -> dict[str, dict]:
    """The decoder exports the build wrote (book/_ext/latent_explorer.py): the JSON object on the last line."""
    exports = {}
    for path in sorted((HTML / "_static" / "latent-explorer").glob("*.js")):
        assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes: not well under 1 MB"
        payload = json.loads(path.read_text().rstrip().splitlines()[-1].rstrip(";"))
        exports[payload["name"]] = payload
    return exports


def float64s(text: str, columns: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<f8").reshape(-1, columns)


def point_at(page: object, plane: object, u: float, v: float, phone: bool, click: bool = False) -> None:
    """A finger's tap (phone), or the mouse moved (or clicked), at the fraction (u, v) of the plane."""
    box = plane.bounding_box()
    x, y = box["x"] + u * box["width"], box["y"] + v * box["height"]
    if phone:
        page.touchscreen.tap(x, y)
    elif click:
        page.mouse.click(x, y)
    else:
        page.mouse.move(x, y)


def check_explorer(page: object, figure: object, payload: dict, width: int, phone: bool) -> float:
    """Drive one explorer; return the largest difference between its decoder and PyTorch's reference."""
    name = payload["name"]
    z = float64s(payload["reference"]["z"], payload["latent_dim"])
    reference = float64s(payload["reference"]["mean"], int(np.prod(payload["image_shape"])))
    in_page = np.array(
        page.evaluate("([name, zs]) => zs.map(z => vaeBookLatentExplorer.decode(name, z))", [name, z.tolist()])
    )
    assert len(z) >= 20 and in_page.shape == reference.shape
    difference = float(np.abs(in_page - reference).max())
    assert difference < EXPLORER_TOLERANCE, f"{name}: the page's decoder is {difference:.3g} from PyTorch's"

    figure.scroll_into_view_if_needed()
    plane = figure.locator("canvas.lx-plane-canvas")
    box = plane.bounding_box()
    assert plane.is_visible() and box["width"] > 200, f"the plane is {box['width']:.0f} px wide at {width} px"

    # The image follows the pointer, and what it shows is the page's decoder at the pointer's point.
    image = "root => root.querySelector('canvas.lx-image').toDataURL()"
    shown = figure.evaluate(image)
    for u, v in [(0.3, 0.3), (0.7, 0.6)]:
        point_at(page, plane, u, v, phone)
        assert figure.evaluate(image) != shown, f"the pointer at ({u}, {v}) of the plane left the image as it was"
        shown = figure.evaluate(image)
    drawn, decoded = figure.evaluate(
        """root => {
            const canvas = root.querySelector('canvas.lx-image');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const decoded = vaeBookLatentExplorer.decode(root.dataset.decoder, root.explorer.cursor);
            return [Array.from(pixels).filter((_, i) => i % 4 === 0), decoded];
        }"""
    )
    np.testing.assert_allclose(np.array(drawn), np.round(255 * (1 - np.array(decoded))), atol=1)

    # The second mode: two chosen points, two strips of decoded images.
    figure.get_by_role("button", name="Interpolate between two clicks").click()
    for u, v in [(0.2, 0.75), (0.8, 0.25)]:
        point_at(page, plane, u, v, phone, click=True)
    strips = figure.locator("canvas.lx-strip")
    assert strips.count() == 2 and strips.nth(0).is_visible() and strips.nth(1).is_visible()
    status = figure.locator(".lx-status")
    assert "Pointer at z = (" in status.inner_text() and "Paths from" in status.inner_text()

    # Words for readers who cannot see the canvases.
    description = page.locator(f"[id='{plane.get_attribute('aria-describedby')}']").text_content()
    assert plane.get_attribute("role") == "img" and plane.get_attribute("aria-label")
    assert len(description) > 200 and "latent plane" in description
    assert status.get_attribute("aria-live") == "polite"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    figure.screenshot(path=str(SCREENSHOTS / f"latent-explorer-{name}-{width}px.png"))
    return difference


def test_the_book_has_a_latent_explorer() -> None:
    if not PAGES:
        unavailable(f"no HTML pages under {HTML}")
    assert EXPLORER_PAGES, "no page holds a latent explorer (chapter 5's {latent-explorer} figure)"
    assert decoder_exports(), "the build wrote no decoder export into _static/latent-explorer/"


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("page_path", EXPLORER_PAGES or ["notebooks/05_training_on_digits.html"])
def test_latent_explorer_decodes_as_pytorch_did_and_follows_the_pointer(
    page_path: str, width: int, server: str, browser: object
) -> None:
    phone = width < 600
    page = browser.new_page(
        viewport={"width": width, "height": 844 if phone else 900}, has_touch=phone, is_mobile=phone
    )
    errors, outside = watch(page)
    exports = decoder_exports()
    try:
        page.goto(server + page_path, wait_until="load")
        page.wait_for_selector("div.latent-explorer[data-ready='true']", timeout=10_000)
        figures = page.locator("div.latent-explorer")
        for index in range(figures.count()):
            figure = figures.nth(index)
            difference = check_explorer(page, figure, exports[figure.get_attribute("data-decoder")], width, phone)
            print(f"{page_path} at {width} px: largest |page - PyTorch| {difference:.3g}")
            box = figure.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"the explorer overflows at {width} px"
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
    finally:
        page.close()
    assert not errors, f"console errors on {page_path} at {width} px: {errors}"
    assert not outside, f"{page_path} asked for files from the internet: {outside}"
