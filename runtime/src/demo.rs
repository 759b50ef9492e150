//! `swf-runtime demo`: the media pipeline end to end on one machine.
//!
//! Starts the embedded swf-local (state in the data folder), registers everything, hosts the
//! decider and workers in this process, starts N VideoProcessing executions, shows live per-stage
//! progress, then prints each execution's timeline, its critical path against the wall time, and
//! where the logs, metrics and history are. Exits 0 only if every execution completed.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::{self, Embed, Host, HostOptions};
use crate::cli::DemoArgs;
use crate::commands::{fetch_timeline, CommandError};
use crate::config::Config;
use crate::decider::Timeline;
use crate::swf::{TypeRef, WorkflowExecution};
use crate::telemetry::{self, HealthState};

/// Nominal critical path: stageA, the slower of B and C, stageD.
pub fn nominal_critical_path_secs(cfg: &Config) -> f64 {
    let p = &cfg.pipeline;
    (p.transcode_secs + p.thumbnails_secs.max(p.detect_faces_secs) + p.publish_secs) * p.time_scale
}

/// The measured critical path of a VideoProcessing timeline: the longest chain of stage durations
/// through the DAG (transcode, then the slower of thumbnails and detect_faces, then publish).
pub fn measured_critical_path(t: &Timeline) -> Option<(Vec<String>, f64)> {
    let d = |name: &str| {
        t.stages
            .iter()
            .find(|s| s.stage == name)
            .and_then(|s| s.duration_secs)
    };
    let a = d("transcode")?;
    let (mid_name, mid) = {
        let b = d("thumbnails")?;
        let c = d("detect_faces")?;
        if b >= c {
            ("thumbnails", b)
        } else {
            ("detect_faces", c)
        }
    };
    let last = d("publish")?;
    Some((
        vec!["transcode".into(), mid_name.into(), "publish".into()],
        a + mid + last,
    ))
}

struct Progress {
    bars: Option<(indicatif::MultiProgress, Vec<indicatif::ProgressBar>)>,
    last_line: Vec<String>,
}

impl Progress {
    fn new(n: usize, plain: bool, labels: &[String]) -> Progress {
        let bars = if !plain && std::io::stdout().is_terminal() {
            let mp = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:.bold} [{bar:24.cyan/blue}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = labels
                .iter()
                .map(|l| {
                    let pb = mp.add(indicatif::ProgressBar::new(4));
                    pb.set_style(style.clone());
                    pb.set_prefix(l.clone());
                    pb
                })
                .collect();
            Some((mp, bars))
        } else {
            None
        };
        Progress {
            bars,
            last_line: vec![String::new(); n],
        }
    }

    fn update(&mut self, i: usize, label: &str, t: &Timeline) {
        let done = t.stages.iter().filter(|s| s.outcome == "completed").count() as u64;
        let running: Vec<String> = t
            .stages
            .iter()
            .filter(|s| s.outcome == "open")
            .map(|s| {
                let attempt = s.attempts.len();
                if attempt > 1 {
                    format!("{} (attempt {attempt})", s.stage)
                } else {
                    s.stage.clone()
                }
            })
            .collect();
        let msg = match &t.close_event {
            Some(ev) => ev.trim_start_matches("WorkflowExecution").to_lowercase(),
            None if running.is_empty() => "waiting".into(),
            None => format!("running {}", running.join(" + ")),
        };
        match &mut self.bars {
            Some((_, bars)) => {
                bars[i].set_position(done);
                bars[i].set_message(msg.clone());
                if t.close_event.is_some() {
                    bars[i].finish();
                }
            }
            None => {
                let line = format!("{label}: {done}/4 stages done, {msg}");
                if self.last_line[i] != line {
                    println!("{line}");
                    self.last_line[i] = line;
                }
            }
        }
    }

    fn finish(self) {
        if let Some((mp, _)) = self.bars {
            let _ = mp.clear();
        }
    }
}

pub async fn demo(mut cfg: Config, args: DemoArgs) -> Result<ExitCode, CommandError> {
    if args.workflows == 0 {
        return Err(CommandError::usage_msg("--workflows must be at least 1"));
    }
    app::ensure_dir(&cfg.data_dir)?;
    let data_dir = std::fs::canonicalize(&cfg.data_dir).unwrap_or(cfg.data_dir.clone());
    cfg.data_dir = data_dir.clone();
    if cfg.pipeline.output_dir.is_relative() {
        cfg.pipeline.output_dir = data_dir.join(&cfg.pipeline.output_dir);
    }
    let faults: Option<serde_json::Value> = match &args.faults {
        Some(f) => Some(
            serde_json::from_str(f)
                .map_err(|e| CommandError::usage_msg(format!("--faults is not valid JSON: {e}")))?,
        ),
        None => None,
    };

    let mut tcfg = cfg.telemetry.clone();
    tcfg.log_stdout = false; // the terminal shows progress; the JSON lines go to the log files
    let log_dir = tcfg
        .log_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("logs"));
    tcfg.log_dir = Some(log_dir.clone());
    let guard = telemetry::init(&tcfg)?;
    let health = HealthState::default();
    let metrics = if tcfg.enabled {
        match telemetry::serve_metrics(tcfg.metrics_addr, health.clone(), false).await {
            Ok(m) => Some(m),
            // Another runtime may hold the default port; a demo still wants its metrics.
            Err(_) => Some(
                telemetry::serve_metrics(([127, 0, 0, 1], 0).into(), health.clone(), false).await?,
            ),
        }
    } else {
        None
    };

    println!("swf-runtime demo: data folder {}", data_dir.display());
    let backend = app::connect(&cfg, Embed::Start).await?;
    println!("SWF endpoint: {}", backend.endpoint);
    app::register_with_retry(
        backend.client.as_ref(),
        &cfg,
        Duration::from_secs(60),
        &backend.endpoint,
    )
    .await?;
    let slots = (args.workflows * 2).max(4);
    let mut opts = HostOptions::from_config(&cfg, slots);
    if cfg.task_lists.is_empty() {
        opts.task_lists = app::default_task_lists(&cfg, slots);
    }
    let client = app::health_tracking(backend.swf(), health.clone());
    let host = Host::start(&cfg, client.clone(), &opts, Some(health.clone()))?;

    let (workflows, _) = crate::pipeline::registrations(&cfg.pipeline);
    let video: TypeRef = workflows
        .into_iter()
        .map(|w| w.workflow_type)
        .find(|t| t.name == activities::VIDEO_PROCESSING)
        .ok_or_else(|| {
            CommandError::fail_msg("the pipeline defines no VideoProcessing workflow")
        })?;
    let user_uuid = args
        .user_uuid
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut executions = Vec::new();
    for i in 0..args.workflows {
        let media_uuid = match (&args.media_uuid, i) {
            (Some(m), 0) => m.clone(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let mut input = json!({
            "media_uuid": media_uuid,
            "user_uuid": user_uuid,
            "source": format!("demo://media/{media_uuid}.mp4"),
        });
        if let Some(f) = &faults {
            input["faults"] = f.clone();
        }
        let start = crate::pipeline::start_request(
            &cfg.pipeline,
            &video.name,
            &media_uuid,
            input.to_string(),
        )
        .ok_or_else(|| {
            CommandError::fail_msg("the pipeline defines no VideoProcessing workflow")
        })?;
        let run_id = client.start_workflow_execution(&start).await?;
        executions.push(WorkflowExecution {
            workflow_id: media_uuid,
            run_id,
        });
    }
    let nominal = nominal_critical_path_secs(&cfg);
    println!(
        "Started {} VideoProcessing execution(s); nominal critical path {:.3} s (time scale {}).",
        executions.len(),
        nominal,
        cfg.pipeline.time_scale
    );

    let labels: Vec<String> = executions
        .iter()
        .map(|e| e.workflow_id.chars().take(8).collect())
        .collect();
    let mut progress = Progress::new(executions.len(), args.plain, &labels);
    let mut timelines: BTreeMap<usize, Timeline> = BTreeMap::new();
    // Retries and backoff can stretch a run well past the critical path; beyond this something
    // is wrong and the demo says so instead of waiting forever.
    let patience = Duration::from_secs_f64(nominal * 10.0 + 120.0);
    let started = Instant::now();
    // Each refresh reads every open execution's history: keep that load well below the work
    // being shown, or the view slows down what it measures.
    let refresh = Duration::from_secs_f64(
        (nominal / 200.0)
            .max(0.01 * executions.len() as f64)
            .clamp(0.05, 1.0),
    );
    loop {
        // Display refresh of a person-facing progress view, not synchronisation. The first look
        // comes one refresh in: a sweep right away would read every history while the
        // executions' first decisions are still being made, slowing the start it shows.
        tokio::time::sleep(refresh).await;
        for (i, exec) in executions.iter().enumerate() {
            if timelines.get(&i).is_some_and(|t| t.close_event.is_some()) {
                continue;
            }
            if let Ok(t) = fetch_timeline(client.as_ref(), exec).await {
                progress.update(i, &labels[i], &t);
                timelines.insert(i, t);
            }
        }
        let closed = timelines
            .values()
            .filter(|t| t.close_event.is_some())
            .count();
        if closed == executions.len() || started.elapsed() > patience {
            break;
        }
    }
    progress.finish();
    health.set_polling(false);
    let _ = host.stop().await;

    let mut all_completed = true;
    for (i, exec) in executions.iter().enumerate() {
        let Some(t) = timelines.get(&i) else {
            all_completed = false;
            println!("\n{}: no history could be read", exec.workflow_id);
            continue;
        };
        let status = t.close_event.as_deref().unwrap_or("still open");
        if status != "WorkflowExecutionCompleted" {
            all_completed = false;
        }
        print_summary(t, nominal);
    }
    println!("\nWhere to look next:");
    println!(
        "  logs     {}  (swf-runtime logs --data-dir {} --media-uuid {})",
        log_dir.display(),
        data_dir.display(),
        executions[0].workflow_id
    );
    if let Some(m) = &metrics {
        println!(
            "  metrics  http://{}/metrics  (served while a runtime runs: `swf-runtime run`)",
            m.local_addr()
        );
    }
    println!(
        "  history  swf-runtime history --data-dir {} {}",
        data_dir.display(),
        executions[0].workflow_id
    );
    println!("  outputs  {}", cfg.pipeline.output_dir.display());
    backend.shutdown().await;
    guard.shutdown().await;
    drop(metrics);
    Ok(if all_completed {
        println!("\nAll {} execution(s) completed.", executions.len());
        ExitCode::SUCCESS
    } else {
        println!("\nSome executions did not complete.");
        ExitCode::FAILURE
    })
}

fn print_summary(t: &Timeline, nominal: f64) {
    let wall = t.closed_at.map(|c| c - t.started_at);
    println!(
        "\nExecution {} (run {}): {} {}",
        t.workflow_id,
        t.run_id,
        t.close_event
            .as_deref()
            .unwrap_or("still open")
            .trim_start_matches("WorkflowExecution"),
        wall.map(|w| format!("in {w:.3} s")).unwrap_or_default()
    );
    println!(
        "  {:<14} {:>10} {:>10} {:>10} {:>9}  outcome",
        "stage", "start", "end", "duration", "attempts"
    );
    for s in &t.stages {
        let start = s.first_scheduled_at - t.started_at;
        let end = s.closed_at.map(|c| format!("{:+.3}s", c - t.started_at));
        println!(
            "  {:<14} {:>10} {:>10} {:>10} {:>9}  {}",
            s.stage,
            format!("{start:+.3}s"),
            end.unwrap_or_else(|| "-".into()),
            s.duration_secs
                .map(|d| format!("{d:.3}s"))
                .unwrap_or_else(|| "-".into()),
            s.attempts.len(),
            s.outcome
        );
    }
    if let (Some((path, measured)), Some(wall)) = (measured_critical_path(t), wall) {
        println!(
            "  critical path {} = {:.3} s (nominal {:.3} s); wall {:.3} s; overhead {:.0} ms",
            path.join(" -> "),
            measured,
            nominal,
            wall,
            (wall - measured) * 1000.0
        );
    }
}
