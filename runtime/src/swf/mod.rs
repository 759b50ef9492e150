//! The SWF boundary: the only place that talks to the SWF API.
//!
//! [`SwfClient`] covers every call the runtime makes. [`aws::AwsSwfClient`] implements it on
//! `aws-sdk-swf` (against Amazon SWF, the embedded swf-local or any compatible endpoint) and
//! [`fake::FakeSwf`] implements it in memory for unit tests. A client is bound to one domain.
//! The history and decision shapes the decider works on live in [`model`]; they mirror SWF's JSON
//! so recorded histories can be replayed from fixtures.

pub mod aws;
pub mod fake;
pub mod model;
pub mod observe;

use async_trait::async_trait;
pub use model::{Decision, HistoryEvent};

/// The execution of a workflow: `workflow_id` (ours: the media uuid) plus SWF's `run_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WorkflowExecution {
    pub workflow_id: String,
    pub run_id: String,
}

/// A registered (name, version) of a workflow or activity type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TypeRef {
    pub name: String,
    pub version: String,
}

/// One page of a decision task as PollForDecisionTask answers it.
#[derive(Debug, Clone)]
pub struct DecisionTaskPage {
    pub task_token: String,
    pub execution: WorkflowExecution,
    pub workflow_type: TypeRef,
    pub events: Vec<HistoryEvent>,
    pub next_page_token: Option<String>,
    pub previous_started_event_id: i64,
    pub started_event_id: i64,
}

/// An activity task as PollForActivityTask answers it.
#[derive(Debug, Clone)]
pub struct ActivityTask {
    pub task_token: String,
    pub activity_id: String,
    pub activity_type: TypeRef,
    pub execution: WorkflowExecution,
    pub input: Option<String>,
    pub started_event_id: i64,
}

/// One page of GetWorkflowExecutionHistory.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    pub next_page_token: Option<String>,
}

/// StartWorkflowExecution's parameters. Timeouts are in seconds; `None` uses the type's default.
#[derive(Debug, Clone, Default)]
pub struct StartWorkflow {
    pub workflow_id: String,
    pub workflow_type: Option<TypeRef>,
    pub task_list: Option<String>,
    pub input: Option<String>,
    pub execution_start_to_close_timeout_secs: Option<u64>,
    pub task_start_to_close_timeout_secs: Option<u64>,
    pub child_policy: Option<String>,
    pub tag_list: Vec<String>,
}

/// A workflow type registration with every timeout stated explicitly (seconds, or "NONE" as None).
#[derive(Debug, Clone)]
pub struct WorkflowTypeRegistration {
    pub workflow_type: TypeRef,
    pub description: Option<String>,
    pub default_task_list: String,
    pub default_execution_start_to_close_timeout_secs: u64,
    pub default_task_start_to_close_timeout_secs: u64,
    pub default_child_policy: String,
}

/// An activity type registration with every timeout stated explicitly (`None` means "NONE").
#[derive(Debug, Clone)]
pub struct ActivityTypeRegistration {
    pub activity_type: TypeRef,
    pub description: Option<String>,
    pub default_task_list: String,
    pub default_schedule_to_start_timeout_secs: Option<u64>,
    pub default_schedule_to_close_timeout_secs: Option<u64>,
    pub default_start_to_close_timeout_secs: Option<u64>,
    pub default_heartbeat_timeout_secs: Option<u64>,
}

/// What DescribeWorkflowExecution and the List calls tell about one execution.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutionInfo {
    pub execution: WorkflowExecution,
    pub workflow_type: TypeRef,
    /// Epoch seconds.
    pub start_timestamp: f64,
    pub close_timestamp: Option<f64>,
    /// OPEN or CLOSED.
    pub execution_status: String,
    /// COMPLETED, FAILED, CANCELED, TERMINATED, CONTINUED_AS_NEW or TIMED_OUT once closed.
    pub close_status: Option<String>,
    pub cancel_requested: bool,
    pub tag_list: Vec<String>,
}

/// Which executions a List call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Open,
    Closed,
}

/// Errors at the SWF boundary, each saying what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum SwfError {
    /// The task timed out or was closed, or the named resource does not exist: stop the work.
    #[error("unknown resource: {0}")]
    UnknownResource(String),
    /// An open execution already has this workflow id: report it, do not retry.
    #[error("workflow execution already started: {0}")]
    WorkflowAlreadyStarted(String),
    /// The domain or type is already registered: registration is idempotent, treat as success.
    #[error("already registered: {0}")]
    AlreadyExists(String),
    /// The type or domain is deprecated: register a new version.
    #[error("type or domain deprecated: {0}")]
    Deprecated(String),
    /// Too many requests: back off and retry (the client already retried).
    #[error("throttled: {0}")]
    Throttled(String),
    /// An SWF limit was hit (open executions, pollers): back off.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The request was refused as invalid: a bug or bad input, do not retry.
    #[error("invalid request: {0}")]
    Validation(String),
    /// The endpoint could not be reached or the response was cut: retry with backoff.
    #[error("transport error: {0}")]
    Transport(String),
    /// Anything else the service said.
    #[error("{code}: {message}")]
    Service { code: String, message: String },
}

impl SwfError {
    /// A short, fixed name for the `error_type` metric label.
    pub fn error_type(&self) -> &'static str {
        match self {
            SwfError::UnknownResource(_) => "unknown_resource",
            SwfError::WorkflowAlreadyStarted(_) => "workflow_already_started",
            SwfError::AlreadyExists(_) => "already_exists",
            SwfError::Deprecated(_) => "deprecated",
            SwfError::Throttled(_) => "throttled",
            SwfError::LimitExceeded(_) => "limit_exceeded",
            SwfError::Validation(_) => "validation",
            SwfError::Transport(_) => "transport",
            SwfError::Service { .. } => "service",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SwfError::Throttled(_) | SwfError::LimitExceeded(_) | SwfError::Transport(_)
        )
    }
}

/// Every SWF call the runtime makes, for one domain.
///
/// Polls return `Ok(None)` for an empty poll (SWF's empty task token).
#[async_trait]
pub trait SwfClient: Send + Sync + 'static {
    /// The domain this client is bound to.
    fn domain(&self) -> &str;

    async fn register_domain(
        &self,
        retention_days: u32,
        description: Option<String>,
    ) -> Result<(), SwfError>;
    async fn register_workflow_type(&self, reg: &WorkflowTypeRegistration) -> Result<(), SwfError>;
    async fn register_activity_type(&self, reg: &ActivityTypeRegistration) -> Result<(), SwfError>;

    async fn start_workflow_execution(&self, start: &StartWorkflow) -> Result<String, SwfError>;

    /// One page of a decision task: the first page when `next_page_token` is `None`, else the
    /// page it names (the task token and ids repeat on every page).
    async fn poll_for_decision_task(
        &self,
        task_list: &str,
        identity: &str,
        next_page_token: Option<&str>,
    ) -> Result<Option<DecisionTaskPage>, SwfError>;
    async fn respond_decision_task_completed(
        &self,
        task_token: &str,
        decisions: Vec<Decision>,
        execution_context: Option<String>,
    ) -> Result<(), SwfError>;

    async fn poll_for_activity_task(
        &self,
        task_list: &str,
        identity: &str,
    ) -> Result<Option<ActivityTask>, SwfError>;
    /// Returns SWF's `cancelRequested`.
    async fn record_activity_task_heartbeat(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<bool, SwfError>;
    async fn respond_activity_task_completed(
        &self,
        task_token: &str,
        result: Option<String>,
    ) -> Result<(), SwfError>;
    async fn respond_activity_task_failed(
        &self,
        task_token: &str,
        reason: Option<String>,
        details: Option<String>,
    ) -> Result<(), SwfError>;
    async fn respond_activity_task_canceled(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<(), SwfError>;

    async fn get_workflow_execution_history(
        &self,
        execution: &WorkflowExecution,
        next_page_token: Option<&str>,
        reverse_order: bool,
    ) -> Result<HistoryPage, SwfError>;
    async fn describe_workflow_execution(
        &self,
        execution: &WorkflowExecution,
    ) -> Result<ExecutionInfo, SwfError>;
    /// Executions started in the last `since_secs` seconds, every page.
    async fn list_executions(
        &self,
        state: ExecutionState,
        since_secs: u64,
        workflow_id: Option<&str>,
    ) -> Result<Vec<ExecutionInfo>, SwfError>;
    async fn signal_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        signal_name: &str,
        input: Option<String>,
    ) -> Result<(), SwfError>;
    async fn request_cancel_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> Result<(), SwfError>;
    async fn terminate_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), SwfError>;
    async fn count_pending_activity_tasks(&self, task_list: &str) -> Result<u64, SwfError>;
    async fn count_pending_decision_tasks(&self, task_list: &str) -> Result<u64, SwfError>;
}
