//! The global telemetry pipeline with file logs on and OTLP off: every JSON line parses, carries the
//! ECS keys, lines inside a task inherit the task's identity through its span, and `trace.id` is
//! derived from the run id so logs join the execution's trace. Then `swf-runtime logs`' core finds
//! the media's lines and renders them.
//!
//! One test function: it installs the process-global subscriber.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use swf_runtime::envelope::trace_id_for_run;
use swf_runtime::telemetry::{self, fields as f, TelemetryConfig};

#[test]
fn json_lines_carry_ecs_keys_and_the_task_identity() {
    // The test controls the filter; an inherited RUST_LOG would change what is logged.
    assert!(
        std::env::var("RUST_LOG").is_err(),
        "run this test without RUST_LOG"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = TelemetryConfig {
        service_name: "swf-runtime-test".into(),
        log_level: "debug".into(),
        log_stdout: false,
        log_dir: Some(dir.path().to_path_buf()),
        log_file_max_bytes: 2048, // small: the lines spread over rotated files
        log_files_kept: 50,
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init(&cfg).unwrap();
    assert!(
        telemetry::init(&cfg).is_err(),
        "a second init must be refused, not silently ignored"
    );

    tracing::info!(component = "main", "Runtime started.");
    for (run_id, media) in [("run-a", "media-a"), ("run-b", "media-b")] {
        let task = tracing::info_span!(
            "activity_task",
            workflow_id = media,
            run_id = run_id,
            media_uuid = media,
            user_uuid = "user-1",
            workflow_type = "VideoProcessing",
            activity_type = "Transcode",
            activity_id = "transcode-1",
            attempt = 1u32,
            task_list = "media",
            stage = "transcode",
            duration_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let _task = task.enter();
        tracing::info!("Activity task started.");
        {
            // The handler's own span and line: it passes none of the ids around.
            let handler = tracing::debug_span!("handler", step = "encode");
            let _h = handler.enter();
            for frame in 0..20u32 {
                tracing::debug!(frame, "Encoded a chunk.");
            }
            tracing::warn!(error = %"codec \"x\" slow", "Encoding slower than expected.");
        }
        task.record("duration_ms", 1234u64);
        task.record("outcome", "completed");
        tracing::info!("Activity task completed.");
    }
    assert!(guard.flush_local(Duration::from_secs(10)));

    let mut lines = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files += 1;
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON in {}: {e}: {line}", path.display()));
            lines.push(value);
        }
    }
    assert!(files > 2, "rotation spread the lines over {files} files");
    assert_eq!(lines.len(), 1 + 2 * (1 + 20 + 1 + 1));

    let mut span_ids = HashSet::new();
    for line in &lines {
        for key in [
            f::TIMESTAMP,
            f::LOG_LEVEL,
            f::MESSAGE,
            f::SERVICE_NAME,
            f::HOST_NAME,
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(line[f::SERVICE_NAME], "swf-runtime-test");
        let ts = line[f::TIMESTAMP].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
        let message = line[f::MESSAGE].as_str().unwrap();
        assert!(
            message.ends_with('.') && message.starts_with(char::is_uppercase),
            "{message}"
        );
        if line["component"] == "main" {
            assert!(line.get(f::TRACE_ID).is_none(), "no run, no trace: {line}");
            continue;
        }
        for key in f::TASK_IDENTITY.iter().chain(f::ACTIVITY_IDENTITY) {
            assert!(line.get(*key).is_some(), "{key} missing in {line}");
        }
        let run_id = line[f::RUN_ID].as_str().unwrap();
        assert_eq!(
            line[f::TRACE_ID].as_str().unwrap(),
            hex::encode(trace_id_for_run(run_id)),
            "{line}"
        );
        assert_eq!(line[f::SPAN_ID].as_str().unwrap().len(), 16);
        span_ids.insert(line[f::SPAN_ID].as_str().unwrap().to_string());
        assert_eq!(line[f::ATTEMPT], 1);
        if line[f::MESSAGE] == "Encoded a chunk." {
            assert_eq!(line["step"], "encode", "the handler span's own field");
            assert!(line["frame"].is_u64());
            assert_eq!(line[f::LOG_LEVEL], "debug");
        }
        if line[f::MESSAGE] == "Encoding slower than expected." {
            assert_eq!(line[f::ERROR], "codec \"x\" slow");
            assert_eq!(line[f::LOG_LEVEL], "warn");
        }
        if line[f::MESSAGE] == "Activity task completed." {
            assert_eq!(line[f::DURATION_MS], 1234);
            assert_eq!(line[f::OUTCOME], "completed");
        }
    }
    assert_eq!(span_ids.len(), 4, "two task spans and two handler spans");

    let found = telemetry::search_logs(dir.path(), "media-b", None, None).unwrap();
    assert_eq!(found.len(), 1 + 20 + 1 + 1);
    assert!(found.iter().all(|l| l[f::MEDIA_UUID] == "media-b"));
    assert_eq!(found[0][f::MESSAGE], "Activity task started.");
    assert_eq!(
        found[found.len() - 1][f::MESSAGE],
        "Activity task completed."
    );
    let timeline = telemetry::render_timeline(&found);
    assert!(
        timeline.starts_with("media media-b: 23 lines"),
        "{timeline}"
    );
    let last = timeline.lines().last().unwrap();
    assert!(
        last.contains("INFO   transcode") && last.contains("duration_ms=1234  outcome=completed"),
        "{last}"
    );
    assert!(
        telemetry::search_logs(dir.path(), "media-b", Some("media-a"), None)
            .unwrap()
            .is_empty()
    );

    drop(guard);
}
