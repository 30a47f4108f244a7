//! Live configuration: a plan read from an environment variable, a file, SSM Parameter
//! Store or AppConfig (through the Lambda extension), cached with a TTL and refreshed off the hot path. A source that cannot be read or a
//! plan that does not parse or check means *no faults* and one structured warning, never a
//! failed call.

#[cfg(feature = "appconfig")]
mod appconfig;
mod source;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chaos_core::{CompiledPlan, Injector, Plan};
use tokio::time::Instant;

use crate::services::check_plan;
#[cfg(feature = "appconfig")]
pub use appconfig::{
    APPCONFIG_PORT_ENV_VAR, AppConfigSource, DEFAULT_APPCONFIG_PORT, DEFAULT_APPCONFIG_TIMEOUT,
};
pub use source::{ConfigSource, MAX_PLAN_BYTES, SourceError};

/// Default time a fetched plan is trusted before the next refresh: a minute, as the Lambda
/// chaos tools teams migrate from cache theirs.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// A plan kept up to date from a [`ConfigSource`], feeding an [`Injector`].
///
/// Decisions read the injector's current plan (lock-free) and never wait on the network:
/// [`refresh_if_stale`](Self::refresh_if_stale) starts a refresh in the background once the
/// TTL has passed and returns at once. Cheap to clone.
#[derive(Clone)]
pub struct LiveConfig {
    shared: Arc<Shared>,
}

struct Shared {
    source: ConfigSource,
    injector: Injector,
    ttl: Duration,
    started: Instant,
    /// Nanoseconds since `started` after which the plan is stale.
    due_at: AtomicU64,
    /// A refresh is running: no second one starts.
    refreshing: AtomicBool,
    /// The last refresh failed: the warning was given, the next failure stays quiet.
    failing: AtomicBool,
}

impl fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveConfig")
            .field("source", &self.shared.source)
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

/// What a refresh found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// A plan was read, checked and loaded: it has this many rules.
    Loaded {
        /// Rules in the loaded plan.
        rules: usize,
    },
    /// The source or the plan was unusable; no faults are injected until a good one arrives.
    NoFaults {
        /// Why, as the warning said it.
        reason: String,
    },
}

impl LiveConfig {
    /// A live configuration reading `source`, with no plan loaded yet (no faults) and a stale
    /// cache: the first [`refresh_if_stale`](Self::refresh_if_stale) fetches it. `injector`
    /// is the one the wrappers hold (clone it into them); its plan is replaced on every
    /// refresh. Must be created inside a tokio runtime (the TTL runs on tokio's clock).
    pub fn new(source: ConfigSource, injector: Injector) -> Self {
        Self::with_ttl(source, injector, DEFAULT_TTL)
    }

    /// As [`new`](Self::new), trusting a fetched plan for `ttl`.
    pub fn with_ttl(source: ConfigSource, injector: Injector, ttl: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                injector,
                ttl,
                started: Instant::now(),
                due_at: AtomicU64::new(0),
                refreshing: AtomicBool::new(false),
                failing: AtomicBool::new(false),
            }),
        }
    }

    /// The injector this configuration feeds.
    pub fn injector(&self) -> &Injector {
        &self.shared.injector
    }

    /// Where the plan comes from.
    pub fn source(&self) -> &ConfigSource {
        &self.shared.source
    }

    /// Whether the cached plan has outlived its TTL (or was never fetched).
    pub fn is_stale(&self) -> bool {
        let now = saturating_nanos(self.shared.started.elapsed());
        now >= self.shared.due_at.load(Ordering::Acquire)
    }

    /// The hot-path call: when the TTL has passed, starts one refresh on the current tokio
    /// runtime and returns at once (the calls meanwhile use the plan already loaded). Costs
    /// a clock read and an atomic load when fresh. Outside a tokio runtime it does nothing.
    pub fn refresh_if_stale(&self) {
        if !self.is_stale() || self.shared.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.refreshing.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            this.refresh_claimed().await;
        });
    }

    /// Fetches, checks and loads the plan now (at start-up, before the first call, or from a
    /// test). A failure loads an empty plan (no faults) and warns once per failing streak.
    pub async fn refresh(&self) -> RefreshOutcome {
        // Waits out a background refresh rather than racing it.
        while self.shared.refreshing.swap(true, Ordering::AcqRel) {
            tokio::task::yield_now().await;
        }
        self.refresh_claimed().await
    }

    /// The refresh proper; the caller holds `refreshing`.
    async fn refresh_claimed(&self) -> RefreshOutcome {
        let shared = &self.shared;
        let outcome = match fetch_plan(&shared.source).await {
            Ok(plan) => {
                let rules = plan.rule_count();
                match shared.injector.reload(plan) {
                    Ok(()) => {
                        if shared.failing.swap(false, Ordering::AcqRel) {
                            tracing::info!(
                                target: "chaos_aws",
                                source = %shared.source,
                                rules,
                                "chaos: configuration readable again; faults resume"
                            );
                        }
                        RefreshOutcome::Loaded { rules }
                    }
                    Err(error) => self.no_faults(error.to_string()),
                }
            }
            Err(error) => self.no_faults(error.to_string()),
        };
        let due =
            saturating_nanos(shared.started.elapsed()).saturating_add(saturating_nanos(shared.ttl));
        shared.due_at.store(due, Ordering::Release);
        shared.refreshing.store(false, Ordering::Release);
        outcome
    }

    fn no_faults(&self, reason: String) -> RefreshOutcome {
        let shared = &self.shared;
        // An empty plan always loads: no rule, no fault.
        let _ = shared.injector.reload(Plan::new(0));
        if !shared.failing.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                target: "chaos_aws",
                source = %shared.source,
                error = %reason,
                "chaos: configuration unusable; injecting no faults until it is fixed"
            );
        }
        RefreshOutcome::NoFaults { reason }
    }
}

/// Reads, parses (JSON when the text starts with `{`, else TOML) and checks a plan.
async fn fetch_plan(source: &ConfigSource) -> Result<CompiledPlan, SourceError> {
    let text = source.fetch().await?;
    if let Some(plan) = migrated_plan(source, &text)? {
        return Ok(plan);
    }
    let plan = if text.trim_start().starts_with('{') {
        CompiledPlan::from_json_str(&text)
    } else {
        CompiledPlan::from_toml_str(&text)
    }
    .map_err(|error| SourceError::Plan {
        source_name: source.to_string(),
        message: error.to_string(),
    })?;
    check_plan(plan.plan()).map_err(|error| SourceError::Plan {
        source_name: source.to_string(),
        message: error.to_string(),
    })?;
    Ok(plan)
}

/// A failure-lambda or chaos_lambda configuration (recognised by its keys), converted; `None`
/// for anything else (a chaos-core plan). The seed is the hash of the text: the same
/// configuration replays the same decisions.
fn migrated_plan(source: &ConfigSource, text: &str) -> Result<Option<CompiledPlan>, SourceError> {
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    let Some(format) = crate::migrate::SourceFormat::detect(&value) else {
        return Ok(None);
    };
    let seed = chaos_core::advanced::hash_str(text);
    crate::migrate::migrate_as(format, &value, seed)
        .map(|migrated| Some(migrated.plan))
        .map_err(|error| SourceError::Plan {
            source_name: source.to_string(),
            message: error.to_string(),
        })
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
