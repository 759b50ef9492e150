//! The envelope the decider wraps around every activity input, so the worker knows the task's
//! identity (media, user, workflow type, attempt) and its trace without another SWF call.
//!
//! SWF hands an activity worker only the workflow execution and the activity id; everything else
//! an operator wants on a log line travels here. A task whose input is not an envelope (one put on
//! a task list by hand with `swf-runtime inject`, or by another tool) still runs: the identity
//! fields are then empty and the raw input is passed through untouched.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Identity carried with every activity task the decider schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskContext {
    #[serde(default)]
    pub media_uuid: String,
    #[serde(default)]
    pub user_uuid: String,
    #[serde(default)]
    pub workflow_type: String,
    /// The stage name in the workflow definition.
    #[serde(default)]
    pub stage: String,
    /// 1 for the first attempt of a stage.
    #[serde(default = "one")]
    pub attempt: u32,
}

fn one() -> u32 {
    1
}

impl Default for TaskContext {
    /// The context of a task that came without an envelope: no ids, first attempt.
    fn default() -> Self {
        TaskContext {
            media_uuid: String::new(),
            user_uuid: String::new(),
            workflow_type: String::new(),
            stage: String::new(),
            attempt: 1,
        }
    }
}

/// `{"swf_runtime": {...context...}, "input": <the stage's own input>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub swf_runtime: TaskContext,
    pub input: serde_json::Value,
}

impl Envelope {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("an envelope of JSON values always serialises")
    }

    /// Splits an activity input into its context and the stage input. Input that is not an
    /// envelope yields a default context and the raw input (as a JSON value when it parses,
    /// else as a JSON string).
    pub fn decode(raw: Option<&str>) -> (TaskContext, serde_json::Value) {
        let Some(raw) = raw else {
            return (TaskContext::default(), serde_json::Value::Null);
        };
        if let Ok(env) = serde_json::from_str::<Envelope>(raw) {
            return (env.swf_runtime, env.input);
        }
        let value = serde_json::from_str(raw)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
        (TaskContext::default(), value)
    }
}

/// The trace id of a workflow execution and the span id of its root span, both derived from its
/// run id (one SHA-256: the trace id is its first 16 bytes, the root span id the next 8), so every
/// process on every host that touches the execution puts its spans in the same trace, under the
/// same root, without passing anything around.
pub fn execution_ids(run_id: &str) -> ([u8; 16], [u8; 8]) {
    let digest = Sha256::digest(run_id.as_bytes());
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&digest[..16]);
    if trace == [0u8; 16] {
        trace[15] = 1; // an all-zero id is invalid in OTLP
    }
    let mut root = [0u8; 8];
    root.copy_from_slice(&digest[16..24]);
    if root == [0u8; 8] {
        root[7] = 1;
    }
    (trace, root)
}

/// The trace id of a workflow execution (see [`execution_ids`]).
pub fn trace_id_for_run(run_id: &str) -> [u8; 16] {
    execution_ids(run_id).0
}

/// The span id of the execution's root span (exported by the decider that closes the execution);
/// every decision and activity span of the execution is its child (see [`execution_ids`]).
pub fn root_span_id_for_run(run_id: &str) -> [u8; 8] {
    execution_ids(run_id).1
}

/// A short, stable hash of a task token for logs: tokens themselves are credentials for the task
/// and never reach a log line.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_raw_input_passes_through() {
        let env = Envelope {
            swf_runtime: TaskContext {
                media_uuid: "m1".into(),
                user_uuid: "u1".into(),
                workflow_type: "VideoProcessing".into(),
                stage: "transcode".into(),
                attempt: 2,
            },
            input: serde_json::json!({"k": 1}),
        };
        let (ctx, input) = Envelope::decode(Some(&env.encode()));
        assert_eq!(ctx, env.swf_runtime);
        assert_eq!(input, serde_json::json!({"k": 1}));

        let (ctx, input) = Envelope::decode(Some("{\"media_uuid\": \"x\"}"));
        assert_eq!(ctx, TaskContext::default());
        assert_eq!(
            ctx.attempt, 1,
            "a task without an envelope is a first attempt"
        );
        assert_eq!(input, serde_json::json!({"media_uuid": "x"}));
        let (_, input) = Envelope::decode(Some("not json"));
        assert_eq!(input, serde_json::json!("not json"));
    }

    #[test]
    fn trace_ids_are_stable_and_distinct() {
        assert_eq!(trace_id_for_run("r1"), trace_id_for_run("r1"));
        assert_ne!(trace_id_for_run("r1"), trace_id_for_run("r2"));
        assert_eq!(token_hash("abc").len(), 12);
    }

    /// Hosts running different versions must derive the same ids for an execution, or its trace
    /// falls apart: the derivation is pinned to known values (SHA-256 of the run id, bytes 0-15
    /// and 16-23).
    #[test]
    fn execution_ids_are_pinned_to_the_run_id_digest() {
        let run_id = "22zFv0a2Ik3dmGeXcAFYfLzP3aHNYLMMGvL9ItCPvXeQY=";
        let (trace, root) = execution_ids(run_id);
        assert_eq!(hex::encode(trace), "653308da7a8893cfaa0449a88febcbd4");
        assert_eq!(hex::encode(root), "65041de0065eabbf");
        assert_eq!(trace_id_for_run(run_id), trace);
        assert_eq!(root_span_id_for_run(run_id), root);
    }
}
