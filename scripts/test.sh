#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh clone: tools, lint, infrastructure lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "tools (moto, cfn-lint, sam, 7-Zip)"
bash scripts/setup-tools.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "infrastructure lint (cfn-lint, sam validate --lint)"
bash scripts/lint-infra.sh

step "tests"
export AUDITRAIL_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo nextest run --workspace --all-features

step "schemathesis against auditrail serve"
bash scripts/schemathesis.sh

step "done"
