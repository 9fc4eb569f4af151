# Two commands do all the set-up from a fresh clone (Python 3.11 is the only requirement):
#   make run    create .venv, install, migrate and start the whole pipeline
#   make test   create .venv, install, lint (ruff check .) and run the whole test suite
#   make demo   walk one order through the whole story on make run's pipeline (PAY=card|paypal|transfer)
# Every dependency (runtime, test, lint, bench) is pinned with its hashes in requirements.lock, and
# make install installs exactly that. After changing a dependency (a pyproject.toml's, or
# requirements.in for the dev tools) run `make lock` and commit requirements.lock with it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SERVICES := orders payments supplier-gateway notifications gdpr console
PACKAGES := shared $(addprefix services/,$(SERVICES))
INSTALLED := $(VENV)/.installed
LOCK := requirements.lock
# make lock LOCK_FLAGS=--upgrade moves every pin to the newest version allowed (default: keep them).
LOCK_FLAGS ?=

.PHONY: install lock run demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The locked pins (hash-checked, pip and setuptools included), then the local packages, editable,
# without resolving again (--no-deps) and built with the locked setuptools. pip check fails when a
# pyproject.toml declares a dependency the lock does not provide.
$(INSTALLED): $(LOCK) shared/pyproject.toml $(wildcard services/*/pyproject.toml) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation $(foreach p,$(PACKAGES),$(if $(wildcard $(p)/pyproject.toml),-e $(p)))
	$(BIN)/python -m pip check || { echo "a dependency is missing from $(LOCK): run make lock"; exit 1; }
	touch $(INSTALLED)

install: $(INSTALLED)

# Regenerates the lock from requirements.in (the local packages' pyproject.toml files and the dev
# tools) with uv, itself installed from the lock; the local packages are left out of the lock.
lock: | $(BIN)/python
	test -x $(BIN)/uv || { sed -n '/^uv==/,/[^\\]$$/p' $(LOCK) > $(VENV)/uv.txt \
		&& $(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/uv.txt; }
	$(BIN)/uv pip compile requirements.in --output-file $(LOCK) --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" \
		--no-emit-package coc-shared $(foreach s,$(SERVICES),--no-emit-package coc-$(s)) $(LOCK_FLAGS) >/dev/null

run: install
	$(BIN)/coc-run

# One company order from placed to delivered over the real HTTP APIs of `make run` (started, then
# stopped, when nothing answers on the orders port), paid by card on the sandbox bank's page, or
# with PAY=paypal or PAY=transfer.
PAY ?= card
demo: install
	$(BIN)/python -m coc_payments.sandbox.demo --pay $(PAY)

# Lint first: a ruff finding stops make before any test runs.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(VENV) var
