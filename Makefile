# Two commands matter: `make demo` (the main job) and `make test` (the default test tier).
# Both create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.kcourse-installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo demo-quick test test-slow test-all bench doctor clean torch analysis

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

test-slow: venv analysis
	$(BIN)/python -m pytest -m slow -q

test-all: venv
	$(BIN)/python -m pytest -q

# PyTorch for the reference benchmarks (the PyTorch peer of benchmarks/atari_speed.py) and fixture
# scripts: the `torch` extra's pinned version, no fallback to another one (a peer of an unknown
# version would be compared silently). Where pip's configuration offers the CPU-only wheel of that
# version (2.13.0+cpu) it is the one installed; plain PyPI's Linux wheel bundles CUDA (it runs on a CPU).
torch: venv
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install -q -e ".[torch]"
	$(BIN)/python -c "import torch; print('torch', torch.__version__)"

# Every benchmark at its default size, one after the other (take them on idle cores: they print the
# load average with their numbers). benchmarks/atari_speed.py measures its training loop for 60 s after a
# warm-up and each update for 20 s.
bench: venv torch
	@set -e; for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# The small analysis environment of scripts/atari_report.py: rliable's IQM and stratified-bootstrap
# intervals over runs. Its own venv because rliable 1.2 needs arch < 8, which fails to import beside
# pandas 3 (the core's); it reads only the runs' JSON files, so it needs no TensorFlow.
ANALYSIS = .venv-analysis
analysis: $(ANALYSIS)/.installed
$(ANALYSIS)/.installed: setup.cfg
	$(PYTHON) -m venv $(ANALYSIS)
	$(ANALYSIS)/bin/python -m pip install -q --upgrade pip
	$(ANALYSIS)/bin/python -m pip install -q "rliable==1.2.*" "arch>=5.3.1,<8" "pandas<3" numpy
	touch $@

doctor: venv
	$(BIN)/kcourse doctor

clean:
	rm -rf $(VENV) $(ANALYSIS) runs .pytest_cache
