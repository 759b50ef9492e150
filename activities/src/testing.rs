//! A [`TaskCtx`] for tests: fixed ids, a chosen attempt, recorded heartbeats and started
//! workflows, and a cancellation token the test controls.
//!
//! It lives outside `#[cfg(test)]` so the runtime's tests can drive handlers without a worker.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::handler::{StartWorkflowError, TaskCtx};

/// One call to [`TaskCtx::start_workflow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedWorkflow {
    pub workflow_type: String,
    pub workflow_id: String,
    pub input: String,
}

/// A task context that records what the handler did.
pub struct TestCtx {
    media_uuid: String,
    user_uuid: String,
    attempt: u32,
    token: CancellationToken,
    heartbeats: Mutex<Vec<String>>,
    started: Mutex<Vec<StartedWorkflow>>,
    start_answer: Mutex<Option<StartWorkflowError>>,
}

impl TestCtx {
    pub fn new(media_uuid: &str, attempt: u32) -> TestCtx {
        TestCtx {
            media_uuid: media_uuid.to_string(),
            user_uuid: "test-user".to_string(),
            attempt,
            token: CancellationToken::new(),
            heartbeats: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
            start_answer: Mutex::new(None),
        }
    }

    /// Makes every later `start_workflow` call fail with `err`.
    pub fn fail_starts_with(&self, err: StartWorkflowError) {
        *self.start_answer.lock().expect("lock") = Some(err);
    }

    /// Heartbeat details in the order they were sent (`""` for a heartbeat without details).
    pub fn heartbeats(&self) -> Vec<String> {
        self.heartbeats.lock().expect("lock").clone()
    }

    pub fn started(&self) -> Vec<StartedWorkflow> {
        self.started.lock().expect("lock").clone()
    }
}

#[async_trait]
impl TaskCtx for TestCtx {
    fn workflow_id(&self) -> &str {
        &self.media_uuid
    }
    fn run_id(&self) -> &str {
        "test-run"
    }
    fn activity_id(&self) -> &str {
        "test-activity"
    }
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn media_uuid(&self) -> &str {
        &self.media_uuid
    }
    fn user_uuid(&self) -> &str {
        &self.user_uuid
    }
    fn task_token(&self) -> &str {
        "test-token"
    }
    async fn heartbeat(&self, details: Option<String>) {
        self.heartbeats
            .lock()
            .expect("lock")
            .push(details.unwrap_or_default());
    }
    fn cancelled(&self) -> CancellationToken {
        self.token.clone()
    }
    async fn start_workflow(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: String,
    ) -> Result<String, StartWorkflowError> {
        if let Some(err) = self.start_answer.lock().expect("lock").clone() {
            return Err(err);
        }
        let mut started = self.started.lock().expect("lock");
        started.push(StartedWorkflow {
            workflow_type: workflow_type.to_string(),
            workflow_id: workflow_id.to_string(),
            input,
        });
        Ok(format!("test-run-{}", started.len()))
    }
}
