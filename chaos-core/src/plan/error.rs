//! A plan could not be read or is invalid.

/// A plan could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not a well-formed plan (syntax, unknown field, wrong type, bad duration or
    /// latency). The message carries the line and column.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `"<toml>"` / `"<json>"` for text.
        origin: String,
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
    /// An injector guardrail is invalid.
    #[error("guardrail `{field}`: {message}")]
    Guardrail {
        /// The guardrail at fault, such as `max_injections`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The plan file could not be read.
    #[error("cannot read plan file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
}
