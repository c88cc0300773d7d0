# Developer commands. On a fresh Debian, which has no make, use the bash commands in README.md.

PYTHON := .venv/bin/python
VENV := .venv/.make-installed
ARGS ?=

.PHONY: demo test lint format bench run worker

demo:  ## Install what is missing, migrate, seed demo data, run web + worker; prints URL + login
	bash scripts/demo.sh $(ARGS)

test:  ## What CI runs: throwaway PostgreSQL + Redis, lint, the whole suite (make test ARGS="tests/ingest -x")
	bash scripts/test.sh $(ARGS)

lint: $(VENV)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	# The settings need a secret and, on the default broker, create folders: neither matters here.
	DEBUG=true CELERY_BROKER_URL=memory:// .venv/bin/mypy

format: $(VENV)
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: $(VENV)
	$(PYTHON) bench/ingest_bench.py $(ARGS)

run: $(VENV)  ## Development server with DEBUG=true on 127.0.0.1:8000
	DEBUG=true $(PYTHON) manage.py migrate
	DEBUG=true $(PYTHON) manage.py runserver 127.0.0.1:8000

worker: $(VENV)  ## One Celery worker with embedded beat, for `make run`
	DEBUG=true .venv/bin/celery -A config worker -B -l info --concurrency 2

$(VENV): requirements.txt requirements-demo.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv .venv
	$(PYTHON) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(VENV)
