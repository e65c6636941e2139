# Parley — the commands. `make run` and `make test` are the two that matter on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

.PHONY: help run token test test-unit deps infra-up up down restart status lint migrate bench dashboards
.PHONY: bench-profile bench-idle
.PHONY: tools helm-lint k8s-render chart-readme test-deploy
.PHONY: loadtest loadtest-cluster

help:
	@echo "make run            single-node Parley on http://127.0.0.1:8000 (nothing to install)"
	@echo "make token USER=x   print a development JWT for user x"
	@echo "make test           install what is missing, start the engines, run every test"
	@echo "make up / make down the full local cluster (engines, 2 gateways, worker, presence, nginx)"
	@echo "make infra-up       only the engines (Redis, Kafka, Cassandra)"
	@echo "make lint           ruff + mypy (strict on services/)"
	@echo "make bench          gateway vs the reference server, persistence pipeline (~7 min)"
	@echo "make bench-profile  py-spy flame graph + top-N of the cluster gateway at saturation"
	@echo "make bench-idle     10,000 idle websockets on one gateway for 5 min (RSS, CPU, drops)"
	@echo "make dashboards     regenerate the Grafana dashboards and the chart's copies"
	@echo "make tools          build helm, etcd, kube-apiserver/kubectl/... into ~/.cache/parley (once)"
	@echo "make helm-lint      helm lint --strict the chart with every ci/ value set"
	@echo "make k8s-render     re-render deploy/k8s from the chart (commit the result)"
	@echo "make test-deploy    the deploy layer alone: chart, manifests, a real API server"
	@echo "make loadtest       locust against make run (or HOST=...): SCENARIO USERS RATE TIME TOKENS"
	@echo "make loadtest-cluster  locust, 1 master + WORKERS workers, against make up's nginx"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error && touch $@

deps: $(STAMP) node_modules/.installed

DEV_SECRET = PARLEY_JWT_SECRET="$$(bash deploy/local/secret.sh)"

run: deps
	@$(DEV_SECRET) PARLEY_MODE=single $(PY) -m services.gateway

token: deps
	@$(DEV_SECRET) $(PY) -m services.common.devtoken $(USER)

test: deps
	@bash deploy/local/test.sh

test-unit: deps
	@$(PY) -m pytest -q tests/unit

infra-up:
	@bash deploy/local/bootstrap.sh
	@bash deploy/local/infra.sh up

migrate: deps
	@$(PY) -m services.persistence.migrate

up: deps
	@bash deploy/local/cluster.sh up

down:
	@bash deploy/local/cluster.sh down

restart:  # rolling restart of the gateways of `make up` (each drains, then comes back)
	@bash deploy/local/cluster.sh restart $(SERVICES)

status:
	@bash deploy/local/cluster.sh status

bench: $(STAMP)
	@bash bench/run.sh

bench-profile: $(STAMP)
	@BENCH_PARTS=profile BENCH_COMMAND="make bench-profile" bash bench/run.sh

bench-idle: $(STAMP)
	@bash bench/idle.sh

lint: deps
	@$(VENV)/bin/ruff check services tests bench deploy loadtests parley_client examples
	@$(VENV)/bin/ruff format --check services tests bench deploy loadtests parley_client examples
	@$(VENV)/bin/mypy

dashboards: deps
	@$(PY) deploy/grafana/generate.py

# --- Kubernetes deployment (deploy/helm, deploy/k8s, deploy/tools) ---
TOOLS_PRINT = $(shell bash deploy/tools/build.sh --print)
HELM = $(patsubst HELM=%,%,$(filter HELM=%,$(TOOLS_PRINT)))

tools:
	@bash deploy/tools/build.sh all
	@bash deploy/tools/venv.sh validate checkov

helm-lint:
	@bash deploy/tools/build.sh helm
	@for f in deploy/helm/parley/ci/*-values.yaml; do $(HELM) lint --strict deploy/helm/parley -f $$f || exit 1; done

k8s-render: $(STAMP)
	@bash deploy/tools/build.sh helm
	@HELM=$(HELM) $(PY) deploy/k8s/render.py

chart-readme: $(STAMP)
	@$(PY) deploy/tools/chart-readme.py

test-deploy: $(STAMP)
	@$(PY) -m pytest -q -p no:cacheprovider tests/deploy

# --- load tests (locust in its own venv: loadtests/venv.sh; reports in loadtests/reports/) ---
SCENARIO ?= mixed
USERS ?= 20
RATE ?= 10
TIME ?= 60s
WORKERS ?= 2
# Tokens: TOKENS=<file> (one JWT a line), else minted with the development secret
# (deploy/local/secret.sh), which `make run` and `make up` use. LOADTEST_ARGS: more run.py options.
LT_RUN = $(DEV_SECRET) $$(bash loadtests/venv.sh) loadtests/run.py --scenario $(SCENARIO) \
	-u $(USERS) -r $(RATE) -t $(TIME) $(if $(TOKENS),,--mint $(USERS)) $(LOADTEST_ARGS)
LT_TOKENS = $(if $(TOKENS),PARLEY_LT_TOKENS_FILE="$(abspath $(TOKENS))")

loadtest:
	@$(LT_TOKENS) $(LT_RUN) --host "$(or $(HOST),http://127.0.0.1:8000)"

loadtest-cluster:
	@$(LT_TOKENS) $(LT_RUN) --host "$(or $(HOST),http://127.0.0.1:8080)" --workers $(WORKERS)
