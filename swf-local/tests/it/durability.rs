//! Everything acknowledged survives a restart: a clean shutdown, a dropped handle, and a SIGKILLed
//! `swf-local` process. Task tokens stay valid across restarts, queued tasks are handed out again
//! and pending timers and timeouts fire from their stored deadlines.

use crate::common;

use std::process::Stdio;

use aws_sdk_swf::types::*;
use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn work_before_restart(c: &aws_sdk_swf::Client) -> (String, String) {
    setup(c).await;
    let run = start_wf(c, "dur").await;
    let d = decision_task(c).await;
    decide(
        c,
        d.task_token(),
        vec![
            schedule_with("a", |b| b.start_to_close_timeout("30")),
            schedule("queued"),
            start_timer("t", 2),
        ],
    )
    .await;
    let a = activity_task(c).await;
    assert_eq!(a.activity_id(), "a");
    c.record_activity_task_heartbeat()
        .task_token(a.task_token())
        .details("before")
        .send()
        .await
        .unwrap();
    (run, a.task_token().to_string())
}

async fn check_after_restart(
    c: &aws_sdk_swf::Client,
    run: &str,
    token: &str,
    before: &[HistoryEvent],
) {
    let after = history(c, "dur", run).await;
    assert_eq!(kinds(&after), kinds(before));
    assert_eq!(after.len(), before.len());
    c.describe_domain().name(DOMAIN).send().await.unwrap();
    c.describe_activity_type()
        .domain(DOMAIN)
        .activity_type(act_type())
        .send()
        .await
        .unwrap();
    // The queued activity is handed out again, the started one answers with its old token.
    let q = activity_task(c).await;
    assert_eq!(q.activity_id(), "queued");
    c.record_activity_task_heartbeat()
        .task_token(token)
        .send()
        .await
        .unwrap();
    c.respond_activity_task_completed()
        .task_token(token)
        .result("r")
        .send()
        .await
        .unwrap();
    // The timer started before the restart still fires.
    let mut seen = Vec::new();
    while !seen.contains(&"TimerFired".to_string()) {
        let d = decision_task(c).await;
        seen.extend(kinds(d.events()));
        decide(c, d.task_token(), vec![]).await;
    }
    assert!(seen.contains(&"ActivityTaskCompleted".to_string()));
}

#[tokio::test]
async fn clean_shutdown_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let first = swf_local::start(config.clone()).await.unwrap();
    let c = client_for(&first.endpoint_url(), "k", "s");
    let (run, token) = work_before_restart(&c).await;
    let before = history(&c, "dur", &run).await;
    first.shutdown().await;

    let second = swf_local::start(config).await.unwrap();
    let c = client_for(&second.endpoint_url(), "k", "s");
    check_after_restart(&c, &run, &token, &before).await;
    second.shutdown().await;
}

#[tokio::test]
async fn dropped_handle_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let first = swf_local::start(config.clone()).await.unwrap();
    let c = client_for(&first.endpoint_url(), "k", "s");
    let (run, token) = work_before_restart(&c).await;
    let before = history(&c, "dur", &run).await;
    drop(first);

    let second = swf_local::start(config).await.unwrap();
    let c = client_for(&second.endpoint_url(), "k", "s");
    check_after_restart(&c, &run, &token, &before).await;
}

async fn spawn_binary(db: &std::path::Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swf-local"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(["--long-poll-secs", "2"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = bounded(30, lines.next_line())
        .await
        .unwrap()
        .expect("a first line");
    let url = line.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, url)
}

#[tokio::test]
async fn sigkill_keeps_acknowledged_work_and_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let (mut proc1, url) = spawn_binary(&db).await;
    let c = client_for(&url, "k", "s");
    setup(&c).await;
    let run = start_wf(&c, "killed").await;
    let d = decision_task(&c).await;
    decide(
        &c,
        d.task_token(),
        vec![schedule_with("a", |b| b.start_to_close_timeout("2"))],
    )
    .await;
    let a = activity_task(&c).await;
    for i in 0..20 {
        c.signal_workflow_execution()
            .domain(DOMAIN)
            .workflow_id("killed")
            .signal_name(format!("s{i}"))
            .send()
            .await
            .unwrap();
    }
    let before = history(&c, "killed", &run).await;
    proc1.kill().await.unwrap();

    let (_proc2, url) = spawn_binary(&db).await;
    let c = client_for(&url, "k", "s");
    let after = history(&c, "killed", &run).await;
    assert_eq!(kinds(&after)[..before.len()], kinds(&before)[..]);
    // The start-to-close deadline of the activity started before the kill still fires.
    let mut timed_out = None;
    bounded(20, async {
        while timed_out.is_none() {
            let d = decision_task(&c).await;
            timed_out = d
                .events()
                .iter()
                .find_map(|e| e.activity_task_timed_out_event_attributes())
                .cloned();
            decide(&c, d.task_token(), vec![]).await;
        }
    })
    .await;
    assert_eq!(
        timed_out.unwrap().timeout_type(),
        &ActivityTaskTimeoutType::StartToClose
    );
    let err = c
        .respond_activity_task_completed()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
}
