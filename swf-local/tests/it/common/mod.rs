//! Shared helpers for the swf-local integration tests: start a server on a temporary database,
//! build an `aws-sdk-swf` client for it, and short-hands for decisions and histories. Every wait is
//! bounded by [`bounded`].
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use aws_sdk_swf::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_swf::error::ProvideErrorMetadata;
use aws_sdk_swf::types::*;
use aws_sdk_swf::Client;
use swf_local::{Config, ServerHandle};

pub const DOMAIN: &str = "test-domain";
pub const WF: (&str, &str) = ("Flow", "1");
pub const ACT: (&str, &str) = ("Work", "1");
pub const DECIDER_TL: &str = "decider";
pub const WORKER_TL: &str = "worker";

pub struct Env {
    pub server: ServerHandle,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

pub fn client_for(url: &str, key: &str, secret: &str) -> Client {
    let conf = aws_sdk_swf::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .timeout_config(
            aws_sdk_swf::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(75))
                .build(),
        )
        .retry_config(aws_sdk_swf::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), dir.join("swf.db"));
    c.long_poll_timeout = Duration::from_secs(2);
    c
}

pub async fn start_env(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let server = swf_local::start(config).await.expect("server starts");
    let client = client_for(&server.endpoint_url(), "AKIDTEST", "secret");
    Env {
        server,
        client,
        dir,
    }
}

/// A restart would rebuild exactly the state the server is running with.
pub fn assert_replays(env: &Env) {
    let diffs = swf_local::replay_mismatches(&env.server);
    assert!(
        diffs.is_empty(),
        "replay differs from live state:\n{}",
        diffs.join("\n")
    );
}

/// Every wait in the tests goes through this.
pub async fn bounded<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("operation did not finish in time")
}

pub fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

pub fn message<E: ProvideErrorMetadata>(e: &E) -> String {
    e.message().unwrap_or("").to_string()
}

pub fn wf_type() -> WorkflowType {
    WorkflowType::builder()
        .name(WF.0)
        .version(WF.1)
        .build()
        .unwrap()
}

pub fn act_type() -> ActivityType {
    ActivityType::builder()
        .name(ACT.0)
        .version(ACT.1)
        .build()
        .unwrap()
}

pub fn tl(name: &str) -> TaskList {
    TaskList::builder().name(name).build().unwrap()
}

/// Registers the domain, the workflow type (defaults: decider task list, 30 s tasks, 300 s
/// executions, TERMINATE) and the activity type (defaults: worker task list, 30 s / 60 s / 60 s).
pub async fn setup(c: &Client) {
    c.register_domain()
        .name(DOMAIN)
        .workflow_execution_retention_period_in_days("1")
        .send()
        .await
        .unwrap();
    c.register_workflow_type()
        .domain(DOMAIN)
        .name(WF.0)
        .version(WF.1)
        .default_task_list(tl(DECIDER_TL))
        .default_task_start_to_close_timeout("30")
        .default_execution_start_to_close_timeout("300")
        .default_child_policy(ChildPolicy::Terminate)
        .send()
        .await
        .unwrap();
    c.register_activity_type()
        .domain(DOMAIN)
        .name(ACT.0)
        .version(ACT.1)
        .default_task_list(tl(WORKER_TL))
        .default_task_schedule_to_start_timeout("30")
        .default_task_schedule_to_close_timeout("60")
        .default_task_start_to_close_timeout("60")
        .default_task_heartbeat_timeout("NONE")
        .send()
        .await
        .unwrap();
}

pub async fn start_wf(c: &Client, wid: &str) -> String {
    c.start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id(wid)
        .workflow_type(wf_type())
        .input("hello")
        .send()
        .await
        .unwrap()
        .run_id
        .unwrap()
}

pub fn exec(wid: &str, run: &str) -> WorkflowExecution {
    WorkflowExecution::builder()
        .workflow_id(wid)
        .run_id(run)
        .build()
        .unwrap()
}

/// Polls until a decision task arrives (bounded).
pub async fn decision_task(
    c: &Client,
) -> aws_sdk_swf::operation::poll_for_decision_task::PollForDecisionTaskOutput {
    bounded(30, async {
        loop {
            let out = c
                .poll_for_decision_task()
                .domain(DOMAIN)
                .task_list(tl(DECIDER_TL))
                .identity("decider-1")
                .send()
                .await
                .unwrap();
            if !out.task_token().is_empty() {
                return out;
            }
        }
    })
    .await
}

pub async fn activity_task(
    c: &Client,
) -> aws_sdk_swf::operation::poll_for_activity_task::PollForActivityTaskOutput {
    bounded(30, async {
        loop {
            let out = c
                .poll_for_activity_task()
                .domain(DOMAIN)
                .task_list(tl(WORKER_TL))
                .identity("worker-1")
                .send()
                .await
                .unwrap();
            if !out.task_token().is_empty() {
                return out;
            }
        }
    })
    .await
}

pub async fn decide(c: &Client, token: &str, decisions: Vec<Decision>) {
    c.respond_decision_task_completed()
        .task_token(token)
        .set_decisions(Some(decisions))
        .send()
        .await
        .unwrap();
}

pub fn schedule(id: &str) -> Decision {
    schedule_with(id, |b| b)
}

pub fn schedule_with(
    id: &str,
    f: impl FnOnce(
        aws_sdk_swf::types::builders::ScheduleActivityTaskDecisionAttributesBuilder,
    ) -> aws_sdk_swf::types::builders::ScheduleActivityTaskDecisionAttributesBuilder,
) -> Decision {
    let attrs = f(ScheduleActivityTaskDecisionAttributes::builder()
        .activity_type(act_type())
        .activity_id(id)
        .input(format!("input-{id}")))
    .build()
    .unwrap();
    Decision::builder()
        .decision_type(DecisionType::ScheduleActivityTask)
        .schedule_activity_task_decision_attributes(attrs)
        .build()
        .unwrap()
}

pub fn complete(result: &str) -> Decision {
    Decision::builder()
        .decision_type(DecisionType::CompleteWorkflowExecution)
        .complete_workflow_execution_decision_attributes(
            CompleteWorkflowExecutionDecisionAttributes::builder()
                .result(result)
                .build(),
        )
        .build()
        .unwrap()
}

pub fn start_timer(id: &str, secs: u32) -> Decision {
    Decision::builder()
        .decision_type(DecisionType::StartTimer)
        .start_timer_decision_attributes(
            StartTimerDecisionAttributes::builder()
                .timer_id(id)
                .start_to_fire_timeout(secs.to_string())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

pub async fn history(c: &Client, wid: &str, run: &str) -> Vec<HistoryEvent> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .get_workflow_execution_history()
            .domain(DOMAIN)
            .execution(exec(wid, run))
            .set_next_page_token(token.clone())
            .send()
            .await
            .unwrap();
        events.extend(out.events().iter().cloned());
        token = out.next_page_token().map(str::to_string);
        if token.is_none() {
            return events;
        }
    }
}

pub fn kinds(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.event_type().as_str().to_string())
        .collect()
}

/// Waits until the history contains an event of `kind`; returns the whole history.
pub async fn wait_for_event(
    c: &Client,
    wid: &str,
    run: &str,
    kind: &str,
    secs: u64,
) -> Vec<HistoryEvent> {
    bounded(secs, async {
        loop {
            let h = history(c, wid, run).await;
            if kinds(&h).iter().any(|k| k == kind) {
                return h;
            }
            // History has no long poll; a short pause between reads keeps this from spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Sends one request over a plain TCP connection, bypassing the SDK: returns (status, body).
pub async fn raw_post(
    addr: std::net::SocketAddr,
    target: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    raw_request(addr, "POST", target, body).await
}

pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    target: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(30, async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{method} / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(t) = target {
            head.push_str(&format!("X-Amz-Target: {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (and close) before reading a too-large body; that is fine.
        let _ = s.write_all(body).await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
        (status, body)
    })
    .await
}

/// The history as raw JSON events, to check members the typed SDK view makes verbose.
pub async fn raw_history(
    addr: std::net::SocketAddr,
    wid: &str,
    run: &str,
) -> Vec<serde_json::Value> {
    let body =
        serde_json::json!({"domain": DOMAIN, "execution": {"workflowId": wid, "runId": run}});
    let (status, text) = raw_post(
        addr,
        Some("SimpleWorkflowService.GetWorkflowExecutionHistory"),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["events"].as_array().unwrap().clone()
}

/// Attributes of the first raw event of `kind`.
pub fn attrs_of(events: &[serde_json::Value], kind: &str) -> serde_json::Value {
    let key = format!(
        "{}{}EventAttributes",
        kind[..1].to_ascii_lowercase(),
        &kind[1..]
    );
    events
        .iter()
        .find(|e| e["eventType"] == kind)
        .map(|e| e[key.as_str()].clone())
        .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
}

pub async fn decision_task_on(
    c: &Client,
    list: &str,
) -> aws_sdk_swf::operation::poll_for_decision_task::PollForDecisionTaskOutput {
    bounded(30, async {
        loop {
            let out = c
                .poll_for_decision_task()
                .domain(DOMAIN)
                .task_list(tl(list))
                .send()
                .await
                .unwrap();
            if !out.task_token().is_empty() {
                return out;
            }
        }
    })
    .await
}
