//! A client this project did not write: runs `tests/boto3_scenarios.py` (boto3) against a live
//! swf-local. The Python interpreter comes from `SWF_TEST_PYTHON` (a venv with boto3, set by the
//! test command). Without it the test explains and passes locally, but fails under CI.

use crate::common;

use std::time::Duration;

fn python() -> Option<String> {
    let Ok(python) = std::env::var("SWF_TEST_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("SWF_TEST_PYTHON is not set: CI must provide a Python with boto3");
        }
        eprintln!("Skipping the boto3 scenarios: set SWF_TEST_PYTHON to a Python that has boto3.");
        return None;
    };
    Some(python)
}

#[tokio::test]
async fn boto3_main_scenarios() {
    let Some(python) = python() else { return };
    run_scenarios(&python, None).await;
}

/// botocore signs with its own SigV4 implementation: the server must accept it.
#[tokio::test]
async fn boto3_signed_requests_are_accepted() {
    let Some(python) = python() else { return };
    // The script signs with these test credentials.
    run_scenarios(&python, Some(("AKIDTEST".into(), "secret".into()))).await;
}

async fn run_scenarios(python: &str, credentials: Option<(String, String)>) {
    let env = common::start_env(|c| {
        c.long_poll_timeout = Duration::from_secs(2);
        c.credentials = credentials;
    })
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_scenarios.py");
    let out = common::bounded(
        120,
        tokio::process::Command::new(python)
            .arg(script)
            .arg(env.server.endpoint_url())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python interpreter runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 scenarios failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("boto3 scenarios passed"), "{stdout}");
}
