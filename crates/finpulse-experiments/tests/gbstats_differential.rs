//! Differential test: every number finpulse-experiments computes against its reference on the
//! same inputs — GrowthBook's `gbstats` 0.8.0 for the tests, statistics and SRM, statsmodels'
//! `multipletests` for Holm and Benjamini–Hochberg, and the `growthbook` SDK for bucketing.
//!
//! The inputs are generated here from a fixed seed: thousands of sufficient statistics of every
//! kind, with degenerate ones mixed in (no units, one unit, a zero baseline, zero variance, a
//! zero ratio denominator, a constant pre-period), under every engine, effect type and prior.
//! They go to `tests/gbstats_reference.py` as JSON, run by the interpreter
//! `tools/reference-python.sh` prepares, in a virtual environment of its own (gbstats pinned
//! to 0.8.0 here, with the older NumPy it needs); without Python or those packages the test
//! fails naming what is missing.
//!
//! Tolerance: |ours − theirs| ≤ 1e-6 · max(1, |theirs|), i.e. absolute for numbers of magnitude
//! at most 1 (p-values, chances, most effects) and relative above. Guards, unit counts and
//! bucketing are compared exactly.

use finpulse_experiments::{
    ArmSummary, BayesianConfig, BucketRange, DifferenceType, FrequentistConfig, GaussianPrior, Guard, HashVersion, Moments, PriorScale,
    Proportion, Ratio, RegressionAdjusted, SampleMean, Statistic, bayesian_test, benjamini_hochberg, bucket, bucket_ranges,
    choose_variation, holm, sequential_test, srm_p_value, welch_t_test,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const GBSTATS_VERSION: &str = "0.8.0";
const TOLERANCE: f64 = 1e-6;
const SEED: u64 = 0x6b57_a75e;
/// A/B cases per (statistic kind, engine) pair: 4 kinds × 3 engines.
const CASES_PER_CELL: usize = 300;
const SRM_CASES: usize = 400;
const MULTIPLE_CASES: usize = 300;
const HASH_CASES: usize = 3000;
const RANGE_CASES: usize = 300;

/// This package's directory, asked at run time (a compile-time path would point into whichever
/// checkout built the test binary when builds are cached across checkouts).
fn package_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Generating cases

#[derive(Clone, Copy, Debug, PartialEq)]
enum Engine {
    Welch,
    Sequential,
    Bayesian,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    SampleMean,
    Proportion,
    Ratio,
    RegressionAdjusted,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    control: Statistic,
    treatment: Statistic,
    engine: Engine,
    difference: DifferenceType,
    alpha: f64,
    tuning_parameter: f64,
    prior: GaussianPrior,
    prior_scale: PriorScale,
    inverse: bool,
}

struct Generator(Pcg64);

impl Generator {
    fn chance(&mut self, p: f64) -> bool {
        self.0.random::<f64>() < p
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.random::<f64>()
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller: enough for spreading test inputs.
        let u = 1.0 - self.0.random::<f64>();
        let v = self.0.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Units: empty, one, a handful, or anything up to five million.
    fn units(&mut self) -> u64 {
        let r = self.0.random::<f64>();
        if r < 0.02 {
            0
        } else if r < 0.05 {
            1
        } else if r < 0.15 {
            self.0.random_range(2..10)
        } else if r < 0.5 {
            self.0.random_range(10..1_000)
        } else if r < 0.85 {
            self.0.random_range(1_000..100_000)
        } else {
            self.0.random_range(100_000..5_000_000)
        }
    }

    /// A per-unit mean over many orders of magnitude, sometimes negative (refunds).
    fn mean(&mut self) -> f64 {
        let magnitude = 10f64.powf(self.uniform(-3.0, 4.0));
        if self.chance(0.1) { -magnitude } else { magnitude }
    }

    /// Moments of `n` units with mean `mean` and standard deviation `sd`; sometimes all units
    /// equal (zero variance, exactly) or summing to zero (zero mean, positive variance).
    fn sample_mean(&mut self, n: u64, mean: f64, sd: f64) -> SampleMean {
        let nf = n as f64;
        if self.chance(0.04) {
            let c = mean.round().clamp(-50.0, 50.0);
            return SampleMean { n, sum: c * nf, sum_squares: c * c * nf };
        }
        if self.chance(0.04) {
            return SampleMean { n, sum: 0.0, sum_squares: if n == 0 { 0.0 } else { sd * sd * (nf - 1.0).max(1.0) } };
        }
        let sum = mean * nf;
        let sum_squares = if n == 0 { 0.0 } else { sd * sd * (nf - 1.0) + sum * sum / nf };
        SampleMean { n, sum, sum_squares }
    }

    fn proportion(&mut self, n: u64, rate: f64) -> Proportion {
        let r = self.0.random::<f64>();
        let successes = if r < 0.04 {
            0
        } else if r < 0.06 {
            n
        } else {
            ((n as f64 * rate).round() as u64).min(n)
        };
        Proportion { n, successes }
    }

    fn rate(&mut self) -> f64 {
        if self.chance(0.5) { 10f64.powf(self.uniform(-3.0, -0.3)) } else { self.uniform(0.0, 1.0) }
    }

    /// A metric's moments in one variation: `shape_is_mean` picks sample mean or proportion;
    /// `base` and `sd` describe the per-unit distribution.
    fn moments(&mut self, shape_is_mean: bool, n: u64, base: f64, sd: f64, rate: f64) -> Moments {
        if shape_is_mean { Moments::SampleMean(self.sample_mean(n, base, sd)) } else { Moments::Proportion(self.proportion(n, rate)) }
    }

    /// Σxy for two metrics with correlation `rho`, given their moments.
    fn cross(&mut self, n: u64, x: &Moments, y: &Moments, rho: f64) -> f64 {
        let nf = n as f64;
        if n == 0 {
            return 0.0;
        }
        let sd = |m: &Moments| m.variance().max(0.0).sqrt();
        rho * sd(x) * sd(y) * (nf - 1.0).max(0.0) + x.sum() * y.sum() / nf
    }

    /// Control and treatment of one kind; the treatment's mean moved by a random lift.
    fn pair(&mut self, kind: Kind) -> (Statistic, Statistic) {
        let n_a = self.units();
        let n_b = if self.chance(0.7) && n_a > 0 { ((n_a as f64) * self.uniform(0.8, 1.2)).round() as u64 } else { self.units() };
        let lift = if self.chance(0.1) { self.uniform(-0.9, 2.0) } else { 0.05 * self.normal() };
        let (base, cv, rate) = (self.mean(), self.uniform(0.1, 5.0), self.rate());
        let sd = base.abs() * cv;
        let rate_b = (rate * (1.0 + lift)).clamp(0.0, 1.0);
        match kind {
            Kind::SampleMean => (
                Statistic::SampleMean(self.sample_mean(n_a, base, sd)),
                Statistic::SampleMean(self.sample_mean(n_b, base * (1.0 + lift), sd)),
            ),
            Kind::Proportion => (Statistic::Proportion(self.proportion(n_a, rate)), Statistic::Proportion(self.proportion(n_b, rate_b))),
            Kind::Ratio => {
                let (m_mean, d_mean) = (self.chance(0.7), self.chance(0.5));
                let (d_base, d_rate, rho) = (self.uniform(0.5, 20.0), self.rate(), self.uniform(-0.5, 0.95));
                let zero_denominator = self.chance(0.03);
                let ratio = |g: &mut Self, n: u64, lift: f64| {
                    let numerator = g.moments(m_mean, n, base * (1.0 + lift), sd, (rate * (1.0 + lift)).clamp(0.0, 1.0));
                    let denominator = if zero_denominator {
                        Moments::SampleMean(SampleMean { n, sum: 0.0, sum_squares: 0.0 })
                    } else {
                        g.moments(d_mean, n, d_base, d_base * 0.5, d_rate)
                    };
                    let sum_of_products = g.cross(n, &numerator, &denominator, rho);
                    Statistic::Ratio(Ratio { n, numerator, denominator, sum_of_products })
                };
                (ratio(self, n_a, 0.0), ratio(self, n_b, lift))
            }
            Kind::RegressionAdjusted => {
                let (post_mean, pre_mean) = (self.chance(0.7), self.chance(0.7));
                let rho = if self.chance(0.1) { 0.0 } else { self.uniform(-0.3, 0.99) };
                let constant_pre = self.chance(0.05);
                let adjusted = |g: &mut Self, n: u64, lift: f64| {
                    let post = g.moments(post_mean, n, base * (1.0 + lift), sd, (rate * (1.0 + lift)).clamp(0.0, 1.0));
                    let pre = if constant_pre {
                        Moments::SampleMean(SampleMean { n, sum: 2.0 * n as f64, sum_squares: 4.0 * n as f64 })
                    } else {
                        g.moments(pre_mean, n, base, sd, rate)
                    };
                    let post_pre_sum_of_products = g.cross(n, &post, &pre, rho);
                    Statistic::RegressionAdjusted(RegressionAdjusted { n, post, pre, post_pre_sum_of_products })
                };
                (adjusted(self, n_a, 0.0), adjusted(self, n_b, lift))
            }
        }
    }

    fn case(&mut self, kind: Kind, engine: Engine) -> Case {
        let (control, treatment) = self.pair(kind);
        let r = self.0.random::<f64>();
        let difference = if r < 0.45 {
            DifferenceType::Relative
        } else if r < 0.85 {
            DifferenceType::Absolute
        } else {
            let traffic_proportion = if self.chance(0.1) { 0.0 } else { self.uniform(0.01, 1.0) };
            DifferenceType::Scaled { traffic_proportion, phase_length_days: self.uniform(0.5, 60.0) }
        };
        let alpha = [0.05, 0.1, 0.01, self.uniform(0.001, 0.3)][self.0.random_range(0..4)];
        let tuning_parameter = if self.chance(0.5) { 5000.0 } else { 10f64.powf(self.uniform(2.0, 6.0)) };
        let prior = if self.chance(0.5) {
            GaussianPrior::FLAT
        } else {
            GaussianPrior::normal(0.1 * self.normal(), 10f64.powf(self.uniform(-2.0, 0.5)))
        };
        let prior_scale = if self.chance(0.8) { PriorScale::Relative } else { PriorScale::Absolute };
        Case { control, treatment, engine, difference, alpha, tuning_parameter, prior, prior_scale, inverse: self.chance(0.3) }
    }
}

fn moments_json(m: &Moments) -> Value {
    match m {
        Moments::SampleMean(s) => json!({"type": "mean", "n": s.n, "sum": s.sum, "sum_squares": s.sum_squares}),
        Moments::Proportion(p) => json!({"type": "proportion", "n": p.n, "sum": p.successes}),
    }
}

fn statistic_json(s: &Statistic) -> Value {
    match s {
        Statistic::SampleMean(m) => moments_json(&Moments::SampleMean(*m)),
        Statistic::Proportion(p) => moments_json(&Moments::Proportion(*p)),
        Statistic::Ratio(r) => json!({"type": "ratio", "n": r.n, "m": moments_json(&r.numerator), "d": moments_json(&r.denominator),
            "m_d_sum_of_products": r.sum_of_products}),
        Statistic::RegressionAdjusted(r) => json!({"type": "ra", "n": r.n, "post": moments_json(&r.post), "pre": moments_json(&r.pre),
            "post_pre_sum_of_products": r.post_pre_sum_of_products}),
    }
}

fn case_json(c: &Case) -> Value {
    let (difference, traffic, days) = match c.difference {
        DifferenceType::Relative => ("relative", 1.0, 1.0),
        DifferenceType::Absolute => ("absolute", 1.0, 1.0),
        DifferenceType::Scaled { traffic_proportion, phase_length_days } => ("scaled", traffic_proportion, phase_length_days),
    };
    let engine = match c.engine {
        Engine::Welch => "frequentist",
        Engine::Sequential => "sequential",
        Engine::Bayesian => "bayesian",
    };
    let scale = if c.prior_scale == PriorScale::Relative { "relative" } else { "absolute" };
    json!({
        "engine": engine, "a": statistic_json(&c.control), "b": statistic_json(&c.treatment),
        "difference_type": difference, "traffic_proportion_b": traffic, "phase_length_days": days,
        "alpha": c.alpha, "sequential_tuning_parameter": c.tuning_parameter, "inverse": c.inverse,
        "prior": {"mean": c.prior.mean, "variance": c.prior.variance, "proper": c.prior.proper, "scale": scale},
    })
}

struct SrmCase {
    users: Vec<u64>,
    weights: Vec<f64>,
}

struct RangeCase {
    variations: usize,
    coverage: f64,
    weights: Option<Vec<f64>>,
    buckets: Vec<f64>,
}

struct HashCase {
    seed: String,
    value: String,
    version: HashVersion,
}

struct Inputs {
    tests: Vec<Case>,
    srm: Vec<SrmCase>,
    multiple: Vec<Vec<f64>>,
    hashes: Vec<HashCase>,
    ranges: Vec<RangeCase>,
}

fn srm_case(g: &mut Generator) -> SrmCase {
    let k = g.0.random_range(2..7);
    let mut weights: Vec<f64> = (0..k).map(|_| g.uniform(0.05, 1.0)).collect();
    if g.chance(0.2) {
        weights[g.0.random_range(0..k)] = 0.0;
    }
    let total: f64 = weights.iter().sum();
    let users_total = if g.chance(0.05) { 0.0 } else { 10f64.powf(g.uniform(1.0, 6.5)) };
    let users = weights
        .iter()
        .map(|w| {
            let expected = w / total * users_total;
            // Mostly close to the split, sometimes a broken one.
            let skew = if g.chance(0.2) { g.uniform(0.8, 1.2) } else { 1.0 + 0.01 * g.normal() };
            (expected * skew).max(0.0).round() as u64
        })
        .collect();
    SrmCase { users, weights }
}

fn p_values(g: &mut Generator) -> Vec<f64> {
    let m = g.0.random_range(1..30);
    let mut p: Vec<f64> = (0..m)
        .map(|_| {
            let r = g.0.random::<f64>();
            if r < 0.05 {
                0.0
            } else if r < 0.1 {
                1.0
            } else if r < 0.4 {
                10f64.powf(g.uniform(-6.0, -1.0))
            } else {
                g.uniform(0.0, 1.0)
            }
        })
        .collect();
    if m > 2 && g.chance(0.3) {
        p[1] = p[0]; // ties
    }
    p
}

/// Strings mixing ASCII, Chinese and characters outside the BMP (surrogate pairs in UTF-16).
fn text(g: &mut Generator) -> String {
    const PIECES: [&str; 12] = ["user", "-", "_", "0", "7", "42", "用户", "新手礼包", "借", "😀", "𠀋", "ä"];
    let len = g.0.random_range(0..6);
    (0..len).map(|_| PIECES[g.0.random_range(0..PIECES.len())]).collect()
}

fn range_case(g: &mut Generator) -> RangeCase {
    let variations = g.0.random_range(0..7);
    let coverage = if g.chance(0.2) { g.uniform(-0.2, 1.2) } else { g.uniform(0.0, 1.0) };
    let r = g.0.random::<f64>();
    let weights = if r < 0.2 {
        None
    } else {
        let raw: Vec<f64> = (0..variations).map(|_| g.uniform(0.0, 1.0)).collect();
        let total: f64 = raw.iter().sum();
        let mut w: Vec<f64> = raw.iter().map(|x| x / total).collect();
        if r < 0.35 && !w.is_empty() {
            w[0] += 0.3; // sums to 1.3: the SDK falls back to equal weights
        } else if r < 0.4 {
            w.push(0.0); // wrong length
        }
        Some(w)
    };
    let mut buckets: Vec<f64> = (0..20).map(|_| f64::from(g.0.random_range(0..10_000u32)) / 10_000.0).collect();
    buckets.extend([0.0, 0.25, 0.5, 0.9999]);
    RangeCase { variations, coverage, weights, buckets }
}

fn inputs() -> Inputs {
    let mut g = Generator(Pcg64::seed_from_u64(SEED));
    let mut tests = Vec::new();
    for kind in [Kind::SampleMean, Kind::Proportion, Kind::Ratio, Kind::RegressionAdjusted] {
        for engine in [Engine::Welch, Engine::Sequential, Engine::Bayesian] {
            tests.extend((0..CASES_PER_CELL).map(|_| g.case(kind, engine)));
        }
    }
    let srm = (0..SRM_CASES).map(|_| srm_case(&mut g)).collect();
    let multiple = (0..MULTIPLE_CASES).map(|_| p_values(&mut g)).collect();
    let hashes = (0..HASH_CASES)
        .map(|_| HashCase {
            seed: text(&mut g),
            value: text(&mut g),
            version: if g.chance(0.7) { HashVersion::V2 } else { HashVersion::V1 },
        })
        .collect();
    let ranges = (0..RANGE_CASES).map(|_| range_case(&mut g)).collect();
    Inputs { tests, srm, multiple, hashes, ranges }
}

// ---------------------------------------------------------------------------------------------
// Running the reference

/// gbstats 0.8.0 pins NumPy and pandas below what the other references need (pyarrow wants
/// NumPy 2), so it lives in a virtual environment of its own, beside the shared one.
fn gbstats_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("FINPULSE_GBSTATS_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/finpulse/gbstats-venv")
}

fn reference_python() -> PathBuf {
    let script = package_dir().join("../../tools/reference-python.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("FINPULSE_BENCH_VENV", gbstats_venv())
        .args(["gbstats", "statsmodels", "growthbook"])
        .output()
        .expect("running tools/reference-python.sh (needs bash and python3 with venv)");
    assert!(
        out.status.success(),
        "this test needs Python with gbstats {GBSTATS_VERSION}, statsmodels and growthbook from PyPI, installed by tools/reference-python.sh, which failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = PathBuf::from(String::from_utf8(out.stdout).expect("interpreter path is UTF-8").trim());
    pin_gbstats(&python);
    python
}

/// reference-python.sh installs the newest gbstats; the reference is 0.8.0 exactly.
fn pin_gbstats(python: &PathBuf) {
    let version = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('gbstats'))"])
        .output()
        .expect("asking the reference Python for gbstats' version");
    if String::from_utf8_lossy(&version.stdout).trim() == GBSTATS_VERSION {
        return;
    }
    let out = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", &format!("gbstats=={GBSTATS_VERSION}")])
        .output()
        .expect("running pip in the reference Python");
    assert!(out.status.success(), "could not install gbstats=={GBSTATS_VERSION}:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn inputs_json(inputs: &Inputs) -> Value {
    let version = |v: HashVersion| if v == HashVersion::V2 { 2 } else { 1 };
    json!({
        "tests": inputs.tests.iter().map(case_json).collect::<Vec<_>>(),
        "srm": inputs.srm.iter().map(|c| json!({"users": c.users, "weights": c.weights})).collect::<Vec<_>>(),
        "multiple": inputs.multiple.iter().map(|p| json!({"p_values": p})).collect::<Vec<_>>(),
        "hash": inputs.hashes.iter().map(|h| json!({"seed": h.seed, "value": h.value, "version": version(h.version)})).collect::<Vec<_>>(),
        "ranges": inputs.ranges.iter().map(|r| json!({"num_variations": r.variations, "coverage": r.coverage, "weights": r.weights,
            "n": r.buckets})).collect::<Vec<_>>(),
    })
}

struct Shared {
    inputs: Inputs,
    answers: Value,
}

/// The inputs and the reference's answers, computed once for all the tests in this file.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let inputs = inputs();
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("cases.json");
        std::fs::write(&path, serde_json::to_vec(&inputs_json(&inputs)).expect("serialising cases")).expect("writing cases");
        let script = package_dir().join("tests/gbstats_reference.py");
        let out = Command::new(reference_python()).arg(&script).arg(&path).output().expect("running tests/gbstats_reference.py");
        assert!(out.status.success(), "tests/gbstats_reference.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let answers: Value = serde_json::from_slice(&out.stdout).expect("reference answers are JSON");
        assert_eq!(answers["gbstats_version"], GBSTATS_VERSION);
        Shared { inputs, answers }
    })
}

// ---------------------------------------------------------------------------------------------
// Comparing

/// A reference number, sent as Python's repr (see `number` in the script).
fn reference_number(v: &Value) -> f64 {
    let text = v.as_str().unwrap_or_else(|| panic!("expected a number as a string, got {v}"));
    text.parse().unwrap_or_else(|_| panic!("not a number: {text}"))
}

#[derive(Default)]
struct Comparison {
    /// How many values of each field were compared.
    compared: BTreeMap<String, usize>,
    mismatches: Vec<String>,
    /// The largest |ours − theirs| / max(1, |theirs|) seen.
    worst: f64,
}

impl Comparison {
    fn number(&mut self, field: &str, case: usize, ours: f64, theirs: &Value) {
        *self.compared.entry(field.to_string()).or_default() += 1;
        let theirs = reference_number(theirs);
        let scaled_error = if ours == theirs { 0.0 } else { (ours - theirs).abs() / theirs.abs().max(1.0) };
        self.worst = self.worst.max(scaled_error);
        let agree = scaled_error <= TOLERANCE;
        if !agree || ours.is_nan() {
            self.mismatches.push(format!("case {case} {field}: ours {ours:e}, reference {theirs:e}"));
        }
    }

    fn exact<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, case: usize, ours: T, theirs: T) {
        *self.compared.entry(field.to_string()).or_default() += 1;
        if ours != theirs {
            self.mismatches.push(format!("case {case} {field}: ours {ours:?}, reference {theirs:?}"));
        }
    }

    fn assert_clean(&self, what: &str) {
        assert!(
            self.mismatches.is_empty(),
            "{} of {what}'s values differ from the reference (first 30):\n{}",
            self.mismatches.len(),
            self.mismatches.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
    }

    fn count(&self, field: &str) -> usize {
        self.compared.get(field).copied().unwrap_or(0)
    }
}

/// One A/B test's answer, whichever engine gave it.
struct Answer {
    expected: f64,
    ci: [f64; 2],
    uplift: [f64; 2],
    guard: Option<Guard>,
    /// p-value, or chance to win and the two risks.
    p_value: Option<f64>,
    bayes: Option<[f64; 3]>,
    arms: [ArmSummary; 2],
    theta: Option<f64>,
}

fn run_case(c: &Case) -> Answer {
    let frequentist = FrequentistConfig { alpha: c.alpha, difference: c.difference };
    match c.engine {
        Engine::Welch | Engine::Sequential => {
            let r = if c.engine == Engine::Welch {
                welch_t_test(&c.control, &c.treatment, &frequentist)
            } else {
                sequential_test(&c.control, &c.treatment, &frequentist, c.tuning_parameter)
            }
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
            Answer {
                expected: r.expected,
                ci: [r.ci.lower, r.ci.upper],
                uplift: [r.uplift.mean, r.uplift.stddev],
                guard: r.guard,
                p_value: Some(r.p_value),
                bayes: None,
                arms: [r.control, r.treatment],
                theta: r.theta,
            }
        }
        Engine::Bayesian => {
            let config =
                BayesianConfig { alpha: c.alpha, inverse: c.inverse, difference: c.difference, prior: c.prior, prior_scale: c.prior_scale };
            let r = bayesian_test(&c.control, &c.treatment, &config).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            Answer {
                expected: r.expected,
                ci: [r.ci.lower, r.ci.upper],
                uplift: [r.uplift.mean, r.uplift.stddev],
                guard: r.guard,
                p_value: None,
                bayes: Some([r.chance_to_win, r.risk.control, r.risk.treatment]),
                arms: [r.control, r.treatment],
                theta: r.theta,
            }
        }
    }
}

/// gbstats raises ZeroDivisionError on two input classes, both a Bayesian test over a zero
/// control mean whose prior must be rescaled by that mean: a relative effect with a prior on the
/// absolute scale (the division happens before gbstats' zero-baseline guard), where finpulse
/// gives that guard's answer; and an absolute or scaled effect with a prior on the relative scale
/// (rescaled to variance 0), where finpulse drops a flat prior and guards a proper one.
/// `None` for any other input: gbstats should not have raised.
fn answer_where_gbstats_raises(c: &Case, ours: &Answer) -> Option<Option<Guard>> {
    if c.engine != Engine::Bayesian || ours.arms[0].unadjusted_mean != 0.0 {
        return None;
    }
    match (c.difference, c.prior_scale) {
        (DifferenceType::Relative, PriorScale::Absolute) => Some(Some(Guard::ZeroBaseline)),
        (DifferenceType::Relative, PriorScale::Relative) => None,
        (_, PriorScale::Relative) => Some(c.prior.proper.then_some(Guard::ZeroBaseline)),
        (_, PriorScale::Absolute) => None,
    }
}

fn check_where_gbstats_raises(c: &Case, ours: &Answer, raised: &str, i: usize, cmp: &mut Comparison) {
    let wanted = answer_where_gbstats_raises(c, ours);
    cmp.exact("raised: a known class", i, wanted.is_some(), true);
    cmp.exact("raised: ZeroDivisionError", i, raised, "ZeroDivisionError");
    if let Some(guard) = wanted {
        cmp.exact("raised: our guard", i, ours.guard, guard);
    }
    let all_finite = [ours.expected, ours.ci[0], ours.ci[1], ours.uplift[0], ours.uplift[1]].iter().all(|x| x.is_finite());
    cmp.exact("raised: our answer is finite", i, all_finite, true);
}

fn compare_arm(cmp: &mut Comparison, i: usize, side: &str, ours: &ArmSummary, theirs: &Value) {
    cmp.exact(&format!("{side}.n"), i, ours.n, theirs["n"].as_u64().expect("n"));
    cmp.number(&format!("{side}.mean"), i, ours.mean, &theirs["mean"]);
    cmp.number(&format!("{side}.unadjusted_mean"), i, ours.unadjusted_mean, &theirs["unadjusted_mean"]);
    cmp.number(&format!("{side}.variance"), i, ours.variance, &theirs["variance"]);
    cmp.number(&format!("{side}.stddev"), i, ours.stddev(), &theirs["stddev"]);
}

fn compare_case(cmp: &mut Comparison, i: usize, c: &Case, ours: &Answer, theirs: &Value) {
    if let Some(raised) = theirs.get("raised") {
        check_where_gbstats_raises(c, ours, raised.as_str().expect("exception name"), i, cmp);
        return;
    }
    cmp.exact("guard", i, ours.guard.map(|g| g.message()), theirs["error_message"].as_str());
    cmp.number("expected", i, ours.expected, &theirs["expected"]);
    cmp.number("ci.lower", i, ours.ci[0], &theirs["ci"][0]);
    cmp.number("ci.upper", i, ours.ci[1], &theirs["ci"][1]);
    cmp.number("uplift.mean", i, ours.uplift[0], &theirs["uplift_mean"]);
    cmp.number("uplift.stddev", i, ours.uplift[1], &theirs["uplift_stddev"]);
    if let Some(p) = ours.p_value {
        cmp.number("p_value", i, p, &theirs["p_value"]);
    }
    if let Some([ctw, risk_control, risk_treatment]) = ours.bayes {
        cmp.number("chance_to_win", i, ctw, &theirs["chance_to_win"]);
        cmp.number("risk.control", i, risk_control, &theirs["risk"][0]);
        cmp.number("risk.treatment", i, risk_treatment, &theirs["risk"][1]);
    }
    compare_arm(cmp, i, "control", &ours.arms[0], &theirs["stat_a"]);
    compare_arm(cmp, i, "treatment", &ours.arms[1], &theirs["stat_b"]);
    if let Some(theta) = theirs.get("theta") {
        cmp.number("theta", i, ours.theta.expect("regression-adjusted cases report theta"), theta);
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn ab_tests_match_gbstats_on_random_and_degenerate_inputs() {
    let Shared { inputs, answers } = shared();
    let reference = answers["tests"].as_array().expect("tests");
    assert_eq!(reference.len(), inputs.tests.len());
    let mut cmp = Comparison::default();
    let mut guards: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for (i, (c, theirs)) in inputs.tests.iter().zip(reference).enumerate() {
        let ours = run_case(c);
        compare_case(&mut cmp, i, c, &ours, theirs);
        *guards.entry(ours.guard.map(|g| g.message())).or_default() += 1;
    }
    cmp.assert_clean("the A/B tests");

    // The harness compared what it should have: every answered case on every common field, each
    // engine's own fields on its cases, θ on every regression-adjusted one.
    let raised = reference.iter().filter(|r| r.get("raised").is_some()).count();
    let answered = inputs.tests.len() - raised;
    let bayesian_answered =
        inputs.tests.iter().zip(reference).filter(|(c, r)| c.engine == Engine::Bayesian && r.get("raised").is_none()).count();
    let adjusted = inputs.tests.iter().filter(|c| matches!(c.control, Statistic::RegressionAdjusted(_))).count();
    for field in ["guard", "expected", "ci.lower", "ci.upper", "uplift.mean", "uplift.stddev", "control.variance", "treatment.stddev"] {
        assert_eq!(cmp.count(field), answered, "{field}");
    }
    assert_eq!(cmp.count("p_value"), inputs.tests.len() - 4 * CASES_PER_CELL);
    assert_eq!(cmp.count("chance_to_win"), bayesian_answered);
    assert_eq!(cmp.count("risk.treatment"), bayesian_answered);
    assert_eq!(
        cmp.count("theta"),
        adjusted
            - inputs
                .tests
                .iter()
                .zip(reference)
                .filter(|(c, r)| r.get("raised").is_some() && matches!(c.control, Statistic::RegressionAdjusted(_)))
                .count()
    );
    assert_eq!(cmp.count("raised: ZeroDivisionError"), raised);

    // The degenerate inputs were really there, and most cases were real tests.
    assert!(raised > 0, "no case exercised gbstats' ZeroDivisionError class");
    for guard in [Guard::ZeroBaseline, Guard::ZeroOrNegativeVariance, Guard::NoUnits, Guard::ZeroScaledVariation] {
        assert!(guards.get(&Some(guard.message())).copied().unwrap_or(0) >= 10, "too few {guard:?} cases: {guards:?}");
    }
    assert!(guards[&None] * 2 > inputs.tests.len(), "most cases should be tested, not guarded: {guards:?}");
    eprintln!(
        "compared {} values over {} A/B cases ({raised} where gbstats raises), worst scaled error {:e}; guards {guards:?}",
        cmp.compared.values().sum::<usize>(),
        inputs.tests.len(),
        cmp.worst
    );
}

#[test]
fn the_comparison_rejects_answers_off_by_more_than_the_tolerance() {
    let Shared { inputs, answers } = shared();
    let reference = answers["tests"].as_array().expect("tests");
    let mut cmp = Comparison::default();
    let mut perturbed = 0;
    for (i, (c, theirs)) in inputs.tests.iter().zip(reference).enumerate() {
        if theirs.get("raised").is_some() {
            continue;
        }
        let mut ours = run_case(c);
        // Off by ten times the tolerance, absolute or relative, whichever is larger.
        ours.expected += 10.0 * TOLERANCE * ours.expected.abs().max(1.0);
        compare_case(&mut cmp, i, c, &ours, theirs);
        perturbed += 1;
    }
    assert_eq!(cmp.count("expected"), perturbed);
    assert_eq!(cmp.mismatches.len(), perturbed, "every perturbed `expected`, and nothing else, must be caught");
    assert!(cmp.mismatches.iter().all(|m| m.contains(" expected: ")));
}

#[test]
fn srm_p_values_match_gbstats_check_srm() {
    let Shared { inputs, answers } = shared();
    let reference = answers["srm"].as_array().expect("srm");
    let mut cmp = Comparison::default();
    for (i, (c, theirs)) in inputs.srm.iter().zip(reference).enumerate() {
        let ours = srm_p_value(&c.users, &c.weights).unwrap_or_else(|e| panic!("{e}"));
        cmp.number("srm p-value", i, ours, &theirs["p_value"]);
    }
    cmp.assert_clean("SRM");
    eprintln!("SRM: {SRM_CASES} p-values, worst scaled error {:e}", cmp.worst);
    assert_eq!(cmp.count("srm p-value"), SRM_CASES);
    let flagged = reference.iter().filter(|r| reference_number(&r["p_value"]) < 0.001).count();
    assert!(flagged > 10 && flagged < SRM_CASES - 10, "both matched and mismatched splits should occur: {flagged}");
}

#[test]
fn holm_and_benjamini_hochberg_match_statsmodels() {
    let Shared { inputs, answers } = shared();
    let reference = answers["multiple"].as_array().expect("multiple");
    let mut cmp = Comparison::default();
    for (i, (p, theirs)) in inputs.multiple.iter().zip(reference).enumerate() {
        for (name, ours) in [("holm", holm(p)), ("benjamini_hochberg", benjamini_hochberg(p))] {
            let ours = ours.unwrap_or_else(|e| panic!("{e}"));
            let theirs = theirs[name].as_array().expect("adjusted p-values");
            cmp.exact(&format!("{name} length"), i, ours.len(), theirs.len());
            for (x, y) in ours.iter().zip(theirs) {
                cmp.number(name, i, *x, y);
            }
        }
    }
    cmp.assert_clean("the multiple-comparison corrections");
    eprintln!("Holm/BH: worst scaled error {:e}", cmp.worst);
    let total: usize = inputs.multiple.iter().map(Vec::len).sum();
    assert_eq!((cmp.count("holm"), cmp.count("benjamini_hochberg")), (total, total));
}

#[test]
fn bucketing_matches_the_growthbook_sdk() {
    let Shared { inputs, answers } = shared();
    let mut cmp = Comparison::default();
    for (i, (h, theirs)) in inputs.hashes.iter().zip(answers["hash"].as_array().expect("hash")).enumerate() {
        cmp.exact("hash", i, bucket(&h.seed, &h.value, h.version), reference_number(theirs));
    }
    for (i, (r, theirs)) in inputs.ranges.iter().zip(answers["ranges"].as_array().expect("ranges")).enumerate() {
        let ranges = bucket_ranges(r.variations, r.coverage, r.weights.as_deref()).unwrap_or_else(|e| panic!("{e}"));
        let reference: Vec<BucketRange> = theirs["ranges"]
            .as_array()
            .expect("ranges")
            .iter()
            .map(|pair| BucketRange { start: reference_number(&pair[0]), end: reference_number(&pair[1]) })
            .collect();
        cmp.exact("ranges", i, &ranges, &reference);
        for (n, chosen) in r.buckets.iter().zip(theirs["chosen"].as_array().expect("chosen")) {
            let theirs = usize::try_from(chosen.as_i64().expect("index")).ok();
            cmp.exact("chosen", i, choose_variation(*n, &ranges), theirs);
        }
    }
    cmp.assert_clean("bucketing");
    assert_eq!(cmp.count("hash"), HASH_CASES);
    assert_eq!(cmp.count("ranges"), RANGE_CASES);
    assert_eq!(cmp.count("chosen"), inputs.ranges.iter().map(|r| r.buckets.len()).sum::<usize>());
}
