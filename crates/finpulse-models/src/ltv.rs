//! Customer-base models for lifetime value: BG/NBD (Fader, Hardie & Lee 2005), MBG/NBD
//! (Batislam, Denizel & Filiztekin 2007: drop-out possible at time zero too), BG/BB (Fader, Hardie
//! & Shang 2010: discrete opportunities, e.g. one per week or per campaign), Pareto/NBD
//! (Schmittlein, Morrison & Colombo 1987, in Fader & Hardie's likelihood form) and Gamma-Gamma
//! for spend (Fader, Hardie & Lee 2005), fitted by maximum likelihood.
//!
//! Every customer is summarised in one time unit (days or weeks): `frequency` = repeat
//! purchases, `recency` = age at the last purchase (0 without repeats), `age` (T) = time since
//! the first purchase to the end of calibration, and optionally `monetary` = average value of the
//! repeat purchases.

use crate::optimize::{Minimum, minimize, minimize_with_gradient, standard_errors_from_gradient};
use crate::special::{Hyp2f1PlusOne, digamma, hyp2f1, ln_gamma, log_add_exp, log_sub_exp};
use serde::Serialize;

/// One customer's purchase summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// The customer (user id, or the input file's id column).
    pub id: String,
    /// Repeat purchases (x).
    pub frequency: f64,
    /// Time of the last purchase since the first (t_x).
    pub recency: f64,
    /// Time since the first purchase to the end of calibration (T).
    pub age: f64,
    /// Average value of the repeat purchases, when known.
    pub monetary: Option<f64>,
}

/// What is wrong with a summary.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryError {
    /// A value out of its domain.
    #[error("row {row}, column '{column}': {problem}")]
    Value {
        /// One-based data row.
        row: usize,
        /// The column.
        column: &'static str,
        /// Why.
        problem: String,
    },
    /// Nothing to fit.
    #[error("no customers to fit{0}")]
    Empty(&'static str),
}

/// Checks one customer: finite values, non-negative integer frequency, 0 ≤ recency ≤ age,
/// recency 0 without repeats, and positive spend where there are repeats.
pub fn check_customer(row: usize, c: &Customer) -> Result<(), SummaryError> {
    let bad = |column, problem: String| Err(SummaryError::Value { row, column, problem });
    for (column, v) in [("frequency", c.frequency), ("recency", c.recency), ("T", c.age)] {
        if !v.is_finite() {
            return bad(column, format!("{v} is not a finite number"));
        }
        if v < 0.0 {
            return bad(column, format!("{v} is negative"));
        }
    }
    if c.frequency.fract() != 0.0 {
        return bad("frequency", format!("{} is not a whole number of purchases", c.frequency));
    }
    if c.recency > c.age {
        return bad("recency", format!("{} is after T = {} (recency must be ≤ T)", c.recency, c.age));
    }
    if c.frequency == 0.0 && c.recency != 0.0 {
        return bad("recency", format!("{} with no repeat purchases (must be 0)", c.recency));
    }
    if let Some(m) = c.monetary
        && (!m.is_finite() || (c.frequency > 0.0 && m <= 0.0))
    {
        return bad("monetary_value", format!("{m} is not a positive finite amount"));
    }
    Ok(())
}

/// The LTV models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LtvModel {
    /// Beta-geometric / negative binomial: purchases while alive, drop-out after a purchase.
    Bgnbd,
    /// Modified BG/NBD: as BG/NBD, but a customer may also drop out right at the first purchase,
    /// so customers without repeats are not all alive.
    Mbgnbd,
    /// Pareto/NBD: purchases while alive, drop-out at any time.
    Pnbd,
    /// Beta-geometric / beta-Bernoulli: one purchase chance per period (T = periods), drop-out
    /// between periods.
    Bgbb,
    /// Gamma-Gamma: average spend per purchase (customers with repeat purchases).
    Gg,
}

impl LtvModel {
    /// Parameter names, in order.
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Self::Bgnbd | Self::Mbgnbd => &["r", "alpha", "a", "b"],
            Self::Pnbd => &["r", "alpha", "s", "beta"],
            Self::Bgbb => &["alpha", "beta", "gamma", "delta"],
            Self::Gg => &["p", "q", "gamma"],
        }
    }

    /// The model's CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bgnbd => "bgnbd",
            Self::Mbgnbd => "mbgnbd",
            Self::Pnbd => "pnbd",
            Self::Bgbb => "bgbb",
            Self::Gg => "gg",
        }
    }

    /// One customer's log-likelihood; NaN or −∞ where the parameters are out of the model's
    /// domain or a series does not converge.
    pub fn log_likelihood(self, params: &[f64], c: &Customer) -> f64 {
        self.frequency_terms(params, c.frequency) + self.rest(params, c)
    }

    /// The part of the log-likelihood that depends on the customer only through the frequency.
    fn frequency_terms(self, p: &[f64], x: f64) -> f64 {
        match self {
            Self::Bgnbd => {
                let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
                ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x)
            }
            Self::Mbgnbd => {
                let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
                ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x + 1.0)
                    - ln_gamma(b)
                    - ln_gamma(a + b + x + 1.0)
            }
            Self::Pnbd => {
                let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
                ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln()
            }
            // Every term depends on the recency and periods too.
            Self::Bgbb => 0.0,
            Self::Gg => {
                let (pp, q, gamma) = (p[0], p[1], p[2]);
                let px = pp * x;
                ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * gamma.ln() + px * x.ln()
            }
        }
    }

    /// The rest of the log-likelihood.
    fn rest(self, p: &[f64], c: &Customer) -> f64 {
        match self {
            Self::Bgnbd => bgnbd_rest(p, c),
            Self::Mbgnbd => mbgnbd_rest(p, c),
            Self::Pnbd => pnbd_rest(p, c),
            Self::Bgbb => bgbb_log_likelihood(p, c),
            Self::Gg => gg_rest(p, c),
        }
    }
}

fn bgnbd_rest(p: &[f64], c: &Customer) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let x = c.frequency;
    let alive = -(r + x) * (alpha + c.age).ln();
    let dropped = if x > 0.0 { a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.recency).ln() } else { f64::NEG_INFINITY };
    log_add_exp(alive, dropped)
}

fn mbgnbd_rest(p: &[f64], c: &Customer) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let x = c.frequency;
    let alive = -(r + x) * (alpha + c.age).ln();
    // Unlike BG/NBD, the drop-out term exists with no repeats too (drop-out at the first purchase).
    let dropped = a.ln() - (b + x).ln() - (r + x) * (alpha + c.recency).ln();
    log_add_exp(alive, dropped)
}

/// ln A₀ of the Pareto/NBD likelihood: the probability mass of dying between the last purchase
/// and T, as a difference of two Gauss hypergeometric terms.
fn pnbd_ln_a0(r: f64, alpha: f64, s: f64, beta: f64, c: &Customer) -> f64 {
    let p = [r, alpha, s, beta];
    ln_a0(pnbd_term(&p, c.frequency, c.recency), pnbd_term(&p, c.frequency, c.age))
}

/// One hypergeometric term of A₀, at time `t`, for a customer with `x` repeat purchases: the
/// value [`pnbd_terms`] computes with its gradient for the fit, by the same ₂F₁.
fn pnbd_term(p: &[f64], x: f64, t: f64) -> Option<f64> {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let rsx = r + s + x;
    let (max, second) = if alpha >= beta { (alpha, s + 1.0) } else { (beta, r + x) };
    let h = Hyp2f1PlusOne::new(rsx, second)?.at((alpha - beta).abs() / (max + t))?;
    Some(h.value.ln() - rsx * (max + t).ln())
}

/// A Pareto/NBD term's log value and its gradient in (r, α, s, β).
type TermWithGradient = (f64, [f64; 4]);

/// Where Pareto/NBD's hypergeometric terms sit: the distinct (frequency, time) points, grouped
/// by frequency with times ascending, so z falls along a group and one series per frequency
/// serves all its points; and per row the indices of its terms at the last purchase and at T,
/// and of its T among the distinct T's.
struct PnbdPlan {
    /// Per frequency: x and its points' range in `times`.
    groups: Vec<(f64, std::ops::Range<usize>)>,
    times: Vec<f64>,
    ages: Vec<f64>,
    /// Per row: [term at the last purchase, term at T, T].
    at: Vec<[u32; 3]>,
}

impl PnbdPlan {
    /// The plan for rows sorted by frequency.
    fn new(rows: &[(Customer, f64)]) -> Self {
        let mut points: Vec<(u64, u64)> = rows
            .iter()
            .flat_map(|(c, _)| [(c.frequency.to_bits(), c.recency.to_bits()), (c.frequency.to_bits(), c.age.to_bits())])
            .collect();
        // Non-negative floats order as their bits do.
        points.sort_unstable();
        points.dedup();
        let mut ages: Vec<u64> = rows.iter().map(|(c, _)| c.age.to_bits()).collect();
        ages.sort_unstable();
        ages.dedup();
        // Always found: the table holds every row's points and T's.
        let point = |x: f64, t: f64| points.binary_search(&(x.to_bits(), t.to_bits())).unwrap_or_default() as u32;
        let at = rows
            .iter()
            .map(|(c, _)| {
                [point(c.frequency, c.recency), point(c.frequency, c.age), ages.binary_search(&c.age.to_bits()).unwrap_or_default() as u32]
            })
            .collect();
        let mut groups: Vec<(f64, std::ops::Range<usize>)> = Vec::new();
        for (i, (x, _)) in points.iter().enumerate() {
            match groups.last_mut() {
                Some((gx, range)) if gx.to_bits() == *x => range.end = i + 1,
                _ => groups.push((f64::from_bits(*x), i..i + 1)),
            }
        }
        let times = points.iter().map(|(_, t)| f64::from_bits(*t)).collect();
        Self { groups, times, ages: ages.into_iter().map(f64::from_bits).collect(), at }
    }

    /// Every term with its gradient (`None` where a series did not converge), and per distinct
    /// T its (ln(α + T), ln(β + T)).
    fn evaluate(&self, p: &[f64]) -> (Vec<Option<TermWithGradient>>, Vec<(f64, f64)>) {
        let mut terms = Vec::with_capacity(self.times.len());
        for (x, range) in &self.groups {
            pnbd_terms(p, *x, &self.times[range.clone()], &mut terms);
        }
        let ln_ages = self.ages.iter().map(|t| ((p[1] + t).ln(), (p[3] + t).ln())).collect();
        (terms, ln_ages)
    }
}

/// [`pnbd_term`] and its gradient in (r, α, s, β) at each of `times` (ascending) for
/// frequency `x`, appended to `out`: the series' partial derivatives carried through
/// a = r + s + x, c = a + 1, the second parameter (s + 1 or r + x) and
/// z = |α − β| / (max(α, β) + t).
fn pnbd_terms(p: &[f64], x: f64, times: &[f64], out: &mut Vec<Option<TermWithGradient>>) {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let rsx = r + s + x;
    let alpha_first = alpha >= beta;
    let (max, second) = if alpha_first { (alpha, s + 1.0) } else { (beta, r + x) };
    let Some(mut family) = Hyp2f1PlusOne::new(rsx, second) else {
        out.extend(times.iter().map(|_| None));
        return;
    };
    for t in times {
        let term = family.at((alpha - beta).abs() / (max + t)).map(|h| {
            let ln_mt = (max + t).ln();
            let value = h.value.ln() - rsx * ln_mt;
            // ∂ ln ₂F₁ along a (c = a + 1 moves with it, both with r and s), along the second
            // parameter, and along z.
            let (d_rsx, d_second, d_z) = (h.d_a / h.value, h.d_b / h.value, h.d_z / h.value);
            let gradient = if alpha_first {
                // z = (α − β)/(α + t); the second parameter is s + 1.
                [
                    d_rsx - ln_mt,
                    d_z * (beta + t) / ((alpha + t) * (alpha + t)) - rsx / (alpha + t),
                    d_rsx + d_second - ln_mt,
                    -d_z / (alpha + t),
                ]
            } else {
                // z = (β − α)/(β + t); the second parameter is r + x.
                [
                    d_rsx + d_second - ln_mt,
                    -d_z / (beta + t),
                    d_rsx - ln_mt,
                    d_z * (alpha + t) / ((beta + t) * (beta + t)) - rsx / (beta + t),
                ]
            };
            (value, gradient)
        });
        out.push(term);
    }
}

/// The weighted Pareto/NBD log-likelihood of `rows` (sorted by frequency) and its analytic
/// gradient, given each row's places `at` in the evaluated `terms` and `ln_ages`
/// ([`PnbdPlan`]): the mixture of alive-at-T and died-between-the-last-purchase-and-T, each
/// weighted by its share; the died branch's A₀ is a difference of two hypergeometric terms.
fn pnbd_rows(
    p: &[f64],
    rows: &[(Customer, f64)],
    at: &[[u32; 3]],
    terms: &[Option<TermWithGradient>],
    ln_ages: &[(f64, f64)],
) -> (f64, [f64; 4]) {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let (psi_r, ln_alpha, ln_beta, ln_s) = (digamma(r), alpha.ln(), beta.ln(), s.ln());
    let mut value = 0.0;
    let mut grad = [0.0; 4];
    // (frequency, its head terms, ψ(r + x), ln(r + s + x)) for the current run of equal
    // frequencies.
    let mut per_x: Option<(f64, f64, f64, f64)> = None;
    for ((c, w), [last, end, age]) in rows.iter().zip(at) {
        let x = c.frequency;
        let (_, head, psi_rx, ln_rsx) = match per_x {
            Some(t) if t.0 == x => t,
            _ => *per_x.insert((x, LtvModel::Pnbd.frequency_terms(p, x), digamma(r + x), (r + s + x).ln())),
        };
        let (Some((at_last, g_last)), Some((at_end, g_end))) = (terms[*last as usize], terms[*end as usize]) else {
            return (f64::NAN, [0.0; 4]);
        };
        let (ln_t_alpha, ln_t_beta) = ln_ages[*age as usize];
        let alive = -(r + x) * ln_t_alpha - s * ln_t_beta;
        // A₀ = F(tₓ)(1 − q) with q = F(T)/F(tₓ), all F on the log scale; A₀ = 0 (tₓ = T) leaves
        // the died branch at −∞.
        let q = (at_end - at_last).exp();
        let died = ln_s - ln_rsx + at_last + (-q).ln_1p();
        // The mixture's log and each branch's share, by one exponential of their gap.
        let (mix, wa, wd) = if died == f64::NEG_INFINITY {
            (alive, 1.0, 0.0)
        } else if died <= alive {
            let e = (died - alive).exp();
            (alive + e.ln_1p(), 1.0 / (1.0 + e), e / (1.0 + e))
        } else {
            let e = (alive - died).exp();
            (died + e.ln_1p(), e / (1.0 + e), 1.0 / (1.0 + e))
        };
        value += w * (head + mix);
        // ∂ ln A₀ = (∂F(tₓ) − q ∂F(T)) / (1 − q).
        let d_a0 = |i: usize| if wd > 0.0 { (g_last[i] - q * g_end[i]) / (1.0 - q) } else { 0.0 };
        let inv_rsx = 1.0 / (r + s + x);
        grad[0] += w * (psi_rx - psi_r + ln_alpha - wa * ln_t_alpha + wd * (d_a0(0) - inv_rsx));
        grad[1] += w * (r / alpha - wa * (r + x) / (alpha + c.age) + wd * d_a0(1));
        grad[2] += w * (ln_beta - wa * ln_t_beta + wd * (1.0 / s - inv_rsx + d_a0(2)));
        grad[3] += w * (s / beta - wa * s / (beta + c.age) + wd * d_a0(3));
    }
    (value, grad)
}

/// ln A₀ from its terms at the last purchase and at T; NaN when a series did not converge.
fn ln_a0(at_last: Option<f64>, at_end: Option<f64>) -> f64 {
    match (at_last, at_end) {
        (Some(at_last), Some(at_end)) => log_sub_exp(at_last, at_end),
        _ => f64::NAN,
    }
}

fn pnbd_rest(p: &[f64], c: &Customer) -> f64 {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let x = c.frequency;
    let alive_at_end = -(r + x) * (alpha + c.age).ln() - s * (beta + c.age).ln();
    let died = s.ln() - (r + s + x).ln() + pnbd_ln_a0(r, alpha, s, beta, c);
    log_add_exp(alive_at_end, died)
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Most periods a BG/BB customer may have: its likelihood sums a term per period after the last
/// purchase.
pub const BGBB_PERIODS_MAX: f64 = 100_000.0;

/// Fader, Hardie & Shang (2010), eq. 5: alive through all `n` periods, or dropped out in one of
/// the periods after the last purchase.
fn bgbb_log_likelihood(p: &[f64], c: &Customer) -> f64 {
    let (alpha, beta, gamma, delta) = (p[0], p[1], p[2], p[3]);
    let (x, t_x, n) = (c.frequency, c.recency, c.age);
    let (b_ab, b_gd) = (ln_beta(alpha, beta), ln_beta(gamma, delta));
    let mut total = ln_beta(alpha + x, beta + n - x) - b_ab + ln_beta(gamma, delta + n) - b_gd;
    let mut i = 0.0;
    while i < n - t_x {
        total = log_add_exp(total, ln_beta(alpha + x, beta + t_x - x + i) - b_ab + ln_beta(gamma + 1.0, delta + t_x + i) - b_gd);
        i += 1.0;
    }
    total
}

fn gg_rest(p: &[f64], c: &Customer) -> f64 {
    let (pp, q, gamma) = (p[0], p[1], p[2]);
    let (x, m) = (c.frequency, c.monetary.unwrap_or(f64::NAN));
    let px = pp * x;
    (px - 1.0) * m.ln() - (px + q) * (x * m + gamma).ln()
}

/// One fitted parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// The maximum-likelihood estimate.
    pub value: f64,
    /// Its standard error (inverse observed information), when the Hessian allows one.
    pub std_error: Option<f64>,
}

/// A converged fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LtvFit {
    /// The model.
    pub model: LtvModel,
    /// Its parameters.
    pub params: Vec<Param>,
    /// The log-likelihood at the estimate, summed over customers.
    pub log_likelihood: f64,
    /// Customers the fit used (for Gamma-Gamma: those with repeat purchases).
    pub customers: usize,
    /// Customers given but not used: for Gamma-Gamma, those without a repeat purchase (their
    /// spend summary, 0 in `lifetimes`' files, says nothing about repeat spend); 0 otherwise.
    pub left_out: usize,
    /// Likelihood evaluations the optimiser spent.
    pub evaluations: usize,
    /// What the fit cannot vouch for: parameters the data barely identifies.
    pub warnings: Vec<String>,
}

/// A parameter whose standard error exceeds its estimate this many times is reported as barely
/// identified by the data.
pub const WEAK_PARAM_SE_RATIO: f64 = 1.0;

impl LtvFit {
    /// The estimates, in the model's parameter order.
    pub fn values(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.value).collect()
    }
}

/// Why a fit gave no parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Bad input.
    #[error(transparent)]
    Summary(#[from] SummaryError),
    /// The optimiser did not converge: no parameters are returned.
    #[error("the {model} fit did not converge after {evaluations} likelihood evaluations (log-likelihood {log_likelihood}); no parameters")]
    NotConverged {
        /// The model.
        model: &'static str,
        /// Evaluations spent.
        evaluations: usize,
        /// Where it stopped.
        log_likelihood: f64,
    },
}

/// A summary's exact bits: (frequency, recency, T, spend).
type SummaryKey = (u64, u64, u64, u64);

/// Customers weighted by how many share the same summary: the likelihood is evaluated once per
/// distinct (frequency, recency, T, spend), which makes large bases cheap (ages and recencies are
/// whole days or weeks in practice).
struct Distinct {
    rows: Vec<(Customer, f64)>,
    /// Customers the rows stand for.
    customers: usize,
    gradient: Gradient,
}

/// A model's weighted log-likelihood and its gradient over rows sorted by frequency (models with
/// three parameters leave the fourth entry 0).
type GradientOf = fn(&[f64], &[(Customer, f64)]) -> (f64, [f64; 4]);

/// How a model's log-likelihood gradient is computed (every model here has a closed form).
enum Gradient {
    /// Row by row.
    Rows(GradientOf),
    /// Pareto/NBD: a table of hypergeometric terms first, then the rows.
    Pnbd(PnbdPlan),
}

impl Distinct {
    /// Checks every customer (the error is the first bad row, in row order, whichever core
    /// finds it) and counts the ones `model` uses per distinct summary in a hash map, in the
    /// same pass over a large base; then orders the distinct rows by (frequency, recency, T,
    /// spend) so runs of equal frequency are adjacent for the per-frequency terms.
    fn new(model: LtvModel, customers: &[Customer]) -> Result<Self, SummaryError> {
        let count = |range: std::ops::Range<usize>| {
            let mut counts: foldhash::HashMap<SummaryKey, (&Customer, f64)> = foldhash::HashMap::default();
            for (i, c) in customers[range.clone()].iter().enumerate() {
                let row = range.start + i + 1;
                check_customer(row, c)?;
                if model == LtvModel::Gg {
                    // Gamma-Gamma models the spend of repeat purchases.
                    if c.frequency == 0.0 {
                        continue;
                    }
                    if c.monetary.is_none() {
                        return Err(SummaryError::Value {
                            row,
                            column: "monetary_value",
                            problem: "missing: Gamma-Gamma needs the average spend".into(),
                        });
                    }
                }
                let key = (c.frequency.to_bits(), c.recency.to_bits(), c.age.to_bits(), c.monetary.unwrap_or(0.0).to_bits());
                counts.entry(key).or_insert((c, 0.0)).1 += 1.0;
            }
            Ok(counts)
        };
        let mut pieces = split_work(customers.len(), count).into_iter();
        let mut counts = pieces.next().transpose()?.unwrap_or_default();
        for piece in pieces {
            for (key, (c, weight)) in piece? {
                counts.entry(key).or_insert((c, 0.0)).1 += weight;
            }
        }
        let mut keyed: Vec<(SummaryKey, (&Customer, f64))> = counts.into_iter().collect();
        // Non-negative floats order as their bits do.
        keyed.sort_unstable_by_key(|(k, _)| *k);
        let rows: Vec<(Customer, f64)> =
            keyed.into_iter().map(|(_, (c, weight))| (Customer { id: String::new(), ..c.clone() }, weight)).collect();
        let customers = rows.iter().map(|(_, w)| *w as usize).sum();
        let gradient = match model {
            LtvModel::Bgnbd => Gradient::Rows(bgnbd_gradient_of),
            LtvModel::Mbgnbd => Gradient::Rows(mbgnbd_gradient_of),
            LtvModel::Bgbb => Gradient::Rows(bgbb_gradient_of),
            LtvModel::Gg => Gradient::Rows(gg_gradient_of),
            LtvModel::Pnbd => Gradient::Pnbd(PnbdPlan::new(&rows)),
        };
        Ok(Self { rows, customers, gradient })
    }

    /// How many pieces an evaluation is split into.
    fn parts(&self) -> usize {
        if self.rows.len() >= PARALLEL_ROWS_MIN { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { 1 }
    }
}

impl Distinct {
    /// The log-likelihood and its analytic gradient, on every core for large bases.
    fn value_and_gradient(&self, params: &[f64]) -> (f64, [f64; 4]) {
        match &self.gradient {
            Gradient::Rows(of) => self.sum_over_rows(|_, rows| of(params, rows)),
            Gradient::Pnbd(plan) => {
                let (terms, ln_ages) = plan.evaluate(params);
                self.sum_over_rows(|first, rows| pnbd_rows(params, rows, &plan.at[first..first + rows.len()], &terms, &ln_ages))
            }
        }
    }

    /// `of(first row's index, rows)` over the rows in one piece, or in one piece per core for
    /// large bases, summed.
    fn sum_over_rows(&self, of: impl Fn(usize, &[(Customer, f64)]) -> (f64, [f64; 4]) + Sync) -> (f64, [f64; 4]) {
        let parts = self.parts();
        if parts == 1 {
            return of(0, &self.rows);
        }
        let per = self.rows.len().div_ceil(parts).max(1);
        let of = &of;
        let partial: Vec<(f64, [f64; 4])> = std::thread::scope(|s| {
            let handles: Vec<_> = self.rows.chunks(per).enumerate().map(|(i, rows)| s.spawn(move || of(i * per, rows))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        partial.into_iter().fold((0.0, [0.0; 4]), |(v, g), (pv, pg)| (v + pv, [g[0] + pg[0], g[1] + pg[1], g[2] + pg[2], g[3] + pg[3]]))
    }
}

/// The weighted BG/NBD log-likelihood of `rows` and its analytic gradient.
fn bgnbd_gradient_of(p: &[f64], rows: &[(Customer, f64)]) -> (f64, [f64; 4]) {
    beta_geometric_gradient_of(LtvModel::Bgnbd, p, rows)
}

/// The weighted MBG/NBD log-likelihood of `rows` and its analytic gradient.
fn mbgnbd_gradient_of(p: &[f64], rows: &[(Customer, f64)]) -> (f64, [f64; 4]) {
    beta_geometric_gradient_of(LtvModel::Mbgnbd, p, rows)
}

/// BG/NBD's or MBG/NBD's weighted log-likelihood and its analytic gradient: ψ terms for the
/// log-gamma ratios, and the two branches of the alive-or-dropped mixture weighted by their
/// share of it. MBG/NBD is BG/NBD with the drop-out chances counted from the first purchase:
/// every b + x becomes b + x + 1, and customers without repeats may have dropped too.
fn beta_geometric_gradient_of(model: LtvModel, p: &[f64], rows: &[(Customer, f64)]) -> (f64, [f64; 4]) {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let shift = if model == LtvModel::Mbgnbd { 1.0 } else { 0.0 };
    let (psi_r, psi_ab, psi_b, ln_alpha, ln_a) = (digamma(r), digamma(a + b), digamma(b), alpha.ln(), a.ln());
    let mut value = 0.0;
    let mut grad = [0.0; 4];
    // Rows come sorted by frequency: the terms that depend on it alone are computed once per run.
    let mut per_x: Option<FrequencyTerms> = None;
    for (c, w) in rows {
        let x = c.frequency;
        let t = match per_x {
            Some(t) if t.x == x => t,
            _ => *per_x.insert(FrequencyTerms {
                x,
                head: model.frequency_terms(p, x),
                psi_rx: digamma(r + x),
                psi_abx: digamma(a + b + x + shift),
                psi_bx: digamma(b + x + shift),
                // ln(b + x − 1) for BG/NBD, ln(b + x) for MBG/NBD; no drop-out term without
                // a chance to drop.
                ln_bx1: if x + shift > 0.0 { (b + x + shift - 1.0).ln() } else { f64::NAN },
            }),
        };
        let (ln_t, ln_tx) = ((alpha + c.age).ln(), (alpha + c.recency).ln());
        let alive = -(r + x) * ln_t;
        let can_drop = x + shift > 0.0;
        let dropped = if can_drop { ln_a - t.ln_bx1 - (r + x) * ln_tx } else { f64::NEG_INFINITY };
        let mix = log_add_exp(alive, dropped);
        let (wa, wd) = ((alive - mix).exp(), (dropped - mix).exp());
        value += w * (t.head + mix);
        grad[0] += w * (t.psi_rx - psi_r + ln_alpha - wa * ln_t - wd * ln_tx);
        grad[1] += w * (r / alpha - wa * (r + x) / (alpha + c.age) - wd * (r + x) / (alpha + c.recency));
        grad[2] += w * (psi_ab - t.psi_abx + wd / a);
        grad[3] += w * (psi_ab + t.psi_bx - psi_b - t.psi_abx - if can_drop { wd / (b + x + shift - 1.0) } else { 0.0 });
    }
    (value, grad)
}

/// The weighted BG/BB log-likelihood of `rows` and its analytic gradient in (α, β, γ, δ).
/// Every term of a customer's sum is a product of two beta-function ratios,
/// B(α + x, β + m)/B(α, β) · B(γ + g, δ + k)/B(γ, δ), so its log's slope is a difference of
/// ψ values; the customer's slope is the terms' slopes weighted by their share of the sum.
fn bgbb_gradient_of(p: &[f64], rows: &[(Customer, f64)]) -> (f64, [f64; 4]) {
    let (alpha, beta, gamma, delta) = (p[0], p[1], p[2], p[3]);
    let (b_ab, b_gd) = (ln_beta(alpha, beta), ln_beta(gamma, delta));
    let (psi_ab, psi_gd) = (digamma(alpha + beta), digamma(gamma + delta));
    let base = [psi_ab - digamma(alpha), psi_ab - digamma(beta), psi_gd - digamma(gamma), psi_gd - digamma(delta)];
    let mut value = 0.0;
    let mut grad = [0.0; 4];
    let mut logs: Vec<f64> = Vec::new();
    let mut slopes: Vec<[f64; 4]> = Vec::new();
    for (c, w) in rows {
        let (x, t_x, n) = (c.frequency, c.recency, c.age);
        // (m, g, k) of each term: alive through all n periods, or dropped after period t_x + i.
        let term = |m: f64, g: f64, k: f64| {
            let log = ln_beta(alpha + x, beta + m) - b_ab + ln_beta(gamma + g, delta + k) - b_gd;
            let (psi_1, psi_2) = (digamma(alpha + beta + x + m), digamma(gamma + delta + g + k));
            let slope = [
                digamma(alpha + x) - psi_1 + base[0],
                digamma(beta + m) - psi_1 + base[1],
                digamma(gamma + g) - psi_2 + base[2],
                digamma(delta + k) - psi_2 + base[3],
            ];
            (log, slope)
        };
        logs.clear();
        slopes.clear();
        let mut push = |(log, slope): (f64, [f64; 4])| {
            logs.push(log);
            slopes.push(slope);
        };
        push(term(n - x, 0.0, n));
        let mut i = 0.0;
        while i < n - t_x {
            push(term(t_x - x + i, 1.0, t_x + i));
            i += 1.0;
        }
        let top = logs.iter().fold(f64::NEG_INFINITY, |m, l| m.max(*l));
        let total: f64 = logs.iter().map(|l| (l - top).exp()).sum();
        value += w * (top + total.ln());
        for (l, slope) in logs.iter().zip(&slopes) {
            let share = (l - top).exp() / total;
            for (g, d) in grad.iter_mut().zip(slope) {
                *g += w * share * d;
            }
        }
    }
    (value, grad)
}

/// The weighted Gamma-Gamma log-likelihood of `rows` (customers with repeat purchases) and its
/// analytic gradient in (p, q, γ); the ψ terms are computed once per run of equal frequencies.
fn gg_gradient_of(params: &[f64], rows: &[(Customer, f64)]) -> (f64, [f64; 4]) {
    let (p, q, gamma) = (params[0], params[1], params[2]);
    let (psi_q, ln_gamma_) = (digamma(q), gamma.ln());
    let mut value = 0.0;
    let mut grad = [0.0; 4];
    // (x, head, ψ(px + q), ψ(px), ln x) for the current run of frequencies.
    let mut per_x: Option<(f64, f64, f64, f64, f64)> = None;
    for (c, w) in rows {
        let x = c.frequency;
        let (_, head, psi_pxq, psi_px, ln_x) = match per_x {
            Some(t) if t.0 == x => t,
            _ => *per_x.insert((x, LtvModel::Gg.frequency_terms(params, x), digamma(p * x + q), digamma(p * x), x.ln())),
        };
        let m = c.monetary.unwrap_or(f64::NAN);
        let (ln_m, ln_total) = (m.ln(), (x * m + gamma).ln());
        let px = p * x;
        value += w * (head + (px - 1.0) * ln_m - (px + q) * ln_total);
        grad[0] += w * x * (psi_pxq - psi_px + ln_x + ln_m - ln_total);
        grad[1] += w * (psi_pxq - psi_q + ln_gamma_ - ln_total);
        grad[2] += w * (q / gamma - (px + q) / (x * m + gamma));
    }
    (value, grad)
}

/// BG/NBD's terms for one frequency, shared by every customer with it.
#[derive(Clone, Copy)]
struct FrequencyTerms {
    x: f64,
    head: f64,
    psi_rx: f64,
    psi_abx: f64,
    psi_bx: f64,
    ln_bx1: f64,
}

/// Distinct summaries at or above this many are evaluated on every core.
pub const PARALLEL_ROWS_MIN: usize = 20_000;

/// Customers from which checking and condensing them are split over every core.
pub const PARALLEL_CUSTOMERS_MIN: usize = 100_000;

/// `work` over `0..n` in one piece, or in one contiguous piece per core from
/// [`PARALLEL_CUSTOMERS_MIN`] on; the pieces' answers in order.
fn split_work<T: Send>(n: usize, work: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let parts = if n >= PARALLEL_CUSTOMERS_MIN { std::thread::available_parallelism().map_or(1, |p| p.get()) } else { 1 };
    if parts <= 1 {
        return vec![work(0..n)];
    }
    let per = n.div_ceil(parts);
    let work = &work;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).step_by(per).map(|start| s.spawn(move || work(start..(start + per).min(n)))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// Fits a model by maximum likelihood. Parameters are searched on the log scale (they are all
/// positive), then standard errors come from the observed information on the natural scale.
pub fn fit(model: LtvModel, customers: &[Customer]) -> Result<LtvFit, FitError> {
    let data = Distinct::new(model, customers)?;
    if model == LtvModel::Bgbb {
        check_discrete(customers)?;
    }
    if data.customers == 0 {
        return Err(
            SummaryError::Empty(if model == LtvModel::Gg { " (Gamma-Gamma needs customers with repeat purchases)" } else { "" }).into()
        );
    }
    // Nelder–Mead's objective: the same evaluation, its gradient unused.
    let negative = |log_params: &[f64]| {
        let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
        -data.value_and_gradient(&params).0
    };
    let start = vec![0.0; model.param_names().len()];
    // With the closed-form gradient BFGS needs a few dozen evaluations where Nelder–Mead needs
    // hundreds. Should it stall (for example walking a ridge the data cannot pin down towards
    // infinity), Nelder–Mead searches again from the start, where it settles on the ridge.
    let with_gradient = |log_params: &[f64]| {
        let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
        let (ll, g) = data.value_and_gradient(&params);
        (-ll, (0..params.len()).map(|i| -g[i] * params[i]).collect())
    };
    let m = minimize_with_gradient(with_gradient, &start);
    let Minimum { x, value, evaluations, converged } = if m.converged {
        m
    } else {
        let more = minimize(negative, &start);
        Minimum { evaluations: m.evaluations + more.evaluations, ..more }
    };
    if !converged || !value.is_finite() {
        return Err(FitError::NotConverged { model: model.name(), evaluations, log_likelihood: -value });
    }
    let estimate: Vec<f64> = x.iter().map(|v| v.exp()).collect();
    let errors =
        standard_errors_from_gradient(|params| data.value_and_gradient(params).1[..params.len()].iter().map(|g| -g).collect(), &estimate);
    let params: Vec<Param> = model
        .param_names()
        .iter()
        .zip(&estimate)
        .enumerate()
        .map(|(i, (name, value))| Param { name, value: *value, std_error: errors.as_ref().map(|e| e[i]) })
        .collect();
    let mut warnings: Vec<String> = Vec::new();
    if errors.is_none() {
        warnings.push("no standard errors: the likelihood is flat or curved the wrong way at the estimate".into());
    }
    for p in &params {
        if let Some(se) = p.std_error
            && se > WEAK_PARAM_SE_RATIO * p.value
        {
            warnings.push(format!(
                "{} = {:.4e} has a standard error of {:.4e}: the data barely identifies it (for example no drop-out shows before the calibration end); treat predictions with care",
                p.name, p.value, se
            ));
        }
    }
    let left_out = if model == LtvModel::Gg { customers.iter().filter(|c| c.frequency == 0.0).count() } else { 0 };
    Ok(LtvFit { model, params, log_likelihood: -value, customers: data.customers, left_out, evaluations, warnings })
}

/// What a fitted purchase model says about one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The probability the customer is still active at the end of calibration.
    pub p_alive: f64,
    /// Expected purchases in the next `horizon` time units.
    pub expected_purchases: f64,
}

/// P(alive) and expected purchases over `horizon` for a BG/NBD, MBG/NBD, BG/BB or Pareto/NBD
/// fit (BG/BB: P(alive) at the next period, `horizon` in periods); `None` for
/// Gamma-Gamma or when a series does not converge.
pub fn predict(fit: &LtvFit, c: &Customer, horizon: f64) -> Option<Prediction> {
    match fit.model {
        LtvModel::Bgnbd | LtvModel::Mbgnbd | LtvModel::Pnbd => {
            let p_alive = p_alive(fit, c)?;
            let if_alive = expected_purchases_if_alive(fit, c.frequency, c.age, horizon)?;
            Some(Prediction { p_alive, expected_purchases: p_alive * if_alive })
        }
        LtvModel::Bgbb => {
            let p = fit.values();
            let x = c.frequency;
            // Fader, Hardie & Shang (2010), (A10) with one period ahead, and eq. 13.
            let (alpha, beta, gamma, delta) = (p[0], p[1], p[2], p[3]);
            let n = c.age;
            let ln_l = bgbb_log_likelihood(&p, c);
            let p_alive =
                (ln_beta(alpha + x, beta + n - x) - ln_beta(alpha, beta) + ln_beta(gamma, delta + n + 1.0) - ln_beta(gamma, delta) - ln_l)
                    .exp();
            let lead = (ln_beta(alpha + x + 1.0, beta + n - x) - ln_beta(alpha, beta) - ln_l).exp() * delta / (gamma - 1.0)
                * (ln_gamma(gamma + delta) - ln_gamma(1.0 + delta)).exp();
            let ratio = |m: f64| (ln_gamma(1.0 + delta + m) - ln_gamma(gamma + delta + m)).exp();
            Some(Prediction { p_alive, expected_purchases: lead * (ratio(n) - ratio(n + horizon)) })
        }
        LtvModel::Gg => None,
    }
}

/// The probability that a customer is still active at the end of calibration (BG/NBD, MBG/NBD,
/// Pareto/NBD; BG/BB through [`predict`]); `None` for other models or out of the domain.
pub fn p_alive(fit: &LtvFit, c: &Customer) -> Option<f64> {
    let p = fit.values();
    let x = c.frequency;
    match fit.model {
        LtvModel::Bgnbd => {
            let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
            let odds_dead = if x > 0.0 { a / (b + x - 1.0) * ((alpha + c.age) / (alpha + c.recency)).powf(r + x) } else { 0.0 };
            Some(1.0 / (1.0 + odds_dead))
        }
        LtvModel::Mbgnbd => {
            // Batislam et al. (2007), eq. 7, with (α + t_x) in the drop-out odds.
            let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
            Some(1.0 / (1.0 + a / (b + x) * ((alpha + c.age) / (alpha + c.recency)).powf(r + x)))
        }
        LtvModel::Pnbd => {
            let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
            let ln_a0 = pnbd_ln_a0(r, alpha, s, beta, c);
            if ln_a0.is_nan() {
                return None;
            }
            let ln_odds = (s / (r + s + x)).ln() + (r + x) * (alpha + c.age).ln() + s * (beta + c.age).ln() + ln_a0;
            Some(1.0 / (1.0 + ln_odds.exp()))
        }
        LtvModel::Bgbb | LtvModel::Gg => None,
    }
}

/// Expected purchases over `horizon` of a customer who is still active, with `frequency`
/// repeat purchases by `age` (T). It does not depend on the recency, so customers who share
/// (x, T) share it; [`predict`]'s expected purchases are this times [`p_alive`]. BG/NBD,
/// MBG/NBD and Pareto/NBD; `None` for other models or when a series does not converge.
pub fn expected_purchases_if_alive(fit: &LtvFit, frequency: f64, age: f64, horizon: f64) -> Option<f64> {
    let p = fit.values();
    let x = frequency;
    match fit.model {
        LtvModel::Bgnbd => {
            let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
            let series = hyp2f1(r + x, b + x, a + b + x - 1.0, horizon / (alpha + age + horizon))?;
            Some((a + b + x - 1.0) / (a - 1.0) * (1.0 - ((alpha + age) / (alpha + age + horizon)).powf(r + x) * series))
        }
        LtvModel::Mbgnbd => {
            // Batislam et al. (2007), eq. 8.
            let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
            let series = hyp2f1(r + x, b + x + 1.0, a + b + x, horizon / (alpha + age + horizon))?;
            Some((a + b + x) / (a - 1.0) * (1.0 - ((alpha + age) / (alpha + age + horizon)).powf(r + x) * series))
        }
        LtvModel::Pnbd => {
            let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
            let rate = (r + x) * (beta + age) / ((alpha + age) * (s - 1.0));
            Some(rate * (1.0 - ((beta + age) / (beta + age + horizon)).powf(s - 1.0)))
        }
        LtvModel::Bgbb | LtvModel::Gg => None,
    }
}

/// BG/BB counts whole periods: frequency ≤ recency ≤ T, all whole numbers, T within
/// [`BGBB_PERIODS_MAX`].
fn check_discrete(customers: &[Customer]) -> Result<(), SummaryError> {
    for (i, c) in customers.iter().enumerate() {
        let bad = |column, problem: String| Err(SummaryError::Value { row: i + 1, column, problem });
        if c.recency.fract() != 0.0 {
            return bad("recency", format!("{} is not a whole number of periods (BG/BB counts periods)", c.recency));
        }
        if c.age.fract() != 0.0 || c.age > BGBB_PERIODS_MAX {
            return bad("T", format!("{} is not a whole number of periods up to {BGBB_PERIODS_MAX}", c.age));
        }
        if c.frequency > c.recency {
            return bad(
                "frequency",
                format!("{} purchases cannot fit in {} periods after the first (BG/BB has one chance per period)", c.frequency, c.recency),
            );
        }
    }
    Ok(())
}

/// The Gamma-Gamma expected average spend of a customer's future purchases (the population mean
/// for customers without repeat purchases).
pub fn expected_spend(gg: &LtvFit, c: &Customer) -> Option<f64> {
    if gg.model != LtvModel::Gg {
        return None;
    }
    let p = gg.values();
    let (pp, q, gamma) = (p[0], p[1], p[2]);
    match c.monetary {
        Some(m) if c.frequency > 0.0 => Some((gamma + m * c.frequency) * pp / (pp * c.frequency + q - 1.0)),
        _ => Some(gamma * pp / (q - 1.0)),
    }
}

/// Discounted customer lifetime value over `periods` periods of `period_units` time units each:
/// each period's expected purchases times the expected spend, discounted at `discount_rate` per
/// period.
pub fn clv(purchases: &LtvFit, gg: &LtvFit, c: &Customer, periods: u32, period_units: f64, discount_rate: f64) -> Option<f64> {
    let spend = expected_spend(gg, c)?;
    let mut value = 0.0;
    let mut before = 0.0;
    for i in 1..=periods {
        let upto = predict(purchases, c, period_units * f64::from(i))?.expected_purchases;
        value += (upto - before) * spend / (1.0 + discount_rate).powi(i as i32);
        before = upto;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Customers with frequencies 0…(kinds − 1) and ages from `first_age`, recency a share of age.
    fn customers(n: i32, kinds: i32, first_age: f64, ages: i32, shares: i32) -> Vec<Customer> {
        (0..n)
            .map(|i| {
                let x = f64::from(i % kinds);
                let age = first_age + f64::from(i % ages);
                let recency = if x > 0.0 { (age * f64::from(i % shares + 1) / f64::from(shares + 1)).floor().max(1.0) } else { 0.0 };
                Customer { id: i.to_string(), frequency: x, recency, age, monetary: None }
            })
            .collect()
    }

    /// The condensed evaluation's value and analytic gradient agree with the model's
    /// per-customer log-likelihood summed over `customers`, and its central differences, at `at`.
    fn assert_gradient_matches(customers: &[Customer], model: LtvModel, at: [f64; 4]) {
        let data = Distinct::new(model, customers).unwrap();
        let (value, grad) = data.value_and_gradient(&at);
        let summed = |params: &[f64]| customers.iter().map(|c| model.log_likelihood(params, c)).sum::<f64>();
        assert!((value - summed(&at)).abs() < 1e-9 * value.abs(), "{at:?}");
        for i in 0..model.param_names().len() {
            let h = 1e-6 * at[i];
            let (mut up, mut down) = (at, at);
            up[i] += h;
            down[i] -= h;
            let numeric = (summed(&up) - summed(&down)) / (2.0 * h);
            assert!((grad[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0), "{at:?} parameter {i}: {} vs {numeric}", grad[i]);
        }
    }

    #[test]
    fn the_pareto_nbd_gradient_matches_finite_differences_on_both_sides_of_alpha_equals_beta() {
        let customers = customers(80, 6, 5.0, 31, 4);
        // α > β, α < β, α = β exactly (z = 0 in every series), and α ≫ β (z near 1: the
        // series in 1 − z).
        for at in [[0.55, 10.6, 0.61, 11.7], [0.55, 12.6, 0.61, 9.7], [1.3, 4.0, 0.4, 4.0], [1.34, 16.2, 0.15, 0.032]] {
            assert_gradient_matches(&customers, LtvModel::Pnbd, at);
        }
    }

    #[test]
    fn the_gamma_gamma_gradient_matches_finite_differences() {
        let mut customers = customers(70, 6, 8.0, 23, 3);
        customers.retain(|c| c.frequency > 0.0);
        for (i, c) in customers.iter_mut().enumerate() {
            c.monetary = Some(20.0 + 13.7 * (i % 9) as f64);
        }
        assert_gradient_matches(&customers, LtvModel::Gg, [6.2, 3.9, 15.4, 0.0]);
    }

    #[test]
    fn the_bgnbd_gradient_matches_finite_differences() {
        assert_gradient_matches(&customers(60, 7, 10.0, 29, 5), LtvModel::Bgnbd, [0.31, 3.7, 0.85, 2.2]);
    }

    #[test]
    fn the_mbgnbd_gradient_matches_finite_differences() {
        assert_gradient_matches(&customers(60, 7, 10.0, 29, 5), LtvModel::Mbgnbd, [0.31, 3.7, 0.85, 2.2]);
    }

    #[test]
    fn the_bgbb_gradient_matches_finite_differences() {
        // Whole periods, at most one purchase per period after the first.
        let customers: Vec<Customer> = (0..50)
            .map(|i| {
                let x = f64::from(i % 3);
                let t_x = if x > 0.0 { x + f64::from(i % 4) } else { 0.0 };
                let n = t_x + f64::from(i % 5);
                Customer { id: i.to_string(), frequency: x, recency: t_x, age: n, monetary: None }
            })
            .collect();
        assert_gradient_matches(&customers, LtvModel::Bgbb, [1.2, 0.75, 0.66, 2.8]);
    }
}
