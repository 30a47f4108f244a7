//! Faults at the AWS SDK's HTTP seam: [`ChaosHttpClient`] wraps the real HTTP client and
//! decides every request on the wire with a chaos-core [`Injector`].

pub(crate) mod corrupt;
pub(crate) mod identify;
pub(crate) mod responses;

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_smithy_async::rt::sleep::{AsyncSleep, SharedAsyncSleep};
use aws_smithy_runtime::client::retries::RetryPartition;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use chaos_core::{Call, CompiledPlan, ErrorKind, InjectedError, InjectedKind, Injector, Outcome};

use crate::config::LiveConfig;
use crate::error::ConfigError;
use crate::guard::{Guard, GuardMode};
use crate::services::check_plan;
use identify::WireCall;
use responses::{ServiceError, generic_response};

/// An AWS SDK HTTP client that injects a plan's faults into the requests it sends.
///
/// It wraps the real client (any [`HttpClient`]); a request no rule fires on goes to it
/// untouched. Plug it in with `.http_client(..)` on `aws_config::defaults(..)` (every service)
/// or on one service's `Config::builder()`. Cheap to clone.
#[derive(Clone)]
pub struct ChaosHttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    inner: SharedHttpClient,
    injector: Injector,
    site: Cow<'static, str>,
    guard: Option<Guard>,
    live: Option<LiveConfig>,
    /// The most bytes of an answer read to corrupt it.
    corrupt_body_limit: usize,
    /// Set once a delay had to be skipped for want of a sleep implementation.
    warned_no_sleep: AtomicBool,
}

impl fmt::Debug for ChaosHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosHttpClient")
            .field("inner", &self.shared.inner)
            .field("site", &self.shared.site)
            .field("guard", &self.shared.guard)
            .field("live", &self.shared.live)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ChaosHttpClient`]: the client it wraps, the plan (or injector), the call site.
#[derive(Debug)]
pub struct ChaosHttpClientBuilder {
    inner: SharedHttpClient,
    injector: Option<Injector>,
    plan: Option<CompiledPlan>,
    site: Cow<'static, str>,
    guard: Option<Guard>,
    live: Option<LiveConfig>,
    corrupt_body_limit: usize,
}

impl ChaosHttpClient {
    /// A builder wrapping `inner`, the client that sends the requests no fault stops.
    pub fn builder(inner: impl HttpClient + 'static) -> ChaosHttpClientBuilder {
        ChaosHttpClientBuilder {
            inner: inner.into_shared(),
            injector: None,
            plan: None,
            site: Cow::Borrowed("aws"),
            guard: None,
            live: None,
            corrupt_body_limit: corrupt::DEFAULT_CORRUPT_BODY_LIMIT,
        }
    }

    /// A builder wrapping the SDK's usual HTTPS client (hyper with rustls on aws-lc), built
    /// the way the SDK builds its default one.
    #[cfg(feature = "https")]
    pub fn https() -> ChaosHttpClientBuilder {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        Self::builder(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https(),
        )
    }

    /// The injector deciding the requests: reload its plan, flip its kill switch, read its
    /// counters. Check a plan with [`check_plan`](crate::check_plan) before reloading it.
    pub fn injector(&self) -> &Injector {
        &self.shared.injector
    }

    /// The call site rules see (`match = { site = ".." }`), `"aws"` unless set.
    pub fn site(&self) -> &str {
        &self.shared.site
    }

    /// The guardrails checked before each request, if set.
    pub fn guard(&self) -> Option<&Guard> {
        self.shared.guard.as_ref()
    }
}

impl ChaosHttpClientBuilder {
    /// The plan to inject, checked against the services and operations the wrapper knows
    /// (see [`check_plan`](crate::check_plan)). The client gets its own [`Injector`].
    pub fn plan(mut self, plan: CompiledPlan) -> Self {
        self.plan = Some(plan);
        self.injector = None;
        self
    }

    /// An injector to share (with guardrails, with other clients, or reloaded live). Its plan
    /// is the caller's to check with [`check_plan`](crate::check_plan): an injector does not
    /// hand its plan out.
    pub fn injector(mut self, injector: Injector) -> Self {
        self.injector = Some(injector);
        self.plan = None;
        self
    }

    /// A live configuration's injector, kept fresh from its source: every request calls
    /// [`LiveConfig::refresh_if_stale`] (a clock read when fresh; a stale plan is refetched in
    /// the background, never on the request's path). Its plans are checked as they load.
    pub fn live(mut self, live: LiveConfig) -> Self {
        self.injector = Some(live.injector().clone());
        self.plan = None;
        self.live = Some(live);
        self
    }

    /// Guardrails checked before each request, the same as the Lambda layer's: outside the
    /// allowed environments or while the stop alarm is in ALARM every request goes to the
    /// real client undecided; in dry run each is decided, logged and counted
    /// ([`Guard::dry_run_counts`]) and sent untouched. The kill switch, expiry and injection
    /// budget are the injector's ([`injector_from_env`](crate::injector_from_env)).
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The call site rules see, such as `"checkout/orders"`, to tell apart clients of one
    /// service. Defaults to `"aws"`.
    pub fn site(mut self, site: impl Into<Cow<'static, str>>) -> Self {
        self.site = site.into();
        self
    }

    /// The most bytes of an answer read to corrupt it when a `corrupt` rule fires
    /// ([`DEFAULT_CORRUPT_BODY_LIMIT`](crate::DEFAULT_CORRUPT_BODY_LIMIT), 16 MiB, unless set).
    /// A longer answer is read up to the limit, corrupted there, and ends there: the wrapper
    /// never holds more than this much of an answer in memory.
    pub fn corrupt_body_limit(mut self, bytes: usize) -> Self {
        self.corrupt_body_limit = bytes;
        self
    }

    /// Builds the client. Fails when the plan names a service, operation or error code the
    /// wrapper does not know, or does not compile.
    pub fn build(self) -> Result<ChaosHttpClient, ConfigError> {
        let injector = match (self.injector, self.plan) {
            (Some(injector), _) => injector,
            (None, Some(plan)) => {
                check_plan(plan.plan())?;
                Injector::new(plan)?
            }
            (None, None) => Injector::inert(),
        };
        Ok(ChaosHttpClient {
            shared: Arc::new(Shared {
                inner: self.inner,
                injector,
                site: self.site,
                guard: self.guard,
                live: self.live,
                corrupt_body_limit: self.corrupt_body_limit,
                warned_no_sleep: AtomicBool::new(false),
            }),
        })
    }
}

impl HttpClient for ChaosHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.shared.inner.http_connector(settings, components);
        // What a request that never answers costs the caller before the real connector would
        // give up: the connect and read timeouts, when the SDK sets them.
        let patience = match (settings.connect_timeout(), settings.read_timeout()) {
            (None, None) => None,
            (connect, read) => Some(connect.unwrap_or_default() + read.unwrap_or_default()),
        };
        ChaosConnector {
            shared: self.shared.clone(),
            inner,
            sleep: components.sleep_impl(),
            patience,
        }
        .into_shared()
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.shared.inner.connector_metadata()
    }
}

/// The per-settings connector: decides each request, then delays, answers or passes it on.
struct ChaosConnector {
    shared: Arc<Shared>,
    inner: SharedHttpConnector,
    sleep: Option<SharedAsyncSleep>,
    patience: Option<Duration>,
}

impl fmt::Debug for ChaosConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosConnector")
            .field("inner", &self.inner)
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

impl HttpConnector for ChaosConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let shared = &*self.shared;
        if let Some(live) = &shared.live {
            live.refresh_if_stale();
        }
        let mode = shared.guard.as_ref().map_or(GuardMode::Inject, Guard::mode);
        if mode == GuardMode::Off {
            return self.inner.call(request);
        }
        let wire = WireCall::read(&request);
        let call = Call::new(wire.request_key, &shared.site)
            .service(&wire.service_name)
            .operation(&wire.operation)
            .attempt(wire.attempt);
        let verdict = shared.injector.decide(&call);
        if mode == GuardMode::DryRun {
            if let Some(guard) = &shared.guard {
                guard.count_dry_run(!verdict.is_pass());
            }
            if !verdict.is_pass() {
                tracing::info!(
                    target: "chaos_aws",
                    service = %wire.service_name,
                    operation = %wire.operation,
                    attempt = wire.attempt,
                    added_latency = ?verdict.added_latency,
                    failure = ?verdict.failure,
                    "chaos: dry run; this request would be faulted on the wire"
                );
            }
            return self.inner.call(request);
        }
        if verdict.is_pass() {
            return self.inner.call(request);
        }
        let effect = verdict.effect(self.patience);
        if let Outcome::Fail { rule, kind } = &effect.outcome {
            tracing::info!(
                target: "chaos_aws",
                service = %wire.service_name,
                operation = %wire.operation,
                attempt = wire.attempt,
                rule,
                fault = %kind,
                delay_ms = effect.delay.as_millis() as u64,
                "chaos: injected a fault on the wire"
            );
        }
        let delay = match (&self.sleep, effect.delay.is_zero()) {
            (_, true) => None,
            (Some(sleep), false) => Some(sleep.sleep(effect.delay)),
            (None, false) => {
                if !self.shared.warned_no_sleep.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "chaos_aws",
                        "chaos: the SDK client has no sleep implementation (enable its \
                         `rt-tokio` feature); injected delays are skipped"
                    );
                }
                None
            }
        };
        let inner = self.inner.clone();
        let corrupt_body_limit = shared.corrupt_body_limit;
        HttpConnectorFuture::new(async move {
            if let Some(delay) = delay {
                delay.await;
            }
            match effect.outcome {
                // The request goes out and the service acts on it; its answer is corrupted.
                Outcome::Fail {
                    kind: InjectedKind::Corrupt(corruption),
                    ..
                } => {
                    let is_head = request.method().eq_ignore_ascii_case("HEAD");
                    let response = inner.call(request).await?;
                    corrupt::corrupt_response(response, &corruption, corrupt_body_limit, is_head)
                        .await
                }
                Outcome::Fail { rule, kind } => reply(&request, &wire, rule, kind),
                // Latency only, or an outcome chaos-core adds later: the real call goes ahead.
                _ => inner.call(request).await,
            }
        })
    }
}

/// The injected answer: a service error response or a connector error. (A corruption is
/// answered by the real connector, then corrupted: see [`corrupt`].)
fn reply(
    request: &HttpRequest,
    wire: &WireCall,
    rule: usize,
    kind: InjectedKind,
) -> Result<HttpResponse, ConnectorError> {
    let source = |kind: InjectedKind| {
        Box::new(InjectedError {
            rule: format!("#{rule}"),
            kind,
        })
    };
    let error = match &kind {
        InjectedKind::Hang | InjectedKind::Error(ErrorKind::Timeout) => {
            return Err(ConnectorError::timeout(source(kind)));
        }
        InjectedKind::Error(ErrorKind::ConnectionReset) => {
            return Err(ConnectorError::io(Box::new(io::Error::new(
                io::ErrorKind::ConnectionReset,
                source(kind),
            ))));
        }
        InjectedKind::Error(error) => error.clone(),
        InjectedKind::Status(status) => {
            let Some(service) = wire.service else {
                return Ok(generic_response(
                    "ChaosInjectedStatus",
                    *status,
                    "Injected status",
                ));
            };
            return Ok(ServiceError::for_status(service, *status).to_response(service, wire, None));
        }
        _ => ErrorKind::ServerError { status: 500 },
    };
    let Some(service) = wire.service else {
        let (code, status) = match &error {
            ErrorKind::Throttle => ("ThrottlingException", 400),
            ErrorKind::ServerError { status } => ("InternalFailure", *status),
            _ => ("ChaosInjectedError", 400),
        };
        return Ok(generic_response(code, status, &error.to_string()));
    };
    let table = request
        .body()
        .bytes()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
        .and_then(|body| body.get("TableName")?.as_str().map(str::to_owned));
    Ok(
        ServiceError::for_kind(service, &wire.operation, &error).to_response(
            service,
            wire,
            table.as_deref(),
        ),
    )
}

/// A retry partition of its own for a client whose requests are faulted.
///
/// The SDK's standard retry strategy spends tokens from a retry quota shared, process-wide,
/// by every client of the same partition (by default one per service and Region). Injected
/// throttles and 5xx drain it like real ones: once it is empty, *every* client of that service
/// in the process stops retrying, faulted or not. Give the faulted client its own partition
/// (its own token bucket) with
/// `Config::builder().retry_partition(chaos_aws::isolated_retry_partition("chaos-orders"))`
/// to keep the experiment's blast radius to that client.
pub fn isolated_retry_partition(name: impl Into<Cow<'static, str>>) -> RetryPartition {
    RetryPartition::custom(name).build()
}
