//! Log and span field names, defined once.
//!
//! Every span opened for a task and every log line emitted inside it uses these keys, so the
//! Logstash template, Kibana queries and `swf-runtime logs` can rely on them.

pub const WORKFLOW_ID: &str = "workflow_id";
pub const RUN_ID: &str = "run_id";
pub const MEDIA_UUID: &str = "media_uuid";
pub const USER_UUID: &str = "user_uuid";
pub const WORKFLOW_TYPE: &str = "workflow_type";
pub const ACTIVITY_TYPE: &str = "activity_type";
pub const ACTIVITY_ID: &str = "activity_id";
pub const TASK_LIST: &str = "task_list";
pub const ATTEMPT: &str = "attempt";
pub const DURATION_MS: &str = "duration_ms";
pub const OUTCOME: &str = "outcome";
pub const ERROR: &str = "error";
/// A short hash of a task token: tokens themselves never reach the logs.
pub const TASK_TOKEN_HASH: &str = "task_token_hash";
pub const STAGE: &str = "stage";

/// ECS-style keys of every JSON log line.
pub const TIMESTAMP: &str = "@timestamp";
pub const LOG_LEVEL: &str = "log.level";
pub const MESSAGE: &str = "message";
pub const SERVICE_NAME: &str = "service.name";
pub const HOST_NAME: &str = "host.name";
pub const LOG_LOGGER: &str = "log.logger";
pub const TRACE_ID: &str = "trace.id";
pub const SPAN_ID: &str = "span.id";

/// The ids every line emitted while handling a task must carry.
pub const TASK_IDENTITY: &[&str] = &[WORKFLOW_ID, RUN_ID, MEDIA_UUID, USER_UUID, WORKFLOW_TYPE];
/// The extra ids of activity work.
pub const ACTIVITY_IDENTITY: &[&str] = &[ACTIVITY_TYPE, ACTIVITY_ID, ATTEMPT, TASK_LIST];
