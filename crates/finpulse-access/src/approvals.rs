//! Maker–checker: where a mistake costs money (a ruleset going live, a model promoted), the
//! change can be set to wait for a second person. The maker's change is stored but not active;
//! a different principal with the same permission approves (and it takes effect) or rejects it.

use crate::keys::KeysError;
use crate::list_file::ListFile;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The approvals file.
pub const APPROVALS_FILE: &str = "approvals.json";

/// What waits for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// A published ruleset becoming active.
    Rules,
    /// A model version becoming the active one of its purpose.
    Models,
}

impl ApprovalKind {
    /// Its name in configuration and answers.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalKind::Rules => "rules",
            ApprovalKind::Models => "models",
        }
    }
}

/// What approving a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Makes the version active (a publication or a promotion).
    #[default]
    Activate,
    /// Rolls back to the version, which must still be the one a roll-back reaches when it is
    /// approved (the history's order is kept, so a later roll-back walks further back).
    RollBack,
}

impl Change {
    /// Its name in answers.
    pub fn name(self) -> &'static str {
        match self {
            Change::Activate => "activate",
            Change::RollBack => "roll_back",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a second person.
    Pending,
    /// Approved: the change took effect.
    Approved,
    /// Rejected: nothing changed.
    Rejected,
}

/// A change waiting for (or decided by) a second person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// 1, 2, … in the order asked.
    pub id: u64,
    /// The tenant whose rules or models it changes; no one of another tenant sees or decides it.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// What kind of change.
    pub kind: ApprovalKind,
    /// The model purpose, or the ruleset slot.
    pub name: String,
    /// The version to make active.
    pub version: u32,
    /// How: made active, or rolled back to.
    #[serde(default)]
    pub change: Change,
    /// Who asked.
    pub requested_by: String,
    /// When, µs.
    pub requested_at_us: i64,
    /// Where it stands.
    pub state: ApprovalState,
    /// Who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_us: Option<i64>,
}

fn default_tenant() -> String {
    crate::TENANT_DEFAULT.to_string()
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// A file problem.
    #[error(transparent)]
    Files(#[from] KeysError),
    /// No such request.
    #[error("no approval request {0}")]
    NotFound(u64),
    /// Decided already.
    #[error("approval request {id} was {state:?} already")]
    Decided {
        /// The request.
        id: u64,
        /// How.
        state: ApprovalState,
    },
    /// The maker tried to check their own change.
    #[error("approval request {id} was made by {by}: a second person must decide it")]
    SamePerson {
        /// The request.
        id: u64,
        /// Who made it.
        by: String,
    },
}

/// The approval requests of one access directory.
pub struct Approvals {
    file: ListFile,
}

impl Approvals {
    /// The requests in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Self { file: ListFile::new(&dir.into(), APPROVALS_FILE) }
    }

    /// Every request of `tenant`, oldest first.
    pub fn list(&self, tenant: &str) -> Result<Vec<Approval>, ApprovalError> {
        Ok(self.all()?.into_iter().filter(|a| a.tenant == tenant).collect())
    }

    fn all(&self) -> Result<Vec<Approval>, ApprovalError> {
        Ok(self.file.read()?)
    }

    /// Asks for `version` of `name` in `tenant` to be made active by `change`.
    pub fn request(
        &self,
        tenant: &str,
        kind: ApprovalKind,
        name: &str,
        version: u32,
        change: Change,
        by: &str,
    ) -> Result<Approval, ApprovalError> {
        let _lock = self.file.lock()?;
        let mut all = self.all()?;
        let a = Approval {
            id: all.last().map_or(1, |a| a.id + 1),
            tenant: tenant.to_string(),
            kind,
            name: name.to_string(),
            version,
            change,
            requested_by: by.to_string(),
            requested_at_us: finpulse_core::time::now_us(),
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at_us: None,
        };
        all.push(a.clone());
        self.file.write(&all)?;
        Ok(a)
    }

    /// Decides request `id` of `tenant`, then runs `apply` on an approval before recording it
    /// (so an approval whose change fails stays pending). The maker may not decide their own
    /// request; another tenant's request is not found.
    pub fn decide<E>(
        &self,
        tenant: &str,
        id: u64,
        approve: bool,
        by: &str,
        apply: impl FnOnce(&Approval) -> Result<(), E>,
    ) -> Result<Result<Approval, E>, ApprovalError> {
        let _lock = self.file.lock()?;
        let mut all = self.all()?;
        let a = all.iter_mut().find(|a| a.id == id && a.tenant == tenant).ok_or(ApprovalError::NotFound(id))?;
        if a.state != ApprovalState::Pending {
            return Err(ApprovalError::Decided { id, state: a.state });
        }
        if a.requested_by == by {
            return Err(ApprovalError::SamePerson { id, by: by.to_string() });
        }
        if approve && let Err(e) = apply(a) {
            return Ok(Err(e));
        }
        a.state = if approve { ApprovalState::Approved } else { ApprovalState::Rejected };
        a.decided_by = Some(by.to_string());
        a.decided_at_us = Some(finpulse_core::time::now_us());
        let out = a.clone();
        self.file.write(&all)?;
        Ok(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_person_decides_and_the_maker_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::open(dir.path());
        let a = approvals.request("bank_a", ApprovalKind::Rules, "active", 3, Change::Activate, "user:maker").unwrap();
        let refused = approvals.decide("bank_a", a.id, true, "user:maker", |_| Ok::<(), String>(()));
        assert!(matches!(refused, Err(ApprovalError::SamePerson { .. })));
        let failed = approvals.decide("bank_a", a.id, true, "user:checker", |_| Err("does not compile".to_string())).unwrap();
        assert_eq!(failed.unwrap_err(), "does not compile");
        assert_eq!(approvals.list("bank_a").unwrap()[0].state, ApprovalState::Pending, "a change that failed stays pending");
        let done = approvals.decide("bank_a", a.id, true, "user:checker", |_| Ok::<(), String>(())).unwrap().unwrap();
        assert_eq!((done.state, done.decided_by.as_deref()), (ApprovalState::Approved, Some("user:checker")));
        assert!(matches!(
            approvals.decide("bank_a", a.id, false, "user:other", |_| Ok::<(), String>(())),
            Err(ApprovalError::Decided { .. })
        ));
        assert!(matches!(approvals.decide("bank_a", 99, true, "x", |_| Ok::<(), String>(())), Err(ApprovalError::NotFound(99))));
    }

    #[test]
    fn another_tenants_request_is_neither_listed_nor_decided() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::open(dir.path());
        let a = approvals.request("bank_a", ApprovalKind::Models, "fraud", 2, Change::RollBack, "user:maker").unwrap();
        assert!(approvals.list("bank_b").unwrap().is_empty());
        let other = approvals.decide("bank_b", a.id, true, "user:checker", |_| Ok::<(), String>(()));
        assert!(matches!(other, Err(ApprovalError::NotFound(_))), "{other:?}");
        assert_eq!(approvals.list("bank_a").unwrap()[0].state, ApprovalState::Pending);
    }
}
