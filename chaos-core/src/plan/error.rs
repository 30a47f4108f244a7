//! A plan could not be read or is invalid.

use std::fmt;
use std::path::PathBuf;

/// A plan could not be read or is invalid. Errors of the injector that runs a plan are
/// `InjectorError` (feature `runtime`); this type is about the plan alone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The text is not a well-formed plan (syntax, unknown field, wrong type, bad duration or
    /// latency). The message carries the line and column.
    #[error("{}: {message}", SourceName(path.as_ref(), format))]
    Parse {
        /// The file, or `None` for text given directly.
        path: Option<PathBuf>,
        /// `"toml"` or `"json"`.
        format: &'static str,
        /// What the parser said, with the location.
        message: String,
    },
    /// A rule is well-formed but invalid.
    #[error("rule {index}{} field `rules[{index}].{field}`: {message}", name.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
    Rule {
        /// The rule's index in the plan.
        index: usize,
        /// The rule's name, if it has one.
        name: Option<String>,
        /// The field at fault, such as `probability` or `match.site`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The plan file could not be read.
    #[error("cannot read plan file {}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
}

/// Something in a valid plan that is almost surely a mistake, such as a selector that can
/// never match what its field holds (`operation = "GET /orders/{id}"`: braces are glob
/// alternation there). The plan compiles and runs as written; the warnings are on
/// [`CompiledPlan::warnings`](super::CompiledPlan::warnings), and an injector (feature
/// `runtime`) logs each at `warn` on the `chaos::plan` target when it loads the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {index}{} field `rules[{index}].{field}`: {message}", name.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
pub struct PlanWarning {
    /// The rule's index in the plan.
    pub index: usize,
    /// The rule's name, if it has one.
    pub name: Option<String>,
    /// The field, such as `match.operation`.
    pub field: String,
    /// What is suspicious and how to fix it.
    pub message: String,
}

/// Shows a file's path, or `<toml>` / `<json>` for text given directly.
struct SourceName<'a>(Option<&'a PathBuf>, &'a str);

impl fmt::Display for SourceName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}", path.display()),
            None => write!(f, "<{}>", self.1),
        }
    }
}
