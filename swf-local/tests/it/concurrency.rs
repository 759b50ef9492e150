//! Many deciders and workers on the same task lists at once: every task is handed out exactly once,
//! no answer hits a stale token, and every execution completes with the events it should have.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_swf::types::*;
use common::*;

const EXECUTIONS: usize = 20;
const ACTIVITIES: usize = 5;

async fn decider(c: aws_sdk_swf::Client, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let task = c
            .poll_for_decision_task()
            .domain(DOMAIN)
            .task_list(tl(DECIDER_TL))
            .send()
            .await
            .unwrap();
        if task.task_token().is_empty() {
            continue;
        }
        let k = kinds(task.events());
        let scheduled = k.iter().filter(|e| *e == "ActivityTaskScheduled").count();
        let done = k.iter().filter(|e| *e == "ActivityTaskCompleted").count();
        let decisions = if scheduled == 0 {
            (0..ACTIVITIES)
                .map(|i| schedule(&format!("a{i}")))
                .collect()
        } else if done == ACTIVITIES {
            vec![complete("all")]
        } else {
            vec![]
        };
        decide(&c, task.task_token(), decisions).await;
    }
}

async fn worker(c: aws_sdk_swf::Client, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let task = c
            .poll_for_activity_task()
            .domain(DOMAIN)
            .task_list(tl(WORKER_TL))
            .send()
            .await
            .unwrap();
        if task.task_token().is_empty() {
            continue;
        }
        c.respond_activity_task_completed()
            .task_token(task.task_token())
            .result(task.activity_id())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pollers_get_each_task_once() {
    let env = start_env(|c| c.long_poll_timeout = std::time::Duration::from_millis(500)).await;
    let c = env.client.clone();
    setup(&c).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        loops.push(tokio::spawn(decider(c.clone(), stop.clone())));
        loops.push(tokio::spawn(worker(c.clone(), stop.clone())));
    }
    let mut runs = Vec::new();
    for i in 0..EXECUTIONS {
        runs.push((format!("par-{i}"), start_wf(&c, &format!("par-{i}")).await));
    }
    let since = || {
        ExecutionTimeFilter::builder()
            .oldest_date(aws_sdk_swf::primitives::DateTime::from_secs(0))
            .build()
            .unwrap()
    };
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let open = c
                .count_open_workflow_executions()
                .domain(DOMAIN)
                .start_time_filter(since())
                .send()
                .await
                .unwrap();
            if open.count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    if waited.is_err() {
        for (wid, run) in &runs {
            let h = history(&c, wid, run).await;
            if kinds(&h).last().map(String::as_str) != Some("WorkflowExecutionCompleted") {
                eprintln!("still open: {wid}: {:?}", kinds(&h));
            }
        }
        panic!("executions still open after 60 s");
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        // A loop panics on any unexpected error, e.g. a stale token from a task handed out twice.
        bounded(10, l).await.unwrap();
    }
    for (wid, run) in &runs {
        let h = history(&c, wid, run).await;
        let k = kinds(&h);
        assert_eq!(
            k.iter().filter(|e| *e == "ActivityTaskStarted").count(),
            ACTIVITIES,
            "{wid}"
        );
        assert_eq!(
            k.iter().filter(|e| *e == "ActivityTaskCompleted").count(),
            ACTIVITIES,
            "{wid}"
        );
        assert_eq!(k.last().unwrap(), "WorkflowExecutionCompleted", "{wid}");
        let decisions_started = k.iter().filter(|e| *e == "DecisionTaskStarted").count();
        let decisions_done = k.iter().filter(|e| *e == "DecisionTaskCompleted").count();
        assert_eq!(
            decisions_started, decisions_done,
            "{wid}: every decision task answered once"
        );
    }
    assert_replays(&env);
}

/// Polls parked on an empty task list are served by the request that queues the tasks: each gets
/// one distinct task with its own identity recorded, nothing waits for the poll timeout, and the
/// hand-offs are durable (the state replays identically from the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_polls_are_handed_the_tasks_that_arrive() {
    // Long enough that a poll answered only at its timeout would fail the bounded wait below.
    let env = start_env(|c| c.long_poll_timeout = std::time::Duration::from_secs(20)).await;
    let c = env.client.clone();
    setup(&c).await;
    let run = start_wf(&c, "handoff").await;
    let task = decision_task(&c).await;
    let polls: Vec<_> = (0..3)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.poll_for_activity_task()
                    .domain(DOMAIN)
                    .task_list(tl(WORKER_TL))
                    .identity(format!("parked-{i}"))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    decide(
        &c,
        task.task_token(),
        (0..3).map(|i| schedule(&format!("h{i}"))).collect(),
    )
    .await;
    let mut ids = Vec::new();
    for p in polls {
        let got = bounded(10, p).await.unwrap();
        assert!(
            !got.task_token().is_empty(),
            "a parked poll came back empty"
        );
        ids.push(got.activity_id().to_string());
        c.respond_activity_task_completed()
            .task_token(got.task_token())
            .send()
            .await
            .unwrap();
    }
    ids.sort();
    assert_eq!(ids, ["h0", "h1", "h2"], "each task handed out once");
    let h = history(&c, "handoff", &run).await;
    let mut identities: Vec<_> = h
        .iter()
        .filter_map(|e| e.activity_task_started_event_attributes())
        .map(|a| a.identity().unwrap_or_default().to_string())
        .collect();
    identities.sort();
    assert_eq!(identities, ["parked-0", "parked-1", "parked-2"]);
    // Every start follows its schedule in the history.
    for e in &h {
        if let Some(a) = e.activity_task_started_event_attributes() {
            assert!(a.scheduled_event_id() < e.event_id());
        }
    }
    assert_replays(&env);
}
