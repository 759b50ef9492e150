//! The observability contract, end to end: the pipeline runs on swf-local with full telemetry in
//! this process, then
//! - every JSON log line emitted inside a task carries the task's ids (handler lines included), and
//!   every line that closes something carries `duration_ms` and `outcome`;
//! - every field the Logstash pipeline and index template name appears in those lines;
//! - a real scrape of `/metrics` holds every metric the dashboards, recording rules and alerts
//!   query, with the expected labels and counts;
//! - a real Prometheus (Debian's `prometheus`) scrapes the runtime, evaluates the recording rules,
//!   and the stage latency quantiles it returns match the stage durations of the run.
//!
//! One test function: the subscriber and the metrics recorder are global to the process.

#[path = "it/common/deploy_check.rs"]
mod deploy_check;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use swf_runtime::app::{self, Embed, Host, HostOptions};
use swf_runtime::commands::{fetch_timeline, wait_closed};
use swf_runtime::config::Config;
use swf_runtime::swf::{SwfClient, WorkflowExecution};
use swf_runtime::telemetry::{self, fields, HealthState};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime crate sits in the workspace")
        .to_path_buf()
}

async fn start_video(
    client: &dyn SwfClient,
    media: &str,
    faults: Option<Value>,
) -> WorkflowExecution {
    let mut input = json!({"media_uuid": media, "user_uuid": "user-obs", "source": "test://m.mp4"});
    if let Some(f) = faults {
        input["faults"] = f;
    }
    let start = swf_runtime::pipeline::start_request(
        &Config::default().pipeline,
        "VideoProcessing",
        media,
        input.to_string(),
    )
    .expect("VideoProcessing is defined");
    let run_id = client
        .start_workflow_execution(&start)
        .await
        .expect("start the execution");
    WorkflowExecution {
        workflow_id: media.to_string(),
        run_id,
    }
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("read /metrics")
}

/// The value of one sample line `name{labels} value` whose labels include every `want` pair.
fn sample(scrape: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telemetry_matches_the_contract_and_the_deploy_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: tmp.path().join("data"),
        ..Config::default()
    };
    cfg.pipeline.time_scale = 0.05;
    cfg.pipeline.output_dir = tmp.path().join("out");
    cfg.pipeline.retry.initial_backoff_secs = 1.0;
    cfg.pipeline.retry.max_backoff_secs = 1.0;
    cfg.telemetry.log_stdout = false;
    cfg.telemetry.log_dir = Some(tmp.path().join("logs"));
    cfg.telemetry.log_level = "info".into();
    cfg.validate().unwrap();

    let guard = telemetry::init(&cfg.telemetry).expect("telemetry init");
    let health = HealthState::default();
    let metrics = telemetry::serve_metrics(([127, 0, 0, 1], 0).into(), health.clone(), false)
        .await
        .expect("metrics endpoint");
    let backend = app::connect(&cfg, Embed::Start).await.expect("swf-local");
    app::register_all(backend.client.as_ref(), &cfg)
        .await
        .expect("register");
    let mut opts = HostOptions::from_config(&cfg, 8);
    opts.backlog_sample_every = Duration::from_millis(200);
    let client: Arc<dyn SwfClient> = app::health_tracking(backend.swf(), health.clone());
    let host = Host::start(&cfg, client.clone(), &opts, Some(health.clone())).expect("host");
    let limit = Duration::from_secs(90);

    // Warm-up with faults: a failure then retry (thumbnails) and a task that outlives its
    // start-to-close timeout, so its late heartbeat meets UnknownResourceFault (detect_faces).
    let faulty = start_video(
        client.as_ref(),
        "media-obs-faults",
        Some(json!({
            "thumbnails": {"fail_times": 1},
            "detect_faces": {"hang": true, "fault_attempts": 1}
        })),
    )
    .await;
    let info = wait_closed(client.as_ref(), &faulty, limit).await.unwrap();
    assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));

    // /healthz answers 200 while the host polls.
    let health_status = reqwest::get(format!("http://{}/healthz", metrics.local_addr()))
        .await
        .unwrap()
        .status();
    assert_eq!(health_status.as_u16(), 200);

    // A real Prometheus scrapes from now on; the measured executions follow.
    let prom_available = std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok();
    if !prom_available && std::env::var("CI").as_deref() == Ok("true") {
        panic!("prometheus is not installed: run scripts/install-test-deps.sh");
    }
    let target = metrics.local_addr().to_string();
    let prom = if prom_available {
        Some(
            tokio::task::spawn_blocking({
                let root = repo_root();
                move || {
                    deploy_check::PrometheusRun::start(
                        &root,
                        &target,
                        &[],
                        4,
                        Duration::from_secs(120),
                    )
                }
            })
            .await
            .unwrap()
            .expect("a real Prometheus scraping the runtime"),
        )
    } else {
        eprintln!("prometheus not installed and CI unset: skipping the real-Prometheus part");
        None
    };
    let mut measured = Vec::new();
    for i in 0..3 {
        measured.push(start_video(client.as_ref(), &format!("media-obs-{i}"), None).await);
    }
    let mut timelines = Vec::new();
    for exec in &measured {
        let info = wait_closed(client.as_ref(), exec, limit).await.unwrap();
        assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
        timelines.push(fetch_timeline(client.as_ref(), exec).await.unwrap());
    }

    // The scrape: every metric the deploy files query exists, with labels and counts.
    let text = scrape(metrics.local_addr()).await;
    if let Err(errors) = deploy_check::check_against_scrape(&repo_root(), &text) {
        panic!(
            "deploy files query series the runtime does not emit:\n{}",
            errors.join("\n")
        );
    }
    let completed = |activity: &str| {
        sample(
            &text,
            "swf_activity_tasks_total",
            &[("activity_type", activity), ("outcome", "completed")],
        )
        .unwrap_or(0.0)
    };
    // Four executions, each stage completed once (the faulty one after its retry).
    for stage in ["transcode", "thumbnails", "detect_faces", "publish"] {
        assert_eq!(completed(stage), 4.0, "completed {stage} tasks\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "swf_activity_tasks_total",
            &[("activity_type", "thumbnails"), ("outcome", "failed")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "swf_activity_unknown_resource_total",
            &[("activity_type", "detect_faces")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the hung task's UnknownResourceFault is counted"
    );
    assert!(
        sample(
            &text,
            "swf_stage_retries_total",
            &[("activity_type", "detect_faces")]
        )
        .is_some(),
        "the timeout retry is counted"
    );
    assert_eq!(
        sample(
            &text,
            "swf_workflow_executions_total",
            &[
                ("workflow_type", "VideoProcessing"),
                ("outcome", "completed")
            ]
        ),
        Some(4.0)
    );
    assert!(sample(
        &text,
        "swf_stage_duration_seconds_count",
        &[("activity_type", "publish")]
    )
    .is_some());
    assert!(
        sample(
            &text,
            "swf_polls_total",
            &[("task_list", "video-processing"), ("outcome", "task")]
        )
        .unwrap_or(0.0)
            >= 4.0
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for id in ["media-obs", "user-obs"] {
            assert!(
                !line.contains(id),
                "a high-cardinality id in a metric label: {line}"
            );
        }
    }

    // Prometheus' stage quantiles match the measured stage durations: each p50 lies in the
    // bucket that holds the run's median duration of that stage.
    if let Some(prom) = prom {
        let results = tokio::task::spawn_blocking(move || prom.results())
            .await
            .unwrap()
            .expect("Prometheus results");
        let p50 = results
            .iter()
            .find(|(q, _)| q.contains(":p50"))
            .map(|(_, s)| s.clone())
            .expect("the p50 recording rule evaluated");
        let buckets = swf_runtime::telemetry::metrics::BUCKETS_SECONDS;
        for stage in ["transcode", "thumbnails", "detect_faces", "publish"] {
            let mut durations: Vec<f64> = timelines
                .iter()
                .filter_map(|t| t.stages.iter().find(|s| s.stage == stage)?.duration_secs)
                .collect();
            durations.sort_by(f64::total_cmp);
            let median = durations[durations.len() / 2];
            let upper = buckets.iter().copied().find(|b| *b >= median).unwrap();
            let lower = buckets
                .iter()
                .copied()
                .rev()
                .find(|b| *b < median)
                .unwrap_or(0.0);
            let got = p50
                .iter()
                .find(|s| s.labels.get("activity_type").map(String::as_str) == Some(stage))
                .unwrap_or_else(|| panic!("no p50 series for {stage}: {p50:?}"))
                .value;
            assert!(
                got >= lower - 1e-9 && got <= upper + 1e-9,
                "{stage}: Prometheus p50 {got} s is outside the bucket ({lower}, {upper}] of the run's median {median} s"
            );
        }
    }

    health.set_polling(false);
    let _ = host.stop().await;
    backend.shutdown().await;
    guard.shutdown().await;

    // The log lines: parse every one; task lines carry the task's ids.
    let mut lines = String::new();
    for entry in std::fs::read_dir(tmp.path().join("logs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("log") {
            lines.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let mut parsed = 0;
    let mut handler_lines = 0;
    let mut closing_lines: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        parsed += 1;
        for key in [
            fields::TIMESTAMP,
            fields::LOG_LEVEL,
            fields::MESSAGE,
            fields::SERVICE_NAME,
            fields::HOST_NAME,
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        let in_activity = v.get(fields::ACTIVITY_ID).is_some();
        let in_execution = v.get(fields::RUN_ID).is_some() && v.get(fields::MEDIA_UUID).is_some();
        if in_execution || in_activity {
            for key in fields::TASK_IDENTITY {
                assert!(
                    v.get(*key).is_some(),
                    "{key} missing on a task line: {line}"
                );
            }
            assert!(
                v.get(fields::TRACE_ID).is_some(),
                "trace.id missing on a task line: {line}"
            );
        }
        if in_activity {
            for key in fields::ACTIVITY_IDENTITY {
                assert!(
                    v.get(*key).is_some(),
                    "{key} missing on an activity line: {line}"
                );
            }
        }
        let msg = v[fields::MESSAGE].as_str().unwrap_or_default();
        if [
            "Transcoded the media.",
            "Cut the thumbnails.",
            "Detected the faces.",
            "Published the media.",
        ]
        .contains(&msg)
        {
            handler_lines += 1;
            assert!(
                in_activity && in_execution,
                "a handler's own line lacks the task's ids: {line}"
            );
        }
        if [
            "Activity task finished.",
            "Stage closed.",
            "Decision task completed.",
        ]
        .contains(&msg)
        {
            *closing_lines.entry(msg.to_string()).or_default() += 1;
            assert!(
                v.get(fields::DURATION_MS).is_some(),
                "duration_ms missing: {line}"
            );
            assert!(v.get(fields::OUTCOME).is_some(), "outcome missing: {line}");
        }
    }
    assert!(parsed > 50, "only {parsed} log lines");
    assert!(handler_lines >= 12, "handler lines seen: {handler_lines}");
    assert!(
        closing_lines.len() == 3,
        "closing lines seen: {closing_lines:?}"
    );
    if let Err(errors) =
        deploy_check::check_logstash_fields_against_log_lines(&repo_root(), &lines, &[])
    {
        panic!(
            "logstash/ names fields the runtime never logs:\n{}",
            errors.join("\n")
        );
    }
    drop(metrics);
}
