//! CloudWatch Embedded Metric Format: one JSON line per injection, made from chaos-core's
//! `injected fault` tracing events, so every injector (the Lambda layer, the SDK wrapper)
//! is counted without a second path through the decision.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The span the Lambda layer opens around each invocation; its `function` and `dry_run`
/// fields reach the metric lines.
pub(crate) const INVOCATION_SPAN: &str = "chaos_aws.invocation";

/// The metric namespace unless set.
pub const DEFAULT_NAMESPACE: &str = "Chaos";

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// A `tracing_subscriber` layer writing one CloudWatch Embedded Metric Format line per
/// injection: metric `Injections` (`WouldInject` in dry run), count 1, dimensions
/// `function`, `rule`, `fault`; `site` and `dry_run` as properties. In Lambda, lines on
/// standard output become metrics with no API call.
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(chaos_aws::EmfLayer::stdout());
/// tracing::subscriber::set_global_default(subscriber)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EmfLayer {
    namespace: String,
    default_function: String,
    sink: Sink,
}

impl fmt::Debug for EmfLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmfLayer")
            .field("namespace", &self.namespace)
            .field("default_function", &self.default_function)
            .finish_non_exhaustive()
    }
}

impl EmfLayer {
    /// Lines go to standard output (where Lambda's log agent extracts them).
    pub fn stdout() -> Self {
        Self::with_sink(|line| {
            // A closed stdout must not crash the function: the metric is lost, not the call.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        })
    }

    /// Lines go to `sink` (one call per line, without the newline).
    pub fn with_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            default_function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            sink: Arc::new(sink),
        }
    }

    /// The metric namespace ([`DEFAULT_NAMESPACE`] unless set).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The `function` dimension outside an invocation span (the SDK wrapper's calls);
    /// `AWS_LAMBDA_FUNCTION_NAME` unless set, else the call's site.
    pub fn function(mut self, function: impl Into<String>) -> Self {
        self.default_function = function.into();
        self
    }

    /// The metric line for one injection.
    fn line(&self, function: &str, dry_run: bool, injected: &Injected) -> String {
        let metric = if dry_run { "WouldInject" } else { "Injections" };
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut line = json!({
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["function", "rule", "fault"]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }],
            },
            "function": function,
            "rule": injected.rule,
            "fault": injected.fault,
            "site": injected.site,
            "dry_run": dry_run,
        });
        line[metric] = json!(1);
        line.to_string()
    }
}

/// The fields of an invocation span, kept in its extensions.
#[derive(Default)]
struct InvocationFields {
    function: String,
    dry_run: bool,
}

impl Visit for InvocationFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "function" {
            value.clone_into(&mut self.function);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "dry_run" {
            self.dry_run = value;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "function" {
            self.function = format!("{value:?}");
        }
    }
}

/// The fields of chaos-core's `injected fault` event.
#[derive(Default)]
struct Injected {
    rule: String,
    fault: String,
    site: String,
    message: bool,
}

impl Visit for Injected {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "rule" => value.clone_into(&mut self.rule),
            "fault" => value.clone_into(&mut self.fault),
            "site" => value.clone_into(&mut self.site),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}") == "injected fault";
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for EmfLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut fields = InvocationFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "chaos::inject" {
            return;
        }
        let mut injected = Injected::default();
        event.record(&mut injected);
        if !injected.message || injected.rule.is_empty() {
            return;
        }
        let mut function = None;
        let mut dry_run = false;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(fields) = span.extensions().get::<InvocationFields>() {
                    function = Some(fields.function.clone());
                    dry_run = fields.dry_run;
                    break;
                }
            }
        }
        let function = function
            .filter(|f| !f.is_empty())
            .or_else(|| (!self.default_function.is_empty()).then(|| self.default_function.clone()))
            .unwrap_or_else(|| injected.site.clone());
        (self.sink)(&self.line(&function, dry_run, &injected));
    }
}
