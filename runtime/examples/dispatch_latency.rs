//! Measures the worker's dispatch latency: from the moment a poll's answer is back in the runtime
//! to the moment the handler starts running, for many tasks through a real `ActivityWorker`.
//!
//! The SWF side is the in-memory fake, so only the runtime's own path is timed: the poll answer
//! is stamped through `swf::observe`, the handler stamps its own start.
//!
//! `cargo run --release -p swf-runtime --example dispatch_latency -- [TASKS]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use swf_runtime::swf::fake::FakeSwf;
use swf_runtime::swf::observe::{observe_polls, PollAnswer};
use swf_runtime::swf::{ActivityTask, TypeRef, WorkflowExecution};
use swf_runtime::worker::{
    ActivityOutcome, ActivityRegistry, ActivityWorker, FnHandler, WorkerConfig,
};

type Stamps = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = std::env::args().nth(1).map_or(Ok(20_000), |s| s.parse())?;
    let fake = Arc::new(FakeSwf::new("bench", Duration::from_millis(200)));
    let answered: Stamps = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    // Stamp every activity task the moment its poll answer is back in the runtime.
    let client = {
        let answered = answered.clone();
        observe_polls(fake.clone(), move |answer| {
            if let PollAnswer::Activity(Some(task)) = answer {
                let now = Instant::now();
                answered
                    .lock()
                    .unwrap()
                    .insert(task.task_token.clone(), now);
            }
        })
    };
    let mut registry = ActivityRegistry::new();
    {
        let (answered, latencies) = (answered.clone(), latencies.clone());
        registry.register(
            "probe",
            FnHandler(move |ctx: swf_runtime::worker::ActivityContext, _input| {
                let now = Instant::now();
                let at = answered.lock().unwrap().remove(ctx.task_token());
                if let Some(at) = at {
                    latencies
                        .lock()
                        .unwrap()
                        .push(now.duration_since(at).as_secs_f64() * 1e6);
                }
                async move { Ok(ActivityOutcome::Completed(json!({}))) }
            }),
        );
    }
    let mut cfg = WorkerConfig::new("probe");
    cfg.slots = 64;
    cfg.pollers = 4;
    let worker = ActivityWorker::new(client, registry, cfg)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(worker.run(shutdown.clone()));
    for i in 0..tasks {
        fake.push_activity_task(
            "probe",
            ActivityTask {
                task_token: format!("token-{i}"),
                activity_id: format!("probe-{i}"),
                activity_type: TypeRef {
                    name: "probe".into(),
                    version: "1".into(),
                },
                execution: WorkflowExecution {
                    workflow_id: format!("w-{i}"),
                    run_id: format!("r-{i}"),
                },
                input: Some("{}".into()),
                started_event_id: 3,
            },
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.lock().unwrap().len() < tasks && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let _ = handle.await;
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let p = |q: f64| l[((q / 100.0) * (l.len() - 1) as f64).round() as usize];
    println!(
        "{} tasks: poll answer -> handler start p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        l.len(),
        p(50.0),
        p(99.0),
        l[l.len() - 1]
    );
    Ok(())
}
