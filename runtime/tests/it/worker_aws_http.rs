//! The `aws-sdk-swf` client against a scripted HTTP endpoint on 127.0.0.1: throttling is retried
//! and counted, service faults map to the boundary's errors, empty polls are `None`, and a poll
//! gets its long read timeout while other calls keep the short one; each call is a span beneath
//! the task span it serves when the `swf_runtime::swf` target is at `debug`.
//!
//! The endpoint answers each request with the next scripted (delay, status, JSON body), in order,
//! and records the `X-Amz-Target` of each request, so a test sees exactly which calls were made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use swf_runtime::swf::aws::{AwsSwfClient, ClientOptions};
use swf_runtime::swf::{SwfClient, SwfError};
use swf_runtime::telemetry::metrics as m;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
struct Reply {
    delay: Duration,
    status: u16,
    body: String,
}

fn ok(body: &str) -> Reply {
    Reply {
        delay: Duration::ZERO,
        status: 200,
        body: body.to_string(),
    }
}

fn fault(code: &str, message: &str) -> Reply {
    Reply {
        delay: Duration::ZERO,
        status: 400,
        body: format!(
            r#"{{"__type":"com.amazonaws.swf.base.model#{code}","message":"{message}"}}"#
        ),
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    targets: Mutex<Vec<String>>,
    /// Whether each request carried an Authorization header.
    signed: Mutex<Vec<bool>>,
}

/// Serves the script on a fresh port; returns the endpoint URL.
async fn serve(script: Arc<Script>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(connection(stream, script.clone()));
        }
    });
    format!("http://{addr}")
}

async fn connection(mut stream: TcpStream, script: Arc<Script>) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let header_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_string())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..header_end + length);
        script
            .targets
            .lock()
            .unwrap()
            .push(header("x-amz-target").unwrap_or_default());
        script
            .signed
            .lock()
            .unwrap()
            .push(header("authorization").is_some_and(|v| v.starts_with("aws4-hmac-sha256")));
        let reply = script
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| fault("ValidationException", "script exhausted"));
        tokio::time::sleep(reply.delay).await;
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            reply.body
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn options(endpoint: String) -> ClientOptions {
    ClientOptions {
        domain: "d".into(),
        endpoint_url: Some(endpoint),
        static_credentials: Some(("AKIDTEST".into(), "secret".into())),
        region: Some("us-east-1".into()),
        poll_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_millis(700),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 3,
        ..ClientOptions::default()
    }
}

fn counter_of(
    snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    labels: &[(&str, &str)],
) -> u64 {
    crate::common::metrics::sum(
        snapshot.iter().map(|(k, _, _, v)| (k, v)),
        MetricKind::Counter,
        name,
        labels,
    ) as u64
}

/// Runs `f` on a current-thread runtime under a local metrics recorder; returns the metrics.
fn with_metrics<F: std::future::Future<Output = ()>>(
    f: F,
) -> Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)> {
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

#[test]
fn throttling_is_retried_and_counted() {
    let script = Arc::new(Script::default());
    script.replies.lock().unwrap().extend([
        fault("ThrottlingException", "Rate exceeded"),
        ok(r#"{"count": 3, "truncated": false}"#),
    ]);
    let s = script.clone();
    let metrics = with_metrics(async move {
        let client = AwsSwfClient::connect(&options(serve(s).await))
            .await
            .unwrap();
        assert_eq!(client.count_pending_activity_tasks("tl").await.unwrap(), 3);
    });
    assert_eq!(
        *script.targets.lock().unwrap(),
        vec![
            "simpleworkflowservice.countpendingactivitytasks".to_string(),
            "simpleworkflowservice.countpendingactivitytasks".to_string()
        ]
    );
    let op = [("operation", "CountPendingActivityTasks")];
    assert_eq!(counter_of(&metrics, m::API_THROTTLES.name, &op), 1);
    assert_eq!(
        counter_of(
            &metrics,
            m::API_CALLS.name,
            &[
                ("operation", "CountPendingActivityTasks"),
                ("outcome", "ok")
            ]
        ),
        1
    );
    assert_eq!(counter_of(&metrics, m::API_ERRORS.name, &op), 0);
}

/// Requests are SigV4-signed unless the options say otherwise (only the embedded swf-local without
/// credentials does), and an unsigned client still completes calls.
#[test]
fn requests_are_signed_unless_signing_is_off() {
    for sign in [true, false] {
        let script = Arc::new(Script::default());
        script
            .replies
            .lock()
            .unwrap()
            .push_back(ok(r#"{"count": 1, "truncated": false}"#));
        let s = script.clone();
        with_metrics(async move {
            let client = AwsSwfClient::connect(&ClientOptions {
                sign,
                ..options(serve(s).await)
            })
            .await
            .unwrap();
            assert_eq!(client.count_pending_activity_tasks("tl").await.unwrap(), 1);
        });
        assert_eq!(*script.signed.lock().unwrap(), vec![sign], "sign = {sign}");
    }
}

#[test]
fn service_faults_map_to_boundary_errors_and_are_counted() {
    let script = Arc::new(Script::default());
    script.replies.lock().unwrap().extend([
        fault("UnknownResourceFault", "Unknown task token"),
        fault("UnknownResourceFault", "Unknown task token"),
        fault("TypeAlreadyExistsFault", "exists"),
        fault("OperationNotPermittedFault", "not allowed"),
        fault("LimitExceededFault", "too many"),
    ]);
    let s = script.clone();
    let metrics = with_metrics(async move {
        let client = AwsSwfClient::connect(&options(serve(s).await))
            .await
            .unwrap();
        assert!(matches!(
            client.record_activity_task_heartbeat("tok", None).await,
            Err(SwfError::UnknownResource(m)) if m == "Unknown task token"
        ));
        assert!(matches!(
            client.respond_activity_task_completed("tok", None).await,
            Err(SwfError::UnknownResource(_))
        ));
        assert!(matches!(
            client
                .register_activity_type(&swf_runtime::swf::ActivityTypeRegistration {
                    activity_type: swf_runtime::swf::TypeRef {
                        name: "A".into(),
                        version: "1".into()
                    },
                    description: None,
                    default_task_list: "tl".into(),
                    default_schedule_to_start_timeout_secs: None,
                    default_schedule_to_close_timeout_secs: None,
                    default_start_to_close_timeout_secs: Some(60),
                    default_heartbeat_timeout_secs: None,
                })
                .await,
            Err(SwfError::AlreadyExists(_))
        ));
        match client.terminate_workflow_execution("w", None, None).await {
            Err(SwfError::Service { code, .. }) => assert_eq!(code, "OperationNotPermittedFault"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            client.count_pending_decision_tasks("tl").await,
            Err(SwfError::LimitExceeded(_))
        ));
    });
    // None of these is retried.
    assert_eq!(script.targets.lock().unwrap().len(), 5);
    assert_eq!(
        counter_of(
            &metrics,
            m::API_ERRORS.name,
            &[
                ("operation", "RecordActivityTaskHeartbeat"),
                ("error_type", "unknown_resource")
            ]
        ),
        1
    );
    assert_eq!(
        counter_of(
            &metrics,
            m::API_CALLS.name,
            &[
                ("operation", "RespondActivityTaskCompleted"),
                ("outcome", "error")
            ]
        ),
        1
    );
}

#[test]
fn polls_get_the_long_timeout_and_other_calls_the_short_one() {
    let slow = Duration::from_millis(1500);
    let script = Arc::new(Script::default());
    script.replies.lock().unwrap().extend([
        // An empty poll held past the 700 ms call timeout but inside the 5 s poll timeout.
        Reply {
            delay: slow,
            status: 200,
            body: r#"{"taskToken": "", "startedEventId": 0}"#.into(),
        },
        Reply {
            delay: slow,
            status: 200,
            body: r#"{"taskToken": "tok-1", "activityId": "a1", "startedEventId": 5,
                "workflowExecution": {"workflowId": "w", "runId": "r"},
                "activityType": {"name": "Echo", "version": "1"}, "input": "{}"}"#
                .into(),
        },
        // An ordinary call as slow as that times out (and is retried up to max_attempts).
        Reply {
            delay: slow,
            status: 200,
            body: r#"{"count": 1, "truncated": false}"#.into(),
        },
        Reply {
            delay: slow,
            status: 200,
            body: r#"{"count": 1, "truncated": false}"#.into(),
        },
        Reply {
            delay: slow,
            status: 200,
            body: r#"{"count": 1, "truncated": false}"#.into(),
        },
    ]);
    let s = script.clone();
    with_metrics(async move {
        let client = AwsSwfClient::connect(&options(serve(s).await))
            .await
            .unwrap();
        assert!(client
            .poll_for_activity_task("tl", "me")
            .await
            .unwrap()
            .is_none());
        let task = client
            .poll_for_activity_task("tl", "me")
            .await
            .unwrap()
            .expect("a task");
        assert_eq!(task.task_token, "tok-1");
        assert_eq!(task.execution.workflow_id, "w");
        assert_eq!(task.activity_type.name, "Echo");
        assert_eq!(task.started_event_id, 5);
        let err = client
            .count_pending_activity_tasks("tl")
            .await
            .expect_err("times out");
        assert!(matches!(err, SwfError::Transport(_)), "{err:?}");
    });
}

/// Each SWF call is a span of its own, named after the operation and carrying `operation`, a child
/// of the task span it runs in (so in that execution's trace), once the `swf_runtime::swf` target
/// is at `debug`; at the default `info` the task span is exported alone (the call spans are for
/// latency debugging: at about 20 per execution they would triple the spans exported).
#[test]
fn each_swf_call_is_a_span_under_its_task_span_when_enabled() {
    use swf_runtime::telemetry::otlp::{set_execution_parent, TracerHandle};
    use swf_runtime::telemetry::{subscriber, JsonLogLayer};
    use tracing::instrument::WithSubscriber as _;
    use tracing::Instrument as _;

    for (directive, call_spans) in [("info,swf_runtime::swf=debug", true), ("info", false)] {
        let script = Arc::new(Script::default());
        script.replies.lock().unwrap().extend([
            ok(r#"{"count": 2, "truncated": false}"#),
            fault("UnknownResourceFault", "Unknown task token"),
        ]);
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let tracer = TracerHandle::with_exporter(exporter.clone(), "t");
        let dispatch = tracing::Dispatch::new(subscriber(
            tracing_subscriber::EnvFilter::new(directive),
            Some(tracer.tracer()),
            JsonLogLayer::new("t", "h", Vec::new()),
        ));
        let s = script.clone();
        with_metrics(
            async move {
                let client = AwsSwfClient::connect(&options(serve(s).await))
                    .await
                    .unwrap();
                let task = tracing::info_span!("activity_task", run_id = "run-calls");
                assert!(set_execution_parent(&task, "run-calls"));
                async {
                    assert_eq!(client.count_pending_activity_tasks("tl").await.unwrap(), 2);
                    client
                        .record_activity_task_heartbeat("token-1", None)
                        .await
                        .unwrap_err();
                }
                .instrument(task)
                .await;
            }
            .with_subscriber(dispatch),
        );
        assert!(tracer.force_flush());
        let spans = exporter.get_finished_spans().unwrap();
        tracer.shutdown();

        let task = spans
            .iter()
            .find(|s| s.name == "activity_task")
            .unwrap_or_else(|| panic!("{directive}: no task span in {spans:#?}"));
        let root = swf_runtime::telemetry::execution_span_context("run-calls");
        assert_eq!(task.span_context.trace_id(), root.trace_id());
        let calls: Vec<_> = spans.iter().filter(|s| s.name != "activity_task").collect();
        if !call_spans {
            assert!(calls.is_empty(), "{directive}: {calls:#?}");
            continue;
        }
        let names: Vec<&str> = calls.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            ["CountPendingActivityTasks", "RecordActivityTaskHeartbeat"],
            "{directive}"
        );
        for call in calls {
            assert_eq!(
                call.parent_span_id,
                task.span_context.span_id(),
                "{}",
                call.name
            );
            assert_eq!(
                call.span_context.trace_id(),
                root.trace_id(),
                "{}",
                call.name
            );
            assert!(
                call.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "operation" && kv.value.as_str() == call.name),
                "{call:#?}"
            );
            assert!(call.end_time >= call.start_time);
        }
    }
}
