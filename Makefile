# Everything runs from the project's own virtualenv (.venv), created or refreshed here;
# nothing depends on tools installed by hand. Dev-cluster binaries are found or built
# with `go` by `cilium dev-cluster build` (cached in ~/.cache/ciliumctl/bin).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all host-deps venv lint format unit integration test binaries demo bench clean help
.PHONY: datapath-headers datapath-test datapath-bench

all: test

help:
	@echo "make demo   - venv, binaries, a 3-node dev cluster, cilium version against it"
	@echo "make test   - ruff, mypy, import contracts, unit and integration tests"
	@echo "make lint   - ruff, mypy and import contracts only"
	@echo "make bench  - benchmarks (JSON on stdout)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages (containerd, runc, bcc, headers, mmdebstrap, ...) from scripts/host-packages.txt
host-deps:
	./scripts/host-deps.sh

lint: venv
	$(BIN)/ruff check ciliumctl tests bench
	$(BIN)/ruff format --check ciliumctl tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format ciliumctl tests bench
	$(BIN)/ruff check --fix ciliumctl tests bench

binaries: venv host-deps
	$(BIN)/cilium dev-cluster build

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: venv binaries
	$(BIN)/pytest -m cluster tests/integration $(PYTEST_ARGS)

# One pytest run for unit + integration tests; pytest's exit code 5 (no tests collected)
# is a failure here like any other non-zero code.
test: lint binaries
	$(BIN)/pytest tests $(PYTEST_ARGS)

# The eBPF datapath (needs root): Debian's split kernel headers merged once into
# ~/.cache/ciliumctl/kernel-headers for bcc, then the BPF_PROG_TEST_RUN and real-traffic tests.
datapath-headers: venv host-deps
	$(BIN)/python -m ciliumctl.datapath.headers

datapath-test: datapath-headers
	$(BIN)/pytest -m datapath tests/datapath $(PYTEST_ARGS)

datapath-bench: datapath-headers
	nice -n 10 $(BIN)/python bench/datapath.py

# `make test` runs tests/datapath too (one pytest run); the header tree is prepared first.
test: datapath-headers

demo: venv binaries
	PATH="$(CURDIR)/$(BIN):$$PATH" ./scripts/demo.sh

bench: venv binaries
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/devcluster_up.py
	$(BIN)/python bench/install.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/nodeconfig.py
	$(BIN)/python bench/sysdump.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/validate_cnp.py
	$(BIN)/python bench/agent_realnodes.py
	$(BIN)/python bench/connectivity.py
	$(BIN)/python bench/realnodes.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
