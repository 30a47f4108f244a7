//! The CloudWatch alarm stop condition: polled in the background, read with one atomic load.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use tokio::time::Instant;

/// How often [`AlarmStop`] reads its alarm unless set: every 10 seconds, a tenth of the
/// shortest standard alarm period.
pub const DEFAULT_ALARM_POLL: Duration = Duration::from_secs(10);

/// The alarm's state as the last poll read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlarmState {
    /// Not polled yet: injection goes ahead until the first poll says otherwise.
    Unknown,
    /// `OK`: inject.
    Ok,
    /// `INSUFFICIENT_DATA` (a new alarm, or a metric with no data): inject.
    InsufficientData,
    /// `ALARM`: stop injecting.
    Alarm,
    /// The alarm could not be read (missing, no permission, network): stop injecting, since a
    /// guardrail nobody can read is no guardrail.
    Unreadable,
}

impl AlarmState {
    fn stops(self) -> bool {
        matches!(self, Self::Alarm | Self::Unreadable)
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Ok => 1,
            Self::InsufficientData => 2,
            Self::Alarm => 3,
            Self::Unreadable => 4,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Ok,
            2 => Self::InsufficientData,
            3 => Self::Alarm,
            4 => Self::Unreadable,
            _ => Self::Unknown,
        }
    }
}

/// Reads an alarm's state: the AWS SDK's CloudWatch client, or a stand-in (a test
/// emulator speaking another protocol, a cached reader shared by several functions).
pub trait AlarmReader: Send + Sync + 'static {
    /// The alarm's state (`Ok`, `InsufficientData` or `Alarm`), or why it could not be read.
    fn read<'a>(
        &'a self,
        alarm_name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AlarmState, String>> + Send + 'a>>;
}

/// `DescribeAlarms` with the SDK. (The SDK speaks CloudWatch's Smithy RPC v2 CBOR protocol,
/// which moto does not serve; the moto test reads through the JSON protocol instead.)
impl AlarmReader for aws_sdk_cloudwatch::Client {
    fn read<'a>(
        &'a self,
        alarm_name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AlarmState, String>> + Send + 'a>> {
        Box::pin(async move {
            let output = self
                .describe_alarms()
                .alarm_names(alarm_name)
                .send()
                .await
                .map_err(|error| {
                    format!(
                        "{}",
                        aws_smithy_types::error::display::DisplayErrorContext(&error)
                    )
                })?;
            match output.metric_alarms().first().and_then(|a| a.state_value()) {
                Some(StateValue::Alarm) => Ok(AlarmState::Alarm),
                Some(StateValue::Ok) => Ok(AlarmState::Ok),
                Some(StateValue::InsufficientData) => Ok(AlarmState::InsufficientData),
                Some(other) => Err(format!("unknown alarm state {other}")),
                None => Err(format!("no metric alarm named {alarm_name}")),
            }
        })
    }
}

/// Stops injection while a CloudWatch alarm is in ALARM (the stop condition of an
/// experiment). The alarm is read with `DescribeAlarms` in the background once the poll
/// interval has passed ([`refresh_if_stale`](Self::refresh_if_stale), called by the guard on
/// each invocation); an invocation never waits on it. Cheap to clone.
#[derive(Clone)]
pub struct AlarmStop {
    shared: Arc<Shared>,
}

struct Shared {
    reader: Box<dyn AlarmReader>,
    alarm_name: String,
    interval: Duration,
    started: Instant,
    due_at: AtomicU64,
    refreshing: AtomicBool,
    state: AtomicU8,
}

impl fmt::Debug for AlarmStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlarmStop")
            .field("alarm_name", &self.shared.alarm_name)
            .field("interval", &self.shared.interval)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl AlarmStop {
    /// Watches `alarm_name` with `reader` (an `aws_sdk_cloudwatch::Client`, not wrapped in
    /// chaos), polling every [`DEFAULT_ALARM_POLL`]. Must be created inside a tokio runtime.
    pub fn new(reader: impl AlarmReader, alarm_name: impl Into<String>) -> Self {
        Self::with_interval(reader, alarm_name, DEFAULT_ALARM_POLL)
    }

    /// As [`new`](Self::new), polling every `interval`.
    pub fn with_interval(
        reader: impl AlarmReader,
        alarm_name: impl Into<String>,
        interval: Duration,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                reader: Box::new(reader),
                alarm_name: alarm_name.into(),
                interval,
                started: Instant::now(),
                due_at: AtomicU64::new(0),
                refreshing: AtomicBool::new(false),
                state: AtomicU8::new(AlarmState::Unknown.to_u8()),
            }),
        }
    }

    /// The alarm's state as last read.
    pub fn state(&self) -> AlarmState {
        AlarmState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    /// Whether injection is stopped: the alarm is in ALARM or could not be read.
    #[inline]
    pub fn is_stopping(&self) -> bool {
        self.state().stops()
    }

    /// Starts one background poll when the interval has passed; returns at once. Outside a
    /// tokio runtime it does nothing.
    pub fn refresh_if_stale(&self) {
        let now = nanos(self.shared.started.elapsed());
        if now < self.shared.due_at.load(Ordering::Acquire)
            || self.shared.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.refreshing.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move { this.poll_claimed().await });
    }

    /// Reads the alarm now and returns its state (at start-up, or from a test).
    pub async fn poll(&self) -> AlarmState {
        while self.shared.refreshing.swap(true, Ordering::AcqRel) {
            tokio::task::yield_now().await;
        }
        self.poll_claimed().await
    }

    async fn poll_claimed(&self) -> AlarmState {
        let shared = &self.shared;
        let state = match shared.reader.read(&shared.alarm_name).await {
            Ok(state @ (AlarmState::Ok | AlarmState::InsufficientData | AlarmState::Alarm)) => {
                state
            }
            Ok(other) => {
                self.unreadable(format!("the reader answered {other:?}"));
                AlarmState::Unreadable
            }
            Err(reason) => {
                self.unreadable(reason);
                AlarmState::Unreadable
            }
        };
        let previous = AlarmState::from_u8(shared.state.swap(state.to_u8(), Ordering::AcqRel));
        if state == AlarmState::Alarm && previous != AlarmState::Alarm {
            tracing::warn!(
                target: "chaos_aws",
                alarm = %shared.alarm_name,
                "chaos: stop alarm is in ALARM; injecting nothing until it clears"
            );
        } else if !state.stops() && previous.stops() {
            tracing::info!(
                target: "chaos_aws",
                alarm = %shared.alarm_name,
                "chaos: stop alarm cleared; injection resumes"
            );
        }
        let due = nanos(shared.started.elapsed()).saturating_add(nanos(shared.interval));
        shared.due_at.store(due, Ordering::Release);
        shared.refreshing.store(false, Ordering::Release);
        state
    }

    fn unreadable(&self, reason: String) {
        if self.state() != AlarmState::Unreadable {
            tracing::warn!(
                target: "chaos_aws",
                alarm = %self.shared.alarm_name,
                error = %reason,
                "chaos: stop alarm cannot be read; injecting nothing until it can"
            );
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
