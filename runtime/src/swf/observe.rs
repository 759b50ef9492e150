//! A client decorator that reports every answered poll to a callback, leaving every call's
//! behaviour unchanged.
//!
//! It serves what must know that polls happen without being part of the pollers: `/healthz`
//! (healthy while polls come back) and measurements such as the dispatch-latency example (when
//! did this task's poll answer arrive). Pollers, deciders and workers stay unaware of it.

use std::sync::Arc;

use super::{
    ActivityTask, ActivityTypeRegistration, Decision, DecisionTaskPage, ExecutionInfo,
    ExecutionState, HistoryPage, StartWorkflow, SwfClient, SwfError, WorkflowExecution,
    WorkflowTypeRegistration,
};

/// What a poll brought back: a task, or `None` for an empty poll.
#[derive(Debug, Clone, Copy)]
pub enum PollAnswer<'a> {
    Decision(Option<&'a DecisionTaskPage>),
    Activity(Option<&'a ActivityTask>),
}

/// Wraps `inner`; `on_poll` runs (synchronously, keep it cheap) after every successful poll.
pub fn observe_polls<F>(inner: Arc<dyn SwfClient>, on_poll: F) -> Arc<dyn SwfClient>
where
    F: Fn(PollAnswer<'_>) + Send + Sync + 'static,
{
    Arc::new(Observed { inner, on_poll })
}

struct Observed<F> {
    inner: Arc<dyn SwfClient>,
    on_poll: F,
}

#[async_trait::async_trait]
impl<F: Fn(PollAnswer<'_>) + Send + Sync + 'static> SwfClient for Observed<F> {
    fn domain(&self) -> &str {
        self.inner.domain()
    }
    async fn register_domain(&self, days: u32, d: Option<String>) -> Result<(), SwfError> {
        self.inner.register_domain(days, d).await
    }
    async fn register_workflow_type(&self, r: &WorkflowTypeRegistration) -> Result<(), SwfError> {
        self.inner.register_workflow_type(r).await
    }
    async fn register_activity_type(&self, r: &ActivityTypeRegistration) -> Result<(), SwfError> {
        self.inner.register_activity_type(r).await
    }
    async fn start_workflow_execution(&self, s: &StartWorkflow) -> Result<String, SwfError> {
        self.inner.start_workflow_execution(s).await
    }
    async fn poll_for_decision_task(
        &self,
        task_list: &str,
        identity: &str,
        next_page_token: Option<&str>,
    ) -> Result<Option<DecisionTaskPage>, SwfError> {
        let r = self
            .inner
            .poll_for_decision_task(task_list, identity, next_page_token)
            .await;
        if let Ok(page) = &r {
            (self.on_poll)(PollAnswer::Decision(page.as_ref()));
        }
        r
    }
    async fn respond_decision_task_completed(
        &self,
        token: &str,
        decisions: Vec<Decision>,
        ctx: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner
            .respond_decision_task_completed(token, decisions, ctx)
            .await
    }
    async fn poll_for_activity_task(
        &self,
        task_list: &str,
        identity: &str,
    ) -> Result<Option<ActivityTask>, SwfError> {
        let r = self.inner.poll_for_activity_task(task_list, identity).await;
        if let Ok(task) = &r {
            (self.on_poll)(PollAnswer::Activity(task.as_ref()));
        }
        r
    }
    async fn record_activity_task_heartbeat(
        &self,
        token: &str,
        details: Option<String>,
    ) -> Result<bool, SwfError> {
        self.inner
            .record_activity_task_heartbeat(token, details)
            .await
    }
    async fn respond_activity_task_completed(
        &self,
        token: &str,
        result: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner
            .respond_activity_task_completed(token, result)
            .await
    }
    async fn respond_activity_task_failed(
        &self,
        token: &str,
        reason: Option<String>,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner
            .respond_activity_task_failed(token, reason, details)
            .await
    }
    async fn respond_activity_task_canceled(
        &self,
        token: &str,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner
            .respond_activity_task_canceled(token, details)
            .await
    }
    async fn get_workflow_execution_history(
        &self,
        e: &WorkflowExecution,
        t: Option<&str>,
        rev: bool,
    ) -> Result<HistoryPage, SwfError> {
        self.inner.get_workflow_execution_history(e, t, rev).await
    }
    async fn describe_workflow_execution(
        &self,
        e: &WorkflowExecution,
    ) -> Result<ExecutionInfo, SwfError> {
        self.inner.describe_workflow_execution(e).await
    }
    async fn list_executions(
        &self,
        state: ExecutionState,
        since_secs: u64,
        workflow_id: Option<&str>,
    ) -> Result<Vec<ExecutionInfo>, SwfError> {
        self.inner
            .list_executions(state, since_secs, workflow_id)
            .await
    }
    async fn signal_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
        name: &str,
        input: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner
            .signal_workflow_execution(w, r, name, input)
            .await
    }
    async fn request_cancel_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
    ) -> Result<(), SwfError> {
        self.inner.request_cancel_workflow_execution(w, r).await
    }
    async fn terminate_workflow_execution(
        &self,
        w: &str,
        r: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), SwfError> {
        self.inner.terminate_workflow_execution(w, r, reason).await
    }
    async fn count_pending_activity_tasks(&self, tl: &str) -> Result<u64, SwfError> {
        self.inner.count_pending_activity_tasks(tl).await
    }
    async fn count_pending_decision_tasks(&self, tl: &str) -> Result<u64, SwfError> {
        self.inner.count_pending_decision_tasks(tl).await
    }
}
