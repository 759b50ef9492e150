//! The Prometheus endpoint: `/metrics` (text exposition) and `/healthz` on one port.
//!
//! The `metrics` recorder is process-global and can be installed once; [`prometheus_handle`]
//! installs it on first use (every histogram with the buckets of `metrics::BUCKETS_SECONDS`, every
//! metric described) and hands the same handle to later callers, so tests and a restarted server
//! share it. The recorder is installed with `install_recorder()`, not `install()`, because the
//! HTTP listener is ours: it serves `/healthz` too and refuses non-loopback addresses unless told.
//!
//! Lifecycle: [`serve_metrics`] binds, spawns the axum server and an upkeep task on the current
//! Tokio runtime; [`MetricsServer::shutdown`] stops both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use super::metrics as m;
use super::TelemetryError;

/// Whether the runtime is polling, for `/healthz`. Cheap to clone; pollers share one.
#[derive(Clone, Debug)]
pub struct HealthState {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    origin: Instant,
    polling: AtomicBool,
    /// Milliseconds since `origin` of the last successful poll (empty polls count).
    last_poll_ms: AtomicU64,
    max_silence: Duration,
}

impl HealthState {
    /// Healthy while polling and a poll answered within `max_silence` (keep it above the 60 s
    /// long-poll timeout).
    pub fn new(max_silence: Duration) -> Self {
        HealthState {
            inner: Arc::new(HealthInner {
                origin: Instant::now(),
                polling: AtomicBool::new(false),
                last_poll_ms: AtomicU64::new(0),
                max_silence,
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.origin.elapsed().as_millis() as u64
    }

    /// Pollers started (true) or stopped / draining (false).
    pub fn set_polling(&self, polling: bool) {
        if polling {
            self.polled();
        }
        self.inner.polling.store(polling, Ordering::Relaxed);
    }

    /// A poll came back from SWF, with a task or empty.
    pub fn polled(&self) {
        self.inner
            .last_poll_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn is_healthy(&self) -> bool {
        let last = self.inner.last_poll_ms.load(Ordering::Relaxed);
        self.inner.polling.load(Ordering::Relaxed)
            && self.now_ms().saturating_sub(last) <= self.inner.max_silence.as_millis() as u64
    }
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState::new(Duration::from_secs(120))
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// The process's Prometheus recorder, installed on first call.
pub fn prometheus_handle() -> Result<PrometheusHandle, TelemetryError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(m::BUCKETS_SECONDS)
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(Switchable(recorder))
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    m::global_recorder_installed();
    m::describe_all();
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// The Prometheus recorder, handing out no-op handles while telemetry is off
/// ([`super::set_enabled`]); descriptions always go through. The runtime's own updates check the
/// switch before their kept handles ([`m::increment`] and friends); this covers every other caller
/// of the `metrics` macros.
struct Switchable<R>(R);

impl<R: metrics::Recorder> metrics::Recorder for Switchable<R> {
    fn describe_counter(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.0.describe_counter(key, unit, description)
    }

    fn describe_gauge(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.0.describe_gauge(key, unit, description)
    }

    fn describe_histogram(
        &self,
        key: metrics::KeyName,
        unit: Option<metrics::Unit>,
        description: metrics::SharedString,
    ) {
        self.0.describe_histogram(key, unit, description)
    }

    fn register_counter(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Counter {
        if super::enabled() {
            self.0.register_counter(key, metadata)
        } else {
            metrics::Counter::noop()
        }
    }

    fn register_gauge(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Gauge {
        if super::enabled() {
            self.0.register_gauge(key, metadata)
        } else {
            metrics::Gauge::noop()
        }
    }

    fn register_histogram(
        &self,
        key: &metrics::Key,
        metadata: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if super::enabled() {
            self.0.register_histogram(key, metadata)
        } else {
            metrics::Histogram::noop()
        }
    }
}

/// The running `/metrics` + `/healthz` server.
pub struct MetricsServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

#[derive(Clone)]
struct AppState {
    handle: PrometheusHandle,
    health: HealthState,
}

/// Serves `/metrics` and `/healthz` on `addr`; a non-loopback `addr` is refused unless
/// `allow_non_loopback` (metrics reveal task lists and volumes to whoever can reach the port).
pub async fn serve_metrics(
    addr: SocketAddr,
    health: HealthState,
    allow_non_loopback: bool,
) -> Result<MetricsServer, TelemetryError> {
    if !addr.ip().is_loopback() && !allow_non_loopback {
        return Err(TelemetryError::Bind {
            addr,
            reason: "not a loopback address; set metrics_allow_non_loopback to expose metrics"
                .into(),
        });
    }
    let handle = prometheus_handle()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| TelemetryError::Bind {
            addr,
            reason: e.to_string(),
        })?;
    let bound = listener.local_addr().map_err(|e| TelemetryError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(AppState {
            handle: handle.clone(),
            health,
        });
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        let upkeep_stop = stop.clone();
        let upkeep = async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = upkeep_stop.cancelled() => break,
                    _ = tick.tick() => handle.run_upkeep(),
                }
            }
        };
        let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        let (served, ()) = tokio::join!(server, upkeep);
        if let Err(err) = served {
            tracing::error!(error = %err, "Metrics server failed.");
        }
    });
    Ok(MetricsServer {
        addr: bound,
        cancel,
        task,
    })
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.handle.render(),
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not polling\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_polling_and_silence() {
        let health = HealthState::new(Duration::from_secs(60));
        assert!(!health.is_healthy(), "not polling yet");
        health.set_polling(true);
        assert!(health.is_healthy());
        health.set_polling(false);
        assert!(!health.is_healthy());

        // A state whose last poll is 100 s old: unhealthy until the next poll answers.
        let silent = HealthState {
            inner: Arc::new(HealthInner {
                origin: Instant::now()
                    .checked_sub(Duration::from_secs(100))
                    .expect("the clock is past 100 s of uptime"),
                polling: AtomicBool::new(true),
                last_poll_ms: AtomicU64::new(0),
                max_silence: Duration::from_secs(60),
            }),
        };
        assert!(!silent.is_healthy());
        silent.polled();
        assert!(silent.is_healthy());
    }
}
