//! The start of every job: each party checks the declaration itself, then tells every other
//! party its digest of the declaration and how many of the declared features it holds, and
//! checks theirs. Any difference is an error naming the party before any data moves.

use crate::FederationError;
use crate::job::JobSpec;
use crate::message::Message;
use crate::transport::Endpoint;

/// Runs the handshake for `ep.me()`, which found `features_found` of its declared features in
/// its data. Sends an `Abort` to everyone when its own check fails.
pub fn handshake(ep: &Endpoint, job: &JobSpec, features_found: usize) -> Result<(), FederationError> {
    let me = ep.me().to_string();
    let others: Vec<&str> = job.parties.iter().map(|p| p.name.as_str()).filter(|n| *n != me).collect();
    let own_check = job.validate().and_then(|()| {
        let declared = job.party(&me)?.features.len();
        if declared != features_found {
            return Err(FederationError::Job {
                job: job.id.clone(),
                reason: format!("party {me:?} holds {features_found} features; the job declares {declared}"),
            });
        }
        Ok(())
    });
    if let Err(err) = own_check {
        for other in &others {
            // The job fails with our own error whatever happens to the notice.
            let _ = ep.send(other, Message::Abort { reason: err.to_string() });
        }
        return Err(err);
    }
    let digest = job.digest();
    for other in &others {
        ep.send(other, Message::Hello { digest, features: features_found as u32 })?;
    }
    for other in &others {
        match ep.recv(other)? {
            Message::Hello { digest: theirs, features } => {
                if theirs != digest {
                    return Err(FederationError::Job {
                        job: job.id.clone(),
                        reason: format!("party {other:?} declared a different job (its digest differs)"),
                    });
                }
                let declared = job.party(other)?.features.len();
                if features as usize != declared {
                    return Err(FederationError::Job {
                        job: job.id.clone(),
                        reason: format!("party {other:?} holds {features} features; the job declares {declared}"),
                    });
                }
            }
            other_message => return Err(FederationError::Protocol(format!("expected hello from {other:?}, got {}", other_message.kind()))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::lr_job;
    use crate::transport::LocalTransport;
    use std::time::Duration;

    fn run_all(jobs: [JobSpec; 3], features: [usize; 3]) -> Vec<Result<(), FederationError>> {
        let transport = LocalTransport::new(&["bank", "pay", "arbiter"]);
        let names = ["bank", "pay", "arbiter"];
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let (transport, job) = (&transport, &jobs[i]);
                    s.spawn(move || handshake(&Endpoint::new(transport, &job.id, names[i], Duration::from_millis(500)), job, features[i]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn parties_with_the_same_declaration_agree() {
        let job = lr_job();
        assert!(run_all([job.clone(), job.clone(), job], [2, 1, 0]).iter().all(|r| r.is_ok()));
    }

    #[test]
    fn a_different_declaration_is_named_by_the_others() {
        let job = lr_job();
        let mut changed = job.clone();
        changed.label = "other".into();
        let results = run_all([job.clone(), changed, job], [2, 1, 0]);
        let err = results[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("party \"pay\" declared a different job"), "{err}");
    }

    #[test]
    fn a_party_with_a_different_feature_count_stops_the_job() {
        let job = lr_job();
        let results = run_all([job.clone(), job.clone(), job], [2, 3, 0]);
        let own = results[1].as_ref().unwrap_err().to_string();
        assert!(own.contains("party \"pay\" holds 3 features; the job declares 1"), "{own}");
        let seen = results[0].as_ref().unwrap_err().to_string();
        assert!(seen.contains("stopped the job") && seen.contains("holds 3 features"), "{seen}");
    }
}
