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

# Operations tools from Debian's packages, installed on first use: prometheus
# (with promtool) for the rule checks and the Prometheus integration test,
# docker-compose to validate docker-compose.yml (no Docker engine needed).
PROMETHEUS ?= /usr/bin/prometheus
PROMTOOL ?= /usr/bin/promtool
DOCKER_COMPOSE ?= /usr/bin/docker-compose
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# apt-get install without starting the package's service: policy-rc.d answers
# 101 ("not allowed") while the package installs, and the systemd unit is
# disabled, so no Prometheus ever listens on 9090 (the tests run their own on
# a free loopback port).
define apt_install
	@echo "installing Debian package(s): $(1)"
	$(SUDO) sh -ec 'policy=/usr/sbin/policy-rc.d; created=; \
	  if [ ! -e $$policy ]; then printf "#!/bin/sh\nexit 101\n" > $$policy; chmod +x $$policy; created=1; fi; \
	  trap "[ -z \"$$created\" ] || rm -f $$policy" EXIT; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1); \
	  if [ -d /run/systemd/system ]; then systemctl disable --now $(2) >/dev/null 2>&1 || true; fi'
endef

$(PROMETHEUS) $(PROMTOOL):
	$(call apt_install,prometheus,prometheus.service)
	@test -x $(PROMETHEUS) && test -x $(PROMTOOL)

$(DOCKER_COMPOSE):
	$(call apt_install,docker-compose,)
	@test -x $(DOCKER_COMPOSE)

.PHONY: tools
tools: $(PROMETHEUS) $(PROMTOOL) $(DOCKER_COMPOSE) ## Install prometheus, promtool and docker-compose (Debian packages)

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
	$(BIN)/mypy schemas online_models streams tests benchmarks fuzz

.PHONY: test
test: lint prometheus-check $(PROMETHEUS) $(DOCKER_COMPOSE) ## The full suite: lint, types, rules, unit, agents and integration tests on a real broker
	$(BIN)/python -m pytest

.PHONY: unit
unit: $(STAMP) $(DOCKER_COMPOSE) ## Fast tests only (no broker)
	$(BIN)/python -m pytest -m "unit or agents"

.PHONY: bench
bench: $(STAMP) ## Performance benchmark on a broker it starts (~15 min; BENCH_ARGS=--quick: ~2 min)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

CRASH_KILLS ?= 10
.PHONY: crash
crash: $(STAMP) ## Crash test with CRASH_KILLS (10) SIGKILLs instead of the test command's 3 (~3 min)
	NUDGE_CRASH_KILLS=$(CRASH_KILLS) $(BIN)/python -m pytest tests/integration/test_crash.py -s -rx

POISON_EVENTS ?= 50000
.PHONY: poison
poison: $(STAMP) ## Poison at volume: POISON_EVENTS (50,000) messages, 10% garbage, through a real worker (~3 min)
	NUDGE_POISON_EVENTS=$(POISON_EVENTS) $(BIN)/python -m pytest tests/integration/test_poison.py -s

FUZZ_SECONDS ?= 600
FUZZ_DIR := .cache/fuzz
.PHONY: fuzz
fuzz: $(STAMP) ## Fuzz the decoder, reducer and engine for FUZZ_SECONDS (600); crashes go to .cache/fuzz/crashes/
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	$(BIN)/python -m fuzz.seeds $(FUZZ_DIR)/corpus $(FUZZ_DIR)/words.dict
	$(BIN)/python -m fuzz.fuzz_decode_reduce -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
	  -dict=$(FUZZ_DIR)/words.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ $(FUZZ_ARGS) \
	  $(FUZZ_DIR)/corpus

.PHONY: bench-models
bench-models: $(STAMP) ## Online vs batch model evaluation (~5 min) and model micro-benchmarks
	$(BIN)/python -m benchmarks.models_offline
	$(BIN)/python -m benchmarks.models_micro

.PHONY: bench-core
bench-core: $(STAMP) ## Microseconds per event of decode and the pure core, with an output digest
	$(BIN)/python -m benchmarks.core_micro

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

.PHONY: prometheus-check
prometheus-check: $(PROMTOOL) ## promtool: check the scrape configs and rules, run the rule unit tests
	$(PROMTOOL) check config deploy/prometheus/prometheus.yml deploy/prometheus/prometheus.compose.yml
	$(PROMTOOL) check rules deploy/prometheus/rules/nudge.rules.yml
	cd deploy/prometheus/rules && $(PROMTOOL) test rules nudge.rules.test.yml

.PHONY: compose-check
compose-check: $(DOCKER_COMPOSE) ## Validate docker-compose.yml (no Docker engine needed)
	$(DOCKER_COMPOSE) -f docker-compose.yml config --quiet

.PHONY: dashboards
dashboards: $(STAMP) ## Regenerate the Grafana dashboards in deploy/grafana/dashboards/
	$(BIN)/python deploy/grafana/generate.py

MATPLOTLIB ?= matplotlib==3.11.2
$(VENV)/.matplotlib: $(STAMP)
	$(BIN)/pip install --quiet '$(MATPLOTLIB)'
	touch $@

.PHONY: dashboard-preview
dashboard-preview: $(VENV)/.matplotlib $(PROMETHEUS) ## Run broker, worker, simulator and Prometheus; draw deploy/grafana/preview.png
	$(BIN)/python deploy/grafana/preview.py --out deploy/grafana/preview.png
