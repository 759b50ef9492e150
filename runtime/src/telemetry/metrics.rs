//! Every metric the runtime emits, defined once with its kind, help text and labels.
//!
//! Names follow `swf_<noun>_<unit>[_total]`. Labels are low-cardinality only: never a workflow id,
//! media uuid or user uuid (those belong in spans and logs). The dashboards, recording rules and
//! alerts are tested against a real scrape, so renaming here is a breaking change for operators.
//!
//! Code updates a metric through [`increment`], [`set_gauge`] or [`record`] with its definition
//! and label values: the handle is registered once per thread and label set and kept (and updated
//! in place) for the life of the thread, so an update costs a hash of the label values and no
//! allocation.

/// Label keys. Only these may appear on a metric.
pub mod labels {
    pub const WORKFLOW_TYPE: &str = "workflow_type";
    pub const ACTIVITY_TYPE: &str = "activity_type";
    pub const TASK_LIST: &str = "task_list";
    pub const OUTCOME: &str = "outcome";
    pub const ERROR_TYPE: &str = "error_type";
    /// The SWF API operation (a fixed set of ~30 names), for the API call metrics.
    pub const OPERATION: &str = "operation";
    /// The decision type (a fixed set of 13 names), for the decisions metric.
    pub const DECISION_TYPE: &str = "decision_type";
    pub const ALL: &[&str] = &[
        WORKFLOW_TYPE,
        ACTIVITY_TYPE,
        TASK_LIST,
        OUTCOME,
        ERROR_TYPE,
        OPERATION,
        DECISION_TYPE,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric's definition.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

use labels as l;

macro_rules! metric {
    ($ident:ident, $name:literal, $kind:ident, $help:literal, [$($label:expr),*]) => {
        pub const $ident: MetricDef = MetricDef {
            name: $name,
            kind: Kind::$kind,
            help: $help,
            labels: &[$($label),*],
        };
    };
}

// Activity tasks.
metric!(ACTIVITY_SCHEDULE_TO_START, "swf_activity_schedule_to_start_seconds", Histogram,
    "Time an activity task waited on its task list between being scheduled and being picked up by a worker.",
    [l::ACTIVITY_TYPE, l::TASK_LIST]);
metric!(ACTIVITY_EXECUTION, "swf_activity_execution_seconds", Histogram,
    "Time a worker spent running an activity task, from poll answer to its final response (start-to-close).",
    [l::ACTIVITY_TYPE, l::TASK_LIST, l::OUTCOME]);
metric!(
    ACTIVITY_END_TO_END,
    "swf_activity_end_to_end_seconds",
    Histogram,
    "Time from an activity task being scheduled to its final response (schedule-to-close).",
    [l::ACTIVITY_TYPE, l::TASK_LIST, l::OUTCOME]
);
metric!(ACTIVITY_TASKS, "swf_activity_tasks_total", Counter,
    "Activity tasks finished by this worker, by outcome (completed, failed, canceled, timed_out, deferred, answer_failed).",
    [l::ACTIVITY_TYPE, l::TASK_LIST, l::OUTCOME]);
metric!(
    ACTIVITY_HEARTBEATS,
    "swf_activity_heartbeats_total",
    Counter,
    "Heartbeats sent for running activity tasks.",
    [l::ACTIVITY_TYPE, l::TASK_LIST]
);
metric!(
    ACTIVITY_HEARTBEAT_FAILURES,
    "swf_activity_heartbeat_failures_total",
    Counter,
    "Heartbeats that failed, by error type.",
    [l::ACTIVITY_TYPE, l::TASK_LIST, l::ERROR_TYPE]
);
metric!(ACTIVITY_UNKNOWN_RESOURCE, "swf_activity_unknown_resource_total", Counter,
    "Activity tasks abandoned because SWF answered UnknownResourceFault (the task had timed out or was closed).",
    [l::ACTIVITY_TYPE, l::TASK_LIST]);
metric!(
    WORKER_SLOTS_IN_USE,
    "swf_worker_slots_in_use",
    Gauge,
    "Activity slots currently running a task.",
    [l::TASK_LIST]
);
metric!(
    WORKER_SLOTS_FREE,
    "swf_worker_slots_free",
    Gauge,
    "Activity slots currently free to take a task.",
    [l::TASK_LIST]
);
metric!(
    WORKER_DRAINING,
    "swf_worker_draining",
    Gauge,
    "1 while the runtime drains in-flight tasks before exiting, else 0.",
    [l::TASK_LIST]
);

// Decision tasks.
metric!(
    DECISION_SCHEDULE_TO_START,
    "swf_decision_schedule_to_start_seconds",
    Histogram,
    "Time a decision task waited between being scheduled and being picked up by a decider.",
    [l::WORKFLOW_TYPE, l::TASK_LIST]
);
metric!(DECISION_EXECUTION, "swf_decision_execution_seconds", Histogram,
    "Time a decider spent on one decision task: fetching every history page, deciding and responding.",
    [l::WORKFLOW_TYPE, l::OUTCOME]);
metric!(
    DECISION_HISTORY_PAGES,
    "swf_decision_history_pages_total",
    Counter,
    "History pages fetched by deciders.",
    [l::WORKFLOW_TYPE]
);
metric!(
    DECISIONS,
    "swf_decisions_total",
    Counter,
    "Decisions returned to SWF, by decision type.",
    [l::WORKFLOW_TYPE, l::DECISION_TYPE]
);

// Workflow executions.
metric!(WORKFLOW_EXECUTIONS, "swf_workflow_executions_total", Counter,
    "Workflow executions started by this runtime or closed by its decider, by outcome (started, completed, failed, canceled, timed_out, continued_as_new).",
    [l::WORKFLOW_TYPE, l::OUTCOME]);
metric!(
    WORKFLOW_END_TO_END,
    "swf_workflow_end_to_end_seconds",
    Histogram,
    "Time from a workflow execution's start to its close, as seen by the decider that closed it.",
    [l::WORKFLOW_TYPE, l::OUTCOME]
);
metric!(STAGE_DURATION, "swf_stage_duration_seconds", Histogram,
    "Time from a stage's first scheduling to its final close, retries and backoff included; the alerts watch it.",
    [l::WORKFLOW_TYPE, l::ACTIVITY_TYPE, l::OUTCOME]);
metric!(
    STAGE_ATTEMPTS,
    "swf_stage_retries_total",
    Counter,
    "Stage attempts scheduled again after a failure or timeout, by the reason of the retry.",
    [l::WORKFLOW_TYPE, l::ACTIVITY_TYPE, l::ERROR_TYPE]
);

// Polls and API calls.
metric!(
    POLLS,
    "swf_polls_total",
    Counter,
    "Long polls answered, by outcome (task, empty, error).",
    [l::TASK_LIST, l::OUTCOME]
);
metric!(
    API_CALLS,
    "swf_api_calls_total",
    Counter,
    "SWF API calls made, by operation and outcome (ok, error).",
    [l::OPERATION, l::OUTCOME]
);
metric!(
    API_ERRORS,
    "swf_api_errors_total",
    Counter,
    "SWF API calls that failed, by operation and error type.",
    [l::OPERATION, l::ERROR_TYPE]
);
metric!(
    API_THROTTLES,
    "swf_api_throttles_total",
    Counter,
    "SWF API calls refused for throttling (retried with backoff).",
    [l::OPERATION]
);
metric!(
    API_CALL_DURATION,
    "swf_api_call_duration_seconds",
    Histogram,
    "Latency of SWF API calls, long polls included.",
    [l::OPERATION]
);
metric!(
    PENDING_TASKS,
    "swf_task_list_pending_tasks",
    Gauge,
    "Tasks waiting on a task list, sampled with CountPending*Tasks.",
    [l::TASK_LIST]
);

// The telemetry itself.
metric!(
    LOG_LINES_SHIPPED,
    "swf_log_lines_shipped_total",
    Counter,
    "Log lines delivered to Logstash.",
    []
);
metric!(
    LOG_LINES_SPOOLED,
    "swf_log_lines_spooled_total",
    Counter,
    "Log lines written to the on-disk spool while Logstash was unreachable.",
    []
);
metric!(
    LOG_LINES_DROPPED,
    "swf_log_lines_dropped_total",
    Counter,
    "Log lines dropped because the spool was full.",
    []
);
metric!(
    SPANS_EXPORTED,
    "swf_spans_exported_total",
    Counter,
    "Spans exported over OTLP.",
    []
);
metric!(
    SPANS_DROPPED,
    "swf_spans_dropped_total",
    Counter,
    "Spans dropped because the OTLP exporter failed or its queue was full.",
    []
);

/// Every metric, for describing them to the recorder and for tests.
pub const ALL: &[MetricDef] = &[
    ACTIVITY_SCHEDULE_TO_START,
    ACTIVITY_EXECUTION,
    ACTIVITY_END_TO_END,
    ACTIVITY_TASKS,
    ACTIVITY_HEARTBEATS,
    ACTIVITY_HEARTBEAT_FAILURES,
    ACTIVITY_UNKNOWN_RESOURCE,
    WORKER_SLOTS_IN_USE,
    WORKER_SLOTS_FREE,
    WORKER_DRAINING,
    DECISION_SCHEDULE_TO_START,
    DECISION_EXECUTION,
    DECISION_HISTORY_PAGES,
    DECISIONS,
    WORKFLOW_EXECUTIONS,
    WORKFLOW_END_TO_END,
    STAGE_DURATION,
    STAGE_ATTEMPTS,
    POLLS,
    API_CALLS,
    API_ERRORS,
    API_THROTTLES,
    API_CALL_DURATION,
    PENDING_TASKS,
    LOG_LINES_SHIPPED,
    LOG_LINES_SPOOLED,
    LOG_LINES_DROPPED,
    SPANS_EXPORTED,
    SPANS_DROPPED,
];

/// Histogram buckets in seconds, for every histogram: media work runs from milliseconds (an empty
/// poll answered at once) to hours (manual face recognition).
pub const BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
];

/// Adds `n` to a counter; label values in the order of `def.labels`.
///
/// Why not the `counter!` macro at each site: it builds a `Key` (a `String` per label value),
/// hashes it and looks it up in the recorder's registry on every update, which was 1.3% of the
/// bench's CPU with telemetry on. Here the handle is looked up once per thread and label set and
/// kept for the life of the thread, and updated where it is kept: handing out a clone (an `Arc`
/// shared by every thread) cost two contended atomic operations per update.
pub fn increment(def: &MetricDef, labels: &[&str], n: u64) {
    debug_assert_eq!(def.kind, Kind::Counter, "{}", def.name);
    with_kept(&COUNTERS, def, labels, register_counter, |c| c.increment(n));
}

/// Sets a gauge; see [`increment`].
pub fn set_gauge(def: &MetricDef, labels: &[&str], value: f64) {
    debug_assert_eq!(def.kind, Kind::Gauge, "{}", def.name);
    with_kept(&GAUGES, def, labels, register_gauge, |g| g.set(value));
}

/// Records a value (seconds) in a histogram; see [`increment`].
pub fn record(def: &MetricDef, labels: &[&str], value: f64) {
    debug_assert_eq!(def.kind, Kind::Histogram, "{}", def.name);
    with_kept(&HISTOGRAMS, def, labels, register_histogram, |h| {
        h.record(value)
    });
}

fn register_counter(r: &dyn ::metrics::Recorder, key: &::metrics::Key) -> ::metrics::Counter {
    r.register_counter(key, &METADATA)
}

fn register_gauge(r: &dyn ::metrics::Recorder, key: &::metrics::Key) -> ::metrics::Gauge {
    r.register_gauge(key, &METADATA)
}

fn register_histogram(r: &dyn ::metrics::Recorder, key: &::metrics::Key) -> ::metrics::Histogram {
    r.register_histogram(key, &METADATA)
}

static METADATA: ::metrics::Metadata<'static> =
    ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// Address of the process's global recorder once [`super::server::prometheus_handle`] installed
/// it; 0 before. Only its handles are kept: a test's local recorder may be dropped and another
/// built at the same address, and its handles must not outlive it.
static GLOBAL_RECORDER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Notes the global recorder just installed, so that its handles can be kept.
pub(crate) fn global_recorder_installed() {
    // A fresh thread has no local recorder, so what it sees is the global one.
    let addr = std::thread::scope(|s| s.spawn(recorder_addr).join().unwrap_or(0));
    GLOBAL_RECORDER.store(addr, std::sync::atomic::Ordering::Relaxed);
}

fn recorder_addr() -> usize {
    ::metrics::with_recorder(|r| (r as *const dyn ::metrics::Recorder).cast::<()>() as usize)
}

type HandleMap<H> = std::collections::HashMap<u64, Kept<H>, foldhash::fast::FixedState>;

/// A kept handle with what it was registered for, compared on each hit: the map is keyed by a
/// 64-bit hash only, so that a lookup builds nothing.
struct Kept<H> {
    name: &'static str,
    labels: Box<[Box<str>]>,
    handle: H,
}

thread_local! {
    static COUNTERS: std::cell::RefCell<HandleMap<::metrics::Counter>> = Default::default();
    static GAUGES: std::cell::RefCell<HandleMap<::metrics::Gauge>> = Default::default();
    static HISTOGRAMS: std::cell::RefCell<HandleMap<::metrics::Histogram>> = Default::default();
}

/// Per-thread handle cache: lock-free (a thread has a handful of label sets) and filled on first
/// use; `update` runs on the kept handle. While telemetry is off ([`super::enabled`]) nothing is
/// recorded, as with the switchable recorder's no-op handles, nor when the configuration disabled
/// it (no recorder is installed then).
fn with_kept<H>(
    cache: &'static std::thread::LocalKey<std::cell::RefCell<HandleMap<H>>>,
    def: &MetricDef,
    values: &[&str],
    register: fn(&dyn ::metrics::Recorder, &::metrics::Key) -> H,
    update: impl FnOnce(&H),
) {
    debug_assert_eq!(def.labels.len(), values.len(), "{} labels", def.name);
    if !super::enabled() || super::metrics_discarded() {
        return;
    }
    let global = GLOBAL_RECORDER.load(std::sync::atomic::Ordering::Relaxed);
    let keep = global != 0 && recorder_addr() == global;
    let hash = keep.then(|| {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
        def.name.hash(&mut h);
        values.hash(&mut h);
        h.finish()
    });
    let mut update = Some(update);
    if let Some(hash) = hash {
        // `update` only touches the handle (an atomic operation), never this cache.
        cache.with_borrow(|map| {
            let hit = map.get(&hash).filter(|k| {
                k.name == def.name
                    && k.labels.len() == values.len()
                    && k.labels.iter().zip(values).all(|(a, b)| **a == **b)
            });
            if let Some(kept) = hit {
                if let Some(update) = update.take() {
                    update(&kept.handle);
                }
            }
        });
    }
    let Some(update) = update else { return };
    let labels: Vec<::metrics::Label> = def
        .labels
        .iter()
        .zip(values)
        .map(|(k, v)| ::metrics::Label::new(*k, v.to_string()))
        .collect();
    let key = ::metrics::Key::from_parts(def.name, labels);
    let handle = ::metrics::with_recorder(|r| register(r, &key));
    update(&handle);
    if let Some(hash) = hash {
        cache.with_borrow_mut(|map| {
            // A 64-bit collision keeps the first label set; the other is looked up each time.
            map.entry(hash).or_insert_with(|| Kept {
                name: def.name,
                labels: values.iter().map(|v| Box::from(*v)).collect(),
                handle,
            });
        });
    }
}

/// Registers every metric's help text with the installed `metrics` recorder.
pub fn describe_all() {
    for m in ALL {
        match m.kind {
            Kind::Counter => ::metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => ::metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => ::metrics::describe_histogram!(m.name, m.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention_and_labels_are_allowed() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} defined twice", m.name);
            assert!(m.name.starts_with("swf_"), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Kind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                Kind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            assert!(m.help.ends_with('.'), "{} help", m.name);
            for label in m.labels {
                assert!(
                    labels::ALL.contains(label),
                    "{} has label {}",
                    m.name,
                    label
                );
            }
        }
    }
}
