//! Wiring: from a [`Config`] to a connected SWF client (the embedded swf-local when no endpoint is
//! configured), registered types, and the hosted decider and workers.
//!
//! Lifecycle: [`connect`] once per process; [`register_all`] on `register`, `run` and `demo`;
//! [`Host::start`] spawns the pollers, and [`Host::stop`] drains them when the shutdown token fires.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::swf::aws::{AwsSwfClient, ClientOptions};
use crate::swf::{SwfClient, SwfError};

/// Errors of wiring the runtime together; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the embedded swf-local: {0}")]
    Local(String),
    #[error("cannot reach SWF: {0}")]
    Swf(#[from] SwfError),
    #[error("{0}")]
    Invalid(String),
}

/// How a command gets its endpoint when none is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// `run`, `demo`, `bench`: start swf-local in this process and advertise it in the data folder.
    Start,
    /// One-shot commands (`start`, `history`, ...): use the swf-local a running `swf-runtime`
    /// advertises in the data folder, else open its database in this process.
    Discover,
}

/// A connected client, and the embedded endpoint when this process hosts it.
pub struct Backend {
    pub client: Arc<AwsSwfClient>,
    pub local: Option<swf_local::ServerHandle>,
    pub endpoint: String,
    url_file: Option<PathBuf>,
}

impl Backend {
    pub fn swf(&self) -> Arc<dyn SwfClient> {
        self.client.clone()
    }

    /// Stops the embedded endpoint (if any) after everything using it has stopped.
    pub async fn shutdown(self) {
        if let Some(local) = self.local {
            local.shutdown().await;
        }
        if let Some(f) = self.url_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

pub fn local_url_file(data_dir: &Path) -> PathBuf {
    data_dir.join("swf-local.url")
}

pub fn local_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("swf-local.db")
}

pub fn ensure_dir(path: &Path) -> Result<(), AppError> {
    std::fs::create_dir_all(path).map_err(|source| AppError::DataDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Starts swf-local with the config's settings on `db`.
pub async fn start_local(
    cfg: &Config,
    listen: SocketAddr,
    db: PathBuf,
) -> Result<swf_local::ServerHandle, AppError> {
    let mut local = swf_local::Config::new(listen, db);
    local.long_poll_timeout = Duration::from_secs(cfg.local.long_poll_timeout_secs);
    local.durability = if cfg.local.durability == "full" {
        swf_local::Durability::Full
    } else {
        swf_local::Durability::Normal
    };
    if let (Some(a), Some(s)) = (&cfg.local.access_key_id, &cfg.local.secret_access_key) {
        local.credentials = Some((a.clone(), s.clone()));
    }
    swf_local::start(local)
        .await
        .map_err(|e| AppError::Local(e.to_string()))
}

/// Region named to the SDK when it talks to the embedded swf-local and none is configured.
const EMBEDDED_REGION: &str = "us-east-1";

/// Connects to the configured endpoint, or to the embedded swf-local.
pub async fn connect(cfg: &Config, embed: Embed) -> Result<Backend, AppError> {
    let mut opts = ClientOptions {
        domain: cfg.domain.clone(),
        region: cfg.region.clone(),
        endpoint_url: cfg.endpoint_url.clone(),
        profile: cfg.profile.clone(),
        ..ClientOptions::default()
    };
    let mut local = None;
    let mut url_file = None;
    if opts.endpoint_url.is_none() {
        ensure_dir(&cfg.data_dir)?;
        let file = local_url_file(&cfg.data_dir);
        let advertised = match embed {
            Embed::Discover => advertised_endpoint(&file).await,
            Embed::Start => None,
        };
        let url = match advertised {
            Some(url) => url,
            None => {
                let handle =
                    start_local(cfg, cfg.local.listen, local_db_path(&cfg.data_dir)).await?;
                let url = handle.endpoint_url();
                if embed == Embed::Start {
                    std::fs::write(&file, &url).map_err(|source| AppError::DataDir {
                        path: file.clone(),
                        source,
                    })?;
                    url_file = Some(file);
                }
                local = Some(handle);
                url
            }
        };
        opts.endpoint_url = Some(url);
        // swf-local ignores the region; naming one spares every local run the AWS chain's
        // instance-metadata probe (a delay and a WARN line on any host that is not EC2).
        if opts.region.is_none() {
            opts.region = Some(EMBEDDED_REGION.to_string());
        }
        if let (Some(a), Some(s)) = (&cfg.local.access_key_id, &cfg.local.secret_access_key) {
            opts.static_credentials = Some((a.clone(), s.clone()));
        } else if local.is_some() {
            // Our own swf-local without credentials checks no signature (and listens only on
            // loopback), so signing every request would be pure cost.
            opts.sign = false;
        }
    }
    let endpoint = opts
        .endpoint_url
        .clone()
        .unwrap_or_else(|| "Amazon SWF (standard AWS chain)".into());
    let client = Arc::new(AwsSwfClient::connect(&opts).await?);
    Ok(Backend {
        client,
        local,
        endpoint,
        url_file,
    })
}

/// The URL a running `swf-runtime` advertised, if it still answers.
async fn advertised_endpoint(file: &Path) -> Option<String> {
    let url = std::fs::read_to_string(file).ok()?.trim().to_string();
    let hostport = url.strip_prefix("http://")?.trim_end_matches('/');
    let addr: SocketAddr = hostport.parse().ok()?;
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Some(url),
        _ => None,
    }
}

/// Task list of the decider of the built-in `inject` workflow.
pub const INJECT_DECIDER_TASK_LIST: &str = "swf-runtime-inject-decider";

/// Registers the domain, every pipeline type and the built-in inject workflow; what is already
/// registered is left as it is.
pub async fn register_all(
    client: &dyn SwfClient,
    cfg: &Config,
) -> Result<RegisterReport, AppError> {
    let mut report = RegisterReport::default();
    match client
        .register_domain(
            cfg.domain_retention_days,
            Some("Media pipeline (swf-runtime)".into()),
        )
        .await
    {
        Ok(()) => report.registered.push(format!("domain {}", cfg.domain)),
        Err(SwfError::AlreadyExists(_)) => report.existing.push(format!("domain {}", cfg.domain)),
        Err(e) => return Err(e.into()),
    }
    let (mut workflows, activity_types) = crate::pipeline::registrations(&cfg.pipeline);
    workflows.push(crate::swf::WorkflowTypeRegistration {
        workflow_type: crate::inject::inject_type(),
        description: Some(
            "One activity task put on a task list by hand (swf-runtime inject).".into(),
        ),
        default_task_list: INJECT_DECIDER_TASK_LIST.into(),
        default_execution_start_to_close_timeout_secs: 24 * 3600,
        default_task_start_to_close_timeout_secs: 30,
        default_child_policy: "TERMINATE".into(),
    });
    for w in &workflows {
        let name = format!(
            "workflow type {} {}",
            w.workflow_type.name, w.workflow_type.version
        );
        match client.register_workflow_type(w).await {
            Ok(()) => report.registered.push(name),
            Err(SwfError::AlreadyExists(_)) => report.existing.push(name),
            Err(e) => return Err(e.into()),
        }
    }
    for a in &activity_types {
        let name = format!(
            "activity type {} {}",
            a.activity_type.name, a.activity_type.version
        );
        match client.register_activity_type(a).await {
            Ok(()) => report.registered.push(name),
            Err(SwfError::AlreadyExists(_)) => report.existing.push(name),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// What [`register_all`] did.
#[derive(Debug, Default)]
pub struct RegisterReport {
    pub registered: Vec<String>,
    pub existing: Vec<String>,
}

/// Registers, retrying while the endpoint is unreachable (it may be starting up) and saying what
/// it waits for; gives up after `patience`.
pub async fn register_with_retry(
    client: &dyn SwfClient,
    cfg: &Config,
    patience: Duration,
    endpoint: &str,
) -> Result<RegisterReport, AppError> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(200);
    loop {
        match register_all(client, cfg).await {
            Err(AppError::Swf(e)) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(
                    endpoint,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "Waiting for the SWF endpoint to answer before registering types."
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// What this host runs.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub decider: bool,
    /// Activity task lists and their slots; empty = none.
    pub task_lists: Vec<crate::config::TaskListConfig>,
    pub identity: String,
    pub drain_timeout: Duration,
    /// Concurrent long polls per decider task list.
    pub decider_pollers: usize,
    /// How often the task lists' backlog is sampled into `swf_task_list_pending_tasks`.
    pub backlog_sample_every: Duration,
}

impl HostOptions {
    /// From the config: its task lists, or every pipeline task list with `default_slots` each.
    pub fn from_config(cfg: &Config, default_slots: usize) -> HostOptions {
        let task_lists = if cfg.task_lists.is_empty() {
            default_task_lists(cfg, default_slots)
        } else {
            cfg.task_lists.clone()
        };
        HostOptions {
            decider: cfg.decider,
            task_lists,
            identity: cfg.identity(),
            drain_timeout: Duration::from_secs(cfg.drain_timeout_secs),
            decider_pollers: cfg.decider_pollers,
            backlog_sample_every: Duration::from_secs(15),
        }
    }
}

/// Every task list the pipeline's activity types use by default.
pub fn default_task_lists(cfg: &Config, slots: usize) -> Vec<crate::config::TaskListConfig> {
    let (_, activity_types) = crate::pipeline::registrations(&cfg.pipeline);
    let mut names: Vec<String> = activity_types
        .into_iter()
        .map(|a| a.default_task_list)
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| crate::config::TaskListConfig::new(name, slots))
        .collect()
}

/// The decider and workers of one process, running until stopped.
pub struct Host {
    shutdown: tokio_util::sync::CancellationToken,
    tasks: tokio::task::JoinSet<Result<(), String>>,
}

impl Host {
    /// Spawns the decider pollers and the activity workers.
    pub fn start(
        cfg: &Config,
        client: Arc<dyn SwfClient>,
        opts: &HostOptions,
        health: Option<crate::telemetry::HealthState>,
    ) -> Result<Host, AppError> {
        use crate::decider::{DeciderPoller, WorkflowRegistry};
        use crate::worker::{ActivityWorker, WorkerConfig};

        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        if opts.decider {
            let mut registry = WorkflowRegistry::new();
            let defs = crate::pipeline::workflow_definitions(&cfg.pipeline)
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            for d in defs {
                registry.register(d);
            }
            registry.register(Arc::new(crate::inject::InjectWorkflow::default()));
            let (workflows, _) = crate::pipeline::registrations(&cfg.pipeline);
            let mut lists: Vec<String> =
                workflows.into_iter().map(|w| w.default_task_list).collect();
            lists.push(INJECT_DECIDER_TASK_LIST.into());
            lists.sort();
            lists.dedup();
            for list in lists {
                let poller = DeciderPoller::new(
                    client.clone(),
                    list,
                    opts.identity.clone(),
                    registry.clone(),
                )
                .with_pollers(opts.decider_pollers.max(1));
                let token = shutdown.clone();
                tasks.spawn(async move {
                    poller.run(token).await;
                    Ok(())
                });
            }
        }
        let heartbeat_timeouts = crate::pipeline::heartbeat_timeouts(&cfg.pipeline);
        for tl in &opts.task_lists {
            let registry = crate::pipeline::activity_handlers(&cfg.pipeline, client.clone());
            let mut wc = WorkerConfig::new(tl.name.clone());
            wc.slots = tl.slots;
            wc.pollers = tl.pollers();
            wc.identity = opts.identity.clone();
            wc.drain_timeout = opts.drain_timeout;
            wc.heartbeat_timeouts = heartbeat_timeouts.clone();
            let worker = ActivityWorker::new(client.clone(), registry, wc)
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            let token = shutdown.clone();
            tasks.spawn(async move { worker.run(token).await.map_err(|e| e.to_string()) });
        }
        let (workflows, activity_types) = crate::pipeline::registrations(&cfg.pipeline);
        let known: Vec<(String, String)> = activity_types
            .iter()
            .map(|a| (a.activity_type.name.clone(), a.default_task_list.clone()))
            .collect();
        prime_metrics(opts, &known);
        let mut decision_lists: Vec<String> = if opts.decider {
            workflows.into_iter().map(|w| w.default_task_list).collect()
        } else {
            Vec::new()
        };
        decision_lists.dedup();
        let sampler = spawn_backlog_sampler(
            client.clone(),
            opts.task_lists.iter().map(|t| t.name.clone()).collect(),
            decision_lists,
            opts.backlog_sample_every,
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let _ = sampler.await;
            Ok(())
        });
        if let Some(h) = health {
            h.set_polling(true);
        }
        Ok(Host { shutdown, tasks })
    }

    /// A token that stops the host when cancelled.
    pub fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.shutdown.clone()
    }

    /// Stops polling, drains in-flight tasks (each worker up to its drain timeout) and waits.
    pub async fn stop(mut self) -> Vec<String> {
        self.shutdown.cancel();
        let mut errors = Vec::new();
        while let Some(res) = self.tasks.join_next().await {
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("a poller task ended abnormally: {e}")),
            }
        }
        errors
    }
}

/// Wraps a client so that every answered poll (a task or an empty one) marks the runtime healthy
/// for `/healthz`, without the worker or decider knowing about health at all.
pub fn health_tracking(
    inner: Arc<dyn SwfClient>,
    health: crate::telemetry::HealthState,
) -> Arc<dyn SwfClient> {
    crate::swf::observe::observe_polls(inner, move |_| health.polled())
}

/// Creates, at zero, every series this host will report with a label set known up front, so that
/// dashboards and alerts see 0 rather than "no data" before the first event (a throttle, a dropped
/// line) ever happens.
pub fn prime_metrics(opts: &HostOptions, activity_types: &[(String, String)]) {
    use crate::telemetry::metrics as m;
    for op in [
        "PollForDecisionTask",
        "RespondDecisionTaskCompleted",
        "PollForActivityTask",
        "RecordActivityTaskHeartbeat",
        "RespondActivityTaskCompleted",
        "RespondActivityTaskFailed",
        "RespondActivityTaskCanceled",
        "StartWorkflowExecution",
        "GetWorkflowExecutionHistory",
    ] {
        m::increment(&m::API_THROTTLES, &[op], 0);
    }
    for d in [
        m::LOG_LINES_SHIPPED,
        m::LOG_LINES_SPOOLED,
        m::LOG_LINES_DROPPED,
        m::SPANS_EXPORTED,
        m::SPANS_DROPPED,
    ] {
        m::increment(&d, &[], 0);
    }
    for tl in &opts.task_lists {
        m::set_gauge(&m::WORKER_DRAINING, &[&tl.name], 0.0);
        for (activity_type, list) in activity_types {
            if list != &tl.name {
                continue;
            }
            let at = activity_type.clone();
            let tln = tl.name.clone();
            m::increment(&m::ACTIVITY_UNKNOWN_RESOURCE, &[&at, &tln], 0);
            m::increment(&m::ACTIVITY_HEARTBEATS, &[&at, &tln], 0);
            for outcome in ["completed", "failed", "canceled"] {
                m::increment(&m::ACTIVITY_TASKS, &[&at, &tln, outcome], 0);
            }
        }
    }
}

/// Samples the backlog of every task list this host serves (CountPending*Tasks) into
/// `swf_task_list_pending_tasks` every `every`, until `shutdown`.
pub fn spawn_backlog_sampler(
    client: Arc<dyn SwfClient>,
    activity_lists: Vec<String>,
    decision_lists: Vec<String>,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use crate::telemetry::metrics as m;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for tl in &activity_lists {
                if let Ok(n) = client.count_pending_activity_tasks(tl).await {
                    m::set_gauge(&m::PENDING_TASKS, &[tl], n as f64);
                }
            }
            for tl in &decision_lists {
                if let Ok(n) = client.count_pending_decision_tasks(tl).await {
                    m::set_gauge(&m::PENDING_TASKS, &[tl], n as f64);
                }
            }
        }
    })
}
