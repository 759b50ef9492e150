//! `/metrics` and `/healthz` over HTTP: after recording some metrics, a scrape shows their names,
//! help text, labels and the media-sized histogram buckets; `/healthz` follows the pollers.
//! The recorder is process-global; a second server in the same process reuses it.

use std::time::Duration;

use swf_runtime::telemetry::metrics::{self as m, labels as l};
use swf_runtime::telemetry::{serve_metrics, HealthState, TelemetryError};

const WAIT: Duration = Duration::from_secs(20);

async fn get(url: &str) -> (u16, String) {
    let response = tokio::time::timeout(WAIT, reqwest::get(url))
        .await
        .expect("answer in time")
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The sample of `name` whose label set contains every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_part, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labels_part.split(',').any(|p| p == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_shows_metrics_with_labels_and_buckets_and_health_follows_polling() {
    let health = HealthState::new(Duration::from_secs(60));
    let server = serve_metrics("127.0.0.1:0".parse().unwrap(), health.clone(), false)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());

    for secs in [0.2, 3.0, 5400.0] {
        metrics::histogram!(m::ACTIVITY_EXECUTION.name,
            l::ACTIVITY_TYPE => "Transcode", l::TASK_LIST => "media", l::OUTCOME => "completed")
        .record(secs);
    }
    metrics::counter!(m::ACTIVITY_TASKS.name,
        l::ACTIVITY_TYPE => "Transcode", l::TASK_LIST => "media", l::OUTCOME => "failed")
    .increment(2);
    metrics::gauge!(m::WORKER_SLOTS_FREE.name, l::TASK_LIST => "media").set(3.0);
    metrics::counter!(m::POLLS.name, l::TASK_LIST => "media", l::OUTCOME => "empty").increment(5);

    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!(
            "# HELP {} {}",
            m::ACTIVITY_EXECUTION.name,
            m::ACTIVITY_EXECUTION.help
        )),
        "{text}"
    );
    assert!(text.contains(&format!("# TYPE {} histogram", m::ACTIVITY_EXECUTION.name)));
    let exec = [
        (l::ACTIVITY_TYPE, "Transcode"),
        (l::TASK_LIST, "media"),
        (l::OUTCOME, "completed"),
    ];
    let bucket = format!("{}_bucket", m::ACTIVITY_EXECUTION.name);
    let le = |bound: &str| {
        let mut labels = exec.to_vec();
        labels.push(("le", bound));
        sample(&text, &bucket, &labels)
    };
    assert_eq!(le("0.25"), Some(1.0), "{text}");
    assert_eq!(le("5"), Some(2.0));
    assert_eq!(le("3600"), Some(2.0));
    assert_eq!(le("7200"), Some(3.0), "hours-long stages have buckets");
    assert_eq!(le("+Inf"), Some(3.0));
    for bound in m::BUCKETS_SECONDS {
        assert!(le(&bound.to_string()).is_some(), "bucket {bound} missing");
    }
    assert_eq!(
        sample(
            &text,
            &format!("{}_count", m::ACTIVITY_EXECUTION.name),
            &exec
        ),
        Some(3.0)
    );
    let sum = sample(&text, &format!("{}_sum", m::ACTIVITY_EXECUTION.name), &exec).unwrap();
    assert!((sum - 5403.2).abs() < 1e-6, "{sum}");
    assert_eq!(
        sample(
            &text,
            m::ACTIVITY_TASKS.name,
            &[(l::ACTIVITY_TYPE, "Transcode"), (l::OUTCOME, "failed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, m::WORKER_SLOTS_FREE.name, &[(l::TASK_LIST, "media")]),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, m::POLLS.name, &[(l::OUTCOME, "empty")]),
        Some(5.0)
    );

    // Health: 503 until the pollers say they poll, 200 while they do, 503 once they stop.
    assert_eq!(get(&format!("{base}/healthz")).await.0, 503);
    health.set_polling(true);
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    health.polled();
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    health.set_polling(false);
    assert_eq!(get(&format!("{base}/healthz")).await.0, 503);

    // A second server in the same process shares the recorder and sees the same metrics.
    let second = serve_metrics(
        "127.0.0.1:0".parse().unwrap(),
        HealthState::default(),
        false,
    )
    .await
    .unwrap();
    let (_, again) = get(&format!("http://{}/metrics", second.local_addr())).await;
    assert_eq!(
        sample(&again, m::POLLS.name, &[(l::OUTCOME, "empty")]),
        Some(5.0)
    );

    // Beyond loopback only when asked.
    let refused = serve_metrics("0.0.0.0:0".parse().unwrap(), HealthState::default(), false).await;
    assert!(matches!(refused, Err(TelemetryError::Bind { .. })));

    server.shutdown().await;
    second.shutdown().await;
}
