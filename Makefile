# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment in .venv first if it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUILD  := _build
# One BLAS thread per process: the book's matrices are small, and OpenBLAS's second thread gave no
# speed-up on an idle 2-core machine but made training ten times slower when the other core was busy
# (nbdev-test runs two chapters at once). Override with `make book OPENBLAS_NUM_THREADS=2`.
OPENBLAS_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS
TEST_STEPS := sync nbdev-test book-strict torch-oracle pytest
# The browser test drives Debian's chromium (the CHROMIUM variable overrides its path); see tests/test_book_browser.py
HAVE_CHROMIUM = { if [ -n "$$CHROMIUM" ]; then [ -x "$$CHROMIUM" ]; else command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; fi; }

.PHONY: help env book book-strict sync nbdev-test torch-oracle pytest test lab clean export

help:
	@echo "make book   - set up .venv, execute every chapter and render the book into $(BUILD)/html"
	@echo "make test   - every check: notebook/package sync, nbdev-test, strict book build, pytest"
	@echo "make lab    - open the chapters in JupyterLab"
	@echo "make export - nbdev-clean and nbdev-export after editing a chapter"
	@echo "make clean  - remove builds and caches (keeps .venv)"

env: $(STAMP)

# The stamp is a copy of the pyproject.toml that was installed: nbdev-export rewrites
# pyproject.toml on every run (same text, new time), which must not trigger a reinstall.
$(STAMP): pyproject.toml
	@if [ -f $(STAMP) ] && cmp -s pyproject.toml $(STAMP); then touch $(STAMP); else \
	  set -e; echo "Setting up $(VENV): pip install -e '.[dev]'"; \
	  $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --upgrade pip; \
	  $(BIN)/python -m pip install --quiet -e '.[dev]'; \
	  cp pyproject.toml $(STAMP); \
	fi

# Executes every chapter (myst-nb, execute_notebooks: force) and renders the HTML book; --all
# rebuilds every page, so a change in the package reaches chapters whose notebook did not change.
book: $(STAMP)
	$(BIN)/jupyter-book build . --all --keep-going
	@echo "The book is at $(BUILD)/html/index.html"

# The same build, but any warning or execution error fails it.
book-strict: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going

export: $(STAMP)
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export

# The notebooks are the source of truth: cleaning and exporting them must change nothing.
# (tests/test_sync.py runs the same script on a copy of the project, to prove it catches drift.)
sync: $(STAMP)
	BIN=$(BIN) bash tools/check_sync.sh

nbdev-test: $(STAMP)
	$(BIN)/nbdev-test --n-workers 2

# PyTorch is an optional extra oracle for tests/*_torch.py, never a dependency. Install its CPU build
# only from a local wheel (PIP_FIND_LINKS, /opt/wheels on the project's machines): from the package
# index `torch` would be a multi-GB CUDA build. Without the wheel those tests skip, and say so.
TORCH_WHEEL_DIR ?= $(or $(PIP_FIND_LINKS),/opt/wheels)
torch-oracle: $(STAMP)
	@if $(BIN)/python -c "import torch" 2>/dev/null; then echo "torch oracle: installed"; \
	elif ls $(TORCH_WHEEL_DIR)/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then \
	  echo "torch oracle: installing the local CPU wheel"; \
	  $(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEEL_DIR) 'torch==2.13.0'; \
	else echo "NOTE: no local PyTorch CPU wheel: the PyTorch cross-checks (tests/*_torch.py) will be skipped"; fi

# Exit status 5 means pytest collected no tests: an error here, never a silent pass.
pytest: $(STAMP)
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; status=1; fi; \
	if ! $(HAVE_CHROMIUM); then \
	  echo "NOTE: the browser test (tests/test_book_browser.py) was SKIPPED: no chromium;" \
	       "install it with: apt-get install chromium"; fi; \
	exit $$status

# Runs every step even when one fails, then prints one line per step and fails if any did.
test: $(STAMP)
	@failed=""; summary=""; \
	for step in $(TEST_STEPS); do \
	  echo; echo "==> make $$step"; start=$$(date +%s); \
	  if $(MAKE) --no-print-directory $$step; then result=ok; else result=FAILED; failed="$$failed $$step"; fi; \
	  summary="$$summary$$(printf '  %-12s %-7s %5ss' $$step $$result $$(( $$(date +%s) - start )))\n"; \
	done; \
	echo; echo "==> make test summary"; printf "$$summary"; \
	if ! $(HAVE_CHROMIUM); then \
	  echo "  NOTE: the browser test was SKIPPED (no chromium): apt-get install chromium"; fi; \
	if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "  NOTE: the PyTorch cross-checks (tests/*_torch.py) were SKIPPED: no local PyTorch wheel"; fi; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: all checks passed"

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis .jupyter_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
