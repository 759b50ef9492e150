//! OTLP traces against in-test receivers: one trace per workflow execution across two "processes"
//! (two tracer providers with their own subscribers: a decider and a worker), parent links that
//! resolve to the root span the decider exports, log lines carrying the same ids as the spans,
//! and both wire protocols (gRPC and HTTP/protobuf).
//!
//! Subscribers are scoped with `with_default`, not global. Flushes run on blocking threads: the
//! gRPC exporter's tasks need the runtime's workers free while a flush waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use serde_json::Value;
use swf_runtime::envelope::{root_span_id_for_run, trace_id_for_run};
use swf_runtime::telemetry::otlp::{export_execution_root_span_with, TracerHandle};
use swf_runtime::telemetry::{
    fields as f, set_execution_parent, JsonLogLayer, LineSink, OtlpProtocol, TelemetryConfig,
};
use tracing::Dispatch;

const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Memory(Mutex<Vec<String>>);

impl LineSink for Memory {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

impl Memory {
    fn lines(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// One runtime process: its own tracer provider, subscriber and log output.
struct Process {
    tracer: TracerHandle,
    dispatch: Dispatch,
    logs: Arc<Memory>,
}

fn process(name: &str, endpoint: &str, protocol: OtlpProtocol) -> Process {
    let cfg = TelemetryConfig {
        service_name: name.into(),
        otlp_endpoint: Some(endpoint.into()),
        otlp_protocol: protocol,
        otlp_headers: [("x-tenant".to_string(), "media".to_string())].into(),
        ..TelemetryConfig::default()
    };
    let tracer = TracerHandle::from_config(&cfg).unwrap();
    let logs = Arc::new(Memory::default());
    // The stack `telemetry::init` installs, as this process's own dispatcher.
    let subscriber = swf_runtime::telemetry::subscriber(
        tracing_subscriber::EnvFilter::new("info"),
        Some(tracer.tracer()),
        JsonLogLayer::new(
            name,
            &format!("{name}-host"),
            vec![logs.clone() as Arc<dyn LineSink>],
        ),
    );
    Process {
        tracer,
        dispatch: Dispatch::new(subscriber),
        logs,
    }
}

async fn flush(p: &Process) {
    let tracer = p.tracer.clone();
    let flushed = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || tracer.force_flush()),
    )
    .await
    .expect("flush in time")
    .unwrap();
    assert!(flushed, "force_flush failed");
}

/// What the decider and the worker do for one execution; returns nothing, the receiver judges.
fn run_execution(decider: &Process, worker: &Process, run_id: &str, media: &str) {
    tracing::dispatcher::with_default(&decider.dispatch, || {
        let span = tracing::info_span!(
            "decision_task",
            workflow_id = media,
            run_id = run_id,
            workflow_type = "VideoProcessing",
        );
        assert!(set_execution_parent(&span, run_id));
        let _e = span.enter();
        tracing::info!("Decision task completed.");
    });
    tracing::dispatcher::with_default(&worker.dispatch, || {
        let span = tracing::info_span!(
            "activity_task",
            workflow_id = media,
            run_id = run_id,
            media_uuid = media,
            activity_type = "Transcode",
        );
        assert!(set_execution_parent(&span, run_id));
        let _e = span.enter();
        {
            let handler = tracing::info_span!("handler");
            let _h = handler.enter();
            tracing::info!("Handler finished.");
        }
        assert!(
            !set_execution_parent(&span, run_id),
            "a started span cannot be re-parented, and says so"
        );
    });
}

fn by_name<'a>(spans: &'a [ExportedSpan], trace: &str, name: &str) -> &'a ExportedSpan {
    spans
        .iter()
        .find(|s| s.trace_id == trace && s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in trace {trace}: {spans:#?}"))
}

/// The collector renders attribute values with `Debug`; callers look for the quoted value.
fn attr<'a>(span: &'a ExportedSpan, key: &str) -> &'a str {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("{} has no attribute {key}", span.name))
}

fn check_execution(spans: &[ExportedSpan], decider: &Process, worker: &Process, run_id: &str) {
    let trace = hex::encode(trace_id_for_run(run_id));
    let root_id = hex::encode(root_span_id_for_run(run_id));
    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace).collect();
    assert_eq!(in_trace.len(), 4, "{in_trace:#?}");

    let root = by_name(spans, &trace, "workflow VideoProcessing");
    assert_eq!(root.span_id, root_id);
    assert_eq!(root.parent_span_id, "", "the root has no parent");
    assert!(attr(root, f::RUN_ID).contains(&format!("{run_id:?}")));
    assert!(root.end_time_unix_nano > root.start_time_unix_nano);

    let decision = by_name(spans, &trace, "decision_task");
    let activity = by_name(spans, &trace, "activity_task");
    let handler = by_name(spans, &trace, "handler");
    assert_eq!(decision.parent_span_id, root_id);
    assert_eq!(activity.parent_span_id, root_id);
    assert_eq!(handler.parent_span_id, activity.span_id);

    // The log lines name the spans that were exported.
    let line = |p: &Process, message: &str| -> Value {
        p.logs
            .lines()
            .into_iter()
            .find(|l| l[f::MESSAGE] == message && l[f::RUN_ID] == run_id)
            .unwrap_or_else(|| panic!("no line {message:?} for {run_id}"))
    };
    let decided = line(decider, "Decision task completed.");
    assert_eq!(decided[f::TRACE_ID], trace.as_str());
    assert_eq!(decided[f::SPAN_ID], decision.span_id.as_str());
    let handled = line(worker, "Handler finished.");
    assert_eq!(handled[f::TRACE_ID], trace.as_str());
    assert_eq!(handled[f::SPAN_ID], handler.span_id.as_str());
    let media = handled[f::MEDIA_UUID].as_str().unwrap();
    assert!(attr(activity, f::MEDIA_UUID).contains(&format!("{media:?}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_execution_across_two_processes_over_grpc() {
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        assert!(std::env::var(var).is_err(), "run without {var}");
    }
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let endpoint = collector.endpoint();
    let decider = process("decider", &endpoint, OtlpProtocol::Grpc);
    let worker = process("worker", &endpoint, OtlpProtocol::Grpc);

    let start = SystemTime::now();
    for (run, media) in [("run-1", "media-1"), ("run-2", "media-2")] {
        run_execution(&decider, &worker, run, media);
        export_execution_root_span_with(
            &decider.tracer.tracer(),
            run,
            "VideoProcessing",
            media,
            start,
            SystemTime::now(),
            vec![opentelemetry::KeyValue::new(f::OUTCOME, "completed")],
        );
    }
    flush(&decider).await;
    flush(&worker).await;

    let spans = collector.exported_spans(8, WAIT).await;
    assert_eq!(spans.len(), 8, "{spans:#?}");
    check_execution(&spans, &decider, &worker, "run-1");
    check_execution(&spans, &decider, &worker, "run-2");

    let exported = |p: &Process| {
        p.tracer
            .counters()
            .exported
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(exported(&decider), 4, "2 decision spans + 2 roots");
    assert_eq!(exported(&worker), 4, "2 activity spans + 2 handler spans");

    for p in [decider, worker] {
        tokio::task::spawn_blocking(move || p.tracer.shutdown())
            .await
            .unwrap();
    }
}

/// A minimal OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
async fn http_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(HashMap<String, String>, Vec<ExportedSpan>)>,
) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let spans: Vec<ExportedSpan> = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|rs| rs.scope_spans)
                    .flat_map(|ss| ss.spans)
                    .map(ExportedSpan::from)
                    .collect();
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let _ = tx.send((headers, spans));
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_carries_the_same_ids_and_headers() {
    let (endpoint, mut rx) = http_receiver().await;
    let decider = process("decider", &endpoint, OtlpProtocol::Http);
    let worker = process("worker", &endpoint, OtlpProtocol::Http);
    run_execution(&decider, &worker, "run-http", "media-http");
    export_execution_root_span_with(
        &decider.tracer.tracer(),
        "run-http",
        "VideoProcessing",
        "media-http",
        SystemTime::now() - Duration::from_secs(5),
        SystemTime::now(),
        vec![],
    );
    flush(&decider).await;
    flush(&worker).await;

    let mut spans = Vec::new();
    while spans.len() < 4 {
        let (headers, batch) = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("spans arrive in time")
            .unwrap();
        assert_eq!(headers.get("x-tenant").map(String::as_str), Some("media"));
        spans.extend(batch);
    }
    check_execution(&spans, &decider, &worker, "run-http");
    for p in [decider, worker] {
        tokio::task::spawn_blocking(move || p.tracer.shutdown())
            .await
            .unwrap();
    }
}
