//! TEMPORARY stand-in for the chaos-core API contract, used only until chaos-core lands.
#![allow(missing_docs, dead_code)]

use rand::SeedableRng;
use rand_distr::Distribution;
use serde::Deserialize;
use std::time::Duration;

fn dur(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration `{s}`: {e}"))
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Constant(u64),
    Uniform(u64, u64),
    LogNormal(f64, f64),
    Exponential(f64),
    Mixture(Vec<(f64, LatencyDist)>),
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "LatRepr")]
pub struct LatencyDist {
    kind: Kind,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LatRepr {
    Short(String),
    Long(LatLong),
}
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum LatLong {
    Constant(String),
    Uniform { low: String, high: String },
    LogNormal(LnRepr),
    Exponential { mean: String },
    Mixture(Vec<Comp>),
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LnRepr {
    p50: Option<String>,
    p99: Option<String>,
    mu: Option<f64>,
    sigma: Option<f64>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Comp {
    weight: f64,
    latency: LatencyDist,
}

impl TryFrom<LatRepr> for LatencyDist {
    type Error = String;
    fn try_from(r: LatRepr) -> Result<Self, String> {
        Ok(match r {
            LatRepr::Short(s) => Self::constant(dur(&s)?),
            LatRepr::Long(LatLong::Constant(s)) => Self::constant(dur(&s)?),
            LatRepr::Long(LatLong::Uniform { low, high }) => {
                Self::uniform(dur(&low)?, dur(&high)?).map_err(|e| e.0)?
            }
            LatRepr::Long(LatLong::Exponential { mean }) => {
                Self::exponential(dur(&mean)?).map_err(|e| e.0)?
            }
            LatRepr::Long(LatLong::LogNormal(l)) => match (l.p50, l.p99, l.mu, l.sigma) {
                (Some(a), Some(b), None, None) => {
                    Self::log_normal_p50_p99(dur(&a)?, dur(&b)?).map_err(|e| e.0)?
                }
                (None, None, Some(m), Some(s)) => Self::log_normal(m, s).map_err(|e| e.0)?,
                _ => return Err("log_normal needs p50+p99 or mu+sigma".into()),
            },
            LatRepr::Long(LatLong::Mixture(c)) => {
                Self::mixture(c.into_iter().map(|c| (c.weight, c.latency)).collect())
                    .map_err(|e| e.0)?
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyError(pub String);
impl std::fmt::Display for LatencyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LatencyError {}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl LatencyDist {
    pub fn constant(d: Duration) -> Self {
        Self {
            kind: Kind::Constant(nanos(d)),
        }
    }
    pub fn uniform(low: Duration, high: Duration) -> Result<Self, LatencyError> {
        if high < low {
            return Err(LatencyError("high < low".into()));
        }
        Ok(Self {
            kind: Kind::Uniform(nanos(low), nanos(high)),
        })
    }
    pub fn log_normal(mu: f64, sigma: f64) -> Result<Self, LatencyError> {
        if !(sigma > 0.0 && mu.is_finite()) {
            return Err(LatencyError("bad log_normal".into()));
        }
        Ok(Self {
            kind: Kind::LogNormal(mu, sigma),
        })
    }
    pub fn log_normal_p50_p99(p50: Duration, p99: Duration) -> Result<Self, LatencyError> {
        let mu = p50.as_secs_f64().ln();
        let sigma = (p99.as_secs_f64().ln() - mu) / 2.326_347_874_040_841;
        Self::log_normal(mu, sigma)
    }
    pub fn exponential(mean: Duration) -> Result<Self, LatencyError> {
        Ok(Self {
            kind: Kind::Exponential(mean.as_secs_f64()),
        })
    }
    pub fn mixture(c: Vec<(f64, LatencyDist)>) -> Result<Self, LatencyError> {
        let total: f64 = c.iter().map(|x| x.0).sum();
        if c.is_empty() || total <= 0.0 {
            return Err(LatencyError("empty mixture".into()));
        }
        Ok(Self {
            kind: Kind::Mixture(c.into_iter().map(|(w, d)| (w / total, d)).collect()),
        })
    }
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        Duration::from_nanos(self.sample_nanos(rng))
    }
    pub fn sample_nanos<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match &self.kind {
            Kind::Constant(n) => *n,
            Kind::Uniform(a, b) => {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                a + ((b - a) as f64 * u) as u64
            }
            Kind::LogNormal(mu, sigma) => {
                let z: f64 = rand_distr::StandardNormal.sample(rng);
                ((mu + sigma * z).exp() * 1e9) as u64
            }
            Kind::Exponential(m) => {
                let e: f64 = rand_distr::Exp1.sample(rng);
                (e * m * 1e9) as u64
            }
            Kind::Mixture(c) => {
                let mut u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                for (w, d) in c {
                    if u < *w {
                        return d.sample_nanos(rng);
                    }
                    u -= w;
                }
                c.last().map(|x| x.1.sample_nanos(rng)).unwrap_or(0)
            }
        }
    }
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        match &self.kind {
            Kind::Constant(n) => Some(Duration::from_nanos(*n)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Throttle,
    ServerError(u16),
    Timeout,
    ConnectionReset,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Latency(LatencyDist),
    Error(ErrorKind),
    Hang { buffer: String },
    Status(u16),
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub site: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: String,
    pub duration: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: Option<String>,
    pub fault: Fault,
    #[serde(rename = "match", default)]
    pub r#match: Selector,
    pub probability: Option<f64>,
    pub window: Option<Window>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct PlanError(pub String);
impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for PlanError {}

pub struct CompiledPlan {
    seed: u64,
    rules: Vec<(Rule, Option<(Duration, Duration)>)>,
}

impl Plan {
    pub fn compile(&self) -> Result<CompiledPlan, PlanError> {
        let mut rules = Vec::new();
        for r in &self.rules {
            let w = match &r.window {
                Some(w) => Some((
                    dur(&w.start).map_err(PlanError)?,
                    dur(&w.duration).map_err(PlanError)?,
                )),
                None => None,
            };
            rules.push((r.clone(), w));
        }
        Ok(CompiledPlan {
            seed: self.seed,
            rules,
        })
    }
}

pub struct Call<'a> {
    pub request_key: u64,
    pub site: &'a str,
    pub service: &'a str,
    pub operation: &'a str,
    pub attempt: u32,
    pub event: Option<&'a serde_json::Value>,
}

pub trait MatchCounter {
    fn next_ordinal(&self, rule_index: usize) -> u64;
}
pub struct LocalMatchCounter(Vec<std::cell::Cell<u64>>);
impl LocalMatchCounter {
    pub fn new(n: usize) -> Self {
        Self(vec![std::cell::Cell::new(0); n])
    }
}
impl MatchCounter for LocalMatchCounter {
    fn next_ordinal(&self, i: usize) -> u64 {
        let v = self.0[i].get();
        self.0[i].set(v + 1);
        v
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Error { rule: usize, kind: ErrorKind },
    Hang { rule: usize, buffer: Duration },
    Status { rule: usize, status: u16 },
}

#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub added_latency: Duration,
    pub failure: Option<Failure>,
}

fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((pre, rest)) => {
            if !s.starts_with(pre) {
                return false;
            }
            let s = &s[pre.len()..];
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|i| s.is_char_boundary(i) && glob(rest, &s[i..]))
        }
    }
}

impl CompiledPlan {
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
    pub fn evaluate(&self, call: &Call<'_>, elapsed: Duration, _c: &dyn MatchCounter) -> Verdict {
        let mut v = Verdict::default();
        for (i, (r, w)) in self.rules.iter().enumerate() {
            let m = &r.r#match;
            if m.site.as_deref().is_some_and(|p| !glob(p, call.site))
                || m.service.as_deref().is_some_and(|p| !glob(p, call.service))
                || m.operation.as_deref().is_some_and(|p| !glob(p, call.operation))
            {
                continue;
            }
            if let Some((s, d)) = w {
                if elapsed < *s || elapsed >= *s + *d {
                    continue;
                }
            }
            let h = crate::rng::combine(
                crate::rng::combine(self.seed, i as u64),
                crate::rng::combine(
                    call.request_key,
                    crate::rng::hash_name(call.site) ^ u64::from(call.attempt),
                ),
            );
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            if u >= r.probability.unwrap_or(1.0) {
                continue;
            }
            match &r.fault {
                Fault::Latency(d) => {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h);
                    v.added_latency += d.sample(&mut rng);
                }
                Fault::Error(k) if v.failure.is_none() => {
                    v.failure = Some(Failure::Error {
                        rule: i,
                        kind: k.clone(),
                    })
                }
                Fault::Status(s) if v.failure.is_none() => {
                    v.failure = Some(Failure::Status { rule: i, status: *s })
                }
                Fault::Hang { buffer } if v.failure.is_none() => {
                    v.failure = Some(Failure::Hang {
                        rule: i,
                        buffer: dur(buffer).unwrap_or_default(),
                    })
                }
                _ => {}
            }
        }
        v
    }
}
