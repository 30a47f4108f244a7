//! Configuration errors: what was wrong, where, and the fix.

use chaos_core::PlanError;

/// A plan or option the wire wrapper cannot use. Each variant names the rule and the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The plan itself does not parse or compile.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A rule's `service` selector matches no service the wrapper knows.
    #[error(
        "rule {rule:?}: service {service:?} matches no AWS service chaos-aws knows; expected one \
         of dynamodb, lambda, sqs, sns, s3, states, ssm (their SigV4 signing names)"
    )]
    UnknownService {
        /// The rule's name (or `#index`).
        rule: String,
        /// The selector as written.
        service: String,
    },
    /// A rule's `operation` selector matches no operation of the services it selects.
    #[error(
        "rule {rule:?}: operation {operation:?} is not an operation of {services} that chaos-aws \
         recognises on the wire; write the operation as the SDK names it, such as \"GetItem\" \
         or \"Invoke\" (the crate docs list the operations recognised per service)"
    )]
    UnknownOperation {
        /// The rule's name (or `#index`).
        rule: String,
        /// The selector as written.
        operation: String,
        /// The services the rule selects.
        services: String,
    },
    /// A rule's `custom` error names an error code the service does not send.
    #[error(
        "rule {rule:?}: custom error {code:?} is not an error {service} sends; expected one of \
         {expected}"
    )]
    UnknownErrorCode {
        /// The rule's name (or `#index`).
        rule: String,
        /// The custom error's name as written.
        code: String,
        /// The service the rule selects.
        service: &'static str,
        /// The codes that service accepts.
        expected: String,
    },
}
