//! Small synthetic parties for the protocol tests: the guest holds two features and a label
//! drawn from a logistic model over all five; the host holds three features with distinctive
//! values (so the privacy test can look for them on the wire).

#![allow(dead_code)]

use finpulse_federation::job::{Algorithm, BoostParams, JobSpec, LrParams, PartySpec, PsiReveal, Role};
use finpulse_federation::table::Table;
use rand::{Rng, SeedableRng};

pub struct Synthetic {
    pub guest: Table,
    pub labels: Vec<f64>,
    pub host: Table,
    pub guest_ids: Vec<String>,
    pub host_ids: Vec<String>,
}

/// `rows` aligned rows (ids `user-0…`), the host's ids followed by `host_extra` ids the guest
/// does not have.
pub fn synthetic(rows: usize, host_extra: usize, seed: u64) -> Synthetic {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut g = vec![Vec::new(), Vec::new()];
    let mut h = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut labels = Vec::new();
    for _ in 0..rows {
        let x: [f64; 5] = std::array::from_fn(|_| rng.random_range(-2.0..2.0));
        let z = 0.8 * x[0] - 0.5 * x[1] + 1.2 * x[2] + 0.7 * x[3] - 0.9 * x[4];
        labels.push(if rng.random::<f64>() < 1.0 / (1.0 + (-z).exp()) { 1.0 } else { 0.0 });
        g[0].push(x[0]);
        g[1].push((x[1] * 4.0).round());
        // Host values: amounts like 12345.678 that cannot occur by chance on the wire.
        for k in 0..3 {
            h[k].push(50_000.0 + 10_000.0 * x[2 + k] + 0.001 * (k as f64 + 1.0));
        }
    }
    Synthetic {
        guest: Table { names: vec!["g0".into(), "g1".into()], columns: g },
        labels,
        host: Table { names: vec!["h0".into(), "h1".into(), "h2".into()], columns: h },
        guest_ids: (0..rows).map(|i| format!("user-{i}")).collect(),
        host_ids: (0..rows + host_extra).map(|i| format!("user-{i}")).collect(),
    }
}

pub fn parties(with_arbiter: bool) -> Vec<PartySpec> {
    let mut parties = vec![
        PartySpec { name: "bank".into(), role: Role::Guest, features: vec!["g0".into(), "g1".into()] },
        PartySpec { name: "payco".into(), role: Role::Host, features: vec!["h0".into(), "h1".into(), "h2".into()] },
    ];
    if with_arbiter {
        parties.push(PartySpec { name: "arbiter".into(), role: Role::Arbiter, features: vec![] });
    }
    parties
}

pub fn lr_job(key_bits: u32, epochs: usize, batch_rows: usize) -> JobSpec {
    JobSpec {
        id: "lr-test".into(),
        parties: parties(true),
        label_owner: "bank".into(),
        label: "y".into(),
        algorithm: Algorithm::VerticalLr(LrParams { epochs, batch_rows, learning_rate: 0.3, l2: 0.001, key_bits }),
    }
}

pub fn boost_job(key_bits: u32, trees: usize, depth_max: usize) -> JobSpec {
    JobSpec {
        id: "boost-test".into(),
        parties: parties(false),
        label_owner: "bank".into(),
        label: "y".into(),
        algorithm: Algorithm::SecureBoost(BoostParams {
            trees,
            depth_max,
            bins_max: 16,
            learning_rate: 0.3,
            l2: 1.0,
            leaf_rows_min: 5,
            key_bits,
        }),
    }
}

pub fn psi_job() -> JobSpec {
    JobSpec {
        id: "psi-test".into(),
        parties: parties(false),
        label_owner: "bank".into(),
        label: "y".into(),
        algorithm: Algorithm::Psi { reveal: PsiReveal::Intersection },
    }
}
