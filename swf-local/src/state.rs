//! In-memory model of domains, types, executions and task queues.
//!
//! One [`State`] lives behind a mutex for the whole server. Request handlers mutate it synchronously
//! and every change is recorded twice: in memory (the source of truth while running) and as
//! [`Op`]s collected in `pending`, which [`State::commit`] hands to the SQLite writer in order.
//! Executions are stored as their append-only events (plus an identity row and last heartbeats);
//! [`State::load`] replays them (see `replay.rs`) and rebuilds queues and deadlines.
//! This module holds the model, domain and type registration, listings and counts; the execution
//! engine (tasks, decisions, timeouts) is in `engine.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, Notify};

use crate::fault::Fault;
use crate::input::{Req, Timeout, DESCRIPTION_MAX, TOKEN_MAX};
use crate::store::{Loaded, Op, StoreError, Writer};

pub const REGISTERED: &str = "REGISTERED";
pub const DEPRECATED: &str = "DEPRECATED";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub description: Option<String>,
    pub retention_days: u32,
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Workflow,
    Activity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeReg {
    pub kind: Kind,
    pub domain: String,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub status: String,
    pub creation_ms: i64,
    pub deprecation_ms: Option<i64>,
    pub default_task_list: Option<String>,
    pub default_task_priority: Option<i64>,
    pub default_task_start_to_close: Option<Timeout>,
    pub default_execution_start_to_close: Option<Timeout>,
    pub default_child_policy: Option<String>,
    pub default_lambda_role: Option<String>,
    pub default_heartbeat: Option<Timeout>,
    pub default_schedule_to_start: Option<Timeout>,
    pub default_schedule_to_close: Option<Timeout>,
}

pub type TypeKey = (Kind, String, String, String);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParentRef {
    pub workflow_id: String,
    pub run_id: String,
    pub initiated_event_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionState {
    Idle,
    Scheduled {
        scheduled_id: i64,
    },
    Started {
        scheduled_id: i64,
        started_id: i64,
        deadline: Option<i64>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityRun {
    pub started_id: i64,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub details: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    pub activity_id: String,
    pub activity_type: (String, String),
    pub input: Option<String>,
    pub task_list: String,
    pub priority: i64,
    pub scheduled_ms: i64,
    pub schedule_to_start: Timeout,
    pub schedule_to_close: Timeout,
    pub start_to_close: Timeout,
    pub heartbeat: Timeout,
    pub run: Option<ActivityRun>,
    pub cancel_requested_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimerState {
    pub started_id: i64,
    pub fire_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Child {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: (String, String),
    pub started_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub domain: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: (String, String),
    pub task_list: String,
    pub task_priority: i64,
    pub exec_timeout: Timeout,
    pub task_timeout: Timeout,
    pub child_policy: String,
    pub tag_list: Vec<String>,
    pub lambda_role: Option<String>,
    pub start_ms: i64,
    pub close_ms: Option<i64>,
    pub close_status: Option<String>,
    pub parent: Option<ParentRef>,
    pub cancel_requested: bool,
    pub decision: DecisionState,
    /// Events the decider has not seen arrived while a decision task was started.
    pub followup: bool,
    pub prev_started: i64,
    /// Keyed by scheduled event id.
    pub activities: BTreeMap<i64, Activity>,
    pub timers: BTreeMap<String, TimerState>,
    /// Keyed by initiated event id.
    pub children: BTreeMap<i64, Child>,
    pub latest_activity_ms: Option<i64>,
    pub latest_context: Option<String>,
    #[serde(skip)]
    pub events: Vec<String>,
}

impl Execution {
    pub fn is_open(&self) -> bool {
        self.close_ms.is_none()
    }

    /// Earliest moment something of this execution times out or fires.
    pub fn next_deadline(&self) -> Option<i64> {
        if !self.is_open() {
            return None;
        }
        let mut best = self.exec_timeout.deadline(self.start_ms);
        let mut consider = |d: Option<i64>| {
            if let Some(d) = d {
                best = Some(best.map_or(d, |b| b.min(d)));
            }
        };
        if let DecisionState::Started { deadline, .. } = &self.decision {
            consider(*deadline);
        }
        for a in self.activities.values() {
            consider(a.schedule_to_close.deadline(a.scheduled_ms));
            match &a.run {
                None => consider(a.schedule_to_start.deadline(a.scheduled_ms)),
                Some(r) => {
                    consider(a.start_to_close.deadline(r.started_ms));
                    consider(a.heartbeat.deadline(r.heartbeat_ms));
                }
            }
        }
        for t in self.timers.values() {
            consider(Some(t.fire_ms));
        }
        best
    }

    pub fn execution_json(&self) -> Value {
        json!({"workflowId": self.workflow_id, "runId": self.run_id})
    }

    pub fn type_json(&self) -> Value {
        json!({"name": self.workflow_type.0, "version": self.workflow_type.1})
    }

    pub fn info_json(&self) -> Value {
        let mut v = json!({
            "execution": self.execution_json(),
            "workflowType": self.type_json(),
            "startTimestamp": secs(self.start_ms),
            "executionStatus": if self.is_open() { "OPEN" } else { "CLOSED" },
            "cancelRequested": self.cancel_requested,
        });
        if let Some(c) = self.close_ms {
            v["closeTimestamp"] = json!(secs(c));
        }
        if let Some(s) = &self.close_status {
            v["closeStatus"] = json!(s);
        }
        if !self.tag_list.is_empty() {
            v["tagList"] = json!(self.tag_list);
        }
        if let Some(p) = &self.parent {
            v["parent"] = json!({"workflowId": p.workflow_id, "runId": p.run_id});
        }
        v
    }
}

/// The answer to a request whose change could not be committed.
pub fn persist_fault(err: String) -> Fault {
    Fault::internal(format!("Could not persist the change: {err}"))
}

/// Where queued tasks wait: (domain, is activity queue, task list).
pub type QueueKey = (String, bool, String);

#[derive(Default)]
pub struct Queue {
    /// (-priority, scheduled ms, sequence) -> (run id, scheduled event id; 0 for decisions)
    pub items: BTreeMap<(i64, i64, u64), (String, i64)>,
    /// Long polls parked on this task list, oldest first.
    pub waiters: VecDeque<Waiter>,
}

/// What a parked poll receives: the task taken on its behalf (in the same critical section that
/// queued it), sent once the task's start is committed.
pub type Handoff = Result<Option<String>, Fault>;

/// A long poll parked on an empty task list. The task that arrives next is taken for it right
/// where it is queued, so it commits with the change that scheduled it (one group commit and no
/// extra wake-up of the poller to come and fetch it).
pub struct Waiter {
    pub id: u64,
    /// The poll request as received: identity and paging options for taking the task.
    pub request: Value,
    pub tx: oneshot::Sender<Handoff>,
}

pub struct State {
    pub domains: BTreeMap<String, Domain>,
    pub types: BTreeMap<TypeKey, TypeReg>,
    pub execs: HashMap<String, Execution>,
    pub open_by_id: HashMap<(String, String), String>,
    pub queues: HashMap<QueueKey, Queue>,
    /// Queues that gained a task while polls were parked on them; served by [`State::hand_off`].
    pub ready: Vec<QueueKey>,
    pub deadlines: BTreeSet<(i64, String)>,
    pub seq: u64,
    pub pending: Vec<Op>,
    pub dirty: HashSet<String>,
    pub timer_notify: Arc<Notify>,
    pub event_limit: usize,
    pub writer: Option<Writer>,
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

pub fn unb64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Page token for listings: the offset of the next item, bound to the listing it came from.
fn list_token(scope: &str, offset: usize) -> String {
    b64(&format!("L|{scope}|{offset}"))
}

fn parse_list_token(r: &Req, scope: &str) -> Result<usize, Fault> {
    match r.opt_str_max("nextPageToken", TOKEN_MAX)? {
        None => Ok(0),
        Some(t) => {
            let bad = || {
                Fault::validation(
                    "Value at 'nextPageToken' is not a valid page token for this request",
                )
            };
            let s = unb64(t).ok_or_else(bad)?;
            let rest = s
                .strip_prefix("L|")
                .and_then(|r| r.strip_prefix(scope))
                .and_then(|r| r.strip_prefix('|'))
                .ok_or_else(bad)?;
            rest.parse().map_err(|_| bad())
        }
    }
}

/// One page of `items` from `offset`, and the token of the next page.
fn paged<T>(items: Vec<T>, offset: usize, size: usize, scope: &str) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(size).collect();
    let next = if offset + page.len() < total {
        Some(list_token(scope, offset + page.len()))
    } else {
        None
    };
    (page, next)
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["nextPageToken"] = json!(t);
    }
    v
}

fn type_json_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Workflow => "workflowType",
        Kind::Activity => "activityType",
    }
}

impl State {
    pub fn new(timer_notify: Arc<Notify>, event_limit: usize, writer: Writer) -> Self {
        State {
            domains: BTreeMap::new(),
            types: BTreeMap::new(),
            execs: HashMap::new(),
            open_by_id: HashMap::new(),
            queues: HashMap::new(),
            ready: Vec::new(),
            deadlines: BTreeSet::new(),
            seq: 0,
            pending: Vec::new(),
            dirty: HashSet::new(),
            timer_notify,
            event_limit,
            writer: Some(writer),
        }
    }

    /// Rebuilds memory from the database: queues from scheduled-but-not-started tasks, deadlines
    /// from the stored absolute times.
    pub fn load(&mut self, loaded: Loaded) -> Result<(), StoreError> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        for d in loaded.domains {
            let d: Domain = serde_json::from_str(&d).map_err(corrupt)?;
            self.domains.insert(d.name.clone(), d);
        }
        for t in loaded.types {
            let t: TypeReg = serde_json::from_str(&t).map_err(corrupt)?;
            self.types.insert(
                (t.kind, t.domain.clone(), t.name.clone(), t.version.clone()),
                t,
            );
        }
        let mut execs: Vec<Execution> = Vec::with_capacity(loaded.executions.len());
        for (row, events) in loaded.executions {
            let id: crate::replay::Identity = serde_json::from_str(&row).map_err(corrupt)?;
            execs.push(crate::replay::replay(id, events).map_err(StoreError::Corrupt)?);
        }
        let mut by_run: HashMap<String, usize> = HashMap::new();
        for (i, ex) in execs.iter().enumerate() {
            by_run.insert(ex.run_id.clone(), i);
        }
        for hb in loaded.heartbeats {
            let Some(&i) = by_run.get(&hb.run_id) else {
                continue;
            };
            if let Some(run) = execs[i]
                .activities
                .get_mut(&hb.scheduled_id)
                .and_then(|a| a.run.as_mut())
                .filter(|r| r.started_id == hb.started_id)
            {
                run.heartbeat_ms = hb.ms;
                run.details = hb.details;
            }
        }
        // A child that continued as new is the same child to its parent; no parent event says so.
        let open_children: Vec<(ParentRef, String)> = execs
            .iter()
            .filter(|e| e.is_open())
            .filter_map(|e| e.parent.clone().map(|p| (p, e.run_id.clone())))
            .collect();
        for (p, run) in open_children {
            if let Some(c) = by_run
                .get(&p.run_id)
                .and_then(|&i| execs[i].children.get_mut(&p.initiated_event_id))
            {
                c.run_id = run;
            }
        }
        execs.sort_by_key(|e| e.start_ms);
        for ex in execs {
            let run = ex.run_id.clone();
            if ex.is_open() {
                self.open_by_id
                    .insert((ex.domain.clone(), ex.workflow_id.clone()), run.clone());
                if let DecisionState::Scheduled { .. } = ex.decision {
                    let key = (ex.domain.clone(), false, ex.task_list.clone());
                    let ms = ex.start_ms;
                    self.enqueue(key, ex.task_priority, ms, run.clone(), 0);
                }
                for (sid, a) in &ex.activities {
                    if a.run.is_none() {
                        let key = (ex.domain.clone(), true, a.task_list.clone());
                        self.enqueue(key, a.priority, a.scheduled_ms, run.clone(), *sid);
                    }
                }
                if let Some(d) = ex.next_deadline() {
                    self.deadlines.insert((d, run.clone()));
                }
            }
            self.execs.insert(run, ex);
        }
        Ok(())
    }

    pub fn enqueue(&mut self, key: QueueKey, priority: i64, ms: i64, run: String, sched: i64) {
        self.seq += 1;
        let q = self.queues.entry(key.clone()).or_default();
        q.items.insert((-priority, ms, self.seq), (run, sched));
        if !q.waiters.is_empty() {
            self.ready.push(key);
        }
    }

    /// Parks a poll on an empty task list; the receiver gets its task when one is queued.
    pub fn park(&mut self, key: QueueKey, request: Value) -> (u64, oneshot::Receiver<Handoff>) {
        self.seq += 1;
        let id = self.seq;
        let (tx, rx) = oneshot::channel();
        self.queues
            .entry(key)
            .or_default()
            .waiters
            .push_back(Waiter { id, request, tx });
        (id, rx)
    }

    /// Withdraws a parked poll (timed out or shutting down). False when a task was already handed
    /// to it, which its receiver then holds.
    pub fn unpark(&mut self, key: &QueueKey, id: u64) -> bool {
        let Some(q) = self.queues.get_mut(key) else {
            return false;
        };
        match q.waiters.iter().position(|w| w.id == id) {
            Some(pos) => {
                q.waiters.remove(pos);
                true
            }
            None => false,
        }
    }

    /// Queues every change made so far for commit, then serves parked polls from the queues that
    /// gained tasks. Each hand-off is committed as its own batch right after the change that
    /// scheduled the task (batches commit in order), usually in the same group commit.
    pub fn commit_and_hand_off(&mut self) -> Option<oneshot::Receiver<Result<(), String>>> {
        let rx = self.commit_if_changed();
        while let Some(key) = self.ready.pop() {
            self.hand_off(&key);
        }
        rx
    }

    /// Takes the next live task of the queue `key` for the poll `r`, skipping entries whose task
    /// is gone (closed execution, timed-out task).
    pub fn take_task(
        &mut self,
        r: &Req,
        key: &QueueKey,
        now: i64,
    ) -> Result<Option<String>, Fault> {
        loop {
            let got = if key.1 {
                self.take_activity_task(r, now)
            } else {
                self.take_decision_task(r, now)
            };
            let more = self.queues.get(key).is_some_and(|q| !q.items.is_empty());
            if !matches!(got, Ok(None)) || !more {
                return got;
            }
        }
    }

    fn has_changes(&self) -> bool {
        !self.pending.is_empty() || !self.dirty.is_empty()
    }

    fn commit_if_changed(&mut self) -> Option<oneshot::Receiver<Result<(), String>>> {
        self.has_changes().then(|| self.commit())
    }

    fn hand_off(&mut self, key: &QueueKey) {
        loop {
            let Some(q) = self.queues.get_mut(key) else {
                return;
            };
            if q.items.is_empty() {
                return;
            }
            let Some(w) = q.waiters.pop_front() else {
                return;
            };
            // The poll's connection went away: taking a task for it would strand the task
            // until its start-to-close timeout.
            if w.tx.is_closed() {
                continue;
            }
            let got = Req::root(&w.request).and_then(|r| self.take_task(&r, key, now_ms()));
            if matches!(got, Ok(None)) {
                // Only stale entries were left; the poll keeps waiting.
                if let Some(q) = self.queues.get_mut(key) {
                    q.waiters.push_front(w);
                }
                return;
            }
            if !self.has_changes() {
                let _ = w.tx.send(got);
            } else {
                // Answered from the writer thread once committed: the poll wakes once, with
                // its answer, rather than once for the task and again for the commit.
                let tx = w.tx;
                self.commit_then(Box::new(move |result| {
                    let _ = tx.send(result.map_err(persist_fault).and(got));
                }));
            }
        }
    }

    pub fn mark(&mut self, run: &str) {
        if !self.dirty.contains(run) {
            self.dirty.insert(run.to_string());
        }
    }

    /// Queues every change made since the last call for commit, in order, and refreshes deadlines.
    /// The receiver resolves when the database has committed them.
    pub fn commit(&mut self) -> oneshot::Receiver<Result<(), String>> {
        let ops = self.take_ops();
        match &self.writer {
            Some(w) => w.submit(ops),
            None => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(Err("the server is shutting down".to_string()));
                rx
            }
        }
    }

    /// Like [`State::commit`], but `then` runs on the writer thread with the result.
    pub fn commit_then(&mut self, then: crate::store::Then) {
        let ops = self.take_ops();
        match &self.writer {
            Some(w) => w.submit_then(ops, then),
            None => then(Err("the server is shutting down".to_string())),
        }
    }

    /// Every change since the last commit, with deadlines refreshed for the executions touched.
    fn take_ops(&mut self) -> Vec<Op> {
        let first = self.deadlines.first().map(|d| d.0);
        // Execution state is not written: it is rebuilt from the events on start.
        for run in std::mem::take(&mut self.dirty) {
            if let Some(d) = self.execs.get(&run).and_then(Execution::next_deadline) {
                self.deadlines.insert((d, run));
            }
        }
        let new_first = self.deadlines.first().map(|d| d.0);
        if new_first.is_some() && (first.is_none() || new_first < first) {
            self.timer_notify.notify_one();
        }
        std::mem::take(&mut self.pending)
    }

    pub fn domain(&self, name: &str) -> Result<&Domain, Fault> {
        self.domains
            .get(name)
            .ok_or_else(|| Fault::unknown_resource(format!("Unknown domain: {name}")))
    }

    fn persist_domain(&mut self, name: &str) {
        if let Some(d) = self.domains.get(name) {
            if let Ok(json) = serde_json::to_string(d) {
                self.pending.push(Op::Domain {
                    name: name.to_string(),
                    json,
                });
            }
        }
    }

    fn persist_type(&mut self, key: &TypeKey) {
        if let Some(t) = self.types.get(key) {
            if let (Ok(k), Ok(json)) = (serde_json::to_string(key), serde_json::to_string(t)) {
                self.pending.push(Op::Type { key: k, json });
            }
        }
    }

    // ---- domains ----

    pub fn register_domain(&mut self, r: &Req) -> Result<Value, Fault> {
        let name = r.name("name")?;
        let description = r.opt_str_max("description", DESCRIPTION_MAX)?;
        let days = r.str_max("workflowExecutionRetentionPeriodInDays", 8)?;
        let retention_days: u32 = match days.parse::<u32>() {
            Ok(d) if d <= 90 && days.bytes().all(|b| b.is_ascii_digit()) => d,
            _ => {
                return Err(Fault::validation(format!(
                    "Value '{days}' at 'workflowExecutionRetentionPeriodInDays' must be a whole number of days between 0 and 90"
                )))
            }
        };
        if self.domains.contains_key(name) {
            return Err(Fault::domain_already_exists(format!(
                "Domain already exists: {name}"
            )));
        }
        self.domains.insert(
            name.to_string(),
            Domain {
                name: name.to_string(),
                description: description.map(str::to_string),
                retention_days,
                status: REGISTERED.to_string(),
            },
        );
        self.persist_domain(name);
        Ok(json!({}))
    }

    fn domain_info(d: &Domain) -> Value {
        let mut v = json!({
            "name": d.name,
            "status": d.status,
            "arn": format!("arn:aws:swf:us-east-1:000000000000:/domain/{}", d.name),
        });
        if let Some(desc) = &d.description {
            v["description"] = json!(desc);
        }
        v
    }

    pub fn describe_domain(&self, r: &Req) -> Result<Value, Fault> {
        let d = self.domain(r.name("name")?)?;
        Ok(json!({
            "domainInfo": Self::domain_info(d),
            "configuration": {"workflowExecutionRetentionPeriodInDays": d.retention_days.to_string()},
        }))
    }

    pub fn list_domains(&self, r: &Req) -> Result<Value, Fault> {
        let status = r.enum_req("registrationStatus", &[REGISTERED, DEPRECATED])?;
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        let scope = format!("domains:{status}:{reverse}");
        let offset = parse_list_token(r, &scope)?;
        let mut items: Vec<Value> = self
            .domains
            .values()
            .filter(|d| d.status == status)
            .map(Self::domain_info)
            .collect();
        if reverse {
            items.reverse();
        }
        let (page, next) = paged(items, offset, size, &scope);
        Ok(with_token(json!({"domainInfos": page}), next))
    }

    pub fn deprecate_domain(&mut self, r: &Req) -> Result<Value, Fault> {
        let name = r.name("name")?;
        let d = self
            .domains
            .get_mut(name)
            .ok_or_else(|| Fault::unknown_resource(format!("Unknown domain: {name}")))?;
        if d.status == DEPRECATED {
            return Err(Fault::domain_deprecated(format!(
                "Domain already deprecated: {name}"
            )));
        }
        d.status = DEPRECATED.to_string();
        self.persist_domain(name);
        Ok(json!({}))
    }

    pub fn undeprecate_domain(&mut self, r: &Req) -> Result<Value, Fault> {
        let name = r.name("name")?;
        let d = self
            .domains
            .get_mut(name)
            .ok_or_else(|| Fault::unknown_resource(format!("Unknown domain: {name}")))?;
        if d.status == REGISTERED {
            return Err(Fault::domain_already_exists(format!(
                "Domain is not deprecated: {name}"
            )));
        }
        d.status = REGISTERED.to_string();
        self.persist_domain(name);
        Ok(json!({}))
    }

    // ---- types ----

    pub fn register_type(&mut self, kind: Kind, r: &Req, now: i64) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let name = r.name("name")?;
        let version = r.str_max("version", 64)?;
        let description = r.opt_str_max("description", DESCRIPTION_MAX)?;
        let default_task_list = r.opt_task_list("defaultTaskList")?;
        let default_task_priority = r.opt_priority("defaultTaskPriority")?;
        let default_task_start_to_close = r.opt_timeout("defaultTaskStartToCloseTimeout", true)?;
        let mut reg = TypeReg {
            kind,
            domain: domain.to_string(),
            name: name.to_string(),
            version: version.to_string(),
            description: description.map(str::to_string),
            status: REGISTERED.to_string(),
            creation_ms: now,
            deprecation_ms: None,
            default_task_list,
            default_task_priority,
            default_task_start_to_close,
            default_execution_start_to_close: None,
            default_child_policy: None,
            default_lambda_role: None,
            default_heartbeat: None,
            default_schedule_to_start: None,
            default_schedule_to_close: None,
        };
        match kind {
            Kind::Workflow => {
                reg.default_execution_start_to_close =
                    r.opt_timeout("defaultExecutionStartToCloseTimeout", false)?;
                reg.default_child_policy = r
                    .opt_enum("defaultChildPolicy", crate::input::CHILD_POLICIES)?
                    .map(str::to_string);
                reg.default_lambda_role = r
                    .opt_str_max("defaultLambdaRole", 1600)?
                    .map(str::to_string);
            }
            Kind::Activity => {
                reg.default_heartbeat = r.opt_timeout("defaultTaskHeartbeatTimeout", true)?;
                reg.default_schedule_to_start =
                    r.opt_timeout("defaultTaskScheduleToStartTimeout", true)?;
                reg.default_schedule_to_close =
                    r.opt_timeout("defaultTaskScheduleToCloseTimeout", true)?;
            }
        }
        let d = self.domain(domain)?;
        if d.status == DEPRECATED {
            return Err(Fault::domain_deprecated(format!(
                "Domain is deprecated: {domain}"
            )));
        }
        let key = (
            kind,
            domain.to_string(),
            name.to_string(),
            version.to_string(),
        );
        if self.types.contains_key(&key) {
            return Err(Fault::type_already_exists(format!(
                "Type already exists: [name={name}, version={version}]"
            )));
        }
        self.types.insert(key.clone(), reg);
        self.persist_type(&key);
        Ok(json!({}))
    }

    fn type_lookup(&self, kind: Kind, r: &Req) -> Result<TypeKey, Fault> {
        let domain = r.name("domain")?;
        let (name, version) = r.type_ref(type_json_key(kind))?;
        self.domain(domain)?;
        let key = (kind, domain.to_string(), name, version);
        if !self.types.contains_key(&key) {
            return Err(Fault::unknown_resource(format!(
                "Unknown type: {} [name={}, version={}]",
                type_json_key(kind),
                key.2,
                key.3
            )));
        }
        Ok(key)
    }

    fn type_info(t: &TypeReg) -> Value {
        let mut v = json!({
            type_json_key(t.kind): {"name": t.name, "version": t.version},
            "status": t.status,
            "creationDate": secs(t.creation_ms),
        });
        if let Some(d) = &t.description {
            v["description"] = json!(d);
        }
        if let Some(d) = t.deprecation_ms {
            v["deprecationDate"] = json!(secs(d));
        }
        v
    }

    pub fn describe_type(&self, kind: Kind, r: &Req) -> Result<Value, Fault> {
        let key = self.type_lookup(kind, r)?;
        let t = &self.types[&key];
        let mut c = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                c.insert(k.to_string(), v);
            }
        };
        put(
            "defaultTaskList",
            t.default_task_list.as_ref().map(|n| json!({"name": n})),
        );
        put(
            "defaultTaskPriority",
            t.default_task_priority.map(|p| json!(p.to_string())),
        );
        put(
            "defaultTaskStartToCloseTimeout",
            t.default_task_start_to_close.map(|x| json!(x.wire())),
        );
        match kind {
            Kind::Workflow => {
                put(
                    "defaultExecutionStartToCloseTimeout",
                    t.default_execution_start_to_close.map(|x| json!(x.wire())),
                );
                put(
                    "defaultChildPolicy",
                    t.default_child_policy.as_ref().map(|p| json!(p)),
                );
                put(
                    "defaultLambdaRole",
                    t.default_lambda_role.as_ref().map(|p| json!(p)),
                );
            }
            Kind::Activity => {
                put(
                    "defaultTaskHeartbeatTimeout",
                    t.default_heartbeat.map(|x| json!(x.wire())),
                );
                put(
                    "defaultTaskScheduleToStartTimeout",
                    t.default_schedule_to_start.map(|x| json!(x.wire())),
                );
                put(
                    "defaultTaskScheduleToCloseTimeout",
                    t.default_schedule_to_close.map(|x| json!(x.wire())),
                );
            }
        }
        Ok(json!({"typeInfo": Self::type_info(t), "configuration": Value::Object(c)}))
    }

    pub fn list_types(&self, kind: Kind, r: &Req) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let name = r.opt_name("name")?;
        let status = r.enum_req("registrationStatus", &[REGISTERED, DEPRECATED])?;
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        self.domain(domain)?;
        let scope = format!(
            "types:{kind:?}:{domain}:{}:{status}:{reverse}",
            name.unwrap_or("")
        );
        let offset = parse_list_token(r, &scope)?;
        let mut items: Vec<Value> = self
            .types
            .values()
            .filter(|t| {
                t.kind == kind
                    && t.domain == domain
                    && t.status == status
                    && name.is_none_or(|n| n == t.name)
            })
            .map(Self::type_info)
            .collect();
        if reverse {
            items.reverse();
        }
        let (page, next) = paged(items, offset, size, &scope);
        Ok(with_token(json!({"typeInfos": page}), next))
    }

    pub fn deprecate_type(&mut self, kind: Kind, r: &Req, now: i64) -> Result<Value, Fault> {
        let key = self.type_lookup(kind, r)?;
        let t = self.types.get_mut(&key).expect("looked up");
        if t.status == DEPRECATED {
            return Err(Fault::type_deprecated(format!(
                "Type already deprecated: [name={}, version={}]",
                key.2, key.3
            )));
        }
        t.status = DEPRECATED.to_string();
        t.deprecation_ms = Some(now);
        self.persist_type(&key);
        Ok(json!({}))
    }

    pub fn undeprecate_type(&mut self, kind: Kind, r: &Req) -> Result<Value, Fault> {
        let key = self.type_lookup(kind, r)?;
        let t = self.types.get_mut(&key).expect("looked up");
        if t.status == REGISTERED {
            return Err(Fault::type_already_exists(format!(
                "Type is not deprecated: [name={}, version={}]",
                key.2, key.3
            )));
        }
        t.status = REGISTERED.to_string();
        t.deprecation_ms = None;
        self.persist_type(&key);
        Ok(json!({}))
    }

    // ---- execution listings and counts ----

    fn execution_filter<'a>(
        &'a self,
        r: &Req,
        open: bool,
    ) -> Result<(String, Vec<&'a Execution>), Fault> {
        let domain = r.name("domain")?;
        self.domain(domain)?;
        let start = r.opt_obj("startTimeFilter")?;
        let close = if open {
            None
        } else {
            r.opt_obj("closeTimeFilter")?
        };
        if !open && start.is_some() == close.is_some() {
            return Err(Fault::validation(
                "Exactly one of startTimeFilter and closeTimeFilter must be specified",
            ));
        }
        if open && start.is_none() {
            return Err(Fault::validation(
                "1 validation error detected: Value null at 'startTimeFilter' failed to satisfy constraint: Member must not be null",
            ));
        }
        let time_range = |f: &Option<Req>| -> Result<Option<(i64, i64)>, Fault> {
            match f {
                None => Ok(None),
                Some(f) => {
                    let oldest = f
                        .opt_timestamp_ms("oldestDate")?
                        .ok_or_else(|| Fault::validation(format!("Value null at '{}.oldestDate' failed to satisfy constraint: Member must not be null", f.path())))?;
                    let latest = f.opt_timestamp_ms("latestDate")?.unwrap_or(i64::MAX);
                    Ok(Some((oldest, latest)))
                }
            }
        };
        let start_range = time_range(&start)?;
        let close_range = time_range(&close)?;
        let wid = match r.opt_obj("executionFilter")? {
            Some(f) => Some(f.name("workflowId")?.to_string()),
            None => None,
        };
        let wtype = match r.opt_obj("typeFilter")? {
            Some(f) => Some((
                f.name("name")?.to_string(),
                f.opt_str_max("version", 64)?.map(str::to_string),
            )),
            None => None,
        };
        let tag = match r.opt_obj("tagFilter")? {
            Some(f) => Some(f.name("tag")?.to_string()),
            None => None,
        };
        let status = if open {
            None
        } else {
            match r.opt_obj("closeStatusFilter")? {
                Some(f) => Some(f.enum_req(
                    "status",
                    &[
                        "COMPLETED",
                        "FAILED",
                        "CANCELED",
                        "TERMINATED",
                        "CONTINUED_AS_NEW",
                        "TIMED_OUT",
                    ],
                )?),
                None => None,
            }
        };
        let exclusive = [
            wid.is_some(),
            wtype.is_some(),
            tag.is_some(),
            status.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if exclusive > 1 {
            return Err(Fault::validation(
                "executionFilter, typeFilter, tagFilter and closeStatusFilter are mutually exclusive",
            ));
        }
        let scope = format!(
            "execs:{open}:{domain}:{start_range:?}:{close_range:?}:{wid:?}:{wtype:?}:{tag:?}:{status:?}"
        );
        let mut found: Vec<&Execution> = self
            .execs
            .values()
            .filter(|e| {
                e.domain == domain
                    && e.is_open() == open
                    && start_range.is_none_or(|(a, b)| e.start_ms >= a && e.start_ms <= b)
                    && close_range.is_none_or(|(a, b)| e.close_ms.is_some_and(|c| c >= a && c <= b))
                    && wid.as_ref().is_none_or(|w| *w == e.workflow_id)
                    && wtype.as_ref().is_none_or(|(n, v)| {
                        *n == e.workflow_type.0
                            && v.as_ref().is_none_or(|v| *v == e.workflow_type.1)
                    })
                    && tag.as_ref().is_none_or(|t| e.tag_list.contains(t))
                    && status.is_none_or(|s| e.close_status.as_deref() == Some(s))
            })
            .collect();
        // Newest first, as SWF sorts; closed executions by close time when filtered by it.
        let by_close = close_range.is_some();
        found.sort_by(|a, b| {
            let ka = if by_close {
                a.close_ms.unwrap_or(0)
            } else {
                a.start_ms
            };
            let kb = if by_close {
                b.close_ms.unwrap_or(0)
            } else {
                b.start_ms
            };
            kb.cmp(&ka).then_with(|| b.run_id.cmp(&a.run_id))
        });
        Ok((scope, found))
    }

    pub fn list_executions(&self, r: &Req, open: bool) -> Result<Value, Fault> {
        let size = r.page_size()?;
        let reverse = r.opt_bool("reverseOrder")?.unwrap_or(false);
        let (scope, mut found) = self.execution_filter(r, open)?;
        if reverse {
            found.reverse();
        }
        let scope = format!("{scope}:{reverse}");
        let offset = parse_list_token(r, &scope)?;
        let infos: Vec<Value> = found.into_iter().map(Execution::info_json).collect();
        let (page, next) = paged(infos, offset, size, &scope);
        Ok(with_token(json!({"executionInfos": page}), next))
    }

    pub fn count_executions(&self, r: &Req, open: bool) -> Result<Value, Fault> {
        let (_, found) = self.execution_filter(r, open)?;
        Ok(json!({"count": found.len(), "truncated": false}))
    }

    /// Whether a queued item is still a task a poller may take.
    pub fn queue_item_live(&self, run: &str, sched: i64) -> bool {
        match self.execs.get(run) {
            Some(ex) if ex.is_open() => {
                if sched == 0 {
                    matches!(ex.decision, DecisionState::Scheduled { .. })
                } else {
                    ex.activities.get(&sched).is_some_and(|a| a.run.is_none())
                }
            }
            _ => false,
        }
    }

    pub fn count_pending(&self, r: &Req, activity: bool) -> Result<Value, Fault> {
        let domain = r.name("domain")?;
        let tl = r.task_list("taskList")?;
        self.domain(domain)?;
        let count = self
            .queues
            .get(&(domain.to_string(), activity, tl))
            .map(|q| {
                q.items
                    .values()
                    .filter(|(run, sched)| self.queue_item_live(run, *sched))
                    .count()
            })
            .unwrap_or(0);
        Ok(json!({"count": count, "truncated": false}))
    }

    /// Removes closed executions whose retention period has passed.
    pub fn purge_expired(&mut self, now: i64) -> usize {
        let expired: Vec<String> = self
            .execs
            .values()
            .filter(|e| {
                let days = self.domains.get(&e.domain).map_or(0, |d| d.retention_days) as i64;
                e.close_ms.is_some_and(|c| c + days * 86_400_000 <= now)
            })
            .map(|e| e.run_id.clone())
            .collect();
        for run in &expired {
            self.execs.remove(run);
            self.dirty.remove(run);
            self.pending.push(Op::DeleteExecution {
                run_id: run.clone(),
            });
        }
        expired.len()
    }
}
