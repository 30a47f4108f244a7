//! gRPC answers for the HTTP layers (feature `grpc`): faults in gRPC's wire form, with no
//! tonic dependency.
//!
//! A gRPC failure is an HTTP 200 response whose headers carry `grpc-status` and
//! `grpc-message` and whose body is empty (a "trailers-only" response): tonic, grpc-go and
//! every other client read it as the status it names. [`HttpChaosLayer::grpc`] answers
//! injected failures that way, around a tonic server (`tonic::service::Routes` is an
//! `http::Request` service) or a tonic `Channel` on the client side.
//!
//! | injected                         | gRPC status                                   |
//! |----------------------------------|-----------------------------------------------|
//! | `error = "throttle"`             | `RESOURCE_EXHAUSTED` (8)                      |
//! | `error = "timeout"`, `hang`      | `DEADLINE_EXCEEDED` (4)                       |
//! | `error = "connection_reset"`     | `UNAVAILABLE` (14)                            |
//! | `server_error = 502` or `503`    | `UNAVAILABLE` (14)                            |
//! | `server_error = 504`             | `DEADLINE_EXCEEDED` (4)                       |
//! | `server_error = 501`             | `UNIMPLEMENTED` (12)                          |
//! | other `server_error`             | `INTERNAL` (13)                               |
//! | `error = { custom = .. }`        | `UNKNOWN` (2)                                 |
//! | `status = N`                     | no gRPC status: HTTP `N` itself, as a proxy in front of the server would answer; clients map it (503 to `UNAVAILABLE`, 429 to `UNAVAILABLE`, ...) |
//!
//! ```
//! use chaos_core::fault::{ErrorKind, InjectedError, InjectedKind};
//! use chaos_core::grpc::{Code, grpc_fault_response};
//!
//! let fault = InjectedError { rule: "slow-orders".into(), kind: InjectedKind::Hang };
//! let response = grpc_fault_response::<String>(&fault);
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "4");
//! assert_eq!(Code::from_injected(&fault.kind), Some(Code::DeadlineExceeded));
//! ```

use std::fmt::Write as _;

use http::{HeaderValue, Response, StatusCode, header};

use crate::fault::{ErrorKind, InjectedError, InjectedKind};
use crate::http::{HttpCallExtractor, HttpChaosLayer, OnInjected, insert_rule_header};
use crate::injector::Injector;

/// The gRPC status codes an injected fault can stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// `UNKNOWN` (2).
    Unknown = 2,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded = 4,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted = 8,
    /// `UNIMPLEMENTED` (12).
    Unimplemented = 12,
    /// `INTERNAL` (13).
    Internal = 13,
    /// `UNAVAILABLE` (14).
    Unavailable = 14,
}

impl Code {
    /// The code's number, as `grpc-status` carries it.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The gRPC status an injected fault stands for (see the [module docs](self)); `None` for
    /// a status fault, answered as a plain HTTP status.
    pub fn from_injected(kind: &InjectedKind) -> Option<Self> {
        Some(match kind {
            InjectedKind::Status(_) => return None,
            InjectedKind::Hang | InjectedKind::Error(ErrorKind::Timeout) => Self::DeadlineExceeded,
            InjectedKind::Error(ErrorKind::Throttle) => Self::ResourceExhausted,
            InjectedKind::Error(ErrorKind::ConnectionReset) => Self::Unavailable,
            // A message the client cannot decode: gRPC libraries report INTERNAL.
            InjectedKind::Corrupt(_) => Self::Internal,
            InjectedKind::Error(ErrorKind::ServerError { status }) => match status {
                502 | 503 => Self::Unavailable,
                504 => Self::DeadlineExceeded,
                501 => Self::Unimplemented,
                _ => Self::Internal,
            },
            _ => Self::Unknown,
        })
    }
}

/// The gRPC answer to an injected fault: HTTP 200, `content-type: application/grpc`,
/// `grpc-status`, `grpc-message` (the fault's message, percent-encoded as gRPC requires) and
/// [`RULE_HEADER`](crate::http::RULE_HEADER), with an empty body. A status fault is HTTP
/// `N` with no `grpc-status`.
pub fn grpc_fault_response<B: Default>(fault: &InjectedError) -> Response<B> {
    let mut response = Response::new(B::default());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    insert_rule_header(headers, &fault.rule);
    match Code::from_injected(&fault.kind) {
        Some(code) => {
            headers.insert("grpc-status", HeaderValue::from(u16::from(code.number())));
            // Percent-encoding leaves only visible ASCII: always a valid header value.
            if let Ok(message) = HeaderValue::from_str(&percent_encode(&fault.to_string())) {
                headers.insert("grpc-message", message);
            }
        }
        None => {
            let InjectedKind::Status(status) = fault.kind else {
                unreachable!("only a status fault has no gRPC code")
            };
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    response
}

/// gRPC's `grpc-message` encoding: bytes outside visible ASCII, and `%`, as `%XX`.
fn percent_encode(message: &str) -> String {
    let mut encoded = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// gRPC servers (and clients over a `Channel`): every fault becomes an `Ok` gRPC answer
/// ([`grpc_fault_response`]); the service's error type is never used.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnswerGrpc;

impl<B: Default, E> OnInjected<Response<B>, E> for AnswerGrpc {
    fn on_injected(&self, fault: InjectedError) -> Result<Response<B>, E> {
        Ok(grpc_fault_response(&fault))
    }
}

impl HttpChaosLayer<AnswerGrpc> {
    /// gRPC: failures answered in gRPC's wire form ([`AnswerGrpc`]); calls at site `"grpc"`,
    /// service and operation from the path ([`HttpCallExtractor::grpc`]), deadline from
    /// `grpc-timeout`.
    pub fn grpc(injector: Injector) -> Self {
        Self::new(injector, HttpCallExtractor::grpc("grpc"), AnswerGrpc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: InjectedKind) -> InjectedError {
        InjectedError {
            rule: "r".into(),
            kind,
        }
    }

    #[test]
    fn faults_map_to_their_grpc_codes() {
        let server = |status| InjectedKind::Error(ErrorKind::ServerError { status });
        let cases = [
            (
                InjectedKind::Error(ErrorKind::Throttle),
                Code::ResourceExhausted,
                8,
            ),
            (
                InjectedKind::Error(ErrorKind::Timeout),
                Code::DeadlineExceeded,
                4,
            ),
            (InjectedKind::Hang, Code::DeadlineExceeded, 4),
            (
                InjectedKind::Error(ErrorKind::ConnectionReset),
                Code::Unavailable,
                14,
            ),
            (server(503), Code::Unavailable, 14),
            (server(502), Code::Unavailable, 14),
            (server(504), Code::DeadlineExceeded, 4),
            (server(501), Code::Unimplemented, 12),
            (server(500), Code::Internal, 13),
            (
                InjectedKind::Error(ErrorKind::Custom {
                    name: "N".into(),
                    message: "m".into(),
                }),
                Code::Unknown,
                2,
            ),
        ];
        for (kind, code, number) in cases {
            assert_eq!(Code::from_injected(&kind), Some(code), "{kind:?}");
            let response: Response<String> = grpc_fault_response(&fault(kind));
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["grpc-status"],
                number.to_string().as_str()
            );
            assert_eq!(response.headers()["content-type"], "application/grpc");
            assert!(response.body().is_empty());
        }
        let status: Response<String> = grpc_fault_response(&fault(InjectedKind::Status(429)));
        assert_eq!(status.status(), 429);
        assert!(!status.headers().contains_key("grpc-status"));
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("a b%c\né"), "a b%25c%0A%C3%A9");
        let response: Response<String> = grpc_fault_response(&fault(InjectedKind::Hang));
        assert_eq!(
            response.headers()["grpc-message"],
            "chaos: rule \"r\" injected a hang until the deadline"
        );
    }
}
