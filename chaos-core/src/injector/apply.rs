//! Applying a verdict: sleeping, hanging, failing.

use crate::fault::{HANG_WITHOUT_DEADLINE, InjectedError, InjectedKind};
use crate::plan::{Call, Failure, Verdict};
use crate::timeout::Deadline;

use super::Injector;

impl Injector {
    /// Decides a call and applies the verdict: sleeps the added latency, then fails if a
    /// failing rule fired. A hang sleeps until `deadline` minus the rule's buffer (or
    /// [`HANG_WITHOUT_DEADLINE`]), then fails with a timeout.
    pub async fn apply(
        &self,
        call: &Call<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(), InjectedError> {
        let (verdict, label) = self.decide_labelled(call);
        apply_verdict(verdict, label, deadline).await
    }
}

/// Applies a verdict decided elsewhere (see [`Injector::apply`]).
pub async fn apply_verdict(
    verdict: Verdict,
    rule_label: Option<String>,
    deadline: Option<Deadline>,
) -> Result<(), InjectedError> {
    if !verdict.added_latency.is_zero() {
        tokio::time::sleep(verdict.added_latency).await;
    }
    let Some(failure) = verdict.failure else {
        return Ok(());
    };
    let failure = *failure;
    let rule = rule_label.unwrap_or_else(|| format!("#{}", failure.rule()));
    let kind = match failure {
        Failure::Error { kind, .. } => InjectedKind::Error(kind),
        Failure::Status { status, .. } => InjectedKind::Status(status),
        Failure::Hang { buffer, .. } => {
            match deadline {
                Some(deadline) => {
                    tokio::time::sleep_until(deadline.instant() - buffer.min(deadline.remaining()))
                        .await
                }
                None => tokio::time::sleep(HANG_WITHOUT_DEADLINE).await,
            }
            InjectedKind::Hang
        }
    };
    Err(InjectedError { rule, kind })
}
