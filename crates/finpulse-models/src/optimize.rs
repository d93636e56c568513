//! Minimisation without derivatives (Nelder–Mead, restarted until it stops improving), with
//! them (BFGS), and a finite-difference Hessian for standard errors.

/// Iterations one Nelder–Mead run may take.
pub const ITERATIONS_MAX: usize = 20_000;
/// Restarts from the best point found, to escape a collapsed simplex.
pub const RESTARTS_MAX: usize = 8;
/// Stop when the simplex's objective values agree to this spread, relative to the objective
/// (a log-likelihood summed over customers grows with their number)...
pub const OBJECTIVE_TOLERANCE: f64 = 1e-13;
/// ... and its vertices agree to this, coordinate by coordinate (on the log scale the fits
/// search, a relative 1e-7 on each parameter).
pub const POINT_TOLERANCE: f64 = 1e-7;

/// Where a minimisation ended.
#[derive(Debug, Clone)]
pub struct Minimum {
    /// The best point.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Objective evaluations spent.
    pub evaluations: usize,
    /// Whether the tolerances were met (rather than the iteration limit).
    pub converged: bool,
}

/// Minimises `f` from `start`. A non-finite objective counts as +∞, so the search steps back
/// from regions where the likelihood is undefined.
pub fn minimize(f: impl Fn(&[f64]) -> f64, start: &[f64]) -> Minimum {
    let eval = |x: &[f64]| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut best = nelder_mead(&eval, start);
    for _ in 0..RESTARTS_MAX {
        let again = nelder_mead(&eval, &best.x);
        let evaluations = best.evaluations + again.evaluations;
        let improved = again.value < best.value - OBJECTIVE_TOLERANCE * best.value.abs().max(1.0);
        if again.value <= best.value {
            best = Minimum { evaluations, ..again };
        } else {
            best.evaluations = evaluations;
        }
        if !improved {
            return best;
        }
    }
    best.converged = false;
    best
}

fn nelder_mead(f: &impl Fn(&[f64]) -> f64, start: &[f64]) -> Minimum {
    let n = start.len();
    let (alpha, gamma, rho, sigma) = (1.0, 2.0, 0.5, 0.5);
    let mut simplex: Vec<Vec<f64>> = vec![start.to_vec()];
    for i in 0..n {
        let mut v = start.to_vec();
        v[i] += if v[i].abs() > 1e-3 { 0.1 * v[i].abs() } else { 0.1 };
        simplex.push(v);
    }
    let mut values: Vec<f64> = simplex.iter().map(|v| f(v)).collect();
    let mut evaluations = n + 1;
    for _ in 0..ITERATIONS_MAX {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();
        let spread_f = values[n] - values[0];
        let spread_x =
            (1..=n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| (simplex[i][j] - simplex[0][j]).abs()).fold(0.0, f64::max);
        if spread_f.abs() <= OBJECTIVE_TOLERANCE * values[0].abs().max(1.0) && spread_x <= POINT_TOLERANCE {
            return Minimum { x: simplex[0].clone(), value: values[0], evaluations, converged: true };
        }
        let centroid: Vec<f64> = (0..n).map(|j| simplex[..n].iter().map(|v| v[j]).sum::<f64>() / n as f64).collect();
        let toward = |coef: f64| -> Vec<f64> { (0..n).map(|j| centroid[j] + coef * (simplex[n][j] - centroid[j])).collect() };
        let reflected = toward(-alpha);
        let fr = f(&reflected);
        evaluations += 1;
        if fr < values[0] {
            let expanded = toward(-gamma);
            let fe = f(&expanded);
            evaluations += 1;
            (simplex[n], values[n]) = if fe < fr { (expanded, fe) } else { (reflected, fr) };
            continue;
        }
        if fr < values[n - 1] {
            (simplex[n], values[n]) = (reflected, fr);
            continue;
        }
        let contracted = if fr < values[n] { toward(-rho) } else { toward(rho) };
        let fc = f(&contracted);
        evaluations += 1;
        if fc < values[n].min(fr) {
            (simplex[n], values[n]) = (contracted, fc);
            continue;
        }
        for i in 1..=n {
            simplex[i] = (0..n).map(|j| simplex[0][j] + sigma * (simplex[i][j] - simplex[0][j])).collect();
            values[i] = f(&simplex[i]);
        }
        evaluations += n;
    }
    let i = (0..=n).min_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap_or(0);
    Minimum { x: simplex[i].clone(), value: values[i], evaluations, converged: false }
}

/// Largest change of any coordinate in one BFGS step (on the log scale the fits search, a
/// factor of e²).
pub const BFGS_STEP_MAX: f64 = 2.0;
/// Most BFGS iterations.
pub const BFGS_ITERATIONS_MAX: usize = 500;
/// BFGS stops when every gradient component is this small relative to the objective (a
/// log-likelihood summed over customers grows with their number)...
pub const GRADIENT_TOLERANCE: f64 = 1e-11;
/// ... or, once every gradient component is within [`STALLED_GRADIENT_TOLERANCE`], when a full
/// BFGS step is predicted to lower the objective by less than this much of it: below what a
/// sum over many customers resolves in f64, where line searches only chase rounding.
pub const PREDICTED_DECREASE_TOLERANCE: f64 = 1e-13;
/// The gradient (relative to the objective) below which a search that can no longer make
/// progress counts as converged; above it, a stall is a failure.
pub const STALLED_GRADIENT_TOLERANCE: f64 = 1e-6;

/// Minimises `f` from `start` by BFGS with a backtracking (Armijo) line search, given
/// `value_and_gradient` that returns the objective and its gradient together. A non-finite
/// objective counts as +∞, so line searches step back from undefined regions. Not converged
/// when the iteration limit is hit or the line search can make no progress before the
/// gradient is small.
pub fn minimize_with_gradient(value_and_gradient: impl Fn(&[f64]) -> (f64, Vec<f64>), start: &[f64]) -> Minimum {
    let n = start.len();
    let eval = |x: &[f64]| {
        let (v, g) = value_and_gradient(x);
        if v.is_finite() && g.iter().all(|d| d.is_finite()) { (v, g) } else { (f64::INFINITY, vec![0.0; n]) }
    };
    let mut x = start.to_vec();
    let (mut fx, mut g) = eval(&x);
    let mut evaluations = 1;
    // Inverse Hessian approximation, row-major.
    let mut h: Vec<f64> = (0..n * n).map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
    for iteration in 0..BFGS_ITERATIONS_MAX {
        let scale = fx.abs().max(1.0);
        if g.iter().all(|d| d.abs() <= GRADIENT_TOLERANCE * scale) {
            return Minimum { x, value: fx, evaluations, converged: true };
        }
        let mut dir: Vec<f64> = (0..n).map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>()).collect();
        let mut slope: f64 = dir.iter().zip(&g).map(|(d, gi)| d * gi).sum();
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            h.iter_mut().enumerate().for_each(|(k, v)| *v = if k % (n + 1) == 0 { 1.0 } else { 0.0 });
            dir = g.iter().map(|d| -d).collect();
            slope = -g.iter().map(|d| d * d).sum::<f64>();
        } else if iteration >= n
            && -slope <= 2.0 * PREDICTED_DECREASE_TOLERANCE * scale
            && g.iter().all(|d| d.abs() <= STALLED_GRADIENT_TOLERANCE * scale)
        {
            // After n updates the inverse Hessian has seen every direction, so the quadratic
            // model's prediction −½ gᵀHg is trusted.
            return Minimum { x, value: fx, evaluations, converged: true };
        }
        // No coordinate moves more than BFGS_STEP_MAX at once: far from the optimum the
        // gradient of a likelihood summed over many customers is huge, and a full step would
        // leap to where its terms lose all precision.
        let longest = dir.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        let mut step = if longest > BFGS_STEP_MAX { BFGS_STEP_MAX / longest } else { 1.0 };
        let accepted = loop {
            let candidate: Vec<f64> = x.iter().zip(&dir).map(|(a, d)| a + step * d).collect();
            let (fc, gc) = eval(&candidate);
            evaluations += 1;
            if fc <= fx + 1e-4 * step * slope {
                break Some((candidate, fc, gc));
            }
            step *= 0.5;
            if step < 1e-20 {
                break None;
            }
        };
        let Some((next, f_next, g_next)) = accepted else {
            return Minimum { x, value: fx, evaluations, converged: false };
        };
        let s_k: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y_k: Vec<f64> = g_next.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy: f64 = s_k.iter().zip(&y_k).map(|(a, b)| a * b).sum();
        if sy > 1e-300 {
            if iteration == 0 {
                // Nocedal & Wright (6.20): scale the first inverse Hessian to the curvature
                // just seen, so later steps are not all cut back by the line search.
                let yy: f64 = y_k.iter().map(|v| v * v).sum();
                h.iter_mut().for_each(|v| *v *= sy / yy);
            }
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i * n + j] * y_k[j]).sum()).collect();
            let yhy: f64 = y_k.iter().zip(&hy).map(|(a, b)| a * b).sum();
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += rho * ((1.0 + rho * yhy) * s_k[i] * s_k[j] - hy[i] * s_k[j] - s_k[i] * hy[j]);
                }
            }
        }
        let unchanged = (fx - f_next).abs() <= 1e-15 * scale && s_k.iter().all(|d| d.abs() <= 1e-12);
        (x, fx, g) = (next, f_next, g_next);
        if unchanged {
            let converged = g.iter().all(|d| d.abs() <= STALLED_GRADIENT_TOLERANCE * scale);
            return Minimum { x, value: fx, evaluations, converged };
        }
    }
    Minimum { x, value: fx, evaluations, converged: false }
}

/// Standard errors at a minimum of `f` (a negative log-likelihood over all observations): the
/// square roots of the diagonal of the inverse Hessian, by central differences. `None` when the
/// Hessian is not positive definite (the minimum is not a proper one).
pub fn standard_errors(f: impl Fn(&[f64]) -> f64, at: &[f64]) -> Option<Vec<f64>> {
    let n = at.len();
    let h: Vec<f64> = at.iter().map(|x| 1e-4 * x.abs().max(1e-3)).collect();
    let shifted = |moves: &[(usize, f64)]| {
        let mut x = at.to_vec();
        for &(i, d) in moves {
            x[i] += d;
        }
        f(&x)
    };
    let f0 = f(at);
    let mut hessian = vec![vec![0.0; n]; n];
    for i in 0..n {
        hessian[i][i] = (shifted(&[(i, h[i])]) - 2.0 * f0 + shifted(&[(i, -h[i])])) / (h[i] * h[i]);
        for j in 0..i {
            let v = (shifted(&[(i, h[i]), (j, h[j])]) - shifted(&[(i, h[i]), (j, -h[j])]) - shifted(&[(i, -h[i]), (j, h[j])])
                + shifted(&[(i, -h[i]), (j, -h[j])]))
                / (4.0 * h[i] * h[j]);
            hessian[i][j] = v;
            hessian[j][i] = v;
        }
    }
    let inverse = invert_positive_definite(hessian)?;
    Some((0..n).map(|i| inverse[i][i].sqrt()).collect())
}

/// Standard errors at a minimum from the objective's analytic `gradient`: the Hessian by central
/// differences of the gradient (2n gradient evaluations instead of 2n² + 1 objective ones, and
/// no second differences to lose digits in). `None` when it is not positive definite.
pub fn standard_errors_from_gradient(gradient: impl Fn(&[f64]) -> Vec<f64>, at: &[f64]) -> Option<Vec<f64>> {
    let n = at.len();
    // Row i: how the gradient moves along coordinate i.
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let h = 1e-5 * at[i].abs().max(1e-3);
            let (mut up, mut down) = (at.to_vec(), at.to_vec());
            up[i] += h;
            down[i] -= h;
            let (g_up, g_down) = (gradient(&up), gradient(&down));
            g_up.iter().zip(&g_down).map(|(u, d)| (u - d) / (2.0 * h)).collect()
        })
        .collect();
    let hessian = (0..n).map(|i| (0..n).map(|j| 0.5 * (rows[i][j] + rows[j][i])).collect()).collect();
    let inverse = invert_positive_definite(hessian)?;
    Some((0..n).map(|i| inverse[i][i].sqrt()).collect())
}

/// Solves `a·x = b` for a symmetric positive-definite `a` (row-major, `n × n`) by Cholesky
/// factorisation; `None` when `a` is not positive definite.
pub fn solve_positive_definite(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    assert_eq!(a.len(), n * n, "a square matrix for every right-hand side");
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    // Forward substitution L·y = b, then back substitution Lᵀ·x = y.
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    Some(x)
}

/// Inverts a symmetric positive-definite matrix by Cholesky factorisation.
#[allow(clippy::needless_range_loop)] // index form mirrors the textbook recurrences
fn invert_positive_definite(a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    // Columns of L⁻¹, then A⁻¹ = L⁻ᵀ L⁻¹.
    let mut inv_l = vec![vec![0.0; n]; n];
    for i in 0..n {
        inv_l[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let s: f64 = (j..i).map(|k| l[i][k] * inv_l[k][j]).sum();
            inv_l[i][j] = -s / l[i][i];
        }
    }
    Some((0..n).map(|i| (0..n).map(|j| (i.max(j)..n).map(|k| inv_l[k][i] * inv_l[k][j]).sum()).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_the_rosenbrock_valley() {
        let m = minimize(|x| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2), &[-1.2, 1.0]);
        assert!(m.converged);
        assert!((m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5, "{:?}", m.x);
    }

    #[test]
    fn standard_errors_of_a_quadratic_are_exact() {
        // f = x²/(2·4) + y²/(2·9): inverse Hessian diag(4, 9), so errors 2 and 3.
        let se = standard_errors(|x| x[0] * x[0] / 8.0 + x[1] * x[1] / 18.0, &[1.0, 2.0]).unwrap();
        assert!((se[0] - 2.0).abs() < 1e-5 && (se[1] - 3.0).abs() < 1e-5, "{se:?}");
        assert!(standard_errors(|x| -x[0] * x[0], &[1.0]).is_none());
    }

    #[test]
    fn standard_errors_from_the_gradient_agree_with_those_from_the_objective() {
        // f = x²/8 + y²/18 + xy/20: correlated, so off-diagonal terms matter.
        let f = |x: &[f64]| x[0] * x[0] / 8.0 + x[1] * x[1] / 18.0 + x[0] * x[1] / 20.0;
        let g = |x: &[f64]| vec![x[0] / 4.0 + x[1] / 20.0, x[1] / 9.0 + x[0] / 20.0];
        let (from_f, from_g) = (standard_errors(f, &[1.0, 2.0]).unwrap(), standard_errors_from_gradient(g, &[1.0, 2.0]).unwrap());
        for i in 0..2 {
            assert!((from_f[i] - from_g[i]).abs() < 1e-6 * from_f[i], "{from_f:?} vs {from_g:?}");
        }
        assert!(standard_errors_from_gradient(|x| vec![-2.0 * x[0]], &[1.0]).is_none());
    }

    #[test]
    fn bfgs_finds_the_minimum_of_rosenbrock() {
        let rosenbrock = |x: &[f64]| {
            let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
            (a * a + 100.0 * b * b, vec![-2.0 * a - 400.0 * x[0] * b, 200.0 * b])
        };
        let m = minimize_with_gradient(rosenbrock, &[-1.2, 1.0]);
        assert!(m.converged, "{m:?}");
        assert!((m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6, "{m:?}");
        assert!(m.evaluations < 200, "{} evaluations", m.evaluations);
    }

    #[test]
    fn bfgs_stops_promptly_and_converged_when_only_rounding_is_left_to_chase() {
        // A bowl of size 1e7 whose value and gradient carry jitter at about 1e-13 and 1e-10 of
        // their scale, as sums over millions of customers do: the gradient never gets below
        // GRADIENT_TOLERANCE, and line searches near the bottom see only the jitter.
        let centre = [0.3, -1.2, 2.0];
        let bowl = |x: &[f64]| {
            let q: f64 = x.iter().zip(&centre).enumerate().map(|(i, (a, c))| (i as f64 + 1.0) * (a - c).powi(2)).sum();
            let value = 1e7 * (1.0 + q) + 1e-6 * ((x[0] * 1e9).sin() + (x[1] * 1e9).cos());
            let gradient =
                x.iter().zip(&centre).enumerate().map(|(i, (a, c))| 2e7 * (i as f64 + 1.0) * (a - c) + 1e-3 * (a * 1e9).sin()).collect();
            (value, gradient)
        };
        let m = minimize_with_gradient(bowl, &[0.0, 0.0, 0.0]);
        assert!(m.converged, "{m:?}");
        // It stops once a step cannot beat the jitter (9 evaluations), rather than halving
        // line searches until the points stop moving (21).
        assert!(m.evaluations <= 12, "{} evaluations", m.evaluations);
        for (x, c) in m.x.iter().zip(centre) {
            assert!((x - c).abs() < 1e-6, "{:?}", m.x);
        }
    }

    #[test]
    fn solves_a_positive_definite_system() {
        // [[4, 2], [2, 3]]·[1, 2] = [8, 8].
        let x = solve_positive_definite(&[4.0, 2.0, 2.0, 3.0], &[8.0, 8.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12, "{x:?}");
        assert!(solve_positive_definite(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
