//! Loopback stand-ins for Logstash and an OTLP/HTTP collector, for `bench --local-sinks`: they
//! read everything sent to them, count it and throw it away, so a telemetry benchmark ships its
//! log lines and spans over real sockets with neither Logstash nor a collector installed.
//!
//! Why in the binary rather than a script beside the bench: one command then reproduces the
//! README's telemetry figure, and the counts show the telemetry really was shipped (a bench whose
//! shipper could not connect would look cheap). What they cost is part of the "on" slices: on a
//! two-core machine any receiver competes with the runtime, and a Python receiver used before
//! cost about ten times the CPU of these (0.1 s against 0.01 s per 8,000-execution run).
//!
//! Lifecycle: [`LocalSinks::start`] binds both on 127.0.0.1 (ports chosen by the OS) and spawns
//! them on the current Tokio runtime; [`LocalSinks::stop`], called after telemetry has been shut
//! down (so everything is flushed and the shipper's connection is closed), waits for them to read
//! to the end and returns the counts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the stand-ins received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkFigures {
    pub logstash_lines: u64,
    pub logstash_bytes: u64,
    pub otlp_requests: u64,
    pub otlp_bytes: u64,
}

#[derive(Default)]
struct Counts {
    logstash_lines: AtomicU64,
    logstash_bytes: AtomicU64,
    otlp_requests: AtomicU64,
    otlp_bytes: AtomicU64,
}

impl Counts {
    fn figures(&self) -> SinkFigures {
        SinkFigures {
            logstash_lines: self.logstash_lines.load(Ordering::Relaxed),
            logstash_bytes: self.logstash_bytes.load(Ordering::Relaxed),
            otlp_requests: self.otlp_requests.load(Ordering::Relaxed),
            otlp_bytes: self.otlp_bytes.load(Ordering::Relaxed),
        }
    }
}

pub struct LocalSinks {
    /// `host:port` for `logstash_addr`.
    pub logstash_addr: SocketAddr,
    /// The base URL for `otlp_endpoint` (the exporter appends `/v1/traces`).
    pub otlp_endpoint: String,
    counts: Arc<Counts>,
    /// Stops accepting connections; open ones are read to their end.
    stop_accepting: CancellationToken,
    /// Ends whatever is still open once the grace period is over.
    stop_all: CancellationToken,
    tasks: JoinSet<()>,
}

/// How long [`LocalSinks::stop`] waits for the senders' connections to end.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl LocalSinks {
    pub async fn start() -> std::io::Result<LocalSinks> {
        let counts = Arc::new(Counts::default());
        let stop_accepting = CancellationToken::new();
        let stop_all = CancellationToken::new();
        let mut tasks = JoinSet::new();

        let logstash = TcpListener::bind(("127.0.0.1", 0)).await?;
        let logstash_addr = logstash.local_addr()?;
        tasks.spawn(accept_lines(
            logstash,
            counts.clone(),
            stop_accepting.clone(),
            stop_all.clone(),
        ));

        let otlp = TcpListener::bind(("127.0.0.1", 0)).await?;
        let otlp_endpoint = format!("http://{}", otlp.local_addr()?);
        let app = Router::new()
            .route("/v1/traces", post(receive_spans))
            // Export batches are bounded by span count, not bytes; take any size.
            .layer(DefaultBodyLimit::disable())
            .with_state(counts.clone());
        let token = stop_accepting.clone();
        tasks.spawn(async move {
            let _ = axum::serve(otlp, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });

        Ok(LocalSinks {
            logstash_addr,
            otlp_endpoint,
            counts,
            stop_accepting,
            stop_all,
            tasks,
        })
    }

    /// Stops the stand-ins and returns what they received. Call after the senders have closed
    /// their connections; one still open after [`STOP_GRACE`] is cut.
    pub async fn stop(mut self) -> SinkFigures {
        self.stop_accepting.cancel();
        let drained = tokio::time::timeout(STOP_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.stop_all.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
        self.counts.figures()
    }
}

async fn accept_lines(
    listener: TcpListener,
    counts: Arc<Counts>,
    stop_accepting: CancellationToken,
    stop_all: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop_accepting.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(read_lines(stream, counts.clone(), stop_all.clone()));
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Reads one connection to its end, counting bytes and lines (`json_lines`: one per newline).
async fn read_lines(
    mut stream: tokio::net::TcpStream,
    counts: Arc<Counts>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        counts.logstash_lines.fetch_add(lines, Ordering::Relaxed);
        counts.logstash_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// An OTLP/HTTP export: counted and acknowledged with an empty `ExportTraceServiceResponse`
/// (no partial success: every span accepted).
async fn receive_spans(
    State(counts): State<Arc<Counts>>,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1]) {
    counts.otlp_requests.fetch_add(1, Ordering::Relaxed);
    counts
        .otlp_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_stand_ins_count_what_they_receive() {
        let sinks = LocalSinks::start().await.unwrap();
        let mut tcp = tokio::net::TcpStream::connect(sinks.logstash_addr)
            .await
            .unwrap();
        tcp.write_all(b"{\"a\":1}\n{\"b\":2}\n").await.unwrap();
        tcp.write_all(b"{\"c\":3}\n").await.unwrap();
        drop(tcp);
        let url = format!("{}/v1/traces", sinks.otlp_endpoint);
        let response = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(vec![0u8; 1000])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // Anything but the traces path is not a collector.
        let other = reqwest::Client::new()
            .post(format!("{}/v1/logs", sinks.otlp_endpoint))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
        let figures = sinks.stop().await;
        assert_eq!(
            figures,
            SinkFigures {
                logstash_lines: 3,
                logstash_bytes: 24,
                otlp_requests: 1,
                otlp_bytes: 1000,
            }
        );
    }
}
