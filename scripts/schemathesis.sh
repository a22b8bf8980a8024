#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from /v1/openapi.json against a real
# `auditrail serve` on the embedded store; no 5xx, and every response must match the document.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p auditrail
bin=target/debug/auditrail
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" --demo --demo-size 300 >"$data/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/v1/health" >/dev/null && break
  sleep 0.1
done
token=$("$bin" token --tenant acme-contact --role tenant_admin,ingest,dpo --data-dir "$data")
.venv/bin/schemathesis run "http://127.0.0.1:$port/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-examples 40 --seed 20261124 --no-color
