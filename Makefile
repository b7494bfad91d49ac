# polarity: set-up, runs and tests. `make help` lists the targets.
# Every target that needs Python creates $(VENV) first (with a Python >= 3.12 found by
# tools/find-python, or the one named by PYTHON=...) and installs the package into it.

CASE ?= runs/chemotaxis/config.toml
OUT ?= runs/chemotaxis/out
RUN_NP ?= 2
RUN_ARGS ?=
VENV ?= .venv
PYTHON ?=
EXTRAS ?= dolfinx,test,plot,sbml
VENV_FLAGS ?=
PYTEST_ARGS ?=
MPI_NP ?= 2
MPI_TIMEOUT ?= 1800

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# MPI ranks must not oversubscribe the cores with threads.
test run bench: export OMP_NUM_THREADS := 1
test run bench: export OPENBLAS_NUM_THREADS := 1
test run bench: export MKL_NUM_THREADS := 1

.PHONY: help venv run test bench lint clean docker-test

define HELP
Targets (each creates $(VENV) first if needed):
  make run     run CASE into OUT on RUN_NP ranks (--overwrite), then print its read-outs
               CASE=$(CASE) OUT=$(OUT) RUN_NP=$(RUN_NP)
  make test    pytest serially, then under mpiexec -n $(MPI_NP) for tests not marked serial
  make bench   python benchmarks/run.py
  make lint    ruff check (docstrings on solver/), ruff format --check and mypy on solver/
               (installs ruff and mypy into $(VENV) on demand)
  make venv    create $(VENV) and pip install -e ".[$(EXTRAS)]"
  make clean   remove $(VENV), caches and runs/*/out
  make docker-test  build the Dockerfile with podman (root; installs podman, buildah, runc,
               debootstrap if missing) and run mpiexec -n 2 polarity run in it: tools/docker-test
Variables:
  PYTHON=/path/to/python3.12   interpreter for a new venv (default: tools/find-python)
  VENV=$(VENV)  EXTRAS=$(EXTRAS)  VENV_FLAGS=   (e.g. EXTRAS=test VENV_FLAGS=--system-site-packages
                to use a dolfinx 0.11 that is already installed: conda, spack, official images)
  PYTEST_ARGS='-k mesh -x'   extra pytest arguments, both passes
  MPI_NP=$(MPI_NP)  MPI_TIMEOUT=$(MPI_TIMEOUT)   ranks and time limit (s) of the MPI pass
  RUN_ARGS='--set time.end=10'   extra arguments of `polarity run`
The FFCx form cache is $$XDG_CACHE_HOME/fenics (default ~/.cache/fenics).
endef
export HELP

help:
	@echo "$$HELP"

venv: $(STAMP)

# Reuse $(VENV) if its Python is >= 3.12; else (re)create it. Reinstall when pyproject changes.
$(STAMP): pyproject.toml
	@if [ -e "$(VENV)" ] && [ ! -e "$(VENV)/pyvenv.cfg" ]; then \
	  echo "error: VENV=$(VENV) exists and is not a virtual environment" >&2; exit 1; \
	fi; \
	if ! "$(BIN)/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	  py=$$(PYTHON='$(PYTHON)' tools/find-python); \
	  echo "==> creating $(VENV) with $$py ($$("$$py" --version 2>&1))"; \
	  "$$py" -m venv --clear $(VENV_FLAGS) "$(VENV)"; \
	fi; \
	if ! "$(BIN)/python" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (23, 1))' 2>/dev/null; then \
	  echo "==> upgrading pip in $(VENV)"; \
	  "$(BIN)/python" -m pip install --quiet --upgrade pip; \
	fi; \
	echo "==> installing polarity-solver[$(EXTRAS)] into $(VENV) (log: $(VENV)/install.log)"; \
	start=$$SECONDS; \
	if ! "$(BIN)/python" -m pip install --progress-bar off -e ".[$(EXTRAS)]" > "$(VENV)/install.log" 2>&1; then \
	  cat "$(VENV)/install.log" >&2; echo "error: pip install failed (log above)" >&2; exit 1; \
	fi; \
	echo "==> $(VENV) ready ($$((SECONDS - start)) s install)"; \
	touch "$@"

run: venv
	"$(BIN)/mpiexec" -n $(RUN_NP) "$(BIN)/polarity" run "$(CASE)" -o "$(OUT)" --overwrite $(RUN_ARGS)
	"$(BIN)/polarity" info "$(OUT)"

# Both passes always run; the target fails if either fails. pytest's exit 5 (no tests
# collected) counts as success, with a notice. Under mpiexec, tests/conftest.py keeps
# ranks > 0 quiet and gives every rank the same exit status.
test: venv
	@fail=0; \
	judge() { \
	  if [ "$$1" -eq 5 ]; then echo "notice: $$2: pytest collected no tests (exit 5); counted as success"; \
	  elif [ "$$1" -eq 124 ]; then echo "error: $$2: killed after MPI_TIMEOUT=$(MPI_TIMEOUT) s (a collective call on some ranks only?)" >&2; fail=1; \
	  elif [ "$$1" -ne 0 ]; then echo "error: $$2: failed (exit $$1)" >&2; fail=1; fi; \
	}; \
	echo "==> [1/2] pytest, serial"; \
	rc=0; "$(BIN)/python" -m pytest --durations=25 $(PYTEST_ARGS) || rc=$$?; \
	judge $$rc "serial pass"; \
	echo "==> [2/2] pytest under mpiexec -n $(MPI_NP), -m 'not serial', timeout $(MPI_TIMEOUT) s"; \
	rc=0; timeout --foreground --kill-after=60 $(MPI_TIMEOUT) "$(BIN)/mpiexec" -n $(MPI_NP) \
	  "$(BIN)/python" -m pytest -m "not serial" $(PYTEST_ARGS) || rc=$$?; \
	judge $$rc "MPI pass (-n $(MPI_NP))"; \
	exit $$fail

bench: venv
	"$(BIN)/python" benchmarks/run.py

# Pinned: a new release may format or type-check differently.
LINT_TOOLS := ruff==0.17.6 mypy==2.4.1

lint: venv
	@"$(BIN)/python" -m pip install --quiet --progress-bar off $(LINT_TOOLS)
	@rc=0; \
	echo "==> ruff check (with docstring rules on solver/)"; "$(BIN)/ruff" check --no-cache . || rc=1; \
	echo "==> ruff format --check"; "$(BIN)/ruff" format --no-cache --check solver tests benchmarks meshes || rc=1; \
	echo "==> mypy (solver/)"; "$(BIN)/mypy" || rc=1; \
	exit $$rc

# Not part of `make test`: minutes and a few GB (see README, section Clusters).
docker-test:
	tools/docker-test

clean:
	rm -rf "$(VENV)" .pytest_cache .ruff_cache .cache build dist ./*.egg-info runs/*/out
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
