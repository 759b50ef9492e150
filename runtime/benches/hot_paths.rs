//! Criterion micro-benchmarks of the runtime's hot paths (`cargo bench -p swf-runtime --bench
//! hot_paths`): what every decision task and every activity task costs the runtime itself,
//! SWF's round trips left out.
//!
//! - `decision_page`: one 1,000-event PollForDecisionTask page decoded from SWF's JSON into the
//!   model, and 1,000 `aws-sdk-swf` events converted with `HistoryEvent::from_aws`.
//! - `replay`: `WorkflowHistory::new` + `DagWorkflow::decide` on VideoProcessing histories of
//!   1,000 and 25,000 events (SWF's limit); the target is 25,000 events under 20 ms.
//! - `json_log_line`: the closing line of an activity task, with every task field, rendered by the
//!   runtime's JSON log layer into a sink that discards it.
//! - `metrics`: the counters, gauges and histograms one completed activity task records, into a
//!   real Prometheus recorder.
//!
//! Lifecycle: every input is generated once, before its group runs, and checked against the code
//! it feeds (the history is what the decider itself decides, the page decodes to the generated
//! events, the log line carries every field, the metrics reach the recorder), so a benchmark
//! never times a path that silently does nothing. `cargo test -p swf-runtime --bench hot_paths`
//! runs those checks and each benchmark once, in a debug build, in seconds.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_swf::types as aws;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use serde::Deserialize;
use serde_json::{json, Value};
use swf_runtime::decider::dag::attempt_control;
use swf_runtime::decider::{
    ActivityTimeouts, DagWorkflow, RetryPolicy, SignalAction, Stage, Workflow, WorkflowHistory,
};
use swf_runtime::envelope::{Envelope, TaskContext};
use swf_runtime::swf::model::*;
use swf_runtime::swf::{DecisionTaskPage, TypeRef, WorkflowExecution};
use swf_runtime::telemetry::metrics::{self as m, labels};
use swf_runtime::telemetry::{fields, JsonLogLayer, LineSink};
use swf_runtime::worker::events::{PollAnswered, SlotsChanged, TaskFinished, TaskOutcome};
use swf_runtime::worker::TaskInfo;
use tracing_subscriber::layer::SubscriberExt;

const WORKFLOW_ID: &str = "5a1c0c3e-9b7d-4e21-8f00-6d2a51c0ffee";
const RUN_ID: &str = "22ykmE4G3lLdNWpIu1Ts9aHDm3rQxcJ9c0b+fxo1ZoVZk=";
const USER_UUID: &str = "77e0d4b2-1c3a-4f5e-9a8b-0c1d2e3f4a5b";
const WORKFLOW_TYPE: &str = "VideoProcessing";
const DECIDER_TASK_LIST: &str = "VideoProcessingDecider";
const MEDIA_TASK_LIST: &str = "media";
/// The stage that keeps missing its heartbeat and is retried, so the history grows.
const LOOPING_STAGE: &str = "detect_faces";

fn tref(name: &str, version: &str) -> TypeRef {
    TypeRef {
        name: name.into(),
        version: version.into(),
    }
}

/// Each stage's activity timeouts; the workflow definition and the generated history share them.
fn stage_timeouts(stage: &str) -> ActivityTimeouts {
    let (s2s, s2c, st2c, hb) = match stage {
        "transcode" => (300, 7200, 3600, Some(60)),
        "thumbnails" => (300, 1800, 900, Some(60)),
        "detect_faces" => (300, 3600, 1800, Some(120)),
        "publish" => (300, 600, 300, None),
        other => panic!("no stage {other}"),
    };
    ActivityTimeouts {
        schedule_to_start_secs: Some(s2s),
        schedule_to_close_secs: Some(s2c),
        start_to_close_secs: Some(st2c),
        heartbeat_secs: hb,
    }
}

fn timeout_string(secs: Option<u64>) -> String {
    secs.map_or_else(|| "NONE".into(), |s| s.to_string())
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_secs: 5,
        max_backoff_secs: 60,
        backoff_coefficient: 2.0,
        non_retryable_reasons: vec!["InvalidMedia".into()],
    }
}

/// transcode -> thumbnails + detect_faces -> publish, as the media pipeline declares it. The
/// history-length threshold for ContinueAsNew is lifted so a run can reach SWF's 25,000-event
/// limit: the benchmark measures replay at that length, not the early hand-over.
fn video_processing() -> DagWorkflow {
    let stage =
        |name: &str| Stage::activity(name, tref(name, "1"), MEDIA_TASK_LIST, stage_timeouts(name));
    DagWorkflow::builder(tref(WORKFLOW_TYPE, "1.0.2"))
        .stage(stage("transcode").retry(retry(3)))
        .stage(stage("thumbnails").after(["transcode"]).retry(retry(3)))
        .stage(
            stage(LOOPING_STAGE)
                .after(["transcode"])
                .retry(retry(100_000)),
        )
        .stage(
            stage("publish")
                .after(["thumbnails", LOOPING_STAGE])
                .retry(retry(3))
                .input(|wf, results| {
                    Ok(json!({
                        "media": wf["media_uuid"],
                        "thumbs": results.get("thumbnails").cloned().unwrap_or(Value::Null),
                        "faces": results.get(LOOPING_STAGE).cloned().unwrap_or(Value::Null),
                    }))
                }),
        )
        .allowed_input_fields(["source_url"])
        .on_signal(|signal| match signal.name.as_str() {
            "abort" => SignalAction::FailWorkflow {
                reason: "aborted by an operator".into(),
            },
            _ => SignalAction::Ignore,
        })
        .continue_as_new_after_events(usize::MAX)
        .build()
        .expect("a valid DAG")
}

fn execution() -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: WORKFLOW_ID.into(),
        run_id: RUN_ID.into(),
    }
}

/// Writes a VideoProcessing history event by event, the way SWF records what the decider and
/// the workers do: transcode and thumbnails succeed, then detect_faces misses its heartbeat over
/// and over; each attempt sees a progress signal, a backoff timer and three decision tasks.
struct HistoryWriter {
    events: Vec<HistoryEvent>,
    at: f64,
    input: Value,
    results: BTreeMap<String, Value>,
}

impl HistoryWriter {
    fn new() -> HistoryWriter {
        HistoryWriter {
            events: Vec::new(),
            at: 1_764_150_000.0,
            input: json!({
                "media_uuid": WORKFLOW_ID,
                "user_uuid": USER_UUID,
                "source_url": format!("s3://viblio-uploads/{WORKFLOW_ID}/original.mov"),
            }),
            results: BTreeMap::new(),
        }
    }

    /// Appends an event `after_secs` after the previous one; timestamps have SWF's millisecond
    /// resolution.
    fn push(&mut self, after_secs: f64, attributes: EventAttributes) -> i64 {
        self.at += after_secs;
        let id = self.events.len() as i64 + 1;
        let timestamp = (self.at * 1000.0).round() / 1000.0;
        self.events
            .push(HistoryEvent::new(id, timestamp, attributes));
        id
    }

    fn decision_scheduled(&mut self) -> i64 {
        self.push(
            0.001,
            EventAttributes::DecisionTaskScheduled(DecisionTaskScheduledEventAttributes {
                task_list: Some(TaskList::new(DECIDER_TASK_LIST)),
                start_to_close_timeout: Some("30".into()),
                ..Default::default()
            }),
        )
    }

    fn decision_started(&mut self, scheduled: i64) -> i64 {
        self.push(
            0.004,
            EventAttributes::DecisionTaskStarted(DecisionTaskStartedEventAttributes {
                identity: Some("decider-1@media-host-1".into()),
                scheduled_event_id: scheduled,
            }),
        )
    }

    /// A whole decision task; returns its DecisionTaskCompleted id.
    fn decision_task(&mut self) -> i64 {
        let scheduled = self.decision_scheduled();
        let started = self.decision_started(scheduled);
        self.push(
            0.003,
            EventAttributes::DecisionTaskCompleted(DecisionTaskCompletedEventAttributes {
                scheduled_event_id: scheduled,
                started_event_id: started,
                ..Default::default()
            }),
        )
    }

    /// What the decider schedules for `attempt` of `stage` (the stage input is the workflow
    /// input plus the results of the stage's dependencies, wrapped in the task envelope).
    fn scheduled_attributes(
        &self,
        stage: &str,
        attempt: u32,
        completed: i64,
    ) -> ActivityTaskScheduledEventAttributes {
        let mut stage_input = self.input.as_object().cloned().expect("an object");
        if stage != "transcode" {
            stage_input.insert("transcode".into(), self.results["transcode"].clone());
        }
        let envelope = Envelope {
            swf_runtime: TaskContext {
                media_uuid: WORKFLOW_ID.into(),
                user_uuid: USER_UUID.into(),
                workflow_type: WORKFLOW_TYPE.into(),
                stage: stage.into(),
                attempt,
            },
            input: Value::Object(stage_input),
        };
        let t = stage_timeouts(stage);
        ActivityTaskScheduledEventAttributes {
            activity_type: tref(stage, "1"),
            activity_id: format!("{stage}-{attempt}"),
            input: Some(envelope.encode()),
            control: Some(attempt_control(stage, attempt)),
            schedule_to_start_timeout: Some(timeout_string(t.schedule_to_start_secs)),
            schedule_to_close_timeout: Some(timeout_string(t.schedule_to_close_secs)),
            start_to_close_timeout: Some(timeout_string(t.start_to_close_secs)),
            heartbeat_timeout: Some(timeout_string(t.heartbeat_secs)),
            task_list: Some(TaskList::new(MEDIA_TASK_LIST)),
            task_priority: None,
            decision_task_completed_event_id: completed,
        }
    }

    fn schedule(&mut self, stage: &str, attempt: u32, completed: i64) -> i64 {
        let attrs = self.scheduled_attributes(stage, attempt, completed);
        self.push(0.0, EventAttributes::ActivityTaskScheduled(attrs))
    }

    fn activity_started(&mut self, scheduled: i64, after_secs: f64) -> i64 {
        self.push(
            after_secs,
            EventAttributes::ActivityTaskStarted(ActivityTaskStartedEventAttributes {
                identity: Some("worker-3@media-host-2".into()),
                scheduled_event_id: scheduled,
            }),
        )
    }

    fn activity_completed(&mut self, stage: &str, scheduled: i64, started: i64, result: Value) {
        self.push(
            37.25,
            EventAttributes::ActivityTaskCompleted(ActivityTaskCompletedEventAttributes {
                result: Some(result.to_string()),
                scheduled_event_id: scheduled,
                started_event_id: started,
            }),
        );
        self.results.insert(stage.into(), result);
    }

    fn progress_signal(&mut self, percent: usize) {
        self.push(
            2.5,
            EventAttributes::WorkflowExecutionSignaled(WorkflowExecutionSignaledEventAttributes {
                signal_name: "progress".into(),
                input: Some(json!({"stage": LOOPING_STAGE, "percent": percent % 100}).to_string()),
                external_workflow_execution: None,
                external_initiated_event_id: 0,
            }),
        );
    }
}

/// A VideoProcessing history of exactly `len` events whose last event is the DecisionTaskStarted
/// of the pending decision task. Also returns what the decider must schedule for it.
fn looping_history(len: usize) -> (Vec<HistoryEvent>, Decision) {
    // 17 events up to the first faces attempt, 15 per full attempt, 13 for the last one plus
    // up to 14 signals that arrive while the pending decision task waits.
    const PREFIX: usize = 17;
    const CYCLE: usize = 15;
    const TAIL: usize = 13;
    assert!(len >= PREFIX + TAIL, "a history needs at least 30 events");
    let cycles = (len - PREFIX - TAIL) / CYCLE;
    let extra_signals = (len - PREFIX - TAIL) % CYCLE;
    let faces_retry = retry(100_000);

    let mut w = HistoryWriter::new();
    let input = w.input.to_string();
    w.push(
        0.0,
        EventAttributes::WorkflowExecutionStarted(WorkflowExecutionStartedEventAttributes {
            input: Some(input),
            execution_start_to_close_timeout: Some("604800".into()),
            task_start_to_close_timeout: Some("30".into()),
            child_policy: "TERMINATE".into(),
            task_list: Some(TaskList::new(DECIDER_TASK_LIST)),
            workflow_type: tref(WORKFLOW_TYPE, "1.0.2"),
            tag_list: vec![format!("user:{USER_UUID}")],
            ..Default::default()
        }),
    );
    let completed = w.decision_task();
    let transcode = w.schedule("transcode", 1, completed);
    let started = w.activity_started(transcode, 0.02);
    w.activity_completed(
        "transcode",
        transcode,
        started,
        json!({"mp4": format!("s3://viblio-media/{WORKFLOW_ID}/720p.mp4"), "duration_s": 312.4}),
    );
    let completed = w.decision_task();
    let thumbnails = w.schedule("thumbnails", 1, completed);
    let mut faces = w.schedule(LOOPING_STAGE, 1, completed);
    let started = w.activity_started(thumbnails, 0.02);
    w.activity_completed(
        "thumbnails",
        thumbnails,
        started,
        json!({"thumbnails": [format!("s3://viblio-media/{WORKFLOW_ID}/thumb-0001.jpg")]}),
    );
    w.decision_task();

    let mut attempt = 1u32;
    for cycle in 0..=cycles {
        let started = w.activity_started(faces, 0.5);
        w.progress_signal(cycle);
        w.decision_task();
        w.push(
            121.0,
            EventAttributes::ActivityTaskTimedOut(ActivityTaskTimedOutEventAttributes {
                timeout_type: "HEARTBEAT".into(),
                scheduled_event_id: faces,
                started_event_id: started,
                details: Some(format!("frame {}", 1200 + cycle)),
            }),
        );
        let completed = w.decision_task();
        let backoff = faces_retry.backoff_secs(attempt + 1);
        let timer_id = format!("retry-{LOOPING_STAGE}-{}", attempt + 1);
        let timer = w.push(
            0.0,
            EventAttributes::TimerStarted(TimerStartedEventAttributes {
                timer_id: timer_id.clone(),
                control: Some(LOOPING_STAGE.into()),
                start_to_fire_timeout: backoff.to_string(),
                decision_task_completed_event_id: completed,
            }),
        );
        w.push(
            backoff as f64,
            EventAttributes::TimerFired(TimerFiredEventAttributes {
                timer_id,
                started_event_id: timer,
            }),
        );
        attempt += 1;
        if cycle == cycles {
            break;
        }
        let completed = w.decision_task();
        faces = w.schedule(LOOPING_STAGE, attempt, completed);
    }
    let scheduled = w.decision_scheduled();
    for i in 0..extra_signals {
        w.progress_signal(cycles + i);
    }
    w.decision_started(scheduled);
    assert_eq!(w.events.len(), len);
    let pending = HistoryEvent::new(
        0,
        0.0,
        EventAttributes::ActivityTaskScheduled(w.scheduled_attributes(LOOPING_STAGE, attempt, 0)),
    );
    let (_, pending) = recorded_decision(&pending).expect("a recorded decision");
    (w.events, pending)
}

fn json_of(s: &Option<String>) -> Value {
    s.as_deref()
        .map_or(Value::Null, |s| serde_json::from_str(s).expect("JSON"))
}

/// A decision reduced to what must match the recorded event (payloads compared as JSON values,
/// so the key order of an encoder cannot make a difference).
fn decision_key(d: &Decision) -> Value {
    match d {
        Decision::ScheduleActivityTask(a) => json!([
            "ScheduleActivityTask",
            a.activity_id,
            a.activity_type,
            json_of(&a.input),
            json_of(&a.control),
            a.task_list,
            a.task_priority,
            a.schedule_to_start_timeout,
            a.schedule_to_close_timeout,
            a.start_to_close_timeout,
            a.heartbeat_timeout
        ]),
        other => serde_json::to_value(other).expect("a decision serialises"),
    }
}

/// The decision SWF recorded as this event, with the id of the DecisionTaskCompleted it answered.
fn recorded_decision(e: &HistoryEvent) -> Option<(i64, Decision)> {
    match &e.attributes {
        EventAttributes::ActivityTaskScheduled(a) => Some((
            a.decision_task_completed_event_id,
            Decision::ScheduleActivityTask(ScheduleActivityTaskDecisionAttributes {
                activity_type: a.activity_type.clone(),
                activity_id: a.activity_id.clone(),
                control: a.control.clone(),
                input: a.input.clone(),
                schedule_to_close_timeout: a.schedule_to_close_timeout.clone(),
                task_list: a.task_list.clone(),
                task_priority: a.task_priority.clone(),
                schedule_to_start_timeout: a.schedule_to_start_timeout.clone(),
                start_to_close_timeout: a.start_to_close_timeout.clone(),
                heartbeat_timeout: a.heartbeat_timeout.clone(),
            }),
        )),
        EventAttributes::TimerStarted(t) => Some((
            t.decision_task_completed_event_id,
            Decision::StartTimer(StartTimerDecisionAttributes {
                timer_id: t.timer_id.clone(),
                control: t.control.clone(),
                start_to_fire_timeout: t.start_to_fire_timeout.clone(),
            }),
        )),
        _ => None,
    }
}

/// The decisions a history records for the decision task completed by event `completed`.
fn recorded_decisions(events: &[HistoryEvent], completed: i64) -> Vec<Value> {
    events
        .iter()
        .filter_map(recorded_decision)
        .filter(|(answered, _)| *answered == completed)
        .map(|(_, d)| decision_key(&d))
        .collect()
}

fn decide(wf: &DagWorkflow, events: Vec<HistoryEvent>) -> Vec<Decision> {
    let history = WorkflowHistory::new(execution(), events).expect("a whole history");
    wf.decide(&history).expect("the workflow decides")
}

/// Checks that the generated history is the one the decider writes: for the chosen decision
/// tasks, the decider given the history up to the task's DecisionTaskStarted decides exactly
/// what the history records after its DecisionTaskCompleted; and for the pending task it
/// schedules the next attempt.
fn check_history(
    wf: &DagWorkflow,
    events: &[HistoryEvent],
    pending: &Decision,
    replay_every_task: bool,
) {
    let completed: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event_type() == "DecisionTaskCompleted")
        .map(|(i, _)| i)
        .collect();
    let chosen: Vec<usize> = if replay_every_task {
        completed
    } else {
        let n = completed.len();
        completed
            .into_iter()
            .enumerate()
            .filter(|(k, _)| *k < 6 || *k + 3 >= n)
            .map(|(_, i)| i)
            .collect()
    };
    for i in chosen {
        let got: Vec<Value> = decide(wf, events[..i].to_vec())
            .iter()
            .map(decision_key)
            .collect();
        assert_eq!(
            got,
            recorded_decisions(events, events[i].event_id),
            "decision task completed by event {}",
            events[i].event_id
        );
    }
    let got: Vec<Value> = decide(wf, events.to_vec())
        .iter()
        .map(decision_key)
        .collect();
    assert_eq!(
        got,
        vec![decision_key(pending)],
        "the pending decision task"
    );
}

/// The body of a PollForDecisionTask answer (one page), in SWF's JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollForDecisionTaskBody {
    task_token: String,
    workflow_execution: ExecutionRef,
    workflow_type: TypeRef,
    events: Vec<HistoryEvent>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    previous_started_event_id: i64,
    #[serde(default)]
    started_event_id: i64,
}

fn decode_page(body: &str) -> DecisionTaskPage {
    let b: PollForDecisionTaskBody = serde_json::from_str(body).expect("a decision task page");
    DecisionTaskPage {
        task_token: b.task_token,
        execution: b.workflow_execution.into(),
        workflow_type: b.workflow_type,
        events: b.events,
        next_page_token: b.next_page_token,
        previous_started_event_id: b.previous_started_event_id,
        started_event_id: b.started_event_id,
    }
}

fn page_body(events: &[HistoryEvent]) -> String {
    // Task and page tokens are opaque base64 blobs of a few hundred characters on SWF.
    let token: String = "AAAAKgAAAAIAAAAAAAAAAtq3Rz4Wc1Ykx0Hb9mLpQeVn2s+8uJdF"
        .chars()
        .cycle()
        .take(412)
        .collect();
    json!({
        "taskToken": token,
        "workflowExecution": {"workflowId": WORKFLOW_ID, "runId": RUN_ID},
        "workflowType": {"name": WORKFLOW_TYPE, "version": "1.0.2"},
        "startedEventId": events.last().map_or(0, |e| e.event_id),
        "previousStartedEventId": events.len().saturating_sub(20),
        "events": events,
        "nextPageToken": &token[..260],
    })
    .to_string()
}

fn aws_task_list(t: &Option<TaskList>) -> aws::TaskList {
    aws::TaskList::builder()
        .name(&t.as_ref().expect("a task list").name)
        .build()
        .expect("a name")
}

/// The event as `aws-sdk-swf` hands it over, built with the SDK's builders (the event types of
/// the generated histories only).
fn to_aws(e: &HistoryEvent) -> aws::HistoryEvent {
    let b = aws::HistoryEvent::builder()
        .event_id(e.event_id)
        .event_timestamp(aws_smithy_types::DateTime::from_secs_f64(e.event_timestamp))
        .event_type(aws::EventType::from(e.event_type()));
    let b = match &e.attributes {
        EventAttributes::WorkflowExecutionStarted(a) => b
            .workflow_execution_started_event_attributes(
                aws::WorkflowExecutionStartedEventAttributes::builder()
                    .set_input(a.input.clone())
                    .set_execution_start_to_close_timeout(
                        a.execution_start_to_close_timeout.clone(),
                    )
                    .set_task_start_to_close_timeout(a.task_start_to_close_timeout.clone())
                    .child_policy(aws::ChildPolicy::from(a.child_policy.as_str()))
                    .task_list(aws_task_list(&a.task_list))
                    .workflow_type(
                        aws::WorkflowType::builder()
                            .name(&a.workflow_type.name)
                            .version(&a.workflow_type.version)
                            .build()
                            .expect("name and version"),
                    )
                    .set_tag_list(Some(a.tag_list.clone()))
                    .build()
                    .expect("required fields set"),
            ),
        EventAttributes::DecisionTaskScheduled(a) => b.decision_task_scheduled_event_attributes(
            aws::DecisionTaskScheduledEventAttributes::builder()
                .task_list(aws_task_list(&a.task_list))
                .set_start_to_close_timeout(a.start_to_close_timeout.clone())
                .build(),
        ),
        EventAttributes::DecisionTaskStarted(a) => b.decision_task_started_event_attributes(
            aws::DecisionTaskStartedEventAttributes::builder()
                .set_identity(a.identity.clone())
                .scheduled_event_id(a.scheduled_event_id)
                .build(),
        ),
        EventAttributes::DecisionTaskCompleted(a) => b.decision_task_completed_event_attributes(
            aws::DecisionTaskCompletedEventAttributes::builder()
                .scheduled_event_id(a.scheduled_event_id)
                .started_event_id(a.started_event_id)
                .build(),
        ),
        EventAttributes::ActivityTaskScheduled(a) => b.activity_task_scheduled_event_attributes(
            aws::ActivityTaskScheduledEventAttributes::builder()
                .activity_type(
                    aws::ActivityType::builder()
                        .name(&a.activity_type.name)
                        .version(&a.activity_type.version)
                        .build()
                        .expect("name and version"),
                )
                .activity_id(&a.activity_id)
                .set_input(a.input.clone())
                .set_control(a.control.clone())
                .set_schedule_to_start_timeout(a.schedule_to_start_timeout.clone())
                .set_schedule_to_close_timeout(a.schedule_to_close_timeout.clone())
                .set_start_to_close_timeout(a.start_to_close_timeout.clone())
                .set_heartbeat_timeout(a.heartbeat_timeout.clone())
                .task_list(aws_task_list(&a.task_list))
                .decision_task_completed_event_id(a.decision_task_completed_event_id)
                .build()
                .expect("required fields set"),
        ),
        EventAttributes::ActivityTaskStarted(a) => b.activity_task_started_event_attributes(
            aws::ActivityTaskStartedEventAttributes::builder()
                .set_identity(a.identity.clone())
                .scheduled_event_id(a.scheduled_event_id)
                .build(),
        ),
        EventAttributes::ActivityTaskCompleted(a) => b.activity_task_completed_event_attributes(
            aws::ActivityTaskCompletedEventAttributes::builder()
                .set_result(a.result.clone())
                .scheduled_event_id(a.scheduled_event_id)
                .started_event_id(a.started_event_id)
                .build(),
        ),
        EventAttributes::ActivityTaskTimedOut(a) => b.activity_task_timed_out_event_attributes(
            aws::ActivityTaskTimedOutEventAttributes::builder()
                .timeout_type(aws::ActivityTaskTimeoutType::from(a.timeout_type.as_str()))
                .scheduled_event_id(a.scheduled_event_id)
                .started_event_id(a.started_event_id)
                .set_details(a.details.clone())
                .build()
                .expect("required fields set"),
        ),
        EventAttributes::WorkflowExecutionSignaled(a) => b
            .workflow_execution_signaled_event_attributes(
                aws::WorkflowExecutionSignaledEventAttributes::builder()
                    .signal_name(&a.signal_name)
                    .set_input(a.input.clone())
                    .build()
                    .expect("required fields set"),
            ),
        EventAttributes::TimerStarted(a) => b.timer_started_event_attributes(
            aws::TimerStartedEventAttributes::builder()
                .timer_id(&a.timer_id)
                .set_control(a.control.clone())
                .start_to_fire_timeout(&a.start_to_fire_timeout)
                .decision_task_completed_event_id(a.decision_task_completed_event_id)
                .build()
                .expect("required fields set"),
        ),
        EventAttributes::TimerFired(a) => b.timer_fired_event_attributes(
            aws::TimerFiredEventAttributes::builder()
                .timer_id(&a.timer_id)
                .started_event_id(a.started_event_id)
                .build()
                .expect("required fields set"),
        ),
        other => panic!("no SDK builder written for {}", other.event_type()),
    };
    b.build().expect("id, type and timestamp set")
}

fn bench_decision_page(c: &mut Criterion) {
    let (events, _) = looping_history(1_000);
    let body = page_body(&events);
    let page = decode_page(&body);
    assert_eq!(
        page.events, events,
        "the page decodes to the generated events"
    );
    assert_eq!(page.execution, execution());

    let aws_events: Vec<aws::HistoryEvent> = events.iter().map(to_aws).collect();
    for (converted, original) in aws_events.iter().map(HistoryEvent::from_aws).zip(&events) {
        assert_eq!(converted.attributes, original.attributes);
        assert_eq!(converted.event_id, original.event_id);
        assert!((converted.event_timestamp - original.event_timestamp).abs() < 1e-3);
    }

    let mut group = c.benchmark_group("decision_page");
    // Parsing is bound by the bytes of the body, converting by the number of events.
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse_swf_json_1000_events", |b| {
        b.iter(|| decode_page(black_box(&body)))
    });
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("from_aws_1000_events", |b| {
        b.iter(|| {
            black_box(&aws_events)
                .iter()
                .map(HistoryEvent::from_aws)
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

fn bench_replay(c: &mut Criterion) {
    let wf = video_processing();
    let mut group = c.benchmark_group("replay");
    for len in [1_000usize, 25_000] {
        let (events, pending) = looping_history(len);
        check_history(&wf, &events, &pending, len <= 1_000);
        group.throughput(Throughput::Elements(len as u64));
        // The poller hands the collected pages over by value; cloning them is setup, untimed.
        group.bench_function(format!("history_new_and_decide_{len}_events"), |b| {
            b.iter_batched(
                || events.clone(),
                |events| {
                    let history =
                        WorkflowHistory::new(execution(), events).expect("a whole history");
                    let decisions = wf.decide(&history).expect("the workflow decides");
                    (history, decisions)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Who the benchmarked task is: a detect_faces attempt of the generated workflow.
fn task_info() -> TaskInfo {
    TaskInfo {
        workflow_id: WORKFLOW_ID.into(),
        run_id: RUN_ID.into(),
        activity_id: format!("{LOOPING_STAGE}-3"),
        activity_type: LOOPING_STAGE.into(),
        activity_version: "1".into(),
        attempt: 3,
        media_uuid: WORKFLOW_ID.into(),
        user_uuid: USER_UUID.into(),
        workflow_type: WORKFLOW_TYPE.into(),
        stage: LOOPING_STAGE.into(),
        task_list: MEDIA_TASK_LIST.into(),
        task_token_hash: "9f3c2a1b7e6d5c4f".into(),
        started_event_id: 42,
    }
}

/// Hands each line to `io::sink()`, as a stdout writer would, minus the I/O.
struct DiscardSink;

impl LineSink for DiscardSink {
    fn write_line(&self, line: &str) {
        let mut out = std::io::sink();
        let _ = out.write_all(black_box(line).as_bytes());
        let _ = out.write_all(b"\n");
    }
}

#[derive(Default)]
struct KeepSink(Mutex<Vec<String>>);

impl LineSink for KeepSink {
    fn write_line(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    }
}

fn log_subscriber(sink: Arc<dyn LineSink>) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(JsonLogLayer::new(
        "swf-runtime",
        "media-host-2",
        vec![sink],
    ))
}

/// The task span as the worker opens it (worker/task.rs).
fn task_span(info: &TaskInfo) -> tracing::Span {
    tracing::info_span!(
        "activity_task",
        { fields::WORKFLOW_ID } = %info.workflow_id,
        { fields::RUN_ID } = %info.run_id,
        { fields::MEDIA_UUID } = %info.media_uuid,
        { fields::USER_UUID } = %info.user_uuid,
        { fields::WORKFLOW_TYPE } = %info.workflow_type,
        { fields::ACTIVITY_TYPE } = %info.activity_type,
        { fields::ACTIVITY_ID } = %info.activity_id,
        { fields::ATTEMPT } = info.attempt,
        { fields::TASK_LIST } = %info.task_list,
    )
}

/// The closing line of a task with the fields `worker::events::TaskFinished` writes; logged
/// directly so that the benchmark times the line alone, not that event's metrics.
fn task_finished_line(duration: Duration) {
    tracing::info!(
        { fields::DURATION_MS } = duration.as_millis() as u64,
        { fields::OUTCOME } = TaskOutcome::Completed.as_str(),
        reason = None::<&str>,
        "Activity task finished."
    );
}

fn bench_json_log_line(c: &mut Criterion) {
    let info = task_info();
    let duration = Duration::from_millis(1_250);

    let kept = Arc::new(KeepSink::default());
    tracing::subscriber::with_default(log_subscriber(kept.clone()), || {
        task_span(&info).in_scope(|| task_finished_line(duration));
    });
    let lines = kept.0.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(lines.len(), 1);
    let line: Value = serde_json::from_str(&lines[0]).expect("one JSON object");
    for key in fields::TASK_IDENTITY
        .iter()
        .chain(fields::ACTIVITY_IDENTITY)
        .chain(&[
            fields::DURATION_MS,
            fields::OUTCOME,
            fields::TIMESTAMP,
            fields::LOG_LEVEL,
            fields::MESSAGE,
            fields::SERVICE_NAME,
            fields::HOST_NAME,
            fields::TRACE_ID,
            fields::SPAN_ID,
        ])
    {
        assert!(line.get(*key).is_some(), "the line lacks {key}: {line}");
    }

    let mut group = c.benchmark_group("json_log_line");
    group.throughput(Throughput::Elements(1));
    tracing::subscriber::with_default(log_subscriber(Arc::new(DiscardSink)), || {
        group.bench_function("task_finished_in_task_span", |b| {
            task_span(&info).in_scope(|| b.iter(|| task_finished_line(black_box(duration))))
        });
        // What a task pays for its span plus one line: the span's fields are captured once.
        group.bench_function("task_span_and_one_line", |b| {
            b.iter(|| task_span(black_box(&info)).in_scope(|| task_finished_line(duration)))
        });
    });
    group.finish();
}

/// Metrics of one API call, as the SWF client's `observe` records them.
fn api_call(operation: &'static str, secs: f64) {
    metrics::histogram!(m::API_CALL_DURATION.name, labels::OPERATION => operation).record(secs);
    metrics::counter!(m::API_CALLS.name, labels::OPERATION => operation, labels::OUTCOME => "ok")
        .increment(1);
}

/// Everything the runtime records for one completed activity task: the poll and its answer, the
/// slot taken and freed, the response, and the task's execution time and outcome.
fn record_one_task(info: &TaskInfo) {
    api_call("PollForActivityTask", 0.003);
    PollAnswered {
        kind: swf_runtime::worker::events::PollKind::Activity,
        task_list: &info.task_list,
        got_task: true,
    }
    .emit();
    SlotsChanged {
        task_list: &info.task_list,
        in_use: 1,
        total: 8,
    }
    .emit();
    api_call("RespondActivityTaskCompleted", 0.002);
    TaskFinished {
        info,
        outcome: TaskOutcome::Completed,
        duration: Duration::from_millis(1_250),
        reason: None,
    }
    .emit();
    SlotsChanged {
        task_list: &info.task_list,
        in_use: 0,
        total: 8,
    }
    .emit();
}

/// The recorder as the runtime builds it (telemetry/server.rs), not installed globally.
fn prometheus_recorder() -> PrometheusRecorder {
    let recorder = PrometheusBuilder::new()
        .set_buckets(m::BUCKETS_SECONDS)
        .expect("valid buckets")
        .build_recorder();
    metrics::with_local_recorder(&recorder, m::describe_all);
    recorder
}

fn bench_metrics(c: &mut Criterion) {
    let info = task_info();

    let check = prometheus_recorder();
    metrics::with_local_recorder(&check, || record_one_task(&info));
    let scrape = check.handle().render();
    for (name, value) in [
        (m::ACTIVITY_TASKS.name, " 1"),
        (m::POLLS.name, " 1"),
        ("swf_activity_execution_seconds_count", " 1"),
        ("swf_api_call_duration_seconds_count", " 1"),
        (m::WORKER_SLOTS_FREE.name, " 8"),
    ] {
        let line = scrape
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("{name} missing from the scrape:\n{scrape}"));
        assert!(line.ends_with(value), "{line}");
    }

    let recorder = prometheus_recorder();
    let handle = recorder.handle();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_one_activity_task", |b| {
        b.iter_custom(|iters| {
            // Histogram samples queue up until a scrape (or upkeep) folds them into buckets;
            // that is the scrape's work, so it runs between timed chunks.
            const CHUNK: u64 = 10_000;
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = CHUNK.min(iters - done);
                let started = Instant::now();
                metrics::with_local_recorder(&recorder, || {
                    for _ in 0..n {
                        record_one_task(black_box(&info));
                    }
                });
                timed += started.elapsed();
                handle.run_upkeep();
                done += n;
            }
            timed
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = bench_decision_page, bench_replay, bench_json_log_line, bench_metrics
}
criterion_main!(hot_paths);
