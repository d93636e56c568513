//! Special functions the likelihoods need, in f64: log-gamma, the Gauss hypergeometric series and
//! a stable log-sum-exp.

use std::f64::consts::PI;

/// Lanczos approximation (g = 7, 9 terms): about 15 significant digits for positive arguments.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0 (and by reflection for non-integer x < 0.5).
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Γ(x) Γ(1 − x) = π / sin(πx)
        return (PI / (PI * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then the
/// asymptotic series (error below 1e-14 there).
pub fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    // ln x − 1/(2x) − Σ B₂ₖ / (2k x^{2k})
    let series = inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0)))));
    shift + x.ln() - 0.5 / x - series
}

/// The most terms [`hyp2f1`] sums before giving up.
pub const HYP2F1_TERMS_MAX: usize = 100_000;

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) by its power series, for 0 ≤ z < 1 and
/// c > 0. `None` when the series does not reach full precision within [`HYP2F1_TERMS_MAX`] terms.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || c <= 0.0 {
        return None;
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 0..HYP2F1_TERMS_MAX {
        let k = k as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= f64::EPSILON * sum.abs() {
            return Some(sum);
        }
    }
    None
}

/// ₂F₁(a, b; c; z) with its partial derivatives in each of a, b, c and z.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyp2f1 {
    /// ₂F₁(a, b; c; z).
    pub value: f64,
    /// ∂/∂a.
    pub d_a: f64,
    /// ∂/∂b.
    pub d_b: f64,
    /// ∂/∂c.
    pub d_c: f64,
    /// ∂/∂z.
    pub d_z: f64,
}

/// [`hyp2f1`] and its partial derivatives, summed in the same series: the k-th term
/// tₖ = (a)ₖ(b)ₖ/((c)ₖ k!) zᵏ has ∂tₖ/∂a = tₖ Σⱼ<ₖ 1/(a + j) (likewise b, and −… for c) and
/// ∂tₖ/∂z = k tₖ / z. For 0 ≤ z < 1 and a, b, c > 0 (every term is then positive); `None` when
/// the series does not reach full precision within [`HYP2F1_TERMS_MAX`] terms.
pub fn hyp2f1_with_derivatives(a: f64, b: f64, c: f64, z: f64) -> Option<Hyp2f1> {
    if !(0.0..1.0).contains(&z) || a <= 0.0 || b <= 0.0 || c <= 0.0 {
        return None;
    }
    let (mut term, mut value) = (1.0, 1.0);
    let (mut s_a, mut s_b, mut s_c) = (0.0, 0.0, 0.0);
    let (mut d_a, mut d_b, mut d_c, mut z_d_z) = (0.0, 0.0, 0.0, 0.0);
    for k in 0..HYP2F1_TERMS_MAX {
        let k = k as f64;
        s_a += 1.0 / (a + k);
        s_b += 1.0 / (b + k);
        s_c += 1.0 / (c + k);
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        value += term;
        d_a += term * s_a;
        d_b += term * s_b;
        d_c -= term * s_c;
        z_d_z += term * (k + 1.0);
        let small = |part: f64, total: f64| term * part <= f64::EPSILON * total.abs();
        if small(1.0, value) && small(s_a, d_a) && small(s_b, d_b) && small(s_c, d_c) && small(k + 1.0, z_d_z) {
            // At z = 0 only the first term's slope is left: ab/c.
            let d_z = if z > 0.0 { z_d_z / z } else { a * b / c };
            return Some(Hyp2f1 { value, d_a, d_b, d_c, d_z });
        }
    }
    None
}

/// ln(eᵃ + eᵇ) without overflow.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// ln(eᵃ − eᵇ) for a ≥ b (NaN when b > a).
pub fn log_sub_exp(a: f64, b: f64) -> f64 {
    if b == f64::NEG_INFINITY {
        return a;
    }
    a + (-(b - a).exp()).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        for n in 1..30u32 {
            let factorial: f64 = (1..n).map(f64::from).product();
            assert!((ln_gamma(f64::from(n)) - factorial.ln()).abs() < 1e-12 * factorial.ln().max(1.0), "n = {n}");
        }
        // Γ(1/2) = √π
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-14);
        // Γ(0.1) = 9.513507698668731836...
        assert!((ln_gamma(0.1) - 9.513_507_698_668_732_f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn hyp2f1_derivatives_match_finite_differences() {
        for (a, b, c, z) in [(2.3, 1.7, 3.3, 0.4), (0.8, 12.5, 1.8, 0.93), (5.0, 0.6, 6.0, 0.0), (1.2, 2.0, 2.2, 1e-6)] {
            let exact = hyp2f1_with_derivatives(a, b, c, z).unwrap();
            assert!((exact.value - hyp2f1(a, b, c, z).unwrap()).abs() < 1e-14 * exact.value);
            let numeric = |f: &dyn Fn(f64) -> f64, at: f64| {
                let h = 1e-6 * at.abs().max(1e-3);
                (f(at + h) - f(at - h)) / (2.0 * h)
            };
            let cases = [
                (exact.d_a, numeric(&|v| hyp2f1(v, b, c, z).unwrap(), a)),
                (exact.d_b, numeric(&|v| hyp2f1(a, v, c, z).unwrap(), b)),
                (exact.d_c, numeric(&|v| hyp2f1(a, b, v, z).unwrap(), c)),
                (exact.d_z, if z > 0.0 { numeric(&|v| hyp2f1(a, b, c, v).unwrap(), z) } else { a * b / c }),
            ];
            for (i, (got, want)) in cases.into_iter().enumerate() {
                // Central differences of a function near 1 carry about 1e-10 of rounding.
                assert!((got - want).abs() <= 1e-6 * want.abs() + 1e-10 * exact.value, "({a}, {b}, {c}, {z}) partial {i}: {got} vs {want}");
            }
        }
        assert!(hyp2f1_with_derivatives(1.0, 1.0, 2.0, 1.0).is_none());
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z
        for z in [0.0f64, 0.1, 0.5, 0.9] {
            let expect = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            assert!((hyp2f1(1.0, 1.0, 2.0, z).unwrap() - expect).abs() < 1e-12, "z = {z}");
        }
        // ₂F₁(a, b; b; z) = (1 − z)^(−a)
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.3).unwrap() - 0.7f64.powf(-2.5)).abs() < 1e-12);
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_none());
    }

    #[test]
    fn log_sum_and_difference_are_stable() {
        assert!((log_add_exp(1000.0, 1000.0) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sub_exp(1000.0, 1000.0 - 2f64.ln()) - (1000.0 - 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, -3.0), -3.0);
    }

    #[test]
    fn digamma_matches_known_values_and_the_log_gamma_slope() {
        // ψ(1) = −γ (Euler–Mascheroni), ψ(0.5) = −γ − 2 ln 2.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-13, "{}", digamma(1.0));
        assert!((digamma(0.5) + euler + 2.0 * std::f64::consts::LN_2).abs() < 1e-13);
        for x in [0.03, 0.7, 2.5, 13.0, 250.0] {
            let h = 1e-5 * x;
            let slope = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!((digamma(x) - slope).abs() < 1e-6 * slope.abs().max(1.0), "x {x}: {} vs {slope}", digamma(x));
        }
    }
}
