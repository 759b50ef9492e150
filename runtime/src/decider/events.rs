//! The decider's telemetry events: one struct per occurrence whose `emit()` writes the log line
//! and records the metric together, so the two cannot drift apart.
//!
//! Events about one decision task are emitted inside the task's span, which carries the
//! execution's ids (workflow_id, run_id, media_uuid, user_uuid, workflow_type); the lines add
//! only what is specific to the occurrence. Metric labels stay low-cardinality: workflow type,
//! activity type, task list, outcome, decision type, error type.

use std::time::Duration;

use crate::swf::{Decision, SwfError};
use crate::telemetry::fields;
use crate::telemetry::metrics as m;

/// A decision poll (first page or a later one) failed; the poller waits before polling again.
pub struct DecisionPollFailed<'a> {
    pub task_list: &'a str,
    pub error: &'a SwfError,
    pub retry_in: Duration,
}

impl DecisionPollFailed<'_> {
    pub fn emit(&self) {
        m::increment(&m::POLLS, &[self.task_list, "error"], 1);
        tracing::warn!(
            { fields::TASK_LIST } = self.task_list,
            error_type = self.error.error_type(),
            retry_in_ms = self.retry_in.as_millis() as u64,
            { fields::ERROR } = %self.error,
            "Decision poll failed; waiting before polling again."
        );
    }
}

/// Every page of a decision task's history was fetched.
pub struct HistoryFetched<'a> {
    pub workflow_type: &'a str,
    pub task_list: &'a str,
    pub pages: u64,
    pub events: usize,
    /// Seconds between DecisionTaskScheduled and DecisionTaskStarted, when both are in the history.
    pub schedule_to_start_secs: Option<f64>,
}

impl HistoryFetched<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::DECISION_HISTORY_PAGES,
            &[self.workflow_type],
            self.pages,
        );
        if let Some(s2s) = self.schedule_to_start_secs {
            m::record(
                &m::DECISION_SCHEDULE_TO_START,
                &[self.workflow_type, self.task_list],
                s2s.max(0.0),
            );
        }
        tracing::debug!(
            pages = self.pages,
            events = self.events,
            schedule_to_start_ms = self.schedule_to_start_secs.map(|s| (s * 1000.0) as u64),
            "Decision task history fetched."
        );
    }
}

/// A decision task was answered with these decisions.
pub struct DecisionTaskCompleted<'a> {
    pub workflow_type: &'a str,
    pub decisions: &'a [Decision],
    pub events: usize,
    pub elapsed: Duration,
}

impl DecisionTaskCompleted<'_> {
    pub fn emit(&self) {
        m::record(
            &m::DECISION_EXECUTION,
            &[self.workflow_type, "completed"],
            self.elapsed.as_secs_f64(),
        );
        for d in self.decisions {
            m::increment(&m::DECISIONS, &[self.workflow_type, d.decision_type()], 1);
        }
        // Field values are evaluated only when the line is enabled.
        tracing::info!(
            decisions = self.decisions.len(),
            decision_types = self
                .decisions
                .iter()
                .map(|d| d.decision_type())
                .collect::<Vec<_>>()
                .join(",")
                .as_str(),
            events = self.events,
            { fields::DURATION_MS } = self.elapsed.as_millis() as u64,
            { fields::OUTCOME } = "completed",
            "Decision task completed."
        );
    }
}

/// A decision task was left unanswered (the workflow could not decide, its type is unknown here,
/// or the answer was refused); SWF times it out and hands it out again.
pub struct DecisionTaskFailed<'a> {
    pub workflow_type: &'a str,
    /// `decide_error`, `unknown_workflow_type`, `history_error` or `respond_error`.
    pub outcome: &'static str,
    pub error_type: &'a str,
    pub error: &'a dyn std::fmt::Display,
    pub elapsed: Duration,
}

impl DecisionTaskFailed<'_> {
    pub fn emit(&self) {
        m::record(
            &m::DECISION_EXECUTION,
            &[self.workflow_type, self.outcome],
            self.elapsed.as_secs_f64(),
        );
        tracing::error!(
            { fields::OUTCOME } = self.outcome,
            error_type = self.error_type,
            { fields::DURATION_MS } = self.elapsed.as_millis() as u64,
            { fields::ERROR } = %self.error,
            "Decision task not answered; it will time out and be handed out again."
        );
    }
}

/// The decider answered with a decision that closes the execution.
pub struct WorkflowClosing<'a> {
    pub workflow_type: &'a str,
    /// completed, failed, canceled or continued_as_new.
    pub outcome: &'static str,
    /// From WorkflowExecutionStarted to this decision task's start, from the history's clock.
    pub end_to_end_secs: f64,
    pub reason: Option<&'a str>,
}

impl WorkflowClosing<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::WORKFLOW_EXECUTIONS,
            &[self.workflow_type, self.outcome],
            1,
        );
        m::record(
            &m::WORKFLOW_END_TO_END,
            &[self.workflow_type, self.outcome],
            self.end_to_end_secs.max(0.0),
        );
        if self.outcome == "failed" {
            tracing::warn!(
                { fields::OUTCOME } = self.outcome,
                { fields::DURATION_MS } = (self.end_to_end_secs * 1000.0) as u64,
                reason = self.reason.unwrap_or(""),
                "Workflow execution closing."
            );
        } else {
            tracing::info!(
                { fields::OUTCOME } = self.outcome,
                { fields::DURATION_MS } = (self.end_to_end_secs * 1000.0) as u64,
                "Workflow execution closing."
            );
        }
    }
}

/// A stage reached its final close: completed, or failed with no attempt left.
pub struct StageClosed<'a> {
    pub workflow_type: &'a str,
    pub stage: &'a str,
    pub activity_type: &'a str,
    /// completed, failed, timed_out, canceled or terminated.
    pub outcome: &'a str,
    pub attempts: usize,
    /// From the first scheduling to the final close, retries and backoff included.
    pub duration_secs: f64,
}

impl StageClosed<'_> {
    pub fn emit(&self) {
        m::record(
            &m::STAGE_DURATION,
            &[self.workflow_type, self.activity_type, self.outcome],
            self.duration_secs.max(0.0),
        );
        tracing::info!(
            { fields::STAGE } = self.stage,
            { fields::ACTIVITY_TYPE } = self.activity_type,
            { fields::OUTCOME } = self.outcome,
            { fields::ATTEMPT } = self.attempts,
            { fields::DURATION_MS } = (self.duration_secs * 1000.0) as u64,
            "Stage closed."
        );
    }
}

/// A stage's attempt failed or timed out and another attempt was decided (after a backoff).
pub struct StageRetrying<'a> {
    pub workflow_type: &'a str,
    pub stage: &'a str,
    pub activity_type: &'a str,
    /// The attempt about to run.
    pub next_attempt: u32,
    pub backoff_secs: Option<u64>,
    /// failed, timed_out, canceled or terminated: the `error_type` label.
    pub error_type: &'a str,
    pub last_failure: &'a str,
}

impl StageRetrying<'_> {
    pub fn emit(&self) {
        m::increment(
            &m::STAGE_ATTEMPTS,
            &[self.workflow_type, self.activity_type, self.error_type],
            1,
        );
        tracing::warn!(
            { fields::STAGE } = self.stage,
            { fields::ACTIVITY_TYPE } = self.activity_type,
            { fields::ATTEMPT } = self.next_attempt,
            backoff_secs = self.backoff_secs,
            error_type = self.error_type,
            { fields::ERROR } = self.last_failure,
            "Stage attempt failed; retrying after a backoff."
        );
    }
}

/// A decision task is the first to see an activity task's close: its queueing and end-to-end
/// latencies, which only SWF's timestamps (the history) know, are recorded here.
pub struct ActivityLatencyObserved<'a> {
    pub activity_type: &'a str,
    pub task_list: &'a str,
    pub activity_id: &'a str,
    /// completed, failed, timed_out or canceled.
    pub outcome: &'a str,
    /// Scheduled -> started, when it started.
    pub schedule_to_start_secs: Option<f64>,
    /// Scheduled -> closed.
    pub end_to_end_secs: f64,
}

impl ActivityLatencyObserved<'_> {
    pub fn emit(&self) {
        if let Some(s2s) = self.schedule_to_start_secs {
            m::record(
                &m::ACTIVITY_SCHEDULE_TO_START,
                &[self.activity_type, self.task_list],
                s2s.max(0.0),
            );
        }
        m::record(
            &m::ACTIVITY_END_TO_END,
            &[self.activity_type, self.task_list, self.outcome],
            self.end_to_end_secs.max(0.0),
        );
        tracing::debug!(
            { fields::ACTIVITY_TYPE } = self.activity_type,
            { fields::ACTIVITY_ID } = self.activity_id,
            { fields::TASK_LIST } = self.task_list,
            { fields::OUTCOME } = self.outcome,
            { fields::DURATION_MS } = (self.end_to_end_secs * 1000.0) as u64,
            schedule_to_start_ms = self.schedule_to_start_secs.map(|s| (s * 1000.0) as u64),
            "Activity task closed in the history."
        );
    }
}
