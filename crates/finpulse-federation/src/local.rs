//! Running a whole job in one process, each party on its own thread over a shared transport:
//! what the tests, the benchmark and a single-machine demonstration use. Each party still sees
//! only its own data and the messages it is sent.

use std::time::Duration;

use crate::FederationError;
use crate::boost::{self, BinnedFeatures, BoostModel, HostSplits};
use crate::cipher::CipherSuite;
use crate::job::{JobSpec, PsiReveal, Role};
use crate::lr::{self, LrFeatures};
use crate::psi::{self, PsiOutcome};
use crate::transport::{Endpoint, Transport};

/// How long a party waits for another's next message by default.
pub const REPLY_TIMEOUT_SECS_DEFAULT: u64 = 600;

fn endpoint<'a>(transport: &'a dyn Transport, job: &JobSpec, role: Role) -> Result<Endpoint<'a>, FederationError> {
    Ok(Endpoint::new(transport, &job.id, job.name_of(role)?, Duration::from_secs(REPLY_TIMEOUT_SECS_DEFAULT)))
}

fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, FederationError>>) -> Result<T, FederationError> {
    handle.join().map_err(|_| FederationError::Protocol("a party's thread panicked".into()))?
}

/// Intersects the guest's and the host's ids; returns what each learned.
pub fn psi_in_process<I: AsRef<[u8]> + Sync>(
    transport: &dyn Transport,
    job: &JobSpec,
    reveal: PsiReveal,
    guest_ids: &[I],
    host_ids: &[I],
) -> Result<(PsiOutcome, PsiOutcome), FederationError> {
    let (guest, host) = (endpoint(transport, job, Role::Guest)?, endpoint(transport, job, Role::Host)?);
    let (guest_name, host_name) = (job.name_of(Role::Guest)?, job.name_of(Role::Host)?);
    std::thread::scope(|s| {
        let h = s.spawn(|| psi::psi_host(&host, guest_name, host_ids, reveal));
        let g = psi::psi_guest(&guest, host_name, guest_ids, reveal);
        let h = joined(h);
        Ok((g?, h?))
    })
}

/// Trains vertical LR: returns the guest's weights (intercept first) and the host's.
pub fn lr_in_process<S: CipherSuite>(
    transport: &dyn Transport,
    job: &JobSpec,
    guest: &LrFeatures,
    labels: &[f64],
    host: &LrFeatures,
) -> Result<(Vec<f64>, Vec<f64>), FederationError> {
    let eps = [endpoint(transport, job, Role::Guest)?, endpoint(transport, job, Role::Host)?, endpoint(transport, job, Role::Arbiter)?];
    std::thread::scope(|s| {
        let a = s.spawn(|| lr::run_arbiter::<S>(&eps[2], job));
        let h = s.spawn(|| lr::run_host::<S>(&eps[1], job, host));
        let g = lr::run_guest::<S>(&eps[0], job, guest, labels);
        let (h, a) = (joined(h), joined(a));
        // The guest's error says most; then the host's; then the arbiter's.
        let g = g?;
        let h = h?;
        a?;
        Ok((g, h))
    })
}

/// Trains SecureBoost: returns the guest's model and the host's splits.
pub fn boost_in_process<S: CipherSuite>(
    transport: &dyn Transport,
    job: &JobSpec,
    guest: &BinnedFeatures,
    labels: &[f64],
    host: &BinnedFeatures,
) -> Result<(BoostModel, HostSplits), FederationError> {
    let (ge, he) = (endpoint(transport, job, Role::Guest)?, endpoint(transport, job, Role::Host)?);
    std::thread::scope(|s| {
        let h = s.spawn(|| boost::run_host::<S>(&he, job, host));
        let g = boost::run_guest::<S>(&ge, job, guest, labels);
        let h = joined(h);
        Ok((g?, h?))
    })
}

/// Scores held-out rows with a SecureBoost model, the host answering for its splits.
pub fn boost_score_in_process(
    transport: &dyn Transport,
    job: &JobSpec,
    model: &BoostModel,
    guest: &BinnedFeatures,
    splits: &HostSplits,
    host: &BinnedFeatures,
) -> Result<Vec<f64>, FederationError> {
    let (ge, he) = (endpoint(transport, job, Role::Guest)?, endpoint(transport, job, Role::Host)?);
    let (guest_name, host_name) = (job.name_of(Role::Guest)?, job.name_of(Role::Host)?);
    std::thread::scope(|s| {
        let h = s.spawn(|| boost::score_host(&he, guest_name, splits, host));
        let g = boost::score_guest(&ge, host_name, model, guest);
        joined(h)?;
        g
    })
}
