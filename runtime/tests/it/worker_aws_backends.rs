//! The `aws-sdk-swf` client and an activity worker against real SWF-compatible endpoints: the
//! embedded swf-local (the default backend) and a third-party implementation, moto's server,
//! each started on 127.0.0.1 for the test.
//!
//! Proves the wire side of `swf::aws`: connecting to an endpoint URL with no configured
//! credentials, registration (and its AlreadyExists mapping), starting executions (and the
//! already-started mapping), decision and activity polls (empty polls as `None`), heartbeats,
//! answers, history, describe/list/signal/terminate, and the API call metrics. On swf-local a
//! stale task token must also come back as UnknownResource (moto answers HTTP 500 instead).
//!
//! moto's server comes from `scripts/test.sh` (`SWF_TEST_MOTO_SERVER`, or `.venv/bin/moto_server`
//! in the workspace). Without it the moto test says so and passes only outside CI.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_swf::types as t;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use serde_json::json;
use swf_runtime::swf::aws::{AwsSwfClient, ClientOptions};
use swf_runtime::swf::{
    ActivityTypeRegistration, ExecutionState, StartWorkflow, SwfClient, SwfError, TypeRef,
    WorkflowExecution, WorkflowTypeRegistration,
};
use swf_runtime::telemetry::metrics as m;
use swf_runtime::worker::{
    ActivityContext, ActivityOutcome, ActivityRegistry, ActivityWorker, FnHandler, WorkerConfig,
};
use tokio_util::sync::CancellationToken;

const DOMAIN: &str = "media-test";
const ACTIVITY_TL: &str = "media-activities";
const DECIDER_TL: &str = "media-decider";

/// Kills moto's server when the test ends, however it ends.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SWF_TEST_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    local.exists().then_some(local)
}

fn start_moto(bin: &PathBuf) -> (Moto, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let moto = Moto(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not listen on {addr} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, format!("http://{addr}"))
}

fn tr(name: &str) -> TypeRef {
    TypeRef {
        name: name.into(),
        version: "1".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    SwfLocal,
    Moto,
}

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Runs `f` on a current-thread runtime under a local metrics recorder; returns the metrics.
fn with_metrics<F: std::future::Future<Output = ()>>(f: F) -> Snapshot {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    });
    snapshotter.snapshot().into_vec()
}

fn check_api_metrics(snapshot: &Snapshot) {
    let calls = |op: &str, outcome: &str| -> u64 {
        crate::common::metrics::sum(
            snapshot.iter().map(|(k, _, _, v)| (k, v)),
            MetricKind::Counter,
            m::API_CALLS.name,
            &[("operation", op), ("outcome", outcome)],
        ) as u64
    };
    assert_eq!(calls("RegisterDomain", "ok"), 1);
    assert_eq!(calls("RegisterDomain", "error"), 1);
    assert!(calls("PollForActivityTask", "ok") >= 2);
    assert_eq!(calls("RespondActivityTaskCompleted", "ok"), 1);
    assert!(calls("RecordActivityTaskHeartbeat", "ok") >= 1);
    let durations = snapshot
        .iter()
        .filter(|(k, _, _, _)| {
            k.kind() == MetricKind::Histogram && k.key().name() == m::API_CALL_DURATION.name
        })
        .count();
    assert!(durations >= 10, "{durations} operations timed");
}

#[test]
fn the_aws_client_and_a_worker_run_a_task_on_swf_local() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("swf.db");
    let snapshot = with_metrics(async move {
        let mut config = swf_local::Config::new("127.0.0.1:0".parse().unwrap(), db);
        // Empty polls are held this long (60 s in production).
        config.long_poll_timeout = Duration::from_secs(1);
        let server = swf_local::start(config).await.expect("swf-local starts");
        scenario(server.endpoint_url(), Backend::SwfLocal).await;
        server.shutdown().await;
    });
    check_api_metrics(&snapshot);
}

#[test]
fn the_aws_client_and_a_worker_run_a_task_on_moto() {
    let Some(bin) = moto_server() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "moto_server not found in CI: run scripts/test.sh"
        );
        eprintln!("skipped: moto_server not found (run scripts/test.sh to install it)");
        return;
    };
    let (_moto, endpoint) = start_moto(&bin);
    let snapshot = with_metrics(scenario(endpoint, Backend::Moto));
    check_api_metrics(&snapshot);
}

async fn scenario(endpoint: String, backend: Backend) {
    let client = Arc::new(
        AwsSwfClient::connect(&ClientOptions {
            domain: DOMAIN.into(),
            endpoint_url: Some(endpoint),
            ..ClientOptions::default()
        })
        .await
        .expect("client for the endpoint"),
    );

    client
        .register_domain(1, Some("test".into()))
        .await
        .unwrap();
    assert!(matches!(
        client.register_domain(1, None).await,
        Err(SwfError::AlreadyExists(_))
    ));
    let wf = WorkflowTypeRegistration {
        workflow_type: tr("VideoProcessing"),
        description: None,
        default_task_list: DECIDER_TL.into(),
        default_execution_start_to_close_timeout_secs: 3600,
        default_task_start_to_close_timeout_secs: 60,
        default_child_policy: "TERMINATE".into(),
    };
    client.register_workflow_type(&wf).await.unwrap();
    assert!(matches!(
        client.register_workflow_type(&wf).await,
        Err(SwfError::AlreadyExists(_))
    ));
    client
        .register_activity_type(&ActivityTypeRegistration {
            activity_type: tr("Echo"),
            description: Some("echoes".into()),
            default_task_list: ACTIVITY_TL.into(),
            default_schedule_to_start_timeout_secs: Some(300),
            default_schedule_to_close_timeout_secs: Some(600),
            default_start_to_close_timeout_secs: Some(300),
            default_heartbeat_timeout_secs: None,
        })
        .await
        .unwrap();

    // An empty activity poll is `None` (moto answers at once instead of holding the poll).
    assert!(client
        .poll_for_activity_task(ACTIVITY_TL, "test")
        .await
        .unwrap()
        .is_none());

    let start = StartWorkflow {
        workflow_id: "media-1".into(),
        workflow_type: Some(tr("VideoProcessing")),
        input: Some(json!({"media_uuid": "media-1"}).to_string()),
        ..StartWorkflow::default()
    };
    let run_id = client.start_workflow_execution(&start).await.unwrap();
    assert!(!run_id.is_empty());
    assert!(matches!(
        client.start_workflow_execution(&start).await,
        Err(SwfError::WorkflowAlreadyStarted(_))
    ));
    let execution = WorkflowExecution {
        workflow_id: "media-1".into(),
        run_id: run_id.clone(),
    };

    // Decide by hand through the SDK (the decision model belongs to the decider): schedule Echo.
    let page = client
        .poll_for_decision_task(DECIDER_TL, "test", None)
        .await
        .unwrap()
        .expect("a decision task");
    assert_eq!(page.execution, execution);
    assert_eq!(page.workflow_type, tr("VideoProcessing"));
    assert!(!page.events.is_empty());
    let schedule = t::Decision::builder()
        .decision_type(t::DecisionType::ScheduleActivityTask)
        .schedule_activity_task_decision_attributes(
            t::ScheduleActivityTaskDecisionAttributes::builder()
                .activity_type(
                    t::ActivityType::builder()
                        .name("Echo")
                        .version("1")
                        .build()
                        .unwrap(),
                )
                .activity_id("echo-1")
                .task_list(t::TaskList::builder().name(ACTIVITY_TL).build().unwrap())
                .input(r#"{"n": 7}"#)
                .heartbeat_timeout("30")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    client
        .sdk()
        .respond_decision_task_completed()
        .task_token(&page.task_token)
        .decisions(schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(
        client
            .count_pending_activity_tasks(ACTIVITY_TL)
            .await
            .unwrap(),
        1
    );

    // The worker picks the task up, heartbeats, completes it.
    let token: Arc<Mutex<Option<String>>> = Arc::default();
    let keep = token.clone();
    let mut registry = ActivityRegistry::new();
    registry.register(
        "Echo",
        FnHandler(move |ctx: ActivityContext, input: serde_json::Value| {
            *keep.lock().unwrap() = Some(ctx.task_token().to_string());
            async move {
                // Past the first heartbeat interval (below): this call or the worker's beat
                // before it reaches SWF.
                tokio::time::sleep(Duration::from_millis(150)).await;
                ctx.heartbeat(Some("halfway".into())).await;
                Ok(ActivityOutcome::Completed(json!({ "echo": input })))
            }
        }),
    );
    let mut cfg = WorkerConfig::new(ACTIVITY_TL);
    cfg.slots = 1;
    cfg.pollers = 1;
    cfg.heartbeat_timeouts
        .insert("Echo".into(), Duration::from_millis(300));
    let worker = ActivityWorker::new(client.clone(), registry, cfg).unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    // The completion schedules a decision task; its history shows the result.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let page = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no decision task after the activity"
        );
        if let Some(p) = client
            .poll_for_decision_task(DECIDER_TL, "test", None)
            .await
            .unwrap()
        {
            break p;
        }
    };
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("worker stops")
        .unwrap()
        .unwrap();
    // An empty decision list through the trait: the execution stays open.
    client
        .respond_decision_task_completed(&page.task_token, Vec::new(), None)
        .await
        .unwrap();
    let history = client
        .sdk()
        .get_workflow_execution_history()
        .domain(DOMAIN)
        .execution(
            t::WorkflowExecution::builder()
                .workflow_id("media-1")
                .run_id(&run_id)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let completed = history
        .events()
        .iter()
        .find_map(|e| e.activity_task_completed_event_attributes())
        .expect("ActivityTaskCompleted in the history");
    assert_eq!(completed.result(), Some(r#"{"echo":{"n":7}}"#));
    if backend == Backend::SwfLocal {
        // The answered task's token is stale now: what a worker whose task timed out sees.
        let stale = token.lock().unwrap().clone().expect("the handler ran");
        assert!(matches!(
            client.record_activity_task_heartbeat(&stale, None).await,
            Err(SwfError::UnknownResource(_))
        ));
        assert!(matches!(
            client.respond_activity_task_completed(&stale, None).await,
            Err(SwfError::UnknownResource(_))
        ));
    }
    // History through the trait, one page; describe, list, signal, terminate.
    let trait_page = client
        .get_workflow_execution_history(&execution, None, false)
        .await
        .unwrap();
    assert_eq!(trait_page.events.len(), history.events().len());
    assert_eq!(trait_page.next_page_token, None);
    let info = client
        .describe_workflow_execution(&execution)
        .await
        .unwrap();
    assert_eq!(info.execution_status, "OPEN");
    assert_eq!(info.workflow_type, tr("VideoProcessing"));
    let open = client
        .list_executions(ExecutionState::Open, 3600, None)
        .await
        .unwrap();
    assert!(open.iter().any(|e| e.execution == execution));
    client
        .signal_workflow_execution("media-1", None, "faces_confirmed", Some("{}".into()))
        .await
        .unwrap();
    client
        .terminate_workflow_execution("media-1", Some(&run_id), Some("test over".into()))
        .await
        .unwrap();
    let closed = client
        .list_executions(ExecutionState::Closed, 3600, Some("media-1"))
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].close_status.as_deref(), Some("TERMINATED"));
    assert!(matches!(
        client
            .describe_workflow_execution(&WorkflowExecution {
                workflow_id: "nope".into(),
                run_id: "nope".into(),
            })
            .await,
        Err(SwfError::UnknownResource(_))
    ));
}
