//! Activity workers: pollers, dispatch, heartbeats, cancellation and drain.
//!
//! An [`ActivityWorker`] serves one task list with N slots. A poller takes a free slot *before* it
//! long-polls, so SWF never hands this host a task it cannot start at once; the polled task runs
//! in its own tokio task holding the slot until it is answered ([`task`]). Every wait also listens
//! to the shutdown token. On shutdown the pollers stop (an outstanding long poll is abandoned),
//! in-flight tasks may finish and be answered until the drain timeout, after which the remaining
//! ones are cancelled and failed with "drain timeout"; then [`ActivityWorker::run`] returns.
//!
//! Handlers implement [`ActivityHandler`] and are looked up by activity type in an
//! [`ActivityRegistry`]. Telemetry goes through [`events`]. [`complete_by_hand`] serves
//! `swf-runtime complete` for tasks a handler left open ([`ActivityOutcome::CompleteLater`]).

mod context;
pub mod events;
mod handler;
mod manual;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::{ActivityContext, CancelCause, TaskInfo};
pub use handler::{
    reasons, split_failure_details, truncate_chars, ActivityError, ActivityHandler,
    ActivityOutcome, ActivityRegistry, FnHandler, MAX_PAYLOAD_CHARS, MAX_REASON_CHARS,
    NON_RETRYABLE_MARKER,
};
pub use manual::{complete_by_hand, fail_by_hand, ManualError};

use crate::swf::{SwfClient, SwfError};
use task::TaskEnv;

/// How long answering the tasks cancelled at the drain timeout may take before the worker gives
/// up on them (each answer is one bounded API call).
const ANSWER_GRACE: Duration = Duration::from_secs(30);

/// One worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub task_list: String,
    /// Tasks run at the same time.
    pub slots: usize,
    /// Long polls outstanding at the same time (at most `slots`; each holds a slot while it waits).
    pub pollers: usize,
    /// Sent with every poll; shows in the history's ActivityTaskStarted events.
    pub identity: String,
    /// Heartbeat period for activity types without a known heartbeat timeout.
    pub default_heartbeat_interval: Duration,
    /// Heartbeat timeout per activity type (as registered); heartbeats go at a third of it.
    pub heartbeat_timeouts: HashMap<String, Duration>,
    /// How long in-flight tasks may run after shutdown before they are cancelled and failed.
    pub drain_timeout: Duration,
    /// First wait after a failed poll; doubles per consecutive failure up to `poll_backoff_max`.
    pub poll_backoff_initial: Duration,
    pub poll_backoff_max: Duration,
}

impl WorkerConfig {
    /// Defaults for `task_list`: 4 slots, 2 pollers, heartbeat every 20 s, 30 s drain.
    pub fn new(task_list: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            task_list: task_list.into(),
            slots: 4,
            pollers: 2,
            identity: default_identity(),
            default_heartbeat_interval: Duration::from_secs(20),
            heartbeat_timeouts: HashMap::new(),
            drain_timeout: Duration::from_secs(30),
            poll_backoff_initial: Duration::from_secs(1),
            poll_backoff_max: Duration::from_secs(60),
        }
    }
}

/// `host:pid`, SWF's identity field for the history (256 characters at most).
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".to_string());
    truncate_chars(&format!("{host}:{}", std::process::id()), 256)
}

/// Why a worker could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration cannot work (no slots, no task list, no handlers): fix it.
    #[error("invalid worker configuration: {0}")]
    InvalidConfig(String),
    /// SWF refused the polls in a way waiting cannot fix (unknown domain, invalid request,
    /// deprecated domain): fix the configuration or register the domain, then restart.
    #[error("polling task list {task_list} failed: {source}")]
    Poll {
        task_list: String,
        #[source]
        source: SwfError,
    },
}

/// Polls one task list and runs its tasks. See the module documentation.
pub struct ActivityWorker {
    client: Arc<dyn SwfClient>,
    registry: ActivityRegistry,
    config: WorkerConfig,
}

impl std::fmt::Debug for ActivityWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityWorker")
            .field("config", &self.config)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// What the pollers of one run share.
struct Pollers {
    env: Arc<TaskEnv>,
    slots: Arc<Semaphore>,
    total_slots: usize,
    running: Arc<AtomicUsize>,
    tracker: TaskTracker,
    stop: CancellationToken,
    fatal: Mutex<Option<SwfError>>,
    identity: String,
    backoff_initial: Duration,
    backoff_max: Duration,
}

/// Holds a slot while a task runs and keeps the slot gauges current.
struct SlotGuard {
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
    env: Arc<TaskEnv>,
    total: usize,
}

impl SlotGuard {
    fn new(
        permit: OwnedSemaphorePermit,
        running: Arc<AtomicUsize>,
        env: Arc<TaskEnv>,
        total: usize,
    ) -> SlotGuard {
        let in_use = running.fetch_add(1, Ordering::SeqCst) + 1;
        events::SlotsChanged {
            task_list: &env.task_list,
            in_use,
            total,
        }
        .emit();
        SlotGuard {
            _permit: permit,
            running,
            env,
            total,
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let in_use = self.running.fetch_sub(1, Ordering::SeqCst) - 1;
        events::SlotsChanged {
            task_list: &self.env.task_list,
            in_use,
            total: self.total,
        }
        .emit();
    }
}

impl ActivityWorker {
    pub fn new(
        client: Arc<dyn SwfClient>,
        registry: ActivityRegistry,
        config: WorkerConfig,
    ) -> Result<ActivityWorker, WorkerError> {
        if config.task_list.trim().is_empty() {
            return Err(WorkerError::InvalidConfig("the task list is empty".into()));
        }
        if config.slots == 0 {
            return Err(WorkerError::InvalidConfig(format!(
                "task list {} has 0 slots",
                config.task_list
            )));
        }
        if registry.is_empty() {
            return Err(WorkerError::InvalidConfig(format!(
                "no activity handlers registered for task list {}",
                config.task_list
            )));
        }
        Ok(ActivityWorker {
            client,
            registry,
            config,
        })
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Polls and runs tasks until `shutdown` fires (or SWF refuses the polls for good), then
    /// drains in-flight tasks and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let config = self.config;
        let env = Arc::new(TaskEnv {
            client: self.client,
            registry: self.registry,
            task_list: config.task_list.clone(),
            default_heartbeat_interval: config.default_heartbeat_interval,
            heartbeat_timeouts: config.heartbeat_timeouts,
            drain: CancellationToken::new(),
            drain_timeout: config.drain_timeout,
        });
        let pollers = Arc::new(Pollers {
            env: env.clone(),
            slots: Arc::new(Semaphore::new(config.slots)),
            total_slots: config.slots,
            running: Arc::new(AtomicUsize::new(0)),
            tracker: TaskTracker::new(),
            stop: shutdown.child_token(),
            fatal: Mutex::new(None),
            identity: config.identity,
            backoff_initial: config.poll_backoff_initial,
            backoff_max: config.poll_backoff_max.max(config.poll_backoff_initial),
        });
        events::SlotsChanged {
            task_list: &env.task_list,
            in_use: 0,
            total: config.slots,
        }
        .emit();
        events::WorkerStarted {
            task_list: &env.task_list,
            slots: config.slots,
            activity_types: &env.registry.names(),
        }
        .emit();

        let count = config.pollers.clamp(1, config.slots);
        futures::future::join_all((0..count).map(|_| pollers.clone().poll_loop())).await;

        // Drain: no poll is outstanding any more; let in-flight tasks finish.
        let drain_started = Instant::now();
        pollers.tracker.close();
        events::DrainStarted {
            task_list: &env.task_list,
            in_flight: pollers.tracker.len(),
            drain_timeout: config.drain_timeout,
        }
        .emit();
        if tokio::time::timeout(config.drain_timeout, pollers.tracker.wait())
            .await
            .is_err()
        {
            events::DrainTimedOut {
                task_list: &env.task_list,
                still_running: pollers.tracker.len(),
            }
            .emit();
            env.drain.cancel();
            if tokio::time::timeout(ANSWER_GRACE, pollers.tracker.wait())
                .await
                .is_err()
            {
                events::DrainAbandoned {
                    task_list: &env.task_list,
                    still_running: pollers.tracker.len(),
                }
                .emit();
            }
        }
        events::Drained {
            task_list: &env.task_list,
            duration: drain_started.elapsed(),
        }
        .emit();

        let fatal = pollers
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match fatal {
            Some(source) => Err(WorkerError::Poll {
                task_list: env.task_list.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Pollers {
    /// One poller: take a slot, long-poll, dispatch; until `stop` fires.
    async fn poll_loop(self: Arc<Self>) {
        let task_list = self.env.task_list.clone();
        let mut failures: u32 = 0;
        loop {
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                permit = self.slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            // An answer already in hand wins over shutdown: dropping it would strand the task until
            // its start-to-close timeout. A poll still waiting is abandoned.
            let polled = tokio::select! {
                biased;
                polled = self.env.client.poll_for_activity_task(&task_list, &self.identity) => polled,
                _ = self.stop.cancelled() => return,
            };
            match polled {
                Ok(Some(task)) => {
                    failures = 0;
                    events::PollAnswered {
                        kind: events::PollKind::Activity,
                        task_list: &task_list,
                        got_task: true,
                    }
                    .emit();
                    let guard = SlotGuard::new(
                        permit,
                        self.running.clone(),
                        self.env.clone(),
                        self.total_slots,
                    );
                    let env = self.env.clone();
                    self.tracker.spawn(async move {
                        task::run_task(env, task).await;
                        drop(guard);
                    });
                }
                Ok(None) => {
                    failures = 0;
                    events::PollAnswered {
                        kind: events::PollKind::Activity,
                        task_list: &task_list,
                        got_task: false,
                    }
                    .emit();
                }
                Err(error) => {
                    drop(permit);
                    if matches!(
                        error,
                        SwfError::UnknownResource(_)
                            | SwfError::Validation(_)
                            | SwfError::Deprecated(_)
                    ) {
                        events::PollFatal {
                            task_list: &task_list,
                            error: &error,
                        }
                        .emit();
                        self.fatal
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(error);
                        self.stop.cancel();
                        return;
                    }
                    failures = failures.saturating_add(1);
                    let retry_in =
                        crate::backoff::backoff(self.backoff_initial, self.backoff_max, failures);
                    events::PollFailed {
                        task_list: &task_list,
                        error: &error,
                        retry_in,
                        consecutive_failures: failures,
                    }
                    .emit();
                    tokio::select! {
                        biased;
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
    }
}
