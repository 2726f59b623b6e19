# Two commands do everything: `make run` starts the platform locally, `make test` runs the
# whole suite. Each creates or refreshes .venv itself when the requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-stamp
USER ?= dev
ADMIN ?=
TTL ?=

.PHONY: run test lint typecheck unit token bench clean venv infra-check

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local.gateway

test: $(STAMP) lint typecheck infra-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy shared functions local bench

infra-check:
	@if [ -x infra/check.sh ]; then bash infra/check.sh; fi

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

token: $(STAMP)
	@$(BIN)/python -m local.token --user "$(USER)" $(if $(ADMIN),--admin,) $(if $(TTL),--ttl "$(TTL)",)

bench: $(STAMP)
	$(BIN)/python -m bench.store

clean:
	rm -rf $(VENV) .venv-infra .mypy_cache .ruff_cache .pytest_cache
