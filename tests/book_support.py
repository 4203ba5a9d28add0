"""Helpers for the rendered-book tests (test_book_html.py, test_book_browser.py, test_sync.py)."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
BIN = Path(sys.executable).parent  # the virtual environment running pytest (.venv/bin)
STRICT_BUILD = [str(BIN / "jupyter-book"), "build", ".", "--all", "-W", "-n", "--keep-going"]
SOURCE_SUFFIXES = (".ipynb", ".md")


def toc_pages(root=ROOT):
    """Docnames of the pages in `_toc.yml`, in reading order (the root page first)."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry: pages.append(entry["file"])
            for key in ("sections", "chapters"): walk(entry.get(key))
            for part in entry.get("parts", []): walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []): walk(part.get("chapters"))
    return [_docname(p) for p in pages]


def _docname(path):
    """`chapters/01_tensor.ipynb` -> `chapters/01_tensor`."""
    path = str(path).strip("/")
    for suffix in SOURCE_SUFFIXES:
        if path.endswith(suffix): return path[:-len(suffix)]
    return path


def page_html(docname, html=HTML):
    """The built HTML file of a TOC page."""
    return Path(html) / f"{docname}.html"


def page_source(docname, root=ROOT):
    """The source file (notebook or Markdown) of a TOC page, or None if it does not exist."""
    for suffix in SOURCE_SUFFIXES:
        path = Path(root) / f"{docname}{suffix}"
        if path.exists(): return path
    return None


def book_is_stale(root=ROOT, html=HTML):
    """True when a TOC page has no HTML yet, or its source or the book config is newer."""
    config_time = max((Path(root) / f).stat().st_mtime for f in ("_config.yml", "_toc.yml"))
    for doc in toc_pages(root):
        out = page_html(doc, html)
        if not out.exists(): return True
        src = page_source(doc, root)
        if out.stat().st_mtime < max(config_time, src.stat().st_mtime if src else 0): return True
    return False


def build_book(root=ROOT):
    """Run the strict book build (`make book-strict`); return the CompletedProcess."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(STRICT_BUILD, cwd=root, env=env, capture_output=True, text=True)
