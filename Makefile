# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment in .venv first if it is missing or out of date.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BUILD  := _build

.PHONY: help env book book-strict sync nbdev-test pytest test lab clean export

help:
	@echo "make book   - set up .venv, execute every chapter and render the book into $(BUILD)/html"
	@echo "make test   - every check: notebook/package sync, nbdev-test, strict book build, pytest"
	@echo "make lab    - open the chapters in JupyterLab"
	@echo "make export - nbdev-clean and nbdev-export after editing a chapter"
	@echo "make clean  - remove builds and caches (keeps .venv)"

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Executes every chapter (myst-nb, execute_notebooks: force) and renders the HTML book.
book: $(STAMP)
	$(BIN)/jupyter-book build . --keep-going
	@echo "The book is at $(BUILD)/html/index.html"

# The same build, but any warning or execution error fails it.
book-strict: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

export: $(STAMP)
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export

# The notebooks are the source of truth: cleaning and exporting them must change nothing.
sync: $(STAMP)
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export
	@if [ -n "$$(git status --porcelain -- chapters causal_attention)" ]; then \
	  echo "ERROR: the notebooks in chapters/ and the package in causal_attention/ differ"; \
	  echo "       (or a chapter was not cleaned). nbdev-clean and nbdev-export changed:"; \
	  git status --porcelain -- chapters causal_attention; \
	  echo "       Edit the notebooks, never the package; run 'make export' and commit both."; \
	  exit 1; \
	fi
	@echo "sync: notebooks and package agree"

nbdev-test: $(STAMP)
	$(BIN)/nbdev-test --n_workers 2

pytest: $(STAMP)
	$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

test: $(STAMP)
	$(MAKE) sync
	$(MAKE) nbdev-test
	$(MAKE) book-strict
	$(MAKE) pytest

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis .jupyter_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
