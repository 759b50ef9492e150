#!/usr/bin/env bash
# Checks every deployment file with the tools that will read it in production:
#   - promtool check config / check rules / test rules on deploy/prometheus/;
#   - every Grafana dashboard parses as JSON, is structurally sound, matches its generator, and
#     every panel query parses as PromQL (promtool check rules on a generated rules file);
#   - the Logstash index template parses as JSON;
#   - a real Prometheus scrapes a fake target and returns the expected stage quantiles;
#   - the systemd unit passes systemd-analyze verify (when systemd-analyze exists).
# Metric and field names are checked against the runtime by runtime/tests/it/deploy_files.rs.
#
# Needs promtool and prometheus (Debian's `prometheus` package: scripts/install-test-deps.sh) and python3.
# Exits non-zero on any failure. Nothing is skipped silently: a missing optional tool is named.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

failures=0
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
run() {
    # Runs a check, keeps going on failure so one run reports every broken file.
    if ! "$@"; then fail "$*"; fi
}

if ! command -v python3 >/dev/null 2>&1; then
    echo "FAIL: python3 is required (apt-get install -y python3)" >&2
    exit 1
fi
for tool in promtool prometheus; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool not found; run scripts/install-test-deps.sh (installs Debian's prometheus)" >&2
        exit 1
    fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "promtool check config"
run promtool check config deploy/prometheus/prometheus.yml

step "promtool check rules"
run promtool check rules deploy/prometheus/rules/*.yml

step "promtool test rules"
run promtool test rules deploy/prometheus/tests/*.yml

step "dashboards: JSON, structure and PromQL of every query"
if python3 scripts/check-dashboards.py dashboards/*.json --rules-out "$tmp/dashboard-queries.yml"; then
    run promtool check rules "$tmp/dashboard-queries.yml"
else
    fail "dashboards are not sound (see above)"
fi

step "dashboards: committed JSON matches scripts/gen-dashboards.py"
run python3 scripts/gen-dashboards.py --check

step "dashboards: provisioning files"
for f in dashboards/provisioning/*.yaml; do
    # No YAML parser is guaranteed here; Grafana refuses provisioning files without this line.
    if ! grep -q '^apiVersion: 1$' "$f"; then fail "$f: missing apiVersion: 1"; fi
done

step "logstash: index template JSON"
run python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); assert t["template"]["mappings"]["properties"], "no mappings"' logstash/index-template.json
echo "logstash/index-template.json parsed"

step "a real Prometheus evaluates the recording rules (scripts/prometheus-e2e.sh against a fake target)"
run bash scripts/test-prometheus-e2e.sh

step "systemd unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants ExecStart's binary to exist: check a copy that runs /bin/true instead.
    sed 's#^ExecStart=/usr/local/bin/swf-runtime#ExecStart=/bin/true#' deploy/systemd/swf-runtime.service \
        >"$tmp/swf-runtime.service"
    if out="$(systemd-analyze verify "$tmp/swf-runtime.service" 2>&1)"; then
        echo "deploy/systemd/swf-runtime.service verified"
    else
        printf '%s\n' "$out" >&2
        fail "systemd-analyze verify deploy/systemd/swf-runtime.service"
    fi
else
    echo "systemd-analyze not installed: unit file syntax not verified (the Rust test still checks its settings)"
fi

echo
if [ "$failures" -ne 0 ]; then
    echo "test-deploy: $failures check(s) failed" >&2
    exit 1
fi
echo "test-deploy: all deployment checks passed"
