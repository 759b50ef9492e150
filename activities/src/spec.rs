//! Engine-agnostic descriptions of the pipeline's workflows and activity types.
//!
//! This crate must not depend on the runtime (the runtime depends on it), so workflows are
//! described here as plain data: a [`WorkflowSpec`] is a DAG of [`StageSpec`]s, each naming the
//! activity type it schedules, its timeouts, its retry policy and how its input is built from the
//! workflow input and the results of the stages before it. The runtime's `pipeline` module turns
//! these into decider definitions and type registrations once at start-up; nothing here changes
//! afterwards.

use std::collections::BTreeMap;

use serde_json::Value;

/// Checks a workflow's raw input. `Ok` carries the normalised input the stages are built from;
/// `Err` is a reason naming the problem, with which the workflow fails at once.
pub type ValidateInputFn = fn(&str) -> Result<Value, String>;

/// Builds a stage's input from the (validated) workflow input and the results of the stages that
/// completed so far, keyed by stage name.
pub type StageInputFn = fn(&Value, &BTreeMap<String, Value>) -> Value;

/// One workflow type: its registration data and its DAG of stages. Once every stage completed,
/// the execution completes with the stages' results by stage name.
#[derive(Debug, Clone)]
pub struct WorkflowSpec {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The task list its decision tasks go to.
    pub decider_task_list: String,
    /// Registered default for the whole execution.
    pub execution_start_to_close_secs: u64,
    /// Registered default for one decision task.
    pub task_start_to_close_secs: u64,
    /// In dependency order: a stage only depends on stages listed before it.
    pub stages: Vec<StageSpec>,
    pub validate_input: ValidateInputFn,
}

impl WorkflowSpec {
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Stages with no dependencies: scheduled as soon as the execution starts.
    pub fn roots(&self) -> impl Iterator<Item = &StageSpec> {
        self.stages.iter().filter(|s| s.depends_on.is_empty())
    }
}

/// One node of a workflow's DAG: an activity scheduled once all of `depends_on` completed.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Unique within the workflow; also used as the activity id's stem and the key of its result.
    pub name: String,
    pub activity_type: String,
    pub activity_version: String,
    pub task_list: String,
    pub depends_on: Vec<String>,
    /// `None` is SWF's "NONE" (no limit).
    pub schedule_to_start_secs: Option<u64>,
    pub schedule_to_close_secs: Option<u64>,
    pub start_to_close_secs: Option<u64>,
    pub heartbeat_secs: Option<u64>,
    pub retry: RetrySpec,
    pub input: StageInputFn,
}

/// How the decider reacts when an attempt of a stage fails or times out.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySpec {
    /// Attempts in total, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// Wait before the second attempt, already multiplied by the time scale. SWF timers count
    /// whole seconds: an engine rounds to the nearest second, and a wait that rounds to zero
    /// means the next attempt is scheduled at once (what a test at a tiny time scale wants).
    pub initial_backoff_secs: f64,
    /// Upper bound of any wait, already multiplied by the time scale.
    pub max_backoff_secs: f64,
    /// Each wait is the previous one times this.
    pub coefficient: f64,
    /// Failure reasons that end the workflow at once, whatever attempts are left.
    pub non_retryable_reasons: Vec<String>,
}

impl RetrySpec {
    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn backoff_secs(&self, next_attempt: u32) -> f64 {
        let retries_before = next_attempt.saturating_sub(2);
        let raw = self.initial_backoff_secs * self.coefficient.powi(retries_before as i32);
        raw.min(self.max_backoff_secs).max(0.0)
    }

    /// Whether a failure with `reason` after attempt `attempt` gets another attempt.
    pub fn should_retry(&self, attempt: u32, reason: &str) -> bool {
        attempt < self.max_attempts && !self.non_retryable_reasons.iter().any(|r| r == reason)
    }
}

/// An activity type to register, with every default timeout stated (`None` is SWF's "NONE").
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTypeSpec {
    pub name: String,
    pub version: String,
    pub description: String,
    pub default_task_list: String,
    pub schedule_to_start_secs: Option<u64>,
    pub schedule_to_close_secs: Option<u64>,
    pub start_to_close_secs: Option<u64>,
    pub heartbeat_secs: Option<u64>,
}

impl ActivityTypeSpec {
    /// The registration matching a stage's own timeouts, so a task scheduled without explicit
    /// timeouts (one injected by hand) behaves like the pipeline's own.
    pub fn for_stage(stage: &StageSpec, description: &str) -> ActivityTypeSpec {
        ActivityTypeSpec {
            name: stage.activity_type.clone(),
            version: stage.activity_version.clone(),
            description: description.to_string(),
            default_task_list: stage.task_list.clone(),
            schedule_to_start_secs: stage.schedule_to_start_secs,
            schedule_to_close_secs: stage.schedule_to_close_secs,
            start_to_close_secs: stage.start_to_close_secs,
            heartbeat_secs: stage.heartbeat_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> RetrySpec {
        RetrySpec {
            max_attempts: 4,
            initial_backoff_secs: 1.0,
            max_backoff_secs: 3.0,
            coefficient: 2.0,
            non_retryable_reasons: vec!["invalid_input".into()],
        }
    }

    #[test]
    fn backoff_grows_by_the_coefficient_up_to_the_cap() {
        let r = retry();
        assert_eq!(r.backoff_secs(2), 1.0);
        assert_eq!(r.backoff_secs(3), 2.0);
        assert_eq!(r.backoff_secs(4), 3.0);
        assert_eq!(r.backoff_secs(9), 3.0);
    }

    #[test]
    fn retries_stop_at_max_attempts_and_on_non_retryable_reasons() {
        let r = retry();
        assert!(r.should_retry(1, "injected_failure"));
        assert!(r.should_retry(3, "injected_failure"));
        assert!(!r.should_retry(4, "injected_failure"));
        assert!(!r.should_retry(1, "invalid_input"));
    }
}
