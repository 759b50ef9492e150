//! Telemetry: the names every log line, span and metric uses, and the machinery that ships them.
//!
//! `fields` and `metrics` are the single source of truth for names; dashboards, the Logstash
//! template and the alert rules are tested against what these emit.
//!
//! Lifecycle: `main` calls [`init`] once, inside the Tokio runtime (the gRPC exporter needs it),
//! before anything logs; it installs one global `tracing` subscriber made of
//! - a level filter (`RUST_LOG` wins over `log_level`; see `LevelGate`), closed while telemetry is
//!   switched off ([`set_enabled`]),
//! - the OpenTelemetry layer when OTLP is configured ([`otlp`]),
//! - the JSON log layer ([`json`]) writing to stdout, a rotating file ([`file`]) and Logstash
//!   ([`logstash`]).
//!
//! The returned [`TelemetryGuard`] owns the background writers; dropping it (or better,
//! `shutdown().await`) flushes the local log files, spools what Logstash has not taken yet, and
//! exports the spans still queued. Metrics and `/healthz` are served separately by
//! [`serve_metrics`], because tests and benchmarks want them without a global subscriber.

pub mod events;
pub mod fields;
pub mod file;
pub mod json;
pub mod line_queue;
pub mod logstash;
pub mod metrics;
pub mod otlp;
pub mod otlp_encode;
pub mod otlp_http;
pub mod search;
pub mod server;
pub mod spool;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::EnvFilter;

pub use json::{JsonLogLayer, LineSink};
pub use otlp::{
    execution_context, execution_span_context, export_execution_root_span, set_execution_parent,
};
pub use search::{parse_since, render_timeline, search_logs, SearchError};
pub use server::{serve_metrics, HealthState, MetricsServer};

/// Wire protocol of the OTLP trace exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318, path `/v1/traces`).
    Http,
}

/// Everything about logs, traces and metrics; the `[telemetry]` table of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Off installs nothing at all (for benchmarking the runtime without telemetry).
    pub enabled: bool,
    /// `service.name` on every log line and the OTLP resource.
    pub service_name: String,
    /// An env-filter directive (`info`, `swf_runtime=debug,info`); `RUST_LOG` wins when set.
    pub log_level: String,
    /// JSON lines on stdout (for journald).
    pub log_stdout: bool,
    /// Directory of the rotating JSON log files that `swf-runtime logs` searches; none = no files.
    pub log_dir: Option<PathBuf>,
    /// A log file is rotated once it reaches this size.
    pub log_file_max_bytes: u64,
    /// Rotated files kept besides the current one; older ones are deleted.
    pub log_files_kept: usize,
    /// `host:port` of a Logstash `tcp` input with the `json_lines` codec; none = no shipping.
    pub logstash_addr: Option<String>,
    /// Where lines wait while Logstash is unreachable; default `<log_dir>/logstash-spool`, else
    /// `logstash-spool` in the working directory.
    pub logstash_spool_dir: Option<PathBuf>,
    /// Lines arriving while the spool holds this much are dropped (and counted).
    pub logstash_spool_max_bytes: u64,
    /// Lines buffered in memory in front of the shipper; beyond this they are dropped (and
    /// counted) so that logging never blocks the work.
    pub logstash_queue_lines: usize,
    /// Reconnect backoff: first delay, doubled up to `logstash_backoff_max_ms`.
    pub logstash_backoff_min_ms: u64,
    pub logstash_backoff_max_ms: u64,
    /// OTLP endpoint (`http://collector:4317` for gRPC, `http://collector:4318` for HTTP); when
    /// unset, traces are exported only if `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: OtlpProtocol,
    /// Extra headers (authentication) sent with every export; `OTEL_EXPORTER_OTLP_HEADERS` also
    /// applies.
    pub otlp_headers: BTreeMap<String, String>,
    /// An export, retries included, is abandoned (and its spans counted as dropped) after this
    /// long.
    pub otlp_timeout_ms: u64,
    /// Where `/metrics` and `/healthz` are served.
    pub metrics_addr: SocketAddr,
    /// Serving metrics beyond loopback must be asked for explicitly.
    pub metrics_allow_non_loopback: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            service_name: "swf-runtime".into(),
            log_level: "info".into(),
            log_stdout: true,
            log_dir: None,
            log_file_max_bytes: 64 * 1024 * 1024,
            log_files_kept: 10,
            logstash_addr: None,
            logstash_spool_dir: None,
            logstash_spool_max_bytes: 512 * 1024 * 1024,
            logstash_queue_lines: 65_536,
            logstash_backoff_min_ms: 100,
            logstash_backoff_max_ms: 30_000,
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Grpc,
            otlp_headers: BTreeMap::new(),
            otlp_timeout_ms: 10_000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            metrics_allow_non_loopback: false,
        }
    }
}

impl TelemetryConfig {
    /// The spool directory actually used (see `logstash_spool_dir`).
    pub fn effective_spool_dir(&self) -> PathBuf {
        match (&self.logstash_spool_dir, &self.log_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(log_dir)) => log_dir.join("logstash-spool"),
            (None, None) => PathBuf::from("logstash-spool"),
        }
    }

    /// Whether traces are exported: configured endpoint or the standard environment variables.
    pub fn otlp_enabled(&self) -> bool {
        self.otlp_endpoint.as_deref().is_some_and(|e| !e.is_empty())
            || [otlp_http::ENDPOINT_VAR, otlp_http::TRACES_ENDPOINT_VAR]
                .iter()
                .any(|var| std::env::var(var).is_ok_and(|v| !v.is_empty()))
    }
}

/// Why telemetry could not be set up; each variant says what the operator should fix.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting is wrong: fix the `[telemetry]` configuration.
    #[error("invalid telemetry configuration: {0}")]
    InvalidConfig(String),
    /// Another global subscriber exists: call `init` once per process.
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
    /// A log or spool file could not be used: check the directory exists and is writable.
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The OTLP exporter could not be built: check the endpoint and headers.
    #[error("cannot build the OTLP exporter: {0}")]
    Otlp(String),
    /// The Prometheus recorder could not be built.
    #[error("cannot install the Prometheus recorder: {0}")]
    Metrics(String),
    /// The metrics port is taken or not allowed: pick another `metrics_addr`.
    #[error("cannot serve metrics on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// Owns the background log writers and the tracer provider; flushes everything when dropped.
#[must_use = "dropping the guard stops log shipping and trace export"]
pub struct TelemetryGuard {
    local: Option<Arc<file::LocalWriter>>,
    shipper: Option<Arc<logstash::LogstashShipper>>,
    tracer: Option<otlp::TracerHandle>,
}

impl TelemetryGuard {
    /// A guard that owns nothing (telemetry disabled).
    pub fn disabled() -> Self {
        TelemetryGuard {
            local: None,
            shipper: None,
            tracer: None,
        }
    }

    /// Waits (at most `timeout`) until every line logged so far is in the local log file and on
    /// stdout; false on timeout. Logstash and OTLP keep their own pace (see `shutdown`).
    pub fn flush_local(&self, timeout: Duration) -> bool {
        self.local.as_ref().is_none_or(|l| l.flush(timeout))
    }

    /// The Logstash shipper's counters, when shipping is configured.
    pub fn logstash_stats(&self) -> Option<logstash::StatsSnapshot> {
        self.shipper.as_ref().map(|s| s.stats())
    }

    /// Flushes and stops everything without blocking the async runtime's worker threads.
    pub async fn shutdown(mut self) {
        let local = self.local.take();
        let shipper = self.shipper.take();
        let tracer = self.tracer.take();
        // Exporting the last spans and joining writer threads block; the gRPC exporter's own
        // tasks must keep running on the runtime meanwhile, hence a blocking thread.
        let joined = tokio::task::spawn_blocking(move || finish(local, shipper, tracer)).await;
        if let Err(err) = joined {
            eprintln!("telemetry shutdown panicked: {err}");
        }
    }
}

fn finish(
    local: Option<Arc<file::LocalWriter>>,
    shipper: Option<Arc<logstash::LogstashShipper>>,
    tracer: Option<otlp::TracerHandle>,
) {
    if let Some(tracer) = tracer {
        tracer.shutdown();
    }
    if let Some(shipper) = shipper {
        shipper.shutdown(Duration::from_secs(5));
    }
    if let Some(local) = local {
        local.shutdown();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let (local, shipper, tracer) = (self.local.take(), self.shipper.take(), self.tracer.take());
        if local.is_none() && shipper.is_none() && tracer.is_none() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside the runtime a blocking flush could starve the exporter it waits for.
            std::thread::spawn(move || finish(local, shipper, tracer))
                .join()
                .ok();
        } else {
            finish(local, shipper, tracer);
        }
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether telemetry is on right now (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Set by `init` when the configuration disables telemetry: no recorder is ever installed, so the
/// runtime's metric updates return at once instead of building a key for the no-op recorder on
/// every update. Separate from [`enabled`], which the level filter also reads.
static METRICS_DISCARDED: AtomicBool = AtomicBool::new(false);

pub(crate) fn metrics_discarded() -> bool {
    METRICS_DISCARDED.load(Ordering::Relaxed)
}

/// Whether telemetry is on: false only between `set_enabled(false)` and `set_enabled(true)`.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns every log line, span and metric off (or back on) in a running process: the level filter
/// closes (every callsite is disabled again, as with no subscriber at all), the runtime's kept
/// metric handles and the metrics recorder give no-op handles, and no execution root span is
/// exported. `swf-runtime bench --telemetry compare` uses it to run the same workload with and
/// without telemetry in one run.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    // Every callsite asks the level filter ([`LevelGate`]) again, and the level hint follows.
    tracing::callsite::rebuild_interest_cache();
}

/// Installs the global subscriber described by `cfg` and starts the background writers.
///
/// Must run inside a Tokio runtime when OTLP over gRPC is configured.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    if !cfg.enabled {
        METRICS_DISCARDED.store(true, Ordering::Relaxed);
        return Ok(TelemetryGuard::disabled());
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(&directive)
            .map_err(|e| TelemetryError::InvalidConfig(format!("RUST_LOG={directive}: {e}")))?,
        _ => EnvFilter::try_new(&cfg.log_level).map_err(|e| {
            TelemetryError::InvalidConfig(format!("log_level {:?}: {e}", cfg.log_level))
        })?,
    };

    let mut sinks: Vec<Arc<dyn LineSink>> = Vec::new();
    let local = file::LocalWriter::start(
        cfg.log_stdout,
        cfg.log_dir.as_deref(),
        cfg.log_file_max_bytes,
        cfg.log_files_kept,
    )?;
    let local = local.map(Arc::new);
    if let Some(local) = &local {
        sinks.push(local.clone());
    }
    let shipper = match &cfg.logstash_addr {
        Some(addr) => {
            let shipper = Arc::new(logstash::LogstashShipper::start(
                logstash::ShipperConfig::from_telemetry(addr, cfg),
            )?);
            sinks.push(shipper.clone());
            Some(shipper)
        }
        None => None,
    };

    let tracer = if cfg.otlp_enabled() {
        Some(otlp::TracerHandle::from_config(cfg)?)
    } else {
        None
    };
    let json = JsonLogLayer::new(&cfg.service_name, &host_name(), sinks);
    let subscriber = subscriber(filter, tracer.as_ref().map(|t| t.tracer()), json);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    if let Some(t) = &tracer {
        otlp::set_global_tracer(t);
    }
    Ok(TelemetryGuard {
        local,
        shipper,
        tracer,
    })
}

/// The OpenTelemetry layer as this runtime uses it: spans, and log events only at warning and above.
/// Every line is in the logs already, and copying each one into its span as an OpenTelemetry event
/// was most of that layer's cost.
///
/// A wrapper rather than a per-layer filter (`.with_filter`): with any per-layer filter installed,
/// `tracing-subscriber` looks the span up in the registry on every enter, exit, record and close
/// to ask whether that layer's filter enabled it, and keeps per-filter state in a thread-local on
/// every event: about 30,000 instructions per bench execution (58 enters and exits each), for an
/// answer that is always "yes" for spans here. The level test in `on_event` is one comparison.
///
/// Enter and exit are not passed on. With busy/idle tracking and context activation off (see
/// [`subscriber`]), the layer's only work there is stamping the span's end time at each exit (a
/// registry lookup, a lock and a clock read per poll of an instrumented future); without it the
/// span ends when it closes, which for our task and call spans is when their future completes.
struct TraceExport<L>(L);

impl<S, L> Layer<S> for TraceExport<L>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber)
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber)
    }
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.0.register_callsite(meta)
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(meta, ctx)
    }
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx)
    }
    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx)
    }
    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(id, follows, ctx)
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            self.0.on_event(event, ctx)
        }
    }
    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx)
    }
    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx)
    }
    #[allow(unsafe_code)]
    // SAFETY: a pointer to `self` for our own type id, otherwise exactly what the wrapped layer
    // answers (`OpenTelemetrySpanExt::set_parent` finds the layer's `WithContext` this way).
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            unsafe { self.0.downcast_raw(id) }
        }
    }
}

/// The level filter, closed while telemetry is off ([`set_enabled`]): every callsite is then
/// "never" and the level hint `OFF`, so a disabled macro costs what it costs with no subscriber.
///
/// Why not `EnvFilter` (in a `reload` layer, for the switch) on the hot path: `EnvFilter` takes a
/// read lock on its span table on every span enter, exit, creation and close (for directives that
/// match spans by name or field), and `reload` another one on every callback; with every poll of
/// an instrumented future entering and leaving its span, two cores kept passing those locks'
/// cache lines back and forth. A directive of targets and levels only (`info`,
/// `swf_runtime=debug,warn`), which is every directive this product documents, becomes a
/// [`Targets`](tracing_subscriber::filter::Targets) filter: the same matching (the most specific
/// target wins), decided once per callsite, no per-span state. A directive with span or field
/// filters (`[...]`) keeps `EnvFilter`.
struct LevelGate(Gate);

// One per subscriber: the size of either variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Gate {
    Targets(tracing_subscriber::filter::Targets),
    Env(EnvFilter),
}

impl LevelGate {
    fn new(filter: EnvFilter) -> Self {
        let directive = filter.to_string();
        if !directive.contains('[') {
            if let Ok(targets) = directive.parse() {
                return LevelGate(Gate::Targets(targets));
            }
        }
        LevelGate(Gate::Env(filter))
    }
}

/// Calls the same `Layer` method on whichever filter the gate holds.
macro_rules! gate {
    ($self:ident, $f:ident => $call:expr) => {
        match &$self.0 {
            Gate::Targets($f) => $call,
            Gate::Env($f) => $call,
        }
    };
}

impl<S> Layer<S> for LevelGate
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if !enabled() {
            return tracing::subscriber::Interest::never();
        }
        gate!(self, f => Layer::<S>::register_callsite(f, metadata))
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        enabled() && gate!(self, f => Layer::<S>::enabled(f, metadata, ctx))
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        if !enabled() {
            return Some(tracing::level_filters::LevelFilter::OFF);
        }
        gate!(self, f => Layer::<S>::max_level_hint(f))
    }
    // Only `EnvFilter` keeps per-span state; `Targets` ignores these.
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Gate::Env(f) = &self.0 {
            Layer::<S>::on_new_span(f, attrs, id, ctx)
        }
    }
    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Gate::Env(f) = &self.0 {
            Layer::<S>::on_record(f, id, values, ctx)
        }
    }
    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if let Gate::Env(f) = &self.0 {
            Layer::<S>::on_enter(f, id, ctx)
        }
    }
    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if let Gate::Env(f) = &self.0 {
            Layer::<S>::on_exit(f, id, ctx)
        }
    }
    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if let Gate::Env(f) = &self.0 {
            Layer::<S>::on_close(f, id, ctx)
        }
    }
}

/// The subscriber `init` installs: the OpenTelemetry layer (when traces are exported), the JSON log
/// layer, and the level filter. Public so that tests can run several "processes" in one, each with
/// the production stack as its own dispatcher.
///
/// The level filter is the outermost layer on purpose. Under a per-layer filter (the one on the
/// OpenTelemetry layer), `tracing-subscriber` turns a callsite that an inner global filter
/// disables into "sometimes" as soon as an outer layer would take it, so every disabled
/// `debug!`/`trace!` callsite of the AWS SDK's hot path was evaluated again on each hit (about 1%
/// of the bench's CPU). Outermost, the level filter's "never" is final and its level hint lets the
/// macros skip disabled levels before reaching the subscriber.
pub fn subscriber(
    filter: EnvFilter,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
    json: JsonLogLayer,
) -> impl tracing::Subscriber + Send + Sync {
    let filter = LevelGate::new(filter);
    // No busy/idle tracking and no context activation on every poll of an instrumented future:
    // nothing reads them (log lines take their ids from the span itself).
    let otel_layer = tracer
        .map(|tracer| {
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false)
        })
        .map(TraceExport);
    tracing_subscriber::registry()
        .with(otel_layer)
        .with(json)
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_from_toml_and_refuses_unknown_keys() {
        let cfg: TelemetryConfig = toml::from_str(
            r#"
            service_name = "worker-a"
            log_dir = "/var/log/swf-runtime"
            logstash_addr = "logstash:5000"
            otlp_endpoint = "http://collector:4318"
            otlp_protocol = "http"
            otlp_headers = { authorization = "Bearer x" }
            metrics_addr = "127.0.0.1:9500"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.otlp_protocol, OtlpProtocol::Http);
        assert_eq!(cfg.metrics_addr.port(), 9500);
        assert_eq!(
            cfg.effective_spool_dir(),
            PathBuf::from("/var/log/swf-runtime/logstash-spool")
        );
        assert!(cfg.log_stdout, "unset keys keep their defaults");
        let err = toml::from_str::<TelemetryConfig>("log_levl = \"debug\"").unwrap_err();
        assert!(err.to_string().contains("log_levl"), "{err}");
    }

    #[test]
    fn traces_take_spans_and_warnings_but_not_routine_lines() {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let tracer = otlp::TracerHandle::with_exporter(exporter.clone(), "t");
        let sub = subscriber(
            EnvFilter::new("info"),
            Some(tracer.tracer()),
            JsonLogLayer::new("t", "h", Vec::new()),
        );
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("activity", media_uuid = "m-1");
            // The parent link goes through the layer's `WithContext`, found by downcasting.
            assert!(otlp::set_execution_parent(&span, "run-1"));
            let _entered = span.enter();
            tracing::info!("routine line");
            tracing::warn!("trouble");
        });
        assert!(tracer.force_flush());
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1, "{spans:?}");
        let span = &spans[0];
        assert_eq!(span.name, "activity");
        let root = otlp::execution_span_context("run-1");
        assert_eq!(span.span_context.trace_id(), root.trace_id());
        assert_eq!(span.parent_span_id, root.span_id());
        let events: Vec<String> = span.events.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(events, ["trouble"]);
        assert!(span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "media_uuid" && kv.value.as_str() == "m-1"));
        assert!(span.end_time >= span.start_time);
        tracer.shutdown();
    }

    #[test]
    fn disabled_levels_are_never_evaluated_with_traces_on() {
        use tracing::Subscriber as _;
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let tracer = otlp::TracerHandle::with_exporter(exporter, "t");
        let sub = subscriber(
            EnvFilter::new("info"),
            Some(tracer.tracer()),
            JsonLogLayer::new("t", "h", Vec::new()),
        );
        // A level hint lets `debug!` skip the subscriber altogether ...
        assert_eq!(
            sub.max_level_hint(),
            Some(tracing::level_filters::LevelFilter::INFO)
        );
        // ... and a disabled callsite is "never", cached, not "sometimes", evaluated on every hit.
        struct Cs;
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                &DEBUG_EVENT
            }
        }
        static CS: Cs = Cs;
        static DEBUG_EVENT: tracing::Metadata<'static> = tracing::Metadata::new(
            "sdk_debug",
            "aws_smithy_runtime",
            tracing::Level::DEBUG,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CS)),
            tracing::metadata::Kind::EVENT,
        );
        assert!(sub.register_callsite(&DEBUG_EVENT).is_never());
        tracer.shutdown();
    }

    use rusty_fork::rusty_fork_test;

    // In a child process: `init` with telemetry disabled discards metric updates for the rest of
    // the process, which would silence the metric assertions of tests sharing it (plain `cargo
    // test` runs a binary's tests as threads of one process).
    rusty_fork_test! {
        #[test]
        fn disabled_telemetry_installs_nothing() {
            let guard = init(&TelemetryConfig {
                enabled: false,
                ..TelemetryConfig::default()
            })
            .unwrap();
            assert!(guard.flush_local(Duration::from_millis(1)));
            assert!(guard.logstash_stats().is_none());
            // The runtime's metric updates go nowhere: not even to a recorder set up later.
            let recorder = metrics_util::debugging::DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            ::metrics::with_local_recorder(&recorder, || {
                metrics::increment(&metrics::POLLS, &["disabled", "task"], 1);
            });
            assert!(snapshotter.snapshot().into_vec().is_empty());
        }
    }

    /// The lock-free filter a plain directive becomes must enable exactly what `EnvFilter` does.
    #[test]
    fn a_plain_directive_filters_as_env_filter_does_without_its_locks() {
        fn probes() -> Vec<bool> {
            vec![
                tracing::enabled!(target: "swf_runtime::worker", tracing::Level::INFO),
                tracing::enabled!(target: "swf_runtime::worker", tracing::Level::DEBUG),
                tracing::enabled!(target: "swf_runtime", tracing::Level::TRACE),
                tracing::enabled!(target: "swf_local::server", tracing::Level::DEBUG),
                tracing::enabled!(target: "swf_local::server", tracing::Level::WARN),
                tracing::enabled!(target: "aws_smithy_runtime::client", tracing::Level::DEBUG),
                tracing::enabled!(target: "aws_smithy_runtime::client", tracing::Level::ERROR),
                tracing::enabled!(target: "hyper", tracing::Level::INFO),
            ]
        }
        for directive in [
            "info",
            "warn",
            "off",
            "trace",
            "swf_runtime=debug,warn",
            "swf_runtime::worker=debug",
            "debug,aws_smithy_runtime=warn,hyper=off",
            "swf_local=trace,swf_runtime=error",
        ] {
            let gate = LevelGate::new(EnvFilter::new(directive));
            assert!(matches!(gate.0, Gate::Targets(_)), "{directive}");
            let by_gate = tracing::subscriber::with_default(
                tracing_subscriber::registry().with(gate),
                probes,
            );
            let by_env = tracing::subscriber::with_default(
                tracing_subscriber::registry().with(EnvFilter::new(directive)),
                probes,
            );
            assert_eq!(by_gate, by_env, "{directive}");
        }
        let spans = LevelGate::new(EnvFilter::new("info,swf_runtime[activity_task]=debug"));
        assert!(
            matches!(spans.0, Gate::Env(_)),
            "span directives keep EnvFilter"
        );
    }

    #[test]
    fn a_bad_log_level_is_a_config_error() {
        if std::env::var("RUST_LOG").is_ok() {
            return; // RUST_LOG wins over log_level by design
        }
        let err = init(&TelemetryConfig {
            log_level: "info,=[".into(),
            ..TelemetryConfig::default()
        })
        .err()
        .expect("refused");
        assert!(matches!(err, TelemetryError::InvalidConfig(_)), "{err}");
    }
}
