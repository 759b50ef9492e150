//! The core of `swf-runtime logs`: find one media's lines in the local JSON log files and print
//! them as a timeline, for hosts without an ELK stack.
//!
//! Reads every `*.log` and rotated `*.log.N` file of the log directory (oldest first), keeps the
//! lines whose `media_uuid` (or `workflow_id`, which is the media uuid for our workflows) matches,
//! and sorts them by `@timestamp`. Lines that are not JSON (a torn last line) are skipped. Nothing
//! is kept open; each call reads the files afresh.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::fields as f;

/// Why the log directory could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Check `telemetry.log_dir` (or `--log-dir`) points at the runtime's log directory.
    #[error("cannot read log directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Give `--since` as RFC 3339 (`2026-11-26T16:00:00Z`) or an age (`30m`, `6h`, `2d`).
    #[error("invalid --since {0:?}: expected an RFC 3339 time or an age like 30m, 6h, 2d")]
    Since(String),
    #[error("cannot read log file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Log files of `dir`, oldest first: `x.log.N` (highest N first), then `x.log`.
fn log_files(dir: &Path) -> Result<Vec<PathBuf>, SearchError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SearchError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<(String, u64, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(".log") {
            files.push((base.to_string(), 0, path));
        } else if let Some((base, n)) = name.rsplit_once(".log.") {
            if let Ok(n) = n.parse::<u64>() {
                files.push((base.to_string(), n, path));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    Ok(files.into_iter().map(|(_, _, p)| p).collect())
}

fn timestamp(line: &Value) -> Option<OffsetDateTime> {
    line.get(f::TIMESTAMP)
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

/// The lines of one media (and optionally one workflow execution id), since `since`, in time
/// order.
pub fn search_logs(
    dir: &Path,
    media_uuid: &str,
    workflow_id: Option<&str>,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Value>, SearchError> {
    let mut found: Vec<(Option<OffsetDateTime>, Value)> = Vec::new();
    for path in log_files(dir)? {
        let file = File::open(&path).map_err(|source| SearchError::File {
            path: path.clone(),
            source,
        })?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| SearchError::File {
                path: path.clone(),
                source,
            })?;
            // Cheap pre-filter: most lines of a busy host are about other media.
            if !line.contains(media_uuid) {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let field = |key: &str| value.get(key).and_then(Value::as_str);
            let is_media = field(f::MEDIA_UUID) == Some(media_uuid)
                || field(f::WORKFLOW_ID) == Some(media_uuid);
            if !is_media {
                continue;
            }
            if workflow_id.is_some_and(|w| field(f::WORKFLOW_ID) != Some(w)) {
                continue;
            }
            let at = timestamp(&value);
            if let Some(since) = since {
                if at.is_none_or(|at| at < since) {
                    continue;
                }
            }
            found.push((at, value));
        }
    }
    // Stable: lines of the same millisecond keep their file order.
    found.sort_by_key(|(at, _)| *at);
    Ok(found.into_iter().map(|(_, v)| v).collect())
}

/// Parses `--since`: an RFC 3339 time (`2026-11-26T16:00:00Z`) or an age before `now` with a unit
/// (`90s`, `30m`, `6h`, `2d`).
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, SearchError> {
    let value = value.trim();
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(at);
    }
    let bad = || SearchError::Since(value.to_string());
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(bad()),
    };
    Ok(now - time::Duration::seconds(seconds))
}

fn text(line: &Value, key: &str) -> Option<String> {
    match line.get(key)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One line per log line: time, host, level, stage or activity, message, then duration, outcome,
/// attempt and error when present; a header names the media and the time span covered.
pub fn render_timeline(lines: &[Value]) -> String {
    let mut out = String::new();
    if lines.is_empty() {
        out.push_str("No log lines found.\n");
        return out;
    }
    let media = lines
        .iter()
        .find_map(|l| text(l, f::MEDIA_UUID))
        .unwrap_or_else(|| "-".into());
    let first = text(&lines[0], f::TIMESTAMP).unwrap_or_default();
    let last = text(&lines[lines.len() - 1], f::TIMESTAMP).unwrap_or_default();
    let elapsed = match (timestamp(&lines[0]), timestamp(&lines[lines.len() - 1])) {
        (Some(a), Some(b)) => format!(" ({:.3} s)", (b - a).as_seconds_f64()),
        _ => String::new(),
    };
    out.push_str(&format!(
        "media {media}: {} lines from {first} to {last}{elapsed}\n",
        lines.len()
    ));
    let host_width = lines
        .iter()
        .filter_map(|l| text(l, f::HOST_NAME))
        .map(|h| h.len())
        .max()
        .unwrap_or(1)
        .clamp(1, 32);
    for line in lines {
        let stage = text(line, f::STAGE)
            .or_else(|| text(line, f::ACTIVITY_TYPE))
            .or_else(|| text(line, f::WORKFLOW_TYPE))
            .unwrap_or_else(|| "-".into());
        let mut row = format!(
            "{:<24}  {:<host_width$}  {:<5}  {:<20}  {}",
            text(line, f::TIMESTAMP).unwrap_or_else(|| "-".into()),
            text(line, f::HOST_NAME).unwrap_or_else(|| "-".into()),
            text(line, f::LOG_LEVEL)
                .unwrap_or_else(|| "-".into())
                .to_uppercase(),
            stage,
            text(line, f::MESSAGE).unwrap_or_default(),
        );
        for key in [f::DURATION_MS, f::OUTCOME, f::ATTEMPT, f::ERROR] {
            if let Some(value) = text(line, key) {
                row.push_str(&format!("  {key}={value}"));
            }
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_one_media_across_rotated_files_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let line = |ts: &str, media: &str, msg: &str| {
            json!({"@timestamp": ts, "log.level": "info", "message": msg, "host.name": "h1",
                   "media_uuid": media, "workflow_id": media, "stage": "transcode",
                   "duration_ms": 1500, "outcome": "completed"})
            .to_string()
        };
        std::fs::write(
            dir.path().join("swf-runtime.log.1"),
            format!(
                "{}\n{}\nnot json m1\n",
                line("2026-01-01T00:00:02.000Z", "m1", "Second."),
                line("2026-01-01T00:00:01.000Z", "m2", "Other media.")
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("swf-runtime.log.2"),
            format!("{}\n", line("2026-01-01T00:00:01.000Z", "m1", "First.")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("swf-runtime.log"),
            format!("{}\n", line("2026-01-01T00:00:03.000Z", "m1", "Third.")),
        )
        .unwrap();
        std::fs::write(dir.path().join("unrelated.txt"), "m1").unwrap();

        let found = search_logs(dir.path(), "m1", None, None).unwrap();
        let messages: Vec<_> = found.iter().map(|v| v["message"].clone()).collect();
        assert_eq!(messages, vec!["First.", "Second.", "Third."]);

        let since = OffsetDateTime::parse("2026-01-01T00:00:02Z", &Rfc3339).unwrap();
        assert_eq!(
            search_logs(dir.path(), "m1", Some("m1"), Some(since))
                .unwrap()
                .len(),
            2
        );
        assert!(search_logs(dir.path(), "m1", Some("other"), None)
            .unwrap()
            .is_empty());

        let now = OffsetDateTime::parse("2026-01-01T00:00:04Z", &Rfc3339).unwrap();
        assert_eq!(parse_since("2s", now).unwrap(), since);
        assert_eq!(parse_since("2026-01-01T00:00:02Z", now).unwrap(), since);
        assert!(parse_since("2 weeks", now).is_err());
        assert!(parse_since("h", now).is_err());

        let timeline = render_timeline(&found);
        assert!(timeline.starts_with("media m1: 3 lines"), "{timeline}");
        assert!(timeline.contains("(2.000 s)"), "{timeline}");
        let third = timeline.lines().last().unwrap();
        assert!(
            third.contains("2026-01-01T00:00:03.000Z  h1  INFO   transcode"),
            "{third}"
        );
        assert!(
            third.contains("Third.  duration_ms=1500  outcome=completed"),
            "{third}"
        );
    }
}
