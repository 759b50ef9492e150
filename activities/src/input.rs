//! The pipeline's input shapes and their validation.
//!
//! A workflow input ([`MediaInput`]) is checked once, when the execution starts: the decider calls
//! the workflow's `validate_input` and fails the execution at once with the returned reason, so a
//! bad input never reaches a worker. Stage inputs ([`StageInput`]) are built by the decider from
//! the validated workflow input; handlers still parse them strictly because a task can also be put
//! on a task list by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::{check_faults, Faults};
use crate::Stage;

/// SWF's limit on inputs, results, details and reasons.
pub const MAX_PAYLOAD_CHARS: usize = 32_768;
/// SWF's limit on a workflow id; the media uuid is our workflow id.
const MAX_ID_CHARS: usize = 256;

/// Input of VideoProcessing, FaceRecognition and the Upload activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaInput {
    pub media_uuid: String,
    pub user_uuid: String,
    /// Where the media is (a path or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<MediaOptions>,
    #[serde(default, skip_serializing_if = "Faults::is_empty")]
    pub faults: Faults,
}

/// What a user may ask of the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaOptions {
    /// Renditions to transcode to, e.g. `["1080p", "480p"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renditions: Option<Vec<String>>,
    /// How many thumbnails to cut (1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_count: Option<u32>,
}

/// A stage's input: the media's identity and request, plus the results of the stages it uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// Empty in a task injected by hand without one: the task context's media uuid is used.
    #[serde(default)]
    pub media_uuid: String,
    #[serde(default)]
    pub user_uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<MediaOptions>,
    #[serde(default, skip_serializing_if = "Faults::is_empty")]
    pub faults: Faults,
    /// Results of earlier stages, by stage name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upstream: BTreeMap<String, Value>,
}

fn classify(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Data => "invalid input",
        _ => "malformed JSON",
    }
}

/// Checks that `id` can be a workflow id and a folder name: the media uuid is both.
pub fn check_media_uuid(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("invalid input: media_uuid is empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!(
            "invalid input: media_uuid is longer than {MAX_ID_CHARS} characters"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "invalid input: media_uuid contains {c:?}; use letters, digits, '-', '_' and '.'"
        ));
    }
    if id.starts_with('.') {
        return Err("invalid input: media_uuid must not start with '.'".into());
    }
    Ok(())
}

fn check_user_uuid(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("invalid input: user_uuid is empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!(
            "invalid input: user_uuid is longer than {MAX_ID_CHARS} characters"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("invalid input: user_uuid contains control characters".into());
    }
    Ok(())
}

fn check_options(options: Option<&MediaOptions>) -> Result<(), String> {
    let Some(o) = options else { return Ok(()) };
    if let Some(r) = &o.renditions {
        if r.is_empty() || r.iter().any(|s| s.trim().is_empty()) {
            return Err(
                "invalid input: options.renditions must list at least one non-empty name".into(),
            );
        }
    }
    if let Some(n) = o.thumbnail_count {
        if !(1..=100).contains(&n) {
            return Err(format!(
                "invalid input: options.thumbnail_count is {n}, expected 1..=100"
            ));
        }
    }
    Ok(())
}

impl MediaInput {
    /// Every top-level field a workflow input may have.
    pub const FIELDS: [&'static str; 5] =
        ["media_uuid", "user_uuid", "source", "options", "faults"];

    /// Parses and checks a workflow (or Upload) input; the error names the problem.
    pub fn parse(raw: &str) -> Result<MediaInput, String> {
        if raw.chars().count() > MAX_PAYLOAD_CHARS {
            return Err(format!(
                "invalid input: longer than {MAX_PAYLOAD_CHARS} characters"
            ));
        }
        if raw.trim().is_empty() {
            return Err(
                "invalid input: empty; expected a JSON object with media_uuid and user_uuid".into(),
            );
        }
        let input: MediaInput =
            serde_json::from_str(raw).map_err(|e| format!("{}: {e}", classify(&e)))?;
        check_media_uuid(&input.media_uuid)?;
        check_user_uuid(&input.user_uuid)?;
        if let Some(s) = &input.source {
            if s.trim().is_empty() {
                return Err("invalid input: source is empty; omit it or name the media".into());
            }
        }
        check_options(input.options.as_ref())?;
        check_faults(&input.faults, &Stage::NAMES).map_err(|e| format!("invalid input: {e}"))?;
        Ok(input)
    }

    /// The workflows' `validate_input`: the normalised input as a JSON value.
    pub fn validate(raw: &str) -> Result<Value, String> {
        let input = MediaInput::parse(raw)?;
        Ok(serde_json::to_value(input).expect("a MediaInput always serialises"))
    }
}

impl StageInput {
    /// Builds the input of a stage from the validated workflow input and the named upstream
    /// results.
    pub fn build(
        workflow_input: &Value,
        results: &BTreeMap<String, Value>,
        upstream: &[&str],
    ) -> Value {
        // The decider passes the value `validate_input` returned, so this only fails if someone
        // hands it something else; an empty input then fails in the handler with a clear reason.
        let media: MediaInput = match serde_json::from_value(workflow_input.clone()) {
            Ok(m) => m,
            Err(_) => return workflow_input.clone(),
        };
        let stage = StageInput {
            media_uuid: media.media_uuid,
            user_uuid: media.user_uuid,
            source: media.source,
            options: media.options,
            faults: media.faults,
            upstream: upstream
                .iter()
                .filter_map(|name| Some((name.to_string(), results.get(*name)?.clone())))
                .collect(),
        };
        serde_json::to_value(stage).expect("a StageInput always serialises")
    }

    /// Parses a stage input as a handler receives it. A task injected by hand may be a bare
    /// media input or lack the ids (then the task context's ids are used).
    pub fn parse(
        value: Value,
        ctx_media_uuid: &str,
        ctx_user_uuid: &str,
    ) -> Result<StageInput, String> {
        let value = match value {
            Value::Null => Value::Object(Default::default()),
            Value::String(s) => {
                serde_json::from_str(&s).map_err(|e| format!("{}: {e}", classify(&e)))?
            }
            v => v,
        };
        let mut input: StageInput =
            serde_json::from_value(value).map_err(|e| format!("invalid input: {e}"))?;
        if input.media_uuid.is_empty() {
            input.media_uuid = ctx_media_uuid.to_string();
        }
        if input.user_uuid.is_empty() {
            input.user_uuid = ctx_user_uuid.to_string();
        }
        check_media_uuid(&input.media_uuid)?;
        check_user_uuid(&input.user_uuid)?;
        check_options(input.options.as_ref())?;
        check_faults(&input.faults, &Stage::NAMES).map_err(|e| format!("invalid input: {e}"))?;
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_input_is_normalised() {
        let v = MediaInput::validate(
            r#"{"media_uuid":"m-1","user_uuid":"u-1","source":"/in/a.mov","options":{"thumbnail_count":3}}"#,
        )
        .unwrap();
        assert_eq!(v["media_uuid"], "m-1");
        assert_eq!(v["options"]["thumbnail_count"], 3);
        assert!(v.get("faults").is_none());
        // The seed's own example job carries only the two ids.
        MediaInput::validate(r#"{"media_uuid":"1234","user_uuid":"45567"}"#).unwrap();
    }

    #[test]
    fn fields_lists_every_field() {
        let full = MediaInput {
            media_uuid: "m".into(),
            user_uuid: "u".into(),
            source: Some("s".into()),
            options: Some(MediaOptions::default()),
            faults: [(
                "publish".to_string(),
                crate::FaultSpec {
                    panic: true,
                    ..Default::default()
                },
            )]
            .into(),
        };
        let v = serde_json::to_value(full).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut fields = MediaInput::FIELDS.to_vec();
        keys.sort();
        fields.sort();
        assert_eq!(keys, fields);
    }

    #[test]
    fn each_bad_input_gets_a_reason_naming_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("{\"media_uuid\": ", "malformed JSON"),
            ("not json", "malformed JSON"),
            ("", "empty"),
            (r#"{"user_uuid":"u"}"#, "missing field `media_uuid`"),
            (r#"{"media_uuid":"m"}"#, "missing field `user_uuid`"),
            (
                r#"{"media_uuid":"","user_uuid":"u"}"#,
                "media_uuid is empty",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"  "}"#,
                "user_uuid is empty",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"media_uuid":"../etc","user_uuid":"u"}"#,
                "media_uuid contains '/'",
            ),
            (
                r#"{"media_uuid":".hidden","user_uuid":"u"}"#,
                "must not start with '.'",
            ),
            (
                r#"{"media_uuid":7,"user_uuid":"u"}"#,
                "invalid type: integer",
            ),
            (r#"[1,2]"#, "invalid input"),
            (
                r#"{"media_uuid":"m","user_uuid":"u","options":{"speed":2}}"#,
                "unknown field `speed`",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","options":{"thumbnail_count":0}}"#,
                "thumbnail_count is 0",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","faults":{"nope":{"fail_times":1}}}"#,
                "unknown stage `nope`",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","faults":{"publish":{"explode":true}}}"#,
                "unknown field `explode`",
            ),
            (
                r#"{"media_uuid":"m","user_uuid":"u","source":""}"#,
                "source is empty",
            ),
        ];
        for (raw, expected) in cases {
            let err = MediaInput::validate(raw).unwrap_err();
            assert!(
                err.contains(expected),
                "{raw:?}: {err:?} should contain {expected:?}"
            );
        }
        let long = format!(
            r#"{{"media_uuid":"m","user_uuid":"u","source":"{}"}}"#,
            "x".repeat(MAX_PAYLOAD_CHARS)
        );
        assert!(MediaInput::validate(&long)
            .unwrap_err()
            .contains("longer than 32768"));
        let long_id = format!(r#"{{"media_uuid":"{}","user_uuid":"u"}}"#, "a".repeat(257));
        assert!(MediaInput::validate(&long_id)
            .unwrap_err()
            .contains("longer than 256"));
    }

    #[test]
    fn stage_inputs_carry_ids_faults_and_only_their_upstream() {
        let wf = MediaInput::validate(
            r#"{"media_uuid":"m","user_uuid":"u","faults":{"publish":{"fail_times":1}}}"#,
        )
        .unwrap();
        let mut results = BTreeMap::new();
        results.insert("transcode".to_string(), serde_json::json!({"a": 1}));
        results.insert("thumbnails".to_string(), serde_json::json!({"b": 2}));
        let v = StageInput::build(&wf, &results, &["transcode"]);
        let s = StageInput::parse(v, "", "").unwrap();
        assert_eq!(s.media_uuid, "m");
        assert_eq!(s.faults["publish"].fail_times, 1);
        assert_eq!(s.upstream.len(), 1);
        assert_eq!(s.upstream["transcode"]["a"], 1);
    }

    #[test]
    fn hand_injected_stage_inputs_fall_back_to_the_context_ids() {
        let s = StageInput::parse(Value::Null, "m-ctx", "u-ctx").unwrap();
        assert_eq!(
            (s.media_uuid.as_str(), s.user_uuid.as_str()),
            ("m-ctx", "u-ctx")
        );
        let s = StageInput::parse(Value::String(r#"{"media_uuid":"m2"}"#.into()), "", "u").unwrap();
        assert_eq!(s.media_uuid, "m2");
        let err = StageInput::parse(Value::Null, "", "").unwrap_err();
        assert!(err.contains("media_uuid is empty"), "{err}");
        let err = StageInput::parse(Value::String("garbage".into()), "m", "u").unwrap_err();
        assert!(err.contains("malformed JSON"), "{err}");
    }
}
