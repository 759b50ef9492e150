//! The runtime's one configuration: a TOML file, overridden by `SWF_RUNTIME_*` environment
//! variables, overridden by command-line flags.
//!
//! Loading happens once in `main`; the result is immutable and handed to every part by reference.
//! Unknown keys are refused (`deny_unknown_fields`) so that a typo in a config file is an error that
//! names the key, not a silently ignored setting. Units are part of field names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::telemetry::TelemetryConfig;

/// SWF's API has no default retention; we keep closed executions as long as SWF allows (90 days) so
/// an operator can always answer "what happened to this video".
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SWF domain every type and execution lives in.
    pub domain: String,
    /// Retention of closed executions, 0..=90 days.
    pub domain_retention_days: u32,
    /// AWS region; the standard chain (AWS_REGION, profile) when unset.
    pub region: Option<String>,
    /// SWF endpoint URL; unset = the embedded swf-local.
    pub endpoint_url: Option<String>,
    /// AWS profile name for credentials and region.
    pub profile: Option<String>,
    /// Identity reported to SWF with every poll; default `<hostname>:<pid>`.
    pub identity: Option<String>,
    /// How long in-flight tasks may run after SIGTERM before they are cancelled.
    pub drain_timeout_secs: u64,
    /// Where the embedded swf-local keeps its database, logs default to, and outputs go.
    pub data_dir: PathBuf,
    /// Whether this host runs the decider.
    pub decider: bool,
    /// Concurrent long polls per decider task list: each decides one task at a time, so a burst
    /// of N closing activities waits for N / pollers decisions. 8: in the demo's burst of 100
    /// executions, 2 polls let the last decision after transcode come 35-55 ms late, 8 polls
    /// 11-20 ms (16 were no better on 2 cores). An idle poll costs one call a minute.
    pub decider_pollers: usize,
    /// Activity task lists this host polls, with their concurrency.
    pub task_lists: Vec<TaskListConfig>,
    /// The embedded swf-local (used when `endpoint_url` is unset).
    pub local: LocalConfig,
    pub telemetry: TelemetryConfig,
    pub pipeline: activities::PipelineConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskListConfig {
    pub name: String,
    pub slots: usize,
    /// Long polls kept outstanding (each holds one of the slots while it waits). Default: the
    /// slots, up to 16. A task scheduled while a poll waits is handed to it at once; a burst
    /// larger than the waiting polls waits for polls to come back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pollers: Option<usize>,
}

impl TaskListConfig {
    pub fn new(name: impl Into<String>, slots: usize) -> Self {
        TaskListConfig {
            name: name.into(),
            slots,
            pollers: None,
        }
    }

    /// The long polls to keep outstanding.
    pub fn pollers(&self) -> usize {
        self.pollers.unwrap_or(self.slots.clamp(1, 16))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Address of the embedded endpoint; port 0 picks a free one.
    pub listen: SocketAddr,
    pub long_poll_timeout_secs: u64,
    /// `normal` (WAL, synchronous=NORMAL: survives a killed process) or `full` (also survives an
    /// OS crash or power loss, at about 20% of the throughput).
    pub durability: String,
    /// Required to listen beyond loopback; then every request must be SigV4-signed with them.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            long_poll_timeout_secs: 60,
            durability: "normal".into(),
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "media".into(),
            domain_retention_days: DEFAULT_RETENTION_DAYS,
            region: None,
            endpoint_url: None,
            profile: None,
            identity: None,
            drain_timeout_secs: 60,
            data_dir: PathBuf::from("swf-runtime-data"),
            decider: true,
            decider_pollers: 8,
            task_lists: Vec::new(),
            local: LocalConfig::default(),
            telemetry: TelemetryConfig::default(),
            pipeline: activities::PipelineConfig::default(),
        }
    }
}

/// Errors loading the configuration; each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file; a missing `path` means all defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values serde cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.domain.trim().is_empty() {
            return Err(ConfigError::Invalid("domain must not be empty".into()));
        }
        if self.domain_retention_days > 90 {
            return Err(ConfigError::Invalid(format!(
                "domain_retention_days is {}, SWF allows 0..=90",
                self.domain_retention_days
            )));
        }
        self.pipeline
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[pipeline]: {e}")))?;
        if self.decider_pollers == 0 {
            return Err(ConfigError::Invalid(
                "decider_pollers is 0; give it at least 1".into(),
            ));
        }
        for tl in &self.task_lists {
            if tl.slots == 0 {
                return Err(ConfigError::Invalid(format!(
                    "task list {} has 0 slots; give it at least 1",
                    tl.name
                )));
            }
            match tl.pollers {
                Some(0) => {
                    return Err(ConfigError::Invalid(format!(
                        "task list {} has 0 pollers; give it at least 1",
                        tl.name
                    )))
                }
                Some(p) if p > tl.slots => {
                    return Err(ConfigError::Invalid(format!(
                        "task list {} has {p} pollers but {} slots: each waiting poll holds a slot, so pollers must not exceed slots",
                        tl.name, tl.slots
                    )))
                }
                _ => {}
            }
        }
        if !matches!(self.local.durability.as_str(), "normal" | "full") {
            return Err(ConfigError::Invalid(format!(
                "local.durability is {:?}; use \"normal\" or \"full\"",
                self.local.durability
            )));
        }
        if self.local.access_key_id.is_some() != self.local.secret_access_key.is_some() {
            return Err(ConfigError::Invalid(
                "local.access_key_id and local.secret_access_key must be set together".into(),
            ));
        }
        Ok(())
    }

    /// The identity sent with polls: configured, or `<hostname>:<pid>`.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(default_identity)
    }
}

pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn default_identity() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::from_toml("domian = \"x\"").unwrap_err().to_string();
        assert!(err.contains("domian"), "{err}");
    }

    #[test]
    fn wrong_types_and_ranges_are_refused() {
        for (toml, names) in [
            ("[pipeline]\ntime_scale = \"fast\"", "time_scale"),
            ("domain_retention_days = 91", "0..=90"),
            ("[[task_lists]]\nname = \"a\"\nslots = 0", "0 slots"),
            (
                "[[task_lists]]\nname = \"a\"\nslots = 2\npollers = 3",
                "3 pollers but 2 slots",
            ),
            (
                "[[task_lists]]\nname = \"a\"\nslots = 2\npollers = 0",
                "0 pollers",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(names), "{toml}: {err}");
        }
        let ok =
            Config::from_toml("[[task_lists]]\nname = \"a\"\nslots = 40\npollers = 8").unwrap();
        assert_eq!(ok.task_lists[0].pollers(), 8);
        let default = Config::from_toml("[[task_lists]]\nname = \"a\"\nslots = 40").unwrap();
        assert_eq!(default.task_lists[0].pollers(), 16);
    }

    #[test]
    fn a_full_file_parses() {
        let cfg = Config::from_toml(
            "domain = \"d\"\n[[task_lists]]\nname = \"video-processing\"\nslots = 4\n[local]\ndurability = \"full\"\n",
        )
        .unwrap();
        assert_eq!(cfg.domain, "d");
        assert_eq!(cfg.task_lists[0].slots, 4);
        assert_eq!(cfg.local.durability, "full");
        assert_eq!(cfg.domain_retention_days, DEFAULT_RETENTION_DAYS);
    }
}
