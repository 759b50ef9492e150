//! An indexed view of one workflow execution's whole history, built in a single pass.
//!
//! The decider is stateless: on every decision task the poller collects every history page,
//! builds a [`WorkflowHistory`] and hands it to the workflow. Everything a decider needs (the
//! activities and their outcomes, timers, child workflows, signals, cancel requests and the
//! `*Failed` answers to earlier decisions) is indexed here by id in hash maps, so deciding on a
//! 25,000-event history stays linear. Records keep event ids and timestamps so the same view
//! also feeds the per-stage timeline.

use std::collections::HashMap;

use crate::swf::model::{EventAttributes, HistoryEvent, TaskList};
use crate::swf::{TypeRef, WorkflowExecution};

/// Why a history cannot be decided on.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history does not begin with WorkflowExecutionStarted: the pages were fetched from the
    /// middle or in reverse order. Fetch the whole history from the first page.
    #[error("history of {workflow_id} has no WorkflowExecutionStarted event")]
    NotStarted { workflow_id: String },
}

/// How an activity or child workflow attempt ended (or that it has not yet).
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// Scheduled (or initiated) and not closed yet.
    Open,
    Completed {
        result: Option<String>,
    },
    Failed {
        reason: Option<String>,
        details: Option<String>,
    },
    /// `timeout_type` is SWF's (START_TO_CLOSE, HEARTBEAT, SCHEDULE_TO_START, ...).
    TimedOut {
        timeout_type: String,
        details: Option<String>,
    },
    Canceled {
        details: Option<String>,
    },
    /// A child workflow that was terminated.
    Terminated,
}

impl AttemptOutcome {
    pub fn is_open(&self) -> bool {
        matches!(self, AttemptOutcome::Open)
    }

    /// The `outcome` value for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptOutcome::Open => "open",
            AttemptOutcome::Completed { .. } => "completed",
            AttemptOutcome::Failed { .. } => "failed",
            AttemptOutcome::TimedOut { .. } => "timed_out",
            AttemptOutcome::Canceled { .. } => "canceled",
            AttemptOutcome::Terminated => "terminated",
        }
    }

    /// One line describing a failure, for failure reasons and the timeline.
    pub fn describe(&self) -> String {
        match self {
            AttemptOutcome::Open => "still running".into(),
            AttemptOutcome::Completed { .. } => "completed".into(),
            AttemptOutcome::Failed { reason, details } => match (reason, details) {
                (Some(r), Some(d)) => format!("failed: {r}: {d}"),
                (Some(r), None) => format!("failed: {r}"),
                (None, Some(d)) => format!("failed: {d}"),
                (None, None) => "failed".into(),
            },
            AttemptOutcome::TimedOut { timeout_type, .. } => format!("timed out ({timeout_type})"),
            AttemptOutcome::Canceled { .. } => "canceled".into(),
            AttemptOutcome::Terminated => "terminated".into(),
        }
    }
}

/// The timeouts an activity was scheduled with, as SWF recorded them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordedTimeouts {
    pub schedule_to_start: Option<String>,
    pub schedule_to_close: Option<String>,
    pub start_to_close: Option<String>,
    pub heartbeat: Option<String>,
}

/// One scheduled activity task, from ActivityTaskScheduled to its close.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub activity_id: String,
    pub activity_type: TypeRef,
    pub task_list: Option<TaskList>,
    pub control: Option<String>,
    pub input: Option<String>,
    pub timeouts: RecordedTimeouts,
    pub scheduled_event_id: i64,
    pub scheduled_at: f64,
    pub started_at: Option<f64>,
    pub identity: Option<String>,
    pub closed_at: Option<f64>,
    pub closed_event_id: Option<i64>,
    pub cancel_requested: bool,
    pub outcome: AttemptOutcome,
}

/// One child workflow, from StartChildWorkflowExecutionInitiated to its close.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRecord {
    pub workflow_id: String,
    pub workflow_type: TypeRef,
    pub run_id: Option<String>,
    pub control: Option<String>,
    pub initiated_event_id: i64,
    pub initiated_at: f64,
    pub started_at: Option<f64>,
    pub closed_at: Option<f64>,
    pub closed_event_id: Option<i64>,
    pub outcome: AttemptOutcome,
}

/// One timer, from TimerStarted to TimerFired or TimerCanceled.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerRecord {
    pub timer_id: String,
    pub control: Option<String>,
    pub start_to_fire_timeout: String,
    pub started_event_id: i64,
    pub started_at: f64,
    pub fired_at: Option<f64>,
    pub canceled: bool,
}

impl TimerRecord {
    pub fn is_open(&self) -> bool {
        self.fired_at.is_none() && !self.canceled
    }
}

/// One WorkflowExecutionSignaled event.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRecord {
    pub event_id: i64,
    pub at: f64,
    pub name: String,
    pub input: Option<String>,
}

/// One `*Failed` event answering a decision (ScheduleActivityTaskFailed, StartTimerFailed, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionFailure {
    pub event_id: i64,
    /// The event type, e.g. `StartTimerFailed`.
    pub event_type: String,
    /// SWF's cause, e.g. `TIMER_ID_ALREADY_IN_USE` or `UNHANDLED_DECISION`.
    pub cause: String,
    /// What the decision was about: the activity id, timer id, child workflow id, ... (empty
    /// for the close decisions).
    pub target: String,
}

impl DecisionFailure {
    /// Whether this failure answered a decision that would have closed the execution.
    pub fn is_close_failure(&self) -> bool {
        matches!(
            self.event_type.as_str(),
            "CompleteWorkflowExecutionFailed"
                | "FailWorkflowExecutionFailed"
                | "CancelWorkflowExecutionFailed"
                | "ContinueAsNewWorkflowExecutionFailed"
        )
    }
}

/// The whole history of one execution, indexed.
#[derive(Debug, Clone)]
pub struct WorkflowHistory {
    pub execution: WorkflowExecution,
    pub workflow_type: TypeRef,
    pub input: Option<String>,
    pub task_list: Option<TaskList>,
    pub execution_start_to_close_timeout: Option<String>,
    pub task_start_to_close_timeout: Option<String>,
    pub child_policy: String,
    pub tag_list: Vec<String>,
    /// The run this one continues, when it was started by ContinueAsNew.
    pub continued_execution_run_id: Option<String>,
    pub started_at: f64,
    events: Vec<HistoryEvent>,
    activities: Vec<ActivityRecord>,
    activity_by_scheduled_id: HashMap<i64, usize>,
    /// The latest ActivityTaskScheduled of each activity id.
    activity_by_id: HashMap<String, usize>,
    children: Vec<ChildRecord>,
    child_by_initiated_id: HashMap<i64, usize>,
    child_by_workflow_id: HashMap<String, usize>,
    timers: HashMap<String, TimerRecord>,
    timer_by_started_id: HashMap<i64, String>,
    signals: Vec<SignalRecord>,
    markers: Vec<(String, Option<String>)>,
    decision_failures: Vec<DecisionFailure>,
    cancel_requested_event_id: Option<i64>,
    closed_event_type: Option<String>,
}

impl WorkflowHistory {
    /// Indexes a history given in event order, from the first event.
    pub fn new(
        execution: WorkflowExecution,
        events: Vec<HistoryEvent>,
    ) -> Result<WorkflowHistory, HistoryError> {
        let started = events.iter().find_map(|e| match &e.attributes {
            EventAttributes::WorkflowExecutionStarted(a) => Some((a.clone(), e.event_timestamp)),
            _ => None,
        });
        let Some((started, started_at)) = started else {
            return Err(HistoryError::NotStarted {
                workflow_id: execution.workflow_id,
            });
        };
        let mut h = WorkflowHistory {
            execution,
            workflow_type: started.workflow_type,
            input: started.input,
            task_list: started.task_list,
            execution_start_to_close_timeout: started.execution_start_to_close_timeout,
            task_start_to_close_timeout: started.task_start_to_close_timeout,
            child_policy: started.child_policy,
            tag_list: started.tag_list,
            continued_execution_run_id: started.continued_execution_run_id,
            started_at,
            events: Vec::new(),
            activities: Vec::new(),
            activity_by_scheduled_id: HashMap::new(),
            activity_by_id: HashMap::new(),
            children: Vec::new(),
            child_by_initiated_id: HashMap::new(),
            child_by_workflow_id: HashMap::new(),
            timers: HashMap::new(),
            timer_by_started_id: HashMap::new(),
            signals: Vec::new(),
            markers: Vec::new(),
            decision_failures: Vec::new(),
            cancel_requested_event_id: None,
            closed_event_type: None,
        };
        for e in &events {
            h.index(e);
        }
        h.events = events;
        Ok(h)
    }

    fn close_activity(
        &mut self,
        scheduled_event_id: i64,
        e: &HistoryEvent,
        outcome: AttemptOutcome,
    ) {
        if let Some(&i) = self.activity_by_scheduled_id.get(&scheduled_event_id) {
            let a = &mut self.activities[i];
            a.closed_at = Some(e.event_timestamp);
            a.closed_event_id = Some(e.event_id);
            a.outcome = outcome;
        }
    }

    fn close_child(&mut self, initiated_event_id: i64, e: &HistoryEvent, outcome: AttemptOutcome) {
        if let Some(&i) = self.child_by_initiated_id.get(&initiated_event_id) {
            let c = &mut self.children[i];
            c.closed_at = Some(e.event_timestamp);
            c.closed_event_id = Some(e.event_id);
            c.outcome = outcome;
        }
    }

    fn failure(&mut self, e: &HistoryEvent, cause: &str, target: &str) {
        self.decision_failures.push(DecisionFailure {
            event_id: e.event_id,
            event_type: e.event_type().to_string(),
            cause: cause.to_string(),
            target: target.to_string(),
        });
    }

    fn index(&mut self, e: &HistoryEvent) {
        use EventAttributes as A;
        match &e.attributes {
            A::ActivityTaskScheduled(a) => {
                let i = self.activities.len();
                self.activities.push(ActivityRecord {
                    activity_id: a.activity_id.clone(),
                    activity_type: a.activity_type.clone(),
                    task_list: a.task_list.clone(),
                    control: a.control.clone(),
                    input: a.input.clone(),
                    timeouts: RecordedTimeouts {
                        schedule_to_start: a.schedule_to_start_timeout.clone(),
                        schedule_to_close: a.schedule_to_close_timeout.clone(),
                        start_to_close: a.start_to_close_timeout.clone(),
                        heartbeat: a.heartbeat_timeout.clone(),
                    },
                    scheduled_event_id: e.event_id,
                    scheduled_at: e.event_timestamp,
                    started_at: None,
                    identity: None,
                    closed_at: None,
                    closed_event_id: None,
                    cancel_requested: false,
                    outcome: AttemptOutcome::Open,
                });
                self.activity_by_scheduled_id.insert(e.event_id, i);
                self.activity_by_id.insert(a.activity_id.clone(), i);
            }
            A::ActivityTaskStarted(a) => {
                if let Some(&i) = self.activity_by_scheduled_id.get(&a.scheduled_event_id) {
                    self.activities[i].started_at = Some(e.event_timestamp);
                    self.activities[i].identity = a.identity.clone();
                }
            }
            A::ActivityTaskCompleted(a) => self.close_activity(
                a.scheduled_event_id,
                e,
                AttemptOutcome::Completed {
                    result: a.result.clone(),
                },
            ),
            A::ActivityTaskFailed(a) => self.close_activity(
                a.scheduled_event_id,
                e,
                AttemptOutcome::Failed {
                    reason: a.reason.clone(),
                    details: a.details.clone(),
                },
            ),
            A::ActivityTaskTimedOut(a) => self.close_activity(
                a.scheduled_event_id,
                e,
                AttemptOutcome::TimedOut {
                    timeout_type: a.timeout_type.clone(),
                    details: a.details.clone(),
                },
            ),
            A::ActivityTaskCanceled(a) => self.close_activity(
                a.scheduled_event_id,
                e,
                AttemptOutcome::Canceled {
                    details: a.details.clone(),
                },
            ),
            A::ActivityTaskCancelRequested(a) => {
                if let Some(&i) = self.activity_by_id.get(&a.activity_id) {
                    self.activities[i].cancel_requested = true;
                }
            }
            A::ScheduleActivityTaskFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.activity_id.clone());
                self.failure(e, &cause, &id);
            }
            A::RequestCancelActivityTaskFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.activity_id.clone());
                self.failure(e, &cause, &id);
            }
            A::TimerStarted(a) => {
                self.timer_by_started_id
                    .insert(e.event_id, a.timer_id.clone());
                self.timers.insert(
                    a.timer_id.clone(),
                    TimerRecord {
                        timer_id: a.timer_id.clone(),
                        control: a.control.clone(),
                        start_to_fire_timeout: a.start_to_fire_timeout.clone(),
                        started_event_id: e.event_id,
                        started_at: e.event_timestamp,
                        fired_at: None,
                        canceled: false,
                    },
                );
            }
            A::TimerFired(a) => {
                if let Some(t) = self.timers.get_mut(&a.timer_id) {
                    t.fired_at = Some(e.event_timestamp);
                }
            }
            A::TimerCanceled(a) => {
                if let Some(t) = self.timers.get_mut(&a.timer_id) {
                    t.canceled = true;
                }
            }
            A::StartTimerFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.timer_id.clone());
                self.failure(e, &cause, &id);
            }
            A::CancelTimerFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.timer_id.clone());
                self.failure(e, &cause, &id);
            }
            A::StartChildWorkflowExecutionInitiated(a) => {
                let i = self.children.len();
                self.children.push(ChildRecord {
                    workflow_id: a.workflow_id.clone(),
                    workflow_type: a.workflow_type.clone(),
                    run_id: None,
                    control: a.control.clone(),
                    initiated_event_id: e.event_id,
                    initiated_at: e.event_timestamp,
                    started_at: None,
                    closed_at: None,
                    closed_event_id: None,
                    outcome: AttemptOutcome::Open,
                });
                self.child_by_initiated_id.insert(e.event_id, i);
                self.child_by_workflow_id.insert(a.workflow_id.clone(), i);
            }
            A::StartChildWorkflowExecutionFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.workflow_id.clone());
                self.failure(e, &cause, &id);
                // The initiation never produced a child: close its record so nobody waits on it.
                self.close_child(
                    a.initiated_event_id,
                    e,
                    AttemptOutcome::Failed {
                        reason: Some(format!("StartChildWorkflowExecution failed: {cause}")),
                        details: None,
                    },
                );
            }
            A::ChildWorkflowExecutionStarted(a) => {
                if let Some(&i) = self.child_by_initiated_id.get(&a.initiated_event_id) {
                    self.children[i].started_at = Some(e.event_timestamp);
                    self.children[i].run_id =
                        a.workflow_execution.as_ref().map(|x| x.run_id.clone());
                }
            }
            A::ChildWorkflowExecutionCompleted(a) => self.close_child(
                a.initiated_event_id,
                e,
                AttemptOutcome::Completed {
                    result: a.result.clone(),
                },
            ),
            A::ChildWorkflowExecutionFailed(a) => self.close_child(
                a.initiated_event_id,
                e,
                AttemptOutcome::Failed {
                    reason: a.reason.clone(),
                    details: a.details.clone(),
                },
            ),
            A::ChildWorkflowExecutionTimedOut(a) => self.close_child(
                a.initiated_event_id,
                e,
                AttemptOutcome::TimedOut {
                    timeout_type: a.timeout_type.clone(),
                    details: None,
                },
            ),
            A::ChildWorkflowExecutionCanceled(a) => self.close_child(
                a.initiated_event_id,
                e,
                AttemptOutcome::Canceled {
                    details: a.details.clone(),
                },
            ),
            A::ChildWorkflowExecutionTerminated(a) => {
                self.close_child(a.initiated_event_id, e, AttemptOutcome::Terminated)
            }
            A::WorkflowExecutionSignaled(a) => self.signals.push(SignalRecord {
                event_id: e.event_id,
                at: e.event_timestamp,
                name: a.signal_name.clone(),
                input: a.input.clone(),
            }),
            A::WorkflowExecutionCancelRequested(_) => {
                self.cancel_requested_event_id.get_or_insert(e.event_id);
            }
            A::MarkerRecorded(a) => self
                .markers
                .push((a.marker_name.clone(), a.details.clone())),
            A::RecordMarkerFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.marker_name.clone());
                self.failure(e, &cause, &id);
            }
            A::CompleteWorkflowExecutionFailed(a) => {
                let cause = a.cause.clone();
                self.failure(e, &cause, "");
            }
            A::FailWorkflowExecutionFailed(a) => {
                let cause = a.cause.clone();
                self.failure(e, &cause, "");
            }
            A::CancelWorkflowExecutionFailed(a) => {
                let cause = a.cause.clone();
                self.failure(e, &cause, "");
            }
            A::ContinueAsNewWorkflowExecutionFailed(a) => {
                let cause = a.cause.clone();
                self.failure(e, &cause, "");
            }
            A::SignalExternalWorkflowExecutionFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.workflow_id.clone());
                self.failure(e, &cause, &id);
            }
            A::RequestCancelExternalWorkflowExecutionFailed(a) => {
                let (cause, id) = (a.cause.clone(), a.workflow_id.clone());
                self.failure(e, &cause, &id);
            }
            A::WorkflowExecutionCompleted(_)
            | A::WorkflowExecutionFailed(_)
            | A::WorkflowExecutionCanceled(_)
            | A::WorkflowExecutionTerminated(_)
            | A::WorkflowExecutionTimedOut(_)
            | A::WorkflowExecutionContinuedAsNew(_) => {
                self.closed_event_type = Some(e.event_type().to_string());
            }
            _ => {}
        }
    }

    /// Every event, in order.
    pub fn events(&self) -> &[HistoryEvent] {
        &self.events
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The timestamp of the last event (the DecisionTaskStarted of the task being decided).
    pub fn last_event_at(&self) -> f64 {
        self.events
            .last()
            .map_or(self.started_at, |e| e.event_timestamp)
    }

    /// The id of the last event.
    pub fn last_event_id(&self) -> i64 {
        self.events.last().map_or(0, |e| e.event_id)
    }

    /// Every activity task ever scheduled, in scheduling order.
    pub fn activities(&self) -> &[ActivityRecord] {
        &self.activities
    }

    /// The latest activity task scheduled with this id.
    pub fn activity(&self, activity_id: &str) -> Option<&ActivityRecord> {
        self.activity_by_id
            .get(activity_id)
            .map(|&i| &self.activities[i])
    }

    pub fn activity_by_scheduled_event(&self, scheduled_event_id: i64) -> Option<&ActivityRecord> {
        self.activity_by_scheduled_id
            .get(&scheduled_event_id)
            .map(|&i| &self.activities[i])
    }

    pub fn open_activities(&self) -> impl Iterator<Item = &ActivityRecord> {
        self.activities.iter().filter(|a| a.outcome.is_open())
    }

    pub fn children(&self) -> &[ChildRecord] {
        &self.children
    }

    /// The latest child workflow initiated with this workflow id.
    pub fn child(&self, workflow_id: &str) -> Option<&ChildRecord> {
        self.child_by_workflow_id
            .get(workflow_id)
            .map(|&i| &self.children[i])
    }

    pub fn timer(&self, timer_id: &str) -> Option<&TimerRecord> {
        self.timers.get(timer_id)
    }

    pub fn open_timers(&self) -> impl Iterator<Item = &TimerRecord> {
        self.timers.values().filter(|t| t.is_open())
    }

    pub fn signals(&self) -> &[SignalRecord] {
        &self.signals
    }

    pub fn markers(&self) -> &[(String, Option<String>)] {
        &self.markers
    }

    /// Every `*Failed` event answering a decision, in order.
    pub fn decision_failures(&self) -> &[DecisionFailure] {
        &self.decision_failures
    }

    /// The decision failure about this target (activity id, timer id, child workflow id), if any.
    pub fn decision_failure_for(&self, event_type: &str, target: &str) -> Option<&DecisionFailure> {
        self.decision_failures
            .iter()
            .rev()
            .find(|f| f.event_type == event_type && f.target == target)
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested_event_id.is_some()
    }

    /// The close event's type when the execution is already closed (then nothing is to decide).
    pub fn closed(&self) -> Option<&str> {
        self.closed_event_type.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swf::model::*;

    fn ev(id: i64, attributes: EventAttributes) -> HistoryEvent {
        HistoryEvent::new(id, id as f64, attributes)
    }

    #[test]
    fn indexes_activities_timers_and_failures() {
        let events = vec![
            ev(
                1,
                EventAttributes::WorkflowExecutionStarted(
                    WorkflowExecutionStartedEventAttributes {
                        input: Some("{}".into()),
                        ..Default::default()
                    },
                ),
            ),
            ev(
                2,
                EventAttributes::ActivityTaskScheduled(ActivityTaskScheduledEventAttributes {
                    activity_id: "a-1".into(),
                    ..Default::default()
                }),
            ),
            ev(
                3,
                EventAttributes::ActivityTaskStarted(ActivityTaskStartedEventAttributes {
                    scheduled_event_id: 2,
                    identity: Some("w".into()),
                }),
            ),
            ev(
                4,
                EventAttributes::ActivityTaskFailed(ActivityTaskFailedEventAttributes {
                    scheduled_event_id: 2,
                    started_event_id: 3,
                    reason: Some("boom".into()),
                    details: None,
                }),
            ),
            ev(
                5,
                EventAttributes::TimerStarted(TimerStartedEventAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: "5".into(),
                    ..Default::default()
                }),
            ),
            ev(
                6,
                EventAttributes::StartTimerFailed(StartTimerFailedEventAttributes {
                    timer_id: "u".into(),
                    cause: "TIMER_ID_ALREADY_IN_USE".into(),
                    decision_task_completed_event_id: 4,
                }),
            ),
        ];
        let h = WorkflowHistory::new(
            WorkflowExecution {
                workflow_id: "w".into(),
                run_id: "r".into(),
            },
            events,
        )
        .unwrap();
        let a = h.activity("a-1").unwrap();
        assert_eq!(a.started_at, Some(3.0));
        assert_eq!(a.outcome.label(), "failed");
        assert_eq!(a.outcome.describe(), "failed: boom");
        assert!(h.timer("t").unwrap().is_open());
        assert_eq!(h.open_timers().count(), 1);
        assert_eq!(
            h.decision_failure_for("StartTimerFailed", "u")
                .unwrap()
                .cause,
            "TIMER_ID_ALREADY_IN_USE"
        );
        assert!(h.closed().is_none());
        assert_eq!(h.event_count(), 6);
    }

    #[test]
    fn refuses_a_history_without_its_start() {
        let err = WorkflowHistory::new(
            WorkflowExecution {
                workflow_id: "w".into(),
                run_id: "r".into(),
            },
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().contains("WorkflowExecutionStarted"));
    }
}
