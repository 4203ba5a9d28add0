"""`make sync` really catches notebooks and package drifting apart.

The project's chapters, package and pyproject.toml are copied into a fresh git repository, where
`tools/check_sync.sh` (the script `make sync` runs) must pass and leave `git status` clean; then
the source of an exported cell is edited without exporting, and the same script must fail and
name the package file. A committed notebook with outputs and a new chapter that was never
exported must fail it too.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from book_support import BIN, ROOT

SCRIPT = ROOT / "tools" / "check_sync.sh"
DIFFER = "the notebooks in chapters/ and the package in causal_attention/ differ"
GIT = ["git", "-c", "user.name=sync-test", "-c", "user.email=sync-test@localhost",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


def run(cmd, cwd):
    env = {**os.environ, "BIN": str(BIN), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def check_sync(repo):
    return run(["bash", str(SCRIPT)], repo)


def exported_cell(nb):
    """Index of the first cell whose directives export it (`#| export`, `#| exporti`, ...)."""
    for i, cell in enumerate(nb["cells"]):
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        first = src.lstrip().splitlines()[0] if src.strip() else ""
        if cell["cell_type"] == "code" and first.replace(" ", "").startswith("#|export"):
            return i
    return None


def fallback_chapter(repo):
    """A tiny exporting notebook, for a project that has no exported cell yet."""
    cell = lambda src: {"cell_type": "code", "execution_count": None, "metadata": {},
                        "outputs": [], "source": src}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        cell("#| default_exp sync_probe"), cell("#| export\ndef probe():\n    return 1")]}
    (repo / "chapters" / "99_sync_probe.ipynb").write_text(json.dumps(nb, indent=1))


@pytest.fixture
def repo(tmp_path):
    """A git repository holding a copy of the project's notebooks, package and config."""
    repo = tmp_path / "project"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for folder in ("chapters", "causal_attention"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", repo)
    if not any(exported_cell(json.loads(p.read_text())) is not None
               for p in (repo / "chapters").glob("[!_.]*.ipynb")):
        fallback_chapter(repo)
        for tool in ("nbdev-clean", "nbdev-export"):  # what `make export` does
            assert run([str(BIN / tool)], repo).returncode == 0
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        result = run(GIT + cmd, repo)
        assert result.returncode == 0, result.stderr
    return repo


def test_check_sync_passes_on_the_project(repo):
    result = check_sync(repo)
    assert result.returncode == 0, (
        "the notebooks and the package in the working tree already differ (run `make export`):\n"
        + result.stdout + result.stderr)
    assert "sync: notebooks and package agree" in result.stdout
    assert run(["git", "status", "--porcelain"], repo).stdout == ""


def test_check_sync_fails_when_a_notebook_is_not_exported(repo):
    for path in sorted((repo / "chapters").glob("[!_.]*.ipynb")):
        nb = json.loads(path.read_text())
        i = exported_cell(nb)
        if i is not None: break
    else: pytest.fail("no notebook with an exported cell")
    cell = nb["cells"][i]
    src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    cell["source"] = src.rstrip("\n") + "\n\nSYNC_CHECK_PROBE = 42  # edited without nbdev-export\n"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")

    result = check_sync(repo)
    out = result.stdout + result.stderr
    assert result.returncode != 0, f"the sync check passed although {path.name} was edited:\n{out}"
    assert DIFFER in out
    assert re.search(r"^\s+causal_attention/\w+\.py$", out, re.M), f"no module named:\n{out}"
    assert "SYNC_CHECK_PROBE" in run(["git", "diff", "--", "causal_attention"], repo).stdout


def test_check_sync_fails_on_a_committed_uncleaned_notebook(repo):
    path = sorted((repo / "chapters").glob("[!_.]*.ipynb"))[0]
    nb = json.loads(path.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 7
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "left over\n"}]
    path.write_text(json.dumps(nb, indent=1) + "\n")
    assert run(GIT + ["commit", "-q", "-am", "outputs committed"], repo).returncode == 0
    result = check_sync(repo)
    assert result.returncode != 0 and DIFFER in result.stdout
    assert f"chapters/{path.name}" in result.stdout


def test_check_sync_fails_on_a_new_uncommitted_chapter(repo):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": src} for src in ("#| default_exp new_probe", "#| export\ndef new(): pass")]}
    (repo / "chapters" / "98_new_probe.ipynb").write_text(json.dumps(nb, indent=1))
    result = check_sync(repo)
    assert result.returncode != 0 and DIFFER in result.stdout
    assert "causal_attention/new_probe.py" in result.stdout, result.stdout
