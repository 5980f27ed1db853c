# batchdrop — every target installs what it needs from scratch (CI starts from a fresh clone).
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install lint test test-slow test-fast demo synth bench reliability clean

help:
	@echo "make demo         run the whole pipeline locally (moto server + Extend simulator)"
	@echo "make test         lint + every test (unit, integration, infra, cli, e2e, the short fault run)"
	@echo "make test-fast    every test except those marked slow (e2e and the short fault run)"
	@echo "make test-slow    only the tests marked slow"
	@echo "make synth        synthesize the CDK app into cdk.out with bundled Lambda assets"
	@echo "make bench        run the benchmarks and rewrite docs/benchmarks.md"
	@echo "make reliability  the long fault-injection run"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest -m slow

test-fast: install
	$(PY) -m pytest -x -q -m "not slow"

demo: install
	$(PY) -m sandbox.demo $(ARGS)

synth: install
	# The example routes as cdk.json ships them synthesize; `cdk deploy` refuses their placeholder ids.
	CDK_OUTDIR=cdk.out CDK_CONTEXT_JSON='{"allowPlaceholderProcessors": true}' $(PY) app.py

bench: install
	$(PY) -m bench $(ARGS)

reliability: install
	$(PY) -m sandbox.reliability $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) cdk.out .build .pytest_cache .ruff_cache
