//! The context a handler gets with each task: the task's identity, a heartbeat call and the
//! cancellation token.
//!
//! One context is created per polled task and shared (cheaply cloned) between the handler and the
//! worker's task runner, which heartbeats through the same context on the handler's behalf. The
//! context learns from SWF's heartbeat answers why a task must stop ([`CancelCause`]) and cancels
//! the token; the runner then decides how to answer. It dies with the task.
//!
//! A handler may call [`ActivityContext::heartbeat`] as often as it likes: a call goes to SWF only
//! when a heartbeat interval (a third of the type's heartbeat timeout) has passed since the task
//! started or since the last heartbeat; otherwise its details ride on the runner's next heartbeat,
//! due one interval after the last. SWF's heartbeat clock starts with the task, every heartbeat is
//! an API call that SWF rate-limits per account, and the interval already leaves room for two lost
//! beats before the timeout, so more calls buy nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::events;
use super::handler::{truncate_chars, MAX_PAYLOAD_CHARS};
use crate::swf::{SwfClient, SwfError};

/// Who a task is: everything an operator wants on its log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub workflow_id: String,
    pub run_id: String,
    pub activity_id: String,
    pub activity_type: String,
    pub activity_version: String,
    /// 1 for a stage's first attempt (from the decider's envelope; 1 for hand-injected tasks).
    pub attempt: u32,
    pub media_uuid: String,
    pub user_uuid: String,
    pub workflow_type: String,
    /// The stage name in the workflow definition (empty for hand-injected tasks).
    pub stage: String,
    pub task_list: String,
    /// A short hash of the task token, safe to log.
    pub task_token_hash: String,
    pub started_event_id: i64,
}

/// Why a task's cancellation token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelCause {
    /// SWF answered a heartbeat with `cancelRequested`: the decider asked for it. Stop; the task
    /// is answered as canceled.
    Requested,
    /// SWF no longer knows the task (UnknownResourceFault): it timed out or was closed. Any further
    /// work is wasted; nothing can be answered.
    TaskLost,
    /// The worker is shutting down and the drain timeout passed.
    DrainTimeout,
}

#[derive(Debug)]
struct HeartbeatState {
    /// The last heartbeat of either kind, or the task's start.
    last_sent: Instant,
    details: Option<String>,
}

struct Inner {
    info: TaskInfo,
    token: String,
    client: Arc<dyn SwfClient>,
    cancel: CancellationToken,
    /// Fired only for the terminal causes (lost task, drain timeout): the runner stops waiting
    /// for the handler.
    stop: CancellationToken,
    cause: Mutex<Option<CancelCause>>,
    lost_reason: Mutex<Option<String>>,
    heartbeat: Mutex<HeartbeatState>,
    /// The heartbeat interval: the worker beats this long after the last heartbeat, and a
    /// handler's call within it is held back (zero: none held back).
    heartbeat_gap: Duration,
}

/// A task's identity, heartbeat and cancellation, handed to [`super::ActivityHandler::handle`].
#[derive(Clone)]
pub struct ActivityContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ActivityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityContext")
            .field("info", &self.inner.info)
            .field("cancelled", &self.inner.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl ActivityContext {
    pub(crate) fn new(
        info: TaskInfo,
        token: String,
        client: Arc<dyn SwfClient>,
        cancel: CancellationToken,
        heartbeat_gap: Duration,
    ) -> ActivityContext {
        ActivityContext {
            inner: Arc::new(Inner {
                info,
                token,
                client,
                cancel,
                stop: CancellationToken::new(),
                cause: Mutex::new(None),
                lost_reason: Mutex::new(None),
                heartbeat: Mutex::new(HeartbeatState {
                    last_sent: Instant::now(),
                    details: None,
                }),
                heartbeat_gap,
            }),
        }
    }

    pub fn info(&self) -> &TaskInfo {
        &self.inner.info
    }

    /// The raw task token. Only for [`super::ActivityOutcome::CompleteLater`]: store it where the
    /// person finishing the work can find it. Never log it (use `info().task_token_hash`).
    pub fn task_token(&self) -> &str {
        &self.inner.token
    }

    /// Fires when the task must stop; [`ActivityContext::cancel_cause`] says why.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    pub fn cancel_cause(&self) -> Option<CancelCause> {
        *lock(&self.inner.cause)
    }

    /// Reports progress to SWF. `details` (cut to 32,768 characters) are kept and repeated by the
    /// worker's own heartbeats, so they show in ActivityTaskTimedOut if the task times out. A call
    /// within one heartbeat interval of the task's start or of the last heartbeat only updates the
    /// details, which the worker's next heartbeat (at most one interval away) sends.
    /// Failures are handled here: a cancel request or a lost task fires [`Self::cancelled`].
    pub async fn heartbeat(&self, details: Option<String>) {
        let details = details.map(|d| truncate_chars(&d, MAX_PAYLOAD_CHARS));
        let due = {
            let mut state = lock(&self.inner.heartbeat);
            state.details = details.clone();
            state.last_sent.elapsed() >= self.inner.heartbeat_gap
        };
        if due {
            self.send_heartbeat(details).await;
        }
    }

    /// The worker's own heartbeat, repeating the handler's last details.
    pub(crate) async fn auto_heartbeat(&self) {
        let details = lock(&self.inner.heartbeat).details.clone();
        self.send_heartbeat(details).await;
    }

    /// When the next automatic heartbeat is due: one interval after the last heartbeat of either
    /// kind, or after the task started.
    pub(crate) fn next_heartbeat_at(&self) -> Instant {
        lock(&self.inner.heartbeat).last_sent + self.inner.heartbeat_gap
    }

    /// Fires when the task cannot be answered any more (lost, or past the drain timeout).
    pub(crate) fn stopped(&self) -> &CancellationToken {
        &self.inner.stop
    }

    /// What SWF said when it refused the task (UnknownResource's message).
    pub(crate) fn lost_reason(&self) -> Option<String> {
        lock(&self.inner.lost_reason).clone()
    }

    /// Records why the task stops and fires the token. A terminal cause (lost, drain timeout)
    /// replaces a cancel request: a task that was asked to cancel can still time out meanwhile.
    pub(crate) fn cancel_with(&self, cause: CancelCause) {
        let terminal = cause != CancelCause::Requested;
        {
            let mut current = lock(&self.inner.cause);
            match *current {
                None => *current = Some(cause),
                Some(CancelCause::Requested) if terminal => *current = Some(cause),
                Some(_) => {}
            }
        }
        self.inner.cancel.cancel();
        if terminal {
            self.inner.stop.cancel();
        }
    }

    async fn send_heartbeat(&self, details: Option<String>) {
        if matches!(
            self.cancel_cause(),
            Some(CancelCause::TaskLost | CancelCause::DrainTimeout)
        ) {
            return;
        }
        // Stamped before the call so the automatic heartbeat does not pile up behind a slow one.
        lock(&self.inner.heartbeat).last_sent = Instant::now();
        let info = &self.inner.info;
        match self
            .inner
            .client
            .record_activity_task_heartbeat(&self.inner.token, details)
            .await
        {
            Ok(cancel_requested) => {
                events::HeartbeatSent { info }.emit();
                if cancel_requested && self.cancel_cause().is_none() {
                    events::CancelRequested { info }.emit();
                    self.cancel_with(CancelCause::Requested);
                }
            }
            Err(error) => {
                events::HeartbeatFailed {
                    info,
                    error: &error,
                }
                .emit();
                if let SwfError::UnknownResource(reason) = &error {
                    lock(&self.inner.lost_reason).get_or_insert_with(|| reason.clone());
                    self.cancel_with(CancelCause::TaskLost);
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
