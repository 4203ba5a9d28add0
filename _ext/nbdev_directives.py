"""Translate nbdev's `#|` cell directives into myst-nb cell tags, and strip them from the page.

myst-nb does not understand nbdev's directives: left alone, every `#| export` line would be
printed in the book. This extension rewrites each notebook as Sphinx reads it (the
`source-read` event, before myst-nb parses and executes it), so the notebooks on disk keep only
the nbdev directives and the book still honours them.
"""
import json
import re

from sphinx.util import logging

logger = logging.getLogger(__name__)

DIRECTIVE = re.compile(r"^\s*#\|\s*(?P<name>[\w-]+)\s*:?\s*(?P<value>.*?)\s*$")

# (name, value or None for "any value") -> myst-nb tag (None: strip the line, add no tag)
TAGS = {
    ("hide", None): "remove-cell",
    ("echo", "false"): "remove-input",
    ("output", "false"): "remove-output",
    ("code-fold", "true"): "hide-input",
    ("code-fold", "show"): "hide-input",
    ("eval", "false"): "skip-execution",
    # the defaults, written out: nothing to do
    ("echo", "true"): None,
    ("output", "true"): None,
    ("code-fold", "false"): None,
    ("eval", "true"): None,
}
STRIP_ONLY = {"export", "exporti", "exports", "default_exp", "notest", "filter_stream"}


def _directive_tags(name, value, docname):
    """The tags for one directive line; warn (a build error under -W) for unknown directives."""
    value = value.lower()
    for key in ((name, value), (name, None)):
        if key in TAGS: return [TAGS[key]] if TAGS[key] else []
    if name in STRIP_ONLY: return []
    logger.warning(f"{docname}: unknown nbdev directive '#| {name}: {value}'", type="nbdev")
    return []


def translate_notebook(text, docname="<notebook>"):
    """Return notebook JSON `text` with `#|` lines removed from code cells and turned into tags."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code": continue
        source = cell.get("source", "")
        lines = (source if isinstance(source, str) else "".join(source)).splitlines(keepends=True)
        tags, kept, header = [], [], True
        for line in lines:
            m = DIRECTIVE.match(line) if header else None
            if m:
                tags += _directive_tags(m["name"], m["value"], docname)
                continue
            if line.strip(): header = False
            kept.append(line)
        code = "".join(kept).strip("\n")
        if not code: tags.append("remove-cell")  # e.g. a cell holding only `#| default_exp`
        if "nbdev_export" in code and "import" in code:
            # the closing `nbdev.nbdev_export()` cell: not shown, and not run by the book build,
            # which must not rewrite the package (`make sync` and `make export` do that)
            tags += ["remove-cell", "skip-execution"]
        cell["source"] = code
        if tags:
            meta = cell.setdefault("metadata", {})
            meta["tags"] = sorted(set(meta.get("tags", [])) | set(tags))
    return json.dumps(nb)


def _on_source_read(app, docname, source):
    path = str(app.env.doc2path(docname))
    if path.endswith(".ipynb"): source[0] = translate_notebook(source[0], docname)


def setup(app):
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
