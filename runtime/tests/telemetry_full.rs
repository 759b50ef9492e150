//! The whole pipeline as `main` sets it up: `telemetry::init` with a log file, Logstash shipping
//! to a stand-in listener and OTLP to an in-test collector. A task's line reaches the file and
//! Logstash with the same `trace.id`/`span.id` as the exported span, the global root-span export
//! works, and `TelemetryGuard::shutdown` delivers what is still queued (no explicit flush).
//!
//! One test function: it installs the process-global subscriber.

use std::time::{Duration, SystemTime};

use fake_opentelemetry_collector::FakeCollectorServer;
use serde_json::Value;
use swf_runtime::envelope::{root_span_id_for_run, trace_id_for_run};
use swf_runtime::telemetry::{self, fields as f, TelemetryConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_wires_file_logstash_and_otlp_and_shutdown_flushes_them() {
    for var in [
        "RUST_LOG",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        assert!(std::env::var(var).is_err(), "run without {var}");
    }
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let logstash = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TelemetryConfig {
        service_name: "full".into(),
        log_stdout: false,
        log_dir: Some(dir.path().join("logs")),
        logstash_addr: Some(logstash.local_addr().unwrap().to_string()),
        logstash_backoff_min_ms: 5,
        logstash_backoff_max_ms: 50,
        otlp_endpoint: Some(collector.endpoint()),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init(&cfg).unwrap();

    let run_id = "run-full";
    {
        let span = tracing::info_span!(
            "activity_task",
            workflow_id = "media-full",
            run_id = run_id,
            media_uuid = "media-full",
        );
        assert!(telemetry::set_execution_parent(&span, run_id));
        let _e = span.enter();
        tracing::info!(outcome = "completed", "Activity task completed.");
    }
    assert!(telemetry::export_execution_root_span(
        run_id,
        "VideoProcessing",
        "media-full",
        SystemTime::now() - Duration::from_secs(1),
        SystemTime::now(),
        vec![],
    ));

    let (conn, _) = tokio::time::timeout(WAIT, logstash.accept())
        .await
        .expect("the shipper connects")
        .unwrap();
    let mut shipped = String::new();
    tokio::time::timeout(WAIT, BufReader::new(conn).read_line(&mut shipped))
        .await
        .expect("the line is shipped")
        .unwrap();
    let shipped: Value = serde_json::from_str(shipped.trim_end()).unwrap();

    // Nothing flushed by hand: shutdown must deliver the spans and write the file.
    guard.shutdown().await;

    let spans = collector.exported_spans(2, WAIT).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let trace = hex::encode(trace_id_for_run(run_id));
    let root_id = hex::encode(root_span_id_for_run(run_id));
    let task = spans.iter().find(|s| s.name == "activity_task").unwrap();
    let root = spans.iter().find(|s| s.span_id == root_id).unwrap();
    assert_eq!(task.trace_id, trace);
    assert_eq!(root.trace_id, trace);
    assert_eq!(task.parent_span_id, root_id);

    let file = std::fs::read_to_string(dir.path().join("logs").join("swf-runtime.log")).unwrap();
    let line: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(line, shipped, "Logstash gets exactly the file's line");
    assert_eq!(line[f::TRACE_ID], trace.as_str());
    assert_eq!(line[f::SPAN_ID], task.span_id.as_str());
    assert_eq!(line[f::MEDIA_UUID], "media-full");
    assert_eq!(line[f::OUTCOME], "completed");
}
