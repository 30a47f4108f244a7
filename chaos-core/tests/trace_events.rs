//! The trace events an injector emits, captured by a minimal subscriber installed as the
//! global default: a scoped one (`with_default`) races with other threads' callsite
//! registration and can miss events, so this binary holds one test.
#![cfg(feature = "runtime")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use chaos_core::fault::{ErrorKind, Fault};
use chaos_core::{Call, Injector, LatencyDist, Plan, Rule};

/// One event: its target and its fields, as text.
type Captured = (String, BTreeMap<String, String>);

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let target = event.metadata().target().to_owned();
        self.0.lock().expect("not poisoned").push((target, fields));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The events `run` emits: those captured since the last call.
fn captured(capture: &Capture, run: impl FnOnce()) -> Vec<Captured> {
    capture.0.lock().expect("not poisoned").clear();
    run();
    capture.0.lock().expect("not poisoned").clone()
}

fn quiet(plan: Plan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    builder.build().expect("valid")
}

fn field<'a>(event: &'a Captured, name: &str) -> Option<&'a str> {
    event.1.get(name).map(String::as_str)
}

#[test]
fn injections_and_plan_events_are_traced_on_their_own_targets() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only test here");
    injections_carry_the_call_and_the_injected_value(&capture);
    plan_loads_rejections_and_warnings_are_on_the_plan_target(&capture);
}

fn injections_carry_the_call_and_the_injected_value(capture: &Capture) {
    let plan = Plan::new(4)
        .with_rule(
            Rule::latency(LatencyDist::constant(Duration::from_micros(12_500)))
                .named("slow")
                .for_service("orders-api"),
        )
        .with_rule(
            Rule::error(ErrorKind::ServerError { status: 502 })
                .named("bad-gateway")
                .for_route("/orders/{id}"),
        )
        .with_rule(Rule::new(Fault::Status(418)).for_operation("teapot"));
    let injector = quiet(plan);
    let events = captured(capture, || {
        let call = Call::new(9, "checkout")
            .service("orders-api")
            .operation("GET /orders/{id}")
            .route("/orders/{id}")
            .attempt(2);
        injector.decide(&call);
        injector.decide(&Call::new(1, "kitchen").operation("teapot"));
    });
    let injected: Vec<_> = events.iter().filter(|e| e.0 == "chaos::inject").collect();
    assert_eq!(injected.len(), 3, "{events:?}");
    let slow = injected[0];
    for (name, value) in [
        ("rule", "slow"),
        ("fault", "latency"),
        ("site", "checkout"),
        ("service", "orders-api"),
        ("operation", "GET /orders/{id}"),
        ("route", "/orders/{id}"),
        ("request_key", "9"),
        ("attempt", "2"),
        ("latency_ms", "12.5"),
    ] {
        assert_eq!(field(slow, name), Some(value), "{name} in {slow:?}");
    }
    assert_eq!(field(slow, "error"), None);
    let bad_gateway = injected[1];
    assert_eq!(field(bad_gateway, "rule"), Some("bad-gateway"));
    assert_eq!(field(bad_gateway, "error"), Some("server_error"));
    assert_eq!(field(bad_gateway, "status"), Some("502"));
    assert_eq!(field(bad_gateway, "latency_ms"), None);
    let teapot = injected[2];
    assert_eq!(field(teapot, "rule"), Some("#2"));
    assert_eq!(field(teapot, "fault"), Some("status"));
    assert_eq!(field(teapot, "status"), Some("418"));
    assert_eq!(field(teapot, "route"), None, "no route: no field");
    assert!(events.iter().all(|e| e.0 == "chaos::inject"), "{events:?}");
}

fn plan_loads_rejections_and_warnings_are_on_the_plan_target(capture: &Capture) {
    let injector = quiet(Plan::new(1));
    let events = captured(capture, || {
        injector
            .reload(Plan::new(2).with_rule(Rule::error(ErrorKind::Throttle).for_operation("{x}")))
            .expect("valid");
        assert!(injector.reload_toml("not a plan").is_err());
    });
    let targets: Vec<_> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(targets, ["chaos::plan"; 3], "{events:?}");
    let messages: Vec<_> = events.iter().filter_map(|e| field(e, "message")).collect();
    assert_eq!(messages[0], "chaos plan warning");
    assert!(field(&events[0], "warning").is_some_and(|w| w.contains("match.operation")));
    assert_eq!(messages[1], "chaos plan loaded");
    assert!(messages[2].starts_with("chaos plan rejected"));
}
