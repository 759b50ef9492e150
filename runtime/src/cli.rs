//! The command line: clap definitions and the dispatch of each subcommand.
//!
//! Precedence is flags > `SWF_RUNTIME_*` environment variables > the TOML config file: clap reads
//! flags and environment variables (each flag names its variable), and every value it found
//! overrides the file's. `main.rs` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, TaskListConfig};

#[derive(Debug, Parser)]
#[command(
    name = "swf-runtime",
    version,
    about = "An observability-first worker runtime for Amazon SWF: decider, activity workers and an embedded SWF endpoint.",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML config file (unknown keys are refused).
    #[arg(long, short = 'c', env = "SWF_RUNTIME_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// SWF domain.
    #[arg(long, env = "SWF_RUNTIME_DOMAIN", global = true)]
    pub domain: Option<String>,
    /// AWS region (default: the standard AWS chain).
    #[arg(long, env = "SWF_RUNTIME_REGION", global = true)]
    pub region: Option<String>,
    /// SWF endpoint URL, e.g. http://127.0.0.1:5000 (default: the embedded swf-local).
    #[arg(long, env = "SWF_RUNTIME_ENDPOINT_URL", global = true)]
    pub endpoint_url: Option<String>,
    /// AWS profile for credentials and region.
    #[arg(long, env = "SWF_RUNTIME_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Data folder: the embedded swf-local's database, logs, spool, outputs, manual task tokens.
    #[arg(long, env = "SWF_RUNTIME_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log filter (tracing env-filter syntax, e.g. `info` or `swf_runtime=debug`).
    #[arg(long, env = "SWF_RUNTIME_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Address of the Prometheus `/metrics` and `/healthz` endpoint.
    #[arg(long, env = "SWF_RUNTIME_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Identity sent to SWF with every poll (default `<hostname>:<pid>`).
    #[arg(long, env = "SWF_RUNTIME_IDENTITY", global = true)]
    pub identity: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Host the decider and the activity workers for the configured task lists until SIGTERM.
    Run(RunArgs),
    /// Run the media pipeline end to end on the embedded swf-local and print each timeline.
    Demo(DemoArgs),
    /// Register the domain and every workflow and activity type (idempotent).
    Register,
    /// Start a workflow execution; its workflow id is the media uuid.
    Start(StartArgs),
    /// Print an execution's whole history as a per-stage timeline (or as JSON).
    History(HistoryArgs),
    /// Put one activity task on a task list by hand, for testing, and print its result.
    Inject(InjectArgs),
    /// Complete (or fail) a manual activity task, such as a face recognition done by a person.
    Complete(CompleteArgs),
    /// Describe one workflow execution.
    Describe(DescribeArgs),
    /// List open and closed workflow executions.
    List(ListArgs),
    /// Serve the embedded SWF-compatible endpoint on its own.
    ServeLocal(ServeLocalArgs),
    /// Find a media file's log lines in the local log files and print them as a timeline.
    Logs(LogsArgs),
    /// Measure throughput and latency of the pipeline's shape on an endpoint.
    Bench(BenchArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Multiplies every nominal stage duration and timeout.
    #[arg(long, env = "SWF_RUNTIME_TIME_SCALE")]
    pub time_scale: Option<f64>,
    /// Seconds in-flight tasks may run after SIGTERM.
    #[arg(long, env = "SWF_RUNTIME_DRAIN_TIMEOUT_SECS")]
    pub drain_timeout_secs: Option<u64>,
    /// An activity task list to poll, as NAME=SLOTS; repeat for several (default: every task list
    /// of the pipeline, 4 slots each).
    #[arg(long = "task-list", value_parser = parse_task_list)]
    pub task_lists: Vec<TaskListConfig>,
    /// Do not run the decider on this host.
    #[arg(long)]
    pub no_decider: bool,
    /// Do not run activity workers on this host (decider only).
    #[arg(long)]
    pub no_workers: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Multiplies the seed's stage durations (30/5/10/8 s).
    #[arg(long, env = "SWF_RUNTIME_TIME_SCALE")]
    pub time_scale: Option<f64>,
    /// How many VideoProcessing executions to run.
    #[arg(long, default_value_t = 1)]
    pub workflows: usize,
    /// Media uuid of the (first) execution; default a fresh uuid.
    #[arg(long)]
    pub media_uuid: Option<String>,
    /// User uuid of the executions; default a fresh uuid.
    #[arg(long)]
    pub user_uuid: Option<String>,
    /// Faults to inject, as the workflow input's `faults` JSON object.
    #[arg(long)]
    pub faults: Option<String>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

#[derive(Debug, Args, Clone)]
pub struct StartArgs {
    #[arg(long)]
    pub media_uuid: String,
    #[arg(long)]
    pub user_uuid: String,
    #[arg(long, default_value = "VideoProcessing")]
    pub workflow_type: String,
    /// Extra input fields as a JSON object (merged with media_uuid and user_uuid).
    #[arg(long)]
    pub input: Option<String>,
    /// Wait for the execution to close and exit non-zero unless it completed.
    #[arg(long)]
    pub wait: bool,
    /// Upper bound of --wait.
    #[arg(long, default_value_t = 3600)]
    pub wait_timeout_secs: u64,
}

#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    pub workflow_id: String,
    #[arg(long)]
    pub run_id: Option<String>,
    /// Every event as SWF's JSON instead of the timeline.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct InjectArgs {
    pub activity_type: String,
    #[arg(long, default_value = "1.0")]
    pub version: String,
    /// The activity's input (JSON, passed to the handler as is).
    #[arg(long)]
    pub input: String,
    /// Task list (default: the activity type's default).
    #[arg(long)]
    pub task_list: Option<String>,
    /// Wait for the task's result and print it.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 600)]
    pub wait_timeout_secs: u64,
}

#[derive(Debug, Args, Clone)]
pub struct CompleteArgs {
    /// The media whose pending manual task to answer (see `complete --list`).
    #[arg(long)]
    pub media_uuid: Option<String>,
    /// A file holding the task token (as written by the runtime for manual tasks).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The result JSON.
    #[arg(long)]
    pub result: Option<String>,
    /// Fail the task with this reason instead of completing it.
    #[arg(long)]
    pub fail: Option<String>,
    /// List pending manual tasks.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DescribeArgs {
    pub workflow_id: String,
    #[arg(long)]
    pub run_id: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    /// Only closed executions.
    #[arg(long, conflicts_with = "open")]
    pub closed: bool,
    /// Only open executions.
    #[arg(long)]
    pub open: bool,
    /// How far back to look.
    #[arg(long, default_value_t = 24)]
    pub since_hours: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ServeLocalArgs {
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// SQLite database file (default: <data_dir>/swf-local.db).
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    #[arg(long)]
    pub media_uuid: String,
    #[arg(long)]
    pub workflow_id: Option<String>,
    /// Only lines at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Log folder (default: the configured log dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the matching lines as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 1000)]
    pub workflows: usize,
    /// At most this many executions open at a time.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Stage durations in ms as A,B,C,D.
    #[arg(long, default_value = "0,0,0,0")]
    pub stages_ms: String,
    /// `on`, `off`, or `compare`: the same workload in slices alternating on and off (on, off,
    /// off, on, ...) in this one run, reporting both throughputs and the cost of telemetry.
    #[arg(long, default_value = "on")]
    pub telemetry: String,
    /// Slices of `--telemetry compare` (even; each runs workflows / slices executions to the end).
    /// One slice each way runs first as an unmeasured warm-up.
    #[arg(long, default_value_t = 8)]
    pub slices: usize,
    /// Activity slots per task list.
    #[arg(long, default_value_t = 256)]
    pub slots: usize,
    /// Ship logs and spans to a Logstash stand-in and an OTLP/HTTP receiver started in this
    /// process on loopback (they count what they get and discard it), instead of the configured
    /// `logstash_addr` and `otlp_endpoint`.
    #[arg(long)]
    pub local_sinks: bool,
    #[arg(long)]
    pub json: bool,
}

fn parse_task_list(s: &str) -> Result<TaskListConfig, String> {
    let (name, slots) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SLOTS, got {s:?}"))?;
    let slots: usize = slots
        .parse()
        .map_err(|_| format!("slots of {name:?} must be a positive integer, got {slots:?}"))?;
    if name.is_empty() || slots == 0 {
        return Err(format!("expected NAME=SLOTS with SLOTS >= 1, got {s:?}"));
    }
    Ok(TaskListConfig::new(name, slots))
}

impl GlobalArgs {
    /// Loads the config file and applies every flag or environment value found.
    pub fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(v) = &self.domain {
            cfg.domain = v.clone();
        }
        if let Some(v) = &self.region {
            cfg.region = Some(v.clone());
        }
        if let Some(v) = &self.endpoint_url {
            cfg.endpoint_url = Some(v.clone());
        }
        if let Some(v) = &self.profile {
            cfg.profile = Some(v.clone());
        }
        if let Some(v) = &self.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &self.log_level {
            cfg.telemetry.log_level = v.clone();
        }
        if let Some(v) = self.metrics_addr {
            cfg.telemetry.metrics_addr = v;
        }
        if let Some(v) = &self.identity {
            cfg.identity = Some(v.clone());
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn task_list_flag_parses_and_names_bad_values() {
        assert_eq!(
            parse_task_list("video-processing=8").unwrap(),
            TaskListConfig::new("video-processing", 8)
        );
        assert!(parse_task_list("x").unwrap_err().contains("NAME=SLOTS"));
        assert!(parse_task_list("x=0").unwrap_err().contains("SLOTS >= 1"));
        assert!(parse_task_list("x=many")
            .unwrap_err()
            .contains("positive integer"));
    }
}
