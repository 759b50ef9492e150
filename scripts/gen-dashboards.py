#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/ from one description per panel.

Why a generator: three dashboards share their variables, datasource wiring and layout rules, and a
hand-edited 2,000-line JSON drifts. The generated JSON is committed (Grafana provisioning reads it
as is); `--check` fails when a committed file differs from what this script produces, so an edit
made in Grafana's UI and exported must be carried back here.

Usage: gen-dashboards.py [--check] [--out DIR]
"""

import argparse
import json
import os
import sys

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}


def var_datasource():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def var_query(name, label, query):
    """A multi-value variable filled from label values; 'All' matches everything with .*."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
    }


WORKFLOW_TYPE = var_query(
    "workflow_type", "Workflow type", "label_values(swf_workflow_executions_total, workflow_type)"
)
TASK_LIST = var_query("task_list", "Task list", "label_values(swf_polls_total, task_list)")
ACTIVITY_TYPE = var_query(
    "activity_type", "Activity type", "label_values(swf_stage_duration_seconds_count, activity_type)"
)
INSTANCE = var_query("instance", "Host", 'label_values(up{job="swf-runtime"}, instance)')


def target(expr, legend, ref, instant=False, fmt="time_series"):
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    if fmt != "time_series":
        t["format"] = fmt
    return t


def panel(kind, title, description, targets, unit="short", w=12, h=8, **extra):
    refs = "ABCDEFGH"
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [
            target(t[0], t[1], refs[i], *t[2:]) if isinstance(t, tuple) else t
            for i, t in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "_w": w,
        "_h": h,
    }
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
        p["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif kind == "stat":
        p["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value_and_name",
        }
    elif kind == "table":
        p["options"] = {"showHeader": True}
    for key, value in extra.items():
        if key == "thresholds":
            p["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}]
                + [{"color": c, "value": v} for v, c in value],
            }
        else:
            p[key] = value
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


def layout(items):
    """Places panels left to right, wrapping at Grafana's 24 columns; rows take a full line."""
    x = y = line_h = 0
    for pid, item in enumerate(items, start=1):
        w, h = item.pop("_w"), item.pop("_h")
        if item["type"] == "row" or x + w > 24:
            x, y, line_h = 0, y + line_h, 0
        item["id"] = pid
        item["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        line_h = max(line_h, h)
        if item["type"] == "row":
            x, y, line_h = 0, y + h, 0
    return items


def dashboard(uid, title, description, variables, items):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["swf-runtime"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["swf-runtime"],
                "asDropdown": True,
                "title": "swf-runtime",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [var_datasource()] + variables},
        "panels": layout(items),
    }


WF = 'workflow_type=~"$workflow_type"'
AT = 'activity_type=~"$activity_type"'
TL = 'task_list=~"$task_list"'
INST = 'instance=~"$instance"'
CLOSED = 'outcome=~"completed|failed|timed_out|canceled"'


def quantiles(metric, by, matchers, legend):
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{matchers}}}[$__rate_interval])))",
            f"p{int(q * 100)} {legend}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def pipeline_overview():
    items = [
        row("Executions"),
        panel(
            "stat",
            "Executions by outcome",
            "Workflow executions started by the runtimes and closed by their deciders over the "
            "dashboard's time range, by outcome. `started` minus the closing outcomes is what is "
            "still open. If failed or timed_out grow, open the Failures row below to see which stage "
            "and error type; if started grows but nothing closes, check the decider backlog.",
            [(f"sum by (outcome) (increase(swf_workflow_executions_total{{{WF}}}[$__range]))", "{{outcome}}", True)],
            w=8,
        ),
        panel(
            "timeseries",
            "Executions per minute by outcome",
            "Executions started and closed per minute, by workflow type and outcome. A gap between "
            "started and completed that keeps widening means work is piling up: compare with the "
            "backlog panels. A drop to zero of started means uploads stopped reaching the pipeline.",
            [
                (
                    f"sum by (workflow_type, outcome) (rate(swf_workflow_executions_total{{{WF}}}[$__rate_interval])) * 60",
                    "{{workflow_type}} {{outcome}}",
                )
            ],
            unit="short",
            w=8,
        ),
        panel(
            "timeseries",
            "Failure ratio of closed executions",
            "Share of closed executions that failed or timed out, per workflow type. The "
            "SwfWorkflowFailureRateHigh alert fires above 5%. When it rises, find the failing stage "
            "in 'Stage retries by reason' and search the logs for `outcome:failed` of that workflow "
            "type.",
            [
                (
                    f'sum by (workflow_type) (rate(swf_workflow_executions_total{{{WF}, outcome=~"failed|timed_out"}}[$__rate_interval])) '
                    f"/ sum by (workflow_type) (rate(swf_workflow_executions_total{{{WF}, {CLOSED}}}[$__rate_interval]))",
                    "{{workflow_type}}",
                )
            ],
            unit="percentunit",
            w=8,
            thresholds=[(0.05, "red")],
        ),
        panel(
            "timeseries",
            "End-to-end latency of completed executions (p50, p95, p99)",
            "Time from an execution's start to its completion, as the closing decider saw it. For "
            "VideoProcessing it should sit a little above the critical path (transcode, the slower "
            "of thumbnails and detect_faces, then publish). If it grows while stage latencies do "
            "not, time is lost between stages: look at decision and schedule-to-start latency.",
            quantiles("swf_workflow_end_to_end_seconds", "workflow_type", f'{WF}, outcome="completed"', "{{workflow_type}}"),
            unit="s",
            w=24,
        ),
        row("Stages"),
        panel(
            "timeseries",
            "Stage latency p95 per stage",
            "95th percentile of each stage's duration from first scheduling to final close, retries "
            "and backoff included (recording rule over 5 minutes). Alert thresholds: transcode 45 s, "
            "thumbnails 10 s, detect_faces 20 s, publish 15 s. A stage over its line: check its "
            "retries and timeouts below, then the schedule-to-start latency of its task list.",
            [
                (
                    f"workflow_type_activity_type:swf_stage_duration_seconds:p95{{{WF}, {AT}}}",
                    "{{workflow_type}} {{activity_type}}",
                )
            ],
            unit="s",
            w=12,
        ),
        panel(
            "table",
            "Stage latency p50 / p95 / p99",
            "The three stage-latency quantiles side by side, now. p99 far above p95 means a few "
            "stages are very slow (a slow host, retries): look for the same activity type in "
            "'Activity tasks failed, timed out or canceled'. Empty cells: no stage of that type "
            "closed in the last 5 minutes.",
            [
                (f"workflow_type_activity_type:swf_stage_duration_seconds:p50{{{WF}, {AT}}}", "p50", True, "table"),
                (f"workflow_type_activity_type:swf_stage_duration_seconds:p95{{{WF}, {AT}}}", "p95", True, "table"),
                (f"workflow_type_activity_type:swf_stage_duration_seconds:p99{{{WF}, {AT}}}", "p99", True, "table"),
            ],
            unit="s",
            w=12,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value #A": "p50", "Value #B": "p95", "Value #C": "p99"},
                    },
                },
            ],
        ),
        panel(
            "timeseries",
            "VideoProcessing critical path p95 against end-to-end p95",
            "The critical path is transcode, then the slower of thumbnails and detect_faces (they "
            "run in parallel), then publish; its p95 is estimated as the sum of those stages' p95s. "
            "End-to-end p95 above it is time spent outside stages (deciding, waiting for a worker). "
            "A growing gap: check decision schedule-to-start latency and the deciders.",
            [
                (
                    'sum by (workflow_type) (workflow_type_activity_type:swf_stage_duration_seconds:p95{workflow_type="VideoProcessing", activity_type=~"transcode|publish"}) '
                    '+ on (workflow_type) max by (workflow_type) (workflow_type_activity_type:swf_stage_duration_seconds:p95{workflow_type="VideoProcessing", activity_type=~"thumbnails|detect_faces"})',
                    "critical path p95",
                ),
                (
                    'histogram_quantile(0.95, sum by (le, workflow_type) (rate(swf_workflow_end_to_end_seconds_bucket{workflow_type="VideoProcessing", outcome="completed"}[$__rate_interval])))',
                    "end-to-end p95",
                ),
            ],
            unit="s",
            w=12,
        ),
        panel(
            "timeseries",
            "Stage retries by reason",
            "Stage attempts scheduled again after a failure or a timeout, per minute, by stage and "
            "reason (error_type; timeouts are `timeout_<kind>`). Heartbeat and start-to-close "
            "timeouts mean workers died or overran; handler errors point to the media or the code: "
            "search the logs for the activity type with `outcome:failed`.",
            [
                (
                    f"sum by (workflow_type, activity_type, error_type) (rate(swf_stage_retries_total{{{WF}, {AT}}}[$__rate_interval])) * 60",
                    "{{activity_type}} {{error_type}}",
                )
            ],
            w=12,
        ),
        row("Backlog"),
        panel(
            "timeseries",
            "Activity schedule-to-start latency p95",
            "How long activity tasks wait on their task list before a worker takes them. It should "
            "stay near zero (a free slot is always polling). Above a minute for long, the "
            "SwfScheduleToStartBacklog alert fires: add hosts or slots for that task list, or look "
            "for hosts that stopped polling on the Workers and hosts dashboard.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, task_list, activity_type) (rate(swf_activity_schedule_to_start_seconds_bucket{{{TL}, {AT}}}[$__rate_interval])))",
                    "{{task_list}} {{activity_type}}",
                )
            ],
            unit="s",
            w=8,
        ),
        panel(
            "timeseries",
            "Decision schedule-to-start latency p95",
            "How long decision tasks wait before a decider takes them. Every step of every "
            "execution waits on a decision, so this should stay under a second. If it grows, "
            "deciders are down, too few, or slow: check decision execution time on the Workers and "
            "hosts dashboard.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, workflow_type, task_list) (rate(swf_decision_schedule_to_start_seconds_bucket{{{WF}}}[$__rate_interval])))",
                    "{{workflow_type}} {{task_list}}",
                )
            ],
            unit="s",
            w=8,
        ),
        panel(
            "timeseries",
            "Pending tasks per task list",
            "Tasks waiting on each task list, as sampled by the runtimes (CountPending*Tasks; the "
            "highest sample wins since every host sees the same list). A count that keeps growing "
            "means workers are too few or down for that list; the manual face-recognition list "
            "grows while people are away, which is expected.",
            [(f"max by (task_list) (swf_task_list_pending_tasks{{{TL}}})", "{{task_list}}")],
            w=8,
        ),
        row("Failures and timeouts"),
        panel(
            "timeseries",
            "Activity tasks failed, timed out or canceled",
            "Activity tasks that did not complete, per minute, by stage and outcome, as the workers "
            "saw them. A worker that died cannot count its own task: compare with 'Stage retries by "
            "reason', which the decider counts. For failures, search the logs for the activity type "
            "and `outcome:failed` to read the error.",
            [
                (
                    f'sum by (activity_type, outcome) (rate(swf_activity_tasks_total{{{AT}, {TL}, outcome=~"failed|timed_out|canceled"}}[$__rate_interval])) * 60',
                    "{{activity_type}} {{outcome}}",
                )
            ],
            w=12,
        ),
        panel(
            "table",
            "Stages closed without completing, by outcome",
            "How many stages ended failed, timed out or canceled over the time range, after all "
            "their retries. Each one failed its execution or left it to the workflow's own policy. "
            "Search the logs for the stage's activity type with that outcome to find the media "
            "affected (media_uuid is in the logs, never in metrics).",
            [
                (
                    f'sum by (workflow_type, activity_type, outcome) (increase(swf_stage_duration_seconds_count{{{WF}, {AT}, outcome!="completed"}}[$__range]))',
                    "",
                    True,
                    "table",
                )
            ],
            w=12,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        ),
        panel(
            "timeseries",
            "Activity schedule-to-close p95 by outcome",
            "Time from an activity task being scheduled to its final response (queueing plus "
            "execution of one attempt), per activity type and outcome. Much above the execution "
            "time next to it means tasks wait for workers: see the Backlog row.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, activity_type, outcome) (rate(swf_activity_end_to_end_seconds_bucket{{{AT}, {TL}}}[$__rate_interval])))",
                    "{{activity_type}} {{outcome}}",
                )
            ],
            unit="s",
            w=12,
        ),
        panel(
            "timeseries",
            "Activity execution time p95 by outcome",
            "How long handlers ran (start-to-close) per activity type and outcome. Compared with "
            "stage latency it separates slow work from slow queues and retries: if this is normal "
            "but stage latency is high, the time is spent waiting or retrying.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, activity_type, outcome) (rate(swf_activity_execution_seconds_bucket{{{AT}, {TL}}}[$__rate_interval])))",
                    "{{activity_type}} {{outcome}}",
                )
            ],
            unit="s",
            w=12,
        ),
    ]
    return dashboard(
        "swf-pipeline-overview",
        "swf-runtime / Pipeline overview",
        "Executions, stage latency, backlog and failures of the media pipeline on Amazon SWF.",
        [WORKFLOW_TYPE, TASK_LIST, ACTIVITY_TYPE],
        items,
    )


def workers_and_hosts():
    items = [
        row("Slots"),
        panel(
            "timeseries",
            "Slots in use per host and task list",
            "Activity slots running a task, per host and task list. A host at its configured slot "
            "count all the time is saturated: if schedule-to-start latency grows too, add slots "
            "([workers] task_lists in the config) or hosts.",
            [(f"sum by (instance, task_list) (swf_worker_slots_in_use{{{TL}, {INST}}})", "{{instance}} {{task_list}}")],
            w=8,
        ),
        panel(
            "timeseries",
            "Slots free per host and task list",
            "Activity slots free to take a task; each free slot keeps one long poll open. Free "
            "slots with a growing backlog mean polls are not getting tasks: check poll errors and "
            "SWF API errors below, and that the host polls the right domain and task list.",
            [(f"sum by (instance, task_list) (swf_worker_slots_free{{{TL}, {INST}}})", "{{instance}} {{task_list}}")],
            w=8,
        ),
        panel(
            "timeseries",
            "Slot utilisation per task list",
            "Share of all slots of a task list, across hosts, that run a task. Sustained above 90% "
            "the fleet is at capacity for that list: scale out before the backlog alerts fire.",
            [
                (
                    f"sum by (task_list) (swf_worker_slots_in_use{{{TL}, {INST}}}) / "
                    f"(sum by (task_list) (swf_worker_slots_in_use{{{TL}, {INST}}}) + sum by (task_list) (swf_worker_slots_free{{{TL}, {INST}}}))",
                    "{{task_list}}",
                )
            ],
            unit="percentunit",
            w=8,
            thresholds=[(0.9, "orange")],
        ),
        panel(
            "stat",
            "Hosts draining",
            "1 for a host that received SIGTERM and is finishing its in-flight tasks before "
            "exiting (it polls no more). Normal during a deploy for up to the drain timeout; a host "
            "draining for longer is stuck on a task: systemd kills it at TimeoutStopSec and SWF "
            "times the task out.",
            [(f"max by (instance) (swf_worker_draining{{{INST}}})", "{{instance}}", True)],
            w=12,
            thresholds=[(1, "orange")],
        ),
        panel(
            "stat",
            "Runtimes up",
            "Whether Prometheus can scrape each runtime (1 up, 0 down). A 0 fires SwfRuntimeDown "
            "after 5 minutes: check the host, `systemctl status swf-runtime` and its journal.",
            [(f'up{{job="swf-runtime", {INST}}}', "{{instance}}", True)],
            w=12,
            thresholds=[(0, "red"), (1, "green")],
        ),
        row("Polls"),
        panel(
            "timeseries",
            "Polls per second by outcome",
            "Long polls answered per task list: `task` brought work, `empty` timed out after up to "
            "60 s with none (normal when idle), `error` failed. Only errors: the endpoint, "
            "credentials or domain are wrong; see SWF API errors. No polls at all on a list fires "
            "SwfNoSuccessfulPolls.",
            [(f"sum by (task_list, outcome) (rate(swf_polls_total{{{TL}, {INST}}}[$__rate_interval]))", "{{task_list}} {{outcome}}")],
            unit="reqps",
            w=12,
        ),
        panel(
            "timeseries",
            "Successful polls per host",
            "Polls that returned (with or without a task) per host and task list. A host missing "
            "here while it is up has stopped polling: it is draining, or its pollers are stuck; "
            "read its journal.",
            [
                (
                    f'sum by (instance, task_list) (rate(swf_polls_total{{{TL}, {INST}, outcome=~"task|empty"}}[$__rate_interval]))',
                    "{{instance}} {{task_list}}",
                )
            ],
            unit="reqps",
            w=12,
        ),
        row("SWF API"),
        panel(
            "timeseries",
            "SWF API errors by operation and type",
            "Failed SWF calls per second. `throttled` and `limit_exceeded`: too many calls for the "
            "account's quota (see throttles); `transport`: the endpoint is unreachable; "
            "`unknown_resource`: tasks answered after their timeout; `validation`: a bug or bad "
            "input, read the error in the logs.",
            [(f"sum by (operation, error_type) (rate(swf_api_errors_total{{{INST}}}[$__rate_interval]))", "{{operation}} {{error_type}}")],
            unit="reqps",
            w=12,
        ),
        panel(
            "timeseries",
            "SWF API throttles by operation",
            "Calls Amazon SWF refused for throttling; the runtime retries them with backoff, so "
            "work slows down rather than fails. Persistent throttling: lower the number of slots "
            "or pollers, or ask AWS for a higher quota for the operation shown.",
            [(f"sum by (operation) (rate(swf_api_throttles_total{{{INST}}}[$__rate_interval]))", "{{operation}}")],
            unit="reqps",
            w=12,
        ),
        panel(
            "timeseries",
            "SWF API calls by operation and outcome",
            "Every SWF call per second, by operation and outcome (ok, error). Useful to see the "
            "load each host puts on SWF and which operation fails when errors rise.",
            [(f"sum by (operation, outcome) (rate(swf_api_calls_total{{{INST}}}[$__rate_interval]))", "{{operation}} {{outcome}}")],
            unit="reqps",
            w=12,
        ),
        panel(
            "timeseries",
            "SWF API latency p99 (polls excluded)",
            "99th percentile latency of SWF calls other than long polls (which hold up to 60 s by "
            "design). Above a second the endpoint or the network is slow: every response, "
            "heartbeat and decision waits on it.",
            [
                (
                    f'histogram_quantile(0.99, sum by (le, operation) (rate(swf_api_call_duration_seconds_bucket{{{INST}, operation!~"PollFor.*"}}[$__rate_interval])))',
                    "{{operation}}",
                )
            ],
            unit="s",
            w=12,
        ),
        row("Task health"),
        panel(
            "timeseries",
            "Heartbeat failures by error type",
            "Heartbeats that failed, per activity type and reason. `unknown_resource` means SWF "
            "had already timed the task out; `transport` or `throttled` put running tasks at risk "
            "of a heartbeat timeout. Compare with heartbeats sent.",
            [
                (
                    f"sum by (activity_type, error_type) (rate(swf_activity_heartbeat_failures_total{{{AT}, {TL}, {INST}}}[$__rate_interval]))",
                    "{{activity_type}} {{error_type}}",
                )
            ],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Heartbeats sent",
            "Heartbeats sent per second per activity type. It should follow the number of running "
            "tasks; a drop while tasks run means handlers stopped heartbeating and will time out.",
            [(f"sum by (activity_type) (rate(swf_activity_heartbeats_total{{{AT}, {TL}, {INST}}}[$__rate_interval]))", "{{activity_type}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "UnknownResource faults (tasks abandoned)",
            "Tasks a worker abandoned because SWF answered UnknownResourceFault: the task had "
            "already timed out or been closed, so its work was wasted and the decider retried it. "
            "Steady faults: the handler outruns its start-to-close timeout or heartbeats too "
            "rarely; raise the timeout in [stages.<name>] or heartbeat more often.",
            [
                (
                    f"sum by (instance, activity_type) (increase(swf_activity_unknown_resource_total{{{AT}, {TL}, {INST}}}[$__rate_interval]))",
                    "{{instance}} {{activity_type}}",
                )
            ],
            w=8,
        ),
        panel(
            "timeseries",
            "Decision task execution p95",
            "Time a decider spends on one decision task: fetching every history page, replaying "
            "and answering. Long histories cost more pages; above a few seconds check the history "
            "pages rate and the SWF API latency.",
            [
                (
                    f"histogram_quantile(0.95, sum by (le, workflow_type) (rate(swf_decision_execution_seconds_bucket{{{WF}, {INST}}}[$__rate_interval])))",
                    "{{workflow_type}}",
                )
            ],
            unit="s",
            w=8,
        ),
        panel(
            "timeseries",
            "History pages fetched",
            "History pages deciders fetch per second. Many pages per decision means long "
            "histories: a looping workflow should continue as new before 25,000 events.",
            [(f"sum by (workflow_type) (rate(swf_decision_history_pages_total{{{WF}, {INST}}}[$__rate_interval]))", "{{workflow_type}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Decisions by type",
            "Decisions returned to SWF per second, by type. Many StartTimer decisions are retry "
            "backoffs; FailWorkflowExecution means executions give up: see the pipeline overview.",
            [(f"sum by (decision_type) (rate(swf_decisions_total{{{WF}, {INST}}}[$__rate_interval]))", "{{decision_type}}")],
            unit="reqps",
            w=8,
        ),
    ]
    return dashboard(
        "swf-workers-and-hosts",
        "swf-runtime / Workers and hosts",
        "Slots, polls, SWF API health, heartbeats and drains of every swf-runtime host.",
        [WORKFLOW_TYPE, TASK_LIST, ACTIVITY_TYPE, INSTANCE],
        items,
    )


def telemetry_health():
    items = [
        row("Logs"),
        panel(
            "timeseries",
            "Log lines shipped to Logstash",
            "Log lines delivered to Logstash per second per host. It should follow the work; a host "
            "that drops to zero while it works cannot reach Logstash: its lines go to the spool "
            "(next panel).",
            [(f"sum by (instance) (rate(swf_log_lines_shipped_total{{{INST}}}[$__rate_interval]))", "{{instance}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Log lines spooled on disk",
            "Log lines written to the on-disk spool because Logstash was unreachable; they are sent "
            "in order when it returns. Spooling for 15 minutes fires SwfLogstashUnreachable: check "
            "Logstash and the network path to telemetry.logstash_addr.",
            [(f"sum by (instance) (rate(swf_log_lines_spooled_total{{{INST}}}[$__rate_interval]))", "{{instance}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Log lines dropped",
            "Log lines dropped because the spool was full. Anything above zero fires "
            "SwfLogLinesDropped: those lines are only in the host's local log files. Bring "
            "Logstash back, or raise telemetry.logstash_spool_max_bytes if outages are expected.",
            [(f"sum by (instance) (increase(swf_log_lines_dropped_total{{{INST}}}[$__rate_interval]))", "{{instance}}")],
            w=8,
            thresholds=[(1, "red")],
        ),
        panel(
            "stat",
            "Log lines dropped in range",
            "Total log lines dropped over the dashboard's time range, all hosts. Should be 0.",
            [(f"sum(increase(swf_log_lines_dropped_total{{{INST}}}[$__range]))", "dropped", True)],
            w=12,
            thresholds=[(1, "red")],
        ),
        panel(
            "stat",
            "Log lines spooled in range",
            "Total log lines that went through the spool over the time range. Non-zero means "
            "Logstash was away for a while; as long as nothing was dropped, nothing was lost.",
            [(f"sum(increase(swf_log_lines_spooled_total{{{INST}}}[$__range]))", "spooled", True)],
            w=12,
            thresholds=[(1, "orange")],
        ),
        row("Traces"),
        panel(
            "timeseries",
            "Spans exported",
            "Spans exported over OTLP per second per host. Zero while the host works means tracing "
            "is off (no telemetry.otlp_endpoint) or the exporter is stuck.",
            [(f"sum by (instance) (rate(swf_spans_exported_total{{{INST}}}[$__rate_interval]))", "{{instance}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Spans dropped",
            "Spans dropped because the OTLP collector failed or the export queue was full. Traces "
            "get holes; work is not affected. Check the collector (deploy/otel-collector.yaml) and "
            "telemetry.otlp_endpoint.",
            [(f"sum by (instance) (rate(swf_spans_dropped_total{{{INST}}}[$__rate_interval]))", "{{instance}}")],
            unit="reqps",
            w=8,
        ),
        panel(
            "timeseries",
            "Span drop ratio",
            "Share of spans dropped among spans exported or dropped. A few percent during a "
            "collector restart is fine; sustained, the collector is undersized or down.",
            [
                (
                    f"sum by (instance) (rate(swf_spans_dropped_total{{{INST}}}[$__rate_interval])) / "
                    f"(sum by (instance) (rate(swf_spans_exported_total{{{INST}}}[$__rate_interval])) + sum by (instance) (rate(swf_spans_dropped_total{{{INST}}}[$__rate_interval])))",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
            w=8,
            thresholds=[(0.05, "orange")],
        ),
        row("Metrics"),
        panel(
            "timeseries",
            "Runtimes scraped",
            "Whether Prometheus scrapes each runtime's /metrics (1) or not (0). Every panel of "
            "these dashboards is blind for a host at 0: check that telemetry.metrics_addr listens "
            "on an address Prometheus reaches.",
            [(f'up{{job="swf-runtime", {INST}}}', "{{instance}}")],
            w=24,
        ),
    ]
    return dashboard(
        "swf-telemetry-health",
        "swf-runtime / Telemetry health",
        "Whether the runtimes' logs, traces and metrics reach Logstash, the OTLP collector and Prometheus.",
        [INSTANCE],
        items,
    )


DASHBOARDS = {
    "pipeline-overview.json": pipeline_overview,
    "workers-and-hosts.json": workers_and_hosts,
    "telemetry-health.json": telemetry_health,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed dashboard differs")
    parser.add_argument("--out", default=os.path.join(here, "..", "dashboards"))
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(args.out, name)
        text = render(build)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(path)
            except FileNotFoundError:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("dashboards differ from scripts/gen-dashboards.py: " + ", ".join(stale), file=sys.stderr)
        print("run scripts/gen-dashboards.py and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
