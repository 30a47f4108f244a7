//! A DynamoDB client shaped like the AWS SDK for Rust's (`client.get_item().table_name(..)
//! .key(..).send().await`, `SdkError<GetItemError>`, error codes, the standard retry mode),
//! whose transport goes through the test harness's injector. An injected chaos-core
//! [`ErrorKind`] comes back as the error the real service would answer with, so the handler's
//! error handling meets what production throws. Shared by `main.rs` and
//! `tests/aws_shaped_client.rs`.
//!
//! (The real SDK is wired the same way by chaos-aws, at the HTTP layer; this stand-in keeps
//! the example free of the SDK's build weight.)

use std::fmt;
use std::time::Duration;

use chaos_core::fault::ErrorKind;
use chaos_core::testing::{HandlerError, Invocation, Served};
use rand::RngExt;

/// The call site of `GetItem` on the `prices` table.
pub const GET_PRICE: &str = "prices/GetItem";
/// What the table takes when nothing is injected.
const SERVICE_TIME: Duration = Duration::from_millis(8);

/// `GetItem`'s modelled errors, as the SDK names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetItemError {
    /// 400, `ProvisionedThroughputExceededException`: retryable (a throttle).
    ProvisionedThroughputExceededException,
    /// 500, `InternalServerError`: retryable.
    InternalServerError,
    /// Any other error code, such as a 503 `ServiceUnavailable`.
    Unhandled {
        /// The error code.
        code: String,
        /// The HTTP status.
        status: u16,
    },
}

/// The SDK's error: a service's answer, or a failure to get one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdkError<E> {
    /// The service answered with an error.
    ServiceError(E),
    /// The operation's timeout (its `timeout_config`) elapsed.
    TimeoutError,
    /// The request never got an answer: the connection failed.
    DispatchFailure(String),
}

impl SdkError<GetItemError> {
    /// The error code, as `ProvideErrorMetadata::code` gives it.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::ServiceError(GetItemError::ProvisionedThroughputExceededException) => {
                Some("ProvisionedThroughputExceededException")
            }
            Self::ServiceError(GetItemError::InternalServerError) => Some("InternalServerError"),
            Self::ServiceError(GetItemError::Unhandled { code, .. }) => Some(code),
            Self::TimeoutError | Self::DispatchFailure(_) => None,
        }
    }

    /// Whether the standard retry mode retries it: throttles, 5xx, timeouts, dispatch failures.
    fn is_retryable(&self) -> bool {
        !matches!(self, Self::ServiceError(GetItemError::Unhandled { status, .. }) if *status < 500)
    }
}

impl fmt::Display for SdkError<GetItemError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceError(_) => write!(f, "service error: {}", self.code().unwrap_or("?")),
            Self::TimeoutError => f.write_str("operation timed out"),
            Self::DispatchFailure(why) => write!(f, "dispatch failure: {why}"),
        }
    }
}

/// The wire: what DynamoDB answers for each injected kind (codes and statuses from its API
/// reference).
pub fn as_dynamodb_error(kind: &ErrorKind) -> SdkError<GetItemError> {
    match kind {
        ErrorKind::Throttle => {
            SdkError::ServiceError(GetItemError::ProvisionedThroughputExceededException)
        }
        ErrorKind::ServerError { status: 500 } => {
            SdkError::ServiceError(GetItemError::InternalServerError)
        }
        ErrorKind::ServerError { status } => SdkError::ServiceError(GetItemError::Unhandled {
            code: if *status == 503 {
                "ServiceUnavailable".into()
            } else {
                format!("Http{status}")
            },
            status: *status,
        }),
        ErrorKind::Timeout => SdkError::TimeoutError,
        ErrorKind::ConnectionReset => SdkError::DispatchFailure("connection reset by peer".into()),
        other => SdkError::ServiceError(GetItemError::Unhandled {
            code: other.label().into(),
            status: 400,
        }),
    }
}

/// The client, configured as the SDK is: an operation timeout and the standard retry mode
/// (3 attempts, full-jitter exponential backoff from 50 ms, capped at 20 s).
#[derive(Clone, Debug)]
pub struct Client {
    operation_timeout: Duration,
    max_attempts: u32,
}

impl Client {
    /// `aws_sdk_dynamodb::Client::from_conf(..)` with `timeout_config` and `retry_config`.
    pub fn new(operation_timeout: Duration) -> Self {
        Self {
            operation_timeout,
            max_attempts: 3,
        }
    }

    /// Starts a `GetItem` request.
    pub fn get_item(&self) -> GetItem<'_> {
        GetItem {
            client: self,
            table: String::new(),
            key: 0,
        }
    }
}

/// A `GetItem` request being built (the SDK's fluent builder).
#[derive(Debug)]
pub struct GetItem<'c> {
    client: &'c Client,
    table: String,
    key: u32,
}

impl GetItem<'_> {
    /// The table.
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The item's key.
    pub fn key(mut self, key: u32) -> Self {
        self.key = key;
        self
    }

    /// Sends it: attempts under one operation timeout, retried by the standard mode. The
    /// invocation stands for the SDK's HTTP connector, which chaos-aws wraps in production.
    pub async fn send(self, invocation: &Invocation) -> Result<u64, SdkError<GetItemError>> {
        let attempts = async {
            let mut rng = invocation.rng();
            let mut attempt = 0;
            loop {
                let result = match invocation.call(GET_PRICE).await {
                    Ok(()) => {
                        tokio::time::sleep(SERVICE_TIME).await;
                        Ok(u64::from(self.key) * 100 + 99)
                    }
                    Err(injected) => Err(as_dynamodb_error(&injected.error_kind())),
                };
                attempt += 1;
                match result {
                    Err(error) if error.is_retryable() && attempt < self.client.max_attempts => {
                        let ceiling = 50u64.saturating_mul(1 << attempt).min(20_000);
                        let backoff = rng.random_range(0..=ceiling);
                        tokio::time::sleep(Duration::from_millis(backoff)).await;
                    }
                    other => return other,
                }
            }
        };
        tokio::time::timeout(self.client.operation_timeout, attempts)
            .await
            .unwrap_or(Err(SdkError::TimeoutError))
    }
}

/// The handler's error, read by the harness as one of chaos-core's kinds.
#[derive(Debug)]
pub struct HandlerFailure(pub SdkError<GetItemError>);

impl HandlerError for HandlerFailure {
    fn error_kind(&self) -> ErrorKind {
        match &self.0 {
            SdkError::ServiceError(GetItemError::ProvisionedThroughputExceededException) => {
                ErrorKind::Throttle
            }
            SdkError::ServiceError(GetItemError::InternalServerError) => {
                ErrorKind::ServerError { status: 500 }
            }
            SdkError::ServiceError(GetItemError::Unhandled { status, .. }) if *status >= 500 => {
                ErrorKind::ServerError { status: *status }
            }
            SdkError::ServiceError(GetItemError::Unhandled { code, .. }) => ErrorKind::Custom {
                name: code.clone(),
                message: "unhandled service error".into(),
            },
            SdkError::TimeoutError => ErrorKind::Timeout,
            SdkError::DispatchFailure(_) => ErrorKind::ConnectionReset,
        }
    }
}

/// The handler: reads the price with an operation timeout that fits in what is left of the
/// invocation (less 100 ms to answer), and serves a default price when DynamoDB fails.
pub async fn price_handler(invocation: Invocation) -> Result<Served, HandlerFailure> {
    let budget = invocation
        .deadline()
        .remaining()
        .saturating_sub(Duration::from_millis(100));
    let client = Client::new(budget.min(Duration::from_secs(2)));
    let item = invocation.index() % 50;
    match client
        .get_item()
        .table_name("prices")
        .key(item)
        .send(&invocation)
        .await
    {
        Ok(_price) => Ok(Served::Primary),
        // Throttles, 5xx, timeouts and resets: the list price is a fine answer.
        Err(error) if error.is_retryable() => Ok(Served::Fallback),
        Err(error) => Err(HandlerFailure(error)),
    }
}
