//! Task tokens of manual activity tasks (human-in-the-loop work such as face recognition), kept
//! until a person answers them with `swf-runtime complete`.
//!
//! A token is a credential for its task, so it never goes to a log line. Two places hold one:
//! - the FaceRecognition handler's request file, `<output_dir>/<media_uuid>/face_recognition_request.json`
//!   (what a person opens to do the work; its `task_token` field);
//! - token files saved with [`ManualStore::save`], `<data_dir>/manual-tasks/<media>__<activity>.token`
//!   (mode 0600), for other handlers that defer their answer.
//!
//! `swf-runtime complete --media-uuid U` finds the token in either, and removes the token file (or
//! marks the request answered) once SWF accepted the answer.

use std::path::{Path, PathBuf};

/// Errors of the manual task store: a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManualStoreError {
    #[error("cannot access manual task file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One waiting manual task.
#[derive(Debug, Clone)]
pub struct PendingTask {
    pub media_uuid: String,
    pub activity_id: String,
    pub token: String,
    pub token_hash: String,
    pub path: PathBuf,
    /// When it was stored (RFC 3339).
    pub created: String,
}

pub struct ManualStore {
    dir: PathBuf,
    output_dir: Option<PathBuf>,
}

/// The request file the FaceRecognition handler writes in the media's output folder.
pub const FACE_REQUEST_FILE: &str = "face_recognition_request.json";

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ManualStore {
    pub fn new(data_dir: &Path) -> ManualStore {
        ManualStore {
            dir: data_dir.join("manual-tasks"),
            output_dir: None,
        }
    }

    /// Also looks at the pipeline's request files under `output_dir`.
    pub fn with_output_dir(mut self, output_dir: &Path) -> ManualStore {
        self.output_dir = Some(output_dir.to_path_buf());
        self
    }

    /// Request files still waiting for an answer.
    fn requests(&self) -> Vec<PendingTask> {
        let Some(out) = &self.output_dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(out) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join(FACE_REQUEST_FILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if v.get("answered_at").is_some() {
                continue;
            }
            let (Some(token), Some(media)) = (
                v.get("task_token").and_then(|t| t.as_str()),
                v.get("media_uuid").and_then(|t| t.as_str()),
            ) else {
                continue;
            };
            found.push(PendingTask {
                media_uuid: media.to_string(),
                activity_id: v
                    .get("activity_id")
                    .and_then(|a| a.as_str())
                    .unwrap_or_default()
                    .to_string(),
                token_hash: crate::envelope::token_hash(token),
                token: token.to_string(),
                path,
                created: v
                    .get("requested_at")
                    .and_then(|a| a.as_str())
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        found
    }

    /// Marks a waiting task answered: a token file is removed, a request file gets `answered_at`.
    pub fn mark_answered(&self, task: &PendingTask) -> Result<(), ManualStoreError> {
        let io = |source| ManualStoreError::Io {
            path: task.path.clone(),
            source,
        };
        if task.path.extension().and_then(|e| e.to_str()) == Some("token") {
            return std::fs::remove_file(&task.path).map_err(io);
        }
        let text = std::fs::read_to_string(&task.path).map_err(io)?;
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            obj.insert("answered_at".into(), serde_json::Value::String(now));
        }
        std::fs::write(
            &task.path,
            serde_json::to_vec_pretty(&v).unwrap_or_default(),
        )
        .map_err(io)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a task's token; returns the file it went to.
    pub fn save(
        &self,
        media_uuid: &str,
        activity_id: &str,
        token: &str,
    ) -> Result<PathBuf, ManualStoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ManualStoreError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self
            .dir
            .join(format!("{}__{}.token", safe(media_uuid), safe(activity_id)));
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(token.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }

    /// Every waiting task, oldest first.
    pub fn list(&self) -> Result<Vec<PendingTask>, ManualStoreError> {
        let mut out = Vec::new();
        // No token folder yet is normal (only deferring handlers create it): the request files
        // under the output folder are still listed below.
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ManualStoreError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        for entry in entries.into_iter().flatten().flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".token") else {
                continue;
            };
            let Some((media, activity)) = stem.split_once("__") else {
                continue;
            };
            let token = std::fs::read_to_string(&path)
                .map_err(|source| ManualStoreError::Io {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string();
            let created = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| {
                    time::OffsetDateTime::from(t)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            out.push(PendingTask {
                media_uuid: media.to_string(),
                activity_id: activity.to_string(),
                token_hash: crate::envelope::token_hash(&token),
                token,
                path,
                created,
            });
        }
        out.extend(self.requests());
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// The oldest waiting task of a media.
    pub fn find(&self, media_uuid: &str) -> Result<Option<PendingTask>, ManualStoreError> {
        let media = safe(media_uuid);
        Ok(self
            .list()?
            .into_iter()
            .find(|p| p.media_uuid == media || p.media_uuid == media_uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = ManualStore::new(dir.path());
        let path = store.save("m-1", "recognize-1", "TOKEN").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let found = store.find("m-1").unwrap().unwrap();
        assert_eq!(found.token, "TOKEN");
        assert_eq!(found.activity_id, "recognize-1");
        assert!(store.find("other").unwrap().is_none());
        store.mark_answered(&found).unwrap();
        assert!(store.find("m-1").unwrap().is_none());
    }

    #[test]
    fn face_requests_are_found_and_marked_answered() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("m-2")).unwrap();
        std::fs::write(
            out.join("m-2").join(FACE_REQUEST_FILE),
            r#"{"media_uuid":"m-2","activity_id":"recognize-1","task_token":"T2","requested_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let store = ManualStore::new(dir.path()).with_output_dir(&out);
        let found = store
            .find("m-2")
            .unwrap()
            .expect("the request file is found");
        assert_eq!(found.token, "T2");
        store.mark_answered(&found).unwrap();
        assert!(store.find("m-2").unwrap().is_none());
    }
}
