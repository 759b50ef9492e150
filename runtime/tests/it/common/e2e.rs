//! Shared harness of the end-to-end tests (`pipeline_e2e.rs`, `cli_e2e.rs`).
//!
//! In-process: [`Pipeline::start`] serves a fresh swf-local on 127.0.0.1:0 with its database in a
//! temporary folder, connects the runtime to it through `app::connect` as any endpoint, registers
//! every type and hosts the decider and workers with `Host::start`; [`Pipeline::stop`] drains the
//! host and stops the endpoint. Out of process: [`Child`] runs one `swf-runtime` (or moto) process
//! and kills it when dropped, so a failing test never leaves servers behind.
//!
//! Every wait here is bounded and polls SWF (or a file, or a port) for a condition at short
//! intervals; none sleeps to let something happen. Each test binary uses only part of this file.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use swf_runtime::app::{self, Backend, Embed, Host, HostOptions};
use swf_runtime::commands;
use swf_runtime::config::Config;
use swf_runtime::decider::Timeline;
use swf_runtime::swf::{ExecutionInfo, StartWorkflow, SwfClient, TypeRef, WorkflowExecution};

/// Upper bound of any one execution in these tests: the slowest (hang, retries) needs ~10 s.
pub const EXECUTION_WAIT: Duration = Duration::from_secs(90);
/// How often a condition is re-checked.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// A test configuration: seed durations scaled by 0.01 (critical path 480 ms), retry backoffs of
/// one second (SWF timers count whole seconds; 100 nominal x 0.01), everything in `dir`.
pub fn fast_config(dir: &Path) -> Config {
    let mut cfg = Config {
        domain: "e2e".into(),
        data_dir: dir.join("data"),
        identity: Some("e2e-host".into()),
        drain_timeout_secs: 5,
        ..Config::default()
    };
    cfg.telemetry.enabled = false;
    cfg.pipeline.time_scale = 0.01;
    cfg.pipeline.output_dir = dir.join("media-output");
    cfg.pipeline.retry.initial_backoff_secs = 100.0;
    cfg.pipeline.retry.max_backoff_secs = 100.0;
    cfg
}

/// Logs of the runtime under test, shown with `--nocapture` and `RUST_LOG=...`.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A swf-local endpoint with the runtime's decider and workers connected to it.
pub struct Pipeline {
    pub dir: tempfile::TempDir,
    pub cfg: Config,
    pub client: Arc<dyn SwfClient>,
    backend: Option<Backend>,
    local: Option<swf_local::ServerHandle>,
    host: Option<Host>,
}

impl Pipeline {
    /// Starts everything with [`fast_config`] changed by `tweak` and 4 slots per task list.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Result<Pipeline> {
        init_logs();
        let dir = tempfile::tempdir()?;
        let mut cfg = fast_config(dir.path());
        tweak(&mut cfg);
        cfg.validate()?;
        std::fs::create_dir_all(&cfg.data_dir)?;
        let local = swf_local::start(swf_local::Config::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            cfg.data_dir.join("swf-local.db"),
        ))
        .await?;
        cfg.endpoint_url = Some(local.endpoint_url());
        let backend = app::connect(&cfg, Embed::Start).await?;
        assert!(
            backend.local.is_none(),
            "with an endpoint URL the runtime must not embed its own swf-local"
        );
        app::register_all(backend.client.as_ref(), &cfg).await?;
        let opts = HostOptions::from_config(&cfg, 4);
        let client = backend.swf();
        let host = Host::start(&cfg, client.clone(), &opts, None)?;
        Ok(Pipeline {
            dir,
            cfg,
            client,
            backend: Some(backend),
            local: Some(local),
            host: Some(host),
        })
    }

    /// Sets the slots of one task list (the others keep the default of 4).
    pub fn slots(cfg: &mut Config, task_list: &str, slots: usize) {
        let mut lists = app::default_task_lists(cfg, 4);
        for l in &mut lists {
            if l.name == task_list {
                l.slots = slots;
            }
        }
        cfg.task_lists = lists;
    }

    fn workflow_type(&self, name: &str) -> TypeRef {
        swf_runtime::pipeline::registrations(&self.cfg.pipeline)
            .0
            .into_iter()
            .map(|w| w.workflow_type)
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("the pipeline has no workflow type {name}"))
    }

    /// Starts a workflow with an input given verbatim (it may be invalid on purpose).
    pub async fn start_raw(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: &str,
    ) -> Result<WorkflowExecution> {
        let run_id = self
            .client
            .start_workflow_execution(&StartWorkflow {
                workflow_id: workflow_id.to_string(),
                workflow_type: Some(self.workflow_type(workflow_type)),
                input: Some(input.to_string()),
                ..StartWorkflow::default()
            })
            .await?;
        Ok(WorkflowExecution {
            workflow_id: workflow_id.to_string(),
            run_id,
        })
    }

    /// Starts a workflow for `media_uuid` with the input `swf-runtime start` builds; `extra` is
    /// merged in (e.g. `{"faults": {...}}`).
    pub async fn start_media(
        &self,
        workflow_type: &str,
        media_uuid: &str,
        extra: Option<Value>,
    ) -> Result<WorkflowExecution> {
        let extra = extra.map(|v| v.to_string());
        let input = commands::workflow_input(media_uuid, "user-e2e", extra.as_deref())
            .map_err(|e| anyhow!(e.message))?;
        self.start_raw(workflow_type, media_uuid, &input).await
    }

    /// Waits (bounded) for the execution to close.
    pub async fn wait_closed(&self, exec: &WorkflowExecution) -> Result<ExecutionInfo> {
        commands::wait_closed(self.client.as_ref(), exec, EXECUTION_WAIT)
            .await
            .map_err(|e| anyhow!(e.message))
    }

    /// Every event of the execution as SWF's JSON.
    pub async fn events(&self, exec: &WorkflowExecution) -> Result<Vec<Value>> {
        let events = commands::fetch_history(self.client.as_ref(), exec).await?;
        Ok(events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?)
    }

    pub async fn timeline(&self, exec: &WorkflowExecution) -> Result<Timeline> {
        commands::fetch_timeline(self.client.as_ref(), exec)
            .await
            .map_err(|e| anyhow!(e.message))
    }

    /// Describes the history in one line per event, for assertion messages.
    pub async fn dump(&self, exec: &WorkflowExecution) -> String {
        match self.events(exec).await {
            Ok(events) => events
                .iter()
                .map(|e| {
                    let attrs = attributes(e);
                    format!("{} {} {}", e["eventId"], e["eventType"], attrs)
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("(history unavailable: {e})"),
        }
    }

    pub fn media_dir(&self, media_uuid: &str) -> PathBuf {
        self.cfg.pipeline.output_dir.join(media_uuid)
    }

    /// Drains the host and stops the endpoint.
    pub async fn stop(mut self) {
        if let Some(host) = self.host.take() {
            let errors = host.stop().await;
            assert!(errors.is_empty(), "pollers ended with errors: {errors:?}");
        }
        if let Some(b) = self.backend.take() {
            b.shutdown().await;
        }
        if let Some(l) = self.local.take() {
            l.shutdown().await;
        }
    }
}

/// The `...EventAttributes` object of an event in SWF's JSON.
pub fn attributes(event: &Value) -> Value {
    event
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventAttributes")))
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null)
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["eventType"] == event_type)
        .collect()
}

/// Waits (bounded) until `check` returns `Some`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not reached within {limit:?}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// The `swf-runtime` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_swf-runtime"))
}

/// A command for the binary with a clean environment: no `SWF_RUNTIME_*` or AWS setting of the
/// person running the tests leaks in.
pub fn swf_runtime(cwd: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("SWF_RUNTIME_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to its end, killing it after `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Child::spawn_piped(cmd, "command")?;
    let status = child.wait_bounded(limit)?;
    let stdout = child.take_stdout();
    let stderr = child.take_stderr();
    Ok(Output {
        code: status.code(),
        stdout,
        stderr,
    })
}

/// A child process killed (and reaped) when dropped. Its output is collected by reader threads
/// so that a chatty child never blocks on a full pipe.
pub struct Child {
    pub name: String,
    inner: std::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    stream: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => into.lock().unwrap().push_str(&line),
            }
        }
    })
}

impl Child {
    /// Spawns with stdout and stderr captured.
    pub fn spawn(mut cmd: Command, name: &str) -> Result<Child> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Child::spawn_piped(cmd, name)
    }

    fn spawn_piped(mut cmd: Command, name: &str) -> Result<Child> {
        let mut inner = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(s) = inner.stdout.take() {
            readers.push(collect(s, stdout.clone()));
        }
        if let Some(s) = inner.stderr.take() {
            readers.push(collect(s, stderr.clone()));
        }
        Ok(Child {
            name: name.to_string(),
            inner,
            stdout,
            stderr,
            readers,
        })
    }

    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    fn take_stdout(&mut self) -> String {
        self.join_readers();
        std::mem::take(&mut *self.stdout.lock().unwrap())
    }

    fn take_stderr(&mut self) -> String {
        self.join_readers();
        std::mem::take(&mut *self.stderr.lock().unwrap())
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.inner.try_wait()?)
    }

    /// Waits for the exit, at most `limit`; kills it and fails beyond.
    pub fn wait_bounded(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.inner.try_wait()? {
                self.join_readers();
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.inner.kill();
                let _ = self.inner.wait();
                self.join_readers();
                bail!(
                    "{} did not exit within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Sends SIGTERM (through kill(1): the crate forbids unsafe code, so no libc call).
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.id().to_string())
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.id());
        }
        Ok(())
    }

    /// Waits (bounded) until its stdout has a line containing `needle`; returns that line.
    pub fn wait_for_stdout(&mut self, needle: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.stdout().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if let Some(status) = self.inner.try_wait()? {
                self.join_readers();
                bail!(
                    "{} exited ({status}) before printing {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} printed no {needle:?} within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.inner.try_wait() {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits (bounded) until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + limit;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.exited()? {
            bail!(
                "{} exited ({status}) before listening on {port}\n--- stdout\n{}\n--- stderr\n{}",
                child.name,
                child.stdout(),
                child.stderr()
            );
        }
        if Instant::now() >= deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {limit:?}");
        }
        std::thread::sleep(POLL_EVERY);
    }
}
