//! The decider's poll loop: long-poll a decision task list, fetch every history page, decide,
//! answer.
//!
//! [`DeciderPoller::run`] runs `pollers` loops until the shutdown token is cancelled. Each loop
//! polls page 1 (the long poll, abandoned at once on shutdown: a task handed to an abandoned
//! poll times out and SWF hands it out again), then fetches every further page with its
//! `nextPageToken`, builds the indexed [`WorkflowHistory`], asks the registered [`Workflow`] of
//! the execution's type for its decisions and answers the task. A task in hand is always
//! finished, shutdown or not. A task that cannot be decided (unknown type, a workflow error or
//! panic, a page that could not be fetched) is left unanswered on purpose: it times out and is
//! handed out again, possibly to a fixed decider on another host.
//!
//! Each task runs in a `decision_task` span carrying workflow_id, run_id, workflow_type,
//! media_uuid and user_uuid; the telemetry events in [`super::events`] are emitted inside it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::dag::parse_workflow_input;
use super::events::{
    DecisionPollFailed, DecisionTaskCompleted, DecisionTaskFailed, HistoryFetched, StageClosed,
    StageRetrying, WorkflowClosing,
};
use super::history::WorkflowHistory;
use super::timeline::timeline;
use super::{DecideError, WorkflowRegistry};
use crate::envelope::token_hash;
use crate::swf::model::EventAttributes;
use crate::swf::{Decision, DecisionTaskPage, SwfClient, SwfError};
use crate::telemetry::{export_execution_root_span, fields, set_execution_parent};

/// How one decision task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// Answered with these decisions.
    Answered(Vec<Decision>),
    /// Left unanswered (it will time out and be handed out again), for this reason.
    Unanswered(String),
}

/// Polls one decision task list and decides the executions of the registered workflows.
pub struct DeciderPoller {
    client: Arc<dyn SwfClient>,
    task_list: String,
    identity: String,
    registry: WorkflowRegistry,
    pollers: usize,
    initial_backoff: Duration,
    max_backoff: Duration,
    page_attempts: u32,
}

impl std::fmt::Debug for DeciderPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeciderPoller")
            .field("task_list", &self.task_list)
            .field("identity", &self.identity)
            .field("registry", &self.registry)
            .field("pollers", &self.pollers)
            .finish()
    }
}

impl DeciderPoller {
    pub fn new(
        client: Arc<dyn SwfClient>,
        task_list: impl Into<String>,
        identity: impl Into<String>,
        registry: WorkflowRegistry,
    ) -> DeciderPoller {
        DeciderPoller {
            client,
            task_list: task_list.into(),
            identity: identity.into(),
            registry,
            pollers: 1,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            page_attempts: 3,
        }
    }

    /// Concurrent poll loops (default 1).
    pub fn with_pollers(mut self, pollers: usize) -> Self {
        self.pollers = pollers.max(1);
        self
    }

    /// The wait after a failed poll, doubled on every consecutive failure up to `max`.
    pub fn with_error_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    pub fn task_list(&self) -> &str {
        &self.task_list
    }

    /// Runs the poll loops until `shutdown` is cancelled and every task in hand is answered.
    pub async fn run(&self, shutdown: CancellationToken) {
        let loops = (0..self.pollers).map(|_| self.poll_loop(&shutdown));
        futures::future::join_all(loops).await;
        tracing::info!(
            { fields::TASK_LIST } = %self.task_list,
            "Decider stopped polling."
        );
    }

    async fn poll_loop(&self, shutdown: &CancellationToken) {
        let mut backoff = self.initial_backoff;
        while !shutdown.is_cancelled() {
            match self.run_once(shutdown).await {
                Ok(_) => backoff = self.initial_backoff,
                Err(err) => {
                    DecisionPollFailed {
                        task_list: &self.task_list,
                        error: &err,
                        retry_in: backoff,
                    }
                    .emit();
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    /// One long poll and, when it brings a task, that task decided and answered. `Ok(None)` for
    /// an empty poll or a shutdown during the poll.
    pub async fn run_once(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<TaskOutcome>, SwfError> {
        let polled = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(None),
            polled = self.client.poll_for_decision_task(&self.task_list, &self.identity, None) => polled?,
        };
        crate::telemetry::events::PollAnswered {
            kind: crate::telemetry::events::PollKind::Decision,
            task_list: &self.task_list,
            got_task: polled.is_some(),
        }
        .emit();
        match polled {
            None => Ok(None),
            Some(first) => Ok(Some(self.handle_task(first).await)),
        }
    }

    /// Fetches the remaining pages of a decision task, decides and answers it.
    pub async fn handle_task(&self, first: DecisionTaskPage) -> TaskOutcome {
        let span = tracing::info_span!(
            "decision_task",
            // Strings as `&str`, not `%`: recorded without a formatter in every layer.
            { fields::WORKFLOW_ID } = first.execution.workflow_id.as_str(),
            { fields::RUN_ID } = first.execution.run_id.as_str(),
            { fields::WORKFLOW_TYPE } = first.workflow_type.name.as_str(),
            { fields::MEDIA_UUID } = tracing::field::Empty,
            { fields::USER_UUID } = tracing::field::Empty,
            { fields::TASK_LIST } = self.task_list.as_str(),
            { fields::TASK_TOKEN_HASH } = token_hash(&first.task_token).as_str(),
        );
        // One trace per execution: every decision task span hangs off the execution's root span.
        set_execution_parent(&span, &first.execution.run_id);
        self.decide_task(first, span.clone()).instrument(span).await
    }

    async fn fetch_page(&self, token: &str) -> Result<DecisionTaskPage, String> {
        let mut wait = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self
                .client
                .poll_for_decision_task(&self.task_list, &self.identity, Some(token))
                .await
            {
                Ok(Some(page)) => return Ok(page),
                Ok(None) => return Err("SWF returned no page for a next page token".into()),
                Err(e) if e.is_retryable() && attempt < self.page_attempts => {
                    // Page tokens live 60 s: retry briefly, never long.
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(format!("fetching history page {attempt}: {e}")),
            }
        }
    }

    async fn decide_task(&self, first: DecisionTaskPage, span: tracing::Span) -> TaskOutcome {
        let started = Instant::now();
        let workflow_type = first.workflow_type.name.clone();
        let unanswered =
            |outcome: &'static str, error_type: &str, error: &dyn std::fmt::Display| {
                DecisionTaskFailed {
                    workflow_type: &workflow_type,
                    outcome,
                    error_type,
                    error,
                    elapsed: started.elapsed(),
                }
                .emit();
                TaskOutcome::Unanswered(error.to_string())
            };

        let DecisionTaskPage {
            task_token,
            execution,
            workflow_type: type_ref,
            mut events,
            mut next_page_token,
            previous_started_event_id,
            ..
        } = first;
        let mut pages = 1u64;
        while let Some(token) = next_page_token.take() {
            match self.fetch_page(&token).await {
                Ok(page) => {
                    events.extend(page.events);
                    next_page_token = page.next_page_token;
                    pages += 1;
                }
                Err(e) => return unanswered("history_error", "page", &e),
            }
        }
        let history = match WorkflowHistory::new(execution, events) {
            Ok(h) => h,
            Err(e) => return unanswered("history_error", "history", &e),
        };
        if let Ok(input) = parse_workflow_input(history.input.as_deref()) {
            span.record(fields::MEDIA_UUID, input.media_uuid.as_str());
            span.record(fields::USER_UUID, input.user_uuid.as_str());
        }
        HistoryFetched {
            workflow_type: &workflow_type,
            task_list: &self.task_list,
            pages,
            events: history.event_count(),
            schedule_to_start_secs: decision_schedule_to_start(&history),
        }
        .emit();

        let Some(workflow) = self.registry.get(&type_ref) else {
            let err = format!(
                "no workflow {} version {} is registered with this decider",
                type_ref.name, type_ref.version
            );
            return unanswered("unknown_workflow_type", "unknown_workflow_type", &err);
        };
        // A panicking workflow must not take the poll loop down with it.
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| workflow.decide(&history)))
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(DecideError::Workflow(format!(
                    "the workflow panicked: {msg}"
                )))
            });
        let decisions = match decided {
            Ok(d) => d,
            Err(e) => return unanswered("decide_error", e.error_type(), &e),
        };
        if let Err(e) = self
            .client
            .respond_decision_task_completed(&task_token, decisions.clone(), None)
            .await
        {
            return unanswered("respond_error", e.error_type(), &e);
        }
        DecisionTaskCompleted {
            workflow_type: &workflow_type,
            decisions: &decisions,
            events: history.event_count(),
            elapsed: started.elapsed(),
        }
        .emit();
        emit_activity_latencies(&history, previous_started_event_id);
        emit_stage_events(
            &workflow_type,
            &history,
            &decisions,
            previous_started_event_id,
        );
        emit_close(&workflow_type, &history, &decisions);
        TaskOutcome::Answered(decisions)
    }
}

/// Seconds the decision task being decided waited on its task list.
fn decision_schedule_to_start(history: &WorkflowHistory) -> Option<f64> {
    let events = history.events();
    let started = events.iter().rev().find_map(|e| match &e.attributes {
        EventAttributes::DecisionTaskStarted(a) => Some((e.event_timestamp, a.scheduled_event_id)),
        _ => None,
    })?;
    let scheduled_at = events
        .iter()
        .rev()
        .find(|e| e.event_id == started.1)
        .map(|e| e.event_timestamp)?;
    Some(started.0 - scheduled_at)
}

/// Queueing and end-to-end latency of every activity task whose close this decision task is the
/// first to see (a later decision task sees the same close as old and records nothing).
fn emit_activity_latencies(history: &WorkflowHistory, previous_started_event_id: i64) {
    for a in history.activities() {
        let (Some(closed_id), Some(closed_at)) = (a.closed_event_id, a.closed_at) else {
            continue;
        };
        if closed_id <= previous_started_event_id {
            continue;
        }
        super::events::ActivityLatencyObserved {
            activity_type: &a.activity_type.name,
            task_list: a.task_list.as_ref().map_or("", |t| t.name.as_str()),
            activity_id: &a.activity_id,
            outcome: a.outcome.label(),
            schedule_to_start_secs: a.started_at.map(|s| s - a.scheduled_at),
            end_to_end_secs: closed_at - a.scheduled_at,
        }
        .emit();
    }
}

/// Stage telemetry for the closes this decision task is the first to see.
fn emit_stage_events(
    workflow_type: &str,
    history: &WorkflowHistory,
    decisions: &[Decision],
    previous_started_event_id: i64,
) {
    let new_close = |id: Option<i64>| id.is_some_and(|id| id > previous_started_event_id);
    let fails = decisions
        .iter()
        .any(|d| matches!(d, Decision::FailWorkflowExecution(_)));
    for stage in timeline(history).stages {
        let Some(last) = stage.attempts.last() else {
            continue;
        };
        if !new_close(last.closed_event_id) {
            continue;
        }
        let retry = decisions.iter().find_map(|d| match d {
            Decision::StartTimer(t) if t.control.as_deref() == Some(stage.stage.as_str()) => {
                Some(t.start_to_fire_timeout.parse::<u64>().ok())
            }
            Decision::ScheduleActivityTask(a)
                if super::dag::stage_of(&a.activity_id) == stage.stage =>
            {
                Some(None)
            }
            Decision::StartChildWorkflowExecution(c)
                if c.control
                    .as_deref()
                    .is_some_and(|ctl| ctl.contains(&format!("\"stage\":\"{}\"", stage.stage))) =>
            {
                Some(None)
            }
            _ => None,
        });
        match (stage.outcome.as_str(), retry) {
            ("completed", _) => StageClosed {
                workflow_type,
                stage: &stage.stage,
                activity_type: &stage.type_ref.name,
                outcome: "completed",
                attempts: stage.attempts.len(),
                duration_secs: stage.duration_secs.unwrap_or(0.0),
            }
            .emit(),
            (outcome, Some(backoff_secs)) => StageRetrying {
                workflow_type,
                stage: &stage.stage,
                activity_type: &stage.type_ref.name,
                next_attempt: last.attempt + 1,
                backoff_secs,
                // A timeout names its kind (timeout_heartbeat, timeout_start_to_close, ...) so the
                // SwfActivityTimeouts alert can tell a dead worker from a slow one.
                error_type: &match (outcome, last.timeout_type.as_deref()) {
                    ("timed_out", Some(kind)) => format!("timeout_{}", kind.to_ascii_lowercase()),
                    _ => outcome.to_string(),
                },
                last_failure: last.detail.as_deref().unwrap_or(outcome),
            }
            .emit(),
            (outcome, None) if fails => StageClosed {
                workflow_type,
                stage: &stage.stage,
                activity_type: &stage.type_ref.name,
                outcome,
                attempts: stage.attempts.len(),
                duration_secs: stage.duration_secs.unwrap_or(0.0),
            }
            .emit(),
            _ => {}
        }
    }
}

fn emit_close(workflow_type: &str, history: &WorkflowHistory, decisions: &[Decision]) {
    for d in decisions {
        let (outcome, reason) = match d {
            Decision::CompleteWorkflowExecution(_) => ("completed", None),
            Decision::FailWorkflowExecution(f) => ("failed", f.reason.as_deref()),
            Decision::CancelWorkflowExecution(_) => ("canceled", None),
            Decision::ContinueAsNewWorkflowExecution(_) => ("continued_as_new", None),
            _ => continue,
        };
        WorkflowClosing {
            workflow_type,
            outcome,
            end_to_end_secs: history.last_event_at() - history.started_at,
            reason,
        }
        .emit();
        // The decider that closes the execution exports its root span, the parent every
        // decision and activity span of the run already names.
        let mut attrs = vec![opentelemetry::KeyValue::new(fields::OUTCOME, outcome)];
        if let Ok(input) = parse_workflow_input(history.input.as_deref()) {
            attrs.push(opentelemetry::KeyValue::new(
                fields::MEDIA_UUID,
                input.media_uuid,
            ));
            attrs.push(opentelemetry::KeyValue::new(
                fields::USER_UUID,
                input.user_uuid,
            ));
        }
        let start = std::time::UNIX_EPOCH
            + Duration::try_from_secs_f64(history.started_at.max(0.0)).unwrap_or_default();
        export_execution_root_span(
            &history.execution.run_id,
            workflow_type,
            &history.execution.workflow_id,
            start,
            std::time::SystemTime::now(),
            attrs,
        );
    }
}
