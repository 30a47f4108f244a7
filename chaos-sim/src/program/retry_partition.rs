//! SDK retry partitions: which `sdk_standard` calls draw on one retry quota.
//!
//! The AWS SDK keeps one token bucket per retry partition in a process, by default one per
//! service and Region (`dynamodb-us-east-1`), so every table of one service called from one
//! execution environment shares it. A dependency naming a `retry_partition` joins the
//! partition of that name; one naming none is a partition of its own (the simulator's
//! behaviour before partitions could be named, kept as the default so existing scenarios run
//! unchanged). A quota is keyed by (function, partition, Region served), per environment or
//! per function as the call's [`QuotaScope`] says.

use super::compile::Compiler;
use super::{ModelError, invalid};
use crate::model::{Dependency, QuotaScope};

/// Checks a dependency's `retry_partition` name: a partition is named by a non-empty name
/// with no surrounding spaces (two spellings of one service would silently split it).
pub(super) fn validate_retry_partition(
    path: &str,
    partition: Option<&str>,
) -> Result<(), ModelError> {
    let Some(name) = partition else {
        return Ok(());
    };
    if name.trim().is_empty() {
        return Err(invalid(
            format!("{path}.retry_partition"),
            "expected the name of the SDK client's service, such as `retry_partition = \
             \"dynamodb\"` (dependencies naming the same partition share one retry quota), \
             or remove `retry_partition` to give the dependency a quota of its own",
        ));
    }
    if name.trim() != name {
        return Err(invalid(
            format!("{path}.retry_partition"),
            format!(
                "`{name}` has spaces around it: write `{}` (names are compared exactly, so \
                 a stray space would give the dependency a partition of its own)",
                name.trim()
            ),
        ));
    }
    Ok(())
}

/// The quota partition of dependency `dep`, as an index: the first dependency naming the
/// same retry partition, else `dep` itself. Dependency indices are unique, so a dependency
/// without a partition never shares with another.
pub(super) fn quota_partition(dependencies: &[Dependency], dep: usize) -> usize {
    match &dependencies[dep].retry_partition {
        None => dep,
        Some(name) => dependencies
            .iter()
            .position(|d| d.retry_partition.as_ref() == Some(name))
            .unwrap_or(dep),
    }
}

impl Compiler<'_> {
    /// The quota of the call at `path` from `function` to dependency `dep`, served in
    /// `region`: an index into the function-wide quotas or into each environment's, by
    /// `scope`. Calls of one function sharing a partition go through one client, so they
    /// must agree on the scope: a mix would keep two quotas where the SDK keeps one.
    pub(super) fn quota_bucket(
        &mut self,
        path: &str,
        function: usize,
        dep: usize,
        region: usize,
        scope: QuotaScope,
    ) -> Result<usize, ModelError> {
        let scenario = self.scenario;
        let key = (
            function,
            quota_partition(&scenario.dependencies, dep),
            region,
        );
        let (own, other, other_scope) = match scope {
            QuotaScope::Function => (&mut self.quotas, &self.env_quotas, "environment"),
            QuotaScope::Environment => (&mut self.env_quotas, &self.quotas, "function"),
        };
        if other.contains_key(&key) {
            let shared = match &scenario.dependencies[dep].retry_partition {
                Some(name) => format!("retry partition `{name}`"),
                None => format!("dependency `{}`", scenario.dependencies[dep].name),
            };
            return Err(invalid(
                format!("{path}.quota_scope"),
                format!(
                    "another `sdk_standard` call of function `{}` to {shared} uses \
                     `quota_scope = \"{other_scope}\"`: calls sharing a partition go through \
                     one SDK client and one retry quota, so set the same `quota_scope` on \
                     each of them",
                    scenario.functions[function].name
                ),
            ));
        }
        let next = match scope {
            QuotaScope::Function => own.len(),
            // Numbered within the function: each environment holds that many.
            QuotaScope::Environment => own.range((function, 0, 0)..(function + 1, 0, 0)).count(),
        };
        Ok(*own.entry(key).or_insert(next))
    }
}
