//! An in-memory fake of the SWF boundary for unit tests.
//!
//! A test pushes activity tasks (and decision task pages) onto task lists; polls block until a
//! task arrives or the fake's poll timeout passes, woken by a `tokio::sync::Notify` rather than a
//! sleep loop, so tests run under `tokio::time::pause` deterministically. Every answer a worker
//! or decider gives is recorded in order ([`Recorded`]) and can be awaited with
//! [`FakeSwf::wait_for`]. Faults are scripted per task token ([`TaskScript`]) or queued for the
//! next polls. A task token that was
//! answered, or whose scripted UnknownResource fired, is closed: like SWF, every later call with it
//! gets UnknownResource, so a double answer shows up in a test instead of passing silently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    ActivityTask, ActivityTypeRegistration, Decision, DecisionTaskPage, ExecutionInfo,
    ExecutionState, HistoryEvent, HistoryPage, StartWorkflow, SwfClient, SwfError, TypeRef,
    WorkflowExecution, WorkflowTypeRegistration,
};

/// One call the fake accepted, in the order it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Heartbeat {
        token: String,
        details: Option<String>,
    },
    Completed {
        token: String,
        result: Option<String>,
    },
    Failed {
        token: String,
        reason: Option<String>,
        details: Option<String>,
    },
    Canceled {
        token: String,
        details: Option<String>,
    },
    DecisionCompleted {
        token: String,
        decisions: Vec<Decision>,
        execution_context: Option<String>,
    },
    Started {
        workflow_id: String,
        input: Option<String>,
    },
    Signaled {
        workflow_id: String,
        signal_name: String,
        input: Option<String>,
    },
    CancelRequested {
        workflow_id: String,
    },
    Terminated {
        workflow_id: String,
        reason: Option<String>,
    },
}

impl Recorded {
    /// The task token of an activity or decision answer.
    pub fn token(&self) -> Option<&str> {
        match self {
            Recorded::Heartbeat { token, .. }
            | Recorded::Completed { token, .. }
            | Recorded::Failed { token, .. }
            | Recorded::Canceled { token, .. }
            | Recorded::DecisionCompleted { token, .. } => Some(token),
            _ => None,
        }
    }

    /// Whether this is a final answer to an activity task (completed, failed or canceled).
    pub fn is_activity_answer(&self) -> bool {
        matches!(
            self,
            Recorded::Completed { .. } | Recorded::Failed { .. } | Recorded::Canceled { .. }
        )
    }
}

/// Faults scripted for one task token.
#[derive(Debug, Clone, Default)]
pub struct TaskScript {
    /// From this heartbeat on (1-based), heartbeats answer `cancelRequested = true`.
    pub cancel_requested_at_heartbeat: Option<u32>,
    /// After this many accepted heartbeats the task "times out": the next heartbeat and every later
    /// call with the token get UnknownResource.
    pub unknown_resource_after_heartbeats: Option<u32>,
    /// The final answer (completed, failed or canceled) gets UnknownResource.
    pub unknown_resource_on_answer: bool,
}

#[derive(Default)]
struct State {
    activity_queues: HashMap<String, VecDeque<ActivityTask>>,
    decision_queues: HashMap<String, VecDeque<DecisionTaskPage>>,
    /// Later pages of a decision task, by the page token that names them.
    decision_pages: HashMap<String, DecisionTaskPage>,
    histories: HashMap<WorkflowExecution, Vec<HistoryEvent>>,
    history_page_size: usize,
    scripts: HashMap<String, TaskScript>,
    heartbeat_attempts: HashMap<String, u32>,
    closed_tokens: HashSet<String>,
    recorded: Vec<Recorded>,
    activity_polls: HashMap<String, u64>,
    decision_polls: HashMap<String, u64>,
    polls_in_flight: usize,
    poll_errors: VecDeque<SwfError>,
    registered_domains: HashSet<String>,
    registered_types: HashSet<(bool, TypeRef)>,
    executions: Vec<ExecutionInfo>,
}

/// [`SwfClient`] in memory. See the module documentation.
pub struct FakeSwf {
    domain: String,
    poll_timeout: Duration,
    state: Mutex<State>,
    /// Wakes blocked polls when a task is pushed.
    pushed: Notify,
    /// Wakes [`FakeSwf::wait_for`] when anything was called or recorded.
    changed: Notify,
    next_run: AtomicU64,
}

impl std::fmt::Debug for FakeSwf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSwf")
            .field("domain", &self.domain)
            .field("poll_timeout", &self.poll_timeout)
            .finish_non_exhaustive()
    }
}

/// Decrements the in-flight poll count even when the poll future is dropped (a worker shutting
/// down abandons its long poll).
struct InFlight<'a>(&'a FakeSwf);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().polls_in_flight -= 1;
        self.0.changed.notify_waiters();
    }
}

impl FakeSwf {
    /// A fake for `domain` whose empty polls return after `poll_timeout`.
    pub fn new(domain: &str, poll_timeout: Duration) -> FakeSwf {
        FakeSwf {
            domain: domain.to_string(),
            poll_timeout,
            state: Mutex::new(State {
                history_page_size: 100,
                ..State::default()
            }),
            pushed: Notify::new(),
            changed: Notify::new(),
            next_run: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide the real failure behind a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.changed.notify_waiters();
    }

    /// An activity task with ids derived from `token` (`wf-TOKEN`, `run-TOKEN`, `act-TOKEN`).
    pub fn activity_task(token: &str, activity_type: &str, input: Option<String>) -> ActivityTask {
        ActivityTask {
            task_token: token.to_string(),
            activity_id: format!("act-{token}"),
            activity_type: TypeRef {
                name: activity_type.to_string(),
                version: "1".to_string(),
            },
            execution: WorkflowExecution {
                workflow_id: format!("wf-{token}"),
                run_id: format!("run-{token}"),
            },
            input,
            started_event_id: 1,
        }
    }

    /// Puts an activity task on a task list; one blocked poller picks it up.
    pub fn push_activity_task(&self, task_list: &str, task: ActivityTask) {
        self.lock()
            .activity_queues
            .entry(task_list.to_string())
            .or_default()
            .push_back(task);
        self.pushed.notify_waiters();
        self.touch();
    }

    /// Puts an activity task on a task list with faults scripted for its token.
    pub fn push_scripted_activity_task(
        &self,
        task_list: &str,
        task: ActivityTask,
        script: TaskScript,
    ) {
        self.script(&task.task_token, script);
        self.push_activity_task(task_list, task);
    }

    /// Scripts faults for a task token.
    pub fn script(&self, token: &str, script: TaskScript) {
        self.lock().scripts.insert(token.to_string(), script);
    }

    /// Queues a decision task: its first page is handed to a poll, later pages are served by
    /// their `next_page_token`s (each page names the next one).
    pub fn push_decision_task(&self, task_list: &str, pages: Vec<DecisionTaskPage>) {
        let mut state = self.lock();
        let mut pages = pages.into_iter();
        let Some(first) = pages.next() else { return };
        let mut token = first.next_page_token.clone();
        for page in pages {
            let Some(t) = token.take() else { break };
            token = page.next_page_token.clone();
            state.decision_pages.insert(t, page);
        }
        state
            .decision_queues
            .entry(task_list.to_string())
            .or_default()
            .push_back(first);
        drop(state);
        self.pushed.notify_waiters();
        self.touch();
    }

    /// Sets the history GetWorkflowExecutionHistory serves for an execution, `page_size` events
    /// a page.
    pub fn set_history(
        &self,
        execution: WorkflowExecution,
        events: Vec<HistoryEvent>,
        page_size: usize,
    ) {
        let mut state = self.lock();
        state.histories.insert(execution, events);
        state.history_page_size = page_size.max(1);
    }

    /// The next polls (activity or decision) fail with these errors, in order.
    pub fn fail_next_polls(&self, errors: Vec<SwfError>) {
        self.lock().poll_errors.extend(errors);
    }

    /// Every accepted call, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// The final answers (completed, failed, canceled) to activity tasks, in order.
    pub fn activity_answers(&self) -> Vec<Recorded> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| r.is_activity_answer())
            .cloned()
            .collect()
    }

    /// Accepted heartbeats of one task token.
    pub fn heartbeats(&self, token: &str) -> Vec<Option<String>> {
        self.lock()
            .recorded
            .iter()
            .filter_map(|r| match r {
                Recorded::Heartbeat { token: t, details } if t == token => Some(details.clone()),
                _ => None,
            })
            .collect()
    }

    /// Heartbeat calls for one token, refused ones included.
    pub fn heartbeat_attempts(&self, token: &str) -> u32 {
        self.lock()
            .heartbeat_attempts
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    /// PollForActivityTask calls started on a task list.
    pub fn activity_polls(&self, task_list: &str) -> u64 {
        self.lock()
            .activity_polls
            .get(task_list)
            .copied()
            .unwrap_or(0)
    }

    /// PollForDecisionTask calls (first pages only) started on a task list.
    pub fn decision_polls(&self, task_list: &str) -> u64 {
        self.lock()
            .decision_polls
            .get(task_list)
            .copied()
            .unwrap_or(0)
    }

    /// Polls currently blocked in the fake.
    pub fn polls_in_flight(&self) -> usize {
        self.lock().polls_in_flight
    }

    /// Tasks still waiting on an activity task list.
    pub fn pending_activity_tasks(&self, task_list: &str) -> usize {
        self.lock()
            .activity_queues
            .get(task_list)
            .map_or(0, VecDeque::len)
    }

    /// Waits until `cond` holds, re-checking whenever the fake is called; false after `limit`.
    pub async fn wait_for<F>(&self, limit: Duration, cond: F) -> bool
    where
        F: Fn(&FakeSwf) -> bool,
    {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(self);
            }
        }
    }

    fn record(&self, state: &mut State, entry: Recorded) {
        state.recorded.push(entry);
        self.touch();
    }

    fn check_open(state: &State, token: &str) -> Result<(), SwfError> {
        if state.closed_tokens.contains(token) {
            return Err(SwfError::UnknownResource(
                "Unknown task token: the task timed out or was already answered".into(),
            ));
        }
        Ok(())
    }

    /// The shared path of the three final answers.
    fn answer(&self, token: &str, entry: Recorded) -> Result<(), SwfError> {
        let mut state = self.lock();
        Self::check_open(&state, token)?;
        state.closed_tokens.insert(token.to_string());
        if state
            .scripts
            .get(token)
            .is_some_and(|s| s.unknown_resource_on_answer)
        {
            drop(state);
            self.touch();
            return Err(SwfError::UnknownResource(
                "Unknown task token: the task timed out".into(),
            ));
        }
        self.record(&mut state, entry);
        Ok(())
    }

    fn begin_poll(&self, decision: bool, task_list: &str) -> Result<InFlight<'_>, SwfError> {
        let mut state = self.lock();
        let polls = if decision {
            &mut state.decision_polls
        } else {
            &mut state.activity_polls
        };
        *polls.entry(task_list.to_string()).or_default() += 1;
        let failure = state.poll_errors.pop_front();
        if failure.is_none() {
            state.polls_in_flight += 1;
        }
        drop(state);
        self.touch();
        match failure {
            Some(err) => Err(err),
            None => Ok(InFlight(self)),
        }
    }

    /// Blocks until `take` yields a task or the poll timeout passes.
    async fn wait_for_task<T>(&self, mut take: impl FnMut(&mut State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.poll_timeout;
        loop {
            let notified = self.pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(task) = take(&mut self.lock()) {
                return Some(task);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return take(&mut self.lock());
            }
        }
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[async_trait]
impl SwfClient for FakeSwf {
    fn domain(&self) -> &str {
        &self.domain
    }

    async fn register_domain(
        &self,
        _retention_days: u32,
        _description: Option<String>,
    ) -> Result<(), SwfError> {
        if !self.lock().registered_domains.insert(self.domain.clone()) {
            return Err(SwfError::AlreadyExists(format!("domain {}", self.domain)));
        }
        Ok(())
    }

    async fn register_workflow_type(&self, reg: &WorkflowTypeRegistration) -> Result<(), SwfError> {
        if !self
            .lock()
            .registered_types
            .insert((true, reg.workflow_type.clone()))
        {
            return Err(SwfError::AlreadyExists(format!(
                "workflow type {} {}",
                reg.workflow_type.name, reg.workflow_type.version
            )));
        }
        Ok(())
    }

    async fn register_activity_type(&self, reg: &ActivityTypeRegistration) -> Result<(), SwfError> {
        if !self
            .lock()
            .registered_types
            .insert((false, reg.activity_type.clone()))
        {
            return Err(SwfError::AlreadyExists(format!(
                "activity type {} {}",
                reg.activity_type.name, reg.activity_type.version
            )));
        }
        Ok(())
    }

    async fn start_workflow_execution(&self, start: &StartWorkflow) -> Result<String, SwfError> {
        let mut state = self.lock();
        if state
            .executions
            .iter()
            .any(|e| e.execution.workflow_id == start.workflow_id && e.execution_status == "OPEN")
        {
            return Err(SwfError::WorkflowAlreadyStarted(start.workflow_id.clone()));
        }
        let run_id = format!("run-{}", self.next_run.fetch_add(1, Ordering::Relaxed));
        state.executions.push(ExecutionInfo {
            execution: WorkflowExecution {
                workflow_id: start.workflow_id.clone(),
                run_id: run_id.clone(),
            },
            workflow_type: start.workflow_type.clone().unwrap_or(TypeRef {
                name: String::new(),
                version: String::new(),
            }),
            start_timestamp: now_secs(),
            close_timestamp: None,
            execution_status: "OPEN".into(),
            close_status: None,
            cancel_requested: false,
            tag_list: start.tag_list.clone(),
        });
        self.record(
            &mut state,
            Recorded::Started {
                workflow_id: start.workflow_id.clone(),
                input: start.input.clone(),
            },
        );
        Ok(run_id)
    }

    async fn poll_for_decision_task(
        &self,
        task_list: &str,
        _identity: &str,
        next_page_token: Option<&str>,
    ) -> Result<Option<DecisionTaskPage>, SwfError> {
        if let Some(page_token) = next_page_token {
            return self
                .lock()
                .decision_pages
                .remove(page_token)
                .map(Some)
                .ok_or_else(|| SwfError::Validation(format!("unknown page token {page_token}")));
        }
        let _in_flight = self.begin_poll(true, task_list)?;
        Ok(self
            .wait_for_task(|s| s.decision_queues.get_mut(task_list)?.pop_front())
            .await)
    }

    async fn respond_decision_task_completed(
        &self,
        task_token: &str,
        decisions: Vec<Decision>,
        execution_context: Option<String>,
    ) -> Result<(), SwfError> {
        let mut state = self.lock();
        Self::check_open(&state, task_token)?;
        state.closed_tokens.insert(task_token.to_string());
        self.record(
            &mut state,
            Recorded::DecisionCompleted {
                token: task_token.to_string(),
                decisions,
                execution_context,
            },
        );
        Ok(())
    }

    async fn poll_for_activity_task(
        &self,
        task_list: &str,
        _identity: &str,
    ) -> Result<Option<ActivityTask>, SwfError> {
        let _in_flight = self.begin_poll(false, task_list)?;
        Ok(self
            .wait_for_task(|s| s.activity_queues.get_mut(task_list)?.pop_front())
            .await)
    }

    async fn record_activity_task_heartbeat(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<bool, SwfError> {
        let mut state = self.lock();
        let attempt = {
            let n = state
                .heartbeat_attempts
                .entry(task_token.to_string())
                .or_default();
            *n += 1;
            *n
        };
        self.touch();
        Self::check_open(&state, task_token)?;
        let script = state.scripts.get(task_token).cloned().unwrap_or_default();
        if script
            .unknown_resource_after_heartbeats
            .is_some_and(|n| attempt > n)
        {
            state.closed_tokens.insert(task_token.to_string());
            return Err(SwfError::UnknownResource(
                "Unknown task token: the task timed out".into(),
            ));
        }
        self.record(
            &mut state,
            Recorded::Heartbeat {
                token: task_token.to_string(),
                details,
            },
        );
        Ok(script
            .cancel_requested_at_heartbeat
            .is_some_and(|n| attempt >= n))
    }

    async fn respond_activity_task_completed(
        &self,
        task_token: &str,
        result: Option<String>,
    ) -> Result<(), SwfError> {
        self.answer(
            task_token,
            Recorded::Completed {
                token: task_token.to_string(),
                result,
            },
        )
    }

    async fn respond_activity_task_failed(
        &self,
        task_token: &str,
        reason: Option<String>,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        self.answer(
            task_token,
            Recorded::Failed {
                token: task_token.to_string(),
                reason,
                details,
            },
        )
    }

    async fn respond_activity_task_canceled(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        self.answer(
            task_token,
            Recorded::Canceled {
                token: task_token.to_string(),
                details,
            },
        )
    }

    async fn get_workflow_execution_history(
        &self,
        execution: &WorkflowExecution,
        next_page_token: Option<&str>,
        reverse_order: bool,
    ) -> Result<HistoryPage, SwfError> {
        let state = self.lock();
        let Some(events) = state.histories.get(execution) else {
            return Err(SwfError::UnknownResource(format!(
                "Unknown execution {} {}",
                execution.workflow_id, execution.run_id
            )));
        };
        let mut events = events.clone();
        if reverse_order {
            events.reverse();
        }
        let start = match next_page_token {
            None => 0,
            Some(t) => t
                .strip_prefix("page-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| SwfError::Validation(format!("bad page token {t}")))?,
        };
        let end = (start + state.history_page_size).min(events.len());
        Ok(HistoryPage {
            events: events.get(start..end).unwrap_or_default().to_vec(),
            next_page_token: (end < events.len()).then(|| format!("page-{end}")),
        })
    }

    async fn describe_workflow_execution(
        &self,
        execution: &WorkflowExecution,
    ) -> Result<ExecutionInfo, SwfError> {
        self.lock()
            .executions
            .iter()
            .find(|e| &e.execution == execution)
            .cloned()
            .ok_or_else(|| {
                SwfError::UnknownResource(format!(
                    "Unknown execution {} {}",
                    execution.workflow_id, execution.run_id
                ))
            })
    }

    async fn list_executions(
        &self,
        state: ExecutionState,
        since_secs: u64,
        workflow_id: Option<&str>,
    ) -> Result<Vec<ExecutionInfo>, SwfError> {
        let oldest = now_secs() - since_secs as f64;
        let want = match state {
            ExecutionState::Open => "OPEN",
            ExecutionState::Closed => "CLOSED",
        };
        Ok(self
            .lock()
            .executions
            .iter()
            .filter(|e| e.execution_status == want && e.start_timestamp >= oldest)
            .filter(|e| workflow_id.is_none_or(|id| e.execution.workflow_id == id))
            .cloned()
            .collect())
    }

    async fn signal_workflow_execution(
        &self,
        workflow_id: &str,
        _run_id: Option<&str>,
        signal_name: &str,
        input: Option<String>,
    ) -> Result<(), SwfError> {
        let mut state = self.lock();
        self.record(
            &mut state,
            Recorded::Signaled {
                workflow_id: workflow_id.to_string(),
                signal_name: signal_name.to_string(),
                input,
            },
        );
        Ok(())
    }

    async fn request_cancel_workflow_execution(
        &self,
        workflow_id: &str,
        _run_id: Option<&str>,
    ) -> Result<(), SwfError> {
        let mut state = self.lock();
        for e in state
            .executions
            .iter_mut()
            .filter(|e| e.execution.workflow_id == workflow_id && e.execution_status == "OPEN")
        {
            e.cancel_requested = true;
        }
        self.record(
            &mut state,
            Recorded::CancelRequested {
                workflow_id: workflow_id.to_string(),
            },
        );
        Ok(())
    }

    async fn terminate_workflow_execution(
        &self,
        workflow_id: &str,
        _run_id: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), SwfError> {
        let mut state = self.lock();
        let now = now_secs();
        for e in state
            .executions
            .iter_mut()
            .filter(|e| e.execution.workflow_id == workflow_id && e.execution_status == "OPEN")
        {
            e.execution_status = "CLOSED".into();
            e.close_status = Some("TERMINATED".into());
            e.close_timestamp = Some(now);
        }
        self.record(
            &mut state,
            Recorded::Terminated {
                workflow_id: workflow_id.to_string(),
                reason,
            },
        );
        Ok(())
    }

    async fn count_pending_activity_tasks(&self, task_list: &str) -> Result<u64, SwfError> {
        Ok(self.pending_activity_tasks(task_list) as u64)
    }

    async fn count_pending_decision_tasks(&self, task_list: &str) -> Result<u64, SwfError> {
        Ok(self
            .lock()
            .decision_queues
            .get(task_list)
            .map_or(0, VecDeque::len) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_empty_poll_returns_none_after_the_poll_timeout() {
        let fake = FakeSwf::new("d", Duration::from_secs(60));
        let started = Instant::now();
        assert!(fake
            .poll_for_activity_task("tl", "me")
            .await
            .unwrap()
            .is_none());
        assert!(started.elapsed() >= Duration::from_secs(60));
        assert_eq!(fake.polls_in_flight(), 0);
        assert_eq!(fake.activity_polls("tl"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_poll_wakes_when_a_task_is_pushed() {
        let fake = std::sync::Arc::new(FakeSwf::new("d", Duration::from_secs(60)));
        let poller = {
            let fake = fake.clone();
            tokio::spawn(async move { fake.poll_for_activity_task("tl", "me").await })
        };
        assert!(
            fake.wait_for(Duration::from_secs(5), |f| f.polls_in_flight() == 1)
                .await
        );
        fake.push_activity_task("other", FakeSwf::activity_task("x", "A", None));
        fake.push_activity_task("tl", FakeSwf::activity_task("t1", "A", None));
        let task = poller.await.unwrap().unwrap().expect("a task");
        assert_eq!(task.task_token, "t1");
        assert_eq!(fake.pending_activity_tasks("other"), 1);
    }

    #[tokio::test]
    async fn answered_and_timed_out_tokens_are_closed() {
        let fake = FakeSwf::new("d", Duration::from_millis(10));
        fake.respond_activity_task_completed("t1", Some("1".into()))
            .await
            .unwrap();
        assert!(matches!(
            fake.respond_activity_task_failed("t1", None, None).await,
            Err(SwfError::UnknownResource(_))
        ));
        fake.script(
            "t2",
            TaskScript {
                unknown_resource_after_heartbeats: Some(1),
                ..TaskScript::default()
            },
        );
        assert!(!fake
            .record_activity_task_heartbeat("t2", None)
            .await
            .unwrap());
        assert!(fake
            .record_activity_task_heartbeat("t2", None)
            .await
            .is_err());
        assert!(fake
            .respond_activity_task_completed("t2", None)
            .await
            .is_err());
        assert_eq!(fake.heartbeat_attempts("t2"), 2);
        assert_eq!(fake.heartbeats("t2").len(), 1);
        assert_eq!(fake.activity_answers().len(), 1);
    }

    #[tokio::test]
    async fn decision_pages_chain_by_page_token() {
        let fake = FakeSwf::new("d", Duration::from_millis(10));
        let page = |token: Option<&str>| DecisionTaskPage {
            task_token: "dt".into(),
            execution: WorkflowExecution {
                workflow_id: "w".into(),
                run_id: "r".into(),
            },
            workflow_type: TypeRef {
                name: "W".into(),
                version: "1".into(),
            },
            events: Vec::new(),
            next_page_token: token.map(str::to_string),
            previous_started_event_id: 0,
            started_event_id: 3,
        };
        fake.push_decision_task("d", vec![page(Some("p2")), page(None)]);
        let first = fake
            .poll_for_decision_task("d", "me", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.next_page_token.as_deref(), Some("p2"));
        let second = fake
            .poll_for_decision_task("d", "me", Some("p2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.next_page_token, None);
        assert!(fake
            .poll_for_decision_task("d", "me", None)
            .await
            .unwrap()
            .is_none());
    }
}
