//! Rebuilds an execution's mutable state from its stored history.
//!
//! Only events (plus an identity row and the last heartbeat of each started activity) are stored;
//! at start-up every execution is folded from its events here. The engine takes each event's
//! timestamp as "now" for the state change it records, so deadlines recomputed from event
//! timestamps are exactly the ones the running server had.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::Timeout;
use crate::state::*;

/// What no event says about an execution: where it lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub domain: String,
    pub workflow_id: String,
    pub run_id: String,
}

/// Events whose arrival during a started decision task calls for another decision task.
const NEEDS_DECISION: &[&str] = &[
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskCanceled",
    "ActivityTaskTimedOut",
    "TimerFired",
    "WorkflowExecutionSignaled",
    "WorkflowExecutionCancelRequested",
    "ChildWorkflowExecutionCompleted",
    "ChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTimedOut",
    "ChildWorkflowExecutionTerminated",
];

fn ms(ev: &Value) -> i64 {
    (ev["eventTimestamp"].as_f64().unwrap_or(0.0) * 1000.0).round() as i64
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn timeout(v: &Value) -> Timeout {
    match v.as_str() {
        Some(s) => s.parse().map(Timeout::Secs).unwrap_or(Timeout::Unlimited),
        None => Timeout::Unlimited,
    }
}

fn type_pair(v: &Value) -> (String, String) {
    (
        string(&v["name"]).unwrap_or_default(),
        string(&v["version"]).unwrap_or_default(),
    )
}

pub fn replay(id: Identity, events: Vec<String>) -> Result<Execution, String> {
    let mut parsed = Vec::with_capacity(events.len());
    for (i, text) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("run {} event {}: {e}", id.run_id, i + 1))?;
        parsed.push(v);
    }
    let first = parsed
        .first()
        .ok_or_else(|| format!("run {} has no events", id.run_id))?;
    if first["eventType"] != "WorkflowExecutionStarted" {
        return Err(format!(
            "run {} does not begin with WorkflowExecutionStarted",
            id.run_id
        ));
    }
    let a = &first["workflowExecutionStartedEventAttributes"];
    let parent = a["parentWorkflowExecution"]["runId"]
        .as_str()
        .map(|run| ParentRef {
            workflow_id: string(&a["parentWorkflowExecution"]["workflowId"]).unwrap_or_default(),
            run_id: run.to_string(),
            initiated_event_id: int(&a["parentInitiatedEventId"]),
        });
    let mut ex = Execution {
        domain: id.domain,
        workflow_id: id.workflow_id,
        run_id: id.run_id,
        workflow_type: type_pair(&a["workflowType"]),
        task_list: string(&a["taskList"]["name"]).unwrap_or_default(),
        task_priority: int(&a["taskPriority"]),
        exec_timeout: timeout(&a["executionStartToCloseTimeout"]),
        task_timeout: timeout(&a["taskStartToCloseTimeout"]),
        child_policy: string(&a["childPolicy"]).unwrap_or_else(|| "TERMINATE".into()),
        tag_list: a["tagList"]
            .as_array()
            .map(|t| t.iter().filter_map(string).collect())
            .unwrap_or_default(),
        lambda_role: string(&a["lambdaRole"]),
        start_ms: ms(first),
        close_ms: None,
        close_status: None,
        parent,
        cancel_requested: false,
        decision: DecisionState::Idle,
        followup: false,
        prev_started: 0,
        activities: Default::default(),
        timers: Default::default(),
        children: Default::default(),
        latest_activity_ms: None,
        latest_context: None,
        events,
    };
    for ev in &parsed[1..] {
        apply(&mut ex, ev);
    }
    Ok(ex)
}

fn apply(ex: &mut Execution, ev: &Value) {
    let kind = ev["eventType"].as_str().unwrap_or("");
    let id = int(&ev["eventId"]);
    let now = ms(ev);
    let mut key = kind.get(..1).unwrap_or("").to_ascii_lowercase();
    key.push_str(kind.get(1..).unwrap_or(""));
    key.push_str("EventAttributes");
    let a = &ev[key.as_str()];
    if NEEDS_DECISION.contains(&kind) && matches!(ex.decision, DecisionState::Started { .. }) {
        ex.followup = true;
    }
    match kind {
        "DecisionTaskScheduled" => ex.decision = DecisionState::Scheduled { scheduled_id: id },
        "DecisionTaskStarted" => {
            ex.decision = DecisionState::Started {
                scheduled_id: int(&a["scheduledEventId"]),
                started_id: id,
                deadline: ex.task_timeout.deadline(now),
            };
            ex.followup = false;
        }
        "DecisionTaskCompleted" => {
            ex.prev_started = int(&a["startedEventId"]);
            if let Some(c) = string(&a["executionContext"]) {
                ex.latest_context = Some(c);
            }
            ex.decision = DecisionState::Idle;
            ex.followup = false;
        }
        "DecisionTaskTimedOut" => {
            ex.decision = DecisionState::Idle;
            ex.followup = false;
        }
        "ActivityTaskScheduled" => {
            ex.activities.insert(
                id,
                Activity {
                    activity_id: string(&a["activityId"]).unwrap_or_default(),
                    activity_type: type_pair(&a["activityType"]),
                    input: string(&a["input"]),
                    task_list: string(&a["taskList"]["name"]).unwrap_or_default(),
                    priority: int(&a["taskPriority"]),
                    scheduled_ms: now,
                    schedule_to_start: timeout(&a["scheduleToStartTimeout"]),
                    schedule_to_close: timeout(&a["scheduleToCloseTimeout"]),
                    start_to_close: timeout(&a["startToCloseTimeout"]),
                    heartbeat: timeout(&a["heartbeatTimeout"]),
                    run: None,
                    cancel_requested_id: None,
                },
            );
        }
        "ActivityTaskStarted" => {
            if let Some(act) = ex.activities.get_mut(&int(&a["scheduledEventId"])) {
                act.run = Some(ActivityRun {
                    started_id: id,
                    started_ms: now,
                    heartbeat_ms: now,
                    details: None,
                });
            }
            ex.latest_activity_ms = Some(now);
        }
        "ActivityTaskCancelRequested" => {
            let activity_id = a["activityId"].as_str().unwrap_or("");
            if let Some(act) = ex
                .activities
                .values_mut()
                .find(|x| x.activity_id == activity_id)
            {
                act.cancel_requested_id = Some(id);
            }
        }
        "ActivityTaskCompleted"
        | "ActivityTaskFailed"
        | "ActivityTaskCanceled"
        | "ActivityTaskTimedOut" => {
            ex.activities.remove(&int(&a["scheduledEventId"]));
        }
        "TimerStarted" => {
            let secs = int(&a["startToFireTimeout"]).max(0);
            ex.timers.insert(
                string(&a["timerId"]).unwrap_or_default(),
                TimerState {
                    started_id: id,
                    fire_ms: now.saturating_add(secs.saturating_mul(1000)),
                },
            );
        }
        "TimerFired" | "TimerCanceled" => {
            ex.timers.remove(a["timerId"].as_str().unwrap_or(""));
        }
        "ChildWorkflowExecutionStarted" => {
            ex.children.insert(
                int(&a["initiatedEventId"]),
                Child {
                    workflow_id: string(&a["workflowExecution"]["workflowId"]).unwrap_or_default(),
                    run_id: string(&a["workflowExecution"]["runId"]).unwrap_or_default(),
                    workflow_type: type_pair(&a["workflowType"]),
                    started_id: id,
                },
            );
        }
        "ChildWorkflowExecutionCompleted"
        | "ChildWorkflowExecutionFailed"
        | "ChildWorkflowExecutionCanceled"
        | "ChildWorkflowExecutionTimedOut"
        | "ChildWorkflowExecutionTerminated" => {
            ex.children.remove(&int(&a["initiatedEventId"]));
        }
        "WorkflowExecutionCancelRequested" => ex.cancel_requested = true,
        "WorkflowExecutionCompleted" => close(ex, now, "COMPLETED"),
        "WorkflowExecutionFailed" => close(ex, now, "FAILED"),
        "WorkflowExecutionCanceled" => close(ex, now, "CANCELED"),
        "WorkflowExecutionTerminated" => close(ex, now, "TERMINATED"),
        "WorkflowExecutionTimedOut" => close(ex, now, "TIMED_OUT"),
        "WorkflowExecutionContinuedAsNew" => close(ex, now, "CONTINUED_AS_NEW"),
        _ => {}
    }
}

fn close(ex: &mut Execution, now: i64, status: &str) {
    ex.close_ms = Some(now);
    ex.close_status = Some(status.to_string());
    ex.decision = DecisionState::Idle;
    ex.followup = false;
    ex.activities.clear();
    ex.timers.clear();
    ex.children.clear();
}

/// Differences between live executions and their replay from history (heartbeat times and
/// details come from their own table, so they are taken from the live state). Empty when replay
/// reproduces the running server's state exactly.
pub fn mismatches(st: &State) -> Vec<String> {
    let mut out = Vec::new();
    for live in st.execs.values() {
        let id = Identity {
            domain: live.domain.clone(),
            workflow_id: live.workflow_id.clone(),
            run_id: live.run_id.clone(),
        };
        let mut rebuilt = match replay(id, live.events.clone()) {
            Ok(r) => r,
            Err(e) => {
                out.push(e);
                continue;
            }
        };
        for (sid, a) in &mut rebuilt.activities {
            if let (Some(r), Some(lr)) = (
                a.run.as_mut(),
                live.activities.get(sid).and_then(|l| l.run.as_ref()),
            ) {
                r.heartbeat_ms = lr.heartbeat_ms;
                r.details = lr.details.clone();
            }
        }
        // A continued child is re-pointed from the child's side on load.
        for (k, c) in &mut rebuilt.children {
            if let Some(lc) = live.children.get(k) {
                c.run_id = lc.run_id.clone();
            }
        }
        let (a, b) = (serde_json::to_value(live), serde_json::to_value(&rebuilt));
        if a.as_ref().ok() != b.as_ref().ok() {
            out.push(format!(
                "run {}: live {} != replayed {}",
                live.run_id,
                a.map(|v| v.to_string()).unwrap_or_default(),
                b.map(|v| v.to_string()).unwrap_or_default()
            ));
        }
    }
    out
}
