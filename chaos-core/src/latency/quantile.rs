//! Quantiles and the CDF: closed forms, interpolation, bisection, and the normal math.

use std::cmp::Ordering;
use std::time::Duration;

use super::{LatencyDist, Sampler, nanos_to_duration, secs_to_nanos};

impl LatencyDist {
    /// The probability that a sample is at most `value`.
    pub fn cdf(&self, value: Duration) -> f64 {
        let x = value.as_secs_f64();
        match &self.sampler {
            Sampler::Constant(nanos) => {
                if value.as_nanos() >= u128::from(*nanos) {
                    1.0
                } else {
                    0.0
                }
            }
            Sampler::Uniform { low, high } => {
                if x >= *high {
                    1.0
                } else if x < *low {
                    0.0
                } else {
                    (x - low) / (high - low)
                }
            }
            Sampler::Normal(dist) => {
                let (mean, sd) = (dist.mean(), dist.std_dev());
                if sd == 0.0 {
                    return if x >= mean { 1.0 } else { 0.0 };
                }
                let below_zero = normal_cdf(-mean / sd);
                ((normal_cdf((x - mean) / sd) - below_zero) / (1.0 - below_zero)).clamp(0.0, 1.0)
            }
            Sampler::LogNormal { mu, sigma, .. } => {
                if x <= 0.0 {
                    0.0
                } else if *sigma == 0.0 {
                    if x.ln() >= *mu { 1.0 } else { 0.0 }
                } else {
                    normal_cdf((x.ln() - mu) / sigma)
                }
            }
            Sampler::Exponential { mean, .. } => 1.0 - (-x / mean).exp(),
            Sampler::Pareto { scale, shape, .. } => {
                if x < *scale {
                    0.0
                } else {
                    1.0 - (scale / x).powf(*shape)
                }
            }
            Sampler::Empirical(table) => {
                if x < table[0].1 {
                    return 0.0;
                }
                for window in table.windows(2) {
                    let ((q0, v0), (q1, v1)) = (window[0], window[1]);
                    if x < v1 {
                        return q0 + (q1 - q0) * (x - v0) / (v1 - v0);
                    }
                }
                1.0
            }
            Sampler::Mixture(table) => {
                let mut previous = 0.0;
                let mut total = 0.0;
                for (cumulative, latency) in table {
                    total += (cumulative - previous) * latency.cdf(value);
                    previous = *cumulative;
                }
                total
            }
        }
    }

    /// The `q`-quantile (inverse CDF), or `None` when `q` is outside `[0, 1]`.
    ///
    /// Exact for the closed-form distributions; found by bisection on [`cdf`](Self::cdf) for
    /// mixtures (to within a nanosecond).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let secs = match &self.sampler {
            Sampler::Constant(nanos) => return Some(nanos_to_duration(*nanos)),
            Sampler::Uniform { low, high } => low + (high - low) * q,
            Sampler::Normal(dist) => {
                let (mean, sd) = (dist.mean(), dist.std_dev());
                if sd == 0.0 {
                    mean
                } else {
                    let below_zero = normal_cdf(-mean / sd);
                    mean + sd * inverse_normal_cdf(below_zero + q * (1.0 - below_zero))
                }
            }
            // With sigma = 0 every quantile is the median (and 0 x infinity would be NaN).
            Sampler::LogNormal { mu, sigma, .. } if *sigma == 0.0 => mu.exp(),
            Sampler::LogNormal { mu, sigma, .. } => (mu + sigma * inverse_normal_cdf(q)).exp(),
            Sampler::Exponential { mean, .. } => -mean * (1.0 - q).ln(),
            Sampler::Pareto { scale, shape, .. } => scale * (1.0 - q).powf(-1.0 / shape),
            Sampler::Empirical(table) => interpolate(table, q),
            // The lowest value any component can take; bisection would stop at 0.
            Sampler::Mixture(table) if q == 0.0 => {
                return table
                    .iter()
                    .filter_map(|(_, latency)| latency.quantile(0.0))
                    .min();
            }
            Sampler::Mixture(_) => return Some(self.quantile_by_bisection(q)),
        };
        Some(nanos_to_duration(secs_to_nanos(secs)))
    }

    fn quantile_by_bisection(&self, q: f64) -> Duration {
        let (mut low, mut high) = (0u64, 1u64);
        while self.cdf(nanos_to_duration(high)) < q && high < u64::MAX / 2 {
            high *= 2;
        }
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if self.cdf(nanos_to_duration(mid)) >= q {
                high = mid;
            } else {
                low = mid;
            }
        }
        nanos_to_duration(if self.cdf(nanos_to_duration(low)) >= q {
            low
        } else {
            high
        })
    }
}

/// Linear interpolation in a quantile table `(q, value)` whose `q` increase strictly from 0 to
/// 1: a binary search for the first point with `u <= q`, so a table of 100k points costs 17
/// comparisons per sample, not 100k. Returns exactly what a scan from the start would.
pub(super) fn interpolate(table: &[(f64, f64)], u: f64) -> f64 {
    // "Not u <= q" rather than "q < u", so a NaN `u` runs off the end, as a scan does.
    let upper = table
        .partition_point(|(q, _)| {
            !matches!(u.partial_cmp(q), Some(Ordering::Less | Ordering::Equal))
        })
        .max(1);
    match (table.get(upper - 1), table.get(upper)) {
        (Some(&(q0, v0)), Some(&(q1, v1))) => v0 + (v1 - v0) * (u - q0) / (q1 - q0),
        _ => table.last().map_or(0.0, |(_, v)| *v),
    }
}

/// Standard normal CDF.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal inverse CDF: Acklam's rational approximation, refined by one Halley step
/// against `erfc`, which brings it to about 1e-15 relative error.
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let x = if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let error = normal_cdf(x) - p;
    let u = error * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}
