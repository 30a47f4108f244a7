//! Applying a verdict: holding the call for its effect's delay, then failing or going ahead.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use crate::effect::{Effect, Outcome};
use crate::fault::InjectedError;
use crate::plan::{Call, Verdict};
use crate::timeout::Deadline;

use super::Injector;

impl Injector {
    /// Decides a call and applies the verdict as its [`Effect`] says: holds the
    /// call for the effect's delay on tokio's clock (added latency; for an injected timeout,
    /// until `deadline`; for a hang, until `deadline` minus the rule's buffer, or
    /// [`HANG_WITHOUT_DEADLINE`](crate::fault::HANG_WITHOUT_DEADLINE)), then returns the
    /// injected error, if any.
    ///
    /// If the kill switch is thrown (or a reload is rejected) while the call is held, the hold
    /// ends at once and the call goes ahead: `Ok(())`.
    pub async fn apply(
        &self,
        call: &Call<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(), InjectedError> {
        // Registered before deciding, so a kill switch thrown from here on is seen.
        let stop = pin!(self.shared.stop.notified());
        let (verdict, label) = self.decide_labelled(call);
        self.hold(verdict, label, deadline, stop).await
    }

    /// Applies a verdict this injector decided earlier ([`decide_labelled`](Self::decide_labelled)),
    /// as [`apply`](Self::apply) does: holds the call for the effect's delay, then returns the
    /// injected error (named with `label`), if any. Layers decide in `Service::call` and
    /// apply in the response future.
    ///
    /// The hold is cancellable: if the kill switch is thrown (or a reload is rejected) while
    /// the call is held, or was thrown since the decision, the hold ends at once and the call
    /// goes ahead: `Ok(())`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use chaos_core::{Call, Injector, Plan, Rule, fault::ErrorKind};
    /// let plan = Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("throttle"));
    /// let injector = Injector::new(plan).expect("valid");
    /// let (verdict, label) = injector.decide_labelled(&Call::new(7, "checkout"));
    /// assert_eq!(label.as_deref(), Some("throttle"));
    /// let error = injector.apply_decided(verdict, label, None).await.unwrap_err();
    /// assert_eq!(error.rule, "throttle");
    /// # }
    /// ```
    pub async fn apply_decided(
        &self,
        verdict: Verdict,
        label: Option<String>,
        deadline: Option<Deadline>,
    ) -> Result<(), InjectedError> {
        let stop = pin!(self.shared.stop.notified());
        self.hold(verdict, label, deadline, stop).await
    }

    async fn hold(
        &self,
        verdict: Verdict,
        label: Option<String>,
        deadline: Option<Deadline>,
        mut stop: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Result<(), InjectedError> {
        if verdict.is_pass() {
            return Ok(());
        }
        // From here on `notify_waiters` wakes this call; a switch thrown before is seen below.
        stop.as_mut().enable();
        if !self.is_active() {
            return Ok(());
        }
        let effect = verdict.effect(deadline.map(|d| d.remaining()));
        if effect.delay.is_zero() {
            // No timer for a fault that fails at once: it needs no tokio runtime, so an error
            // fault works under any executor.
            return finish(effect, label);
        }
        let mut sleep = pin!(tokio::time::sleep(effect.delay));
        let stopped = std::future::poll_fn(|cx| {
            if stop.as_mut().poll(cx).is_ready() {
                Poll::Ready(true)
            } else if sleep.as_mut().poll(cx).is_ready() {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await;
        if stopped {
            return Ok(());
        }
        finish(effect, label)
    }
}

/// The result a call sees once its effect's delay is over.
fn finish(effect: Effect, label: Option<String>) -> Result<(), InjectedError> {
    match effect.outcome {
        Outcome::Proceed => Ok(()),
        Outcome::Fail { rule, kind } => Err(InjectedError {
            rule: label.unwrap_or_else(|| format!("#{rule}")),
            kind,
        }),
    }
}

/// Applies a verdict decided elsewhere, with no injector: no kill switch can cut it short
/// (see [`Injector::apply`]). The effect is [`Verdict::effect`]'s.
pub async fn apply_verdict(
    verdict: Verdict,
    rule_label: Option<String>,
    deadline: Option<Deadline>,
) -> Result<(), InjectedError> {
    let effect = verdict.effect(deadline.map(|d| d.remaining()));
    if !effect.delay.is_zero() {
        tokio::time::sleep(effect.delay).await;
    }
    finish(effect, rule_label)
}
