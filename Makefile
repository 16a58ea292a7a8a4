# motcua: the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The pages' libraries (bpmn-js, Chart.js) come from the npm registry, pinned by web/package-lock.json.
WEB_STAMP := web/node_modules/.installed-stamp
# Browser tests drive Debian's Chromium (never a browser build downloaded by a test tool).
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup run test lint typecheck unit bench bench-http bench-queue bench-timers clean browser nginx \
	fault-test cluster-demo

setup: $(STAMP) $(WEB_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "motcua needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "motcua's pages need Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

# Debian's chromium for the browser tests, installed once per machine (as root, or through sudo).
browser:
	@test -x $(CHROMIUM) || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null \
		|| { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null; }; }
	@$(CHROMIUM) --version

# `make run` plays level 4 offline: the sandbox gateway stands in for VNPay, with merchant secrets made once
# for this checkout in var/dev.env (never committed); real deployments set MOTCUA_VNPAY_* themselves.
DEV_ENV := var/dev.env

$(DEV_ENV):
	mkdir -p var
	$(PYTHON) -c 'import secrets; print("MOTCUA_VNPAY_TMN_CODE=MOTCUA01"); print("MOTCUA_VNPAY_HASH_SECRET=" + secrets.token_hex(32)); print("MOTCUA_LINK_SECRET=" + secrets.token_hex(32)); print("MOTCUA_PAYMENT_SANDBOX=on")' > $(DEV_ENV)

run: setup $(DEV_ENV)
	set -a && . ./$(DEV_ENV) && set +a && $(BIN)/motcua db upgrade && $(BIN)/motcua seed --demo && \
		$(BIN)/motcua serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: setup
	$(BIN)/mypy

# One pytest worker per core (pytest-xdist): every database test has its own SQLite file or PostgreSQL schema.
unit: setup browser
	$(BIN)/python -m pytest -q -n auto

test: lint typecheck unit

# Benchmarks (docs/PERFORMANCE.md): each prints its figures and the ratio to its reference measured in the
# same run.  They use the PostgreSQL of MOTCUA_TEST_POSTGRES_URL's server (own schemas or databases).
bench: setup
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/history_growth.py

bench-http: setup
	$(BIN)/python bench/http_load.py

# Seeds 1,000,000 dossiers into the database motcua_bench once (~20 min, ~10 GB); later runs reuse it.
bench-queue: setup
	$(BIN)/python bench/queue_scale.py --reuse

bench-timers: setup
	$(BIN)/python bench/timer_lag.py

# Debian's nginx for the cluster demonstration, once per machine (as root, or through sudo).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y --no-install-recommends nginx-light >/dev/null \
		|| { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends nginx-light >/dev/null; }; }

# Both make a PostgreSQL of their own with the machine's server binaries (Debian: postgresql), never the
# shared one: the fault test kills servers, workers and that PostgreSQL under load and exits 1 on any loss.
fault-test: setup
	$(BIN)/python bench/fault_test.py

cluster-demo: setup nginx
	$(BIN)/python bench/cluster.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info

.PHONY: fuzz
fuzz: setup  # schemathesis over every operation with 10x the examples `make test` runs
	MOTCUA_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest -q -s tests/api/test_schemathesis.py
