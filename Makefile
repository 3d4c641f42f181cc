# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Jupyter finds this environment's own python3 kernel first; the user's set-up is not touched.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test lab classroom notebooks student-notebooks mlflow-ui serve lint benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed  ## execute every notebook headless (profile full) into runs/<timestamp>/
	$(BIN)/python -m workbench run --profile full

# Two workers (pytest-xdist): a notebook kernel waits on I/O and one thread much of the time.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test  ## the whole test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lab: $(VENV)/.installed  ## JupyterLab on notebooks/
	$(BIN)/python -m workbench lab

# make classroom RUN_DIR=runs/<timestamp> CLASSROOM_PORT=8866 (default: runs/latest, which `make run` makes)
RUN_DIR        ?= runs/latest
CLASSROOM_PORT ?= 8866
classroom: $(VENV)/.installed  ## the stage widgets over RUN_DIR as a dashboard (Voila) on http://127.0.0.1:8866
	$(BIN)/python -m workbench classroom --run-dir $(RUN_DIR) --port $(CLASSROOM_PORT)

notebooks: $(VENV)/.installed  ## re-execute notebooks on the smoke profile and store outputs
	$(BIN)/python -m workbench notebooks

student-notebooks: $(VENV)/.installed  ## student copies in student/ (no solutions, no notes)
	$(BIN)/python -m workbench student

mlflow-ui: $(VENV)/.installed  ## the MLflow UI over runs/mlflow.db on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath runs)/mlflow.db --host 127.0.0.1

# make serve MODEL=mnist5k@champion (the registry; make run registers mnist5k) or MODEL_DIR=models (TF Serving's layout).
MODEL ?= mnist5k@champion
serve: $(VENV)/.installed  ## serve MODEL over REST (TF Serving + KServe v2) on http://127.0.0.1:8500
	$(BIN)/python -m workbench serve --model $(MODEL) $(if $(MODEL_DIR),--model-dir $(MODEL_DIR))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

benchmarks: $(VENV)/.installed  ## import time, training overhead, full-profile accuracy
	$(BIN)/python benchmarks/import_time.py
	$(BIN)/python benchmarks/train_overhead.py
	$(BIN)/python benchmarks/full_profile.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) runs .pytest_cache
