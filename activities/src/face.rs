//! The `FaceRecognition` workflow: one manual stage that a person completes by hand.
//!
//! The handler of `recognize_faces_manual` does not recognise anything: it writes a request file
//! (`<output_dir>/<media_uuid>/face_recognition_request.json`, holding the task token a person
//! needs) and answers "complete later", leaving the task open. The person finishes it with
//! `swf-runtime complete`. The stage's timeouts are long and come from configuration (hours by
//! default, never scaled); when one expires the decider's retry policy hands the task out again or
//! fails the workflow.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::PipelineConfig;
use crate::faults::fault_for;
use crate::handler::{Handler, HandlerError, HandlerResult, TaskCtx};
use crate::input::{MediaInput, StageInput};
use crate::spec::WorkflowSpec;
use crate::video::stage_spec;
use crate::work::{self, media_dir, now_rfc3339, write_product};
use crate::{Stage, FACE_DECIDER_TASK_LIST, FACE_RECOGNITION, WORKFLOW_VERSION};

/// Room for the decider's own work around the manual stage's worst case.
const EXECUTION_MARGIN_SECS: u64 = 3600;
/// SWF refuses executions longer than a year.
const MAX_EXECUTION_SECS: u64 = 365 * 24 * 3600;

fn manual_input(wf: &Value, results: &BTreeMap<String, Value>) -> Value {
    StageInput::build(wf, results, &[])
}

/// The FaceRecognition workflow type.
pub fn workflow(cfg: &PipelineConfig) -> WorkflowSpec {
    let retry = cfg.face_retry_spec();
    let stage = stage_spec(
        cfg,
        Stage::RecognizeFacesManual,
        &[],
        retry.clone(),
        manual_input,
    );
    let derived = cfg
        .stage_budget_secs(cfg.timeouts(Stage::RecognizeFacesManual), &retry)
        .saturating_add(EXECUTION_MARGIN_SECS)
        .min(MAX_EXECUTION_SECS);
    WorkflowSpec {
        name: FACE_RECOGNITION.to_string(),
        version: WORKFLOW_VERSION.to_string(),
        description: "Hands the faces found in a video to a person, who names them by hand."
            .to_string(),
        decider_task_list: FACE_DECIDER_TASK_LIST.to_string(),
        execution_start_to_close_secs: cfg
            .face_recognition
            .execution_timeout_secs
            .unwrap_or(derived),
        task_start_to_close_secs: cfg.decision_task_timeout_secs,
        stages: vec![stage],
        validate_input: MediaInput::validate,
    }
}

/// Handler of `recognize_faces_manual`: hands the task to a person and leaves it open.
pub struct ManualFaceRecognitionHandler {
    cfg: Arc<PipelineConfig>,
}

impl ManualFaceRecognitionHandler {
    pub fn new(cfg: Arc<PipelineConfig>) -> ManualFaceRecognitionHandler {
        ManualFaceRecognitionHandler { cfg }
    }
}

#[async_trait]
impl Handler for ManualFaceRecognitionHandler {
    async fn run(&self, ctx: &dyn TaskCtx, input: Value) -> Result<HandlerResult, HandlerError> {
        let stage = Stage::RecognizeFacesManual;
        let input = StageInput::parse(input, ctx.media_uuid(), ctx.user_uuid())
            .map_err(HandlerError::invalid_input)?;
        let fault = fault_for(stage.name(), &input.faults, &self.cfg.faults);
        work::perform(&self.cfg, stage, ctx, &fault).await?;
        let timeouts = self.cfg.timeouts(stage);
        let request = json!({
            "media_uuid": input.media_uuid,
            "user_uuid": input.user_uuid,
            "workflow_id": ctx.workflow_id(),
            "run_id": ctx.run_id(),
            "activity_id": ctx.activity_id(),
            "attempt": ctx.attempt(),
            "task_token": ctx.task_token(),
            "requested_at": now_rfc3339(),
            "start_to_close_secs": timeouts.start_to_close_secs,
            "how_to_complete": "Name the faces, then run `swf-runtime complete` with this task_token and a JSON result.",
        });
        let dir = media_dir(&self.cfg, &input.media_uuid);
        let path = write_product(&dir, stage.product_file(), &request).await?;
        tracing::info!(
            request = %path.display(),
            start_to_close_secs = timeouts.start_to_close_secs,
            "Handed face recognition to a person; the task stays open until completed by hand."
        );
        Ok(HandlerResult::CompleteLater)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCtx;

    #[test]
    fn one_manual_stage_with_long_configured_timeouts() {
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..Default::default()
        };
        let wf = workflow(&cfg);
        assert_eq!(wf.name, "FaceRecognition");
        assert_eq!(wf.decider_task_list, "face-recognition-decider");
        assert_eq!(wf.stages.len(), 1);
        let s = &wf.stages[0];
        assert_eq!(s.name, "recognize_faces_manual");
        assert_eq!(s.task_list, "face-recognition-manual");
        // A person's hours are not scaled like machine work.
        assert_eq!(s.start_to_close_secs, Some(8 * 3600));
        assert_eq!(s.schedule_to_start_secs, Some(24 * 3600));
        assert_eq!(s.heartbeat_secs, None);
        assert_eq!(s.retry.max_attempts, 2);
        assert!(wf.execution_start_to_close_secs > 2 * (32 * 3600));
        let short = PipelineConfig {
            face_recognition: crate::FaceRecognitionConfig {
                start_to_close_secs: Some(5),
                schedule_to_start_secs: Some(5),
                max_attempts: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let wf = workflow(&short);
        assert_eq!(wf.stages[0].schedule_to_close_secs, Some(10));
        assert_eq!(wf.stages[0].retry.max_attempts, 1);
    }

    #[tokio::test]
    async fn the_handler_writes_a_request_and_leaves_the_task_open() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = PipelineConfig {
            output_dir: tmp.path().to_path_buf(),
            ..Default::default()
        };
        let h = ManualFaceRecognitionHandler::new(Arc::new(cfg));
        let ctx = TestCtx::new("m-9", 1);
        let out = h
            .run(&ctx, json!({"media_uuid": "m-9", "user_uuid": "u"}))
            .await
            .unwrap();
        assert_eq!(out, HandlerResult::CompleteLater);
        let req: Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("m-9/face_recognition_request.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(req["task_token"], "test-token");
        assert_eq!(req["start_to_close_secs"], 8 * 3600);
    }
}
