# Developer verbs. `make run` starts the product on the embedded store; `make test` is the whole
# suite CI runs (it installs the tools it needs first).
SHELL := /bin/bash
ADDR ?= 127.0.0.1:8080

.PHONY: run test tools lint lint-infra unit watch build-lambdas deploy bench fmt openapi console console-test

# The web console (console/, TypeScript + Vite) built into console/dist, which `auditrail` and the
# `console` function embed at compile time: build it before them.
console:
	npm --prefix console ci
	npm --prefix console run build

# The console's unit tests (Vitest) and browser tests (Chromium against auditrail serve --demo).
console-test: console
	npm --prefix console test
	cargo build -p auditrail --all-features
	npm --prefix console run e2e

run: console
	cargo run --release -p auditrail -- serve --demo --addr $(ADDR)

test:
	bash scripts/test.sh

tools:
	bash scripts/setup-tools.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

lint-infra: tools
	bash scripts/lint-infra.sh

unit: console
	cargo nextest run --workspace --all-features

watch:
	bash scripts/setup-tools.sh --lambda
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda watch --features local -A 127.0.0.1 -P 9010

# Each function is built alone in its own package directory, as `sam build` does (see the comment
# above the functions in infra/template.yaml): one cargo invocation for all of them would unify
# their features (the KMS client into every function) and print sizes no deployment has.
FUNCTIONS := ingest query exports export-worker dpo dpo-worker scheduler error-reports console

build-lambdas: console
	bash scripts/setup-tools.sh --lambda
	@for f in $(FUNCTIONS); do \
	  (cd functions/$$f && PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64 --bin $$f) || exit 1; \
	done
	@for f in $(FUNCTIONS); do \
	  printf '%-14s %6.2f MB (stripped arm64 bootstrap)\n' $$f "$$(awk -v s="$$(stat -c %s target/lambda/$$f/bootstrap)" 'BEGIN { print s / 1e6 }')"; \
	done

deploy: build-lambdas
	PATH="$(CURDIR)/.venv-sam/bin:$(CURDIR)/.venv/bin:$$PATH" sam build --template infra/template.yaml && \
	PATH="$(CURDIR)/.venv-sam/bin:$(CURDIR)/.venv/bin:$$PATH" sam deploy

bench: tools console
	cargo run --release -p auditrail-bench --
	AUDITRAIL_MOTO_SERVER=$(CURDIR)/.venv/bin/moto_server cargo run --release -p auditrail-bench -- --dynamodb 100000
	cargo run --release -p auditrail-bench -- --export 10000,1000000,5000000 --level 5,6
	# The emulator at 1M: moto with base-table Query reading one partition (bench/moto/partitioned.py;
	# stock moto sorts the whole table per Query). Loading 1M records into it takes about 70 min.
	AUDITRAIL_MOTO_SERVER=$(CURDIR)/bench/moto/moto-partitioned cargo run --release -p auditrail-bench -- --export-path 1000000 --export-path-emulator 1000000
	cargo run --release -p auditrail-bench -- --dpo 1000000 --subjects 100000
	cargo run --release -p auditrail-bench -- --integrity 1000000
	AUDITRAIL_MOTO_SERVER=$(CURDIR)/.venv/bin/moto_server cargo run --release -p auditrail-bench -- --dpo-dynamodb 20000 --subjects 2000
	for f in $(FUNCTIONS); do (cd functions/$$f && cargo build --release) || exit 1; done
	AUDITRAIL_MOTO_SERVER=$(CURDIR)/.venv/bin/moto_server cargo run --release -p auditrail-bench -- --init target/release
	# The console at 1M records in headless Chromium: first-page paint, a 10,000-row scroll.
	cargo build --release -p auditrail --all-features
	AUDITRAIL_BIN=$(CURDIR)/target/release/auditrail npm --prefix console run perf

# Writes docs/openapi.json (served as GET /v1/openapi.json) from the handlers' annotations.
openapi:
	AUDITRAIL_UPDATE_OPENAPI=1 cargo nextest run --workspace --all-features -E 'test(openapi_document_is_current)'
