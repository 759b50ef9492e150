#!/usr/bin/env bash
# The README's test command: installs what the tests need (Debian's prometheus for promtool and the
# Prometheus end-to-end test, a local virtualenv with boto3 and moto's server), then runs every test
# of the workspace. Safe to run again: installs are skipped when already present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/install-test-deps.sh"

export SWF_TEST_PYTHON="$ROOT/.venv/bin/python"
export SWF_TEST_MOTO_SERVER="$ROOT/.venv/bin/moto_server"
export PATH="$ROOT/.venv/bin:$PATH"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --profile ci "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
