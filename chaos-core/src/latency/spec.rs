//! The TOML/JSON form of a latency distribution.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::serde_duration;

use super::{LatencyDist, LatencyError, invalid};

// ---- file format ----

/// The written form of a distribution, kept so a plan round-trips as the user wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Spec {
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
pub(super) struct LogNormalSpec {
    #[serde(
        default,
        with = "crate::duration::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) p50: Option<Duration>,
    #[serde(
        default,
        with = "crate::duration::serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) p99: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) mu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sigma: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuantilePoint {
    pub(super) q: f64,
    #[serde(with = "serde_duration")]
    pub(super) value: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MixtureComponent {
    pub(super) weight: f64,
    pub(super) latency: LatencyDist,
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
