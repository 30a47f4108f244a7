//! Readers for the configurations of the Lambda chaos tools teams migrate from, so a team
//! keeps its SSM parameter or AppConfig profile and gets a chaos-core plan:
//!
//! * failure-lambda 1.x: one object keyed by mode (`latency`, `timeout`, `statuscode`,
//!   `exception`, ...), each `{"enabled", "percentage" (0 to 100, default 100), "match": [..],
//!   mode fields}`; its pre-1.0 development form with `rate` (0 to 1) in place of
//!   `percentage` is read too;
//! * failure-lambda 0.x: one mode at a time, `{"isEnabled", "failureMode", "rate", "minLatency",
//!   "maxLatency", "exceptionMsg", "statusCode", ...}`;
//! * chaos_lambda (Python): `{"is_enabled", "fault_type": "latency" | "exception" |
//!   "status_code", "delay", "exception_msg", "error_code", "rate"}`.
//!
//! Each enabled mode becomes one rule rolling independently, in the tool's order (latency,
//! timeout, status code, exception), so first failure wins as it did. Modes chaos-aws cannot
//! inject (failure-lambda's `diskspace`, `denylist`, `corruption`) are left out with a
//! [`MigrationWarning`] naming them; a disabled mode is simply absent.

#[cfg(test)]
mod tests;

use std::fmt;

use chaos_core::{CompiledPlan, PlanError};
use serde_json::{Map, Value, json};

/// The configuration formats [`migrate`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceFormat {
    /// failure-lambda 1.x: per-mode flags.
    FailureLambdaFlags,
    /// failure-lambda 0.x: a single `failureMode`.
    FailureLambdaLegacy,
    /// chaos_lambda's SSM parameter.
    ChaosLambda,
}

impl SourceFormat {
    /// Recognises a format by its keys: `failureMode` or `isEnabled` (failure-lambda 0.x),
    /// `fault_type` or `is_enabled` (chaos_lambda), a failure-lambda mode name
    /// (failure-lambda 1.x). `None`: none of them, such as a chaos-core plan.
    pub fn detect(config: &Value) -> Option<Self> {
        let object = config.as_object()?;
        if object.contains_key("failureMode") || object.contains_key("isEnabled") {
            Some(Self::FailureLambdaLegacy)
        } else if object.contains_key("fault_type") || object.contains_key("is_enabled") {
            Some(Self::ChaosLambda)
        } else if !object.is_empty() && object.keys().all(|key| MODES.contains(&key.as_str())) {
            Some(Self::FailureLambdaFlags)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::FailureLambdaFlags => "failure-lambda 1.x",
            Self::FailureLambdaLegacy => "failure-lambda 0.x",
            Self::ChaosLambda => "chaos_lambda",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// failure-lambda's modes, in the order it applies them.
const MODES: [&str; 7] = [
    "latency",
    "timeout",
    "diskspace",
    "denylist",
    "statuscode",
    "exception",
    "corruption",
];

/// What a migration produced.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Migrated {
    /// The format read.
    pub format: SourceFormat,
    /// The plan: one rule per enabled mode (none when the tool was disabled).
    pub plan: CompiledPlan,
    /// Whether the tool ran the handler before answering a status code (chaos_lambda) rather
    /// than skipping it (failure-lambda): set the Lambda layer's `StatusMode` to match.
    pub status_runs_handler: bool,
    /// What was left out.
    pub warnings: Vec<MigrationWarning>,
}

/// A part of the configuration the plan does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationWarning {
    /// The format's field or mode, such as `diskspace`.
    pub field: String,
    /// Why it was left out.
    pub message: String,
}

impl fmt::Display for MigrationWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// A configuration that could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// The JSON is none of the formats read here.
    #[error(
        "not a failure-lambda or chaos_lambda configuration: expected `failureMode` (failure-lambda \
         0.x), `fault_type` (chaos_lambda) or failure-lambda 1.x mode keys (`latency`, \
         `exception`, `statuscode`, ...)"
    )]
    UnknownFormat,
    /// A field has the wrong type or value.
    #[error("{format}: field `{field}`: {message}")]
    Field {
        /// The format being read.
        format: SourceFormat,
        /// The field, such as `latency.min_latency`.
        field: String,
        /// What was expected, and the fix.
        message: String,
    },
    /// The plan built from it did not compile (a bad regex in a `match`).
    #[error("{format}: {error}")]
    Plan {
        /// The format being read.
        format: SourceFormat,
        /// The plan's error, naming the rule and field.
        error: PlanError,
    },
}

/// Reads a configuration in any of the [`SourceFormat`]s (detected by its keys) into a plan
/// with `seed` (those tools roll with an unseeded random generator: the seed makes the
/// migrated experiment replayable).
pub fn migrate(text: &str, seed: u64) -> Result<Migrated, MigrateError> {
    let config: Value =
        serde_json::from_str(text).map_err(|error| MigrateError::Json(error.to_string()))?;
    let format = SourceFormat::detect(&config).ok_or(MigrateError::UnknownFormat)?;
    migrate_as(format, &config, seed)
}

/// Reads `config` as `format`.
pub fn migrate_as(
    format: SourceFormat,
    config: &Value,
    seed: u64,
) -> Result<Migrated, MigrateError> {
    let object = config.as_object().ok_or_else(|| MigrateError::Field {
        format,
        field: String::new(),
        message: "expected a JSON object".to_owned(),
    })?;
    let mut reader = Reader {
        format,
        rules: Vec::new(),
        warnings: Vec::new(),
    };
    match format {
        SourceFormat::FailureLambdaFlags => reader.flags(object)?,
        SourceFormat::FailureLambdaLegacy => reader.legacy(object)?,
        SourceFormat::ChaosLambda => reader.chaos_lambda(object)?,
    }
    for warning in &reader.warnings {
        tracing::warn!(target: "chaos_aws", %format, %warning, "chaos: migrated configuration: left out");
    }
    let plan = json!({ "seed": seed, "rules": reader.rules });
    let plan = CompiledPlan::from_json_str(&plan.to_string())
        .map_err(|error| MigrateError::Plan { format, error })?;
    Ok(Migrated {
        format,
        plan,
        status_runs_handler: format == SourceFormat::ChaosLambda,
        warnings: reader.warnings,
    })
}

struct Reader {
    format: SourceFormat,
    rules: Vec<Value>,
    warnings: Vec<MigrationWarning>,
}

impl Reader {
    fn error(&self, field: &str, message: impl Into<String>) -> MigrateError {
        MigrateError::Field {
            format: self.format,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.warnings.push(MigrationWarning {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn bool(
        &self,
        object: &Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<bool, MigrateError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(value)) => Ok(*value),
            Some(other) => Err(self.error(field, format!("expected true or false, found {other}"))),
        }
    }

    fn number(
        &self,
        object: &Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<f64>, MigrateError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(self.error(field, format!("expected a number of at least 0, found {n}"))),
            },
            Some(other) => Err(self.error(field, format!("expected a number, found {other}"))),
        }
    }

    fn text(
        &self,
        object: &Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, MigrateError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(field, format!("expected a string, found {other}"))),
        }
    }

    /// A probability from a rate (0 to 1), the default 1.
    fn rate(
        &self,
        object: &Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<f64, MigrateError> {
        let rate = self.number(object, key, field)?.unwrap_or(1.0);
        if rate > 1.0 {
            return Err(self.error(field, format!("expected a rate from 0 to 1, found {rate}")));
        }
        Ok(rate)
    }

    fn latency(
        &self,
        min_ms: Option<f64>,
        max_ms: Option<f64>,
        field: &str,
    ) -> Result<Value, MigrateError> {
        let (Some(low), Some(high)) = (min_ms, max_ms) else {
            return Err(self.error(
                field,
                "a latency needs both its minimum and maximum, in milliseconds",
            ));
        };
        if low > high {
            return Err(self.error(
                field,
                format!("the minimum ({low} ms) is above the maximum ({high} ms); swap them"),
            ));
        }
        let ms = |v: f64| format!("{}us", (v * 1000.0).round());
        Ok(if low == high {
            json!({ "latency": ms(low) })
        } else {
            json!({ "latency": { "uniform": { "low": ms(low), "high": ms(high) } } })
        })
    }

    fn status(&self, code: Option<f64>, field: &str) -> Result<Value, MigrateError> {
        match code {
            Some(code) if code.fract() == 0.0 && (100.0..=599.0).contains(&code) => {
                Ok(json!({ "status": code as u16 }))
            }
            Some(code) => Err(self.error(
                field,
                format!("expected an HTTP status from 100 to 599, found {code}"),
            )),
            None => Err(self.error(field, "a status code fault needs its status, such as 502")),
        }
    }

    fn exception(message: Option<String>) -> Value {
        json!({ "error": { "custom": {
            "name": "InjectedException",
            "message": message.unwrap_or_else(|| "Injected exception".to_owned()),
        } } })
    }

    fn push(&mut self, name: &str, fault: Value, probability: f64, event: Vec<Value>) {
        let mut rule = json!({ "name": name, "fault": fault, "probability": probability });
        if !event.is_empty() {
            rule["match"] = json!({ "event": event });
        }
        self.rules.push(rule);
    }

    /// failure-lambda 1.x.
    fn flags(&mut self, object: &Map<String, Value>) -> Result<(), MigrateError> {
        for mode in MODES {
            let Some(flag) = object.get(mode) else {
                continue;
            };
            let flag = flag.as_object().ok_or_else(|| {
                self.error(mode, "expected an object such as {\"enabled\": true}")
            })?;
            if !self.bool(flag, "enabled", &format!("{mode}.enabled"))? {
                continue;
            }
            let probability = match (flag.get("percentage"), flag.get("rate")) {
                (Some(_), _) => {
                    let field = format!("{mode}.percentage");
                    let percentage = self.number(flag, "percentage", &field)?.unwrap_or(100.0);
                    if percentage > 100.0 {
                        return Err(
                            self.error(&field, format!("expected 0 to 100, found {percentage}"))
                        );
                    }
                    percentage / 100.0
                }
                (None, Some(_)) => self.rate(flag, "rate", &format!("{mode}.rate"))?,
                (None, None) => 1.0,
            };
            let event = self.conditions(flag, mode)?;
            let field = |name: &str| format!("{mode}.{name}");
            let fault = match mode {
                "latency" => self.latency(
                    self.number(flag, "min_latency", &field("min_latency"))?,
                    self.number(flag, "max_latency", &field("max_latency"))?,
                    &field("min_latency"),
                )?,
                "timeout" => {
                    let buffer = self
                        .number(flag, "timeout_buffer_ms", &field("timeout_buffer_ms"))?
                        .unwrap_or(0.0);
                    json!({ "hang": { "buffer": format!("{}us", (buffer * 1000.0).round()) } })
                }
                "statuscode" => self.status(
                    self.number(flag, "status_code", &field("status_code"))?,
                    &field("status_code"),
                )?,
                "exception" => {
                    Self::exception(self.text(flag, "exception_msg", &field("exception_msg"))?)
                }
                unsupported => {
                    self.warn(unsupported, unsupported_reason(unsupported));
                    continue;
                }
            };
            self.push(&format!("failure-lambda/{mode}"), fault, probability, event);
        }
        Ok(())
    }

    /// failure-lambda 1.x `match` conditions: dot paths become JSON pointers.
    fn conditions(
        &self,
        flag: &Map<String, Value>,
        mode: &str,
    ) -> Result<Vec<Value>, MigrateError> {
        let Some(list) = flag.get("match") else {
            return Ok(Vec::new());
        };
        let list = list.as_array().ok_or_else(|| {
            self.error(
                &format!("{mode}.match"),
                "expected a list of {\"path\", \"value\", \"operator\"}",
            )
        })?;
        list.iter()
            .enumerate()
            .map(|(index, condition)| {
                let field = format!("{mode}.match[{index}]");
                let condition = condition.as_object().ok_or_else(|| self.error(&field, "expected an object"))?;
                let path = self.text(condition, "path", &format!("{field}.path"))?
                    .ok_or_else(|| self.error(&format!("{field}.path"), "a condition needs a dot-separated path, such as requestContext.http.method"))?;
                let pointer: String = path
                    .split('.')
                    .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
                    .collect();
                let operator = self.text(condition, "operator", &format!("{field}.operator"))?.unwrap_or_else(|| "eq".to_owned());
                let value = self.text(condition, "value", &format!("{field}.value"));
                let value = |this: &Self| -> Result<String, MigrateError> {
                    value.clone()?.ok_or_else(|| this.error(&format!("{field}.value"), format!("operator `{operator}` needs a value")))
                };
                Ok(match operator.as_str() {
                    "eq" => json!({ "path": pointer, "equals": value(self)? }),
                    "exists" => json!({ "path": pointer, "exists": true }),
                    "startsWith" => json!({ "path": pointer, "prefix": value(self)? }),
                    "regex" => json!({ "path": pointer, "regex": value(self)? }),
                    other => return Err(self.error(&format!("{field}.operator"), format!("unknown operator `{other}`; expected eq, exists, startsWith or regex"))),
                })
            })
            .collect()
    }

    /// failure-lambda 0.x.
    fn legacy(&mut self, object: &Map<String, Value>) -> Result<(), MigrateError> {
        if !self.bool(object, "isEnabled", "isEnabled")? {
            return Ok(());
        }
        let mode = self
            .text(object, "failureMode", "failureMode")?
            .ok_or_else(|| {
                self.error(
                    "failureMode",
                    "expected one of latency, exception, statuscode, diskspace, denylist",
                )
            })?;
        let probability = self.rate(object, "rate", "rate")?;
        let fault = match mode.as_str() {
            "latency" => self.latency(
                self.number(object, "minLatency", "minLatency")?,
                self.number(object, "maxLatency", "maxLatency")?,
                "minLatency",
            )?,
            "exception" => Self::exception(self.text(object, "exceptionMsg", "exceptionMsg")?),
            "statuscode" => self.status(self.number(object, "statusCode", "statusCode")?, "statusCode")?,
            "diskspace" | "denylist" => {
                self.warn(&mode, unsupported_reason(&mode));
                return Ok(());
            }
            other => return Err(self.error("failureMode", format!("unknown mode `{other}`; expected latency, exception, statuscode, diskspace or denylist"))),
        };
        self.push(
            &format!("failure-lambda/{mode}"),
            fault,
            probability,
            Vec::new(),
        );
        Ok(())
    }

    /// chaos_lambda.
    fn chaos_lambda(&mut self, object: &Map<String, Value>) -> Result<(), MigrateError> {
        if !self.bool(object, "is_enabled", "is_enabled")? {
            return Ok(());
        }
        let kind = self
            .text(object, "fault_type", "fault_type")?
            .ok_or_else(|| {
                self.error("fault_type", "expected latency, exception or status_code")
            })?;
        let probability = self.rate(object, "rate", "rate")?;
        let fault = match kind.as_str() {
            "latency" => {
                let delay = self.number(object, "delay", "delay")?;
                self.latency(delay, delay, "delay")?
            }
            "exception" => Self::exception(self.text(object, "exception_msg", "exception_msg")?),
            "status_code" => self.status(
                self.number(object, "error_code", "error_code")?,
                "error_code",
            )?,
            other => {
                return Err(self.error(
                    "fault_type",
                    format!(
                        "unknown fault type `{other}`; expected latency, exception or status_code"
                    ),
                ));
            }
        };
        self.push(
            &format!("chaos_lambda/{kind}"),
            fault,
            probability,
            Vec::new(),
        );
        Ok(())
    }
}

fn unsupported_reason(mode: &str) -> &'static str {
    match mode {
        "diskspace" => "filling /tmp is not a fault chaos-aws injects; the mode is left out",
        "denylist" => {
            "blocking hosts is not injected by the handler layer; fault the calls themselves \
             with ChaosHttpClient (`error = \"connection_reset\"` on the service); the mode is \
             left out"
        }
        "corruption" => "response corruption is not supported yet; the mode is left out",
        _ => "not supported; left out",
    }
}
