//! Task tokens of manual activity tasks (human-in-the-loop work such as face recognition), kept
//! until a person answers them with `swf-runtime complete`.
//!
//! A token is a credential for its task, so it never goes to a log line: the handler's adapter
//! stores it here, in `<data_dir>/manual-tasks/<media_uuid>__<activity_id>.token` readable only by
//! the runtime's user, logs only its short hash and the file's path, and `complete` removes the file
//! once SWF accepted the answer.

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
}

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
        }
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
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(ManualStoreError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        for entry in entries.flatten() {
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
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// The oldest waiting task of a media.
    pub fn find(&self, media_uuid: &str) -> Result<Option<PendingTask>, ManualStoreError> {
        let media = safe(media_uuid);
        Ok(self.list()?.into_iter().find(|p| p.media_uuid == media))
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
    }
}
