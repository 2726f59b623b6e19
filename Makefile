# Two commands do everything: `make run` starts the platform locally, `make test` runs the
# whole suite. Each creates or refreshes .venv itself when the requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-stamp
USER ?= dev
ADMIN ?=

.PHONY: run test lint typecheck unit token bench clean venv infra-check

# Pinned in requirements.txt but installed without their declared dependencies: resemblyzer
# only supplies the speaker encoder's weights file, and its dependencies pull torch (~5.9 GB).
# The other pins are installed from copies of the requirement files that leave these out.
NO_DEPS := resemblyzer
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	grep -v -i -E '^($(NO_DEPS))==' requirements.txt > $(VENV)/requirements.txt
	cp requirements-dev.txt $(VENV)/requirements-dev.txt
	$(PIP) -r $(VENV)/requirements-dev.txt
	grep -i -E '^($(NO_DEPS))==' requirements.txt | xargs $(PIP) --no-deps
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
	@$(BIN)/python -m local.token --user "$(USER)" $(if $(ADMIN),--admin,)

bench: $(STAMP)
	$(BIN)/python -m bench.store

clean:
	rm -rf $(VENV) .venv-infra .mypy_cache .ruff_cache .pytest_cache
