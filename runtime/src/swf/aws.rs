//! The `aws-sdk-swf` implementation of the SWF boundary.
//!
//! [`AwsSwfClient::connect`] builds the SDK client once per process from the standard AWS
//! configuration chain (environment, profile files, IMDS...) with the explicit overrides of
//! [`ClientOptions`]; the same client then serves Amazon SWF, the embedded swf-local and any
//! other compatible endpoint. Timeouts are set so a long poll (up to 60 s at SWF) never looks
//! like a hung connection while every other call stays bounded (two SDK clients over one
//! configuration: one for polls, one for everything else). Throttling and transient failures are
//! retried by the SDK's standard retry strategy; one client-level interceptor counts every attempt
//! refused for throttling. Requests are SigV4-signed, except to the swf-local this process embeds
//! without credentials, which checks no signature.
//!
//! Every call runs in a `tracing` span named after its SWF action and records the API call
//! metrics (`swf_api_calls_total`, `swf_api_errors_total`, `swf_api_call_duration_seconds`).
//! Task tokens never reach a log line; only [`crate::envelope::token_hash`] does.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_swf::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_swf::types as t;
use aws_smithy_runtime::client::auth::no_auth::NO_AUTH_SCHEME_ID;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::auth::{AuthSchemeOption, AuthSchemeOptionsFuture};
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;
use tracing::Instrument;

use super::{
    ActivityTask, ActivityTypeRegistration, Decision, DecisionTaskPage, ExecutionInfo,
    ExecutionState, HistoryEvent, HistoryPage, StartWorkflow, SwfClient, SwfError, TypeRef,
    WorkflowExecution, WorkflowTypeRegistration,
};
use crate::envelope::token_hash;
use crate::telemetry::metrics as m;

/// Credentials used against a local endpoint when nothing else is configured: swf-local and moto
/// check only that requests are signed, not by whom.
const LOCAL_ACCESS_KEY: &str = "swf-local";
const LOCAL_SECRET_KEY: &str = "swf-local";
const LOCAL_REGION: &str = "us-east-1";

/// How the client reaches SWF. Anything left `None` comes from the standard AWS chain.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub domain: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    /// (access key id, secret access key).
    pub static_credentials: Option<(String, String)>,
    /// The read timeout of a long poll; it must outlast SWF's 60 s hold.
    pub poll_timeout: Duration,
    /// Connection establishment, for every call.
    pub connect_timeout: Duration,
    /// One attempt of any call other than a poll.
    pub call_timeout: Duration,
    /// Attempts per call, the first included (throttling and transient errors are retried).
    pub max_attempts: u32,
    /// Sign requests with SigV4. Off only for the swf-local this process embeds without
    /// credentials: it checks no signature, and signing was 8% of the whole bench's CPU.
    pub sign: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            domain: String::new(),
            region: None,
            endpoint_url: None,
            profile: None,
            static_credentials: None,
            poll_timeout: Duration::from_secs(70),
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(20),
            max_attempts: 5,
            sign: true,
        }
    }
}

/// [`SwfClient`] on `aws-sdk-swf`, bound to one domain. Cheap to clone.
#[derive(Clone)]
pub struct AwsSwfClient {
    client: aws_sdk_swf::Client,
    /// The same client with the long-poll timeouts. A second client rather than a per-call config
    /// override: an override re-merges the runtime components on every call, which showed in the
    /// bench's profile.
    poll_client: aws_sdk_swf::Client,
    domain: String,
}

impl fmt::Debug for AwsSwfClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSwfClient")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl AwsSwfClient {
    /// Builds the client from the standard AWS chain plus the explicit overrides in `opts`.
    pub async fn connect(opts: &ClientOptions) -> Result<AwsSwfClient, SwfError> {
        if opts.domain.is_empty() {
            return Err(SwfError::Validation("no SWF domain configured".into()));
        }
        let call_timeouts = TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.call_timeout)
            .operation_attempt_timeout(opts.call_timeout)
            .operation_timeout(opts.call_timeout * opts.max_attempts.max(1))
            .build();
        // A poll attempt may legitimately stay silent for 60 s; retries of a poll are rare
        // (throttling) so the whole operation gets room for two attempts.
        let poll_timeouts = TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.poll_timeout)
            .operation_attempt_timeout(opts.poll_timeout)
            .operation_timeout(opts.poll_timeout * 2)
            .build();

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(call_timeouts)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(opts.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            );
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        match (&opts.region, &opts.endpoint_url) {
            (Some(region), _) => loader = loader.region(Region::new(region.clone())),
            (None, Some(_)) => {
                loader =
                    loader.region(RegionProviderChain::default_provider().or_else(LOCAL_REGION));
            }
            (None, None) => {}
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &opts.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                key,
                secret,
                None,
                None,
                "swf-runtime-static",
            ));
        } else if opts.endpoint_url.is_some() && !local_credentials_exist(opts).await {
            tracing::debug!(
                "No AWS credentials configured; using dummy credentials for the local endpoint."
            );
            loader = loader.credentials_provider(Credentials::new(
                LOCAL_ACCESS_KEY,
                LOCAL_SECRET_KEY,
                None,
                None,
                "swf-runtime-local",
            ));
        }
        let sdk_config = loader.load().await;
        if sdk_config.region().is_none() {
            return Err(SwfError::Validation(
                "no AWS region configured: set --region, AWS_REGION or a profile region".into(),
            ));
        }
        let mut conf = aws_sdk_swf::config::Builder::from(&sdk_config).interceptor(ThrottleCounter);
        if !opts.sign {
            conf = conf.allow_no_auth().auth_scheme_resolver(NoAuthOnly);
        }
        Ok(AwsSwfClient {
            client: aws_sdk_swf::Client::from_conf(conf.clone().build()),
            poll_client: aws_sdk_swf::Client::from_conf(conf.timeout_config(poll_timeouts).build()),
            domain: opts.domain.clone(),
        })
    }

    /// The underlying SDK client, for calls outside the trait (tools and tests).
    pub fn sdk(&self) -> &aws_sdk_swf::Client {
        &self.client
    }
}

/// Whether the cheap, local sources of the chain (environment, profile files) hold credentials.
/// Only those are asked: probing IMDS on a laptop pointed at swf-local would stall every command.
async fn local_credentials_exist(opts: &ClientOptions) -> bool {
    let env = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    if env.provide_credentials().await.is_ok() {
        return true;
    }
    let mut profile = aws_config::profile::ProfileFileCredentialsProvider::builder();
    if let Some(name) = &opts.profile {
        profile = profile.profile_name(name);
    }
    let profile = profile.build();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), profile.provide_credentials()).await,
        Ok(Ok(_))
    )
}

/// Error codes SWF and the SDK use for "slow down".
fn is_throttle_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
    )
}

/// Maps an SDK error of any operation to the boundary's error.
fn map_sdk_error<E, R>(err: SdkError<E, R>) -> SwfError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("UnknownError").to_string();
            let message = e.message().unwrap_or_default().to_string();
            map_code(code, message)
        }
        SdkError::ConstructionFailure(_) => {
            SwfError::Validation(DisplayErrorContext(&err).to_string())
        }
        // Timeouts, connection failures and cut or unparseable responses: worth retrying later.
        _ => SwfError::Transport(DisplayErrorContext(&err).to_string()),
    }
}

fn map_code(code: String, message: String) -> SwfError {
    let text = if message.is_empty() {
        code.clone()
    } else {
        message.clone()
    };
    match code.as_str() {
        "UnknownResourceFault" => SwfError::UnknownResource(text),
        "WorkflowExecutionAlreadyStartedFault" => SwfError::WorkflowAlreadyStarted(text),
        "DomainAlreadyExistsFault" | "TypeAlreadyExistsFault" => SwfError::AlreadyExists(text),
        "TypeDeprecatedFault" | "DomainDeprecatedFault" => SwfError::Deprecated(text),
        "LimitExceededFault" => SwfError::LimitExceeded(text),
        "ValidationException" | "SerializationException" | "DefaultUndefinedFault" => {
            SwfError::Validation(text)
        }
        c if is_throttle_code(c) => SwfError::Throttled(text),
        // OperationNotPermittedFault (missing IAM permission) and anything unexpected keep their
        // code so the operator sees exactly what the service said.
        _ => SwfError::Service { code, message },
    }
}

/// Counts every attempt refused for throttling, including those the SDK then retried and that
/// the caller never sees. One interceptor for the whole client: it reads the operation's name
/// from the config bag and the error code from the response itself, so no call needs a per-call
/// override.
#[derive(Debug)]
struct ThrottleCounter;

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "SwfRuntimeThrottleCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        if response.status().is_success() {
            return Ok(());
        }
        // The JSON 1.0 protocol names the error in the `__type` of the body (the SDK has read
        // the body into memory by now); some front ends also put it in a header.
        let from_header = response
            .headers()
            .get("x-amzn-errortype")
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let code = from_header.or_else(|| response.body().bytes().and_then(error_type));
        if code
            .as_deref()
            .is_some_and(|c| is_throttle_code(short_code(c)))
        {
            let operation = cfg
                .load::<Metadata>()
                .map_or_else(|| "unknown".to_string(), |m| m.name().to_string());
            m::increment(&m::API_THROTTLES, &[&operation], 1);
        }
        Ok(())
    }
}

/// `__type` (or `code`) of a JSON error body.
fn error_type(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("__type")
        .or_else(|| v.get("code"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
}

/// `com.amazonaws.swf.base.model#ThrottlingException` -> `ThrottlingException`.
fn short_code(code: &str) -> &str {
    code.rsplit('#').next().unwrap_or(code)
}

/// Offers only "no auth" for every operation; used with the embedded swf-local, which verifies no
/// signature when it has no credentials.
#[derive(Debug)]
struct NoAuthOnly;

impl aws_sdk_swf::config::auth::ResolveAuthScheme for NoAuthOnly {
    fn resolve_auth_scheme<'a>(
        &'a self,
        _params: &'a aws_sdk_swf::config::auth::Params,
        _cfg: &'a ConfigBag,
        _runtime_components: &'a RuntimeComponents,
    ) -> AuthSchemeOptionsFuture<'a> {
        AuthSchemeOptionsFuture::ready(Ok(vec![AuthSchemeOption::from(NO_AUTH_SCHEME_ID)]))
    }
}

/// Runs one API call inside its span and records its metrics.
async fn observe<T, F>(operation: &'static str, call: F) -> Result<T, SwfError>
where
    F: Future<Output = Result<T, SwfError>>,
{
    let started = Instant::now();
    let result = call.await;
    let elapsed = started.elapsed();
    m::record(&m::API_CALL_DURATION, &[operation], elapsed.as_secs_f64());
    match &result {
        Ok(_) => {
            m::increment(&m::API_CALLS, &[operation, "ok"], 1);
        }
        Err(err) => {
            m::increment(&m::API_CALLS, &[operation, "error"], 1);
            m::increment(&m::API_ERRORS, &[operation, err.error_type()], 1);
            tracing::debug!(
                error_type = err.error_type(),
                duration_ms = elapsed.as_millis() as u64,
                error = %err,
                "SWF call failed."
            );
        }
    }
    result
}

/// Builds the span (its name must be a literal) and runs the call through [`observe`].
macro_rules! swf_call {
    ($op:literal, $body:expr) => {
        observe($op, async { $body }).instrument(tracing::debug_span!($op, operation = $op))
    };
    ($op:literal, token = $token:expr, $body:expr) => {
        observe($op, async { $body }).instrument(tracing::debug_span!(
            $op,
            operation = $op,
            task_token_hash = %token_hash($token)
        ))
    };
}

fn task_list(name: &str) -> Result<t::TaskList, SwfError> {
    t::TaskList::builder()
        .name(name)
        .build()
        .map_err(|e| SwfError::Validation(e.to_string()))
}

fn execution(e: &WorkflowExecution) -> Result<t::WorkflowExecution, SwfError> {
    t::WorkflowExecution::builder()
        .workflow_id(&e.workflow_id)
        .run_id(&e.run_id)
        .build()
        .map_err(|e| SwfError::Validation(e.to_string()))
}

fn from_execution(e: Option<&t::WorkflowExecution>) -> WorkflowExecution {
    WorkflowExecution {
        workflow_id: e.map(|e| e.workflow_id().to_string()).unwrap_or_default(),
        run_id: e.map(|e| e.run_id().to_string()).unwrap_or_default(),
    }
}

fn secs(v: Option<u64>) -> String {
    v.map(|s| s.to_string())
        .unwrap_or_else(|| "NONE".to_string())
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

fn execution_info(info: &t::WorkflowExecutionInfo) -> ExecutionInfo {
    ExecutionInfo {
        execution: from_execution(info.execution()),
        workflow_type: TypeRef {
            name: info
                .workflow_type()
                .map(|t| t.name().to_string())
                .unwrap_or_default(),
            version: info
                .workflow_type()
                .map(|t| t.version().to_string())
                .unwrap_or_default(),
        },
        start_timestamp: info.start_timestamp().as_secs_f64(),
        close_timestamp: info.close_timestamp().map(|t| t.as_secs_f64()),
        execution_status: info.execution_status().as_str().to_string(),
        close_status: info.close_status().map(|s| s.as_str().to_string()),
        cancel_requested: info.cancel_requested(),
        tag_list: info.tag_list().to_vec(),
    }
}

#[async_trait]
impl SwfClient for AwsSwfClient {
    fn domain(&self) -> &str {
        &self.domain
    }

    async fn register_domain(
        &self,
        retention_days: u32,
        description: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("RegisterDomain", {
            self.client
                .register_domain()
                .name(&self.domain)
                .workflow_execution_retention_period_in_days(retention_days.to_string())
                .set_description(description)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn register_workflow_type(&self, reg: &WorkflowTypeRegistration) -> Result<(), SwfError> {
        swf_call!("RegisterWorkflowType", {
            self.client
                .register_workflow_type()
                .domain(&self.domain)
                .name(&reg.workflow_type.name)
                .version(&reg.workflow_type.version)
                .set_description(reg.description.clone())
                .default_task_list(task_list(&reg.default_task_list)?)
                .default_execution_start_to_close_timeout(
                    reg.default_execution_start_to_close_timeout_secs
                        .to_string(),
                )
                .default_task_start_to_close_timeout(
                    reg.default_task_start_to_close_timeout_secs.to_string(),
                )
                .default_child_policy(t::ChildPolicy::from(reg.default_child_policy.as_str()))
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn register_activity_type(&self, reg: &ActivityTypeRegistration) -> Result<(), SwfError> {
        swf_call!("RegisterActivityType", {
            self.client
                .register_activity_type()
                .domain(&self.domain)
                .name(&reg.activity_type.name)
                .version(&reg.activity_type.version)
                .set_description(reg.description.clone())
                .default_task_list(task_list(&reg.default_task_list)?)
                .default_task_schedule_to_start_timeout(secs(
                    reg.default_schedule_to_start_timeout_secs,
                ))
                .default_task_schedule_to_close_timeout(secs(
                    reg.default_schedule_to_close_timeout_secs,
                ))
                .default_task_start_to_close_timeout(secs(reg.default_start_to_close_timeout_secs))
                .default_task_heartbeat_timeout(secs(reg.default_heartbeat_timeout_secs))
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn start_workflow_execution(&self, start: &StartWorkflow) -> Result<String, SwfError> {
        let Some(wt) = &start.workflow_type else {
            return Err(SwfError::Validation(
                "StartWorkflowExecution needs a workflow type".into(),
            ));
        };
        swf_call!("StartWorkflowExecution", {
            let mut req = self
                .client
                .start_workflow_execution()
                .domain(&self.domain)
                .workflow_id(&start.workflow_id)
                .workflow_type(
                    t::WorkflowType::builder()
                        .name(&wt.name)
                        .version(&wt.version)
                        .build()
                        .map_err(|e| SwfError::Validation(e.to_string()))?,
                )
                .set_input(start.input.clone())
                .set_execution_start_to_close_timeout(
                    start
                        .execution_start_to_close_timeout_secs
                        .map(|s| s.to_string()),
                )
                .set_task_start_to_close_timeout(
                    start
                        .task_start_to_close_timeout_secs
                        .map(|s| s.to_string()),
                )
                .set_child_policy(start.child_policy.as_deref().map(t::ChildPolicy::from))
                .set_tag_list(if start.tag_list.is_empty() {
                    None
                } else {
                    Some(start.tag_list.clone())
                });
            if let Some(tl) = &start.task_list {
                req = req.task_list(task_list(tl)?);
            }
            req.send().await.map_err(map_sdk_error).and_then(|out| {
                out.run_id().map(str::to_string).ok_or_else(|| {
                    SwfError::Transport("StartWorkflowExecution answered no runId".into())
                })
            })
        })
        .await
    }

    async fn poll_for_decision_task(
        &self,
        task_list_name: &str,
        identity: &str,
        next_page_token: Option<&str>,
    ) -> Result<Option<DecisionTaskPage>, SwfError> {
        swf_call!("PollForDecisionTask", {
            let out = self
                .poll_client
                .poll_for_decision_task()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .identity(identity)
                .set_next_page_token(next_page_token.map(str::to_string))
                .send()
                .await
                .map_err(map_sdk_error)?;
            if out.task_token().is_empty() {
                return Ok(None);
            }
            Ok(Some(DecisionTaskPage {
                task_token: out.task_token().to_string(),
                execution: from_execution(out.workflow_execution()),
                workflow_type: TypeRef {
                    name: out
                        .workflow_type()
                        .map(|t| t.name().to_string())
                        .unwrap_or_default(),
                    version: out
                        .workflow_type()
                        .map(|t| t.version().to_string())
                        .unwrap_or_default(),
                },
                events: out.events().iter().map(HistoryEvent::from_aws).collect(),
                next_page_token: non_empty(out.next_page_token()),
                previous_started_event_id: out.previous_started_event_id(),
                started_event_id: out.started_event_id(),
            }))
        })
        .await
    }

    async fn respond_decision_task_completed(
        &self,
        task_token: &str,
        decisions: Vec<Decision>,
        execution_context: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("RespondDecisionTaskCompleted", token = task_token, {
            self.client
                .respond_decision_task_completed()
                .task_token(task_token)
                .set_decisions(Some(decisions.iter().map(Decision::to_aws).collect()))
                .set_execution_context(execution_context)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn poll_for_activity_task(
        &self,
        task_list_name: &str,
        identity: &str,
    ) -> Result<Option<ActivityTask>, SwfError> {
        swf_call!("PollForActivityTask", {
            let out = self
                .poll_client
                .poll_for_activity_task()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .identity(identity)
                .send()
                .await
                .map_err(map_sdk_error)?;
            if out.task_token().is_empty() {
                return Ok(None);
            }
            Ok(Some(ActivityTask {
                task_token: out.task_token().to_string(),
                activity_id: out.activity_id().to_string(),
                activity_type: TypeRef {
                    name: out
                        .activity_type()
                        .map(|t| t.name().to_string())
                        .unwrap_or_default(),
                    version: out
                        .activity_type()
                        .map(|t| t.version().to_string())
                        .unwrap_or_default(),
                },
                execution: from_execution(out.workflow_execution()),
                input: out.input().map(str::to_string),
                started_event_id: out.started_event_id(),
            }))
        })
        .await
    }

    async fn record_activity_task_heartbeat(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<bool, SwfError> {
        swf_call!("RecordActivityTaskHeartbeat", token = task_token, {
            self.client
                .record_activity_task_heartbeat()
                .task_token(task_token)
                .set_details(details)
                .send()
                .await
                .map(|out| out.cancel_requested())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn respond_activity_task_completed(
        &self,
        task_token: &str,
        result: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("RespondActivityTaskCompleted", token = task_token, {
            self.client
                .respond_activity_task_completed()
                .task_token(task_token)
                .set_result(result)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn respond_activity_task_failed(
        &self,
        task_token: &str,
        reason: Option<String>,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("RespondActivityTaskFailed", token = task_token, {
            self.client
                .respond_activity_task_failed()
                .task_token(task_token)
                .set_reason(reason)
                .set_details(details)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn respond_activity_task_canceled(
        &self,
        task_token: &str,
        details: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("RespondActivityTaskCanceled", token = task_token, {
            self.client
                .respond_activity_task_canceled()
                .task_token(task_token)
                .set_details(details)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn get_workflow_execution_history(
        &self,
        exec: &WorkflowExecution,
        next_page_token: Option<&str>,
        reverse_order: bool,
    ) -> Result<HistoryPage, SwfError> {
        swf_call!("GetWorkflowExecutionHistory", {
            let out = self
                .client
                .get_workflow_execution_history()
                .domain(&self.domain)
                .execution(execution(exec)?)
                .set_next_page_token(next_page_token.map(str::to_string))
                .reverse_order(reverse_order)
                .send()
                .await
                .map_err(map_sdk_error)?;
            Ok(HistoryPage {
                events: out.events().iter().map(HistoryEvent::from_aws).collect(),
                next_page_token: non_empty(out.next_page_token()),
            })
        })
        .await
    }

    async fn describe_workflow_execution(
        &self,
        exec: &WorkflowExecution,
    ) -> Result<ExecutionInfo, SwfError> {
        swf_call!("DescribeWorkflowExecution", {
            let out = self
                .client
                .describe_workflow_execution()
                .domain(&self.domain)
                .execution(execution(exec)?)
                .send()
                .await
                .map_err(map_sdk_error)?;
            out.execution_info().map(execution_info).ok_or_else(|| {
                SwfError::Transport("DescribeWorkflowExecution answered no executionInfo".into())
            })
        })
        .await
    }

    async fn list_executions(
        &self,
        state: ExecutionState,
        since_secs: u64,
        workflow_id: Option<&str>,
    ) -> Result<Vec<ExecutionInfo>, SwfError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let filter = t::ExecutionTimeFilter::builder()
            .oldest_date(aws_smithy_types::DateTime::from_secs_f64(
                (now - since_secs as f64).max(0.0),
            ))
            .build()
            .map_err(|e| SwfError::Validation(e.to_string()))?;
        let id_filter = workflow_id
            .map(|id| {
                t::WorkflowExecutionFilter::builder()
                    .workflow_id(id)
                    .build()
                    .map_err(|e| SwfError::Validation(e.to_string()))
            })
            .transpose()?;
        let mut all = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let (infos, next) = match state {
                ExecutionState::Open => {
                    swf_call!("ListOpenWorkflowExecutions", {
                        let out = self
                            .client
                            .list_open_workflow_executions()
                            .domain(&self.domain)
                            .start_time_filter(filter.clone())
                            .set_execution_filter(id_filter.clone())
                            .set_next_page_token(page.clone())
                            .send()
                            .await
                            .map_err(map_sdk_error)?;
                        Ok((
                            out.execution_infos()
                                .iter()
                                .map(execution_info)
                                .collect::<Vec<_>>(),
                            non_empty(out.next_page_token()),
                        ))
                    })
                    .await?
                }
                ExecutionState::Closed => {
                    swf_call!("ListClosedWorkflowExecutions", {
                        let out = self
                            .client
                            .list_closed_workflow_executions()
                            .domain(&self.domain)
                            .start_time_filter(filter.clone())
                            .set_execution_filter(id_filter.clone())
                            .set_next_page_token(page.clone())
                            .send()
                            .await
                            .map_err(map_sdk_error)?;
                        Ok((
                            out.execution_infos()
                                .iter()
                                .map(execution_info)
                                .collect::<Vec<_>>(),
                            non_empty(out.next_page_token()),
                        ))
                    })
                    .await?
                }
            };
            all.extend(infos);
            match next {
                Some(token) => page = Some(token),
                None => return Ok(all),
            }
        }
    }

    async fn signal_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        signal_name: &str,
        input: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("SignalWorkflowExecution", {
            self.client
                .signal_workflow_execution()
                .domain(&self.domain)
                .workflow_id(workflow_id)
                .set_run_id(run_id.map(str::to_string))
                .signal_name(signal_name)
                .set_input(input)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn request_cancel_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> Result<(), SwfError> {
        swf_call!("RequestCancelWorkflowExecution", {
            self.client
                .request_cancel_workflow_execution()
                .domain(&self.domain)
                .workflow_id(workflow_id)
                .set_run_id(run_id.map(str::to_string))
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn terminate_workflow_execution(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), SwfError> {
        swf_call!("TerminateWorkflowExecution", {
            self.client
                .terminate_workflow_execution()
                .domain(&self.domain)
                .workflow_id(workflow_id)
                .set_run_id(run_id.map(str::to_string))
                .set_reason(reason)
                .send()
                .await
                .map(|_| ())
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn count_pending_activity_tasks(&self, task_list_name: &str) -> Result<u64, SwfError> {
        swf_call!("CountPendingActivityTasks", {
            self.client
                .count_pending_activity_tasks()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .send()
                .await
                .map(|out| out.count().max(0) as u64)
                .map_err(map_sdk_error)
        })
        .await
    }

    async fn count_pending_decision_tasks(&self, task_list_name: &str) -> Result<u64, SwfError> {
        swf_call!("CountPendingDecisionTasks", {
            self.client
                .count_pending_decision_tasks()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .send()
                .await
                .map(|out| out.count().max(0) as u64)
                .map_err(map_sdk_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes_map_to_what_the_caller_should_do() {
        let m = |c: &str| map_code(c.to_string(), "msg".to_string());
        assert!(matches!(
            m("UnknownResourceFault"),
            SwfError::UnknownResource(_)
        ));
        assert!(matches!(
            m("WorkflowExecutionAlreadyStartedFault"),
            SwfError::WorkflowAlreadyStarted(_)
        ));
        assert!(matches!(
            m("DomainAlreadyExistsFault"),
            SwfError::AlreadyExists(_)
        ));
        assert!(matches!(
            m("TypeAlreadyExistsFault"),
            SwfError::AlreadyExists(_)
        ));
        assert!(matches!(m("TypeDeprecatedFault"), SwfError::Deprecated(_)));
        assert!(matches!(
            m("DomainDeprecatedFault"),
            SwfError::Deprecated(_)
        ));
        assert!(matches!(
            m("LimitExceededFault"),
            SwfError::LimitExceeded(_)
        ));
        assert!(matches!(m("ThrottlingException"), SwfError::Throttled(_)));
        assert!(matches!(m("ValidationException"), SwfError::Validation(_)));
        match m("OperationNotPermittedFault") {
            SwfError::Service { code, message } => {
                assert_eq!(code, "OperationNotPermittedFault");
                assert_eq!(message, "msg");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_local_endpoint_needs_no_configured_credentials_or_region() {
        let opts = ClientOptions {
            domain: "d".into(),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            connect_timeout: Duration::from_millis(200),
            call_timeout: Duration::from_millis(500),
            max_attempts: 1,
            ..ClientOptions::default()
        };
        let client = AwsSwfClient::connect(&opts).await.expect("client builds");
        assert_eq!(client.domain(), "d");
        // Nothing listens on port 1: the call must fail fast as a transport error, not hang.
        let err = client
            .count_pending_activity_tasks("tl")
            .await
            .expect_err("no server");
        assert!(matches!(err, SwfError::Transport(_)), "{err:?}");
    }
}
