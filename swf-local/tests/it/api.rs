//! Every swf-local action driven through aws-sdk-swf: registration, the task round trip, decisions
//! with their failure events, faults, paging, listings, counts, limits and retention.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_swf::types::*;
use common::*;

#[tokio::test]
async fn activity_round_trip_and_history() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "wf-1").await;

    let d1 = decision_task(c).await;
    assert_eq!(d1.started_event_id(), 3);
    assert_eq!(d1.previous_started_event_id(), 0);
    assert_eq!(
        kinds(d1.events()),
        [
            "WorkflowExecutionStarted",
            "DecisionTaskScheduled",
            "DecisionTaskStarted"
        ]
    );
    assert_eq!(d1.workflow_execution().unwrap().run_id(), run);
    assert_eq!(d1.workflow_type().unwrap().name(), WF.0);
    let started = d1.events()[0]
        .workflow_execution_started_event_attributes()
        .unwrap();
    assert_eq!(started.input(), Some("hello"));
    assert_eq!(started.task_list().unwrap().name(), DECIDER_TL);
    assert_eq!(started.child_policy(), &ChildPolicy::Terminate);
    decide(c, d1.task_token(), vec![schedule("a1")]).await;

    let a = activity_task(c).await;
    assert_eq!(a.activity_id(), "a1");
    assert_eq!(a.input(), Some("input-a1"));
    assert_eq!(a.activity_type().unwrap().name(), ACT.0);
    assert_eq!(a.workflow_execution().unwrap().workflow_id(), "wf-1");
    let hb = c
        .record_activity_task_heartbeat()
        .task_token(a.task_token())
        .details("half")
        .send()
        .await
        .unwrap();
    assert!(!hb.cancel_requested());
    c.respond_activity_task_completed()
        .task_token(a.task_token())
        .result("done")
        .send()
        .await
        .unwrap();

    let d2 = decision_task(c).await;
    assert_eq!(d2.previous_started_event_id(), 3);
    let completed = d2
        .events()
        .iter()
        .find_map(|e| e.activity_task_completed_event_attributes())
        .expect("ActivityTaskCompleted in the second decision task");
    assert_eq!(completed.result(), Some("done"));
    let ctx = "ctx-2";
    c.respond_decision_task_completed()
        .task_token(d2.task_token())
        .execution_context(ctx)
        .decisions(complete("all done"))
        .send()
        .await
        .unwrap();

    let h = history(c, "wf-1", &run).await;
    assert_eq!(
        kinds(&h),
        [
            "WorkflowExecutionStarted",
            "DecisionTaskScheduled",
            "DecisionTaskStarted",
            "DecisionTaskCompleted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
            "DecisionTaskScheduled",
            "DecisionTaskStarted",
            "DecisionTaskCompleted",
            "WorkflowExecutionCompleted",
        ]
    );
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.event_id(), i as i64 + 1);
    }
    let raw = raw_history(env.server.local_addr(), "wf-1", &run).await;
    let sched = attrs_of(&raw, "ActivityTaskScheduled");
    assert_eq!(sched["scheduleToStartTimeout"], "30");
    assert_eq!(sched["startToCloseTimeout"], "60");
    assert_eq!(sched["taskList"]["name"], WORKER_TL);
    assert_eq!(sched["decisionTaskCompletedEventId"], 4);
    assert_eq!(
        attrs_of(&raw, "ActivityTaskStarted")["identity"],
        "worker-1"
    );
    assert_eq!(
        attrs_of(&raw, "WorkflowExecutionCompleted")["result"],
        "all done"
    );
    assert!(raw[0]["eventTimestamp"].as_f64().unwrap() > 1.0e9);

    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("wf-1", &run))
        .send()
        .await
        .unwrap();
    let info = desc.execution_info().unwrap();
    assert_eq!(info.execution_status(), &ExecutionStatus::Closed);
    assert_eq!(info.close_status(), Some(&CloseStatus::Completed));
    assert_eq!(desc.latest_execution_context(), Some(ctx));
    assert!(desc.latest_activity_task_timestamp().is_some());
    assert_eq!(
        desc.execution_configuration()
            .unwrap()
            .task_start_to_close_timeout(),
        "30"
    );
    assert_replays(&env);
    env.server.shutdown().await;
}

#[tokio::test]
async fn domains_lifecycle_and_faults() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    c.register_domain()
        .name("d1")
        .description("first")
        .workflow_execution_retention_period_in_days("3")
        .send()
        .await
        .unwrap();
    let err = c
        .register_domain()
        .name("d1")
        .workflow_execution_retention_period_in_days("3")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DomainAlreadyExistsFault");
    let err = c
        .register_domain()
        .name("d2")
        .workflow_execution_retention_period_in_days("91")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    let d = c.describe_domain().name("d1").send().await.unwrap();
    assert_eq!(d.domain_info().unwrap().description(), Some("first"));
    assert_eq!(
        d.domain_info().unwrap().status(),
        &RegistrationStatus::Registered
    );
    assert_eq!(
        d.configuration()
            .unwrap()
            .workflow_execution_retention_period_in_days(),
        "3"
    );
    let err = c.describe_domain().name("nope").send().await.unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    for i in 0..3 {
        c.register_domain()
            .name(format!("p{i}"))
            .workflow_execution_retention_period_in_days("0")
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .list_domains()
            .registration_status(RegistrationStatus::Registered)
            .maximum_page_size(2)
            .set_next_page_token(token)
            .send()
            .await
            .unwrap();
        assert!(out.domain_infos().len() <= 2);
        names.extend(out.domain_infos().iter().map(|d| d.name().to_string()));
        token = out.next_page_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["d1", "p0", "p1", "p2"]);

    c.deprecate_domain().name("d1").send().await.unwrap();
    let err = c.deprecate_domain().name("d1").send().await.unwrap_err();
    assert!(err.into_service_error().is_domain_deprecated_fault());
    let dep = c
        .list_domains()
        .registration_status(RegistrationStatus::Deprecated)
        .send()
        .await
        .unwrap();
    assert_eq!(dep.domain_infos().len(), 1);
    let err = c
        .register_workflow_type()
        .domain("d1")
        .name("x")
        .version("1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DomainDeprecatedFault");
    c.undeprecate_domain().name("d1").send().await.unwrap();
    let err = c.undeprecate_domain().name("d1").send().await.unwrap_err();
    assert!(err.into_service_error().is_domain_already_exists_fault());
    assert_replays(&env);
}

#[tokio::test]
async fn types_lifecycle_and_faults() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let err = c
        .register_activity_type()
        .domain(DOMAIN)
        .name(ACT.0)
        .version(ACT.1)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_type_already_exists_fault());
    let err = c
        .register_workflow_type()
        .domain("missing")
        .name("x")
        .version("1")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    let d = c
        .describe_activity_type()
        .domain(DOMAIN)
        .activity_type(act_type())
        .send()
        .await
        .unwrap();
    let cfg = d.configuration().unwrap();
    assert_eq!(cfg.default_task_schedule_to_start_timeout(), Some("30"));
    assert_eq!(cfg.default_task_heartbeat_timeout(), Some("NONE"));
    assert_eq!(cfg.default_task_list().unwrap().name(), WORKER_TL);
    let w = c
        .describe_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap();
    assert_eq!(
        w.configuration()
            .unwrap()
            .default_execution_start_to_close_timeout(),
        Some("300")
    );
    assert_eq!(
        w.configuration().unwrap().default_child_policy(),
        Some(&ChildPolicy::Terminate)
    );
    assert_eq!(
        w.type_info().unwrap().status(),
        &RegistrationStatus::Registered
    );
    let err = c
        .describe_workflow_type()
        .domain(DOMAIN)
        .workflow_type(
            WorkflowType::builder()
                .name("nope")
                .version("1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    for v in ["2", "3"] {
        c.register_activity_type()
            .domain(DOMAIN)
            .name(ACT.0)
            .version(v)
            .send()
            .await
            .unwrap();
    }
    let page = c
        .list_activity_types()
        .domain(DOMAIN)
        .registration_status(RegistrationStatus::Registered)
        .maximum_page_size(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.type_infos().len(), 2);
    let rest = c
        .list_activity_types()
        .domain(DOMAIN)
        .registration_status(RegistrationStatus::Registered)
        .maximum_page_size(2)
        .next_page_token(page.next_page_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.type_infos().len(), 1);
    assert!(rest.next_page_token().is_none());
    let named = c
        .list_workflow_types()
        .domain(DOMAIN)
        .name(WF.0)
        .registration_status(RegistrationStatus::Registered)
        .send()
        .await
        .unwrap();
    assert_eq!(named.type_infos().len(), 1);

    c.deprecate_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap();
    let err = c
        .deprecate_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_type_deprecated_fault());
    let w = c
        .describe_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap();
    assert!(w.type_info().unwrap().deprecation_date().is_some());
    let err = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("x")
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_type_deprecated_fault());
    c.undeprecate_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap();
    let err = c
        .undeprecate_workflow_type()
        .domain(DOMAIN)
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_type_already_exists_fault());
    start_wf(c, "after-undeprecate").await;

    c.deprecate_activity_type()
        .domain(DOMAIN)
        .activity_type(act_type())
        .send()
        .await
        .unwrap();
    let dep = c
        .list_activity_types()
        .domain(DOMAIN)
        .registration_status(RegistrationStatus::Deprecated)
        .send()
        .await
        .unwrap();
    assert_eq!(dep.type_infos().len(), 1);
    c.undeprecate_activity_type()
        .domain(DOMAIN)
        .activity_type(act_type())
        .send()
        .await
        .unwrap();
    assert_replays(&env);
}

#[tokio::test]
async fn start_faults_and_workflow_id_reuse() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let err = c
        .start_workflow_execution()
        .domain("nope")
        .workflow_id("a")
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    let err = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("a")
        .workflow_type(
            WorkflowType::builder()
                .name("nope")
                .version("1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    let first = start_wf(c, "same").await;
    let err = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("same")
        .workflow_type(wf_type())
        .send()
        .await
        .unwrap_err();
    assert!(err
        .into_service_error()
        .is_workflow_execution_already_started_fault());
    c.terminate_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("same")
        .reason("test")
        .send()
        .await
        .unwrap();
    let second = start_wf(c, "same").await;
    assert_ne!(first, second);

    c.register_workflow_type()
        .domain(DOMAIN)
        .name("Bare")
        .version("1")
        .send()
        .await
        .unwrap();
    let err = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("bare")
        .workflow_type(
            WorkflowType::builder()
                .name("Bare")
                .version("1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_default_undefined_fault());

    let big = "x".repeat(32_769);
    let err = c
        .start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("big")
        .workflow_type(wf_type())
        .input(big)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("input"), "{}", message(&err));
    let ok = "x".repeat(32_768);
    c.start_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("big")
        .workflow_type(wf_type())
        .input(ok)
        .send()
        .await
        .unwrap();
    assert_replays(&env);
}

#[tokio::test]
async fn stale_tokens_get_unknown_resource() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "stale").await;
    let d = decision_task(c).await;
    decide(c, d.task_token(), vec![schedule("a1"), schedule("a2")]).await;
    let err = c
        .respond_decision_task_completed()
        .task_token(d.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    let a = activity_task(c).await;
    c.respond_activity_task_completed()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap();
    let err = c
        .respond_activity_task_completed()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    let err = c
        .record_activity_task_heartbeat()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    let b = activity_task(c).await;
    c.terminate_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("stale")
        .run_id(&run)
        .send()
        .await
        .unwrap();
    let err = c
        .record_activity_task_heartbeat()
        .task_token(b.task_token())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    let err = c
        .respond_activity_task_failed()
        .task_token(b.task_token())
        .reason("late")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());
    let err = c
        .respond_activity_task_completed()
        .task_token("garbage!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_replays(&env);
}

#[tokio::test]
async fn long_polls_wake_promptly_and_hand_out_distinct_tasks() {
    let env = start_env(|c| c.long_poll_timeout = Duration::from_secs(10)).await;
    let c = env.client.clone();
    setup(&c).await;

    let t0 = Instant::now();
    let empty = env_short_poll().await;
    assert!(empty.task_token().is_empty());
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "empty poll held for the poll timeout"
    );

    let pollers: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let out = c
                    .poll_for_activity_task()
                    .domain(DOMAIN)
                    .task_list(tl(WORKER_TL))
                    .send()
                    .await
                    .unwrap();
                (out, Instant::now())
            })
        })
        .collect();
    start_wf(&c, "lp").await;
    let d = decision_task(&c).await;
    // Give both pollers time to park: not needed for correctness (a queued task waits for them),
    // but it makes this test measure the wake-up path rather than an immediate take.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    decide(&c, d.task_token(), vec![schedule("x"), schedule("y")]).await;
    let mut ids = Vec::new();
    for p in pollers {
        let (out, at) = bounded(10, p).await.unwrap();
        assert!(!out.task_token().is_empty());
        assert!(
            at.duration_since(sent) < Duration::from_secs(2),
            "poller woke late"
        );
        ids.push(out.activity_id().to_string());
    }
    ids.sort();
    assert_eq!(ids, ["x", "y"]);

    async fn env_short_poll(
    ) -> aws_sdk_swf::operation::poll_for_decision_task::PollForDecisionTaskOutput {
        let env = start_env(|c| c.long_poll_timeout = Duration::from_secs(1)).await;
        setup(&env.client).await;
        bounded(
            10,
            env.client
                .poll_for_decision_task()
                .domain(DOMAIN)
                .task_list(tl("empty"))
                .send(),
        )
        .await
        .unwrap()
    }
    assert_replays(&env);
}

#[tokio::test]
async fn one_decision_task_at_a_time_and_unhandled_decision() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "uh").await;
    let d = decision_task(c).await;
    // Events while the task is started must not create a second decision task now.
    c.signal_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("uh")
        .signal_name("poke")
        .input("1")
        .send()
        .await
        .unwrap();
    let pending = c
        .count_pending_decision_tasks()
        .domain(DOMAIN)
        .task_list(tl(DECIDER_TL))
        .send()
        .await
        .unwrap();
    assert_eq!(pending.count(), 0);
    decide(c, d.task_token(), vec![complete("too early")]).await;

    let raw = raw_history(env.server.local_addr(), "uh", &run).await;
    let failed = attrs_of(&raw, "CompleteWorkflowExecutionFailed");
    assert_eq!(failed["cause"], "UNHANDLED_DECISION");
    let d2 = decision_task(c).await;
    assert_eq!(d2.previous_started_event_id(), d.started_event_id());
    assert!(kinds(d2.events()).contains(&"WorkflowExecutionSignaled".to_string()));
    decide(c, d2.task_token(), vec![complete("now")]).await;
    let h = history(c, "uh", &run).await;
    assert_eq!(kinds(&h).last().unwrap(), "WorkflowExecutionCompleted");
    assert_replays(&env);
}

#[tokio::test]
async fn decision_history_pages_and_reverse_order() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "pages").await;
    for i in 0..7 {
        c.signal_workflow_execution()
            .domain(DOMAIN)
            .workflow_id("pages")
            .signal_name(format!("s{i}"))
            .send()
            .await
            .unwrap();
    }
    let first = decision_task(c).await;
    let total = first.started_event_id();
    assert_eq!(total, 10);
    // Poll again with a small page size: the first task is started, so take it via paging.
    let full = first.events().to_vec();
    assert_eq!(full.len() as i64, total);

    // A fresh decision task with paging: answer this one, signal, page the next.
    decide(c, first.task_token(), vec![]).await;
    c.signal_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("pages")
        .signal_name("more")
        .send()
        .await
        .unwrap();
    let p1 = bounded(
        10,
        c.poll_for_decision_task()
            .domain(DOMAIN)
            .task_list(tl(DECIDER_TL))
            .maximum_page_size(4)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(p1.events().len(), 4);
    assert_eq!(p1.previous_started_event_id(), total);
    let mut events = p1.events().to_vec();
    let mut token = p1.next_page_token().map(str::to_string);
    while let Some(t) = token {
        let p = c
            .poll_for_decision_task()
            .domain(DOMAIN)
            .task_list(tl(DECIDER_TL))
            .maximum_page_size(4)
            .next_page_token(t)
            .send()
            .await
            .unwrap();
        assert_eq!(p.task_token(), p1.task_token());
        events.extend(p.events().iter().cloned());
        token = p.next_page_token().map(str::to_string);
    }
    assert_eq!(events.len() as i64, p1.started_event_id());
    let ids: Vec<i64> = events.iter().map(|e| e.event_id()).collect();
    assert_eq!(ids, (1..=p1.started_event_id()).collect::<Vec<_>>());

    let rev = c
        .get_workflow_execution_history()
        .domain(DOMAIN)
        .execution(exec("pages", &run))
        .reverse_order(true)
        .maximum_page_size(3)
        .send()
        .await
        .unwrap();
    let rev_ids: Vec<i64> = rev.events().iter().map(|e| e.event_id()).collect();
    let n = history(c, "pages", &run).await.len() as i64;
    assert_eq!(rev_ids, [n, n - 1, n - 2]);
    let rev2 = c
        .get_workflow_execution_history()
        .domain(DOMAIN)
        .execution(exec("pages", &run))
        .reverse_order(true)
        .maximum_page_size(3)
        .next_page_token(rev.next_page_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rev2.events()[0].event_id(), n - 3);
    let err = c
        .get_workflow_execution_history()
        .domain(DOMAIN)
        .execution(exec("pages", &run))
        .next_page_token("bogus")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_replays(&env);
}

#[tokio::test]
async fn timers_markers_and_their_failures() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "timers").await;
    let d = decision_task(c).await;
    let marker = Decision::builder()
        .decision_type(DecisionType::RecordMarker)
        .record_marker_decision_attributes(
            RecordMarkerDecisionAttributes::builder()
                .marker_name("m")
                .details("md")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    decide(
        c,
        d.task_token(),
        vec![
            start_timer("fast", 1),
            start_timer("slow", 600),
            start_timer("fast", 5),
            marker,
        ],
    )
    .await;
    let raw = raw_history(env.server.local_addr(), "timers", &run).await;
    assert_eq!(
        attrs_of(&raw, "StartTimerFailed")["cause"],
        "TIMER_ID_ALREADY_IN_USE"
    );
    assert_eq!(attrs_of(&raw, "MarkerRecorded")["details"], "md");
    assert_eq!(attrs_of(&raw, "TimerStarted")["startToFireTimeout"], "1");

    // The failure asks the decider again.
    let d2 = decision_task(c).await;
    let cancel = |id: &str| {
        Decision::builder()
            .decision_type(DecisionType::CancelTimer)
            .cancel_timer_decision_attributes(
                CancelTimerDecisionAttributes::builder()
                    .timer_id(id)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    decide(c, d2.task_token(), vec![cancel("slow"), cancel("unknown")]).await;
    let d3 = decision_task(c).await;
    let k = kinds(d3.events());
    assert!(k.contains(&"TimerCanceled".to_string()));
    assert!(k.contains(&"CancelTimerFailed".to_string()));
    let raw = raw_history(env.server.local_addr(), "timers", &run).await;
    assert_eq!(
        attrs_of(&raw, "CancelTimerFailed")["cause"],
        "TIMER_ID_UNKNOWN"
    );
    decide(c, d3.task_token(), vec![]).await;

    let d4 = decision_task(c).await;
    let fired = d4
        .events()
        .iter()
        .find_map(|e| e.timer_fired_event_attributes())
        .expect("TimerFired");
    assert_eq!(fired.timer_id(), "fast");
    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("timers", &run))
        .send()
        .await
        .unwrap();
    assert_eq!(desc.open_counts().unwrap().open_timers(), 0);
    assert_replays(&env);
}

#[tokio::test]
async fn activity_decision_failures_and_cancellation() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    c.register_activity_type()
        .domain(DOMAIN)
        .name("Bare")
        .version("1")
        .send()
        .await
        .unwrap();
    let run = start_wf(c, "acts").await;
    let d = decision_task(c).await;
    let bare = Decision::builder()
        .decision_type(DecisionType::ScheduleActivityTask)
        .schedule_activity_task_decision_attributes(
            ScheduleActivityTaskDecisionAttributes::builder()
                .activity_type(
                    ActivityType::builder()
                        .name("Bare")
                        .version("1")
                        .build()
                        .unwrap(),
                )
                .activity_id("bare")
                .task_list(tl(WORKER_TL))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let unknown = schedule_with("ghost", |b| {
        b.activity_type(
            ActivityType::builder()
                .name("Ghost")
                .version("1")
                .build()
                .unwrap(),
        )
    });
    let cancel = |id: &str| {
        Decision::builder()
            .decision_type(DecisionType::RequestCancelActivityTask)
            .request_cancel_activity_task_decision_attributes(
                RequestCancelActivityTaskDecisionAttributes::builder()
                    .activity_id(id)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    decide(
        c,
        d.task_token(),
        vec![
            schedule("run"),
            schedule("queued"),
            schedule("run"),
            bare,
            unknown,
            cancel("nobody"),
            cancel("queued"),
        ],
    )
    .await;
    let raw = raw_history(env.server.local_addr(), "acts", &run).await;
    let causes: Vec<(String, String)> = raw
        .iter()
        .filter(|e| e["eventType"] == "ScheduleActivityTaskFailed")
        .map(|e| {
            let a = &e["scheduleActivityTaskFailedEventAttributes"];
            (
                a["activityId"].as_str().unwrap().to_string(),
                a["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            ("run".to_string(), "ACTIVITY_ID_ALREADY_IN_USE".to_string()),
            (
                "bare".to_string(),
                "DEFAULT_SCHEDULE_TO_START_TIMEOUT_UNDEFINED".to_string()
            ),
            (
                "ghost".to_string(),
                "ACTIVITY_TYPE_DOES_NOT_EXIST".to_string()
            ),
        ]
    );
    assert_eq!(
        attrs_of(&raw, "RequestCancelActivityTaskFailed")["cause"],
        "ACTIVITY_ID_UNKNOWN"
    );
    // A queued (not started) activity is canceled on the spot.
    let canceled = attrs_of(&raw, "ActivityTaskCanceled");
    assert_eq!(canceled["startedEventId"], 0);
    assert!(canceled["latestCancelRequestedEventId"].as_i64().unwrap() > 0);

    let a = activity_task(c).await;
    assert_eq!(a.activity_id(), "run");
    let d2 = decision_task(c).await;
    decide(c, d2.task_token(), vec![cancel("run")]).await;
    let hb = c
        .record_activity_task_heartbeat()
        .task_token(a.task_token())
        .send()
        .await
        .unwrap();
    assert!(hb.cancel_requested());
    c.respond_activity_task_canceled()
        .task_token(a.task_token())
        .details("stopped")
        .send()
        .await
        .unwrap();
    let d3 = decision_task(c).await;
    let canceled: Vec<_> = d3
        .events()
        .iter()
        .filter_map(|e| e.activity_task_canceled_event_attributes())
        .collect();
    assert_eq!(canceled.len(), 2);
    assert_eq!(canceled[1].details(), Some("stopped"));

    decide(c, d3.task_token(), vec![schedule("fails")]).await;
    let f = activity_task(c).await;
    c.respond_activity_task_failed()
        .task_token(f.task_token())
        .reason("boom")
        .details("stack")
        .send()
        .await
        .unwrap();
    let d4 = decision_task(c).await;
    let failed = d4
        .events()
        .iter()
        .find_map(|e| e.activity_task_failed_event_attributes())
        .unwrap();
    assert_eq!(
        (failed.reason(), failed.details()),
        (Some("boom"), Some("stack"))
    );
    let fail = Decision::builder()
        .decision_type(DecisionType::FailWorkflowExecution)
        .fail_workflow_execution_decision_attributes(
            FailWorkflowExecutionDecisionAttributes::builder()
                .reason("gave up")
                .build(),
        )
        .build()
        .unwrap();
    decide(c, d4.task_token(), vec![fail]).await;
    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("acts", &run))
        .send()
        .await
        .unwrap();
    assert_eq!(
        desc.execution_info().unwrap().close_status(),
        Some(&CloseStatus::Failed)
    );
    assert_replays(&env);
}

#[tokio::test]
async fn children_signals_and_external_cancel() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    let addr = env.server.local_addr();
    setup(c).await;
    let parent_run = start_wf(c, "parent").await;
    let d = decision_task(c).await;
    let child = |wid: &str, name: &str| {
        Decision::builder()
            .decision_type(DecisionType::StartChildWorkflowExecution)
            .start_child_workflow_execution_decision_attributes(
                StartChildWorkflowExecutionDecisionAttributes::builder()
                    .workflow_type(
                        WorkflowType::builder()
                            .name(name)
                            .version("1")
                            .build()
                            .unwrap(),
                    )
                    .workflow_id(wid)
                    .task_list(tl("children"))
                    .input("child-input")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    decide(
        c,
        d.task_token(),
        vec![
            child("kid", WF.0),
            child("ghost", "Nope"),
            child("parent", WF.0),
        ],
    )
    .await;
    let raw = raw_history(addr, "parent", &parent_run).await;
    let started = attrs_of(&raw, "ChildWorkflowExecutionStarted");
    let kid_run = started["workflowExecution"]["runId"]
        .as_str()
        .unwrap()
        .to_string();
    let fails: Vec<String> = raw
        .iter()
        .filter(|e| e["eventType"] == "StartChildWorkflowExecutionFailed")
        .map(|e| {
            e["startChildWorkflowExecutionFailedEventAttributes"]["cause"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        fails,
        ["WORKFLOW_TYPE_DOES_NOT_EXIST", "WORKFLOW_ALREADY_RUNNING"]
    );

    let kid_task = decision_task_on(c, "children").await;
    let kid_started = kid_task.events()[0]
        .workflow_execution_started_event_attributes()
        .unwrap();
    assert_eq!(
        kid_started.parent_workflow_execution().unwrap().run_id(),
        parent_run
    );
    decide(c, kid_task.task_token(), vec![]).await;

    let d2 = decision_task(c).await;
    let signal = |wid: &str| {
        Decision::builder()
            .decision_type(DecisionType::SignalExternalWorkflowExecution)
            .signal_external_workflow_execution_decision_attributes(
                SignalExternalWorkflowExecutionDecisionAttributes::builder()
                    .workflow_id(wid)
                    .signal_name("hello-kid")
                    .input("sig")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let cancel_kid = Decision::builder()
        .decision_type(DecisionType::RequestCancelExternalWorkflowExecution)
        .request_cancel_external_workflow_execution_decision_attributes(
            RequestCancelExternalWorkflowExecutionDecisionAttributes::builder()
                .workflow_id("kid")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let cancel_ghost = Decision::builder()
        .decision_type(DecisionType::RequestCancelExternalWorkflowExecution)
        .request_cancel_external_workflow_execution_decision_attributes(
            RequestCancelExternalWorkflowExecutionDecisionAttributes::builder()
                .workflow_id("ghost")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    decide(
        c,
        d2.task_token(),
        vec![signal("kid"), signal("ghost"), cancel_kid, cancel_ghost],
    )
    .await;
    let raw = raw_history(addr, "parent", &parent_run).await;
    assert_eq!(
        attrs_of(&raw, "ExternalWorkflowExecutionSignaled")["workflowExecution"]["runId"],
        kid_run.as_str()
    );
    assert_eq!(
        attrs_of(&raw, "SignalExternalWorkflowExecutionFailed")["cause"],
        "UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION"
    );
    assert_eq!(
        attrs_of(&raw, "ExternalWorkflowExecutionCancelRequested")["workflowExecution"]
            ["workflowId"],
        "kid"
    );
    assert_eq!(
        attrs_of(&raw, "RequestCancelExternalWorkflowExecutionFailed")["cause"],
        "UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION"
    );

    let kid_task = decision_task_on(c, "children").await;
    let k = kinds(kid_task.events());
    assert!(k.contains(&"WorkflowExecutionSignaled".to_string()));
    assert!(k.contains(&"WorkflowExecutionCancelRequested".to_string()));
    let kid_raw = raw_history(addr, "kid", &kid_run).await;
    assert_eq!(
        attrs_of(&kid_raw, "WorkflowExecutionSignaled")["externalWorkflowExecution"]["runId"],
        parent_run.as_str()
    );
    let cancel_self = Decision::builder()
        .decision_type(DecisionType::CancelWorkflowExecution)
        .cancel_workflow_execution_decision_attributes(
            CancelWorkflowExecutionDecisionAttributes::builder()
                .details("bye")
                .build(),
        )
        .build()
        .unwrap();
    decide(c, kid_task.task_token(), vec![cancel_self]).await;

    let d3 = decision_task(c).await;
    let canceled = d3
        .events()
        .iter()
        .find_map(|e| e.child_workflow_execution_canceled_event_attributes())
        .expect("child canceled");
    assert_eq!(canceled.details(), Some("bye"));
    assert_eq!(canceled.workflow_execution().unwrap().run_id(), kid_run);

    // A second child, then the parent is terminated: the TERMINATE child policy ends the child.
    decide(c, d3.task_token(), vec![child("kid2", WF.0)]).await;
    let raw = raw_history(addr, "parent", &parent_run).await;
    let kid2_run = raw
        .iter()
        .rfind(|e| e["eventType"] == "ChildWorkflowExecutionStarted")
        .unwrap()["childWorkflowExecutionStartedEventAttributes"]["workflowExecution"]["runId"]
        .as_str()
        .unwrap()
        .to_string();
    c.terminate_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("parent")
        .send()
        .await
        .unwrap();
    let kid2 = raw_history(addr, "kid2", &kid2_run).await;
    assert_eq!(
        attrs_of(&kid2, "WorkflowExecutionTerminated")["cause"],
        "CHILD_POLICY_APPLIED"
    );
    assert_replays(&env);
}

#[tokio::test]
async fn child_completion_reaches_parent_and_continue_as_new() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    let addr = env.server.local_addr();
    setup(c).await;
    let parent_run = start_wf(c, "p").await;
    let d = decision_task(c).await;
    let child = Decision::builder()
        .decision_type(DecisionType::StartChildWorkflowExecution)
        .start_child_workflow_execution_decision_attributes(
            StartChildWorkflowExecutionDecisionAttributes::builder()
                .workflow_type(wf_type())
                .workflow_id("c")
                .task_list(tl("children"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    decide(c, d.task_token(), vec![child]).await;
    let first_child = decision_task_on(c, "children").await;
    let first_run = first_child
        .workflow_execution()
        .unwrap()
        .run_id()
        .to_string();
    let can = Decision::builder()
        .decision_type(DecisionType::ContinueAsNewWorkflowExecution)
        .continue_as_new_workflow_execution_decision_attributes(
            ContinueAsNewWorkflowExecutionDecisionAttributes::builder()
                .input("round-2")
                .task_list(tl("children"))
                .build(),
        )
        .build()
        .unwrap();
    decide(c, first_child.task_token(), vec![can]).await;
    let old = raw_history(addr, "c", &first_run).await;
    let new_run = attrs_of(&old, "WorkflowExecutionContinuedAsNew")["newExecutionRunId"]
        .as_str()
        .unwrap()
        .to_string();
    let second = decision_task_on(c, "children").await;
    assert_eq!(second.workflow_execution().unwrap().run_id(), new_run);
    let st = second.events()[0]
        .workflow_execution_started_event_attributes()
        .unwrap();
    assert_eq!(st.continued_execution_run_id(), Some(first_run.as_str()));
    assert_eq!(st.input(), Some("round-2"));
    let closed = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("c", &first_run))
        .send()
        .await
        .unwrap();
    assert_eq!(
        closed.execution_info().unwrap().close_status(),
        Some(&CloseStatus::ContinuedAsNew)
    );
    decide(c, second.task_token(), vec![complete("child result")]).await;

    // The parent hears about the completion once (not about the continue-as-new).
    let mut events = Vec::new();
    while !kinds(&events).contains(&"ChildWorkflowExecutionCompleted".to_string()) {
        let t = decision_task(c).await;
        events = t.events().to_vec();
        decide(c, t.task_token(), vec![]).await;
    }
    let done = events
        .iter()
        .find_map(|e| e.child_workflow_execution_completed_event_attributes())
        .unwrap();
    assert_eq!(done.result(), Some("child result"));
    assert_eq!(done.workflow_execution().unwrap().run_id(), new_run);
    let raw = raw_history(addr, "p", &parent_run).await;
    assert_eq!(
        raw.iter()
            .filter(|e| e["eventType"] == "ChildWorkflowExecutionTerminated")
            .count(),
        0
    );
    assert_replays(&env);
}

#[tokio::test]
async fn cancel_request_signal_and_terminate() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "cx").await;
    let d = decision_task(c).await;
    decide(c, d.task_token(), vec![]).await;
    c.request_cancel_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("cx")
        .send()
        .await
        .unwrap();
    let d2 = decision_task(c).await;
    assert!(kinds(d2.events()).contains(&"WorkflowExecutionCancelRequested".to_string()));
    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("cx", &run))
        .send()
        .await
        .unwrap();
    assert!(desc.execution_info().unwrap().cancel_requested());
    let cancel = Decision::builder()
        .decision_type(DecisionType::CancelWorkflowExecution)
        .build()
        .unwrap();
    decide(c, d2.task_token(), vec![cancel]).await;
    let desc = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("cx", &run))
        .send()
        .await
        .unwrap();
    assert_eq!(
        desc.execution_info().unwrap().close_status(),
        Some(&CloseStatus::Canceled)
    );

    for (what, err) in [
        (
            "signal",
            c.signal_workflow_execution()
                .domain(DOMAIN)
                .workflow_id("cx")
                .signal_name("s")
                .send()
                .await
                .err()
                .map(|e| e.into_service_error().is_unknown_resource_fault()),
        ),
        (
            "cancel",
            c.request_cancel_workflow_execution()
                .domain(DOMAIN)
                .workflow_id("cx")
                .send()
                .await
                .err()
                .map(|e| e.into_service_error().is_unknown_resource_fault()),
        ),
        (
            "terminate",
            c.terminate_workflow_execution()
                .domain(DOMAIN)
                .workflow_id("cx")
                .send()
                .await
                .err()
                .map(|e| e.into_service_error().is_unknown_resource_fault()),
        ),
    ] {
        assert_eq!(err, Some(true), "{what} on a closed execution");
    }
    let err = c
        .describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("cx", "00000000-0000-0000-0000-000000000000"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_unknown_resource_fault());

    let run2 = start_wf(c, "term").await;
    c.terminate_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("term")
        .run_id(&run2)
        .reason("operator")
        .details("why")
        .send()
        .await
        .unwrap();
    let raw = raw_history(env.server.local_addr(), "term", &run2).await;
    let t = attrs_of(&raw, "WorkflowExecutionTerminated");
    assert_eq!(
        (
            t["reason"].as_str(),
            t["details"].as_str(),
            t["childPolicy"].as_str()
        ),
        (Some("operator"), Some("why"), Some("TERMINATE"))
    );
    assert!(t.get("cause").is_none());
    assert_replays(&env);
}

#[tokio::test]
async fn listings_counts_and_filters() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let oldest = aws_sdk_swf::primitives::DateTime::from_secs(0);
    let since = || {
        ExecutionTimeFilter::builder()
            .oldest_date(oldest)
            .build()
            .unwrap()
    };
    for i in 0..5 {
        c.start_workflow_execution()
            .domain(DOMAIN)
            .workflow_id(format!("l{i}"))
            .workflow_type(wf_type())
            .tag_list(if i % 2 == 0 { "even" } else { "odd" })
            .send()
            .await
            .unwrap();
    }
    let page = c
        .list_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .maximum_page_size(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.execution_infos().len(), 2);
    let mut all: Vec<String> = page
        .execution_infos()
        .iter()
        .map(|i| i.execution().unwrap().workflow_id().to_string())
        .collect();
    let mut token = page.next_page_token().map(str::to_string);
    while let Some(t) = token {
        let p = c
            .list_open_workflow_executions()
            .domain(DOMAIN)
            .start_time_filter(since())
            .maximum_page_size(2)
            .next_page_token(t)
            .send()
            .await
            .unwrap();
        all.extend(
            p.execution_infos()
                .iter()
                .map(|i| i.execution().unwrap().workflow_id().to_string()),
        );
        token = p.next_page_token().map(str::to_string);
    }
    all.sort();
    assert_eq!(all, ["l0", "l1", "l2", "l3", "l4"]);

    let even = c
        .list_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .tag_filter(TagFilter::builder().tag("even").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(even.execution_infos().len(), 3);
    let one = c
        .list_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .execution_filter(
            WorkflowExecutionFilter::builder()
                .workflow_id("l3")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(one.execution_infos().len(), 1);
    assert_eq!(one.execution_infos()[0].tag_list(), ["odd"]);
    let by_type = c
        .count_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .type_filter(WorkflowTypeFilter::builder().name(WF.0).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(by_type.count(), 5);
    let err = c
        .list_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .tag_filter(TagFilter::builder().tag("even").build().unwrap())
        .execution_filter(
            WorkflowExecutionFilter::builder()
                .workflow_id("l3")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    assert_eq!(
        c.count_pending_decision_tasks()
            .domain(DOMAIN)
            .task_list(tl(DECIDER_TL))
            .send()
            .await
            .unwrap()
            .count(),
        5
    );
    for wid in ["l0", "l1"] {
        c.terminate_workflow_execution()
            .domain(DOMAIN)
            .workflow_id(wid)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        c.count_pending_decision_tasks()
            .domain(DOMAIN)
            .task_list(tl(DECIDER_TL))
            .send()
            .await
            .unwrap()
            .count(),
        3
    );
    let closed = c
        .list_closed_workflow_executions()
        .domain(DOMAIN)
        .close_time_filter(since())
        .close_status_filter(
            CloseStatusFilter::builder()
                .status(CloseStatus::Terminated)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(closed.execution_infos().len(), 2);
    assert!(closed
        .execution_infos()
        .iter()
        .all(|i| i.close_timestamp().is_some()));
    let none = c
        .count_closed_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .close_status_filter(
            CloseStatusFilter::builder()
                .status(CloseStatus::Completed)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(none.count(), 0);
    let open = c
        .count_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(since())
        .send()
        .await
        .unwrap();
    assert_eq!(open.count(), 3);
    let future = ExecutionTimeFilter::builder()
        .oldest_date(aws_sdk_swf::primitives::DateTime::from_secs(4_000_000_000))
        .build()
        .unwrap();
    let later = c
        .count_open_workflow_executions()
        .domain(DOMAIN)
        .start_time_filter(future)
        .send()
        .await
        .unwrap();
    assert_eq!(later.count(), 0);

    // Activity counts.
    let d = decision_task(c).await;
    decide(c, d.task_token(), vec![schedule("a"), schedule("b")]).await;
    assert_eq!(
        c.count_pending_activity_tasks()
            .domain(DOMAIN)
            .task_list(tl(WORKER_TL))
            .send()
            .await
            .unwrap()
            .count(),
        2
    );
    activity_task(c).await;
    assert_eq!(
        c.count_pending_activity_tasks()
            .domain(DOMAIN)
            .task_list(tl(WORKER_TL))
            .send()
            .await
            .unwrap()
            .count(),
        1
    );
    assert_replays(&env);
}

#[tokio::test]
async fn history_limit_terminates_the_execution() {
    let env = start_env(|c| c.history_event_limit = 20).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "full").await;
    let mut signals = 0;
    loop {
        match c
            .signal_workflow_execution()
            .domain(DOMAIN)
            .workflow_id("full")
            .signal_name("s")
            .send()
            .await
        {
            Ok(_) => signals += 1,
            Err(e) => {
                assert!(e.into_service_error().is_unknown_resource_fault());
                break;
            }
        }
        assert!(signals < 100, "the limit never hit");
    }
    let raw = raw_history(env.server.local_addr(), "full", &run).await;
    assert_eq!(raw.len(), 20);
    assert_eq!(raw[19]["eventType"], "WorkflowExecutionTerminated");
    assert_eq!(
        attrs_of(&raw, "WorkflowExecutionTerminated")["cause"],
        "EVENT_LIMIT_EXCEEDED"
    );
    assert_replays(&env);
}

#[tokio::test]
async fn retention_purges_closed_executions() {
    let env = start_env(|c| c.retention_check_interval = Duration::from_millis(100)).await;
    let c = &env.client;
    c.register_domain()
        .name(DOMAIN)
        .workflow_execution_retention_period_in_days("0")
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
    let open_run = start_wf(c, "stays").await;
    let run = start_wf(c, "goes").await;
    c.terminate_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("goes")
        .send()
        .await
        .unwrap();
    bounded(10, async {
        loop {
            let r = c
                .describe_workflow_execution()
                .domain(DOMAIN)
                .execution(exec("goes", &run))
                .send()
                .await;
            match r {
                Err(e) if code(&e) == "UnknownResourceFault" => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    c.describe_workflow_execution()
        .domain(DOMAIN)
        .execution(exec("stays", &open_run))
        .send()
        .await
        .unwrap();
    assert_replays(&env);
}

#[tokio::test]
async fn malformed_requests_get_swf_shaped_400s() {
    let env = start_env(|_| {}).await;
    let addr = env.server.local_addr();
    let cases: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
        (
            Some("SimpleWorkflowService.ListDomains"),
            b"{not json".to_vec(),
            "SerializationException",
        ),
        (
            Some("SimpleWorkflowService.ListDomains"),
            b"[]".to_vec(),
            "SerializationException",
        ),
        (
            Some("SimpleWorkflowService.ListDomains"),
            b"{}".to_vec(),
            "ValidationException",
        ),
        (
            Some("SimpleWorkflowService.RegisterDomain"),
            br#"{"name": 5}"#.to_vec(),
            "SerializationException",
        ),
        (
            Some("SimpleWorkflowService.ScheduleLambda"),
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
        (
            Some("SimpleWorkflowService.TagResource"),
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
        (
            Some("Other.ListDomains"),
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
        (None, b"{}".to_vec(), "UnknownOperationException"),
        (
            Some("SimpleWorkflowService.RegisterDomain"),
            vec![b' '; 1024 * 1024 + 1],
            "ValidationException",
        ),
    ];
    for (target, body, shape) in cases {
        let (status, text) = raw_post(addr, target, &body).await;
        assert_eq!(status, 400, "{target:?}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["__type"]
                .as_str()
                .unwrap()
                .ends_with(&format!("#{shape}")),
            "{target:?}: {text}"
        );
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    let (status, text) = raw_post(addr, Some("SimpleWorkflowService.TagResource"), b"{}").await;
    assert_eq!(status, 400);
    assert!(text.contains("not supported by swf-local"));
    let (status, _) = raw_request(addr, "GET", None, b"").await;
    assert_eq!(status, 400);
    let (status, text) = raw_post(
        addr,
        Some("SimpleWorkflowService.RegisterDomain"),
        br#"{"workflowExecutionRetentionPeriodInDays":"1"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("'name'"), "{text}");
    assert_replays(&env);
}

#[tokio::test]
async fn events_during_a_started_decision_task_cause_another() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    let run = start_wf(c, "follow").await;
    let d = decision_task(c).await;
    c.signal_workflow_execution()
        .domain(DOMAIN)
        .workflow_id("follow")
        .signal_name("late")
        .send()
        .await
        .unwrap();
    // An answer without decisions: the signal it has not seen still needs a decision task.
    decide(c, d.task_token(), vec![]).await;
    let d2 = decision_task(c).await;
    assert!(kinds(d2.events()).contains(&"WorkflowExecutionSignaled".to_string()));
    let h = history(c, "follow", &run).await;
    let k = kinds(&h);
    let completed = k.iter().position(|e| e == "DecisionTaskCompleted").unwrap();
    assert_eq!(k[completed + 1], "DecisionTaskScheduled");
    assert_replays(&env);
}

#[tokio::test]
async fn activity_tasks_go_out_by_priority_then_age() {
    let env = start_env(|_| {}).await;
    let c = &env.client;
    setup(c).await;
    start_wf(c, "wf-prio").await;
    let d = decision_task(c).await;
    // Scheduled in this order; SWF hands out higher priorities first, equal ones oldest first,
    // and a task without a priority has the type's default (none here: 0).
    decide(
        c,
        d.task_token(),
        vec![
            schedule_with("low", |b| b.task_priority("-5")),
            schedule("default"),
            schedule_with("high-1", |b| b.task_priority("40000")),
            schedule_with("mid", |b| b.task_priority("35000")),
            schedule_with("high-2", |b| b.task_priority("40000")),
        ],
    )
    .await;
    let mut order = Vec::new();
    for _ in 0..5 {
        order.push(activity_task(c).await.activity_id().to_string());
    }
    assert_eq!(order, ["high-1", "high-2", "mid", "default", "low"]);
    let raw = raw_history(
        env.server.local_addr(),
        "wf-prio",
        d.workflow_execution().unwrap().run_id(),
    )
    .await;
    assert_eq!(
        attrs_of(&raw, "ActivityTaskScheduled")["taskPriority"],
        "-5"
    );
    env.server.shutdown().await;
}
