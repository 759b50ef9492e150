//! Runs one polled activity task from dispatch to its final answer.
//!
//! Lifecycle: decode the envelope into the task's identity and open the task span; find the
//! handler; run it in its own tokio task (so a panic is caught as a `JoinError` and an abandoned
//! task can be aborted); heartbeat for it while it runs; react to cancellation (SWF's
//! `cancelRequested`, UnknownResourceFault, the drain timeout); answer SWF (completed, failed or
//! canceled) unless the task was lost or deferred; emit the closing line. The caller holds the
//! task's slot until this returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::context::{ActivityContext, CancelCause, TaskInfo};
use super::events::{self, TaskOutcome};
use super::handler::{
    reasons, ActivityError, ActivityOutcome, ActivityRegistry, MAX_PAYLOAD_CHARS,
};
use crate::envelope::{token_hash, Envelope};
use crate::swf::{ActivityTask, SwfClient, SwfError};
use crate::telemetry::{fields, set_execution_parent};

/// What every task of one worker shares.
pub(crate) struct TaskEnv {
    pub client: Arc<dyn SwfClient>,
    pub registry: ActivityRegistry,
    pub task_list: String,
    pub default_heartbeat_interval: Duration,
    pub heartbeat_timeouts: HashMap<String, Duration>,
    /// Fired when the drain timeout passes: every running task is abandoned and failed.
    pub drain: CancellationToken,
    pub drain_timeout: Duration,
}

impl TaskEnv {
    /// A third of the type's heartbeat timeout, so two heartbeats may be lost before SWF gives up.
    fn heartbeat_interval(&self, activity_type: &str) -> Duration {
        self.heartbeat_timeouts
            .get(activity_type)
            .map(|t| *t / 3)
            .unwrap_or(self.default_heartbeat_interval)
            .max(Duration::from_millis(10))
    }
}

enum Ended {
    Returned(Result<ActivityOutcome, ActivityError>),
    Panicked(String),
    Abandoned(CancelCause),
}

enum Answer {
    Completed(String),
    Failed(ActivityError),
    Canceled(Option<String>),
}

/// Runs `task` to its end; never panics on the handler's behalf.
pub(crate) async fn run_task(env: Arc<TaskEnv>, task: ActivityTask) {
    let started = Instant::now();
    let (tctx, input) = Envelope::decode(task.input.as_deref());
    let info = TaskInfo {
        workflow_id: task.execution.workflow_id,
        run_id: task.execution.run_id,
        activity_id: task.activity_id,
        activity_type: task.activity_type.name,
        activity_version: task.activity_type.version,
        attempt: tctx.attempt,
        media_uuid: tctx.media_uuid,
        user_uuid: tctx.user_uuid,
        workflow_type: tctx.workflow_type,
        stage: tctx.stage,
        task_list: env.task_list.clone(),
        task_token_hash: token_hash(&task.task_token),
        started_event_id: task.started_event_id,
    };
    let span = tracing::info_span!(
        "activity_task",
        // Strings as `&str`, not `%`: recorded without a formatter in every layer.
        { fields::WORKFLOW_ID } = info.workflow_id.as_str(),
        { fields::RUN_ID } = info.run_id.as_str(),
        { fields::MEDIA_UUID } = info.media_uuid.as_str(),
        { fields::USER_UUID } = info.user_uuid.as_str(),
        { fields::WORKFLOW_TYPE } = info.workflow_type.as_str(),
        { fields::ACTIVITY_TYPE } = info.activity_type.as_str(),
        { fields::ACTIVITY_ID } = info.activity_id.as_str(),
        { fields::ATTEMPT } = info.attempt,
        { fields::TASK_LIST } = info.task_list.as_str(),
    );
    // One trace per workflow execution, whichever host runs the task.
    set_execution_parent(&span, &info.run_id);
    execute(env, task.task_token, info, input, started)
        .instrument(span)
        .await;
}

async fn execute(
    env: Arc<TaskEnv>,
    token: String,
    info: TaskInfo,
    input: serde_json::Value,
    started: Instant,
) {
    events::TaskStarted { info: &info }.emit();
    let Some(handler) = env.registry.get(&info.activity_type) else {
        let known = env.registry.names();
        events::UnknownActivityType {
            info: &info,
            known: &known,
        }
        .emit();
        let error = ActivityError::new(reasons::UNKNOWN_ACTIVITY_TYPE).with_details(format!(
            "no handler for activity type {} (version {}) on task list {}; this worker handles: {}",
            info.activity_type,
            info.activity_version,
            info.task_list,
            known.join(", ")
        ));
        let reason = error.wire_reason();
        let outcome = answer(&env, &token, &info, Answer::Failed(error)).await;
        finish(&info, outcome, started, Some(&reason));
        return;
    };

    let ctx = ActivityContext::new(
        info.clone(),
        token.clone(),
        env.client.clone(),
        CancellationToken::new(),
        env.heartbeat_interval(&info.activity_type),
    );
    let mut handle = AbortOnDropHandle::new(tokio::spawn({
        let ctx = ctx.clone();
        async move { handler.handle(ctx, input).await }.instrument(tracing::Span::current())
    }));
    // Heartbeats run beside the handler, so a slow heartbeat call never delays the answer.
    let mut heartbeats = AbortOnDropHandle::new(tokio::spawn({
        let ctx = ctx.clone();
        async move {
            loop {
                tokio::select! {
                    _ = ctx.stopped().cancelled() => return,
                    _ = tokio::time::sleep_until(ctx.next_heartbeat_at()) => {
                        // A handler heartbeat while this slept moved the deadline: sleep again.
                        if ctx.next_heartbeat_at() <= Instant::now() {
                            ctx.auto_heartbeat().await;
                        }
                    }
                }
            }
        }
        .instrument(tracing::Span::current())
    }));
    // A cancel request only fires the handler's token: the handler winds down and returns.
    let ended = tokio::select! {
        biased;
        joined = &mut handle => match joined {
            Ok(result) => Ended::Returned(result),
            Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
            Err(e) => Ended::Panicked(format!("the handler task ended abnormally: {e}")),
        },
        _ = env.drain.cancelled() => {
            ctx.cancel_with(CancelCause::DrainTimeout);
            Ended::Abandoned(CancelCause::DrainTimeout)
        }
        _ = ctx.stopped().cancelled() => {
            Ended::Abandoned(ctx.cancel_cause().unwrap_or(CancelCause::TaskLost))
        }
    };
    // Dropping the handle aborts a handler that is still running (lost task, drain timeout).
    drop(handle);
    // Waited for, so no heartbeat can reach SWF after the task's answer.
    heartbeats.abort();
    let _ = (&mut heartbeats).await;

    let (outcome, reason) = match ended {
        Ended::Returned(Ok(ActivityOutcome::Completed(value))) => {
            let result = value.to_string();
            let chars = result.chars().count();
            if chars > MAX_PAYLOAD_CHARS {
                let error = ActivityError::non_retryable(reasons::RESULT_TOO_LARGE).with_details(
                    format!(
                        "the handler's result has {chars} characters; SWF accepts at most {MAX_PAYLOAD_CHARS}: store large data elsewhere and return a reference"
                    ),
                );
                let reason = error.wire_reason();
                (
                    answer(&env, &token, &info, Answer::Failed(error)).await,
                    Some(reason),
                )
            } else {
                (
                    answer(&env, &token, &info, Answer::Completed(result)).await,
                    None,
                )
            }
        }
        Ended::Returned(Ok(ActivityOutcome::CompleteLater)) => {
            tracing::info!(
                { fields::TASK_TOKEN_HASH } = %info.task_token_hash,
                "Activity task left open for manual completion; finish it with `swf-runtime complete`."
            );
            (TaskOutcome::Deferred, None)
        }
        Ended::Returned(Err(error)) if ctx.cancel_cause() == Some(CancelCause::Requested) => {
            let details = error.wire_details().or_else(|| Some(error.wire_reason()));
            let reason = error.wire_reason();
            (
                answer(&env, &token, &info, Answer::Canceled(details)).await,
                Some(reason),
            )
        }
        Ended::Returned(Err(error)) => {
            let reason = error.wire_reason();
            (
                answer(&env, &token, &info, Answer::Failed(error)).await,
                Some(reason),
            )
        }
        Ended::Panicked(message) => {
            let error = ActivityError::new(reasons::HANDLER_PANICKED).with_details(message);
            let reason = error.wire_reason();
            (
                answer(&env, &token, &info, Answer::Failed(error)).await,
                Some(reason),
            )
        }
        Ended::Abandoned(CancelCause::TaskLost) => {
            let error = SwfError::UnknownResource(
                ctx.lost_reason()
                    .unwrap_or_else(|| "the task timed out or was closed".into()),
            );
            events::TaskLost {
                info: &info,
                during: "heartbeat",
                error: &error,
            }
            .emit();
            (TaskOutcome::TimedOut, None)
        }
        Ended::Abandoned(CancelCause::DrainTimeout) => {
            let error = ActivityError::new(reasons::DRAIN_TIMEOUT).with_details(format!(
                "the worker shut down and the task was still running when the drain timeout of {} s passed",
                env.drain_timeout.as_secs_f64()
            ));
            let reason = error.wire_reason();
            (
                answer(&env, &token, &info, Answer::Failed(error)).await,
                Some(reason),
            )
        }
        Ended::Abandoned(CancelCause::Requested) => (
            answer(&env, &token, &info, Answer::Canceled(None)).await,
            None,
        ),
    };
    finish(&info, outcome, started, reason.as_deref());
}

fn finish(info: &TaskInfo, outcome: TaskOutcome, started: Instant, reason: Option<&str>) {
    events::TaskFinished {
        info,
        outcome,
        duration: started.elapsed(),
        reason,
    }
    .emit();
}

/// Sends the final answer; returns the task's outcome as it really ended.
async fn answer(env: &TaskEnv, token: &str, info: &TaskInfo, answer: Answer) -> TaskOutcome {
    let (result, intended, name) = match answer {
        Answer::Completed(result) => (
            env.client
                .respond_activity_task_completed(token, Some(result))
                .await,
            TaskOutcome::Completed,
            "completed",
        ),
        Answer::Failed(error) => (
            env.client
                .respond_activity_task_failed(
                    token,
                    Some(error.wire_reason()),
                    error.wire_details(),
                )
                .await,
            TaskOutcome::Failed,
            "failed",
        ),
        Answer::Canceled(details) => (
            env.client
                .respond_activity_task_canceled(token, details)
                .await,
            TaskOutcome::Canceled,
            "canceled",
        ),
    };
    match result {
        Ok(()) => intended,
        Err(error @ SwfError::UnknownResource(_)) => {
            events::TaskLost {
                info,
                during: "answer",
                error: &error,
            }
            .emit();
            TaskOutcome::TimedOut
        }
        Err(error) => {
            events::AnswerFailed {
                error: &error,
                answer: name,
            }
            .emit();
            TaskOutcome::AnswerFailed
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("the handler panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("the handler panicked: {s}")
    } else {
        "the handler panicked with a non-string payload".to_string()
    }
}
