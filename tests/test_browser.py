"""The built book as a reader sees it: every page of _build/html opened in headless Chromium.

Each page is served from a local http.server on 127.0.0.1 with every other host blocked, so math must
render from the book's own copy of MathJax. Per page: no console errors, every image loaded, every
display equation typeset, executed outputs on chapter pages, every chapter of _toc.yml in the sidebar.
A screenshot of each chapter page goes to _build/screenshots/. The browser is Debian's ``chromium``
(``make test`` installs it where it can), driven by Playwright; nothing is downloaded at run time.
Without a Chromium the test is skipped, except under ``CI=true``, where it fails.

``VAE_BOOK_HTML`` points the test at another build (default ``_build/html``), ``VAE_BOOK_TOC`` at the
table of contents it was built with (default ``_toc.yml``), ``CHROMIUM`` at another browser executable.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

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


@pytest.mark.parametrize("page_path", PAGES or ["index.html"])
def test_page_renders_in_a_browser(page_path: str, server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
    if page_path not in ("search.html", "genindex.html"):
        listed = {path.removesuffix(".html").lstrip("/") for path in facts["sidebar"]}
        missing = [chapter for chapter in toc_chapters() if chapter not in listed]
        assert not missing, f"the sidebar of {page_path} does not list {missing}"
