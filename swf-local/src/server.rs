//! HTTP front end and background loops.
//!
//! One axum fallback handler takes every request: it bounds the body at 1 MB, checks the SigV4
//! signature when credentials are configured, decodes the JSON 1.0 envelope, runs the action against
//! the shared [`State`] under its mutex, waits until the resulting writes are committed and only then
//! answers. Long polls park in the task list's queue of waiters (no polling loop): the request that
//! queues the next task takes it for the oldest waiter in the same critical section, and the
//! waiter is answered once that start is committed; otherwise the poll times out or the server
//! shuts down. Two background tasks run beside the handler: the deadline loop, which sleeps until
//! the earliest stored deadline (or until woken by an earlier one) and fires timeouts and timers,
//! and the retention loop, which purges expired executions.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::engine::{empty_activity_task, empty_decision_task};
use crate::fault::Fault;
use crate::input::Req;
use crate::state::{now_ms, persist_fault, Handoff, Kind, State};

/// Largest accepted request body, as SWF.
pub const MAX_BODY: usize = 1024 * 1024;
const TARGET_PREFIX: &str = "SimpleWorkflowService.";

pub struct App {
    pub state: Mutex<State>,
    pub long_poll_timeout: Duration,
    pub credentials: Option<(String, String)>,
    pub retention_check_interval: Duration,
    pub cancel: CancellationToken,
    pub timer_notify: Arc<Notify>,
}

impl App {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied request behind that later
        // requests should not see (requests validate before they mutate), so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(app)
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn answer(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

/// A unique request id without a random-number syscall per answer: a per-process random prefix
/// and a counter.
fn request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..20].to_string());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n:012x}")
}

fn fault_response(f: Fault) -> Response {
    answer(f.status, f.body())
}

async fn handle(AxumState(app): AxumState<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return fault_response(Fault::validation(format!(
                "Request body is larger than the limit of {MAX_BODY} bytes"
            )))
        }
    };
    if parts.method != Method::POST {
        return fault_response(Fault::unknown_operation(
            "Only POST requests with the JSON 1.0 protocol are accepted",
        ));
    }
    if let Some(creds) = &app.credentials {
        if let Err(f) = crate::sigv4::verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &bytes,
            creds,
            now_ms() / 1000,
        ) {
            return fault_response(f);
        }
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(action) = target.strip_prefix(TARGET_PREFIX) else {
        return fault_response(Fault::unknown_operation(format!(
            "Missing or unknown X-Amz-Target header '{target}': expected {TARGET_PREFIX}<Action>"
        )));
    };
    match dispatch(&app, action, &bytes).await {
        Ok(body) => answer(StatusCode::OK, body),
        Err(f) => fault_response(f),
    }
}

async fn committed(rx: Option<oneshot::Receiver<Result<(), String>>>) -> Result<(), Fault> {
    let Some(rx) = rx else {
        return Ok(());
    };
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(persist_fault(err)),
        Err(_) => Err(Fault::internal("The database writer stopped")),
    }
}

/// Runs one action. Public for the request decoder's property test.
pub async fn dispatch(app: &App, action: &str, body: &[u8]) -> Result<String, Fault> {
    let value = Req::parse(body)?;
    let r = Req::root(&value)?;
    match action {
        "PollForDecisionTask" => return poll(app, &value, &r, false).await,
        "PollForActivityTask" => return poll(app, &value, &r, true).await,
        _ => {}
    }
    let (result, rx) = {
        let mut st = app.lock();
        let result = run_action(&mut st, action, &r, now_ms());
        // Commit even after an error: nothing should be mutated then, but memory and disk must
        // never disagree if something was.
        (result, st.commit_and_hand_off())
    };
    committed(rx).await?;
    result
}

fn run_action(st: &mut State, action: &str, r: &Req, now: i64) -> Result<String, Fault> {
    let v = match action {
        "RegisterDomain" => st.register_domain(r),
        "DescribeDomain" => st.describe_domain(r),
        "ListDomains" => st.list_domains(r),
        "DeprecateDomain" => st.deprecate_domain(r),
        "UndeprecateDomain" => st.undeprecate_domain(r),
        "RegisterWorkflowType" => st.register_type(Kind::Workflow, r, now),
        "RegisterActivityType" => st.register_type(Kind::Activity, r, now),
        "DescribeWorkflowType" => st.describe_type(Kind::Workflow, r),
        "DescribeActivityType" => st.describe_type(Kind::Activity, r),
        "ListWorkflowTypes" => st.list_types(Kind::Workflow, r),
        "ListActivityTypes" => st.list_types(Kind::Activity, r),
        "DeprecateWorkflowType" => st.deprecate_type(Kind::Workflow, r, now),
        "DeprecateActivityType" => st.deprecate_type(Kind::Activity, r, now),
        "UndeprecateWorkflowType" => st.undeprecate_type(Kind::Workflow, r),
        "UndeprecateActivityType" => st.undeprecate_type(Kind::Activity, r),
        "StartWorkflowExecution" => st.start_workflow(r, now),
        "RespondDecisionTaskCompleted" => st.respond_decision(r, now),
        "RecordActivityTaskHeartbeat" => st.heartbeat(r, now),
        "RespondActivityTaskCompleted" => st.respond_activity(r, "completed", now),
        "RespondActivityTaskFailed" => st.respond_activity(r, "failed", now),
        "RespondActivityTaskCanceled" => st.respond_activity(r, "canceled", now),
        "SignalWorkflowExecution" => st.signal_workflow(r, now),
        "RequestCancelWorkflowExecution" => st.request_cancel_workflow(r, now),
        "TerminateWorkflowExecution" => st.terminate_workflow(r, now),
        "GetWorkflowExecutionHistory" => return st.get_history(r),
        "DescribeWorkflowExecution" => st.describe_workflow(r),
        "ListOpenWorkflowExecutions" => st.list_executions(r, true),
        "ListClosedWorkflowExecutions" => st.list_executions(r, false),
        "CountOpenWorkflowExecutions" => st.count_executions(r, true),
        "CountClosedWorkflowExecutions" => st.count_executions(r, false),
        "CountPendingDecisionTasks" => st.count_pending(r, false),
        "CountPendingActivityTasks" => st.count_pending(r, true),
        _ => {
            return Err(Fault::unknown_operation(format!(
                "Action {action} is not supported by swf-local"
            )))
        }
    }?;
    Ok(v.to_string())
}

async fn poll(app: &App, request: &Value, r: &Req<'_>, activity: bool) -> Result<String, Fault> {
    {
        let st = app.lock();
        if activity {
            st.validate_activity_poll(r)?;
        } else if let Some(page) = st.decision_poll_page(r)? {
            return Ok(page);
        }
    }
    let key = (
        r.name("domain")?.to_string(),
        activity,
        r.task_list("taskList")?,
    );
    let empty = || {
        Ok(if activity {
            empty_activity_task()
        } else {
            empty_decision_task()
        })
    };
    let deadline = tokio::time::Instant::now() + app.long_poll_timeout;
    let (got, rx, parked) = {
        let mut st = app.lock();
        let now = now_ms();
        let got = st.take_task(r, &key, now);
        let rx = st.commit_and_hand_off();
        // Parked under the same lock that found the queue empty, so no task can slip between.
        let parked = matches!(got, Ok(None)).then(|| st.park(key.clone(), request.clone()));
        (got, rx, parked)
    };
    committed(rx).await?;
    if let Some(body) = got? {
        return Ok(body);
    }
    let Some((id, mut handoff)) = parked else {
        return empty();
    };
    tokio::select! {
        got = &mut handoff => return answer_handoff(got, empty),
        _ = tokio::time::sleep_until(deadline) => {}
        _ = app.cancel.cancelled() => {}
    }
    if app.lock().unpark(&key, id) {
        return empty();
    }
    // A task was handed over just as the poll gave up: it is ours, answer with it.
    answer_handoff(handoff.await, empty)
}

fn answer_handoff(
    got: Result<Handoff, oneshot::error::RecvError>,
    empty: impl Fn() -> Result<String, Fault>,
) -> Result<String, Fault> {
    // A dropped sender means the state (and the server) is going away.
    let Ok(got) = got else {
        return empty();
    };
    match got? {
        Some(body) => Ok(body),
        None => empty(),
    }
}

/// Fires timeouts and timers at their deadlines until cancelled.
pub async fn deadline_loop(app: Arc<App>) {
    loop {
        let next = {
            let mut st = app.lock();
            st.fire_due(now_ms());
            // Nobody waits for this commit: the events are visible to the next request, which
            // commits after it in queue order.
            drop(st.commit_and_hand_off());
            st.deadlines.first().map(|d| d.0)
        };
        let wait = next.map_or(Duration::from_secs(3600), |d| {
            Duration::from_millis((d - now_ms()).max(0) as u64)
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.timer_notify.notified() => {}
            _ = app.cancel.cancelled() => return,
        }
    }
}

/// Purges closed executions past their domain's retention period until cancelled.
pub async fn retention_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.retention_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.cancel.cancelled() => return,
        }
        let rx = {
            let mut st = app.lock();
            let purged = st.purge_expired(now_ms());
            if purged > 0 {
                tracing::info!(
                    executions = purged,
                    "Purged closed executions past their retention period."
                );
            }
            st.commit_and_hand_off()
        };
        if let Err(err) = committed(rx).await {
            tracing::warn!(error = %err, "Committing the retention purge failed.");
        }
    }
}
