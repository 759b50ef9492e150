//! Harness of the failure drills: real `swf-runtime` processes in a scratch folder, an SWF client
//! on their endpoint, and readers for what the processes leave behind (histories, JSON log files,
//! `/metrics`).
//!
//! Lifecycle: a test makes one [`Drill`] (a temporary folder), starts `serve-local` and `run`
//! processes through it, drives executions with [`Drill::client`], and asserts. Every process is
//! owned by a [`Proc`] that kills it (SIGKILL) when dropped, so a failing assertion never leaves a
//! process behind. Every wait is a deadline loop on an observable condition ([`wait_for`]); a
//! timeout fails the test with what was awaited.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::time::Instant;

use swf_runtime::config::Config;
use swf_runtime::swf::aws::{AwsSwfClient, ClientOptions};
use swf_runtime::swf::{ExecutionInfo, StartWorkflow, SwfClient, TypeRef, WorkflowExecution};

/// Placeholder credentials for endpoints that do not check signatures; they keep the AWS chain
/// from probing instance metadata.
pub const DUMMY_KEY: &str = "drill-access-key";
pub const DUMMY_SECRET: &str = "drill-secret-key";

/// How often a deadline loop looks again.
const POLL_EVERY: Duration = Duration::from_millis(100);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_swf-runtime")
}

/// Waits until `probe` yields `Some`, at most `timeout`; the error names `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_err {
                Some(e) => {
                    anyhow!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A free loopback port (bound once, then released for a process to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    l.local_addr().expect("local address").port()
}

/// One child process, killed with SIGKILL when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// The process's own folder (its `--data-dir`), holding `stdout.txt` and `stderr.txt`.
    pub dir: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{sig} {} failed: {status}", self.pid());
        }
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        let child = &mut self.child;
        wait_for(timeout, &format!("{name} to exit"), || {
            let r = child.try_wait().map_err(anyhow::Error::from);
            async move { r }
        })
        .await
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    /// The JSON log file of a `run` process (`<data_dir>/logs`).
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn log_lines(&self) -> Vec<Value> {
        log_lines(&self.log_dir())
    }

    /// The `/metrics` address the process reported in its "Runtime started." line (the
    /// processes bind port 0). `after` skips lines of an earlier process on the same data dir.
    pub async fn metrics_addr(&self, after: usize) -> Result<SocketAddr> {
        let dir = self.log_dir();
        wait_for(
            Duration::from_secs(30),
            &format!("{} to log \"Runtime started.\"", self.name),
            || {
                let lines = log_lines(&dir);
                let found = lines
                    .iter()
                    .skip(after)
                    .find(|l| message(l) == "Runtime started.")
                    .and_then(|l| l.get("metrics_addr")?.as_str()?.parse().ok());
                async move { Ok(found) }
            },
        )
        .await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every JSON line of the `*.log` files in `dir`, oldest file first; a partly written last line
/// is skipped.
pub fn log_lines(dir: &Path) -> Vec<Value> {
    raw_log_lines(dir)
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The text lines of the `*.log` files in `dir`, complete lines only.
pub fn raw_log_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for (_, f) in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        out.extend(complete.lines().map(str::to_string));
    }
    out
}

pub fn message(line: &Value) -> &str {
    line.get("message").and_then(Value::as_str).unwrap_or("")
}

pub fn field<'a>(line: &'a Value, key: &str) -> Option<&'a str> {
    line.get(key).and_then(Value::as_str)
}

/// GETs `http://addr/metrics`.
pub async fn scrape(addr: SocketAddr) -> Result<String> {
    let text = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text)
}

/// The sum of every sample of metric `name` whose labels include each `key="value"` of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// A scratch folder and the processes of one drill.
pub struct Drill {
    pub name: String,
    pub root: tempfile::TempDir,
    /// The TOML every process of the drill reads (and the client registers types with).
    pub config_text: String,
    pub config_path: PathBuf,
    pub config: Config,
}

/// Extra TOML for one drill, by table; each string holds `key = value` lines.
#[derive(Debug, Clone, Default)]
pub struct Extra<'a> {
    /// The pipeline's time scale; 0.01 when unset.
    pub time_scale: Option<f64>,
    /// How long swf-local holds an empty poll; 5 s when unset.
    pub long_poll_secs: Option<u64>,
    pub top: &'a str,
    pub telemetry: &'a str,
    pub local: &'a str,
    pub pipeline: &'a str,
    /// Whole tables (`[pipeline.retry]`, ...) appended at the end.
    pub tables: &'a str,
}

/// The settings every drill starts from, plus `extra`: time scaled down 100x, 1 s timeout
/// margin, short decision-task timeouts and long polls so that a killed process's tasks come
/// back quickly, no JSON on stdout (the log files are what the drills read).
pub fn config_text(root: &Path, extra: &Extra<'_>) -> String {
    format!(
        "{}\n[telemetry]\nlog_stdout = false\n{}\n\n[local]\nlong_poll_timeout_secs = {}\n{}\n\n[pipeline]\ntime_scale = {}\ntimeout_margin_secs = 1\ndecision_task_timeout_secs = 2\noutput_dir = \"{}\"\n{}\n\n{}\n",
        extra.top,
        extra.telemetry,
        extra.long_poll_secs.unwrap_or(5),
        extra.local,
        extra.time_scale.unwrap_or(0.01),
        root.join("media-output").display(),
        extra.pipeline,
        extra.tables,
    )
}

impl Drill {
    pub fn new(name: &str, extra: &Extra<'_>) -> Result<Drill> {
        let root = tempfile::Builder::new()
            .prefix(&format!("drill-{name}-"))
            .tempdir()?;
        let config_text = config_text(root.path(), extra);
        let config_path = root.path().join("drill.toml");
        std::fs::write(&config_path, &config_text)?;
        let config = Config::from_toml(&config_text).map_err(|e| anyhow!("{e}"))?;
        Ok(Drill {
            name: name.to_string(),
            root,
            config_text,
            config_path,
            config,
        })
    }

    /// Writes another config file into the drill's folder (for processes that need different
    /// settings); returns its path.
    pub fn write_config(&self, file: &str, extra: &Extra<'_>) -> Result<PathBuf> {
        let path = self.path().join(file);
        std::fs::write(&path, config_text(self.path(), extra))?;
        Ok(path)
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Spawns `swf-runtime --config <drill.toml> --data-dir <root>/<name> <args>`, stdout and
    /// stderr into files of that folder.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Result<Proc> {
        self.spawn_with(name, &self.config_path, args)
    }

    pub fn spawn_with(&self, name: &str, config: &Path, args: &[&str]) -> Result<Proc> {
        let dir = self.path().join(name);
        self.spawn_full(name, config, &dir, args)
    }

    /// Like [`Drill::spawn`], with the data folder of another process (to reach the endpoint it
    /// embeds and advertises there); stdout and stderr still go to `<root>/<name>`.
    pub fn spawn_in(&self, name: &str, data_dir: &Path, args: &[&str]) -> Result<Proc> {
        self.spawn_full(name, &self.config_path, data_dir, args)
    }

    fn spawn_full(
        &self,
        name: &str,
        config: &Path,
        data_dir: &Path,
        args: &[&str],
    ) -> Result<Proc> {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let stdout = std::fs::File::create(dir.join("stdout.txt"))?;
        let stderr = std::fs::File::create(dir.join("stderr.txt"))?;
        let child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--region")
            .arg("us-east-1")
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("AWS_ACCESS_KEY_ID", DUMMY_KEY)
            .env("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            dir,
        })
    }

    /// Spawns another program (a stand-in server), output into `<root>/<name>`.
    pub fn spawn_program(&self, name: &str, program: &Path, args: &[&str]) -> Result<Proc> {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.txt"))?)
            .stderr(std::fs::File::create(dir.join("stderr.txt"))?)
            .spawn()
            .with_context(|| format!("spawning {}", program.display()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            dir,
        })
    }

    /// Runs a one-shot command to its end (at most `timeout`): exit status, stdout, stderr.
    pub async fn run_once(
        &self,
        name: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(ExitStatus, String, String)> {
        self.run_once_with(name, &self.config_path, args, timeout)
            .await
    }

    pub async fn run_once_with(
        &self,
        name: &str,
        config: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> Result<(ExitStatus, String, String)> {
        let mut p = self.spawn_with(name, config, args)?;
        let status = p.wait_exit(timeout).await?;
        Ok((status, p.stdout(), p.stderr()))
    }

    /// `serve-local` on a free loopback port with its database in `<root>/<name>`; returns the
    /// process and its endpoint URL once it listens.
    pub async fn serve_local(&self, name: &str) -> Result<(Proc, String)> {
        self.serve_local_on(name, "127.0.0.1:0").await
    }

    pub async fn serve_local_on(&self, name: &str, listen: &str) -> Result<(Proc, String)> {
        let mut p = self.spawn(name, &["serve-local", "--listen", listen])?;
        let url = wait_for(
            Duration::from_secs(30),
            "serve-local to print its address",
            || {
                let out = p.stdout();
                let exited = p.child.try_wait().ok().flatten();
                let err = p.stderr();
                async move {
                    if let Some(status) = exited {
                        bail!("serve-local exited with {status}: {err}");
                    }
                    Ok(out
                        .lines()
                        .find_map(|l| l.strip_prefix("swf-local listening on "))
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_string))
                }
            },
        )
        .await?;
        Ok((p, url))
    }

    /// `run` against `endpoint` with metrics on a free port; `args` go after `run`.
    pub fn runtime(&self, name: &str, endpoint: &str, args: &[&str]) -> Result<Proc> {
        let mut all = vec![
            "--endpoint-url",
            endpoint,
            "--metrics-addr",
            "127.0.0.1:0",
            "run",
        ];
        all.extend_from_slice(args);
        self.spawn(name, &all)
    }

    /// An SWF client on `endpoint` with the drill's domain and placeholder credentials.
    pub async fn client(&self, endpoint: &str) -> Result<Arc<AwsSwfClient>> {
        self.client_with(endpoint, Some((DUMMY_KEY.into(), DUMMY_SECRET.into())))
            .await
    }

    pub async fn client_with(
        &self,
        endpoint: &str,
        credentials: Option<(String, String)>,
    ) -> Result<Arc<AwsSwfClient>> {
        let opts = ClientOptions {
            domain: self.config.domain.clone(),
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.to_string()),
            static_credentials: credentials,
            poll_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(10),
            max_attempts: 3,
            ..ClientOptions::default()
        };
        Ok(Arc::new(AwsSwfClient::connect(&opts).await?))
    }

    /// Registers the domain and types exactly as the runtimes of this drill do (idempotent).
    pub async fn register(&self, client: &dyn SwfClient) -> Result<()> {
        swf_runtime::app::register_all(client, &self.config)
            .await
            .map_err(|e| anyhow!("registering: {e}"))?;
        Ok(())
    }
}

/// Starts a VideoProcessing execution for `media_uuid`, with `extra` input fields (a JSON
/// object such as `{"faults": ...}`).
pub async fn start_video(
    client: &dyn SwfClient,
    media_uuid: &str,
    extra: Option<&str>,
) -> Result<WorkflowExecution> {
    let input = swf_runtime::commands::workflow_input(media_uuid, "drill-user", extra)
        .map_err(|e| anyhow!("{}", e.message))?;
    let start = StartWorkflow {
        workflow_id: media_uuid.to_string(),
        workflow_type: Some(TypeRef {
            name: activities::VIDEO_PROCESSING.into(),
            version: activities::WORKFLOW_VERSION.into(),
        }),
        input: Some(input),
        ..StartWorkflow::default()
    };
    let run_id = client.start_workflow_execution(&start).await?;
    Ok(WorkflowExecution {
        workflow_id: media_uuid.to_string(),
        run_id,
    })
}

/// Waits until the execution is closed; returns its description.
pub async fn wait_closed(
    client: &dyn SwfClient,
    exec: &WorkflowExecution,
    timeout: Duration,
) -> Result<ExecutionInfo> {
    wait_for(
        timeout,
        &format!("execution {} to close", exec.workflow_id),
        || async {
            let info = client.describe_workflow_execution(exec).await?;
            Ok((info.execution_status == "CLOSED").then_some(info))
        },
    )
    .await
}

/// An execution's whole history, each event as SWF's JSON.
pub async fn history(client: &dyn SwfClient, exec: &WorkflowExecution) -> Result<Hist> {
    let events = swf_runtime::commands::fetch_history(client, exec).await?;
    Ok(Hist(
        events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?,
    ))
}

/// Waits until the history holds an event accepted by `pred`; returns that event.
pub async fn wait_event(
    client: &dyn SwfClient,
    exec: &WorkflowExecution,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Hist, &Value) -> bool,
) -> Result<Value> {
    wait_for(timeout, what, || async {
        let h = history(client, exec).await?;
        Ok(h.0.iter().find(|e| pred(&h, e)).cloned())
    })
    .await
}

/// A history as JSON events, with the lookups the drills need.
#[derive(Debug, Clone)]
pub struct Hist(pub Vec<Value>);

pub fn event_type(ev: &Value) -> &str {
    ev.get("eventType").and_then(Value::as_str).unwrap_or("")
}

/// The event's `...EventAttributes` object.
pub fn attrs(ev: &Value) -> &Value {
    ev.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventAttributes")))
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

pub fn event_id(ev: &Value) -> i64 {
    ev.get("eventId").and_then(Value::as_i64).unwrap_or(-1)
}

impl Hist {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.0.iter().filter(|e| event_type(e) == t).collect()
    }

    pub fn by_id(&self, id: i64) -> Option<&Value> {
        self.0.iter().find(|e| event_id(e) == id)
    }

    /// The activity type name of the ActivityTaskScheduled event `scheduled_id`.
    pub fn stage_of_scheduled(&self, scheduled_id: i64) -> String {
        self.by_id(scheduled_id)
            .map(|e| {
                attrs(e)["activityType"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// The stage an activity event (started/completed/failed/timed out) belongs to.
    pub fn stage_of(&self, ev: &Value) -> String {
        let a = attrs(ev);
        if let Some(name) = a["activityType"]["name"].as_str() {
            return name.to_string();
        }
        self.stage_of_scheduled(a["scheduledEventId"].as_i64().unwrap_or(-1))
    }

    /// How many events of type `t` each stage has.
    pub fn count_by_stage(&self, t: &str) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in self.of_type(t) {
            *m.entry(self.stage_of(e)).or_insert(0) += 1;
        }
        m
    }

    pub fn has(&self, t: &str) -> bool {
        self.0.iter().any(|e| event_type(e) == t)
    }

    /// Event types in order, for failure messages.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| format!("{}:{}", event_id(e), event_type(e)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The four stages of VideoProcessing.
pub const VIDEO_STAGES: [&str; 4] = ["transcode", "thumbnails", "detect_faces", "publish"];

/// Checks that a completed VideoProcessing history has each stage completed exactly once.
pub fn assert_each_stage_completed_once(h: &Hist) {
    let done = h.count_by_stage("ActivityTaskCompleted");
    for s in VIDEO_STAGES {
        assert_eq!(
            done.get(s).copied().unwrap_or(0),
            1,
            "stage {s} completions: {done:?}; history: {}",
            h.summary()
        );
    }
    assert_eq!(done.len(), 4, "unexpected stages completed: {done:?}");
}
