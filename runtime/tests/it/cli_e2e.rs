//! End to end, out of process: the built `swf-runtime` binary driven as an operator would, against
//! `swf-runtime serve-local` and, when `SWF_TEST_MOTO_SERVER` names a `moto_server`, against moto's
//! third-party SWF implementation.
//!
//! Every process is a [`Child`] killed when the test ends (pass or fail); every wait is bounded;
//! each test has its own temporary folder, port and database.

use crate::common::e2e;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use e2e::{free_port, run_bounded, swf_runtime, wait_for_port, Child, Output};
use serde_json::Value;

/// Bound of one-shot commands (`register`, `history`, ...).
const QUICK: Duration = Duration::from_secs(30);
/// Bound of commands that wait for an execution (`start --wait`, `inject --wait`).
const SLOW: Duration = Duration::from_secs(120);
/// `run`'s drain timeout in these tests.
const DRAIN_SECS: u64 = 5;

/// One operator's setup: an endpoint URL and a data folder shared by every command.
struct Setup {
    dir: tempfile::TempDir,
    url: String,
    domain: String,
}

impl Setup {
    fn new(url: String, domain: &str, dir: tempfile::TempDir) -> Setup {
        Setup {
            dir,
            url,
            domain: domain.to_string(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `swf-runtime ARGS` with this setup's endpoint, domain and data folder.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = swf_runtime(self.dir.path());
        cmd.args(args)
            .arg("--endpoint-url")
            .arg(&self.url)
            .arg("--domain")
            .arg(&self.domain)
            .arg("--data-dir")
            .arg(self.data_dir());
        cmd
    }

    fn run(&self, args: &[&str], limit: Duration) -> Result<Output> {
        run_bounded(self.command(args), limit)
    }

    /// Starts `swf-runtime run` and waits (bounded) until it polls.
    fn host(&self) -> Result<Child> {
        let mut cmd = self.command(&[
            "run",
            "--time-scale",
            "0.01",
            "--drain-timeout-secs",
            &DRAIN_SECS.to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-level",
            "info",
        ]);
        cmd.env("RUST_BACKTRACE", "1");
        let mut child = Child::spawn(cmd, "swf-runtime run")?;
        child.wait_for_stdout("Runtime started.", Duration::from_secs(60))?;
        Ok(child)
    }
}

/// `swf-runtime serve-local` on a free loopback port; returns it and its URL.
fn serve_local(dir: &Path) -> Result<(Child, String)> {
    let port = free_port()?;
    let mut cmd = swf_runtime(dir);
    cmd.args(["serve-local", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--db")
        .arg(dir.join("swf-local.db"));
    let mut child = Child::spawn(cmd, "swf-runtime serve-local")?;
    let line = child.wait_for_stdout("swf-local listening on", Duration::from_secs(30))?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(url, format!("http://127.0.0.1:{port}"), "{line}");
    wait_for_port(port, Duration::from_secs(10), &mut child)?;
    Ok((child, url))
}

fn expect_ok(out: &Output, what: &str) {
    assert!(out.ok(), "{what} failed:\n{out}");
}

#[test]
fn the_cli_runs_the_pipeline_against_serve_local() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, url) = serve_local(dir.path())?;
    let setup = Setup::new(url, "cli-e2e", dir);

    // register: idempotent.
    let first = setup.run(&["register"], QUICK)?;
    expect_ok(&first, "register");
    assert!(
        first.stdout.contains("registered domain cli-e2e"),
        "{first}"
    );
    assert!(
        first
            .stdout
            .contains("registered workflow type VideoProcessing"),
        "{first}"
    );
    let second = setup.run(&["register"], QUICK)?;
    expect_ok(&second, "register again");
    assert!(
        second.stdout.contains("already registered domain cli-e2e")
            && second
                .stdout
                .contains("already registered workflow type VideoProcessing")
            && !second.stdout.lines().any(|l| l.starts_with("registered ")),
        "{second}"
    );

    let mut host = setup.host()?;

    // start --wait: the pipeline completes.
    let media = format!("cli-{}", uuid::Uuid::new_v4());
    let start = setup.run(
        &[
            "start",
            "--media-uuid",
            &media,
            "--user-uuid",
            "user-cli",
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    expect_ok(&start, "start --wait");
    assert!(
        start
            .stdout
            .contains(&format!("started workflow {media} run "))
            && start.stdout.contains("execution closed: COMPLETED"),
        "{start}"
    );

    // A second start while one with the same id is open is refused plainly.
    let open = format!("cli-open-{}", uuid::Uuid::new_v4());
    let face_args = [
        "start",
        "--workflow-type",
        "FaceRecognition",
        "--media-uuid",
        open.as_str(),
        "--user-uuid",
        "user-cli",
    ];
    expect_ok(&setup.run(&face_args, QUICK)?, "start FaceRecognition");
    let again = setup.run(&face_args, QUICK)?;
    assert!(
        again.code.is_some() && !again.ok(),
        "a duplicate start must fail:\n{again}"
    );
    assert!(
        again.stderr.contains("already open") && again.stderr.contains(&open),
        "{again}"
    );
    assert!(
        !again.stderr.contains("panicked") && again.stderr.lines().count() <= 2,
        "a plain message, not a trace:\n{again}"
    );

    // history: the timeline text, and every event as SWF's JSON.
    let history = setup.run(&["history", &media], QUICK)?;
    expect_ok(&history, "history");
    assert!(
        history.stdout.contains("WorkflowExecutionCompleted"),
        "{history}"
    );
    for stage in ["transcode", "thumbnails", "detect_faces", "publish"] {
        let line = history
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("stage {stage} ")))
            .unwrap_or_else(|| panic!("no line for stage {stage}:\n{history}"));
        assert!(
            line.contains("completed after 1 attempt(s)"),
            "{stage}: {line}"
        );
    }
    let json = setup.run(&["history", &media, "--json"], QUICK)?;
    expect_ok(&json, "history --json");
    let events: Vec<Value> = serde_json::from_str(&json.stdout)?;
    assert_eq!(events[0]["eventType"], "WorkflowExecutionStarted");
    assert_eq!(
        events.last().unwrap()["eventType"],
        "WorkflowExecutionCompleted"
    );
    assert!(events.iter().all(|e| e["eventId"].is_i64()));
    let parsed: Vec<swf_runtime::swf::HistoryEvent> = serde_json::from_str(&json.stdout)?;
    assert_eq!(parsed.len(), events.len(), "the runtime reads its own JSON");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["eventType"] == "ActivityTaskCompleted")
            .count(),
        4
    );

    // describe and list.
    let describe = setup.run(&["describe", &media], QUICK)?;
    expect_ok(&describe, "describe");
    let info: Value = serde_json::from_str(&describe.stdout)?;
    assert_eq!(info["execution"]["workflow_id"], media.as_str());
    assert_eq!(info["execution_status"], "CLOSED");
    assert_eq!(info["close_status"], "COMPLETED");
    let list = setup.run(&["list"], QUICK)?;
    expect_ok(&list, "list");
    let row = |id: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{list}"))
            .to_string()
    };
    assert!(row(&media).contains("COMPLETED"), "{list}");
    assert!(row(&open).contains("OPEN"), "{list}");

    // inject: one task by hand, its result printed.
    let inject = setup.run(
        &[
            "inject",
            "thumbnails",
            "--input",
            r#"{"media_uuid":"cli-injected","user_uuid":"user-cli","options":{"thumbnail_count":3}}"#,
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    expect_ok(&inject, "inject --wait");
    assert!(inject.stdout.contains("task COMPLETED"), "{inject}");
    let result: Value = inject
        .stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result printed:\n{inject}"));
    assert_eq!(result["count"], 3, "{inject}");
    assert!(
        setup
            .dir
            .path()
            .join("media-output/cli-injected/thumbnails.json")
            .is_file(),
        "the injected task ran the real handler (relative output folder of `run`)"
    );

    // inject upload: the intake's entry point starts the media's VideoProcessing.
    let uploaded = format!("cli-upload-{}", uuid::Uuid::new_v4());
    let upload_input = format!(r#"{{"media_uuid":"{uploaded}","user_uuid":"user-cli"}}"#);
    let upload = setup.run(
        &[
            "inject",
            "upload",
            "--input",
            &upload_input,
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    expect_ok(&upload, "inject upload --wait");
    let result: Value = upload
        .stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result printed:\n{upload}"));
    assert_eq!(result["workflow_id"], uploaded.as_str(), "{upload}");
    let video = poll_describe(&setup, &uploaded, "COMPLETED")?;
    assert_eq!(video["workflow_type"]["name"], "VideoProcessing");
    assert_eq!(video["execution"]["run_id"], result["run_id"]);

    // complete: the open FaceRecognition with the token the handler handed out.
    let listed = setup.run(&["complete", "--list"], QUICK)?;
    expect_ok(&listed, "complete --list");
    let request = setup
        .dir
        .path()
        .join(format!("media-output/{open}/face_recognition_request.json"));
    let token = e2e_wait_for_token(&request)?;
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, token)?;
    let done = setup.run(
        &[
            "complete",
            "--token-file",
            token_file.to_str().unwrap(),
            "--result",
            r#"{"faces":[{"face_id":"face-1","name":"Ada"}]}"#,
        ],
        QUICK,
    )?;
    expect_ok(&done, "complete --token-file");
    assert!(done.stdout.contains("completed"), "{done}");
    let closed = poll_describe(&setup, &open, "COMPLETED")?;
    assert_eq!(closed["close_status"], "COMPLETED");

    // SIGTERM while a stage runs: no new polls, the running task finishes and is answered, and
    // `run` exits 0 within the drain timeout.
    let drained = format!("cli-drain-{}", uuid::Uuid::new_v4());
    expect_ok(
        &setup.run(
            &[
                "start",
                "--media-uuid",
                &drained,
                "--user-uuid",
                "user-cli",
                // Transcode takes 1.3 s, so it is surely running when the signal comes.
                "--input",
                r#"{"faults":{"transcode":{"hang":true,"hang_secs":1.0}}}"#,
            ],
            QUICK,
        )?,
        "start before SIGTERM",
    );
    poll_history(&setup, &drained, "transcode started", |events| {
        count(events, "ActivityTaskStarted") == 1
    })?;
    let signalled = std::time::Instant::now();
    let signalled_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    host.terminate()?;
    let status = host.wait_bounded(Duration::from_secs(DRAIN_SECS + 10))?;
    assert_eq!(
        status.code(),
        Some(0),
        "run after SIGTERM: {}",
        host.stderr()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(DRAIN_SECS + 2),
        "drained in {:?}",
        signalled.elapsed()
    );
    assert!(
        host.stdout().contains("Runtime stopped."),
        "{}",
        host.stdout()
    );
    let events = poll_history(&setup, &drained, "transcode answered", |events| {
        count(events, "ActivityTaskCompleted") == 1
    })?;
    assert_eq!(
        count(&events, "ActivityTaskStarted"),
        1,
        "nothing new was started after SIGTERM"
    );
    let answered = events
        .iter()
        .find(|e| e["eventType"] == "ActivityTaskCompleted")
        .and_then(|e| e["eventTimestamp"].as_f64())
        .unwrap();
    assert!(
        answered > signalled_epoch,
        "the task in flight at SIGTERM was finished and answered during the drain"
    );
    Ok(())
}

fn count(events: &[Value], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e["eventType"] == event_type)
        .count()
}

/// Runs `history --json` until `done` holds for the events (bounded); returns them.
fn poll_history(
    setup: &Setup,
    workflow_id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = setup.run(&["history", workflow_id, "--json"], QUICK)?;
        if out.ok() {
            let events: Vec<Value> = serde_json::from_str(&out.stdout)?;
            if done(&events) {
                return Ok(events);
            }
        }
        if std::time::Instant::now() >= deadline {
            bail!("{workflow_id}: {what} not seen in time:\n{out}");
        }
        std::thread::sleep(e2e::POLL_EVERY);
    }
}

/// Waits (bounded) for the manual handler's request file and returns its task token.
fn e2e_wait_for_token(request: &Path) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(request) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if let Some(t) = v["task_token"].as_str() {
                    return Ok(t.to_string());
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            bail!("{} never appeared", request.display());
        }
        std::thread::sleep(e2e::POLL_EVERY);
    }
}

/// Runs `describe` until the execution's close status is `status` (bounded).
fn poll_describe(setup: &Setup, workflow_id: &str, status: &str) -> Result<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = setup.run(&["describe", workflow_id], QUICK)?;
        if out.ok() {
            let v: Value = serde_json::from_str(&out.stdout)?;
            if v["close_status"] == status {
                return Ok(v);
            }
        }
        if std::time::Instant::now() >= deadline {
            bail!("{workflow_id} not {status} in time:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn complete_finds_the_waiting_manual_task_by_media_uuid() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, url) = serve_local(dir.path())?;
    let setup = Setup::new(url, "cli-manual", dir);
    expect_ok(&setup.run(&["register"], QUICK)?, "register");
    let _host = setup.host()?;
    let media = format!("cli-face-{}", uuid::Uuid::new_v4());
    expect_ok(
        &setup.run(
            &[
                "start",
                "--workflow-type",
                "FaceRecognition",
                "--media-uuid",
                &media,
                "--user-uuid",
                "user-cli",
            ],
            QUICK,
        )?,
        "start FaceRecognition",
    );
    let request = setup.dir.path().join(format!(
        "media-output/{media}/face_recognition_request.json"
    ));
    e2e_wait_for_token(&request)?;
    // The handler has handed the task out; `complete --list` must show it.
    let listed = setup.run(&["complete", "--list"], QUICK)?;
    expect_ok(&listed, "complete --list");
    assert!(
        listed.stdout.contains(&media),
        "the waiting task is listed:\n{listed}"
    );
    let done = setup.run(
        &[
            "complete",
            "--media-uuid",
            &media,
            "--result",
            r#"{"faces":[]}"#,
        ],
        QUICK,
    )?;
    expect_ok(&done, "complete --media-uuid");
    poll_describe(&setup, &media, "COMPLETED")?;
    let listed = setup.run(&["complete", "--list"], QUICK)?;
    assert!(
        !listed.stdout.contains(&media),
        "answered tasks leave the list"
    );
    Ok(())
}

#[test]
fn mistakes_get_a_plain_message_and_the_right_exit_code() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, url) = serve_local(dir.path())?;
    let setup = Setup::new(url, "cli-mistakes", dir);
    expect_ok(&setup.run(&["register"], QUICK)?, "register");
    let _host = setup.host()?;
    // (args, exit code, what stderr must say)
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["history", "no-such-media"],
            1,
            "no execution with workflow id no-such-media",
        ),
        (
            &["describe", "no-such-media"],
            1,
            "no execution with workflow id no-such-media",
        ),
        (
            &[
                "start",
                "--media-uuid",
                "m",
                "--user-uuid",
                "u",
                "--input",
                "{oops",
            ],
            2,
            "--input is not valid JSON",
        ),
        (
            &[
                "start",
                "--media-uuid",
                "m",
                "--user-uuid",
                "u",
                "--workflow-type",
                "Nope",
            ],
            2,
            "unknown workflow type \"Nope\"; known: VideoProcessing, FaceRecognition",
        ),
        (
            &["inject", "thumbnails", "--input", "zz"],
            2,
            "--input is not valid JSON",
        ),
        (
            &["bench", "--telemetry", "compare", "--slices", "3"],
            2,
            "--slices is 3; --telemetry compare needs an even number of slices",
        ),
        (
            &["bench", "--telemetry", "sometimes"],
            2,
            "--telemetry is \"sometimes\"; use on, off or compare",
        ),
    ];
    for (args, code, message) in cases {
        let out = setup.run(args, QUICK)?;
        assert_eq!(out.code, Some(code), "{args:?}:\n{out}");
        assert!(out.stderr.contains(message), "{args:?}:\n{out}");
        assert!(!out.stderr.contains("panicked"), "{args:?}:\n{out}");
    }
    // An activity type nobody registered: the injected task fails with SWF's cause, exit 1.
    let out = setup.run(
        &[
            "inject",
            "no_such_activity",
            "--input",
            "{}",
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains("task FAILED") && out.stdout.contains("ACTIVITY_TYPE_DOES_NOT_EXIST"),
        "{out}"
    );
    // A bad stage input fails the task (non-retryable), never the worker: the next one runs.
    let out = setup.run(
        &[
            "inject",
            "thumbnails",
            "--input",
            r#"{"media_uuid":"../etc"}"#,
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("media_uuid contains '/'"), "{out}");
    let out = setup.run(
        &[
            "inject",
            "thumbnails",
            "--input",
            r#"{"media_uuid":"ok-after-bad","user_uuid":"u"}"#,
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    expect_ok(&out, "inject after a bad input");
    Ok(())
}

/// Runs `swf-runtime demo` on the embedded swf-local with nothing configured but its folder.
fn demo(dir: &Path, extra: &[&str]) -> Result<Output> {
    let mut cmd = swf_runtime(dir);
    cmd.args(["demo", "--time-scale", "0.01", "--plain"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--metrics-addr", "127.0.0.1:0"]);
    run_bounded(cmd, SLOW)
}

#[test]
fn the_demo_runs_the_pipeline_and_prints_each_timeline() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = demo(
        dir.path(),
        &["--workflows", "2", "--media-uuid", "demo-first"],
    )?;
    expect_ok(&out, "demo");
    assert!(
        out.stdout.contains("All 2 execution(s) completed."),
        "{out}"
    );
    assert_eq!(
        out.stdout.matches("Completed in ").count(),
        2,
        "one summary per execution:\n{out}"
    );
    for stage in ["transcode", "thumbnails", "detect_faces", "publish"] {
        let rows = out
            .stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(stage) && l.trim_end().ends_with("completed"))
            .count();
        assert_eq!(rows, 2, "{stage} row per execution:\n{out}");
    }
    assert!(out.stdout.contains("critical path transcode -> "), "{out}");
    let outputs = dir.path().join("data/media-output/demo-first");
    assert!(outputs.join("published.json").is_file(), "{out}");
    // What the demo says to run next works: its history is in the data folder it named.
    let mut cmd = swf_runtime(dir.path());
    cmd.args(["history", "demo-first", "--data-dir"])
        .arg(dir.path().join("data"));
    let history = run_bounded(cmd, QUICK)?;
    expect_ok(&history, "history after the demo");
    assert!(
        history.stdout.contains("WorkflowExecutionCompleted"),
        "{history}"
    );
    Ok(())
}

/// The telemetry benchmark as the README runs it, small: both sides of `--telemetry compare`
/// measured, and with `--local-sinks` every log line written to the local file also reached the
/// Logstash stand-in, and spans reached the OTLP receiver.
#[test]
fn the_bench_compares_telemetry_on_and_off_and_ships_to_the_local_sinks() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut cmd = swf_runtime(dir.path());
    cmd.args([
        "bench",
        "--workflows",
        "8",
        "--concurrency",
        "4",
        "--slots",
        "8",
    ])
    .args([
        "--telemetry",
        "compare",
        "--slices",
        "2",
        "--local-sinks",
        "--json",
    ])
    .arg("--data-dir")
    .arg(&data);
    let out = run_bounded(cmd, SLOW)?;
    expect_ok(&out, "bench");
    let report: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())?;
    assert_eq!(report["completed"], 8, "{out}");
    let compare = &report["compare"];
    assert_eq!(compare["slices"], 2, "{out}");
    for side in ["on_executions_per_second", "off_executions_per_second"] {
        assert!(compare[side].as_f64().unwrap_or(0.0) > 0.0, "{side}: {out}");
    }
    let sinks = &report["sinks"];
    let log = std::fs::read_to_string(data.join("logs/swf-runtime.log"))?;
    let lines = log.lines().count() as u64;
    // Both warm-up slices and the "on" slice log; an "off" slice logs nothing.
    assert!(lines >= 8, "{lines} lines in the local log:\n{out}");
    assert_eq!(sinks["logstash_lines"], lines, "{out}");
    assert_eq!(sinks["logstash_bytes"], log.len() as u64, "{out}");
    assert!(sinks["otlp_requests"].as_u64().unwrap_or(0) >= 1, "{out}");
    assert!(sinks["otlp_bytes"].as_u64().unwrap_or(0) > 0, "{out}");
    Ok(())
}

#[test]
fn the_demo_exits_non_zero_when_an_execution_fails() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = demo(
        dir.path(),
        &["--faults", r#"{"publish":{"fail_times":99}}"#],
    )?;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains("Some executions did not complete."),
        "{out}"
    );
    assert!(out.stdout.contains("Failed"), "{out}");
    Ok(())
}

#[test]
fn a_config_file_with_an_unknown_key_exits_2_naming_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("swf-runtime.toml");
    std::fs::write(
        &file,
        "domain = \"media\"\n[pipeline]\ntime_scale = 0.01\ntranscode_sec = 3.0\n",
    )?;
    for args in [vec!["register"], vec!["run"], vec!["list"]] {
        let mut cmd = swf_runtime(dir.path());
        cmd.arg("--config").arg(&file).args(&args);
        let out = run_bounded(cmd, QUICK)?;
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        assert!(out.stderr.contains("transcode_sec"), "{args:?}:\n{out}");
        assert!(out.stderr.contains("swf-runtime.toml"), "{args:?}:\n{out}");
    }
    // The same through the environment variable.
    let mut cmd = swf_runtime(dir.path());
    cmd.env("SWF_RUNTIME_CONFIG", &file)
        .arg("describe")
        .arg("x");
    let out = run_bounded(cmd, QUICK)?;
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("transcode_sec"), "{out}");
    Ok(())
}

/// The main scenario's core on moto's server: register, run, and a VideoProcessing execution
/// that must complete.
#[test]
fn video_processing_completes_on_moto() -> Result<()> {
    let Some(moto) = std::env::var_os("SWF_TEST_MOTO_SERVER") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("SWF_TEST_MOTO_SERVER must name moto_server in CI (pip install 'moto[server]')");
        }
        eprintln!(
            "skipped: set SWF_TEST_MOTO_SERVER to the path of moto_server (pip install 'moto[server]') to run the pipeline against moto"
        );
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut cmd = Command::new(&moto);
    cmd.current_dir(dir.path())
        .args(["-H", "127.0.0.1", "-p"])
        .arg(port.to_string());
    let mut server = Child::spawn(cmd, "moto_server")?;
    wait_for_port(port, Duration::from_secs(60), &mut server)?;
    let setup = Setup::new(format!("http://127.0.0.1:{port}"), "cli-moto", dir);

    let reg = setup.run(&["register"], QUICK)?;
    expect_ok(&reg, "register on moto");
    expect_ok(&setup.run(&["register"], QUICK)?, "register on moto again");
    let mut host = setup.host()?;
    let media = format!("moto-{}", uuid::Uuid::new_v4());
    let start = setup.run(
        &[
            "start",
            "--media-uuid",
            &media,
            "--user-uuid",
            "user-moto",
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    assert!(
        start.ok() && start.stdout.contains("execution closed: COMPLETED"),
        "{start}\n--- run's log\n{}\n{}\n--- moto\n{}",
        host.stdout(),
        host.stderr(),
        server.stderr()
    );
    // A failed attempt, its backoff timer and the retry work on moto too.
    let retried = format!("moto-retry-{}", uuid::Uuid::new_v4());
    let start = setup.run(
        &[
            "start",
            "--media-uuid",
            &retried,
            "--user-uuid",
            "user-moto",
            "--input",
            r#"{"faults":{"thumbnails":{"fail_times":1}}}"#,
            "--wait",
            "--wait-timeout-secs",
            "100",
        ],
        SLOW,
    )?;
    assert!(
        start.ok() && start.stdout.contains("execution closed: COMPLETED"),
        "{start}\n--- run's log\n{}\n{}\n--- moto\n{}",
        host.stdout(),
        host.stderr(),
        server.stderr()
    );
    let history = setup.run(&["history", &retried], QUICK)?;
    assert!(
        history
            .stdout
            .lines()
            .any(|l| l.starts_with("stage thumbnails ")
                && l.contains("completed after 2 attempt(s)")),
        "{history}"
    );
    let history = setup.run(&["history", &media], QUICK)?;
    expect_ok(&history, "history on moto");
    for stage in ["transcode", "thumbnails", "detect_faces", "publish"] {
        assert!(
            history
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("stage {stage} ")) && l.contains("completed")),
            "{stage}:\n{history}"
        );
    }
    host.terminate()?;
    let status = host.wait_bounded(Duration::from_secs(DRAIN_SECS + 10))?;
    assert_eq!(
        status.code(),
        Some(0),
        "run after SIGTERM: {}",
        host.stderr()
    );
    Ok(())
}
