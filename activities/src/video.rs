//! The `VideoProcessing` workflow and its four automated stages.
//!
//! `transcode` runs first; `thumbnails` and `detect_faces` both need only its result, so the
//! decider schedules them together; `publish` waits for both. Each handler parses its stage input,
//! applies its injected fault, works for its scaled nominal duration (heartbeating progress,
//! stopping promptly when cancelled), writes its product into `<output_dir>/<media_uuid>/` and
//! returns a small result the later stages receive as `upstream`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::PipelineConfig;
use crate::faults::fault_for;
use crate::handler::{Handler, HandlerError, HandlerResult, TaskCtx};
use crate::input::{MediaInput, StageInput};
use crate::spec::{StageSpec, WorkflowSpec};
use crate::work::{self, media_dir, now_rfc3339, stable_hash, write_product};
use crate::{Stage, ACTIVITY_VERSION, VIDEO_DECIDER_TASK_LIST, VIDEO_PROCESSING, WORKFLOW_VERSION};

const DEFAULT_RENDITIONS: [&str; 3] = ["1080p", "720p", "480p"];
const DEFAULT_THUMBNAILS: u32 = 5;
/// Room for the decider's own work and for the executions queued behind a busy worker.
const EXECUTION_MARGIN_SECS: u64 = 60;

/// Builds a stage of a pipeline workflow from the configuration.
pub(crate) fn stage_spec(
    cfg: &PipelineConfig,
    stage: Stage,
    depends_on: &[Stage],
    retry: crate::spec::RetrySpec,
    input: crate::spec::StageInputFn,
) -> StageSpec {
    let t = cfg.timeouts(stage);
    StageSpec {
        name: stage.name().to_string(),
        activity_type: stage.name().to_string(),
        activity_version: ACTIVITY_VERSION.to_string(),
        task_list: cfg.task_list(stage).to_string(),
        depends_on: depends_on.iter().map(|s| s.name().to_string()).collect(),
        schedule_to_start_secs: t.schedule_to_start_secs,
        schedule_to_close_secs: t.schedule_to_close_secs,
        start_to_close_secs: t.start_to_close_secs,
        heartbeat_secs: t.heartbeat_secs,
        retry,
        input,
    }
}

fn transcode_input(wf: &Value, results: &BTreeMap<String, Value>) -> Value {
    StageInput::build(wf, results, &[])
}

fn after_transcode_input(wf: &Value, results: &BTreeMap<String, Value>) -> Value {
    StageInput::build(wf, results, &["transcode"])
}

fn publish_input(wf: &Value, results: &BTreeMap<String, Value>) -> Value {
    StageInput::build(wf, results, &["transcode", "thumbnails", "detect_faces"])
}

/// The VideoProcessing workflow type.
pub fn workflow(cfg: &PipelineConfig) -> WorkflowSpec {
    let retry = cfg.retry_spec();
    let stages = vec![
        stage_spec(cfg, Stage::Transcode, &[], retry.clone(), transcode_input),
        stage_spec(
            cfg,
            Stage::Thumbnails,
            &[Stage::Transcode],
            retry.clone(),
            after_transcode_input,
        ),
        stage_spec(
            cfg,
            Stage::DetectFaces,
            &[Stage::Transcode],
            retry.clone(),
            after_transcode_input,
        ),
        stage_spec(
            cfg,
            Stage::Publish,
            &[Stage::Thumbnails, Stage::DetectFaces],
            retry.clone(),
            publish_input,
        ),
    ];
    let budget = |s: Stage| cfg.stage_budget_secs(cfg.timeouts(s), &retry);
    let critical = budget(Stage::Transcode)
        + budget(Stage::Thumbnails).max(budget(Stage::DetectFaces))
        + budget(Stage::Publish)
        + EXECUTION_MARGIN_SECS;
    WorkflowSpec {
        name: VIDEO_PROCESSING.to_string(),
        version: WORKFLOW_VERSION.to_string(),
        description: "Transcodes an uploaded video, cuts thumbnails and detects faces in parallel, then publishes it.".to_string(),
        decider_task_list: VIDEO_DECIDER_TASK_LIST.to_string(),
        execution_start_to_close_secs: cfg.video_execution_timeout_secs.unwrap_or(critical),
        task_start_to_close_secs: cfg.decision_task_timeout_secs,
        stages,
        validate_input: MediaInput::validate,
    }
}

/// Handler of one of `transcode`, `thumbnails`, `detect_faces` and `publish`.
pub struct VideoStageHandler {
    cfg: Arc<PipelineConfig>,
    stage: Stage,
}

impl VideoStageHandler {
    /// # Panics
    /// When `stage` is not one of VideoProcessing's stages (a wiring bug).
    pub fn new(cfg: Arc<PipelineConfig>, stage: Stage) -> VideoStageHandler {
        assert!(
            matches!(
                stage,
                Stage::Transcode | Stage::Thumbnails | Stage::DetectFaces | Stage::Publish
            ),
            "{stage:?} is not a VideoProcessing stage"
        );
        VideoStageHandler { cfg, stage }
    }
}

#[async_trait]
impl Handler for VideoStageHandler {
    async fn run(&self, ctx: &dyn TaskCtx, input: Value) -> Result<HandlerResult, HandlerError> {
        let input = StageInput::parse(input, ctx.media_uuid(), ctx.user_uuid())
            .map_err(HandlerError::invalid_input)?;
        let fault = fault_for(self.stage.name(), &input.faults, &self.cfg.faults);
        let took = work::perform(&self.cfg, self.stage, ctx, &fault).await?;
        let dir = media_dir(&self.cfg, &input.media_uuid);
        let (product, mut result) = match self.stage {
            Stage::Transcode => transcode(&input, ctx.attempt()),
            Stage::Thumbnails => thumbnails(&input),
            Stage::DetectFaces => detect_faces(&input),
            _ => publish(&input, &dir),
        };
        let path = write_product(&dir, self.stage.product_file(), &product).await?;
        result["product"] = Value::String(path.display().to_string());
        let duration_ms = took.as_millis() as u64;
        let product = path.display();
        match self.stage {
            Stage::Transcode => tracing::info!(%product, duration_ms, "Transcoded the media."),
            Stage::Thumbnails => tracing::info!(%product, duration_ms, "Cut the thumbnails."),
            Stage::DetectFaces => tracing::info!(%product, duration_ms, "Detected the faces."),
            _ => tracing::info!(%product, duration_ms, "Published the media."),
        }
        Ok(HandlerResult::Done(result))
    }
}

fn transcode(input: &StageInput, attempt: u32) -> (Value, Value) {
    let renditions: Vec<String> = input
        .options
        .as_ref()
        .and_then(|o| o.renditions.clone())
        .unwrap_or_else(|| DEFAULT_RENDITIONS.iter().map(|s| s.to_string()).collect());
    let product = json!({
        "media_uuid": input.media_uuid,
        "user_uuid": input.user_uuid,
        "source": input.source,
        "renditions": renditions
            .iter()
            .map(|r| json!({"name": r, "file": format!("{r}.mp4")}))
            .collect::<Vec<_>>(),
        "attempt": attempt,
        "transcoded_at": now_rfc3339(),
    });
    (product, json!({ "renditions": renditions }))
}

fn thumbnails(input: &StageInput) -> (Value, Value) {
    let count = input
        .options
        .as_ref()
        .and_then(|o| o.thumbnail_count)
        .unwrap_or(DEFAULT_THUMBNAILS);
    let thumbs: Vec<Value> = (1..=count)
        .map(|i| {
            json!({
                "file": format!("thumb-{i:03}.jpg"),
                "at_percent": f64::from(i) * 100.0 / f64::from(count + 1),
            })
        })
        .collect();
    let product = json!({
        "media_uuid": input.media_uuid,
        "from": input.upstream.get("transcode").and_then(|t| t.get("product")),
        "thumbnails": thumbs,
        "cut_at": now_rfc3339(),
    });
    (product, json!({ "count": count }))
}

fn detect_faces(input: &StageInput) -> (Value, Value) {
    let h = stable_hash(&input.media_uuid);
    let n = h % 4;
    let faces: Vec<Value> = (0..n)
        .map(|i| {
            let s = h.rotate_left(16 * i as u32);
            json!({
                "face_id": format!("face-{}", i + 1),
                "first_seen_percent": s % 100,
                "box": [s % 640, (s >> 10) % 360, 64 + (s >> 20) % 64, 64 + (s >> 30) % 64],
            })
        })
        .collect();
    let product = json!({
        "media_uuid": input.media_uuid,
        "from": input.upstream.get("transcode").and_then(|t| t.get("product")),
        "faces": faces,
        "detected_at": now_rfc3339(),
    });
    (product, json!({ "faces_detected": n }))
}

fn publish(input: &StageInput, dir: &Path) -> (Value, Value) {
    let products: BTreeMap<&str, Value> = input
        .upstream
        .iter()
        .map(|(stage, r)| {
            (
                stage.as_str(),
                r.get("product").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    let location = format!("file://{}", dir.display());
    let product = json!({
        "media_uuid": input.media_uuid,
        "user_uuid": input.user_uuid,
        "location": location,
        "products": products,
        "faces_detected": input.upstream.get("detect_faces").and_then(|r| r.get("faces_detected")),
        "published_at": now_rfc3339(),
    });
    (product, json!({ "location": location }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCtx;
    use std::time::Duration;

    fn cfg(dir: &Path) -> PipelineConfig {
        PipelineConfig {
            time_scale: 0.002,
            output_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn the_dag_is_transcode_then_thumbnails_and_faces_then_publish() {
        let wf = workflow(&PipelineConfig::default());
        assert_eq!(wf.name, "VideoProcessing");
        assert_eq!(wf.version, "1.0");
        assert_eq!(wf.decider_task_list, "video-processing-decider");
        let deps: Vec<(&str, Vec<&str>)> = wf
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.depends_on.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            deps,
            vec![
                ("transcode", vec![]),
                ("thumbnails", vec!["transcode"]),
                ("detect_faces", vec!["transcode"]),
                ("publish", vec!["thumbnails", "detect_faces"]),
            ]
        );
        for s in &wf.stages {
            assert_eq!(s.task_list, "video-processing");
            // Dependencies come before their dependants, so one pass over the list suffices.
            let pos = wf.stages.iter().position(|x| x.name == s.name).unwrap();
            for d in &s.depends_on {
                assert!(wf.stages.iter().position(|x| &x.name == d).unwrap() < pos);
            }
        }
        assert_eq!(wf.roots().count(), 1);
        // Worst case of every stage on the critical path fits in the execution's timeout.
        let t = |n: &str| wf.stage(n).unwrap().schedule_to_close_secs.unwrap() * 3;
        assert!(
            wf.execution_start_to_close_secs > t("transcode") + t("detect_faces") + t("publish")
        );
    }

    #[test]
    fn stage_inputs_pass_results_and_faults_down_the_dag() {
        let wf = workflow(&PipelineConfig::default());
        let input = (wf.validate_input)(
            r#"{"media_uuid":"m","user_uuid":"u","faults":{"thumbnails":{"fail_times":1}}}"#,
        )
        .unwrap();
        let mut results = BTreeMap::new();
        results.insert("transcode".to_string(), json!({"product": "t"}));
        results.insert("thumbnails".to_string(), json!({"product": "th"}));
        results.insert("detect_faces".to_string(), json!({"product": "f"}));
        let thumbs = (wf.stage("thumbnails").unwrap().input)(&input, &results);
        assert_eq!(thumbs["upstream"]["transcode"]["product"], "t");
        assert!(thumbs["upstream"].get("detect_faces").is_none());
        assert_eq!(thumbs["faults"]["thumbnails"]["fail_times"], 1);
        let publish = (wf.stage("publish").unwrap().input)(&input, &results);
        assert_eq!(publish["upstream"].as_object().unwrap().len(), 3);
        let err = (wf.validate_input)(r#"{"user_uuid":"u"}"#).unwrap_err();
        assert!(err.contains("media_uuid"), "{err}");
    }

    #[tokio::test]
    async fn the_four_stages_write_their_products_and_heartbeat() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..cfg(tmp.path())
        };
        let wf = workflow(&cfg);
        let handlers = crate::handlers(&cfg);
        let input = (wf.validate_input)(
            r#"{"media_uuid":"m-42","user_uuid":"u-7","options":{"thumbnail_count":2}}"#,
        )
        .unwrap();
        let mut results = BTreeMap::new();
        for stage in &wf.stages {
            let (_, h) = handlers
                .iter()
                .find(|(n, _)| n == &stage.activity_type)
                .unwrap();
            let ctx = TestCtx::new("m-42", 1);
            let out = tokio::time::timeout(
                Duration::from_secs(5),
                h.run(&ctx, (stage.input)(&input, &results)),
            )
            .await
            .unwrap()
            .unwrap();
            let HandlerResult::Done(v) = out else {
                panic!("{} did not finish", stage.name)
            };
            assert!(v.to_string().len() < crate::MAX_PAYLOAD_CHARS);
            if stage.name == "transcode" {
                // 30 s nominal, 5 s between heartbeats: up to 5 progress reports (fewer only if
                // this host is so busy that beats fall behind and are skipped).
                let beats: Vec<u32> = ctx
                    .heartbeats()
                    .iter()
                    .map(|b| b.parse().unwrap())
                    .collect();
                assert!(!beats.is_empty() && beats.len() <= 5, "{beats:?}");
                assert!(beats.windows(2).all(|w| w[0] < w[1]) && beats[beats.len() - 1] < 100);
            }
            results.insert(stage.name.clone(), v);
        }
        let dir = tmp.path().join("m-42");
        for f in [
            "transcoded.json",
            "thumbnails.json",
            "faces.json",
            "published.json",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let published: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("published.json")).unwrap())
                .unwrap();
        assert_eq!(
            published["products"]["thumbnails"],
            dir.join("thumbnails.json").display().to_string()
        );
        let thumbs: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("thumbnails.json")).unwrap())
                .unwrap();
        assert_eq!(thumbs["thumbnails"].as_array().unwrap().len(), 2);
        assert_eq!(results["thumbnails"]["count"], 2);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
    }

    #[tokio::test]
    async fn fail_times_fails_exactly_the_first_attempts() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        let h = VideoStageHandler::new(Arc::new(cfg), Stage::Publish);
        let input =
            json!({"media_uuid": "m", "user_uuid": "u", "faults": {"publish": {"fail_times": 2}}});
        for attempt in 1..=3 {
            let ctx = TestCtx::new("m", attempt);
            let out = h.run(&ctx, input.clone()).await;
            if attempt <= 2 {
                let err = out.unwrap_err();
                assert_eq!(err.reason, "injected_failure");
                assert!(!err.non_retryable);
            } else {
                assert!(matches!(out, Ok(HandlerResult::Done(_))), "{out:?}");
            }
        }
    }

    #[tokio::test]
    async fn config_faults_apply_when_the_input_has_none() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = cfg(tmp.path());
        cfg.faults.insert(
            "transcode".into(),
            crate::FaultSpec {
                fail_times: 1,
                ..Default::default()
            },
        );
        let h = VideoStageHandler::new(Arc::new(cfg), Stage::Transcode);
        let err = h
            .run(
                &TestCtx::new("m", 1),
                json!({"media_uuid": "m", "user_uuid": "u"}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, "injected_failure");
    }

    #[tokio::test]
    async fn cancellation_stops_a_working_stage_promptly() {
        let tmp = tempfile::tempdir().unwrap();
        // At full scale transcode would take 30 s.
        let cfg = PipelineConfig {
            output_dir: tmp.path().to_path_buf(),
            ..Default::default()
        };
        let h = VideoStageHandler::new(Arc::new(cfg), Stage::Transcode);
        let ctx = TestCtx::new("m", 1);
        let token = ctx.cancelled();
        let run = h.run(&ctx, json!({"media_uuid": "m", "user_uuid": "u"}));
        let cancel = async {
            tokio::task::yield_now().await;
            token.cancel();
        };
        let started = std::time::Instant::now();
        let (out, ()) =
            tokio::time::timeout(Duration::from_secs(2), async { tokio::join!(run, cancel) })
                .await
                .expect("a cancelled stage must stop promptly");
        let err = out.unwrap_err();
        assert!(err.is_canceled(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!tmp.path().join("m").join("transcoded.json").exists());
    }

    #[tokio::test]
    async fn a_hang_ignores_its_timeout_sends_no_heartbeat_and_ends_on_cancellation() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = cfg(tmp.path());
        let start_to_close = cfg.timeouts(Stage::Thumbnails).start_to_close_secs.unwrap();
        let h = VideoStageHandler::new(Arc::new(cfg), Stage::Thumbnails);
        let ctx = TestCtx::new("m", 1);
        let token = ctx.cancelled();
        let input =
            json!({"media_uuid": "m", "user_uuid": "u", "faults": {"thumbnails": {"hang": true}}});
        tokio::time::pause();
        let run = h.run(&ctx, input);
        tokio::pin!(run);
        // Let virtual time run far past the start-to-close timeout: the stage is still hanging.
        let past = Duration::from_secs(start_to_close * 5);
        tokio::select! {
            out = &mut run => panic!("hang ended on its own: {out:?}"),
            _ = tokio::time::sleep(past) => {}
        }
        assert!(ctx.heartbeats().is_empty());
        token.cancel();
        let err = run.await.unwrap_err();
        assert!(err.is_canceled(), "{err}");
    }

    #[tokio::test]
    #[should_panic(expected = "injected panic in stage detect_faces attempt 1")]
    async fn a_panic_fault_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let h = VideoStageHandler::new(Arc::new(cfg(tmp.path())), Stage::DetectFaces);
        let input = json!({"media_uuid": "m", "user_uuid": "u", "faults": {"detect_faces": {"panic": true}}});
        let _ = h.run(&TestCtx::new("m", 1), input).await;
    }

    /// Set in the child process of `an_exit_fault_ends_the_process_with_137`.
    const EXIT_CHILD_ENV: &str = "ACTIVITIES_EXIT_FAULT_CHILD";

    #[tokio::test]
    async fn an_exit_fault_ends_the_process_with_137() {
        let tmp = tempfile::tempdir().unwrap();
        if std::env::var_os(EXIT_CHILD_ENV).is_some() {
            // In the child: this must never return.
            let h = VideoStageHandler::new(Arc::new(cfg(tmp.path())), Stage::Transcode);
            let input = json!({"media_uuid": "m", "user_uuid": "u",
                "faults": {"transcode": {"exit_process": true}}});
            let out = h.run(&TestCtx::new("m", 1), input).await;
            panic!("the process survived its exit fault: {out:?}");
        }
        // Run this very test again in a child process, which the fault must end with code 137.
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "video::tests::an_exit_fault_ends_the_process_with_137",
                "--test-threads=1",
            ])
            .env(EXIT_CHILD_ENV, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("the child exits")
            .unwrap();
        assert_eq!(status.code(), Some(137), "{status:?}");
    }

    #[tokio::test]
    async fn fault_attempts_lets_the_retry_succeed() {
        let tmp = tempfile::tempdir().unwrap();
        let h = VideoStageHandler::new(Arc::new(cfg(tmp.path())), Stage::DetectFaces);
        let input = json!({"media_uuid": "m", "user_uuid": "u",
            "faults": {"detect_faces": {"panic": true, "exit_process": true, "fault_attempts": 1}}});
        let out = h.run(&TestCtx::new("m", 2), input).await;
        assert!(matches!(out, Ok(HandlerResult::Done(_))), "{out:?}");
    }

    #[tokio::test]
    async fn bad_stage_input_fails_without_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let h = VideoStageHandler::new(Arc::new(cfg(tmp.path())), Stage::Transcode);
        let err = h
            .run(&TestCtx::new("", 1), json!({"user_uuid": "u", "bogus": 1}))
            .await
            .unwrap_err();
        assert_eq!(err.reason, "invalid_input");
        assert!(err.non_retryable);
        assert!(err.details.unwrap().contains("bogus"));
        let err = h
            .run(&TestCtx::new("", 1), json!({"user_uuid": "u"}))
            .await
            .unwrap_err();
        assert!(err.details.unwrap().contains("media_uuid is empty"));
    }

    #[tokio::test]
    async fn an_unwritable_output_dir_is_a_retryable_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let h = VideoStageHandler::new(Arc::new(cfg(&blocker)), Stage::Publish);
        let err = h
            .run(
                &TestCtx::new("m", 1),
                json!({"media_uuid": "m", "user_uuid": "u"}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, "io_error");
        assert!(!err.non_retryable);
    }
}
