//! The contract between an activity handler and whatever runs it.
//!
//! The runtime's worker polls a task, builds a [`TaskCtx`] for it (ids, attempt, heartbeats,
//! cancellation, and a way to start workflows) and calls [`Handler::run`] once per task. The
//! handler's answer decides how the task is closed: [`HandlerResult::Done`] completes it,
//! [`HandlerResult::CompleteLater`] leaves it open for a person to complete by hand, and a
//! [`HandlerError`] fails it (or reports it canceled, see [`HandlerError::is_canceled`]).

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The reason of a handler that stopped because its task was cancelled (SWF cancel request,
/// timed-out task, or shutdown): the worker answers RespondActivityTaskCanceled.
pub const REASON_CANCELED: &str = "canceled";
/// The reason of a failure injected on purpose (tests and drills).
pub const REASON_INJECTED_FAILURE: &str = "injected_failure";
/// The stage input cannot be used; retrying the same input cannot help.
pub const REASON_INVALID_INPUT: &str = "invalid_input";
/// Writing the stage's product failed (disk full, permissions): may succeed on another attempt.
pub const REASON_IO: &str = "io_error";
/// Upload could not reach the service to start the media's VideoProcessing workflow.
pub const REASON_START_WORKFLOW: &str = "start_workflow_failed";
/// The service refused to start the media's VideoProcessing workflow (unknown type, bad input).
pub const REASON_START_WORKFLOW_REJECTED: &str = "start_workflow_rejected";

/// Reasons no retry can fix; the decider ends the workflow on them.
pub const NON_RETRYABLE_REASONS: &[&str] = &[REASON_INVALID_INPUT, REASON_START_WORKFLOW_REJECTED];

/// What a handler hands back when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerResult {
    /// The task is done; the value becomes its result (it must stay under 32,768 characters).
    Done(Value),
    /// The task stays open: a person (or another system) completes it later with its task token.
    CompleteLater,
}

/// A failed attempt. `reason` is a short fixed word (it is a metric label and what retry policies
/// match on); `details` says what happened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {}", details.as_deref().unwrap_or("no details"))]
pub struct HandlerError {
    pub reason: String,
    pub details: Option<String>,
    /// Retrying cannot help (the reason is also one of [`NON_RETRYABLE_REASONS`]).
    pub non_retryable: bool,
}

impl HandlerError {
    pub fn retryable(reason: &str, details: impl Into<String>) -> HandlerError {
        HandlerError {
            reason: reason.to_string(),
            details: Some(details.into()),
            non_retryable: false,
        }
    }

    /// A failure no retry can fix; `reason` should be one of [`NON_RETRYABLE_REASONS`].
    pub fn non_retryable(reason: &str, details: impl Into<String>) -> HandlerError {
        HandlerError {
            reason: reason.to_string(),
            details: Some(details.into()),
            non_retryable: true,
        }
    }

    pub fn invalid_input(details: impl Into<String>) -> HandlerError {
        HandlerError {
            reason: REASON_INVALID_INPUT.to_string(),
            details: Some(details.into()),
            non_retryable: true,
        }
    }

    pub fn canceled(details: impl Into<String>) -> HandlerError {
        HandlerError {
            reason: REASON_CANCELED.to_string(),
            details: Some(details.into()),
            non_retryable: false,
        }
    }

    /// The handler stopped because it was asked to: report the task canceled, not failed.
    pub fn is_canceled(&self) -> bool {
        self.reason == REASON_CANCELED
    }
}

/// Why [`TaskCtx::start_workflow`] did not start an execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartWorkflowError {
    /// An open execution already has this workflow id (for Upload: a previous attempt started it).
    #[error("workflow execution already started: {0}")]
    AlreadyStarted(String),
    /// The request was refused (unknown type, bad input): retrying the same request cannot help.
    #[error("start refused: {0}")]
    Rejected(String),
    /// The service could not be reached or throttled us: a later attempt may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// What a handler may know and do about the task it runs.
#[async_trait]
pub trait TaskCtx: Send + Sync {
    fn workflow_id(&self) -> &str;
    fn run_id(&self) -> &str;
    fn activity_id(&self) -> &str;
    /// 1 for the first attempt of the stage.
    fn attempt(&self) -> u32;
    /// Empty when the task did not come from our decider (a task injected by hand).
    fn media_uuid(&self) -> &str;
    fn user_uuid(&self) -> &str;
    /// The task's token, for work a person completes later by hand. Never log it.
    fn task_token(&self) -> &str;
    /// Records progress and proves the handler is alive. Never fails: a heartbeat SWF refuses
    /// (the task timed out or was cancelled) cancels [`TaskCtx::cancelled`] instead.
    async fn heartbeat(&self, details: Option<String>);
    /// Cancelled when the handler must stop: cancel requested, task timed out, or shutdown.
    fn cancelled(&self) -> CancellationToken;
    /// Starts an execution of `workflow_type` (this pipeline's registered version) and returns
    /// its run id.
    async fn start_workflow(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: String,
    ) -> Result<String, StartWorkflowError>;
}

/// One activity type's implementation. The worker calls `run` once per task, concurrently.
#[async_trait]
pub trait Handler: Send + Sync {
    async fn run(&self, ctx: &dyn TaskCtx, input: Value) -> Result<HandlerResult, HandlerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_reason_and_details() {
        let e = HandlerError::invalid_input("media_uuid is empty");
        assert_eq!(e.to_string(), "invalid_input: media_uuid is empty");
        assert!(e.non_retryable);
        assert!(NON_RETRYABLE_REASONS.contains(&e.reason.as_str()));
        assert!(HandlerError::canceled("x").is_canceled());
        assert!(!HandlerError::retryable(REASON_IO, "x").is_canceled());
    }
}
