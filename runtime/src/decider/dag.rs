//! Workflows declared as stages with dependencies (a DAG), decided from the history alone.
//!
//! A [`DagWorkflow`] is built once at start-up from [`Stage`]s and answers every decision task
//! of its type. On each task it re-derives every stage's state from the indexed history
//! ([`WorkflowHistory`]) and returns the decisions that move the execution on: schedule the
//! stages whose dependencies are done (all of them at once where the DAG allows), start a
//! backoff timer after a failed or timed-out attempt, schedule the next attempt when the timer
//! fires, fail with a clear reason when attempts run out, and complete with the results of every
//! stage. Because nothing but the history is consulted, a decider that starts late, restarts or
//! runs on another host decides exactly the same, and an attempt is never scheduled twice: the
//! activity id `<stage>-<attempt>` of an attempt already in the history is never scheduled again.
//!
//! Ids written into the history (stable, so replays and timelines can read them back):
//! - activity id `<stage>-<attempt>`, control `{"stage": .., "attempt": ..}`;
//! - child workflow id `<workflow id>-<stage>-<attempt>`, same control;
//! - retry timer id `retry-<stage>-<attempt about to run>`, control the stage name.
//!
//! Signals: `skip_stage` with input `{"stage": "<name>", "result": <json, optional>}` (or just
//! the stage name) marks a stage that is not done yet as done with that result (`null` by
//! default), requests cancellation of its running activity (a running child workflow of a
//! skipped stage is left to finish; its result is ignored) and lets the stages after it
//! proceed. Any other signal is offered to the workflow's signal hook, if one is set, and
//! otherwise ignored (it stays visible in the history and the timeline).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::history::{AttemptOutcome, SignalRecord, WorkflowHistory};
use super::{DecideError, Workflow, MAX_PAYLOAD_CHARS, MAX_REASON_CHARS};
use crate::envelope::{Envelope, TaskContext};
use crate::swf::model::*;
use crate::swf::TypeRef;

/// The default history length at which a DAG continues as new: well under SWF's hard limit of
/// 25,000 events, leaving room for the events of the decision that continues.
pub const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS: usize = 20_000;

/// The input key under which a continued run receives what the previous run achieved.
pub const CONTINUED_KEY: &str = "_continued";

/// The signal that marks a stage as done (see the module docs).
pub const SKIP_STAGE_SIGNAL: &str = "skip_stage";

/// The four activity timeouts, in whole seconds; `None` is SWF's "NONE" (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityTimeouts {
    pub schedule_to_start_secs: Option<u64>,
    pub schedule_to_close_secs: Option<u64>,
    pub start_to_close_secs: Option<u64>,
    pub heartbeat_secs: Option<u64>,
}

fn timeout_str(secs: Option<u64>) -> String {
    secs.map_or_else(|| "NONE".to_string(), |s| s.to_string())
}

/// When and how often a stage is tried again after a failure or timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub max_attempts: u32,
    pub initial_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// Each backoff is the previous one times this.
    pub backoff_coefficient: f64,
    /// Failure reasons (as the activity reports them) that fail the stage at once.
    pub non_retryable_reasons: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_secs: 5,
            max_backoff_secs: 300,
            backoff_coefficient: 2.0,
            non_retryable_reasons: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// No retry: the first failure fails the workflow.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `next_attempt` (2 for the first retry), in whole seconds.
    pub fn backoff_secs(&self, next_attempt: u32) -> u64 {
        let retries_before = next_attempt.saturating_sub(2).min(63) as i32;
        let secs = self.initial_backoff_secs as f64 * self.backoff_coefficient.powi(retries_before);
        if !secs.is_finite() {
            return self.max_backoff_secs;
        }
        (secs.ceil() as u64).min(self.max_backoff_secs)
    }

    fn is_non_retryable(&self, outcome: &AttemptOutcome) -> bool {
        match outcome {
            AttemptOutcome::Failed {
                reason: Some(reason),
                ..
            } => self.non_retryable_reasons.iter().any(|r| r == reason),
            _ => false,
        }
    }
}

/// How a stage's input is built: from the workflow input and the results of the stages done so
/// far (by stage name). An `Err` fails the workflow with that message.
pub type InputBuilder =
    Arc<dyn Fn(&Value, &BTreeMap<String, Value>) -> Result<Value, String> + Send + Sync>;

/// What a stage runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    Activity {
        activity_type: TypeRef,
        task_list: String,
        timeouts: ActivityTimeouts,
    },
    /// A child workflow execution of another type, joined on its close.
    ChildWorkflow {
        workflow_type: TypeRef,
        /// `None` uses the child type's default task list.
        task_list: Option<String>,
        execution_start_to_close_secs: Option<u64>,
        task_start_to_close_secs: Option<u64>,
        /// TERMINATE, REQUEST_CANCEL or ABANDON: what happens to the child if this run closes.
        child_policy: String,
    },
}

/// One stage of a [`DagWorkflow`].
#[derive(Clone)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
    pub depends_on: Vec<String>,
    pub retry: RetryPolicy,
    input: Option<InputBuilder>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("depends_on", &self.depends_on)
            .field("retry", &self.retry)
            .field("custom_input", &self.input.is_some())
            .finish()
    }
}

impl Stage {
    /// A stage running one activity task per attempt.
    pub fn activity(
        name: impl Into<String>,
        activity_type: TypeRef,
        task_list: impl Into<String>,
        timeouts: ActivityTimeouts,
    ) -> Stage {
        Stage {
            name: name.into(),
            kind: StageKind::Activity {
                activity_type,
                task_list: task_list.into(),
                timeouts,
            },
            depends_on: Vec::new(),
            retry: RetryPolicy::default(),
            input: None,
        }
    }

    /// A stage running a child workflow execution per attempt. Its input is the stage input
    /// with `media_uuid` and `user_uuid` added, so a child DAG accepts it.
    pub fn child_workflow(name: impl Into<String>, workflow_type: TypeRef) -> Stage {
        Stage {
            name: name.into(),
            kind: StageKind::ChildWorkflow {
                workflow_type,
                task_list: None,
                execution_start_to_close_secs: None,
                task_start_to_close_secs: None,
                child_policy: "REQUEST_CANCEL".into(),
            },
            depends_on: Vec::new(),
            retry: RetryPolicy::default(),
            input: None,
        }
    }

    /// Runs after these stages are done.
    pub fn after<I, S>(mut self, stages: I) -> Stage
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(stages.into_iter().map(Into::into));
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Stage {
        self.retry = retry;
        self
    }

    /// Builds the stage input. Without one, the input is the workflow input with the result of
    /// each dependency added under the dependency's name.
    pub fn input<F>(mut self, build: F) -> Stage
    where
        F: Fn(&Value, &BTreeMap<String, Value>) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.input = Some(Arc::new(build));
        self
    }

    /// Options of a child workflow stage; ignored for activity stages.
    pub fn child_options(
        mut self,
        task_list: Option<String>,
        execution_start_to_close_secs: Option<u64>,
        task_start_to_close_secs: Option<u64>,
        child_policy: &str,
    ) -> Stage {
        if let StageKind::ChildWorkflow {
            task_list: tl,
            execution_start_to_close_secs: e,
            task_start_to_close_secs: t,
            child_policy: p,
            ..
        } = &mut self.kind
        {
            *tl = task_list;
            *e = execution_start_to_close_secs;
            *t = task_start_to_close_secs;
            *p = child_policy.to_string();
        }
        self
    }

    fn build_input(
        &self,
        workflow_input: &Value,
        results: &BTreeMap<String, Value>,
    ) -> Result<Value, String> {
        if let Some(build) = &self.input {
            return build(workflow_input, results);
        }
        let mut obj = workflow_input.as_object().cloned().unwrap_or_default();
        obj.remove(CONTINUED_KEY);
        for dep in &self.depends_on {
            obj.insert(
                dep.clone(),
                results.get(dep).cloned().unwrap_or(Value::Null),
            );
        }
        Ok(Value::Object(obj))
    }
}

/// A workflow definition that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DefinitionError {
    #[error("workflow {0} has no stages")]
    NoStages(String),
    #[error("stage name {0:?} is empty or has characters other than letters, digits, '_' and '-'")]
    BadStageName(String),
    #[error("stage {0} is declared twice")]
    DuplicateStage(String),
    #[error("stage {stage} depends on unknown stage {dependency}")]
    UnknownDependency { stage: String, dependency: String },
    #[error("the stages {0:?} depend on each other in a cycle")]
    Cycle(Vec<String>),
    #[error("stage {0} has max_attempts 0; at least 1 is needed")]
    NoAttempts(String),
}

/// What the workflow's signal hook decides about a signal.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalAction {
    Ignore,
    /// Mark the stage done with this result (like the `skip_stage` signal).
    SkipStage {
        stage: String,
        result: Value,
    },
    /// Fail the workflow with this reason.
    FailWorkflow {
        reason: String,
    },
}

type SignalHook = Arc<dyn Fn(&SignalRecord) -> SignalAction + Send + Sync>;
type InputValidator = Arc<dyn Fn(&Map<String, Value>) -> Result<(), String> + Send + Sync>;

/// The validated input of a workflow execution.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInput {
    pub media_uuid: String,
    pub user_uuid: String,
    /// The whole input object.
    pub value: Value,
}

/// Parses a workflow input: a JSON object with non-empty string `media_uuid` and `user_uuid`.
/// The error names the problem; callers may check an input with it before starting a workflow.
pub fn parse_workflow_input(raw: Option<&str>) -> Result<WorkflowInput, String> {
    let raw = raw.ok_or_else(|| {
        "no input; a JSON object with media_uuid and user_uuid is required".to_string()
    })?;
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "input is not a JSON object".to_string())?;
    let field = |name: &str| -> Result<String, String> {
        match obj.get(name) {
            None => Err(format!("missing {name}")),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(_) => Err(format!("{name} must be a non-empty string")),
        }
    };
    Ok(WorkflowInput {
        media_uuid: field("media_uuid")?,
        user_uuid: field("user_uuid")?,
        value,
    })
}

/// What a previous run handed on through ContinueAsNew.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Continued {
    #[serde(default)]
    results: BTreeMap<String, Value>,
    /// Attempts already used by stages that were waiting to be retried.
    #[serde(default)]
    attempts: BTreeMap<String, u32>,
}

/// A workflow declared as stages with dependencies; see the module docs.
#[derive(Clone)]
pub struct DagWorkflow {
    workflow_type: TypeRef,
    /// In dependency order.
    stages: Vec<Stage>,
    allowed_fields: Option<HashSet<String>>,
    validator: Option<InputValidator>,
    signal_hook: Option<SignalHook>,
    continue_as_new_after_events: usize,
}

impl std::fmt::Debug for DagWorkflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DagWorkflow")
            .field("workflow_type", &self.workflow_type)
            .field("stages", &self.stages)
            .field(
                "continue_as_new_after_events",
                &self.continue_as_new_after_events,
            )
            .finish()
    }
}

/// Builds a [`DagWorkflow`]; `build` checks the DAG.
pub struct DagWorkflowBuilder {
    wf: DagWorkflow,
}

impl DagWorkflowBuilder {
    pub fn stage(mut self, stage: Stage) -> Self {
        self.wf.stages.push(stage);
        self
    }

    /// Rejects inputs with fields other than these (plus `media_uuid` and `user_uuid`).
    pub fn allowed_input_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set: HashSet<String> = fields.into_iter().map(Into::into).collect();
        set.insert("media_uuid".into());
        set.insert("user_uuid".into());
        self.wf.allowed_fields = Some(set);
        self
    }

    /// An extra input check; an `Err` fails the execution with "invalid input: <message>".
    pub fn validate<F>(mut self, check: F) -> Self
    where
        F: Fn(&Map<String, Value>) -> Result<(), String> + Send + Sync + 'static,
    {
        self.wf.validator = Some(Arc::new(check));
        self
    }

    /// Decides signals other than `skip_stage`.
    pub fn on_signal<F>(mut self, hook: F) -> Self
    where
        F: Fn(&SignalRecord) -> SignalAction + Send + Sync + 'static,
    {
        self.wf.signal_hook = Some(Arc::new(hook));
        self
    }

    /// The history length at which the execution continues as new.
    pub fn continue_as_new_after_events(mut self, events: usize) -> Self {
        self.wf.continue_as_new_after_events = events;
        self
    }

    pub fn build(mut self) -> Result<DagWorkflow, DefinitionError> {
        let stages = std::mem::take(&mut self.wf.stages);
        if stages.is_empty() {
            return Err(DefinitionError::NoStages(
                self.wf.workflow_type.name.clone(),
            ));
        }
        let mut names = HashSet::new();
        for s in &stages {
            let valid = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(DefinitionError::BadStageName(s.name.clone()));
            }
            if !names.insert(s.name.clone()) {
                return Err(DefinitionError::DuplicateStage(s.name.clone()));
            }
            if s.retry.max_attempts == 0 {
                return Err(DefinitionError::NoAttempts(s.name.clone()));
            }
        }
        for s in &stages {
            for d in &s.depends_on {
                if !names.contains(d) {
                    return Err(DefinitionError::UnknownDependency {
                        stage: s.name.clone(),
                        dependency: d.clone(),
                    });
                }
            }
        }
        // Kahn's algorithm, keeping the declaration order among stages that are ready together.
        let mut placed: HashSet<String> = HashSet::new();
        let mut ordered = Vec::with_capacity(stages.len());
        let mut rest = stages;
        while !rest.is_empty() {
            let (ready, blocked): (Vec<Stage>, Vec<Stage>) = rest
                .into_iter()
                .partition(|s| s.depends_on.iter().all(|d| placed.contains(d)));
            if ready.is_empty() {
                return Err(DefinitionError::Cycle(
                    blocked.into_iter().map(|s| s.name).collect(),
                ));
            }
            for s in &ready {
                placed.insert(s.name.clone());
            }
            ordered.extend(ready);
            rest = blocked;
        }
        self.wf.stages = ordered;
        Ok(self.wf)
    }
}

/// Where one stage stands, derived from the history.
#[derive(Debug, Clone, PartialEq)]
enum StageState {
    /// Never scheduled in this run.
    NotStarted,
    Running {
        attempt: u32,
        activity_id: Option<String>,
    },
    /// Waiting for the backoff timer before `attempt`.
    WaitingRetry {
        attempt: u32,
    },
    /// The backoff timer for `attempt` is to be started.
    NeedsRetryTimer {
        attempt: u32,
        backoff_secs: u64,
    },
    /// `attempt` may be scheduled now.
    Due {
        attempt: u32,
    },
    Done {
        result: Value,
    },
    Failed {
        reason: String,
        details: String,
    },
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A FailWorkflowExecution decision; the reason is cut to SWF's 256 characters, the full text
/// goes into the details.
pub fn fail_decision(reason: &str, details: &str) -> Decision {
    Decision::FailWorkflowExecution(FailWorkflowExecutionDecisionAttributes {
        reason: Some(truncate(reason, MAX_REASON_CHARS)),
        details: Some(truncate(details, MAX_PAYLOAD_CHARS)),
    })
}

fn parse_result(result: &Option<String>) -> Value {
    match result {
        None => Value::Null,
        Some(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
    }
}

/// The stage a `skip_stage` signal names, with its result.
fn skip_request(signal: &SignalRecord) -> Option<(String, Value)> {
    let raw = signal.input.as_deref()?;
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(o)) => {
            let stage = o.get("stage")?.as_str()?.to_string();
            Some((stage, o.get("result").cloned().unwrap_or(Value::Null)))
        }
        Ok(Value::String(s)) => Some((s, Value::Null)),
        Ok(_) => None,
        Err(_) => Some((raw.trim().to_string(), Value::Null)),
    }
}

/// The control recorded with each attempt.
pub fn attempt_control(stage: &str, attempt: u32) -> String {
    serde_json::json!({ "stage": stage, "attempt": attempt }).to_string()
}

impl DagWorkflow {
    pub fn builder(workflow_type: TypeRef) -> DagWorkflowBuilder {
        DagWorkflowBuilder {
            wf: DagWorkflow {
                workflow_type,
                stages: Vec::new(),
                allowed_fields: None,
                validator: None,
                signal_hook: None,
                continue_as_new_after_events: DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS,
            },
        }
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Checks an input as the first decision will: parse, allowed fields, the custom check.
    pub fn check_input(&self, raw: Option<&str>) -> Result<WorkflowInput, String> {
        let input = parse_workflow_input(raw)?;
        let obj = input
            .value
            .as_object()
            .expect("parse_workflow_input checks for an object");
        if let Some(allowed) = &self.allowed_fields {
            let mut unknown: Vec<&String> = obj
                .keys()
                .filter(|k| !allowed.contains(*k) && k.as_str() != CONTINUED_KEY)
                .collect();
            unknown.sort();
            if let Some(first) = unknown.first() {
                return Err(format!("unknown field `{first}`"));
            }
        }
        if let Some(v) = obj.get(CONTINUED_KEY) {
            serde_json::from_value::<Continued>(v.clone())
                .map_err(|e| format!("{CONTINUED_KEY} is malformed: {e}"))?;
        }
        if let Some(check) = &self.validator {
            check(obj)?;
        }
        Ok(input)
    }

    fn attempt_id(&self, history: &WorkflowHistory, stage: &Stage, attempt: u32) -> String {
        match stage.kind {
            StageKind::Activity { .. } => format!("{}-{}", stage.name, attempt),
            StageKind::ChildWorkflow { .. } => {
                format!(
                    "{}-{}-{}",
                    history.execution.workflow_id, stage.name, attempt
                )
            }
        }
    }

    /// The decision failure that prevented `attempt` of `stage` from starting, if any.
    fn start_failure(
        &self,
        history: &WorkflowHistory,
        stage: &Stage,
        attempt: u32,
    ) -> Option<String> {
        let id = self.attempt_id(history, stage, attempt);
        let event = match stage.kind {
            StageKind::Activity { .. } => "ScheduleActivityTaskFailed",
            StageKind::ChildWorkflow { .. } => "StartChildWorkflowExecutionFailed",
        };
        history
            .decision_failure_for(event, &id)
            .map(|f| format!("{event} for {id}: {}", f.cause))
    }

    /// The state of an attempt that SWF recorded: `(outcome, activity id when it is one)`.
    fn recorded_attempt(
        &self,
        history: &WorkflowHistory,
        stage: &Stage,
        attempt: u32,
    ) -> Option<(AttemptOutcome, Option<String>)> {
        let id = self.attempt_id(history, stage, attempt);
        match stage.kind {
            StageKind::Activity { .. } => history
                .activity(&id)
                .map(|a| (a.outcome.clone(), Some(id.clone()))),
            StageKind::ChildWorkflow { .. } => {
                history.child(&id).map(|c| (c.outcome.clone(), None))
            }
        }
    }

    /// The next attempt after a failed one (or after the attempts a previous run used up).
    fn retry_state(&self, history: &WorkflowHistory, stage: &Stage, next: u32) -> StageState {
        let timer_id = format!("retry-{}-{}", stage.name, next);
        if let Some(f) = history.decision_failure_for("StartTimerFailed", &timer_id) {
            return StageState::Failed {
                reason: format!(
                    "stage {}: StartTimer {timer_id} failed: {}",
                    stage.name, f.cause
                ),
                details: format!("the backoff timer before attempt {next} could not be started"),
            };
        }
        match history.timer(&timer_id) {
            Some(t) if t.is_open() => StageState::WaitingRetry { attempt: next },
            Some(_) => StageState::Due { attempt: next },
            None => {
                let backoff_secs = stage.retry.backoff_secs(next);
                if backoff_secs == 0 {
                    StageState::Due { attempt: next }
                } else {
                    StageState::NeedsRetryTimer {
                        attempt: next,
                        backoff_secs,
                    }
                }
            }
        }
    }

    fn stage_state(
        &self,
        history: &WorkflowHistory,
        stage: &Stage,
        carried_attempts: u32,
    ) -> StageState {
        // Attempts of this run are numbered on from what earlier runs used.
        let mut attempt = carried_attempts;
        let mut last = None;
        while let Some(rec) = self.recorded_attempt(history, stage, attempt + 1) {
            attempt += 1;
            last = Some(rec);
        }
        let state = match last {
            None if carried_attempts == 0 => StageState::Due { attempt: 1 },
            None => self.retry_state(history, stage, attempt + 1),
            Some((AttemptOutcome::Open, activity_id)) => StageState::Running {
                attempt,
                activity_id,
            },
            Some((AttemptOutcome::Completed { result }, _)) => StageState::Done {
                result: parse_result(&result),
            },
            Some((outcome, _)) => {
                let what = outcome.describe();
                if stage.retry.is_non_retryable(&outcome) {
                    StageState::Failed {
                        reason: format!(
                            "stage {} attempt {attempt} {what} (non-retryable)",
                            stage.name
                        ),
                        details: what,
                    }
                } else if attempt >= stage.retry.max_attempts {
                    StageState::Failed {
                        reason: format!(
                            "stage {} failed after {attempt} attempts; last: {what}",
                            stage.name
                        ),
                        details: what,
                    }
                } else {
                    self.retry_state(history, stage, attempt + 1)
                }
            }
        };
        match state {
            StageState::Due { attempt } => match self.start_failure(history, stage, attempt) {
                Some(why) => StageState::Failed {
                    reason: format!("stage {}: {why}", stage.name),
                    details: why,
                },
                None if attempt == 1 => StageState::NotStarted,
                None => StageState::Due { attempt },
            },
            other => other,
        }
    }

    fn schedule(
        &self,
        history: &WorkflowHistory,
        input: &WorkflowInput,
        stage: &Stage,
        attempt: u32,
        results: &BTreeMap<String, Value>,
    ) -> Result<Decision, (String, String)> {
        let stage_input = stage.build_input(&input.value, results).map_err(|e| {
            (
                format!("stage {}: its input could not be built: {e}", stage.name),
                e.clone(),
            )
        })?;
        let id = self.attempt_id(history, stage, attempt);
        let control = Some(attempt_control(&stage.name, attempt));
        let too_big = |len: usize| {
            (
                format!(
                    "stage {}: its input is {len} characters, over SWF's {MAX_PAYLOAD_CHARS} limit",
                    stage.name
                ),
                format!("attempt {attempt} was not scheduled"),
            )
        };
        match &stage.kind {
            StageKind::Activity {
                activity_type,
                task_list,
                timeouts,
            } => {
                let encoded = Envelope {
                    swf_runtime: TaskContext {
                        media_uuid: input.media_uuid.clone(),
                        user_uuid: input.user_uuid.clone(),
                        workflow_type: self.workflow_type.name.clone(),
                        stage: stage.name.clone(),
                        attempt,
                    },
                    input: stage_input,
                }
                .encode();
                let len = encoded.chars().count();
                if len > MAX_PAYLOAD_CHARS {
                    return Err(too_big(len));
                }
                Ok(Decision::ScheduleActivityTask(
                    ScheduleActivityTaskDecisionAttributes {
                        activity_type: activity_type.clone(),
                        activity_id: id,
                        control,
                        input: Some(encoded),
                        task_list: Some(TaskList::new(task_list.clone())),
                        task_priority: None,
                        schedule_to_start_timeout: Some(timeout_str(
                            timeouts.schedule_to_start_secs,
                        )),
                        schedule_to_close_timeout: Some(timeout_str(
                            timeouts.schedule_to_close_secs,
                        )),
                        start_to_close_timeout: Some(timeout_str(timeouts.start_to_close_secs)),
                        heartbeat_timeout: Some(timeout_str(timeouts.heartbeat_secs)),
                    },
                ))
            }
            StageKind::ChildWorkflow {
                workflow_type,
                task_list,
                execution_start_to_close_secs,
                task_start_to_close_secs,
                child_policy,
            } => {
                let mut obj = match stage_input {
                    Value::Object(o) => o,
                    other => {
                        let mut o = Map::new();
                        o.insert("input".into(), other);
                        o
                    }
                };
                obj.remove(CONTINUED_KEY);
                obj.insert("media_uuid".into(), Value::String(input.media_uuid.clone()));
                obj.insert("user_uuid".into(), Value::String(input.user_uuid.clone()));
                let encoded = Value::Object(obj).to_string();
                let len = encoded.chars().count();
                if len > MAX_PAYLOAD_CHARS {
                    return Err(too_big(len));
                }
                Ok(Decision::StartChildWorkflowExecution(
                    StartChildWorkflowExecutionDecisionAttributes {
                        workflow_type: workflow_type.clone(),
                        workflow_id: id,
                        control,
                        input: Some(encoded),
                        execution_start_to_close_timeout: execution_start_to_close_secs
                            .map(|s| s.to_string()),
                        task_list: task_list.clone().map(TaskList::new),
                        task_priority: None,
                        task_start_to_close_timeout: task_start_to_close_secs
                            .map(|s| s.to_string()),
                        child_policy: Some(child_policy.clone()),
                        tag_list: Vec::new(),
                        lambda_role: None,
                    },
                ))
            }
        }
    }

    /// Cancels every running attempt, then the execution.
    fn cancel(&self, history: &WorkflowHistory) -> Vec<Decision> {
        let mut decisions: Vec<Decision> = history
            .open_activities()
            .filter(|a| {
                !a.cancel_requested
                    && history
                        .decision_failure_for("RequestCancelActivityTaskFailed", &a.activity_id)
                        .is_none()
            })
            .map(|a| {
                Decision::RequestCancelActivityTask(RequestCancelActivityTaskDecisionAttributes {
                    activity_id: a.activity_id.clone(),
                })
            })
            .collect();
        let mut done: Vec<String> = Vec::new();
        for s in &self.stages {
            if history
                .activities()
                .iter()
                .any(|a| a.outcome.label() == "completed" && stage_of(&a.activity_id) == s.name)
            {
                done.push(s.name.clone());
            }
        }
        decisions.push(Decision::CancelWorkflowExecution(
            CancelWorkflowExecutionDecisionAttributes {
                details: Some(truncate(
                    &serde_json::json!({ "canceled": true, "stages_done": done }).to_string(),
                    MAX_PAYLOAD_CHARS,
                )),
            },
        ));
        decisions
    }

    fn continue_as_new(
        &self,
        history: &WorkflowHistory,
        input: &WorkflowInput,
        carried: Continued,
    ) -> Decision {
        let mut obj = input.value.as_object().cloned().unwrap_or_default();
        obj.insert(
            CONTINUED_KEY.into(),
            serde_json::to_value(carried).expect("maps of JSON values always serialise"),
        );
        Decision::ContinueAsNewWorkflowExecution(ContinueAsNewWorkflowExecutionDecisionAttributes {
            input: Some(Value::Object(obj).to_string()),
            execution_start_to_close_timeout: history.execution_start_to_close_timeout.clone(),
            task_list: history.task_list.clone(),
            task_priority: None,
            task_start_to_close_timeout: history.task_start_to_close_timeout.clone(),
            child_policy: Some(history.child_policy.clone()).filter(|p| !p.is_empty()),
            tag_list: history.tag_list.clone(),
            workflow_type_version: None,
            lambda_role: None,
        })
    }
}

/// The stage an activity id `<stage>-<attempt>` belongs to.
pub fn stage_of(activity_id: &str) -> &str {
    match activity_id.rsplit_once('-') {
        Some((stage, n)) if !stage.is_empty() && n.parse::<u32>().is_ok() => stage,
        _ => activity_id,
    }
}

const CLOSE_DECISIONS: &[(&str, &str)] = &[
    (
        "CompleteWorkflowExecutionFailed",
        "CompleteWorkflowExecution",
    ),
    ("CancelWorkflowExecutionFailed", "CancelWorkflowExecution"),
    (
        "ContinueAsNewWorkflowExecutionFailed",
        "ContinueAsNewWorkflowExecution",
    ),
    ("FailWorkflowExecutionFailed", "FailWorkflowExecution"),
];

impl Workflow for DagWorkflow {
    fn workflow_type(&self) -> &TypeRef {
        &self.workflow_type
    }

    fn decide(&self, history: &WorkflowHistory) -> Result<Vec<Decision>, DecideError> {
        if history.closed().is_some() {
            return Ok(Vec::new());
        }
        // A close decision refused for anything but new events (UNHANDLED_DECISION, which a
        // fresh decision simply retries) cannot succeed by repeating it: fail the execution
        // instead, and give up if even that is refused.
        let refused = |f: &&super::history::DecisionFailure| {
            f.is_close_failure() && f.cause != "UNHANDLED_DECISION"
        };
        if let Some(f) = history
            .decision_failures()
            .iter()
            .filter(refused)
            .find(|f| f.event_type == "FailWorkflowExecutionFailed")
        {
            return Err(DecideError::CannotClose {
                cause: f.cause.clone(),
            });
        }
        if let Some(f) = history.decision_failures().iter().find(refused) {
            let decision = CLOSE_DECISIONS
                .iter()
                .find(|(event, _)| *event == f.event_type)
                .map_or("close decision", |(_, d)| *d);
            return Ok(vec![fail_decision(
                &format!("{decision} was refused: {}", f.cause),
                &format!(
                    "event {} ({}) answered the decision",
                    f.event_id, f.event_type
                ),
            )]);
        }

        let input = match self.check_input(history.input.as_deref()) {
            Ok(i) => i,
            Err(problem) => {
                return Ok(vec![fail_decision(
                    &format!("invalid input: {problem}"),
                    &format!(
                        "workflow {} rejected its input: {problem}",
                        self.workflow_type.name
                    ),
                )])
            }
        };
        if history.cancel_requested() {
            return Ok(self.cancel(history));
        }
        let carried: Continued = input
            .value
            .get(CONTINUED_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();

        // Signals: skips first (the earliest per stage wins), then the hook's verdicts.
        let mut skips: HashMap<String, Value> = HashMap::new();
        for signal in history.signals() {
            let action = if signal.name == SKIP_STAGE_SIGNAL {
                match skip_request(signal) {
                    Some((stage, result)) => SignalAction::SkipStage { stage, result },
                    None => SignalAction::Ignore,
                }
            } else if let Some(hook) = &self.signal_hook {
                hook(signal)
            } else {
                SignalAction::Ignore
            };
            match action {
                SignalAction::Ignore => {}
                SignalAction::SkipStage { stage, result } => {
                    if self.stage(&stage).is_some() {
                        skips.entry(stage).or_insert(result);
                    }
                }
                SignalAction::FailWorkflow { reason } => {
                    return Ok(vec![fail_decision(
                        &reason,
                        &format!(
                            "signal {} (event {}) failed the workflow",
                            signal.name, signal.event_id
                        ),
                    )]);
                }
            }
        }

        let mut results: BTreeMap<String, Value> = carried.results.clone();
        let mut decisions = Vec::new();
        let mut busy = false;
        let mut pending_attempts: BTreeMap<String, u32> = BTreeMap::new();
        for stage in &self.stages {
            if results.contains_key(&stage.name) {
                continue;
            }
            let state = self.stage_state(
                history,
                stage,
                carried.attempts.get(&stage.name).copied().unwrap_or(0),
            );
            // A skip applies to a stage not done yet; a real result, once in, stays the result.
            let skip = match &state {
                StageState::Done { .. } => None,
                _ => skips.get(&stage.name),
            };
            if let Some(result) = skip {
                if let StageState::Running {
                    activity_id: Some(id),
                    ..
                } = &state
                {
                    if history.activity(id).is_some_and(|a| !a.cancel_requested) {
                        decisions.push(Decision::RequestCancelActivityTask(
                            RequestCancelActivityTaskDecisionAttributes {
                                activity_id: id.clone(),
                            },
                        ));
                    }
                }
                results.insert(stage.name.clone(), result.clone());
                continue;
            }
            let deps_done = stage.depends_on.iter().all(|d| results.contains_key(d));
            match state {
                StageState::Done { result } => {
                    results.insert(stage.name.clone(), result);
                }
                StageState::Failed { reason, details } => {
                    return Ok(vec![fail_decision(&reason, &details)]);
                }
                StageState::Running { .. } | StageState::WaitingRetry { .. } => busy = true,
                StageState::NeedsRetryTimer {
                    attempt,
                    backoff_secs,
                } => {
                    pending_attempts.insert(stage.name.clone(), attempt - 1);
                    decisions.push(Decision::StartTimer(StartTimerDecisionAttributes {
                        timer_id: format!("retry-{}-{}", stage.name, attempt),
                        control: Some(stage.name.clone()),
                        start_to_fire_timeout: backoff_secs.to_string(),
                    }));
                }
                StageState::NotStarted | StageState::Due { .. } if !deps_done => {}
                StageState::NotStarted | StageState::Due { .. } => {
                    let attempt = match state {
                        StageState::Due { attempt } => attempt,
                        _ => 1,
                    };
                    pending_attempts.insert(stage.name.clone(), attempt - 1);
                    match self.schedule(history, &input, stage, attempt, &results) {
                        Ok(d) => decisions.push(d),
                        Err((reason, details)) => {
                            return Ok(vec![fail_decision(&reason, &details)])
                        }
                    }
                }
            }
        }

        if results.len() == self.stages.len() && !busy {
            let mut out = Map::new();
            for s in &self.stages {
                out.insert(
                    s.name.clone(),
                    results.get(&s.name).cloned().unwrap_or(Value::Null),
                );
            }
            let encoded = Value::Object(out).to_string();
            let len = encoded.chars().count();
            if len > MAX_PAYLOAD_CHARS {
                return Ok(vec![fail_decision(
                    &format!("the workflow result is {len} characters, over SWF's {MAX_PAYLOAD_CHARS} limit"),
                    "every stage completed; their results together are too large",
                )]);
            }
            // A skipped stage may still have its cancel request to send.
            decisions.retain(|d| matches!(d, Decision::RequestCancelActivityTask(_)));
            decisions.push(Decision::CompleteWorkflowExecution(
                CompleteWorkflowExecutionDecisionAttributes {
                    result: Some(encoded),
                },
            ));
            return Ok(decisions);
        }

        // Near SWF's history limit: hand what is done to a fresh run, at a moment when nothing
        // is in flight (an open task would be orphaned by the new run).
        let nothing_open = !busy
            && history.open_activities().next().is_none()
            && history.open_timers().next().is_none()
            && history.children().iter().all(|c| !c.outcome.is_open());
        if history.event_count() >= self.continue_as_new_after_events && nothing_open {
            let mut next = Continued {
                results,
                attempts: carried.attempts,
            };
            for (stage, used) in pending_attempts {
                if used > 0 {
                    next.attempts.insert(stage, used);
                }
            }
            next.attempts
                .retain(|stage, _| !next.results.contains_key(stage));
            return Ok(vec![self.continue_as_new(history, &input, next)]);
        }
        Ok(decisions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::WorkflowExecution;

    fn tref(name: &str) -> TypeRef {
        TypeRef {
            name: name.into(),
            version: "1".into(),
        }
    }

    const T: ActivityTimeouts = ActivityTimeouts {
        schedule_to_start_secs: Some(10),
        schedule_to_close_secs: None,
        start_to_close_secs: Some(60),
        heartbeat_secs: Some(20),
    };

    /// a -> b, both retried twice more after 3 s, then 6 s; "Fatal" is not retried.
    fn two_stages() -> DagWorkflow {
        let retry = RetryPolicy {
            max_attempts: 3,
            initial_backoff_secs: 3,
            max_backoff_secs: 100,
            backoff_coefficient: 2.0,
            non_retryable_reasons: vec!["Fatal".into()],
        };
        DagWorkflow::builder(tref("Two"))
            .stage(Stage::activity("a", tref("a"), "q", T).retry(retry.clone()))
            .stage(
                Stage::activity("b", tref("b"), "q", T)
                    .after(["a"])
                    .retry(retry),
            )
            .allowed_input_fields(["title"])
            .validate(|o| match o.get("title") {
                Some(Value::String(t)) if t.len() > 10 => Err("title is longer than 10".into()),
                _ => Ok(()),
            })
            .build()
            .unwrap()
    }

    const INPUT: &str = r#"{"media_uuid":"m","user_uuid":"u"}"#;

    /// A history under construction; timestamps are the event ids.
    struct B(Vec<HistoryEvent>);

    impl B {
        fn new(input: &str) -> B {
            let mut b = B(Vec::new());
            b.push(EventAttributes::WorkflowExecutionStarted(
                WorkflowExecutionStartedEventAttributes {
                    input: Some(input.into()),
                    workflow_type: tref("Two"),
                    ..Default::default()
                },
            ));
            b
        }
        fn push(&mut self, a: EventAttributes) -> i64 {
            let id = self.0.len() as i64 + 1;
            self.0.push(HistoryEvent::new(id, id as f64, a));
            id
        }
        fn decision_task(&mut self) -> i64 {
            let s = self.push(EventAttributes::DecisionTaskScheduled(Default::default()));
            self.push(EventAttributes::DecisionTaskStarted(
                DecisionTaskStartedEventAttributes {
                    scheduled_event_id: s,
                    identity: None,
                },
            ))
        }
        fn completed(&mut self) -> i64 {
            self.push(EventAttributes::DecisionTaskCompleted(Default::default()))
        }
        fn scheduled(&mut self, stage: &str, attempt: u32) -> i64 {
            self.push(EventAttributes::ActivityTaskScheduled(
                ActivityTaskScheduledEventAttributes {
                    activity_id: format!("{stage}-{attempt}"),
                    activity_type: tref(stage),
                    control: Some(attempt_control(stage, attempt)),
                    ..Default::default()
                },
            ))
        }
        fn done(&mut self, sched: i64, result: &str) -> i64 {
            self.push(EventAttributes::ActivityTaskCompleted(
                ActivityTaskCompletedEventAttributes {
                    scheduled_event_id: sched,
                    started_event_id: 0,
                    result: Some(result.into()),
                },
            ))
        }
        fn failed(&mut self, sched: i64, reason: &str) -> i64 {
            self.push(EventAttributes::ActivityTaskFailed(
                ActivityTaskFailedEventAttributes {
                    scheduled_event_id: sched,
                    started_event_id: 0,
                    reason: Some(reason.into()),
                    details: None,
                },
            ))
        }
        fn decide(&mut self, wf: &DagWorkflow) -> Result<Vec<Decision>, DecideError> {
            self.decision_task();
            let h = WorkflowHistory::new(
                WorkflowExecution {
                    workflow_id: "m".into(),
                    run_id: "r".into(),
                },
                self.0.clone(),
            )
            .unwrap();
            wf.decide(&h)
        }
    }

    fn fail_reason(decisions: &[Decision]) -> String {
        match decisions {
            [Decision::FailWorkflowExecution(f)] => f.reason.clone().unwrap(),
            other => panic!("expected one FailWorkflowExecution, got {other:?}"),
        }
    }

    #[test]
    fn backoff_grows_by_the_coefficient_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff_secs: 3,
            max_backoff_secs: 20,
            backoff_coefficient: 2.0,
            non_retryable_reasons: vec![],
        };
        let waits: Vec<u64> = (2..=6).map(|n| p.backoff_secs(n)).collect();
        assert_eq!(waits, [3, 6, 12, 20, 20]);
        let fractional = RetryPolicy {
            backoff_coefficient: 1.5,
            ..p
        };
        assert_eq!(fractional.backoff_secs(3), 5); // 4.5 rounded up to whole seconds
    }

    #[test]
    fn definitions_are_checked() {
        let s = |name: &str| Stage::activity(name, tref("x"), "q", T);
        let err = |b: DagWorkflowBuilder| b.build().unwrap_err();
        assert_eq!(
            err(DagWorkflow::builder(tref("W"))),
            DefinitionError::NoStages("W".into())
        );
        assert_eq!(
            err(DagWorkflow::builder(tref("W")).stage(s("a")).stage(s("a"))),
            DefinitionError::DuplicateStage("a".into())
        );
        assert_eq!(
            err(DagWorkflow::builder(tref("W")).stage(s("a").after(["zz"]))),
            DefinitionError::UnknownDependency {
                stage: "a".into(),
                dependency: "zz".into()
            }
        );
        assert_eq!(
            err(DagWorkflow::builder(tref("W"))
                .stage(s("a").after(["b"]))
                .stage(s("b").after(["a"]))),
            DefinitionError::Cycle(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            err(DagWorkflow::builder(tref("W")).stage(s("a b"))),
            DefinitionError::BadStageName("a b".into())
        );
        // Declared out of order, stored in dependency order.
        let wf = DagWorkflow::builder(tref("W"))
            .stage(s("late").after(["early"]))
            .stage(s("early"))
            .build()
            .unwrap();
        let order: Vec<&str> = wf.stages().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["early", "late"]);
    }

    #[test]
    fn bad_inputs_fail_the_workflow_with_the_problem_named() {
        let wf = two_stages();
        for (input, want) in [
            ("{not json", "invalid input: malformed JSON"),
            ("[1]", "invalid input: input is not a JSON object"),
            (r#"{"user_uuid":"u"}"#, "invalid input: missing media_uuid"),
            (r#"{"media_uuid":"m"}"#, "invalid input: missing user_uuid"),
            (
                r#"{"media_uuid":"","user_uuid":"u"}"#,
                "invalid input: media_uuid must be a non-empty string",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","colour":1}"#,
                "invalid input: unknown field `colour`",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","title":"far too long a title"}"#,
                "invalid input: title is longer than 10",
            ),
        ] {
            let reason = fail_reason(&B::new(input).decide(&wf).unwrap());
            assert!(reason.starts_with(want), "{input}: {reason}");
        }
        let ok = B::new(r#"{"media_uuid":"m","user_uuid":"u","title":"short"}"#)
            .decide(&wf)
            .unwrap();
        assert!(
            matches!(ok.as_slice(), [Decision::ScheduleActivityTask(a)] if a.activity_id == "a-1")
        );
    }

    #[test]
    fn non_retryable_reason_fails_at_once() {
        let wf = two_stages();
        let mut b = B::new(INPUT);
        b.decision_task();
        b.completed();
        let s = b.scheduled("a", 1);
        b.failed(s, "Fatal");
        let reason = fail_reason(&b.decide(&wf).unwrap());
        assert_eq!(reason, "stage a attempt 1 failed: Fatal (non-retryable)");
    }

    #[test]
    fn decision_failures_have_explicit_outcomes() {
        let wf = two_stages();
        // ScheduleActivityTaskFailed: the type is not registered, retrying cannot help.
        let mut b = B::new(INPUT);
        b.decision_task();
        b.completed();
        b.push(EventAttributes::ScheduleActivityTaskFailed(
            ScheduleActivityTaskFailedEventAttributes {
                activity_id: "a-1".into(),
                activity_type: tref("a"),
                cause: "ACTIVITY_TYPE_DOES_NOT_EXIST".into(),
                decision_task_completed_event_id: 4,
            },
        ));
        let reason = fail_reason(&b.decide(&wf).unwrap());
        assert!(reason.contains("ScheduleActivityTaskFailed for a-1: ACTIVITY_TYPE_DOES_NOT_EXIST"));

        // StartTimerFailed on a retry timer.
        let mut b = B::new(INPUT);
        b.decision_task();
        b.completed();
        let s = b.scheduled("a", 1);
        b.failed(s, "Flaky");
        assert!(matches!(
            b.decide(&wf).unwrap().as_slice(),
            [Decision::StartTimer(t)] if t.timer_id == "retry-a-2" && t.start_to_fire_timeout == "3"
        ));
        b.completed();
        b.push(EventAttributes::StartTimerFailed(
            StartTimerFailedEventAttributes {
                timer_id: "retry-a-2".into(),
                cause: "TIMER_CREATION_RATE_EXCEEDED".into(),
                decision_task_completed_event_id: 0,
            },
        ));
        let reason = fail_reason(&b.decide(&wf).unwrap());
        assert!(reason.contains("StartTimer retry-a-2 failed: TIMER_CREATION_RATE_EXCEEDED"));

        // A refused completion is retried when new events caused it, else the workflow fails.
        let completed_history = |cause: &str| {
            let mut b = B::new(INPUT);
            b.decision_task();
            b.completed();
            let s = b.scheduled("a", 1);
            b.done(s, "1");
            b.decision_task();
            b.completed();
            let s = b.scheduled("b", 1);
            b.done(s, "\"two\"");
            b.decision_task();
            b.completed();
            b.push(EventAttributes::CompleteWorkflowExecutionFailed(
                CompleteWorkflowExecutionFailedEventAttributes {
                    cause: cause.into(),
                    decision_task_completed_event_id: 0,
                },
            ));
            b
        };
        let again = completed_history("UNHANDLED_DECISION").decide(&wf).unwrap();
        assert_eq!(
            again,
            vec![Decision::CompleteWorkflowExecution(
                CompleteWorkflowExecutionDecisionAttributes {
                    result: Some(r#"{"a":1,"b":"two"}"#.into())
                }
            )]
        );
        let reason = fail_reason(
            &completed_history("OPERATION_NOT_PERMITTED")
                .decide(&wf)
                .unwrap(),
        );
        assert_eq!(
            reason,
            "CompleteWorkflowExecution was refused: OPERATION_NOT_PERMITTED"
        );

        // Even FailWorkflowExecution refused: nothing left to decide.
        let mut b = completed_history("OPERATION_NOT_PERMITTED");
        b.push(EventAttributes::FailWorkflowExecutionFailed(
            FailWorkflowExecutionFailedEventAttributes {
                cause: "OPERATION_NOT_PERMITTED".into(),
                decision_task_completed_event_id: 0,
            },
        ));
        assert!(matches!(
            b.decide(&wf),
            Err(DecideError::CannotClose { cause }) if cause == "OPERATION_NOT_PERMITTED"
        ));
    }

    #[test]
    fn oversized_stage_input_fails_instead_of_being_sent() {
        let wf = DagWorkflow::builder(tref("Big"))
            .stage(
                Stage::activity("a", tref("a"), "q", T)
                    .input(|_, _| Ok(Value::String("x".repeat(MAX_PAYLOAD_CHARS)))),
            )
            .build()
            .unwrap();
        let reason = fail_reason(&B::new(INPUT).decide(&wf).unwrap());
        assert!(reason.contains("over SWF's 32768 limit"), "{reason}");
        assert!(reason.chars().count() <= MAX_REASON_CHARS);
    }

    #[test]
    fn signal_hook_can_fail_the_workflow_and_unknown_signals_are_ignored() {
        let wf = DagWorkflow::builder(tref("Two"))
            .stage(Stage::activity("a", tref("a"), "q", T))
            .on_signal(|s| match s.name.as_str() {
                "abort" => SignalAction::FailWorkflow {
                    reason: format!("aborted: {}", s.input.as_deref().unwrap_or("")),
                },
                _ => SignalAction::Ignore,
            })
            .build()
            .unwrap();
        let mut b = B::new(INPUT);
        b.decision_task();
        b.completed();
        b.scheduled("a", 1);
        b.push(EventAttributes::WorkflowExecutionSignaled(
            WorkflowExecutionSignaledEventAttributes {
                signal_name: "hello".into(),
                ..Default::default()
            },
        ));
        assert_eq!(b.decide(&wf).unwrap(), vec![]);
        b.completed();
        b.push(EventAttributes::WorkflowExecutionSignaled(
            WorkflowExecutionSignaledEventAttributes {
                signal_name: "abort".into(),
                input: Some("by operator".into()),
                ..Default::default()
            },
        ));
        assert_eq!(fail_reason(&b.decide(&wf).unwrap()), "aborted: by operator");
    }

    #[test]
    fn failed_child_workflow_is_retried_and_a_refused_start_fails() {
        let wf = DagWorkflow::builder(tref("Parent"))
            .stage(Stage::child_workflow("kid", tref("Kid")))
            .build()
            .unwrap();
        let mut b = B::new(INPUT);
        let first = b.decide(&wf).unwrap();
        let [Decision::StartChildWorkflowExecution(c)] = first.as_slice() else {
            panic!("{first:?}")
        };
        assert_eq!(c.workflow_id, "m-kid-1");
        let input: Value = serde_json::from_str(c.input.as_deref().unwrap()).unwrap();
        assert_eq!(input["media_uuid"], "m");
        b.completed();
        let init = b.push(EventAttributes::StartChildWorkflowExecutionInitiated(
            StartChildWorkflowExecutionInitiatedEventAttributes {
                workflow_id: "m-kid-1".into(),
                workflow_type: tref("Kid"),
                control: Some(attempt_control("kid", 1)),
                ..Default::default()
            },
        ));
        b.push(EventAttributes::ChildWorkflowExecutionFailed(
            ChildWorkflowExecutionFailedEventAttributes {
                initiated_event_id: init,
                reason: Some("boom".into()),
                ..Default::default()
            },
        ));
        assert!(matches!(
            b.decide(&wf).unwrap().as_slice(),
            [Decision::StartTimer(t)] if t.timer_id == "retry-kid-2"
        ));

        let mut b = B::new(INPUT);
        b.decision_task();
        b.completed();
        b.push(EventAttributes::StartChildWorkflowExecutionFailed(
            StartChildWorkflowExecutionFailedEventAttributes {
                workflow_id: "m-kid-1".into(),
                workflow_type: tref("Kid"),
                cause: "WORKFLOW_TYPE_DOES_NOT_EXIST".into(),
                ..Default::default()
            },
        ));
        let reason = fail_reason(&b.decide(&wf).unwrap());
        assert!(reason.contains("WORKFLOW_TYPE_DOES_NOT_EXIST"), "{reason}");
    }

    #[test]
    fn stage_names_are_recovered_from_activity_ids() {
        assert_eq!(stage_of("detect_faces-2"), "detect_faces");
        assert_eq!(stage_of("pre-roll-10"), "pre-roll");
        assert_eq!(stage_of("manual"), "manual");
        assert_eq!(stage_of("x-y"), "x-y");
    }
}
