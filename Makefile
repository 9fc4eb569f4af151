# Two commands do all the set-up from a fresh clone (Python 3.11 is the only requirement):
#   make run    create .venv, install, migrate and start the whole pipeline
#   make test   create .venv, install and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SERVICES := orders payments supplier-gateway notifications gdpr
PACKAGES := shared $(addprefix services/,$(SERVICES))
INSTALLED := $(VENV)/.installed

.PHONY: install run test bench clean

$(INSTALLED): requirements-dev.txt shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(foreach p,$(PACKAGES),$(if $(wildcard $(p)/pyproject.toml),-e $(p))) -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(BIN)/coc-run

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(VENV) var
