# Two commands matter: `make demo` (the main job) and `make test` (the default test tier).
# Both create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.kcourse-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo demo-quick test test-slow test-all bench doctor clean torch

venv: $(STAMP)

# setuptools' editable build prints a boxed "Editable installation" UserWarning on every install;
# it is advice for package authors, not a fault, so it is silenced for that one command.
# tf-agents 0.19.0 / gym 0.23.0 metadata pins cannot resolve beside TF 2.21: installed without deps.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[atari,box2d,test,notebooks]"
	$(BIN)/python -m pip install -q --no-deps tf-agents==0.19.0 gym==0.23.0
	touch $(STAMP)

# The course at its own size: every exercise's full budget, runs/report.md + runs/report.html.
demo: venv
	$(BIN)/kcourse run all

# The smoke-test sizes (what the test suite runs): a couple of minutes.
demo-quick: venv
	$(BIN)/kcourse run all --quick

test: venv
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: venv
	$(BIN)/python -m pytest -m slow -q

test-all: venv
	$(BIN)/python -m pytest -q

# PyTorch (CPU) for the reference benchmarks and fixture scripts.
torch: venv
	$(BIN)/python -m pip install -q -e ".[torch]" || $(BIN)/python -m pip install -q torch

bench: venv torch
	@set -e; for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

doctor: venv
	$(BIN)/kcourse doctor

clean:
	rm -rf $(VENV) runs .pytest_cache
