//! `swf-runtime bench`: throughput and latency of the pipeline's shape on an endpoint.
//!
//! Registers a bench domain and a VideoProcessing-shaped workflow (four stages, B and C in
//! parallel) whose handlers only wait their configured milliseconds, hosts the decider and workers
//! in this process, keeps at most `--concurrency` executions open, and reads every latency from the
//! executions' own histories afterwards (so the figures are SWF's timestamps, the same for any
//! endpoint). With no endpoint it uses the embedded swf-local, in this process.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

use crate::app::{self, Embed};
use crate::cli::BenchArgs;
use crate::commands::{fetch_history, CommandError};
use crate::config::Config;
use crate::decider::{
    ActivityTimeouts, DagWorkflow, DecideError, DeciderPoller, RetryPolicy, Stage, Workflow,
    WorkflowHistory, WorkflowRegistry,
};
use crate::swf::model::EventAttributes;
use crate::swf::{
    ActivityTypeRegistration, Decision, StartWorkflow, SwfClient, SwfError, TypeRef,
    WorkflowExecution, WorkflowTypeRegistration,
};
use crate::worker::{ActivityOutcome, ActivityRegistry, ActivityWorker, FnHandler, WorkerConfig};

const BENCH_TASK_LIST: &str = "bench";
const BENCH_DECIDER_TASK_LIST: &str = "bench-decider";
const STAGES: [&str; 4] = ["stage_a", "stage_b", "stage_c", "stage_d"];

/// The figures `--json` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub executions: usize,
    pub completed: usize,
    pub wall_secs: f64,
    pub executions_per_second: f64,
    pub activity_tasks_per_second: f64,
    pub schedule_to_start_p50_ms: f64,
    pub schedule_to_start_p99_ms: f64,
    pub decision_latency_p50_ms: f64,
    pub decision_latency_p99_ms: f64,
    pub end_to_end_p50_ms: f64,
    pub end_to_end_p99_ms: f64,
    pub peak_rss_mb: f64,
    /// CPU time this process used during the measured window (user + system), per completed
    /// execution: what a change costs, independent of what else the machine is doing.
    pub cpu_ms_per_execution: f64,
    pub endpoint: String,
    pub telemetry: bool,
    /// `--telemetry compare` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<TelemetryCompare>,
    /// `--local-sinks` only: what the Logstash and OTLP stand-ins received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sinks: Option<crate::bench_sinks::SinkFigures>,
}

/// The same workload with telemetry on and off, in alternating slices of one run: slow and fast
/// phases of a shared machine fall on both sides alike.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TelemetryCompare {
    pub slices: usize,
    pub on_executions_per_second: f64,
    pub off_executions_per_second: f64,
    /// 1 - on/off throughput, in percent.
    pub cost_percent: f64,
    /// How far `cost_percent` can be trusted: the middle 95% of the cost over the run's adjacent
    /// (on, off) slice pairs resampled with replacement. A shared machine's speed moves a lot from
    /// slice to slice; when this range is wide, only a series of runs says anything.
    pub cost_interval_percent: [f64; 2],
    pub on_cpu_ms_per_execution: f64,
    pub off_cpu_ms_per_execution: f64,
    /// Each slice: telemetry on or off, executions, wall seconds, CPU seconds.
    pub slice_figures: Vec<SliceFigures>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SliceFigures {
    pub telemetry: bool,
    pub executions: usize,
    pub wall_secs: f64,
    pub cpu_secs: f64,
}

/// Which slices of a compare run have telemetry on: on, off, off, on, on, off, ... so that a
/// steady drift of the machine's speed weighs on both sides alike.
pub fn slice_is_on(slice: usize) -> bool {
    matches!(slice % 4, 0 | 3)
}

/// Executions per second and CPU milliseconds per execution of one side (on or off).
fn side<'a>(slices: impl Iterator<Item = &'a SliceFigures>, on: bool) -> (f64, f64) {
    let (mut n, mut wall, mut cpu) = (0usize, 0.0f64, 0.0f64);
    for s in slices.filter(|s| s.telemetry == on) {
        n += s.executions;
        wall += s.wall_secs;
        cpu += s.cpu_secs;
    }
    let eps = if wall > 0.0 { n as f64 / wall } else { 0.0 };
    (eps, cpu * 1000.0 / n.max(1) as f64)
}

fn cost_percent(on_eps: f64, off_eps: f64) -> f64 {
    if off_eps > 0.0 {
        (1.0 - on_eps / off_eps) * 100.0
    } else {
        0.0
    }
}

/// Resamples drawn for [`TelemetryCompare::cost_interval_percent`].
const RESAMPLES: usize = 2000;

/// The middle 95% of the cost over `RESAMPLES` resamplings (with replacement) of the adjacent
/// slice pairs, which hold one slice of each side (see [`slice_is_on`]). Written here because it
/// is a dozen lines over figures we already hold; the seed is fixed so a run's report can be
/// recomputed from its slices.
fn cost_interval(slices: &[SliceFigures]) -> [f64; 2] {
    use rand::{Rng, SeedableRng};
    let pairs: Vec<&[SliceFigures]> = slices.chunks_exact(2).collect();
    if pairs.is_empty() {
        return [0.0, 0.0];
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut costs: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let drawn: Vec<&SliceFigures> = (0..pairs.len())
                .flat_map(|_| pairs[rng.random_range(0..pairs.len())])
                .collect();
            let (on, _) = side(drawn.iter().copied(), true);
            let (off, _) = side(drawn.iter().copied(), false);
            cost_percent(on, off)
        })
        .collect();
    costs.sort_by(f64::total_cmp);
    [percentile(&costs, 2.5), percentile(&costs, 97.5)]
}

/// Sums slices into the compare figures.
pub fn summarize(slices: &[SliceFigures]) -> TelemetryCompare {
    let (on_eps, on_cpu) = side(slices.iter(), true);
    let (off_eps, off_cpu) = side(slices.iter(), false);
    TelemetryCompare {
        slices: slices.len(),
        on_executions_per_second: on_eps,
        off_executions_per_second: off_eps,
        cost_percent: cost_percent(on_eps, off_eps),
        cost_interval_percent: cost_interval(slices),
        on_cpu_ms_per_execution: on_cpu,
        off_cpu_ms_per_execution: off_cpu,
        slice_figures: slices.to_vec(),
    }
}

/// Wraps the bench workflow to learn, without polling, when an execution's decider closes it.
struct Closing {
    inner: DagWorkflow,
    closed: Arc<Mutex<HashMap<String, bool>>>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
}

impl Workflow for Closing {
    fn workflow_type(&self) -> &TypeRef {
        self.inner.workflow_type()
    }
    fn decide(&self, history: &WorkflowHistory) -> Result<Vec<Decision>, DecideError> {
        let decisions = self.inner.decide(history)?;
        if decisions.iter().any(|d| {
            matches!(
                d,
                Decision::CompleteWorkflowExecution(_) | Decision::FailWorkflowExecution(_)
            )
        }) {
            let mut closed = self.closed.lock().expect("bench bookkeeping lock");
            let first = closed
                .insert(history.execution.workflow_id.clone(), true)
                .is_none();
            drop(closed);
            if first {
                self.permits.add_permits(1);
                self.wake.notify_one();
            }
        }
        Ok(decisions)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Peak resident memory of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds (user + system) this process has used, from /proc; clock ticks are 1/100 s.
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / 100.0
}

fn parse_stages(s: &str) -> Result<[u64; 4], CommandError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 4 {
        return Err(CommandError::usage_msg(format!(
            "--stages-ms needs four numbers A,B,C,D, got {s:?}"
        )));
    }
    let mut out = [0u64; 4];
    for (i, p) in parts.iter().enumerate() {
        out[i] = p.parse().map_err(|_| {
            CommandError::usage_msg(format!("--stages-ms: {p:?} is not a whole number of ms"))
        })?;
    }
    Ok(out)
}

fn bench_workflow(version: &str) -> Result<DagWorkflow, CommandError> {
    let t = |name: &str| TypeRef {
        name: format!("bench_{name}"),
        version: version.into(),
    };
    let timeouts = ActivityTimeouts {
        schedule_to_start_secs: Some(300),
        schedule_to_close_secs: Some(600),
        start_to_close_secs: Some(300),
        heartbeat_secs: None,
    };
    let retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let stage = |name: &str| {
        Stage::activity(name, t(name), BENCH_TASK_LIST, timeouts)
            .retry(retry.clone())
            .input(|_, _| Ok(Value::Null))
    };
    DagWorkflow::builder(TypeRef {
        name: "BenchVideoProcessing".into(),
        version: version.into(),
    })
    .stage(stage("stage_a"))
    .stage(stage("stage_b").after(["stage_a"]))
    .stage(stage("stage_c").after(["stage_a"]))
    .stage(stage("stage_d").after(["stage_b", "stage_c"]))
    .build()
    .map_err(|e| CommandError::fail_msg(format!("bench workflow: {e}")))
}

async fn register_bench(client: &dyn SwfClient, version: &str) -> Result<(), SwfError> {
    let ok = |r: Result<(), SwfError>| match r {
        Ok(()) | Err(SwfError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    };
    ok(client
        .register_domain(1, Some("swf-runtime bench".into()))
        .await)?;
    ok(client
        .register_workflow_type(&WorkflowTypeRegistration {
            workflow_type: TypeRef {
                name: "BenchVideoProcessing".into(),
                version: version.into(),
            },
            description: None,
            default_task_list: BENCH_DECIDER_TASK_LIST.into(),
            default_execution_start_to_close_timeout_secs: 3600,
            default_task_start_to_close_timeout_secs: 60,
            default_child_policy: "TERMINATE".into(),
        })
        .await)?;
    for s in STAGES {
        ok(client
            .register_activity_type(&ActivityTypeRegistration {
                activity_type: TypeRef {
                    name: format!("bench_{s}"),
                    version: version.into(),
                },
                description: None,
                default_task_list: BENCH_TASK_LIST.into(),
                default_schedule_to_start_timeout_secs: Some(300),
                default_schedule_to_close_timeout_secs: Some(600),
                default_start_to_close_timeout_secs: Some(300),
                default_heartbeat_timeout_secs: None,
            })
            .await)?;
    }
    Ok(())
}

/// Latencies (ms) read from one history: schedule-to-start of every activity, every decision
/// task's start-to-completion, and the execution's start-to-close.
fn latencies(events: &[crate::swf::HistoryEvent]) -> (Vec<f64>, Vec<f64>, Option<f64>) {
    let mut scheduled: HashMap<i64, f64> = HashMap::new();
    let mut decision_started: HashMap<i64, f64> = HashMap::new();
    let mut s2s = Vec::new();
    let mut decisions = Vec::new();
    let mut e2e = None;
    let start = events.first().map(|e| e.event_timestamp).unwrap_or(0.0);
    for e in events {
        match &e.attributes {
            EventAttributes::ActivityTaskScheduled(_) => {
                scheduled.insert(e.event_id, e.event_timestamp);
            }
            EventAttributes::ActivityTaskStarted(a) => {
                if let Some(s) = scheduled.get(&a.scheduled_event_id) {
                    s2s.push((e.event_timestamp - s) * 1000.0);
                }
            }
            EventAttributes::DecisionTaskStarted(_) => {
                decision_started.insert(e.event_id, e.event_timestamp);
            }
            EventAttributes::DecisionTaskCompleted(d) => {
                if let Some(s) = decision_started.get(&d.started_event_id) {
                    decisions.push((e.event_timestamp - s) * 1000.0);
                }
            }
            EventAttributes::WorkflowExecutionCompleted(_) => {
                e2e = Some((e.event_timestamp - start) * 1000.0);
            }
            _ => {}
        }
    }
    (s2s, decisions, e2e)
}

/// Starts executions, at most `concurrency` open at a time, and waits for them to close.
struct Batch {
    client: Arc<dyn SwfClient>,
    permits: Arc<Semaphore>,
    closed: Arc<Mutex<HashMap<String, bool>>>,
    wake: Arc<Notify>,
    version: String,
    user: String,
    concurrency: usize,
}

impl Batch {
    /// Runs `total` executions to their close (or gives up after 600 s) and returns them.
    async fn run(&self, total: usize) -> Result<Vec<WorkflowExecution>, CommandError> {
        let closed_before = self.closed.lock().expect("bench bookkeeping lock").len();
        // Several starters: one StartWorkflowExecution round trip at a time would cap the bench
        // at one start per request latency, measuring the starter instead of the runtime.
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut starters = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency.clamp(1, 16) {
            let (client, permits, next, version, user) = (
                self.client.clone(),
                self.permits.clone(),
                next.clone(),
                self.version.clone(),
                self.user.clone(),
            );
            starters.spawn(async move {
                let mut mine = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                    let permit = permits.acquire().await.map_err(|e| e.to_string())?;
                    permit.forget(); // returned by the decider wrapper when the execution closes
                    let media = uuid::Uuid::new_v4().to_string();
                    let run_id = client
                        .start_workflow_execution(&StartWorkflow {
                            workflow_id: media.clone(),
                            workflow_type: Some(TypeRef {
                                name: "BenchVideoProcessing".into(),
                                version: version.clone(),
                            }),
                            input: Some(
                                json!({"media_uuid": media, "user_uuid": user}).to_string(),
                            ),
                            ..StartWorkflow::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    mine.push(WorkflowExecution {
                        workflow_id: media,
                        run_id,
                    });
                }
                Ok::<_, String>(mine)
            });
        }
        let mut executions = Vec::with_capacity(total);
        while let Some(res) = starters.join_next().await {
            let mine = res
                .map_err(|e| CommandError::fail_msg(e.to_string()))?
                .map_err(CommandError::fail_msg)?;
            executions.extend(mine);
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let done = self.closed.lock().expect("bench bookkeeping lock").len() - closed_before;
            if done >= executions.len() || Instant::now() > deadline {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
        Ok(executions)
    }
}

pub async fn bench(mut cfg: Config, args: BenchArgs) -> Result<ExitCode, CommandError> {
    let stages_ms = parse_stages(&args.stages_ms)?;
    let (telemetry_on, compare) = match args.telemetry.as_str() {
        "on" => (true, false),
        "off" => (false, false),
        "compare" => (true, true),
        other => {
            return Err(CommandError::usage_msg(format!(
                "--telemetry is {other:?}; use on, off or compare"
            )))
        }
    };
    if compare
        && (args.slices < 2 || !args.slices.is_multiple_of(2) || args.slices > args.workflows)
    {
        return Err(CommandError::usage_msg(format!(
            "--slices is {}; --telemetry compare needs an even number of slices, at least 2 and at most --workflows ({})",
            args.slices, args.workflows
        )));
    }
    if args.workflows == 0 || args.concurrency == 0 || args.slots == 0 {
        return Err(CommandError::usage_msg(
            "--workflows, --concurrency and --slots must be at least 1",
        ));
    }
    if cfg.domain == Config::default().domain {
        cfg.domain = "swf-runtime-bench".into();
    }
    let tmp = std::env::temp_dir().join(format!("swf-runtime-bench-{}", std::process::id()));
    let owns_data_dir = cfg.endpoint_url.is_none() && cfg.data_dir == Config::default().data_dir;
    if owns_data_dir {
        cfg.data_dir = tmp.clone();
    }
    app::ensure_dir(&cfg.data_dir)?;
    let mut tcfg = cfg.telemetry.clone();
    tcfg.enabled = telemetry_on;
    tcfg.log_stdout = false;
    let sinks = if args.local_sinks {
        let sinks = crate::bench_sinks::LocalSinks::start().await?;
        tcfg.logstash_addr = Some(sinks.logstash_addr.to_string());
        tcfg.otlp_endpoint = Some(sinks.otlp_endpoint.clone());
        tcfg.otlp_protocol = crate::telemetry::OtlpProtocol::Http;
        Some(sinks)
    } else {
        None
    };
    if tcfg.log_dir.is_none() {
        tcfg.log_dir = Some(cfg.data_dir.join("logs"));
    }
    let guard = crate::telemetry::init(&tcfg)?;
    let _metrics = if telemetry_on {
        Some(
            crate::telemetry::serve_metrics(
                ([127, 0, 0, 1], 0).into(),
                crate::telemetry::HealthState::default(),
                false,
            )
            .await?,
        )
    } else {
        None
    };
    let backend = app::connect(&cfg, Embed::Start).await?;
    let client = backend.swf();
    // A fresh version per run keeps runs on a shared endpoint (moto, Amazon SWF) apart.
    let version = format!("b{}", uuid::Uuid::new_v4().simple());
    register_bench(client.as_ref(), &version).await?;

    let closed = Arc::new(Mutex::new(HashMap::new()));
    let wake = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let workflow = Closing {
        inner: bench_workflow(&version)?,
        closed: closed.clone(),
        wake: wake.clone(),
        permits: permits.clone(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let decider = DeciderPoller::new(
        client.clone(),
        BENCH_DECIDER_TASK_LIST,
        "bench-decider",
        WorkflowRegistry::new().with(Arc::new(workflow)),
    )
    .with_pollers(args.slots.clamp(1, 32));
    {
        let token = shutdown.clone();
        tasks.spawn(async move { decider.run(token).await });
    }
    let mut registry = ActivityRegistry::new();
    for (i, s) in STAGES.iter().enumerate() {
        let ms = stages_ms[i];
        registry.register(
            format!("bench_{s}"),
            FnHandler(move |_ctx, _input| async move {
                if ms > 0 {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Ok(ActivityOutcome::Completed(json!({ "ok": true })))
            }),
        );
    }
    let mut wc = WorkerConfig::new(BENCH_TASK_LIST);
    wc.slots = args.slots;
    // Enough parked polls to absorb a burst of scheduled tasks (each is then handed over in the
    // request that schedules it); with 16, bursts queued and schedule-to-start p99 was 26-66 ms.
    wc.pollers = args.slots.clamp(1, 32);
    wc.identity = "bench-worker".into();
    let worker = ActivityWorker::new(client.clone(), registry, wc)
        .map_err(|e| CommandError::fail_msg(e.to_string()))?;
    {
        let token = shutdown.clone();
        tasks.spawn(async move {
            let _ = worker.run(token).await;
        });
    }

    let user = uuid::Uuid::new_v4().to_string();
    let run = Batch {
        client: client.clone(),
        permits: permits.clone(),
        closed: closed.clone(),
        wake: wake.clone(),
        version: version.clone(),
        user,
        concurrency: args.concurrency,
    };
    let mut executions = Vec::with_capacity(args.workflows);
    let mut slices = Vec::new();
    // `--slices` is only checked for `compare`; any other run must not divide by it.
    let per_slice = args.workflows / args.slices.max(1);
    if compare {
        // Unmeasured warm-up, one slice each way: the first slice otherwise also pays for
        // everything a process does once (connections, the store's caches, per-thread buffers
        // and metric handles), and it always has telemetry on, so it was consistently the slowest
        // of its run and weighed on the "on" side only.
        for on in [true, false] {
            crate::telemetry::set_enabled(on);
            run.run(per_slice).await?;
        }
    }
    let started = Instant::now();
    let cpu_before = cpu_secs();
    if compare {
        for slice in 0..args.slices {
            let on = slice_is_on(slice);
            crate::telemetry::set_enabled(on);
            // The last slice takes the remainder.
            let n = if slice + 1 == args.slices {
                args.workflows - per_slice * (args.slices - 1)
            } else {
                per_slice
            };
            let (t0, c0) = (Instant::now(), cpu_secs());
            executions.extend(run.run(n).await?);
            slices.push(SliceFigures {
                telemetry: on,
                executions: n,
                wall_secs: t0.elapsed().as_secs_f64(),
                cpu_secs: cpu_secs() - c0,
            });
        }
        crate::telemetry::set_enabled(true);
    } else {
        executions = run.run(args.workflows).await?;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    let peak = peak_rss_mb();
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}

    let mut s2s = Vec::new();
    let mut dec = Vec::new();
    let mut e2e = Vec::new();
    let mut completed = 0;
    for exec in &executions {
        let events = fetch_history(client.as_ref(), exec).await?;
        let (a, b, c) = latencies(&events);
        s2s.extend(a);
        dec.extend(b);
        if let Some(c) = c {
            completed += 1;
            e2e.push(c);
        }
    }
    for v in [&mut s2s, &mut dec, &mut e2e] {
        v.sort_by(f64::total_cmp);
    }
    let mut report = BenchReport {
        executions: executions.len(),
        completed,
        wall_secs: wall,
        executions_per_second: completed as f64 / wall,
        activity_tasks_per_second: (completed * 4) as f64 / wall,
        schedule_to_start_p50_ms: percentile(&s2s, 50.0),
        schedule_to_start_p99_ms: percentile(&s2s, 99.0),
        decision_latency_p50_ms: percentile(&dec, 50.0),
        decision_latency_p99_ms: percentile(&dec, 99.0),
        end_to_end_p50_ms: percentile(&e2e, 50.0),
        end_to_end_p99_ms: percentile(&e2e, 99.0),
        peak_rss_mb: peak,
        cpu_ms_per_execution: cpu * 1000.0 / completed.max(1) as f64,
        endpoint: backend.endpoint.clone(),
        telemetry: telemetry_on,
        compare: compare.then(|| summarize(&slices)),
        sinks: None,
    };
    backend.shutdown().await;
    guard.shutdown().await;
    // After the guard: every line and span is flushed and the shipper's connection closed.
    if let Some(sinks) = sinks {
        report.sinks = Some(sinks.stop().await);
    }
    if owns_data_dir {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("endpoint                 {}", report.endpoint);
        println!(
            "executions               {} ({} completed) in {:.2} s",
            report.executions, report.completed, report.wall_secs
        );
        println!(
            "executions/s             {:.1}",
            report.executions_per_second
        );
        println!(
            "activity tasks/s         {:.1}",
            report.activity_tasks_per_second
        );
        println!(
            "schedule-to-start        p50 {:.2} ms, p99 {:.2} ms",
            report.schedule_to_start_p50_ms, report.schedule_to_start_p99_ms
        );
        println!(
            "decision latency         p50 {:.2} ms, p99 {:.2} ms",
            report.decision_latency_p50_ms, report.decision_latency_p99_ms
        );
        println!(
            "end-to-end               p50 {:.2} ms, p99 {:.2} ms",
            report.end_to_end_p50_ms, report.end_to_end_p99_ms
        );
        println!("peak RSS                 {:.1} MB", report.peak_rss_mb);
        println!(
            "CPU per execution        {:.2} ms (this process: runtime and embedded endpoint)",
            report.cpu_ms_per_execution
        );
        match &report.compare {
            Some(c) => {
                println!(
                    "telemetry                compared in {} alternating slices: on {:.1} executions/s ({:.2} ms CPU each), off {:.1} ({:.2} ms): cost {:.1}% (95% of resampled slice pairs: {:.1}% to {:.1}%)",
                    c.slices,
                    c.on_executions_per_second,
                    c.on_cpu_ms_per_execution,
                    c.off_executions_per_second,
                    c.off_cpu_ms_per_execution,
                    c.cost_percent,
                    c.cost_interval_percent[0],
                    c.cost_interval_percent[1]
                );
            }
            None => println!(
                "telemetry                {}",
                if telemetry_on { "on" } else { "off" }
            ),
        }
        if let Some(k) = &report.sinks {
            println!(
                "local sinks              Logstash stand-in {} lines ({:.1} MB), OTLP receiver {} requests ({:.1} MB)",
                k.logstash_lines,
                k.logstash_bytes as f64 / 1e6,
                k.otlp_requests,
                k.otlp_bytes as f64 / 1e6
            );
        }
    }
    Ok(if completed == executions.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_slices_alternate_so_a_drift_weighs_on_both_sides() {
        let on: Vec<bool> = (0..8).map(slice_is_on).collect();
        assert_eq!(on, [true, false, false, true, true, false, false, true]);
        // Under a steady slowdown (slice i takes 1 + i/10 s), both sides sum to the same time.
        let wall = |on: bool| -> f64 {
            (0..8)
                .filter(|i| slice_is_on(*i) == on)
                .map(|i| 1.0 + i as f64 / 10.0)
                .sum()
        };
        assert!((wall(true) - wall(false)).abs() < 1e-9);
    }

    #[test]
    fn summarize_sums_each_side_and_reports_the_cost() {
        let slice = |telemetry, executions, wall_secs, cpu_secs| SliceFigures {
            telemetry,
            executions,
            wall_secs,
            cpu_secs,
        };
        let c = summarize(&[
            slice(true, 100, 1.0, 0.30),
            slice(false, 100, 0.9, 0.27),
            slice(false, 100, 0.9, 0.27),
            slice(true, 100, 1.0, 0.30),
        ]);
        assert!((c.on_executions_per_second - 100.0).abs() < 1e-9);
        assert!((c.off_executions_per_second - 200.0 / 1.8).abs() < 1e-9);
        assert!((c.cost_percent - 10.0).abs() < 1e-9);
        assert!((c.on_cpu_ms_per_execution - 3.0).abs() < 1e-9);
        assert!((c.off_cpu_ms_per_execution - 2.7).abs() < 1e-9);
        assert_eq!(c.slices, 4);
        // Both pairs cost the same 10%, so every resample does too.
        assert!((c.cost_interval_percent[0] - 10.0).abs() < 1e-9);
        assert!((c.cost_interval_percent[1] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_cost_interval_widens_with_the_pairs_scatter_and_is_reproducible() {
        // Pairs costing 0%, 20%, 0%, 20%, ...: the whole run costs 10%, one pair says 0% or 20%.
        let slices: Vec<SliceFigures> = (0..32)
            .map(|i| {
                let on = slice_is_on(i);
                let pair_costs = (i / 2) % 2 == 1;
                SliceFigures {
                    telemetry: on,
                    executions: 100,
                    wall_secs: if on && pair_costs { 1.25 } else { 1.0 },
                    cpu_secs: 0.3,
                }
            })
            .collect();
        let c = summarize(&slices);
        let [lo, hi] = c.cost_interval_percent;
        assert!(
            lo < c.cost_percent && c.cost_percent < hi,
            "{lo} {} {hi}",
            c.cost_percent
        );
        assert!(
            lo > 0.0 && hi < 20.0,
            "no resample is all of one kind: {lo} {hi}"
        );
        assert!(
            hi - lo > 3.0,
            "16 pairs of 0% or 20% leave several points either way: {lo} {hi}"
        );
        assert_eq!(summarize(&slices).cost_interval_percent, [lo, hi]);
        // The same scatter over 4 times as many pairs halves the range, about.
        let more: Vec<SliceFigures> = (0..4).flat_map(|_| slices.clone()).collect();
        let [lo4, hi4] = summarize(&more).cost_interval_percent;
        assert!(hi4 - lo4 < 0.7 * (hi - lo), "{lo4} {hi4} vs {lo} {hi}");
    }
}
