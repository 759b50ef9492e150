//! The per-stage timeline of an execution, computed from its history alone.
//!
//! `swf-runtime history` prints it and the demo shows it; the decider poller uses it to time
//! stages for the stage-duration metric. Stages are recognised by the control the DAG decider
//! records with each attempt (`{"stage": .., "attempt": ..}`); activities scheduled by other
//! deciders fall back to their activity id (`<stage>-<attempt>`), so any history renders.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::dag::stage_of;
use super::history::{AttemptOutcome, HistoryError, RecordedTimeouts, WorkflowHistory};
use crate::swf::model::{EventAttributes, HistoryEvent};
use crate::swf::{TypeRef, WorkflowExecution};

/// One attempt of a stage: an activity task or a child workflow execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptTimeline {
    pub attempt: u32,
    /// The activity id, or the child's workflow id.
    pub id: String,
    /// Epoch seconds.
    pub scheduled_at: f64,
    pub started_at: Option<f64>,
    pub closed_at: Option<f64>,
    pub closed_event_id: Option<i64>,
    /// completed, failed, timed_out, canceled, terminated or open.
    pub outcome: String,
    /// The failure, timeout or cancellation, in words.
    pub detail: Option<String>,
    /// SWF's timeout type when the attempt timed out.
    pub timeout_type: Option<String>,
    pub timeouts: RecordedTimeouts,
    /// The worker identity that started it.
    pub worker: Option<String>,
}

impl AttemptTimeline {
    /// Seconds between scheduling and start.
    pub fn wait_secs(&self) -> Option<f64> {
        self.started_at.map(|s| s - self.scheduled_at)
    }

    /// Seconds between start and close.
    pub fn run_secs(&self) -> Option<f64> {
        Some(self.closed_at? - self.started_at?)
    }
}

/// One stage with all its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTimeline {
    pub stage: String,
    /// `activity` or `child_workflow`.
    pub kind: &'static str,
    /// The activity type, or the child's workflow type.
    pub type_ref: TypeRef,
    pub task_list: Option<String>,
    pub attempts: Vec<AttemptTimeline>,
    pub first_scheduled_at: f64,
    /// The close of the last attempt, once it closed.
    pub closed_at: Option<f64>,
    /// From the first scheduling to the last close, retries and backoff included.
    pub duration_secs: Option<f64>,
    /// The outcome of the last attempt.
    pub outcome: String,
    pub timeouts: usize,
    pub failures: usize,
}

/// A timestamped occurrence that belongs to no stage (signals, cancel requests, decision
/// failures, the close).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub at: f64,
    pub event_id: i64,
    pub text: String,
}

/// The timeline of one execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: TypeRef,
    pub started_at: f64,
    pub closed_at: Option<f64>,
    /// The close event type (WorkflowExecutionCompleted, ...), once closed.
    pub close_event: Option<String>,
    pub stages: Vec<StageTimeline>,
    pub notes: Vec<Note>,
    pub event_count: usize,
}

fn control_stage(control: Option<&str>) -> Option<(String, u32)> {
    let v: serde_json::Value = serde_json::from_str(control?).ok()?;
    let stage = v.get("stage")?.as_str()?.to_string();
    let attempt = u32::try_from(v.get("attempt")?.as_u64()?).ok()?;
    Some((stage, attempt))
}

fn attempt_of(id: &str) -> Option<u32> {
    id.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

fn outcome_parts(outcome: &AttemptOutcome) -> (String, Option<String>, Option<String>) {
    let detail = match outcome {
        AttemptOutcome::Open | AttemptOutcome::Completed { .. } => None,
        other => Some(other.describe()),
    };
    let timeout_type = match outcome {
        AttemptOutcome::TimedOut { timeout_type, .. } => Some(timeout_type.clone()),
        _ => None,
    };
    (outcome.label().to_string(), detail, timeout_type)
}

/// The per-stage timeline of an indexed history.
pub fn timeline(history: &WorkflowHistory) -> Timeline {
    let mut stages: Vec<StageTimeline> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut add = |stage: String,
                   kind: &'static str,
                   type_ref: &TypeRef,
                   task_list: Option<String>,
                   attempt: AttemptTimeline| {
        let i = *by_name.entry(stage.clone()).or_insert_with(|| {
            stages.push(StageTimeline {
                stage,
                kind,
                type_ref: type_ref.clone(),
                task_list,
                attempts: Vec::new(),
                first_scheduled_at: attempt.scheduled_at,
                closed_at: None,
                duration_secs: None,
                outcome: String::new(),
                timeouts: 0,
                failures: 0,
            });
            stages.len() - 1
        });
        stages[i].attempts.push(attempt);
    };
    for a in history.activities() {
        let (stage, attempt) = control_stage(a.control.as_deref()).unwrap_or_else(|| {
            (
                stage_of(&a.activity_id).to_string(),
                attempt_of(&a.activity_id).unwrap_or(1),
            )
        });
        let (outcome, detail, timeout_type) = outcome_parts(&a.outcome);
        add(
            stage,
            "activity",
            &a.activity_type,
            a.task_list.as_ref().map(|t| t.name.clone()),
            AttemptTimeline {
                attempt,
                id: a.activity_id.clone(),
                scheduled_at: a.scheduled_at,
                started_at: a.started_at,
                closed_at: a.closed_at,
                closed_event_id: a.closed_event_id,
                outcome,
                detail,
                timeout_type,
                timeouts: a.timeouts.clone(),
                worker: a.identity.clone(),
            },
        );
    }
    for c in history.children() {
        let (stage, attempt) = control_stage(c.control.as_deref()).unwrap_or_else(|| {
            (
                c.workflow_type.name.clone(),
                attempt_of(&c.workflow_id).unwrap_or(1),
            )
        });
        let (outcome, detail, timeout_type) = outcome_parts(&c.outcome);
        add(
            stage,
            "child_workflow",
            &c.workflow_type,
            None,
            AttemptTimeline {
                attempt,
                id: c.workflow_id.clone(),
                scheduled_at: c.initiated_at,
                started_at: c.started_at,
                closed_at: c.closed_at,
                closed_event_id: c.closed_event_id,
                outcome,
                detail,
                timeout_type,
                timeouts: RecordedTimeouts::default(),
                worker: c.run_id.clone(),
            },
        );
    }
    for s in &mut stages {
        let last = s
            .attempts
            .last()
            .expect("a stage exists because of an attempt");
        s.outcome = last.outcome.clone();
        s.closed_at = last.closed_at;
        s.duration_secs = last.closed_at.map(|c| c - s.first_scheduled_at);
        s.timeouts = s
            .attempts
            .iter()
            .filter(|a| a.outcome == "timed_out")
            .count();
        s.failures = s
            .attempts
            .iter()
            .filter(|a| {
                matches!(
                    a.outcome.as_str(),
                    "failed" | "timed_out" | "canceled" | "terminated"
                )
            })
            .count();
    }

    let mut notes: Vec<Note> = Vec::new();
    for sig in history.signals() {
        notes.push(Note {
            at: sig.at,
            event_id: sig.event_id,
            text: format!("signal {} {}", sig.name, sig.input.as_deref().unwrap_or(""))
                .trim_end()
                .to_string(),
        });
    }
    let at = |id: i64| -> f64 { event_at(history.events(), id).unwrap_or(history.started_at) };
    for f in history.decision_failures() {
        notes.push(Note {
            at: at(f.event_id),
            event_id: f.event_id,
            text: format!("{} {} {}", f.event_type, f.target, f.cause).replace("  ", " "),
        });
    }
    let close = history
        .events()
        .iter()
        .rev()
        .find(|e| is_close(&e.attributes));
    for e in history.events() {
        if let EventAttributes::WorkflowExecutionCancelRequested(_) = e.attributes {
            notes.push(Note {
                at: e.event_timestamp,
                event_id: e.event_id,
                text: "cancel requested".into(),
            });
        }
    }
    if let Some(e) = close {
        notes.push(Note {
            at: e.event_timestamp,
            event_id: e.event_id,
            text: close_text(&e.attributes),
        });
    }
    notes.sort_by_key(|n| n.event_id);
    Timeline {
        workflow_id: history.execution.workflow_id.clone(),
        run_id: history.execution.run_id.clone(),
        workflow_type: history.workflow_type.clone(),
        started_at: history.started_at,
        closed_at: close.map(|e| e.event_timestamp),
        close_event: close.map(|e| e.event_type().to_string()),
        stages,
        notes,
        event_count: history.event_count(),
    }
}

/// The timeline of a history given as events (e.g. from GetWorkflowExecutionHistory).
pub fn timeline_from_events(
    execution: WorkflowExecution,
    events: Vec<HistoryEvent>,
) -> Result<Timeline, HistoryError> {
    Ok(timeline(&WorkflowHistory::new(execution, events)?))
}

fn event_at(events: &[HistoryEvent], id: i64) -> Option<f64> {
    // Event ids are 1-based and dense in SWF's histories; fall back to a search otherwise.
    let guess = usize::try_from(id - 1).ok().and_then(|i| events.get(i));
    match guess {
        Some(e) if e.event_id == id => Some(e.event_timestamp),
        _ => events
            .iter()
            .find(|e| e.event_id == id)
            .map(|e| e.event_timestamp),
    }
}

fn is_close(a: &EventAttributes) -> bool {
    matches!(
        a,
        EventAttributes::WorkflowExecutionCompleted(_)
            | EventAttributes::WorkflowExecutionFailed(_)
            | EventAttributes::WorkflowExecutionCanceled(_)
            | EventAttributes::WorkflowExecutionTerminated(_)
            | EventAttributes::WorkflowExecutionTimedOut(_)
            | EventAttributes::WorkflowExecutionContinuedAsNew(_)
    )
}

fn close_text(a: &EventAttributes) -> String {
    match a {
        EventAttributes::WorkflowExecutionCompleted(_) => "workflow completed".into(),
        EventAttributes::WorkflowExecutionFailed(f) => format!(
            "workflow failed: {}",
            f.reason.as_deref().unwrap_or("no reason given")
        ),
        EventAttributes::WorkflowExecutionCanceled(_) => "workflow canceled".into(),
        EventAttributes::WorkflowExecutionTerminated(t) => format!(
            "workflow terminated: {}",
            t.reason.as_deref().unwrap_or("no reason given")
        ),
        EventAttributes::WorkflowExecutionTimedOut(t) => {
            format!("workflow timed out ({})", t.timeout_type)
        }
        EventAttributes::WorkflowExecutionContinuedAsNew(c) => {
            format!("continued as new run {}", c.new_execution_run_id)
        }
        other => other.event_type().to_string(),
    }
}

fn rel(at: Option<f64>, start: f64) -> String {
    at.map_or_else(|| "-".to_string(), |t| format!("+{:.3}s", t - start))
}

fn secs(d: Option<f64>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{d:.3}s"))
}

/// Epoch seconds as an RFC 3339 UTC time.
pub fn format_epoch(at: f64) -> String {
    let nanos = (at * 1e9).round() as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{at:.3}"))
}

impl Timeline {
    /// The timeline as text: one block per stage, one line per attempt, times relative to the
    /// execution's start.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let start = self.started_at;
        let _ = writeln!(
            out,
            "workflow {} run {} ({} {}), {} events",
            self.workflow_id,
            self.run_id,
            self.workflow_type.name,
            self.workflow_type.version,
            self.event_count
        );
        let _ = writeln!(out, "started  {}", format_epoch(start));
        match (self.closed_at, &self.close_event) {
            (Some(c), Some(ev)) => {
                let _ = writeln!(
                    out,
                    "closed   {} ({ev}) after {:.3}s",
                    format_epoch(c),
                    c - start
                );
            }
            _ => {
                let _ = writeln!(out, "closed   - (still open)");
            }
        }
        for s in &self.stages {
            let _ = writeln!(
                out,
                "\nstage {} [{} {} {}] task list {}: {} after {} attempt(s), {} timeout(s), {} failure(s), total {}",
                s.stage,
                s.kind,
                s.type_ref.name,
                s.type_ref.version,
                s.task_list.as_deref().unwrap_or("-"),
                s.outcome,
                s.attempts.len(),
                s.timeouts,
                s.failures,
                secs(s.duration_secs)
            );
            for a in &s.attempts {
                let _ = write!(
                    out,
                    "  #{} {}: scheduled {} started {} closed {} (waited {}, ran {}) {}",
                    a.attempt,
                    a.id,
                    rel(Some(a.scheduled_at), start),
                    rel(a.started_at, start),
                    rel(a.closed_at, start),
                    secs(a.wait_secs()),
                    secs(a.run_secs()),
                    a.outcome
                );
                if let Some(d) = &a.detail {
                    let _ = write!(out, ": {d}");
                }
                let t = &a.timeouts;
                if s.kind == "activity" {
                    let _ = write!(
                        out,
                        " [timeouts s2s={} s2c={} st2c={} hb={}]",
                        t.schedule_to_start.as_deref().unwrap_or("-"),
                        t.schedule_to_close.as_deref().unwrap_or("-"),
                        t.start_to_close.as_deref().unwrap_or("-"),
                        t.heartbeat.as_deref().unwrap_or("-")
                    );
                }
                out.push('\n');
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(
                    out,
                    "{} event {}: {}",
                    rel(Some(n.at), start),
                    n.event_id,
                    n.text
                );
            }
        }
        out
    }
}
