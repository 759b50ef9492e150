#!/usr/bin/env bash
# Proves scripts/prometheus-e2e.sh end to end without the runtime: a static /metrics file served by
# python's http.server stands in for a runtime; the "workload" (--run) replaces it with one where
# the stage histograms grew by a known distribution; the real Prometheus must then return the
# quantiles that distribution implies (linear interpolation inside the bucket holding the rank).
#
# Counters start high (as on a runtime that has been up for a while) so that rate()'s
# extrapolation is the same for every bucket and the quantiles are exact.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

for tool in prometheus python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found; run scripts/install-test-deps.sh" >&2; exit 1; }
done

# Stage -> (bucket bound -> how many of this run's stages fell at or under it, cumulative).
python3 - "$tmp" <<'EOF'
import os, sys
tmp = sys.argv[1]
runs = {
    "transcode":    [("20", 0), ("30", 8), ("45", 10), ("+Inf", 10)],
    "thumbnails":   [("2.5", 0), ("5", 4), ("+Inf", 4)],
    "detect_faces": [("10", 0), ("15", 4), ("+Inf", 4)],
    "publish":      [("7.5", 0), ("10", 4), ("+Inf", 4)],
}
BASE = 1000  # every bucket's count before the run
def render(grown):
    out = ["# HELP swf_stage_duration_seconds Time from a stage's first scheduling to its final close.",
           "# TYPE swf_stage_duration_seconds histogram"]
    for stage, buckets in runs.items():
        labels = f'workflow_type="VideoProcessing",activity_type="{stage}",outcome="completed"'
        for le, n in buckets:
            out.append(f'swf_stage_duration_seconds_bucket{{{labels},le="{le}"}} {BASE + (n if grown else 0)}')
        total = buckets[-1][1] if grown else 0
        out.append(f"swf_stage_duration_seconds_sum{{{labels}}} {BASE * 10 + total * 10}")
        out.append(f"swf_stage_duration_seconds_count{{{labels}}} {BASE + total}")
    return "\n".join(out) + "\n"
os.makedirs(os.path.join(tmp, "www"))
with open(os.path.join(tmp, "www", "metrics"), "w") as f:
    f.write(render(False))
with open(os.path.join(tmp, "after.txt"), "w") as f:
    f.write(render(True))
EOF

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/http.log" 2>&1 &
server_pid=$!

# The "run": the histograms grow once, atomically (rename), while Prometheus watches.
python3 "$root/scripts/prometheus_e2e.py" \
    --target "127.0.0.1:$port" \
    --run "cp '$tmp/after.txt' '$tmp/www/metrics.new' && mv '$tmp/www/metrics.new' '$tmp/www/metrics'" \
    --min-series 4 --timeout 90 >"$tmp/result.json"

python3 - "$tmp/result.json" <<'EOF'
import json, math, sys
results = json.load(open(sys.argv[1]))["results"]
# Expected from the distribution above: bound_lo + width * (rank - below) / in_bucket.
expected = {
    "transcode":    {"p50": 20 + 10 * 5 / 8, "p95": 30 + 15 * 1.5 / 2, "p99": 30 + 15 * 1.9 / 2},
    "thumbnails":   {"p50": 2.5 + 2.5 * 0.5, "p95": 2.5 + 2.5 * 0.95, "p99": 2.5 + 2.5 * 0.99},
    "detect_faces": {"p50": 10 + 5 * 0.5, "p95": 10 + 5 * 0.95, "p99": 10 + 5 * 0.99},
    "publish":      {"p50": 7.5 + 2.5 * 0.5, "p95": 7.5 + 2.5 * 0.95, "p99": 7.5 + 2.5 * 0.99},
}
bad = []
for q in ("p50", "p95", "p99"):
    series = results[f"workflow_type_activity_type:swf_stage_duration_seconds:{q}"]
    got = {s["labels"]["activity_type"]: s["value"] for s in series}
    for stage, want in expected.items():
        value = got.get(stage)
        if value is None or not math.isclose(value, want[q], rel_tol=1e-9):
            bad.append(f"{stage} {q}: got {value}, want {want[q]}")
        if series and set(series[0]["labels"]) != {"workflow_type", "activity_type"}:
            bad.append(f"{q}: labels {sorted(series[0]['labels'])}")
if bad:
    print("FAIL: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
print("prometheus e2e: recording rules returned the expected stage quantiles for 4 stages")
EOF
