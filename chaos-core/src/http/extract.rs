//! Which call an `http::Request` is: [`HttpCallExtractor`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{Extensions, HeaderMap, Request};

use crate::advanced::hash_str;
use crate::keys::UniqueKeys;
use crate::plan::Call;
use crate::timeout::Deadline;

/// The attempt number of a request (0 for the first try), as a request extension. Retry
/// layers set it ([`CountAttempts`](super::CountAttempts) does, for `tower::retry`), so each
/// retry of a request rolls anew while its key, and so its replay, stays the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub u32);

/// A request's key, as a request extension: set it when the application already knows the
/// logical request (it wins over headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey(pub u64);

/// The route template a request matched (`/orders/{id}`), as a request extension, for routers
/// other than axum's: the extractor reads it when no [`route_from`](HttpCallExtractor::route_from)
/// function is set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatchedRoute(pub Arc<str>);

/// Reads the matched route template from a request's extensions, such as axum's
/// `MatchedPath`: `|ext| ext.get::<MatchedPath>().map(MatchedPath::as_str)`.
pub type RouteFn = for<'a> fn(&'a Extensions) -> Option<&'a str>;

/// How a timeout header's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutFormat {
    /// gRPC's `grpc-timeout`: up to 8 digits and a unit, `H`, `M`, `S`, `m`, `u` or `n`
    /// (`250m` is 250 ms).
    Grpc,
    /// A whole number of milliseconds (`x-envoy-expected-rq-timeout-ms: 250`).
    Millis,
    /// A humantime duration (`250ms`, `1s 500ms`).
    Humantime,
}

impl TimeoutFormat {
    /// Parses a header value; `None` for a malformed one (which then sets no deadline).
    pub fn parse(self, value: &str) -> Option<Duration> {
        let value = value.trim();
        match self {
            Self::Grpc => parse_grpc_timeout(value),
            Self::Millis => value.parse().ok().map(Duration::from_millis),
            Self::Humantime => humantime::parse_duration(value).ok(),
        }
    }
}

/// `grpc-timeout`: `TimeoutValue TimeoutUnit`, at most 8 ASCII digits.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// What a request's [`Call::operation`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationForm {
    /// `"GET /orders/{id}"`: the method, a space, the route (the default).
    MethodAndRoute,
    /// The route alone: `"/orders/{id}"`.
    Route,
    /// A gRPC path `/package.Service/Method`: the service is `package.Service` and the
    /// operation `Method` (other paths: the configured service, the route as operation).
    Grpc,
}

/// Tells the HTTP layers which [`Call`] a request is, from owned pieces that live as long as
/// the layer's `call` (a [`Call`] only borrows).
///
/// * **Key**: the [`RequestKey`] extension; else the first configured header present
///   (`x-request-id`, then `traceparent`, whose trace id alone is used so every span of a
///   trace shares it); else a fresh key from a [`UniqueKeys`] source seeded with
///   [`fallback_seed`](Self::fallback_seed): never a constant (see [`crate::keys`] for why).
/// * **Site** and **service**: fixed per layer (`"http"` and `""` by default).
/// * **Operation**: method and matched route (see [`OperationForm`]); the route comes from
///   [`route_from`](Self::route_from), else the [`MatchedRoute`] extension, else the URI path.
/// * **Attempt**: the [`Attempt`] extension, else a configured header (`attempt_header`),
///   else 0.
/// * **Deadline**: the [`Deadline`] extension, else the earliest of the configured timeout
///   headers (`grpc-timeout` by default), counted from when the request reaches the layer.
/// * **Event** (opt in, [`with_event`](Self::with_event)): `{ "method", "path", "route",
///   "headers": { name: value } }`, for rules with event conditions.
#[derive(Clone)]
pub struct HttpCallExtractor {
    site: Arc<str>,
    site_hash: u64,
    service: Arc<str>,
    /// Headers a key is read from, each with whether it is a `traceparent` (decided once
    /// here, not per request).
    key_headers: Vec<(HeaderName, bool)>,
    keys: UniqueKeys,
    operation: OperationForm,
    route: Option<RouteFn>,
    attempt_header: Option<HeaderName>,
    timeout_headers: Vec<(HeaderName, TimeoutFormat)>,
    event: bool,
}

impl fmt::Debug for HttpCallExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCallExtractor")
            .field("site", &self.site)
            .field("service", &self.service)
            .field("key_headers", &self.key_headers)
            .field("operation", &self.operation)
            .field("route_from", &self.route.is_some())
            .field("attempt_header", &self.attempt_header)
            .field("timeout_headers", &self.timeout_headers)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl Default for HttpCallExtractor {
    fn default() -> Self {
        Self::new("http")
    }
}

const TRACEPARENT: &str = "traceparent";

thread_local! {
    /// Where [`HttpCallExtractor::with_call`] writes `"METHOD route"`, reused per thread.
    static OPERATION_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl HttpCallExtractor {
    /// An extractor for calls at `site`, keyed by `x-request-id` then `traceparent`, with
    /// deadlines from `grpc-timeout`.
    pub fn new(site: &str) -> Self {
        Self {
            site: site.into(),
            site_hash: hash_str(site),
            service: "".into(),
            key_headers: vec![
                (HeaderName::from_static("x-request-id"), false),
                (HeaderName::from_static(TRACEPARENT), true),
            ],
            keys: UniqueKeys::new(0),
            operation: OperationForm::MethodAndRoute,
            route: None,
            attempt_header: None,
            timeout_headers: vec![(HeaderName::from_static("grpc-timeout"), TimeoutFormat::Grpc)],
            event: false,
        }
    }

    /// Defaults for gRPC: service and operation from the path (`/pkg.Orders/Get` is service
    /// `pkg.Orders`, operation `Get`), deadline from `grpc-timeout`.
    pub fn grpc(site: &str) -> Self {
        Self::new(site).operation_form(OperationForm::Grpc)
    }

    /// Sets the service every call names (`match = { service = ".." }`).
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self
    }

    /// Replaces the headers a request key is read from, first present wins.
    pub fn key_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.key_headers = headers
            .into_iter()
            .map(|name| {
                let is_traceparent = name == TRACEPARENT;
                (name, is_traceparent)
            })
            .collect();
        self
    }

    /// Seeds the fallback keys of requests with no key: the same seed and request order give
    /// the same keys (and so the same decisions) on every run.
    pub fn fallback_seed(mut self, seed: u64) -> Self {
        self.keys = UniqueKeys::new(seed);
        self
    }

    /// Sets how the operation is formed.
    pub fn operation_form(mut self, form: OperationForm) -> Self {
        self.operation = form;
        self
    }

    /// Reads the matched route template from the request's extensions (axum:
    /// `|ext| ext.get::<MatchedPath>().map(MatchedPath::as_str)`).
    pub fn route_from(mut self, route: RouteFn) -> Self {
        self.route = Some(route);
        self
    }

    /// Reads the attempt from a header when no [`Attempt`] extension is set: a number, or the
    /// AWS SDK's `attempt=2; max=3` form (counted from 1 there, so `attempt=2` is attempt 1).
    pub fn attempt_header(mut self, header: HeaderName) -> Self {
        self.attempt_header = Some(header);
        self
    }

    /// Adds a header a deadline is read from (the earliest of all present wins).
    pub fn timeout_header(mut self, header: HeaderName, format: TimeoutFormat) -> Self {
        self.timeout_headers.push((header, format));
        self
    }

    /// Builds a JSON event per request for rules with event conditions (costs an allocation
    /// per header; off by default).
    pub fn with_event(mut self, on: bool) -> Self {
        self.event = on;
        self
    }

    /// The pieces of the call `request` makes, borrowed from it where they can be (the
    /// deadline is read apart, by [`deadline`](Self::deadline): only a fault needs it).
    pub fn extract<'r, B>(&self, request: &'r Request<B>) -> RequestCall<'r> {
        let route = self.route_of(request);
        let (service, operation) = match self.operation {
            OperationForm::MethodAndRoute => (
                None,
                Cow::Owned(format!("{} {route}", request.method().as_str())),
            ),
            OperationForm::Route => (None, Cow::Borrowed(route)),
            OperationForm::Grpc => match grpc_method(route) {
                Some((service, method)) => (Some(service), Cow::Borrowed(method)),
                None => (None, Cow::Borrowed(route)),
            },
        };
        self.pieces(request, route, service, operation)
    }

    /// Decides with the [`Call`] `request` makes, built in place: the same call as
    /// [`extract`](Self::extract) then [`call`](Self::call) give, without allocating (the
    /// `"METHOD route"` operation is written into a buffer reused per thread). The layers use
    /// this on every request.
    pub fn with_call<B, R>(&self, request: &Request<B>, decide: impl FnOnce(&Call<'_>) -> R) -> R {
        self.with_call_for(request, true, decide)
    }

    /// As [`with_call`](Self::with_call), but with `needs_operation` false the `"METHOD
    /// route"` operation is not built and the call's operation is empty: for a plan whose
    /// rules do not select on it ([`CompiledPlan::needs_operation`]), the verdict is the same.
    /// The route, service and event are filled in as usual.
    ///
    /// [`CompiledPlan::needs_operation`]: crate::CompiledPlan::needs_operation
    pub fn with_call_for<B, R>(
        &self,
        request: &Request<B>,
        needs_operation: bool,
        decide: impl FnOnce(&Call<'_>) -> R,
    ) -> R {
        if self.operation == OperationForm::MethodAndRoute && !needs_operation {
            let route = self.route_of(request);
            let pieces = self.pieces(request, route, None, Cow::Borrowed(""));
            return decide(&self.call(&pieces));
        }
        if self.operation != OperationForm::MethodAndRoute {
            return decide(&self.call(&self.extract(request)));
        }
        OPERATION_BUFFER.with(|buffer| {
            // Busy only if `decide` itself extracts (re-entrantly): then allocate.
            let Ok(mut operation) = buffer.try_borrow_mut() else {
                return decide(&self.call(&self.extract(request)));
            };
            let route = self.route_of(request);
            operation.clear();
            operation.push_str(request.method().as_str());
            operation.push(' ');
            operation.push_str(route);
            let pieces = self.pieces(request, route, None, Cow::Borrowed(operation.as_str()));
            decide(&self.call(&pieces))
        })
    }

    fn pieces<'r, B>(
        &self,
        request: &'r Request<B>,
        route: &'r str,
        service: Option<&'r str>,
        operation: Cow<'r, str>,
    ) -> RequestCall<'r> {
        let extensions = request.extensions();
        let headers = request.headers();
        let event = self.event.then(|| {
            let mut header_map = serde_json::Map::new();
            for (name, value) in headers {
                header_map.insert(
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes())
                        .into_owned()
                        .into(),
                );
            }
            serde_json::json!({
                "method": request.method().as_str(),
                "path": request.uri().path(),
                "route": route,
                "headers": header_map,
            })
        });
        RequestCall {
            request_key: self.key_of(extensions, headers),
            service,
            operation,
            route,
            attempt: self.attempt_of(extensions, headers),
            event,
        }
    }

    /// The [`Call`] of a request's pieces.
    pub fn call<'a>(&'a self, pieces: &'a RequestCall<'_>) -> Call<'a> {
        let mut call = Call::new(pieces.request_key, &self.site)
            .service(pieces.service.unwrap_or(&self.service))
            .operation(&pieces.operation)
            .route(pieces.route)
            .attempt(pieces.attempt);
        call.site_hash = Some(self.site_hash);
        if let Some(event) = &pieces.event {
            call = call.event(event);
        }
        call
    }

    /// The caller's deadline: the [`Deadline`] extension, else the earliest of the timeout
    /// headers, counted from now.
    pub fn deadline<B>(&self, request: &Request<B>) -> Option<Deadline> {
        if let Some(deadline) = request.extensions().get::<Deadline>() {
            return Some(*deadline);
        }
        let headers = request.headers();
        self.timeout_headers
            .iter()
            .filter_map(|(name, format)| format.parse(headers.get(name)?.to_str().ok()?))
            .min()
            .map(Deadline::after)
    }

    fn route_of<'r, B>(&self, request: &'r Request<B>) -> &'r str {
        let extensions = request.extensions();
        self.route
            .and_then(|route| route(extensions))
            .or_else(|| extensions.get::<MatchedRoute>().map(|r| &*r.0))
            .unwrap_or_else(|| request.uri().path())
    }

    fn key_of(&self, extensions: &Extensions, headers: &HeaderMap) -> u64 {
        if let Some(RequestKey(key)) = extensions.get() {
            return *key;
        }
        for (name, is_traceparent) in &self.key_headers {
            let Some(value) = headers.get(name) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            // Header values are almost always visible ASCII (a cheap check); other bytes are
            // hashed lossily.
            let text = match value.to_str() {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(value.as_bytes()),
            };
            let text = if *is_traceparent {
                trace_id(&text).unwrap_or(&text)
            } else {
                &text
            };
            return hash_str(text);
        }
        self.keys.next_key()
    }

    fn attempt_of(&self, extensions: &Extensions, headers: &HeaderMap) -> u32 {
        if let Some(Attempt(attempt)) = extensions.get() {
            return *attempt;
        }
        self.attempt_header
            .as_ref()
            .and_then(|name| headers.get(name)?.to_str().ok())
            .and_then(parse_attempt)
            .unwrap_or(0)
    }
}

/// `00-<trace id>-<parent id>-<flags>`: the trace id, shared by every span of the trace.
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut fields = traceparent.trim().split('-');
    let _version = fields.next()?;
    let trace = fields.next()?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}

/// `3`, or the AWS SDK's `attempt=3; max=3` (1-based there).
fn parse_attempt(value: &str) -> Option<u32> {
    let value = value.trim();
    if let Ok(attempt) = value.parse() {
        return Some(attempt);
    }
    value
        .split(';')
        .find_map(|part| part.trim().strip_prefix("attempt="))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .map(|n| n.saturating_sub(1))
}

/// `/pkg.Service/Method` as (`pkg.Service`, `Method`).
fn grpc_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// The pieces of one request's [`Call`], from [`HttpCallExtractor::extract`]: borrowed from
/// the request where they can be.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestCall<'r> {
    /// The request key.
    pub request_key: u64,
    service: Option<&'r str>,
    operation: Cow<'r, str>,
    route: &'r str,
    /// The attempt number, 0 for the first try.
    pub attempt: u32,
    /// The request as a JSON event, when the extractor builds one.
    pub event: Option<serde_json::Value>,
}

impl RequestCall<'_> {
    /// The service, when the request names its own (gRPC); else the extractor's is used.
    pub fn service(&self) -> Option<&str> {
        self.service
    }

    /// The operation, such as `"GET /orders/{id}"`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The route template the request matched (else its path), such as `"/orders/{id}"`:
    /// what a rule's `route` selector is compared with.
    pub fn route(&self) -> &str {
        self.route
    }
}
