//! Vertical logistic regression, coordinated by an arbiter, as FATE's hetero LR is.
//!
//! Why an arbiter: the sigmoid cannot be computed under an additive cipher, so a protocol
//! either reveals the host's per-row partial scores to the guest (which, over epochs, reveals
//! the span of the host's feature columns) or keeps them encrypted and uses the second-order
//! Taylor expansion of the logistic loss, `d = 0.25·u − 0.5·y'` with `y' ∈ {−1, 1}`. We keep them
//! encrypted. The arbiter holds the Paillier key and sees only masked gradient sums; guest and
//! host each see only ciphertexts of the other's values. The arbiter must not collude with
//! either party (a colluding arbiter could decrypt what it is given by the other).
//!
//! One batch (rows in the intersection's order, `batch_rows` at a time):
//! 1. host → guest `[[u_h]]`, its partial scores `X_h·w_h`;
//! 2. guest → host `[[d]] = [[u_h]] ⊕ Enc(u_g − y'/2)` (fresh randomness);
//! 3. each party → arbiter `[[Σ_i d_i·x_ik + R_k]]` for its features, masks `R_k` its own;
//! 4. arbiter → each party the decryption; the party removes its masks and steps its weights.
//!
//! All arithmetic before the step is fixed-point integer arithmetic ([`XS`], [`WS`]), so the
//! protocol with the plaintext stand-in equals [`train_central`] bit for bit, and with Paillier
//! it equals it too (tests hold both).

use rayon::prelude::*;

use crate::FederationError;
use crate::cipher::{Cipher, CipherSuite, Decrypt, random_mask};
use crate::fixed::Fixed;
use crate::job::{Algorithm, JobSpec, LrParams, Role};
use crate::message::Message;
use crate::session::handshake;
use crate::table::Table;
use crate::transport::Endpoint;

/// Scale of standardised features (2^-10 standard deviations).
pub const XS: Fixed = Fixed::new(10);
/// Scale of weights when forming scores.
pub const WS: Fixed = Fixed::new(20);
/// Standardised values are clamped to ± this many standard deviations.
pub const Z_MAX: f64 = 30.0;
/// Rows a batch may hold, at most.
pub const BATCH_ROWS_MAX: usize = 1 << 20;

/// One party's features for LR: standardised with its own training statistics, fixed-point.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFeatures {
    /// Column names.
    pub names: Vec<String>,
    /// Mean and standard deviation per column, from the training rows.
    pub scaling: Vec<(f64, f64)>,
    /// Fixed-point standardised values, column by column.
    pub x_q: Vec<Vec<i64>>,
}

impl LrFeatures {
    /// Standardises `table` with statistics of its own rows (training data).
    pub fn fit(table: &Table) -> Self {
        let scaling = table
            .columns
            .iter()
            .map(|c| {
                let n = c.len().max(1) as f64;
                let mean = c.iter().sum::<f64>() / n;
                let sd = (c.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
                (mean, if sd > 0.0 { sd } else { 1.0 })
            })
            .collect();
        Self::apply(table, scaling)
    }

    /// Standardises `table` (held-out data) with `scaling` from training.
    pub fn apply(table: &Table, scaling: Vec<(f64, f64)>) -> Self {
        let x_q = table
            .columns
            .iter()
            .zip(&scaling)
            .map(|(c, &(mean, sd))| c.iter().map(|v| quantise(((v - mean) / sd).clamp(-Z_MAX, Z_MAX))).collect())
            .collect();
        Self { names: table.names.clone(), scaling, x_q }
    }

    /// The same features with an intercept column (constant 1) first.
    pub fn with_intercept(mut self) -> Self {
        let rows = self.rows();
        self.names.insert(0, "(intercept)".into());
        self.scaling.insert(0, (0.0, 1.0));
        self.x_q.insert(0, vec![quantise(1.0); rows]);
        self
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.x_q.first().map_or(0, Vec::len)
    }

    /// Partial scores `Σ_k x_ik·w_k` at scale `XS·WS`, for rows `range`.
    pub fn scores_q(&self, weights: &[f64], range: std::ops::Range<usize>) -> Vec<i128> {
        let w_q: Vec<i128> = weights.iter().map(|&w| quantise_weight(w)).collect();
        range.map(|i| self.x_q.iter().zip(&w_q).map(|(col, &w)| col[i] as i128 * w).sum()).collect()
    }

    /// Partial scores as reals, for scoring.
    pub fn scores(&self, weights: &[f64]) -> Vec<f64> {
        (0..self.rows()).map(|i| self.x_q.iter().zip(weights).map(|(col, w)| XS.decode(col[i] as i128) * w).sum()).collect()
    }
}

fn quantise(z: f64) -> i64 {
    // |z| <= Z_MAX, so the encoding is far inside the fixed-point range.
    XS.encode(z).expect("a clamped standardised value encodes") as i64
}

fn quantise_weight(w: f64) -> i128 {
    // Weights are bounded by the step rule; a NaN or huge weight would be a bug upstream.
    WS.encode(w).expect("weights stay within the fixed-point range")
}

/// `0.5·y'` at the residual's scale (`XS·WS·4`: `0.25·u` at that scale is `u`'s integer).
fn half_label_q(y: f64) -> i128 {
    let half = 1i128 << (XS.frac_bits + WS.frac_bits + 1);
    if y > 0.5 { half } else { -half }
}

/// One weight's step from its gradient sum `Σ d_i·x_ik` (integer at scale `XS·WS·4·XS`).
fn step(weight: &mut f64, gradient_q: i128, rows: usize, params: &LrParams, penalised: bool) {
    let scale = (XS.frac_bits * 2 + WS.frac_bits + 2) as f64;
    let mut gradient = gradient_q as f64 / scale.exp2() / rows as f64;
    if penalised {
        gradient += params.l2 * *weight;
    }
    *weight -= params.learning_rate * gradient;
}

/// Gradient sums `Σ_i d_i·x_ik` in the clear (the central model and the stand-in's reference).
fn gradient_sums(features: &LrFeatures, d_q: &[i128], start: usize) -> Vec<i128> {
    features.x_q.par_iter().map(|col| d_q.iter().enumerate().map(|(i, &d)| d * col[start + i] as i128).sum()).collect()
}

/// The batches of `rows` rows.
fn batches(rows: usize, batch_rows: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..rows.div_ceil(batch_rows)).map(move |b| b * batch_rows..((b + 1) * batch_rows).min(rows))
}

fn check_params(params: &LrParams) -> Result<(), FederationError> {
    if params.batch_rows == 0 || params.batch_rows > BATCH_ROWS_MAX {
        return Err(FederationError::Data(format!("batch_rows {} is not within 1..={BATCH_ROWS_MAX}", params.batch_rows)));
    }
    if !(params.learning_rate > 0.0 && params.learning_rate.is_finite() && params.l2 >= 0.0) {
        return Err(FederationError::Data("learning_rate must be positive and l2 non-negative".into()));
    }
    Ok(())
}

/// Logistic regression with the Taylor-expanded loss on all features in one place, with the
/// same fixed-point arithmetic and batches as the federated protocol. `features` must carry
/// the intercept first (see [`LrFeatures::with_intercept`]).
pub fn train_central(features: &LrFeatures, labels: &[f64], params: &LrParams) -> Result<Vec<f64>, FederationError> {
    check_params(params)?;
    let mut weights = vec![0.0; features.x_q.len()];
    for _ in 0..params.epochs {
        for range in batches(features.rows(), params.batch_rows) {
            let u = features.scores_q(&weights, range.clone());
            let d: Vec<i128> = u.iter().zip(&labels[range.clone()]).map(|(u, &y)| u - half_label_q(y)).collect();
            let sums = gradient_sums(features, &d, range.start);
            for (k, (w, g)) in weights.iter_mut().zip(sums).enumerate() {
                step(w, g, range.len(), params, k > 0);
            }
        }
    }
    Ok(weights)
}

fn lr_params(job: &JobSpec) -> Result<&LrParams, FederationError> {
    match &job.algorithm {
        Algorithm::VerticalLr(p) => {
            check_params(p)?;
            Ok(p)
        }
        _ => Err(FederationError::Job { job: job.id.clone(), reason: "not a vertical LR job".into() }),
    }
}

/// The arbiter: makes the key, then decrypts masked gradients until both parties are done.
pub fn run_arbiter<S: CipherSuite>(ep: &Endpoint, job: &JobSpec) -> Result<(), FederationError> {
    handshake(ep, job, 0)?;
    let params = lr_params(job)?;
    let key = S::generate(params.key_bits)?;
    let parties = [job.name_of(Role::Guest)?, job.name_of(Role::Host)?];
    for party in parties {
        ep.send(party, Message::PublicKey { key: key.public_bytes() })?;
    }
    let mut done = [false, false];
    while !done.iter().all(|d| *d) {
        for (i, party) in parties.iter().enumerate() {
            if done[i] {
                continue;
            }
            match ep.recv(party)? {
                Message::LrMaskedGradient { batch, gradient } => {
                    let cts = key.read_blob(&gradient, gradient.len())?;
                    ep.send(party, Message::LrDecrypted { batch, values: key.decrypt_all(&cts)? })?;
                }
                Message::Done => done[i] = true,
                other => return Err(FederationError::Protocol(format!("arbiter expected a masked gradient, got {}", other.kind()))),
            }
        }
    }
    Ok(())
}

fn receive_key<S: CipherSuite>(ep: &Endpoint, arbiter: &str) -> Result<S::Public, FederationError> {
    match ep.recv(arbiter)? {
        Message::PublicKey { key } => S::public_from_bytes(&key),
        other => Err(FederationError::Protocol(format!("expected the arbiter's public key, got {}", other.kind()))),
    }
}

/// Sends `Σ d_i·x_ik + R_k` for every feature to the arbiter and returns the unmasked sums.
fn masked_gradient<C: Cipher>(
    ep: &Endpoint,
    arbiter: &str,
    cipher: &C,
    features: &LrFeatures,
    d: &[C::Ct],
    range: &std::ops::Range<usize>,
    batch: u32,
) -> Result<Vec<i128>, FederationError> {
    let d_total = cipher.sum(d);
    let masks: Vec<i128> = (0..features.x_q.len()).map(|_| random_mask()).collect();
    let masked: Vec<C::Ct> = features
        .x_q
        .par_iter()
        .zip(&masks)
        .map(|(col, &mask)| {
            let col = &col[range.clone()];
            let min = col.iter().copied().min().unwrap_or(0);
            let shifted: Vec<u64> = col.iter().map(|&x| (x - min) as u64).collect();
            let sum = cipher.add(&cipher.weighted_sum(d, &shifted), &cipher.mul_plain(&d_total, min as i128));
            cipher.add_plain(&sum, mask)
        })
        .collect();
    ep.send(arbiter, Message::LrMaskedGradient { batch, gradient: cipher.write_blob(&masked) })?;
    match ep.recv(arbiter)? {
        Message::LrDecrypted { batch: b, values } if b == batch && values.len() == masks.len() => {
            Ok(values.iter().zip(&masks).map(|(v, m)| v.wrapping_sub(*m)).collect())
        }
        other => Err(FederationError::Protocol(format!("expected batch {batch}'s decrypted gradient, got {}", other.kind()))),
    }
}

/// The guest (label owner): `features` with the intercept first, `labels` 0/1, both in the
/// intersection's order. Returns its weights.
pub fn run_guest<S: CipherSuite>(ep: &Endpoint, job: &JobSpec, features: &LrFeatures, labels: &[f64]) -> Result<Vec<f64>, FederationError> {
    handshake(ep, job, features.x_q.len() - 1)?;
    let params = lr_params(job)?;
    let (host, arbiter) = (job.name_of(Role::Host)?, job.name_of(Role::Arbiter)?);
    let cipher = receive_key::<S>(ep, arbiter)?;
    let mut weights = vec![0.0; features.x_q.len()];
    let mut batch = 0u32;
    for _ in 0..params.epochs {
        for range in batches(features.rows(), params.batch_rows) {
            let own: Vec<i128> =
                features.scores_q(&weights, range.clone()).iter().zip(&labels[range.clone()]).map(|(u, &y)| u - half_label_q(y)).collect();
            let host_scores = match ep.recv(host)? {
                Message::LrHostScores { batch: b, scores } if b == batch => cipher.read_blob(&scores, range.len())?,
                other => {
                    return Err(FederationError::Protocol(format!("expected the host's scores of batch {batch}, got {}", other.kind())));
                }
            };
            let fresh = cipher.encrypt_all(&own)?;
            let d: Vec<_> = host_scores.par_iter().zip(&fresh).map(|(h, f)| cipher.add(h, f)).collect();
            ep.send(host, Message::LrResiduals { batch, residuals: cipher.write_blob(&d) })?;
            let sums = masked_gradient(ep, arbiter, &cipher, features, &d, &range, batch)?;
            for (k, (w, g)) in weights.iter_mut().zip(sums).enumerate() {
                step(w, g, range.len(), params, k > 0);
            }
            batch += 1;
        }
    }
    ep.send(arbiter, Message::Done)?;
    Ok(weights)
}

/// A host: its features in the intersection's order. Returns its weights.
pub fn run_host<S: CipherSuite>(ep: &Endpoint, job: &JobSpec, features: &LrFeatures) -> Result<Vec<f64>, FederationError> {
    handshake(ep, job, features.x_q.len())?;
    let params = lr_params(job)?;
    let (guest, arbiter) = (job.name_of(Role::Guest)?, job.name_of(Role::Arbiter)?);
    let cipher = receive_key::<S>(ep, arbiter)?;
    let mut weights = vec![0.0; features.x_q.len()];
    let mut batch = 0u32;
    for _ in 0..params.epochs {
        for range in batches(features.rows(), params.batch_rows) {
            let scores = cipher.encrypt_all(&features.scores_q(&weights, range.clone()))?;
            ep.send(guest, Message::LrHostScores { batch, scores: cipher.write_blob(&scores) })?;
            let d = match ep.recv(guest)? {
                Message::LrResiduals { batch: b, residuals } if b == batch => cipher.read_blob(&residuals, range.len())?,
                other => return Err(FederationError::Protocol(format!("expected batch {batch}'s residuals, got {}", other.kind()))),
            };
            let sums = masked_gradient(ep, arbiter, &cipher, features, &d, &range, batch)?;
            for (w, g) in weights.iter_mut().zip(sums) {
                step(w, g, range.len(), params, true);
            }
            batch += 1;
        }
    }
    ep.send(arbiter, Message::Done)?;
    Ok(weights)
}
