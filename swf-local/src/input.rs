//! Typed access to request JSON with SWF's validation rules.
//!
//! A [`Req`] wraps one JSON object of a request (the body or a nested structure) and remembers its
//! path, so every missing, mistyped or oversized member is reported as a `ValidationException` that
//! names the field (`decisions.2.scheduleActivityTaskDecisionAttributes.activityId`). Nothing here
//! panics on any input.

use serde_json::{Map, Value};

use crate::fault::Fault;

/// Limit of SWF's free-text payloads: input, result, details, control, executionContext.
pub const PAYLOAD_MAX: usize = 32_768;
/// Limit of names, ids, versions, identities.
pub const NAME_MAX: usize = 256;
/// Limit of reasons.
pub const REASON_MAX: usize = 256;
/// Limit of descriptions.
pub const DESCRIPTION_MAX: usize = 1024;
/// Limit of opaque tokens (task and page tokens).
pub const TOKEN_MAX: usize = 2048;

/// A timeout as SWF writes it: whole seconds or `NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Timeout {
    Secs(u64),
    Unlimited,
}

impl Timeout {
    pub fn wire(&self) -> String {
        match self {
            Timeout::Secs(s) => s.to_string(),
            Timeout::Unlimited => "NONE".to_string(),
        }
    }

    /// Deadline in epoch milliseconds, counted from `from_ms`.
    pub fn deadline(&self, from_ms: i64) -> Option<i64> {
        match self {
            Timeout::Secs(s) => Some(from_ms.saturating_add((*s as i64).saturating_mul(1000))),
            Timeout::Unlimited => None,
        }
    }
}

pub struct Req<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

impl<'a> Req<'a> {
    /// Parses a request body; anything but a JSON object is a `SerializationException`.
    pub fn parse(body: &[u8]) -> Result<Value, Fault> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Value::Object(Map::new()));
        }
        let value: Value = serde_json::from_slice(body).map_err(|err| {
            Fault::serialization(format!("Request body is not valid JSON: {err}"))
        })?;
        if !value.is_object() {
            return Err(Fault::serialization("Request body must be a JSON object"));
        }
        Ok(value)
    }

    pub fn root(value: &'a Value) -> Result<Req<'a>, Fault> {
        match value {
            Value::Object(obj) => Ok(Req {
                obj,
                path: String::new(),
            }),
            _ => Err(Fault::serialization("Request body must be a JSON object")),
        }
    }

    fn field_path(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{}", self.path, field)
        }
    }

    fn missing(&self, field: &str) -> Fault {
        Fault::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            self.field_path(field)
        ))
    }

    fn mistyped(&self, field: &str, want: &str) -> Fault {
        Fault::serialization(format!("Field '{}' must be {want}", self.field_path(field)))
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn opt_str_max(&self, field: &str, max: usize) -> Result<Option<&'a str>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    Err(Fault::validation(format!(
                        "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                        self.field_path(field)
                    )))
                } else {
                    Ok(Some(s.as_str()))
                }
            }
            Some(_) => Err(self.mistyped(field, "a string")),
        }
    }

    /// A required string of 1..=max characters.
    pub fn str_max(&self, field: &str, max: usize) -> Result<&'a str, Fault> {
        let s = self
            .opt_str_max(field, max)?
            .ok_or_else(|| self.missing(field))?;
        if s.is_empty() {
            return Err(Fault::validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length greater than or equal to 1",
                self.field_path(field)
            )));
        }
        Ok(s)
    }

    /// A required name (domain, type, id): 1..=256 characters.
    pub fn name(&self, field: &str) -> Result<&'a str, Fault> {
        self.str_max(field, NAME_MAX)
    }

    pub fn opt_name(&self, field: &str) -> Result<Option<&'a str>, Fault> {
        match self.opt_str_max(field, NAME_MAX)? {
            Some("") => Err(Fault::validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length greater than or equal to 1",
                self.field_path(field)
            ))),
            other => Ok(other),
        }
    }

    /// An optional payload (input, result, details, control): at most 32,768 characters.
    pub fn payload(&self, field: &str) -> Result<Option<&'a str>, Fault> {
        self.opt_str_max(field, PAYLOAD_MAX)
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.mistyped(field, "a boolean")),
        }
    }

    pub fn opt_i64(&self, field: &str) -> Result<Option<i64>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.mistyped(field, "an integer")),
            Some(_) => Err(self.mistyped(field, "an integer")),
        }
    }

    /// A timestamp in epoch seconds, returned as epoch milliseconds.
    pub fn opt_timestamp_ms(&self, field: &str) -> Result<Option<i64>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e13 => Ok(Some((f * 1000.0).round() as i64)),
                _ => Err(self.mistyped(field, "a timestamp in epoch seconds")),
            },
            Some(_) => Err(self.mistyped(field, "a timestamp in epoch seconds")),
        }
    }

    pub fn opt_obj(&self, field: &str) -> Result<Option<Req<'a>>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(obj)) => Ok(Some(Req {
                obj,
                path: self.field_path(field),
            })),
            Some(_) => Err(self.mistyped(field, "an object")),
        }
    }

    pub fn obj(&self, field: &str) -> Result<Req<'a>, Fault> {
        self.opt_obj(field)?.ok_or_else(|| self.missing(field))
    }

    /// An optional list of objects; each element gets its index in the path.
    pub fn opt_obj_list(&self, field: &str) -> Result<Vec<Req<'a>>, Fault> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(obj) => Ok(Req {
                        obj,
                        path: format!("{}.{}", self.field_path(field), i + 1),
                    }),
                    _ => Err(self.mistyped(&format!("{field}.{}", i + 1), "an object")),
                })
                .collect(),
            Some(_) => Err(self.mistyped(field, "a list")),
        }
    }

    /// An optional list of tags (at most 5, each at most 256 characters).
    pub fn tag_list(&self, field: &str) -> Result<Option<Vec<String>>, Fault> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > 5 {
                    return Err(Fault::validation(format!(
                        "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to 5",
                        self.field_path(field)
                    )));
                }
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) if s.chars().count() <= NAME_MAX => Ok(s.clone()),
                        _ => Err(Fault::validation(format!(
                            "Value at '{}' must be a list of strings of at most {NAME_MAX} characters",
                            self.field_path(field)
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(_) => Err(self.mistyped(field, "a list")),
        }
    }

    /// `{"name": .., "version": ..}` of a workflow or activity type.
    pub fn type_ref(&self, field: &str) -> Result<(String, String), Fault> {
        let t = self.obj(field)?;
        Ok((
            t.name("name")?.to_string(),
            t.str_max("version", 64)?.to_string(),
        ))
    }

    /// `{"name": ..}` of a task list, optional.
    pub fn opt_task_list(&self, field: &str) -> Result<Option<String>, Fault> {
        match self.opt_obj(field)? {
            None => Ok(None),
            Some(t) => Ok(Some(t.name("name")?.to_string())),
        }
    }

    pub fn task_list(&self, field: &str) -> Result<String, Fault> {
        self.opt_task_list(field)?
            .ok_or_else(|| self.missing(field))
    }

    /// A task priority: a string holding an integer in Java's int range.
    pub fn opt_priority(&self, field: &str) -> Result<Option<i64>, Fault> {
        match self.opt_str_max(field, 11)? {
            None => Ok(None),
            Some(s) => match s.trim().parse::<i32>() {
                Ok(p) => Ok(Some(p as i64)),
                Err(_) => Err(Fault::validation(format!(
                    "Value at '{}' must be an integer between -2147483648 and 2147483647",
                    self.field_path(field)
                ))),
            },
        }
    }

    /// A duration string: whole seconds, or `NONE` when `allow_none`.
    pub fn opt_timeout(&self, field: &str, allow_none: bool) -> Result<Option<Timeout>, Fault> {
        match self.opt_str_max(field, 8)? {
            None => Ok(None),
            Some("NONE") if allow_none => Ok(Some(Timeout::Unlimited)),
            Some(s) => match s.parse::<u64>() {
                Ok(secs) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(Timeout::Secs(secs))),
                _ => Err(Fault::validation(format!(
                    "Value '{s}' at '{}' is not a valid duration: use whole seconds{}",
                    self.field_path(field),
                    if allow_none { " or NONE" } else { "" }
                ))),
            },
        }
    }

    /// Page size: 1..=1000, default 1000.
    pub fn page_size(&self) -> Result<usize, Fault> {
        match self.opt_i64("maximumPageSize")? {
            None | Some(0) => Ok(1000),
            Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
            Some(_) => Err(Fault::validation(
                "1 validation error detected: Value at 'maximumPageSize' failed to satisfy constraint: Member must have value between 0 and 1000",
            )),
        }
    }

    /// Enumerated string members, e.g. registrationStatus.
    pub fn opt_enum(
        &self,
        field: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, Fault> {
        match self.opt_str_max(field, 64)? {
            None => Ok(None),
            Some(s) => allowed
                .iter()
                .find(|a| **a == s)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    Fault::validation(format!(
                        "1 validation error detected: Value '{s}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        self.field_path(field),
                        allowed.join(", ")
                    ))
                }),
        }
    }

    pub fn enum_req(&self, field: &str, allowed: &[&'static str]) -> Result<&'static str, Fault> {
        self.opt_enum(field, allowed)?
            .ok_or_else(|| self.missing(field))
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

pub const CHILD_POLICIES: &[&str] = &["TERMINATE", "REQUEST_CANCEL", "ABANDON"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_nested_fields_in_errors() {
        let v = json!({"workflowType": {"name": "x"}});
        let r = Req::root(&v).unwrap();
        let err = r.type_ref("workflowType").unwrap_err();
        assert!(
            err.message.contains("workflowType.version"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rejects_oversized_payload_and_bad_timeouts() {
        let big = "x".repeat(PAYLOAD_MAX + 1);
        let v = json!({"input": big, "t": "12a", "n": "NONE"});
        let r = Req::root(&v).unwrap();
        assert!(r.payload("input").unwrap_err().message.contains("input"));
        assert!(r.opt_timeout("t", true).is_err());
        assert_eq!(r.opt_timeout("n", true).unwrap(), Some(Timeout::Unlimited));
        assert!(r.opt_timeout("n", false).is_err());
    }

    #[test]
    fn parse_rejects_non_objects() {
        assert!(Req::parse(b"[1]").is_err());
        assert!(Req::parse(b"{").is_err());
        assert!(Req::parse(b"").unwrap().is_object());
    }
}
