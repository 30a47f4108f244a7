//! Wraps a tower service with a chaos plan loaded from a TOML file and shows the faults.
//!
//! Run: `cargo run --example tower_plan [PLAN.toml]` (defaults to examples/plans/checkout.toml).
//! Time is tokio's paused clock, so the simulated minute of traffic takes no real time.

use std::time::Duration;

use chaos_core::fault::{InjectedError, InjectedKind};
use chaos_core::{Call, ChaosLayer, CompiledPlan, Injector};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// A request to the orders table.
struct PutOrder {
    order_id: u64,
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/plans/checkout.toml".to_owned());
    // Parsed, checked and compiled once; the injector takes the compiled plan as it is.
    let plan = match CompiledPlan::from_file(&path) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    println!(
        "loaded {} rules from {path} (seed {})",
        plan.rule_count(),
        plan.seed()
    );
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build()?;

    let layer = ChaosLayer::from_fn(injector.clone(), |request: &PutOrder| {
        Call::new(request.order_id, "checkout/orders")
            .service("orders")
            .operation("PutItem")
    });
    let mut orders =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: PutOrder| async move {
                // The real work: a 5 ms write.
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, BoxError>(request.order_id)
            });

    let (mut ok, mut throttled, mut outage) = (0, 0, 0);
    let mut slowest = Duration::ZERO;
    // One order every 100 ms for a minute of virtual time.
    for order_id in 0..600u64 {
        let started = tokio::time::Instant::now();
        match orders.ready().await?.call(PutOrder { order_id }).await {
            Ok(_) => ok += 1,
            Err(error) => match error.downcast_ref::<InjectedError>().map(|e| &e.kind) {
                Some(InjectedKind::Error(chaos_core::ErrorKind::Throttle)) => throttled += 1,
                Some(_) => outage += 1,
                None => return Err(error),
            },
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "600 orders over a virtual minute: {ok} ok, {throttled} throttled, {outage} failed in the outage window"
    );
    println!("slowest call: {slowest:?}");
    for rule in injector.snapshot().rules {
        println!(
            "  rule {:<18} {:<8} evaluated {:>4}  injected {:>4}",
            rule.label, rule.fault, rule.evaluated, rule.injected
        );
    }
    Ok(())
}
