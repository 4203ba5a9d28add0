"""The built HTML book, read without a browser: clean pages, nothing loaded from outside the book.

Every page listed in `_toc.yml` is checked in `_build/html` (built by the `book_html` fixture with
the strict command if it is missing). The `#|` translation of `_ext/nbdev_directives.py` and the
offline scan of `_ext/offline_book.py` are unit-tested at the end.
"""
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from bs4 import BeautifulSoup

from book_support import ROOT, page_html, toc_pages

sys.path.insert(0, str(ROOT / "_ext"))
import nbdev_directives  # noqa: E402
import offline_book  # noqa: E402

PAGES = toc_pages()
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host
URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>);]+")
CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+(?:url\(\s*)?[\"']?)([^\"')\s]+)", re.I)
# Python warning / error output that must never reach a page
WARNING_TEXT = re.compile(r"\b[A-Z]\w*Warning: |Traceback \(most recent call last\)")
# (tag, attribute) pairs that make the browser load something
RESOURCES = [("script", "src"), ("link", "href"), ("img", "src"), ("img", "srcset"),
             ("iframe", "src"), ("source", "src"), ("source", "srcset"), ("video", "src"),
             ("video", "poster"), ("audio", "src"), ("embed", "src"), ("object", "data")]
NOT_LOADED_LINK_RELS = {"canonical", "alternate", "author", "license", "help", "index", "search",
                        "next", "prev"}


def soup_of(path):
    return BeautifulSoup(Path(path).read_text(encoding="utf-8"), "html.parser")


def main_text(soup):
    """The page text a reader sees (the theme's hidden search dialog and scripts left out)."""
    for tag in soup(["script", "style", "noscript", "template"]): tag.decompose()
    return soup.get_text(" ")


def local_file(page, url):
    """The file under `_build/html` that a relative `url` on `page` points at."""
    path = unquote(urlparse(url).path)
    return (page.parent / path).resolve() if path else page


def loaded_urls(soup):
    """(tag, attribute, url) for every resource a page loads through an attribute."""
    found = []
    for tag, attr in RESOURCES:
        for el in soup.find_all(tag):
            value = el.get(attr)
            if not value: continue
            if tag == "link" and NOT_LOADED_LINK_RELS & set(el.get("rel") or []): continue
            urls = [u.strip().split()[0] for u in value.split(",") if u.strip()] if attr == "srcset" else [value]
            found += [(tag, attr, u) for u in urls]
    return found


@pytest.fixture(scope="module", params=PAGES)
def page(request, book_html):
    path = page_html(request.param, book_html)
    assert path.exists(), f"{request.param} is in _toc.yml but {path} was not built"
    return path


def test_toc_lists_pages():
    assert len(PAGES) >= 1 and len(set(PAGES)) == len(PAGES), PAGES


def test_no_directive_text(page):
    html = page.read_text(encoding="utf-8")
    assert "#|" not in html, f"{page.name}: an nbdev `#|` directive reached the page"


def test_no_warning_or_error_output(page):
    soup = soup_of(page)
    bad = soup.select(".output.stderr, .output.traceback, .output.error, div.cell_output .stderr")
    assert not bad, f"{page.name}: stderr/traceback output: {bad[0].get_text()[:300]!r}"
    m = WARNING_TEXT.search(main_text(soup))
    assert m is None, f"{page.name}: Python warning or traceback text on the page: {m and m.group(0)!r}"


def test_loads_nothing_from_outside(page):
    soup = soup_of(page)
    outside = [f"<{t} {a}={u}>" for t, a, u in loaded_urls(soup) if EXTERNAL.match(u)]
    for script in soup.find_all("script", src=False):
        outside += [f"inline <script>: {u}" for u in URL_IN_TEXT.findall(script.get_text())]
    for style in soup.find_all("style"):
        outside += [f"<style> {u}" for u in CSS_URL.findall(style.get_text()) if EXTERNAL.match(u)]
    for el in soup.find_all(style=True):
        outside += [f"style= {u}" for u in CSS_URL.findall(el["style"]) if EXTERNAL.match(u)]
    assert not outside, f"{page.name} loads from outside the book: {outside}"


def test_local_resources_exist(page):
    missing = [f"<{t} {a}={u}>" for t, a, u in loaded_urls(soup_of(page))
               if not EXTERNAL.match(u) and not u.startswith(("data:", "#"))
               and not local_file(page, u).exists()]
    assert not missing, f"{page.name} refers to files that are not in the build: {missing}"


def test_images_exist(page):
    imgs = soup_of(page).find_all("img")
    for img in imgs:
        src = img.get("src", "")
        assert src, f"{page.name}: <img> without src"
        if src.startswith("data:"): continue
        path = local_file(page, src)
        assert path.is_file() and path.stat().st_size > 0, f"{page.name}: image {src} is missing"


def test_no_outside_links_in_theme(page):
    """Links to outside pages are allowed in the chapters' prose, never in the theme's frame."""
    soup = soup_of(page)
    for article in soup.select("article"): article.decompose()
    outside = [a["href"] for a in soup.find_all("a", href=True) if EXTERNAL.match(a["href"])]
    assert not outside, f"{page.name}: the page frame links outside the book: {outside}"


def test_title_and_math_script(page):
    soup = soup_of(page)
    assert soup.title and soup.title.get_text().strip(), f"{page.name}: empty <title>"
    if soup.select(".math"):
        srcs = [s["src"] for s in soup.find_all("script", src=True) if "mathjax" in s["src"].lower()]
        assert srcs and all(not EXTERNAL.match(s) and "_static/mathjax/" in s for s in srcs), srcs
        assert local_file(page, srcs[0]).is_file()


def test_css_loads_nothing_from_outside(book_html):
    """Every local stylesheet (and what it @imports) uses only files inside the book."""
    seen, todo, outside = set(), [], []
    for doc in PAGES:
        path = page_html(doc, book_html)
        todo += [local_file(path, l["href"]) for l in soup_of(path).find_all("link", href=True)
                 if "stylesheet" in (l.get("rel") or []) and not EXTERNAL.match(l["href"])]
    while todo:
        css = todo.pop()
        if css in seen or not css.is_file(): continue
        seen.add(css)
        for url in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
            if EXTERNAL.match(url): outside.append(f"{css.relative_to(book_html)}: {url}")
            elif url.endswith(".css") or ".css?" in url: todo.append(local_file(css, url))
    assert seen, "no local stylesheet found"
    assert not outside, f"stylesheets load from outside the book: {outside}"


def test_index_links_to_every_chapter(book_html):
    index = book_html / "index.html"
    assert index.exists()
    soup = soup_of(index)
    refresh = soup.find("meta", attrs={"http-equiv": re.compile("refresh", re.I)})
    if refresh:  # Jupyter Book writes index.html as a redirect to the root page
        target = refresh["content"].split("url=", 1)[1].strip()
        assert local_file(index, target) == page_html(PAGES[0], book_html).resolve(), target
        index = page_html(PAGES[0], book_html)
        soup = soup_of(index)
    linked = {local_file(index, a["href"]) for a in soup.find_all("a", href=True)
              if not EXTERNAL.match(a["href"]) and not a["href"].startswith("#")}
    missing = [d for d in PAGES[1:] if page_html(d, book_html).resolve() not in linked]
    assert not missing, f"the start page does not link to {missing}"


def test_next_links_follow_the_toc(book_html):
    for doc, following in zip(PAGES, PAGES[1:] + [None]):
        path = page_html(doc, book_html)
        nxt = soup_of(path).select_one("a.right-next")
        if following is None:
            assert nxt is None, f"the last page {doc} links to a next page {nxt['href']}"
        else:
            assert nxt is not None, f"{doc} has no 'next' link"
            assert local_file(path, nxt["href"]) == page_html(following, book_html).resolve()


def test_mathjax_is_shipped(book_html):
    assert (book_html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    fonts = list((book_html / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert fonts, "MathJax's CHTML fonts are missing from _static/mathjax"


# ---- unit tests of the Sphinx extensions ----------------------------------------------------

def notebook(*cells):
    """A notebook JSON string from (cell_type, source) pairs."""
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": t, "metadata": {}, "source": s, **({"outputs": [], "execution_count": None}
                                                         if t == "code" else {})}
        for t, s in cells]})


def translate(*cells):
    return json.loads(nbdev_directives.translate_notebook(notebook(*cells)))["cells"]


def tags(cell): return set(cell["metadata"].get("tags", []))


def test_translate_directives_to_tags():
    cells = translate(
        ("code", "#| default_exp tensor"),
        ("markdown", "#| not a directive in markdown\n# Title"),
        ("code", "#| export\ndef f(x): return 2 * x"),
        ("code", "#| hide\nimport numpy as np"),
        ("code", "#| echo: false\nprint('shown')"),
        ("code", "#|code-fold: true\n#| output: false\nf(1)"),
        ("code", "#| eval: false\nraise SystemExit"),
        ("code", "#| notest\n#| echo: true\n\nslow()"),
        ("code", "x = 1\n#| hide\n"),  # a `#|` after code is not a directive (as in nbdev)
        ("code", "#| hide\nimport nbdev; nbdev.nbdev_export()"),
        ("code", ["#| export\n", "def g(): pass\n"]),  # source as a list of lines
    )
    assert tags(cells[0]) == {"remove-cell"}  # nothing left but the directive
    assert cells[1]["source"] == "#| not a directive in markdown\n# Title" and not tags(cells[1])
    assert cells[2]["source"] == "def f(x): return 2 * x" and not tags(cells[2])
    assert tags(cells[3]) == {"remove-cell"} and cells[3]["source"] == "import numpy as np"
    assert tags(cells[4]) == {"remove-input"} and cells[4]["source"] == "print('shown')"
    assert tags(cells[5]) == {"hide-input", "remove-output"} and cells[5]["source"] == "f(1)"
    assert tags(cells[6]) == {"skip-execution"} and cells[6]["source"] == "raise SystemExit"
    assert not tags(cells[7]) and cells[7]["source"] == "slow()"
    assert not tags(cells[8]) and cells[8]["source"] == "x = 1\n#| hide"
    assert tags(cells[9]) == {"remove-cell", "skip-execution"}  # the book never re-exports
    assert cells[10]["source"] == "def g(): pass" and not tags(cells[10])
    assert all(not c["source"].lstrip().startswith("#|") for c in cells if c["cell_type"] == "code")


def test_translate_keeps_existing_tags():
    nb = json.loads(notebook(("code", "#| hide\n1")))
    nb["cells"][0]["metadata"]["tags"] = ["keep-me"]
    cell = json.loads(nbdev_directives.translate_notebook(json.dumps(nb)))["cells"][0]
    assert tags(cell) == {"keep-me", "remove-cell"}


def test_unknown_directive_warns(monkeypatch):
    warnings = []
    monkeypatch.setattr(nbdev_directives.logger, "warning",
                        lambda msg, *a, **k: warnings.append(msg))
    cell = json.loads(nbdev_directives.translate_notebook(
        notebook(("code", "#| frobnicate: yes\n#| echo: maybe\n1")), "chapters/99_x"))["cells"][0]
    assert cell["source"] == "1"
    assert len(warnings) == 2 and all("chapters/99_x" in w for w in warnings), warnings
    assert "#| frobnicate: yes" in warnings[0] and "#| echo: maybe" in warnings[1]


def test_offline_scan_finds_outside_resources():
    page = """<html><head>
      <script src="https://cdn.example.org/mathjax.js"></script>
      <script src="_static/local.js"></script>
      <link rel="stylesheet" href="//fonts.example.org/css">
      <link rel="canonical" href="https://example.org/page.html">
      <script>const URL = "https://unpkg.com/thebe";</script>
      <style>@import "https://fonts.example.org/x.css"; .a { background: url(img.png) }</style>
      </head><body><a href="https://example.org">a link is fine</a>
      <img src="http://example.org/x.png"></body></html>"""
    found = {url for _, url in offline_book.external_resources(page)}
    assert found == {"https://cdn.example.org/mathjax.js", "//fonts.example.org/css",
                     "https://unpkg.com/thebe", "https://fonts.example.org/x.css",
                     "http://example.org/x.png"}
    css = "@font-face { src: url('https://f.example.org/a.woff2') } .b { background: url(data:x) }"
    assert offline_book.external_resources(css, css=True) == [("css url", "https://f.example.org/a.woff2")]
    assert offline_book.mathjax_static_dir() is not None, "install the dev extra (sphinx-mathjax-offline)"
