//! Faults around a `lambda_runtime` handler: a tower layer for services of
//! `LambdaEvent<serde_json::Value>` (what `lambda_runtime::run` and custom runtimes drive).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use chaos_core::advanced::hash_str;
use chaos_core::{Call, Deadline, InjectedError, InjectedKind, Injector};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::config::LiveConfig;
use crate::guard::{Guard, GuardMode};
use crate::http_response::HttpShape;

/// What an injected `status` fault does with the handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusMode {
    /// Answer with the status and skip the handler (failure-lambda's `statuscode` mode).
    #[default]
    SkipHandler,
    /// Run the handler (its side effects happen), then replace its response (chaos_lambda's
    /// `status_code` mode).
    ReplaceResponse,
}

/// A tower layer injecting a plan's faults into a Lambda handler.
///
/// Each invocation is a chaos-core `Call`: request key = hash of the Lambda request id,
/// site = [`site`](Self::site) (the function's name unless set), event = the payload (for
/// `match = { event = [..] }` conditions). Latency sleeps on tokio's clock; an error kind fails
/// the invocation with an error whose type is `chaos.<kind>`; `hang` and `timeout` hold the
/// invocation until the deadline from its context (minus the rule's buffer); `status` answers
/// an HTTP response in the shape of the event's front door (API Gateway REST or HTTP API,
/// ALB; REST's shape for other events), built from chaos-core's one mapping of a fault to an
/// HTTP answer ([`HttpShape::fault_response`]); `corrupt` runs the handler and corrupts its
/// answer (the `body` of an HTTP answer, else the JSON payload: see [`chaos_core::corrupt`]
/// for the modes). The kill switch ends a hold at once.
#[derive(Clone)]
pub struct ChaosHandlerLayer {
    shared: Arc<Settings>,
}

struct Settings {
    injector: Injector,
    live: Option<LiveConfig>,
    site: Option<Cow<'static, str>>,
    status_mode: StatusMode,
    shape: Option<HttpShape>,
    guard: Option<Guard>,
}

impl fmt::Debug for ChaosHandlerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosHandlerLayer")
            .field("site", &self.shared.site)
            .field("status_mode", &self.shared.status_mode)
            .field("shape", &self.shared.shape)
            .field("guard", &self.shared.guard)
            .finish_non_exhaustive()
    }
}

impl ChaosHandlerLayer {
    /// A layer deciding invocations with `injector`.
    pub fn new(injector: Injector) -> Self {
        Self {
            shared: Arc::new(Settings {
                injector,
                live: None,
                site: None,
                status_mode: StatusMode::default(),
                shape: None,
                guard: None,
            }),
        }
    }

    /// A layer fed by a live configuration: each invocation calls its
    /// [`refresh_if_stale`](LiveConfig::refresh_if_stale) (never waiting on the fetch).
    pub fn live(live: LiveConfig) -> Self {
        let mut layer = Self::new(live.injector().clone());
        layer.settings_mut().live = Some(live);
        layer
    }

    /// The call site rules see; the function's name (from the context) unless set.
    pub fn site(mut self, site: impl Into<Cow<'static, str>>) -> Self {
        self.settings_mut().site = Some(site.into());
        self
    }

    /// What a `status` fault does with the handler ([`StatusMode::SkipHandler`] unless set).
    pub fn status_mode(mut self, mode: StatusMode) -> Self {
        self.settings_mut().status_mode = mode;
        self
    }

    /// The response shape for `status` faults, whatever the event (detected per event
    /// unless set).
    pub fn http_shape(mut self, shape: HttpShape) -> Self {
        self.settings_mut().shape = Some(shape);
        self
    }

    /// Guardrails checked before each decision: an environment allow-list, dry run, a
    /// CloudWatch alarm stop (see [`Guard`]). None unless set.
    pub fn guard(mut self, guard: Guard) -> Self {
        self.settings_mut().guard = Some(guard);
        self
    }

    fn settings_mut(&mut self) -> &mut Settings {
        // The builder methods run before the layer is shared.
        if Arc::get_mut(&mut self.shared).is_none() {
            self.shared = Arc::new(Settings {
                injector: self.shared.injector.clone(),
                live: self.shared.live.clone(),
                site: self.shared.site.clone(),
                status_mode: self.shared.status_mode,
                shape: self.shared.shape,
                guard: self.shared.guard.clone(),
            });
        }
        Arc::get_mut(&mut self.shared).unwrap_or_else(|| unreachable!("just made unique"))
    }
}

impl<S> Layer<S> for ChaosHandlerLayer {
    type Service = ChaosHandler<S>;

    fn layer(&self, inner: S) -> ChaosHandler<S> {
        ChaosHandler {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A Lambda handler service with faults injected; built by [`ChaosHandlerLayer`].
#[derive(Clone)]
pub struct ChaosHandler<S> {
    inner: S,
    shared: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for ChaosHandler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosHandler")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ChaosHandler<S> {
    /// The wrapped handler.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the handler.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// What a faulted handler returns: the handler's own error, or an injected one.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandlerError<E> {
    /// The handler failed on its own.
    Handler(E),
    /// A rule injected this error.
    Injected(InjectedError),
}

impl<E: fmt::Display> fmt::Display for HandlerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handler(error) => error.fmt(f),
            Self::Injected(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for HandlerError<E> {}

impl<E: Into<Diagnostic>> From<HandlerError<E>> for Diagnostic {
    fn from(error: HandlerError<E>) -> Self {
        match error {
            HandlerError::Handler(error) => error.into(),
            HandlerError::Injected(error) => Diagnostic {
                error_type: format!("chaos.{}", kind_label(&error.kind)),
                error_message: error.to_string(),
            },
        }
    }
}

fn kind_label(kind: &InjectedKind) -> &'static str {
    match kind {
        InjectedKind::Error(error) => error.label(),
        InjectedKind::Hang => "hang",
        InjectedKind::Status(_) => "status",
        InjectedKind::Corrupt(_) => "corrupt",
        _ => "fault",
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<LambdaEvent<Value>> for ChaosHandler<S>
where
    S: Service<LambdaEvent<Value>, Response = Value> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Value;
    type Error = HandlerError<S::Error>;
    type Future = BoxFuture<Result<Value, HandlerError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(HandlerError::Handler)
    }

    fn call(&mut self, event: LambdaEvent<Value>) -> Self::Future {
        let shared = self.shared.clone();
        if let Some(live) = &shared.live {
            live.refresh_if_stale();
        }
        // The readied handler goes into the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mode = shared.guard.as_ref().map_or(GuardMode::Inject, Guard::mode);
        if mode == GuardMode::Off {
            return Box::pin(async move { inner.call(event).await.map_err(HandlerError::Handler) });
        }
        let function = event.context.env_config.function_name.as_str();
        let span = tracing::info_span!(
            target: "chaos_aws",
            "chaos_aws.invocation",
            function = match function {
                "" => shared.site.as_deref().unwrap_or_default(),
                name => name,
            },
            request_id = event.context.request_id.as_str(),
            dry_run = mode == GuardMode::DryRun,
        );
        let invocation = async move {
            let context = &event.context;
            let site = match &shared.site {
                Some(site) => site.as_ref(),
                None => context.env_config.function_name.as_str(),
            };
            // A context without a deadline (0, as in `Context::default()`) has none to hold to.
            let deadline = (context.deadline != 0)
                .then(|| Deadline::from_epoch_millis(context.deadline, SystemTime::now()));
            let call = Call::new(hash_str(&context.request_id), site).event(&event.payload);
            if mode == GuardMode::DryRun {
                let verdict = shared.injector.decide(&call);
                if let Some(guard) = &shared.guard {
                    guard.count_dry_run(!verdict.is_pass());
                }
                if !verdict.is_pass() {
                    tracing::info!(
                        target: "chaos_aws",
                        added_latency = ?verdict.added_latency,
                        failure = ?verdict.failure,
                        "chaos: dry run; this invocation would be faulted"
                    );
                }
                return inner.call(event).await.map_err(HandlerError::Handler);
            }
            let injected = shared.injector.apply(&call, deadline).await;
            let error = match injected {
                Ok(()) => return inner.call(event).await.map_err(HandlerError::Handler),
                Err(error) => error,
            };
            match error.kind {
                InjectedKind::Status(_) => {}
                InjectedKind::Corrupt(corruption) => {
                    // The handler runs; only an answer can be corrupted, its own error stands.
                    let answer = inner.call(event).await.map_err(HandlerError::Handler)?;
                    return Ok(corrupt::corrupt_answer(answer, &corruption));
                }
                _ => return Err(HandlerError::Injected(error)),
            }
            let shape = shared
                .shape
                .or_else(|| HttpShape::of_event(&event.payload))
                .unwrap_or(HttpShape::ApiGatewayRest);
            if shared.status_mode == StatusMode::ReplaceResponse {
                // Its side effects happen; its answer (or error) is what the fault replaces.
                let _ = inner.call(event).await;
            }
            Ok(shape.fault_response(&error))
        };
        Box::pin(invocation.instrument(span))
    }
}

mod corrupt;
#[cfg(test)]
mod tests;
