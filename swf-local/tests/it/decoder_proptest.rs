//! Property test of the request decoder: arbitrary bodies and targets never panic, never hang and
//! never produce a 5xx; every refusal is a 4xx with an SWF-shaped JSON body.

use crate::common;

use std::time::Duration;

use proptest::prelude::*;

const ACTIONS: &[&str] = &[
    "RegisterDomain",
    "DescribeDomain",
    "ListDomains",
    "DeprecateDomain",
    "UndeprecateDomain",
    "RegisterWorkflowType",
    "DescribeWorkflowType",
    "ListWorkflowTypes",
    "DeprecateWorkflowType",
    "UndeprecateWorkflowType",
    "RegisterActivityType",
    "DescribeActivityType",
    "ListActivityTypes",
    "DeprecateActivityType",
    "UndeprecateActivityType",
    "StartWorkflowExecution",
    "PollForDecisionTask",
    "RespondDecisionTaskCompleted",
    "PollForActivityTask",
    "RecordActivityTaskHeartbeat",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
    "SignalWorkflowExecution",
    "RequestCancelWorkflowExecution",
    "TerminateWorkflowExecution",
    "GetWorkflowExecutionHistory",
    "DescribeWorkflowExecution",
    "ListOpenWorkflowExecutions",
    "ListClosedWorkflowExecutions",
    "CountOpenWorkflowExecutions",
    "CountClosedWorkflowExecutions",
    "CountPendingDecisionTasks",
    "CountPendingActivityTasks",
    "Nonsense",
];

const FIELDS: &[&str] = &[
    "domain",
    "name",
    "version",
    "workflowId",
    "runId",
    "taskList",
    "taskToken",
    "decisions",
    "decisionType",
    "input",
    "result",
    "details",
    "reason",
    "workflowType",
    "activityType",
    "execution",
    "nextPageToken",
    "maximumPageSize",
    "reverseOrder",
    "startTimeFilter",
    "oldestDate",
    "registrationStatus",
    "workflowExecutionRetentionPeriodInDays",
    "signalName",
    "scheduleActivityTaskDecisionAttributes",
    "activityId",
    "startToCloseTimeout",
    "childPolicy",
];

/// JSON values built from SWF's own member names, so decoding gets past the first field.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-zA-Z0-9_ -]{0,12}".prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "REGISTERED",
            "NONE",
            "1",
            "test",
            "ScheduleActivityTask",
            "TERMINATE"
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn check(result: Result<String, swf_local::Fault>) {
    if let Err(f) = result {
        assert!(f.status.is_client_error(), "{f}");
        let v: serde_json::Value = serde_json::from_str(&f.body()).unwrap();
        assert!(v["__type"].as_str().unwrap().contains('#'));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One runtime and one server for all decoder cases, so state created by earlier random requests
/// (domains, types) is there for later ones to trip over.
fn shared() -> &'static (tokio::runtime::Runtime, common::Env) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, common::Env)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let env = rt.block_on(common::start_env(|c| {
            c.long_poll_timeout = Duration::from_millis(50)
        }));
        (rt, env)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics(action in prop::sample::select(ACTIONS.to_vec()), body in body()) {
        let (rt, env) = shared();
        rt.block_on(async {
            let res = tokio::time::timeout(Duration::from_secs(5), swf_local::dispatch_for_test(&env.server, action, &body))
                .await
                .expect("no hang");
            check(res);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn http_always_answers_json(target in "[ -~]{0,40}", action in prop::sample::select(ACTIONS.to_vec()), body in body(), prefixed in any::<bool>()) {
        let rt = runtime();
        rt.block_on(async {
            let env = common::start_env(|c| c.long_poll_timeout = Duration::from_millis(50)).await;
            let target = if prefixed { format!("SimpleWorkflowService.{action}") } else { target };
            let (status, text) = common::raw_post(env.server.local_addr(), Some(&target), &body).await;
            assert!(status == 200 || (400..500).contains(&status), "{status}: {text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if status != 200 {
                assert!(v["__type"].as_str().unwrap().contains('#'));
            }
        });
    }
}
