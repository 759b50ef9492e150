//! The failure drills of issue 7, as tests that keep passing: real `swf-runtime` processes
//! (`serve-local`, `run` in its decider-only, worker-only and embedded forms) are killed,
//! stopped, starved of their Logstash or collector, fed bad input, and each drill asserts on the
//! execution histories, the JSON log files and `/metrics` what an operator relies on.
//!
//! Drill 1 also runs against moto's SWF server when `moto_server` is installed. Time is scaled
//! down (0.01, 0.002 for the chaos run) and every wait is a deadline loop on an observable
//! condition (see `common/drill.rs`); the only sleeps pace the chaos run's kills. Each drill
//! prints its duration; the chaos run's seed can be changed with `DRILL_CHAOS_SEED`.
//!
//! Run: `cargo test -p swf-runtime --test drills -- --nocapture`.

use crate::common::drill;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::time::Instant;

use drill::*;
use swf_runtime::swf::{ExecutionState, SwfClient};

const CLOSE_WITHIN: Duration = Duration::from_secs(60);

fn report(name: &str, started: Instant) {
    println!(
        "drill {name}: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn is_started_by(h: &Hist, ev: &Value, stage: &str, identity: &str) -> bool {
    event_type(ev) == "ActivityTaskStarted"
        && h.stage_of(ev) == stage
        && attrs(ev)["identity"].as_str() == Some(identity)
}

/// Lines of `proc`'s log with this message.
fn lines_with(proc: &Proc, msg: &str) -> Vec<Value> {
    proc.log_lines()
        .into_iter()
        .filter(|l| message(l) == msg)
        .collect()
}

/// Waits until `proc`'s `/metrics` shows `name{labels}` at `min` or more; returns the value.
async fn wait_metric(
    proc: &Proc,
    after_line: usize,
    name: &str,
    labels: &[(&str, &str)],
    min: f64,
) -> Result<f64> {
    let addr = proc.metrics_addr(after_line).await?;
    wait_for(
        Duration::from_secs(20),
        &format!("{name}{labels:?} >= {min} on {}", proc.name),
        || async move {
            let v = metric_sum(&scrape(addr).await?, name, labels);
            Ok((v >= min).then_some(v))
        },
    )
    .await
}

/// Drill 1: a worker killed with SIGKILL mid-activity. The task times out, the decider retries
/// it, another worker process runs the retry, and the timeout shows in history, logs, metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_01_worker_killed_mid_activity() -> Result<()> {
    let t0 = Instant::now();
    let d = worker_killed_drill_setup("worker-killed")?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    worker_killed_drill(&d, &url).await?;
    report("01 worker killed mid-activity", t0);
    Ok(())
}

/// Drill 1 against moto's SWF server, a third-party implementation (it enforces heartbeat
/// timeouts lazily, at the next API call, and answers polls at once). Skipped, saying so, when
/// `moto_server` is not installed (`pip install 'moto[server]'`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_01_worker_killed_mid_activity_on_moto() -> Result<()> {
    let t0 = Instant::now();
    let Some(moto) = find_on_path("moto_server") else {
        println!("drill 01 on moto: SKIPPED, moto_server is not on PATH");
        return Ok(());
    };
    let d = worker_killed_drill_setup("worker-killed-moto")?;
    let port = free_port();
    let _moto = d.spawn_program("moto", &moto, &["-H", "127.0.0.1", "-p", &port.to_string()])?;
    wait_for(
        Duration::from_secs(30),
        "moto_server to listen",
        || async move {
            Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ()))
        },
    )
    .await?;
    worker_killed_drill(&d, &format!("http://127.0.0.1:{port}")).await?;
    report("01 worker killed mid-activity, on moto", t0);
    Ok(())
}

fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Transcode runs 3 s (300 s nominal x 0.01) with a 2 s heartbeat timeout: long enough to be
/// killed in the middle, short enough to time out quickly.
fn worker_killed_drill_setup(name: &str) -> Result<Drill> {
    Drill::new(
        name,
        &Extra {
            pipeline: "transcode_secs = 300.0",
            ..Extra::default()
        },
    )
}

async fn worker_killed_drill(d: &Drill, url: &str) -> Result<()> {
    let url = url.to_string();
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let decider = d.runtime("decider", &url, &["--no-workers"])?;
    let mut worker_a = d.runtime(
        "worker-a",
        &url,
        &[
            "--no-decider",
            "--task-list",
            "video-processing=2",
            "--identity",
            "worker-a",
        ],
    )?;
    let exec = start_video(client.as_ref(), "drill-worker-killed", None).await?;
    wait_event(
        client.as_ref(),
        &exec,
        Duration::from_secs(30),
        "worker-a to start transcode",
        |h, e| is_started_by(h, e, "transcode", "worker-a"),
    )
    .await?;
    worker_a.kill9();
    let _worker_b = d.runtime(
        "worker-b",
        &url,
        &[
            "--no-decider",
            "--task-list",
            "video-processing=2",
            "--identity",
            "worker-b",
        ],
    )?;
    let info = wait_closed(client.as_ref(), &exec, CLOSE_WITHIN).await?;
    let h = history(client.as_ref(), &exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        h.summary()
    );
    let timeouts = h.of_type("ActivityTaskTimedOut");
    assert_eq!(timeouts.len(), 1, "{}", h.summary());
    assert_eq!(h.stage_of(timeouts[0]), "transcode");
    let kind = attrs(timeouts[0])["timeoutType"].as_str().unwrap_or("");
    assert!(
        kind == "HEARTBEAT" || kind == "START_TO_CLOSE",
        "timeout type {kind}"
    );
    assert!(
        h.0.iter()
            .any(|e| is_started_by(&h, e, "transcode", "worker-b")),
        "the retry ran on worker-b: {}",
        h.summary()
    );
    assert_each_stage_completed_once(&h);

    // The decider says why it retried, with the execution's ids, and counts it.
    let retry_error_type = format!("timeout_{}", kind.to_ascii_lowercase());
    let line = wait_for(Duration::from_secs(10), "the decider's retry line", || {
        let found = lines_with(&decider, "Stage attempt failed; retrying after a backoff.")
            .into_iter()
            .find(|l| field(l, "stage") == Some("transcode"));
        async move { Ok(found) }
    })
    .await?;
    assert_eq!(field(&line, "workflow_id"), Some(exec.workflow_id.as_str()));
    assert_eq!(
        field(&line, "error_type"),
        Some(retry_error_type.as_str()),
        "{line}"
    );
    assert_eq!(line["attempt"], 2, "{line}");
    wait_metric(
        &decider,
        0,
        "swf_stage_retries_total",
        &[
            ("activity_type", "transcode"),
            ("error_type", retry_error_type.as_str()),
        ],
        1.0,
    )
    .await?;
    Ok(())
}

/// Drill 2: the decider killed midway. Activities already running finish and are recorded with
/// no decider alive; the decision task the dead decider had taken times out and is handed to a
/// new decider, which completes the execution.
///
/// The decider is first frozen (SIGSTOP) so that its open long poll takes the decision task the
/// activity's result schedules, exactly as a decider dying in the middle of a decision would
/// leave it; then it is killed (SIGKILL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_02_decider_killed_midway() -> Result<()> {
    let t0 = Instant::now();
    let d = Drill::new(
        "decider-killed",
        &Extra {
            pipeline: "transcode_secs = 300.0",
            // The frozen decider's poll must still be open when transcode finishes.
            long_poll_secs: Some(30),
            ..Extra::default()
        },
    )?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let _worker = d.runtime(
        "worker",
        &url,
        &["--no-decider", "--task-list", "video-processing=4"],
    )?;
    let mut decider_a = d.runtime(
        "decider-a",
        &url,
        &["--no-workers", "--identity", "decider-a"],
    )?;
    let exec = start_video(client.as_ref(), "drill-decider-killed", None).await?;
    wait_event(
        client.as_ref(),
        &exec,
        Duration::from_secs(30),
        "transcode to start",
        |h, e| event_type(e) == "ActivityTaskStarted" && h.stage_of(e) == "transcode",
    )
    .await?;
    decider_a.signal("STOP")?;

    // With no decider working, the running activity still finishes and its result is recorded.
    let completed = wait_event(
        client.as_ref(),
        &exec,
        Duration::from_secs(30),
        "transcode's result with no decider working",
        |h, e| event_type(e) == "ActivityTaskCompleted" && h.stage_of(e) == "transcode",
    )
    .await?;
    assert!(
        attrs(&completed)["result"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{completed}"
    );
    let taken = wait_event(
        client.as_ref(),
        &exec,
        Duration::from_secs(30),
        "the frozen decider's poll to take the next decision task",
        |_, e| {
            event_type(e) == "DecisionTaskStarted"
                && event_id(e) > event_id(&completed)
                && attrs(e)["identity"].as_str() == Some("decider-a")
        },
    )
    .await?;
    decider_a.kill9();
    let h = history(client.as_ref(), &exec).await?;
    assert!(
        h.0.iter()
            .filter(|e| event_id(e) > event_id(&completed))
            .all(|e| event_type(e) != "DecisionTaskCompleted"),
        "nobody decided while no decider worked: {}",
        h.summary()
    );

    let _decider_b = d.runtime(
        "decider-b",
        &url,
        &["--no-workers", "--identity", "decider-b"],
    )?;
    let info = wait_closed(client.as_ref(), &exec, CLOSE_WITHIN).await?;
    let h = history(client.as_ref(), &exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        h.summary()
    );
    assert_each_stage_completed_once(&h);
    // The dead decider's decision task timed out and went to decider-b.
    let timed_out = h
        .of_type("DecisionTaskTimedOut")
        .into_iter()
        .find(|e| attrs(e)["startedEventId"].as_i64() == Some(event_id(&taken)))
        .with_context(|| {
            format!(
                "no DecisionTaskTimedOut for {}: {}",
                event_id(&taken),
                h.summary()
            )
        })?;
    assert_eq!(attrs(timed_out)["timeoutType"], "START_TO_CLOSE");
    assert!(
        h.0.iter().any(|e| event_type(e) == "DecisionTaskStarted"
            && event_id(e) > event_id(timed_out)
            && attrs(e)["identity"].as_str() == Some("decider-b")),
        "decider-b took over: {}",
        h.summary()
    );
    // Every decision task started was answered or timed out; only decider-a's timed out.
    for started in h.of_type("DecisionTaskStarted") {
        let sid = event_id(started);
        let outcome =
            h.0.iter()
                .find(|e| {
                    matches!(
                        event_type(e),
                        "DecisionTaskCompleted" | "DecisionTaskTimedOut"
                    ) && attrs(e)["startedEventId"].as_i64() == Some(sid)
                })
                .map(|e| event_type(e).to_string());
        match (outcome.as_deref(), attrs(started)["identity"].as_str()) {
            (Some("DecisionTaskCompleted"), _) => {}
            (Some("DecisionTaskTimedOut"), Some("decider-a")) => {}
            other => panic!("decision task started at {sid}: {other:?}: {}", h.summary()),
        }
    }
    report("02 decider killed midway", t0);
    Ok(())
}

/// Drill 3: a worker past its timeout. The first publish attempt hangs without making
/// progress; SWF times it out, the worker's next heartbeat gets UnknownResourceFault, the
/// runtime cancels the handler, frees the slot, logs one line with the task's ids and counts it;
/// the retry completes the workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_03_worker_past_its_timeout() -> Result<()> {
    let t0 = Instant::now();
    let d = Drill::new("worker-timeout", &Extra::default())?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let rt = d.runtime("runtime", &url, &["--task-list", "video-processing=2"])?;
    let exec = start_video(
        client.as_ref(),
        "drill-worker-timeout",
        Some(r#"{"faults":{"publish":{"hang":true,"fault_attempts":1}}}"#),
    )
    .await?;
    let info = wait_closed(client.as_ref(), &exec, CLOSE_WITHIN).await?;
    let h = history(client.as_ref(), &exec).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("COMPLETED"),
        "{}",
        h.summary()
    );
    let timeouts = h.of_type("ActivityTaskTimedOut");
    assert_eq!(timeouts.len(), 1, "{}", h.summary());
    assert_eq!(h.stage_of(timeouts[0]), "publish");
    assert_each_stage_completed_once(&h);
    let first_publish = h
        .of_type("ActivityTaskScheduled")
        .into_iter()
        .find(|e| h.stage_of(e) == "publish")
        .map(|e| attrs(e)["activityId"].as_str().unwrap_or("").to_string())
        .context("publish scheduled")?;

    let abandoned = "Activity task abandoned: SWF no longer knows it (timed out or closed); handler cancelled, slot freed.";
    let lines = wait_for(Duration::from_secs(15), "the abandoned-task line", || {
        let found = lines_with(&rt, abandoned);
        async move { Ok((!found.is_empty()).then_some(found)) }
    })
    .await?;
    // One clear line, however many heartbeats the hanging handler missed.
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["log.level"], "warn", "{l}");
    assert_eq!(
        field(l, "workflow_id"),
        Some(exec.workflow_id.as_str()),
        "{l}"
    );
    assert_eq!(field(l, "run_id"), Some(exec.run_id.as_str()), "{l}");
    assert_eq!(field(l, "activity_id"), Some(first_publish.as_str()), "{l}");
    assert!(
        field(l, "task_token_hash").is_some_and(|t| !t.is_empty()),
        "{l}"
    );
    wait_metric(
        &rt,
        0,
        "swf_activity_unknown_resource_total",
        &[("activity_type", "publish")],
        1.0,
    )
    .await?;
    // The hanging handler was cancelled: its task ended long before the hang would have.
    let finished = lines_with(&rt, "Activity task finished.")
        .into_iter()
        .find(|l| field(l, "activity_id") == Some(first_publish.as_str()))
        .context("the abandoned task's closing line")?;
    assert_eq!(field(&finished, "outcome"), Some("timed_out"), "{finished}");
    assert!(
        finished["duration_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 10_000),
        "{finished}"
    );
    // The hanging handler's slot was given back.
    let text = scrape(rt.metrics_addr(0).await?).await?;
    assert_eq!(
        metric_sum(
            &text,
            "swf_worker_slots_in_use",
            &[("task_list", "video-processing")]
        ),
        0.0
    );
    assert_eq!(
        metric_sum(&text, "swf_activity_unknown_resource_total", &[]),
        1.0
    );
    report("03 worker past its timeout", t0);
    Ok(())
}

/// Drill 4: the runtime hosting the embedded swf-local is killed with SIGKILL during a run of
/// many executions and started again on the same data folder: every execution completes, every
/// event acknowledged before the kill is still there, and no stage completes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_04_runtime_host_restarted() -> Result<()> {
    let t0 = Instant::now();
    const N: usize = 24;
    let d = Drill::new(
        "host-restarted",
        &Extra {
            pipeline: "transcode_secs = 100.0",
            ..Extra::default()
        },
    )?;
    let host_args = [
        "--metrics-addr",
        "127.0.0.1:0",
        "run",
        "--task-list",
        "video-processing=4",
    ];
    let url_file = d.path().join("host").join("swf-local.url");
    let mut host = d.spawn("host", &host_args)?;
    let url = wait_url(&url_file).await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let mut execs = Vec::new();
    for i in 0..N {
        execs.push(start_video(client.as_ref(), &format!("drill-host-{i:02}"), None).await?);
    }
    // Kill once a few executions closed and others are mid-flight.
    wait_for(Duration::from_secs(60), "a few executions to close", || {
        let client = client.clone();
        async move {
            let closed = client
                .list_executions(ExecutionState::Closed, 3600, None)
                .await?;
            Ok((closed.len() >= 3).then_some(()))
        }
    })
    .await?;
    let mut before = BTreeMap::new();
    for e in &execs {
        before.insert(e.workflow_id.clone(), history(client.as_ref(), e).await?);
    }
    host.kill9();
    std::fs::remove_file(&url_file)?;
    let open_at_kill = before
        .values()
        .filter(|h| !h.has("WorkflowExecutionCompleted"))
        .count();
    assert!(open_at_kill > 0, "the kill must hit a running batch");

    let _host = d.spawn("host", &host_args)?;
    let url = wait_url(&url_file).await?;
    let client = d.client(&url).await?;
    for e in &execs {
        let info = wait_closed(client.as_ref(), e, CLOSE_WITHIN).await?;
        let h = history(client.as_ref(), e).await?;
        assert_eq!(
            info.close_status.as_deref(),
            Some("COMPLETED"),
            "{}: {}",
            e.workflow_id,
            h.summary()
        );
        assert_each_stage_completed_once(&h);
        let old = &before[&e.workflow_id];
        assert!(old.0.len() <= h.0.len());
        for (a, b) in old.0.iter().zip(h.0.iter()) {
            assert_eq!(a, b, "{}: an acknowledged event changed", e.workflow_id);
        }
    }
    println!("drill 04: {open_at_kill} of {N} executions were open at the kill");
    report("04 runtime host restarted", t0);
    Ok(())
}

async fn wait_url(file: &std::path::Path) -> Result<String> {
    wait_for(
        Duration::from_secs(30),
        "the embedded endpoint's URL file",
        || {
            let url = std::fs::read_to_string(file)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            async move { Ok(url) }
        },
    )
    .await
}

/// Drill 5: SIGTERM during a run. Polling stops, the in-flight tasks finish and are answered,
/// the process exits 0, and nothing times out because of the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_05_graceful_stop() -> Result<()> {
    let t0 = Instant::now();
    let d = Drill::new(
        "graceful-stop",
        &Extra {
            pipeline: "transcode_secs = 200.0",
            ..Extra::default()
        },
    )?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let mut rt = d.runtime(
        "runtime-a",
        &url,
        &[
            "--task-list",
            "video-processing=4",
            "--drain-timeout-secs",
            "30",
        ],
    )?;
    let mut execs = Vec::new();
    for i in 0..3 {
        execs.push(start_video(client.as_ref(), &format!("drill-sigterm-{i}"), None).await?);
    }
    for e in &execs {
        wait_event(
            client.as_ref(),
            e,
            Duration::from_secs(30),
            "transcode to start",
            |h, ev| event_type(ev) == "ActivityTaskStarted" && h.stage_of(ev) == "transcode",
        )
        .await?;
    }
    rt.signal("TERM")?;
    let status = rt.wait_exit(Duration::from_secs(40)).await?;
    assert!(status.success(), "exit {status}; stderr: {}", rt.stderr());
    // Every task in flight at the signal was answered before the process exited.
    for e in &execs {
        let h = history(client.as_ref(), e).await?;
        assert_eq!(
            h.count_by_stage("ActivityTaskCompleted").get("transcode"),
            Some(&1),
            "{}",
            h.summary()
        );
    }
    let drain = lines_with(&rt, "Polling stopped; draining in-flight activity tasks.");
    assert!(
        drain
            .iter()
            .any(|l| field(l, "task_list") == Some("video-processing")
                && l["in_flight"].as_u64() == Some(3)),
        "{drain:?}"
    );
    assert_eq!(lines_with(&rt, "Runtime stopped.").len(), 1);

    let _rt_b = d.runtime("runtime-b", &url, &["--task-list", "video-processing=4"])?;
    for e in &execs {
        let info = wait_closed(client.as_ref(), e, CLOSE_WITHIN).await?;
        let h = history(client.as_ref(), e).await?;
        assert_eq!(
            info.close_status.as_deref(),
            Some("COMPLETED"),
            "{}",
            h.summary()
        );
        // Neither an activity nor a decision task was stranded by the stop.
        assert!(!h.has("ActivityTaskTimedOut"), "{}", h.summary());
        assert!(!h.has("DecisionTaskTimedOut"), "{}", h.summary());
        assert_each_stage_completed_once(&h);
    }
    report("05 graceful stop", t0);
    Ok(())
}

/// A Logstash `tcp` input stand-in: accepts connections on `listener` and collects every line.
fn logstash_stand_in(listener: TcpListener) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let sink = sink.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines() {
                    match line {
                        Ok(l) => sink.lock().unwrap().push(l),
                        Err(_) => return,
                    }
                }
            });
        }
    });
    lines
}

/// Drill 6: Logstash down for a while, then back. Lines logged while it was down are spooled
/// and delivered once it is back; in the end Logstash holds every line of the local log file,
/// once each and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_06_logstash_down_then_back() -> Result<()> {
    let t0 = Instant::now();
    let port = free_port();
    let telemetry = format!(
        "logstash_addr = \"127.0.0.1:{port}\"\nlogstash_backoff_min_ms = 50\nlogstash_backoff_max_ms = 300"
    );
    let d = Drill::new(
        "logstash",
        &Extra {
            telemetry: &telemetry,
            ..Extra::default()
        },
    )?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let rt = d.runtime("runtime", &url, &["--task-list", "video-processing=2"])?;
    let first = start_video(client.as_ref(), "drill-logstash-1", None).await?;
    wait_closed(client.as_ref(), &first, CLOSE_WITHIN).await?;
    wait_metric(&rt, 0, "swf_log_lines_spooled_total", &[], 1.0).await?;
    // While Logstash is down the lines wait on disk, not in memory.
    let spool = rt.log_dir().join("logstash-spool");
    let spooled_bytes: u64 = std::fs::read_dir(&spool)
        .with_context(|| format!("reading {}", spool.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(
        spooled_bytes > 0,
        "nothing in the spool at {}",
        spool.display()
    );
    let rss_kib = rss_kib(rt.pid())?;
    assert!(rss_kib < 256 * 1024, "resident memory {rss_kib} KiB");

    let listener = TcpListener::bind(("127.0.0.1", port)).context("Logstash's port was taken")?;
    let received = logstash_stand_in(listener);
    let second = start_video(client.as_ref(), "drill-logstash-2", None).await?;
    wait_closed(client.as_ref(), &second, CLOSE_WITHIN).await?;
    let log_dir = rt.log_dir();
    let parse = |lines: &[String]| -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.clone())))
            .collect()
    };
    let (local, shipped) = wait_for(
        Duration::from_secs(30),
        "Logstash to hold every local line",
        || {
            let local = log_lines(&log_dir);
            let shipped = parse(&received.lock().unwrap());
            let done = local.len() == shipped.len()
                && local
                    .iter()
                    .any(|l| field(l, "workflow_id") == Some("drill-logstash-2"));
            async move { Ok(done.then_some((local, shipped))) }
        },
    )
    .await?;
    assert!(local.len() > 20, "{} lines", local.len());
    let moved = compare_shipped(&local, &shipped);
    let text = scrape(rt.metrics_addr(0).await?).await?;
    assert_eq!(metric_sum(&text, "swf_log_lines_dropped_total", &[]), 0.0);
    assert!(metric_sum(&text, "swf_log_lines_shipped_total", &[]) >= local.len() as f64 - 5.0);
    println!(
        "drill 06: {} lines shipped once each, in order ({moved} lines of concurrent threads interleaved differently); {spooled_bytes} bytes spooled while down, RSS {rss_kib} KiB",
        local.len()
    );
    report("06 Logstash down then back", t0);
    Ok(())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS line")
}

/// Checks that `shipped` holds exactly the lines of `local`, once each, in the same order for
/// every span, and nowhere far from their place in the file; returns how many lines sit at
/// another index.
///
/// The file writer and the shipper have a queue each, so two lines logged at the same moment by
/// two threads may enter them in opposite orders: only lines of different threads, a few
/// positions apart, may trade places.
fn compare_shipped(local: &[Value], shipped: &[Value]) -> usize {
    let key = |v: &Value| v.to_string();
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for l in local {
        *counts.entry(key(l)).or_default() += 1;
    }
    for l in shipped {
        *counts.entry(key(l)).or_default() -= 1;
    }
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 0).collect();
    assert!(
        wrong.is_empty(),
        "lines lost (>0) or duplicated (<0) on the way to Logstash: {wrong:?}"
    );
    let by_span = |lines: &[Value]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in lines {
            if let Some(span) = field(l, "span.id") {
                m.entry(span.to_string()).or_default().push(key(l));
            }
        }
        m
    };
    assert_eq!(
        by_span(local),
        by_span(shipped),
        "a span's lines were reordered"
    );
    let mut positions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, l) in local.iter().enumerate() {
        positions.entry(key(l)).or_default().push(i);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut moved = 0;
    for (j, l) in shipped.iter().enumerate() {
        let k = key(l);
        let n = seen.entry(k.clone()).or_default();
        let i = positions[&k][*n];
        *n += 1;
        assert!(
            i.abs_diff(j) <= 16,
            "line {i} of the file arrived as line {j}: {l}"
        );
        if i != j {
            moved += 1;
        }
    }
    moved
}

/// Drill 7: the OTLP collector is absent. The runtime keeps working and counts the spans it
/// could not export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_07_otlp_collector_absent() -> Result<()> {
    let t0 = Instant::now();
    let port = free_port();
    let telemetry = format!("otlp_endpoint = \"http://127.0.0.1:{port}\"\notlp_timeout_ms = 500");
    let d = Drill::new(
        "otlp-absent",
        &Extra {
            telemetry: &telemetry,
            ..Extra::default()
        },
    )?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;
    let rt = d.runtime("runtime", &url, &["--task-list", "video-processing=2"])?;
    let exec = start_video(client.as_ref(), "drill-otlp-absent", None).await?;
    let info = wait_closed(client.as_ref(), &exec, CLOSE_WITHIN).await?;
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
    let dropped = wait_metric(&rt, 0, "swf_spans_dropped_total", &[], 1.0).await?;
    let text = scrape(rt.metrics_addr(0).await?).await?;
    assert_eq!(metric_sum(&text, "swf_spans_exported_total", &[]), 0.0);
    println!("drill 07: {dropped} spans dropped, workflow completed");
    report("07 OTLP collector absent", t0);
    Ok(())
}

/// Drill 8: chaos. At least 200 executions while a seeded random schedule kills (SIGKILL) and
/// restarts worker and decider processes for a bounded time; afterwards every execution is
/// closed as its retry policy says, and no stage result is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_08_chaos() -> Result<()> {
    let t0 = Instant::now();
    const N: usize = 200;
    const MAX_ATTEMPTS: usize = 6;
    let seed: u64 = std::env::var("DRILL_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_126);
    let chaos_for = Duration::from_secs(25);
    let tables = format!("[pipeline.retry]\nmax_attempts = {MAX_ATTEMPTS}\n");
    assert!(
        chaos_faults(3).is_some_and(|f| f.contains(&format!("\"fail_times\":{MAX_ATTEMPTS}"))),
        "the doomed executions fail every attempt"
    );
    let d = Drill::new(
        "chaos",
        &Extra {
            time_scale: Some(0.002),
            tables: &tables,
            ..Extra::default()
        },
    )?;
    let (_sl, url) = d.serve_local("swf-local").await?;
    let client = d.client(&url).await?;
    d.register(client.as_ref()).await?;

    let roles: [(&str, &[&str]); 4] = [
        (
            "worker-1",
            &["--no-decider", "--task-list", "video-processing=16"],
        ),
        (
            "worker-2",
            &["--no-decider", "--task-list", "video-processing=16"],
        ),
        ("decider-1", &["--no-workers"]),
        ("decider-2", &["--no-workers"]),
    ];
    let mut procs: Vec<Proc> = roles
        .iter()
        .map(|(name, args)| d.runtime(name, &url, args))
        .collect::<Result<_>>()?;

    // Executions arrive over the first 60% of the chaos window, so kills hit every phase.
    let starter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut execs = Vec::new();
            let batches = 20;
            let gap = chaos_for.mul_f64(0.6) / batches as u32;
            for b in 0..batches {
                for i in 0..N / batches {
                    let n = b * (N / batches) + i;
                    let id = format!("drill-chaos-{n:03}");
                    execs.push(start_video(client.as_ref(), &id, chaos_faults(n)).await?);
                }
                tokio::time::sleep(gap).await;
            }
            anyhow::Ok(execs)
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let chaos_end = Instant::now() + chaos_for;
    let mut kills = 0;
    let mut restarts: BTreeMap<String, usize> = BTreeMap::new();
    while Instant::now() < chaos_end {
        // The schedule itself is the perturbation: random gaps between kills, random downtime.
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        let victim = rng.random_range(0..procs.len());
        procs[victim].kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
        let (name, args) = roles[victim];
        let n = restarts.entry(name.to_string()).or_insert(0);
        *n += 1;
        procs[victim] = d.runtime(&format!("{name}-r{n}"), &url, args)?;
    }
    let execs = starter.await??;
    assert_eq!(execs.len(), N);
    // After the chaos every role runs undisturbed; all executions must close within this.
    let settle_deadline = Instant::now() + Duration::from_secs(90);

    let mut completed = 0;
    let mut failed_by_policy = 0;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut timeouts = 0;
    for e in &execs {
        let left = settle_deadline.saturating_duration_since(Instant::now());
        let info = match wait_closed(client.as_ref(), e, left.max(Duration::from_secs(1))).await {
            Ok(i) => i,
            Err(err) => {
                let h = history(client.as_ref(), e).await?;
                println!("{}: {err:#}: {}", e.workflow_id, h.summary());
                lost += 1;
                continue;
            }
        };
        let h = history(client.as_ref(), e).await?;
        timeouts += h.of_type("ActivityTaskTimedOut").len();
        let done = h.count_by_stage("ActivityTaskCompleted");
        let n: usize = e.workflow_id.trim_start_matches("drill-chaos-").parse()?;
        let doomed = chaos_faults(n).is_some_and(|f| f.contains("thumbnails"));
        let dups: usize = done.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
        duplicated += dups;
        match info.close_status.as_deref() {
            Some("COMPLETED") if doomed => {
                println!(
                    "{}: completed although thumbnails fails every attempt: {}",
                    e.workflow_id,
                    h.summary()
                );
                lost += 1;
            }
            Some("COMPLETED") => {
                let missing = VIDEO_STAGES
                    .iter()
                    .filter(|s| done.get(**s).copied().unwrap_or(0) == 0)
                    .count();
                if missing > 0 {
                    println!(
                        "{}: completed without {missing} stage results: {}",
                        e.workflow_id,
                        h.summary()
                    );
                    lost += 1;
                } else {
                    completed += 1;
                }
            }
            Some("FAILED") => {
                // Only a stage that used up its attempts may fail the execution.
                let scheduled = h.count_by_stage("ActivityTaskScheduled");
                let exhausted = scheduled
                    .iter()
                    .any(|(s, n)| *n >= MAX_ATTEMPTS && !done.contains_key(s));
                let exhausted =
                    exhausted && (!doomed || scheduled.get("thumbnails") == Some(&MAX_ATTEMPTS));
                if exhausted {
                    failed_by_policy += 1;
                } else {
                    println!(
                        "{}: failed against its retry policy: {}",
                        e.workflow_id,
                        h.summary()
                    );
                    lost += 1;
                }
            }
            other => {
                println!("{}: closed as {other:?}: {}", e.workflow_id, h.summary());
                lost += 1;
            }
        }
    }
    println!(
        "drill 08: seed={seed} kills={kills} restarts={restarts:?} activity_timeouts={timeouts} failed_by_policy={failed_by_policy}"
    );
    println!("executions={N} completed={completed} lost={lost} duplicated={duplicated}");
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
    assert_eq!(completed + failed_by_policy, N);
    let doomed = (0..N)
        .filter(|n| chaos_faults(*n).is_some_and(|f| f.contains("thumbnails")))
        .count();
    assert!(
        failed_by_policy >= doomed,
        "every execution whose stage fails all attempts failed"
    );
    assert!(kills >= 10, "the chaos must actually kill: {kills}");
    report("08 chaos", t0);
    Ok(())
}

/// The faults of chaos execution `n`: one in ten fails thumbnails on every attempt (its retry
/// policy must fail the execution), one in ten fails publish twice (the retries must complete
/// it), the rest have none.
fn chaos_faults(n: usize) -> Option<&'static str> {
    match n % 10 {
        3 => Some(r#"{"faults":{"thumbnails":{"fail_times":6}}}"#),
        7 => Some(r#"{"faults":{"publish":{"fail_times":2}}}"#),
        _ => None,
    }
}

fn assert_swf_error(status: u16, body: &str, what: &str) -> Result<String> {
    ensure!(
        (400..500).contains(&status),
        "{what}: status {status}, body {body}"
    );
    let v: Value =
        serde_json::from_str(body).with_context(|| format!("{what}: body is not JSON: {body}"))?;
    let kind = v["__type"]
        .as_str()
        .with_context(|| format!("{what}: no __type in {body}"))?
        .to_string();
    ensure!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message in {body}"
    );
    Ok(kind)
}

async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    target: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, String)> {
    let mut req = http
        .post(url)
        .header("content-type", "application/x-amz-json-1.0")
        .body(body);
    if let Some(t) = target {
        req = req.header("x-amz-target", t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// Drill 9: bad input, all answered with clear errors and nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_09_bad_input() -> Result<()> {
    let t0 = Instant::now();
    let d = Drill::new("bad-input", &Extra::default())?;

    // A config file with an unknown key, or a value of the wrong type: exit 2, naming it.
    let typo = d.write_config(
        "typo.toml",
        &Extra {
            top: "domian = \"media\"",
            ..Extra::default()
        },
    )?;
    let wrong_type = d.path().join("wrong-type.toml");
    std::fs::write(&wrong_type, "[pipeline]\ntime_scale = \"fast\"\n")?;
    for (file, key) in [(&typo, "domian"), (&wrong_type, "time_scale")] {
        let (status, _, stderr) = d
            .run_once_with("bad-config", file, &["run"], Duration::from_secs(20))
            .await?;
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(key), "stderr should name {key}: {stderr}");
    }

    // An endpoint that is down at start-up: the runtime says what it waits for and proceeds
    // once the endpoint comes up.
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let rt = d.runtime("runtime", &endpoint, &["--task-list", "video-processing=2"])?;
    let waiting = wait_for(
        Duration::from_secs(30),
        "the runtime to say what it waits for",
        || {
            let found = lines_with(
                &rt,
                "Waiting for the SWF endpoint to answer before registering types.",
            )
            .into_iter()
            .next();
            async move { Ok(found) }
        },
    )
    .await?;
    assert_eq!(
        field(&waiting, "endpoint"),
        Some(endpoint.as_str()),
        "{waiting}"
    );
    assert!(
        field(&waiting, "error").is_some_and(|e| !e.is_empty()),
        "{waiting}"
    );
    let (_sl, url) = d
        .serve_local_on("swf-local", &format!("127.0.0.1:{port}"))
        .await?;
    rt.metrics_addr(0).await?;
    let client = d.client(&url).await?;
    let good = start_video(client.as_ref(), "drill-bad-input-good", None).await?;

    // A malformed workflow input fails its execution at once with the reason.
    let bad = start_video(
        client.as_ref(),
        "drill-bad-input-bad",
        Some(r#"{"options":{"thumbnail_count":0}}"#),
    )
    .await?;
    let info = wait_closed(client.as_ref(), &bad, CLOSE_WITHIN).await?;
    let h = history(client.as_ref(), &bad).await?;
    assert_eq!(
        info.close_status.as_deref(),
        Some("FAILED"),
        "{}",
        h.summary()
    );
    let failed = h.of_type("WorkflowExecutionFailed");
    let why = format!("{}", attrs(failed[0]));
    assert!(why.contains("thumbnail_count"), "{why}");
    assert!(
        !h.has("ActivityTaskScheduled"),
        "a bad input never reaches a worker"
    );
    let info = wait_closed(client.as_ref(), &good, CLOSE_WITHIN).await?;
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));

    // Unknown activity types: one SWF does not know, and one no worker has a handler for. Both
    // end the injected task with a clear reason and a non-zero exit, nothing hangs.
    let (status, stdout, stderr) = d
        .run_once(
            "inject-unregistered",
            &[
                "--endpoint-url",
                &url,
                "inject",
                "drill_not_registered",
                "--input",
                "{}",
                "--wait",
                "--wait-timeout-secs",
                "30",
            ],
            Duration::from_secs(40),
        )
        .await?;
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("task FAILED") && stdout.contains("ACTIVITY_TYPE_DOES_NOT_EXIST"),
        "{stdout}"
    );
    client
        .register_activity_type(&swf_runtime::swf::ActivityTypeRegistration {
            activity_type: swf_runtime::swf::TypeRef {
                name: "drill_no_handler".into(),
                version: "1.0".into(),
            },
            description: None,
            default_task_list: activities::VIDEO_TASK_LIST.into(),
            default_schedule_to_start_timeout_secs: Some(60),
            default_schedule_to_close_timeout_secs: Some(120),
            default_start_to_close_timeout_secs: Some(60),
            default_heartbeat_timeout_secs: None,
        })
        .await?;
    let (status, stdout, stderr) = d
        .run_once(
            "inject-no-handler",
            &[
                "--endpoint-url",
                &url,
                "inject",
                "drill_no_handler",
                "--input",
                "{}",
                "--wait",
                "--wait-timeout-secs",
                "30",
            ],
            Duration::from_secs(40),
        )
        .await?;
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("task FAILED"), "{stdout}");
    let unknown = wait_for(
        Duration::from_secs(10),
        "the worker's unknown-type line",
        || {
            let found = lines_with(
                &rt,
                "No handler registered for this activity type; failing the task.",
            )
            .into_iter()
            .find(|l| field(l, "activity_type") == Some("drill_no_handler"));
            async move { Ok(found) }
        },
    )
    .await?;
    assert!(
        field(&unknown, "known_types").is_some_and(|k| k.contains("transcode")),
        "{unknown}"
    );

    // `start --input` beyond SWF's 32,768 characters: a clear usage error before any call.
    let big = format!("{{\"source\":\"{}\"}}", "x".repeat(33_000));
    let (status, _, stderr) = d
        .run_once(
            "start-too-big",
            &[
                "--endpoint-url",
                &url,
                "start",
                "--media-uuid",
                "drill-too-big",
                "--user-uuid",
                "u",
                "--input",
                &big,
            ],
            Duration::from_secs(20),
        )
        .await?;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("32768"), "{stderr}");

    // Malformed and oversized requests to swf-local: SWF-shaped 4xx answers.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let target = "SimpleWorkflowService.StartWorkflowExecution";
    let (s, b) = post_raw(&http, &url, Some(target), b"{not json".to_vec()).await?;
    assert_swf_error(s, &b, "malformed JSON")?;
    let (s, b) = post_raw(
        &http,
        &url,
        Some(target),
        b"{\"domain\":\"media\"}".to_vec(),
    )
    .await?;
    assert_swf_error(s, &b, "missing fields")?;
    let (s, b) = post_raw(
        &http,
        &url,
        Some("SimpleWorkflowService.Nope"),
        b"{}".to_vec(),
    )
    .await?;
    assert_swf_error(s, &b, "unknown action")?;
    let (s, b) = post_raw(&http, &url, None, b"{}".to_vec()).await?;
    assert_swf_error(s, &b, "no target")?;
    let mut huge = b"{\"domain\":\"media\",\"workflowId\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1_100_000));
    huge.extend(b"\"}");
    let (s, b) = post_raw(&http, &url, Some(target), huge).await?;
    assert_swf_error(s, &b, "oversized body")?;

    // A seeded fuzz of mutated valid requests: never a 5xx, every refusal SWF-shaped.
    let valid = serde_json::json!({
        "domain": "media",
        "workflowId": "drill-fuzz",
        "workflowType": {"name": "VideoProcessing", "version": "1.0"},
        "input": "{\"media_uuid\":\"drill-fuzz\",\"user_uuid\":\"u\"}",
        "taskList": {"name": "video-processing-decider"}
    })
    .to_string()
    .into_bytes();
    let actions = [
        "StartWorkflowExecution",
        "RespondActivityTaskCompleted",
        "RespondDecisionTaskCompleted",
        "GetWorkflowExecutionHistory",
        "RecordActivityTaskHeartbeat",
        "DescribeWorkflowExecution",
        "SignalWorkflowExecution",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut refused = 0;
    for _ in 0..150 {
        let mut body = valid.clone();
        for _ in 0..rng.random_range(1..6) {
            if body.is_empty() {
                break;
            }
            let i = rng.random_range(0..body.len());
            match rng.random_range(0..3) {
                0 => body[i] = rng.random(),
                1 => {
                    body.remove(i);
                }
                _ => body.truncate(i),
            }
        }
        let action = actions[rng.random_range(0..actions.len())];
        let t = format!("SimpleWorkflowService.{action}");
        let (s, b) = post_raw(&http, &url, Some(&t), body).await?;
        if s != 200 {
            assert_swf_error(s, &b, &format!("fuzzed {action}"))?;
            refused += 1;
        }
    }
    assert!(
        refused > 100,
        "the fuzz must mostly produce bad requests: {refused}"
    );
    // Nothing was lost: the endpoint still serves, and the good execution's history is whole.
    let h = history(client.as_ref(), &good).await?;
    assert_each_stage_completed_once(&h);
    report("09 bad input", t0);
    Ok(())
}

/// Drill 10: security. swf-local refuses to listen beyond loopback without credentials and
/// refuses unsigned or wrongly signed requests with them; the metrics port stays on loopback
/// unless told; secrets and task tokens never reach a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_10_security() -> Result<()> {
    let t0 = Instant::now();
    let secret = format!("drill-secret-{}", uuid::Uuid::new_v4().simple());
    let local = format!("access_key_id = \"AKIDDRILL10\"\nsecret_access_key = \"{secret}\"");
    let d = Drill::new(
        "security",
        &Extra {
            telemetry: "log_level = \"swf_runtime=debug,info\"",
            local: &local,
            ..Extra::default()
        },
    )?;
    let open = d.write_config("open.toml", &Extra::default())?;

    // Beyond loopback without credentials: refused before binding anything.
    let port = free_port();
    let (status, _, stderr) = d
        .run_once_with(
            "open-listen",
            &open,
            &["serve-local", "--listen", &format!("0.0.0.0:{port}")],
            Duration::from_secs(20),
        )
        .await?;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("non-loopback") && stderr.contains("credentials"),
        "{stderr}"
    );

    // Metrics beyond loopback without `metrics_allow_non_loopback`: refused.
    let (status, _, stderr) = d
        .run_once_with(
            "open-metrics",
            &open,
            &[
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--metrics-addr",
                &format!("0.0.0.0:{}", free_port()),
                "run",
            ],
            Duration::from_secs(20),
        )
        .await?;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("0.0.0.0"), "{stderr}");

    // With credentials: the runtime hosting the endpoint signs, strangers are refused.
    let mut host = d.spawn("host", &["--metrics-addr", "127.0.0.1:0", "run"])?;
    let url = wait_url(&d.path().join("host").join("swf-local.url")).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let (s, b) = post_raw(
        &http,
        &url,
        Some("SimpleWorkflowService.ListDomains"),
        b"{\"registrationStatus\":\"REGISTERED\"}".to_vec(),
    )
    .await?;
    assert_eq!(s, 403, "{b}");
    assert_swf_error(s, &b, "unsigned request")?;
    let wrong = d
        .client_with(&url, Some(("AKIDDRILL10".into(), "not-the-secret".into())))
        .await?;
    let err = wrong
        .list_executions(ExecutionState::Open, 3600, None)
        .await
        .expect_err("a wrongly signed request is refused");
    assert!(
        !matches!(err, swf_runtime::swf::SwfError::Transport(_)),
        "{err}"
    );
    let client = d
        .client_with(&url, Some(("AKIDDRILL10".into(), secret.clone())))
        .await?;
    d.register(client.as_ref()).await?;
    let exec = start_video(client.as_ref(), "drill-security", None).await?;
    let info = wait_closed(client.as_ref(), &exec, CLOSE_WITHIN).await?;
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
    // A manual task's token is stored for a person, never logged.
    let face = swf_runtime::swf::StartWorkflow {
        workflow_id: "drill-security-face".into(),
        workflow_type: Some(swf_runtime::swf::TypeRef {
            name: activities::FACE_RECOGNITION.into(),
            version: activities::WORKFLOW_VERSION.into(),
        }),
        input: Some(r#"{"media_uuid":"drill-security-face","user_uuid":"u"}"#.into()),
        ..Default::default()
    };
    let face_run = client.start_workflow_execution(&face).await?;
    // The manual stage hands its task token to a person in a request file, never to the logs.
    let request = d
        .path()
        .join("media-output")
        .join("drill-security-face")
        .join("face_recognition_request.json");
    let token = wait_for(
        Duration::from_secs(30),
        "the manual task's request file",
        || {
            let token = std::fs::read_to_string(&request)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["task_token"].as_str().map(str::to_string))
                .filter(|t| t.len() > 8);
            async move { Ok(token) }
        },
    )
    .await?;
    // A person answers it with `complete`, which finds the token by media uuid and reaches the
    // embedded endpoint through the host's data folder, signing with the configured secret.
    let mut complete = d.spawn_in(
        "complete",
        &host.dir,
        &[
            "complete",
            "--media-uuid",
            "drill-security-face",
            "--result",
            r#"{"faces":[]}"#,
        ],
    )?;
    let status = complete.wait_exit(Duration::from_secs(30)).await?;
    let (out, err) = (complete.stdout(), complete.stderr());
    assert!(status.success() && out.contains("completed"), "{out}{err}");
    let face_exec = swf_runtime::swf::WorkflowExecution {
        workflow_id: "drill-security-face".into(),
        run_id: face_run,
    };
    let info = wait_closed(client.as_ref(), &face_exec, CLOSE_WITHIN).await?;
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
    host.signal("TERM")?;
    let status = host.wait_exit(Duration::from_secs(40)).await?;
    assert!(status.success(), "{}", host.stderr());

    let raw = raw_log_lines(&host.log_dir());
    assert!(raw.len() > 20, "{} lines", raw.len());
    let mut all_text = raw.join("\n");
    all_text.push_str(&host.stdout());
    all_text.push_str(&host.stderr());
    all_text.push_str(&out);
    all_text.push_str(&err);
    assert!(
        !all_text.contains(&secret),
        "the secret key reached the logs"
    );
    assert!(!all_text.contains(&token), "a task token reached the logs");
    let mut hashes = 0;
    for l in raw
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let obj = l.as_object().context("a log line is an object")?;
        for (k, v) in obj {
            let lk = k.to_ascii_lowercase();
            if lk.contains("token") {
                assert_eq!(k, "task_token_hash", "token-like field {k} in {l}");
                let h = v.as_str().unwrap_or("");
                assert!(h.len() <= 16, "a hash, not a token: {h}");
                hashes += 1;
            }
            if let Some(s) = v.as_str() {
                assert!(
                    longest_base64_run(s) < 48,
                    "a long base64-looking value in field {k}: {l}"
                );
            }
        }
    }
    assert!(hashes >= 4, "task lines carry the token's hash: {hashes}");
    report("10 security", t0);
    Ok(())
}

/// The longest run of base64 alphabet characters (letters, digits, `+/=_`) in `s`.
fn longest_base64_run(s: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_') {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}
