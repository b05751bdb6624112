# `make demo` and `make test` work on a fresh machine: they create .venv when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch is pinned here (the package itself accepts a range): 2.13.0 is the CPU build on this machine's disk.
TORCH   := torch==2.13.0

.PHONY: demo test lint bench golden docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,hf,pretrain,lightning,data,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/objspec demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check objspec compiler tests benchmarks
	$(BIN)/ruff format --check objspec compiler tests benchmarks
	$(BIN)/mypy objspec compiler benchmarks

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,hf,pretrain,bench]'
	$(BIN)/python -m benchmarks.run

# the documentation site into site/ (git-ignored); warnings are errors
docs: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[docs]'
	$(BIN)/python -m mkdocs build --strict

golden: $(STAMP)
	$(BIN)/python -m tests.regen_golden

clean:
	rm -rf $(VENV) build runs site .pytest_cache .hypothesis
