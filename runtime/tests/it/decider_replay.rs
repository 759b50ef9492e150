//! Replays recorded SWF histories (`tests/histories/*.json`, each with a `_comment` listing its
//! events) through the DAG decider.
//!
//! Every fixture is checked two ways: the decisions for its pending (last) decision task are
//! asserted explicitly, and every earlier decision task in it is replayed: the decider, given
//! the history up to that task's DecisionTaskStarted, must make exactly the decisions the
//! history records after its DecisionTaskCompleted. The late-decider test feeds the same
//! histories through the poller and the fake SWF, in one page and in many.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use serde_json::{json, Value};
use swf_runtime::decider::dag::{ActivityTimeouts, DagWorkflow, RetryPolicy, Stage};
use swf_runtime::decider::poller::{DeciderPoller, TaskOutcome};
use swf_runtime::decider::{timeline, Workflow, WorkflowHistory, WorkflowRegistry};
use swf_runtime::envelope::Envelope;
use swf_runtime::swf::fake::{FakeSwf, Recorded};
use swf_runtime::swf::model::*;
use swf_runtime::swf::{DecisionTaskPage, SwfClient, TypeRef, WorkflowExecution};
use tokio_util::sync::CancellationToken;

fn tref(name: &str, version: &str) -> TypeRef {
    TypeRef {
        name: name.into(),
        version: version.into(),
    }
}

fn timeouts(s2s: u64, s2c: u64, st2c: u64, hb: Option<u64>) -> ActivityTimeouts {
    ActivityTimeouts {
        schedule_to_start_secs: Some(s2s),
        schedule_to_close_secs: Some(s2c),
        start_to_close_secs: Some(st2c),
        heartbeat_secs: hb,
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff_secs: 5,
        max_backoff_secs: 60,
        backoff_coefficient: 2.0,
        non_retryable_reasons: vec!["InvalidMedia".into()],
    }
}

fn publish_stage() -> Stage {
    Stage::activity(
        "publish",
        tref("publish", "1"),
        "media",
        timeouts(300, 600, 300, None),
    )
    .after(["thumbnails", "detect_faces"])
    .retry(retry())
    .input(|wf, results| {
        Ok(json!({
            "media": wf["media_uuid"],
            "thumbs": results.get("thumbnails").cloned().unwrap_or(Value::Null),
            "faces": results.get("detect_faces").cloned().unwrap_or(Value::Null),
        }))
    })
}

/// transcode -> thumbnails + detect_faces -> publish.
fn video_processing() -> DagWorkflow {
    DagWorkflow::builder(tref("VideoProcessing", "1.0.2"))
        .stage(
            Stage::activity(
                "transcode",
                tref("transcode", "1"),
                "media",
                timeouts(300, 7200, 3600, Some(60)),
            )
            .retry(retry()),
        )
        .stage(
            Stage::activity(
                "thumbnails",
                tref("thumbnails", "1"),
                "media",
                timeouts(300, 1800, 900, Some(60)),
            )
            .after(["transcode"])
            .retry(retry()),
        )
        .stage(
            Stage::activity(
                "detect_faces",
                tref("detect_faces", "1"),
                "media",
                timeouts(300, 3600, 1800, Some(120)),
            )
            .after(["transcode"])
            .retry(retry()),
        )
        .stage(publish_stage())
        .allowed_input_fields(["source_url"])
        .build()
        .expect("a valid DAG")
}

/// transcode -> recognize (a FaceRecognition child workflow) -> publish.
fn video_with_faces() -> DagWorkflow {
    DagWorkflow::builder(tref("VideoWithFaces", "1"))
        .stage(
            Stage::activity(
                "transcode",
                tref("transcode", "1"),
                "media",
                timeouts(300, 7200, 3600, Some(60)),
            )
            .retry(retry()),
        )
        .stage(
            Stage::child_workflow("recognize", tref("FaceRecognition", "1"))
                .after(["transcode"])
                .child_options(
                    Some("FaceRecognitionDecider".into()),
                    Some(172_800),
                    Some(30),
                    "REQUEST_CANCEL",
                ),
        )
        .stage(
            Stage::activity(
                "publish",
                tref("publish", "1"),
                "media",
                timeouts(300, 600, 300, None),
            )
            .after(["recognize"])
            .input(|wf, results| {
                Ok(json!({"media": wf["media_uuid"], "people": results["recognize"]["people"]}))
            }),
        )
        .build()
        .expect("a valid DAG")
}

fn execution() -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: "5a1c-media-0001".into(),
        run_id: "22RunId0000".into(),
    }
}

/// Loads a fixture; checks its `_comment` lists every event.
fn load(name: &str) -> Vec<HistoryEvent> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "histories", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let comment = doc["_comment"]
        .as_array()
        .expect("a _comment listing the events");
    let events: Vec<HistoryEvent> = serde_json::from_value(doc["events"].clone()).unwrap();
    for e in &events {
        let listed = comment.iter().filter_map(Value::as_str).any(|line| {
            line.trim_start()
                .starts_with(&format!("{} {}", e.event_id, e.event_type()))
        });
        assert!(
            listed,
            "{name}: the _comment does not list event {} {}",
            e.event_id,
            e.event_type()
        );
        assert!(
            !matches!(e.attributes, EventAttributes::Other { .. }),
            "{name}: unmodelled event"
        );
    }
    // Reading and writing must keep SWF's JSON exactly.
    assert_eq!(
        serde_json::to_value(&events).unwrap(),
        doc["events"],
        "{name}: JSON round trip"
    );
    events
}

fn history(events: Vec<HistoryEvent>) -> WorkflowHistory {
    WorkflowHistory::new(execution(), events).expect("a whole history")
}

fn decide(wf: &dyn Workflow, events: &[HistoryEvent]) -> Vec<Decision> {
    wf.decide(&history(events.to_vec()))
        .expect("the workflow decides")
}

fn json_of(s: &Option<String>) -> Value {
    s.as_deref()
        .map_or(Value::Null, |s| serde_json::from_str(s).unwrap())
}

/// A decision and the event SWF records for it, reduced to what must match.
fn decision_key(d: &Decision) -> (String, String, Value) {
    match d {
        Decision::ScheduleActivityTask(a) => (
            "ActivityTaskScheduled".into(),
            a.activity_id.clone(),
            json!([
                a.activity_type.name,
                json_of(&a.input),
                json_of(&a.control),
                a.task_list.as_ref().map(|t| t.name.clone()),
                a.schedule_to_start_timeout,
                a.schedule_to_close_timeout,
                a.start_to_close_timeout,
                a.heartbeat_timeout
            ]),
        ),
        Decision::StartTimer(t) => (
            "TimerStarted".into(),
            t.timer_id.clone(),
            json!([t.control, t.start_to_fire_timeout]),
        ),
        Decision::StartChildWorkflowExecution(c) => (
            "StartChildWorkflowExecutionInitiated".into(),
            c.workflow_id.clone(),
            json!([
                c.workflow_type.name,
                json_of(&c.input),
                json_of(&c.control),
                c.child_policy
            ]),
        ),
        Decision::RequestCancelActivityTask(r) => (
            "ActivityTaskCancelRequested".into(),
            r.activity_id.clone(),
            Value::Null,
        ),
        Decision::CompleteWorkflowExecution(c) => (
            "WorkflowExecutionCompleted".into(),
            String::new(),
            json_of(&c.result),
        ),
        Decision::FailWorkflowExecution(f) => (
            "WorkflowExecutionFailed".into(),
            String::new(),
            json!(f.reason),
        ),
        Decision::CancelWorkflowExecution(_) => (
            "WorkflowExecutionCanceled".into(),
            String::new(),
            Value::Null,
        ),
        Decision::ContinueAsNewWorkflowExecution(c) => (
            "WorkflowExecutionContinuedAsNew".into(),
            String::new(),
            json_of(&c.input),
        ),
        other => (other.decision_type().into(), String::new(), Value::Null),
    }
}

fn event_key(e: &HistoryEvent) -> Option<(i64, (String, String, Value))> {
    let ty = e.event_type().to_string();
    Some(match &e.attributes {
        EventAttributes::ActivityTaskScheduled(a) => (
            a.decision_task_completed_event_id,
            (
                ty,
                a.activity_id.clone(),
                json!([
                    a.activity_type.name,
                    json_of(&a.input),
                    json_of(&a.control),
                    a.task_list.as_ref().map(|t| t.name.clone()),
                    a.schedule_to_start_timeout,
                    a.schedule_to_close_timeout,
                    a.start_to_close_timeout,
                    a.heartbeat_timeout
                ]),
            ),
        ),
        EventAttributes::TimerStarted(t) => (
            t.decision_task_completed_event_id,
            (
                ty,
                t.timer_id.clone(),
                json!([t.control, t.start_to_fire_timeout]),
            ),
        ),
        EventAttributes::StartChildWorkflowExecutionInitiated(c) => (
            c.decision_task_completed_event_id,
            (
                ty,
                c.workflow_id.clone(),
                json!([
                    c.workflow_type.name,
                    json_of(&c.input),
                    json_of(&c.control),
                    c.child_policy
                ]),
            ),
        ),
        EventAttributes::ActivityTaskCancelRequested(r) => (
            r.decision_task_completed_event_id,
            (ty, r.activity_id.clone(), Value::Null),
        ),
        EventAttributes::WorkflowExecutionCompleted(c) => (
            c.decision_task_completed_event_id,
            (ty, String::new(), json_of(&c.result)),
        ),
        EventAttributes::WorkflowExecutionFailed(f) => (
            f.decision_task_completed_event_id,
            (ty, String::new(), json!(f.reason)),
        ),
        EventAttributes::WorkflowExecutionCanceled(c) => (
            c.decision_task_completed_event_id,
            (ty, String::new(), Value::Null),
        ),
        _ => return None,
    })
}

/// Replays every decision task the history records and returns the decisions for the pending
/// (last) one.
fn replay(wf: &dyn Workflow, events: &[HistoryEvent]) -> Vec<Decision> {
    let mut recorded: BTreeMap<i64, Vec<(String, String, Value)>> = BTreeMap::new();
    for e in events {
        if let Some((dtc, key)) = event_key(e) {
            recorded.entry(dtc).or_default().push(key);
        }
    }
    let mut replayed = 0;
    for e in events {
        if let EventAttributes::DecisionTaskCompleted(c) = &e.attributes {
            let prefix: Vec<HistoryEvent> = events
                .iter()
                .take_while(|x| x.event_id <= c.started_event_id)
                .cloned()
                .collect();
            let mut made: Vec<_> = decide(wf, &prefix).iter().map(decision_key).collect();
            let mut want = recorded.remove(&e.event_id).unwrap_or_default();
            made.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            assert_eq!(
                made, want,
                "decision task completed at event {} decided differently",
                e.event_id
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0 || events.len() <= 3, "nothing was replayed");
    let last = events.last().expect("events");
    assert_eq!(
        last.event_type(),
        "DecisionTaskStarted",
        "a fixture ends with a pending decision task"
    );
    decide(wf, events)
}

fn scheduled_ids(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::ScheduleActivityTask(a) => Some(a.activity_id.clone()),
            _ => None,
        })
        .collect()
}

fn envelope_of(d: &Decision) -> Envelope {
    match d {
        Decision::ScheduleActivityTask(a) => {
            serde_json::from_str(a.input.as_deref().unwrap()).unwrap()
        }
        other => panic!("not a schedule: {other:?}"),
    }
}

#[test]
fn happy_path_completes_with_every_result() {
    let events = load("happy_path.json");
    let decisions = replay(&video_processing(), &events);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let Decision::CompleteWorkflowExecution(c) = &decisions[0] else {
        panic!("expected completion, got {decisions:?}")
    };
    assert_eq!(
        json_of(&c.result),
        json!({
            "transcode": {"renditions": ["720p.mp4", "1080p.mp4"], "duration_secs": 31.5},
            "thumbnails": {"thumbnails": ["t0.jpg", "t5.jpg", "t10.jpg"]},
            "detect_faces": {"faces": 2},
            "publish": {"url": "https://media.example/v/5a1c"},
        })
    );

    let t = timeline(&history(events));
    let names: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        names,
        ["transcode", "thumbnails", "detect_faces", "publish"]
    );
    assert!(t
        .stages
        .iter()
        .all(|s| s.outcome == "completed" && s.attempts.len() == 1));
    let transcode = &t.stages[0];
    assert_eq!(
        transcode.attempts[0].timeouts.heartbeat.as_deref(),
        Some("60")
    );
    assert!(
        (transcode.duration_secs.unwrap() - 31.0).abs() < 0.01,
        "{transcode:?}"
    );
    let text = t.render();
    assert!(
        text.contains("stage publish [activity publish 1]"),
        "{text}"
    );
}

#[test]
fn parallel_join_waits_for_both_branches() {
    let decisions = replay(&video_processing(), &load("parallel_join.json"));
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn failure_is_retried_after_backoff_then_fans_out() {
    let decisions = replay(&video_processing(), &load("retry_then_success.json"));
    assert_eq!(
        scheduled_ids(&decisions),
        ["thumbnails-1", "detect_faces-1"]
    );
    let env = envelope_of(&decisions[1]);
    assert_eq!(env.swf_runtime.stage, "detect_faces");
    assert_eq!(env.swf_runtime.attempt, 1);
    assert_eq!(env.swf_runtime.media_uuid, "5a1c-media-0001");
    assert_eq!(env.swf_runtime.user_uuid, "77e0-user-0042");
    assert_eq!(env.swf_runtime.workflow_type, "VideoProcessing");
    assert_eq!(env.input["transcode"]["duration_secs"], 31.5);

    let t = timeline(&history(load("retry_then_success.json")));
    let transcode = &t.stages[0];
    assert_eq!(transcode.attempts.len(), 2);
    assert_eq!(transcode.failures, 1);
    assert_eq!(transcode.attempts[0].outcome, "failed");
    assert!(transcode.attempts[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("EncoderCrashed"));
    assert_eq!(transcode.outcome, "completed");
}

#[test]
fn timeout_starts_a_retry_timer() {
    let decisions = replay(&video_processing(), &load("timeout_then_retry.json"));
    assert_eq!(
        decisions,
        vec![Decision::StartTimer(StartTimerDecisionAttributes {
            timer_id: "retry-detect_faces-2".into(),
            control: Some("detect_faces".into()),
            start_to_fire_timeout: "5".into(),
        })]
    );
    let t = timeline(&history(load("timeout_then_retry.json")));
    let faces = t.stages.iter().find(|s| s.stage == "detect_faces").unwrap();
    assert_eq!(faces.timeouts, 1);
    assert_eq!(faces.attempts[0].timeout_type.as_deref(), Some("HEARTBEAT"));
}

#[test]
fn exhausted_attempts_fail_the_workflow_with_a_clear_reason() {
    let decisions = replay(&video_processing(), &load("attempts_exhausted.json"));
    let [Decision::FailWorkflowExecution(f)] = decisions.as_slice() else {
        panic!("expected one failure, got {decisions:?}")
    };
    let reason = f.reason.as_deref().unwrap();
    assert!(
        reason.contains("stage transcode failed after 3 attempts"),
        "{reason}"
    );
    assert!(reason.contains("EncoderCrashed"), "{reason}");
    assert!(f.details.as_deref().unwrap().contains("status 139"));
}

#[test]
fn cancel_request_cancels_running_stages_then_the_workflow() {
    let decisions = replay(&video_processing(), &load("cancel.json"));
    let kinds: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            let (k, id, _) = decision_key(d);
            (k, id)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "ActivityTaskCancelRequested".to_string(),
                "thumbnails-1".to_string()
            ),
            (
                "ActivityTaskCancelRequested".to_string(),
                "detect_faces-1".to_string()
            ),
            ("WorkflowExecutionCanceled".to_string(), String::new()),
        ]
    );
}

#[test]
fn skip_stage_signal_cancels_the_stage_and_moves_on() {
    let decisions = replay(&video_processing(), &load("signal_skip_stage.json"));
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(
        decisions[0],
        Decision::RequestCancelActivityTask(RequestCancelActivityTaskDecisionAttributes {
            activity_id: "detect_faces-1".into()
        })
    );
    let env = envelope_of(&decisions[1]);
    assert_eq!(env.swf_runtime.stage, "publish");
    assert_eq!(env.input["faces"], json!({"faces": 0, "skipped": true}));
    assert_eq!(env.input["thumbs"]["thumbnails"][0], "t0.jpg");
}

#[test]
fn child_workflow_stage_is_joined_on_its_completion() {
    let events = load("child_workflow.json");
    let decisions = replay(&video_with_faces(), &events);
    assert_eq!(scheduled_ids(&decisions), ["publish-1"]);
    assert_eq!(
        envelope_of(&decisions[0]).input,
        json!({"media": "5a1c-media-0001", "people": ["alice", "bob"]})
    );
    let t = timeline(&history(events));
    let child = t.stages.iter().find(|s| s.stage == "recognize").unwrap();
    assert_eq!(child.kind, "child_workflow");
    assert_eq!(child.outcome, "completed");
    assert_eq!(child.type_ref.name, "FaceRecognition");
}

#[test]
fn bad_input_fails_the_workflow_naming_the_problem() {
    let decisions = replay(&video_processing(), &load("bad_input.json"));
    let [Decision::FailWorkflowExecution(f)] = decisions.as_slice() else {
        panic!("expected one failure, got {decisions:?}")
    };
    assert_eq!(
        f.reason.as_deref(),
        Some("invalid input: missing media_uuid")
    );
}

/// The DecisionTaskStarted before the pending one, as SWF reports it with a decision task.
fn previous_started(events: &[HistoryEvent]) -> i64 {
    events
        .iter()
        .rev()
        .filter(|e| e.event_type() == "DecisionTaskStarted")
        .nth(1)
        .map_or(0, |e| e.event_id)
}

fn pages(events: &[HistoryEvent], per_page: usize, token: &str) -> Vec<DecisionTaskPage> {
    let chunks: Vec<&[HistoryEvent]> = events.chunks(per_page).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| DecisionTaskPage {
            task_token: token.into(),
            execution: execution(),
            workflow_type: tref("VideoProcessing", "1.0.2"),
            events: chunk.to_vec(),
            next_page_token: (i + 1 < n).then(|| format!("{token}-page-{}", i + 2)),
            previous_started_event_id: previous_started(events),
            started_event_id: events.last().unwrap().event_id,
        })
        .collect()
}

#[tokio::test]
async fn late_decider_on_a_paged_history_decides_the_same() {
    let fake = Arc::new(FakeSwf::new("Viblio", Duration::from_millis(50)));
    let client: Arc<dyn SwfClient> = fake.clone();
    let registry = WorkflowRegistry::new().with(Arc::new(video_processing()));
    let poller = DeciderPoller::new(client, "VideoProcessingDecider", "decider@test", registry);
    let shutdown = CancellationToken::new();
    for name in [
        "happy_path.json",
        "retry_then_success.json",
        "attempts_exhausted.json",
        "signal_skip_stage.json",
    ] {
        let events = load(name);
        let expected = decide(&video_processing(), &events);
        for (per_page, token) in [(events.len(), "one"), (4, "many"), (1, "single")] {
            let token = format!("{name}-{token}");
            fake.push_decision_task("VideoProcessingDecider", pages(&events, per_page, &token));
            let outcome = tokio::time::timeout(Duration::from_secs(10), poller.run_once(&shutdown))
                .await
                .expect("bounded")
                .expect("poll ok");
            assert_eq!(
                outcome,
                Some(TaskOutcome::Answered(expected.clone())),
                "{name} in pages of {per_page}"
            );
            let answered = fake.recorded().into_iter().any(|r| {
                matches!(&r, Recorded::DecisionCompleted { token: t, decisions, .. } if *t == token && *decisions == expected)
            });
            assert!(
                answered,
                "{name}: the fake did not record the answer for {token}"
            );
        }
    }
}

#[tokio::test]
async fn poller_runs_until_shutdown_and_leaves_unknown_types_unanswered() {
    let fake = Arc::new(FakeSwf::new("Viblio", Duration::from_millis(20)));
    let registry = WorkflowRegistry::new().with(Arc::new(video_processing()));
    let poller = Arc::new(
        DeciderPoller::new(
            fake.clone(),
            "VideoProcessingDecider",
            "decider@test",
            registry,
        )
        .with_pollers(2),
    );
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (poller, shutdown) = (poller.clone(), shutdown.clone());
        async move { poller.run(shutdown).await }
    });
    let events = load("retry_then_success.json");
    let mut unknown = pages(&events, 100, "unknown-type");
    unknown[0].workflow_type = tref("NoSuchWorkflow", "1");
    fake.push_decision_task("VideoProcessingDecider", unknown);
    fake.push_decision_task("VideoProcessingDecider", pages(&events, 5, "known"));
    let answered = fake
        .wait_for(Duration::from_secs(10), |f| {
            f.recorded().iter().any(|r| r.token() == Some("known"))
        })
        .await;
    assert!(answered, "the known workflow's task was not answered");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops on shutdown")
        .unwrap();
    assert!(
        !fake
            .recorded()
            .iter()
            .any(|r| r.token() == Some("unknown-type")),
        "a task of an unknown type must be left to time out"
    );
}

/// The sum of every metric of `kind` named `name` whose labels include `labels`.
fn metric(
    seen: &[(CompositeKey, DebugValue)],
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    crate::common::metrics::sum(seen.iter().map(|(k, v)| (k, v)), kind, name, labels)
}

#[test]
fn decision_tasks_record_the_decider_metrics() {
    use swf_runtime::telemetry::metrics as m;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let fake = Arc::new(FakeSwf::new("Viblio", Duration::from_millis(20)));
                let registry = WorkflowRegistry::new().with(Arc::new(video_processing()));
                let poller = DeciderPoller::new(
                    fake.clone(),
                    "VideoProcessingDecider",
                    "decider@test",
                    registry,
                );
                let shutdown = CancellationToken::new();
                let retry = load("retry_then_success.json");
                let histories = [
                    (load("happy_path.json"), 4),
                    // Up to the decision task that saw transcode-1 fail.
                    (retry[..9].to_vec(), 1),
                    (load("attempts_exhausted.json"), 3),
                ];
                for (i, (events, per_page)) in histories.iter().enumerate() {
                    fake.push_decision_task(
                        "VideoProcessingDecider",
                        pages(events, *per_page, &format!("t{i}")),
                    );
                    let outcome =
                        tokio::time::timeout(Duration::from_secs(10), poller.run_once(&shutdown))
                            .await;
                    assert!(
                        matches!(outcome, Ok(Ok(Some(TaskOutcome::Answered(_))))),
                        "{outcome:?}"
                    );
                }
            })
    });
    let seen: Vec<(CompositeKey, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| (k, v))
        .collect();
    let wf = ("workflow_type", "VideoProcessing");
    let c = MetricKind::Counter;
    let h = MetricKind::Histogram;
    let happy_pages = load("happy_path.json").len().div_ceil(4);
    let exhausted_pages = load("attempts_exhausted.json").len().div_ceil(3);
    assert_eq!(
        metric(&seen, c, m::DECISION_HISTORY_PAGES.name, &[wf]),
        (happy_pages + 9 + exhausted_pages) as f64
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::DECISIONS.name,
            &[wf, ("decision_type", "CompleteWorkflowExecution")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::DECISIONS.name,
            &[wf, ("decision_type", "StartTimer")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::DECISIONS.name,
            &[wf, ("decision_type", "FailWorkflowExecution")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::WORKFLOW_EXECUTIONS.name,
            &[wf, ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::WORKFLOW_EXECUTIONS.name,
            &[wf, ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(metric(&seen, h, m::WORKFLOW_END_TO_END.name, &[wf]), 2.0);
    assert_eq!(
        metric(
            &seen,
            h,
            m::DECISION_EXECUTION.name,
            &[wf, ("outcome", "completed")]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &seen,
            h,
            m::DECISION_SCHEDULE_TO_START.name,
            &[wf, ("task_list", "VideoProcessingDecider")]
        ),
        3.0
    );
    // publish closed in the happy path's last task; transcode ran out of attempts in the other.
    assert_eq!(
        metric(
            &seen,
            h,
            m::STAGE_DURATION.name,
            &[wf, ("activity_type", "publish"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            h,
            m::STAGE_DURATION.name,
            &[wf, ("activity_type", "transcode"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::STAGE_ATTEMPTS.name,
            &[wf, ("activity_type", "transcode"), ("error_type", "failed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &seen,
            c,
            m::POLLS.name,
            &[("task_list", "VideoProcessingDecider"), ("outcome", "task")]
        ),
        3.0
    );
}

/// A looping history built the way the DAG decider drives it: a stage that always fails and is
/// retried at once (no backoff) until the history nears SWF's limit.
fn looping_history(cycles: usize) -> (DagWorkflow, Vec<HistoryEvent>) {
    let wf = DagWorkflow::builder(tref("Sweep", "1"))
        .stage(
            Stage::activity(
                "sweep",
                tref("sweep", "1"),
                "media",
                timeouts(60, 120, 60, None),
            )
            .retry(RetryPolicy {
                max_attempts: 1_000_000,
                initial_backoff_secs: 0,
                max_backoff_secs: 0,
                backoff_coefficient: 1.0,
                non_retryable_reasons: vec![],
            }),
        )
        .build()
        .unwrap();
    let input = r#"{"media_uuid":"5a1c-media-0001","user_uuid":"77e0-user-0042"}"#;
    let mut events = Vec::new();
    let mut t = 1_764_150_000.0;
    let mut push = |events: &mut Vec<HistoryEvent>, a: EventAttributes| {
        t += 0.01;
        let id = events.len() as i64 + 1;
        events.push(HistoryEvent::new(id, t, a));
        id
    };
    push(
        &mut events,
        EventAttributes::WorkflowExecutionStarted(WorkflowExecutionStartedEventAttributes {
            input: Some(input.into()),
            workflow_type: tref("Sweep", "1"),
            child_policy: "TERMINATE".into(),
            task_list: Some(TaskList::new("SweepDecider")),
            ..Default::default()
        }),
    );
    let envelope = |attempt: u32| {
        json!({"swf_runtime": {"media_uuid": "5a1c-media-0001", "user_uuid": "77e0-user-0042", "workflow_type": "Sweep",
            "stage": "sweep", "attempt": attempt}, "input": {"media_uuid": "5a1c-media-0001", "user_uuid": "77e0-user-0042"}})
        .to_string()
    };
    for cycle in 1..=cycles {
        let s = push(
            &mut events,
            EventAttributes::DecisionTaskScheduled(Default::default()),
        );
        let st = push(
            &mut events,
            EventAttributes::DecisionTaskStarted(DecisionTaskStartedEventAttributes {
                scheduled_event_id: s,
                identity: None,
            }),
        );
        let c = push(
            &mut events,
            EventAttributes::DecisionTaskCompleted(DecisionTaskCompletedEventAttributes {
                scheduled_event_id: s,
                started_event_id: st,
                ..Default::default()
            }),
        );
        let sched = push(
            &mut events,
            EventAttributes::ActivityTaskScheduled(ActivityTaskScheduledEventAttributes {
                activity_type: tref("sweep", "1"),
                activity_id: format!("sweep-{cycle}"),
                input: Some(envelope(cycle as u32)),
                control: Some(format!(r#"{{"stage":"sweep","attempt":{cycle}}}"#)),
                schedule_to_start_timeout: Some("60".into()),
                schedule_to_close_timeout: Some("120".into()),
                start_to_close_timeout: Some("60".into()),
                heartbeat_timeout: Some("NONE".into()),
                task_list: Some(TaskList::new("media")),
                task_priority: None,
                decision_task_completed_event_id: c,
            }),
        );
        let started = push(
            &mut events,
            EventAttributes::ActivityTaskStarted(ActivityTaskStartedEventAttributes {
                scheduled_event_id: sched,
                identity: None,
            }),
        );
        push(
            &mut events,
            EventAttributes::ActivityTaskFailed(ActivityTaskFailedEventAttributes {
                scheduled_event_id: sched,
                started_event_id: started,
                reason: Some("NothingYet".into()),
                details: None,
            }),
        );
    }
    let s = push(
        &mut events,
        EventAttributes::DecisionTaskScheduled(Default::default()),
    );
    push(
        &mut events,
        EventAttributes::DecisionTaskStarted(DecisionTaskStartedEventAttributes {
            scheduled_event_id: s,
            identity: None,
        }),
    );
    (wf, events)
}

#[test]
fn looping_workflow_continues_as_new_at_the_threshold() {
    // 6 events a cycle plus 3: 3,332 cycles end just under 20,000 events, 3,333 just over (and
    // every decision before the last was taken under the threshold).
    let (wf, below) = looping_history(3_332);
    assert!(below.len() < 20_000);
    assert_eq!(scheduled_ids(&decide(&wf, &below)), ["sweep-3333"]);

    let (wf, events) = looping_history(3_333);
    assert!(
        events.len() >= 20_000 && events.len() < 25_000,
        "{}",
        events.len()
    );
    // The recorded cycles are what the decider itself would have done (spot checks: replaying
    // all 3,333 prefixes would be quadratic).
    for cut in [3usize, 9, events.len() - 6] {
        let prefix = &events[..cut];
        assert_eq!(prefix.last().unwrap().event_type(), "DecisionTaskStarted");
        let next = events[cut + 1..].iter().find_map(|e| match &e.attributes {
            EventAttributes::ActivityTaskScheduled(a) => Some(a.activity_id.clone()),
            _ => None,
        });
        assert_eq!(scheduled_ids(&decide(&wf, prefix)), [next.unwrap()]);
    }

    let started = Instant::now();
    let decisions = decide(&wf, &events);
    let took = started.elapsed();
    let [Decision::ContinueAsNewWorkflowExecution(c)] = decisions.as_slice() else {
        panic!("expected ContinueAsNew, got {decisions:?}")
    };
    // Quadratic work on 20,000 events would take seconds even in a debug build.
    assert!(took < Duration::from_secs(2), "deciding took {took:?}");
    let input = json_of(&c.input);
    assert_eq!(input["media_uuid"], "5a1c-media-0001");
    assert_eq!(input["_continued"]["attempts"]["sweep"], 3_333);
    assert_eq!(c.task_list.as_ref().unwrap().name, "SweepDecider");
    assert_eq!(c.child_policy.as_deref(), Some("TERMINATE"));

    // The new run picks up where the old one stopped: attempt 3,334, not 1.
    let next_run = vec![
        HistoryEvent::new(
            1,
            1.0,
            EventAttributes::WorkflowExecutionStarted(WorkflowExecutionStartedEventAttributes {
                input: c.input.clone(),
                workflow_type: tref("Sweep", "1"),
                continued_execution_run_id: Some("22RunId0000".into()),
                ..Default::default()
            }),
        ),
        HistoryEvent::new(
            2,
            2.0,
            EventAttributes::DecisionTaskScheduled(Default::default()),
        ),
        HistoryEvent::new(
            3,
            3.0,
            EventAttributes::DecisionTaskStarted(DecisionTaskStartedEventAttributes {
                scheduled_event_id: 2,
                identity: None,
            }),
        ),
    ];
    let decisions = decide(&wf, &next_run);
    assert_eq!(scheduled_ids(&decisions), ["sweep-3334"]);
    assert_eq!(envelope_of(&decisions[0]).swf_runtime.attempt, 3_334);
}
