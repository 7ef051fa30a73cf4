# cityloop: `make run` and `make test` each do their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Front-end libraries come from the npm registry at build time and ship inside the package.
VENDOR := src/cityloop/web/static/vendor/versions.json

.PHONY: install run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cityloop needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENDOR): frontend/package.json frontend/package-lock.json frontend/copy-vendor.mjs
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && node copy-vendor.mjs

# The browser tests drive Debian's Chromium (never a downloaded browser build).
BROWSER := /usr/bin/chromium

$(BROWSER):
	apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk

install: $(STAMP) $(VENDOR)

run: install
	$(BIN)/cityloop init
	$(BIN)/cityloop demo --if-empty
	$(BIN)/cityloop serve

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install
	$(BIN)/mypy

pytest: install $(BROWSER)
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/deadlines.py
	$(BIN)/python bench/grid.py
	$(BIN)/python bench/intake.py --backend both
	$(BIN)/python bench/evaluation.py --cases 1000000
	$(BIN)/python bench/bulk_import.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
