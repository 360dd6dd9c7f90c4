# The targets people use. `make run` and `make test` work from a fresh clone:
# they install the locked environment first (scripts/bootstrap.sh, needs python3 >= 3.11).
.DEFAULT_GOAL := help
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: help install run test test-fast lint format bench migrate revision clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## create .venv from uv.lock
	@bash scripts/bootstrap.sh

run: install  ## the whole platform locally: embedded Postgres+pgvector and Redis unless URLs are set
	@bash scripts/system-deps.sh
	$(VENV)/cogep-ingest up $(if $(PORT),--port $(PORT))

test: install  ## the whole test suite with coverage (starts its own services; installs OCR and .doc tools as root)
	@bash scripts/system-deps.sh --required
	$(VENV)/pytest --cov --cov-report=term $(PYTEST_ARGS)

test-fast: install  ## everything but the slow-marked tests
	@bash scripts/system-deps.sh --required
	$(VENV)/pytest -m "not slow" $(PYTEST_ARGS)

lint: install  ## ruff, ruff format --check, mypy --strict, import contracts
	$(VENV)/ruff check src tests bench alembic
	$(VENV)/ruff format --check src tests bench alembic
	$(VENV)/mypy
	$(VENV)/lint-imports

format: install  ## apply ruff fixes and formatting
	$(VENV)/ruff check --fix src tests bench alembic
	$(VENV)/ruff format src tests bench alembic

bench: install  ## benchmarks (print tables, write bench/results/*.json, draw the chart)
	$(VENV)/python -m bench.run_all

migrate: install  ## alembic upgrade head against DATABASE_URL
	$(VENV)/alembic upgrade head

revision: install  ## autogenerate a migration after editing src/adapters/postgres/orm.py: make revision m="..."
	$(VENV)/alembic revision --autogenerate -m "$(m)"

clean:  ## remove the environment and local data (.cogep holds the embedded databases!)
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
