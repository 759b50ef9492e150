#!/usr/bin/env python3
"""Runs a real Prometheus against a metrics target and returns what the recording rules compute.

Lifecycle: start `prometheus` on a loopback port with a temporary config that scrapes TARGET every
second and loads our recording rules (their evaluation interval shortened to one second); wait
until Prometheus has scraped the target once; run the optional --run command (the workload: a
pipeline run) so that the counters grow while Prometheus watches, as rate() needs; wait until every
query returns enough finite series; print them as JSON on stdout; stop Prometheus. Every wait is
bounded by --timeout; Prometheus is stopped on every path out, and its log is printed on failure.

Usage:
  prometheus_e2e.py --target 127.0.0.1:9464 [--run 'CMD' | --ready-file PATH] [--min-series 4]
                    [--timeout 120] [--query EXPR ...] [--rules FILE ...] [--port N]

Instead of --run, a caller that drives the workload itself passes --ready-file, waits for that file
to appear (Prometheus has the baseline sample), runs the workload, then reads stdout.

A histogram series that is born with its final value has no increase for rate() to see: the
target must have observed each stage once (a warm-up execution) before Prometheus's first scrape,
and the measured workload must run after it.

Output (stdout), one JSON object:
  {"prometheus_url": "...", "target": "...",
   "results": {"<query>": [{"labels": {...}, "value": 26.25}, ...], ...}}
Exit status: 0 on success; 1 when a wait timed out, Prometheus failed, or --run failed.
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_QUERIES = [
    "workflow_type_activity_type:swf_stage_duration_seconds:p50",
    "workflow_type_activity_type:swf_stage_duration_seconds:p95",
    "workflow_type_activity_type:swf_stage_duration_seconds:p99",
]


class E2eError(Exception):
    pass


def log(msg):
    print(f"prometheus-e2e: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise E2eError(f"{path} answered {body}")
    return body["data"]


def wait_until(what, deadline, probe, proc, interval=0.5):
    """Calls probe() until it returns a truthy value; fails at the deadline or if Prometheus died."""
    last_err = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise E2eError(f"prometheus exited with {proc.returncode} while waiting for {what}")
        try:
            value = probe()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, OSError, E2eError, ValueError) as err:
            last_err = err
        time.sleep(interval)
    raise E2eError(f"timed out waiting for {what}" + (f" (last error: {last_err})" if last_err else ""))


def fast_rules(src, dst):
    """Copies a rules file with every group evaluated each second (tests cannot wait 30 s)."""
    with open(src, encoding="utf-8") as f:
        lines = f.readlines()
    with open(dst, "w", encoding="utf-8") as f:
        for line in lines:
            stripped = line.lstrip()
            if stripped.startswith("interval:"):
                line = line[: len(line) - len(stripped)] + "interval: 1s\n"
            f.write(line)


def query_results(base, query):
    data = api(base, "/api/v1/query", {"query": query})
    out = []
    for sample in data.get("result", []):
        value = float(sample["value"][1])
        labels = {k: v for k, v in sample["metric"].items() if k != "__name__"}
        out.append({"labels": labels, "value": value})
    return out


def run(args):
    prometheus = args.prometheus or shutil.which("prometheus")
    if not prometheus:
        raise E2eError("prometheus not found: run scripts/install-test-deps.sh")
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    work = tempfile.mkdtemp(prefix="swf-prometheus-e2e-")
    rule_files = []
    for i, src in enumerate(args.rules or [os.path.join(ROOT, "deploy/prometheus/rules/recording.yml")]):
        dst = os.path.join(work, f"rules-{i}.yml")
        fast_rules(src, dst)
        rule_files.append(dst)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": "swf-runtime",
                "metrics_path": args.metrics_path,
                "static_configs": [{"targets": [args.target]}],
            }
        ],
    }
    config_path = os.path.join(work, "prometheus.yml")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f)  # JSON is YAML.
    log_path = os.path.join(work, "prometheus.log")
    log_file = open(log_path, "w", encoding="utf-8")
    cmd = [
        prometheus,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={os.path.join(work, 'data')}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    log(f"starting {prometheus} on {base}, scraping {args.target}")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    ok = False
    try:
        wait_until("Prometheus to be ready", deadline, lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200, proc)

        def scraped():
            targets = api(base, "/api/v1/targets", {"state": "active"})["activeTargets"]
            return any(t.get("health") == "up" for t in targets)

        wait_until(f"a first successful scrape of {args.target}", deadline, scraped, proc)
        log("target scraped")
        if args.ready_file:
            # Tells a caller that runs the workload itself (a test) that it may start now.
            with open(args.ready_file, "w", encoding="utf-8") as f:
                f.write(base + "\n")
        if args.run:
            log(f"running: {args.run}")
            remaining = max(1.0, deadline - time.monotonic())
            try:
                done = subprocess.run(args.run, shell=True, timeout=remaining)
            except subprocess.TimeoutExpired:
                raise E2eError(f"--run command still running after {remaining:.0f} s")
            if done.returncode != 0:
                raise E2eError(f"--run command exited with {done.returncode}")

        def all_finite():
            results = {}
            for q in args.query or DEFAULT_QUERIES:
                series = [s for s in query_results(base, q) if math.isfinite(s["value"])]
                if len(series) < args.min_series:
                    return None
                results[q] = sorted(series, key=lambda s: sorted(s["labels"].items()))
            return results

        results = wait_until(f"at least {args.min_series} finite series per query", deadline, all_finite, proc)
        print(json.dumps({"prometheus_url": base, "target": args.target, "results": results}, indent=2, sort_keys=True))
        ok = True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log_file.close()
        if not ok:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-4000:]
            if tail.strip():
                log("prometheus log:\n" + tail)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def on_sigterm(_signum, _frame):
    # Turned into an exception so that run()'s `finally` stops Prometheus.
    raise E2eError("terminated by SIGTERM")


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port serving /metrics")
    parser.add_argument("--metrics-path", default="/metrics")
    parser.add_argument("--run", help="shell command run once the target has been scraped")
    parser.add_argument("--ready-file", help="file written (Prometheus URL) after the first scrape")
    parser.add_argument("--query", action="append", help="instant query to return (repeatable)")
    parser.add_argument("--rules", action="append", help="rules file to load (repeatable)")
    parser.add_argument("--min-series", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole run")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--prometheus", help="path of the prometheus binary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    try:
        run(args)
    except E2eError as err:
        log(f"FAIL: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
