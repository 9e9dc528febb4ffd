# The two commands of the README: `make run` and `make test`. Both install what they need, from
# the hashed lock files: requirements.lock (what running needs) and requirements-dev.lock (that
# same set, plus the test and lint tools). `make lock` refreshes both.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUNTIME_INSTALLED := $(VENV)/.installed-runtime
DEV_INSTALLED := $(VENV)/.installed-dev
# One resolution for every platform (x86_64 and aarch64 Linux, macOS), Python 3.11 and later.
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
	--custom-compile-command "make lock"

.PHONY: install run test smoke lock lint format bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every file pip fetches is checked against its hash; the project itself comes last, without
# dependencies, so nothing outside the lock file is installed.
$(RUNTIME_INSTALLED): requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install -q --require-hashes -r requirements.lock
	$(PIP) install -q --no-deps -e .
	touch $@

$(DEV_INSTALLED): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(PIP) install -q --require-hashes -r requirements-dev.lock
	$(PIP) install -q --no-deps -e .
	touch $@

install: $(RUNTIME_INSTALLED)

# readapi listens on 127.0.0.1 here (deploy/run.py); BEMCOM_HTTP_HOST=0.0.0.0 make run opens it.
run: $(RUNTIME_INSTALLED)
	$(BIN)/python -m deploy.run

test: $(DEV_INSTALLED)
	$(BIN)/python -m pytest -q

# A fresh venv in a temporary directory from requirements.lock alone, then the real processes
# against PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883. Needs only python3.
smoke:
	$(PYTHON) tests/deploy/smoke_clean_install.py

# Re-resolve after a change to pyproject.toml, keeping every pin that still fits;
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest releases allowed. The dev lock
# is resolved with the runtime lock as a constraint, so tests run on the set that ships.
lock: | $(BIN)/python
	test -x $(BIN)/uv || $(PIP) install -q uv
	$(UV_COMPILE) $(LOCK_ARGS) pyproject.toml -o requirements.lock
	$(UV_COMPILE) $(LOCK_ARGS) pyproject.toml --extra dev -c requirements.lock \
		-o requirements-dev.lock

lint: $(DEV_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV_INSTALLED)
	$(BIN)/python -m tests.bench

# make soak SOAK_ARGS="--minutes 5"   or   SOAK_ARGS="--pi --minutes 10"
soak: $(DEV_INSTALLED)
	$(BIN)/python -m tests.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache
