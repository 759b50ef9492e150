//! The media pipeline the runtime hosts: the `VideoProcessing` and `FaceRecognition` workflows,
//! the `upload` activity that starts VideoProcessing for a new media file, and their handlers.
//!
//! The runtime depends on this crate, not the other way round, so everything here is described
//! with the crate's own engine-agnostic types ([`spec`], [`handler`]). At start-up the runtime
//! calls [`workflows`], [`activity_types`] and [`handlers`] once with the loaded
//! [`PipelineConfig`], registers the types, builds its decider definitions from the workflow specs
//! and its worker dispatch table from the handlers; from then on each handler's `run` is called
//! once per activity task.
//!
//! ```text
//! VideoProcessing:  transcode ──┬── thumbnails ───┬── publish
//!                               └── detect_faces ─┘
//! FaceRecognition:  recognize_faces_manual   (completed by a person)
//! ```

pub mod config;
pub mod face;
pub mod faults;
pub mod handler;
pub mod input;
pub mod spec;
pub mod testing;
pub mod upload;
pub mod video;
mod work;

use std::sync::Arc;

pub use config::{
    FaceRecognitionConfig, PipelineConfig, PipelineConfigError, RetryConfig, StageTimeouts,
};
pub use faults::{FaultSpec, Faults};
pub use handler::{
    Handler, HandlerError, HandlerResult, StartWorkflowError, TaskCtx, NON_RETRYABLE_REASONS,
    REASON_CANCELED, REASON_INJECTED_FAILURE, REASON_INVALID_INPUT, REASON_IO,
    REASON_START_WORKFLOW, REASON_START_WORKFLOW_REJECTED,
};
pub use input::{MediaInput, MediaOptions, StageInput, MAX_PAYLOAD_CHARS};
pub use spec::{ActivityTypeSpec, RetrySpec, StageSpec, WorkflowSpec};

pub const VIDEO_PROCESSING: &str = "VideoProcessing";
pub const FACE_RECOGNITION: &str = "FaceRecognition";
/// Version of both workflow types.
pub const WORKFLOW_VERSION: &str = "1.0";
/// Version of every activity type.
pub const ACTIVITY_VERSION: &str = "1.0";

/// Where VideoProcessing's stages are scheduled.
pub const VIDEO_TASK_LIST: &str = "video-processing";
pub const VIDEO_DECIDER_TASK_LIST: &str = "video-processing-decider";
/// The manual stage has its own task list so that only hosts meant to hand work to people poll it.
pub const FACE_TASK_LIST: &str = "face-recognition-manual";
pub const FACE_DECIDER_TASK_LIST: &str = "face-recognition-decider";
/// Upload is not part of a workflow: tasks are put here by the intake (or by hand).
pub const UPLOAD_TASK_LIST: &str = "upload";

/// Every activity of the pipeline. The activity type's name is the stage's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Transcode,
    Thumbnails,
    DetectFaces,
    Publish,
    Upload,
    RecognizeFacesManual,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Transcode,
        Stage::Thumbnails,
        Stage::DetectFaces,
        Stage::Publish,
        Stage::Upload,
        Stage::RecognizeFacesManual,
    ];
    pub const NAMES: [&'static str; 6] = [
        "transcode",
        "thumbnails",
        "detect_faces",
        "publish",
        "upload",
        "recognize_faces_manual",
    ];

    pub fn name(self) -> &'static str {
        Stage::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn task_list(self) -> &'static str {
        match self {
            Stage::Transcode | Stage::Thumbnails | Stage::DetectFaces | Stage::Publish => {
                VIDEO_TASK_LIST
            }
            Stage::Upload => UPLOAD_TASK_LIST,
            Stage::RecognizeFacesManual => FACE_TASK_LIST,
        }
    }

    /// The file a stage writes in the media's output folder.
    pub fn product_file(self) -> &'static str {
        match self {
            Stage::Transcode => "transcoded.json",
            Stage::Thumbnails => "thumbnails.json",
            Stage::DetectFaces => "faces.json",
            Stage::Publish => "published.json",
            Stage::Upload => "upload.json",
            Stage::RecognizeFacesManual => "face_recognition_request.json",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Stage::Transcode => "Transcodes the uploaded media into its renditions.",
            Stage::Thumbnails => "Cuts thumbnails from the transcoded media.",
            Stage::DetectFaces => "Finds the faces in the transcoded media.",
            Stage::Publish => "Publishes the renditions, thumbnails and faces.",
            Stage::Upload => "Registers a new media file and starts its VideoProcessing workflow.",
            Stage::RecognizeFacesManual => {
                "Hands the detected faces to a person, who completes the task by hand."
            }
        }
    }
}

/// The workflow types the runtime's decider hosts.
pub fn workflows(cfg: &PipelineConfig) -> Vec<WorkflowSpec> {
    vec![video::workflow(cfg), face::workflow(cfg)]
}

/// Every activity type to register, with explicit timeouts matching the workflows' stages.
pub fn activity_types(cfg: &PipelineConfig) -> Vec<ActivityTypeSpec> {
    let mut types: Vec<ActivityTypeSpec> = workflows(cfg)
        .iter()
        .flat_map(|w| w.stages.iter())
        .map(|s| {
            let desc = Stage::from_name(&s.name).map_or("", Stage::description);
            ActivityTypeSpec::for_stage(s, desc)
        })
        .collect();
    types.push(upload::activity_type(cfg));
    types
}

/// The handler of each activity type, by activity type name.
pub fn handlers(cfg: &PipelineConfig) -> Vec<(String, Arc<dyn Handler>)> {
    let cfg = Arc::new(cfg.clone());
    let mut out: Vec<(String, Arc<dyn Handler>)> = [
        Stage::Transcode,
        Stage::Thumbnails,
        Stage::DetectFaces,
        Stage::Publish,
    ]
    .into_iter()
    .map(|s| {
        let h: Arc<dyn Handler> = Arc::new(video::VideoStageHandler::new(cfg.clone(), s));
        (s.name().to_string(), h)
    })
    .collect();
    out.push((
        Stage::RecognizeFacesManual.name().to_string(),
        Arc::new(face::ManualFaceRecognitionHandler::new(cfg.clone())),
    ));
    out.push((
        Stage::Upload.name().to_string(),
        Arc::new(upload::UploadHandler::new(cfg)),
    ));
    out
}

/// The activity task lists a host running the whole pipeline polls.
pub fn activity_task_lists() -> Vec<&'static str> {
    vec![VIDEO_TASK_LIST, FACE_TASK_LIST, UPLOAD_TASK_LIST]
}

/// The decision task lists of the pipeline's workflows.
pub fn decider_task_lists() -> Vec<&'static str> {
    vec![VIDEO_DECIDER_TASK_LIST, FACE_DECIDER_TASK_LIST]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_activity_type_has_a_handler_and_explicit_timeouts() {
        let cfg = PipelineConfig::default();
        let types = activity_types(&cfg);
        let handlers = handlers(&cfg);
        assert_eq!(types.len(), 6);
        for t in &types {
            assert!(
                handlers.iter().any(|(name, _)| name == &t.name),
                "{} has no handler",
                t.name
            );
            assert!(t.start_to_close_secs.is_some(), "{}", t.name);
            assert!(t.schedule_to_start_secs.is_some(), "{}", t.name);
            assert_eq!(t.version, ACTIVITY_VERSION);
            assert_eq!(
                Stage::from_name(&t.name).unwrap().task_list(),
                t.default_task_list
            );
        }
        assert_eq!(handlers.len(), types.len());
    }

    #[test]
    fn stage_names_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_name(s.name()), Some(s));
        }
        assert_eq!(Stage::from_name("nope"), None);
    }
}
