//! Measurements of the federation crate, driven by `tools/federation-bench.sh`:
//! `paillier` (per-operation times, one core, and encryption on all cores), `psi` (an
//! intersection against a plaintext hash join), `lr` and `boost` (time per epoch / tree and
//! held-out AUC on the UCI credit table split between two parties). Prints one JSON object per
//! measurement.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, Subcommand};
use finpulse_federation::boost::{self, BinnedFeatures};
use finpulse_federation::cipher::{Cipher, Decrypt, PlainSuite};
use finpulse_federation::demo::{self, PartyData};
use finpulse_federation::job::{Algorithm, BoostParams, JobSpec, LrParams, PartySpec, PsiReveal, Role};
use finpulse_federation::local;
use finpulse_federation::lr::{self, LrFeatures};
use finpulse_federation::paillier::{PaillierSuite, PublicKey, SecretKey};
use finpulse_federation::transport::{Capturing, LocalTransport};
use finpulse_models::metrics::auc;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Paillier operations at one key size.
    Paillier {
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        #[arg(long, default_value_t = 100)]
        ops: usize,
    },
    /// ECDH PSI of two id lists of `ids` each, half of them common.
    Psi {
        #[arg(long, default_value_t = 1_000_000)]
        ids: usize,
    },
    /// Vertical LR on the credit table.
    Lr {
        #[arg(long)]
        data: PathBuf,
        /// Paillier key bits; 0 runs the plaintext stand-in.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
    },
    /// SecureBoost on the credit table.
    Boost {
        #[arg(long)]
        data: PathBuf,
        /// Paillier key bits; 0 runs the plaintext stand-in.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        #[arg(long, default_value_t = 1)]
        trees: usize,
        #[arg(long, default_value_t = 3)]
        depth: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Paillier { bits, ops } => paillier(bits, ops),
        Command::Psi { ids } => psi(ids),
        Command::Lr { data, bits, epochs, batch_rows } => vertical_lr(&data, bits, epochs, batch_rows),
        Command::Boost { data, bits, trees, depth } => secureboost(&data, bits, trees, depth),
    }
}

fn per_op_ms(ops: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..ops {
        f(i);
    }
    start.elapsed().as_secs_f64() * 1e3 / ops as f64
}

fn paillier(bits: u32, ops: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    let key = SecretKey::generate(bits)?;
    println!("{}", json!({"op": "keygen", "bits": bits, "ms": start.elapsed().as_secs_f64() * 1e3}));
    let public = key.public().clone();
    let values: Vec<i128> = (0..ops as i128).map(|i| i * 7919 - 400_000).collect();
    let mut cts = Vec::with_capacity(ops);
    let report = |op: &str, ms: f64| println!("{}", json!({"op": op, "bits": bits, "ms": ms, "threads": 1}));
    let full = public.clone();
    report("encrypt", per_op_ms(ops, |i| cts.push(full.encrypt_with(values[i], &full.full_randomness()))));
    report("encrypt_short_exponent", per_op_ms(ops, |i| drop(public.encrypt(values[i]))));
    report("encrypt_key_holder_crt", per_op_ms(ops, |i| drop(public.encrypt_with(values[i], &key.fast_randomness()))));
    report("decrypt", per_op_ms(ops, |i| assert_eq!(key.decrypt(&cts[i]).expect("decrypts"), values[i])));
    let adds = ops * 20;
    report("add", per_op_ms(adds, |i| drop(public.add(&cts[i % ops], &cts[(i + 1) % ops]))));
    report("mul_plain_16bit", per_op_ms(ops, |i| drop(public.mul_plain(&cts[i], 40_000 + i as i128))));
    let pool_start = Instant::now();
    let pooled = PublicKey::from_modulus(public.n().clone())?.with_pool(ops);
    let fill = pool_start.elapsed().as_secs_f64() * 1e3;
    println!("{}", json!({"op": "pool_fill_per_value", "bits": bits, "ms": fill / ops as f64, "threads": rayon::current_num_threads()}));
    let start = Instant::now();
    PublicKey::from_bytes(&public.to_bytes())?;
    println!(
        "{}",
        json!({"op": "short_exponent_table", "bits": bits, "ms": start.elapsed().as_secs_f64() * 1e3, "threads": rayon::current_num_threads()})
    );
    report("encrypt_from_pool", per_op_ms(ops, |i| drop(pooled.encrypt(values[i]))));
    let many: Vec<i128> = (0..ops * 4).map(|i| i as i128).collect();
    let start = Instant::now();
    public.encrypt_all(&many)?;
    let all = start.elapsed().as_secs_f64() * 1e3 / many.len() as f64;
    println!("{}", json!({"op": "encrypt_all_cores", "bits": bits, "ms": all, "threads": rayon::current_num_threads()}));
    let start = Instant::now();
    key.encrypt_own_all(&many)?;
    let own = start.elapsed().as_secs_f64() * 1e3 / many.len() as f64;
    println!("{}", json!({"op": "encrypt_key_holder_all_cores", "bits": bits, "ms": own, "threads": rayon::current_num_threads()}));
    Ok(())
}

fn two_party_job(id: &str, algorithm: Algorithm, guest: &[&str], host: &[&str], arbiter: bool) -> JobSpec {
    let names = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
    let mut parties = vec![
        PartySpec { name: "bank".into(), role: Role::Guest, features: names(guest) },
        PartySpec { name: "payco".into(), role: Role::Host, features: names(host) },
    ];
    if arbiter {
        parties.push(PartySpec { name: "arbiter".into(), role: Role::Arbiter, features: vec![] });
    }
    JobSpec { id: id.into(), parties, label_owner: "bank".into(), label: demo::LABEL.into(), algorithm }
}

fn psi(ids: usize) -> anyhow::Result<()> {
    let guest: Vec<String> = (0..ids).map(|i| format!("user-{i:09}")).collect();
    let host: Vec<String> = (ids / 2..ids / 2 + ids).map(|i| format!("user-{i:09}")).collect();
    let job = two_party_job("psi-bench", Algorithm::Psi { reveal: PsiReveal::Intersection }, &[], &[], false);
    let transport = Capturing::new(LocalTransport::new(&["bank", "payco"]));
    let start = Instant::now();
    let (g, _) = local::psi_in_process(&transport, &job, PsiReveal::Intersection, &guest, &host)?;
    let psi_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let set: HashSet<&str> = host.iter().map(String::as_str).collect();
    let plain = guest.iter().filter(|id| set.contains(id.as_str())).count();
    let join_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(g.size == Some(plain), "PSI found {:?} common ids, the hash join {plain}", g.size);
    let bytes: usize = transport.totals_by_kind().iter().map(|t| t.2).sum();
    println!(
        "{}",
        json!({"op": "psi", "ids_each": ids, "common": plain, "psi_secs": psi_secs, "hash_join_secs": join_secs, "ratio": psi_secs / join_secs, "wire_bytes": bytes, "threads": rayon::current_num_threads()})
    );
    Ok(())
}

/// The credit table split, intersected, aligned, and cut into training and held-out rows.
struct Aligned {
    guest_train: PartyData,
    host_train: PartyData,
    guest_test: PartyData,
    host_test: PartyData,
}

fn aligned(path: &Path) -> anyhow::Result<Aligned> {
    let (guest, host) = demo::credit_split(path)?;
    let job = two_party_job("credit-psi", Algorithm::Psi { reveal: PsiReveal::Intersection }, &[], &[], false);
    let transport = LocalTransport::new(&["bank", "payco"]);
    let start = Instant::now();
    let (g, h) = local::psi_in_process(&transport, &job, PsiReveal::Intersection, &guest.ids, &host.ids)?;
    let (g_rows, h_rows) = (g.common_rows.unwrap_or_default(), h.common_rows.unwrap_or_default());
    println!(
        "{}",
        json!({"op": "credit_psi", "guest_ids": guest.ids.len(), "host_ids": host.ids.len(), "common": g_rows.len(), "secs": start.elapsed().as_secs_f64()})
    );
    let (guest, host) = (guest.take(&g_rows), host.take(&h_rows));
    let train: Vec<usize> = (0..guest.ids.len()).filter(|&r| !demo::held_out(&guest.ids[r])).collect();
    let test: Vec<usize> = (0..guest.ids.len()).filter(|&r| demo::held_out(&guest.ids[r])).collect();
    Ok(Aligned {
        guest_train: guest.take(&train),
        host_train: host.take(&train),
        guest_test: guest.take(&test),
        host_test: host.take(&test),
    })
}

fn concat(a: &LrFeatures, b: &LrFeatures) -> LrFeatures {
    LrFeatures {
        names: [a.names.clone(), b.names.clone()].concat(),
        scaling: [a.scaling.clone(), b.scaling.clone()].concat(),
        x_q: [a.x_q.clone(), b.x_q.clone()].concat(),
    }
}

fn vertical_lr(path: &Path, bits: u32, epochs: usize, batch_rows: usize) -> anyhow::Result<()> {
    let d = aligned(path)?;
    let params = LrParams { epochs, batch_rows, learning_rate: 0.15, l2: 0.0001, key_bits: bits };
    let job = two_party_job("credit-lr", Algorithm::VerticalLr(params.clone()), &demo::GUEST_FEATURES, &demo::HOST_FEATURES, true);
    let guest = LrFeatures::fit(&d.guest_train.features).with_intercept();
    let host = LrFeatures::fit(&d.host_train.features);
    let transport = Capturing::new(LocalTransport::new(&["bank", "payco", "arbiter"]));
    let start = Instant::now();
    let (wg, wh) = if bits == 0 {
        local::lr_in_process::<PlainSuite>(&transport, &job, &guest, &d.guest_train.labels, &host)?
    } else {
        local::lr_in_process::<PaillierSuite>(&transport, &job, &guest, &d.guest_train.labels, &host)?
    };
    let secs = start.elapsed().as_secs_f64();
    let guest_test = LrFeatures::apply(&d.guest_test.features, guest.scaling[1..].to_vec()).with_intercept();
    let host_test = LrFeatures::apply(&d.host_test.features, host.scaling.clone());
    let federated: Vec<f64> = guest_test.scores(&wg).iter().zip(host_test.scores(&wh)).map(|(a, b)| a + b).collect();
    let central_w = lr::train_central(&concat(&guest, &host), &d.guest_train.labels, &params)?;
    let central = concat(&guest_test, &host_test).scores(&central_w);
    let guest_only_w = lr::train_central(&guest, &d.guest_train.labels, &params)?;
    let guest_only = guest_test.scores(&guest_only_w);
    let labels = &d.guest_test.labels;
    let bytes: usize = transport.totals_by_kind().iter().map(|t| t.2).sum();
    println!(
        "{}",
        json!({"op": "vertical_lr", "bits": bits, "train_rows": guest.rows(), "test_rows": labels.len(), "epochs": epochs, "batch_rows": batch_rows,
               "secs_per_epoch": secs / epochs as f64, "wire_bytes_per_epoch": bytes / epochs,
               "auc_federated": auc(&federated, labels), "auc_central": auc(&central, labels), "auc_guest_only": auc(&guest_only, labels),
               "weights_equal_central": ([wg, wh].concat() == central_w), "threads": rayon::current_num_threads()})
    );
    Ok(())
}

fn secureboost(path: &Path, bits: u32, trees: usize, depth: usize) -> anyhow::Result<()> {
    let d = aligned(path)?;
    let params = BoostParams { trees, depth_max: depth, bins_max: 32, learning_rate: 0.3, l2: 1.0, leaf_rows_min: 20, key_bits: bits };
    let job = two_party_job("credit-boost", Algorithm::SecureBoost(params.clone()), &demo::GUEST_FEATURES, &demo::HOST_FEATURES, false);
    let guest = BinnedFeatures::fit(&d.guest_train.features, params.bins_max);
    let host = BinnedFeatures::fit(&d.host_train.features, params.bins_max);
    let transport = Capturing::new(LocalTransport::new(&["bank", "payco"]));
    let start = Instant::now();
    let (model, splits) = if bits == 0 {
        local::boost_in_process::<PlainSuite>(&transport, &job, &guest, &d.guest_train.labels, &host)?
    } else {
        local::boost_in_process::<PaillierSuite>(&transport, &job, &guest, &d.guest_train.labels, &host)?
    };
    let secs = start.elapsed().as_secs_f64();
    let bytes: usize = transport.totals_by_kind().iter().map(|t| t.2).sum();
    let guest_test = BinnedFeatures::apply(&d.guest_test.features, guest.bins.clone());
    let host_test = BinnedFeatures::apply(&d.host_test.features, host.bins.clone());
    let federated = local::boost_score_in_process(&transport, &job, &model, &guest_test, &splits, &host_test)?;
    let central_model = boost::train_central(&guest.concat(&host), &d.guest_train.labels, &params)?;
    let central = boost::score_central(&central_model, &guest_test.concat(&host_test));
    let guest_only = boost::score_central(&boost::train_central(&guest, &d.guest_train.labels, &params)?, &guest_test);
    let labels = &d.guest_test.labels;
    println!(
        "{}",
        json!({"op": "secureboost", "bits": bits, "train_rows": guest.rows(), "test_rows": labels.len(), "trees": trees, "depth": depth,
               "secs_per_tree": secs / trees as f64, "wire_bytes_per_tree": bytes / trees,
               "auc_federated": auc(&federated, labels), "auc_central": auc(&central, labels), "auc_guest_only": auc(&guest_only, labels),
               "threads": rayon::current_num_threads()})
    );
    Ok(())
}
