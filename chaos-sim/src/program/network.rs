//! Network routes: which hops an attempt from a caller's region to a replica crosses,
//! decided once here (the dependency's own `hops`, else the `[[network]]` pair, else its
//! mirror, else none; see `model::RegionHops`), so the engine looks a hop up by route alone.

use super::compile::Compiler;
use super::*;

impl Compiler<'_> {
    /// Checks the `[[network]]` entries against the regions in use (every function's and every
    /// replica's, known once dependencies are compiled) and indexes them by (caller region,
    /// replica region). A pair also serves the reverse direction unless that is listed too.
    pub(super) fn compile_network(&mut self) -> Result<(), ModelError> {
        let scenario = self.scenario;
        let mut mirrors = Vec::with_capacity(scenario.network.len());
        for (i, entry) in scenario.network.iter().enumerate() {
            let path = format!("network.{i}");
            let from = self.region_in_use(&format!("{path}.from"), &entry.from)?;
            let to = self.region_in_use(&format!("{path}.to"), &entry.to)?;
            if entry.hops.is_none() {
                return Err(invalid(
                    path,
                    "a [[network]] entry needs a hop at least one way: set `request`, \
                     `response` or both (e.g. request = \"30ms\", response = \"30ms\"), or \
                     remove the entry",
                ));
            }
            if let Some(earlier) = self.pairs.insert((from, to), i) {
                return Err(invalid(
                    format!("{path}.from"),
                    format!(
                        "the pair from `{}` to `{}` is already set by [[network]] entry {} \
                         (counting from 1); keep one of them (a pair applies both ways, so \
                         list the reverse only to give it other hops)",
                        entry.from,
                        entry.to,
                        earlier + 1
                    ),
                ));
            }
            mirrors.push(((to, from), i));
        }
        // Listed pairs first: a mirror never replaces a pair set for its own direction.
        for (pair, i) in mirrors {
            self.pairs.entry(pair).or_insert(i);
        }
        Ok(())
    }

    /// The index of region `name`, which a function must run in or a dependency have a
    /// replica in: a name nothing uses is almost always a typo, and a pair no call can
    /// cross would silently model nothing.
    fn region_in_use(&self, path: &str, name: &str) -> Result<usize, ModelError> {
        if let Some(i) = self.regions.iter().position(|r| r == name) {
            return Ok(i);
        }
        let did_you_mean = closest(name, self.regions.iter().map(String::as_str))
            .map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"));
        Err(invalid(
            path,
            format!(
                "no function runs in region `{name}` and no dependency has a replica there, \
                 so no call would cross this pair; the regions in use are {}{did_you_mean}. \
                 Fix the name or remove the entry",
                self.regions.join(", ")
            ),
        ))
    }

    /// The route of `dep`'s attempts from `caller_region` to `replica` (in `replica_region`),
    /// made on first use and shared by every call that takes it.
    pub(super) fn route(
        &mut self,
        dep: usize,
        caller_region: usize,
        replica_region: usize,
        replica: usize,
    ) -> usize {
        if let Some(&route) = self.route_index.get(&(caller_region, replica)) {
            return route;
        }
        let scenario = self.scenario;
        let own = &scenario.dependencies[dep].hops;
        let hops = if own.is_none() {
            self.pairs
                .get(&(caller_region, replica_region))
                .map_or(own, |&i| &scenario.network[i].hops)
        } else {
            own
        };
        self.replicas[replica].response_hops |= hops.response.is_some();
        self.routes.push(RouteDef {
            dep,
            replica,
            hops: [hops.request.clone(), hops.response.clone()],
            has_hops: !hops.is_none(),
        });
        let route = self.routes.len() - 1;
        self.route_index.insert((caller_region, replica), route);
        route
    }
}
