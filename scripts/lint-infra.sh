#!/usr/bin/env bash
# Lints the SAM template offline: cfn-lint and `sam validate --lint` must both pass.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/cfn-lint infra/template.yaml
AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint --template infra/template.yaml
echo "infra/template.yaml: cfn-lint and sam validate --lint pass"
