# Set-up and checks. `make demo` and `make test-all` are the README's two commands; `make test`
# is the fast part of the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real data sets live beside the clone (see ../shared/data/README.md); override as you like.
GRAPHVAE_DATA ?= $(abspath ../shared/data)
export GRAPHVAE_DATA

.PHONY: install demo test test-all lint typecheck pytest pytest-all clean

# torch is installed first and pinned to the CPU wheel, so that the unpinned
# resolution of torch-geometric's dependencies never pulls CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,chem]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/graphvae linkpred --out runs/demo

lint: install
	$(BIN)/ruff check graphvae tests benchmarks

typecheck: install
	$(BIN)/mypy

# the fast suite (pytest's default -m "not slow"): under 3 minutes on 2 cores
pytest: install
	$(BIN)/python -m pytest

# everything, the benchmark smoke runs included: 12 to 14 minutes on 2 cores
pytest-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

test: lint typecheck pytest

test-all: lint typecheck pytest-all

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
