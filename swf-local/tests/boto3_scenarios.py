#!/usr/bin/env python3
"""Drive an SWF endpoint with boto3 (a client this project did not write) through the main scenario.

Usage: boto3_scenarios.py ENDPOINT_URL

Registers a domain and types, starts an execution, polls a decision task, schedules an activity,
polls and completes it, completes the workflow, reads the history back and checks it, then checks a
few faults. Exits non-zero on the first mismatch.
"""

import sys
import uuid

import boto3
import botocore.config
import botocore.exceptions


def check(cond, what):
    if not cond:
        print(f"MISMATCH: {what}", file=sys.stderr)
        sys.exit(1)


def error_code(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as err:
        return err.response["Error"]["Code"]
    return None


def poll(fn, **kwargs):
    # Long polls answer an empty token when nothing came; retry a bounded number of times.
    for _ in range(10):
        task = fn(**kwargs)
        if task.get("taskToken"):
            return task
    check(False, f"no task from {fn.__name__}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    swf = boto3.client(
        "swf",
        endpoint_url=sys.argv[1],
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=botocore.config.Config(read_timeout=75, retries={"max_attempts": 1}),
    )
    domain = f"boto3-{uuid.uuid4().hex[:8]}"
    swf.register_domain(name=domain, workflowExecutionRetentionPeriodInDays="1")
    check(error_code(swf.register_domain, name=domain, workflowExecutionRetentionPeriodInDays="1")
          == "DomainAlreadyExistsFault", "duplicate domain fault")
    swf.register_workflow_type(
        domain=domain, name="Pipeline", version="1",
        defaultTaskList={"name": "deciders"},
        defaultTaskStartToCloseTimeout="30",
        defaultExecutionStartToCloseTimeout="600",
        defaultChildPolicy="TERMINATE",
    )
    swf.register_activity_type(
        domain=domain, name="Transcode", version="1",
        defaultTaskList={"name": "workers"},
        defaultTaskScheduleToStartTimeout="60",
        defaultTaskScheduleToCloseTimeout="120",
        defaultTaskStartToCloseTimeout="60",
        defaultTaskHeartbeatTimeout="NONE",
    )
    types = swf.list_activity_types(domain=domain, registrationStatus="REGISTERED")["typeInfos"]
    check([t["activityType"]["name"] for t in types] == ["Transcode"], "activity type listed")

    run_id = swf.start_workflow_execution(
        domain=domain, workflowId="media-1234", workflowType={"name": "Pipeline", "version": "1"},
        input='{"media_uuid": "1234"}', tagList=["video"],
    )["runId"]
    check(error_code(swf.start_workflow_execution, domain=domain, workflowId="media-1234",
                     workflowType={"name": "Pipeline", "version": "1"})
          == "WorkflowExecutionAlreadyStartedFault", "duplicate workflow id fault")

    task = poll(swf.poll_for_decision_task, domain=domain, taskList={"name": "deciders"}, identity="py-decider")
    check(task["workflowExecution"]["runId"] == run_id, "decision task run id")
    check([e["eventType"] for e in task["events"]]
          == ["WorkflowExecutionStarted", "DecisionTaskScheduled", "DecisionTaskStarted"], "first decision events")
    started = task["events"][0]["workflowExecutionStartedEventAttributes"]
    check(started["input"] == '{"media_uuid": "1234"}', "workflow input")
    swf.respond_decision_task_completed(taskToken=task["taskToken"], decisions=[{
        "decisionType": "ScheduleActivityTask",
        "scheduleActivityTaskDecisionAttributes": {
            "activityType": {"name": "Transcode", "version": "1"},
            "activityId": "transcode-1",
            "input": "file.mov",
        },
    }])

    act = poll(swf.poll_for_activity_task, domain=domain, taskList={"name": "workers"}, identity="py-worker")
    check(act["activityId"] == "transcode-1" and act["input"] == "file.mov", "activity task content")
    beat = swf.record_activity_task_heartbeat(taskToken=act["taskToken"], details="50%")
    check(beat["cancelRequested"] is False, "heartbeat answer")
    swf.respond_activity_task_completed(taskToken=act["taskToken"], result="file.mp4")
    check(error_code(swf.respond_activity_task_completed, taskToken=act["taskToken"], result="again")
          == "UnknownResourceFault", "stale activity token fault")

    task = poll(swf.poll_for_decision_task, domain=domain, taskList={"name": "deciders"}, identity="py-decider")
    check(task["previousStartedEventId"] == 3, "previousStartedEventId")
    done = [e for e in task["events"] if e["eventType"] == "ActivityTaskCompleted"]
    check(len(done) == 1 and done[0]["activityTaskCompletedEventAttributes"]["result"] == "file.mp4",
          "activity result in decision task")
    swf.respond_decision_task_completed(taskToken=task["taskToken"], decisions=[{
        "decisionType": "CompleteWorkflowExecution",
        "completeWorkflowExecutionDecisionAttributes": {"result": "published"},
    }])

    history = swf.get_workflow_execution_history(
        domain=domain, execution={"workflowId": "media-1234", "runId": run_id})["events"]
    expected = [
        "WorkflowExecutionStarted", "DecisionTaskScheduled", "DecisionTaskStarted", "DecisionTaskCompleted",
        "ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted",
        "DecisionTaskScheduled", "DecisionTaskStarted", "DecisionTaskCompleted", "WorkflowExecutionCompleted",
    ]
    check([e["eventType"] for e in history] == expected, f"history {[e['eventType'] for e in history]}")
    check([e["eventId"] for e in history] == list(range(1, len(expected) + 1)), "event ids")
    check(history[-1]["workflowExecutionCompletedEventAttributes"]["result"] == "published", "workflow result")
    # boto3 turns epoch-second timestamps into datetimes.
    check(history[0]["eventTimestamp"].year >= 2024, "event timestamp")

    paged = swf.get_workflow_execution_history(
        domain=domain, execution={"workflowId": "media-1234", "runId": run_id}, maximumPageSize=5)
    check(len(paged["events"]) == 5 and "nextPageToken" in paged, "history paging")

    info = swf.describe_workflow_execution(
        domain=domain, execution={"workflowId": "media-1234", "runId": run_id})["executionInfo"]
    check(info["executionStatus"] == "CLOSED" and info["closeStatus"] == "COMPLETED", "describe execution")
    closed = swf.list_closed_workflow_executions(
        domain=domain, startTimeFilter={"oldestDate": 0}, tagFilter={"tag": "video"})["executionInfos"]
    check(len(closed) == 1, "closed execution listed by tag")
    count = swf.count_open_workflow_executions(domain=domain, startTimeFilter={"oldestDate": 0})
    check(count["count"] == 0, "no open executions")
    check(error_code(swf.describe_domain, name="no-such-domain") == "UnknownResourceFault", "unknown domain fault")

    # Cancel and terminate, which the third-party stand-in answers with HTTP 500.
    run2 = swf.start_workflow_execution(
        domain=domain, workflowId="media-5678", workflowType={"name": "Pipeline", "version": "1"})["runId"]
    swf.request_cancel_workflow_execution(domain=domain, workflowId="media-5678")
    swf.terminate_workflow_execution(domain=domain, workflowId="media-5678", reason="test over")
    events = swf.get_workflow_execution_history(
        domain=domain, execution={"workflowId": "media-5678", "runId": run2})["events"]
    check(events[-1]["eventType"] == "WorkflowExecutionTerminated", "terminated")
    check("WorkflowExecutionCancelRequested" in [e["eventType"] for e in events], "cancel requested")
    print("boto3 scenarios passed")


if __name__ == "__main__":
    main()
