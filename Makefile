# immunoreset — two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BASE_STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint format bench test-deps screenshots clean

$(BASE_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(BASE_STAMP) $@

## make demo: create .venv, install, build the SYNTHETIC demo registry (demo.db) and report/.
demo: $(BASE_STAMP)
	$(VENV)/bin/immunoreset demo --db demo.db --out report

## make test: create .venv with test extras, install/start what the tests need, lint, run pytest.
test: $(TEST_STAMP) test-deps
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m pytest -n 2

test-deps:
	bash scripts/test-deps.sh

## make screenshots: the README's pictures of the web app (desktop, tablet, phone) into
## docs/screenshots, from a temporary SYNTHETIC demo registry (the tests never write there).
screenshots: $(TEST_STAMP) test-deps
	$(VENV)/bin/immunoreset web screenshots --out docs/screenshots

lint: $(TEST_STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

format: $(TEST_STAMP)
	$(PY) -m ruff format src tests benchmarks
	$(PY) -m ruff check --fix src tests benchmarks

## make bench: the benchmarks of benchmarks/ (numbers printed as tables).
bench: $(TEST_STAMP)
	$(PY) benchmarks/registry.py
	$(PY) benchmarks/grading.py
	$(PY) benchmarks/simulate.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm report .pytest_cache
