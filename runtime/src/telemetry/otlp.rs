//! OTLP traces: the tracer provider, one trace per workflow execution, and counted exports.
//!
//! Every process that touches an execution derives the same trace id and root span id from the
//! execution's run id ([`crate::envelope`]), so decision and activity spans from any host land in
//! one trace without passing context around: a task span calls [`set_execution_parent`] right
//! after it is created. The root span itself is exported once, by the decider that closes the
//! execution ([`export_execution_root_span`]), with exactly that span id, so every parent link
//! resolves.
//!
//! Export runs on the SDK's batch span processor thread and never blocks the work; spans are
//! counted by [`CountingExporter`] (exported / failed) and [`CountingProcessor`] (spans that never
//! reached the exporter because the queue was full, settled at shutdown).
//!
//! Lifecycle: [`TracerHandle::from_config`] builds the provider (inside a Tokio runtime for gRPC);
//! `init` installs its tracer in the subscriber and as the global tracer for
//! [`export_execution_root_span`]; [`TracerHandle::shutdown`] flushes and stops it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfig, BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, SdkTracer,
    SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::events::{SpanExportFailed, SpansExported, SpansLostInQueue, TelemetryEvent};
use super::fields as f;
use super::otlp_http::HttpExporter;
use super::{OtlpProtocol, TelemetryConfig, TelemetryError};
use crate::envelope::execution_ids;

/// The remote parent of every span of an execution: its root span, identified from the run id.
pub fn execution_span_context(run_id: &str) -> SpanContext {
    let (trace, root) = execution_ids(run_id);
    SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(root),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}

/// An OpenTelemetry context whose current span is the execution's root.
pub fn execution_context(run_id: &str) -> Context {
    Context::new().with_remote_span_context(execution_span_context(run_id))
}

/// Makes `span` a child of the execution's root span. Call it right after creating the span and
/// before entering it (OpenTelemetry fixes the parent when the span starts). Returns false when
/// no OpenTelemetry layer is installed or the span already started; the span then stays where
/// it is, which only costs the trace link.
pub fn set_execution_parent(span: &tracing::Span, run_id: &str) -> bool {
    // A disabled span (telemetry off, or below the level) has no parent to set.
    if run_id.is_empty() || span.is_disabled() {
        return false;
    }
    span.set_parent(execution_context(run_id)).is_ok()
}

thread_local! {
    /// Ids the next span built on this thread must take (see [`export_execution_root_span`]).
    static FORCED_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
    static FORCED_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// Random ids, except for the one span whose ids [`export_execution_root_span`] dictates: the SDK
/// offers no other way to give a span a chosen id while keeping it on the normal export path.
#[derive(Debug, Default)]
pub struct ExecutionIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for ExecutionIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        FORCED_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        FORCED_SPAN_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

thread_local! {
    /// Spans the collector rejected (OTLP partial success) in the export running on this thread:
    /// added by the HTTP exporter, taken by [`CountingExporter`] when the export returns. The
    /// SDK's export result carries no count, and an export runs to completion on the thread that
    /// called it (the batch processor's own), so this is how a rejected span is counted as dropped
    /// and not also as exported.
    static REJECTED_IN_EXPORT: Cell<u64> = const { Cell::new(0) };
}

/// Records that the collector rejected `spans` of the export running on this thread.
pub(crate) fn note_rejected(spans: u64) {
    REJECTED_IN_EXPORT.with(|c| c.set(c.get().saturating_add(spans)));
}

/// Span counts of one provider; also fed into the Prometheus counters.
#[derive(Debug, Default)]
pub struct SpanCounters {
    pub ended: AtomicU64,
    pub exported: AtomicU64,
    pub failed: AtomicU64,
}

/// Wraps the OTLP exporter to count what it delivers and what it loses.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    counters: Arc<SpanCounters>,
}

impl<E: SpanExporter> CountingExporter<E> {
    pub fn new(inner: E, counters: Arc<SpanCounters>) -> Self {
        CountingExporter { inner, counters }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        REJECTED_IN_EXPORT.with(Cell::take);
        let result = self.inner.export(batch).await;
        let rejected = REJECTED_IN_EXPORT.with(Cell::take).min(n);
        match &result {
            Ok(()) => {
                // The rejected ones were counted as dropped when the exporter reported them; they
                // are settled (not lost in the queue) but not delivered.
                self.counters
                    .exported
                    .fetch_add(n - rejected, Ordering::Relaxed);
                self.counters.failed.fetch_add(rejected, Ordering::Relaxed);
                SpansExported {
                    spans: n - rejected,
                }
                .emit();
            }
            Err(err) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                SpanExportFailed {
                    spans: n,
                    error: err,
                }
                .emit();
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Wraps the batch processor to count ended spans, so that spans the full queue refused can be
/// counted as dropped (the SDK only logs them).
#[derive(Debug)]
pub struct CountingProcessor<P> {
    inner: P,
    counters: Arc<SpanCounters>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.inner.shutdown_with_timeout(timeout);
        let c = &self.counters;
        let settled = c.exported.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed);
        let lost = c.ended.load(Ordering::Relaxed).saturating_sub(settled);
        SpansLostInQueue { spans: lost }.emit();
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Spans the batch processor holds before it drops new ones: about 1.5 s of the bench's peak rate.
const MAX_QUEUE_SPANS: usize = 8192;
/// Spans per export request (the SDK's default). 64 was tried, to keep one export's data within a
/// core's L2 cache: eight times the requests and no throughput gain over 8 runs.
const EXPORT_BATCH_SPANS: usize = 512;
/// Longest a span waits for a batch to fill.
const SCHEDULED_DELAY: Duration = Duration::from_millis(500);

/// Our batch settings, except where the standard `OTEL_BSP_*` variable is set (`is_set` tells):
/// the SDK reads those variables, but a value set in code would override them.
fn batch_config(is_set: impl Fn(&str) -> bool) -> BatchConfig {
    let mut b = BatchConfigBuilder::default();
    if !is_set("OTEL_BSP_MAX_QUEUE_SIZE") {
        b = b.with_max_queue_size(MAX_QUEUE_SPANS);
    }
    if !is_set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
        b = b.with_max_export_batch_size(EXPORT_BATCH_SPANS);
    }
    if !is_set("OTEL_BSP_SCHEDULE_DELAY") {
        b = b.with_scheduled_delay(SCHEDULED_DELAY);
    }
    b.build()
}

/// The crate's gRPC exporter, configured from `cfg` (the crate reads the standard variables).
fn grpc_exporter(
    cfg: &TelemetryConfig,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let timeout = Duration::from_millis(cfg.otlp_timeout_ms.max(1));
    let endpoint = cfg.otlp_endpoint.clone().filter(|e| !e.is_empty());
    // tonic's channel spawns onto the current runtime; without one it would panic.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::Otlp(
            "OTLP over gRPC must be set up inside a Tokio runtime".into(),
        ));
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_timeout(timeout);
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if !cfg.otlp_headers.is_empty() {
        let mut map = opentelemetry_otlp::tonic_types::metadata::MetadataMap::new();
        for (k, v) in &cfg.otlp_headers {
            let key = k.to_ascii_lowercase();
            let valid = !key.is_empty()
                && key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                })
                && !key.ends_with("-bin");
            if !valid {
                return Err(TelemetryError::InvalidConfig(format!(
                    "otlp header name {k:?} is not a valid gRPC metadata key"
                )));
            }
            let value = v
                .parse()
                .map_err(|e| TelemetryError::InvalidConfig(format!("otlp header {k}: {e}")))?;
            // The map only takes dynamic keys as `'static`; a handful of header names
            // leaked once at start-up is the price of not depending on tonic directly.
            let key: &'static str = Box::leak(key.into_boxed_str());
            map.insert(key, value);
        }
        builder = builder.with_metadata(map);
    }
    builder
        .build()
        .map_err(|e| TelemetryError::Otlp(e.to_string()))
}

/// The tracer provider and its counters.
#[derive(Clone)]
pub struct TracerHandle {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    counters: Arc<SpanCounters>,
}

impl TracerHandle {
    /// Builds the OTLP exporter (gRPC or HTTP/protobuf), endpoint and headers from `cfg`, the
    /// standard `OTEL_EXPORTER_OTLP_*` variables filling what `cfg` leaves unset.
    pub fn from_config(cfg: &TelemetryConfig) -> Result<Self, TelemetryError> {
        Ok(match cfg.otlp_protocol {
            OtlpProtocol::Grpc => Self::with_exporter(grpc_exporter(cfg)?, &cfg.service_name),
            // Our exporter: the crate's HTTP path spends most of the export's cost turning spans
            // into intermediate protobuf structs (see `otlp_http`).
            OtlpProtocol::Http => {
                Self::with_exporter(HttpExporter::from_config(cfg)?, &cfg.service_name)
            }
        })
    }

    /// A provider exporting through `exporter` with a batch processor, counted.
    pub fn with_exporter<E: SpanExporter + 'static>(exporter: E, service_name: &str) -> Self {
        let counters = Arc::new(SpanCounters::default());
        let batch = BatchSpanProcessor::builder(CountingExporter::new(exporter, counters.clone()))
            .with_batch_config(batch_config(|var| std::env::var_os(var).is_some()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(CountingProcessor {
                inner: batch,
                counters: counters.clone(),
            })
            .with_id_generator(ExecutionIdGenerator::default())
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_string())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("swf-runtime");
        TracerHandle {
            provider,
            tracer,
            counters,
        }
    }

    pub fn tracer(&self) -> SdkTracer {
        self.tracer.clone()
    }

    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    pub fn counters(&self) -> &SpanCounters {
        &self.counters
    }

    /// Exports everything ended so far; blocks, so call it off the async worker threads.
    pub fn force_flush(&self) -> bool {
        self.provider.force_flush().is_ok()
    }

    /// Exports what is queued and stops; blocks (see `force_flush`).
    pub fn shutdown(&self) {
        if let Err(err) = self.provider.shutdown_with_timeout(Duration::from_secs(10)) {
            eprintln!("OTLP tracer shutdown failed: {err}.");
        }
    }
}

static GLOBAL_TRACER: RwLock<Option<SdkTracer>> = RwLock::new(None);

pub(crate) fn set_global_tracer(handle: &TracerHandle) {
    if let Ok(mut slot) = GLOBAL_TRACER.write() {
        *slot = Some(handle.tracer());
    }
}

/// Exports the execution's root span through the tracer `init` installed; a no-op (false) when
/// traces are off. See [`export_execution_root_span_with`].
pub fn export_execution_root_span(
    run_id: &str,
    workflow_type: &str,
    workflow_id: &str,
    start: SystemTime,
    end: SystemTime,
    attrs: Vec<KeyValue>,
) -> bool {
    if !super::enabled() {
        return false;
    }
    let tracer = GLOBAL_TRACER.read().ok().and_then(|t| t.clone());
    match tracer {
        Some(tracer) => {
            export_execution_root_span_with(
                &tracer,
                run_id,
                workflow_type,
                workflow_id,
                start,
                end,
                attrs,
            );
            true
        }
        None => false,
    }
}

/// Exports the root span of an execution with the trace id and span id every other span of the
/// execution names as its parent. `tracer` must come from a [`TracerHandle`] (its id generator
/// is what lets the span take those ids).
pub fn export_execution_root_span_with(
    tracer: &SdkTracer,
    run_id: &str,
    workflow_type: &str,
    workflow_id: &str,
    start: SystemTime,
    end: SystemTime,
    mut attrs: Vec<KeyValue>,
) {
    use opentelemetry::trace::Span as _;
    attrs.push(KeyValue::new(f::RUN_ID, run_id.to_string()));
    attrs.push(KeyValue::new(f::WORKFLOW_ID, workflow_id.to_string()));
    attrs.push(KeyValue::new(f::WORKFLOW_TYPE, workflow_type.to_string()));
    let builder = tracer
        .span_builder(format!("workflow {workflow_type}"))
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attrs);
    let (trace, root) = execution_ids(run_id);
    FORCED_TRACE_ID.with(|c| c.set(Some(TraceId::from_bytes(trace))));
    FORCED_SPAN_ID.with(|c| c.set(Some(SpanId::from_bytes(root))));
    // No parent: this is the root. An empty context (not the current one) guarantees that.
    let mut span = tracer.build_with_context(builder, &Context::new());
    // If the span was not sampled the generator was not asked; never leak ids to the next span.
    FORCED_TRACE_ID.with(|c| c.set(None));
    FORCED_SPAN_ID.with(|c| c.set(None));
    span.end_with_timestamp(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    #[test]
    fn batch_settings_are_ours_unless_the_standard_variable_is_set() {
        let ours = format!("{:?}", batch_config(|_| false));
        assert!(ours.contains("max_export_batch_size: 512"), "{ours}");
        assert!(ours.contains("max_queue_size: 8192"), "{ours}");
        assert!(ours.contains("scheduled_delay: 500ms"), "{ours}");
        // A set variable leaves the value to the SDK, which reads it (unset in tests: its default).
        let theirs = format!("{:?}", batch_config(|var| var == "OTEL_BSP_MAX_QUEUE_SIZE"));
        assert!(theirs.contains("max_queue_size: 2048"), "{theirs}");
        assert!(theirs.contains("max_export_batch_size: 512"), "{theirs}");
    }

    #[test]
    fn the_root_span_takes_the_execution_ids_and_children_point_at_it() {
        let exporter = InMemorySpanExporter::default();
        let handle = TracerHandle::with_exporter(exporter.clone(), "t");
        let start = SystemTime::now();
        export_execution_root_span_with(
            &handle.tracer(),
            "run-1",
            "VideoProcessing",
            "media-1",
            start,
            start + Duration::from_secs(3),
            vec![],
        );
        {
            use opentelemetry::trace::Span as _;
            let mut child = handle
                .tracer()
                .start_with_context("activity", &execution_context("run-1"));
            child.end();
        }
        assert!(handle.force_flush());
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 2);
        let root = &spans[0];
        let expected = execution_span_context("run-1");
        assert_eq!(root.span_context.trace_id(), expected.trace_id());
        assert_eq!(root.span_context.span_id(), expected.span_id());
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_eq!(root.end_time, start + Duration::from_secs(3));
        let child = &spans[1];
        assert_eq!(child.span_context.trace_id(), expected.trace_id());
        assert_eq!(child.parent_span_id, expected.span_id());
        assert_ne!(child.span_context.span_id(), expected.span_id());
        assert_eq!(handle.counters().exported.load(Ordering::Relaxed), 2);
        handle.shutdown();
    }
}
