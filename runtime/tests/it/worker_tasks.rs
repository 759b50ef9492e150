//! Activity worker behaviour against the in-memory SWF fake: heartbeats, cancellation,
//! UnknownResourceFault, failures, slots, drain and poll backoff.
//!
//! Every test runs on a current-thread tokio runtime with paused time (timers fire in virtual
//! time, deterministically) and a local `metrics` debugging recorder, so the metrics the worker
//! emits can be asserted without a global recorder shared between tests.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use serde_json::json;
use swf_runtime::swf::fake::{FakeSwf, Recorded, TaskScript};
use swf_runtime::swf::{SwfClient, SwfError};
use swf_runtime::telemetry::metrics as m;
use swf_runtime::worker::{
    complete_by_hand, reasons, split_failure_details, ActivityContext, ActivityError,
    ActivityOutcome, ActivityRegistry, ActivityWorker, CancelCause, FnHandler, ManualError,
    WorkerConfig, WorkerError,
};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TL: &str = "media";
/// An upper bound for every wait, in virtual time.
const WAIT: Duration = Duration::from_secs(3600);

/// Runs `test` on a paused current-thread runtime with a local metrics recorder.
fn run_paused<F, Fut>(test: F)
where
    F: FnOnce(Snapshotter) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(test(snapshotter))
    });
}

/// One snapshot of the recorder. Taking it resets the recorder's counters and gauges, so each test
/// takes one after the fact (or adds up the ones it took).
struct Seen(Vec<(CompositeKey, DebugValue)>);

impl Seen {
    fn take(snap: &Snapshotter) -> Seen {
        Seen(
            snap.snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| (key, value))
                .collect(),
        )
    }

    /// The value of every metric of `kind` named `name` whose labels include `labels`, summed.
    fn value(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> f64 {
        crate::common::metrics::sum(self.0.iter().map(|(k, v)| (k, v)), kind, name, labels)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(MetricKind::Counter, name, labels) as u64
    }

    fn gauge(&self, name: &str) -> f64 {
        self.value(MetricKind::Gauge, name, &[("task_list", TL)])
    }
}

fn config(slots: usize) -> WorkerConfig {
    let mut c = WorkerConfig::new(TL);
    c.slots = slots;
    c.pollers = slots;
    c.identity = "test-host:1".into();
    c.default_heartbeat_interval = Duration::from_secs(25);
    c.drain_timeout = Duration::from_secs(30);
    c
}

struct Harness {
    fake: Arc<FakeSwf>,
    shutdown: CancellationToken,
    worker: JoinHandle<Result<(), WorkerError>>,
}

impl Harness {
    fn start(registry: ActivityRegistry, config: WorkerConfig) -> Harness {
        Harness::start_with(
            Arc::new(FakeSwf::new("d", Duration::from_secs(60))),
            registry,
            config,
        )
    }

    fn start_with(fake: Arc<FakeSwf>, registry: ActivityRegistry, config: WorkerConfig) -> Harness {
        let shutdown = CancellationToken::new();
        let client: Arc<dyn SwfClient> = fake.clone();
        let worker = ActivityWorker::new(client, registry, config).expect("valid worker");
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        Harness {
            fake,
            shutdown,
            worker,
        }
    }

    fn push(&self, token: &str, activity_type: &str, input: Option<&str>) {
        self.fake.push_activity_task(
            TL,
            FakeSwf::activity_task(token, activity_type, input.map(str::to_string)),
        );
    }

    async fn answers(&self, n: usize) -> Vec<Recorded> {
        assert!(
            self.fake
                .wait_for(WAIT, |f| f.activity_answers().len() >= n)
                .await,
            "expected {n} answers, got {:?}",
            self.fake.activity_answers()
        );
        self.fake.activity_answers()
    }

    async fn stop(self) -> Arc<FakeSwf> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.worker)
            .await
            .expect("worker stops")
            .expect("worker task")
            .expect("worker ends cleanly");
        self.fake
    }
}

fn echo_registry() -> ActivityRegistry {
    let mut r = ActivityRegistry::new();
    r.register(
        "Echo",
        FnHandler(
            |_ctx: ActivityContext, input: serde_json::Value| async move {
                Ok(ActivityOutcome::Completed(json!({ "echo": input })))
            },
        ),
    );
    r
}

/// Sets its flag when dropped: proves an abandoned handler future was really dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn heartbeats_go_at_a_third_of_the_heartbeat_timeout() {
    run_paused(|snap| async move {
        let mut registry = echo_registry();
        for name in ["Transcode", "Probe"] {
            registry.register(
                name,
                FnHandler(
                    |_ctx: ActivityContext, _input: serde_json::Value| async move {
                        tokio::time::sleep(Duration::from_secs(35)).await;
                        Ok(ActivityOutcome::Completed(json!({ "ok": true })))
                    },
                ),
            );
        }
        let mut cfg = config(2);
        cfg.heartbeat_timeouts
            .insert("Transcode".into(), Duration::from_secs(30));
        let h = Harness::start(registry, cfg);
        h.push("t1", "Transcode", None);
        h.push("t2", "Probe", None);
        let answers = h.answers(2).await;
        // 35 s of work: at 10, 20 and 30 s for a 30 s heartbeat timeout; once (25 s) by default.
        assert_eq!(h.fake.heartbeats("t1").len(), 3);
        assert_eq!(h.fake.heartbeats("t2").len(), 1);
        assert!(answers.contains(&Recorded::Completed {
            token: "t1".into(),
            result: Some(r#"{"ok":true}"#.into()),
        }));
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(
                m::ACTIVITY_HEARTBEATS.name,
                &[("activity_type", "Transcode")]
            ),
            3
        );
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "completed")]),
            2
        );
    });
}

#[test]
fn handler_heartbeats_within_the_first_interval_ride_on_the_workers_beats() {
    run_paused(|_snap| async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Transcode",
            FnHandler(
                |ctx: ActivityContext, _input: serde_json::Value| async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    ctx.heartbeat(Some("50%".into())).await;
                    tokio::time::sleep(Duration::from_secs(16)).await;
                    Ok(ActivityOutcome::Completed(json!(null)))
                },
            ),
        );
        let mut cfg = config(1);
        cfg.heartbeat_timeouts
            .insert("Transcode".into(), Duration::from_secs(30));
        let h = Harness::start(registry, cfg);
        h.push("t1", "Transcode", None);
        h.answers(1).await;
        // The handler's call at 5 s is within the first 10 s interval: its details go with the
        // worker's beat at 10 s, and again at 20 s.
        assert_eq!(
            h.fake.heartbeats("t1"),
            vec![Some("50%".to_string()), Some("50%".to_string())]
        );
        h.stop().await;
    });
}

#[test]
fn handler_heartbeats_are_held_to_one_per_interval_and_the_latest_details_go_next() {
    run_paused(|snap| async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Transcode",
            FnHandler(
                |ctx: ActivityContext, _input: serde_json::Value| async move {
                    for second in (3..=27).step_by(3) {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        ctx.heartbeat(Some(second.to_string())).await;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(ActivityOutcome::Completed(json!(null)))
                },
            ),
        );
        let mut cfg = config(1);
        cfg.heartbeat_timeouts
            .insert("Transcode".into(), Duration::from_secs(30));
        let h = Harness::start(registry, cfg);
        h.push("t1", "Transcode", None);
        h.answers(1).await;
        // Calls every 3 s, a 10 s interval. 3, 6, 9: held (within 10 s of the start), the worker's
        // beat at 10 s sends "9"; 12, 15, 18: held, sent by the beat at 20 s as "18"; 21, 24, 27:
        // held, the task ends at 28 s before the next beat.
        assert_eq!(
            h.fake.heartbeats("t1"),
            vec![Some("9".to_string()), Some("18".to_string())]
        );
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(
                m::ACTIVITY_HEARTBEATS.name,
                &[("activity_type", "Transcode")]
            ),
            2
        );
    });
}

#[test]
fn cancel_requested_cancels_the_handler_and_answers_canceled() {
    run_paused(|snap| async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Transcode",
            FnHandler(
                |ctx: ActivityContext, _input: serde_json::Value| async move {
                    ctx.cancelled().cancelled().await;
                    assert_eq!(ctx.cancel_cause(), Some(CancelCause::Requested));
                    Err(ActivityError::cancelled().with_details("stopped at frame 10"))
                },
            ),
        );
        let mut cfg = config(1);
        cfg.heartbeat_timeouts
            .insert("Transcode".into(), Duration::from_secs(30));
        let h = Harness::start(registry, cfg);
        h.fake.push_scripted_activity_task(
            TL,
            FakeSwf::activity_task("t1", "Transcode", None),
            TaskScript {
                cancel_requested_at_heartbeat: Some(2),
                ..TaskScript::default()
            },
        );
        let started = Instant::now();
        let answers = h.answers(1).await;
        assert_eq!(
            answers,
            vec![Recorded::Canceled {
                token: "t1".into(),
                details: Some("stopped at frame 10".into()),
            }]
        );
        // The second heartbeat (at 20 s) carried the request.
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "canceled")]),
            1
        );
    });
}

#[test]
fn unknown_resource_on_heartbeat_abandons_the_task_and_frees_the_slot() {
    run_paused(|snap| async move {
        let dropped = Arc::new(AtomicBool::new(false));
        let mut registry = echo_registry();
        let flag = dropped.clone();
        registry.register(
            "Stuck",
            FnHandler(move |_ctx: ActivityContext, _input: serde_json::Value| {
                let guard = DropFlag(flag.clone());
                async move {
                    // Ignores its cancellation token on purpose: the worker must still let go.
                    let _guard = guard;
                    std::future::pending::<()>().await;
                    Ok(ActivityOutcome::Completed(json!(null)))
                }
            }),
        );
        let mut cfg = config(1);
        cfg.heartbeat_timeouts
            .insert("Stuck".into(), Duration::from_secs(30));
        let h = Harness::start(registry, cfg);
        h.fake.push_scripted_activity_task(
            TL,
            FakeSwf::activity_task("t1", "Stuck", None),
            TaskScript {
                unknown_resource_after_heartbeats: Some(1),
                ..TaskScript::default()
            },
        );
        assert!(
            h.fake
                .wait_for(WAIT, |f| f.heartbeat_attempts("t1") == 2)
                .await
        );
        // The only slot is free again: the next task runs.
        h.push("t2", "Echo", Some("1"));
        let answers = h.answers(1).await;
        assert_eq!(answers[0].token(), Some("t2"));
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler was not dropped"
        );
        let fake = h.stop().await;
        assert!(fake
            .activity_answers()
            .iter()
            .all(|a| a.token() != Some("t1")));
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(
                m::ACTIVITY_UNKNOWN_RESOURCE.name,
                &[("activity_type", "Stuck")]
            ),
            1
        );
        assert_eq!(
            seen.counter(
                m::ACTIVITY_TASKS.name,
                &[("activity_type", "Stuck"), ("outcome", "timed_out")]
            ),
            1
        );
        assert_eq!(
            seen.counter(
                m::ACTIVITY_HEARTBEAT_FAILURES.name,
                &[("error_type", "unknown_resource")]
            ),
            1
        );
        assert_eq!(seen.gauge(m::WORKER_SLOTS_IN_USE.name), 0.0);
        assert_eq!(seen.gauge(m::WORKER_SLOTS_FREE.name), 1.0);
    });
}

#[test]
fn unknown_resource_on_the_answer_is_counted_and_frees_the_slot() {
    run_paused(|snap| async move {
        let h = Harness::start(echo_registry(), config(1));
        h.fake.push_scripted_activity_task(
            TL,
            FakeSwf::activity_task("t1", "Echo", Some("1".into())),
            TaskScript {
                unknown_resource_on_answer: true,
                ..TaskScript::default()
            },
        );
        h.push("t2", "Echo", Some("2"));
        let answers = h.answers(1).await;
        assert_eq!(
            answers,
            vec![Recorded::Completed {
                token: "t2".into(),
                result: Some(r#"{"echo":2}"#.into()),
            }]
        );
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(seen.counter(m::ACTIVITY_UNKNOWN_RESOURCE.name, &[]), 1);
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "timed_out")]),
            1
        );
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "completed")]),
            1
        );
    });
}

#[test]
fn panics_and_errors_fail_the_task_with_reason_and_details() {
    run_paused(|snap| async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Panics",
            FnHandler(
                |_ctx: ActivityContext, _input: serde_json::Value| async move {
                    if true {
                        panic!("boom at frame 7");
                    }
                    Ok(ActivityOutcome::Completed(json!(null)))
                },
            ),
        );
        registry.register(
            "BadInput",
            FnHandler(
                |_ctx: ActivityContext, _input: serde_json::Value| async move {
                    Err(ActivityError::non_retryable("MediaMissing")
                        .with_details("no such file: a.mp4"))
                },
            ),
        );
        registry.register(
            "Flaky",
            FnHandler(
                |_ctx: ActivityContext, _input: serde_json::Value| async move {
                    Err(ActivityError::new("StorageUnavailable"))
                },
            ),
        );
        let h = Harness::start(registry, config(3));
        h.push("p", "Panics", None);
        h.push("b", "BadInput", None);
        h.push("f", "Flaky", None);
        let answers = h.answers(3).await;
        let failed = |token: &str| {
            answers
                .iter()
                .find_map(|a| match a {
                    Recorded::Failed {
                        token: t,
                        reason,
                        details,
                    } if t == token => Some((reason.clone().unwrap(), details.clone())),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{token} not failed: {answers:?}"))
        };
        let (reason, details) = failed("p");
        assert_eq!(reason, reasons::HANDLER_PANICKED);
        assert!(details.unwrap().contains("boom at frame 7"));
        assert_eq!(
            failed("b"),
            (
                "MediaMissing".to_string(),
                Some("[non-retryable] no such file: a.mp4".to_string())
            )
        );
        assert_eq!(failed("f"), ("StorageUnavailable".to_string(), None));
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "failed")]),
            3
        );
    });
}

#[test]
fn an_oversized_result_fails_the_task_and_one_at_the_limit_completes() {
    run_paused(|_snap| async move {
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Faces",
            FnHandler(
                |_ctx: ActivityContext, input: serde_json::Value| async move {
                    let n = input.as_u64().unwrap() as usize;
                    Ok(ActivityOutcome::Completed(json!("x".repeat(n))))
                },
            ),
        );
        let h = Harness::start(registry, config(1));
        // Serialised with its two quotes: 40,002 and exactly 32,768 characters.
        h.push("big", "Faces", Some("40000"));
        h.push("fits", "Faces", Some("32766"));
        let answers = h.answers(2).await;
        match &answers[0] {
            Recorded::Failed {
                token,
                reason,
                details,
            } => {
                assert_eq!(token, "big");
                assert_eq!(reason.as_deref(), Some(reasons::RESULT_TOO_LARGE));
                let details = details.as_deref().unwrap();
                assert!(split_failure_details(details).0, "{details}");
                assert!(details.contains("40002 characters"), "{details}");
                assert!(details.contains("32768"), "{details}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &answers[1] {
            Recorded::Completed { token, result } => {
                assert_eq!(token, "fits");
                assert_eq!(result.as_ref().unwrap().chars().count(), 32_768);
            }
            other => panic!("unexpected {other:?}"),
        }
        h.stop().await;
    });
}

#[test]
fn an_unknown_activity_type_fails_the_task_clearly() {
    run_paused(|_snap| async move {
        let h = Harness::start(echo_registry(), config(1));
        h.push("t1", "FaceDetect", None);
        let answers = h.answers(1).await;
        match &answers[0] {
            Recorded::Failed {
                reason, details, ..
            } => {
                assert_eq!(reason.as_deref(), Some(reasons::UNKNOWN_ACTIVITY_TYPE));
                let details = details.as_deref().unwrap();
                assert!(
                    details.contains("FaceDetect") && details.contains("Echo"),
                    "{details}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        h.stop().await;
    });
}

#[test]
fn complete_later_keeps_the_task_open_for_a_manual_completion() {
    run_paused(|snap| async move {
        let stored: Arc<Mutex<Option<String>>> = Arc::default();
        let mut registry = ActivityRegistry::new();
        let keep = stored.clone();
        registry.register(
            "FaceRecognitionManual",
            FnHandler(move |ctx: ActivityContext, _input: serde_json::Value| {
                let keep = keep.clone();
                async move {
                    *keep.lock().unwrap() = Some(ctx.task_token().to_string());
                    Ok(ActivityOutcome::CompleteLater)
                }
            }),
        );
        let h = Harness::start(registry, config(1));
        h.push("manual-1", "FaceRecognitionManual", None);
        assert!(
            h.fake
                .wait_for(WAIT, |_| stored.lock().unwrap().is_some())
                .await
        );
        let fake = h.stop().await;
        assert!(
            fake.activity_answers().is_empty(),
            "a deferred task was answered"
        );
        let seen = Seen::take(&snap);
        assert_eq!(
            seen.counter(m::ACTIVITY_TASKS.name, &[("outcome", "deferred")]),
            1
        );

        let token = stored.lock().unwrap().clone().unwrap();
        let too_big = "y".repeat(32_769);
        assert!(matches!(
            complete_by_hand(&*fake, &token, Some(too_big)).await,
            Err(ManualError::ResultTooLarge { chars: 32_769, .. })
        ));
        complete_by_hand(&*fake, &token, Some(r#"{"faces":2}"#.into()))
            .await
            .expect("completed by hand");
        assert_eq!(
            fake.activity_answers(),
            vec![Recorded::Completed {
                token: "manual-1".into(),
                result: Some(r#"{"faces":2}"#.into()),
            }]
        );
        assert!(matches!(
            complete_by_hand(&*fake, &token, None).await,
            Err(ManualError::TaskGone(_))
        ));
    });
}

#[test]
fn no_poll_is_made_while_every_slot_is_busy() {
    run_paused(|snap| async move {
        let gate = Arc::new(Semaphore::new(0));
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<String>();
        let mut registry = ActivityRegistry::new();
        let g = gate.clone();
        registry.register(
            "Blocked",
            FnHandler(move |ctx: ActivityContext, _input: serde_json::Value| {
                let gate = g.clone();
                let started = started_tx.clone();
                async move {
                    started.send(ctx.info().activity_id.clone()).unwrap();
                    gate.acquire().await.unwrap().forget();
                    Ok(ActivityOutcome::Completed(json!(null)))
                }
            }),
        );
        let h = Harness::start(registry, config(2));
        h.push("t1", "Blocked", None);
        h.push("t2", "Blocked", None);
        for _ in 0..2 {
            tokio::time::timeout(WAIT, started_rx.recv())
                .await
                .expect("handler started")
                .unwrap();
        }
        let polls = h.fake.activity_polls(TL);
        assert_eq!(polls, 2);
        // Ten minutes with both slots busy: no new poll, none outstanding, a new task waits.
        tokio::time::sleep(Duration::from_secs(600)).await;
        h.push("t3", "Blocked", None);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(h.fake.activity_polls(TL), polls);
        assert_eq!(h.fake.polls_in_flight(), 0);
        assert_eq!(h.fake.pending_activity_tasks(TL), 1);
        let busy = Seen::take(&snap);
        assert_eq!(busy.gauge(m::WORKER_SLOTS_IN_USE.name), 2.0);
        assert_eq!(busy.gauge(m::WORKER_SLOTS_FREE.name), 0.0);

        // One slot frees: the waiting task is polled and started.
        gate.add_permits(1);
        let third = tokio::time::timeout(WAIT, started_rx.recv())
            .await
            .expect("third task started")
            .unwrap();
        assert_eq!(third, "act-t3");
        gate.add_permits(2);
        h.answers(3).await;
        h.stop().await;
        let rest = Seen::take(&snap);
        let tasks_polled = busy.counter(m::POLLS.name, &[("outcome", "task")])
            + rest.counter(m::POLLS.name, &[("outcome", "task")]);
        assert_eq!(tasks_polled, 3);
    });
}

#[test]
fn shutdown_drains_in_flight_tasks_and_stops_polling() {
    run_paused(|snap| async move {
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
        let mut registry = ActivityRegistry::new();
        registry.register(
            "Transcode",
            FnHandler(move |_ctx: ActivityContext, _input: serde_json::Value| {
                let started = started_tx.clone();
                async move {
                    started.send(()).unwrap();
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(ActivityOutcome::Completed(json!("done")))
                }
            }),
        );
        let h = Harness::start(registry, config(2));
        h.push("t1", "Transcode", None);
        tokio::time::timeout(WAIT, started_rx.recv())
            .await
            .expect("handler started")
            .unwrap();
        let polls = h.fake.activity_polls(TL);
        let shutdown_at = Instant::now();
        h.shutdown.cancel();
        // Once the outstanding long poll is abandoned, a new task stays on the task list.
        assert!(h.fake.wait_for(WAIT, |f| f.polls_in_flight() == 0).await);
        h.push("t2", "Transcode", None);
        let fake = h.fake.clone();
        h.stop().await;
        // The in-flight task finished (10 s) inside the 30 s drain timeout and was answered.
        assert_eq!(shutdown_at.elapsed(), Duration::from_secs(10));
        assert_eq!(
            fake.activity_answers(),
            vec![Recorded::Completed {
                token: "t1".into(),
                result: Some(r#""done""#.into()),
            }]
        );
        assert_eq!(fake.activity_polls(TL), polls, "polled after shutdown");
        assert_eq!(fake.pending_activity_tasks(TL), 1);
        assert_eq!(fake.polls_in_flight(), 0);
        let seen = Seen::take(&snap);
        assert_eq!(seen.gauge(m::WORKER_DRAINING.name), 0.0);
    });
}

#[test]
fn a_task_handed_out_as_shutdown_begins_is_run_not_dropped() {
    run_paused(|_snap| async move {
        let h = Harness::start(echo_registry(), config(1));
        assert!(h.fake.wait_for(WAIT, |f| f.polls_in_flight() == 1).await);
        // The poll's answer and the shutdown arrive together: the answer wins.
        h.shutdown.cancel();
        h.push("t1", "Echo", Some("5"));
        let fake = h.stop().await;
        assert_eq!(
            fake.activity_answers(),
            vec![Recorded::Completed {
                token: "t1".into(),
                result: Some(r#"{"echo":5}"#.into()),
            }]
        );
        assert_eq!(fake.activity_polls(TL), 1);
    });
}

#[test]
fn tasks_still_running_at_the_drain_timeout_are_cancelled_and_failed() {
    run_paused(|_snap| async move {
        let dropped = Arc::new(AtomicBool::new(false));
        let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
        let mut registry = ActivityRegistry::new();
        let flag = dropped.clone();
        registry.register(
            "Endless",
            FnHandler(move |_ctx: ActivityContext, _input: serde_json::Value| {
                let guard = DropFlag(flag.clone());
                let started = started_tx.clone();
                async move {
                    let _guard = guard;
                    started.send(()).unwrap();
                    tokio::time::sleep(Duration::from_secs(100_000)).await;
                    Ok(ActivityOutcome::Completed(json!(null)))
                }
            }),
        );
        let mut cfg = config(1);
        cfg.drain_timeout = Duration::from_secs(5);
        let h = Harness::start(registry, cfg);
        h.push("t1", "Endless", None);
        tokio::time::timeout(WAIT, started_rx.recv())
            .await
            .expect("handler started")
            .unwrap();
        let shutdown_at = Instant::now();
        let fake = h.stop().await;
        assert_eq!(shutdown_at.elapsed(), Duration::from_secs(5));
        match &fake.activity_answers()[..] {
            [Recorded::Failed {
                token,
                reason,
                details,
            }] => {
                assert_eq!(token, "t1");
                assert_eq!(reason.as_deref(), Some(reasons::DRAIN_TIMEOUT));
                assert!(details.as_deref().unwrap().contains("drain timeout"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler was not dropped"
        );
    });
}

#[test]
fn poll_errors_back_off_exponentially_then_recover() {
    run_paused(|snap| async move {
        let fake = Arc::new(FakeSwf::new("d", Duration::from_secs(60)));
        fake.fail_next_polls(vec![
            SwfError::Transport("connection refused".into()),
            SwfError::Throttled("slow down".into()),
            SwfError::Transport("connection reset".into()),
        ]);
        fake.push_activity_task(TL, FakeSwf::activity_task("t1", "Echo", Some("1".into())));
        let started = Instant::now();
        let h = Harness::start_with(fake, echo_registry(), config(1));
        h.answers(1).await;
        // Waits of about 1, 2 and 4 s (each +-20%) before the fourth poll gets the task.
        let waited = started.elapsed().as_secs_f64();
        assert!((5.6..=8.4).contains(&waited), "waited {waited} s");
        h.stop().await;
        let seen = Seen::take(&snap);
        assert_eq!(seen.counter(m::POLLS.name, &[("outcome", "error")]), 3);
        assert_eq!(seen.counter(m::POLLS.name, &[("outcome", "task")]), 1);
    });
}

#[test]
fn a_refused_poll_stops_the_worker_with_an_error() {
    run_paused(|_snap| async move {
        let fake = Arc::new(FakeSwf::new("d", Duration::from_secs(60)));
        fake.fail_next_polls(vec![SwfError::UnknownResource("Unknown domain: d".into())]);
        let h = Harness::start_with(fake, echo_registry(), config(2));
        let result = tokio::time::timeout(Duration::from_secs(1), h.worker)
            .await
            .expect("the worker stops at once")
            .expect("worker task");
        match result {
            Err(WorkerError::Poll { task_list, source }) => {
                assert_eq!(task_list, TL);
                assert!(matches!(source, SwfError::UnknownResource(_)));
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn an_idle_worker_stops_at_once_abandoning_its_long_polls() {
    run_paused(|_snap| async move {
        let h = Harness::start(echo_registry(), config(2));
        assert!(h.fake.wait_for(WAIT, |f| f.polls_in_flight() == 2).await);
        let asked = Instant::now();
        let fake = h.stop().await;
        assert!(asked.elapsed() < Duration::from_secs(1));
        assert_eq!(fake.polls_in_flight(), 0);
    });
}

#[test]
fn the_envelope_gives_the_handler_the_task_identity() {
    run_paused(|_snap| async move {
        let seen: Arc<Mutex<Option<(swf_runtime::worker::TaskInfo, serde_json::Value)>>> =
            Arc::default();
        let mut registry = ActivityRegistry::new();
        let keep = seen.clone();
        registry.register(
            "Upload",
            FnHandler(move |ctx: ActivityContext, input: serde_json::Value| {
                let keep = keep.clone();
                async move {
                    *keep.lock().unwrap() = Some((ctx.info().clone(), input));
                    Ok(ActivityOutcome::Completed(json!(null)))
                }
            }),
        );
        let h = Harness::start(registry, config(1));
        let env = swf_runtime::envelope::Envelope {
            swf_runtime: swf_runtime::envelope::TaskContext {
                media_uuid: "m-1".into(),
                user_uuid: "u-1".into(),
                workflow_type: "VideoProcessing".into(),
                stage: "upload".into(),
                attempt: 3,
            },
            input: json!({ "path": "/in/a.mp4" }),
        };
        h.push("t1", "Upload", Some(&env.encode()));
        h.answers(1).await;
        let (info, input) = seen.lock().unwrap().clone().unwrap();
        assert_eq!(input, json!({ "path": "/in/a.mp4" }));
        assert_eq!(info.media_uuid, "m-1");
        assert_eq!(info.user_uuid, "u-1");
        assert_eq!(info.workflow_type, "VideoProcessing");
        assert_eq!(info.attempt, 3);
        assert_eq!(info.workflow_id, "wf-t1");
        assert_eq!(info.run_id, "run-t1");
        assert_eq!(info.activity_id, "act-t1");
        assert_eq!(info.task_list, TL);
        assert_eq!(
            info.task_token_hash,
            swf_runtime::envelope::token_hash("t1")
        );
        h.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_real_parallelism_slots_bound_concurrency_and_every_task_is_answered_once() {
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut registry = ActivityRegistry::new();
    let (r, p) = (running.clone(), peak.clone());
    registry.register(
        "Work",
        FnHandler(move |_ctx: ActivityContext, input: serde_json::Value| {
            let (running, peak) = (r.clone(), p.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(ActivityOutcome::Completed(input))
            }
        }),
    );
    let fake = Arc::new(FakeSwf::new("d", Duration::from_millis(50)));
    let mut cfg = config(4);
    cfg.pollers = 2;
    let h = Harness::start_with(fake, registry, cfg);
    for i in 0..60 {
        h.push(&format!("t{i}"), "Work", Some(&i.to_string()));
    }
    let answers = tokio::time::timeout(Duration::from_secs(30), h.answers(60))
        .await
        .expect("every task answered in time");
    let fake = h.stop().await;
    assert_eq!(answers.len(), 60);
    let mut tokens: Vec<_> = answers.iter().filter_map(|a| a.token()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 60, "a task was answered twice");
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "more tasks than slots ran"
    );
    assert_eq!(fake.pending_activity_tasks(TL), 0);
}
