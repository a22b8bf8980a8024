#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh clone: tools, lint, infrastructure lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "tools (moto, cfn-lint, sam, 7-Zip, Chromium, console packages)"
bash scripts/setup-tools.sh

step "web console build (embedded by auditrail and the console function; tests serve the real files)"
npm --prefix console ci
npm --prefix console run build

step "console unit tests (Vitest: password rule, filter <-> query string, message catalogue)"
npm --prefix console test

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The functions as deployed (`lambda` + `aws`, no embedded store, no local tokens): a feature
# set --all-features never compiles.
cargo clippy -p ingest -p query -p exports -p export-worker -p dpo -p dpo-worker -p scheduler -p error-reports -p console -- -D warnings

step "infrastructure lint (cfn-lint, sam validate --lint)"
bash scripts/lint-infra.sh

step "tests (embedded store; DynamoDB conformance and faults on moto)"
# One moto server per core for the whole run (each test gets its own table and bucket, and each
# test process claims a server no other running test holds: moto works one request at a time,
# so two tests on one server queue behind each other — the DynamoDB end-to-end step took twice
# as long). The harness would start its own per test process otherwise. If none can start, the
# AWS tests fail.
export AUDITRAIL_MOTO_SERVER="$PWD/.venv/bin/moto_server"
moto_pids=()
endpoints=()
trap 'kill "${moto_pids[@]}" 2>/dev/null || true' EXIT
: >/tmp/auditrail-moto.log
for _ in $(seq 1 "$(nproc)"); do
  moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$AUDITRAIL_MOTO_SERVER" -H 127.0.0.1 -p "$moto_port" >>/tmp/auditrail-moto.log 2>&1 &
  moto_pids+=($!)
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 ||
    { echo "moto did not start on 127.0.0.1:$moto_port (see /tmp/auditrail-moto.log)" >&2; exit 1; }
  endpoints+=("http://127.0.0.1:$moto_port")
done
AUDITRAIL_MOTO_ENDPOINT=$(IFS=,; echo "${endpoints[*]}")
export AUDITRAIL_MOTO_ENDPOINT
cargo nextest run --workspace --all-features

step "end-to-end tests again on DynamoDB + S3 (moto)"
# Same feature set as above, so nothing is rebuilt.
AUDITRAIL_TEST_BACKEND=dynamodb cargo nextest run --workspace --all-features -E 'package(auditrail-tests)'

step "console: browser end-to-end tests (headless Chromium against auditrail serve --demo)"
# The debug binary the tests start (same features as the nextest run: nothing is rebuilt).
cargo build -p auditrail --all-features
npm --prefix console run e2e

step "schemathesis against auditrail serve"
bash scripts/schemathesis.sh

step "done"
