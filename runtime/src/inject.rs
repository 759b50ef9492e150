//! Hand-injected activity tasks: `swf-runtime inject ACTIVITY_TYPE --input JSON`.
//!
//! SWF has no call that puts an activity task on a task list directly: only a decider's
//! ScheduleActivityTask does. So `inject` starts a tiny workflow of the built-in type
//! [`INJECT_WORKFLOW`] whose decider (hosted by every `swf-runtime run`) schedules exactly that one
//! activity, with the given input passed through untouched, and closes with its result. The
//! activity's own handler and task list are the real ones, so what is tested is what runs.

use serde::{Deserialize, Serialize};

use crate::decider::history::AttemptOutcome;
use crate::decider::{DecideError, Workflow, WorkflowHistory};
use crate::swf::model::{
    CompleteWorkflowExecutionDecisionAttributes, FailWorkflowExecutionDecisionAttributes,
    ScheduleActivityTaskDecisionAttributes, TaskList,
};
use crate::swf::{Decision, TypeRef};

/// Name of the built-in workflow type behind `inject`.
pub const INJECT_WORKFLOW: &str = "swf-runtime.Inject";
pub const INJECT_VERSION: &str = "1";
/// The activity id of the one injected task.
pub const INJECT_ACTIVITY_ID: &str = "injected";

/// The inject workflow's input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InjectInput {
    pub activity_type: String,
    pub version: String,
    /// `None`: the activity type's registered default task list.
    pub task_list: Option<String>,
    /// Passed to the handler as is.
    pub input: String,
    /// Explicit start-to-close timeout; `None` uses the type's default.
    pub start_to_close_secs: Option<u64>,
}

pub fn inject_type() -> TypeRef {
    TypeRef {
        name: INJECT_WORKFLOW.into(),
        version: INJECT_VERSION.into(),
    }
}

/// The decider of the inject workflow.
pub struct InjectWorkflow {
    workflow_type: TypeRef,
}

impl Default for InjectWorkflow {
    fn default() -> Self {
        InjectWorkflow {
            workflow_type: inject_type(),
        }
    }
}

fn fail(reason: impl Into<String>, details: Option<String>) -> Vec<Decision> {
    let mut reason: String = reason.into();
    if reason.len() > 256 {
        let mut cut = 256;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    vec![Decision::FailWorkflowExecution(
        FailWorkflowExecutionDecisionAttributes {
            reason: Some(reason),
            details,
        },
    )]
}

impl Workflow for InjectWorkflow {
    fn workflow_type(&self) -> &TypeRef {
        &self.workflow_type
    }

    fn decide(&self, history: &WorkflowHistory) -> Result<Vec<Decision>, DecideError> {
        if history.closed().is_some() {
            return Ok(Vec::new());
        }
        let input: InjectInput = match serde_json::from_str(history.input.as_deref().unwrap_or(""))
        {
            Ok(i) => i,
            Err(e) => return Ok(fail(format!("invalid inject input: {e}"), None)),
        };
        if let Some(f) = history
            .decision_failures()
            .iter()
            .find(|f| f.target == INJECT_ACTIVITY_ID)
        {
            return Ok(fail(
                format!(
                    "cannot schedule activity {} {}: {}",
                    input.activity_type, input.version, f.cause
                ),
                None,
            ));
        }
        if history
            .decision_failures()
            .iter()
            .any(|f| f.is_close_failure())
        {
            // A close refused because new events arrived: decide again from the full history
            // below; anything else is beyond repair for a one-task workflow.
            if let Some(f) = history
                .decision_failures()
                .iter()
                .rev()
                .find(|f| f.is_close_failure())
            {
                if f.cause != "UNHANDLED_DECISION" {
                    return Err(DecideError::CannotClose {
                        cause: format!("{} refused: {}", f.event_type, f.cause),
                    });
                }
            }
        }
        let Some(task) = history.activity(INJECT_ACTIVITY_ID) else {
            return Ok(vec![Decision::ScheduleActivityTask(
                ScheduleActivityTaskDecisionAttributes {
                    activity_type: TypeRef {
                        name: input.activity_type,
                        version: input.version,
                    },
                    activity_id: INJECT_ACTIVITY_ID.into(),
                    control: None,
                    input: Some(input.input),
                    schedule_to_close_timeout: None,
                    task_list: input.task_list.map(TaskList::new),
                    task_priority: None,
                    schedule_to_start_timeout: None,
                    start_to_close_timeout: input.start_to_close_secs.map(|s| s.to_string()),
                    heartbeat_timeout: None,
                },
            )]);
        };
        Ok(match &task.outcome {
            AttemptOutcome::Open => Vec::new(),
            AttemptOutcome::Completed { result } => vec![Decision::CompleteWorkflowExecution(
                CompleteWorkflowExecutionDecisionAttributes {
                    result: result.clone(),
                },
            )],
            other => fail(
                format!("injected task {}: {}", other.label(), other.describe()),
                None,
            ),
        })
    }
}
