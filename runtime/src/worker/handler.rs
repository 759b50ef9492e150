//! What an activity handler is: the trait the media pipeline implements, its outcome and error
//! types, and the registry that maps an activity type name to its handler.
//!
//! A handler is created once at startup, registered under its activity type name, and then called
//! concurrently for every task of that type the worker polls (one call per task, each with its own
//! [`ActivityContext`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::context::ActivityContext;

/// SWF's limit on an input, result or details field, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 32_768;
/// SWF's limit on a failure reason, in characters.
pub const MAX_REASON_CHARS: usize = 256;
/// Put in front of the failure details of a non-retryable error, so the decider (which sees only
/// the reason and details of ActivityTaskFailed) can stop retrying even when the reason is not in
/// the stage's retry policy. The reason itself is sent untouched: retry policies match on it.
/// See [`split_failure_details`].
pub const NON_RETRYABLE_MARKER: &str = "[non-retryable] ";

/// Failure reasons the worker itself gives.
pub mod reasons {
    /// The handler's result, serialised, is over [`super::MAX_PAYLOAD_CHARS`]; sent as
    /// non-retryable.
    pub const RESULT_TOO_LARGE: &str = "result too large";
    /// The handler panicked; the details hold the panic message.
    pub const HANDLER_PANICKED: &str = "handler panicked";
    /// No handler is registered for the task's activity type on this worker.
    pub const UNKNOWN_ACTIVITY_TYPE: &str = "unknown activity type";
    /// The worker shut down and the task was still running when the drain timeout passed.
    pub const DRAIN_TIMEOUT: &str = "drain timeout";
    /// The handler gave up after SWF requested cancellation.
    pub const CANCELED: &str = "canceled";
}

/// Splits failure details as sent by a worker into (non-retryable, the handler's own details).
pub fn split_failure_details(details: &str) -> (bool, &str) {
    match details.strip_prefix(NON_RETRYABLE_MARKER) {
        Some(rest) => (true, rest),
        None => (false, details),
    }
}

/// How a handler finished a task successfully.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityOutcome {
    /// The task is done; the value (serialised as JSON) is the activity's result.
    Completed(serde_json::Value),
    /// Human-in-the-loop work: the worker frees the slot without answering. Whoever finishes the
    /// work completes the task later with its token ([`ActivityContext::task_token`]), for example
    /// with `swf-runtime complete`. Such activity types need no heartbeat timeout and a long
    /// start-to-close timeout.
    CompleteLater,
}

/// A handler's failure; the task is answered RespondActivityTaskFailed with its reason and details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ActivityError {
    /// A short, stable reason (the decider's retry policy matches on it).
    pub reason: String,
    /// Free text or JSON for a human: what failed and why.
    pub details: Option<String>,
    /// Retrying cannot help (bad input, missing media): the decider should fail the stage at once.
    pub non_retryable: bool,
}

impl ActivityError {
    /// A failure the decider may retry.
    pub fn new(reason: impl Into<String>) -> ActivityError {
        ActivityError {
            reason: reason.into(),
            details: None,
            non_retryable: false,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn non_retryable(reason: impl Into<String>) -> ActivityError {
        ActivityError {
            non_retryable: true,
            ..ActivityError::new(reason)
        }
    }

    /// What a handler returns when it stopped because its cancellation token fired.
    pub fn cancelled() -> ActivityError {
        ActivityError::new(reasons::CANCELED)
    }

    pub fn with_details(mut self, details: impl Into<String>) -> ActivityError {
        self.details = Some(details.into());
        self
    }

    /// The reason as sent to SWF, cut to SWF's limit.
    pub fn wire_reason(&self) -> String {
        truncate_chars(&self.reason, MAX_REASON_CHARS)
    }

    /// The details as sent to SWF: marked when non-retryable, cut to SWF's limit.
    pub fn wire_details(&self) -> Option<String> {
        let details = if self.non_retryable {
            Some(format!(
                "{NON_RETRYABLE_MARKER}{}",
                self.details.as_deref().unwrap_or_default()
            ))
        } else {
            self.details.clone()
        };
        details.map(|d| truncate_chars(&d, MAX_PAYLOAD_CHARS))
    }
}

/// Cuts `s` to at most `max` characters, marking the cut so a reader knows text is missing.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    const MARK: &str = "...[truncated]";
    let keep = max.saturating_sub(MARK.len());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(MARK);
    out
}

/// The code that runs one activity type.
#[async_trait]
pub trait ActivityHandler: Send + Sync {
    /// Runs one task. `input` is the stage input (the envelope is already removed). Long work
    /// should watch `ctx.cancelled()` and may call `ctx.heartbeat(...)` to report progress; the
    /// worker heartbeats on its own as well.
    async fn handle(
        &self,
        ctx: ActivityContext,
        input: serde_json::Value,
    ) -> Result<ActivityOutcome, ActivityError>;
}

/// A handler made of an async closure, for small handlers and tests.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F, Fut> ActivityHandler for FnHandler<F>
where
    F: Fn(ActivityContext, serde_json::Value) -> Fut + Send + Sync,
    Fut: Future<Output = Result<ActivityOutcome, ActivityError>> + Send + 'static,
{
    async fn handle(
        &self,
        ctx: ActivityContext,
        input: serde_json::Value,
    ) -> Result<ActivityOutcome, ActivityError> {
        (self.0)(ctx, input).await
    }
}

/// Activity type name -> handler. Versions are not distinguished: a host runs one version of
/// each handler.
#[derive(Clone, Default)]
pub struct ActivityRegistry {
    handlers: BTreeMap<String, Arc<dyn ActivityHandler>>,
}

impl std::fmt::Debug for ActivityRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl ActivityRegistry {
    pub fn new() -> ActivityRegistry {
        ActivityRegistry::default()
    }

    /// Registers `handler` for `activity_type`, replacing any earlier one.
    pub fn register(
        &mut self,
        activity_type: impl Into<String>,
        handler: impl ActivityHandler + 'static,
    ) -> &mut Self {
        self.handlers
            .insert(activity_type.into(), Arc::new(handler));
        self
    }

    /// Registers an already shared handler.
    pub fn register_arc(
        &mut self,
        activity_type: impl Into<String>,
        handler: Arc<dyn ActivityHandler>,
    ) -> &mut Self {
        self.handlers.insert(activity_type.into(), handler);
        self
    }

    pub fn get(&self, activity_type: &str) -> Option<Arc<dyn ActivityHandler>> {
        self.handlers.get(activity_type).cloned()
    }

    /// The registered activity type names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.handlers.keys().map(String::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_carry_the_non_retryable_flag_and_fit_swf_limits() {
        let e = ActivityError::non_retryable("BadInput").with_details("no such file");
        assert_eq!(e.wire_reason(), "BadInput");
        let details = e.wire_details().unwrap();
        assert_eq!(details, "[non-retryable] no such file");
        assert_eq!(split_failure_details(&details), (true, "no such file"));
        assert_eq!(split_failure_details("disk full"), (false, "disk full"));
        assert_eq!(ActivityError::new("Transient").wire_details(), None);

        let long = ActivityError::new("x".repeat(1000)).with_details("é".repeat(40_000));
        assert_eq!(long.wire_reason().chars().count(), MAX_REASON_CHARS);
        assert_eq!(
            long.wire_details().unwrap().chars().count(),
            MAX_PAYLOAD_CHARS
        );
        assert!(long.wire_reason().ends_with("[truncated]"));
        assert_eq!(truncate_chars("short", 10), "short");
    }
}
