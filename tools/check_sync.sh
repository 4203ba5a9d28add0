#!/usr/bin/env bash
# The notebooks in chapters/ are the source of truth: running nbdev-clean and nbdev-export must
# change no file in chapters/ or causal_attention/ (no edit, no new file, no deleted file).
# On a fresh checkout (CI) that is the same as `git status --porcelain` staying empty afterwards;
# comparing the files before and after also works in a work tree with uncommitted chapters.
# Run from the project root; `make sync` calls it, and tests/test_sync.py runs this very script
# on a copy of the project. BIN is the folder holding nbdev-clean and nbdev-export.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DIRS=(chapters causal_attention)

manifest() {  # "<sha256>  <path>" for every file, sorted by path
  find "${DIRS[@]}" -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' \
    -print0 | sort -z | xargs -0 -r sha256sum
}

before=$(manifest)
"$BIN/nbdev-clean"
"$BIN/nbdev-export"
after=$(manifest)

changed=$(diff <(echo "$before") <(echo "$after") | sed -n 's/^[<>] [0-9a-f]*  //p' | sort -u || true)
if [ -n "$changed" ]; then
  echo "ERROR: the notebooks in chapters/ and the package in causal_attention/ differ"
  echo "       (or a chapter was not cleaned). nbdev-clean and nbdev-export changed:"
  echo "$changed" | sed 's/^/         /'
  echo "       Edit the notebooks, never the package; run 'make export' and commit both."
  exit 1
fi
echo "sync: notebooks and package agree"
