//! Authentication: a non-loopback listener needs credentials, and with credentials configured only
//! requests signed with them (SigV4, as the SDK signs) are served.

use crate::common;

use common::*;
use swf_local::Error;

#[tokio::test]
async fn refuses_non_loopback_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before anything is bound.
    let config = swf_local::Config::new("0.0.0.0:0".parse().unwrap(), dir.path().join("x.db"));
    match swf_local::start(config).await {
        Err(Error::InsecureListen(addr)) => assert!(addr.ip().is_unspecified()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started on a non-loopback address without credentials"),
    }
}

#[tokio::test]
async fn signed_requests_only() {
    let env = start_env(|c| c.credentials = Some(("AKIDTEST".into(), "right-secret".into()))).await;
    let url = env.server.endpoint_url();

    let good = client_for(&url, "AKIDTEST", "right-secret");
    good.register_domain()
        .name(DOMAIN)
        .workflow_execution_retention_period_in_days("1")
        .send()
        .await
        .unwrap();
    good.describe_domain().name(DOMAIN).send().await.unwrap();

    let wrong_secret = client_for(&url, "AKIDTEST", "wrong");
    let err = wrong_secret
        .describe_domain()
        .name(DOMAIN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    let wrong_key = client_for(&url, "OTHER", "right-secret");
    let err = wrong_key
        .describe_domain()
        .name(DOMAIN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");

    let (status, body) = raw_post(
        env.server.local_addr(),
        Some("SimpleWorkflowService.DescribeDomain"),
        br#"{"name":"test-domain"}"#,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
}
