# Two commands do everything: `make run` starts the platform locally, `make test` runs the
# whole suite. Each creates or refreshes .venv itself when the requirements change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-stamp
USER ?= dev
ADMIN ?=
TTL ?=
ACCOUNT ?=

.PHONY: run sessions test lint typecheck unit token bench clean venv infra-check browser

PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# requirements-nodeps.txt: data-only packages installed without their declared dependencies
# (resemblyzer's would pull torch, ~5.9 GB, for a 17 MB weights file).
# requirements-pipecat.txt: the sessions' optional pipecat backend, pinned with its
# dependencies and installed without pipecat-ai's own declared pins (see the file).
$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt requirements-pipecat.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -r requirements-nodeps.txt
	$(PIP) --no-deps -r requirements-pipecat.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local.gateway

# The streaming voice-session service alone (ws://127.0.0.1:$$VOICE_SESSIONS_PORT/v1/sessions).
sessions: $(STAMP)
	$(BIN)/python -m session

# The suite runs on TEST_WORKERS processes (pytest-xdist), each test file whole on one of
# them, so a file's module fixtures (a gateway, a fake server) are built once; each worker
# starts its own emulators. Much of the suite waits (on emulators, subprocesses, real-time
# audio), so one worker more than the cores keeps them busy: on this 2-core machine 3 workers
# took 455 s of tests where 2 took 530 and one 13-15 minutes. Files go out in the order
# tests/conftest.py gives them (the slowest directories first), not xdist's
# most-tests-first, which left a few long one-test files to run alone at the end.
# TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: $(STAMP) lint typecheck infra-check browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium (tests/browser): installed with apt
# when missing (as root, else through sudo); a no-op once it is there.
CHROMIUM ?= chromium
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  echo "== installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy shared functions local bench session

infra-check:
	@if [ -x infra/check.sh ]; then bash infra/check.sh; fi

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

token: $(STAMP)
	@$(BIN)/python -m local.token --user "$(USER)" $(if $(ADMIN),--admin,) $(if $(TTL),--ttl "$(TTL)",) $(if $(ACCOUNT),--account "$(ACCOUNT)",)

bench: $(STAMP)
	$(BIN)/python -m bench.store

clean:
	rm -rf $(VENV) .venv-infra .mypy_cache .ruff_cache .pytest_cache
