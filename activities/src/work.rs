//! What every automated stage does between receiving its input and answering: apply its injected
//! fault, "work" for its scaled duration while heartbeating progress and listening for
//! cancellation, then write its product file.
//!
//! The work is simulated (the pipeline's real encoders are not part of this runtime), but its
//! timing, heartbeats, cancellation and output are real, which is what the runtime is tested on.
//! Sleeps aim at absolute deadlines from the start of the work so that slow heartbeat calls do not
//! stretch a stage beyond its nominal duration.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::config::PipelineConfig;
use crate::faults::FaultSpec;
use crate::handler::{HandlerError, TaskCtx, REASON_INJECTED_FAILURE, REASON_IO};
use crate::Stage;

/// The shortest gap between two heartbeats, whatever the time scale: below this a heartbeat loop
/// would only load the endpoint.
const MIN_HEARTBEAT_GAP: Duration = Duration::from_millis(10);
/// A hang when neither the fault nor the stage gives its length.
const DEFAULT_HANG: Duration = Duration::from_secs(3600);
/// How much longer than its start-to-close timeout a hanging stage sleeps.
const HANG_FACTOR: u32 = 10;

/// Applies the stage's fault and simulates its work. Returns how long the work took.
pub(crate) async fn perform(
    cfg: &PipelineConfig,
    stage: Stage,
    ctx: &dyn TaskCtx,
    fault: &FaultSpec,
) -> Result<Duration, HandlerError> {
    let attempt = ctx.attempt();
    if fault.fails_attempt(attempt) {
        tracing::warn!(
            stage = stage.name(),
            attempt,
            fail_times = fault.fail_times,
            "Stage fails on purpose (injected fault)."
        );
        return Err(HandlerError::retryable(
            REASON_INJECTED_FAILURE,
            format!(
                "{} attempt {attempt} fails on purpose (fail_times = {})",
                stage.name(),
                fault.fail_times
            ),
        ));
    }
    let token = ctx.cancelled();
    if fault.hangs(attempt) {
        let hang = hang_length(cfg, stage, fault);
        tracing::warn!(
            stage = stage.name(),
            attempt,
            hang_ms = hang.as_millis() as u64,
            "Stage hangs on purpose past its timeout, without heartbeats (injected fault)."
        );
        tokio::select! {
            biased;
            _ = token.cancelled() => return Err(canceled(stage, "while hanging")),
            _ = tokio::time::sleep(hang) => {}
        }
    }

    let start = Instant::now();
    let total = Duration::from_secs_f64(cfg.scaled_secs(stage));
    let end = start + total;
    let every =
        Duration::from_secs_f64(cfg.heartbeat_interval_scaled_secs()).max(MIN_HEARTBEAT_GAP);
    let mut next_beat = start + every;
    let midpoint = start + total / 2;
    let crash_pending = fault.panics(attempt) || fault.exits(attempt);
    loop {
        let mut wake = end.min(next_beat);
        if crash_pending {
            wake = wake.min(midpoint);
        }
        tokio::select! {
            biased;
            _ = token.cancelled() => return Err(canceled(stage, "while working")),
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if crash_pending && now >= midpoint {
            if fault.exits(attempt) {
                tracing::error!(
                    stage = stage.name(),
                    attempt,
                    exit_code = 137,
                    "Process exits mid-task on purpose (injected fault)."
                );
                std::process::exit(137);
            }
            panic!("injected panic in stage {} attempt {attempt}", stage.name());
        }
        if now >= end {
            return Ok(now - start);
        }
        if now >= next_beat {
            // Progress of the beat's own slot, so a late wake-up does not report odd numbers.
            let percent = (next_beat - start).as_secs_f64() / total.as_secs_f64() * 100.0;
            ctx.heartbeat(Some(format!("{}", percent.clamp(0.0, 99.0) as u32)))
                .await;
            // A beat that fell behind (slow heartbeat call, busy host) is skipped, not replayed.
            while next_beat <= Instant::now() {
                next_beat += every;
            }
        }
    }
}

fn hang_length(cfg: &PipelineConfig, stage: Stage, fault: &FaultSpec) -> Duration {
    if let Some(s) = fault.hang_secs {
        return Duration::from_secs_f64(s);
    }
    cfg.timeouts(stage)
        .start_to_close_secs
        .map(|s| Duration::from_secs(s) * HANG_FACTOR)
        .unwrap_or(DEFAULT_HANG)
}

fn canceled(stage: Stage, when: &str) -> HandlerError {
    HandlerError::canceled(format!("{} stopped {when}: task cancelled", stage.name()))
}

/// The folder holding a media file's products.
pub(crate) fn media_dir(cfg: &PipelineConfig, media_uuid: &str) -> PathBuf {
    cfg.output_dir.join(media_uuid)
}

/// Writes `value` as `<dir>/<file>` through a temporary file and a rename, so a reader (or a
/// process killed mid-write) never sees half a product. The three file operations run in one
/// blocking task: one hop off the runtime instead of three keeps the stage's tail short.
pub(crate) async fn write_product(
    dir: &Path,
    file: &str,
    value: &Value,
) -> Result<PathBuf, HandlerError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    text.push('\n');
    let dir = dir.to_path_buf();
    let path = dir.join(file);
    let tmp = dir.join(format!(
        ".{file}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |what: &str, path: &Path, e: std::io::Error| {
        HandlerError::retryable(REASON_IO, format!("cannot {what} {}: {e}", path.display()))
    };
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        std::fs::write(&tmp, text).map_err(|e| io("write", &tmp, e))?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("rename into", &path, e));
        }
        Ok(path)
    })
    .await;
    match written {
        Ok(result) => result,
        // Only a panic inside std::fs could get here; report it as a retryable I/O failure.
        Err(e) => Err(HandlerError::retryable(
            REASON_IO,
            format!("writing {file} was interrupted: {e}"),
        )),
    }
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A small stable hash, so simulated results (faces found, ...) are the same on every run.
pub(crate) fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestCtx;

    #[tokio::test(start_paused = true)]
    async fn progress_is_reported_at_each_interval_and_the_work_lasts_its_scaled_duration() {
        let cfg = PipelineConfig {
            time_scale: 0.1,
            ..Default::default()
        };
        let ctx = TestCtx::new("m", 1);
        let started = Instant::now();
        let took = perform(&cfg, Stage::Transcode, &ctx, &FaultSpec::default())
            .await
            .unwrap();
        // 30 s nominal x 0.1, a heartbeat every 5 s x 0.1.
        assert_eq!(took, Duration::from_secs(3));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(ctx.heartbeats(), vec!["16", "33", "50", "66", "83"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_duration_stage_ends_at_once_without_heartbeats() {
        let cfg = PipelineConfig {
            publish_secs: 0.0,
            ..Default::default()
        };
        let ctx = TestCtx::new("m", 1);
        let took = perform(&cfg, Stage::Publish, &ctx, &FaultSpec::default())
            .await
            .unwrap();
        assert_eq!(took, Duration::ZERO);
        assert!(ctx.heartbeats().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hang_without_cancellation_ends_after_ten_start_to_close_timeouts() {
        let cfg = PipelineConfig {
            time_scale: 0.01,
            ..Default::default()
        };
        let limit = cfg.timeouts(Stage::Publish).start_to_close_secs.unwrap();
        let fault = FaultSpec {
            hang: true,
            ..Default::default()
        };
        let ctx = TestCtx::new("m", 1);
        let started = Instant::now();
        perform(&cfg, Stage::Publish, &ctx, &fault).await.unwrap();
        let hang = Duration::from_secs(limit * 10);
        assert!(started.elapsed() >= hang, "{:?}", started.elapsed());
        assert!(started.elapsed() < hang + Duration::from_secs(1));
        let explicit = FaultSpec {
            hang_secs: Some(2.5),
            ..fault
        };
        let started = Instant::now();
        perform(&cfg, Stage::Publish, &ctx, &explicit)
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(2500));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn products_are_written_whole_and_overwritten_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        write_product(&dir, "a.json", &serde_json::json!({"v": 1}))
            .await
            .unwrap();
        let path = write_product(&dir, "a.json", &serde_json::json!({"v": 2}))
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(v["v"], 2);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }
}
