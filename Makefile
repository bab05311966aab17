# Everything installs into .venv in the repo root; nothing is installed system-wide. sovrag's data (models,
# collections) lives in its default data directory (~/.local/share/sovrag, or SOVRAG_DATA_DIR), the same one the
# README's commands use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install dev demo test test-fast lint bench clean browser sysdeps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

# dev includes the training extra (CPU torch): the tests run a short real training of the verifier recipe.
dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,train]'

# Benchmarks (see docs/benchmarks.md); faiss is only needed as the search-latency floor.
bench: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/retrieval_quality.py
	$(BIN)/python benchmarks/search_latency.py
	$(BIN)/python benchmarks/ingest_throughput.py
	$(BIN)/python benchmarks/abstention_calibration.py
	$(BIN)/python benchmarks/answer_quality.py

# The main job on the embedded defaults: fetch the bundled models, ingest examples/docs, search them,
# and answer a question with citations from the local LLM.
demo: install
	$(BIN)/sovrag models pull minilm-l6-v2 qwen2.5-coder-0.5b-instruct-q4_k_m
	$(BIN)/sovrag ingest examples/docs --collection examples --sync
	$(BIN)/sovrag search "How many vacation days do new employees get?" --collection examples --top-k 3
	$(BIN)/sovrag ask "How many vacation days do new employees get?" --collection examples

# Debian packages the tests drive: chromium for the web UI's browser tests (through Playwright, never
# Playwright's own download); strace and iproute2 for the no-egress test's network namespace.
sysdeps:
	@if [ ! -x /usr/bin/chromium ] || ! command -v strace >/dev/null || ! command -v ip >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        chromium strace iproute2; \
	fi

browser: sysdeps

test: dev sysdeps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

test-fast: dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .sovrag-data build *.egg-info src/*.egg-info
