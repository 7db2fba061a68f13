# Set-up and checks. `make demo` and `make test-all` are the README's two commands; `make test`
# is the fast part of the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real data sets live beside the clone (see ../shared/data/README.md); override as you like.
# (set but empty counts as unset)
ifeq ($(strip $(GRAPHVAE_DATA)),)
GRAPHVAE_DATA := $(abspath ../shared/data)
endif
export GRAPHVAE_DATA

.PHONY: install demo test test-all lint typecheck pytest pytest-all clean

# torch is installed first and pinned, so that the unpinned resolution of torch-geometric's
# dependencies never pulls another build. Which build 2.13.0 is depends on pip's
# configuration: the CPU wheel where it provides one (the project's machine); elsewhere
# TORCH_INDEX=https://download.pytorch.org/whl/cpu asks PyTorch's CPU index for it.
TORCH_INDEX ?=
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[dev,chem]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/graphvae linkpred --out runs/demo

lint: install
	$(BIN)/ruff check graphvae tests benchmarks

typecheck: install
	$(BIN)/mypy

# Tests run in TEST_WORKERS processes (pytest-xdist), each with one torch thread, so the
# suite uses both cores of a 2-core machine; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

# the fast suite (pytest's default -m "not slow"): about 2 minutes on 2 cores
pytest: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# everything, the benchmark smoke runs included: about 10 minutes on 2 cores
pytest-all: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "slow or not slow"

test: lint typecheck pytest

test-all: lint typecheck pytest-all

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
