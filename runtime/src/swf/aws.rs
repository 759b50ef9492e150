//! The `aws-sdk-swf` implementation of the SWF boundary.
//!
//! [`AwsSwfClient::connect`] builds one SDK client per process from the standard AWS
//! configuration chain (environment, profile files, IMDS...) with the explicit overrides of
//! [`ClientOptions`]; the same client then serves Amazon SWF, the embedded swf-local and any
//! other compatible endpoint. Timeouts are set so a long poll (up to 60 s at SWF) never looks
//! like a hung connection while every other call stays bounded. Throttling and transient
//! failures are retried by the SDK's standard retry strategy; every attempt refused for
//! throttling is counted.
//!
//! Every call runs in a `tracing` span named after its SWF action and records the API call
//! metrics (`swf_api_calls_total`, `swf_api_errors_total`, `swf_api_call_duration_seconds`).
//! Task tokens never reach a log line; only [`crate::envelope::token_hash`] does.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_swf::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_swf::types as t;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
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
use crate::telemetry::metrics::{labels, API_CALLS, API_CALL_DURATION, API_ERRORS, API_THROTTLES};

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
        }
    }
}

/// [`SwfClient`] on `aws-sdk-swf`, bound to one domain. Cheap to clone.
#[derive(Clone)]
pub struct AwsSwfClient {
    client: aws_sdk_swf::Client,
    domain: String,
    poll_timeouts: TimeoutConfig,
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
        Ok(AwsSwfClient {
            client: aws_sdk_swf::Client::new(&sdk_config),
            domain: opts.domain.clone(),
            poll_timeouts,
        })
    }

    /// The underlying SDK client, for calls outside the trait (tools and tests).
    pub fn sdk(&self) -> &aws_sdk_swf::Client {
        &self.client
    }

    fn poll_override(&self) -> aws_sdk_swf::config::Builder {
        aws_sdk_swf::config::Builder::default().timeout_config(self.poll_timeouts.clone())
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
/// the caller never sees.
struct ThrottleCounter<E> {
    operation: &'static str,
    _error: PhantomData<fn() -> E>,
}

impl<E> ThrottleCounter<E> {
    fn new(operation: &'static str) -> Self {
        ThrottleCounter {
            operation,
            _error: PhantomData,
        }
    }
}

impl<E> fmt::Debug for ThrottleCounter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleCounter")
            .field("operation", &self.operation)
            .finish()
    }
}

impl<E> Intercept for ThrottleCounter<E>
where
    E: ProvideErrorMetadata + std::error::Error + fmt::Debug + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        "SwfRuntimeThrottleCounter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttled = context
            .output_or_error()
            .and_then(|r| r.err())
            .and_then(|e| e.as_operation_error())
            .and_then(|e| e.downcast_ref::<E>())
            .and_then(|e| e.code())
            .is_some_and(is_throttle_code);
        if throttled {
            metrics::counter!(API_THROTTLES.name, labels::OPERATION => self.operation).increment(1);
        }
        Ok(())
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
    metrics::histogram!(API_CALL_DURATION.name, labels::OPERATION => operation)
        .record(elapsed.as_secs_f64());
    match &result {
        Ok(_) => {
            metrics::counter!(API_CALLS.name, labels::OPERATION => operation, labels::OUTCOME => "ok")
                .increment(1);
        }
        Err(err) => {
            metrics::counter!(API_CALLS.name, labels::OPERATION => operation, labels::OUTCOME => "error")
                .increment(1);
            metrics::counter!(API_ERRORS.name, labels::OPERATION => operation, labels::ERROR_TYPE => err.error_type())
                .increment(1);
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::register_domain::RegisterDomainError,
                >::new("RegisterDomain"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::register_workflow_type::RegisterWorkflowTypeError,
                >::new("RegisterWorkflowType"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::register_activity_type::RegisterActivityTypeError,
                >::new("RegisterActivityType"))
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
            req.customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::start_workflow_execution::StartWorkflowExecutionError,
                >::new("StartWorkflowExecution"))
                .send()
                .await
                .map_err(map_sdk_error)
                .and_then(|out| {
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
                .client
                .poll_for_decision_task()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .identity(identity)
                .set_next_page_token(next_page_token.map(str::to_string))
                .customize()
                .config_override(self.poll_override())
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::poll_for_decision_task::PollForDecisionTaskError,
                >::new("PollForDecisionTask"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::respond_decision_task_completed::RespondDecisionTaskCompletedError,
                >::new("RespondDecisionTaskCompleted"))
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
                .client
                .poll_for_activity_task()
                .domain(&self.domain)
                .task_list(task_list(task_list_name)?)
                .identity(identity)
                .customize()
                .config_override(self.poll_override())
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::poll_for_activity_task::PollForActivityTaskError,
                >::new("PollForActivityTask"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::record_activity_task_heartbeat::RecordActivityTaskHeartbeatError,
                >::new("RecordActivityTaskHeartbeat"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::respond_activity_task_completed::RespondActivityTaskCompletedError,
                >::new("RespondActivityTaskCompleted"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::respond_activity_task_failed::RespondActivityTaskFailedError,
                >::new("RespondActivityTaskFailed"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::respond_activity_task_canceled::RespondActivityTaskCanceledError,
                >::new("RespondActivityTaskCanceled"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::get_workflow_execution_history::GetWorkflowExecutionHistoryError,
                >::new("GetWorkflowExecutionHistory"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::describe_workflow_execution::DescribeWorkflowExecutionError,
                >::new("DescribeWorkflowExecution"))
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
                            .customize()
                            .interceptor(ThrottleCounter::<
                                aws_sdk_swf::operation::list_open_workflow_executions::ListOpenWorkflowExecutionsError,
                            >::new("ListOpenWorkflowExecutions"))
                            .send()
                            .await
                            .map_err(map_sdk_error)?;
                        Ok((
                            out.execution_infos().iter().map(execution_info).collect::<Vec<_>>(),
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
                            .customize()
                            .interceptor(ThrottleCounter::<
                                aws_sdk_swf::operation::list_closed_workflow_executions::ListClosedWorkflowExecutionsError,
                            >::new("ListClosedWorkflowExecutions"))
                            .send()
                            .await
                            .map_err(map_sdk_error)?;
                        Ok((
                            out.execution_infos().iter().map(execution_info).collect::<Vec<_>>(),
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::signal_workflow_execution::SignalWorkflowExecutionError,
                >::new("SignalWorkflowExecution"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::request_cancel_workflow_execution::RequestCancelWorkflowExecutionError,
                >::new("RequestCancelWorkflowExecution"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::terminate_workflow_execution::TerminateWorkflowExecutionError,
                >::new("TerminateWorkflowExecution"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::count_pending_activity_tasks::CountPendingActivityTasksError,
                >::new("CountPendingActivityTasks"))
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
                .customize()
                .interceptor(ThrottleCounter::<
                    aws_sdk_swf::operation::count_pending_decision_tasks::CountPendingDecisionTasksError,
                >::new("CountPendingDecisionTasks"))
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
