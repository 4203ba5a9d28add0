"""Keep the HTML book self-contained: MathJax served from `_static`, no outside resource.

Three jobs, so that a book opened without network looks exactly like one opened with it:

1. Serve MathJax 3 locally. Sphinx loads MathJax from a CDN by default. The MathJax files come
   from the `sphinx-mathjax-offline` distribution (a dev dependency), whose own extension cannot
   be imported (its top-level folder is spelled `sphinx-mathjax-offline`, with hyphens) and
   copies the files only after a build without errors. Here the folder is added to
   `html_static_path`, so every build writes `_static/mathjax/`, and `mathjax_path` points at it.
2. Switch off `sphinx_thebe`, which Jupyter Book always loads: even with launch buttons off it
   writes `THEBE_JS_URL = "https://unpkg.com/..."` into every page (used only by a "live code"
   button this book does not have) and ships an unused stylesheet and script.
3. After the build, scan every HTML page and CSS file for a resource loaded from outside the book
   (`<script src>`, `<link href>`, `<img src>`, `<iframe src>`, `<source src>`, CSS `url()` and
   `@import`, an http(s) URL in an inline `<script>`) and warn for each one: under `-W`
   (`make book-strict`, `make test`) the build fails.
"""
import re
from importlib import metadata
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_DIST = "sphinx-mathjax-offline"
MATHJAX_ENTRY = "mathjax/tex-chtml.js"  # relative to _static

EXTERNAL = r"(?:[a-z][a-z0-9+.-]*:)?//"  # http://, https://, protocol-relative //host
# Tags whose attribute loads a resource into the page (an <a href> is a link, not a resource).
RESOURCE_ATTR = re.compile(
    r"<(?P<tag>script|link|img|iframe|source|audio|video|embed|object|input)\b[^>]*?"
    r"\s(?P<attr>src|href|data|srcset|poster)\s*=\s*[\"']?(?P<url>" + EXTERNAL + r"[^\"'\s>]*)",
    re.IGNORECASE)
CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?P<url>" + EXTERNAL + r"[^\"')\s]*)",
                     re.IGNORECASE)
# a `<link>` that is not a resource: rel="canonical" and friends name a page, they load nothing
NON_RESOURCE_REL = re.compile(r"\srel\s*=\s*[\"']?(canonical|alternate|author|license|help)\b", re.I)


def mathjax_static_dir():
    """The folder holding `mathjax/tex-chtml.js` from the installed `sphinx-mathjax-offline`."""
    try: dist = metadata.distribution(MATHJAX_DIST)
    except metadata.PackageNotFoundError: return None
    for f in dist.files or []:
        if str(f).replace("\\", "/").endswith("static/" + MATHJAX_ENTRY):
            return Path(dist.locate_file(f)).resolve().parents[1]
    return None


def external_resources(text, css=False):
    """The outside URLs that an HTML page (or a CSS file if `css`) would load: list of (what, url)."""
    found = [("css url", m["url"]) for m in CSS_URL.finditer(text)]
    if css: return found
    for m in RESOURCE_ATTR.finditer(text):
        if m["tag"].lower() == "link" and NON_RESOURCE_REL.search(m.group(0)): continue
        found.append((f"<{m['tag'].lower()} {m['attr'].lower()}>", m["url"]))
    for script in re.finditer(r"<script\b[^>]*>(.*?)</script>", text, re.S | re.I):
        found += [("inline <script>", u) for u in re.findall(r"https?://[^\"'\s;)]+", script.group(1))]
    for style in re.finditer(r"<style\b[^>]*>(.*?)</style>", text, re.S | re.I):
        found += [("inline css url", m["url"]) for m in CSS_URL.finditer(style.group(1))]
    return found


def _disable_thebe(app):
    """Disconnect sphinx_thebe's event handlers and drop its stylesheet (no live-code buttons)."""
    for listeners in list(app.events.listeners.values()):
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").startswith("sphinx_thebe"):
                app.disconnect(listener.id)
    app.registry.css_files[:] = [(f, a) for f, a in app.registry.css_files if "thebe" not in f]


def _on_config_inited(app, config):
    if "sphinx_thebe" in app.extensions: _disable_thebe(app)
    static = mathjax_static_dir()
    if static is None:
        logger.warning(f"offline_book: the '{MATHJAX_DIST}' package is not installed, MathJax would"
                       f" come from a CDN; install the dev extra: pip install -e '.[dev]'",
                       type="offline_book")
        return
    config.html_static_path = list(config.html_static_path) + [str(static)]
    config.mathjax_path = MATHJAX_ENTRY


def _on_build_finished(app, exc):
    if exc is not None or app.builder.format != "html": return
    out = Path(app.outdir)
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".html", ".css") or "mathjax" in path.parts: continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, url in external_resources(text, css=path.suffix == ".css"):
            logger.warning(f"offline_book: {path.relative_to(out)} loads {what} from outside the"
                           f" book: {url}", type="offline_book")


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
