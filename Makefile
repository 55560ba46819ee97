# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# maturin installs into the virtualenv named here.
export VIRTUAL_ENV := $(abspath $(VENV))
export PIP_QUIET := 1
# Cap Rust thread pools at what the machine has (rayon reads this).
export RAYON_NUM_THREADS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test build lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q "maturin>=1.7,<2"
	touch $@

build: $(VENV)/.deps
	$(BIN)/maturin develop --release -q -E dev

# The bundled openb trace has no controllers (every pod is bare), so the demo lets bare pods move.
demo: build
	$(BIN)/kube-engine rebalance --example --allow-bare --max-moves 500 --time-limit 20 --limit 10

lint: build
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN)/ruff check python tests benches examples
	$(BIN)/ruff format --check python tests benches examples
	$(BIN)/mypy python/kube_engine

test: build
	cargo test
	$(BIN)/python -m pytest -q

# Timed benchmarks (not part of `make test`). Results with --results go to benches/results/ and
# docs/performance.md is regenerated from them; the others' numbers are in the README.
bench: build
	$(BIN)/python benches/bench_ingest.py
	$(BIN)/python benches/bench_fgd.py
	$(BIN)/python benches/bench_schedule.py
	RAYON_NUM_THREADS=1 $(BIN)/python benches/bench_plan.py --results benches/results/plan.json
	$(BIN)/python benches/bench_greedy.py --results benches/results/greedy.json
	$(BIN)/python benches/report.py

clean:
	rm -rf $(VENV) target
