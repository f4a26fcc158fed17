# Alerts v2. `make demo` runs the whole pipeline once on demo data; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# `make test PG=18`: the tests on a throwaway PostgreSQL 18 of their own (DATABASE_URL is not used).
PG ?=
SQITCH := $(PYTHON) scripts/sqitch_target.py

.PHONY: help venv system-packages test lint lint-workflows pgtap demo bench migrate run \
	sqitch-target sqitch-deploy sqitch-verify sqitch-revert clean

help:
	@echo "make demo      deploy, seed demo data, run phases A, B, C, show the outbox (embedded PostgreSQL unless DATABASE_URL is set)"
	@echo "make test      lint, then every test incl. pgTAP: against DATABASE_URL, else a throwaway server (PG=18: PostgreSQL 18)"
	@echo "make bench SCALE=large   benchmarks against bare-SQL baselines (DATABASE_URL: a role that may CREATE DATABASE)"
	@echo "make migrate   deploy the schema into DATABASE_URL with the runner (no Perl, no psql)"
	@echo "make run       python runner.py --phase all against DATABASE_URL"
	@echo "make sqitch-deploy / sqitch-verify / sqitch-revert   the same plan through Sqitch, into SQITCH_TARGET or else DATABASE_URL"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

system-packages:
	scripts/ensure_system_packages.sh

lint: venv lint-workflows
	$(VENV)/bin/ruff check .

lint-workflows: venv
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --no-progress .github/workflows

test: venv system-packages lint
	ALERTS_TEST_PG=$(PG) $(VENV)/bin/pytest

pgtap: venv system-packages
	ALERTS_TEST_PG=$(PG) $(VENV)/bin/pytest tests/test_pgtap.py

demo: venv
	$(PY) scripts/demo.py

SCALE ?= small
REPEAT ?= 3
bench: venv
	mkdir -p var && $(PY) bench/run.py --scale $(SCALE) --repeat $(REPEAT) --json var/bench-$(SCALE).json

migrate: venv
	$(PY) runner.py --migrate

run: venv
	$(PY) runner.py --phase all

# Sqitch's target: SQITCH_TARGET, else DATABASE_URL as db:pg:; neither set is refused before
# anything runs (sqitch alone would deploy into libpq's default database).
sqitch-target:
	@$(SQITCH) --check

sqitch-deploy: sqitch-target system-packages
	@$(SQITCH) deploy --verify

sqitch-verify: sqitch-target system-packages
	@$(SQITCH) verify

sqitch-revert: sqitch-target system-packages
	@$(SQITCH) revert -y

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache var build dist *.egg-info

samples: venv
	$(PY) -m devtools.samples > docs/messages.md
