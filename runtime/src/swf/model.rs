//! History events and decisions in SWF's own JSON shape.
//!
//! The decider works on these types only: they are built from `aws-sdk-swf` responses
//! ([`HistoryEvent::from_aws`]), read from and written to SWF's JSON (recorded histories under
//! `runtime/tests/histories/`, `swf-runtime history --json`), and turned back into `aws-sdk-swf`
//! decisions ([`Decision::to_aws`]) when a decision task is answered. Every SWF event type the
//! runtime reads is modelled; anything newer (or the Lambda events) survives as
//! [`EventAttributes::Other`] so an unknown event never breaks a replay.
//!
//! Field types follow SWF's wire format: timeouts are strings of whole seconds (or `"NONE"`),
//! enums (causes, timeout types, child policies) are their SWF string values.

use std::fmt;

use aws_sdk_swf::types as aws;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{TypeRef, WorkflowExecution};

/// A task list as SWF writes it: `{"name": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskList {
    pub name: String,
}

impl TaskList {
    pub fn new(name: impl Into<String>) -> TaskList {
        TaskList { name: name.into() }
    }
}

/// A workflow execution as SWF writes it inside events: `{"workflowId": ..., "runId": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRef {
    pub workflow_id: String,
    pub run_id: String,
}

impl From<ExecutionRef> for WorkflowExecution {
    fn from(e: ExecutionRef) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: e.workflow_id,
            run_id: e.run_id,
        }
    }
}

impl From<&WorkflowExecution> for ExecutionRef {
    fn from(e: &WorkflowExecution) -> ExecutionRef {
        ExecutionRef {
            workflow_id: e.workflow_id.clone(),
            run_id: e.run_id.clone(),
        }
    }
}

/// The value a field takes when SWF's JSON leaves it out. `TypeRef` lives in another module and
/// has no `Default`, hence this crate-private stand-in.
trait ModelDefault {
    fn model_default() -> Self;
}

impl ModelDefault for String {
    fn model_default() -> Self {
        String::new()
    }
}
impl ModelDefault for i64 {
    fn model_default() -> Self {
        0
    }
}
impl<T> ModelDefault for Option<T> {
    fn model_default() -> Self {
        None
    }
}
impl<T> ModelDefault for Vec<T> {
    fn model_default() -> Self {
        Vec::new()
    }
}
impl ModelDefault for TypeRef {
    fn model_default() -> Self {
        TypeRef {
            name: String::new(),
            version: String::new(),
        }
    }
}

/// Whether a field is left out of the JSON, as SWF leaves out absent optional members. Event ids
/// start at 1, so a zero id means "absent" (e.g. `parentInitiatedEventId` without a parent).
trait WireSkip {
    fn wire_skip(&self) -> bool;
}

impl WireSkip for String {
    fn wire_skip(&self) -> bool {
        false
    }
}
impl WireSkip for TypeRef {
    fn wire_skip(&self) -> bool {
        false
    }
}
impl WireSkip for i64 {
    fn wire_skip(&self) -> bool {
        *self == 0
    }
}
impl<T> WireSkip for Option<T> {
    fn wire_skip(&self) -> bool {
        self.is_none()
    }
}
impl<T> WireSkip for Vec<T> {
    fn wire_skip(&self) -> bool {
        self.is_empty()
    }
}

/// Conversion from an `aws-sdk-swf` field to the model's field.
trait FromAws<A: ?Sized> {
    fn from_aws(a: &A) -> Self;
}

impl FromAws<i64> for i64 {
    fn from_aws(a: &i64) -> i64 {
        *a
    }
}
/// Strings and every SWF enum (cause, timeout type, child policy) become their wire string.
impl<E: AsRef<str>> FromAws<E> for String {
    fn from_aws(a: &E) -> String {
        a.as_ref().to_string()
    }
}
impl<E: AsRef<str>> FromAws<Option<E>> for Option<String> {
    fn from_aws(a: &Option<E>) -> Option<String> {
        a.as_ref().map(|s| s.as_ref().to_string())
    }
}
impl FromAws<Option<Vec<String>>> for Vec<String> {
    fn from_aws(a: &Option<Vec<String>>) -> Vec<String> {
        a.clone().unwrap_or_default()
    }
}
impl FromAws<Option<aws::ActivityType>> for TypeRef {
    fn from_aws(a: &Option<aws::ActivityType>) -> TypeRef {
        a.as_ref().map_or_else(TypeRef::model_default, |t| TypeRef {
            name: t.name.clone(),
            version: t.version.clone(),
        })
    }
}
impl FromAws<Option<aws::WorkflowType>> for TypeRef {
    fn from_aws(a: &Option<aws::WorkflowType>) -> TypeRef {
        a.as_ref().map_or_else(TypeRef::model_default, |t| TypeRef {
            name: t.name.clone(),
            version: t.version.clone(),
        })
    }
}
impl FromAws<Option<aws::TaskList>> for Option<TaskList> {
    fn from_aws(a: &Option<aws::TaskList>) -> Option<TaskList> {
        a.as_ref().map(|t| TaskList::new(t.name.clone()))
    }
}
impl FromAws<Option<aws::WorkflowExecution>> for Option<ExecutionRef> {
    fn from_aws(a: &Option<aws::WorkflowExecution>) -> Option<ExecutionRef> {
        a.as_ref().map(|e| ExecutionRef {
            workflow_id: e.workflow_id.clone(),
            run_id: e.run_id.clone(),
        })
    }
}

/// Conversion from a model field to the `Option` an `aws-sdk-swf` builder's `set_*` takes.
trait ToAws<T> {
    fn to_aws(&self) -> T;
}

/// Strings and SWF enums (child policy) are built from their wire string.
impl<E: for<'a> From<&'a str>> ToAws<Option<E>> for String {
    fn to_aws(&self) -> Option<E> {
        Some(E::from(self.as_str()))
    }
}
impl<E: for<'a> From<&'a str>> ToAws<Option<E>> for Option<String> {
    fn to_aws(&self) -> Option<E> {
        self.as_deref().map(E::from)
    }
}
impl ToAws<Option<Vec<String>>> for Vec<String> {
    fn to_aws(&self) -> Option<Vec<String>> {
        (!self.is_empty()).then(|| self.clone())
    }
}
impl ToAws<Option<aws::ActivityType>> for TypeRef {
    fn to_aws(&self) -> Option<aws::ActivityType> {
        Some(
            aws::ActivityType::builder()
                .name(&self.name)
                .version(&self.version)
                .build()
                .expect("name and version are always set"),
        )
    }
}
impl ToAws<Option<aws::WorkflowType>> for TypeRef {
    fn to_aws(&self) -> Option<aws::WorkflowType> {
        Some(
            aws::WorkflowType::builder()
                .name(&self.name)
                .version(&self.version)
                .build()
                .expect("name and version are always set"),
        )
    }
}
impl ToAws<Option<aws::TaskList>> for Option<TaskList> {
    fn to_aws(&self) -> Option<aws::TaskList> {
        self.as_ref().map(|t| {
            aws::TaskList::builder()
                .name(&t.name)
                .build()
                .expect("the name is always set")
        })
    }
}

/// A decision's attributes turned into their `aws-sdk-swf` counterpart.
trait ToAwsAttrs {
    type Aws;
    fn to_aws_attrs(&self) -> Self::Aws;
}

/// Declares the attribute structs: SWF's camelCase JSON, lenient about absent members.
macro_rules! attributes {
    ($( $(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase")]
            pub struct $name {
                $(
                    #[serde(default = "ModelDefault::model_default", skip_serializing_if = "WireSkip::wire_skip")]
                    pub $field: $ty,
                )*
            }

            impl Default for $name {
                fn default() -> Self {
                    Self { $($field: ModelDefault::model_default(),)* }
                }
            }

            impl $name {
                #[allow(dead_code)]
                fn from_aws_attrs(a: &aws::$name) -> Self {
                    Self { $($field: FromAws::from_aws(&a.$field),)* }
                }
            }
        )*
    };
}

/// Declares [`EventAttributes`] with its wire names and its conversion from `aws-sdk-swf`.
macro_rules! events {
    ($( $variant:ident($attrs:ident) = $key:literal, $aws_field:ident; )*) => {
        /// The typed attributes of one history event; the variant is the event's `eventType`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventAttributes {
            $( $variant($attrs), )*
            /// An event type the runtime does not model (e.g. the Lambda events); its attributes
            /// are not kept.
            Other { event_type: String },
        }

        impl EventAttributes {
            /// SWF's `eventType`.
            pub fn event_type(&self) -> &str {
                match self {
                    $( EventAttributes::$variant(_) => stringify!($variant), )*
                    EventAttributes::Other { event_type } => event_type,
                }
            }

            /// The JSON key of the attributes (`activityTaskScheduledEventAttributes`).
            fn key(&self) -> Option<&'static str> {
                match self {
                    $( EventAttributes::$variant(_) => Some($key), )*
                    EventAttributes::Other { .. } => None,
                }
            }

            fn serialize_attrs<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $( EventAttributes::$variant(a) => map.serialize_entry($key, a), )*
                    EventAttributes::Other { .. } => Ok(()),
                }
            }

            /// Reads the value of an attributes key; `None` when the key is not a modelled one.
            fn deserialize_attrs<'de, A: MapAccess<'de>>(
                key: &str,
                map: &mut A,
            ) -> Result<Option<EventAttributes>, A::Error> {
                Ok(match key {
                    $( $key => Some(EventAttributes::$variant(map.next_value::<$attrs>()?)), )*
                    _ => None,
                })
            }

            /// The attributes key SWF writes for a modelled event type.
            fn key_for_type(event_type: &str) -> Option<&'static str> {
                match event_type {
                    $( stringify!($variant) => Some($key), )*
                    _ => None,
                }
            }

            fn from_aws(e: &aws::HistoryEvent) -> EventAttributes {
                let event_type = e.event_type.as_str();
                let typed = match event_type {
                    $( stringify!($variant) => e.$aws_field.as_ref().map(|a| EventAttributes::$variant($attrs::from_aws_attrs(a))), )*
                    _ => None,
                };
                typed.unwrap_or_else(|| EventAttributes::Other { event_type: event_type.to_string() })
            }
        }
    };
}

/// Declares [`Decision`] with its wire names and its conversion to `aws-sdk-swf`.
macro_rules! decisions {
    ($( $variant:ident($attrs:ident) = $key:literal, $aws_field:ident; )*) => {
        /// One decision of a RespondDecisionTaskCompleted (every type but ScheduleLambdaFunction).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Decision {
            $( $variant($attrs), )*
        }

        impl Decision {
            /// SWF's `decisionType`, also the `decision_type` metric label.
            pub fn decision_type(&self) -> &'static str {
                match self {
                    $( Decision::$variant(_) => stringify!($variant), )*
                }
            }

            fn key(&self) -> &'static str {
                match self {
                    $( Decision::$variant(_) => $key, )*
                }
            }

            fn serialize_attrs<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $( Decision::$variant(a) => map.serialize_entry($key, a), )*
                }
            }

            fn deserialize_attrs<'de, A: MapAccess<'de>>(
                key: &str,
                map: &mut A,
            ) -> Result<Option<Decision>, A::Error> {
                Ok(match key {
                    $( $key => Some(Decision::$variant(map.next_value::<$attrs>()?)), )*
                    _ => None,
                })
            }

            /// An attribute-less decision of the given type, for JSON that leaves the attributes out.
            fn empty(decision_type: &str) -> Option<Decision> {
                match decision_type {
                    $( stringify!($variant) => Some(Decision::$variant($attrs::default())), )*
                    _ => None,
                }
            }

            /// Converts to the `aws-sdk-swf` decision sent in RespondDecisionTaskCompleted.
            pub fn to_aws(&self) -> aws::Decision {
                let builder = aws::Decision::builder();
                let builder = match self {
                    $( Decision::$variant(a) => builder
                        .decision_type(aws::DecisionType::$variant)
                        .$aws_field(a.to_aws_attrs()), )*
                };
                builder.build().expect("the decision type is always set")
            }
        }
    };
}

attributes! {
    /// Attributes of the `ActivityTaskCancelRequested` event.
    ActivityTaskCancelRequestedEventAttributes { decision_task_completed_event_id: i64, activity_id: String }
    /// Attributes of the `ActivityTaskCanceled` event.
    ActivityTaskCanceledEventAttributes { details: Option<String>, scheduled_event_id: i64, started_event_id: i64, latest_cancel_requested_event_id: i64 }
    /// Attributes of the `ActivityTaskCompleted` event.
    ActivityTaskCompletedEventAttributes { result: Option<String>, scheduled_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ActivityTaskFailed` event.
    ActivityTaskFailedEventAttributes { reason: Option<String>, details: Option<String>, scheduled_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ActivityTaskScheduled` event.
    ActivityTaskScheduledEventAttributes { activity_type: TypeRef, activity_id: String, input: Option<String>, control: Option<String>, schedule_to_start_timeout: Option<String>, schedule_to_close_timeout: Option<String>, start_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, decision_task_completed_event_id: i64, heartbeat_timeout: Option<String> }
    /// Attributes of the `ActivityTaskStarted` event.
    ActivityTaskStartedEventAttributes { identity: Option<String>, scheduled_event_id: i64 }
    /// Attributes of the `ActivityTaskTimedOut` event.
    ActivityTaskTimedOutEventAttributes { timeout_type: String, scheduled_event_id: i64, started_event_id: i64, details: Option<String> }
    /// Attributes of the `CancelTimerFailed` event.
    CancelTimerFailedEventAttributes { timer_id: String, cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `CancelWorkflowExecutionFailed` event.
    CancelWorkflowExecutionFailedEventAttributes { cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionCanceled` event.
    ChildWorkflowExecutionCanceledEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, details: Option<String>, initiated_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionCompleted` event.
    ChildWorkflowExecutionCompletedEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, result: Option<String>, initiated_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionFailed` event.
    ChildWorkflowExecutionFailedEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, reason: Option<String>, details: Option<String>, initiated_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionStarted` event.
    ChildWorkflowExecutionStartedEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, initiated_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionTerminated` event.
    ChildWorkflowExecutionTerminatedEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, initiated_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ChildWorkflowExecutionTimedOut` event.
    ChildWorkflowExecutionTimedOutEventAttributes { workflow_execution: Option<ExecutionRef>, workflow_type: TypeRef, timeout_type: String, initiated_event_id: i64, started_event_id: i64 }
    /// Attributes of the `CompleteWorkflowExecutionFailed` event.
    CompleteWorkflowExecutionFailedEventAttributes { cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `ContinueAsNewWorkflowExecutionFailed` event.
    ContinueAsNewWorkflowExecutionFailedEventAttributes { cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `DecisionTaskCompleted` event.
    DecisionTaskCompletedEventAttributes { execution_context: Option<String>, scheduled_event_id: i64, started_event_id: i64, task_list: Option<TaskList>, task_list_schedule_to_start_timeout: Option<String> }
    /// Attributes of the `DecisionTaskScheduled` event.
    DecisionTaskScheduledEventAttributes { task_list: Option<TaskList>, task_priority: Option<String>, start_to_close_timeout: Option<String>, schedule_to_start_timeout: Option<String> }
    /// Attributes of the `DecisionTaskStarted` event.
    DecisionTaskStartedEventAttributes { identity: Option<String>, scheduled_event_id: i64 }
    /// Attributes of the `DecisionTaskTimedOut` event.
    DecisionTaskTimedOutEventAttributes { timeout_type: String, scheduled_event_id: i64, started_event_id: i64 }
    /// Attributes of the `ExternalWorkflowExecutionCancelRequested` event.
    ExternalWorkflowExecutionCancelRequestedEventAttributes { workflow_execution: Option<ExecutionRef>, initiated_event_id: i64 }
    /// Attributes of the `ExternalWorkflowExecutionSignaled` event.
    ExternalWorkflowExecutionSignaledEventAttributes { workflow_execution: Option<ExecutionRef>, initiated_event_id: i64 }
    /// Attributes of the `FailWorkflowExecutionFailed` event.
    FailWorkflowExecutionFailedEventAttributes { cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `MarkerRecorded` event.
    MarkerRecordedEventAttributes { marker_name: String, details: Option<String>, decision_task_completed_event_id: i64 }
    /// Attributes of the `RecordMarkerFailed` event.
    RecordMarkerFailedEventAttributes { marker_name: String, cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `RequestCancelActivityTaskFailed` event.
    RequestCancelActivityTaskFailedEventAttributes { activity_id: String, cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `RequestCancelExternalWorkflowExecutionFailed` event.
    RequestCancelExternalWorkflowExecutionFailedEventAttributes { workflow_id: String, run_id: Option<String>, cause: String, initiated_event_id: i64, decision_task_completed_event_id: i64, control: Option<String> }
    /// Attributes of the `RequestCancelExternalWorkflowExecutionInitiated` event.
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes { workflow_id: String, run_id: Option<String>, decision_task_completed_event_id: i64, control: Option<String> }
    /// Attributes of the `ScheduleActivityTaskFailed` event.
    ScheduleActivityTaskFailedEventAttributes { activity_type: TypeRef, activity_id: String, cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `SignalExternalWorkflowExecutionFailed` event.
    SignalExternalWorkflowExecutionFailedEventAttributes { workflow_id: String, run_id: Option<String>, cause: String, initiated_event_id: i64, decision_task_completed_event_id: i64, control: Option<String> }
    /// Attributes of the `SignalExternalWorkflowExecutionInitiated` event.
    SignalExternalWorkflowExecutionInitiatedEventAttributes { workflow_id: String, run_id: Option<String>, signal_name: String, input: Option<String>, decision_task_completed_event_id: i64, control: Option<String> }
    /// Attributes of the `StartChildWorkflowExecutionFailed` event.
    StartChildWorkflowExecutionFailedEventAttributes { workflow_type: TypeRef, cause: String, workflow_id: String, initiated_event_id: i64, decision_task_completed_event_id: i64, control: Option<String> }
    /// Attributes of the `StartChildWorkflowExecutionInitiated` event.
    StartChildWorkflowExecutionInitiatedEventAttributes { workflow_id: String, workflow_type: TypeRef, control: Option<String>, input: Option<String>, execution_start_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, decision_task_completed_event_id: i64, child_policy: String, task_start_to_close_timeout: Option<String>, tag_list: Vec<String>, lambda_role: Option<String> }
    /// Attributes of the `StartTimerFailed` event.
    StartTimerFailedEventAttributes { timer_id: String, cause: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `TimerCanceled` event.
    TimerCanceledEventAttributes { timer_id: String, started_event_id: i64, decision_task_completed_event_id: i64 }
    /// Attributes of the `TimerFired` event.
    TimerFiredEventAttributes { timer_id: String, started_event_id: i64 }
    /// Attributes of the `TimerStarted` event.
    TimerStartedEventAttributes { timer_id: String, control: Option<String>, start_to_fire_timeout: String, decision_task_completed_event_id: i64 }
    /// Attributes of the `WorkflowExecutionCancelRequested` event.
    WorkflowExecutionCancelRequestedEventAttributes { external_workflow_execution: Option<ExecutionRef>, external_initiated_event_id: i64, cause: Option<String> }
    /// Attributes of the `WorkflowExecutionCanceled` event.
    WorkflowExecutionCanceledEventAttributes { details: Option<String>, decision_task_completed_event_id: i64 }
    /// Attributes of the `WorkflowExecutionCompleted` event.
    WorkflowExecutionCompletedEventAttributes { result: Option<String>, decision_task_completed_event_id: i64 }
    /// Attributes of the `WorkflowExecutionContinuedAsNew` event.
    WorkflowExecutionContinuedAsNewEventAttributes { input: Option<String>, decision_task_completed_event_id: i64, new_execution_run_id: String, execution_start_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, task_start_to_close_timeout: Option<String>, child_policy: String, tag_list: Vec<String>, workflow_type: TypeRef, lambda_role: Option<String> }
    /// Attributes of the `WorkflowExecutionFailed` event.
    WorkflowExecutionFailedEventAttributes { reason: Option<String>, details: Option<String>, decision_task_completed_event_id: i64 }
    /// Attributes of the `WorkflowExecutionSignaled` event.
    WorkflowExecutionSignaledEventAttributes { signal_name: String, input: Option<String>, external_workflow_execution: Option<ExecutionRef>, external_initiated_event_id: i64 }
    /// Attributes of the `WorkflowExecutionStarted` event.
    WorkflowExecutionStartedEventAttributes { input: Option<String>, execution_start_to_close_timeout: Option<String>, task_start_to_close_timeout: Option<String>, child_policy: String, task_list: Option<TaskList>, task_priority: Option<String>, workflow_type: TypeRef, tag_list: Vec<String>, continued_execution_run_id: Option<String>, parent_workflow_execution: Option<ExecutionRef>, parent_initiated_event_id: i64, lambda_role: Option<String> }
    /// Attributes of the `WorkflowExecutionTerminated` event.
    WorkflowExecutionTerminatedEventAttributes { reason: Option<String>, details: Option<String>, child_policy: String, cause: Option<String> }
    /// Attributes of the `WorkflowExecutionTimedOut` event.
    WorkflowExecutionTimedOutEventAttributes { timeout_type: String, child_policy: String }
    /// Attributes of the `CancelTimer` decision.
    CancelTimerDecisionAttributes { timer_id: String }
    /// Attributes of the `CancelWorkflowExecution` decision.
    CancelWorkflowExecutionDecisionAttributes { details: Option<String> }
    /// Attributes of the `CompleteWorkflowExecution` decision.
    CompleteWorkflowExecutionDecisionAttributes { result: Option<String> }
    /// Attributes of the `ContinueAsNewWorkflowExecution` decision.
    ContinueAsNewWorkflowExecutionDecisionAttributes { input: Option<String>, execution_start_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, task_start_to_close_timeout: Option<String>, child_policy: Option<String>, tag_list: Vec<String>, workflow_type_version: Option<String>, lambda_role: Option<String> }
    /// Attributes of the `FailWorkflowExecution` decision.
    FailWorkflowExecutionDecisionAttributes { reason: Option<String>, details: Option<String> }
    /// Attributes of the `RecordMarker` decision.
    RecordMarkerDecisionAttributes { marker_name: String, details: Option<String> }
    /// Attributes of the `RequestCancelActivityTask` decision.
    RequestCancelActivityTaskDecisionAttributes { activity_id: String }
    /// Attributes of the `RequestCancelExternalWorkflowExecution` decision.
    RequestCancelExternalWorkflowExecutionDecisionAttributes { workflow_id: String, run_id: Option<String>, control: Option<String> }
    /// Attributes of the `ScheduleActivityTask` decision.
    ScheduleActivityTaskDecisionAttributes { activity_type: TypeRef, activity_id: String, control: Option<String>, input: Option<String>, schedule_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, schedule_to_start_timeout: Option<String>, start_to_close_timeout: Option<String>, heartbeat_timeout: Option<String> }
    /// Attributes of the `SignalExternalWorkflowExecution` decision.
    SignalExternalWorkflowExecutionDecisionAttributes { workflow_id: String, run_id: Option<String>, signal_name: String, input: Option<String>, control: Option<String> }
    /// Attributes of the `StartChildWorkflowExecution` decision.
    StartChildWorkflowExecutionDecisionAttributes { workflow_type: TypeRef, workflow_id: String, control: Option<String>, input: Option<String>, execution_start_to_close_timeout: Option<String>, task_list: Option<TaskList>, task_priority: Option<String>, task_start_to_close_timeout: Option<String>, child_policy: Option<String>, tag_list: Vec<String>, lambda_role: Option<String> }
    /// Attributes of the `StartTimer` decision.
    StartTimerDecisionAttributes { timer_id: String, control: Option<String>, start_to_fire_timeout: String }
}

events! {
    ActivityTaskCancelRequested(ActivityTaskCancelRequestedEventAttributes) = "activityTaskCancelRequestedEventAttributes", activity_task_cancel_requested_event_attributes;
    ActivityTaskCanceled(ActivityTaskCanceledEventAttributes) = "activityTaskCanceledEventAttributes", activity_task_canceled_event_attributes;
    ActivityTaskCompleted(ActivityTaskCompletedEventAttributes) = "activityTaskCompletedEventAttributes", activity_task_completed_event_attributes;
    ActivityTaskFailed(ActivityTaskFailedEventAttributes) = "activityTaskFailedEventAttributes", activity_task_failed_event_attributes;
    ActivityTaskScheduled(ActivityTaskScheduledEventAttributes) = "activityTaskScheduledEventAttributes", activity_task_scheduled_event_attributes;
    ActivityTaskStarted(ActivityTaskStartedEventAttributes) = "activityTaskStartedEventAttributes", activity_task_started_event_attributes;
    ActivityTaskTimedOut(ActivityTaskTimedOutEventAttributes) = "activityTaskTimedOutEventAttributes", activity_task_timed_out_event_attributes;
    CancelTimerFailed(CancelTimerFailedEventAttributes) = "cancelTimerFailedEventAttributes", cancel_timer_failed_event_attributes;
    CancelWorkflowExecutionFailed(CancelWorkflowExecutionFailedEventAttributes) = "cancelWorkflowExecutionFailedEventAttributes", cancel_workflow_execution_failed_event_attributes;
    ChildWorkflowExecutionCanceled(ChildWorkflowExecutionCanceledEventAttributes) = "childWorkflowExecutionCanceledEventAttributes", child_workflow_execution_canceled_event_attributes;
    ChildWorkflowExecutionCompleted(ChildWorkflowExecutionCompletedEventAttributes) = "childWorkflowExecutionCompletedEventAttributes", child_workflow_execution_completed_event_attributes;
    ChildWorkflowExecutionFailed(ChildWorkflowExecutionFailedEventAttributes) = "childWorkflowExecutionFailedEventAttributes", child_workflow_execution_failed_event_attributes;
    ChildWorkflowExecutionStarted(ChildWorkflowExecutionStartedEventAttributes) = "childWorkflowExecutionStartedEventAttributes", child_workflow_execution_started_event_attributes;
    ChildWorkflowExecutionTerminated(ChildWorkflowExecutionTerminatedEventAttributes) = "childWorkflowExecutionTerminatedEventAttributes", child_workflow_execution_terminated_event_attributes;
    ChildWorkflowExecutionTimedOut(ChildWorkflowExecutionTimedOutEventAttributes) = "childWorkflowExecutionTimedOutEventAttributes", child_workflow_execution_timed_out_event_attributes;
    CompleteWorkflowExecutionFailed(CompleteWorkflowExecutionFailedEventAttributes) = "completeWorkflowExecutionFailedEventAttributes", complete_workflow_execution_failed_event_attributes;
    ContinueAsNewWorkflowExecutionFailed(ContinueAsNewWorkflowExecutionFailedEventAttributes) = "continueAsNewWorkflowExecutionFailedEventAttributes", continue_as_new_workflow_execution_failed_event_attributes;
    DecisionTaskCompleted(DecisionTaskCompletedEventAttributes) = "decisionTaskCompletedEventAttributes", decision_task_completed_event_attributes;
    DecisionTaskScheduled(DecisionTaskScheduledEventAttributes) = "decisionTaskScheduledEventAttributes", decision_task_scheduled_event_attributes;
    DecisionTaskStarted(DecisionTaskStartedEventAttributes) = "decisionTaskStartedEventAttributes", decision_task_started_event_attributes;
    DecisionTaskTimedOut(DecisionTaskTimedOutEventAttributes) = "decisionTaskTimedOutEventAttributes", decision_task_timed_out_event_attributes;
    ExternalWorkflowExecutionCancelRequested(ExternalWorkflowExecutionCancelRequestedEventAttributes) = "externalWorkflowExecutionCancelRequestedEventAttributes", external_workflow_execution_cancel_requested_event_attributes;
    ExternalWorkflowExecutionSignaled(ExternalWorkflowExecutionSignaledEventAttributes) = "externalWorkflowExecutionSignaledEventAttributes", external_workflow_execution_signaled_event_attributes;
    FailWorkflowExecutionFailed(FailWorkflowExecutionFailedEventAttributes) = "failWorkflowExecutionFailedEventAttributes", fail_workflow_execution_failed_event_attributes;
    MarkerRecorded(MarkerRecordedEventAttributes) = "markerRecordedEventAttributes", marker_recorded_event_attributes;
    RecordMarkerFailed(RecordMarkerFailedEventAttributes) = "recordMarkerFailedEventAttributes", record_marker_failed_event_attributes;
    RequestCancelActivityTaskFailed(RequestCancelActivityTaskFailedEventAttributes) = "requestCancelActivityTaskFailedEventAttributes", request_cancel_activity_task_failed_event_attributes;
    RequestCancelExternalWorkflowExecutionFailed(RequestCancelExternalWorkflowExecutionFailedEventAttributes) = "requestCancelExternalWorkflowExecutionFailedEventAttributes", request_cancel_external_workflow_execution_failed_event_attributes;
    RequestCancelExternalWorkflowExecutionInitiated(RequestCancelExternalWorkflowExecutionInitiatedEventAttributes) = "requestCancelExternalWorkflowExecutionInitiatedEventAttributes", request_cancel_external_workflow_execution_initiated_event_attributes;
    ScheduleActivityTaskFailed(ScheduleActivityTaskFailedEventAttributes) = "scheduleActivityTaskFailedEventAttributes", schedule_activity_task_failed_event_attributes;
    SignalExternalWorkflowExecutionFailed(SignalExternalWorkflowExecutionFailedEventAttributes) = "signalExternalWorkflowExecutionFailedEventAttributes", signal_external_workflow_execution_failed_event_attributes;
    SignalExternalWorkflowExecutionInitiated(SignalExternalWorkflowExecutionInitiatedEventAttributes) = "signalExternalWorkflowExecutionInitiatedEventAttributes", signal_external_workflow_execution_initiated_event_attributes;
    StartChildWorkflowExecutionFailed(StartChildWorkflowExecutionFailedEventAttributes) = "startChildWorkflowExecutionFailedEventAttributes", start_child_workflow_execution_failed_event_attributes;
    StartChildWorkflowExecutionInitiated(StartChildWorkflowExecutionInitiatedEventAttributes) = "startChildWorkflowExecutionInitiatedEventAttributes", start_child_workflow_execution_initiated_event_attributes;
    StartTimerFailed(StartTimerFailedEventAttributes) = "startTimerFailedEventAttributes", start_timer_failed_event_attributes;
    TimerCanceled(TimerCanceledEventAttributes) = "timerCanceledEventAttributes", timer_canceled_event_attributes;
    TimerFired(TimerFiredEventAttributes) = "timerFiredEventAttributes", timer_fired_event_attributes;
    TimerStarted(TimerStartedEventAttributes) = "timerStartedEventAttributes", timer_started_event_attributes;
    WorkflowExecutionCancelRequested(WorkflowExecutionCancelRequestedEventAttributes) = "workflowExecutionCancelRequestedEventAttributes", workflow_execution_cancel_requested_event_attributes;
    WorkflowExecutionCanceled(WorkflowExecutionCanceledEventAttributes) = "workflowExecutionCanceledEventAttributes", workflow_execution_canceled_event_attributes;
    WorkflowExecutionCompleted(WorkflowExecutionCompletedEventAttributes) = "workflowExecutionCompletedEventAttributes", workflow_execution_completed_event_attributes;
    WorkflowExecutionContinuedAsNew(WorkflowExecutionContinuedAsNewEventAttributes) = "workflowExecutionContinuedAsNewEventAttributes", workflow_execution_continued_as_new_event_attributes;
    WorkflowExecutionFailed(WorkflowExecutionFailedEventAttributes) = "workflowExecutionFailedEventAttributes", workflow_execution_failed_event_attributes;
    WorkflowExecutionSignaled(WorkflowExecutionSignaledEventAttributes) = "workflowExecutionSignaledEventAttributes", workflow_execution_signaled_event_attributes;
    WorkflowExecutionStarted(WorkflowExecutionStartedEventAttributes) = "workflowExecutionStartedEventAttributes", workflow_execution_started_event_attributes;
    WorkflowExecutionTerminated(WorkflowExecutionTerminatedEventAttributes) = "workflowExecutionTerminatedEventAttributes", workflow_execution_terminated_event_attributes;
    WorkflowExecutionTimedOut(WorkflowExecutionTimedOutEventAttributes) = "workflowExecutionTimedOutEventAttributes", workflow_execution_timed_out_event_attributes;
}

decisions! {
    CancelTimer(CancelTimerDecisionAttributes) = "cancelTimerDecisionAttributes", cancel_timer_decision_attributes;
    CancelWorkflowExecution(CancelWorkflowExecutionDecisionAttributes) = "cancelWorkflowExecutionDecisionAttributes", cancel_workflow_execution_decision_attributes;
    CompleteWorkflowExecution(CompleteWorkflowExecutionDecisionAttributes) = "completeWorkflowExecutionDecisionAttributes", complete_workflow_execution_decision_attributes;
    ContinueAsNewWorkflowExecution(ContinueAsNewWorkflowExecutionDecisionAttributes) = "continueAsNewWorkflowExecutionDecisionAttributes", continue_as_new_workflow_execution_decision_attributes;
    FailWorkflowExecution(FailWorkflowExecutionDecisionAttributes) = "failWorkflowExecutionDecisionAttributes", fail_workflow_execution_decision_attributes;
    RecordMarker(RecordMarkerDecisionAttributes) = "recordMarkerDecisionAttributes", record_marker_decision_attributes;
    RequestCancelActivityTask(RequestCancelActivityTaskDecisionAttributes) = "requestCancelActivityTaskDecisionAttributes", request_cancel_activity_task_decision_attributes;
    RequestCancelExternalWorkflowExecution(RequestCancelExternalWorkflowExecutionDecisionAttributes) = "requestCancelExternalWorkflowExecutionDecisionAttributes", request_cancel_external_workflow_execution_decision_attributes;
    ScheduleActivityTask(ScheduleActivityTaskDecisionAttributes) = "scheduleActivityTaskDecisionAttributes", schedule_activity_task_decision_attributes;
    SignalExternalWorkflowExecution(SignalExternalWorkflowExecutionDecisionAttributes) = "signalExternalWorkflowExecutionDecisionAttributes", signal_external_workflow_execution_decision_attributes;
    StartChildWorkflowExecution(StartChildWorkflowExecutionDecisionAttributes) = "startChildWorkflowExecutionDecisionAttributes", start_child_workflow_execution_decision_attributes;
    StartTimer(StartTimerDecisionAttributes) = "startTimerDecisionAttributes", start_timer_decision_attributes;
}

impl ToAwsAttrs for CancelTimerDecisionAttributes {
    type Aws = aws::CancelTimerDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::CancelTimerDecisionAttributes {
        aws::CancelTimerDecisionAttributes::builder()
            .set_timer_id(ToAws::to_aws(&self.timer_id))
            .build()
            .expect("every required field of CancelTimerDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for CancelWorkflowExecutionDecisionAttributes {
    type Aws = aws::CancelWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::CancelWorkflowExecutionDecisionAttributes {
        aws::CancelWorkflowExecutionDecisionAttributes::builder()
            .set_details(ToAws::to_aws(&self.details))
            .build()
    }
}

impl ToAwsAttrs for CompleteWorkflowExecutionDecisionAttributes {
    type Aws = aws::CompleteWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::CompleteWorkflowExecutionDecisionAttributes {
        aws::CompleteWorkflowExecutionDecisionAttributes::builder()
            .set_result(ToAws::to_aws(&self.result))
            .build()
    }
}

impl ToAwsAttrs for ContinueAsNewWorkflowExecutionDecisionAttributes {
    type Aws = aws::ContinueAsNewWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::ContinueAsNewWorkflowExecutionDecisionAttributes {
        aws::ContinueAsNewWorkflowExecutionDecisionAttributes::builder()
            .set_input(ToAws::to_aws(&self.input))
            .set_execution_start_to_close_timeout(ToAws::to_aws(
                &self.execution_start_to_close_timeout,
            ))
            .set_task_list(ToAws::to_aws(&self.task_list))
            .set_task_priority(ToAws::to_aws(&self.task_priority))
            .set_task_start_to_close_timeout(ToAws::to_aws(&self.task_start_to_close_timeout))
            .set_child_policy(ToAws::to_aws(&self.child_policy))
            .set_tag_list(ToAws::to_aws(&self.tag_list))
            .set_workflow_type_version(ToAws::to_aws(&self.workflow_type_version))
            .set_lambda_role(ToAws::to_aws(&self.lambda_role))
            .build()
    }
}

impl ToAwsAttrs for FailWorkflowExecutionDecisionAttributes {
    type Aws = aws::FailWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::FailWorkflowExecutionDecisionAttributes {
        aws::FailWorkflowExecutionDecisionAttributes::builder()
            .set_reason(ToAws::to_aws(&self.reason))
            .set_details(ToAws::to_aws(&self.details))
            .build()
    }
}

impl ToAwsAttrs for RecordMarkerDecisionAttributes {
    type Aws = aws::RecordMarkerDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::RecordMarkerDecisionAttributes {
        aws::RecordMarkerDecisionAttributes::builder()
            .set_marker_name(ToAws::to_aws(&self.marker_name))
            .set_details(ToAws::to_aws(&self.details))
            .build()
            .expect("every required field of RecordMarkerDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for RequestCancelActivityTaskDecisionAttributes {
    type Aws = aws::RequestCancelActivityTaskDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::RequestCancelActivityTaskDecisionAttributes {
        aws::RequestCancelActivityTaskDecisionAttributes::builder()
            .set_activity_id(ToAws::to_aws(&self.activity_id))
            .build()
            .expect("every required field of RequestCancelActivityTaskDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for RequestCancelExternalWorkflowExecutionDecisionAttributes {
    type Aws = aws::RequestCancelExternalWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::RequestCancelExternalWorkflowExecutionDecisionAttributes {
        aws::RequestCancelExternalWorkflowExecutionDecisionAttributes::builder()
            .set_workflow_id(ToAws::to_aws(&self.workflow_id))
            .set_run_id(ToAws::to_aws(&self.run_id))
            .set_control(ToAws::to_aws(&self.control))
            .build()
            .expect("every required field of RequestCancelExternalWorkflowExecutionDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for ScheduleActivityTaskDecisionAttributes {
    type Aws = aws::ScheduleActivityTaskDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::ScheduleActivityTaskDecisionAttributes {
        aws::ScheduleActivityTaskDecisionAttributes::builder()
            .set_activity_type(ToAws::to_aws(&self.activity_type))
            .set_activity_id(ToAws::to_aws(&self.activity_id))
            .set_control(ToAws::to_aws(&self.control))
            .set_input(ToAws::to_aws(&self.input))
            .set_schedule_to_close_timeout(ToAws::to_aws(&self.schedule_to_close_timeout))
            .set_task_list(ToAws::to_aws(&self.task_list))
            .set_task_priority(ToAws::to_aws(&self.task_priority))
            .set_schedule_to_start_timeout(ToAws::to_aws(&self.schedule_to_start_timeout))
            .set_start_to_close_timeout(ToAws::to_aws(&self.start_to_close_timeout))
            .set_heartbeat_timeout(ToAws::to_aws(&self.heartbeat_timeout))
            .build()
            .expect("every required field of ScheduleActivityTaskDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for SignalExternalWorkflowExecutionDecisionAttributes {
    type Aws = aws::SignalExternalWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::SignalExternalWorkflowExecutionDecisionAttributes {
        aws::SignalExternalWorkflowExecutionDecisionAttributes::builder()
            .set_workflow_id(ToAws::to_aws(&self.workflow_id))
            .set_run_id(ToAws::to_aws(&self.run_id))
            .set_signal_name(ToAws::to_aws(&self.signal_name))
            .set_input(ToAws::to_aws(&self.input))
            .set_control(ToAws::to_aws(&self.control))
            .build()
            .expect("every required field of SignalExternalWorkflowExecutionDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for StartChildWorkflowExecutionDecisionAttributes {
    type Aws = aws::StartChildWorkflowExecutionDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::StartChildWorkflowExecutionDecisionAttributes {
        aws::StartChildWorkflowExecutionDecisionAttributes::builder()
            .set_workflow_type(ToAws::to_aws(&self.workflow_type))
            .set_workflow_id(ToAws::to_aws(&self.workflow_id))
            .set_control(ToAws::to_aws(&self.control))
            .set_input(ToAws::to_aws(&self.input))
            .set_execution_start_to_close_timeout(ToAws::to_aws(&self.execution_start_to_close_timeout))
            .set_task_list(ToAws::to_aws(&self.task_list))
            .set_task_priority(ToAws::to_aws(&self.task_priority))
            .set_task_start_to_close_timeout(ToAws::to_aws(&self.task_start_to_close_timeout))
            .set_child_policy(ToAws::to_aws(&self.child_policy))
            .set_tag_list(ToAws::to_aws(&self.tag_list))
            .set_lambda_role(ToAws::to_aws(&self.lambda_role))
            .build()
            .expect("every required field of StartChildWorkflowExecutionDecisionAttributes is a non-optional model field")
    }
}

impl ToAwsAttrs for StartTimerDecisionAttributes {
    type Aws = aws::StartTimerDecisionAttributes;
    fn to_aws_attrs(&self) -> aws::StartTimerDecisionAttributes {
        aws::StartTimerDecisionAttributes::builder()
            .set_timer_id(ToAws::to_aws(&self.timer_id))
            .set_control(ToAws::to_aws(&self.control))
            .set_start_to_fire_timeout(ToAws::to_aws(&self.start_to_fire_timeout))
            .build()
            .expect("every required field of StartTimerDecisionAttributes is a non-optional model field")
    }
}

/// One event of a workflow execution's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub event_id: i64,
    /// Epoch seconds, as SWF's JSON writes them.
    pub event_timestamp: f64,
    pub attributes: EventAttributes,
}

impl HistoryEvent {
    pub fn new(event_id: i64, event_timestamp: f64, attributes: EventAttributes) -> HistoryEvent {
        HistoryEvent {
            event_id,
            event_timestamp,
            attributes,
        }
    }

    /// Converts an event as `aws-sdk-swf` returns it.
    pub fn from_aws(e: &aws::HistoryEvent) -> HistoryEvent {
        HistoryEvent {
            event_id: e.event_id,
            event_timestamp: e.event_timestamp.as_secs_f64(),
            attributes: EventAttributes::from_aws(e),
        }
    }

    /// SWF's `eventType`.
    pub fn event_type(&self) -> &str {
        self.attributes.event_type()
    }
}

impl Serialize for HistoryEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.attributes.key().is_some() {
            4
        } else {
            3
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("eventId", &self.event_id)?;
        map.serialize_entry("eventTimestamp", &self.event_timestamp)?;
        map.serialize_entry("eventType", self.event_type())?;
        self.attributes.serialize_attrs(&mut map)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for HistoryEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HistoryEvent, D::Error> {
        deserializer.deserialize_map(HistoryEventVisitor)
    }
}

struct HistoryEventVisitor;

impl<'de> Visitor<'de> for HistoryEventVisitor {
    type Value = HistoryEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an SWF history event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HistoryEvent, A::Error> {
        let mut event_id = None;
        let mut timestamp = None;
        let mut event_type: Option<String> = None;
        let mut attributes = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "eventId" => event_id = Some(map.next_value::<i64>()?),
                "eventTimestamp" => timestamp = Some(map.next_value::<f64>()?),
                "eventType" => event_type = Some(map.next_value::<String>()?),
                other => match EventAttributes::deserialize_attrs(other, &mut map)? {
                    Some(a) => attributes = Some(a),
                    // Unmodelled attributes (Lambda events, comments in fixtures) are skipped.
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        let event_id = event_id.ok_or_else(|| de::Error::missing_field("eventId"))?;
        let event_timestamp =
            timestamp.ok_or_else(|| de::Error::missing_field("eventTimestamp"))?;
        let event_type = event_type.ok_or_else(|| de::Error::missing_field("eventType"))?;
        let attributes = match attributes {
            Some(a) if a.event_type() == event_type => a,
            Some(a) => {
                return Err(de::Error::custom(format!(
                    "event {event_id}: eventType {event_type} carries {} attributes",
                    a.event_type()
                )))
            }
            None => match EventAttributes::key_for_type(&event_type) {
                Some(key) => return Err(de::Error::missing_field(key)),
                None => EventAttributes::Other { event_type },
            },
        };
        Ok(HistoryEvent {
            event_id,
            event_timestamp,
            attributes,
        })
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("decisionType", self.decision_type())?;
        self.serialize_attrs(&mut map)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Decision, D::Error> {
        deserializer.deserialize_map(DecisionVisitor)
    }
}

struct DecisionVisitor;

impl<'de> Visitor<'de> for DecisionVisitor {
    type Value = Decision;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an SWF decision object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decision, A::Error> {
        let mut decision_type: Option<String> = None;
        let mut decision = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "decisionType" => decision_type = Some(map.next_value::<String>()?),
                other => match Decision::deserialize_attrs(other, &mut map)? {
                    Some(d) => decision = Some(d),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        let decision_type =
            decision_type.ok_or_else(|| de::Error::missing_field("decisionType"))?;
        match decision {
            Some(d) if d.decision_type() == decision_type => Ok(d),
            Some(d) => Err(de::Error::custom(format!(
                "decisionType {decision_type} carries {} attributes",
                d.key()
            ))),
            // SWF allows leaving out the attributes of the close decisions (all members optional).
            None => Decision::empty(&decision_type)
                .ok_or_else(|| de::Error::custom(format!("unknown decisionType {decision_type}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled() -> HistoryEvent {
        HistoryEvent::new(
            5,
            1_700_000_000.25,
            EventAttributes::ActivityTaskScheduled(ActivityTaskScheduledEventAttributes {
                activity_type: TypeRef {
                    name: "transcode".into(),
                    version: "1".into(),
                },
                activity_id: "transcode-1".into(),
                input: Some("{}".into()),
                control: None,
                schedule_to_start_timeout: Some("60".into()),
                schedule_to_close_timeout: Some("NONE".into()),
                start_to_close_timeout: Some("300".into()),
                heartbeat_timeout: Some("30".into()),
                task_list: Some(TaskList::new("media")),
                task_priority: None,
                decision_task_completed_event_id: 4,
            }),
        )
    }

    #[test]
    fn event_json_uses_swf_names_and_round_trips() {
        let e = scheduled();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["eventId"], 5);
        assert_eq!(json["eventType"], "ActivityTaskScheduled");
        let attrs = &json["activityTaskScheduledEventAttributes"];
        assert_eq!(attrs["activityType"]["name"], "transcode");
        assert_eq!(attrs["taskList"]["name"], "media");
        assert_eq!(attrs["decisionTaskCompletedEventId"], 4);
        assert_eq!(attrs["heartbeatTimeout"], "30");
        assert!(attrs.get("control").is_none());
        let back: HistoryEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_events_survive_and_mismatches_are_refused() {
        let e: HistoryEvent = serde_json::from_str(
            r#"{"eventId":3,"eventTimestamp":1.5,"eventType":"LambdaFunctionStarted",
                "lambdaFunctionStartedEventAttributes":{"scheduledEventId":2}}"#,
        )
        .unwrap();
        assert_eq!(
            e.attributes,
            EventAttributes::Other {
                event_type: "LambdaFunctionStarted".into()
            }
        );
        let bad = serde_json::from_str::<HistoryEvent>(
            r#"{"eventId":3,"eventTimestamp":1,"eventType":"TimerFired",
                "timerStartedEventAttributes":{"timerId":"t","startToFireTimeout":"5"}}"#,
        );
        assert!(bad.is_err());
        let missing = serde_json::from_str::<HistoryEvent>(
            r#"{"eventId":3,"eventTimestamp":1,"eventType":"TimerFired"}"#,
        )
        .unwrap_err();
        assert!(
            missing.to_string().contains("timerFiredEventAttributes"),
            "{missing}"
        );
    }

    #[test]
    fn decisions_round_trip_and_convert() {
        let d = Decision::StartTimer(StartTimerDecisionAttributes {
            timer_id: "retry-transcode-2".into(),
            control: Some("transcode".into()),
            start_to_fire_timeout: "5".into(),
        });
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["decisionType"], "StartTimer");
        assert_eq!(
            json["startTimerDecisionAttributes"]["startToFireTimeout"],
            "5"
        );
        assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);

        let aws_d = d.to_aws();
        assert_eq!(aws_d.decision_type, aws::DecisionType::StartTimer);
        let attrs = aws_d.start_timer_decision_attributes.unwrap();
        assert_eq!(attrs.timer_id, "retry-transcode-2");
        assert_eq!(attrs.start_to_fire_timeout, "5");

        let child =
            Decision::StartChildWorkflowExecution(StartChildWorkflowExecutionDecisionAttributes {
                workflow_type: TypeRef {
                    name: "FaceRecognition".into(),
                    version: "1".into(),
                },
                workflow_id: "m1-faces".into(),
                child_policy: Some("TERMINATE".into()),
                ..Default::default()
            });
        let attrs = child
            .to_aws()
            .start_child_workflow_execution_decision_attributes
            .unwrap();
        assert_eq!(attrs.child_policy, Some(aws::ChildPolicy::Terminate));
        assert_eq!(attrs.workflow_type.unwrap().name, "FaceRecognition");
        assert_eq!(attrs.tag_list, None);

        let cancel: Decision =
            serde_json::from_str(r#"{"decisionType":"CancelWorkflowExecution"}"#).unwrap();
        assert_eq!(
            cancel,
            Decision::CancelWorkflowExecution(CancelWorkflowExecutionDecisionAttributes::default())
        );
    }

    #[test]
    fn converts_from_aws_events() {
        let e = aws::HistoryEvent::builder()
            .event_id(7)
            .event_type(aws::EventType::ActivityTaskFailed)
            .event_timestamp(aws_smithy_types::DateTime::from_secs_f64(100.5))
            .activity_task_failed_event_attributes(
                aws::ActivityTaskFailedEventAttributes::builder()
                    .reason("boom")
                    .scheduled_event_id(5)
                    .started_event_id(6)
                    .build(),
            )
            .build()
            .unwrap();
        let m = HistoryEvent::from_aws(&e);
        assert_eq!(m.event_id, 7);
        assert_eq!(m.event_timestamp, 100.5);
        match m.attributes {
            EventAttributes::ActivityTaskFailed(a) => {
                assert_eq!(a.reason.as_deref(), Some("boom"));
                assert_eq!((a.scheduled_event_id, a.started_event_id), (5, 6));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
