//! The `upload` activity: registers a new media file and starts its VideoProcessing workflow.
//!
//! Upload is the pipeline's entry point and not part of a workflow: the intake (or a person, with
//! `swf-runtime inject`) puts a task on the `upload` task list with the media's input. The handler
//! records the upload in `<output_dir>/<media_uuid>/upload.json`, then starts VideoProcessing with
//! the media uuid as workflow id - never an id derived from the clock, which could collide - so a
//! retried upload finds its workflow already started and counts that as success.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::PipelineConfig;
use crate::faults::fault_for;
use crate::handler::{
    Handler, HandlerError, HandlerResult, StartWorkflowError, TaskCtx, REASON_START_WORKFLOW,
    REASON_START_WORKFLOW_REJECTED,
};
use crate::input::{MediaInput, StageInput};
use crate::spec::ActivityTypeSpec;
use crate::work::{self, media_dir, now_rfc3339, write_product};
use crate::{Stage, ACTIVITY_VERSION, VIDEO_PROCESSING};

/// The upload activity type's registration.
pub fn activity_type(cfg: &PipelineConfig) -> ActivityTypeSpec {
    let t = cfg.timeouts(Stage::Upload);
    ActivityTypeSpec {
        name: Stage::Upload.name().to_string(),
        version: ACTIVITY_VERSION.to_string(),
        description: Stage::Upload.description().to_string(),
        default_task_list: cfg.task_list(Stage::Upload).to_string(),
        schedule_to_start_secs: t.schedule_to_start_secs,
        schedule_to_close_secs: t.schedule_to_close_secs,
        start_to_close_secs: t.start_to_close_secs,
        heartbeat_secs: t.heartbeat_secs,
    }
}

pub struct UploadHandler {
    cfg: Arc<PipelineConfig>,
}

impl UploadHandler {
    pub fn new(cfg: Arc<PipelineConfig>) -> UploadHandler {
        UploadHandler { cfg }
    }
}

#[async_trait]
impl Handler for UploadHandler {
    async fn run(&self, ctx: &dyn TaskCtx, input: Value) -> Result<HandlerResult, HandlerError> {
        let stage = Stage::Upload;
        let input = StageInput::parse(input, ctx.media_uuid(), ctx.user_uuid())
            .map_err(HandlerError::invalid_input)?;
        let fault = fault_for(stage.name(), &input.faults, &self.cfg.faults);
        let took = work::perform(&self.cfg, stage, ctx, &fault).await?;
        let media = MediaInput {
            media_uuid: input.media_uuid.clone(),
            user_uuid: input.user_uuid.clone(),
            source: input.source.clone(),
            options: input.options.clone(),
            faults: input.faults.clone(),
        };
        let workflow_input = serde_json::to_string(&media).expect("a MediaInput always serialises");
        // The same checks the decider applies, so a bad upload fails here, visibly, rather than
        // as a workflow that fails at its first decision.
        MediaInput::validate(&workflow_input).map_err(HandlerError::invalid_input)?;
        let dir = media_dir(&self.cfg, &media.media_uuid);
        let record = json!({
            "media_uuid": media.media_uuid,
            "user_uuid": media.user_uuid,
            "source": media.source,
            "options": media.options,
            "registered_at": now_rfc3339(),
        });
        let path = write_product(&dir, stage.product_file(), &record).await?;
        let (run_id, already_started) = match ctx
            .start_workflow(VIDEO_PROCESSING, &media.media_uuid, workflow_input)
            .await
        {
            Ok(run_id) => (Some(run_id), false),
            Err(StartWorkflowError::AlreadyStarted(_)) => (None, true),
            Err(e @ StartWorkflowError::Rejected(_)) => {
                return Err(HandlerError::non_retryable(
                    REASON_START_WORKFLOW_REJECTED,
                    e.to_string(),
                ))
            }
            Err(e @ StartWorkflowError::Unavailable(_)) => {
                return Err(HandlerError::retryable(
                    REASON_START_WORKFLOW,
                    e.to_string(),
                ))
            }
        };
        tracing::info!(
            product = %path.display(),
            started_run_id = run_id.as_deref().unwrap_or(""),
            already_started,
            duration_ms = took.as_millis() as u64,
            "Registered the upload and started its VideoProcessing workflow."
        );
        Ok(HandlerResult::Done(json!({
            "product": path.display().to_string(),
            "workflow_type": VIDEO_PROCESSING,
            "workflow_id": media.media_uuid,
            "run_id": run_id,
            "already_started": already_started,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCtx;

    fn handler(dir: &std::path::Path) -> UploadHandler {
        UploadHandler::new(Arc::new(PipelineConfig {
            time_scale: 0.001,
            output_dir: dir.to_path_buf(),
            ..Default::default()
        }))
    }

    #[tokio::test]
    async fn upload_registers_the_media_and_starts_video_processing_under_its_uuid() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = TestCtx::new("", 1);
        let input = json!({"media_uuid": "m-1", "user_uuid": "u-1", "source": "s3://in/m-1.mov",
            "faults": {"transcode": {"fail_times": 1}}});
        let HandlerResult::Done(out) = handler(tmp.path()).run(&ctx, input).await.unwrap() else {
            panic!("upload must finish")
        };
        assert_eq!(out["run_id"], "test-run-1");
        assert_eq!(out["already_started"], false);
        let started = ctx.started();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].workflow_type, "VideoProcessing");
        assert_eq!(started[0].workflow_id, "m-1");
        let wf_input: Value = serde_json::from_str(&started[0].input).unwrap();
        assert_eq!(wf_input["source"], "s3://in/m-1.mov");
        assert_eq!(wf_input["faults"]["transcode"]["fail_times"], 1);
        // What Upload starts passes VideoProcessing's own validation.
        (crate::video::workflow(&PipelineConfig::default()).validate_input)(&started[0].input)
            .unwrap();
        assert!(tmp.path().join("m-1/upload.json").is_file());
    }

    #[tokio::test]
    async fn a_retried_upload_accepts_the_workflow_it_already_started() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = TestCtx::new("m-2", 2);
        ctx.fail_starts_with(StartWorkflowError::AlreadyStarted("m-2".into()));
        let HandlerResult::Done(out) = handler(tmp.path())
            .run(&ctx, json!({"media_uuid": "m-2", "user_uuid": "u"}))
            .await
            .unwrap()
        else {
            panic!("upload must finish")
        };
        assert_eq!(out["already_started"], true);
        assert_eq!(out["run_id"], Value::Null);
    }

    #[tokio::test]
    async fn start_failures_map_to_retryable_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let input = json!({"media_uuid": "m-3", "user_uuid": "u"});
        let ctx = TestCtx::new("m-3", 1);
        ctx.fail_starts_with(StartWorkflowError::Unavailable("throttled".into()));
        let err = handler(tmp.path())
            .run(&ctx, input.clone())
            .await
            .unwrap_err();
        assert_eq!(err.reason, "start_workflow_failed");
        assert!(!err.non_retryable);
        ctx.fail_starts_with(StartWorkflowError::Rejected("unknown type".into()));
        let err = handler(tmp.path()).run(&ctx, input).await.unwrap_err();
        assert_eq!(err.reason, "start_workflow_rejected");
        assert!(err.non_retryable);
        assert!(crate::NON_RETRYABLE_REASONS.contains(&err.reason.as_str()));
    }

    #[tokio::test]
    async fn an_upload_without_ids_starts_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = TestCtx::new("", 1);
        let err = handler(tmp.path())
            .run(&ctx, json!({"source": "x"}))
            .await
            .unwrap_err();
        assert_eq!(err.reason, "invalid_input");
        assert!(ctx.started().is_empty());
    }
}
