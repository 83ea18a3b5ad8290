# The ways in: `make run`, `make test`, `make lint`, `make bench`, `make bench-long`, `make sim`, `make fuzz`, `make chaos`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-long sim fuzz chaos clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/omsnode devnet up --nodes 4 --dir devnet-data --sample-data

# Three workers on two cores: most end-to-end tests wait on node processes (consensus rounds, restarts), so a
# third worker runs other files meanwhile. Each file stays on one worker (its devnet serves its tests in order),
# and the workers take the longest files first (`LONG_FIRST` in tests/conftest.py) instead of the most numerous.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder

# Debian's chromium for the browser test (tests/e2e/test_page.py), which Playwright drives as it is (it never
# downloads a browser of its own). Installed only where it is missing and apt-get can run (as root); wherever
# that fails the browser test skips, saying why, and `make test` goes on.
CHROMIUM ?= /usr/bin/chromium
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export OMS_CHROMIUM := $(CHROMIUM)
chromium:
	@if [ ! -x "$(CHROMIUM)" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ) \
			>/dev/null 2>&1 || echo "chromium could not be installed: the browser test will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m bench -s tests

# the long benchmark `make bench` skips: 1,000,000 orders (order.import txs of 100) on a 4-node devnet, every
# node's resident memory read each 50,000 orders into docs/bench/rss.json (OMS_BENCH_LONG_ORDERS=N for fewer)
bench-long: $(STAMP)
	OMS_BENCH_LONG=1 $(BIN)/python -m pytest -q -m bench -s --timeout 21600 tests/bench/test_rss_bench.py

# the consensus schedule search of `make test` (1,500 seeds) over 10,000 seeds
sim: $(STAMP)
	$(BIN)/python -m tests.sim.search --count 10000

# the OpenAPI fuzz of `make test` (a few requests per route) at 1,000 requests per route and mode, and the
# contract state machine of `make test` (30 runs of 40 steps) at 2,000 runs of 80 steps, and the hostile-client
# load test for 5 minutes instead of 12 s
fuzz: $(STAMP)
	OMS_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q --timeout 7200 tests/adversarial/test_openapi.py
	OMS_STATEFUL_EXAMPLES=2000 OMS_STATEFUL_STEPS=80 $(BIN)/python -m pytest -q --timeout 7200 \
		tests/property/test_contract_invariants.py
	OMS_HOSTILE_SECONDS=300 $(BIN)/python -m pytest -q -s --timeout 1200 tests/e2e/test_hostile_load.py

# every fault scenario of `omsnode devnet chaos` at its full length (`make test` plays each for 2 s) on a fresh
# 4-node devnet in chaos-data/, one after another; the table of each, and exit 1 if any invariant was violated
CHAOS_SCENARIOS := kill-replica kill-primary restart-all pause stop-and-kill lagging-joiner clock-skew junk partition \
	lossy disk-full corrupt-wal twins byzantine-primary reconfigure random
chaos: $(STAMP)
	-$(BIN)/omsnode devnet down --dir chaos-data
	rm -rf chaos-data
	status=0; for scenario in $(CHAOS_SCENARIOS); do \
		$(BIN)/omsnode devnet chaos --dir chaos-data --scenario $$scenario || status=1; \
	done; $(BIN)/omsnode devnet down --dir chaos-data; exit $$status

clean:
	-$(BIN)/omsnode devnet down --dir devnet-data
	rm -rf devnet-data
	-$(BIN)/omsnode devnet down --dir chaos-data
	rm -rf chaos-data
