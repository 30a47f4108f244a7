//! Human-readable durations (`"250ms"`, `"2m"`, `"1h 30m"`) for plans and scenario files.
//!
//! Parsing is delegated to [`humantime`], the format the Rust ecosystem already uses for
//! durations in configuration; this module only wraps it in an error that says what was
//! expected and how to fix the input.

use std::time::Duration;

/// A duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; expected a number with a unit, such as \"250ms\", \"2s\", \"1m 30s\""
)]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
    /// Why it was rejected.
    pub reason: String,
}

/// The longest duration a plan, scenario or timeout chain may write: 10 years of 365 days.
/// Time is counted in 64-bit nanoseconds (584 years), so sums of durations from input must not
/// saturate into "never"; nothing in a chaos experiment needs more.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Parses a duration with units, such as `"250ms"`, `"2m"` or `"1h 30m"`.
///
/// A bare number is rejected on purpose: `"5"` could mean seconds or milliseconds; so is a
/// negative duration, and one longer than [`MAX_DURATION`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(chaos_core::duration::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(chaos_core::duration::parse_duration("5").is_err());
/// assert!(chaos_core::duration::parse_duration("-1s").is_err());
/// assert!(chaos_core::duration::parse_duration("584y").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let trimmed = input.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError {
            input: input.to_owned(),
            reason: "durations cannot be negative".to_owned(),
        });
    }
    let duration = humantime::parse_duration(trimmed).map_err(|err| DurationError {
        input: input.to_owned(),
        reason: err.to_string(),
    })?;
    if duration > MAX_DURATION {
        return Err(DurationError {
            input: input.to_owned(),
            reason: "longer than the limit of 3650 days (10 years)".to_owned(),
        });
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it back (`"1s 500ms"`, `"0s"`).
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `#[serde(with = "chaos_core::duration::serde_duration")]` for a [`Duration`] written as text.
pub mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as text, such as `"1s 500ms"`.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*value))
    }

    /// Reads a duration written as text, such as `"250ms"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "chaos_core::duration::serde_duration_opt", default)]` for an optional [`Duration`].
pub mod serde_duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as text, or nothing.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&super::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an optional duration written as text.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| super::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for millis in [0, 1, 250, 1_500, 120_000, 5_400_000] {
            let d = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn rejects_missing_unit_and_negative() {
        let err = parse_duration("5").unwrap_err();
        assert!(
            err.to_string().contains("expected a number with a unit"),
            "{err}"
        );
        assert!(parse_duration("-5ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn the_limit_is_inclusive_and_named_in_the_error() {
        assert_eq!(parse_duration("3650days").unwrap(), MAX_DURATION);
        let err = parse_duration("3650days 1ns").unwrap_err();
        assert!(err.to_string().contains("10 years"), "{err}");
    }
}
