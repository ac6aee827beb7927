# The two commands: `make demo` and `make test`. Each creates .venv when missing.
# Every pip install uses constraints.txt: the tested set, pinned (pyproject.toml keeps compatible ranges).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(BIN)/pip install --quiet -c $(CONSTRAINTS)
RUFF_PATHS := bandselect tests benchmarks deployments
export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: venv browser demo test test-fast lint format-check format bench constraints clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	# torch first, pinned by the constraints: it takes the local CPU wheel instead of several GB of CUDA wheels
	$(PIP_INSTALL) torch
	# everything: the library, the orchestration stack (flows extra) and the development tools
	$(PIP_INSTALL) -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bandselect demo

# Debian's chromium renders the Prefect and MLflow UIs for the browser test (tests/flows/test_browser.py).
# Installed from the distribution's packages when missing and this runs as root; otherwise the command
# to run is printed and that one test skips with the same reason. Nothing downloads a browser by itself.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
	else echo "chromium missing: run 'sudo apt-get install -y chromium' for the browser test"; fi

# The whole suite, as CI runs it: TEST_WORKERS pytest processes (pytest-xdist), each test module on one
# of them (--dist loadfile: a module's server fixtures start once). More workers than cores pays here:
# most of the suite's time is spent waiting on Prefect/MLflow/Dask servers and CLI subprocesses.
TEST_WORKERS ?= 3
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# For development: skips the tests marked slow or servers (CI still runs everything).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not servers"

lint: $(STAMP)
	$(BIN)/ruff check $(RUFF_PATHS)

format-check: $(STAMP)
	$(BIN)/ruff format --check $(RUFF_PATHS)

format: $(STAMP)
	$(BIN)/ruff format $(RUFF_PATHS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

# Rewrites constraints.txt from the venv (keeping its header comments), e.g. after an intended upgrade.
constraints: $(STAMP)
	grep '^#' $(CONSTRAINTS) > $(CONSTRAINTS).new
	$(BIN)/pip freeze --all --exclude-editable | grep -v -E '^(pip|wheel)==' \
		| sed -E 's/^torch==([^+]*)\+.*/torch==\1/' >> $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	touch $(STAMP)

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache
