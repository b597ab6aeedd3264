# rindle: `make demo` and `make test` work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))

.PHONY: demo test bench mutate lint install venv system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# The core and every plugin, editable, each with what its tests need (`[test]`), plus the
# core's linters (`[dev]`: mypy, ruff, import-linter) for `make lint`. The build backend
# (the packages' [build-system] requires) goes into the venv once, and the eight editable
# builds use it instead of each making its own isolated build environment (about 17 s of
# a clean install).
install: $(BIN)/python
	$(BIN)/pip install -q 'setuptools>=77' wheel
	$(BIN)/pip install -q --no-build-isolation -e '.[test,dev]' \
		$(foreach d,$(PLUGIN_DIRS),-e '$(d)[test]')

system-deps:
	@bash scripts/system-deps.sh

demo: install
	@bash scripts/demo.sh

test: system-deps install
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: system-deps install
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/run_all.py

# Mutation pass (mutmut) over the core modules in scripts/mutate.sh, from a copy under /tmp;
# prints the survivors and their count (the equivalent ones: bench/MUTATION.md).
mutate: install
	@bash scripts/mutate.sh

lint: install
	$(BIN)/ruff check src tests plugins bench examples
	$(BIN)/mypy src/rindle $(foreach d,$(PLUGIN_DIRS),$(d)/src) examples
	$(BIN)/lint-imports --no-cache --no-logo .importlinter .importlinter-typing

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
