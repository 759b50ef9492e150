//! Fault injection for tests and drills: make a stage fail, hang, panic or kill its process.
//!
//! Faults are keyed by stage name and come from the workflow input's `faults` object (they travel
//! into every stage input) or from the configuration's `faults` table (they apply to every
//! execution this host works on). A stage input's own entry wins over the configuration's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Faults by stage name.
pub type Faults = BTreeMap<String, FaultSpec>;

/// What goes wrong in one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Attempts 1..=N fail at once with reason `injected_failure`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fail_times: u32,
    /// Sleeps far past the stage's start-to-close timeout without heartbeating; still stops when
    /// cancelled, and finishes normally (too late) if nobody cancels it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hang: bool,
    /// How long a hang lasts, in real seconds; default ten times the stage's start-to-close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_secs: Option<f64>,
    /// Panics half-way through the work.
    #[serde(default, skip_serializing_if = "is_false")]
    pub panic: bool,
    /// Ends the whole process with exit code 137 half-way through the work, as a killed worker
    /// would. Only for drills with real processes: it takes any test harness down with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exit_process: bool,
    /// `hang`, `panic` and `exit_process` hit attempts 1..=N only (all attempts when unset), so a
    /// drill can show the retry that succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_attempts: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl FaultSpec {
    /// Attempts count from 1; an attempt number of 0 (unknown) is never failed.
    pub fn fails_attempt(&self, attempt: u32) -> bool {
        (1..=self.fail_times).contains(&attempt)
    }

    fn hits(&self, attempt: u32) -> bool {
        self.fault_attempts.is_none_or(|n| attempt <= n)
    }

    pub fn hangs(&self, attempt: u32) -> bool {
        self.hang && self.hits(attempt)
    }

    pub fn panics(&self, attempt: u32) -> bool {
        self.panic && self.hits(attempt)
    }

    pub fn exits(&self, attempt: u32) -> bool {
        self.exit_process && self.hits(attempt)
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.hang_secs {
            if !(s.is_finite() && s >= 0.0) {
                return Err(format!("hang_secs must be a non-negative number, got {s}"));
            }
        }
        Ok(())
    }
}

/// Checks that every key names a stage of the pipeline and every entry is sound.
pub fn check_faults(faults: &Faults, known_stages: &[&str]) -> Result<(), String> {
    for (stage, spec) in faults {
        if !known_stages.contains(&stage.as_str()) {
            return Err(format!(
                "faults names unknown stage `{stage}`, expected one of {}",
                known_stages.join(", ")
            ));
        }
        spec.check().map_err(|e| format!("faults.{stage}: {e}"))?;
    }
    Ok(())
}

/// The fault for `stage`: the stage input's own entry, else the configuration's.
pub fn fault_for(stage: &str, from_input: &Faults, from_config: &Faults) -> FaultSpec {
    from_input
        .get(stage)
        .or_else(|| from_config.get(stage))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_times_hits_the_first_n_attempts() {
        let f = FaultSpec {
            fail_times: 2,
            ..Default::default()
        };
        assert!(f.fails_attempt(1));
        assert!(f.fails_attempt(2));
        assert!(!f.fails_attempt(3));
        assert!(!FaultSpec::default().fails_attempt(1));
        assert!(!FaultSpec::default().fails_attempt(0));
        assert!(!f.fails_attempt(0));
    }

    #[test]
    fn fault_attempts_bounds_hang_panic_and_exit() {
        let f = FaultSpec {
            hang: true,
            panic: true,
            exit_process: true,
            fault_attempts: Some(1),
            ..Default::default()
        };
        assert!(f.hangs(1) && f.panics(1) && f.exits(1));
        assert!(!f.hangs(2) && !f.panics(2) && !f.exits(2));
        let always = FaultSpec {
            hang: true,
            ..Default::default()
        };
        assert!(always.hangs(7));
    }

    #[test]
    fn input_faults_win_over_config_faults() {
        let mut input = Faults::new();
        input.insert(
            "transcode".into(),
            FaultSpec {
                fail_times: 1,
                ..Default::default()
            },
        );
        let mut config = Faults::new();
        config.insert(
            "transcode".into(),
            FaultSpec {
                fail_times: 5,
                ..Default::default()
            },
        );
        config.insert(
            "publish".into(),
            FaultSpec {
                panic: true,
                ..Default::default()
            },
        );
        assert_eq!(fault_for("transcode", &input, &config).fail_times, 1);
        assert!(fault_for("publish", &input, &config).panic);
        assert_eq!(
            fault_for("thumbnails", &input, &config),
            FaultSpec::default()
        );
    }

    #[test]
    fn unknown_stages_and_bad_values_are_named() {
        let mut f = Faults::new();
        f.insert("transcod".into(), FaultSpec::default());
        let err = check_faults(&f, &["transcode"]).unwrap_err();
        assert!(err.contains("`transcod`"), "{err}");
        let mut f = Faults::new();
        f.insert(
            "transcode".into(),
            FaultSpec {
                hang_secs: Some(-1.0),
                ..Default::default()
            },
        );
        let err = check_faults(&f, &["transcode"]).unwrap_err();
        assert!(err.contains("faults.transcode: hang_secs"), "{err}");
    }
}
