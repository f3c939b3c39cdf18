# The front door. `make help` lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
PROTOS := $(shell find protos -name '*.proto')
WEB_SOURCES := $(shell find web/src web/public -type f) web/build.mjs web/tsconfig.json

# Settings from the environment or the command line reach every process a target starts.
export GATEWAY_PORT CONFERENCE_GRPC_PORT BOOKING_GRPC_PORT WAITLIST_GRPC_PORT
export CONFIRMATION_WINDOW_SECONDS DATABASE_URL AMQP_URL LISTEN_HOST LOG_LEVEL LOG_FORMAT WORKERS REPLICAS
export OBSERVE PROMETHEUS_PORT METRICS_HOST GATEWAY_METRICS_PORT CONFERENCE_METRICS_PORT BOOKING_METRICS_PORT WAITLIST_METRICS_PORT
export OTEL_EXPORTER_OTLP_ENDPOINT
export OIDC_ISSUER OIDC_AUDIENCE OIDC_CLIENT_ID DEV_ISSUER_PORT
export TEST_DATABASE_URL TEST_AMQP_URL
export SOAK_STATE_DIR SOAK_DATABASE_URL SOAK_AMQP_URL
export BACKUP_FULL_EVERY_DAYS BACKUP_DIFF_EVERY_HOURS BACKUP_RETENTION_FULL BACKUP_ARCHIVE_TIMEOUT_SECONDS
export TEST_RESTORE_DATABASE_URL TEST_RESTORE_AMQP_URL

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  Settings (environment or make VAR=value): GATEWAY_PORT [8080], CONFERENCE_GRPC_PORT [50051],"
	@echo "  BOOKING_GRPC_PORT [50052], WAITLIST_GRPC_PORT [50053], CONFIRMATION_WINDOW_SECONDS [3600],"
	@echo "  DATABASE_URL, AMQP_URL, LISTEN_HOST [127.0.0.1]; <PROGRAM>_METRICS_PORT [9180-9183], OBSERVE [0],"
	@echo "  PROMETHEUS_PORT [9090], OTEL_EXPORTER_OTLP_ENDPOINT [none: no traces], LOG_FORMAT; see README.md."
	@echo "  OIDC_ISSUER and OIDC_AUDIENCE: whose access tokens count; unset, make run/up start a development issuer"
	@echo "  on 127.0.0.1:DEV_ISSUER_PORT [8079] for audience confbook: make token SUB=alice ROLE=organizer prints one."
	@echo "  make bench BENCH_ARGS=\"--quick --strict ...\" passes options; python -m scripts.bench --help lists them."
	@echo "  make soak SOAK_ARGS=\"--operations 1500 --seed 7 ...\" likewise; python -m scripts.soak --help lists them."
	@echo "  Backups of make up's PostgreSQL: BACKUP_FULL_EVERY_DAYS [7], BACKUP_DIFF_EVERY_HOURS [6],"
	@echo "  BACKUP_RETENTION_FULL [2], BACKUP_ARCHIVE_TIMEOUT_SECONDS [60]; make backup TYPE=full|diff|incr [full];"
	@echo "  make restore TARGET_TIME=\"2026-12-06 08:30:00\" (UTC unless an offset is given) or TARGET=latest."
	@echo "  RETENTION_<TABLE> [30d, 7d, 90d, 1d, 24h...]: how long each growing table keeps its rows (README, Retention)."

# --- setting up ------------------------------------------------------------

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@# The code imports from the repository root, libs/ and the generated gen/.
	$(VENV_PY) -c 'import site, pathlib; root = pathlib.Path.cwd(); pathlib.Path(site.getsitepackages()[0], "confbook.pth").write_text("\n".join(str(root / p) for p in ("", "libs", "gen")) + "\n")'
	touch $@

gen/.generated: $(PROTOS) $(VENV)/.installed
	rm -rf gen && mkdir -p gen
	$(VENV_PY) -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen \
		--mypy_out=gen --mypy_grpc_out=gen --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc $(PROTOS)
	touch $@

# The web page (web/): its pinned npm packages, then the build into web/dist (git-ignored), which the gateway serves.
web/node_modules/.installed: web/package.json web/package-lock.json
	@# Node.js and npm from Debian's packages when missing (as root; otherwise the apt-get line to run).
	@command -v npm >/dev/null || scripts/system-deps.sh
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/.built: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build
	touch $@

.PHONY: web
web: web/dist/.built ## Build the web page and /docs's assets (web/ into web/dist) with the pinned npm packages

.PHONY: install
install: $(VENV)/.installed gen/.generated web/dist/.built ## Create .venv with the pinned dependencies, generate code from protos/, build the web page

.PHONY: protos
protos: gen/.generated ## Generate Python code (with .pyi stubs) from protos/ into gen/

.PHONY: system-deps
system-deps: ## Install PostgreSQL, pgBackRest, RabbitMQ, wrk, Node.js and npm (Chromium for the tests, Prometheus with OBSERVE=1) from Debian if missing
	@scripts/system-deps.sh

.PHONY: migrate
migrate: install ## Create roles and schemas and run every service's migrations against DATABASE_URL
	$(VENV_PY) -m scripts.migrate

# --- running -----------------------------------------------------------------

.PHONY: run
run: system-deps install ## Start everything in the foreground (PostgreSQL, RabbitMQ, services, gateway); Ctrl-C stops it
	$(VENV_PY) -m scripts.stack run

.PHONY: up
up: system-deps install ## Start the same stack in the background; returns once GET /readyz answers 200 (OBSERVE=1: and Prometheus)
	$(VENV_PY) -m scripts.stack up

.PHONY: down
down: ## Stop everything `make up` started, and nothing else
	@if [ -x $(VENV_PY) ]; then $(VENV_PY) -m scripts.stack down; else echo "nothing to stop"; fi

.PHONY: status
status: ## Show what `make up` started and whether it is still running
	@$(VENV_PY) -m scripts.stack status

.PHONY: backup
backup: install ## Back up make up's PostgreSQL now (TYPE=full|diff|incr; the stack backs up by itself on a schedule)
	@$(VENV_PY) -m scripts.stack backup $(if $(TYPE),--type "$(TYPE)")

.PHONY: restore
restore: install system-deps ## Stop the services, restore the database to TARGET_TIME="..." (or TARGET=latest), start the stack on it
	@$(VENV_PY) -m scripts.stack restore --target "$(or $(TARGET_TIME),$(TARGET))"

.PHONY: token
token: ## An access token from `make up`'s development issuer for each SUB=alice[,bob] (ROLE=organizer|admin, TTL=s)
	@$(VENV_PY) -m scripts.token "$(SUB)" $(if $(ROLE),--role "$(ROLE)") $(if $(TTL),--ttl "$(TTL)")

# --- checking ----------------------------------------------------------------

# The browser tests drive Debian's Chromium: the test targets have system-deps install it too.
test test-e2e: export WITH_BROWSER = 1

.PHONY: test
test: system-deps install ## The whole test suite against real PostgreSQL and RabbitMQ (started privately), but the restore drill
	$(VENV_PY) -m pytest -m "not restore" $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: install ## Unit and servicer tests only: no database, no broker
	$(VENV_PY) -m pytest -m "unit or servicer" $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: system-deps install ## Integration tests: real PostgreSQL and RabbitMQ, no running services
	$(VENV_PY) -m pytest -m integration $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: system-deps install ## End-to-end tests: the whole stack over HTTP and gRPC
	$(VENV_PY) -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: test-restore
test-restore: system-deps install ## The restore drill: book, back up, book more, restore to a moment between, check the API (~2 min)
	$(VENV_PY) -m pytest -m restore tests/restore $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: system-deps install ## The hostile-input suite at length: many more generated examples, every schemathesis phase
	FUZZ=long $(VENV_PY) -m pytest tests/unit/test_input_rules.py tests/e2e/test_hostile_http.py \
		tests/e2e/test_hostile_wire.py tests/e2e/test_hostile_grpc.py tests/e2e/test_openapi_fuzz.py $(PYTEST_ARGS)

.PHONY: lint
lint: install ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services gateway scripts tests

.PHONY: fmt
fmt: install ## Format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: bench
bench: system-deps install ## The HTTP API under wrk beside ceilings from the same run, the waitlist's delays, and cancel-to-told (webhook, stream)
	$(VENV_PY) -m scripts.bench $(BENCH_ARGS)

.PHONY: soak
soak: system-deps install ## Random bookings from many clients on two replicas per service, under kills and outages; then the invariants
	$(VENV_PY) -m scripts.soak $(SOAK_ARGS)

.PHONY: soak-retention
soak-retention: install system-deps ## Ten minutes of traffic with lifetimes of seconds: every growing table stays flat
	RETENTION_SOAK_SECONDS=$${RETENTION_SOAK_SECONDS:-600} $(VENV_PY) -m pytest tests/e2e/test_retention.py $(PYTEST_ARGS)

.PHONY: clean
clean: down ## Remove .venv, gen/ and .run/ (private database and broker data included)
	rm -rf $(VENV) gen .run .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
