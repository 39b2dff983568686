# xraykit entry points. `make lab` and `make test` are the two set-up commands in the README;
# both are idempotent: a second run only re-installs when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp
# Jupyter refuses to run as root (containers, Binder-like machines) unless told it may
LAB_FLAGS := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# 1: a failed compile of the C fast path stops the set-up (make test); 0: fall back to Python
REQUIRE_NATIVE ?= 0

.PHONY: lab test lint typecheck pytest bench samples sanitize system-graphviz system-chromium system-sanitizers clean help

help:
	@echo "make lab    - set up and open JupyterLab on notebooks/00-start-here.ipynb (no AWS needed)"
	@echo "make test   - set up with the dev tools, then ruff, mypy and pytest (notebooks included)"
	@echo "make bench  - run the benchmarks at the sizes their targets are set for; print the ratios"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "xraykit needs Python 3.11 or newer, but $(PYTHON) is $$($(PYTHON) --version 2>&1)."; \
	  echo "Install python3.11 (and python3.11-venv) and run: make PYTHON=python3.11 lab"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

# the install also compiles the loader's C fast path (scripts/hatch_build.py); make test
# requires it, so that tests and benchmarks always exercise it
$(STAMP)-notebooks: pyproject.toml xraykit/io/_scan.c xraykit/io/_scan_otlp.h scripts/hatch_build.py | $(BIN)/python
	XRAYKIT_REQUIRE_NATIVE=$(REQUIRE_NATIVE) $(BIN)/python -m pip install --quiet -e ".[notebooks]"
	touch $@

$(STAMP)-dev: pyproject.toml $(STAMP)-notebooks
	$(BIN)/python -m pip install --quiet --group dev
	touch $@

# Graphviz's `dot` binary draws the service maps. Install it with apt-get when we are root;
# otherwise say exactly what to run and stop.
system-graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "Graphviz is missing. Install it with:  sudo apt-get install -y graphviz   (macOS: brew install graphviz)"; exit 1; \
	  fi; }

# Browser tests drive Debian's chromium; we never download a browser of our own.
system-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing (needed by the browser tests). Install it with:  sudo apt-get install -y chromium"; exit 1; \
	  fi; }

# AddressSanitizer and UBSan runtimes (libasan, libubsan) come with Debian's gcc, and the build
# needs the Python headers. Install them with apt-get when we are root; otherwise say what to run.
system-sanitizers:
	@( for lib in libasan.so libubsan.so; do \
	     case "$$(gcc -print-file-name=$$lib 2>/dev/null)" in /*) ;; *) exit 1;; esac; done; \
	   $(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	 ) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev >/dev/null; \
	  else \
	    echo "make sanitize needs gcc with its sanitizer runtimes and the Python headers. Install them with:  sudo apt-get install -y gcc python3-dev"; exit 1; \
	  fi; }

lab: system-graphviz $(STAMP)-notebooks
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/00-start-here.ipynb

test lint typecheck pytest bench: REQUIRE_NATIVE = 1
test lint typecheck pytest bench: export XRAYKIT_REQUIRE_NATIVE = 1

lint: $(STAMP)-dev
	$(BIN)/ruff check xraykit tests benchmarks scripts
	$(BIN)/ruff format --check xraykit tests benchmarks scripts
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)-dev
	$(BIN)/mypy

# Every notebook runs in tests/test_binder.py, in a fresh environment made from binder/ alone
# (as Binder builds it); one notebook on its own: $(BIN)/pytest --nbmake notebooks/NAME.ipynb
pytest: system-graphviz system-chromium $(STAMP)-dev
	$(BIN)/pytest --durations=20 tests xraykit README.md

test: lint typecheck pytest

bench: $(STAMP)-dev
	@for b in benchmarks/bench_load.py benchmarks/bench_saved.py benchmarks/bench_servicegraph.py benchmarks/bench_query.py benchmarks/bench_fetch.py benchmarks/bench_local.py benchmarks/bench_local_api.py benchmarks/bench_otlp.py benchmarks/bench_dataset.py; do \
	  $(BIN)/python $$b || exit 1; done

samples: $(STAMP)-dev
	$(BIN)/python scripts/make_samples.py

# The scanner's tests and fuzz tests under AddressSanitizer and UBSan (scripts/sanitize.py), on a
# sanitized build in a temporary copy; also compiles _scan.c as a compiler other than GCC sees it.
# Not part of `make test`. The build in xraykit/, which running kernels use, is left alone: an
# existing set-up is not re-installed here, a missing one is made first.
sanitize: system-sanitizers
	@[ -f $(STAMP)-dev ] || $(MAKE) --no-print-directory $(STAMP)-dev
	$(BIN)/python scripts/sanitize.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
