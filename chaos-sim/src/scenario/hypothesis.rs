//! The `[hypothesis]` table: bounds on success rate, throttle rate, cost and latency percentiles.

use super::*;

use super::convert::fail;
use super::raw::parse_duration_value;

pub(super) const HYPOTHESIS_KEYS: &[&str] = &[
    "success_rate",
    "throttle_rate",
    "cost_usd",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "latency_p99_9",
    "slow_rate",
    "recovery_time",
];

pub(super) fn convert_hypothesis(
    raw: BTreeMap<String, Spanned<toml::Value>>,
    spans: &mut Spans,
) -> Result<Hypothesis, Located> {
    let mut h = Hypothesis::default();
    for (key, value) in raw {
        let path = format!("hypothesis.{key}");
        spans.record(&path, value.span());
        let value = value.into_inner();
        match key.as_str() {
            "success_rate" => h.success_rate_at_least = Some(bound_ratio(&path, &value, ">=")?),
            "throttle_rate" => h.throttle_rate_at_most = Some(bound_ratio(&path, &value, "<=")?),
            "cost_usd" => {
                let text = bound_text(&path, &value, "<=")?;
                let amount = text.trim_start_matches('$').trim();
                let dollars = amount
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| {
                        fail(
                            &path,
                            format!(
                                "expected dollars of at least 0 like \"<= 5.00\", found `{text}`"
                            ),
                        )
                    })?;
                h.cost_at_most_usd = Some(dollars);
            }
            "slow_rate" => {
                let bounds = match &value {
                    toml::Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for (i, bound) in bounds.into_iter().enumerate() {
                    let at = if matches!(value, toml::Value::Array(_)) {
                        format!("{path}[{i}]")
                    } else {
                        path.clone()
                    };
                    h.slow_rate_at_most.push(slow_rate(&at, bound)?);
                }
            }
            "recovery_time" => {
                let text = bound_text(&path, &value, "<=")?;
                let bound = parse_duration_value(text).map_err(|m| fail(&path, m))?;
                h.recovery_time_at_most = Some(bound);
            }
            k if k.starts_with("latency_p") => {
                let pct: f64 = k["latency_p".len()..]
                    .replace('_', ".")
                    .parse()
                    .map_err(|_| {
                        fail(
                            &path,
                            "expected a key like latency_p50, latency_p99 or latency_p99_9",
                        )
                    })?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(fail(&path, "the percentile must be in (0, 100]"));
                }
                let text = bound_text(&path, &value, "<=")?;
                let bound = parse_duration_value(text).map_err(|m| fail(&path, m))?;
                h.latency_at_most.push((pct / 100.0, bound));
            }
            other => {
                let hint = closest(other, HYPOTHESIS_KEYS.iter().copied())
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                return Err(fail(
                    &path,
                    format!(
                        "unknown hypothesis `{other}`, expected one of {}{hint}",
                        HYPOTHESIS_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    h.slow_rate_at_most.sort_by_key(|b| b.0);
    h.latency_at_most
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    Ok(h)
}

const SLOW_RATE_FORM: &str =
    "a table like { over = \"1s\", at_most = \"1%\" } (or an array of them)";

/// One `{ over = "1s", at_most = "1%" }` bound.
fn slow_rate(path: &str, value: &toml::Value) -> Result<(Duration, f64), Located> {
    let toml::Value::Table(table) = value else {
        return Err(fail(path, format!("expected {SLOW_RATE_FORM}")));
    };
    if let Some(other) = table.keys().find(|k| *k != "over" && *k != "at_most") {
        return Err(fail(
            format!("{path}.{other}"),
            format!("unknown key `{other}`, expected `over` and `at_most` in {SLOW_RATE_FORM}"),
        ));
    }
    let over = match table.get("over") {
        Some(toml::Value::String(text)) => {
            parse_duration_value(text).map_err(|m| fail(format!("{path}.over"), m))?
        }
        Some(_) => {
            return Err(fail(
                format!("{path}.over"),
                "expected a latency threshold like \"1s\" or \"250ms\"",
            ));
        }
        None => {
            return Err(fail(
                path,
                format!("missing `over` (the latency threshold) in {SLOW_RATE_FORM}"),
            ));
        }
    };
    if over.is_zero() {
        return Err(fail(
            format!("{path}.over"),
            "the threshold must be above 0 (every answer takes some time)",
        ));
    }
    let Some(at_most) = table.get("at_most") else {
        return Err(fail(
            path,
            format!("missing `at_most` (the largest slow fraction) in {SLOW_RATE_FORM}"),
        ));
    };
    let fraction = bound_ratio(&format!("{path}.at_most"), at_most, "<=")?;
    Ok((over, fraction))
}

/// The text after the operator, which must be `op` when present.
pub(super) fn bound_text<'v>(
    path: &str,
    value: &'v toml::Value,
    op: &str,
) -> Result<&'v str, Located> {
    let text = match value {
        toml::Value::String(s) => s.trim(),
        _ => {
            return Err(fail(path, format!("expected a string like \"{op} ...\"")));
        }
    };
    let other = if op == ">=" { "<=" } else { ">=" };
    if text.starts_with(other) {
        return Err(fail(
            path,
            format!("this bound can only be `{op}` (found `{other}`)"),
        ));
    }
    Ok(text.strip_prefix(op).unwrap_or(text).trim())
}

/// A ratio written as `">= 99.9%"`, `">= 0.999"` or a bare number.
pub(super) fn bound_ratio(path: &str, value: &toml::Value, op: &str) -> Result<f64, Located> {
    let ratio = match value {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        _ => {
            let text = bound_text(path, value, op)?;
            let (number, scale) = match text.strip_suffix('%') {
                Some(n) => (n.trim(), 0.01),
                None => (text, 1.0),
            };
            number.parse::<f64>().map_err(|_| {
                fail(
                    path,
                    format!(
                        "expected a ratio like \"{op} 99.9%\" or \"{op} 0.999\", found `{text}`"
                    ),
                )
            })? * scale
        }
    };
    if !(0.0..=1.0).contains(&ratio) {
        return Err(fail(
            path,
            format!("a ratio must be within 0..1 (0%..100%), found {ratio}"),
        ));
    }
    Ok(ratio)
}
