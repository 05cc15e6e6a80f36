# memlab: `make run` and `make test` set everything up on a fresh machine (Python 3.11+ only).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lock run test test-fast lint ui notebook server repro bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The exact versions of requirements.lock (same NumPy and OpenBLAS, same bits), then memlab itself.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "memlab needs Python 3.11+, found " + sys.version.split()[0] + " (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# compat: the checkout on sys.path, so that Hydra finds hydra_plugins/memlab_launcher next to
	@# the installed plugins (a strict editable install hides it behind their namespace)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . --config-settings editable_mode=compat
	@# bytecode for memlab's own modules, as pip writes it for every package it installs: with
	@# PYTHONDONTWRITEBYTECODE set, each new process would compile them all again (0.1-0.2 CPU-s)
	$(PY) -m compileall -q pipeline hydra_plugins
	@touch $@

install: $(STAMP) ## create .venv and install memlab with its dev tools, versions from requirements.lock

LOCK_VENV := .lock-venv
lock: ## refresh requirements.lock: newest versions pyproject.toml allows (then rerun and commit results)
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	{ sed -n '/^#/p' requirements.lock; $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

run: $(STAMP) ## run the main job: random labels vs. true labels, logged to MLflow
	$(PY) -m pipeline +experiment=shuffled_labels

# The tests on every core (pytest-xdist), a test file to each free worker, so that a module's
# costly fixtures (servers, sweeps, a project copy) are made once; in the order tests/conftest.py
# gives the files (the slowest first). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP) ## run every test, slow ones included
	$(PYTEST)

test-fast: $(STAMP) ## run the tests not marked slow
	$(PYTEST) -m "not slow"

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

ui: $(STAMP) ## open the MLflow UI on this directory's runs (in its model-training view)
	@echo "open http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
	$(VENV)/bin/mlflow ui

NOTEBOOK_STAMP := $(VENV)/.notebook

$(NOTEBOOK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,notebook]"
	@touch $@

notebook: $(NOTEBOOK_STAMP) ## open the tutorial notebook in JupyterLab (installs it into .venv once)
	$(VENV)/bin/jupyter lab notebooks/tutorial.ipynb

# make server PORT=5001 SERVER_DIR=/srv/mlflow [HOST=0.0.0.0 ALLOWED_HOSTS=mlflow.lab.org,10.1.*]
#             [ARTIFACTS=s3://bucket/mlflow] [AUTH=1]     (docs/server.md)
PORT       ?= 5000
SERVER_DIR ?= mlserver
HOST       ?= 127.0.0.1
server: $(STAMP) ## a team MLflow server on PostgreSQL, in the foreground (Ctrl-C stops it)
	$(PY) -m pipeline.tracking.server --port $(PORT) --dir $(SERVER_DIR) --host $(HOST) \
		$(if $(ARTIFACTS),--artifacts $(ARTIFACTS)) $(if $(AUTH),--auth) \
		$(if $(ALLOWED_HOSTS),--allowed-hosts $(ALLOWED_HOSTS))

bench: $(STAMP) ## benchmark NumpyMLP against MLPClassifier, PyTorch (if installed) and the BLAS floor
	$(PY) -m pipeline.bench --mnist-dir ../shared/data/mnist

repro: $(STAMP) ## rerun the DVC pipeline: only the stages whose code, data or params changed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc repro

clean: ## remove generated runs and outputs (keeps .venv and the DVC results in repro/)
	rm -rf outputs multirun mlruns mlartifacts mlflow.db mlflow.db-* reports dvc_plots .pytest_cache
