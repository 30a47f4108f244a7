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

mod quantile;
mod spec;

use quantile::interpolate;
#[cfg(test)]
use quantile::{inverse_normal_cdf, normal_cdf};
use spec::{LogNormalSpec, MixtureComponent, QuantilePoint, Spec};
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto, StandardNormal};

/// The 0.99 quantile of the standard normal distribution.
pub(super) const Z_99: f64 = 2.326_347_874_040_840_8;

/// Longest latency a sample can take; heavier tails saturate here instead of overflowing.
pub(super) const MAX_SAMPLE_NANOS: f64 = u64::MAX as f64;

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

pub(super) fn invalid(
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
pub(super) enum Sampler {
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
pub(super) fn secs_to_nanos(secs: f64) -> u64 {
    let nanos = secs * 1e9;
    // The common case first, converted through `i64`: the same value as the `u64` conversion
    // below for every value in range (under 2^52 + 1), with fewer instructions.
    if nanos > 0.0 && nanos < EXACT_HALVES {
        return (nanos + 0.5) as i64 as u64;
    }
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
pub(super) const EXACT_HALVES: f64 = 4_503_599_627_370_496.0;

pub(super) fn nanos_to_duration(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

pub(super) fn positive(
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
    #[inline(always)]
    pub fn sample_nanos<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        // The log-normal, the common case, inline at the caller: exactly the draw of
        // `LogNormal::sample` (one standard-normal z-score, then `from_zscore`), without the
        // two calls around it (pinned by `log_normal_fast_path_matches_rand_distr`).
        if let Sampler::LogNormal { dist, .. } = &self.sampler {
            return secs_to_nanos(dist.from_zscore(StandardNormal.sample(rng)));
        }
        self.sample_nanos_other(rng)
    }

    /// Every distribution but the log-normal.
    fn sample_nanos_other<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
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
}
