//! Measures a decider on a long history: an execution with about 25,000 events in the embedded
//! swf-local (SWF's limit), then one decision task timed from the poll through fetching every
//! history page (1,000 events each) and deciding to the answer.
//!
//! `cargo run --release -p swf-runtime --example decide_long_history -- [RUNS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use swf_runtime::decider::{ActivityTimeouts, DagWorkflow, DeciderPoller, Stage, WorkflowRegistry};
use swf_runtime::swf::aws::{AwsSwfClient, ClientOptions};
use swf_runtime::swf::{
    ActivityTypeRegistration, StartWorkflow, SwfClient, TypeRef, WorkflowTypeRegistration,
};

const SIGNALS: usize = 24_900;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(3), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let local = swf_local::start(swf_local::Config::new(
        ([127, 0, 0, 1], 0).into(),
        dir.path().join("db"),
    ))
    .await?;
    let client: Arc<dyn SwfClient> = Arc::new(
        AwsSwfClient::connect(&ClientOptions {
            domain: "long".into(),
            endpoint_url: Some(local.endpoint_url()),
            ..ClientOptions::default()
        })
        .await?,
    );
    client.register_domain(1, None).await?;
    let wt = TypeRef {
        name: "Long".into(),
        version: "1".into(),
    };
    let at = TypeRef {
        name: "step".into(),
        version: "1".into(),
    };
    client
        .register_workflow_type(&WorkflowTypeRegistration {
            workflow_type: wt.clone(),
            description: None,
            default_task_list: "long-decider".into(),
            default_execution_start_to_close_timeout_secs: 3600,
            default_task_start_to_close_timeout_secs: 600,
            default_child_policy: "TERMINATE".into(),
        })
        .await?;
    client
        .register_activity_type(&ActivityTypeRegistration {
            activity_type: at.clone(),
            description: None,
            default_task_list: "long".into(),
            default_schedule_to_start_timeout_secs: Some(600),
            default_schedule_to_close_timeout_secs: Some(600),
            default_start_to_close_timeout_secs: Some(600),
            default_heartbeat_timeout_secs: None,
        })
        .await?;
    let timeouts = ActivityTimeouts {
        schedule_to_start_secs: Some(600),
        schedule_to_close_secs: Some(600),
        start_to_close_secs: Some(600),
        heartbeat_secs: None,
    };
    let workflow = DagWorkflow::builder(wt.clone())
        .stage(Stage::activity("step", at, "long", timeouts))
        .continue_as_new_after_events(usize::MAX)
        .build()?;
    let poller = DeciderPoller::new(
        client.clone(),
        "long-decider",
        "bench",
        WorkflowRegistry::new().with(Arc::new(workflow)),
    );
    let mut timings = Vec::new();
    for run in 0..runs {
        let id = format!("long-{run}");
        client
            .start_workflow_execution(&StartWorkflow {
                workflow_id: id.clone(),
                workflow_type: Some(wt.clone()),
                input: Some(format!("{{\"media_uuid\":\"{id}\",\"user_uuid\":\"u\"}}")),
                ..StartWorkflow::default()
            })
            .await?;
        // Signals pile up while no decider polls: one decision task, ~25,000 events.
        let mut tasks = tokio::task::JoinSet::new();
        for part in 0..16 {
            let (client, id) = (client.clone(), id.clone());
            tasks.spawn(async move {
                for i in (part..SIGNALS).step_by(16) {
                    client
                        .signal_workflow_execution(&id, None, "tick", Some(i.to_string()))
                        .await?;
                }
                Ok::<_, swf_runtime::swf::SwfError>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let token = tokio_util::sync::CancellationToken::new();
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(Duration::from_secs(60), poller.run_once(&token)).await??;
        let took = started.elapsed();
        anyhow::ensure!(outcome.is_some(), "no decision task");
        println!(
            "run {run}: {} events, poll + {} pages + decide + respond in {:.1} ms",
            SIGNALS + 4,
            SIGNALS.div_ceil(1000),
            took.as_secs_f64() * 1000.0
        );
        timings.push(took.as_secs_f64() * 1000.0);
    }
    timings.sort_by(f64::total_cmp);
    println!("median {:.1} ms", timings[timings.len() / 2]);
    local.shutdown().await;
    Ok(())
}
