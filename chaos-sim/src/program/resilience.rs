//! Checks on the retry and shedding settings: time-bounded retries, retry budgets, and a
//! server's discipline and controlled delay. Each error names the field and the fix.

use super::*;

/// The most hedges per try of an `until_success` call: a try's attempts (the first and its
/// hedges) must fit the 64 attempt bits the engine reuses from try to try.
const MAX_HEDGES_UNTIL_SUCCESS: u32 = 62;

/// Checks a call's retry policy and retry budget (`path` is the call step's).
pub(super) fn validate_retry(
    path: &str,
    retry: &Retry,
    budget: Option<&RetryBudget>,
    hedges: u32,
) -> Result<(), ModelError> {
    if let Retry::UntilSuccess { within, .. } = retry {
        if let RetryWithin::Elapsed(d) = within
            && (d.is_zero() || *d > MAX_DURATION)
        {
            return Err(invalid(
                format!("{path}.retry.within"),
                "expected a time above 0 (e.g. \"10s\"), or \"deadline\" to retry until the \
                 caller's deadline",
            ));
        }
        if hedges > MAX_HEDGES_UNTIL_SUCCESS {
            return Err(invalid(
                format!("{path}.hedge.max_extra"),
                format!(
                    "a call that retries `within` a time may hedge at most \
                     {MAX_HEDGES_UNTIL_SUCCESS} times per try, found {hedges}"
                ),
            ));
        }
    }
    let Some(budget) = budget else {
        return Ok(());
    };
    let field = |name: &str| format!("{path}.retry_budget.{name}");
    if *retry == Retry::None {
        return Err(invalid(
            format!("{path}.retry_budget"),
            "a retry budget limits retries and this call makes none: set `retry`, or remove \
             `retry_budget`",
        ));
    }
    match *budget {
        RetryBudget::TokenBucket {
            max_tokens,
            token_ratio,
        } => {
            if !(max_tokens.is_finite() && (0.001..=1000.0).contains(&max_tokens)) {
                return Err(invalid(
                    field("max_tokens"),
                    format!("expected above 0 and at most 1000 (gRPC's range), found {max_tokens}"),
                ));
            }
            if !(token_ratio.is_finite() && token_ratio >= 0.001 && token_ratio <= max_tokens) {
                return Err(invalid(
                    field("token_ratio"),
                    format!(
                        "expected at least 0.001 (gRPC keeps 3 decimals) and at most max_tokens, \
                         found {token_ratio}"
                    ),
                ));
            }
        }
        RetryBudget::Percent {
            percent,
            min_retries_per_s,
            ttl,
        } => {
            if !(percent.is_finite() && (0.0..=10.0).contains(&percent)) {
                return Err(invalid(
                    field("percent"),
                    format!(
                        "expected 0% to 1000% of requests, found {}%",
                        percent * 100.0
                    ),
                ));
            }
            if !(min_retries_per_s.is_finite() && min_retries_per_s >= 0.0) {
                return Err(invalid(
                    field("min_retries_per_s"),
                    format!("expected at least 0 retries per second, found {min_retries_per_s}"),
                ));
            }
            if percent == 0.0 && min_retries_per_s == 0.0 {
                return Err(invalid(
                    format!("{path}.retry_budget"),
                    "`percent` and `min_retries_per_s` are both 0, so the budget refuses every \
                     retry: raise one, or use retry = \"none\"",
                ));
            }
            if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
                return Err(invalid(
                    field("ttl"),
                    "expected a window of 1s to 60s (Finagle's range)",
                ));
            }
        }
    }
    Ok(())
}

/// Checks a server's discipline and controlled delay (`path` is the dependency's).
pub(super) fn validate_server(
    path: &str,
    discipline: Discipline,
    queue_delay: Option<&ControlledDelay>,
) -> Result<(), ModelError> {
    if let Discipline::AdaptiveLifo { standing_queue: 0 } = discipline {
        return Err(invalid(
            format!("{path}.capacity.discipline.standing_queue"),
            "expected at least 1 waiting request (with 0 the server is always LIFO: use \
             discipline = \"lifo\")",
        ));
    }
    if let Some(codel) = queue_delay {
        if codel.target.is_zero() || codel.target > MAX_DURATION {
            return Err(invalid(
                format!("{path}.capacity.queue_delay.target"),
                "expected a target wait above 0 (e.g. \"5ms\")",
            ));
        }
        if codel.interval < codel.target || codel.interval > MAX_DURATION {
            return Err(invalid(
                format!("{path}.capacity.queue_delay.interval"),
                "expected an interval at least as long as the target (e.g. \"100ms\")",
            ));
        }
    }
    Ok(())
}
