//! What each subcommand does, on top of [`crate::app`]. `main.rs` calls [`main`].
//!
//! One-shot commands (`start`, `history`, ...) connect, do their call and exit; `run`,
//! `serve-local` and `demo` stay up until a signal (or, for `demo`, until every execution closed).
//! Exit codes: 0 success, 1 failure of the operation, 2 bad usage or input.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

use crate::app::{self, Embed, Host, HostOptions};
use crate::cli::*;
use crate::config::Config;
use crate::decider::{timeline_from_events, Timeline};
use crate::swf::{
    ExecutionInfo, ExecutionState, HistoryEvent, StartWorkflow, SwfClient, SwfError, TypeRef,
    WorkflowExecution,
};
use crate::telemetry::{self, HealthState, TelemetryConfig};

/// A command's failure: the message is printed as is; `usage` selects exit code 2.
#[derive(Debug)]
pub struct CommandError {
    pub message: String,
    pub usage: bool,
}

impl CommandError {
    pub fn fail_msg(message: impl Into<String>) -> Self {
        Self::fail(message)
    }
    pub fn usage_msg(message: impl Into<String>) -> Self {
        Self::usage(message)
    }
    fn fail(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            usage: false,
        }
    }
    fn usage(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
            usage: true,
        }
    }
}

impl<E: std::fmt::Display> From<E> for CommandError {
    fn from(e: E) -> Self {
        CommandError::fail(e.to_string())
    }
}

type CmdResult = Result<ExitCode, CommandError>;

/// Parses the command line, runs the command on a multi-threaded tokio runtime and maps the
/// result to the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swf-runtime: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swf-runtime: {}", e.message);
            if e.usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    let mut cfg = cli
        .global
        .load_config()
        .map_err(|e| CommandError::usage(e.to_string()))?;
    match cli.command {
        Command::Run(args) => {
            apply_run_args(&mut cfg, &args)?;
            run(cfg, args).await
        }
        Command::Demo(args) => {
            if let Some(t) = args.time_scale {
                cfg.pipeline.time_scale = t;
            }
            cfg.validate()
                .map_err(|e| CommandError::usage(e.to_string()))?;
            crate::demo::demo(cfg, args).await
        }
        Command::Bench(args) => crate::bench::bench(cfg, args).await,
        Command::ServeLocal(args) => serve_local(cfg, args).await,
        Command::Logs(args) => logs(cfg, args),
        other => one_shot(cfg, other).await,
    }
}

fn apply_run_args(cfg: &mut Config, args: &RunArgs) -> Result<(), CommandError> {
    if let Some(t) = args.time_scale {
        cfg.pipeline.time_scale = t;
    }
    if let Some(d) = args.drain_timeout_secs {
        cfg.drain_timeout_secs = d;
    }
    if !args.task_lists.is_empty() {
        cfg.task_lists = args.task_lists.clone();
    }
    if args.no_decider {
        cfg.decider = false;
    }
    cfg.validate()
        .map_err(|e| CommandError::usage(e.to_string()))
}

/// Telemetry for a long-running command: logs default into `<data_dir>/logs`.
fn telemetry_config(cfg: &Config) -> TelemetryConfig {
    let mut t = cfg.telemetry.clone();
    if t.log_dir.is_none() {
        t.log_dir = Some(cfg.data_dir.join("logs"));
    }
    t
}

/// Waits for SIGTERM or SIGINT; the second one exits the process at once.
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        eprintln!("swf-runtime: second signal, exiting at once.");
        std::process::exit(130);
    });
    name
}

async fn run(cfg: Config, args: RunArgs) -> CmdResult {
    app::ensure_dir(&cfg.data_dir)?;
    let tcfg = telemetry_config(&cfg);
    let guard = telemetry::init(&tcfg)?;
    let health = HealthState::default();
    let metrics = if tcfg.enabled {
        Some(
            telemetry::serve_metrics(
                tcfg.metrics_addr,
                health.clone(),
                tcfg.metrics_allow_non_loopback,
            )
            .await?,
        )
    } else {
        None
    };
    let backend = app::connect(&cfg, Embed::Start).await?;
    tracing::info!(
        endpoint = %backend.endpoint,
        domain = %cfg.domain,
        "Connected to SWF."
    );
    let report = app::register_with_retry(
        backend.client.as_ref(),
        &cfg,
        Duration::from_secs(300),
        &backend.endpoint,
    )
    .await?;
    tracing::info!(
        registered = report.registered.len(),
        already_registered = report.existing.len(),
        "Types registered."
    );
    let mut opts = HostOptions::from_config(&cfg, 4);
    if args.no_workers {
        opts.task_lists.clear();
    }
    let client = app::health_tracking(backend.swf(), health.clone());
    let host = Host::start(&cfg, client, &opts, Some(health.clone()))?;
    tracing::info!(
        decider = opts.decider,
        task_lists = %opts
            .task_lists
            .iter()
            .map(|t| format!("{}={}", t.name, t.slots))
            .collect::<Vec<_>>()
            .join(","),
        metrics_addr = %metrics.as_ref().map(|m| m.local_addr().to_string()).unwrap_or_default(),
        "Runtime started."
    );
    let signal = wait_for_signal().await;
    tracing::info!(
        signal,
        drain_timeout_secs = cfg.drain_timeout_secs,
        "Stopping: no new polls, draining in-flight tasks."
    );
    health.set_polling(false);
    let started = Instant::now();
    let errors = host.stop().await;
    for e in &errors {
        tracing::error!(error = %e, "A poller ended with an error.");
    }
    tracing::info!(
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = "drained",
        "Runtime stopped."
    );
    backend.shutdown().await;
    guard.shutdown().await;
    drop(metrics);
    Ok(ExitCode::SUCCESS)
}

async fn serve_local(cfg: Config, args: ServeLocalArgs) -> CmdResult {
    let db = match args.db {
        Some(db) => db,
        None => {
            app::ensure_dir(&cfg.data_dir)?;
            app::local_db_path(&cfg.data_dir)
        }
    };
    let handle = app::start_local(&cfg, args.listen, db.clone()).await?;
    println!(
        "swf-local listening on {} (database {})",
        handle.endpoint_url(),
        db.display()
    );
    let _ = wait_for_signal().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn logs(cfg: Config, args: LogsArgs) -> CmdResult {
    let dir = args
        .dir
        .or(cfg.telemetry.log_dir.clone())
        .unwrap_or_else(|| cfg.data_dir.join("logs"));
    let since = match &args.since {
        Some(s) => Some(
            telemetry::parse_since(s, time::OffsetDateTime::now_utc())
                .map_err(|e| CommandError::usage(e.to_string()))?,
        ),
        None => None,
    };
    let lines = telemetry::search_logs(&dir, &args.media_uuid, args.workflow_id.as_deref(), since)?;
    if args.json {
        for l in &lines {
            println!("{l}");
        }
    } else {
        print!("{}", telemetry::render_timeline(&lines));
    }
    Ok(ExitCode::SUCCESS)
}

async fn one_shot(cfg: Config, command: Command) -> CmdResult {
    if let Command::Complete(args) = &command {
        if args.list {
            return complete_list(&cfg);
        }
    }
    let backend = app::connect(&cfg, Embed::Discover).await?;
    let client = backend.swf();
    let res = match command {
        Command::Register => register(client.as_ref(), &cfg).await,
        Command::Start(args) => start(client.as_ref(), &cfg, args).await,
        Command::History(args) => history(client.as_ref(), args).await,
        Command::Inject(args) => inject(client.as_ref(), args).await,
        Command::Complete(args) => complete(client.as_ref(), &cfg, args).await,
        Command::Describe(args) => describe(client.as_ref(), args).await,
        Command::List(args) => list(client.as_ref(), args).await,
        _ => unreachable!("long-running commands are dispatched above"),
    };
    backend.shutdown().await;
    res
}

async fn register(client: &dyn SwfClient, cfg: &Config) -> CmdResult {
    let report = app::register_all(client, cfg).await?;
    for r in &report.registered {
        println!("registered {r}");
    }
    for r in &report.existing {
        println!("already registered {r}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The workflow type registered under `name` (the pipeline's, or the inject workflow).
fn workflow_type(cfg: &Config, name: &str) -> Result<TypeRef, CommandError> {
    let (workflows, _) = crate::pipeline::registrations(&cfg.pipeline);
    workflows
        .into_iter()
        .map(|w| w.workflow_type)
        .find(|t| t.name == name)
        .ok_or_else(|| {
            CommandError::usage(format!(
                "unknown workflow type {name:?}; known: {}",
                crate::pipeline::registrations(&cfg.pipeline)
                    .0
                    .iter()
                    .map(|w| w.workflow_type.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Builds a workflow input from the media and user ids and optional extra fields.
pub fn workflow_input(
    media_uuid: &str,
    user_uuid: &str,
    extra: Option<&str>,
) -> Result<String, CommandError> {
    let mut input = json!({ "media_uuid": media_uuid, "user_uuid": user_uuid });
    if let Some(extra) = extra {
        let v: Value = serde_json::from_str(extra)
            .map_err(|e| CommandError::usage(format!("--input is not valid JSON: {e}")))?;
        let Value::Object(map) = v else {
            return Err(CommandError::usage("--input must be a JSON object"));
        };
        for (k, v) in map {
            input[k] = v;
        }
    }
    let text = input.to_string();
    if text.chars().count() > crate::worker::MAX_PAYLOAD_CHARS {
        return Err(CommandError::usage(format!(
            "the workflow input has {} characters; SWF accepts at most {}",
            text.chars().count(),
            crate::worker::MAX_PAYLOAD_CHARS
        )));
    }
    Ok(text)
}

async fn start(client: &dyn SwfClient, cfg: &Config, args: StartArgs) -> CmdResult {
    workflow_type(cfg, &args.workflow_type)?;
    let input = workflow_input(&args.media_uuid, &args.user_uuid, args.input.as_deref())?;
    // Task list and timeouts from this configuration, not the type's registered defaults (SWF
    // keeps those from the first registration).
    let start =
        crate::pipeline::start_request(&cfg.pipeline, &args.workflow_type, &args.media_uuid, input)
            .ok_or_else(|| {
                CommandError::usage(format!("unknown workflow type {:?}", args.workflow_type))
            })?;
    let run_id = match client.start_workflow_execution(&start).await {
        Ok(r) => r,
        Err(SwfError::WorkflowAlreadyStarted(_)) => {
            return Err(CommandError::fail(format!(
                "an execution with workflow id {} is already open in domain {}; wait for it to \
                 close (swf-runtime describe {}) or terminate it",
                args.media_uuid,
                client.domain(),
                args.media_uuid
            )))
        }
        Err(e) => return Err(e.into()),
    };
    println!("started workflow {} run {}", args.media_uuid, run_id);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let exec = WorkflowExecution {
        workflow_id: args.media_uuid,
        run_id,
    };
    let info = wait_closed(client, &exec, Duration::from_secs(args.wait_timeout_secs)).await?;
    let status = info.close_status.clone().unwrap_or_default();
    println!("execution closed: {status}");
    Ok(if status == "COMPLETED" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Polls DescribeWorkflowExecution until the execution closes or `timeout` passes.
pub async fn wait_closed(
    client: &dyn SwfClient,
    exec: &WorkflowExecution,
    timeout: Duration,
) -> Result<ExecutionInfo, CommandError> {
    let deadline = Instant::now() + timeout;
    loop {
        let info = client.describe_workflow_execution(exec).await?;
        if info.execution_status == "CLOSED" {
            return Ok(info);
        }
        if Instant::now() >= deadline {
            return Err(CommandError::fail(format!(
                "execution {} {} still open after {} s",
                exec.workflow_id,
                exec.run_id,
                timeout.as_secs()
            )));
        }
        // A person-facing wait: SWF offers no push, and one describe per 200 ms is cheap.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The newest execution with this workflow id (open first), when no run id is given.
pub async fn resolve_execution(
    client: &dyn SwfClient,
    workflow_id: &str,
    run_id: Option<String>,
) -> Result<WorkflowExecution, CommandError> {
    if let Some(run_id) = run_id {
        return Ok(WorkflowExecution {
            workflow_id: workflow_id.to_string(),
            run_id,
        });
    }
    let since = 90 * 24 * 3600;
    for state in [ExecutionState::Open, ExecutionState::Closed] {
        let mut found = client
            .list_executions(state, since, Some(workflow_id))
            .await?;
        found.sort_by(|a, b| b.start_timestamp.total_cmp(&a.start_timestamp));
        if let Some(e) = found.into_iter().next() {
            return Ok(e.execution);
        }
    }
    Err(CommandError::fail(format!(
        "no execution with workflow id {workflow_id} in domain {}",
        client.domain()
    )))
}

/// Every event of an execution, page by page.
pub async fn fetch_history(
    client: &dyn SwfClient,
    exec: &WorkflowExecution,
) -> Result<Vec<HistoryEvent>, SwfError> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_workflow_execution_history(exec, token.as_deref(), false)
            .await?;
        events.extend(page.events);
        match page.next_page_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(events),
        }
    }
}

pub async fn fetch_timeline(
    client: &dyn SwfClient,
    exec: &WorkflowExecution,
) -> Result<Timeline, CommandError> {
    let events = fetch_history(client, exec).await?;
    Ok(timeline_from_events(exec.clone(), events)?)
}

async fn history(client: &dyn SwfClient, args: HistoryArgs) -> CmdResult {
    let exec = resolve_execution(client, &args.workflow_id, args.run_id).await?;
    if args.json {
        let events = fetch_history(client, &exec).await?;
        println!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        print!("{}", fetch_timeline(client, &exec).await?.render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn describe(client: &dyn SwfClient, args: DescribeArgs) -> CmdResult {
    let exec = resolve_execution(client, &args.workflow_id, args.run_id).await?;
    let info = client.describe_workflow_execution(&exec).await?;
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &dyn SwfClient, args: ListArgs) -> CmdResult {
    let since = args.since_hours * 3600;
    let mut all = Vec::new();
    if !args.closed {
        all.extend(
            client
                .list_executions(ExecutionState::Open, since, None)
                .await?,
        );
    }
    if !args.open {
        all.extend(
            client
                .list_executions(ExecutionState::Closed, since, None)
                .await?,
        );
    }
    all.sort_by(|a, b| b.start_timestamp.total_cmp(&a.start_timestamp));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<38} {:<18} {:<8} {:<16} {:<24} RUN ID",
        "WORKFLOW ID", "TYPE", "STATUS", "CLOSE STATUS", "STARTED"
    );
    for e in &all {
        println!(
            "{:<38} {:<18} {:<8} {:<16} {:<24} {}",
            e.execution.workflow_id,
            e.workflow_type.name,
            e.execution_status,
            e.close_status.as_deref().unwrap_or("-"),
            crate::decider::timeline::format_epoch(e.start_timestamp),
            e.execution.run_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn inject(client: &dyn SwfClient, args: InjectArgs) -> CmdResult {
    serde_json::from_str::<Value>(&args.input)
        .map_err(|e| CommandError::usage(format!("--input is not valid JSON: {e}")))?;
    let input = crate::inject::InjectInput {
        activity_type: args.activity_type.clone(),
        version: args.version.clone(),
        task_list: args.task_list.clone(),
        input: args.input.clone(),
        start_to_close_secs: None,
    };
    let workflow_id = format!("inject-{}", uuid::Uuid::new_v4());
    let start = StartWorkflow {
        workflow_id: workflow_id.clone(),
        workflow_type: Some(crate::inject::inject_type()),
        task_list: Some(app::INJECT_DECIDER_TASK_LIST.into()),
        input: Some(serde_json::to_string(&input)?),
        ..StartWorkflow::default()
    };
    let run_id = client.start_workflow_execution(&start).await?;
    println!(
        "injected one {} {} task (workflow {workflow_id} run {run_id})",
        args.activity_type, args.version
    );
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let exec = WorkflowExecution {
        workflow_id,
        run_id,
    };
    let info = wait_closed(client, &exec, Duration::from_secs(args.wait_timeout_secs)).await?;
    let events = fetch_history(client, &exec).await?;
    let closing = events.last().map(serde_json::to_value).transpose()?;
    let status = info.close_status.unwrap_or_default();
    println!("task {status}");
    if let Some(ev) = closing {
        let attrs = ev
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventAttributes")))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if let Some(result) = attrs.get("result").and_then(Value::as_str) {
            println!("{result}");
        } else {
            println!("{attrs}");
        }
    }
    Ok(if status == "COMPLETED" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn complete_list(cfg: &Config) -> CmdResult {
    let pending = crate::manual::ManualStore::new(&cfg.data_dir)
        .with_output_dir(&cfg.pipeline.output_dir)
        .list()?;
    if pending.is_empty() {
        println!("No manual tasks are waiting.");
    }
    for p in pending {
        println!(
            "media {} activity {} (token {}) waiting since {}",
            p.media_uuid, p.activity_id, p.token_hash, p.created
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn complete(client: &dyn SwfClient, cfg: &Config, args: CompleteArgs) -> CmdResult {
    let store =
        crate::manual::ManualStore::new(&cfg.data_dir).with_output_dir(&cfg.pipeline.output_dir);
    let (token, pending): (String, Option<crate::manual::PendingTask>) =
        match (&args.token_file, &args.media_uuid) {
            (Some(f), _) => (
                std::fs::read_to_string(f)
                    .map_err(|e| CommandError::usage(format!("cannot read {}: {e}", f.display())))?
                    .trim()
                    .to_string(),
                None,
            ),
            (None, Some(m)) => {
                let p = store.find(m)?.ok_or_else(|| {
                    CommandError::usage(format!(
                    "no manual task is waiting for media {m} (see `swf-runtime complete --list`)"
                ))
                })?;
                (p.token.clone(), Some(p))
            }
            (None, None) => {
                return Err(CommandError::usage(
                    "give --media-uuid U or --token-file F (or --list)",
                ))
            }
        };
    if let Some(result) = &args.result {
        serde_json::from_str::<Value>(result)
            .map_err(|e| CommandError::usage(format!("--result is not valid JSON: {e}")))?;
    }
    let res = match &args.fail {
        Some(reason) => crate::worker::fail_by_hand(client, &token, reason, None).await,
        None => crate::worker::complete_by_hand(client, &token, args.result.clone()).await,
    };
    match res {
        Ok(()) => {
            if let Some(p) = pending {
                if let Err(e) = store.mark_answered(&p) {
                    eprintln!("swf-runtime: answered, but {e}");
                }
            }
            println!(
                "task {} {}",
                crate::envelope::token_hash(&token),
                if args.fail.is_some() {
                    "failed"
                } else {
                    "completed"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // A task SWF no longer knows (timed out, already answered) will never be answerable:
            // take it off the waiting list so `complete --list` stays truthful.
            if let (crate::worker::ManualError::TaskGone(_), Some(p)) = (&e, &pending) {
                let _ = store.mark_answered(p);
            }
            Err(e.into())
        }
    }
}
