//! A federated job, declared once and checked by every party before it runs: who takes part in
//! which role, which features each brings, who owns the label, which algorithm with which
//! parameters. Parties exchange the declaration's digest and their feature counts first
//! ([`crate::session::handshake`]); any difference stops the job before data moves.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FederationError;

/// Parties in one job, at most.
pub const PARTIES_MAX: usize = 16;
/// Features one party may declare, at most.
pub const FEATURES_PER_PARTY_MAX: usize = 4096;

/// What a party does in a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the label (and some features); starts the protocol and keeps the model's head.
    Guest,
    /// Holds features only.
    Host,
    /// Holds the decryption key of a coordinated protocol and no data.
    Arbiter,
}

/// One party of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartySpec {
    /// The party's name, unique in the job.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The feature columns it brings, in order (none for an arbiter).
    pub features: Vec<String>,
}

/// Whether private set intersection reveals the common ids or only how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PsiReveal {
    /// Both parties learn which of their ids are common.
    Intersection,
    /// The guest learns only the number of common ids; the host learns nothing.
    SizeOnly,
}

/// Vertical logistic regression's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrParams {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per gradient step.
    pub batch_rows: usize,
    /// Step size.
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the intercept).
    pub l2: f64,
    /// Paillier modulus bits.
    pub key_bits: u32,
}

/// SecureBoost's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostParams {
    /// Trees to grow.
    pub trees: usize,
    /// Depth of each tree (a root alone is depth 0).
    pub depth_max: usize,
    /// Bins per feature, at most.
    pub bins_max: usize,
    /// Shrinkage of each tree's leaf values.
    pub learning_rate: f64,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// Rows a child must keep for a split to count.
    pub leaf_rows_min: usize,
    /// Paillier modulus bits.
    pub key_bits: u32,
}

/// The algorithm a job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Algorithm {
    /// Private set intersection of user ids.
    Psi {
        /// What the parties learn.
        reveal: PsiReveal,
    },
    /// Vertical logistic regression with an arbiter.
    VerticalLr(LrParams),
    /// Vertical gradient-boosted trees.
    SecureBoost(BoostParams),
}

/// A federated job as every party declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job's id, the same at every party.
    pub id: String,
    /// Its parties.
    pub parties: Vec<PartySpec>,
    /// The name of the party that owns the label (the guest).
    pub label_owner: String,
    /// The label column at the label owner.
    pub label: String,
    /// What runs.
    pub algorithm: Algorithm,
}

impl JobSpec {
    /// Checks the declaration's own consistency: unique names, one guest that owns the label,
    /// the roles the algorithm needs, feature lists within limits.
    pub fn validate(&self) -> Result<(), FederationError> {
        let bad = |reason: String| Err(FederationError::Job { job: self.id.clone(), reason });
        if self.parties.is_empty() || self.parties.len() > PARTIES_MAX {
            return bad(format!("{} parties; a job has 2 to {PARTIES_MAX}", self.parties.len()));
        }
        for (i, party) in self.parties.iter().enumerate() {
            if self.parties[..i].iter().any(|p| p.name == party.name) {
                return bad(format!("party {:?} is declared twice", party.name));
            }
            if party.features.len() > FEATURES_PER_PARTY_MAX {
                return bad(format!("party {:?} declares {} features; at most {FEATURES_PER_PARTY_MAX}", party.name, party.features.len()));
            }
            if party.role == Role::Arbiter && !party.features.is_empty() {
                return bad(format!("arbiter {:?} declares features; an arbiter holds no data", party.name));
            }
        }
        let guests: Vec<&PartySpec> = self.parties.iter().filter(|p| p.role == Role::Guest).collect();
        if guests.len() != 1 || guests[0].name != self.label_owner {
            return bad(format!("the label owner {:?} must be the one guest", self.label_owner));
        }
        let hosts = self.count(Role::Host);
        let arbiters = self.count(Role::Arbiter);
        let (hosts_needed, arbiters_needed) = match self.algorithm {
            Algorithm::Psi { .. } | Algorithm::SecureBoost(_) => (1, 0),
            Algorithm::VerticalLr(_) => (1, 1),
        };
        if hosts != hosts_needed || arbiters != arbiters_needed {
            return bad(format!(
                "this algorithm needs {hosts_needed} host(s) and {arbiters_needed} arbiter(s); the job has {hosts} and {arbiters}"
            ));
        }
        Ok(())
    }

    /// SHA-256 of the declaration's canonical JSON: equal at two parties exactly when they
    /// declared the same job.
    pub fn digest(&self) -> [u8; 32] {
        // Serialising a tree of plain structs and vectors cannot fail.
        let canonical = serde_json::to_vec(self).expect("a job declaration serialises");
        Sha256::digest(&canonical).into()
    }

    /// The party named `name`.
    pub fn party(&self, name: &str) -> Result<&PartySpec, FederationError> {
        self.parties
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| FederationError::Job { job: self.id.clone(), reason: format!("no party named {name:?}") })
    }

    /// The name of the first party with `role`.
    pub fn name_of(&self, role: Role) -> Result<&str, FederationError> {
        self.parties
            .iter()
            .find(|p| p.role == role)
            .map(|p| p.name.as_str())
            .ok_or_else(|| FederationError::Job { job: self.id.clone(), reason: format!("no party with role {role:?}") })
    }

    /// Checks that the data `me` holds has every column the job declares for it, and returns
    /// their positions in `columns`.
    pub fn local_columns(&self, me: &str, columns: &[String]) -> Result<Vec<usize>, FederationError> {
        let party = self.party(me)?;
        party
            .features
            .iter()
            .map(|name| {
                columns.iter().position(|c| c == name).ok_or_else(|| FederationError::Job {
                    job: self.id.clone(),
                    reason: format!("party {me:?} has no column {name:?} that the job declares"),
                })
            })
            .collect()
    }

    fn count(&self, role: Role) -> usize {
        self.parties.iter().filter(|p| p.role == role).count()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn lr_job() -> JobSpec {
        JobSpec {
            id: "job-1".into(),
            parties: vec![
                PartySpec { name: "bank".into(), role: Role::Guest, features: vec!["a".into(), "b".into()] },
                PartySpec { name: "pay".into(), role: Role::Host, features: vec!["c".into()] },
                PartySpec { name: "arbiter".into(), role: Role::Arbiter, features: vec![] },
            ],
            label_owner: "bank".into(),
            label: "y".into(),
            algorithm: Algorithm::VerticalLr(LrParams { epochs: 1, batch_rows: 10, learning_rate: 0.1, l2: 0.0, key_bits: 512 }),
        }
    }

    #[test]
    fn a_coordinated_lr_job_without_an_arbiter_is_refused() {
        let mut job = lr_job();
        job.validate().unwrap();
        job.parties.pop();
        let err = job.validate().unwrap_err().to_string();
        assert!(err.contains("1 arbiter(s)"), "{err}");
    }

    #[test]
    fn the_label_owner_must_be_the_guest() {
        let mut job = lr_job();
        job.label_owner = "pay".into();
        assert!(job.validate().unwrap_err().to_string().contains("label owner \"pay\""));
    }

    #[test]
    fn any_change_of_the_declaration_changes_its_digest() {
        let job = lr_job();
        let mut other = job.clone();
        if let Algorithm::VerticalLr(p) = &mut other.algorithm {
            p.learning_rate = 0.2;
        }
        assert_ne!(job.digest(), other.digest());
        assert_eq!(job.digest(), job.clone().digest());
    }

    #[test]
    fn a_declared_column_missing_from_the_data_is_named() {
        let job = lr_job();
        let err = job.local_columns("bank", &["a".into(), "x".into()]).unwrap_err().to_string();
        assert!(err.contains("no column \"b\""), "{err}");
        assert_eq!(job.local_columns("bank", &["b".into(), "a".into()]).unwrap(), vec![1, 0]);
    }
}
