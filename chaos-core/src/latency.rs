//! Latency distributions as validated values.
//!
//! A [`LatencyDist`] is immutable: all randomness comes from the generator passed to
//! [`LatencyDist::sample`], so a seeded generator replays the same latencies. Constructors check
//! their parameters and return a [`LatencyError`] naming the parameter and its valid range.
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::latency::LatencyDist;
//! use rand::SeedableRng;
//!
//! // How people quote latency: "median 6 ms, p99 25 ms".
//! let dynamo = LatencyDist::log_normal_p50_p99(Duration::from_millis(6), Duration::from_millis(25))?;
//! // The bimodal case behind tail amplification: 99% fast, 1% very slow.
//! let leaf = LatencyDist::mixture(vec![
//!     (0.99, LatencyDist::constant(Duration::from_millis(10))),
//!     (0.01, LatencyDist::constant(Duration::from_secs(1))),
//! ])?;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! assert!(dynamo.sample(&mut rng) > Duration::ZERO);
//! assert!([Duration::from_millis(10), Duration::from_secs(1)].contains(&leaf.sample(&mut rng)));
//! assert_eq!(dynamo.quantile(0.5), Some(Duration::from_millis(6)));
//! # Ok::<(), chaos_core::latency::LatencyError>(())
//! ```
//!
//! In plan and scenario files a distribution is written as one of:
//!
//! ```toml
//! a = "10ms"                                              # constant
//! b = { constant = "10ms" }
//! c = { uniform = { low = "5ms", high = "15ms" } }
//! d = { normal = { mean = "20ms", std_dev = "5ms" } }     # truncated at 0
//! e = { log_normal = { p50 = "6ms", p99 = "25ms" } }      # or { mu = -5.1, sigma = 0.6 }, or { p50 = "6ms", sigma = 0.6 }
//! f = { exponential = { mean = "10ms" } }
//! g = { pareto = { scale = "1ms", shape = 1.5 } }
//! h = { empirical = [ { q = 0.0, value = "1ms" }, { q = 0.9, value = "8ms" }, { q = 1.0, value = "40ms" } ] }
//! i = { mixture = [ { weight = 0.99, latency = "10ms" }, { weight = 0.01, latency = "1s" } ] }
//! ```

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::serde_duration;

/// The 0.99 quantile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874_040_840_8;

/// Longest latency a sample can take; heavier tails saturate here instead of overflowing.
const MAX_SAMPLE_NANOS: f64 = u64::MAX as f64;

/// A distribution parameter was out of its valid range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {distribution} latency: `{parameter}` = {value}; expected {expected}")]
pub struct LatencyError {
    /// Which distribution was being built, such as `"log_normal"`.
    pub distribution: &'static str,
    /// The parameter at fault, such as `"p99"`.
    pub parameter: &'static str,
    /// The value that was given, as text.
    pub value: String,
    /// The valid range, and how to fix it.
    pub expected: &'static str,
}

fn invalid(
    distribution: &'static str,
    parameter: &'static str,
    value: impl fmt::Debug,
    expected: &'static str,
) -> LatencyError {
    LatencyError {
        distribution,
        parameter,
        value: format!("{value:?}"),
        expected,
    }
}

/// A validated latency distribution. Samples are never negative.
///
/// See the [module docs](self) for the constructors and the file format.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyDist {
    sampler: Sampler,
    spec: Spec,
}

#[derive(Clone, Debug, PartialEq)]
enum Sampler {
    Constant(u64),
    Uniform {
        low: f64,
        high: f64,
    },
    Normal(Normal<f64>),
    LogNormal {
        dist: LogNormal<f64>,
        mu: f64,
        sigma: f64,
    },
    Exponential {
        dist: Exp<f64>,
        mean: f64,
    },
    Pareto {
        dist: Pareto<f64>,
        scale: f64,
        shape: f64,
    },
    Empirical(Vec<(f64, f64)>),
    Mixture(Vec<(f64, LatencyDist)>),
}

#[inline]
fn secs_to_nanos(secs: f64) -> u64 {
    let nanos = secs * 1e9;
    if nanos.is_nan() || nanos <= 0.0 {
        0
    } else if nanos >= MAX_SAMPLE_NANOS {
        u64::MAX
    } else if nanos < EXACT_HALVES {
        // Round half up by adding 0.5 and truncating: the same as `round()` for positive values
        // below 2^52, without a call into libm on every sample.
        (nanos + 0.5) as u64
    } else {
        // At and above 2^52 every f64 is already a whole number.
        nanos as u64
    }
}

/// 2^52: below it, `x + 0.5` is exact for every f64 `x`.
const EXACT_HALVES: f64 = 4_503_599_627_370_496.0;

fn nanos_to_duration(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

fn positive(
    distribution: &'static str,
    parameter: &'static str,
    d: Duration,
) -> Result<f64, LatencyError> {
    if d.is_zero() {
        Err(invalid(
            distribution,
            parameter,
            d,
            "a duration greater than zero",
        ))
    } else {
        Ok(d.as_secs_f64())
    }
}

impl LatencyDist {
    /// Always the same latency.
    pub fn constant(value: Duration) -> Self {
        Self {
            sampler: Sampler::Constant(value.as_nanos().min(u128::from(u64::MAX)) as u64),
            spec: Spec::Constant(value),
        }
    }

    /// Uniform between `low` and `high` (inclusive of `low`).
    pub fn uniform(low: Duration, high: Duration) -> Result<Self, LatencyError> {
        if high < low {
            return Err(invalid(
                "uniform",
                "high",
                high,
                "a duration at least `low`",
            ));
        }
        Ok(Self {
            sampler: Sampler::Uniform {
                low: low.as_secs_f64(),
                high: high.as_secs_f64(),
            },
            spec: Spec::Uniform { low, high },
        })
    }

    /// Normal with the given mean and standard deviation, truncated at zero: negative draws are
    /// redrawn, so the shape above zero is kept rather than piling mass onto zero.
    pub fn normal(mean: Duration, std_dev: Duration) -> Result<Self, LatencyError> {
        let dist = Normal::new(mean.as_secs_f64(), std_dev.as_secs_f64())
            .map_err(|_| invalid("normal", "std_dev", std_dev, "a finite duration"))?;
        Ok(Self {
            sampler: Sampler::Normal(dist),
            spec: Spec::Normal { mean, std_dev },
        })
    }

    /// Log-normal from its median and 99th percentile, the way latency is usually quoted.
    pub fn log_normal_p50_p99(p50: Duration, p99: Duration) -> Result<Self, LatencyError> {
        let median = positive("log_normal", "p50", p50)?;
        if p99 <= p50 {
            return Err(invalid(
                "log_normal",
                "p99",
                p99,
                "a duration greater than `p50`",
            ));
        }
        let sigma = (p99.as_secs_f64() / median).ln() / Z_99;
        let mut dist = Self::log_normal(median.ln(), sigma)?;
        dist.spec = Spec::LogNormal(LogNormalSpec {
            p50: Some(p50),
            p99: Some(p99),
            ..LogNormalSpec::default()
        });
        Ok(dist)
    }

    /// Log-normal from its median and shape `sigma` (the standard deviation of the log).
    pub fn log_normal_median_sigma(p50: Duration, sigma: f64) -> Result<Self, LatencyError> {
        let median = positive("log_normal", "p50", p50)?;
        let mut dist = Self::log_normal(median.ln(), sigma)?;
        dist.spec = Spec::LogNormal(LogNormalSpec {
            p50: Some(p50),
            sigma: Some(sigma),
            ..LogNormalSpec::default()
        });
        Ok(dist)
    }

    /// Log-normal whose logarithm, of the latency in seconds, is normal with mean `mu` and
    /// standard deviation `sigma`.
    pub fn log_normal(mu: f64, sigma: f64) -> Result<Self, LatencyError> {
        if !mu.is_finite() {
            return Err(invalid(
                "log_normal",
                "mu",
                mu,
                "a finite number (ln of seconds)",
            ));
        }
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(invalid(
                "log_normal",
                "sigma",
                sigma,
                "a finite number >= 0",
            ));
        }
        let dist = LogNormal::new(mu, sigma)
            .map_err(|_| invalid("log_normal", "sigma", sigma, "a finite number >= 0"))?;
        Ok(Self {
            sampler: Sampler::LogNormal { dist, mu, sigma },
            spec: Spec::LogNormal(LogNormalSpec {
                mu: Some(mu),
                sigma: Some(sigma),
                ..LogNormalSpec::default()
            }),
        })
    }

    /// Exponential with the given mean (memoryless service times, Poisson gaps).
    pub fn exponential(mean: Duration) -> Result<Self, LatencyError> {
        let mean_secs = positive("exponential", "mean", mean)?;
        let dist = Exp::new(1.0 / mean_secs)
            .map_err(|_| invalid("exponential", "mean", mean, "a duration greater than zero"))?;
        Ok(Self {
            sampler: Sampler::Exponential {
                dist,
                mean: mean_secs,
            },
            spec: Spec::Exponential { mean },
        })
    }

    /// Pareto with minimum `scale` and tail index `shape` (heavy tails; infinite mean when
    /// `shape <= 1`).
    pub fn pareto(scale: Duration, shape: f64) -> Result<Self, LatencyError> {
        let scale_secs = positive("pareto", "scale", scale)?;
        if !(shape.is_finite() && shape > 0.0) {
            return Err(invalid("pareto", "shape", shape, "a finite number > 0"));
        }
        let dist = Pareto::new(scale_secs, shape)
            .map_err(|_| invalid("pareto", "shape", shape, "a finite number > 0"))?;
        Ok(Self {
            sampler: Sampler::Pareto {
                dist,
                scale: scale_secs,
                shape,
            },
            spec: Spec::Pareto { scale, shape },
        })
    }

    /// An empirical distribution from a quantile table `(q, value)`, linearly interpolated.
    ///
    /// The first point must be at `q = 0` and the last at `q = 1`; `q` must increase strictly
    /// and values must not decrease.
    pub fn empirical(points: Vec<(f64, Duration)>) -> Result<Self, LatencyError> {
        const E: &str = "empirical";
        if points.len() < 2 {
            return Err(invalid(
                E,
                "points",
                points.len(),
                "at least two points, at q = 0 and q = 1",
            ));
        }
        for (index, window) in points.windows(2).enumerate() {
            let ((q0, v0), (q1, v1)) = (window[0], window[1]);
            if q1.partial_cmp(&q0) != Some(std::cmp::Ordering::Greater) {
                return Err(invalid(
                    E,
                    "q",
                    (index + 1, q1),
                    "quantiles in strictly increasing order",
                ));
            }
            if v1 < v0 {
                return Err(invalid(
                    E,
                    "value",
                    (index + 1, v1),
                    "values that do not decrease as q grows",
                ));
            }
        }
        let first_q = points[0].0;
        let last_q = points[points.len() - 1].0;
        if first_q != 0.0 {
            return Err(invalid(E, "q", (0, first_q), "the first point at q = 0"));
        }
        if last_q != 1.0 {
            return Err(invalid(
                E,
                "q",
                (points.len() - 1, last_q),
                "the last point at q = 1",
            ));
        }
        let table = points.iter().map(|(q, v)| (*q, v.as_secs_f64())).collect();
        Ok(Self {
            sampler: Sampler::Empirical(table),
            spec: Spec::Empirical(
                points
                    .into_iter()
                    .map(|(q, value)| QuantilePoint { q, value })
                    .collect(),
            ),
        })
    }

    /// A weighted mixture, such as 99% around 10 ms and 1% around 1 s. Weights must be
    /// non-negative and finite with a positive sum; they are normalised.
    pub fn mixture(components: Vec<(f64, LatencyDist)>) -> Result<Self, LatencyError> {
        const M: &str = "mixture";
        if components.is_empty() {
            return Err(invalid(
                M,
                "components",
                0,
                "at least one weighted component",
            ));
        }
        let mut total = 0.0;
        for (index, (weight, _)) in components.iter().enumerate() {
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(invalid(
                    M,
                    "weight",
                    (index, weight),
                    "a finite weight >= 0",
                ));
            }
            total += weight;
        }
        if !(total > 0.0 && total.is_finite()) {
            return Err(invalid(
                M,
                "weight",
                total,
                "weights with a finite sum greater than zero (they are normalised; 0.99 and 0.01 will do)",
            ));
        }
        let spec = Spec::Mixture(
            components
                .iter()
                .map(|(weight, latency)| MixtureComponent {
                    weight: *weight,
                    latency: latency.clone(),
                })
                .collect(),
        );
        let mut cumulative = 0.0;
        let table = components
            .into_iter()
            .map(|(weight, latency)| {
                cumulative += weight / total;
                (cumulative, latency)
            })
            .collect();
        Ok(Self {
            sampler: Sampler::Mixture(table),
            spec,
        })
    }

    /// Draws one latency.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        nanos_to_duration(self.sample_nanos(rng))
    }

    /// Draws one latency in whole nanoseconds: the simulator's hot path.
    pub fn sample_nanos<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match &self.sampler {
            Sampler::Constant(nanos) => *nanos,
            Sampler::Uniform { low, high } => {
                let u: f64 = rng.random();
                secs_to_nanos(low + (high - low) * u)
            }
            Sampler::Normal(dist) => {
                // Truncation by rejection; the mean is >= 0 so each draw is kept with
                // probability >= 1/2. The bound keeps a pathological case from spinning.
                for _ in 0..64 {
                    let x = dist.sample(rng);
                    if x >= 0.0 {
                        return secs_to_nanos(x);
                    }
                }
                0
            }
            Sampler::LogNormal { dist, .. } => secs_to_nanos(dist.sample(rng)),
            Sampler::Exponential { dist, .. } => secs_to_nanos(dist.sample(rng)),
            Sampler::Pareto { dist, .. } => secs_to_nanos(dist.sample(rng)),
            Sampler::Empirical(table) => secs_to_nanos(interpolate(table, rng.random())),
            Sampler::Mixture(table) => {
                let u: f64 = rng.random();
                let component = table
                    .iter()
                    .find(|(cumulative, _)| u < *cumulative)
                    .or(table.last())
                    .map(|(_, latency)| latency);
                component.map_or(0, |latency| latency.sample_nanos(rng))
            }
        }
    }

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

fn interpolate(table: &[(f64, f64)], u: f64) -> f64 {
    for window in table.windows(2) {
        let ((q0, v0), (q1, v1)) = (window[0], window[1]);
        if u <= q1 {
            return v0 + (v1 - v0) * (u - q0) / (q1 - q0);
        }
    }
    table.last().map_or(0.0, |(_, v)| *v)
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

// ---- file format ----

/// The written form of a distribution, kept so a plan round-trips as the user wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Spec {
    Constant(#[serde(with = "serde_duration")] Duration),
    Uniform {
        #[serde(with = "serde_duration")]
        low: Duration,
        #[serde(with = "serde_duration")]
        high: Duration,
    },
    Normal {
        #[serde(with = "serde_duration")]
        mean: Duration,
        #[serde(with = "serde_duration")]
        std_dev: Duration,
    },
    LogNormal(LogNormalSpec),
    Exponential {
        #[serde(with = "serde_duration")]
        mean: Duration,
    },
    Pareto {
        #[serde(with = "serde_duration")]
        scale: Duration,
        shape: f64,
    },
    Empirical(Vec<QuantilePoint>),
    Mixture(Vec<MixtureComponent>),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogNormalSpec {
    #[serde(
        default,
        with = "crate::duration::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    p50: Option<Duration>,
    #[serde(
        default,
        with = "crate::duration::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    p99: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sigma: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantilePoint {
    q: f64,
    #[serde(with = "serde_duration")]
    value: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixtureComponent {
    weight: f64,
    latency: LatencyDist,
}

impl TryFrom<Spec> for LatencyDist {
    type Error = LatencyError;

    fn try_from(spec: Spec) -> Result<Self, LatencyError> {
        match spec {
            Spec::Constant(value) => Ok(Self::constant(value)),
            Spec::Uniform { low, high } => Self::uniform(low, high),
            Spec::Normal { mean, std_dev } => Self::normal(mean, std_dev),
            Spec::LogNormal(form) => match form {
                LogNormalSpec {
                    p50: Some(p50),
                    p99: Some(p99),
                    mu: None,
                    sigma: None,
                } => Self::log_normal_p50_p99(p50, p99),
                LogNormalSpec {
                    p50: Some(p50),
                    p99: None,
                    mu: None,
                    sigma: Some(sigma),
                } => Self::log_normal_median_sigma(p50, sigma),
                LogNormalSpec {
                    p50: None,
                    p99: None,
                    mu: Some(mu),
                    sigma: Some(sigma),
                } => Self::log_normal(mu, sigma),
                other => Err(invalid(
                    "log_normal",
                    "parameters",
                    other,
                    "exactly one of { p50, p99 }, { p50, sigma } or { mu, sigma }",
                )),
            },
            Spec::Exponential { mean } => Self::exponential(mean),
            Spec::Pareto { scale, shape } => Self::pareto(scale, shape),
            Spec::Empirical(points) => {
                Self::empirical(points.into_iter().map(|p| (p.q, p.value)).collect())
            }
            Spec::Mixture(components) => Self::mixture(
                components
                    .into_iter()
                    .map(|c| (c.weight, c.latency))
                    .collect(),
            ),
        }
    }
}

impl Serialize for LatencyDist {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.spec.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyDist {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatencyVisitor;

        impl<'de> serde::de::Visitor<'de> for LatencyVisitor {
            type Value = LatencyDist;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a latency: a duration such as \"10ms\", or a table such as \
                     { log_normal = { p50 = \"6ms\", p99 = \"25ms\" } }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<LatencyDist, E> {
                crate::duration::parse_duration(text)
                    .map(LatencyDist::constant)
                    .map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<LatencyDist, A::Error> {
                let spec = Spec::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                LatencyDist::try_from(spec).map_err(serde::de::Error::custom)
            }
        }

        deserializer.deserialize_any(LatencyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn inverse_normal_matches_known_quantiles() {
        assert!((inverse_normal_cdf(0.99) - Z_99).abs() < 1e-12);
        assert!(inverse_normal_cdf(0.5).abs() < 1e-15);
        assert!((inverse_normal_cdf(0.001) + 3.090_232_306_167_813_5).abs() < 1e-10);
        for p in [1e-9, 0.01, 0.3, 0.7, 0.999_999] {
            assert!((normal_cdf(inverse_normal_cdf(p)) - p).abs() < 1e-14 * p.max(1e-3) * 1e3);
        }
    }

    #[test]
    fn log_normal_p50_p99_hits_both_quantiles() {
        let d = LatencyDist::log_normal_p50_p99(ms(6), ms(25)).unwrap();
        assert_eq!(d.quantile(0.5), Some(ms(6)));
        let p99 = d.quantile(0.99).unwrap().as_secs_f64();
        assert!((p99 - 0.025).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn invalid_parameters_name_the_parameter() {
        let err = LatencyDist::log_normal_p50_p99(ms(10), ms(5)).unwrap_err();
        assert_eq!(err.parameter, "p99");
        assert!(err.to_string().contains("greater than `p50`"), "{err}");
        assert_eq!(
            LatencyDist::uniform(ms(5), ms(1)).unwrap_err().parameter,
            "high"
        );
        assert_eq!(
            LatencyDist::pareto(ms(1), -1.0).unwrap_err().parameter,
            "shape"
        );
        assert_eq!(
            LatencyDist::exponential(Duration::ZERO)
                .unwrap_err()
                .parameter,
            "mean"
        );
        assert_eq!(
            LatencyDist::log_normal(0.0, f64::NAN)
                .unwrap_err()
                .parameter,
            "sigma"
        );
        assert_eq!(
            LatencyDist::mixture(vec![]).unwrap_err().parameter,
            "components"
        );
        assert_eq!(
            LatencyDist::mixture(vec![(-1.0, LatencyDist::constant(ms(1)))])
                .unwrap_err()
                .parameter,
            "weight"
        );
        assert_eq!(
            LatencyDist::empirical(vec![(0.0, ms(1)), (0.5, ms(2))])
                .unwrap_err()
                .parameter,
            "q"
        );
        assert_eq!(
            LatencyDist::empirical(vec![(0.0, ms(3)), (1.0, ms(2))])
                .unwrap_err()
                .parameter,
            "value"
        );
    }

    #[test]
    fn normal_is_truncated_not_clamped() {
        // Mean 0: half the raw draws are negative. Clamping would put ~50% of samples at 0.
        let d = LatencyDist::normal(Duration::ZERO, ms(10)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let zeros = (0..10_000)
            .filter(|_| d.sample_nanos(&mut rng) == 0)
            .count();
        assert_eq!(zeros, 0);
    }

    #[test]
    fn degenerate_parameters_keep_quantiles_right() {
        let point = LatencyDist::log_normal_median_sigma(ms(10), 0.0).unwrap();
        assert_eq!(point.quantile(0.0), Some(ms(10)));
        assert_eq!(point.quantile(1.0), Some(ms(10)));
        let mix = LatencyDist::mixture(vec![
            (1.0, LatencyDist::constant(ms(10))),
            (1.0, LatencyDist::constant(ms(20))),
        ])
        .unwrap();
        assert_eq!(mix.quantile(0.0), Some(ms(10)));
        let overflow = LatencyDist::mixture(vec![
            (1e308, LatencyDist::constant(ms(1))),
            (1e308, LatencyDist::constant(ms(2))),
        ]);
        assert_eq!(overflow.unwrap_err().parameter, "weight");
    }

    #[test]
    fn mixture_quantile_by_bisection() {
        let d = LatencyDist::mixture(vec![
            (0.99, LatencyDist::constant(ms(10))),
            (0.01, LatencyDist::constant(Duration::from_secs(1))),
        ])
        .unwrap();
        assert_eq!(d.quantile(0.5), Some(ms(10)));
        assert_eq!(d.quantile(0.985), Some(ms(10)));
        assert_eq!(d.quantile(0.995), Some(Duration::from_secs(1)));
        assert!((d.cdf(ms(10)) - 0.99).abs() < 1e-12);
    }

    #[test]
    fn toml_forms_parse_and_round_trip() {
        #[derive(Deserialize, Serialize)]
        struct Doc {
            a: LatencyDist,
            b: LatencyDist,
            c: LatencyDist,
            d: LatencyDist,
            e: LatencyDist,
            f: LatencyDist,
            g: LatencyDist,
            h: LatencyDist,
            i: LatencyDist,
            j: LatencyDist,
        }
        let text = r#"
            a = "10ms"
            b = { constant = "10ms" }
            c = { uniform = { low = "5ms", high = "15ms" } }
            d = { normal = { mean = "20ms", std_dev = "5ms" } }
            e = { log_normal = { p50 = "6ms", p99 = "25ms" } }
            f = { exponential = { mean = "10ms" } }
            g = { pareto = { scale = "1ms", shape = 1.5 } }
            h = { empirical = [ { q = 0.0, value = "1ms" }, { q = 0.9, value = "8ms" }, { q = 1.0, value = "40ms" } ] }
            i = { mixture = [ { weight = 0.99, latency = "10ms" }, { weight = 0.01, latency = "1s" } ] }
            j = { log_normal = { mu = -3.9, sigma = 0.5 } }
        "#;
        let doc: Doc = toml::from_str(text).unwrap();
        assert_eq!(doc.a, LatencyDist::constant(ms(10)));
        assert_eq!(
            doc.e,
            LatencyDist::log_normal_p50_p99(ms(6), ms(25)).unwrap()
        );
        let again: Doc = toml::from_str(&toml::to_string(&doc).unwrap()).unwrap();
        assert_eq!(again.i, doc.i);
        assert_eq!(again.h, doc.h);
        let json: Doc = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(json.g, doc.g);
    }

    #[test]
    fn bad_toml_says_what_is_wrong() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            latency: LatencyDist,
        }
        let err =
            toml::from_str::<Doc>(r#"latency = { log_normal = { p50 = "6ms", p90 = "9ms" } }"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("p90"), "{err}");
        let err =
            toml::from_str::<Doc>(r#"latency = { log_normal = { p50 = "9ms", p99 = "6ms" } }"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("p99") && err.contains("greater than `p50`"),
            "{err}"
        );
        let err = toml::from_str::<Doc>(r#"latency = "10""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a number with a unit"), "{err}");
        let err = toml::from_str::<Doc>(r#"latency = { gamma = 3 }"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("log_normal"), "{err}");
    }
}
