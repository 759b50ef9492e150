//! The pipeline's configuration: stage durations, the time scale, derived timeouts, retry policy,
//! the manual face-recognition timeouts and configured faults.
//!
//! It is one table (`[pipeline]`) of the runtime's config file, read once at start-up. Durations are
//! *nominal* (the seed job's 30/5/10/8 s) and multiplied by `time_scale`; the activity timeouts are
//! derived from the scaled durations with headroom, so a run at `time_scale = 0.01` also times out
//! 100x sooner. Human-facing timeouts (the manual face recognition, waiting for a free worker) are
//! not scaled: a person does not work faster in a test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::faults::{check_faults, Faults};
use crate::spec::RetrySpec;
use crate::Stage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Multiplies every nominal duration, heartbeat interval and retry backoff.
    pub time_scale: f64,
    /// Each media file gets a folder `<output_dir>/<media_uuid>/` holding its stages' products.
    pub output_dir: PathBuf,
    pub transcode_secs: f64,
    pub thumbnails_secs: f64,
    pub detect_faces_secs: f64,
    pub publish_secs: f64,
    pub upload_secs: f64,
    /// Nominal time between two progress heartbeats of a running stage.
    pub heartbeat_interval_secs: f64,
    /// start-to-close = ceil(scaled duration x factor) + margin; heartbeat timeout likewise from
    /// the scaled heartbeat interval. SWF counts whole seconds.
    pub timeout_factor: f64,
    pub timeout_margin_secs: u64,
    /// How long a scheduled stage may wait for a free worker before it times out (not scaled).
    pub schedule_to_start_secs: u64,
    /// How long the decider may take over one decision task (not scaled).
    pub decision_task_timeout_secs: u64,
    /// The VideoProcessing execution's timeout; derived from the stages' worst case when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_execution_timeout_secs: Option<u64>,
    pub retry: RetryConfig,
    pub face_recognition: FaceRecognitionConfig,
    /// Faults injected into every execution this host works on, by stage name.
    pub faults: Faults,
    /// Routes stages to task lists other than their default (`Stage::task_list`), by stage name:
    /// `detect_faces = "video-gpu"` sends face detection to the hosts that poll `video-gpu`. SWF
    /// hands a task only to pollers of its task list, so this is how stages get hosts of their
    /// own, and how one stage's backlog is kept from taking another stage's worker slots.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub task_lists: BTreeMap<String, String>,
}

/// The automated stages' retry policy. Backoffs are nominal (multiplied by `time_scale`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub initial_backoff_secs: f64,
    pub max_backoff_secs: f64,
    pub coefficient: f64,
}

/// The manual stage: a person has hours, not seconds. None of these is scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceRecognitionConfig {
    /// How long the task may wait until a worker hands it to a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_to_start_secs: Option<u64>,
    /// How long a person has to complete it once handed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_to_close_secs: Option<u64>,
    /// Derived as the sum of the two above when unset (and both are set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_to_close_secs: Option<u64>,
    /// A person does not heartbeat: none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_secs: Option<u64>,
    /// Attempts in total; a timed-out attempt is handed out again until these run out.
    pub max_attempts: u32,
    /// The FaceRecognition execution's timeout; derived from the above when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_timeout_secs: Option<u64>,
}

/// One stage's activity timeouts in whole seconds; `None` is SWF's "NONE".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTimeouts {
    pub schedule_to_start_secs: Option<u64>,
    pub schedule_to_close_secs: Option<u64>,
    pub start_to_close_secs: Option<u64>,
    pub heartbeat_secs: Option<u64>,
}

/// A configuration value out of range; names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid pipeline configuration: {0}")]
pub struct PipelineConfigError(pub String);

/// SWF refuses executions longer than a year.
const MAX_EXECUTION_SECS: u64 = 365 * 24 * 3600;

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            time_scale: 1.0,
            output_dir: PathBuf::from("media-output"),
            transcode_secs: 30.0,
            thumbnails_secs: 5.0,
            detect_faces_secs: 10.0,
            publish_secs: 8.0,
            upload_secs: 1.0,
            heartbeat_interval_secs: 5.0,
            timeout_factor: 3.0,
            timeout_margin_secs: 2,
            schedule_to_start_secs: 300,
            decision_task_timeout_secs: 10,
            video_execution_timeout_secs: None,
            retry: RetryConfig::default(),
            face_recognition: FaceRecognitionConfig::default(),
            faults: Faults::new(),
            task_lists: BTreeMap::new(),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_backoff_secs: 2.0,
            max_backoff_secs: 60.0,
            coefficient: 2.0,
        }
    }
}

impl Default for FaceRecognitionConfig {
    fn default() -> Self {
        FaceRecognitionConfig {
            schedule_to_start_secs: Some(24 * 3600),
            start_to_close_secs: Some(8 * 3600),
            schedule_to_close_secs: None,
            heartbeat_secs: None,
            max_attempts: 2,
            execution_timeout_secs: None,
        }
    }
}

/// SWF's rules for a task list name (the API refuses the others with a ValidationException).
fn check_task_list_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.chars().count() > 256 {
        return Err("a task list name has 1 to 256 characters");
    }
    if name.trim() != name {
        return Err("a task list name cannot start or end with whitespace");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ':' | '/' | '|'))
    {
        return Err("a task list name cannot contain ':', '/', '|' or control characters");
    }
    if name.contains("arn") {
        return Err("a task list name cannot contain the literal string \"arn\"");
    }
    Ok(())
}

fn scaled_timeout(scaled_secs: f64, factor: f64, margin_secs: u64) -> u64 {
    ((scaled_secs * factor).ceil() as u64)
        .saturating_add(margin_secs)
        .max(1)
}

impl PipelineConfig {
    /// Checks what serde cannot: ranges, and that configured faults name real stages.
    pub fn validate(&self) -> Result<(), PipelineConfigError> {
        let bad = |m: String| Err(PipelineConfigError(m));
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(format!(
                "time_scale must be a positive number, got {}",
                self.time_scale
            ));
        }
        for (key, v) in [
            ("transcode_secs", self.transcode_secs),
            ("thumbnails_secs", self.thumbnails_secs),
            ("detect_faces_secs", self.detect_faces_secs),
            ("publish_secs", self.publish_secs),
            ("upload_secs", self.upload_secs),
            (
                "retry.initial_backoff_secs",
                self.retry.initial_backoff_secs,
            ),
            ("retry.max_backoff_secs", self.retry.max_backoff_secs),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{key} must be a non-negative number, got {v}"));
            }
        }
        for (key, v) in [
            ("heartbeat_interval_secs", self.heartbeat_interval_secs),
            ("timeout_factor", self.timeout_factor),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{key} must be a positive number, got {v}"));
            }
        }
        if !(self.retry.coefficient.is_finite() && self.retry.coefficient >= 1.0) {
            return bad(format!(
                "retry.coefficient must be at least 1.0, got {}",
                self.retry.coefficient
            ));
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts must be at least 1".into());
        }
        if self.face_recognition.max_attempts == 0 {
            return bad("face_recognition.max_attempts must be at least 1".into());
        }
        if self.schedule_to_start_secs == 0 || self.decision_task_timeout_secs == 0 {
            return bad(
                "schedule_to_start_secs and decision_task_timeout_secs must be at least 1".into(),
            );
        }
        for (key, v) in [
            (
                "face_recognition.schedule_to_start_secs",
                self.face_recognition.schedule_to_start_secs,
            ),
            (
                "face_recognition.start_to_close_secs",
                self.face_recognition.start_to_close_secs,
            ),
            (
                "face_recognition.schedule_to_close_secs",
                self.face_recognition.schedule_to_close_secs,
            ),
            (
                "face_recognition.heartbeat_secs",
                self.face_recognition.heartbeat_secs,
            ),
        ] {
            if v == Some(0) {
                return bad(format!("{key} must be at least 1 (omit it for no limit)"));
            }
        }
        let fr = &self.face_recognition;
        if fr.schedule_to_start_secs.is_none()
            && fr.start_to_close_secs.is_none()
            && fr.schedule_to_close_secs.is_none()
        {
            // SWF refuses to schedule an activity without any bound on its duration.
            return bad(
                "face_recognition needs start_to_close_secs or schedule_to_close_secs".into(),
            );
        }
        for (key, v) in [
            (
                "video_execution_timeout_secs",
                self.video_execution_timeout_secs,
            ),
            (
                "face_recognition.execution_timeout_secs",
                self.face_recognition.execution_timeout_secs,
            ),
        ] {
            if let Some(v) = v {
                if v == 0 || v > MAX_EXECUTION_SECS {
                    return bad(format!("{key} must be 1..={MAX_EXECUTION_SECS}, got {v}"));
                }
            }
        }
        check_faults(&self.faults, &Stage::NAMES).map_err(PipelineConfigError)?;
        for (stage, list) in &self.task_lists {
            if Stage::from_name(stage).is_none() {
                return bad(format!(
                    "task_lists names an unknown stage {stage:?}; stages: {}",
                    Stage::NAMES.join(", ")
                ));
            }
            if let Err(why) = check_task_list_name(list) {
                return bad(format!("task_lists.{stage} = {list:?}: {why}"));
            }
        }
        Ok(())
    }

    /// The task list a stage's tasks are scheduled on: the configured route, else its default.
    pub fn task_list(&self, stage: Stage) -> &str {
        self.task_lists
            .get(stage.name())
            .map(String::as_str)
            .unwrap_or(stage.task_list())
    }

    /// A stage's nominal duration.
    pub fn nominal_secs(&self, stage: Stage) -> f64 {
        match stage {
            Stage::Transcode => self.transcode_secs,
            Stage::Thumbnails => self.thumbnails_secs,
            Stage::DetectFaces => self.detect_faces_secs,
            Stage::Publish => self.publish_secs,
            Stage::Upload => self.upload_secs,
            // A person's work has no nominal duration; the handler only hands the task out.
            Stage::RecognizeFacesManual => 0.0,
        }
    }

    /// How long a stage's work really takes at this time scale.
    pub fn scaled_secs(&self, stage: Stage) -> f64 {
        self.nominal_secs(stage) * self.time_scale
    }

    pub fn heartbeat_interval_scaled_secs(&self) -> f64 {
        self.heartbeat_interval_secs * self.time_scale
    }

    /// The activity timeouts of a stage.
    pub fn timeouts(&self, stage: Stage) -> StageTimeouts {
        if stage == Stage::RecognizeFacesManual {
            let fr = &self.face_recognition;
            let schedule_to_close = fr.schedule_to_close_secs.or_else(|| {
                Some(
                    fr.schedule_to_start_secs?
                        .saturating_add(fr.start_to_close_secs?),
                )
            });
            return StageTimeouts {
                schedule_to_start_secs: fr.schedule_to_start_secs,
                schedule_to_close_secs: schedule_to_close,
                start_to_close_secs: fr.start_to_close_secs,
                heartbeat_secs: fr.heartbeat_secs,
            };
        }
        let start_to_close = scaled_timeout(
            self.scaled_secs(stage),
            self.timeout_factor,
            self.timeout_margin_secs,
        );
        let heartbeat = scaled_timeout(
            self.heartbeat_interval_scaled_secs(),
            self.timeout_factor,
            self.timeout_margin_secs,
        );
        StageTimeouts {
            schedule_to_start_secs: Some(self.schedule_to_start_secs),
            schedule_to_close_secs: Some(self.schedule_to_start_secs + start_to_close),
            start_to_close_secs: Some(start_to_close),
            heartbeat_secs: Some(heartbeat.min(start_to_close)),
        }
    }

    /// The automated stages' retry policy, backoffs scaled.
    pub fn retry_spec(&self) -> RetrySpec {
        RetrySpec {
            max_attempts: self.retry.max_attempts,
            initial_backoff_secs: self.retry.initial_backoff_secs * self.time_scale,
            max_backoff_secs: self.retry.max_backoff_secs * self.time_scale,
            coefficient: self.retry.coefficient,
            non_retryable_reasons: crate::handler::NON_RETRYABLE_REASONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The manual stage's retry policy: a timed-out attempt is handed out again after the same
    /// (scaled) backoff, up to `face_recognition.max_attempts`.
    pub fn face_retry_spec(&self) -> RetrySpec {
        RetrySpec {
            max_attempts: self.face_recognition.max_attempts,
            ..self.retry_spec()
        }
    }

    /// The worst case of one stage: every attempt waits for a worker, runs to its timeout, then
    /// backs off.
    pub(crate) fn stage_budget_secs(&self, timeouts: StageTimeouts, retry: &RetrySpec) -> u64 {
        let per_attempt = timeouts.schedule_to_close_secs.unwrap_or_else(|| {
            timeouts.schedule_to_start_secs.unwrap_or(0) + timeouts.start_to_close_secs.unwrap_or(0)
        });
        let backoffs: f64 = (2..=retry.max_attempts)
            .map(|a| retry.backoff_secs(a))
            .sum();
        per_attempt
            .saturating_mul(u64::from(retry.max_attempts))
            .saturating_add(backoffs.ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed_job_and_validate() {
        let cfg = PipelineConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.nominal_secs(Stage::Transcode), 30.0);
        assert_eq!(cfg.nominal_secs(Stage::Thumbnails), 5.0);
        assert_eq!(cfg.nominal_secs(Stage::DetectFaces), 10.0);
        assert_eq!(cfg.nominal_secs(Stage::Publish), 8.0);
    }

    #[test]
    fn timeouts_scale_with_headroom_and_never_drop_below_a_second() {
        let cfg = PipelineConfig::default();
        let t = cfg.timeouts(Stage::Transcode);
        assert_eq!(t.start_to_close_secs, Some(92));
        assert_eq!(t.heartbeat_secs, Some(17));
        assert_eq!(t.schedule_to_close_secs, Some(392));
        let fast = PipelineConfig {
            time_scale: 0.001,
            timeout_margin_secs: 0,
            ..Default::default()
        };
        let t = fast.timeouts(Stage::Transcode);
        assert_eq!(t.start_to_close_secs, Some(1));
        assert_eq!(t.heartbeat_secs, Some(1));
    }

    #[test]
    fn face_recognition_gets_hours_and_no_heartbeat_by_default() {
        let t = PipelineConfig::default().timeouts(Stage::RecognizeFacesManual);
        assert_eq!(t.schedule_to_start_secs, Some(86_400));
        assert_eq!(t.start_to_close_secs, Some(28_800));
        assert_eq!(t.schedule_to_close_secs, Some(115_200));
        assert_eq!(t.heartbeat_secs, None);
    }

    #[test]
    fn backoffs_are_scaled() {
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..Default::default()
        };
        let r = cfg.retry_spec();
        assert!((r.initial_backoff_secs - 0.02).abs() < 1e-9);
        assert!(r
            .non_retryable_reasons
            .contains(&"invalid_input".to_string()));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let cases: Vec<(PipelineConfig, &str)> = vec![
            (
                PipelineConfig {
                    time_scale: 0.0,
                    ..Default::default()
                },
                "time_scale",
            ),
            (
                PipelineConfig {
                    publish_secs: -1.0,
                    ..Default::default()
                },
                "publish_secs",
            ),
            (
                PipelineConfig {
                    retry: RetryConfig {
                        max_attempts: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "retry.max_attempts",
            ),
            (
                PipelineConfig {
                    face_recognition: FaceRecognitionConfig {
                        schedule_to_start_secs: None,
                        start_to_close_secs: None,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "face_recognition needs",
            ),
        ];
        for (cfg, key) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn parses_from_json_and_refuses_unknown_keys() {
        let cfg: PipelineConfig = serde_json::from_str(
            r#"{"time_scale":0.5,"faults":{"transcode":{"fail_times":2}},"face_recognition":{"start_to_close_secs":60}}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.faults["transcode"].fail_times, 2);
        assert_eq!(cfg.face_recognition.start_to_close_secs, Some(60));
        assert_eq!(cfg.transcode_secs, 30.0);
        let err = serde_json::from_str::<PipelineConfig>(r#"{"transcode_sec":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("transcode_sec"), "{err}");
        let cfg: PipelineConfig =
            serde_json::from_str(r#"{"faults":{"transcod":{"hang":true}}}"#).unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("transcod"));
    }

    #[test]
    fn stages_can_be_routed_to_task_lists_of_their_own() {
        let cfg: PipelineConfig =
            toml::from_str("[task_lists]\ndetect_faces = \"video-gpu\"\n").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.task_list(Stage::DetectFaces), "video-gpu");
        assert_eq!(cfg.task_list(Stage::Thumbnails), crate::VIDEO_TASK_LIST);
        assert_eq!(
            PipelineConfig::default().task_list(Stage::DetectFaces),
            crate::VIDEO_TASK_LIST
        );
        // The workflow schedules the stage there, and its type registers it as the default.
        let wf = crate::video::workflow(&cfg);
        let faces = wf.stages.iter().find(|s| s.name == "detect_faces").unwrap();
        assert_eq!(faces.task_list, "video-gpu");
        let thumbs = wf.stages.iter().find(|s| s.name == "thumbnails").unwrap();
        assert_eq!(thumbs.task_list, crate::VIDEO_TASK_LIST);

        // Refused: an unknown stage, and names SWF refuses, each with the reason.
        for (text, expect) in [
            ("detect_face = \"x\"", "unknown stage \"detect_face\""),
            ("publish = \"\"", "1 to 256 characters"),
            ("publish = \" gpu\"", "whitespace"),
            ("publish = \"a:b\"", "cannot contain ':'"),
            ("publish = \"warn-list\"", "\"arn\""),
        ] {
            let cfg: PipelineConfig = toml::from_str(&format!("[task_lists]\n{text}\n")).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn round_trips_through_toml_as_the_runtime_reads_it() {
        let text = "time_scale = 0.01\noutput_dir = \"/tmp/out\"\n[task_lists]\npublish = \"cdn\"\n[retry]\nmax_attempts = 5\n[face_recognition]\nstart_to_close_secs = 120\n[faults.publish]\nhang = true\nfault_attempts = 1\n";
        let cfg: PipelineConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.retry.max_attempts, 5);
        assert_eq!(cfg.retry.coefficient, 2.0);
        assert!(cfg.faults["publish"].hangs(1) && !cfg.faults["publish"].hangs(2));
        let again: PipelineConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
        let defaults: PipelineConfig =
            toml::from_str(&toml::to_string(&PipelineConfig::default()).unwrap()).unwrap();
        assert_eq!(defaults, PipelineConfig::default());
    }
}
