"""The built book in a real browser: Debian's Chromium, headless, driven by Playwright.

`_build/html` is served on 127.0.0.1; every request to any other host is aborted and recorded,
and the test fails if there was one. For every page of `_build/html` listed in `_toc.yml`:
HTTP 200, no console error, every image loaded, formulas typeset by the local MathJax, no raw
LaTeX, no `#|` and no Python warning visible, no character drawn as an empty box for want of a
font, a title, a working "next" link. Then the search page and a phone-width (390 px) chapter
page. Full-page screenshots go to `_build/screenshots/`.

Needs Chromium at /usr/bin/chromium (or $CHROMIUM): `apt-get install chromium`. Without it the
test is skipped, except in CI (CI=true), where it fails.
"""
import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from book_support import ROOT, page_html, toc_pages

PAGES = toc_pages()
SCREENSHOTS = ROOT / "_build" / "screenshots"
PHONE_WIDTH = 390
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
HOW_TO_ENABLE = "install Debian's Chromium to run it: apt-get install chromium"
WARNING_TEXT = re.compile(r"\b[A-Z]\w*Warning: |Traceback \(most recent call last\)")
RAW_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac|\\sum|\\mathrm")

# The text a reader sees outside code: visible text nodes, skipping code, scripts and typeset math.
PROSE_TEXT_JS = """() => {
  const skip = 'pre, code, script, style, noscript, mjx-container, mjx-assistive-mml, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    parts.push(n.textContent);
  }
  return parts.join(' ');
}"""

# Wait until MathJax (loaded with `defer`) has typeset the page; report what it did.
MATHJAX_JS = """async () => {
  const math = document.querySelectorAll('.math').length;
  if (!math) return {math, containers: 0, errors: 0, ready: true};
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise))
    return {math, containers: 0, errors: 0, ready: false};
  await MathJax.startup.promise;
  return {math, ready: true,
          containers: document.querySelectorAll('.math mjx-container').length,
          untypeset: [...document.querySelectorAll('.math')].filter(
              e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
          errors: document.querySelectorAll('mjx-merror').length};
}"""

# Characters that no installed font can draw (the browser shows an empty box, "tofu"): each
# visible non-ASCII character is drawn on a canvas in its element's font and compared with the
# drawing of code points that no font has. Typeset math is left out (MathJax ships its fonts).
MISSING_GLYPHS_JS = r"""() => {
  const skip = 'script, style, noscript, mjx-container, mjx-assistive-mml';
  const byFont = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || !el.checkVisibility()) continue;
    const chars = [...n.textContent].filter(c => c.codePointAt(0) > 0x7e && !/\s/u.test(c));
    if (!chars.length) continue;
    const cs = getComputedStyle(el);
    const font = `${cs.fontStyle} ${cs.fontWeight} 32px ${cs.fontFamily}`;
    if (!byFont.has(font)) byFont.set(font, new Set());
    chars.forEach(c => byFont.get(font).add(c));
  }
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 48;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (font, c) => {
    ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.fillText(c, 4, 36);
    return ctx.getImageData(0, 0, 48, 48).data.join('');
  };
  const missing = new Set();
  for (const [font, chars] of byFont) {
    const notdef = ['\u{10FFFD}', '\uFFFF', '\u{E01EF}'].map(c => draw(font, c));
    for (const c of chars) if (notdef.includes(draw(font, c))) missing.add(c);
  }
  return [...missing].join('');
}"""

# Force-load every image (even lazy ones) and report the broken ones.
IMAGES_JS = """async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => { i.loading = 'eager'; return i.decode().catch(() => null); }));
  return {count: imgs.length,
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src)};
}"""

PHONE_JS = """() => {
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const blocks = [...document.querySelectorAll('div.highlight pre')].map(pre => {
    const wide = pre.scrollWidth > pre.clientWidth + 1;
    let el = pre, ok = !wide;
    for (; wide && el && el !== document.body; el = el.parentElement)
      if (scrolls(el) && el.scrollWidth > el.clientWidth) { ok = true; break; }
    return {wide, ok, text: pre.textContent.slice(0, 60)};
  });
  return {pageWidth: document.documentElement.scrollWidth, blocks};
}"""


def chromium_path():
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason):
    """Skip the browser test, or fail it in CI where it must run."""
    if in_ci(): pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped: {reason}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def server(book_html):
    """The book on http://127.0.0.1:<free port>/ for the duration of the module."""
    handler = functools.partial(QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if not Path(exe).exists(): unavailable(f"Chromium not found at {exe}; {HOW_TO_ENABLE}")
    try: from playwright.sync_api import sync_playwright
    except ImportError: unavailable("the playwright package is missing; pip install -e '.[dev]'")
    with sync_playwright() as p:
        try: b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        except Exception as e: unavailable(f"Chromium at {exe} did not start ({e}); {HOW_TO_ENABLE}")
        yield b
        b.close()


class Session:
    """A browser context that serves only 127.0.0.1 and records what went wrong on its pages."""

    def __init__(self, browser, server, **context_options):
        self.host = urlparse(server).netloc
        self.context = browser.new_context(**context_options)
        self.outside, self.console_errors, self.failed = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{m.text} ({m.location.get('url', '')})"))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.failure} {r.url}"))

    def _route(self, route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob") or parsed.netloc == self.host: route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def reset(self):
        self.console_errors.clear()
        self.failed.clear()
        self.outside.clear()

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def session(browser, server):
    s = Session(browser, server, viewport={"width": 1280, "height": 900})
    yield s
    s.close()


def shot_name(docname):
    return docname.replace("/", "_") + ".png"


@pytest.mark.parametrize("docname", PAGES)
def test_page(session, server, docname):
    page = session.page
    session.reset()
    url = urljoin(server, f"{docname}.html")
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"
    problems = []

    mathjax = page.evaluate(MATHJAX_JS)
    if not mathjax["ready"]: problems.append("MathJax did not start (is _static/mathjax served?)")
    elif mathjax["math"]:
        if not mathjax["containers"] or mathjax["untypeset"]:
            problems.append(f"formulas not typeset by MathJax: {mathjax['untypeset']}")
        if mathjax["errors"]: problems.append(f"MathJax reports {mathjax['errors']} TeX errors")

    images = page.evaluate(IMAGES_JS)
    if images["broken"]: problems.append(f"images that did not load: {images['broken']}")

    visible = page.inner_text("body")
    if "#|" in visible:
        at = visible.index("#|")
        problems.append(f"an nbdev `#|` directive is visible: {visible[max(0, at - 40):at + 40]!r}")
    if m := WARNING_TEXT.search(visible):
        problems.append(f"Python warning/traceback visible: {visible[m.start():m.start() + 120]!r}")
    if m := RAW_MATH.search(prose := page.evaluate(PROSE_TEXT_JS)):
        problems.append(f"raw LaTeX visible: {prose[max(0, m.start() - 40):m.end() + 40]!r}")

    if missing := page.evaluate(MISSING_GLYPHS_JS):
        problems.append(f"characters no installed font can draw (shown as empty boxes): {missing!r};"
                        " the book ships no text font: avoid them, or install fonts that have them"
                        " (CJK: apt-get install fonts-noto-cjk)")
    if not page.title().strip(): problems.append("empty <title>")
    index = PAGES.index(docname)
    if index + 1 < len(PAGES):
        nxt = page.query_selector("a.right-next")
        expected = urlparse(urljoin(server, f"{PAGES[index + 1]}.html")).path
        if nxt is None: problems.append("no 'next' link at the bottom of the page")
        elif urlparse(urljoin(page.url, nxt.get_attribute("href"))).path != expected:
            problems.append(f"the 'next' link goes to {nxt.get_attribute('href')}, not {expected}")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / shot_name(docname)), full_page=True)
    if session.console_errors: problems.append(f"console errors: {session.console_errors}")
    if session.failed: problems.append(f"failed requests: {session.failed}")
    if session.outside: problems.append(f"requests outside the book (aborted): {session.outside}")
    assert not problems, f"{docname}:\n  " + "\n  ".join(problems)


def test_search_finds_attention(session, server):
    page = session.page
    session.reset()
    response = page.goto(urljoin(server, "search.html?q=attention"), wait_until="load")
    assert response.status == 200
    page.wait_for_function(
        "() => /Search finished|found/i.test(document.querySelector('#search-results')?.innerText"
        " || '')", timeout=20_000)
    results = page.query_selector_all("#search-results ul.search li")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)
    assert results, f"searching 'attention' found nothing: {page.inner_text('#search-results')[:300]}"
    assert not session.console_errors, f"search: console errors: {session.console_errors}"
    assert not session.failed, f"search: failed requests: {session.failed}"
    assert not session.outside, f"search: requests outside the book: {session.outside}"


def chapter_with_code():
    """The first chapter (a TOC page after the root) whose HTML has a code block, else None."""
    for doc in PAGES[1:]:
        path = page_html(doc)
        if path.exists() and '<div class="highlight">' in path.read_text(encoding="utf-8"):
            return doc
    return None


def test_phone_width_code_scrolls(browser, server, book_html):
    docname = chapter_with_code()
    if docname is None: pytest.skip("no page with a code block yet")
    s = Session(browser, server, viewport={"width": PHONE_WIDTH, "height": 844},
                device_scale_factor=1, is_mobile=True, has_touch=True)
    try:
        page = s.page
        response = page.goto(urljoin(server, f"{docname}.html"), wait_until="load")
        assert response.status == 200
        page.evaluate(MATHJAX_JS)
        page.evaluate(IMAGES_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"phone_{shot_name(docname)}"), full_page=True)
        layout = page.evaluate(PHONE_JS)
        assert layout["blocks"], f"{docname}: no code block found at phone width"
        assert layout["pageWidth"] <= PHONE_WIDTH + 1, \
            f"{docname}: the page is {layout['pageWidth']} px wide on a {PHONE_WIDTH} px phone"
        stuck = [b["text"] for b in layout["blocks"] if not b["ok"]]
        assert not stuck, f"{docname}: wide code blocks that do not scroll sideways: {stuck}"
        assert not s.console_errors, f"phone: console errors: {s.console_errors}"
        assert not s.failed, f"phone: failed requests: {s.failed}"
        assert not s.outside, f"phone: requests outside the book: {s.outside}"
    finally:
        s.close()
