//! Route selectors and selector warnings.

use std::time::Duration;

use super::*;
use crate::advanced::LocalMatchCounter;
use crate::fault::ErrorKind;
use crate::rule::Rule;

fn throttle_on(route: &str) -> CompiledPlan {
    Plan::new(5)
        .with_rule(Rule::error(ErrorKind::Throttle).for_route(route))
        .compile()
        .expect("valid")
}

fn fires(plan: &CompiledPlan, route: &str) -> bool {
    let counter = LocalMatchCounter::new(plan.rule_count());
    let call = Call::new(1, "api").route(route);
    plan.evaluate(&call, Duration::ZERO, &counter)
        .failure
        .is_some()
}

#[test]
fn a_route_template_is_compared_literally() {
    let plan = throttle_on("/orders/{id}");
    assert!(fires(&plan, "/orders/{id}"));
    // Neither the literal text inside the braces (glob alternation) nor a real path matches.
    assert!(!fires(&plan, "/orders/id"));
    assert!(!fires(&plan, "/orders/7"));
    assert!(!fires(&plan, ""));
    assert!(plan.warnings().is_empty());
}

#[test]
fn a_trailing_star_outside_braces_is_a_prefix() {
    let plan = throttle_on("/orders/*");
    assert!(fires(&plan, "/orders/{id}"));
    assert!(fires(&plan, "/orders/{id}/items"));
    assert!(!fires(&plan, "/checkout"));
    // axum's catch-all `{*rest}` is a template, not a prefix.
    let catch_all = throttle_on("/assets/{*path}");
    assert!(fires(&catch_all, "/assets/{*path}"));
    assert!(!fires(&catch_all, "/assets/{"));
    let any = throttle_on("*");
    assert!(fires(&any, "") && fires(&any, "/x"));
}

#[test]
fn resolved_sites_decide_routes_per_call_as_the_ad_hoc_path_does() {
    let plan = Plan::new(3)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .for_service("orders-api")
                .for_route("/orders/{id}")
                .with_probability(0.5),
        )
        .with_rule(
            Rule::latency(crate::LatencyDist::constant(Duration::from_millis(5)))
                .with_probability(0.3),
        )
        .compile()
        .expect("valid");
    const SITE: CallSite<'static> = CallSite::new("api").service("orders-api");
    let resolved = plan.resolve(&SITE);
    // The route is per request: the rule stays a candidate, tested per call.
    assert_eq!(resolved.candidate_count(), 2);
    let counter = LocalMatchCounter::new(plan.rule_count());
    let mut throttled = 0;
    for key in 0..400 {
        for route in ["/orders/{id}", "/checkout", ""] {
            let call = Call::at(key, SITE).route(route);
            let ad_hoc = plan.evaluate(&call, Duration::ZERO, &counter);
            let site = plan.evaluate_resolved(&resolved, &call, Duration::ZERO, &counter);
            assert_eq!(site, ad_hoc, "key {key} route {route:?}");
            if let Some(failure) = &ad_hoc.failure
                && failure.rule() == 0
            {
                assert_eq!(route, "/orders/{id}");
                throttled += 1;
            }
        }
    }
    // Half of the 400 order calls, within 5 standard deviations (10).
    assert!((150..=250).contains(&throttled), "{throttled}");
}

#[test]
fn selectors_that_can_never_match_are_warned_about() {
    let plan = Plan::new(1)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("braces")
                .for_operation("GET /orders/{id}"),
        )
        .with_rule(Rule::error(ErrorKind::Throttle).for_site("{a,b}/\\{x\\}"))
        .with_rule(Rule::error(ErrorKind::Throttle).for_service("{orders}"))
        .with_rule(Rule::error(ErrorKind::Throttle).for_route("orders/{id}"))
        .compile()
        .expect("valid: warnings do not reject a plan");
    let found: Vec<_> = plan
        .warnings()
        .iter()
        .map(|w| (w.index, w.name.as_deref(), w.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (0, Some("braces"), "match.operation"),
            (2, None, "match.service"),
            (3, None, "match.route"),
        ]
    );
    let text = plan.warnings()[0].to_string();
    assert!(text.contains("rules[0].match.operation"), "{text}");
    assert!(text.contains(r#"`match.route = "/orders/{id}"`"#), "{text}");
    assert!(plan.warnings()[2].message.contains(r#""/orders/{id}""#));
}
