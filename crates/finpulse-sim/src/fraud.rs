//! Card payments following the handbook's simulator (Le Borgne et al., chapter 3): customers and
//! terminals on a 100×100 grid, each customer using the terminals within radius 5.

use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson};

/// Side of the square grid customers and terminals live on.
pub(crate) const GRID_SIZE: f32 = 100.0;
/// A customer uses the terminals within this distance.
pub(crate) const TERMINAL_RADIUS: f32 = 5.0;
/// Scenario 1: every payment above this amount (yuan) is fraud.
pub(crate) const SCENARIO1_AMOUNT_YUAN: f64 = 220.0;
/// Scenario 2: a compromised terminal's payments are fraud for this many days.
pub(crate) const SCENARIO2_DAYS: u32 = 28;
/// Scenario 3: a compromised customer's payments are at risk for this many days.
pub(crate) const SCENARIO3_DAYS: u32 = 14;
/// Scenario 3: the factor a fraudulent payment's amount is multiplied by.
pub(crate) const SCENARIO3_AMOUNT_FACTOR: f64 = 5.0;
const SECS_PER_DAY: f64 = 86_400.0;
/// Time of day of a payment ~ N(12 h, 20,000 s).
const TIME_OF_DAY_MEAN_SECS: f64 = SECS_PER_DAY / 2.0;
const TIME_OF_DAY_STD_SECS: f64 = 20_000.0;

/// A customer's spending profile.
pub(crate) struct CardProfile {
    pub(crate) mean_amount_yuan: f64,
    pub(crate) std_amount_yuan: f64,
    pub(crate) mean_tx_per_day: f64,
    pub(crate) terminals: Vec<u32>,
}

/// Terminals on the grid, bucketed by unit cell for radius look-ups.
pub(crate) struct TerminalGrid {
    positions: Vec<(f32, f32)>,
    cells: Vec<Vec<u32>>,
}

const CELLS: usize = GRID_SIZE as usize;

impl TerminalGrid {
    pub(crate) fn new(rng: &mut impl Rng, count: usize) -> Self {
        let mut cells = vec![Vec::new(); CELLS * CELLS];
        let positions: Vec<(f32, f32)> = (0..count).map(|_| (rng.random_range(0.0..GRID_SIZE), rng.random_range(0.0..GRID_SIZE))).collect();
        for (i, (x, y)) in positions.iter().enumerate() {
            cells[(*y as usize).min(CELLS - 1) * CELLS + (*x as usize).min(CELLS - 1)].push(i as u32);
        }
        Self { positions, cells }
    }

    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// Terminals within [`TERMINAL_RADIUS`] of (x, y).
    pub(crate) fn within_radius(&self, x: f32, y: f32) -> Vec<u32> {
        let r = TERMINAL_RADIUS as i32 + 1;
        let (cx, cy) = (x as i32, y as i32);
        let mut out = Vec::new();
        for gy in (cy - r).max(0)..=(cy + r).min(CELLS as i32 - 1) {
            for gx in (cx - r).max(0)..=(cx + r).min(CELLS as i32 - 1) {
                for &t in &self.cells[gy as usize * CELLS + gx as usize] {
                    let (tx, ty) = self.positions[t as usize];
                    if (tx - x).powi(2) + (ty - y).powi(2) <= TERMINAL_RADIUS * TERMINAL_RADIUS {
                        out.push(t);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// A customer profile: position ~ U(grid), mean amount ~ U(5, 100), std = mean / 2, mean
/// transactions per day ~ U(0, 4).
pub(crate) fn profile(rng: &mut impl Rng, grid: &TerminalGrid) -> CardProfile {
    let (x, y) = (rng.random_range(0.0..GRID_SIZE), rng.random_range(0.0..GRID_SIZE));
    let mean = rng.random_range(5.0..100.0);
    CardProfile {
        mean_amount_yuan: mean,
        std_amount_yuan: mean / 2.0,
        mean_tx_per_day: rng.random_range(0.0..4.0),
        terminals: grid.within_radius(x, y),
    }
}

/// One genuine-looking payment: (seconds into the day, terminal, amount in yuan).
pub(crate) struct Draft {
    pub(crate) secs: u32,
    pub(crate) terminal: u32,
    pub(crate) amount_yuan: f64,
}

/// A customer's payments for one day: count ~ Poisson(mean × activity); times outside the day
/// are dropped, as in the handbook; a negative amount is redrawn from U(0, 2 × mean).
pub(crate) fn day_payments(rng: &mut impl Rng, p: &CardProfile, activity: f64) -> Vec<Draft> {
    let lambda = p.mean_tx_per_day * activity;
    if lambda <= 0.0 || p.terminals.is_empty() {
        return Vec::new();
    }
    let count = Poisson::new(lambda).map(|d| d.sample(rng) as usize).unwrap_or(0);
    let time = Normal::new(TIME_OF_DAY_MEAN_SECS, TIME_OF_DAY_STD_SECS).expect("positive std");
    let amount = Normal::new(p.mean_amount_yuan, p.std_amount_yuan).expect("positive std");
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let secs = time.sample(rng);
        if !(0.0..SECS_PER_DAY).contains(&secs) {
            continue;
        }
        let mut amount_yuan = amount.sample(rng);
        if amount_yuan < 0.0 {
            amount_yuan = rng.random_range(0.0..2.0 * p.mean_amount_yuan);
        }
        let amount_yuan = (amount_yuan * 100.0).round() / 100.0;
        let terminal = p.terminals[rng.random_range(0..p.terminals.len())];
        out.push(Draft { secs: secs as u32, terminal, amount_yuan });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn customers_use_only_terminals_within_radius() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let grid = TerminalGrid::new(&mut rng, 2000);
        let near = grid.within_radius(50.0, 50.0);
        let brute: Vec<u32> = (0..grid.len() as u32)
            .filter(|&t| {
                let (x, y) = grid.positions[t as usize];
                (x - 50.0).powi(2) + (y - 50.0).powi(2) <= 25.0
            })
            .collect();
        assert_eq!(near, brute);
        assert!(!near.is_empty());
    }

    #[test]
    fn payments_follow_the_handbook_distributions() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(4);
        let grid = TerminalGrid::new(&mut rng, 5000);
        let p =
            CardProfile { mean_amount_yuan: 50.0, std_amount_yuan: 25.0, mean_tx_per_day: 3.0, terminals: grid.within_radius(20.0, 20.0) };
        let mut n = 0;
        let mut sum = 0.0;
        for _ in 0..2000 {
            for d in day_payments(&mut rng, &p, 1.0) {
                assert!(d.secs < 86_400 && d.amount_yuan >= 0.0);
                n += 1;
                sum += d.amount_yuan;
            }
        }
        // ~3 per day less the ~1.6% of times that fall outside the day.
        let per_day = n as f64 / 2000.0;
        assert!((2.8..3.1).contains(&per_day), "{per_day}");
        let mean = sum / n as f64;
        assert!((49.0..53.0).contains(&mean), "{mean}");
    }
}
