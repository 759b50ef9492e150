//! The execution engine: starting executions, handing out and answering tasks, applying decisions,
//! and firing timeouts and timers.
//!
//! Everything here runs under the state mutex and is synchronous. Each operation validates its input
//! first, then appends history events through [`State::push`] (which also enforces the history
//! limit) and updates the execution's mutable state. Cross-execution effects (children, signals,
//! cancel requests, parent notification) are applied in the same critical section, so they commit
//! together with the request that caused them.

use serde_json::{json, Value};

use crate::fault::Fault;
use crate::input::{Req, Timeout, NAME_MAX, REASON_MAX, TOKEN_MAX};
use crate::state::*;

/// How a closed execution ended, as reported to its parent.
enum Outcome {
    Completed(Option<String>),
    Failed(Option<String>, Option<String>),
    Canceled(Option<String>),
    TimedOut,
    Terminated,
    ContinuedAsNew,
}

/// What a new execution is asked for, before type defaults apply.
pub struct StartSpec {
    pub domain: String,
    pub workflow_id: String,
    pub workflow_type: (String, String),
    pub task_list: Option<String>,
    pub priority: Option<i64>,
    pub input: Option<String>,
    pub exec_timeout: Option<Timeout>,
    pub task_timeout: Option<Timeout>,
    pub child_policy: Option<String>,
    pub tag_list: Vec<String>,
    pub lambda_role: Option<String>,
}

/// A start request with type defaults applied.
struct Resolved {
    spec: StartSpec,
    task_list: String,
    priority: i64,
    exec_timeout: Timeout,
    task_timeout: Timeout,
    child_policy: String,
}

enum Decision {
    ScheduleActivity {
        activity_type: (String, String),
        activity_id: String,
        control: Option<String>,
        input: Option<String>,
        task_list: Option<String>,
        priority: Option<i64>,
        schedule_to_close: Option<Timeout>,
        schedule_to_start: Option<Timeout>,
        start_to_close: Option<Timeout>,
        heartbeat: Option<Timeout>,
    },
    RequestCancelActivity {
        activity_id: String,
    },
    Complete {
        result: Option<String>,
    },
    Fail {
        reason: Option<String>,
        details: Option<String>,
    },
    Cancel {
        details: Option<String>,
    },
    ContinueAsNew {
        input: Option<String>,
        exec_timeout: Option<Timeout>,
        task_list: Option<String>,
        priority: Option<i64>,
        task_timeout: Option<Timeout>,
        child_policy: Option<String>,
        tag_list: Vec<String>,
        version: Option<String>,
        lambda_role: Option<String>,
    },
    RecordMarker {
        name: String,
        details: Option<String>,
    },
    StartTimer {
        timer_id: String,
        control: Option<String>,
        secs: u64,
    },
    CancelTimer {
        timer_id: String,
    },
    SignalExternal {
        workflow_id: String,
        run_id: Option<String>,
        signal_name: String,
        input: Option<String>,
        control: Option<String>,
    },
    RequestCancelExternal {
        workflow_id: String,
        run_id: Option<String>,
        control: Option<String>,
    },
    StartChild {
        spec: StartSpec,
        control: Option<String>,
    },
}

impl Decision {
    fn closes(&self) -> bool {
        matches!(
            self,
            Decision::Complete { .. }
                | Decision::Fail { .. }
                | Decision::Cancel { .. }
                | Decision::ContinueAsNew { .. }
        )
    }
}

fn s(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

/// Inserts `key: value` only when there is a value, as SWF omits absent members.
fn put<T: serde::Serialize>(v: &mut Value, key: &str, value: Option<T>) {
    if let Some(x) = value {
        v[key] = json!(x);
    }
}

fn parse_decisions(r: &Req, domain: &str) -> Result<Vec<Decision>, Fault> {
    let list = r.opt_obj_list("decisions")?;
    let mut out = Vec::with_capacity(list.len());
    for d in &list {
        let kind = d.enum_req(
            "decisionType",
            &[
                "ScheduleActivityTask",
                "RequestCancelActivityTask",
                "CompleteWorkflowExecution",
                "FailWorkflowExecution",
                "CancelWorkflowExecution",
                "ContinueAsNewWorkflowExecution",
                "RecordMarker",
                "StartTimer",
                "CancelTimer",
                "SignalExternalWorkflowExecution",
                "RequestCancelExternalWorkflowExecution",
                "StartChildWorkflowExecution",
                "ScheduleLambdaFunction",
            ],
        )?;
        let mut attr_name = kind[..1].to_ascii_lowercase();
        attr_name.push_str(&kind[1..]);
        attr_name.push_str("DecisionAttributes");
        let empty = json!({});
        let empty_req = Req::root(&empty)?;
        let attrs = d.opt_obj(&attr_name)?;
        let needs = || -> Result<&Req, Fault> {
            attrs.as_ref().ok_or_else(|| {
                Fault::validation(format!(
                    "1 validation error detected: Value null at '{}.{attr_name}' failed to satisfy constraint: Member must not be null",
                    d.path()
                ))
            })
        };
        let decision = match kind {
            "ScheduleActivityTask" => {
                let a = needs()?;
                Decision::ScheduleActivity {
                    activity_type: a.type_ref("activityType")?,
                    activity_id: a.name("activityId")?.to_string(),
                    control: s(a.payload("control")?),
                    input: s(a.payload("input")?),
                    task_list: a.opt_task_list("taskList")?,
                    priority: a.opt_priority("taskPriority")?,
                    schedule_to_close: a.opt_timeout("scheduleToCloseTimeout", true)?,
                    schedule_to_start: a.opt_timeout("scheduleToStartTimeout", true)?,
                    start_to_close: a.opt_timeout("startToCloseTimeout", true)?,
                    heartbeat: a.opt_timeout("heartbeatTimeout", true)?,
                }
            }
            "RequestCancelActivityTask" => Decision::RequestCancelActivity {
                activity_id: needs()?.name("activityId")?.to_string(),
            },
            "CompleteWorkflowExecution" => Decision::Complete {
                result: s(attrs.as_ref().unwrap_or(&empty_req).payload("result")?),
            },
            "FailWorkflowExecution" => {
                let a = attrs.as_ref().unwrap_or(&empty_req);
                Decision::Fail {
                    reason: s(a.opt_str_max("reason", REASON_MAX)?),
                    details: s(a.payload("details")?),
                }
            }
            "CancelWorkflowExecution" => Decision::Cancel {
                details: s(attrs.as_ref().unwrap_or(&empty_req).payload("details")?),
            },
            "ContinueAsNewWorkflowExecution" => {
                let a = attrs.as_ref().unwrap_or(&empty_req);
                Decision::ContinueAsNew {
                    input: s(a.payload("input")?),
                    exec_timeout: a.opt_timeout("executionStartToCloseTimeout", false)?,
                    task_list: a.opt_task_list("taskList")?,
                    priority: a.opt_priority("taskPriority")?,
                    task_timeout: a.opt_timeout("taskStartToCloseTimeout", true)?,
                    child_policy: a
                        .opt_enum("childPolicy", crate::input::CHILD_POLICIES)?
                        .map(str::to_string),
                    tag_list: a.tag_list("tagList")?.unwrap_or_default(),
                    version: s(a.opt_str_max("workflowTypeVersion", 64)?),
                    lambda_role: s(a.opt_str_max("lambdaRole", 1600)?),
                }
            }
            "RecordMarker" => {
                let a = needs()?;
                Decision::RecordMarker {
                    name: a.name("markerName")?.to_string(),
                    details: s(a.payload("details")?),
                }
            }
            "StartTimer" => {
                let a = needs()?;
                let secs = match a.opt_timeout("startToFireTimeout", false)? {
                    Some(Timeout::Secs(secs)) => secs,
                    _ => {
                        return Err(Fault::validation(format!(
                            "1 validation error detected: Value null at '{}.startToFireTimeout' failed to satisfy constraint: Member must not be null",
                            a.path()
                        )))
                    }
                };
                Decision::StartTimer {
                    timer_id: a.name("timerId")?.to_string(),
                    control: s(a.payload("control")?),
                    secs,
                }
            }
            "CancelTimer" => Decision::CancelTimer {
                timer_id: needs()?.name("timerId")?.to_string(),
            },
            "SignalExternalWorkflowExecution" => {
                let a = needs()?;
                Decision::SignalExternal {
                    workflow_id: a.name("workflowId")?.to_string(),
                    run_id: s(a.opt_str_max("runId", 64)?),
                    signal_name: a.name("signalName")?.to_string(),
                    input: s(a.payload("input")?),
                    control: s(a.payload("control")?),
                }
            }
            "RequestCancelExternalWorkflowExecution" => {
                let a = needs()?;
                Decision::RequestCancelExternal {
                    workflow_id: a.name("workflowId")?.to_string(),
                    run_id: s(a.opt_str_max("runId", 64)?),
                    control: s(a.payload("control")?),
                }
            }
            "StartChildWorkflowExecution" => {
                let a = needs()?;
                Decision::StartChild {
                    spec: StartSpec {
                        domain: domain.to_string(),
                        workflow_id: a.name("workflowId")?.to_string(),
                        workflow_type: a.type_ref("workflowType")?,
                        task_list: a.opt_task_list("taskList")?,
                        priority: a.opt_priority("taskPriority")?,
                        input: s(a.payload("input")?),
                        exec_timeout: a.opt_timeout("executionStartToCloseTimeout", false)?,
                        task_timeout: a.opt_timeout("taskStartToCloseTimeout", true)?,
                        child_policy: a
                            .opt_enum("childPolicy", crate::input::CHILD_POLICIES)?
                            .map(str::to_string),
                        tag_list: a.tag_list("tagList")?.unwrap_or_default(),
                        lambda_role: s(a.opt_str_max("lambdaRole", 1600)?),
                    },
                    control: s(a.payload("control")?),
                }
            }
            _ => {
                return Err(Fault::validation(format!(
                    "Decision type {kind} at '{}' is not supported by swf-local",
                    d.path()
                )))
            }
        };
        out.push(decision);
    }
    if let Some(pos) = out.iter().position(Decision::closes) {
        if pos + 1 != out.len() {
            return Err(Fault::validation(
                "A decision that closes the workflow execution must be the last decision of the list",
            ));
        }
    }
    Ok(out)
}

pub fn task_token(kind: char, run: &str, sched: i64, started: i64) -> String {
    b64(&format!("{kind}|{run}|{sched}|{started}"))
}

fn parse_task_token(r: &Req, kind: char) -> Result<(String, i64, i64), Fault> {
    let t = r.str_max("taskToken", TOKEN_MAX)?;
    let bad =
        || Fault::validation("Value at 'taskToken' is not a task token issued by this service");
    let text = unb64(t).ok_or_else(bad)?;
    let mut parts = text.split('|');
    let (Some(k), Some(run), Some(sched), Some(started), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if k.len() != 1 || !k.starts_with(kind) {
        return Err(bad());
    }
    let sched = sched.parse().map_err(|_| bad())?;
    let started = started.parse().map_err(|_| bad())?;
    Ok((run.to_string(), sched, started))
}

fn stale_token() -> Fault {
    Fault::unknown_resource(
        "Unknown task token: the task has timed out, was already answered, or its execution is closed",
    )
}

/// Page token of a history listing: run, events already returned, events in scope, direction.
fn history_token(kind: char, run: &str, offset: usize, upto: usize, reverse: bool) -> String {
    b64(&format!("{kind}|{run}|{offset}|{upto}|{}", reverse as u8))
}

fn parse_history_token(t: &str, kind: char) -> Option<(String, usize, usize, bool)> {
    let text = unb64(t)?;
    let mut p = text.split('|');
    let k = p.next()?;
    if k.len() != 1 || !k.starts_with(kind) {
        return None;
    }
    let run = p.next()?.to_string();
    let offset = p.next()?.parse().ok()?;
    let upto = p.next()?.parse().ok()?;
    let reverse = p.next()? == "1";
    if p.next().is_some() {
        return None;
    }
    Some((run, offset, upto, reverse))
}

impl State {
    // ---- events ----

    /// Appends an event unless the execution is closed; at the history limit the execution is
    /// terminated instead (cause EVENT_LIMIT_EXCEEDED) and 0 is returned.
    pub fn push(&mut self, run: &str, etype: &str, attrs: Value, now: i64) -> i64 {
        let limit = self.event_limit;
        let Some(ex) = self.execs.get(run) else {
            return 0;
        };
        if !ex.is_open() {
            return 0;
        }
        if ex.events.len() + 1 >= limit {
            self.terminate(run, None, None, None, Some("EVENT_LIMIT_EXCEEDED"), now);
            return 0;
        }
        self.append(run, etype, attrs, now)
    }

    fn append(&mut self, run: &str, etype: &str, attrs: Value, now: i64) -> i64 {
        let Some(ex) = self.execs.get_mut(run) else {
            return 0;
        };
        let id = ex.events.len() as i64 + 1;
        let mut key = etype[..1].to_ascii_lowercase();
        key.push_str(&etype[1..]);
        key.push_str("EventAttributes");
        let mut ev = json!({"eventId": id, "eventTimestamp": secs(now), "eventType": etype});
        ev[key] = attrs;
        let text = ev.to_string();
        ex.events.push(text.clone());
        self.pending.push(crate::store::Op::Event {
            run_id: run.to_string(),
            event_id: id,
            json: text,
        });
        self.mark(run);
        id
    }

    fn open_exec(&self, run: &str) -> Option<&Execution> {
        self.execs.get(run).filter(|e| e.is_open())
    }

    fn open_exec_mut(&mut self, run: &str) -> Option<&mut Execution> {
        self.execs.get_mut(run).filter(|e| e.is_open())
    }

    /// Makes sure the decider will be asked: schedules a decision task, or notes that the started
    /// one must be followed by another.
    pub fn schedule_decision(&mut self, run: &str, now: i64) {
        let Some(ex) = self.open_exec_mut(run) else {
            return;
        };
        match ex.decision {
            DecisionState::Scheduled { .. } => return,
            DecisionState::Started { .. } => {
                ex.followup = true;
                self.mark(run);
                return;
            }
            DecisionState::Idle => {}
        }
        let tl = ex.task_list.clone();
        let prio = ex.task_priority;
        let attrs = json!({
            "taskList": {"name": tl},
            "taskPriority": prio.to_string(),
            "startToCloseTimeout": ex.task_timeout.wire(),
        });
        let domain = ex.domain.clone();
        let id = self.push(run, "DecisionTaskScheduled", attrs, now);
        if id == 0 {
            return;
        }
        if let Some(ex) = self.open_exec_mut(run) {
            ex.decision = DecisionState::Scheduled { scheduled_id: id };
            self.enqueue((domain, false, tl), prio, now, run.to_string(), 0);
        }
    }

    // ---- starting and closing executions ----

    fn resolve(&self, spec: StartSpec) -> Result<Resolved, (&'static str, String)> {
        let key = (
            Kind::Workflow,
            spec.domain.clone(),
            spec.workflow_type.0.clone(),
            spec.workflow_type.1.clone(),
        );
        let Some(t) = self.types.get(&key) else {
            return Err((
                "WORKFLOW_TYPE_DOES_NOT_EXIST",
                format!(
                    "Unknown type: WorkflowType=[name={}, version={}]",
                    key.2, key.3
                ),
            ));
        };
        if t.status == DEPRECATED {
            return Err((
                "WORKFLOW_TYPE_DEPRECATED",
                format!(
                    "Type is deprecated: WorkflowType=[name={}, version={}]",
                    key.2, key.3
                ),
            ));
        }
        let undefined = |cause: &'static str, what: &str| {
            (
                cause,
                format!("No {what} was given and the workflow type has no default"),
            )
        };
        let task_list = spec
            .task_list
            .clone()
            .or_else(|| t.default_task_list.clone())
            .ok_or_else(|| undefined("DEFAULT_TASK_LIST_UNDEFINED", "taskList"))?;
        let exec_timeout = spec
            .exec_timeout
            .or(t.default_execution_start_to_close)
            .ok_or_else(|| {
                undefined(
                    "DEFAULT_EXECUTION_START_TO_CLOSE_TIMEOUT_UNDEFINED",
                    "executionStartToCloseTimeout",
                )
            })?;
        let task_timeout = spec
            .task_timeout
            .or(t.default_task_start_to_close)
            .ok_or_else(|| {
                undefined(
                    "DEFAULT_TASK_START_TO_CLOSE_TIMEOUT_UNDEFINED",
                    "taskStartToCloseTimeout",
                )
            })?;
        let child_policy = spec
            .child_policy
            .clone()
            .or_else(|| t.default_child_policy.clone())
            .ok_or_else(|| undefined("DEFAULT_CHILD_POLICY_UNDEFINED", "childPolicy"))?;
        let priority = spec.priority.or(t.default_task_priority).unwrap_or(0);
        let mut spec = spec;
        if spec.lambda_role.is_none() {
            spec.lambda_role = t.default_lambda_role.clone();
        }
        Ok(Resolved {
            spec,
            task_list,
            priority,
            exec_timeout,
            task_timeout,
            child_policy,
        })
    }

    fn create_execution(
        &mut self,
        r: Resolved,
        run_id: String,
        parent: Option<ParentRef>,
        continued_from: Option<String>,
        now: i64,
    ) -> String {
        let ex = Execution {
            domain: r.spec.domain.clone(),
            workflow_id: r.spec.workflow_id.clone(),
            run_id: run_id.clone(),
            workflow_type: r.spec.workflow_type.clone(),
            task_list: r.task_list.clone(),
            task_priority: r.priority,
            exec_timeout: r.exec_timeout,
            task_timeout: r.task_timeout,
            child_policy: r.child_policy.clone(),
            tag_list: r.spec.tag_list.clone(),
            lambda_role: r.spec.lambda_role.clone(),
            start_ms: now,
            close_ms: None,
            close_status: None,
            parent: parent.clone(),
            cancel_requested: false,
            decision: DecisionState::Idle,
            followup: false,
            prev_started: 0,
            activities: Default::default(),
            timers: Default::default(),
            children: Default::default(),
            latest_activity_ms: None,
            latest_context: None,
            events: Vec::new(),
        };
        let mut attrs = json!({
            "executionStartToCloseTimeout": r.exec_timeout.wire(),
            "taskStartToCloseTimeout": r.task_timeout.wire(),
            "childPolicy": r.child_policy,
            "taskList": {"name": r.task_list},
            "taskPriority": r.priority.to_string(),
            "workflowType": ex.type_json(),
        });
        put(&mut attrs, "input", r.spec.input.as_ref());
        if !r.spec.tag_list.is_empty() {
            attrs["tagList"] = json!(r.spec.tag_list);
        }
        put(
            &mut attrs,
            "continuedExecutionRunId",
            continued_from.as_ref(),
        );
        put(&mut attrs, "lambdaRole", r.spec.lambda_role.as_ref());
        if let Some(p) = &parent {
            attrs["parentWorkflowExecution"] =
                json!({"workflowId": p.workflow_id, "runId": p.run_id});
            attrs["parentInitiatedEventId"] = json!(p.initiated_event_id);
        }
        self.open_by_id
            .insert((ex.domain.clone(), ex.workflow_id.clone()), run_id.clone());
        let identity = crate::replay::Identity {
            domain: ex.domain.clone(),
            workflow_id: ex.workflow_id.clone(),
            run_id: run_id.clone(),
        };
        if let Ok(json) = serde_json::to_string(&identity) {
            self.pending.push(crate::store::Op::Execution {
                run_id: run_id.clone(),
                json,
            });
        }
        self.execs.insert(run_id.clone(), ex);
        self.push(&run_id, "WorkflowExecutionStarted", attrs, now);
        self.schedule_decision(&run_id, now);
        run_id
    }

    fn close(&mut self, run: &str, status: &str, outcome: Outcome, policy: &str, now: i64) {
        let Some(ex) = self.execs.get_mut(run) else {
            return;
        };
        ex.close_ms = Some(now);
        ex.close_status = Some(status.to_string());
        ex.decision = DecisionState::Idle;
        ex.followup = false;
        ex.activities.clear();
        ex.timers.clear();
        let children = std::mem::take(&mut ex.children);
        let parent = ex.parent.clone();
        let me = (ex.workflow_id.clone(), ex.run_id.clone(), ex.type_json());
        let key = (ex.domain.clone(), ex.workflow_id.clone());
        if self.open_by_id.get(&key).map(String::as_str) == Some(run) {
            self.open_by_id.remove(&key);
        }
        self.mark(run);
        for child in children.values() {
            match policy {
                "TERMINATE" => self.terminate(
                    &child.run_id,
                    None,
                    None,
                    None,
                    Some("CHILD_POLICY_APPLIED"),
                    now,
                ),
                "REQUEST_CANCEL" => {
                    self.cancel_request(&child.run_id, None, Some("CHILD_POLICY_APPLIED"), now)
                }
                _ => {}
            }
        }
        let Some(p) = parent else {
            return;
        };
        if matches!(outcome, Outcome::ContinuedAsNew) {
            return;
        }
        let Some(pex) = self.open_exec_mut(&p.run_id) else {
            return;
        };
        let Some(child) = pex.children.remove(&p.initiated_event_id) else {
            return;
        };
        let mut attrs = json!({
            "workflowExecution": {"workflowId": me.0, "runId": me.1},
            "workflowType": me.2,
            "initiatedEventId": p.initiated_event_id,
            "startedEventId": child.started_id,
        });
        let etype = match outcome {
            Outcome::Completed(result) => {
                put(&mut attrs, "result", result);
                "ChildWorkflowExecutionCompleted"
            }
            Outcome::Failed(reason, details) => {
                put(&mut attrs, "reason", reason);
                put(&mut attrs, "details", details);
                "ChildWorkflowExecutionFailed"
            }
            Outcome::Canceled(details) => {
                put(&mut attrs, "details", details);
                "ChildWorkflowExecutionCanceled"
            }
            Outcome::TimedOut => {
                attrs["timeoutType"] = json!("START_TO_CLOSE");
                "ChildWorkflowExecutionTimedOut"
            }
            Outcome::Terminated | Outcome::ContinuedAsNew => "ChildWorkflowExecutionTerminated",
        };
        self.mark(&p.run_id);
        self.push(&p.run_id, etype, attrs, now);
        self.schedule_decision(&p.run_id, now);
    }

    pub fn terminate(
        &mut self,
        run: &str,
        reason: Option<String>,
        details: Option<String>,
        policy: Option<String>,
        cause: Option<&str>,
        now: i64,
    ) {
        let Some(ex) = self.open_exec(run) else {
            return;
        };
        let policy = policy.unwrap_or_else(|| ex.child_policy.clone());
        let mut attrs = json!({"childPolicy": policy});
        put(&mut attrs, "reason", reason);
        put(&mut attrs, "details", details);
        put(&mut attrs, "cause", cause);
        // The last slot of a full history is reserved for this event, so it bypasses the limit.
        self.append(run, "WorkflowExecutionTerminated", attrs, now);
        self.close(run, "TERMINATED", Outcome::Terminated, &policy, now);
    }

    fn cancel_request(
        &mut self,
        run: &str,
        external: Option<(String, String, i64)>,
        cause: Option<&str>,
        now: i64,
    ) {
        let mut attrs = json!({});
        if let Some((wid, rid, initiated)) = external {
            attrs["externalWorkflowExecution"] = json!({"workflowId": wid, "runId": rid});
            attrs["externalInitiatedEventId"] = json!(initiated);
        }
        put(&mut attrs, "cause", cause);
        if self.push(run, "WorkflowExecutionCancelRequested", attrs, now) == 0 {
            return;
        }
        if let Some(ex) = self.open_exec_mut(run) {
            ex.cancel_requested = true;
        }
        self.schedule_decision(run, now);
    }

    fn signal(
        &mut self,
        run: &str,
        name: &str,
        input: Option<String>,
        external: Option<(String, String, i64)>,
        now: i64,
    ) {
        let mut attrs = json!({"signalName": name});
        put(&mut attrs, "input", input);
        if let Some((wid, rid, initiated)) = external {
            attrs["externalWorkflowExecution"] = json!({"workflowId": wid, "runId": rid});
            attrs["externalInitiatedEventId"] = json!(initiated);
        }
        self.push(run, "WorkflowExecutionSignaled", attrs, now);
        self.schedule_decision(run, now);
    }

    /// The open run of `workflow_id`, or the given run if it is open.
    fn find_open(&self, domain: &str, workflow_id: &str, run_id: Option<&str>) -> Option<String> {
        let current = self
            .open_by_id
            .get(&(domain.to_string(), workflow_id.to_string()))?;
        match run_id {
            Some(r) if r != current => None,
            _ => Some(current.clone()),
        }
    }

    // ---- API: executions ----

    pub fn start_workflow(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let spec = StartSpec {
            domain: r.name("domain")?.to_string(),
            workflow_id: r.name("workflowId")?.to_string(),
            workflow_type: r.type_ref("workflowType")?,
            task_list: r.opt_task_list("taskList")?,
            priority: r.opt_priority("taskPriority")?,
            input: s(r.payload("input")?),
            exec_timeout: r.opt_timeout("executionStartToCloseTimeout", false)?,
            task_timeout: r.opt_timeout("taskStartToCloseTimeout", true)?,
            child_policy: r
                .opt_enum("childPolicy", crate::input::CHILD_POLICIES)?
                .map(str::to_string),
            tag_list: r.tag_list("tagList")?.unwrap_or_default(),
            lambda_role: s(r.opt_str_max("lambdaRole", 1600)?),
        };
        let d = self.domain(&spec.domain)?;
        if d.status == DEPRECATED {
            return Err(Fault::domain_deprecated(format!(
                "Domain is deprecated: {}",
                spec.domain
            )));
        }
        if self
            .find_open(&spec.domain, &spec.workflow_id, None)
            .is_some()
        {
            return Err(Fault::already_started(format!(
                "An open execution with workflowId {} already exists in domain {}",
                spec.workflow_id, spec.domain
            )));
        }
        let resolved = self.resolve(spec).map_err(|(cause, msg)| match cause {
            "WORKFLOW_TYPE_DOES_NOT_EXIST" => Fault::unknown_resource(msg),
            "WORKFLOW_TYPE_DEPRECATED" => Fault::type_deprecated(msg),
            _ => Fault::default_undefined(msg),
        })?;
        let run =
            self.create_execution(resolved, uuid::Uuid::new_v4().to_string(), None, None, now);
        Ok(json!({"runId": run}))
    }

    pub fn signal_workflow(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let wid = r.name("workflowId")?;
        let run_id = r.opt_str_max("runId", 64)?;
        let name = r.name("signalName")?;
        let input = s(r.payload("input")?);
        self.domain(domain)?;
        let run = self.find_open(domain, wid, run_id).ok_or_else(|| {
            Fault::unknown_resource(format!(
                "Unknown execution: WorkflowExecution=[workflowId={wid}, runId={}]",
                run_id.unwrap_or("")
            ))
        })?;
        self.signal(&run, name, input, None, now);
        Ok(json!({}))
    }

    pub fn request_cancel_workflow(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let wid = r.name("workflowId")?;
        let run_id = r.opt_str_max("runId", 64)?;
        self.domain(domain)?;
        let run = self.find_open(domain, wid, run_id).ok_or_else(|| {
            Fault::unknown_resource(format!(
                "Unknown execution: WorkflowExecution=[workflowId={wid}, runId={}]",
                run_id.unwrap_or("")
            ))
        })?;
        self.cancel_request(&run, None, None, now);
        Ok(json!({}))
    }

    pub fn terminate_workflow(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let wid = r.name("workflowId")?;
        let run_id = r.opt_str_max("runId", 64)?;
        let reason = s(r.opt_str_max("reason", REASON_MAX)?);
        let details = s(r.payload("details")?);
        let policy = r
            .opt_enum("childPolicy", crate::input::CHILD_POLICIES)?
            .map(str::to_string);
        self.domain(domain)?;
        let run = self.find_open(domain, wid, run_id).ok_or_else(|| {
            Fault::unknown_resource(format!(
                "Unknown execution: WorkflowExecution=[workflowId={wid}, runId={}]",
                run_id.unwrap_or("")
            ))
        })?;
        self.terminate(&run, reason, details, policy, None, now);
        Ok(json!({}))
    }

    fn execution_ref(&self, r: &Req) -> Result<&Execution, Fault> {
        let domain = r.name("domain")?;
        let e = r.obj("execution")?;
        let wid = e.name("workflowId")?;
        let run = e.str_max("runId", 64)?;
        self.domain(domain)?;
        self.execs
            .get(run)
            .filter(|x| x.domain == domain && x.workflow_id == wid)
            .ok_or_else(|| {
                Fault::unknown_resource(format!(
                    "Unknown execution: WorkflowExecution=[workflowId={wid}, runId={run}]"
                ))
            })
    }

    pub fn describe_workflow(&self, r: &Req) -> Result<Value, Fault> {
        let ex = self.execution_ref(r)?;
        let mut cfg = json!({
            "taskStartToCloseTimeout": ex.task_timeout.wire(),
            "executionStartToCloseTimeout": ex.exec_timeout.wire(),
            "taskList": {"name": ex.task_list},
            "taskPriority": ex.task_priority.to_string(),
            "childPolicy": ex.child_policy,
        });
        put(&mut cfg, "lambdaRole", ex.lambda_role.as_ref());
        let decisions = match ex.decision {
            DecisionState::Idle => 0,
            _ => 1,
        };
        let mut v = json!({
            "executionInfo": ex.info_json(),
            "executionConfiguration": cfg,
            "openCounts": {
                "openActivityTasks": ex.activities.len(),
                "openDecisionTasks": decisions,
                "openTimers": ex.timers.len(),
                "openChildWorkflowExecutions": ex.children.len(),
                "openLambdaFunctions": 0,
            },
        });
        put(
            &mut v,
            "latestActivityTaskTimestamp",
            ex.latest_activity_ms.map(secs),
        );
        put(&mut v, "latestExecutionContext", ex.latest_context.as_ref());
        Ok(v)
    }

    /// Events `[0, upto)` of `run` paged from `offset`, as a JSON array text, and the next offset.
    fn history_page(
        &self,
        run: &str,
        offset: usize,
        upto: usize,
        size: usize,
        reverse: bool,
    ) -> (String, Option<usize>) {
        let Some(ex) = self.execs.get(run) else {
            return ("[]".to_string(), None);
        };
        let upto = upto.min(ex.events.len());
        let end = offset.saturating_add(size).min(upto);
        let mut text = String::from("[");
        for i in offset..end.max(offset) {
            let idx = if reverse { upto - 1 - i } else { i };
            if i > offset {
                text.push(',');
            }
            text.push_str(&ex.events[idx]);
        }
        text.push(']');
        (text, (end < upto).then_some(end))
    }

    pub fn get_history(&self, r: &Req) -> Result<String, Fault> {
        let ex = self.execution_ref(r)?;
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        let (offset, upto) = match r.opt_str_max("nextPageToken", TOKEN_MAX)? {
            None => (0, ex.events.len()),
            Some(t) => match parse_history_token(t, 'H') {
                Some((run, offset, upto, rev)) if run == ex.run_id && rev == reverse => {
                    (offset, upto)
                }
                _ => {
                    return Err(Fault::validation(
                        "Value at 'nextPageToken' is not a valid page token for this request",
                    ))
                }
            },
        };
        let (events, next) = self.history_page(&ex.run_id, offset, upto, size, reverse);
        let mut out = format!("{{\"events\":{events}");
        if let Some(n) = next {
            out.push_str(&format!(
                ",\"nextPageToken\":\"{}\"",
                history_token('H', &ex.run_id, n, upto, reverse)
            ));
        }
        out.push('}');
        Ok(out)
    }

    // ---- API: decision tasks ----

    fn decision_task_json(
        &self,
        run: &str,
        started_id: i64,
        offset: usize,
        size: usize,
        reverse: bool,
    ) -> String {
        let Some(ex) = self.execs.get(run) else {
            return empty_decision_task();
        };
        let sched = match ex.decision {
            DecisionState::Started {
                scheduled_id,
                started_id: s,
                ..
            } if s == started_id => scheduled_id,
            _ => 0,
        };
        let upto = started_id.max(0) as usize;
        let (events, next) = self.history_page(run, offset, upto, size, reverse);
        let mut out = json!({
            "taskToken": task_token('D', run, sched, started_id),
            "startedEventId": started_id,
            "previousStartedEventId": ex.prev_started,
            "workflowExecution": ex.execution_json(),
            "workflowType": ex.type_json(),
        });
        if let Some(n) = next {
            out["nextPageToken"] = json!(history_token('D', run, n, upto, reverse));
        }
        let mut text = out.to_string();
        text.pop();
        text.push_str(",\"events\":");
        text.push_str(&events);
        text.push('}');
        text
    }

    /// Validates a poll for decision tasks; answers a history page directly when the poll carries
    /// a page token.
    pub fn decision_poll_page(&self, r: &Req) -> Result<Option<String>, Fault> {
        let domain = r.name("domain")?;
        r.task_list("taskList")?;
        r.opt_str_max("identity", NAME_MAX)?;
        r.opt_bool("startAtPreviousStartedEvent")?;
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        self.domain(domain)?;
        let Some(t) = r.opt_str_max("nextPageToken", TOKEN_MAX)? else {
            return Ok(None);
        };
        match parse_history_token(t, 'D') {
            Some((run, offset, upto, rev))
                if rev == reverse && self.execs.get(&run).is_some_and(|e| e.domain == domain) =>
            {
                Ok(Some(self.decision_task_json(
                    &run,
                    upto as i64,
                    offset,
                    size,
                    reverse,
                )))
            }
            _ => Err(Fault::validation(
                "Value at 'nextPageToken' is not a valid page token for this request",
            )),
        }
    }

    /// Hands the next decision task of the task list to a poller, if any.
    pub fn take_decision_task(&mut self, r: &Req, now: i64) -> Result<Option<String>, Fault> {
        let domain = r.name("domain")?.to_string();
        let tl = r.task_list("taskList")?;
        let identity = s(r.opt_str_max("identity", NAME_MAX)?);
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        let from_previous = r.opt_bool("startAtPreviousStartedEvent")?.unwrap_or(false);
        let Some((run, _)) = self.pop_live(&(domain, false, tl)) else {
            return Ok(None);
        };
        let Some(ex) = self.open_exec(&run) else {
            return Ok(None);
        };
        let DecisionState::Scheduled { scheduled_id } = ex.decision else {
            return Ok(None);
        };
        let deadline = ex.task_timeout.deadline(now);
        let prev = ex.prev_started;
        let mut attrs = json!({"scheduledEventId": scheduled_id});
        put(&mut attrs, "identity", identity);
        let started_id = self.push(&run, "DecisionTaskStarted", attrs, now);
        let Some(ex) = self.open_exec_mut(&run) else {
            return Ok(None);
        };
        ex.decision = DecisionState::Started {
            scheduled_id,
            started_id,
            deadline,
        };
        ex.followup = false;
        let offset = if from_previous && prev > 0 && !reverse {
            (prev - 1) as usize
        } else {
            0
        };
        Ok(Some(self.decision_task_json(
            &run, started_id, offset, size, reverse,
        )))
    }

    /// Pops queued items until one is still a live task.
    fn pop_live(&mut self, key: &QueueKey) -> Option<(String, i64)> {
        loop {
            let q = self.queues.get_mut(key)?;
            let (_, item) = q.items.pop_first()?;
            if self.queue_item_live(&item.0, item.1) {
                return Some(item);
            }
        }
    }

    pub fn respond_decision(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let (run, sched, started) = parse_task_token(r, 'D')?;
        let context = s(r.payload("executionContext")?);
        let ex = self.open_exec(&run).ok_or_else(stale_token)?;
        let domain = ex.domain.clone();
        let decisions = parse_decisions(r, &domain)?;
        match ex.decision {
            DecisionState::Started {
                scheduled_id,
                started_id,
                ..
            } if scheduled_id == sched && started_id == started => {}
            _ => return Err(stale_token()),
        }
        let unhandled = ex.followup;
        let mut attrs = json!({"scheduledEventId": sched, "startedEventId": started});
        put(&mut attrs, "executionContext", context.as_ref());
        let completed_id = self.push(&run, "DecisionTaskCompleted", attrs, now);
        if let Some(ex) = self.open_exec_mut(&run) {
            // `followup` stays set when events arrived while the task was started: the decider
            // has not seen them, so another decision task follows this one.
            ex.prev_started = started;
            if context.is_some() {
                ex.latest_context = context;
            }
        }
        for d in decisions {
            if self.open_exec(&run).is_none() {
                break;
            }
            self.apply_decision(&run, d, completed_id, unhandled, now);
        }
        if let Some(ex) = self.open_exec_mut(&run) {
            ex.decision = DecisionState::Idle;
            if std::mem::take(&mut ex.followup) || unhandled {
                self.schedule_decision(&run, now);
            }
        }
        Ok(json!({}))
    }

    fn decision_failed(
        &mut self,
        run: &str,
        etype: &str,
        mut attrs: Value,
        cause: &str,
        completed: i64,
        now: i64,
    ) {
        attrs["cause"] = json!(cause);
        attrs["decisionTaskCompletedEventId"] = json!(completed);
        self.push(run, etype, attrs, now);
        if let Some(ex) = self.open_exec_mut(run) {
            ex.followup = true;
        }
    }

    fn apply_decision(
        &mut self,
        run: &str,
        d: Decision,
        completed: i64,
        unhandled: bool,
        now: i64,
    ) {
        let Some(ex) = self.open_exec(run) else {
            return;
        };
        let domain = ex.domain.clone();
        let me = (ex.workflow_id.clone(), ex.run_id.clone());
        let policy = ex.child_policy.clone();
        let wtype_now = ex.workflow_type.clone();
        let parent_now = ex.parent.clone();
        // A decision that would close the execution while events it has not seen are waiting is
        // refused as SWF does; the decider gets a new decision task with those events.
        if unhandled {
            let refused = match &d {
                Decision::Complete { .. } => Some("CompleteWorkflowExecutionFailed"),
                Decision::Fail { .. } => Some("FailWorkflowExecutionFailed"),
                Decision::Cancel { .. } => Some("CancelWorkflowExecutionFailed"),
                Decision::ContinueAsNew { .. } => Some("ContinueAsNewWorkflowExecutionFailed"),
                _ => None,
            };
            if let Some(event_type) = refused {
                return self.decision_failed(
                    run,
                    event_type,
                    json!({}),
                    "UNHANDLED_DECISION",
                    completed,
                    now,
                );
            }
        }
        match d {
            Decision::ScheduleActivity {
                activity_type,
                activity_id,
                control,
                input,
                task_list,
                priority,
                schedule_to_close,
                schedule_to_start,
                start_to_close,
                heartbeat,
            } => {
                let failed_attrs = json!({
                    "activityType": {"name": activity_type.0, "version": activity_type.1},
                    "activityId": activity_id,
                });
                let key = (
                    Kind::Activity,
                    domain.clone(),
                    activity_type.0.clone(),
                    activity_type.1.clone(),
                );
                let fail = |st: &mut State, cause: &str| {
                    st.decision_failed(
                        run,
                        "ScheduleActivityTaskFailed",
                        failed_attrs.clone(),
                        cause,
                        completed,
                        now,
                    )
                };
                let Some(t) = self.types.get(&key).cloned() else {
                    return fail(self, "ACTIVITY_TYPE_DOES_NOT_EXIST");
                };
                if t.status == DEPRECATED {
                    return fail(self, "ACTIVITY_TYPE_DEPRECATED");
                }
                let in_use = self
                    .open_exec(run)
                    .is_some_and(|ex| ex.activities.values().any(|a| a.activity_id == activity_id));
                if in_use {
                    return fail(self, "ACTIVITY_ID_ALREADY_IN_USE");
                }
                let Some(tl) = task_list.or_else(|| t.default_task_list.clone()) else {
                    return fail(self, "DEFAULT_TASK_LIST_UNDEFINED");
                };
                let Some(s2s) = schedule_to_start.or(t.default_schedule_to_start) else {
                    return fail(self, "DEFAULT_SCHEDULE_TO_START_TIMEOUT_UNDEFINED");
                };
                let Some(s2c) = schedule_to_close.or(t.default_schedule_to_close) else {
                    return fail(self, "DEFAULT_SCHEDULE_TO_CLOSE_TIMEOUT_UNDEFINED");
                };
                let Some(stc) = start_to_close.or(t.default_task_start_to_close) else {
                    return fail(self, "DEFAULT_START_TO_CLOSE_TIMEOUT_UNDEFINED");
                };
                let hb = heartbeat
                    .or(t.default_heartbeat)
                    .unwrap_or(Timeout::Unlimited);
                let prio = priority.or(t.default_task_priority).unwrap_or(0);
                let mut attrs = json!({
                    "activityType": {"name": activity_type.0, "version": activity_type.1},
                    "activityId": activity_id,
                    "scheduleToStartTimeout": s2s.wire(),
                    "scheduleToCloseTimeout": s2c.wire(),
                    "startToCloseTimeout": stc.wire(),
                    "heartbeatTimeout": hb.wire(),
                    "taskList": {"name": tl},
                    "taskPriority": prio.to_string(),
                    "decisionTaskCompletedEventId": completed,
                });
                put(&mut attrs, "input", input.as_ref());
                put(&mut attrs, "control", control.as_ref());
                let id = self.push(run, "ActivityTaskScheduled", attrs, now);
                if id == 0 {
                    return;
                }
                if let Some(ex) = self.open_exec_mut(run) {
                    ex.activities.insert(
                        id,
                        Activity {
                            activity_id,
                            activity_type,
                            input,
                            task_list: tl.clone(),
                            priority: prio,
                            scheduled_ms: now,
                            schedule_to_start: s2s,
                            schedule_to_close: s2c,
                            start_to_close: stc,
                            heartbeat: hb,
                            run: None,
                            cancel_requested_id: None,
                        },
                    );
                    self.enqueue((domain, true, tl), prio, now, run.to_string(), id);
                }
            }
            Decision::RequestCancelActivity { activity_id } => {
                let found = self.open_exec(run).and_then(|ex| {
                    ex.activities
                        .iter()
                        .find(|(_, a)| a.activity_id == activity_id)
                        .map(|(sched, a)| (*sched, a.run.is_some()))
                });
                let Some((sched, started)) = found else {
                    return self.decision_failed(
                        run,
                        "RequestCancelActivityTaskFailed",
                        json!({"activityId": activity_id}),
                        "ACTIVITY_ID_UNKNOWN",
                        completed,
                        now,
                    );
                };
                let req_id = self.push(
                    run,
                    "ActivityTaskCancelRequested",
                    json!({"activityId": activity_id, "decisionTaskCompletedEventId": completed}),
                    now,
                );
                if started {
                    if let Some(a) = self
                        .open_exec_mut(run)
                        .and_then(|e| e.activities.get_mut(&sched))
                    {
                        a.cancel_requested_id = Some(req_id);
                    }
                } else {
                    // Not yet handed to a worker: SWF cancels it on the spot.
                    if let Some(ex) = self.open_exec_mut(run) {
                        ex.activities.remove(&sched);
                    }
                    self.push(
                        run,
                        "ActivityTaskCanceled",
                        json!({"scheduledEventId": sched, "startedEventId": 0, "latestCancelRequestedEventId": req_id}),
                        now,
                    );
                    if let Some(ex) = self.open_exec_mut(run) {
                        ex.followup = true;
                    }
                }
            }
            Decision::Complete { result } => {
                let mut attrs = json!({"decisionTaskCompletedEventId": completed});
                put(&mut attrs, "result", result.as_ref());
                if self.push(run, "WorkflowExecutionCompleted", attrs, now) != 0 {
                    self.close(run, "COMPLETED", Outcome::Completed(result), &policy, now);
                }
            }
            Decision::Fail { reason, details } => {
                let mut attrs = json!({"decisionTaskCompletedEventId": completed});
                put(&mut attrs, "reason", reason.as_ref());
                put(&mut attrs, "details", details.as_ref());
                if self.push(run, "WorkflowExecutionFailed", attrs, now) != 0 {
                    self.close(
                        run,
                        "FAILED",
                        Outcome::Failed(reason, details),
                        &policy,
                        now,
                    );
                }
            }
            Decision::Cancel { details } => {
                let mut attrs = json!({"decisionTaskCompletedEventId": completed});
                put(&mut attrs, "details", details.as_ref());
                if self.push(run, "WorkflowExecutionCanceled", attrs, now) != 0 {
                    self.close(run, "CANCELED", Outcome::Canceled(details), &policy, now);
                }
            }
            Decision::ContinueAsNew {
                input,
                exec_timeout,
                task_list,
                priority,
                task_timeout,
                child_policy,
                tag_list,
                version,
                lambda_role,
            } => {
                let spec = StartSpec {
                    domain: domain.clone(),
                    workflow_id: me.0.clone(),
                    workflow_type: (
                        wtype_now.0.clone(),
                        version.unwrap_or_else(|| wtype_now.1.clone()),
                    ),
                    task_list,
                    priority,
                    input,
                    exec_timeout,
                    task_timeout,
                    child_policy,
                    tag_list,
                    lambda_role,
                };
                let parent = parent_now;
                let resolved = match self.resolve(spec) {
                    Ok(r) => r,
                    Err((cause, _)) => {
                        return self.decision_failed(
                            run,
                            "ContinueAsNewWorkflowExecutionFailed",
                            json!({}),
                            cause,
                            completed,
                            now,
                        )
                    }
                };
                let new_run = uuid::Uuid::new_v4().to_string();
                let mut attrs = json!({
                    "decisionTaskCompletedEventId": completed,
                    "newExecutionRunId": new_run,
                    "executionStartToCloseTimeout": resolved.exec_timeout.wire(),
                    "taskList": {"name": resolved.task_list},
                    "taskPriority": resolved.priority.to_string(),
                    "taskStartToCloseTimeout": resolved.task_timeout.wire(),
                    "childPolicy": resolved.child_policy,
                    "workflowType": {"name": resolved.spec.workflow_type.0, "version": resolved.spec.workflow_type.1},
                });
                put(&mut attrs, "input", resolved.spec.input.as_ref());
                if !resolved.spec.tag_list.is_empty() {
                    attrs["tagList"] = json!(resolved.spec.tag_list);
                }
                put(&mut attrs, "lambdaRole", resolved.spec.lambda_role.as_ref());
                if self.push(run, "WorkflowExecutionContinuedAsNew", attrs, now) == 0 {
                    return;
                }
                self.close(
                    run,
                    "CONTINUED_AS_NEW",
                    Outcome::ContinuedAsNew,
                    &policy,
                    now,
                );
                if let Some(p) = &parent {
                    if let Some(c) = self
                        .open_exec_mut(&p.run_id)
                        .and_then(|pex| pex.children.get_mut(&p.initiated_event_id))
                    {
                        c.run_id = new_run.clone();
                        self.mark(&p.run_id);
                    }
                }
                self.create_execution(resolved, new_run, parent, Some(run.to_string()), now);
            }
            Decision::RecordMarker { name, details } => {
                let mut attrs =
                    json!({"markerName": name, "decisionTaskCompletedEventId": completed});
                put(&mut attrs, "details", details);
                self.push(run, "MarkerRecorded", attrs, now);
            }
            Decision::StartTimer {
                timer_id,
                control,
                secs,
            } => {
                if self
                    .open_exec(run)
                    .is_some_and(|ex| ex.timers.contains_key(&timer_id))
                {
                    return self.decision_failed(
                        run,
                        "StartTimerFailed",
                        json!({"timerId": timer_id}),
                        "TIMER_ID_ALREADY_IN_USE",
                        completed,
                        now,
                    );
                }
                let mut attrs = json!({
                    "timerId": timer_id,
                    "startToFireTimeout": secs.to_string(),
                    "decisionTaskCompletedEventId": completed,
                });
                put(&mut attrs, "control", control);
                let id = self.push(run, "TimerStarted", attrs, now);
                if id == 0 {
                    return;
                }
                if let Some(ex) = self.open_exec_mut(run) {
                    ex.timers.insert(
                        timer_id,
                        TimerState {
                            started_id: id,
                            fire_ms: now.saturating_add((secs as i64).saturating_mul(1000)),
                        },
                    );
                }
            }
            Decision::CancelTimer { timer_id } => {
                let Some(started_id) = self
                    .open_exec(run)
                    .and_then(|ex| ex.timers.get(&timer_id))
                    .map(|t| t.started_id)
                else {
                    return self.decision_failed(
                        run,
                        "CancelTimerFailed",
                        json!({"timerId": timer_id}),
                        "TIMER_ID_UNKNOWN",
                        completed,
                        now,
                    );
                };
                if let Some(ex) = self.open_exec_mut(run) {
                    ex.timers.remove(&timer_id);
                }
                self.push(
                    run,
                    "TimerCanceled",
                    json!({"timerId": timer_id, "startedEventId": started_id, "decisionTaskCompletedEventId": completed}),
                    now,
                );
            }
            Decision::SignalExternal {
                workflow_id,
                run_id,
                signal_name,
                input,
                control,
            } => {
                let mut attrs = json!({
                    "workflowId": workflow_id,
                    "signalName": signal_name,
                    "decisionTaskCompletedEventId": completed,
                });
                put(&mut attrs, "runId", run_id.as_ref());
                put(&mut attrs, "input", input.as_ref());
                put(&mut attrs, "control", control.as_ref());
                let initiated =
                    self.push(run, "SignalExternalWorkflowExecutionInitiated", attrs, now);
                if initiated == 0 {
                    return;
                }
                match self.find_open(&domain, &workflow_id, run_id.as_deref()) {
                    None => {
                        let mut attrs =
                            json!({"workflowId": workflow_id, "initiatedEventId": initiated});
                        put(&mut attrs, "runId", run_id);
                        put(&mut attrs, "control", control);
                        self.decision_failed(
                            run,
                            "SignalExternalWorkflowExecutionFailed",
                            attrs,
                            "UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION",
                            completed,
                            now,
                        );
                    }
                    Some(target) => {
                        self.signal(
                            &target,
                            &signal_name,
                            input,
                            Some((me.0.clone(), me.1.clone(), initiated)),
                            now,
                        );
                        let mut attrs = json!({
                            "workflowExecution": {"workflowId": workflow_id, "runId": target},
                            "initiatedEventId": initiated,
                        });
                        put(&mut attrs, "control", control);
                        self.push(run, "ExternalWorkflowExecutionSignaled", attrs, now);
                        self.schedule_decision(run, now);
                    }
                }
            }
            Decision::RequestCancelExternal {
                workflow_id,
                run_id,
                control,
            } => {
                let mut attrs =
                    json!({"workflowId": workflow_id, "decisionTaskCompletedEventId": completed});
                put(&mut attrs, "runId", run_id.as_ref());
                put(&mut attrs, "control", control.as_ref());
                let initiated = self.push(
                    run,
                    "RequestCancelExternalWorkflowExecutionInitiated",
                    attrs,
                    now,
                );
                if initiated == 0 {
                    return;
                }
                match self.find_open(&domain, &workflow_id, run_id.as_deref()) {
                    None => {
                        let mut attrs =
                            json!({"workflowId": workflow_id, "initiatedEventId": initiated});
                        put(&mut attrs, "runId", run_id);
                        put(&mut attrs, "control", control);
                        self.decision_failed(
                            run,
                            "RequestCancelExternalWorkflowExecutionFailed",
                            attrs,
                            "UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION",
                            completed,
                            now,
                        );
                    }
                    Some(target) => {
                        self.cancel_request(
                            &target,
                            Some((me.0.clone(), me.1.clone(), initiated)),
                            None,
                            now,
                        );
                        self.push(
                            run,
                            "ExternalWorkflowExecutionCancelRequested",
                            json!({
                                "workflowExecution": {"workflowId": workflow_id, "runId": target},
                                "initiatedEventId": initiated,
                            }),
                            now,
                        );
                        self.schedule_decision(run, now);
                    }
                }
            }
            Decision::StartChild { spec, control } => {
                let wtype = json!({"name": spec.workflow_type.0, "version": spec.workflow_type.1});
                let workflow_id = spec.workflow_id.clone();
                let mut failed = json!({"workflowType": wtype, "workflowId": workflow_id, "initiatedEventId": 0});
                put(&mut failed, "control", control.as_ref());
                let resolved = match self.resolve(spec) {
                    Ok(r) => r,
                    Err((cause, _)) => {
                        return self.decision_failed(
                            run,
                            "StartChildWorkflowExecutionFailed",
                            failed,
                            cause,
                            completed,
                            now,
                        )
                    }
                };
                let mut attrs = json!({
                    "workflowId": workflow_id,
                    "workflowType": wtype,
                    "executionStartToCloseTimeout": resolved.exec_timeout.wire(),
                    "taskList": {"name": resolved.task_list},
                    "taskPriority": resolved.priority.to_string(),
                    "taskStartToCloseTimeout": resolved.task_timeout.wire(),
                    "childPolicy": resolved.child_policy,
                    "decisionTaskCompletedEventId": completed,
                });
                put(&mut attrs, "input", resolved.spec.input.as_ref());
                put(&mut attrs, "control", control.as_ref());
                if !resolved.spec.tag_list.is_empty() {
                    attrs["tagList"] = json!(resolved.spec.tag_list);
                }
                put(&mut attrs, "lambdaRole", resolved.spec.lambda_role.as_ref());
                let initiated = self.push(run, "StartChildWorkflowExecutionInitiated", attrs, now);
                if initiated == 0 {
                    return;
                }
                if self.find_open(&domain, &workflow_id, None).is_some() {
                    failed["initiatedEventId"] = json!(initiated);
                    return self.decision_failed(
                        run,
                        "StartChildWorkflowExecutionFailed",
                        failed,
                        "WORKFLOW_ALREADY_RUNNING",
                        completed,
                        now,
                    );
                }
                let child_type = resolved.spec.workflow_type.clone();
                let parent = ParentRef {
                    workflow_id: me.0.clone(),
                    run_id: me.1.clone(),
                    initiated_event_id: initiated,
                };
                let child_run = self.create_execution(
                    resolved,
                    uuid::Uuid::new_v4().to_string(),
                    Some(parent),
                    None,
                    now,
                );
                let started_id = self.push(
                    run,
                    "ChildWorkflowExecutionStarted",
                    json!({
                        "workflowExecution": {"workflowId": workflow_id, "runId": child_run},
                        "workflowType": wtype,
                        "initiatedEventId": initiated,
                    }),
                    now,
                );
                if let Some(ex) = self.open_exec_mut(run) {
                    ex.children.insert(
                        initiated,
                        Child {
                            workflow_id,
                            run_id: child_run,
                            workflow_type: child_type,
                            started_id,
                        },
                    );
                    ex.followup = true;
                }
            }
        }
    }

    // ---- API: activity tasks ----

    pub fn validate_activity_poll(&self, r: &Req) -> Result<(), Fault> {
        let domain = r.name("domain")?;
        r.task_list("taskList")?;
        r.opt_str_max("identity", NAME_MAX)?;
        self.domain(domain)?;
        Ok(())
    }

    pub fn take_activity_task(&mut self, r: &Req, now: i64) -> Result<Option<String>, Fault> {
        let domain = r.name("domain")?.to_string();
        let tl = r.task_list("taskList")?;
        let identity = s(r.opt_str_max("identity", NAME_MAX)?);
        let Some((run, sched)) = self.pop_live(&(domain, true, tl)) else {
            return Ok(None);
        };
        let mut attrs = json!({"scheduledEventId": sched});
        put(&mut attrs, "identity", identity);
        let started_id = self.push(&run, "ActivityTaskStarted", attrs, now);
        let Some(ex) = self.open_exec_mut(&run) else {
            return Ok(None);
        };
        ex.latest_activity_ms = Some(now);
        let execution = ex.execution_json();
        let Some(a) = ex.activities.get_mut(&sched) else {
            return Ok(None);
        };
        a.run = Some(ActivityRun {
            started_id,
            started_ms: now,
            heartbeat_ms: now,
            details: None,
        });
        let mut out = json!({
            "taskToken": task_token('A', &run, sched, started_id),
            "activityId": a.activity_id,
            "startedEventId": started_id,
            "workflowExecution": execution,
            "activityType": {"name": a.activity_type.0, "version": a.activity_type.1},
        });
        put(&mut out, "input", a.input.as_ref());
        Ok(Some(out.to_string()))
    }

    /// The started activity a token refers to, if it is still running.
    fn running_activity(&self, r: &Req) -> Result<(String, i64, i64), Fault> {
        let (run, sched, started) = parse_task_token(r, 'A')?;
        let ex = self.open_exec(&run).ok_or_else(stale_token)?;
        match ex.activities.get(&sched).and_then(|a| a.run.as_ref()) {
            Some(ar) if ar.started_id == started => Ok((run, sched, started)),
            _ => Err(stale_token()),
        }
    }

    pub fn heartbeat(&mut self, r: &Req, now: i64) -> Result<Value, Fault> {
        let details = s(r.payload("details")?);
        let (run, sched, _) = self.running_activity(r)?;
        let ex = self.open_exec_mut(&run).ok_or_else(stale_token)?;
        let a = ex.activities.get_mut(&sched).ok_or_else(stale_token)?;
        let cancel = a.cancel_requested_id.is_some();
        if let Some(ar) = a.run.as_mut() {
            ar.heartbeat_ms = now;
            if details.is_some() {
                ar.details = details;
            }
            let op = crate::store::Op::Heartbeat {
                run_id: run.clone(),
                scheduled_id: sched,
                started_id: ar.started_id,
                ms: now,
                details: ar.details.clone(),
            };
            self.pending.push(op);
        }
        self.mark(&run);
        Ok(json!({"cancelRequested": cancel}))
    }

    pub fn respond_activity(&mut self, r: &Req, outcome: &str, now: i64) -> Result<Value, Fault> {
        let (etype, mut attrs) = match outcome {
            "completed" => {
                let mut a = json!({});
                put(&mut a, "result", r.payload("result")?);
                ("ActivityTaskCompleted", a)
            }
            "failed" => {
                let mut a = json!({});
                put(&mut a, "reason", r.opt_str_max("reason", REASON_MAX)?);
                put(&mut a, "details", r.payload("details")?);
                ("ActivityTaskFailed", a)
            }
            _ => {
                let mut a = json!({});
                put(&mut a, "details", r.payload("details")?);
                ("ActivityTaskCanceled", a)
            }
        };
        let (run, sched, started) = self.running_activity(r)?;
        let removed = self
            .open_exec_mut(&run)
            .and_then(|ex| ex.activities.remove(&sched));
        attrs["scheduledEventId"] = json!(sched);
        attrs["startedEventId"] = json!(started);
        if etype == "ActivityTaskCanceled" {
            put(
                &mut attrs,
                "latestCancelRequestedEventId",
                removed.and_then(|a| a.cancel_requested_id),
            );
        }
        self.push(&run, etype, attrs, now);
        self.schedule_decision(&run, now);
        Ok(json!({}))
    }

    // ---- timeouts ----

    /// Fires everything due at `now`.
    pub fn fire_due(&mut self, now: i64) {
        while let Some((d, _)) = self.deadlines.first() {
            if *d > now {
                break;
            }
            let Some((_, run)) = self.deadlines.pop_first() else {
                break;
            };
            self.process_due(&run, now);
        }
    }

    fn process_due(&mut self, run: &str, now: i64) {
        enum Due {
            Workflow,
            Decision(i64, i64),
            Activity(i64, &'static str),
            Timer(String),
        }
        loop {
            let Some(ex) = self.open_exec(run) else {
                return;
            };
            let mut best: Option<(i64, Due)> = None;
            let mut consider = |d: Option<i64>, what: Due| {
                if let Some(d) = d {
                    if d <= now && best.as_ref().is_none_or(|(b, _)| d < *b) {
                        best = Some((d, what));
                    }
                }
            };
            consider(ex.exec_timeout.deadline(ex.start_ms), Due::Workflow);
            if let DecisionState::Started {
                scheduled_id,
                started_id,
                deadline,
            } = ex.decision
            {
                consider(deadline, Due::Decision(scheduled_id, started_id));
            }
            for (sid, a) in &ex.activities {
                consider(
                    a.schedule_to_close.deadline(a.scheduled_ms),
                    Due::Activity(*sid, "SCHEDULE_TO_CLOSE"),
                );
                match &a.run {
                    None => consider(
                        a.schedule_to_start.deadline(a.scheduled_ms),
                        Due::Activity(*sid, "SCHEDULE_TO_START"),
                    ),
                    Some(ar) => {
                        consider(
                            a.start_to_close.deadline(ar.started_ms),
                            Due::Activity(*sid, "START_TO_CLOSE"),
                        );
                        consider(
                            a.heartbeat.deadline(ar.heartbeat_ms),
                            Due::Activity(*sid, "HEARTBEAT"),
                        );
                    }
                }
            }
            for (id, t) in &ex.timers {
                consider(Some(t.fire_ms), Due::Timer(id.clone()));
            }
            let Some((_, due)) = best else {
                break;
            };
            match due {
                Due::Workflow => {
                    let policy = ex.child_policy.clone();
                    if self.push(
                        run,
                        "WorkflowExecutionTimedOut",
                        json!({"timeoutType": "START_TO_CLOSE", "childPolicy": policy}),
                        now,
                    ) != 0
                    {
                        self.close(run, "TIMED_OUT", Outcome::TimedOut, &policy, now);
                    }
                }
                Due::Decision(sched, started) => {
                    if let Some(ex) = self.open_exec_mut(run) {
                        ex.decision = DecisionState::Idle;
                        ex.followup = false;
                    }
                    self.push(
                        run,
                        "DecisionTaskTimedOut",
                        json!({"timeoutType": "START_TO_CLOSE", "scheduledEventId": sched, "startedEventId": started}),
                        now,
                    );
                    self.schedule_decision(run, now);
                }
                Due::Activity(sid, kind) => {
                    let Some(a) = self
                        .open_exec_mut(run)
                        .and_then(|ex| ex.activities.remove(&sid))
                    else {
                        break;
                    };
                    let mut attrs = json!({
                        "timeoutType": kind,
                        "scheduledEventId": sid,
                        "startedEventId": a.run.as_ref().map_or(0, |r| r.started_id),
                    });
                    put(&mut attrs, "details", a.run.and_then(|r| r.details));
                    self.push(run, "ActivityTaskTimedOut", attrs, now);
                    self.schedule_decision(run, now);
                }
                Due::Timer(id) => {
                    let Some(t) = self.open_exec_mut(run).and_then(|ex| ex.timers.remove(&id))
                    else {
                        break;
                    };
                    self.push(
                        run,
                        "TimerFired",
                        json!({"timerId": id, "startedEventId": t.started_id}),
                        now,
                    );
                    self.schedule_decision(run, now);
                }
            }
            self.mark(run);
        }
        if let Some(d) = self.execs.get(run).and_then(Execution::next_deadline) {
            self.deadlines.insert((d, run.to_string()));
        }
    }
}

pub fn empty_decision_task() -> String {
    json!({"taskToken": "", "startedEventId": 0, "previousStartedEventId": 0, "events": []})
        .to_string()
}

pub fn empty_activity_task() -> String {
    json!({"taskToken": "", "activityId": "", "startedEventId": 0}).to_string()
}
