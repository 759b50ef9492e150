//! The decider: workflow definitions turned into decisions by replaying the whole history.
//!
//! Lifecycle: at start-up the binary builds a [`WorkflowRegistry`] of [`Workflow`]s (usually
//! [`DagWorkflow`]s declared from stages) and runs a [`DeciderPoller`] on the decider task list.
//! For every decision task the poller fetches every history page, indexes it once into a
//! [`WorkflowHistory`], asks the workflow of the execution's type for its decisions and answers
//! the task. Deciders keep no state between tasks: everything is derived from the history, so
//! any number of deciders on any hosts, started at any time, decide the same.
//!
//! [`timeline`] turns a history into a per-stage timeline for `swf-runtime history` and the demo.

pub mod dag;
pub mod events;
pub mod history;
pub mod poller;
pub mod timeline;

use std::collections::HashMap;
use std::sync::Arc;

pub use dag::{
    parse_workflow_input, ActivityTimeouts, DagWorkflow, DagWorkflowBuilder, DefinitionError,
    RetryPolicy, SignalAction, Stage, StageKind, WorkflowInput,
};
pub use history::{HistoryError, WorkflowHistory};
pub use poller::DeciderPoller;
pub use timeline::{timeline, timeline_from_events, Timeline};

use crate::swf::{Decision, TypeRef};

/// SWF's limit on input, result, details and control, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 32_768;
/// SWF's limit on a failure reason, in characters.
pub const MAX_REASON_CHARS: usize = 256;

/// Why a workflow could not decide. The poller then leaves the decision task unanswered: it
/// times out and SWF hands it out again, so a fixed or redeployed decider can pick it up.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The history could not be read as a whole execution: fetch it again from the first page.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// SWF refused even FailWorkflowExecution: an operator must terminate the execution.
    #[error("the execution cannot be closed: FailWorkflowExecution was refused ({cause})")]
    CannotClose { cause: String },
    /// A hand-written workflow's own error: fix the workflow; the task will be handed out again.
    #[error("workflow error: {0}")]
    Workflow(String),
}

impl DecideError {
    /// A short, fixed name for the `error_type` metric label.
    pub fn error_type(&self) -> &'static str {
        match self {
            DecideError::History(_) => "history",
            DecideError::CannotClose { .. } => "cannot_close",
            DecideError::Workflow(_) => "workflow",
        }
    }
}

/// A workflow's decider: decisions from the whole history of one execution.
///
/// Implementations must be deterministic functions of the history: the same history always
/// yields the same decisions, however and whenever it was fetched.
pub trait Workflow: Send + Sync + 'static {
    /// The registered type this decider answers for.
    fn workflow_type(&self) -> &TypeRef;

    /// The decisions that move the execution on; empty when there is nothing to do yet.
    fn decide(&self, history: &WorkflowHistory) -> Result<Vec<Decision>, DecideError>;
}

/// The workflows a decider hosts, by type.
#[derive(Clone, Default)]
pub struct WorkflowRegistry {
    workflows: HashMap<TypeRef, Arc<dyn Workflow>>,
}

impl std::fmt::Debug for WorkflowRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.workflows.keys()).finish()
    }
}

impl WorkflowRegistry {
    pub fn new() -> WorkflowRegistry {
        WorkflowRegistry::default()
    }

    /// Adds a workflow under its own type, replacing any earlier one of that type.
    pub fn register(&mut self, workflow: Arc<dyn Workflow>) -> &mut Self {
        self.workflows
            .insert(workflow.workflow_type().clone(), workflow);
        self
    }

    pub fn with(mut self, workflow: Arc<dyn Workflow>) -> Self {
        self.register(workflow);
        self
    }

    pub fn get(&self, workflow_type: &TypeRef) -> Option<&Arc<dyn Workflow>> {
        self.workflows.get(workflow_type)
    }

    pub fn types(&self) -> impl Iterator<Item = &TypeRef> {
        self.workflows.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty()
    }
}
