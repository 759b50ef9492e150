#!/usr/bin/env bash
# Starts a real Prometheus on a loopback port that scrapes a target and evaluates our recording
# rules, optionally runs a workload, and prints the stage latency series as JSON.
# See scripts/prometheus_e2e.py --help for the options.
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/prometheus_e2e.py" "$@"
