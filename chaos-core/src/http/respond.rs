//! What an injected fault looks like on the wire: responses for servers, responses and I/O
//! errors for clients, and the [`OnInjected`] hook that builds either.

use std::io;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::fault::{ErrorKind, InjectedError, InjectedKind};

/// The header naming the rule that injected a response, so logs and tests can tell an
/// injected answer from a real one.
pub const RULE_HEADER: &str = "x-chaos-rule";

/// A response body the HTTP layers can write a fault's short text into.
///
/// Every `From<String>` body qualifies: `String`, `axum::body::Body`,
/// `http_body_util::Full<Bytes>`, `reqwest::Body`.
#[diagnostic::on_unimplemented(
    message = "chaos cannot write an injected fault into a `{Self}` response body",
    label = "this body type has no `From<String>`",
    note = "the HTTP chaos layers answer a fault with a short text body; bodies with `From<String>` work as they are (axum::body::Body, http_body_util::Full<Bytes>, String)",
    note = "for another body, pass `.on_injected(|fault| ...)` to build the response yourself (`fault_response` builds the head)"
)]
pub trait FaultBody: Sized {
    /// A body holding `text`.
    fn from_text(text: String) -> Self;
}

impl<B: From<String>> FaultBody for B {
    fn from_text(text: String) -> Self {
        B::from(text)
    }
}

/// Options for [`fault_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseOptions {
    /// The `Retry-After` of a throttled or unavailable answer (429, 503), in whole seconds,
    /// rounded up; `None`: no header. One second by default.
    pub retry_after: Option<Duration>,
}

impl Default for ResponseOptions {
    fn default() -> Self {
        Self {
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

/// The HTTP status a server answers an injected fault with.
///
/// | injected                    | status                                              |
/// |-----------------------------|-----------------------------------------------------|
/// | `status = N`                | `N`                                                 |
/// | `error = { server_error = N }` | `N`                                              |
/// | `error = "throttle"`        | 429 Too Many Requests                               |
/// | `error = "timeout"`, `hang` | 504 Gateway Timeout                                 |
/// | `error = "connection_reset"`| 502 Bad Gateway (what a load balancer answers when its target resets the connection), with `connection: close` |
/// | `error = { custom = .. }`   | 500 Internal Server Error                           |
/// | `corrupt = ..` (no readable body) | 502 Bad Gateway (what a proxy answers when its upstream's response is invalid) |
pub fn fault_status(kind: &InjectedKind) -> StatusCode {
    let code = match kind {
        InjectedKind::Status(status) | InjectedKind::Error(ErrorKind::ServerError { status }) => {
            *status
        }
        InjectedKind::Error(ErrorKind::Throttle) => 429,
        InjectedKind::Error(ErrorKind::Timeout) | InjectedKind::Hang => 504,
        InjectedKind::Error(ErrorKind::ConnectionReset) | InjectedKind::Corrupt(_) => 502,
        _ => 500,
    };
    // Plans accept 100 to 599 only; anything else would be a bug, answered as a 500.
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The response a server answers an injected fault with: [`fault_status`], a one-line text
/// body naming the rule (the [`InjectedError`]'s message), and the [`RULE_HEADER`]. A 429 or
/// 503 carries `Retry-After` ([`ResponseOptions::retry_after`]); a reset, `connection: close`.
///
/// Reusable wherever an HTTP answer stands for a fault (the Lambda adapter answers API
/// Gateway and ALB events with it).
///
/// ```
/// use chaos_core::fault::{ErrorKind, InjectedError, InjectedKind};
/// use chaos_core::http::{ResponseOptions, fault_response};
///
/// let fault = InjectedError { rule: "throttle-orders".into(), kind: InjectedKind::Error(ErrorKind::Throttle) };
/// let response = fault_response::<String>(&fault, &ResponseOptions::default());
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers()["retry-after"], "1");
/// assert!(response.body().contains("throttle-orders"));
/// ```
pub fn fault_response<B: FaultBody>(
    fault: &InjectedError,
    options: &ResponseOptions,
) -> Response<B> {
    let status = fault_status(&fault.kind);
    let mut response = Response::new(B::from_text(format!("{fault}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    insert_rule_header(headers, &fault.rule);
    // A 429 or 503, however injected, says when to come back, as throttling front doors do.
    if (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
        && let Some(after) = options.retry_after
    {
        let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if fault.kind == InjectedKind::Error(ErrorKind::ConnectionReset) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Adds the [`RULE_HEADER`], unless the rule's name cannot be a header value.
pub(crate) fn insert_rule_header(headers: &mut http::HeaderMap, rule: &str) {
    if let Ok(value) = HeaderValue::from_str(rule) {
        headers.insert(RULE_HEADER, value);
    }
}

/// Builds what a call returns when a rule fails it: a response or an error of the wrapped
/// service's own types. Closures `Fn(InjectedError) -> Result<Res, E>` implement it.
///
/// The layers come with three: [`AnswerHttp`] (servers), [`RealisticFaults`] (clients) and,
/// with feature `grpc`, `chaos_core::grpc::AnswerGrpc`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot turn an injected fault into this service's `Result<{Res}, {E}>`",
    label = "chosen by `HttpChaosLayer::server`, `::client`, `::grpc` or `.on_injected(..)`",
    note = "servers (`HttpChaosLayer::server`) answer with `http::Response<B>` where `B: From<String>`; gRPC servers (`::grpc`) need `B: Default`",
    note = "clients (`HttpChaosLayer::client`) need the error type to absorb `TransportFault` (`E: From<TransportFault>`; tower's BoxError does)",
    note = "otherwise build your own answer: `.on_injected(|fault: InjectedError| -> Result<{Res}, {E}> {{ .. }})`"
)]
pub trait OnInjected<Res, E> {
    /// What the call returns instead of the real call's result.
    fn on_injected(&self, fault: InjectedError) -> Result<Res, E>;
}

impl<F, Res, E> OnInjected<Res, E> for F
where
    F: Fn(InjectedError) -> Result<Res, E>,
{
    fn on_injected(&self, fault: InjectedError) -> Result<Res, E> {
        self(fault)
    }
}

/// Servers: every fault becomes an `Ok` response ([`fault_response`]); the service's error
/// type is never used, so infallible services (axum's) compose as they are.
#[derive(Clone, Debug, Default)]
pub struct AnswerHttp {
    /// The response options.
    pub options: ResponseOptions,
}

impl<B: FaultBody, E> OnInjected<Response<B>, E> for AnswerHttp {
    fn on_injected(&self, fault: InjectedError) -> Result<Response<B>, E> {
        Ok(fault_response(&fault, &self.options))
    }
}

/// Clients: faults as a client meets them. A status fault, a server error and a throttle are
/// `Ok` responses (status, 5xx, 429 with `Retry-After`), so status-based retry logic runs; a
/// reset, timeout, hang or custom error is an `Err` of [`TransportFault`], whose `source()`
/// is an [`io::Error`] of the matching kind. A `corrupt` fault (the layer cannot read a
/// generic body to corrupt it) is a [`TransportFault`] of kind `InvalidData`, what a client
/// reading a mangled body reports.
#[derive(Clone, Debug, Default)]
pub struct RealisticFaults {
    /// Options for the responses.
    pub options: ResponseOptions,
}

impl<B: FaultBody, E: From<TransportFault>> OnInjected<Response<B>, E> for RealisticFaults {
    fn on_injected(&self, fault: InjectedError) -> Result<Response<B>, E> {
        match &fault.kind {
            InjectedKind::Status(_)
            | InjectedKind::Error(ErrorKind::ServerError { .. } | ErrorKind::Throttle) => {
                Ok(fault_response(&fault, &self.options))
            }
            _ => Err(TransportFault::new(fault).into()),
        }
    }
}

/// An injected failure below HTTP: the connection reset, the call timed out. Its `source()`
/// is an [`io::Error`] of the matching [`io::ErrorKind`], so retry classifiers that walk the
/// source chain for I/O errors (as hyper's and reqwest's users do) treat it as the real thing.
#[derive(Debug, thiserror::Error)]
#[error("{injected}")]
pub struct TransportFault {
    injected: InjectedError,
    #[source]
    io: io::Error,
}

impl TransportFault {
    /// The transport failure standing for `injected`.
    ///
    /// | injected                     | `io::ErrorKind`     |
    /// |------------------------------|---------------------|
    /// | `connection_reset`           | `ConnectionReset`   |
    /// | `timeout`, `hang`            | `TimedOut`          |
    /// | `corrupt`                    | `InvalidData`       |
    /// | anything else                | `Other`             |
    pub fn new(injected: InjectedError) -> Self {
        let kind = match &injected.kind {
            InjectedKind::Error(ErrorKind::ConnectionReset) => io::ErrorKind::ConnectionReset,
            kind if kind.is_timeout() => io::ErrorKind::TimedOut,
            InjectedKind::Corrupt(_) => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        let io = io::Error::new(kind, format!("injected by chaos rule {:?}", injected.rule));
        Self { injected, io }
    }

    /// The injected fault.
    pub fn injected(&self) -> &InjectedError {
        &self.injected
    }

    /// The I/O error it stands for.
    pub fn io_error(&self) -> &io::Error {
        &self.io
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn fault(kind: InjectedKind) -> InjectedError {
        InjectedError {
            rule: "r1".into(),
            kind,
        }
    }

    #[test]
    fn each_fault_answers_with_its_status_and_names_the_rule() {
        let cases = [
            (InjectedKind::Status(418), 418),
            (
                InjectedKind::Error(ErrorKind::ServerError { status: 503 }),
                503,
            ),
            (InjectedKind::Error(ErrorKind::Throttle), 429),
            (InjectedKind::Error(ErrorKind::Timeout), 504),
            (InjectedKind::Hang, 504),
            (InjectedKind::Error(ErrorKind::ConnectionReset), 502),
            (
                InjectedKind::Error(ErrorKind::Custom {
                    name: "NoStock".into(),
                    message: "m".into(),
                }),
                500,
            ),
        ];
        for (kind, status) in cases {
            let response: Response<String> =
                fault_response(&fault(kind.clone()), &ResponseOptions::default());
            assert_eq!(response.status(), status, "{kind:?}");
            assert_eq!(response.headers()[RULE_HEADER], "r1");
            assert!(
                response.body().starts_with("chaos: rule \"r1\""),
                "{kind:?}"
            );
            assert_eq!(
                response.headers().contains_key(header::RETRY_AFTER),
                status == 429 || status == 503
            );
            assert_eq!(
                response.headers().contains_key(header::CONNECTION),
                status == 502
            );
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_or_is_left_out() {
        let throttle = fault(InjectedKind::Error(ErrorKind::Throttle));
        let options = ResponseOptions {
            retry_after: Some(Duration::from_millis(1500)),
        };
        let response: Response<String> = fault_response(&throttle, &options);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response: Response<String> =
            fault_response(&throttle, &ResponseOptions { retry_after: None });
        assert!(!response.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn a_rule_name_that_is_no_header_value_is_left_out() {
        let mut bad = fault(InjectedKind::Status(503));
        bad.rule = "line\nbreak".into();
        let response: Response<String> = fault_response(&bad, &ResponseOptions::default());
        assert!(!response.headers().contains_key(RULE_HEADER));
        assert_eq!(response.status(), 503);
    }

    #[test]
    fn clients_see_responses_for_statuses_and_io_errors_for_transport_faults() {
        type Outcome = Result<Response<String>, TransportFault>;
        let faults = RealisticFaults::default();
        let status: Outcome = faults.on_injected(fault(InjectedKind::Status(503)));
        assert_eq!(status.expect("a response").status(), 503);
        let throttle: Outcome = faults.on_injected(fault(InjectedKind::Error(ErrorKind::Throttle)));
        assert_eq!(throttle.expect("a response").status(), 429);
        let io_kind = |kind| {
            let outcome: Outcome = faults.on_injected(fault(kind));
            let error = outcome.expect_err("an error");
            let source = error.source().expect("a source");
            let io = source.downcast_ref::<io::Error>().expect("an io::Error");
            (io.kind(), error.to_string())
        };
        let (kind, shown) = io_kind(InjectedKind::Error(ErrorKind::ConnectionReset));
        assert_eq!(kind, io::ErrorKind::ConnectionReset);
        assert!(shown.contains("r1"), "{shown}");
        assert_eq!(io_kind(InjectedKind::Hang).0, io::ErrorKind::TimedOut);
        assert_eq!(
            io_kind(InjectedKind::Error(ErrorKind::Timeout)).0,
            io::ErrorKind::TimedOut
        );
    }
}
