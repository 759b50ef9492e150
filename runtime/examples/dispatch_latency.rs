//! Measures the worker's dispatch latency: from the moment a poll's answer is back in the runtime
//! to the moment the handler starts running, for many tasks through a real `ActivityWorker`.
//!
//! The SWF side is the in-memory fake, so only the runtime's own path is timed: the poll answer
//! is stamped by a thin client wrapper, the handler stamps its own start.
//!
//! `cargo run --release -p swf-runtime --example dispatch_latency -- [TASKS]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use swf_runtime::swf::fake::FakeSwf;
use swf_runtime::swf::*;
use swf_runtime::worker::{
    ActivityOutcome, ActivityRegistry, ActivityWorker, FnHandler, WorkerConfig,
};

type Stamps = Arc<Mutex<HashMap<String, Instant>>>;

/// Stamps every activity task when its poll answer arrives.
struct Stamping {
    inner: Arc<FakeSwf>,
    answered: Stamps,
}

#[async_trait]
impl SwfClient for Stamping {
    fn domain(&self) -> &str {
        self.inner.domain()
    }
    async fn register_domain(&self, d: u32, s: Option<String>) -> Result<(), SwfError> {
        self.inner.register_domain(d, s).await
    }
    async fn register_workflow_type(&self, r: &WorkflowTypeRegistration) -> Result<(), SwfError> {
        self.inner.register_workflow_type(r).await
    }
    async fn register_activity_type(&self, r: &ActivityTypeRegistration) -> Result<(), SwfError> {
        self.inner.register_activity_type(r).await
    }
    async fn start_workflow_execution(&self, s: &StartWorkflow) -> Result<String, SwfError> {
        self.inner.start_workflow_execution(s).await
    }
    async fn poll_for_decision_task(
        &self,
        t: &str,
        i: &str,
        p: Option<&str>,
    ) -> Result<Option<DecisionTaskPage>, SwfError> {
        self.inner.poll_for_decision_task(t, i, p).await
    }
    async fn respond_decision_task_completed(
        &self,
        t: &str,
        d: Vec<Decision>,
        c: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.respond_decision_task_completed(t, d, c).await
    }
    async fn poll_for_activity_task(
        &self,
        t: &str,
        i: &str,
    ) -> Result<Option<ActivityTask>, SwfError> {
        let r = self.inner.poll_for_activity_task(t, i).await;
        if let Ok(Some(task)) = &r {
            let now = Instant::now();
            self.answered
                .lock()
                .unwrap()
                .insert(task.task_token.clone(), now);
        }
        r
    }
    async fn record_activity_task_heartbeat(
        &self,
        t: &str,
        d: Option<String>,
    ) -> Result<bool, SwfError> {
        self.inner.record_activity_task_heartbeat(t, d).await
    }
    async fn respond_activity_task_completed(
        &self,
        t: &str,
        r: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.respond_activity_task_completed(t, r).await
    }
    async fn respond_activity_task_failed(
        &self,
        t: &str,
        r: Option<String>,
        d: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.respond_activity_task_failed(t, r, d).await
    }
    async fn respond_activity_task_canceled(
        &self,
        t: &str,
        d: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.respond_activity_task_canceled(t, d).await
    }
    async fn get_workflow_execution_history(
        &self,
        e: &WorkflowExecution,
        t: Option<&str>,
        r: bool,
    ) -> Result<HistoryPage, SwfError> {
        self.inner.get_workflow_execution_history(e, t, r).await
    }
    async fn describe_workflow_execution(
        &self,
        e: &WorkflowExecution,
    ) -> Result<ExecutionInfo, SwfError> {
        self.inner.describe_workflow_execution(e).await
    }
    async fn list_executions(
        &self,
        s: ExecutionState,
        since: u64,
        w: Option<&str>,
    ) -> Result<Vec<ExecutionInfo>, SwfError> {
        self.inner.list_executions(s, since, w).await
    }
    async fn signal_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
        n: &str,
        i: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.signal_workflow_execution(w, r, n, i).await
    }
    async fn request_cancel_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
    ) -> Result<(), SwfError> {
        self.inner.request_cancel_workflow_execution(w, r).await
    }
    async fn terminate_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.terminate_workflow_execution(w, r, reason).await
    }
    async fn count_pending_activity_tasks(&self, t: &str) -> Result<u64, SwfError> {
        self.inner.count_pending_activity_tasks(t).await
    }
    async fn count_pending_decision_tasks(&self, t: &str) -> Result<u64, SwfError> {
        self.inner.count_pending_decision_tasks(t).await
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let tasks: usize = std::env::args().nth(1).map_or(Ok(20_000), |s| s.parse())?;
    let fake = Arc::new(FakeSwf::new("bench", Duration::from_millis(200)));
    let answered: Stamps = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let client: Arc<dyn SwfClient> = Arc::new(Stamping {
        inner: fake.clone(),
        answered: answered.clone(),
    });
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
