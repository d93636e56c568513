//! Who may do what in finpulse, and the record of what they did.
//!
//! - [`keys`]: API keys (`fpk_<id>_<secret>`), stored as keyed hashes, scoped to a role and a
//!   tenant, expiring, rotatable, revocable at once.
//! - [`users`]: console users (argon2id passwords, lockout) and in-memory sessions.
//! - [`role`]: the seven roles and the one table of what each may do.
//! - [`limits`]: per-key request rate, daily quota and concurrent queries.
//! - [`audit`] and [`merkle`]: the append-only audit log, an RFC 6962 Merkle tree with
//!   Ed25519-signed tree heads, and its verification.
//!
//! What a principal may *see* of personal data is decided by the data class of each field
//! (`finpulse_core::mask`); this crate decides only whether the principal may see C2 in clear.

pub mod approvals;
pub mod audit;
pub mod keys;
pub mod limits;
mod list_file;
pub mod merkle;
pub mod role;
mod secret_file;
pub mod users;

pub use audit::{AuditError, AuditLog, Record};
pub use finpulse_core::mask::Exposure;
pub use keys::{KeyLimits, KeyRecord, KeyRefusal, Keys, KeysError, NewKey, TENANT_DEFAULT};
pub use limits::{LimitRefusal, Limiter, SignInThrottle};
pub use role::{Permission, Role, UnknownRole};
pub use users::{Session, SessionRefusal, Sessions, UserRecord, Users, UsersError};

use std::path::{Path, PathBuf};

/// The folder under the data directory holding keys, users and the key-hash secret.
pub const ACCESS_DIR: &str = "access";
/// The folder under the data directory holding the audit log.
pub const AUDIT_DIR: &str = "audit";
/// The longest purpose a read in clear may state, bytes.
pub const PURPOSE_BYTES_MAX: usize = 256;

/// Why access control could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Keys.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Users.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Keys, users, sessions, limits and the audit log of one data directory.
pub struct Access {
    /// API keys.
    pub keys: Keys,
    /// Console users.
    pub users: Users,
    /// Console sessions.
    pub sessions: Sessions,
    /// Per-key counters.
    pub limiter: Limiter,
    /// Failed sign-ins per network address.
    pub sign_in_throttle: SignInThrottle,
    /// The audit log.
    pub audit: AuditLog,
    /// Changes waiting for a second person.
    pub approvals: approvals::Approvals,
}

impl Access {
    /// Opens access control for `data_dir` (`access/` and `audit/` beneath it).
    pub fn open(data_dir: &Path) -> Result<Self, AccessError> {
        Ok(Self {
            keys: Keys::open(access_dir(data_dir))?,
            users: Users::open(access_dir(data_dir))?,
            sessions: Sessions::default(),
            limiter: Limiter::default(),
            sign_in_throttle: SignInThrottle::default(),
            audit: AuditLog::open(audit_dir(data_dir))?,
            approvals: approvals::Approvals::open(access_dir(data_dir)),
        })
    }

    /// Every tenant that has a key or a user.
    pub fn tenants(&self) -> Result<std::collections::BTreeSet<String>, AccessError> {
        let mut all: std::collections::BTreeSet<String> = self.keys.list()?.into_iter().map(|k| k.tenant).collect();
        all.extend(self.users.list()?.into_iter().map(|u| u.tenant));
        Ok(all)
    }

    /// Whether anyone can sign in at all: at least one key or user exists.
    pub fn configured(&self) -> Result<bool, AccessError> {
        Ok(self.keys.any()? || !self.users.list()?.is_empty())
    }
}

/// The folder under a deployment's data directory that holds the other tenants' data
/// directories, one each.
pub const TENANTS_DIR: &str = "tenants";

/// The data directory of `tenant` in the deployment at `root`, whose own events belong to
/// `home` (the configuration's `access.tenant`): `root` itself for the home tenant,
/// `root/tenants/<tenant>` for any other. Keys, users, approvals and the audit log stay at
/// `root` for every tenant. `tenant` must be a valid tenant name (no path can be made of it).
pub fn tenant_data_dir(root: &Path, home: &str, tenant: &str) -> PathBuf {
    debug_assert!(keys::valid_tenant(tenant), "tenant names are checked before they name a folder");
    if tenant == home { root.to_path_buf() } else { root.join(TENANTS_DIR).join(tenant) }
}

/// The access folder of a data directory.
pub fn access_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(ACCESS_DIR)
}

/// The audit folder of a data directory.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(AUDIT_DIR)
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How the audit log names them: `key:<id>`, `user:<name>`, `cli:<os user>`.
    pub actor: String,
    /// Their role.
    pub role: Role,
    /// Their tenant.
    pub tenant: String,
    /// Their key's limits (none for people and the CLI).
    pub limits: KeyLimits,
}

impl Principal {
    /// The principal a key stands for.
    pub fn of_key(k: &KeyRecord) -> Self {
        Self { actor: format!("key:{}", k.id), role: k.role, tenant: k.tenant.clone(), limits: k.limits }
    }

    /// The principal a console session stands for.
    pub fn of_session(s: &Session) -> Self {
        Self { actor: format!("user:{}", s.user), role: s.role, tenant: s.tenant.clone(), limits: KeyLimits::default() }
    }

    /// Whoever runs the CLI on the data directory: its files are theirs, so they act as the
    /// administrator of the tenant they chose, named by their OS user in the audit log.
    pub fn local_operator(tenant: &str) -> Self {
        Self { actor: Self::local_operator_actor(), role: Role::Admin, tenant: tenant.into(), limits: KeyLimits::default() }
    }

    /// How the audit log names whoever runs the CLI: `cli:<os user>`.
    pub fn local_operator_actor() -> String {
        format!("cli:{}", os_user())
    }

    /// Whether they may do `p`.
    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// What they see of C2 data given the purpose they stated: clear only with both the
    /// permission and a purpose.
    pub fn exposure(&self, purpose: Option<&str>) -> Exposure {
        if purpose.is_some_and(|p| !p.trim().is_empty()) && self.allows(Permission::ReadPersonalClear) {
            Exposure::Clear
        } else {
            Exposure::Masked
        }
    }
}

/// Who runs this process: `$USER` (or `$LOGNAME`) when set, else the name the system gives the
/// process's user id, else `uid<N>`.
fn os_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"].iter().filter_map(|v| std::env::var(v).ok()).find(|n| !n.is_empty()) {
        return name;
    }
    // SAFETY: getuid cannot fail; getpwuid_r writes only into the buffers given, and the name
    // is read only when it reports success with a non-null result.
    unsafe {
        let uid = libc::getuid();
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) == 0 && !found.is_null() && !entry.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned();
        }
        format!("uid{uid}")
    }
}

/// A purpose that cannot be logged as given.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the purpose must be 1 to {PURPOSE_BYTES_MAX} bytes of printable text")]
pub struct BadPurpose;

/// Checks a stated purpose: printable, bounded, not blank.
pub fn check_purpose(purpose: &str) -> Result<&str, BadPurpose> {
    let p = purpose.trim();
    if p.is_empty() || p.len() > PURPOSE_BYTES_MAX || p.chars().any(char::is_control) {
        return Err(BadPurpose);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_exposure_needs_both_the_permission_and_a_purpose() {
        let analyst = Principal { actor: "k".into(), role: Role::RiskAnalyst, tenant: "default".into(), limits: KeyLimits::default() };
        let scientist = Principal { role: Role::DataScientist, ..analyst.clone() };
        assert_eq!(analyst.exposure(None), Exposure::Masked);
        assert_eq!(analyst.exposure(Some("  ")), Exposure::Masked);
        assert_eq!(analyst.exposure(Some("case 42 review")), Exposure::Clear);
        assert_eq!(scientist.exposure(Some("case 42 review")), Exposure::Masked);
        assert!(check_purpose("a\nb").is_err());
        assert!(check_purpose(&"x".repeat(PURPOSE_BYTES_MAX + 1)).is_err());
    }
}
