# Two commands do all set-up: `make run` and `make test`. Everything lands in .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
N ?= 2000
# The browser tests drive Debian's Chromium (never a downloaded one); installed here, once, if missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test chaos bench bench-100k recovery soak lint api worker clean-var

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m starter.devstack

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest

# The large fault tests (hundreds of tickets, longer outages, more restarts): real processes, SIGKILL; ~10 minutes.
chaos: $(STAMP)
	CHAOS_RESTARTS=4 $(PY) -m pytest -m chaos -s tests/e2e/test_worker_faults.py tests/e2e/test_process_faults.py tests/e2e/test_run_supervision.py
	CHAOS_RESTARTS=4 $(PY) -m pytest -s tests/e2e/test_process_faults.py -k agents

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy workflows activities starter bench tests worker.py
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_workflow_purity.py tests/unit/test_import_contracts.py

# The worker runs with the cache it ships with (ESCALATION_MAX_CACHED_WORKFLOWS, 1000) unless CACHE=...
bench: $(STAMP)
	$(PY) -m bench.run --open-tickets $(N) $(if $(SMTP),--smtp) $(if $(CACHE),--max-cached $(CACHE))

# 100,000 open tickets, opened as fast as the server sustains (about 40 minutes on 2 cores), then the breach stream
# (docs/SCALING.md); writes bench/results/100k.json
bench-100k: $(STAMP)
	$(PY) -m bench.run --open-tickets 100000 --out bench/results/100k.json $(if $(CACHE),--max-cached $(CACHE))

# Breach lateness after a worker's SIGKILL and restart, under a deadline stream (`recovery_s`; `make bench` reports
# it too): bench/results/recovery.json. `ARGS=--compare` runs the SDK's worker defaults and the shipped ones.
recovery: $(STAMP)
	$(PY) -m bench.recovery $(ARGS)

# Mixed API traffic (opens, actions, reads) at RATE opens/s for MINUTES on a stack of its own: bench/results/soak.json
MINUTES ?= 10
RATE ?= 20
soak: $(STAMP)
	$(PY) -m bench.soak --minutes $(MINUTES) --rate $(RATE)

clean-var:
	rm -rf var/
