//! Finishing an activity task by hand, for `swf-runtime complete`: a handler answered
//! [`super::ActivityOutcome::CompleteLater`] (human-in-the-loop work such as manual face
//! recognition) and a person now completes or fails it with the task token it left behind.

use super::handler::{truncate_chars, MAX_PAYLOAD_CHARS, MAX_REASON_CHARS};
use crate::envelope::token_hash;
use crate::swf::{SwfClient, SwfError};
use crate::telemetry::fields;

/// Why a manual answer was not delivered, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// The result does not fit SWF's limit: shorten it (store large data elsewhere).
    #[error("the result has {chars} characters; SWF accepts at most {limit}")]
    ResultTooLarge { chars: usize, limit: usize },
    /// The token is empty: pass the token the handler stored.
    #[error("the task token is empty")]
    EmptyToken,
    /// SWF no longer knows the task: it timed out, was already answered or the token is wrong.
    #[error("the task is no longer open (timed out, already answered or a wrong token): {0}")]
    TaskGone(String),
    /// Any other failure of the call: see the SWF error.
    #[error(transparent)]
    Swf(SwfError),
}

fn map_error(err: SwfError) -> ManualError {
    match err {
        SwfError::UnknownResource(m) => ManualError::TaskGone(m),
        other => ManualError::Swf(other),
    }
}

/// Completes an open activity task with `result` (JSON text or any string the decider expects).
pub async fn complete_by_hand(
    client: &dyn SwfClient,
    task_token: &str,
    result: Option<String>,
) -> Result<(), ManualError> {
    if task_token.trim().is_empty() {
        return Err(ManualError::EmptyToken);
    }
    if let Some(chars) = result.as_ref().map(|r| r.chars().count()) {
        if chars > MAX_PAYLOAD_CHARS {
            return Err(ManualError::ResultTooLarge {
                chars,
                limit: MAX_PAYLOAD_CHARS,
            });
        }
    }
    client
        .respond_activity_task_completed(task_token, result)
        .await
        .map_err(map_error)?;
    tracing::info!(
        { fields::TASK_TOKEN_HASH } = %token_hash(task_token),
        { fields::OUTCOME } = "completed",
        "Activity task completed by hand."
    );
    Ok(())
}

/// Fails an open activity task by hand; reason and details are cut to SWF's limits.
pub async fn fail_by_hand(
    client: &dyn SwfClient,
    task_token: &str,
    reason: &str,
    details: Option<String>,
) -> Result<(), ManualError> {
    if task_token.trim().is_empty() {
        return Err(ManualError::EmptyToken);
    }
    client
        .respond_activity_task_failed(
            task_token,
            Some(truncate_chars(reason, MAX_REASON_CHARS)),
            details.map(|d| truncate_chars(&d, MAX_PAYLOAD_CHARS)),
        )
        .await
        .map_err(map_error)?;
    tracing::info!(
        { fields::TASK_TOKEN_HASH } = %token_hash(task_token),
        { fields::OUTCOME } = "failed",
        "Activity task failed by hand."
    );
    Ok(())
}
