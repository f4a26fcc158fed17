# Alerts v2. `make demo` runs the whole pipeline once on demo data; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: help venv system-packages test lint pgtap demo bench migrate run sqitch-deploy sqitch-revert clean

help:
	@echo "make demo      deploy, seed demo data, run phases A, B, C, show the outbox (embedded PostgreSQL unless DATABASE_URL is set)"
	@echo "make test      lint, pgTAP and pytest against DATABASE_URL (see README)"
	@echo "make bench SCALE=large   benchmarks against bare-SQL baselines (DATABASE_URL: a role that may CREATE DATABASE)"
	@echo "make migrate   deploy the schema into DATABASE_URL with the runner (no Perl, no psql)"
	@echo "make run       python runner.py --phase all against DATABASE_URL"
	@echo "make sqitch-deploy / sqitch-revert   the same plan through Sqitch (SQITCH_TARGET=db:pg://user@host/db)"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

system-packages:
	scripts/ensure_system_packages.sh

lint: venv
	$(VENV)/bin/ruff check .

test: venv system-packages lint
	$(VENV)/bin/pytest

pgtap: venv system-packages
	$(VENV)/bin/pytest tests/test_pgtap.py

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

sqitch-deploy: system-packages
	sqitch deploy --verify $(SQITCH_TARGET)

sqitch-revert: system-packages
	sqitch revert -y $(SQITCH_TARGET)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache var

samples: venv
	$(PY) -m alerts.samples > docs/messages.md
