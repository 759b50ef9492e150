//! The media pipeline (crate `activities`) adapted to this runtime's decider and worker.
//!
//! `activities` cannot depend on the runtime (the runtime depends on it), so it describes its
//! workflows, activity types and handlers with its own engine-agnostic types. At start-up the
//! binary calls the functions here once with the loaded pipeline configuration:
//! - [`registrations`]: the workflow and activity types to register, every timeout explicit;
//! - [`workflow_definitions`]: one [`DagWorkflow`] per [`activities::WorkflowSpec`], for the
//!   decider's [`crate::decider::WorkflowRegistry`];
//! - [`activity_handlers`]: the worker's [`ActivityRegistry`], each [`activities::Handler`] wrapped
//!   so that the worker's [`ActivityContext`] serves as its [`TaskCtx`] (ids, attempt, heartbeats,
//!   cancellation) and `start_workflow` goes through the SWF client;
//! - [`heartbeat_timeouts`]: per activity type, for the workers' own heartbeat pacing;
//! - [`start_request`]: a StartWorkflowExecution request with task list and timeouts stated.
//!
//! Nothing here keeps state between tasks; the adapters live as long as the worker and decider.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use activities::{
    HandlerError, HandlerResult, PipelineConfig, RetrySpec, StartWorkflowError, TaskCtx,
    WorkflowSpec,
};

use crate::decider::dag::CONTINUED_KEY;
use crate::decider::{ActivityTimeouts, DagWorkflow, DefinitionError, RetryPolicy, Workflow};
use crate::swf::{
    ActivityTypeRegistration, StartWorkflow, SwfClient, SwfError, TypeRef, WorkflowTypeRegistration,
};
use crate::worker::{
    reasons, ActivityContext, ActivityError, ActivityHandler, ActivityOutcome, ActivityRegistry,
};

/// What an execution's children do when it closes: the pipeline starts none, so this only states
/// the registration explicitly.
const CHILD_POLICY: &str = "TERMINATE";

/// Why the pipeline could not be turned into runtime definitions.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A configuration value is out of range: fix the `[pipeline]` table of the config file.
    #[error(transparent)]
    Config(#[from] activities::PipelineConfigError),
    /// A workflow's DAG is unusable (a bug in `activities`): fix the definition.
    #[error("workflow {workflow} cannot be built: {source}")]
    Definition {
        workflow: String,
        #[source]
        source: DefinitionError,
    },
}

/// The decider definitions of every pipeline workflow.
pub fn workflow_definitions(cfg: &PipelineConfig) -> Result<Vec<Arc<dyn Workflow>>, PipelineError> {
    cfg.validate()?;
    activities::workflows(cfg)
        .iter()
        .map(|spec| {
            dag_workflow(spec)
                .map(|w| Arc::new(w) as Arc<dyn Workflow>)
                .map_err(|source| PipelineError::Definition {
                    workflow: spec.name.clone(),
                    source,
                })
        })
        .collect()
}

/// One workflow spec as a DAG the decider runs.
pub fn dag_workflow(spec: &WorkflowSpec) -> Result<DagWorkflow, DefinitionError> {
    let mut builder = DagWorkflow::builder(TypeRef {
        name: spec.name.clone(),
        version: spec.version.clone(),
    })
    .allowed_input_fields(activities::MediaInput::FIELDS)
    .validate({
        let validate = spec.validate_input;
        move |obj| {
            let mut obj = obj.clone();
            obj.remove(CONTINUED_KEY);
            validate(&Value::Object(obj).to_string())
                .map(|_| ())
                // The decider says "invalid input: " itself.
                .map_err(|e| match e.strip_prefix("invalid input: ") {
                    Some(rest) => rest.to_string(),
                    None => e,
                })
        }
    });
    for stage in &spec.stages {
        let build = stage.input;
        builder = builder.stage(
            crate::decider::Stage::activity(
                stage.name.clone(),
                TypeRef {
                    name: stage.activity_type.clone(),
                    version: stage.activity_version.clone(),
                },
                stage.task_list.clone(),
                ActivityTimeouts {
                    schedule_to_start_secs: stage.schedule_to_start_secs,
                    schedule_to_close_secs: stage.schedule_to_close_secs,
                    start_to_close_secs: stage.start_to_close_secs,
                    heartbeat_secs: stage.heartbeat_secs,
                },
            )
            .after(stage.depends_on.iter().cloned())
            .retry(retry_policy(&stage.retry))
            .input(
                move |workflow_input: &Value, results: &BTreeMap<String, Value>| {
                    // A continued run carries the previous run's progress in its input; the stages
                    // only want the media's own fields.
                    let mut wf = workflow_input.clone();
                    if let Some(obj) = wf.as_object_mut() {
                        obj.remove(CONTINUED_KEY);
                    }
                    Ok(build(&wf, results))
                },
            ),
        );
    }
    builder.build()
}

/// The decider's retry policy for a stage's [`RetrySpec`].
///
/// SWF timers count whole seconds, so scaled backoffs are rounded to the nearest second; one that
/// rounds to zero schedules the next attempt at once. The worker's own non-retryable failure (a
/// result too large) is never retried either.
pub fn retry_policy(spec: &RetrySpec) -> RetryPolicy {
    let mut non_retryable = spec.non_retryable_reasons.clone();
    if !non_retryable.iter().any(|r| r == reasons::RESULT_TOO_LARGE) {
        non_retryable.push(reasons::RESULT_TOO_LARGE.to_string());
    }
    RetryPolicy {
        max_attempts: spec.max_attempts,
        initial_backoff_secs: spec.initial_backoff_secs.max(0.0).round() as u64,
        max_backoff_secs: spec.max_backoff_secs.max(0.0).round() as u64,
        backoff_coefficient: spec.coefficient,
        non_retryable_reasons: non_retryable,
    }
}

/// The workflow and activity types to register, with every timeout stated.
pub fn registrations(
    cfg: &PipelineConfig,
) -> (Vec<WorkflowTypeRegistration>, Vec<ActivityTypeRegistration>) {
    let workflows = activities::workflows(cfg)
        .into_iter()
        .map(|w| WorkflowTypeRegistration {
            workflow_type: TypeRef {
                name: w.name,
                version: w.version,
            },
            description: Some(w.description),
            default_task_list: w.decider_task_list,
            default_execution_start_to_close_timeout_secs: w.execution_start_to_close_secs,
            default_task_start_to_close_timeout_secs: w.task_start_to_close_secs,
            default_child_policy: CHILD_POLICY.to_string(),
        })
        .collect();
    let activity_types = activities::activity_types(cfg)
        .into_iter()
        .map(|a| ActivityTypeRegistration {
            activity_type: TypeRef {
                name: a.name,
                version: a.version,
            },
            description: Some(a.description),
            default_task_list: a.default_task_list,
            default_schedule_to_start_timeout_secs: a.schedule_to_start_secs,
            default_schedule_to_close_timeout_secs: a.schedule_to_close_secs,
            default_start_to_close_timeout_secs: a.start_to_close_secs,
            default_heartbeat_timeout_secs: a.heartbeat_secs,
        })
        .collect();
    (workflows, activity_types)
}

/// The heartbeat timeout of each activity type that has one, for `WorkerConfig::heartbeat_timeouts`.
pub fn heartbeat_timeouts(cfg: &PipelineConfig) -> HashMap<String, Duration> {
    activities::activity_types(cfg)
        .into_iter()
        .filter_map(|a| Some((a.name, Duration::from_secs(a.heartbeat_secs?))))
        .collect()
}

/// The StartWorkflowExecution request for a pipeline workflow, with its task list and timeouts
/// stated from the current configuration rather than left to the registered defaults: SWF keeps
/// the defaults of the first registration of a type, which may predate a change of time scale.
/// `None` when `workflow_type` is not a pipeline workflow.
pub fn start_request(
    cfg: &PipelineConfig,
    workflow_type: &str,
    workflow_id: &str,
    input: String,
) -> Option<StartWorkflow> {
    let spec = activities::workflows(cfg)
        .into_iter()
        .find(|w| w.name == workflow_type)?;
    Some(start_for(&spec, workflow_id, input))
}

fn start_for(spec: &WorkflowSpec, workflow_id: &str, input: String) -> StartWorkflow {
    StartWorkflow {
        workflow_id: workflow_id.to_string(),
        workflow_type: Some(TypeRef {
            name: spec.name.clone(),
            version: spec.version.clone(),
        }),
        task_list: Some(spec.decider_task_list.clone()),
        input: Some(input),
        execution_start_to_close_timeout_secs: Some(spec.execution_start_to_close_secs),
        task_start_to_close_timeout_secs: Some(spec.task_start_to_close_secs),
        child_policy: Some(CHILD_POLICY.to_string()),
        tag_list: Vec::new(),
    }
}

/// Every pipeline handler, registered under its activity type, ready for an `ActivityWorker`.
/// `client` is used by handlers that start workflows (Upload).
pub fn activity_handlers(cfg: &PipelineConfig, client: Arc<dyn SwfClient>) -> ActivityRegistry {
    let starter = Arc::new(WorkflowStarter {
        client,
        specs: activities::workflows(cfg)
            .into_iter()
            .map(|w| (w.name.clone(), w))
            .collect(),
    });
    let mut registry = ActivityRegistry::new();
    for (activity_type, handler) in activities::handlers(cfg) {
        registry.register(
            activity_type,
            PipelineHandler {
                handler,
                starter: starter.clone(),
            },
        );
    }
    registry
}

/// Starts pipeline workflows by type name for handlers.
struct WorkflowStarter {
    client: Arc<dyn SwfClient>,
    specs: HashMap<String, WorkflowSpec>,
}

impl WorkflowStarter {
    async fn start(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: String,
    ) -> Result<String, StartWorkflowError> {
        let Some(spec) = self.specs.get(workflow_type) else {
            let mut known: Vec<&str> = self.specs.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(StartWorkflowError::Rejected(format!(
                "unknown workflow type {workflow_type}; the pipeline has {}",
                known.join(", ")
            )));
        };
        let start = start_for(spec, workflow_id, input);
        self.client
            .start_workflow_execution(&start)
            .await
            .map_err(|e| match e {
                SwfError::WorkflowAlreadyStarted(m) => StartWorkflowError::AlreadyStarted(m),
                e if e.is_retryable() || matches!(e, SwfError::Service { .. }) => {
                    StartWorkflowError::Unavailable(e.to_string())
                }
                e => StartWorkflowError::Rejected(e.to_string()),
            })
    }
}

/// An `activities` handler as the worker's [`ActivityHandler`].
struct PipelineHandler {
    handler: Arc<dyn activities::Handler>,
    starter: Arc<WorkflowStarter>,
}

#[async_trait]
impl ActivityHandler for PipelineHandler {
    async fn handle(
        &self,
        ctx: ActivityContext,
        input: Value,
    ) -> Result<ActivityOutcome, ActivityError> {
        let task = PipelineTaskCtx {
            ctx,
            starter: self.starter.clone(),
        };
        match self.handler.run(&task, input).await {
            Ok(HandlerResult::Done(value)) => Ok(ActivityOutcome::Completed(value)),
            Ok(HandlerResult::CompleteLater) => Ok(ActivityOutcome::CompleteLater),
            Err(e) => Err(activity_error(e)),
        }
    }
}

/// A handler's failure as the worker reports it. A cancelled handler uses the worker's own
/// reason, so the worker answers "canceled" when SWF asked for it.
fn activity_error(e: HandlerError) -> ActivityError {
    if e.is_canceled() {
        return ActivityError {
            details: e.details,
            ..ActivityError::cancelled()
        };
    }
    ActivityError {
        reason: e.reason,
        details: e.details,
        non_retryable: e.non_retryable,
    }
}

/// The worker's task context seen through the pipeline's [`TaskCtx`].
struct PipelineTaskCtx {
    ctx: ActivityContext,
    starter: Arc<WorkflowStarter>,
}

#[async_trait]
impl TaskCtx for PipelineTaskCtx {
    fn workflow_id(&self) -> &str {
        &self.ctx.info().workflow_id
    }
    fn run_id(&self) -> &str {
        &self.ctx.info().run_id
    }
    fn activity_id(&self) -> &str {
        &self.ctx.info().activity_id
    }
    fn attempt(&self) -> u32 {
        // A task without the decider's envelope (injected by hand) is a first attempt.
        self.ctx.info().attempt.max(1)
    }
    fn media_uuid(&self) -> &str {
        &self.ctx.info().media_uuid
    }
    fn user_uuid(&self) -> &str {
        &self.ctx.info().user_uuid
    }
    fn task_token(&self) -> &str {
        self.ctx.task_token()
    }
    async fn heartbeat(&self, details: Option<String>) {
        self.ctx.heartbeat(details).await;
    }
    fn cancelled(&self) -> CancellationToken {
        self.ctx.cancelled().clone()
    }
    async fn start_workflow(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: String,
    ) -> Result<String, StartWorkflowError> {
        self.starter.start(workflow_type, workflow_id, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::WorkflowHistory;
    use crate::envelope::{Envelope, TaskContext};
    use crate::swf::fake::{FakeSwf, Recorded};
    use crate::swf::model::{Decision, HistoryEvent};
    use crate::swf::WorkflowExecution;
    use crate::worker::{ActivityWorker, WorkerConfig};
    use serde_json::json;

    fn fast_cfg(dir: &std::path::Path) -> PipelineConfig {
        PipelineConfig {
            time_scale: 0.001,
            output_dir: dir.to_path_buf(),
            ..PipelineConfig::default()
        }
    }

    fn video() -> DagWorkflow {
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..PipelineConfig::default()
        };
        dag_workflow(&activities::video::workflow(&cfg)).unwrap()
    }

    /// A history in SWF's JSON: WorkflowExecutionStarted with `input`, then `events` (ids from 2).
    fn history(input: &str, events: Vec<Value>) -> WorkflowHistory {
        let mut all = vec![json!({
            "eventId": 1, "eventTimestamp": 1_000.0, "eventType": "WorkflowExecutionStarted",
            "workflowExecutionStartedEventAttributes": {
                "input": input, "childPolicy": "TERMINATE",
                "taskList": {"name": "video-processing-decider"},
                "workflowType": {"name": "VideoProcessing", "version": "1.0"},
                "executionStartToCloseTimeout": "3600", "taskStartToCloseTimeout": "10"
            }
        })];
        for (i, mut e) in events.into_iter().enumerate() {
            e["eventId"] = json!(i as i64 + 2);
            e["eventTimestamp"] = json!(1_001.0 + i as f64);
            all.push(e);
        }
        let events: Vec<HistoryEvent> = serde_json::from_value(Value::Array(all)).unwrap();
        WorkflowHistory::new(
            WorkflowExecution {
                workflow_id: "m-1".into(),
                run_id: "r-1".into(),
            },
            events,
        )
        .unwrap()
    }

    /// Scheduled, started and closed events of attempt `attempt` of `stage`, from event `first`.
    fn attempt_events(stage: &str, attempt: u32, first: i64, close: Value) -> Vec<Value> {
        let mut closed = close;
        let key = format!(
            "{}{}EventAttributes",
            closed["eventType"].as_str().unwrap()[..1].to_lowercase(),
            &closed["eventType"].as_str().unwrap()[1..]
        );
        closed[&key]["scheduledEventId"] = json!(first);
        closed[&key]["startedEventId"] = json!(first + 1);
        vec![
            json!({"eventType": "ActivityTaskScheduled", "activityTaskScheduledEventAttributes": {
                "activityType": {"name": stage, "version": "1.0"},
                "activityId": format!("{stage}-{attempt}"),
                "control": format!(r#"{{"stage":"{stage}","attempt":{attempt}}}"#),
                "taskList": {"name": "video-processing"},
                "decisionTaskCompletedEventId": 1
            }}),
            json!({"eventType": "ActivityTaskStarted", "activityTaskStartedEventAttributes": {
                "scheduledEventId": first, "identity": "test"
            }}),
            closed,
        ]
    }

    fn completed(result: Value) -> Value {
        json!({"eventType": "ActivityTaskCompleted", "activityTaskCompletedEventAttributes": {
            "result": result.to_string()
        }})
    }

    fn failed(reason: &str) -> Value {
        json!({"eventType": "ActivityTaskFailed", "activityTaskFailedEventAttributes": {
            "reason": reason, "details": "boom"
        }})
    }

    fn scheduled(decisions: &[Decision]) -> Vec<(String, Envelope)> {
        decisions
            .iter()
            .map(|d| match d {
                Decision::ScheduleActivityTask(a) => (
                    a.activity_id.clone(),
                    serde_json::from_str(a.input.as_deref().unwrap()).unwrap(),
                ),
                other => panic!("unexpected decision {other:?}"),
            })
            .collect()
    }

    fn fail_reason(decisions: &[Decision]) -> String {
        match decisions {
            [Decision::FailWorkflowExecution(a)] => a.reason.clone().unwrap(),
            other => panic!("expected one FailWorkflowExecution, got {other:?}"),
        }
    }

    const INPUT: &str =
        r#"{"media_uuid":"m-1","user_uuid":"u-1","faults":{"publish":{"fail_times":1}}}"#;

    #[test]
    fn a_routed_stage_is_scheduled_registered_and_polled_on_its_task_list() {
        let mut cfg = crate::config::Config::default();
        cfg.pipeline
            .task_lists
            .insert("detect_faces".into(), "video-gpu".into());
        let (_, types) = registrations(&cfg.pipeline);
        let faces = types
            .iter()
            .find(|a| a.activity_type.name == "detect_faces")
            .unwrap();
        assert_eq!(faces.default_task_list, "video-gpu");
        // A host with no task lists configured polls every list the pipeline uses.
        let lists: Vec<String> = crate::app::default_task_lists(&cfg, 4)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(lists.contains(&"video-gpu".to_string()), "{lists:?}");
        assert!(lists.contains(&"video-processing".to_string()), "{lists:?}");
        // The decider schedules detect_faces there once transcode is done.
        let wf = dag_workflow(&activities::video::workflow(&cfg.pipeline)).unwrap();
        let Some(crate::decider::StageKind::Activity { task_list, .. }) =
            wf.stage("detect_faces").map(|s| &s.kind)
        else {
            panic!("detect_faces is an activity stage")
        };
        assert_eq!(task_list, "video-gpu");
    }

    #[test]
    fn registrations_cover_every_type_with_explicit_timeouts() {
        let cfg = PipelineConfig::default();
        let (workflows, activity_types) = registrations(&cfg);
        let names: Vec<&str> = workflows
            .iter()
            .map(|w| w.workflow_type.name.as_str())
            .collect();
        assert_eq!(names, ["VideoProcessing", "FaceRecognition"]);
        assert_eq!(workflows[0].default_task_list, "video-processing-decider");
        assert_eq!(workflows[0].default_task_start_to_close_timeout_secs, 10);
        assert_eq!(activity_types.len(), 6);
        let transcode = activity_types
            .iter()
            .find(|a| a.activity_type.name == "transcode")
            .unwrap();
        assert_eq!(transcode.default_task_list, "video-processing");
        assert_eq!(transcode.default_start_to_close_timeout_secs, Some(92));
        assert_eq!(transcode.default_heartbeat_timeout_secs, Some(17));
        let manual = activity_types
            .iter()
            .find(|a| a.activity_type.name == "recognize_faces_manual")
            .unwrap();
        assert_eq!(manual.default_task_list, "face-recognition-manual");
        assert_eq!(manual.default_start_to_close_timeout_secs, Some(8 * 3600));
        assert_eq!(manual.default_heartbeat_timeout_secs, None);
        let beats = heartbeat_timeouts(&cfg);
        assert_eq!(beats["transcode"], Duration::from_secs(17));
        assert!(!beats.contains_key("recognize_faces_manual"));
        assert_eq!(workflow_definitions(&cfg).unwrap().len(), 2);
        let bad = PipelineConfig {
            time_scale: -1.0,
            ..cfg
        };
        let Err(err) = workflow_definitions(&bad) else {
            panic!("a negative time scale must be refused")
        };
        assert!(err.to_string().contains("time_scale"), "{err}");
    }

    #[test]
    fn the_decider_runs_transcode_then_both_parallel_stages_then_publish() {
        let wf = video();
        let first = wf.decide(&history(INPUT, vec![])).unwrap();
        let s = scheduled(&first);
        assert_eq!(s.len(), 1);
        let (id, env) = &s[0];
        assert_eq!(id, "transcode-1");
        assert_eq!(
            env.swf_runtime,
            TaskContext {
                media_uuid: "m-1".into(),
                user_uuid: "u-1".into(),
                workflow_type: "VideoProcessing".into(),
                stage: "transcode".into(),
                attempt: 1,
            }
        );
        // Faults travel into every stage input.
        assert_eq!(env.input["faults"]["publish"]["fail_times"], 1);
        let Decision::ScheduleActivityTask(a) = &first[0] else {
            unreachable!()
        };
        assert_eq!(a.task_list.as_ref().unwrap().name, "video-processing");
        assert_eq!(a.start_to_close_timeout.as_deref(), Some("3"));

        let mut events = attempt_events("transcode", 1, 2, completed(json!({"product": "t"})));
        let s = scheduled(&wf.decide(&history(INPUT, events.clone())).unwrap());
        let ids: Vec<&str> = s.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["thumbnails-1", "detect_faces-1"],
            "both in one decision"
        );
        assert_eq!(s[0].1.input["upstream"]["transcode"]["product"], "t");

        // detect_faces starts (events 5, 6), thumbnails runs and completes (7-9).
        let faces = attempt_events(
            "detect_faces",
            1,
            5,
            completed(json!({"faces_detected": 2})),
        );
        events.extend(faces[..2].iter().cloned());
        events.extend(attempt_events(
            "thumbnails",
            1,
            7,
            completed(json!({"count": 5})),
        ));
        assert!(
            wf.decide(&history(INPUT, events.clone()))
                .unwrap()
                .is_empty(),
            "publish waits for detect_faces"
        );
        events.push(faces[2].clone());
        let s = scheduled(&wf.decide(&history(INPUT, events.clone())).unwrap());
        assert_eq!(s[0].0, "publish-1");
        assert_eq!(s[0].1.input["upstream"].as_object().unwrap().len(), 3);

        events.extend(attempt_events("publish", 1, 11, failed("injected_failure")));
        // At this time scale the backoff rounds to zero: the retry is scheduled at once.
        let s = scheduled(&wf.decide(&history(INPUT, events.clone())).unwrap());
        assert_eq!(s[0].0, "publish-2");
        assert_eq!(s[0].1.swf_runtime.attempt, 2);
        events.extend(attempt_events(
            "publish",
            2,
            14,
            completed(json!({"location": "x"})),
        ));
        match wf.decide(&history(INPUT, events)).unwrap().as_slice() {
            [Decision::CompleteWorkflowExecution(c)] => {
                let r: Value = serde_json::from_str(c.result.as_deref().unwrap()).unwrap();
                assert_eq!(r["publish"]["location"], "x");
            }
            other => panic!("expected completion, got {other:?}"),
        }
    }

    #[test]
    fn bad_inputs_fail_the_workflow_at_once_with_a_named_reason() {
        let wf = video();
        for (input, expected) in [
            (r#"{"media_uuid": "#, "malformed JSON"),
            (r#"{"user_uuid":"u"}"#, "media_uuid"),
            (r#"{"media_uuid":"","user_uuid":"u"}"#, "media_uuid"),
            (
                r#"{"media_uuid":"m","user_uuid":"u","colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","faults":{"nope":{}}}"#,
                "unknown stage `nope`",
            ),
            (
                r#"{"media_uuid":"a/b","user_uuid":"u"}"#,
                "media_uuid contains '/'",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","options":{"thumbnail_count":0}}"#,
                "thumbnail_count",
            ),
        ] {
            let reason = fail_reason(&wf.decide(&history(input, vec![])).unwrap());
            assert!(reason.starts_with("invalid input: "), "{reason}");
            assert!(!reason.contains("invalid input: invalid input"), "{reason}");
            assert!(
                reason.contains(expected),
                "{input}: {reason:?} should name {expected:?}"
            );
        }
    }

    #[test]
    fn retries_stop_on_non_retryable_reasons_and_after_max_attempts() {
        let wf = video();
        let events = attempt_events("transcode", 1, 2, failed("invalid_input"));
        let reason = fail_reason(&wf.decide(&history(INPUT, events)).unwrap());
        assert!(reason.contains("non-retryable"), "{reason}");
        let mut events = Vec::new();
        for attempt in 1..=3 {
            events.extend(attempt_events(
                "transcode",
                attempt,
                2 + 3 * (attempt as i64 - 1),
                failed("injected_failure"),
            ));
        }
        let reason = fail_reason(&wf.decide(&history(INPUT, events)).unwrap());
        assert!(reason.contains("after 3 attempts"), "{reason}");
    }

    #[test]
    fn start_requests_state_task_list_and_timeouts_from_the_configuration() {
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..PipelineConfig::default()
        };
        let spec = activities::video::workflow(&cfg);
        let req = start_request(&cfg, "VideoProcessing", "m-1", "{}".into()).unwrap();
        assert_eq!(req.workflow_id, "m-1");
        assert_eq!(req.task_list.as_deref(), Some("video-processing-decider"));
        assert_eq!(
            req.execution_start_to_close_timeout_secs,
            Some(spec.execution_start_to_close_secs)
        );
        assert_eq!(req.task_start_to_close_timeout_secs, Some(10));
        assert_eq!(req.workflow_type.unwrap().version, "1.0");
        assert!(start_request(&cfg, "Nope", "m-1", "{}".into()).is_none());
    }

    #[test]
    fn retry_policies_round_backoffs_and_list_non_retryable_reasons() {
        let cfg = PipelineConfig::default();
        let p = retry_policy(&cfg.retry_spec());
        assert_eq!((p.initial_backoff_secs, p.max_backoff_secs), (2, 60));
        assert!(p
            .non_retryable_reasons
            .contains(&"invalid_input".to_string()));
        assert!(p
            .non_retryable_reasons
            .contains(&reasons::RESULT_TOO_LARGE.to_string()));
        let fast = retry_policy(
            &PipelineConfig {
                time_scale: 0.01,
                ..cfg
            }
            .retry_spec(),
        );
        assert_eq!(fast.backoff_secs(2), 0);
    }

    fn envelope(stage: &str, attempt: u32, input: Value) -> String {
        Envelope {
            swf_runtime: TaskContext {
                media_uuid: "m-7".into(),
                user_uuid: "u-7".into(),
                workflow_type: "VideoProcessing".into(),
                stage: stage.into(),
                attempt,
            },
            input,
        }
        .encode()
    }

    /// Runs a real worker on `task_list` until `answers` final answers were recorded.
    async fn run_worker(fake: Arc<FakeSwf>, cfg: &PipelineConfig, task_list: &str, answers: usize) {
        let mut wc = WorkerConfig::new(task_list);
        wc.slots = 2;
        wc.pollers = 1;
        wc.heartbeat_timeouts = heartbeat_timeouts(cfg);
        let worker =
            ActivityWorker::new(fake.clone(), activity_handlers(cfg, fake.clone()), wc).unwrap();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(worker.run(shutdown.clone()));
        let done = fake
            .wait_for(Duration::from_secs(10), |f| {
                f.activity_answers().len() >= answers
            })
            .await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the worker drains")
            .unwrap()
            .unwrap();
        assert!(done, "only {:?}", fake.activity_answers());
    }

    #[tokio::test]
    async fn the_worker_runs_pipeline_handlers_with_attempts_faults_and_heartbeats() {
        let tmp = tempfile::tempdir().unwrap();
        // Transcode runs 0.5 s, past the first heartbeat interval (no margin: a 1 s heartbeat
        // timeout, beats every 1/3 s), so the handler's progress reaches SWF on the worker's beat.
        let cfg = PipelineConfig {
            time_scale: 0.01,
            transcode_secs: 50.0,
            timeout_margin_secs: 0,
            ..fast_cfg(tmp.path())
        };
        let fake = Arc::new(FakeSwf::new("media", Duration::from_millis(200)));
        let input = json!({"media_uuid": "m-7", "user_uuid": "u-7", "faults": {"transcode": {"fail_times": 1}}});
        for (token, attempt) in [("t1", 1), ("t2", 2)] {
            fake.push_activity_task(
                "video-processing",
                FakeSwf::activity_task(
                    token,
                    "transcode",
                    Some(envelope("transcode", attempt, input.clone())),
                ),
            );
        }
        fake.push_activity_task(
            "video-processing",
            FakeSwf::activity_task(
                "t3",
                "publish",
                Some(envelope(
                    "publish",
                    1,
                    json!({"user_uuid": "u-7", "bogus": 1}),
                )),
            ),
        );
        run_worker(fake.clone(), &cfg, "video-processing", 3).await;
        let answers = fake.activity_answers();
        let by_token = |t: &str| {
            answers
                .iter()
                .find(|r| r.token() == Some(t))
                .unwrap()
                .clone()
        };
        assert!(
            matches!(by_token("t1"), Recorded::Failed { reason: Some(r), .. } if r == "injected_failure")
        );
        let Recorded::Completed {
            result: Some(result),
            ..
        } = by_token("t2")
        else {
            panic!("attempt 2 must complete: {answers:?}")
        };
        let result: Value = serde_json::from_str(&result).unwrap();
        assert!(tmp.path().join("m-7/transcoded.json").is_file(), "{result}");
        // The handler's own progress heartbeats reached SWF.
        assert!(fake
            .heartbeats("t2")
            .iter()
            .flatten()
            .any(|d| d.parse::<u32>().is_ok()));
        // A bad stage input fails with the reason the decider's policy does not retry.
        assert!(matches!(
            by_token("t3"),
            Recorded::Failed { reason: Some(r), .. } if r == "invalid_input"
        ));
    }

    #[tokio::test]
    async fn upload_starts_video_processing_once_under_the_media_uuid() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = fast_cfg(tmp.path());
        let fake = Arc::new(FakeSwf::new("media", Duration::from_millis(200)));
        let input =
            json!({"media_uuid": "m-8", "user_uuid": "u-8", "source": "/in/m-8.mov"}).to_string();
        fake.push_activity_task(
            "upload",
            FakeSwf::activity_task("u1", "upload", Some(input.clone())),
        );
        fake.push_activity_task(
            "upload",
            FakeSwf::activity_task("u2", "upload", Some(input)),
        );
        run_worker(fake.clone(), &cfg, "upload", 2).await;
        let started: Vec<Recorded> = fake
            .recorded()
            .into_iter()
            .filter(|r| matches!(r, Recorded::Started { .. }))
            .collect();
        assert_eq!(
            started.len(),
            1,
            "the second upload finds the open execution: {:?}",
            fake.recorded()
        );
        let Recorded::Started { workflow_id, input } = &started[0] else {
            unreachable!()
        };
        assert_eq!(workflow_id, "m-8");
        let wf = dag_workflow(&activities::video::workflow(&cfg)).unwrap();
        wf.check_input(input.as_deref()).unwrap();
        let completed = fake
            .activity_answers()
            .into_iter()
            .filter(|r| matches!(r, Recorded::Completed { .. }))
            .count();
        assert_eq!(completed, 2);
        assert!(tmp.path().join("m-8/upload.json").is_file());
    }

    #[tokio::test]
    async fn manual_face_recognition_is_left_open_for_a_person() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = fast_cfg(tmp.path());
        let fake = Arc::new(FakeSwf::new("media", Duration::from_millis(200)));
        fake.push_activity_task(
            "face-recognition-manual",
            FakeSwf::activity_task(
                "f1",
                "recognize_faces_manual",
                Some(envelope(
                    "recognize_faces_manual",
                    1,
                    json!({"media_uuid": "m-9", "user_uuid": "u"}),
                )),
            ),
        );
        let mut wc = WorkerConfig::new("face-recognition-manual");
        wc.pollers = 1;
        let worker =
            ActivityWorker::new(fake.clone(), activity_handlers(&cfg, fake.clone()), wc).unwrap();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(worker.run(shutdown.clone()));
        let request = tmp.path().join("m-9/face_recognition_request.json");
        // The request file is written before the handler returns; the task is then deferred.
        let written = async {
            while !request.is_file() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), written)
            .await
            .expect("request written");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            fake.activity_answers().is_empty(),
            "nobody answered the manual task"
        );
        let req: Value = serde_json::from_str(&std::fs::read_to_string(request).unwrap()).unwrap();
        assert_eq!(req["task_token"], "f1");
    }

    /// The pipeline end to end: the embedded swf-local, reached through `aws-sdk-swf`, with this
    /// runtime's decider and workers hosting the pipeline at a small time scale.
    mod on_swf_local {
        use super::*;
        use crate::decider::{timeline_from_events, DeciderPoller, Timeline, WorkflowRegistry};
        use crate::swf::aws::{AwsSwfClient, ClientOptions};
        use crate::swf::model::EventAttributes;
        use crate::swf::ExecutionInfo;
        use std::path::PathBuf;
        use tokio::task::JoinHandle;

        struct Env {
            cfg: PipelineConfig,
            client: Arc<dyn SwfClient>,
            out: PathBuf,
            shutdown: CancellationToken,
            tasks: Vec<JoinHandle<()>>,
            server: Option<swf_local::ServerHandle>,
            _tmp: tempfile::TempDir,
        }

        async fn env(mut cfg: PipelineConfig) -> Env {
            let tmp = tempfile::tempdir().unwrap();
            cfg.output_dir = tmp.path().join("out");
            let mut local =
                swf_local::Config::new("127.0.0.1:0".parse().unwrap(), tmp.path().join("swf.db"));
            // Short holds so that shutting the test down does not wait for long polls.
            local.long_poll_timeout = Duration::from_secs(1);
            let server = swf_local::start(local).await.unwrap();
            let client: Arc<dyn SwfClient> = Arc::new(
                AwsSwfClient::connect(&ClientOptions {
                    domain: "pipeline-test".into(),
                    region: Some("us-east-1".into()),
                    endpoint_url: Some(server.endpoint_url()),
                    static_credentials: Some(("test".into(), "test".into())),
                    ..ClientOptions::default()
                })
                .await
                .unwrap(),
            );
            client.register_domain(1, None).await.unwrap();
            let (workflow_types, activity_types) = registrations(&cfg);
            for w in &workflow_types {
                client.register_workflow_type(w).await.unwrap();
            }
            for a in &activity_types {
                client.register_activity_type(a).await.unwrap();
            }
            let mut registry = WorkflowRegistry::new();
            for w in workflow_definitions(&cfg).unwrap() {
                registry.register(w);
            }
            let shutdown = CancellationToken::new();
            let mut tasks = Vec::new();
            for task_list in activities::decider_task_lists() {
                let poller =
                    DeciderPoller::new(client.clone(), task_list, "test-decider", registry.clone())
                        .with_pollers(2);
                let sd = shutdown.clone();
                tasks.push(tokio::spawn(async move { poller.run(sd).await }));
            }
            for task_list in activities::activity_task_lists() {
                let mut wc = WorkerConfig::new(task_list);
                wc.slots = 16;
                wc.pollers = 4;
                wc.heartbeat_timeouts = heartbeat_timeouts(&cfg);
                wc.drain_timeout = Duration::from_secs(2);
                let worker = ActivityWorker::new(
                    client.clone(),
                    activity_handlers(&cfg, client.clone()),
                    wc,
                )
                .unwrap();
                let sd = shutdown.clone();
                tasks.push(tokio::spawn(async move {
                    worker.run(sd).await.unwrap();
                }));
            }
            Env {
                client,
                out: cfg.output_dir.clone(),
                cfg,
                shutdown,
                tasks,
                server: Some(server),
                _tmp: tmp,
            }
        }

        impl Env {
            async fn start(
                &self,
                workflow_type: &str,
                workflow_id: &str,
                input: &str,
            ) -> WorkflowExecution {
                let request = start_request(&self.cfg, workflow_type, workflow_id, input.into())
                    .expect("a pipeline workflow");
                let run_id = self
                    .client
                    .start_workflow_execution(&request)
                    .await
                    .unwrap();
                WorkflowExecution {
                    workflow_id: workflow_id.into(),
                    run_id,
                }
            }

            /// Waits (bounded) until the execution closed, checking its state every 20 ms.
            async fn closed(
                &self,
                execution: &WorkflowExecution,
                limit: Duration,
            ) -> ExecutionInfo {
                let deadline = tokio::time::Instant::now() + limit;
                loop {
                    let info = self
                        .client
                        .describe_workflow_execution(execution)
                        .await
                        .unwrap();
                    if info.execution_status == "CLOSED" {
                        return info;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        let events: Vec<String> = self
                            .history(execution)
                            .await
                            .iter()
                            .map(|e| format!("{} {}", e.event_id, e.event_type()))
                            .collect();
                        panic!(
                            "{} still open after {limit:?}; history: {events:?}",
                            execution.workflow_id
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }

            async fn history(&self, execution: &WorkflowExecution) -> Vec<HistoryEvent> {
                let mut events = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .client
                        .get_workflow_execution_history(execution, token.as_deref(), false)
                        .await
                        .unwrap();
                    events.extend(page.events);
                    match page.next_page_token {
                        Some(t) => token = Some(t),
                        None => return events,
                    }
                }
            }

            async fn timeline(&self, execution: &WorkflowExecution) -> Timeline {
                timeline_from_events(execution.clone(), self.history(execution).await).unwrap()
            }

            async fn failure_reason(&self, execution: &WorkflowExecution) -> String {
                self.history(execution)
                    .await
                    .into_iter()
                    .find_map(|e| match e.attributes {
                        EventAttributes::WorkflowExecutionFailed(a) => a.reason,
                        _ => None,
                    })
                    .expect("the execution failed")
            }

            async fn stop(mut self) {
                self.shutdown.cancel();
                for t in std::mem::take(&mut self.tasks) {
                    tokio::time::timeout(Duration::from_secs(20), t)
                        .await
                        .expect("pollers and workers stop")
                        .unwrap();
                }
                if let Some(server) = self.server.take() {
                    server.shutdown().await;
                }
            }
        }

        fn attempts(tl: &Timeline, stage: &str) -> usize {
            tl.stages
                .iter()
                .find(|s| s.stage == stage)
                .map_or(0, |s| s.attempts.len())
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_pipeline_runs_retries_and_refuses_bad_input() {
            let cfg = PipelineConfig {
                time_scale: 0.01,
                ..PipelineConfig::default()
            };
            let env = env(cfg).await;
            let happy = env
                .start(
                    "VideoProcessing",
                    "happy",
                    r#"{"media_uuid":"happy","user_uuid":"u-1","source":"/in/happy.mov"}"#,
                )
                .await;
            let flaky = env
                .start(
                    "VideoProcessing",
                    "flaky",
                    r#"{"media_uuid":"flaky","user_uuid":"u-1","faults":{"transcode":{"fail_times":2},"detect_faces":{"panic":true,"fault_attempts":1}}}"#,
                )
                .await;
            let doomed = env
                .start("VideoProcessing", "doomed", r#"{"media_uuid":"doomed","user_uuid":"u-1","faults":{"publish":{"fail_times":3}}}"#)
                .await;
            let bad = env
                .start(
                    "VideoProcessing",
                    "bad",
                    r#"{"user_uuid":"u-1","colour":"red"}"#,
                )
                .await;
            let limit = Duration::from_secs(30);

            let info = env.closed(&happy, limit).await;
            assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
            let tl = env.timeline(&happy).await;
            let started = |stage: &str| {
                tl.stages
                    .iter()
                    .find(|s| s.stage == stage)
                    .unwrap()
                    .attempts[0]
                    .started_at
                    .unwrap()
            };
            // thumbnails and detect_faces really run side by side.
            let gap = (started("thumbnails") - started("detect_faces")).abs();
            assert!(gap < 0.1, "parallel stages started {gap} s apart");
            assert!(started("thumbnails") >= started("transcode") + 0.3);
            assert!(started("publish") >= started("detect_faces") + 0.1);
            let wall = tl.closed_at.unwrap() - tl.started_at;
            // Critical path: 30 + 10 + 8 s nominal, scaled by 0.01.
            assert!((0.48..0.48 + 2.0).contains(&wall), "wall time {wall} s");
            for f in [
                "transcoded.json",
                "thumbnails.json",
                "faces.json",
                "published.json",
            ] {
                assert!(env.out.join("happy").join(f).is_file(), "{f} missing");
            }

            let info = env.closed(&flaky, limit).await;
            assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
            let tl = env.timeline(&flaky).await;
            assert_eq!(
                attempts(&tl, "transcode"),
                3,
                "two injected failures, then success"
            );
            assert_eq!(attempts(&tl, "detect_faces"), 2, "a panic, then success");

            let info = env.closed(&doomed, limit).await;
            assert_eq!(info.close_status.as_deref(), Some("FAILED"));
            let reason = env.failure_reason(&doomed).await;
            assert!(
                reason.contains("publish") && reason.contains("3 attempts"),
                "{reason}"
            );

            let info = env.closed(&bad, limit).await;
            assert_eq!(info.close_status.as_deref(), Some("FAILED"));
            let reason = env.failure_reason(&bad).await;
            assert!(
                reason.starts_with("invalid input") && reason.contains("media_uuid"),
                "{reason}"
            );
            assert_eq!(
                env.timeline(&bad).await.stages.len(),
                0,
                "nothing was scheduled"
            );
            env.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_hung_stage_times_out_and_its_retry_succeeds() {
            let cfg = PipelineConfig {
                time_scale: 0.01,
                timeout_margin_secs: 1,
                ..PipelineConfig::default()
            };
            let limit = cfg
                .timeouts(activities::Stage::Thumbnails)
                .start_to_close_secs
                .unwrap();
            let env = env(cfg).await;
            let hung = env
                .start(
                    "VideoProcessing",
                    "hung",
                    r#"{"media_uuid":"hung","user_uuid":"u-1","faults":{"thumbnails":{"hang":true,"fault_attempts":1}}}"#,
                )
                .await;
            let info = env.closed(&hung, Duration::from_secs(30)).await;
            assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
            let tl = env.timeline(&hung).await;
            let thumbs = tl.stages.iter().find(|s| s.stage == "thumbnails").unwrap();
            assert_eq!(thumbs.attempts.len(), 2);
            assert_eq!(
                thumbs.attempts[0].timeout_type.as_deref(),
                Some("START_TO_CLOSE")
            );
            let first = &thumbs.attempts[0];
            let ran = first.closed_at.unwrap() - first.started_at.unwrap();
            assert!(
                ran >= limit as f64 - 0.1,
                "timed out after {ran} s, limit {limit} s"
            );
            env.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn face_recognition_waits_for_a_person_and_completes_by_hand() {
            let env = env(PipelineConfig::default()).await;
            let face = env
                .start(
                    "FaceRecognition",
                    "face-1",
                    r#"{"media_uuid":"face-1","user_uuid":"u-1"}"#,
                )
                .await;
            let request = env.out.join("face-1").join("face_recognition_request.json");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while !request.is_file() {
                assert!(tokio::time::Instant::now() < deadline, "no request file");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let req: Value =
                serde_json::from_str(&std::fs::read_to_string(&request).unwrap()).unwrap();
            let token = req["task_token"].as_str().unwrap();
            let info = env.client.describe_workflow_execution(&face).await.unwrap();
            assert_eq!(info.execution_status, "OPEN", "the task waits for a person");
            crate::worker::complete_by_hand(
                env.client.as_ref(),
                token,
                Some(json!({"faces": [{"face_id": "face-1", "name": "Ada"}]}).to_string()),
            )
            .await
            .unwrap();
            let info = env.closed(&face, Duration::from_secs(20)).await;
            assert_eq!(info.close_status.as_deref(), Some("COMPLETED"));
            env.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_unanswered_manual_task_is_retried_then_fails_the_workflow() {
            let cfg = PipelineConfig {
                time_scale: 0.01,
                face_recognition: activities::FaceRecognitionConfig {
                    schedule_to_start_secs: Some(5),
                    start_to_close_secs: Some(1),
                    max_attempts: 2,
                    ..activities::FaceRecognitionConfig::default()
                },
                ..PipelineConfig::default()
            };
            let env = env(cfg).await;
            let face = env
                .start(
                    "FaceRecognition",
                    "face-2",
                    r#"{"media_uuid":"face-2","user_uuid":"u-1"}"#,
                )
                .await;
            let info = env.closed(&face, Duration::from_secs(20)).await;
            assert_eq!(info.close_status.as_deref(), Some("FAILED"));
            let tl = env.timeline(&face).await;
            let stage = &tl.stages[0];
            assert_eq!(stage.stage, "recognize_faces_manual");
            assert_eq!(stage.attempts.len(), 2);
            for a in &stage.attempts {
                assert_eq!(a.timeout_type.as_deref(), Some("START_TO_CLOSE"), "{a:?}");
            }
            let reason = env.failure_reason(&face).await;
            assert!(reason.contains("2 attempts"), "{reason}");
            env.stop().await;
        }
    }
}
