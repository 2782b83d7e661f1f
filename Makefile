# Developer and CI entry points. Needs only Python 3.11+ (and npm for `make buf`).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
# The stamp names the version, so changing BUF_VERSION installs the new one.
BUF_STAMP := .tools/.buf-$(BUF_VERSION)
# Extra arguments, e.g. `make up UP_ARGS="--booking-port 50061"`.
UP_ARGS ?=
BENCH_ARGS ?=
# e.g. BENCH_AVAILABILITY_ARGS="--seconds 10 --client-processes 3 --lag-rounds 500"
BENCH_AVAILABILITY_ARGS ?=
# e.g. BENCH_WEBHOOKS_ARGS="--events 5000 --webhooks-metrics http://localhost:9103/metrics"
BENCH_WEBHOOKS_ARGS ?=
# e.g. BENCH_GATEWAY_ARGS="--users 500 --think-ms 1000 --pid gateway=1234"
BENCH_GATEWAY_ARGS ?=
# e.g. BENCH_WORKERS_ARGS="--workers 4 --seconds 10"
BENCH_WORKERS_ARGS ?=
# e.g. BENCH_WINDOWS_ARGS="--seconds 5 --pgbench-clients 32 --pgbench /usr/lib/postgresql/16/bin/pgbench"
BENCH_WINDOWS_ARGS ?=

.DEFAULT_GOAL := venv
.PHONY: venv protos check-protos buf lint test up bench bench-availability bench-webhooks bench-gateway bench-windows bench-workers clean-state

venv: $(VENV)/.installed

# Reinstalls whenever pyproject.toml changes (new or bumped dependencies).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

protos: venv
	$(BIN)/python scripts/protos.py

check-protos: venv
	$(BIN)/python scripts/protos.py --check

$(BUF_STAMP):
	npm install --prefix .tools --no-save --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION)
	touch $@

buf: $(BUF_STAMP)
	cd protos && ../$(BUF) lint

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Tests get HOLDFAST_TEST_DATABASE_URL / HOLDFAST_TEST_REDIS_URL from the
# environment, else `python -m devtools testenv` starts embedded engines for them.
test: venv check-protos buf lint
	$(BIN)/python -m devtools testenv -- $(BIN)/pytest -q

up: venv
	$(BIN)/python -m devtools up $(UP_ARGS)

# Against the stack `make up` runs in another terminal: it writes its URLs to
# .state/up.env while it is up. Slot holds over gRPC next to pgbench running
# the same SQL (bench/slot_hold.sql) on the stack's database, and the hot slot.
bench: venv
	@test -f .state/up.env || { echo "make bench: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && $(BIN)/python -m bench.holds \
		--target "$$HOLDFAST_BOOKING_TARGET" --database-url "$$HOLDFAST_DATABASE_URL" $(BENCH_ARGS)

bench-availability: venv
	@test -f .state/up.env || { echo "make bench-availability: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && $(BIN)/python -m bench.availability \
		--booking-target "$$HOLDFAST_BOOKING_TARGET" \
		--availability-target "$$HOLDFAST_AVAILABILITY_TARGET" \
		--availability-metrics "$$HOLDFAST_AVAILABILITY_METRICS_URL" $(BENCH_AVAILABILITY_ARGS)

# The signing secret: the fake Stripe's when the stack runs one (its
# HOLDFAST_FAKE_STRIPE_URL is in up.env; the webhook service then ignores
# HOLDFAST_STRIPE_WEBHOOK_SECRETS), else the first of
# HOLDFAST_STRIPE_WEBHOOK_SECRETS; bench.webhooks falls back to the fake's.
bench-webhooks: venv
	@test -f .state/up.env || { echo "make bench-webhooks: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && \
	if [ -n "$${HOLDFAST_FAKE_STRIPE_URL:-}" ]; then unset HOLDFAST_STRIPE_WEBHOOK_SECRETS; fi && \
	$(BIN)/python -m bench.webhooks \
		--booking-target "$$HOLDFAST_BOOKING_TARGET" \
		--webhooks-url "$${HOLDFAST_WEBHOOKS_URL:-http://127.0.0.1:8081/stripe/webhook}" \
		--database-url "$$HOLDFAST_DATABASE_URL" \
		--webhooks-metrics "$$HOLDFAST_WEBHOOKS_METRICS_URL" $(BENCH_WEBHOOKS_ARGS)

# Availability hits from 1 worker and from --workers (default 2) sharing a
# port: two availability services of its own on the stack's Postgres and Redis.
bench-workers: venv
	@test -f .state/up.env || { echo "make bench-workers: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && $(BIN)/python -m bench.workers \
		--booking-target "$$HOLDFAST_BOOKING_TARGET" --database-url "$$HOLDFAST_DATABASE_URL" \
		--redis-url "$$HOLDFAST_REDIS_URL" $(BENCH_WORKERS_ARGS)

# The gateway's URL, the database (for the bench's tenant and key) and the
# services' metrics URLs all come from up.env.
bench-gateway: venv
	@test -f .state/up.env || { echo "make bench-gateway: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && $(BIN)/python -m bench.gateway \
		--gateway-url "$$HOLDFAST_GATEWAY_URL" \
		--database-url "$$HOLDFAST_DATABASE_URL" $(BENCH_GATEWAY_ARGS)

# Window holds over gRPC next to pgbench running the same SQL
# (bench/windows_hold.sql) on the stack's database, and the hot window.
bench-windows: venv
	@test -f .state/up.env || { echo "make bench-windows: no running stack; start one with make up" >&2; exit 1; }
	. ./.state/up.env && $(BIN)/python -m bench.windows \
		--target "$$HOLDFAST_BOOKING_TARGET" --database-url "$$HOLDFAST_DATABASE_URL" $(BENCH_WINDOWS_ARGS)

clean-state:
	rm -rf .state
