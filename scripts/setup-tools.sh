#!/usr/bin/env bash
# Installs the tools the tests need, pinned, into the repo (idempotent; fast when done):
#   .venv      moto (DynamoDB + S3 emulator), cfn-lint, schemathesis, and the independent
#              verifier's packages (cryptography, rfc8785: tools/verify_trail.py), ocsf-json-schema (tools/validate_ocsf.py)
#              and with --lambda: cargo-lambda + zig (cross-compiling the functions)
#   .venv-sam  AWS SAM CLI (its own venv: it pins boto3 differently from moto)
#   7-Zip      Debian's p7zip-full, to check export archives
#   Chromium   Debian's chromium + chromium-driver, for the console's browser tests
#   console    npm ci in console/ (Vite, Vitest, playwright-core, axe-core; pinned by package-lock.json)
set -euo pipefail
cd "$(dirname "$0")/.."
lambda=0
for a in "$@"; do
  case "$a" in
    --lambda) lambda=1 ;;
    *) echo "usage: $0 [--lambda]" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
core=("moto[server,dynamodb,s3,ssm,kms]==5.2.5" "cfn-lint==1.58.0" "schemathesis==4.32.5"
      "cryptography==50.0.2" "rfc8785==0.1.4" "ocsf-json-schema==1.2.0")
lambda_pkgs=("cargo-lambda==1.9.2" "ziglang==0.17.1")
sam=("aws-sam-cli==1.170.0")

# Installs packages into a venv unless its stamp says exactly these are installed.
ensure_venv() {
  local dir=$1; shift
  local want; want=$(printf '%s\n' "$@" | sort)
  # Up to date when every wanted pin is already recorded as installed.
  if [ -x "$dir/bin/python" ] && [ -f "$dir/.auditrail-stamp" ] \
     && [ -z "$(comm -23 <(echo "$want") <(sort "$dir/.auditrail-stamp"))" ]; then
    echo "  $dir: up to date"
    return
  fi
  echo "  $dir: installing $*"
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  { cat "$dir/.auditrail-stamp" 2>/dev/null || true; echo "$want"; } | sort -u > "$dir/.auditrail-stamp.new"
  mv "$dir/.auditrail-stamp.new" "$dir/.auditrail-stamp"
}

started=$(date +%s)
pkgs=("${core[@]}")
[ "$lambda" = 1 ] && pkgs+=("${lambda_pkgs[@]}")
ensure_venv .venv "${pkgs[@]}"
ensure_venv .venv-sam "${sam[@]}"

if ! command -v 7z >/dev/null 2>&1; then
  echo "  7-Zip: installing p7zip-full"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq p7zip-full >/dev/null 2>&1 || {
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq p7zip-full >/dev/null
  }
else
  echo "  7-Zip: present"
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "  Chromium: installing chromium + chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || {
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  }
else
  echo "  Chromium: present"
fi

# The console's packages, exactly as locked (playwright-core never downloads a browser).
if [ ! -d console/node_modules ] || [ console/package-lock.json -nt console/node_modules/.package-lock.json ]; then
  echo "  console: npm ci"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm --prefix console ci --no-audit --no-fund >/dev/null
else
  echo "  console: node_modules current"
fi
echo "  tools ready in $(( $(date +%s) - started ))s"
