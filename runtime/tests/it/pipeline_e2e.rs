//! End to end, in process: the media pipeline on a real swf-local endpoint, decided and worked by
//! the runtime exactly as `swf-runtime run` wires it (`app::connect`, `app::register_all`,
//! `Host::start`), with the seed's durations scaled by 0.01.
//!
//! Each test gets its own endpoint, database and output folder (see `common/e2e.rs`), starts
//! executions through the SWF client, waits (bounded) for them to close and then judges them from
//! their SWF history, their timeline and the files the stages wrote.

use crate::common::e2e;

use std::time::Duration;

use anyhow::Result;
use e2e::{attributes, eventually, of_type, Pipeline};
use serde_json::{json, Value};
use swf_runtime::decider::timeline::StageTimeline;
use swf_runtime::decider::Timeline;
use swf_runtime::inject::InjectInput;
use swf_runtime::manual::ManualStore;
use swf_runtime::swf::{StartWorkflow, WorkflowExecution};

const STAGES: [&str; 4] = ["transcode", "thumbnails", "detect_faces", "publish"];
const PRODUCTS: [&str; 4] = [
    "transcoded.json",
    "thumbnails.json",
    "faces.json",
    "published.json",
];

fn media(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn stage<'a>(t: &'a Timeline, name: &str) -> &'a StageTimeline {
    t.stages
        .iter()
        .find(|s| s.stage == name)
        .unwrap_or_else(|| panic!("no stage {name} in the timeline: {t:#?}"))
}

/// The reason of the execution's WorkflowExecutionFailed event.
fn failure_reason(events: &[Value]) -> String {
    let failed = of_type(events, "WorkflowExecutionFailed");
    assert_eq!(failed.len(), 1, "one WorkflowExecutionFailed expected");
    attributes(failed[0])["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_completes_every_stage_once_and_writes_the_four_products() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let m = media("happy");
    let exec = p.start_media("VideoProcessing", &m, None).await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );

    let t = p.timeline(&exec).await?;
    assert_eq!(t.close_event.as_deref(), Some("WorkflowExecutionCompleted"));
    let names: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, STAGES, "stages in scheduling order");
    for s in &t.stages {
        assert_eq!(s.outcome, "completed", "{s:#?}");
        assert_eq!(s.attempts.len(), 1, "{s:#?}");
        assert_eq!((s.failures, s.timeouts), (0, 0), "{s:#?}");
        assert_eq!(s.task_list.as_deref(), Some("video-processing"));
        assert_eq!(s.attempts[0].worker.as_deref(), Some("e2e-host"));
    }
    // The DAG's order is what SWF recorded: B and C only after A closed, D only after both.
    let a = stage(&t, "transcode").closed_at.unwrap();
    let b = stage(&t, "thumbnails");
    let c = stage(&t, "detect_faces");
    let d = stage(&t, "publish");
    assert!(b.first_scheduled_at >= a && c.first_scheduled_at >= a);
    assert!(d.first_scheduled_at >= b.closed_at.unwrap().max(c.closed_at.unwrap()));
    // Each stage really worked for its scaled duration (30/5/10/8 s x 0.01).
    for (name, secs) in [
        ("transcode", 0.30),
        ("thumbnails", 0.05),
        ("detect_faces", 0.10),
        ("publish", 0.08),
    ] {
        let run = stage(&t, name).attempts[0].run_secs().unwrap();
        assert!(run >= secs * 0.9, "{name} ran {run} s, nominal {secs} s");
    }

    let dir = p.media_dir(&m);
    for file in PRODUCTS {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} missing: {e}", path.display()));
        let v: Value = serde_json::from_str(&text)?;
        assert_eq!(v["media_uuid"], m.as_str(), "{file}: {v}");
    }
    let published: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("published.json"))?)?;
    for upstream in ["transcode", "thumbnails", "detect_faces"] {
        assert!(
            published["products"][upstream].is_string(),
            "publish received {upstream}'s product: {published}"
        );
    }

    let events = p.events(&exec).await?;
    let completed = of_type(&events, "WorkflowExecutionCompleted");
    let result: Value = serde_json::from_str(
        attributes(completed[0])["result"]
            .as_str()
            .expect("the workflow completes with a result"),
    )?;
    for s in STAGES {
        assert!(
            result.to_string().contains(s),
            "the result carries {s}: {result}"
        );
    }
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_stages_really_overlap() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let exec = p
        .start_media("VideoProcessing", &media("parallel"), None)
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));

    let events = p.events(&exec).await?;
    let scheduled: Vec<Value> = of_type(&events, "ActivityTaskScheduled")
        .into_iter()
        .map(|e| json!({"id": e["eventId"], "attrs": attributes(e)}))
        .collect();
    let scheduled_id = |name: &str| {
        scheduled
            .iter()
            .find(|s| s["attrs"]["activityType"]["name"] == name)
            .map(|s| s["id"].as_i64().unwrap())
            .unwrap_or_else(|| panic!("{name} never scheduled"))
    };
    let (b_sched, c_sched) = (scheduled_id("thumbnails"), scheduled_id("detect_faces"));
    // One decision scheduled both.
    let decision_of = |id: i64| {
        scheduled
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["attrs"]["decisionTaskCompletedEventId"].clone())
            .unwrap()
    };
    assert_eq!(decision_of(b_sched), decision_of(c_sched));

    let at = |event_type: &str, sched: i64| {
        of_type(&events, event_type)
            .into_iter()
            .find(|e| attributes(e)["scheduledEventId"] == sched)
            .and_then(|e| e["eventTimestamp"].as_f64())
            .unwrap_or_else(|| panic!("no {event_type} for scheduled event {sched}"))
    };
    let (b_start, c_start) = (
        at("ActivityTaskStarted", b_sched),
        at("ActivityTaskStarted", c_sched),
    );
    let (b_end, c_end) = (
        at("ActivityTaskCompleted", b_sched),
        at("ActivityTaskCompleted", c_sched),
    );
    let gap_ms = (b_start - c_start).abs() * 1000.0;
    assert!(
        gap_ms <= 50.0,
        "thumbnails and detect_faces started {gap_ms:.1} ms apart"
    );
    let first_close = b_end.min(c_end);
    assert!(
        b_start < first_close && c_start < first_close,
        "both run at once: started {b_start}/{c_start}, first close {first_close}"
    );
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_failing_once_completes_on_attempt_two_after_its_backoff_timer() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let exec = p
        .start_media(
            "VideoProcessing",
            &media("fail-once"),
            Some(json!({"faults": {"transcode": {"fail_times": 1}}})),
        )
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );
    let t = p.timeline(&exec).await?;
    let a = stage(&t, "transcode");
    assert_eq!(a.attempts.len(), 2, "{a:#?}");
    assert_eq!(a.attempts[0].outcome, "failed");
    assert!(
        a.attempts[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("injected_failure"),
        "{a:#?}"
    );
    assert_eq!(a.attempts[1].attempt, 2);
    assert_eq!(a.attempts[1].outcome, "completed");
    assert_eq!(a.failures, 1);
    for s in &t.stages[1..] {
        assert_eq!(
            (s.outcome.as_str(), s.attempts.len()),
            ("completed", 1),
            "{s:#?}"
        );
    }

    // The retry waited for the policy's backoff: a 1 s timer between the failure and attempt 2.
    let events = p.events(&exec).await?;
    let started = of_type(&events, "TimerStarted");
    assert_eq!(started.len(), 1, "{}", p.dump(&exec).await);
    let timer = attributes(started[0]);
    assert_eq!(timer["timerId"], "retry-transcode-2");
    assert_eq!(timer["startToFireTimeout"], "1");
    assert_eq!(of_type(&events, "TimerFired").len(), 1);
    let waited = a.attempts[1].scheduled_at - a.attempts[0].closed_at.unwrap();
    assert!(
        waited >= 0.99,
        "attempt 2 came {waited} s after the failure"
    );
    // The product is attempt 2's.
    let product: Value = serde_json::from_str(&std::fs::read_to_string(
        p.media_dir(&exec.workflow_id).join("transcoded.json"),
    )?)?;
    assert_eq!(product["attempt"], 2);
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_failing_every_attempt_fails_the_workflow_naming_the_stage() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let max = p.cfg.pipeline.retry.max_attempts;
    let exec = p
        .start_media(
            "VideoProcessing",
            &media("fail-always"),
            Some(json!({"faults": {"detect_faces": {"fail_times": max}}})),
        )
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("FAILED"),
        "{}",
        p.dump(&exec).await
    );
    let events = p.events(&exec).await?;
    let reason = failure_reason(&events);
    assert!(
        reason.contains(&format!("stage detect_faces failed after {max} attempts")),
        "{reason}"
    );
    assert!(reason.contains("injected_failure"), "{reason}");
    let t = p.timeline(&exec).await?;
    let c = stage(&t, "detect_faces");
    assert_eq!(c.attempts.len() as u32, max, "{c:#?}");
    assert!(c.attempts.iter().all(|a| a.outcome == "failed"));
    assert_eq!(stage(&t, "thumbnails").outcome, "completed");
    assert!(
        t.stages.iter().all(|s| s.stage != "publish"),
        "publish must never be scheduled"
    );
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_stage_times_out_frees_its_slot_and_the_retry_completes() -> Result<()> {
    // One slot: the retry and the parallel stage can only run once the hung handler is cancelled
    // (its hang outlasts the test's bound), which proves the timeout frees the slot.
    let p = Pipeline::start(|c| Pipeline::slots(c, "video-processing", 1)).await?;
    let exec = p
        .start_media(
            "VideoProcessing",
            &media("hang"),
            Some(json!({"faults": {"thumbnails": {"hang": true, "hang_secs": 600.0, "fault_attempts": 1}}})),
        )
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );
    let t = p.timeline(&exec).await?;
    let b = stage(&t, "thumbnails");
    assert_eq!(b.attempts.len(), 2, "{b:#?}");
    assert_eq!(b.attempts[0].outcome, "timed_out", "{b:#?}");
    let tt = b.attempts[0].timeout_type.as_deref().unwrap_or_default();
    assert!(
        tt == "START_TO_CLOSE" || tt == "HEARTBEAT",
        "timed out by {tt}"
    );
    assert_eq!(b.attempts[1].outcome, "completed");
    assert_eq!(b.timeouts, 1);
    let events = p.events(&exec).await?;
    let timed_out = of_type(&events, "ActivityTaskTimedOut");
    assert_eq!(timed_out.len(), 1);
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_attempt_with_a_reason_and_the_retry_completes() -> Result<()>
{
    let p = Pipeline::start(|_| {}).await?;
    let exec = p
        .start_media(
            "VideoProcessing",
            &media("panic-once"),
            Some(json!({"faults": {"publish": {"panic": true, "fault_attempts": 1}}})),
        )
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );
    let events = p.events(&exec).await?;
    let failed = of_type(&events, "ActivityTaskFailed");
    assert_eq!(failed.len(), 1, "{}", p.dump(&exec).await);
    let attrs = attributes(failed[0]);
    assert!(
        attrs["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("handler panicked"),
        "{attrs}"
    );
    assert!(
        attrs["details"]
            .as_str()
            .unwrap_or_default()
            .contains("injected panic in stage publish"),
        "{attrs}"
    );
    let t = p.timeline(&exec).await?;
    let d = stage(&t, "publish");
    assert_eq!(
        d.attempts
            .iter()
            .map(|a| a.outcome.as_str())
            .collect::<Vec<_>>(),
        ["failed", "completed"]
    );
    assert!(p
        .media_dir(&exec.workflow_id)
        .join("published.json")
        .is_file());
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panicking_on_every_attempt_fails_the_workflow_by_policy() -> Result<()> {
    let p = Pipeline::start(|c| c.pipeline.retry.max_attempts = 2).await?;
    let exec = p
        .start_media(
            "VideoProcessing",
            &media("panic-always"),
            Some(json!({"faults": {"thumbnails": {"panic": true}}})),
        )
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(info.close_status.as_deref(), Some("FAILED"));
    let reason = failure_reason(&p.events(&exec).await?);
    assert!(
        reason.contains("stage thumbnails failed after 2 attempts") && reason.contains("panicked"),
        "{reason}"
    );
    // The worker survived both panics: the next execution on the same host completes.
    let next = p
        .start_media("VideoProcessing", &media("after-panic"), None)
        .await?;
    assert_eq!(
        p.wait_closed(&next).await?.close_status.as_deref(),
        Some("COMPLETED")
    );
    p.stop().await;
    Ok(())
}

/// Waits until the manual handler handed the task out (its request file exists) and returns the
/// token it recorded there.
async fn handed_out_token(p: &Pipeline, m: &str) -> Result<String> {
    let request = p.media_dir(m).join("face_recognition_request.json");
    eventually("the face recognition request", e2e::EXECUTION_WAIT, || {
        let request = request.clone();
        async move {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&request).ok()?).ok()?;
            v["task_token"].as_str().map(str::to_string)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_recognition_waits_for_a_person_and_completes_by_hand() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let m = media("faces");
    let exec = p.start_media("FaceRecognition", &m, None).await?;
    let token = handed_out_token(&p, &m).await?;
    // The task stays open: the handler answered "complete later", not SWF.
    let t = p.timeline(&exec).await?;
    let s = stage(&t, "recognize_faces_manual");
    assert_eq!(s.outcome, "open", "{s:#?}");
    assert!(s.attempts[0].started_at.is_some());
    assert_eq!(
        s.attempts[0].timeouts.start_to_close.as_deref(),
        Some("28800"),
        "the manual stage keeps its configured hours, unscaled"
    );
    let info = p.client.describe_workflow_execution(&exec).await?;
    assert_eq!(info.execution_status, "OPEN");

    let answer = json!({"faces": [{"face_id": "face-1", "name": "Ada"}]}).to_string();
    swf_runtime::worker::complete_by_hand(p.client.as_ref(), &token, Some(answer.clone())).await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );
    let events = p.events(&exec).await?;
    let done = of_type(&events, "ActivityTaskCompleted");
    assert_eq!(attributes(done[0])["result"], answer.as_str());
    let result = attributes(of_type(&events, "WorkflowExecutionCompleted")[0])["result"].clone();
    assert!(
        result.as_str().unwrap_or_default().contains("Ada"),
        "the person's answer is the workflow's result: {result}"
    );
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manual_task_token_is_kept_for_swf_runtime_complete() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let m = media("faces-store");
    let exec = p.start_media("FaceRecognition", &m, None).await?;
    let token = handed_out_token(&p, &m).await?;
    // `swf-runtime complete --media-uuid` and `complete --list` read the ManualStore (as they
    // build it); the token the handler left open must be there once the handler has answered.
    let store = ManualStore::new(&p.cfg.data_dir).with_output_dir(&p.cfg.pipeline.output_dir);
    let pending = eventually(
        "the token in the manual task store",
        Duration::from_secs(5),
        || async { store.find(&m).ok().flatten() },
    )
    .await;
    let pending = match pending {
        Ok(pending) => pending,
        Err(e) => {
            let p_out = p.cfg.pipeline.output_dir.clone();
            // Leave SWF tidy before failing.
            let _ =
                swf_runtime::worker::fail_by_hand(p.client.as_ref(), &token, "test", None).await;
            p.stop().await;
            panic!(
                "{e}: neither {} nor the request files under {} gave it",
                store.dir().display(),
                p_out.display()
            );
        }
    };
    assert_eq!(pending.token, token);
    assert_eq!(pending.media_uuid, m);
    swf_runtime::worker::complete_by_hand(p.client.as_ref(), &pending.token, Some("{}".into()))
        .await?;
    store.mark_answered(&pending)?;
    assert!(
        store.find(&m)?.is_none(),
        "an answered task is no longer waiting"
    );
    assert_eq!(
        p.wait_closed(&exec).await?.close_status.as_deref(),
        Some("COMPLETED")
    );
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_manual_task_is_handed_out_again_then_fails_by_policy() -> Result<()> {
    let p = Pipeline::start(|c| {
        c.pipeline.face_recognition.start_to_close_secs = Some(1);
        c.pipeline.face_recognition.schedule_to_start_secs = Some(30);
        c.pipeline.face_recognition.max_attempts = 2;
    })
    .await?;
    let exec = p
        .start_media("FaceRecognition", &media("faces-late"), None)
        .await?;
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("FAILED"),
        "{}",
        p.dump(&exec).await
    );
    let t = p.timeline(&exec).await?;
    let s = stage(&t, "recognize_faces_manual");
    assert_eq!(s.attempts.len(), 2, "{s:#?}");
    for a in &s.attempts {
        assert_eq!(a.outcome, "timed_out");
        assert_eq!(a.timeout_type.as_deref(), Some("START_TO_CLOSE"));
        assert!(a.started_at.is_some(), "each attempt was handed out");
    }
    let reason = failure_reason(&p.events(&exec).await?);
    assert!(
        reason.contains("stage recognize_faces_manual failed after 2 attempts"),
        "{reason}"
    );
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_at_once_with_a_reason_and_the_worker_keeps_serving() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let cases = [
        (r#"{"user_uuid":"u-1"}"#, "media_uuid"),
        (r#"{"media_uuid": "m", "user_uuid": "#, "malformed JSON"),
        (
            r#"{"media_uuid":"m","user_uuid":"u","colour":"red"}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"media_uuid":"m","user_uuid":"u","faults":{"transcod":{"fail_times":1}}}"#,
            "transcod",
        ),
    ];
    let mut execs = Vec::new();
    for (i, (input, _)) in cases.iter().enumerate() {
        execs.push(
            p.start_raw("VideoProcessing", &media(&format!("bad-{i}")), input)
                .await?,
        );
    }
    for ((input, expected), exec) in cases.iter().zip(&execs) {
        let info = p.wait_closed(exec).await?;
        assert_eq!(info.close_status.as_deref(), Some("FAILED"), "{input}");
        let events = p.events(exec).await?;
        let reason = failure_reason(&events);
        assert!(
            reason.starts_with("invalid input") && reason.contains(expected),
            "{input}: {reason:?} should name {expected:?}"
        );
        assert!(
            of_type(&events, "ActivityTaskScheduled").is_empty(),
            "{input}: a bad input never reaches a worker"
        );
        assert!(
            of_type(&events, "DecisionTaskCompleted").len() == 1,
            "{input}: failed at the first decision\n{}",
            p.dump(exec).await
        );
    }
    let good = p
        .start_media("VideoProcessing", &media("good-after-bad"), None)
        .await?;
    assert_eq!(
        p.wait_closed(&good).await?.close_status.as_deref(),
        Some("COMPLETED")
    );
    p.stop().await;
    Ok(())
}

/// Puts one `upload` task on its task list the way `swf-runtime inject` does (the built-in
/// inject workflow) and returns the task's result once it completed.
async fn inject_upload(p: &Pipeline, input: Value) -> Result<Value> {
    let inject = InjectInput {
        activity_type: "upload".into(),
        version: "1.0".into(),
        task_list: None,
        input: input.to_string(),
        start_to_close_secs: None,
    };
    let id = format!("inject-{}", uuid::Uuid::new_v4());
    let run_id = p
        .client
        .start_workflow_execution(&StartWorkflow {
            workflow_id: id.clone(),
            workflow_type: Some(swf_runtime::inject::inject_type()),
            task_list: Some(swf_runtime::app::INJECT_DECIDER_TASK_LIST.into()),
            input: Some(serde_json::to_string(&inject)?),
            ..StartWorkflow::default()
        })
        .await?;
    let exec = WorkflowExecution {
        workflow_id: id,
        run_id,
    };
    let info = p.wait_closed(&exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&exec).await
    );
    let events = p.events(&exec).await?;
    Ok(serde_json::from_str(
        attributes(of_type(&events, "WorkflowExecutionCompleted")[0])["result"]
            .as_str()
            .expect("the inject workflow completes with the task's result"),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_upload_accepts_the_workflow_already_open_for_its_media() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let m = media("upload-twice");
    // Transcode pauses 2 s first (well inside its 3 s timeout), so the execution is surely still
    // open when the repeated upload arrives.
    let faults = json!({"transcode": {"hang": true, "hang_secs": 2.0}});
    let video = p
        .start_media("VideoProcessing", &m, Some(json!({ "faults": faults })))
        .await?;
    let result = inject_upload(
        &p,
        json!({"media_uuid": m, "user_uuid": "user-e2e", "faults": faults}),
    )
    .await?;
    assert_eq!(result["already_started"], true, "{result}");
    assert_eq!(result["run_id"], Value::Null, "{result}");
    let info = p.client.describe_workflow_execution(&video).await?;
    assert_eq!(info.execution_status, "OPEN", "the test's premise");
    assert_eq!(
        p.wait_closed(&video).await?.close_status.as_deref(),
        Some("COMPLETED")
    );
    let runs = p
        .client
        .list_executions(
            swf_runtime::swf::ExecutionState::Closed,
            3600,
            Some(m.as_str()),
        )
        .await?;
    assert_eq!(runs.len(), 1, "one VideoProcessing for the media, not two");
    p.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_upload_starts_video_processing_for_its_media() -> Result<()> {
    let p = Pipeline::start(|_| {}).await?;
    let m = media("upload");
    let result = inject_upload(
        &p,
        json!({"media_uuid": m, "user_uuid": "user-e2e", "source": "file:///in/clip.mov"}),
    )
    .await?;
    assert_eq!(result["workflow_type"], "VideoProcessing");
    assert_eq!(result["workflow_id"], m.as_str());
    assert_eq!(result["already_started"], false);
    let video = WorkflowExecution {
        workflow_id: m.clone(),
        run_id: result["run_id"].as_str().expect("a run id").to_string(),
    };
    let info = p.wait_closed(&video).await?;
    assert_eq!(info.workflow_type.name, "VideoProcessing");
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        p.dump(&video).await
    );
    let dir = p.media_dir(&m);
    let upload: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("upload.json"))?)?;
    assert_eq!(upload["source"], "file:///in/clip.mov");
    for file in PRODUCTS {
        assert!(dir.join(file).is_file(), "{file}");
    }
    p.stop().await;
    Ok(())
}
