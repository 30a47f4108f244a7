//! Wall time of the fallback test harness (`chaos_core::testing`): 10,000 invocations of a
//! trivial handler (one call, through the injector, that a rule delays by 2 s), run as one
//! fan-out and one after another. Criterion reports invocations per wall second
//! ("thrpt", elements/s). Run: `cargo bench --bench harness`.
//!
//! Peer, in the same run: the same 10,000 two-second sleeps as bare tasks on a paused
//! current-thread tokio runtime, with no harness, injector or records: the floor the
//! harness's own cost is measured against.

use std::hint::black_box;
use std::time::Duration;

use chaos_core::testing::{Harness, Invocation, Served};
use chaos_core::{LatencyDist, Plan, Rule};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const INVOCATIONS: u32 = 10_000;
const LATENCY: Duration = Duration::from_secs(2);

fn harness(width: u32) -> Harness {
    Harness::builder()
        .invocations(INVOCATIONS)
        .fan_out(width)
        .deadline(Duration::from_secs(3))
        .site("orders")
        .build()
        .expect("a valid harness")
}

fn plan() -> Plan {
    Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(LATENCY)).named("slow"))
}

async fn trivial(invocation: Invocation) -> Result<Served, chaos_core::InjectedError> {
    invocation.call("orders").await?;
    Ok(Served::Primary)
}

fn bare_tokio(sequential: bool) -> u32 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut done = 0;
        for _ in 0..INVOCATIONS {
            tasks.spawn(async { tokio::time::sleep(black_box(LATENCY)).await });
            if sequential {
                tasks.join_next().await;
                done += 1;
            }
        }
        while tasks.join_next().await.is_some() {
            done += 1;
        }
        done
    })
}

fn bench(c: &mut Criterion) {
    let plan = plan();
    let mut group = c.benchmark_group("harness_10k_invocations_2s_latency");
    group.throughput(Throughput::Elements(u64::from(INVOCATIONS)));
    group.sample_size(20);
    for (name, width) in [("fan_out", INVOCATIONS), ("sequential", 1)] {
        let harness = harness(width);
        // Not vacuous: every invocation took its 2 s on the virtual clock.
        let report = harness.run(&plan, trivial).expect("runs");
        assert_eq!(report.latency_quantile(0.0001), Some(LATENCY));
        assert_eq!(report.len(), INVOCATIONS as usize);
        group.bench_function(name, |b| {
            b.iter(|| harness.run(black_box(&plan), trivial).expect("runs"))
        });
        group.bench_function(format!("peer_bare_tokio_{name}"), |b| {
            b.iter(|| bare_tokio(width == 1))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
