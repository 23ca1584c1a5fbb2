# PeakPilot developer commands. Every target sets up what it needs in .venv.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
PY    := $(BIN)/python
STAMP := $(VENV)/.installed

# A Python >= 3.12 interpreter: $PYTHON if given, else one on PATH, else one under pyenv.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$p; break; fi; done)

.PHONY: help venv test test-unit lint demo bench crd clean prometheus

help:
	@echo "make demo   - plan the example shop promotion, replay the 1998 World Cup against the HPA"
	@echo "make test   - run the test suite"
	@echo "make lint   - ruff + mypy --strict + import contracts"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make crd    - regenerate crds/ and charts/peakpilot/crds/ from the API models"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: PeakPilot needs Python >= 3.12 (PuLP 4 requires it) and none was found." >&2; \
	  echo "  install one, e.g. 'apt-get install python3.12', 'pyenv install 3.12', or 'uv python install 3.12'," >&2; \
	  echo "  then run 'make PYTHON=/path/to/python3.12 ...'" >&2; exit 1; fi
	@echo "using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The integration tests run a real Prometheus server (Debian package `prometheus`, with promtool).
prometheus:
	@if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Prometheus for the integration tests (apt-get install prometheus)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "note: install Prometheus for the integration tests (sudo apt-get install prometheus);" \
	         "without it they are skipped" >&2; \
	  fi; \
	fi

test: $(STAMP) prometheus
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check operator optimizer tests bench
	$(BIN)/ruff format --check operator optimizer tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The shared traces sit beside the repository; without them the demo replays the semi-final slice
# kept in examples/traces. Neither needs a cluster or the network.
TRACES ?= ../shared/traces
WORLDCUP := $(TRACES)/worldcup98_1min.csv

demo: $(STAMP)
	$(BIN)/peakpilot plan examples/shop-promotion.yaml --metrics examples/metrics/shop-singles-day.yaml
	@echo
	@if [ -f "$(WORLDCUP)" ]; then \
	  echo "replaying the 1998 World Cup knock-out stage ($(WORLDCUP)) through PeakPilot and the HPA"; \
	  $(BIN)/peakpilot simulate examples/worldcup-knockout.yaml --trace web=$(WORLDCUP) \
	    --from 1998-06-27T00:00:00Z --to 1998-07-13T00:00:00Z --plot out/worldcup-knockout.png; \
	else \
	  echo "note: $(WORLDCUP) not found: replaying the semi-final slice in examples/traces instead"; \
	  $(BIN)/peakpilot simulate examples/worldcup-knockout.yaml \
	    --trace web=examples/traces/worldcup98-semifinal-1998-07-07.csv --plot out/worldcup-semifinal.png; \
	fi

bench: $(STAMP) prometheus
	$(PY) bench/plan_scaling.py
	$(PY) bench/replay.py
	$(PY) bench/reaction.py    # real Prometheus + API emulator + operator process; ~6 min

crd: $(STAMP)
	$(BIN)/peakpilot crd

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
