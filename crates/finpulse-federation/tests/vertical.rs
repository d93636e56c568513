//! Vertical training held to centralised training: with the plaintext stand-in exactly, and
//! under Paillier (small keys) exactly too, since all sums are fixed-point integers.

mod common;

use common::{boost_job, lr_job, synthetic};
use finpulse_federation::boost::{self, BinnedFeatures, BoostModel, HostSplits, Node, SplitAt};
use finpulse_federation::cipher::PlainSuite;
use finpulse_federation::local::{boost_in_process, boost_score_in_process, lr_in_process};
use finpulse_federation::lr::{self, LrFeatures};
use finpulse_federation::paillier::PaillierSuite;
use finpulse_federation::transport::LocalTransport;

fn transport() -> LocalTransport {
    LocalTransport::new(&["bank", "payco", "arbiter"])
}

fn central_lr_features(guest: &LrFeatures, host: &LrFeatures) -> LrFeatures {
    LrFeatures {
        names: [guest.names.clone(), host.names.clone()].concat(),
        scaling: [guest.scaling.clone(), host.scaling.clone()].concat(),
        x_q: [guest.x_q.clone(), host.x_q.clone()].concat(),
    }
}

fn check_lr<S: finpulse_federation::cipher::CipherSuite>(rows: usize, key_bits: u32, epochs: usize, batch_rows: usize) {
    let data = synthetic(rows, 0, 7);
    let guest = LrFeatures::fit(&data.guest).with_intercept();
    let host = LrFeatures::fit(&data.host);
    let job = lr_job(key_bits, epochs, batch_rows);
    let (g, h) = lr_in_process::<S>(&transport(), &job, &guest, &data.labels, &host).unwrap();
    let params = match &job.algorithm {
        finpulse_federation::job::Algorithm::VerticalLr(p) => p.clone(),
        _ => unreachable!(),
    };
    let central = lr::train_central(&central_lr_features(&guest, &host), &data.labels, &params).unwrap();
    assert_eq!([g.clone(), h.clone()].concat(), central, "federated weights equal central weights bit for bit");
    assert!(h.iter().all(|w| w.abs() > 0.05), "the host's weights learned something: {h:?}");
}

#[test]
fn vertical_lr_with_the_stand_in_equals_central_lr_exactly() {
    check_lr::<PlainSuite>(2000, 0, 3, 256);
}

#[test]
fn vertical_lr_under_paillier_equals_central_lr_exactly() {
    check_lr::<PaillierSuite>(120, 512, 2, 40);
}

/// The federated model with each host split replaced by the host's feature (numbered after the
/// guest's) and bin: the central model's form.
fn as_central(model: &BoostModel, splits: &HostSplits, guest_features: u32) -> BoostModel {
    let mut model = model.clone();
    for node in model.trees.iter_mut().flat_map(|t| t.nodes.iter_mut()) {
        if let Node::Split { at: at @ SplitAt::Host { .. }, .. } = node {
            let SplitAt::Host { id } = *at else { unreachable!() };
            let (feature, bin) = splits.splits[id as usize];
            *at = SplitAt::Local { feature: guest_features + feature, bin };
        }
    }
    model
}

fn host_split_count(model: &BoostModel) -> usize {
    model.trees.iter().flat_map(|t| &t.nodes).filter(|n| matches!(n, Node::Split { at: SplitAt::Host { .. }, .. })).count()
}

fn check_boost<S: finpulse_federation::cipher::CipherSuite>(rows: usize, key_bits: u32, trees: usize, depth: usize) {
    let data = synthetic(rows, 0, 11);
    let job = boost_job(key_bits, trees, depth);
    let params = match &job.algorithm {
        finpulse_federation::job::Algorithm::SecureBoost(p) => p.clone(),
        _ => unreachable!(),
    };
    let guest = BinnedFeatures::fit(&data.guest, params.bins_max);
    let host = BinnedFeatures::fit(&data.host, params.bins_max);
    let t = transport();
    let (model, splits) = boost_in_process::<S>(&t, &job, &guest, &data.labels, &host).unwrap();
    let central = boost::train_central(&guest.concat(&host), &data.labels, &params).unwrap();
    assert!(host_split_count(&model) > 0, "some splits are the host's");
    assert_eq!(as_central(&model, &splits, 2), central, "SecureBoost grows the central trees");
    let scored = boost_score_in_process(&t, &job, &model, &guest, &splits, &host).unwrap();
    assert_eq!(scored, boost::score_central(&central, &guest.concat(&host)), "federated scoring equals central scoring");
}

#[test]
fn secureboost_with_the_stand_in_grows_exactly_the_central_trees() {
    check_boost::<PlainSuite>(3000, 0, 8, 3);
}

#[test]
fn secureboost_under_paillier_grows_exactly_the_central_trees() {
    check_boost::<PaillierSuite>(150, 512, 2, 2);
}

#[test]
fn mismatched_declarations_stop_training_with_a_clear_error() {
    let data = synthetic(50, 0, 3);
    let guest = BinnedFeatures::fit(&data.guest, 16);
    // The host holds one feature fewer than the job declares for it.
    let host = BinnedFeatures::fit(&data.host.select(&["h0", "h1"]).unwrap(), 16);
    let err = boost_in_process::<PlainSuite>(&transport(), &boost_job(0, 1, 2), &guest, &data.labels, &host).unwrap_err().to_string();
    assert!(err.contains("\"payco\"") && err.contains("holds 2 features; the job declares 3"), "{err}");
}
