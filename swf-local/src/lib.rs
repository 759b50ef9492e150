//! swf-local: an embedded, durable endpoint that speaks Amazon SWF's JSON 1.0 protocol.
//!
//! [`start`] opens (or creates) the SQLite database, rebuilds the in-memory state from it, binds the
//! listener and spawns the HTTP server plus the deadline and retention loops on the current tokio
//! runtime; the returned [`ServerHandle`] reports the address and stops everything with
//! [`ServerHandle::shutdown`] (dropping the handle also stops accepting requests). Clients talk to
//! it exactly as to Amazon SWF, e.g. with `aws-sdk-swf` pointed at [`ServerHandle::endpoint_url`].
//!
//! Every answered request is committed first (group commit in one writer thread), so after a crash
//! and a restart everything acknowledged is there and pending timeouts fire from their stored
//! deadlines.

mod engine;
mod fault;
mod input;
mod replay;
mod server;
mod sigv4;
mod state;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use fault::Fault;
pub use store::StoreError;

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: survives a killed process; an OS crash or power loss may drop
    /// the last commits. The default, because it is the process crash that the runtime must survive
    /// and it costs a fraction of FULL's fsyncs.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL`: also survives OS crashes and power loss.
    Full,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// SQLite database file; created if missing.
    pub db_path: PathBuf,
    /// How long an empty poll is held before it answers an empty task token.
    pub long_poll_timeout: Duration,
    /// `(access key id, secret access key)`: when set, every request must be SigV4-signed with them.
    /// Required when `listen` is not a loopback address.
    pub credentials: Option<(String, String)>,
    pub durability: Durability,
    /// How often closed executions past their domain's retention period are purged.
    pub retention_check_interval: Duration,
    /// Most events one history may hold; at the limit the execution is terminated (SWF: 25,000).
    pub history_event_limit: usize,
}

impl Config {
    pub fn new(listen: SocketAddr, db_path: PathBuf) -> Self {
        Config {
            listen,
            db_path,
            long_poll_timeout: Duration::from_secs(60),
            credentials: None,
            durability: Durability::Normal,
            retention_check_interval: Duration::from_secs(3600),
            history_event_limit: 25_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("refusing to listen on non-loopback address {0} without credentials: configure credentials so that requests are authenticated, or listen on 127.0.0.1")]
    InsecureListen(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A running server.
pub struct ServerHandle {
    local_addr: SocketAddr,
    app: Arc<server::App>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting requests, answers waiting polls with empty tasks, commits what is queued
    /// and closes the database.
    pub async fn shutdown(mut self) {
        self.app.cancel.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let writer = self.app.lock().writer.take();
        if let Some(mut w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.close()).await;
        }
        tracing::info!(addr = %self.local_addr, "swf-local stopped.");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.app.cancel.cancel();
    }
}

/// Starts the endpoint on the current tokio runtime.
pub async fn start(config: Config) -> Result<ServerHandle, Error> {
    if !config.listen.ip().is_loopback() && config.credentials.is_none() {
        return Err(Error::InsecureListen(config.listen));
    }
    if config.history_event_limit < 10 {
        return Err(Error::Config(
            "history_event_limit must be at least 10".into(),
        ));
    }
    if config.long_poll_timeout.is_zero() || config.retention_check_interval.is_zero() {
        return Err(Error::Config(
            "long_poll_timeout and retention_check_interval must be positive".into(),
        ));
    }
    let path = config.db_path.clone();
    let durability = config.durability;
    let (loaded, writer) =
        tokio::task::spawn_blocking(move || store::Store::open(&path, durability))
            .await
            .map_err(|e| Error::Config(format!("database open task failed: {e}")))??;
    let timer_notify = Arc::new(Notify::new());
    let mut state = state::State::new(timer_notify.clone(), config.history_event_limit, writer);
    state.load(loaded)?;
    let open = state.open_by_id.len();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let cancel = CancellationToken::new();
    let app = Arc::new(server::App {
        state: Mutex::new(state),
        long_poll_timeout: config.long_poll_timeout,
        credentials: config.credentials.clone(),
        retention_check_interval: config.retention_check_interval,
        cancel: cancel.clone(),
        timer_notify,
    });
    let serve = axum::serve(listener, server::router(app.clone()))
        .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let tasks = vec![
        tokio::spawn(async move {
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "swf-local HTTP server failed.");
            }
        }),
        tokio::spawn(server::deadline_loop(app.clone())),
        tokio::spawn(server::retention_loop(app.clone())),
    ];
    tracing::info!(addr = %local_addr, db = %config.db_path.display(), open_executions = open, "swf-local listening.");
    Ok(ServerHandle {
        local_addr,
        app,
        tasks,
    })
}

/// Decodes and runs one request body without HTTP, for property tests of the decoder.
#[doc(hidden)]
pub async fn dispatch_for_test(
    handle: &ServerHandle,
    action: &str,
    body: &[u8],
) -> Result<String, Fault> {
    server::dispatch(&handle.app, action, body).await
}

/// Executions whose state differs from a replay of their history; empty when a restart would
/// rebuild exactly the running state. For tests.
#[doc(hidden)]
pub fn replay_mismatches(handle: &ServerHandle) -> Vec<String> {
    replay::mismatches(&handle.app.lock())
}
