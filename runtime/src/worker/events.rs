//! The worker's telemetry events: one struct per occurrence whose `emit()` writes the log line and
//! records the metric together, so the two cannot drift apart.
//!
//! Task events are emitted inside the task's span, which carries the task's ids (workflow_id,
//! run_id, media_uuid, ...); the lines add only what is specific to the occurrence. Metric labels
//! stay low-cardinality: activity type, task list, outcome, error type.

use std::time::Duration;

use super::context::TaskInfo;
use crate::swf::SwfError;
use crate::telemetry::fields;
use crate::telemetry::metrics as m;

/// How a task ended, as the `outcome` label and field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    Completed,
    Failed,
    Canceled,
    /// SWF answered UnknownResourceFault: the task had timed out or was closed.
    TimedOut,
    /// The handler answered CompleteLater: the task stays open for a person to complete.
    Deferred,
    /// The final answer could not be delivered (SWF will time the task out).
    AnswerFailed,
}

impl TaskOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOutcome::Completed => "completed",
            TaskOutcome::Failed => "failed",
            TaskOutcome::Canceled => "canceled",
            TaskOutcome::TimedOut => "timed_out",
            TaskOutcome::Deferred => "deferred",
            TaskOutcome::AnswerFailed => "answer_failed",
        }
    }
}

pub use crate::telemetry::events::{PollAnswered, PollKind};

/// A poll failed; the poller waits `retry_in` before the next one.
pub struct PollFailed<'a> {
    pub task_list: &'a str,
    pub error: &'a SwfError,
    pub retry_in: Duration,
    pub consecutive_failures: u32,
}

impl PollFailed<'_> {
    pub fn emit(&self) {
        m::increment(&m::POLLS, &[self.task_list, "error"], 1);
        tracing::warn!(
            { fields::TASK_LIST } = self.task_list,
            error_type = self.error.error_type(),
            consecutive_failures = self.consecutive_failures,
            retry_in_ms = self.retry_in.as_millis() as u64,
            { fields::ERROR } = %self.error,
            "Activity poll failed; waiting before polling again."
        );
    }
}

/// A poll failed in a way waiting cannot fix (unknown domain, invalid request): the worker stops.
pub struct PollFatal<'a> {
    pub task_list: &'a str,
    pub error: &'a SwfError,
}

impl PollFatal<'_> {
    pub fn emit(&self) {
        m::increment(&m::POLLS, &[self.task_list, "error"], 1);
        tracing::error!(
            { fields::TASK_LIST } = self.task_list,
            error_type = self.error.error_type(),
            { fields::ERROR } = %self.error,
            "Activity poll refused; the worker stops polling this task list."
        );
    }
}

/// The number of busy slots changed.
pub struct SlotsChanged<'a> {
    pub task_list: &'a str,
    pub in_use: usize,
    pub total: usize,
}

impl SlotsChanged<'_> {
    pub fn emit(&self) {
        m::set_gauge(
            &m::WORKER_SLOTS_IN_USE,
            &[self.task_list],
            self.in_use as f64,
        );
        m::set_gauge(
            &m::WORKER_SLOTS_FREE,
            &[self.task_list],
            self.total.saturating_sub(self.in_use) as f64,
        );
    }
}

/// The worker begins polling.
pub struct WorkerStarted<'a> {
    pub task_list: &'a str,
    pub slots: usize,
    pub activity_types: &'a [&'a str],
}

impl WorkerStarted<'_> {
    pub fn emit(&self) {
        m::set_gauge(&m::WORKER_DRAINING, &[self.task_list], 0.0);
        tracing::info!(
            { fields::TASK_LIST } = self.task_list,
            slots = self.slots,
            activity_types = %self.activity_types.join(","),
            "Activity worker started."
        );
    }
}

/// Shutdown began: polls stopped, in-flight tasks may finish.
pub struct DrainStarted<'a> {
    pub task_list: &'a str,
    pub in_flight: usize,
    pub drain_timeout: Duration,
}

impl DrainStarted<'_> {
    pub fn emit(&self) {
        m::set_gauge(&m::WORKER_DRAINING, &[self.task_list], 1.0);
        tracing::info!(
            { fields::TASK_LIST } = self.task_list,
            in_flight = self.in_flight,
            drain_timeout_ms = self.drain_timeout.as_millis() as u64,
            "Polling stopped; draining in-flight activity tasks."
        );
    }
}

/// The drain timeout passed with tasks still running: they are cancelled and failed.
pub struct DrainTimedOut<'a> {
    pub task_list: &'a str,
    pub still_running: usize,
}

impl DrainTimedOut<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            { fields::TASK_LIST } = self.task_list,
            still_running = self.still_running,
            "Drain timeout passed; cancelling the remaining activity tasks and failing them."
        );
    }
}

/// Tasks cancelled at the drain timeout could not even be answered in time; the worker returns
/// without them and SWF will time them out.
pub struct DrainAbandoned<'a> {
    pub task_list: &'a str,
    pub still_running: usize,
}

impl DrainAbandoned<'_> {
    pub fn emit(&self) {
        tracing::error!(
            { fields::TASK_LIST } = self.task_list,
            still_running = self.still_running,
            "Cancelled tasks could not be answered in time; SWF will time them out."
        );
    }
}

/// Every in-flight task was answered; the worker returns.
pub struct Drained<'a> {
    pub task_list: &'a str,
    pub duration: Duration,
}

impl Drained<'_> {
    pub fn emit(&self) {
        m::set_gauge(&m::WORKER_DRAINING, &[self.task_list], 0.0);
        tracing::info!(
            { fields::TASK_LIST } = self.task_list,
            { fields::DURATION_MS } = self.duration.as_millis() as u64,
            "Activity worker stopped."
        );
    }
}

/// A task was polled and handed to its handler (emitted inside the task span).
pub struct TaskStarted<'a> {
    pub info: &'a TaskInfo,
}

impl TaskStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(
            { fields::STAGE } = self.info.stage.as_str(),
            { fields::TASK_TOKEN_HASH } = self.info.task_token_hash.as_str(),
            "Activity task started."
        );
    }
}

/// No handler for the task's type: the task is failed.
pub struct UnknownActivityType<'a> {
    pub info: &'a TaskInfo,
    pub known: &'a [&'a str],
}

impl UnknownActivityType<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            activity_version = %self.info.activity_version,
            known_types = %self.known.join(","),
            "No handler registered for this activity type; failing the task."
        );
    }
}

/// A heartbeat was accepted.
pub struct HeartbeatSent<'a> {
    pub info: &'a TaskInfo,
}

impl HeartbeatSent<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::ACTIVITY_HEARTBEATS,
            &[&self.info.activity_type, &self.info.task_list],
            1,
        );
        tracing::debug!("Heartbeat sent.");
    }
}

/// A heartbeat failed. UnknownResource gets its own line ([`TaskLost`]) once the runner stops the
/// task, so only other failures are logged here.
pub struct HeartbeatFailed<'a> {
    pub info: &'a TaskInfo,
    pub error: &'a SwfError,
}

impl HeartbeatFailed<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::ACTIVITY_HEARTBEAT_FAILURES,
            &[
                &self.info.activity_type,
                &self.info.task_list,
                self.error.error_type(),
            ],
            1,
        );
        if !matches!(self.error, SwfError::UnknownResource(_)) {
            tracing::warn!(
                error_type = self.error.error_type(),
                { fields::ERROR } = %self.error,
                "Heartbeat failed; the task keeps running and the next heartbeat will retry."
            );
        }
    }
}

/// SWF asked for the task to be cancelled.
pub struct CancelRequested<'a> {
    pub info: &'a TaskInfo,
}

impl CancelRequested<'_> {
    pub fn emit(&self) {
        tracing::info!(
            { fields::TASK_TOKEN_HASH } = %self.info.task_token_hash,
            "SWF requested cancellation; cancelling the handler."
        );
    }
}

/// SWF answered UnknownResourceFault: the task timed out or was closed. The handler was cancelled
/// and the slot freed. This is the one line an operator looks for.
pub struct TaskLost<'a> {
    pub info: &'a TaskInfo,
    /// "heartbeat" or "answer".
    pub during: &'static str,
    pub error: &'a SwfError,
}

impl TaskLost<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::ACTIVITY_UNKNOWN_RESOURCE,
            &[&self.info.activity_type, &self.info.task_list],
            1,
        );
        tracing::warn!(
            { fields::WORKFLOW_ID } = %self.info.workflow_id,
            { fields::RUN_ID } = %self.info.run_id,
            { fields::ACTIVITY_ID } = %self.info.activity_id,
            { fields::TASK_TOKEN_HASH } = %self.info.task_token_hash,
            during = self.during,
            { fields::ERROR } = %self.error,
            "Activity task abandoned: SWF no longer knows it (timed out or closed); handler cancelled, slot freed."
        );
    }
}

/// A task's final answer could not be delivered.
pub struct AnswerFailed<'a> {
    pub error: &'a SwfError,
    pub answer: &'static str,
}

impl AnswerFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(
            answer = self.answer,
            error_type = self.error.error_type(),
            { fields::ERROR } = %self.error,
            "Could not answer the activity task; SWF will time it out."
        );
    }
}

/// The closing line of a task, with its duration and outcome.
pub struct TaskFinished<'a> {
    pub info: &'a TaskInfo,
    pub outcome: TaskOutcome,
    pub duration: Duration,
    /// The failure reason, for failed and canceled tasks.
    pub reason: Option<&'a str>,
}

impl TaskFinished<'_> {
    pub fn emit(&self) {
        let outcome = self.outcome.as_str();
        m::record(
            &m::ACTIVITY_EXECUTION,
            &[&self.info.activity_type, &self.info.task_list, outcome],
            self.duration.as_secs_f64(),
        );
        m::increment(
            &m::ACTIVITY_TASKS,
            &[&self.info.activity_type, &self.info.task_list, outcome],
            1,
        );
        let duration_ms = self.duration.as_millis() as u64;
        // A lost task already had its warning (TaskLost); a cancel the decider asked for is normal.
        match self.outcome {
            TaskOutcome::Completed
            | TaskOutcome::Deferred
            | TaskOutcome::Canceled
            | TaskOutcome::TimedOut => tracing::info!(
                { fields::DURATION_MS } = duration_ms,
                { fields::OUTCOME } = outcome,
                reason = self.reason,
                "Activity task finished."
            ),
            _ => tracing::warn!(
                { fields::DURATION_MS } = duration_ms,
                { fields::OUTCOME } = outcome,
                reason = self.reason,
                "Activity task finished."
            ),
        }
    }
}
