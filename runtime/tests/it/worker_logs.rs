//! The log lines of an activity task, as JSON: a lost task is reported in exactly one warn line
//! with its ids, and every line emitted while the task runs (the handler's own included) sits in
//! the task span that carries workflow_id, run_id, media_uuid, user_uuid and the rest.
//!
//! Alone in its test binary on purpose: a thread-local `tracing` subscriber shares callsite
//! caches with every other thread of the process, so tests running beside it could hide lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use swf_runtime::swf::fake::{FakeSwf, TaskScript};
use swf_runtime::swf::SwfClient;
use swf_runtime::worker::{
    ActivityContext, ActivityOutcome, ActivityRegistry, ActivityWorker, FnHandler, WorkerConfig,
};
use tokio_util::sync::CancellationToken;

const TL: &str = "media";
/// An upper bound for every wait, in virtual time.
const WAIT: Duration = Duration::from_secs(3600);

/// Collects what a `tracing_subscriber` JSON formatter writes.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;

    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

impl LogBuf {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }
}

#[test]
fn a_lost_task_is_reported_in_one_warn_line_and_task_lines_carry_the_ids() {
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_span_list(true)
        .with_current_span(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Stuck",
            FnHandler(
                |ctx: ActivityContext, _input: serde_json::Value| async move {
                    tracing::info!("Handler waiting for the cancellation.");
                    ctx.cancelled().cancelled().await;
                    std::future::pending::<()>().await;
                    Ok(ActivityOutcome::Completed(json!(null)))
                },
            ),
        );
        let mut cfg = WorkerConfig::new(TL);
        cfg.slots = 1;
        cfg.heartbeat_timeouts
            .insert("Stuck".into(), Duration::from_secs(30));
        let fake = Arc::new(FakeSwf::new("d", Duration::from_secs(60)));
        let client: Arc<dyn SwfClient> = fake.clone();
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(
            ActivityWorker::new(client, registry, cfg)
                .unwrap()
                .run(shutdown.clone()),
        );
        let env = swf_runtime::envelope::Envelope {
            swf_runtime: swf_runtime::envelope::TaskContext {
                media_uuid: "m-9".into(),
                user_uuid: "u-9".into(),
                workflow_type: "VideoProcessing".into(),
                stage: "faces".into(),
                attempt: 2,
            },
            input: json!({}),
        };
        fake.push_scripted_activity_task(
            TL,
            FakeSwf::activity_task("t1", "Stuck", Some(env.encode())),
            TaskScript {
                unknown_resource_after_heartbeats: Some(0),
                ..TaskScript::default()
            },
        );
        assert!(
            fake.wait_for(WAIT, |f| f.heartbeat_attempts("t1") == 1)
                .await
        );
        shutdown.cancel();
        tokio::time::timeout(WAIT, worker)
            .await
            .expect("worker stops")
            .unwrap()
            .unwrap();
    });

    let lines = logs.lines();
    let message = |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
    let warns: Vec<_> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    assert_eq!(warns.len(), 1, "{warns:#?}");
    let warn = &warns[0]["fields"];
    assert!(
        message(warns[0]).starts_with("Activity task abandoned"),
        "{warn}"
    );
    assert_eq!(warn["workflow_id"], "wf-t1");
    assert_eq!(warn["run_id"], "run-t1");
    assert_eq!(warn["activity_id"], "act-t1");
    assert_eq!(warn["during"], "heartbeat");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("\"t1\"")),
        "a raw token was logged"
    );

    // The handler's own line and the closing line sit in the task span, with every id.
    for text in [
        "Handler waiting for the cancellation.",
        "Activity task finished.",
    ] {
        let line = lines
            .iter()
            .find(|l| message(l) == text)
            .unwrap_or_else(|| panic!("no line {text:?}"));
        let span = line["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "activity_task"))
            .unwrap_or_else(|| panic!("{text:?} outside the task span: {line}"));
        for (field, value) in [
            ("workflow_id", json!("wf-t1")),
            ("run_id", json!("run-t1")),
            ("media_uuid", json!("m-9")),
            ("user_uuid", json!("u-9")),
            ("workflow_type", json!("VideoProcessing")),
            ("activity_type", json!("Stuck")),
            ("activity_id", json!("act-t1")),
            ("attempt", json!(2)),
            ("task_list", json!(TL)),
        ] {
            assert_eq!(span[field], value, "{field} of {text:?}");
        }
    }
    let closing = lines
        .iter()
        .find(|l| message(l) == "Activity task finished.")
        .unwrap();
    assert_eq!(closing["fields"]["outcome"], "timed_out");
    assert!(closing["fields"]["duration_ms"].is_u64());
}
