//! `telemetry::set_enabled`, which `swf-runtime bench --telemetry compare` flips between slices:
//! while off, no line reaches the log file, no metric moves and no execution root span is
//! exported; back on, all of them work again.
//!
//! One test function: it installs the process-global subscriber and recorder.

use std::time::{Duration, SystemTime};

use swf_runtime::telemetry::{self, metrics as m, TelemetryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_telemetry_off_silences_lines_metrics_and_spans_until_it_is_back_on() {
    assert!(std::env::var("RUST_LOG").is_err(), "run without RUST_LOG");
    let dir = tempfile::tempdir().unwrap();
    let cfg = TelemetryConfig {
        service_name: "switch".into(),
        log_stdout: false,
        log_dir: Some(dir.path().join("logs")),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init(&cfg).unwrap();
    let metrics = telemetry::server::prometheus_handle().unwrap();

    let count = |name: &str| -> f64 {
        metrics
            .render()
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // A series through the runtime's kept handles (`metrics::increment`), by its whole label set.
    let series = |line_start: &str| -> f64 {
        metrics
            .render()
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mark = |phase: &str| {
        let span = tracing::info_span!("activity_task", media_uuid = "m-switch");
        let _e = span.enter();
        tracing::info!(phase, "Switch test line.");
        metrics::counter!("swf_switch_test_total").increment(1);
        // The same handle is kept across the switch: off must not record through it, and back on
        // it must record again (not stay a no-op taken while off).
        m::increment(&m::POLLS, &["switch-a", "task"], 1);
        m::increment(&m::POLLS, &["switch-b", "empty"], 10);
    };

    mark("on-before");
    assert!(telemetry::enabled());
    telemetry::set_enabled(false);
    assert!(!telemetry::enabled());
    mark("off");
    assert!(!telemetry::export_execution_root_span(
        "run-switch",
        "VideoProcessing",
        "m-switch",
        SystemTime::now() - Duration::from_secs(1),
        SystemTime::now(),
        vec![],
    ));
    assert!(
        !tracing::enabled!(tracing::Level::ERROR),
        "every level is off"
    );
    telemetry::set_enabled(true);
    mark("on-after");
    assert!(tracing::enabled!(tracing::Level::INFO));
    assert!(
        !tracing::enabled!(tracing::Level::DEBUG),
        "the configured level is back"
    );

    assert_eq!(count("swf_switch_test_total"), 2.0);
    // Label values pick their own series, on whichever thread the update runs.
    tokio::spawn(async { m::increment(&m::POLLS, &["switch-a", "task"], 100) })
        .await
        .unwrap();
    assert_eq!(
        series(r#"swf_polls_total{task_list="switch-a",outcome="task"}"#),
        102.0
    );
    assert_eq!(
        series(r#"swf_polls_total{task_list="switch-b",outcome="empty"}"#),
        20.0
    );
    guard.shutdown().await;
    let text = std::fs::read_to_string(dir.path().join("logs/swf-runtime.log")).unwrap();
    let phases: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "Switch test line.")
        .map(|v| v["phase"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phases, ["on-before", "on-after"]);
}
