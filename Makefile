# Nudge: every set-up step lives here so a fresh machine needs only `make demo`
# or `make test`. `make help` lists the targets.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install Nudge with its dev tools

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas online_models streams tests

.PHONY: test
test: lint ## The full suite: lint, types, unit, agents and integration tests on a real broker
	$(BIN)/python -m pytest

.PHONY: unit
unit: $(STAMP) ## Fast tests only (no broker)
	$(BIN)/python -m pytest -m "unit or agents"

.PHONY: schemas
schemas: $(STAMP) ## Regenerate the checked-in JSON Schemas in schemas/json/
	$(BIN)/python -m schemas.export schemas/json

.PHONY: kafka-start kafka-stop kafka-status
kafka-start: $(STAMP) ## Start the local single-node Kafka broker (KRaft, 127.0.0.1)
	$(BIN)/nudge kafka start
kafka-stop: $(STAMP) ## Stop the local broker by its PID
	$(BIN)/nudge kafka stop
kafka-status: $(STAMP) ## Is the local broker running, and where
	$(BIN)/nudge kafka status

.PHONY: demo
demo: $(STAMP) ## Start the local broker and a worker (Ctrl-C stops both)
	$(BIN)/python -m streams.demo

.PHONY: constraints
constraints: ## Re-pin constraints.txt from a clean resolve of pyproject.toml
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install --quiet -e '.[dev]'
	(echo "# Exact versions CI and the demo install with (pip install -c constraints.txt)."; \
	 echo "# Regenerate with \`make constraints\` after changing dependencies in pyproject.toml."; \
	 .venv-pin/bin/pip freeze --exclude-editable | sort -f) > constraints.txt
	rm -rf .venv-pin
