//! Latency sampling, side by side with rand_distr in the same run.
//!
//! `cargo bench --bench latency`: a log-normal draw through `LatencyDist` (by p50 and p99, as
//! scenarios write it) beside `rand_distr::LogNormal` drawing the same distribution; an
//! empirical distribution of 100,000 quantile points (a recorded production latency profile)
//! beside a linear scan of the same table, which is how it sampled before the binary search.

use chaos_core::LatencyDist;
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use std::hint::black_box;
use std::time::Duration;

const POINTS: usize = 100_000;

fn table() -> Vec<(f64, Duration)> {
    (0..POINTS)
        .map(|i| {
            let q = i as f64 / (POINTS - 1) as f64;
            // A long-tailed profile: 1 ms at the median, 1 s at the top.
            (
                q,
                Duration::from_secs_f64(0.001 * (1.0 / (1.0 - q * 0.999)).powf(1.0)),
            )
        })
        .collect()
}

/// The interpolated inverse CDF by a scan from the bottom: the reference.
fn scan(points: &[(f64, Duration)], u: f64) -> u64 {
    let i = points
        .iter()
        .position(|&(q, _)| q >= u)
        .unwrap_or(points.len() - 1)
        .max(1);
    let ((q0, d0), (q1, d1)) = (points[i - 1], points[i]);
    let t = if q1 > q0 { (u - q0) / (q1 - q0) } else { 0.0 };
    (d0.as_nanos() as f64 + t * (d1.as_nanos() as f64 - d0.as_nanos() as f64)) as u64
}

fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("latency");
    let ours =
        LatencyDist::log_normal_p50_p99(Duration::from_millis(20), Duration::from_millis(120))
            .expect("valid");
    // The same distribution: sigma = ln(p99 / p50) / z(0.99).
    let sigma = (120.0f64 / 20.0).ln() / 2.326_347_874_040_841;
    let peer = LogNormal::new(0.020f64.ln(), sigma).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    group.bench_function("log_normal/LatencyDist", |b| {
        b.iter(|| black_box(ours.sample_nanos(&mut rng)))
    });
    group.bench_function("log_normal/rand_distr", |b| {
        b.iter(|| black_box((peer.sample(&mut rng) * 1e9) as u64))
    });
    let points = table();
    let empirical = LatencyDist::empirical(points.clone()).expect("valid");
    group.bench_function("empirical_100k/LatencyDist", |b| {
        b.iter(|| black_box(empirical.sample_nanos(&mut rng)))
    });
    group.bench_function("empirical_100k/linear_scan", |b| {
        b.iter(|| black_box(scan(&points, rng.random::<f64>())))
    });
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
