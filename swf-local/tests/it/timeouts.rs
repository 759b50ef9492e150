//! Every SWF timeout fires with its event and timeout type, at its deadline, and a late answer gets
//! UnknownResourceFault. Timeouts are 1-3 s; every wait is bounded.

use crate::common;

use std::time::Duration;

use aws_sdk_swf::types::*;
use common::*;

fn ts(events: &[serde_json::Value], kind: &str) -> f64 {
    events
        .iter()
        .find(|e| e["eventType"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))["eventTimestamp"]
        .as_f64()
        .unwrap()
}

/// Starts an execution, answers its first decision with `decision`, returns the run id.
async fn with_activity(env: &Env, wid: &str, decision: Decision) -> String {
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, wid).await;
    let d = decision_task(c).await;
    decide(c, d.task_token(), vec![decision]).await;
    run
}

async fn timed_out(c: &aws_sdk_swf::Client) -> ActivityTaskTimedOutEventAttributes {
    let d = decision_task(c).await;
    d.events()
        .iter()
        .find_map(|e| e.activity_task_timed_out_event_attributes())
        .cloned()
        .expect("ActivityTaskTimedOut in the decision task")
}

#[tokio::test]
async fn activity_schedule_to_start() {
    let env = start_env(|_| {}).await;
    let run = with_activity(
        &env,
        "s2s",
        schedule_with("a", |b| b.schedule_to_start_timeout("1")),
    )
    .await;
    let t = timed_out(&env.client).await;
    assert_eq!(t.timeout_type(), &ActivityTaskTimeoutType::ScheduleToStart);
    assert_eq!(t.started_event_id(), 0);
    let raw = raw_history(env.server.local_addr(), "s2s", &run).await;
    let waited = ts(&raw, "ActivityTaskTimedOut") - ts(&raw, "ActivityTaskScheduled");
    assert!((1.0..3.0).contains(&waited), "fired after {waited} s");
    // The timed-out task is no longer handed out.
    let c = &env.client;
    let empty = c
        .poll_for_activity_task()
        .domain(DOMAIN)
        .task_list(tl(WORKER_TL))
        .send()
        .await
        .unwrap();
    assert!(empty.task_token().is_empty());
    assert_replays(&env);
}

#[tokio::test]
async fn activity_schedule_to_close() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    with_activity(
        &env,
        "s2c",
        schedule_with("a", |b| {
            b.schedule_to_start_timeout("10")
                .schedule_to_close_timeout("2")
                .start_to_close_timeout("10")
        }),
    )
    .await;
    let a = activity_task(c).await;
    let t = timed_out(c).await;
    assert_eq!(t.timeout_type(), &ActivityTaskTimeoutType::ScheduleToClose);
    assert_eq!(t.started_event_id(), a.started_event_id());
    let err = c
        .respond_activity_task_completed()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    assert_replays(&env);
}

#[tokio::test]
async fn activity_start_to_close() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    let run = with_activity(
        &env,
        "stc",
        schedule_with("a", |b| b.start_to_close_timeout("1")),
    )
    .await;
    let a = activity_task(c).await;
    let t = timed_out(c).await;
    assert_eq!(t.timeout_type(), &ActivityTaskTimeoutType::StartToClose);
    let raw = raw_history(env.server.local_addr(), "stc", &run).await;
    let ran = ts(&raw, "ActivityTaskTimedOut") - ts(&raw, "ActivityTaskStarted");
    assert!((1.0..3.0).contains(&ran), "fired after {ran} s");
    let err = c
        .respond_activity_task_completed()
        .task_token(a.task_token())
        .result("late")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    assert_replays(&env);
}

#[tokio::test]
async fn activity_heartbeat_timeout_carries_details() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    with_activity(
        &env,
        "hb",
        schedule_with("a", |b| {
            b.heartbeat_timeout("1").start_to_close_timeout("30")
        }),
    )
    .await;
    let a = activity_task(c).await;
    c.record_activity_task_heartbeat()
        .task_token(a.task_token())
        .details("50%")
        .send()
        .await
        .unwrap();
    let t = timed_out(c).await;
    assert_eq!(t.timeout_type(), &ActivityTaskTimeoutType::Heartbeat);
    assert_eq!(t.details(), Some("50%"));
    let err = c
        .record_activity_task_heartbeat()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    assert_replays(&env);
}

#[tokio::test]
async fn heartbeats_do_not_extend_start_to_close() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    with_activity(
        &env,
        "hb-cap",
        schedule_with("a", |b| {
            b.heartbeat_timeout("2").start_to_close_timeout("3")
        }),
    )
    .await;
    let a = activity_task(c).await;
    // A diligent worker: heartbeats every 300 ms until the service says the task is gone.
    let beats = bounded(15, async {
        let mut beats = 0;
        loop {
            match c
                .record_activity_task_heartbeat()
                .task_token(a.task_token())
                .send()
                .await
            {
                Ok(_) => beats += 1,
                Err(e) => {
                    assert!(e.into_service_error().is_unknown_resource_fault());
                    return beats;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    assert!(beats >= 5, "only {beats} heartbeats");
    let t = timed_out(c).await;
    assert_eq!(t.timeout_type(), &ActivityTaskTimeoutType::StartToClose);
    assert_replays(&env);
}

#[tokio::test]
async fn decision_task_start_to_close_reschedules() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("dt")
        .workflow_type(wf_type())
        .task_start_to_close_timeout("1")
        .send()
        .await
        .unwrap()
        .run_id
        .unwrap();
    let first = decision_task(c).await;
    let second = decision_task(c).await;
    let k = kinds(second.events());
    let n = k.len();
    assert_eq!(
        &k[n - 3..],
        [
            "DecisionTaskTimedOut",
            "DecisionTaskScheduled",
            "DecisionTaskStarted"
        ]
    );
    let to = second.events()[n - 3]
        .decision_task_timed_out_event_attributes()
        .unwrap();
    assert_eq!(to.timeout_type(), &DecisionTaskTimeoutType::StartToClose);
    assert_eq!(to.started_event_id(), first.started_event_id());
    // A timed-out decision task is not "processed": previousStartedEventId stays 0.
    assert_eq!(second.previous_started_event_id(), 0);
    let err = c
        .respond_decision_task_completed()
        .task_token(first.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    decide(c, second.task_token(), vec![complete("ok")]).await;
    let h = history(c, "dt", &run).await;
    assert_eq!(kinds(&h).last().unwrap(), "WorkflowExecutionCompleted");
    assert_replays(&env);
}

#[tokio::test]
async fn workflow_execution_start_to_close() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("wt")
        .workflow_type(wf_type())
        .execution_start_to_close_timeout("2")
        .send()
        .await
        .unwrap()
        .run_id
        .unwrap();
    let d = decision_task(c).await;
    decide(c, d.task_token(), vec![schedule("a")]).await;
    let a = activity_task(c).await;
    let h = wait_for_event(c, "wt", &run, "WorkflowExecutionTimedOut", 15).await;
    let attrs = h
        .last()
        .unwrap()
        .workflow_execution_timed_out_event_attributes()
        .unwrap();
    assert_eq!(
        attrs.timeout_type(),
        &WorkflowExecutionTimeoutType::StartToClose
    );
    assert_eq!(attrs.child_policy(), &ChildPolicy::Terminate);
    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("wt", &run))
        .send()
        .await
        .unwrap();
    assert_eq!(
        desc.execution_info().unwrap().close_status(),
        Some(&CloseStatus::TimedOut)
    );
    let err = c
        .respond_activity_task_completed()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    assert_replays(&env);
}

#[tokio::test]
async fn child_execution_timeout_reaches_parent() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    start_wf(c, "tp").await;
    let d = decision_task(c).await;
    let child = Decision::builder()
        .decision_type(DecisionType::StartChildWorkflowExecution)
        .start_child_workflow_execution_decision_attributes(
            StartChildWorkflowExecutionDecisionAttributes::builder()
                .workflow_type(wf_type())
                .workflow_id("tc")
                .task_list(tl("children"))
                .execution_start_to_close_timeout("1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    decide(c, d.task_token(), vec![child]).await;
    let attrs = bounded(20, async {
        loop {
            let t = decision_task(c).await;
            let found = t
                .events()
                .iter()
                .find_map(|e| e.child_workflow_execution_timed_out_event_attributes())
                .cloned();
            decide(c, t.task_token(), vec![]).await;
            if let Some(a) = found {
                return a;
            }
        }
    })
    .await;
    assert_eq!(
        attrs.timeout_type(),
        &WorkflowExecutionTimeoutType::StartToClose
    );
    assert_eq!(attrs.workflow_execution().unwrap().workflow_id(), "tc");
    assert_replays(&env);
}

#[tokio::test]
async fn timer_fires_at_its_deadline() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    let run = with_activity(&env, "tm", start_timer("t", 1)).await;
    let d = decision_task(c).await;
    let fired = d
        .events()
        .iter()
        .find_map(|e| e.timer_fired_event_attributes())
        .expect("TimerFired");
    assert_eq!(fired.timer_id(), "t");
    let raw = raw_history(env.server.local_addr(), "tm", &run).await;
    let waited = ts(&raw, "TimerFired") - ts(&raw, "TimerStarted");
    assert!((1.0..3.0).contains(&waited), "fired after {waited} s");
    assert_replays(&env);
}
