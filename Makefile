# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# maturin installs into the virtualenv named here.
export VIRTUAL_ENV := $(abspath $(VENV))
export PIP_QUIET := 1
# Cap Rust thread pools at what the machine has (rayon reads this).
export RAYON_NUM_THREADS ?= $(shell nproc 2>/dev/null || echo 2)
# The lab's data (the openb trace, vector bin-packing instances), where this checkout keeps it.
DATA ?= $(abspath ../shared/data)
export KUBE_ENGINE_OPENB_DIR ?= $(DATA)/openb
export KUBE_ENGINE_VBP_DIR ?= $(DATA)/vbp
export KUBE_ENGINE_FGD_EXPECTED_DIR ?= $(DATA)/fgd_expected

.PHONY: demo test test-fast fuzz build lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q "maturin>=1.7,<2"
	touch $@

build: $(VENV)/.deps
	$(BIN)/maturin develop --release -q -E dev

# The example cluster (the openb trace, examples/openb) has no controllers: every pod is bare, so
# the demo lets bare pods move.
EXAMPLE := examples/openb/openb-example.json.gz
demo: build
	$(BIN)/kube-engine rebalance $(EXAMPLE) --allow-bare --max-moves 500 --time-limit 20 --limit 10

lint: build
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN)/ruff check python tests benches examples
	$(BIN)/ruff format --check python tests benches examples
	$(BIN)/mypy python/kube_engine

test: build
	cargo test
	$(BIN)/python -m pytest -q

# The inner loop: the core's tests and every pytest suite not marked slow.
test-fast: build
	cargo test -q
	$(BIN)/python -m pytest -q -m "not slow"

# The long fuzz run, on demand (`make test` runs a short one: fixed seeds, a few hundred cases
# each; see tests/fuzz/README.md). One seed drives proptest, hypothesis and the mutation corpus:
# random unless FUZZ_SEED is given, and printed first so that a run can be repeated. About 4
# minutes on 2 cores with the defaults (more while cases fail: each is shrunk and written out);
# every failure is reported, the run does not stop at one.
FUZZ_CASES ?= 3000
PROPTEST_CASES ?= 5000
fuzz: build
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; echo "fuzz seed $$seed"; \
	status=0; \
	PROPTEST_CASES=$(PROPTEST_CASES) PROPTEST_RNG_SEED=$$seed cargo test -q --test fuzz_ingest \
		|| status=1; \
	FUZZ_LONG=1 FUZZ_SEED=$$seed FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest -q tests/fuzz \
		--hypothesis-seed=$$seed || status=1; \
	echo "fuzz seed $$seed"; exit $$status

# Timed benchmarks (not part of `make test`): each writes its current table to
# benches/results/<benchmark>.json, then docs/performance.md is regenerated from those files.
# The sizes keep the whole run within 25 minutes on 2 cores: the official client alone takes
# minutes to read 100,000 pods, so ingestion reads 25,000; rebalancing gives CP-SAT 5 s per plan
# on a 1,000-node synthetic cluster; vector packing keeps the issue's 5 s per instance.
RESULTS := benches/results
bench: build
	$(BIN)/python benches/bench_ingest.py --nodes 5000 --pods 25000 --seed 1 \
		--results $(RESULTS)/ingest.json
	$(BIN)/python benches/bench_schedule.py --nodes 5000 --pods 126000 --seed 1 --repeat 3 \
		--results $(RESULTS)/schedule.json
	RAYON_NUM_THREADS=1 $(BIN)/python benches/bench_plan.py --nodes 5000 --pods 100000 \
		--moves 5000 --seed 1 --repeat 3 --results $(RESULTS)/plan.json
	RAYON_NUM_THREADS=1 $(BIN)/python benches/bench_evaluate.py --nodes 5000 --pods 100000 \
		--moves 5000 --seed 1 --repeat 3 --results $(RESULTS)/evaluate.json
	$(BIN)/python benches/bench_fgd.py --pods default --seeds 42-51 --results $(RESULTS)/fgd.json
	$(BIN)/python benches/bench_rebalance.py --nodes 1000 --pods 8000 --seed 1 --time-limit 5 \
		--results $(RESULTS)/rebalance.json
	$(BIN)/python benches/bench_greedy.py --nodes 5000 --pods 100000 --seed 1 --repeat 3 \
		--results $(RESULTS)/greedy.json
	$(BIN)/python benches/bench_vbp.py --time-limit 5 --results $(RESULTS)/vbp.json
	$(BIN)/python benches/report.py

clean:
	rm -rf $(VENV) target
