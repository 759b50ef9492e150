//! OTLP over HTTP/protobuf: our span exporter (gRPC stays on `opentelemetry-otlp`).
//!
//! It exists for the encoding (see [`super::otlp_encode`]); the transport keeps the crate's
//! behaviour: endpoint, headers and timeout from the config or the standard
//! `OTEL_EXPORTER_OTLP_*` variables, a blocking `reqwest` client (the SDK's batch processor exports
//! on its own thread, outside any async runtime), up to three retries with backoff on network
//! errors and 429/502/503/504 within the timeout, `Retry-After` honoured, and spans the collector
//! reports as rejected (partial success) logged and counted as dropped.
//!
//! Lifecycle: [`HttpExporter::from_config`] resolves the settings and builds the client once; the
//! batch processor calls `export` per batch on its thread; `shutdown` drops the client, after
//! which exports fail.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::events::{SpansRejected, TelemetryEvent};
use super::otlp_encode::{encode_request, encode_resource, EncodedResource};
use super::{TelemetryConfig, TelemetryError};

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// The standard variables naming the collector; either one set turns traces on
/// ([`super::TelemetryConfig::otlp_enabled`]).
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_PATH: &str = "/v1/traces";

/// Where and how spans are posted, resolved once.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub endpoint: reqwest::Url,
    pub headers: HeaderMap,
    pub timeout: Duration,
}

fn with_traces_path(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_string()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

/// `k1=v1,k2=v2` with percent-encoded values, as `OTEL_EXPORTER_OTLP_HEADERS` is specified.
fn parse_header_list(var: &str, list: &str) -> Result<Vec<(String, String)>, TelemetryError> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (k, v) = entry.split_once('=').ok_or_else(|| {
                TelemetryError::InvalidConfig(format!("{var}: entry {entry:?} is not key=value"))
            })?;
            let value = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .map_err(|e| {
                    TelemetryError::InvalidConfig(format!("{var}: value of {:?}: {e}", k.trim()))
                })?;
            Ok((k.trim().to_string(), value.into_owned()))
        })
        .collect()
}

fn insert_header(
    headers: &mut HeaderMap,
    origin: &str,
    k: &str,
    v: &str,
) -> Result<(), TelemetryError> {
    let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
        TelemetryError::InvalidConfig(format!("{origin}: {k:?} is not a valid HTTP header name"))
    })?;
    let value = HeaderValue::from_str(v).map_err(|_| {
        TelemetryError::InvalidConfig(format!(
            "{origin}: the value of header {k:?} is not a valid HTTP header value"
        ))
    })?;
    headers.insert(name, value);
    Ok(())
}

impl HttpSettings {
    /// Endpoint: the config's (with `/v1/traces` added if missing), else
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` plus
    /// `/v1/traces`, else `http://localhost:4318/v1/traces`. Headers: the config's, then those of
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (or `OTEL_EXPORTER_OTLP_HEADERS`), which win on a clash.
    /// `env` reads a variable (tests pass their own).
    pub fn resolve(
        cfg: &TelemetryConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let set = |var: &str| env(var).filter(|v| !v.trim().is_empty());
        let (endpoint, origin) =
            if let Some(e) = cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
                (with_traces_path(e), "otlp_endpoint")
            } else if let Some(e) = set(TRACES_ENDPOINT_VAR) {
                (e, TRACES_ENDPOINT_VAR)
            } else if let Some(e) = set(ENDPOINT_VAR) {
                (with_traces_path(&e), ENDPOINT_VAR)
            } else {
                (DEFAULT_ENDPOINT.to_string(), "the default endpoint")
            };
        let endpoint = reqwest::Url::parse(endpoint.trim()).map_err(|e| {
            TelemetryError::InvalidConfig(format!("{origin}: {endpoint:?} is not a URL: {e}"))
        })?;
        match endpoint.scheme() {
            "http" => {}
            // Built without TLS (as the crate's exporters are here, gRPC included); saying so at
            // start-up beats every export failing.
            "https" => {
                return Err(TelemetryError::InvalidConfig(format!(
                    "{origin}: {endpoint} needs TLS, which this build's OTLP exporters do not \
                     include; send to a local OpenTelemetry Collector over http:// \
                     (deploy/otel-collector.yaml) and let it forward over TLS"
                )))
            }
            other => {
                return Err(TelemetryError::InvalidConfig(format!(
                    "{origin}: {endpoint}: scheme {other:?} is not http"
                )))
            }
        }

        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("swf-runtime/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &cfg.otlp_headers {
            insert_header(&mut headers, "otlp_headers", k, v)?;
        }
        let env_headers = [
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]
        .into_iter()
        .find_map(|var| set(var).map(|v| (var, v)));
        if let Some((var, list)) = env_headers {
            for (k, v) in parse_header_list(var, &list)? {
                insert_header(&mut headers, var, &k, &v)?;
            }
        }
        Ok(HttpSettings {
            endpoint,
            headers,
            timeout: Duration::from_millis(cfg.otlp_timeout_ms.max(1)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Exporter
// ---------------------------------------------------------------------------------------------

/// Retries after the first attempt, and the backoff between them (doubling from 100 ms up to
/// 1.6 s, jittered): the crate's recommended policy.
const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(1600);

/// Buffers kept between exports so that encoding a batch allocates nothing once warm.
#[derive(Debug, Default)]
struct Buffers {
    scratch: Vec<Vec<u8>>,
    body_capacity: usize,
}

/// The OTLP/HTTP span exporter (see the module documentation).
#[derive(Debug)]
pub struct HttpExporter {
    settings: HttpSettings,
    /// `None` once shut down.
    client: Mutex<Option<reqwest::blocking::Client>>,
    resource: EncodedResource,
    buffers: Mutex<Buffers>,
}

/// Why one attempt failed, and whether another may succeed.
enum Attempt {
    Retry {
        after: Option<Duration>,
        error: String,
    },
    Fail(String),
}

impl HttpExporter {
    pub fn from_config(cfg: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let settings = HttpSettings::resolve(cfg, |var| std::env::var(var).ok())?;
        Self::new(settings)
    }

    pub fn new(settings: HttpSettings) -> Result<Self, TelemetryError> {
        let timeout = settings.timeout;
        // The blocking client owns a small Tokio runtime, which may be neither built nor dropped
        // on a thread already running one (start-up may be inside the runtime): build it apart.
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| TelemetryError::Otlp("building the HTTP client panicked".into()))?
        .map_err(|e| TelemetryError::Otlp(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpExporter {
            settings,
            client: Mutex::new(Some(client)),
            resource: EncodedResource::default(),
            buffers: Mutex::new(Buffers::default()),
        })
    }

    fn encode(&self, batch: &[SpanData]) -> bytes::Bytes {
        let mut buffers = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let Buffers {
            scratch,
            body_capacity,
        } = &mut *buffers;
        let mut body = Vec::with_capacity(*body_capacity);
        encode_request(&self.resource, batch, scratch, &mut body);
        *body_capacity = (*body_capacity).max(body.len());
        // Shared, so that a retry resends it without a copy.
        bytes::Bytes::from(body)
    }

    fn attempt(
        &self,
        client: &reqwest::blocking::Client,
        body: &bytes::Bytes,
    ) -> Result<Vec<u8>, Attempt> {
        let response = client
            .post(self.settings.endpoint.clone())
            .headers(self.settings.headers.clone())
            .body(body.clone())
            .send()
            .map_err(|e| Attempt::Retry {
                after: None,
                error: format!("POST {}: {e}", self.settings.endpoint),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.bytes().map(|b| b.to_vec()).unwrap_or_default());
        }
        let error = format!("POST {}: HTTP {status}", self.settings.endpoint);
        match status.as_u16() {
            429 | 503 => {
                let after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                Err(Attempt::Retry { after, error })
            }
            502 | 504 => Err(Attempt::Retry { after: None, error }),
            _ => Err(Attempt::Fail(error)),
        }
    }

    /// Posts `body`, retrying as the module documentation says; the response body on success.
    fn post(&self, body: &bytes::Bytes) -> Result<Vec<u8>, String> {
        let client = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| "the exporter is shut down".to_string())?;
        let deadline = Instant::now() + self.settings.timeout;
        let mut retries = 0;
        loop {
            match self.attempt(&client, body) {
                Ok(response) => return Ok(response),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry { after, error }) => {
                    let wait = after.unwrap_or_else(|| {
                        crate::backoff::backoff(FIRST_BACKOFF, MAX_BACKOFF, retries + 1)
                    });
                    if retries == MAX_RETRIES || Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    std::thread::sleep(wait);
                    retries += 1;
                }
            }
        }
    }
}

/// `Retry-After`: seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Spans the collector accepted the request for but rejected (OTLP partial success), if any.
fn rejected_spans(response: &[u8]) -> Option<(i64, String)> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    let partial = ExportTraceServiceResponse::decode(response)
        .ok()?
        .partial_success?;
    (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        .then_some((partial.rejected_spans, partial.error_message))
}

impl SpanExporter for HttpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let body = self.encode(&batch);
        drop(batch);
        let response = self.post(&body).map_err(OTelSdkError::InternalFailure)?;
        if let Some((spans, message)) = rejected_spans(&response) {
            let spans = spans.max(0) as u64;
            super::otlp::note_rejected(spans);
            SpansRejected {
                spans,
                message: &message,
            }
            .emit();
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        match self.client.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(client) => {
                // Dropping the client stops its runtime, which must not happen on a thread that
                // runs one (shutdown may be called from inside the runtime).
                let _ = std::thread::spawn(move || drop(client)).join();
                Ok(())
            }
            None => Err(OTelSdkError::AlreadyShutdown),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = encode_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::otlp_encode::tests::varied_batch;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn cfg(endpoint: Option<&str>) -> TelemetryConfig {
        TelemetryConfig {
            otlp_endpoint: endpoint.map(str::to_string),
            otlp_headers: [("x-tenant".to_string(), "media".to_string())].into(),
            ..TelemetryConfig::default()
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn the_endpoint_comes_from_the_config_then_the_standard_variables() {
        let resolve = |endpoint, vars: &[(&str, &str)]| {
            HttpSettings::resolve(&cfg(endpoint), env(vars))
                .unwrap()
                .endpoint
                .to_string()
        };
        let both = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:1/custom",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:2"),
        ];
        assert_eq!(
            resolve(Some("http://cfg:4318"), &both),
            "http://cfg:4318/v1/traces"
        );
        assert_eq!(
            resolve(Some("http://cfg:4318/v1/traces/"), &[]),
            "http://cfg:4318/v1/traces"
        );
        assert_eq!(resolve(None, &both), "http://traces:1/custom");
        assert_eq!(resolve(None, &both[1..]), "http://base:2/v1/traces");
        assert_eq!(resolve(None, &[]), "http://localhost:4318/v1/traces");
    }

    #[test]
    fn headers_come_from_the_config_and_the_variables_which_win() {
        let s = HttpSettings::resolve(
            &cfg(Some("http://c:4318")),
            env(&[
                ("OTEL_EXPORTER_OTLP_HEADERS", "ignored=1"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                    "x-tenant=video, authorization=Bearer%20abc,",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.headers["x-tenant"], "video");
        assert_eq!(s.headers["authorization"], "Bearer abc");
        assert!(!s.headers.contains_key("ignored"));
        assert_eq!(s.headers["content-type"], "application/x-protobuf");
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let err = |c: TelemetryConfig, vars: &[(&str, &str)]| {
            HttpSettings::resolve(&c, env(vars))
                .unwrap_err()
                .to_string()
        };
        let e = err(cfg(Some("https://c:4318")), &[]);
        assert!(e.contains("otlp_endpoint") && e.contains("TLS"), "{e}");
        let e = err(cfg(None), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")]);
        assert!(e.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
        let e = err(
            cfg(Some("http://c")),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
        );
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_HEADERS") && e.contains("novalue"),
            "{e}"
        );
        let mut bad = cfg(Some("http://c"));
        bad.otlp_headers.insert("bad header".into(), "v".into());
        let e = err(bad, &[]);
        assert!(
            e.contains("otlp_headers") && e.contains("bad header"),
            "{e}"
        );
    }

    /// Requests a test collector received: headers and body.
    type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

    /// A loopback collector answering requests in turn from `script` (status, Retry-After,
    /// body), recording what it received. Runs on its own Tokio runtime thread.
    fn collector(script: Vec<(u16, Option<&'static str>, Vec<u8>)>) -> (String, Received) {
        use axum::body::Bytes;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let (tx, rx) = std::sync::mpsc::channel();
        let record = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/traces",
                    axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                        record.lock().unwrap().push((headers, body.to_vec()));
                        let (status, retry_after, reply) = script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .expect("an answer scripted");
                        let mut response =
                            axum::response::Response::new(axum::body::Body::from(reply));
                        *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                        if let Some(after) = retry_after {
                            response
                                .headers_mut()
                                .insert("retry-after", HeaderValue::from_static(after));
                        }
                        async move { response }
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        (format!("http://{addr}"), seen)
    }

    fn exporter(endpoint: &str) -> HttpExporter {
        let mut c = cfg(Some(endpoint));
        c.otlp_timeout_ms = 10_000;
        let mut e = HttpExporter::new(HttpSettings::resolve(&c, env(&[])).unwrap()).unwrap();
        e.set_resource(&Resource::builder_empty().with_service_name("t").build());
        e
    }

    #[test]
    fn a_throttled_export_is_retried_and_then_delivered() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "one too old".into(),
            }),
        }
        .encode_to_vec();
        let (endpoint, seen) = collector(vec![
            (503, Some("0"), vec![]),
            (502, None, vec![]),
            (200, None, partial),
        ]);
        let counters = std::sync::Arc::new(crate::telemetry::otlp::SpanCounters::default());
        let e =
            crate::telemetry::otlp::CountingExporter::new(exporter(&endpoint), counters.clone());
        let (batch, _) = varied_batch();
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            futures::executor::block_on(e.export(batch.clone()))
        })
        .expect("delivered on the third try");
        // The span the collector rejected is counted as dropped, the others as exported.
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |def: &crate::telemetry::metrics::MetricDef| -> Vec<u64> {
            snapshot
                .iter()
                .filter(|(key, ..)| key.key().name() == def.name)
                .map(|(.., value)| match value {
                    metrics_util::debugging::DebugValue::Counter(c) => *c,
                    other => panic!("{} is not a counter: {other:?}", def.name),
                })
                .collect()
        };
        let n = batch.len() as u64;
        assert_eq!(counter(&crate::telemetry::metrics::SPANS_DROPPED), [1]);
        assert_eq!(counter(&crate::telemetry::metrics::SPANS_EXPORTED), [n - 1]);
        assert_eq!(
            counters.exported.load(std::sync::atomic::Ordering::Relaxed),
            n - 1
        );
        assert_eq!(
            counters.failed.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (headers, body) in seen.iter() {
            assert_eq!(headers["x-tenant"], "media");
            assert_eq!(headers["content-type"], "application/x-protobuf");
            assert_eq!(body, &seen[0].1, "every attempt sends the same body");
        }
        let sent = ExportTraceServiceRequest::decode(seen[0].1.as_slice()).unwrap();
        let spans: usize = sent.resource_spans[0]
            .scope_spans
            .iter()
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(spans, batch.len());
    }

    #[test]
    fn a_refused_export_fails_at_once_and_a_shut_down_exporter_sends_nothing() {
        let (endpoint, seen) = collector(vec![(400, None, vec![])]);
        let e = exporter(&endpoint);
        let (batch, _) = varied_batch();
        let err = futures::executor::block_on(e.export(batch.clone())).unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1, "a 400 is not retried");
        e.shutdown_with_timeout(Duration::from_secs(1)).unwrap();
        let err = futures::executor::block_on(e.export(batch)).unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn partial_success_is_read_from_the_response() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 4,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(rejected_spans(&body), Some((4, "too old".to_string())));
        assert_eq!(rejected_spans(&[]), None);
        assert_eq!(rejected_spans(&[0xff, 0xff]), None);
    }
}
