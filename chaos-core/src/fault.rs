//! What a rule does when it fires: add latency, fail, hang, hold in a partition, or replace a
//! response.
//!
//! Faults are data. Adapters map an [`ErrorKind`] to the concrete error of their world (the
//! simulator counts it, the tower layer returns an [`InjectedError`], the AWS adapter answers
//! with the exact response the service would send).
//!
//! ```toml
//! fault = { latency = { log_normal = { p50 = "50ms", p99 = "400ms" } } }
//! fault = { error = "throttle" }                 # also "timeout", "connection_reset"
//! fault = { error = { server_error = 503 } }
//! fault = { error = { custom = { name = "InventoryUnavailable", message = "no stock service" } } }
//! fault = { hang = { buffer = "100ms" } }       # until the caller's deadline minus the buffer
//! fault = { status = 503 }                       # replace a handler's response
//! fault = "partition"                            # hold until the rule's window ends, then deliver
//! fault = { corrupt = "truncate" }               # mangle the response: also "flip", "empty", "json_invalid"
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::corrupt::{CorruptMode, Corruption};
use crate::duration::serde_duration;
use crate::latency::LatencyDist;

/// How long a [`Fault::Hang`] lasts when the caller has no deadline: Lambda's maximum timeout
/// (900 s, FACTS.md), the longest any serverless caller would wait.
pub const HANG_WITHOUT_DEADLINE: Duration = Duration::from_secs(900);

/// The failure a fault stands for. Adapters turn it into their concrete error.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ErrorKindRepr", into = "ErrorKindRepr")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service is throttling (DynamoDB `ProvisionedThroughputExceededException`, Lambda 429).
    Throttle,
    /// The service failed with an HTTP 5xx status.
    ServerError {
        /// The status code, 500 to 599.
        status: u16,
    },
    /// The call timed out.
    Timeout,
    /// The connection was reset before a response arrived.
    ConnectionReset,
    /// An application-specific error.
    Custom {
        /// The error's type name, such as `"InventoryUnavailable"`.
        name: String,
        /// A human-readable message.
        message: String,
    },
}

impl ErrorKind {
    /// A short stable label, used in metrics and traces: `throttle`, `server_error`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::ServerError { .. } => "server_error",
            Self::Timeout => "timeout",
            Self::ConnectionReset => "connection_reset",
            Self::Custom { .. } => "custom",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Throttle => f.write_str("throttled"),
            Self::ServerError { status } => write!(f, "server error (HTTP {status})"),
            Self::Timeout => f.write_str("timed out"),
            Self::ConnectionReset => f.write_str("connection reset"),
            Self::Custom { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ErrorKindRepr {
    Throttle,
    ServerError(u16),
    Timeout,
    ConnectionReset,
    Custom { name: String, message: String },
}

impl TryFrom<ErrorKindRepr> for ErrorKind {
    type Error = String;

    fn try_from(repr: ErrorKindRepr) -> Result<Self, String> {
        Ok(match repr {
            ErrorKindRepr::Throttle => Self::Throttle,
            ErrorKindRepr::ServerError(status) if (500..=599).contains(&status) => {
                Self::ServerError { status }
            }
            ErrorKindRepr::ServerError(status) => {
                return Err(format!(
                    "server_error status {status} is not a server error; expected 500 to 599 \
                     (use `status = {status}` to replace a response with any status)"
                ));
            }
            ErrorKindRepr::Timeout => Self::Timeout,
            ErrorKindRepr::ConnectionReset => Self::ConnectionReset,
            ErrorKindRepr::Custom { name, message } => Self::Custom { name, message },
        })
    }
}

impl From<ErrorKind> for ErrorKindRepr {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Throttle => Self::Throttle,
            ErrorKind::ServerError { status } => Self::ServerError(status),
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::ConnectionReset => Self::ConnectionReset,
            ErrorKind::Custom { name, message } => Self::Custom { name, message },
        }
    }
}

/// What a firing rule does. What each kind does to a call, in time and result, is defined
/// once in [`crate::effect`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Fault {
    /// Delay the call by a latency drawn from the distribution, then let it proceed.
    Latency(LatencyDist),
    /// Fail the call with an error instead of making it. A `timeout` error holds the call
    /// until the caller's deadline when one is known (a real timeout is the caller giving up
    /// after waiting), see [`crate::effect`].
    Error(ErrorKind),
    /// Hang until the caller's deadline minus `buffer`, then fail with a timeout. Without a
    /// deadline the hang lasts [`HANG_WITHOUT_DEADLINE`].
    Hang {
        /// Time left to the caller when the hang ends.
        #[serde(with = "serde_duration")]
        buffer: Duration,
    },
    /// Replace a handler's response with this HTTP status code (100 to 599).
    Status(u16),
    /// A network partition with retransmission: hold the call in the network until the rule's
    /// window ends, then deliver it (the call goes ahead, late). The rule needs a window with
    /// a duration (`window = { start = "2m", duration = "30s" }`); a call decided outside the
    /// window is not held. Unlike a [`Hang`](Self::Hang) (the caller gives up) the call is not
    /// failed: a caller whose own timeout ends first gives up, and the request still arrives
    /// when the partition heals. See [`crate::effect`].
    Partition,
    /// Let the call go ahead, then corrupt its response body ([`crate::corrupt`]): the
    /// caller receives an answer it cannot trust.
    Corrupt(CorruptMode),
}

impl Fault {
    /// A short stable label: `latency`, `error`, `hang`, `status`, `partition` or `corrupt`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Latency(_) => "latency",
            Self::Error(_) => "error",
            Self::Hang { .. } => "hang",
            Self::Status(_) => "status",
            Self::Partition => "partition",
            Self::Corrupt(_) => "corrupt",
        }
    }

    /// Whether the call fails (rather than only being delayed).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Latency(_) | Self::Partition)
    }
}

/// The error a caller sees when a rule failed its call. Kept apart from the service's own
/// errors, so code (and tests) can tell an injected fault from a real one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("chaos: rule {rule:?} injected {kind}")]
pub struct InjectedError {
    /// The rule's name, or `#index` for an unnamed rule.
    pub rule: String,
    /// What was injected.
    pub kind: InjectedKind,
}

/// The kind of failure an [`InjectedError`] carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InjectedKind {
    /// An error of this kind.
    Error(ErrorKind),
    /// The call hung until near its deadline, then timed out.
    Hang,
    /// The response is to be replaced by this HTTP status.
    Status(u16),
    /// The call goes ahead and its response body is to be corrupted this way. Adapters that
    /// can read the answer corrupt it (see [`crate::corrupt`]); those that cannot fail the
    /// call with this error instead.
    Corrupt(Corruption),
}

impl fmt::Display for InjectedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(kind) => write!(f, "an error ({kind})"),
            Self::Hang => f.write_str("a hang until the deadline"),
            Self::Status(status) => write!(f, "HTTP status {status}"),
            Self::Corrupt(corruption) => corruption.fmt(f),
        }
    }
}

impl InjectedKind {
    /// Whether the caller sees a timeout: a hang, or an injected `timeout` error.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Hang | Self::Error(ErrorKind::Timeout))
    }
}

impl InjectedError {
    /// The HTTP status to answer with, for a status fault or a server error.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            InjectedKind::Status(status)
            | InjectedKind::Error(ErrorKind::ServerError { status }) => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Doc {
        fault: Fault,
    }

    fn parse(text: &str) -> Result<Fault, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.fault)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_form_parses_and_round_trips() {
        let forms = [
            r#"fault = { error = "throttle" }"#,
            r#"fault = { error = "timeout" }"#,
            r#"fault = { error = "connection_reset" }"#,
            r#"fault = { error = { server_error = 503 } }"#,
            r#"fault = { error = { custom = { name = "X", message = "y" } } }"#,
            r#"fault = { hang = { buffer = "100ms" } }"#,
            r#"fault = { status = 418 }"#,
            r#"fault = { latency = "20ms" }"#,
            r#"fault = "partition""#,
            r#"fault = { corrupt = "truncate" }"#,
            r#"fault = { corrupt = "flip" }"#,
            r#"fault = { corrupt = "empty" }"#,
            r#"fault = { corrupt = "json_invalid" }"#,
        ];
        for text in forms {
            let fault = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again: Doc = toml::from_str(
                &toml::to_string(&Doc {
                    fault: fault.clone(),
                })
                .unwrap(),
            )
            .unwrap();
            assert_eq!(again.fault, fault, "{text}");
        }
        assert_eq!(
            parse(r#"fault = { error = { server_error = 503 } }"#).unwrap(),
            Fault::Error(ErrorKind::ServerError { status: 503 })
        );
        let partition = parse(r#"fault = "partition""#).unwrap();
        assert_eq!(partition, Fault::Partition);
        assert_eq!(
            (partition.label(), partition.is_failure()),
            ("partition", false)
        );
    }

    #[test]
    fn bad_forms_explain_the_fix() {
        let err = parse(r#"fault = { error = { server_error = 404 } }"#).unwrap_err();
        assert!(err.contains("expected 500 to 599"), "{err}");
        let err = parse(r#"fault = { error = "throtle" }"#).unwrap_err();
        assert!(err.contains("throttle"), "{err}");
        let err = parse(r#"fault = { hang = { buffer = "-1s" } }"#).unwrap_err();
        assert!(err.contains("negative"), "{err}");
        let err = parse(r#"fault = { corrupt = "garble" }"#).unwrap_err();
        assert!(
            err.contains("`truncate`, `flip`, `empty`, `json_invalid`"),
            "{err}"
        );
    }

    #[test]
    fn labels_and_messages_name_each_kind() {
        let custom = ErrorKind::Custom {
            name: "InventoryUnavailable".into(),
            message: "no stock".into(),
        };
        let cases = [
            (ErrorKind::Throttle, "throttle", "throttled"),
            (
                ErrorKind::ServerError { status: 503 },
                "server_error",
                "server error (HTTP 503)",
            ),
            (ErrorKind::Timeout, "timeout", "timed out"),
            (
                ErrorKind::ConnectionReset,
                "connection_reset",
                "connection reset",
            ),
            (custom, "custom", "InventoryUnavailable: no stock"),
        ];
        for (kind, label, shown) in cases {
            assert_eq!(kind.label(), label);
            assert_eq!(kind.to_string(), shown);
        }
    }

    #[test]
    fn injected_errors_show_and_carry_their_status() {
        let error = |kind| InjectedError {
            rule: "r".into(),
            kind,
        };
        let status = error(InjectedKind::Status(418));
        assert_eq!(status.status(), Some(418));
        assert_eq!(
            status.to_string(),
            r#"chaos: rule "r" injected HTTP status 418"#
        );
        let server = error(InjectedKind::Error(ErrorKind::ServerError { status: 502 }));
        assert_eq!(server.status(), Some(502));
        assert_eq!(
            server.to_string(),
            r#"chaos: rule "r" injected an error (server error (HTTP 502))"#
        );
        let hang = error(InjectedKind::Hang);
        assert_eq!(hang.status(), None);
        assert_eq!(
            hang.to_string(),
            r#"chaos: rule "r" injected a hang until the deadline"#
        );
        assert_eq!(
            error(InjectedKind::Error(ErrorKind::Throttle)).status(),
            None
        );
    }
}
