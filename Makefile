# Two commands on a fresh machine:
#   make demo   set everything up and run the pipeline on the local stack
#   make test   set everything up and pass the tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo headless test test-e2e test-ui test-hardening lint validate bench bench-daemon bench-load clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/demand-assets demo

headless: setup
	$(BIN)/demand-assets headless

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Loads the code location as Dagster's project tooling finds it (pyproject.toml, [tool.dg]).
validate: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

test: setup lint validate
	$(BIN)/python -m pytest -n 2 -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests collected: that is a failure"; fi; exit $$status

test-e2e: setup
	$(BIN)/python -m pytest demand_assets_tests/e2e -m slow -q

# The Dagster UI checked in headless Chromium (Debian's `chromium`, driven by Playwright: no
# browser download). UPDATE_SCREENSHOTS=1 rewrites the README's pictures in docs/.
test-ui: setup
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "test-ui: /usr/bin/chromium is missing: installing Debian's chromium package (apt-get install -y chromium)"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium \
			|| { echo "test-ui: could not install chromium; install it, then run make test-ui again"; exit 1; }; \
	fi
	$(BIN)/python -m pytest demand_assets_tests/e2e/test_ui_browser.py -m slow -q

# Faults, hostile input and privacy, slow cases included; prints what each test tried.
test-hardening: setup
	@mkdir -p .local && rm -f .local/hardening.txt
	HARDENING_REPORT=$(CURDIR)/.local/hardening.txt $(BIN)/python -m pytest -q -p no:warnings \
		-m "slow or not slow" demand_assets_tests/faults demand_assets_tests/hostile \
		demand_assets_tests/privacy; status=$$?; cat .local/hardening.txt; exit $$status

bench: setup
	$(BIN)/python benchmarks/record_core.py
	$(BIN)/python benchmarks/stream_drain.py

# Keeping up under the real daemon (`dagster dev`, a process per run): 20 changes/s for 15
# minutes, then 200 changes/s for 10 minutes (about 35 minutes in all).
bench-daemon: setup
	$(BIN)/python benchmarks/daemon_keepup.py --rate 20 --minutes 15 --drain-minutes 2
	npm ci --prefix benchmarks/kinesalite --silent --no-audit --no-fund
	$(BIN)/python benchmarks/daemon_keepup.py --rate 200 --minutes 10 --drain-minutes 3 --shards 4 \
		--kinesis kinesalite

# Load: a 1,000,000-record partition rebuilt, and 1,000,000 changes soaked through the local
# stack, the stream on kinesalite (benchmarks/emulators.py says why).
bench-load: setup
	$(BIN)/python benchmarks/rebuild_memory.py
	npm ci --prefix benchmarks/kinesalite --silent --no-audit --no-fund
	$(BIN)/python benchmarks/soak.py --kinesis kinesalite

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
