#!/usr/bin/env python3
"""Splits a profile of one `bench --telemetry compare` run by slice: CPU per execution in the
"on" and the "off" slices, by part of the process (telemetry's own code, its threads, the AWS
client, hyper, swf-local, tokio, ...), so the cost can be attributed inside one run instead of
across runs on a machine whose speed moves.

Usage (a frame-pointer build, so that `perf` sees whole stacks):
  RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target-fp cargo build --release -p swf-runtime
  perf record -g -F 1999 -o cmp.data -- target-fp/release/swf-runtime --config full.toml \
      bench --workflows 16000 --concurrency 200 --slots 256 --telemetry compare --slices 32 --json \
      | tail -1 > cmp.json
  perf script -i cmp.data > cmp.txt
  python3 runtime/benches/perf_slices.py cmp.txt cmp.json

Slice boundaries: the measured slices follow one warm-up slice each way (on, then off), and only
"on" slices have samples in the JSON log layer; the first measured slice starts where those
samples resume after the warm-up "off" slice, and each slice lasts its reported wall time.
"""
import bisect
import collections
import json
import re
import sys

# A sample is telemetry's own work when any of these is on its stack (the `Instrumented` future
# wrapper is left out: every instrumented future has it, with telemetry on or off).
TELEMETRY = re.compile(
    r"swf_runtime::telemetry|tracing_subscriber|tracing_opentelemetry|opentelemetry"
    r"|metrics_exporter|metrics_util|sharded_slab|tracing_core::dispatcher|tracing_core::span"
    r"|tracing::span::Span::|tracing::span::Entered|tracing_core::callsite|::Layered<"
)
PARTS = [
    ("swf-local", re.compile(r"swf_local::")),
    ("aws client", re.compile(r"aws_smithy|aws_sdk|aws_runtime|aws_sigv4|aws_config")),
    ("hyper/axum", re.compile(r"hyper|h2::|axum|tower")),
    ("tokio", re.compile(r"tokio::")),
]
RUNTIME_THREADS = ("tokio-rt-worker", "swf-runtime")
HEADER = re.compile(r"(\S.*?)\s+\d+\s+([\d.]+):")


def samples(path):
    """(time, thread name, frames) per sample of `perf script` output."""
    with open(path, errors="replace") as f:
        head, frames = None, []
        for line in f:
            if not line.strip():
                if head:
                    yield float(head.group(2)), head.group(1), frames
                head, frames = None, []
            elif head is None:
                head = HEADER.match(line)
            else:
                frames.append(line.strip())
        if head:
            yield float(head.group(2)), head.group(1), frames


def part(thread, frames):
    if thread not in RUNTIME_THREADS:
        return "thread " + thread
    frames = [f for f in frames if "Instrumented" not in f]
    if any(TELEMETRY.search(f) for f in frames):
        return "telemetry (own code)"
    for name, pattern in PARTS:
        if any(pattern.search(f) for f in frames):
            return name
    return "other"


def main(perf_txt, report_json):
    report = json.load(open(report_json))
    slices = report["compare"]["slice_figures"]
    all_samples = list(samples(perf_txt))
    json_times = sorted(t for t, _, fr in all_samples if any("JsonLogLayer" in f for f in fr))
    gaps = [b for a, b in zip(json_times, json_times[1:]) if b - a > 0.15]
    if not gaps:
        sys.exit("no pause in the JSON layer's samples: is this a compare run with logs on?")
    starts, ends, on = [], [], []
    t = gaps[0]
    for s in slices:
        starts.append(t)
        ends.append(t + s["wall_secs"])
        on.append(s["telemetry"])
        t += s["wall_secs"]
    per = {True: collections.Counter(), False: collections.Counter()}
    for t, thread, frames in all_samples:
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < ends[i]:
            per[on[i]][part(thread, frames)] += 1
    executions = {side: sum(s["executions"] for s in slices if s["telemetry"] == side) for side in (True, False)}
    rate = {side: {k: v / executions[side] for k, v in per[side].items()} for side in per}
    total = {side: sum(rate[side].values()) for side in rate}
    print(f"samples per execution: on {total[True]:.3f}, off {total[False]:.3f}: "
          f"{100 * (total[True] / total[False] - 1):+.1f}%")
    keys = sorted(set(rate[True]) | set(rate[False]), key=lambda k: rate[False].get(k, 0) - rate[True].get(k, 0))
    for k in keys:
        a, b = rate[True].get(k, 0.0), rate[False].get(k, 0.0)
        print(f"  {k:28} on {a:.4f} off {b:.4f}  {100 * (a - b) / total[False]:+.1f}% of off")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
