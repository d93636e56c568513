//! Console users: passwords hashed with argon2id, locked out after repeated failures, and
//! sessions held in memory with idle and absolute timeouts and a CSRF token each.

use crate::keys::{KeysError, TENANT_DEFAULT, io_err, valid_tenant};
use crate::list_file::ListFile;
use crate::role::Role;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

/// The users file.
pub const USERS_FILE: &str = "users.json";
/// Failed sign-ins in a row before an account is locked.
pub const SIGN_IN_FAILURES_MAX: u32 = 5;
/// How long a locked account stays locked, seconds.
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// The shortest password accepted, characters.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// The longest password accepted, bytes (argon2 takes any length; this bounds the work).
pub const PASSWORD_BYTES_MAX: usize = 1024;
/// A session ends after this long without a request, seconds.
pub const SESSION_IDLE_SECS: i64 = 30 * 60;
/// A session ends this long after sign-in whatever its use, seconds.
pub const SESSION_ABSOLUTE_SECS: i64 = 12 * 3600;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Tenant.
    pub tenant: String,
    /// argon2id hash in PHC format.
    pub password_hash: String,
    /// When created, µs.
    pub created_at_us: i64,
    /// Failed sign-ins since the last success.
    #[serde(default)]
    pub failures: u32,
    /// Locked until, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until_us: Option<i64>,
    /// How many times the password was set after the user was made: a session signed in
    /// under an earlier password ends at its next request.
    #[serde(default)]
    pub password_version: u32,
}

/// Why a user could not be made or could not sign in.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// A file problem.
    #[error(transparent)]
    Files(#[from] KeysError),
    /// The name is taken.
    #[error("user '{0}' already exists")]
    Exists(String),
    /// A bad name.
    #[error("user name '{0}' must be 1 to 63 letters, digits, '.', '_', '-' or '@'")]
    BadName(String),
    /// A weak or oversized password.
    #[error("the password must be {PASSWORD_CHARS_MIN} to {PASSWORD_BYTES_MAX} bytes long")]
    BadPassword,
    /// A bad tenant.
    #[error("tenant '{0}' must be 1 to 63 lower-case letters, digits, '_' or '-'")]
    BadTenant(String),
    /// No user by that name.
    #[error("no user '{0}' (finpulse users list shows them)")]
    NoSuchUser(String),
    /// Wrong name or password (which one is not said).
    #[error("wrong user name or password")]
    WrongCredentials,
    /// Locked after repeated failures.
    #[error("the account is locked after {SIGN_IN_FAILURES_MAX} failed sign-ins; try again in {0} s")]
    Locked(i64),
}

/// The users of one access directory.
pub struct Users {
    file: ListFile,
}

fn argon() -> Argon2<'static> {
    // argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
    Argon2::default()
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl Users {
    /// The users in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, UsersError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self { file: ListFile::new(&dir, USERS_FILE) })
    }

    /// Makes a user.
    pub fn create(&self, name: &str, role: Role, tenant: &str, password: &str) -> Result<UserRecord, UsersError> {
        if !valid_name(name) {
            return Err(UsersError::BadName(name.to_string()));
        }
        let tenant = if tenant.is_empty() { TENANT_DEFAULT } else { tenant };
        if !valid_tenant(tenant) {
            return Err(UsersError::BadTenant(tenant.to_string()));
        }
        if password.chars().count() < PASSWORD_CHARS_MIN || password.len() > PASSWORD_BYTES_MAX {
            return Err(UsersError::BadPassword);
        }
        let hash = hash_password(password);
        let _lock = self.file.lock()?;
        let mut users: Vec<UserRecord> = self.file.read()?;
        if users.iter().any(|u| u.name == name) {
            return Err(UsersError::Exists(name.to_string()));
        }
        let user = UserRecord {
            name: name.to_string(),
            role,
            tenant: tenant.to_string(),
            password_hash: hash,
            created_at_us: finpulse_core::time::now_us(),
            failures: 0,
            locked_until_us: None,
            password_version: 0,
        };
        users.push(user.clone());
        self.file.write(&users)?;
        Ok(user)
    }

    /// Every user.
    pub fn list(&self) -> Result<Vec<UserRecord>, UsersError> {
        Ok(self.file.read()?)
    }

    /// Removes a user: they cannot sign in, and a running server ends their sessions at their
    /// next request.
    pub fn remove(&self, name: &str) -> Result<UserRecord, UsersError> {
        let _lock = self.file.lock()?;
        let mut users: Vec<UserRecord> = self.file.read()?;
        let at = users.iter().position(|u| u.name == name).ok_or_else(|| UsersError::NoSuchUser(name.to_string()))?;
        let removed = users.remove(at);
        self.file.write(&users)?;
        Ok(removed)
    }

    /// Sets a user's password (and lifts a lockout).
    pub fn set_password(&self, name: &str, password: &str) -> Result<UserRecord, UsersError> {
        if password.chars().count() < PASSWORD_CHARS_MIN || password.len() > PASSWORD_BYTES_MAX {
            return Err(UsersError::BadPassword);
        }
        let hash = hash_password(password);
        let _lock = self.file.lock()?;
        let mut users: Vec<UserRecord> = self.file.read()?;
        let user = users.iter_mut().find(|u| u.name == name).ok_or_else(|| UsersError::NoSuchUser(name.to_string()))?;
        user.password_hash = hash;
        user.failures = 0;
        user.locked_until_us = None;
        user.password_version += 1;
        let out = user.clone();
        self.file.write(&users)?;
        Ok(out)
    }

    /// Changes the password of the user who knows the current one. A wrong current password
    /// counts towards the lockout as a failed sign-in does.
    pub fn change_own_password(&self, name: &str, current: &str, new: &str, now_us: i64) -> Result<UserRecord, UsersError> {
        if new.chars().count() < PASSWORD_CHARS_MIN || new.len() > PASSWORD_BYTES_MAX {
            return Err(UsersError::BadPassword);
        }
        self.sign_in(name, current, now_us)?;
        self.set_password(name, new)
    }

    /// Gives a user another role; their sessions end at their next request.
    pub fn set_role(&self, name: &str, role: Role) -> Result<UserRecord, UsersError> {
        let _lock = self.file.lock()?;
        let mut users: Vec<UserRecord> = self.file.read()?;
        let user = users.iter_mut().find(|u| u.name == name).ok_or_else(|| UsersError::NoSuchUser(name.to_string()))?;
        user.role = role;
        let out = user.clone();
        self.file.write(&users)?;
        Ok(out)
    }

    /// The user `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<UserRecord>, UsersError> {
        Ok(self.file.read::<UserRecord>()?.into_iter().find(|u| u.name == name))
    }

    /// Whether `session`'s user is still there with the role, tenant and password it signed
    /// in with (a session of someone removed, given another role or a new password ends).
    pub fn still(&self, session: &Session) -> Result<bool, UsersError> {
        Ok(self.file.read::<UserRecord>()?.iter().any(|u| {
            u.name == session.user && u.role == session.role && u.tenant == session.tenant && u.password_version == session.password_version
        }))
    }

    /// Checks a sign-in. A wrong password counts towards the lockout; an unknown name costs the
    /// same work as a known one, so timing does not tell which names exist.
    pub fn sign_in(&self, name: &str, password: &str, now_us: i64) -> Result<UserRecord, UsersError> {
        if password.len() > PASSWORD_BYTES_MAX {
            return Err(UsersError::WrongCredentials);
        }
        let _lock = self.file.lock()?;
        let mut users: Vec<UserRecord> = self.file.read()?;
        let Some(user) = users.iter_mut().find(|u| u.name == name) else {
            let _ = verify_password(password, dummy_hash());
            return Err(UsersError::WrongCredentials);
        };
        if let Some(until) = user.locked_until_us
            && until > now_us
        {
            return Err(UsersError::Locked((until - now_us).div_euclid(1_000_000) + 1));
        }
        if verify_password(password, &user.password_hash) {
            user.failures = 0;
            user.locked_until_us = None;
            let out = user.clone();
            self.file.write(&users)?;
            return Ok(out);
        }
        user.failures += 1;
        let locked = user.failures >= SIGN_IN_FAILURES_MAX;
        if locked {
            user.locked_until_us = Some(now_us + LOCKOUT_SECS * 1_000_000);
            user.failures = 0;
        }
        self.file.write(&users)?;
        Err(if locked { UsersError::Locked(LOCKOUT_SECS) } else { UsersError::WrongCredentials })
    }
}

fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    argon().hash_password(password.as_bytes(), &salt).expect("argon2 hashes any password within its limits").to_string()
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password anyone has"))
}

/// A signed-in console session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// Their tenant.
    pub tenant: String,
    /// The token state-changing requests must repeat in `X-CSRF-Token`.
    pub csrf: String,
    /// The user's `password_version` at sign-in.
    pub password_version: u32,
    created_us: i64,
    last_seen_us: i64,
}

/// Why a session cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// Unknown or signed out.
    #[error("the session is not valid; sign in again")]
    Unknown,
    /// Idle too long.
    #[error("the session ended after {SESSION_IDLE_SECS} s without use; sign in again")]
    Idle,
    /// Too old.
    #[error("the session ended {SESSION_ABSOLUTE_SECS} s after sign-in; sign in again")]
    Expired,
}

/// Sessions in memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns the cookie token and the session.
    pub fn start(&self, user: &UserRecord, now_us: i64) -> (String, Session) {
        let token = random_hex(32);
        let session = Session {
            user: user.name.clone(),
            role: user.role,
            tenant: user.tenant.clone(),
            csrf: random_hex(32),
            password_version: user.password_version,
            created_us: now_us,
            last_seen_us: now_us,
        };
        let mut map = self.by_token_hash.lock();
        map.retain(|_, s| live(s, now_us).is_ok());
        map.insert(Sha256::digest(token.as_bytes()).into(), session.clone());
        (token, session)
    }

    /// The session `token` names, touched now.
    pub fn check(&self, token: &str, now_us: i64) -> Result<Session, SessionRefusal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut map = self.by_token_hash.lock();
        let s = map.get_mut(&key).ok_or(SessionRefusal::Unknown)?;
        if let Err(e) = live(s, now_us) {
            map.remove(&key);
            return Err(e);
        }
        s.last_seen_us = now_us;
        Ok(s.clone())
    }

    /// Ends the session `token` names.
    pub fn end(&self, token: &str) {
        self.by_token_hash.lock().remove(&<[u8; 32]>::from(Sha256::digest(token.as_bytes())));
    }
}

fn live(s: &Session, now_us: i64) -> Result<(), SessionRefusal> {
    if now_us - s.created_us > SESSION_ABSOLUTE_SECS * 1_000_000 {
        Err(SessionRefusal::Expired)
    } else if now_us - s.last_seen_us > SESSION_IDLE_SECS * 1_000_000 {
        Err(SessionRefusal::Idle)
    } else {
        Ok(())
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(b.as_mut_slice());
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_signs_in_with_the_password_and_is_locked_after_repeated_failures() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        let u = users.create("lin.wei", Role::RiskAnalyst, "", "correct horse battery").unwrap();
        assert!(u.password_hash.starts_with("$argon2id$"), "{}", u.password_hash);
        let now = finpulse_core::time::now_us();
        assert_eq!(users.sign_in("lin.wei", "correct horse battery", now).unwrap().role, Role::RiskAnalyst);
        for _ in 0..SIGN_IN_FAILURES_MAX - 1 {
            assert!(matches!(users.sign_in("lin.wei", "guess", now), Err(UsersError::WrongCredentials)));
        }
        assert!(matches!(users.sign_in("lin.wei", "guess", now), Err(UsersError::Locked(_))));
        // Even the right password waits out the lock.
        assert!(matches!(users.sign_in("lin.wei", "correct horse battery", now + 1), Err(UsersError::Locked(_))));
        assert!(users.sign_in("lin.wei", "correct horse battery", now + (LOCKOUT_SECS + 1) * 1_000_000).is_ok());
        assert!(matches!(users.sign_in("nobody", "whatever", now), Err(UsersError::WrongCredentials)));
    }

    #[test]
    fn weak_passwords_bad_names_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        assert!(matches!(users.create("a", Role::Admin, "", "short"), Err(UsersError::BadPassword)));
        assert!(matches!(users.create("a b", Role::Admin, "", "long enough password"), Err(UsersError::BadName(_))));
        users.create("a", Role::Admin, "", "long enough password").unwrap();
        assert!(matches!(users.create("a", Role::Admin, "", "long enough password"), Err(UsersError::Exists(_))));
    }

    #[test]
    fn a_new_password_works_and_a_removed_user_cannot_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        users.create("wang", Role::OpsManager, "", "the first passphrase").unwrap();
        let now = finpulse_core::time::now_us();
        for _ in 0..SIGN_IN_FAILURES_MAX {
            let _ = users.sign_in("wang", "guess", now);
        }
        assert!(matches!(users.set_password("wang", "short"), Err(UsersError::BadPassword)));
        users.set_password("wang", "the second passphrase").unwrap();
        assert!(users.sign_in("wang", "the second passphrase", now).is_ok(), "a new password lifts the lock");
        assert!(matches!(users.sign_in("wang", "the first passphrase", now), Err(UsersError::WrongCredentials)));
        assert!(users.sign_in("wang", "the second passphrase", now).is_ok());
        let sessions = Sessions::default();
        let (_, signed_in) = sessions.start(&users.get("wang").unwrap().unwrap(), now);
        assert!(users.still(&signed_in).unwrap());
        users.set_password("wang", "the third passphrase").unwrap();
        assert!(!users.still(&signed_in).unwrap(), "a session from before a new password ends");
        let (_, signed_in) = sessions.start(&users.get("wang").unwrap().unwrap(), now);
        assert!(users.still(&signed_in).unwrap());
        users.remove("wang").unwrap();
        assert!(!users.still(&signed_in).unwrap());
        assert!(matches!(users.sign_in("wang", "the second passphrase", now), Err(UsersError::WrongCredentials)));
        assert!(matches!(users.remove("wang"), Err(UsersError::NoSuchUser(_))));
    }

    #[test]
    fn a_role_change_and_an_own_password_change_end_older_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::open(dir.path()).unwrap();
        let sessions = Sessions::default();
        let now = finpulse_core::time::now_us();
        users.create("zhao", Role::RiskAnalyst, "", "the first passphrase").unwrap();
        let (_, before) = sessions.start(&users.get("zhao").unwrap().unwrap(), now);
        assert_eq!(users.set_role("zhao", Role::Auditor).unwrap().role, Role::Auditor);
        assert!(!users.still(&before).unwrap(), "a session under the old role ends");
        assert!(matches!(users.set_role("nobody", Role::Auditor), Err(UsersError::NoSuchUser(_))));

        let (_, before) = sessions.start(&users.get("zhao").unwrap().unwrap(), now);
        assert!(matches!(
            users.change_own_password("zhao", "a wrong guess", "the second passphrase", now),
            Err(UsersError::WrongCredentials)
        ));
        assert_eq!(users.get("zhao").unwrap().unwrap().failures, 1, "a wrong current password counts as a failed sign-in");
        assert!(matches!(users.change_own_password("zhao", "the first passphrase", "short", now), Err(UsersError::BadPassword)));
        users.change_own_password("zhao", "the first passphrase", "the second passphrase", now).unwrap();
        assert!(!users.still(&before).unwrap());
        assert!(users.sign_in("zhao", "the second passphrase", now).is_ok());
    }

    #[test]
    fn sessions_end_when_idle_too_long_or_too_old() {
        let sessions = Sessions::default();
        let user = UserRecord {
            name: "u".into(),
            role: Role::Auditor,
            tenant: "default".into(),
            password_hash: String::new(),
            created_at_us: 0,
            failures: 0,
            locked_until_us: None,
            password_version: 0,
        };
        let (token, s) = sessions.start(&user, 0);
        assert_eq!(s.csrf.len(), 64);
        let minute = 60_000_000;
        assert!(sessions.check(&token, 20 * minute).is_ok());
        assert_eq!(sessions.check(&token, 20 * minute + SESSION_IDLE_SECS * 1_000_000 + 1).unwrap_err(), SessionRefusal::Idle);
        let (token, _) = sessions.start(&user, 0);
        let mut t = 0;
        while t < SESSION_ABSOLUTE_SECS * 1_000_000 {
            t += 20 * minute;
            let _ = sessions.check(&token, t);
        }
        assert_eq!(sessions.check(&token, SESSION_ABSOLUTE_SECS * 1_000_000 + minute).unwrap_err(), SessionRefusal::Expired);
        assert_eq!(sessions.check(&token, SESSION_ABSOLUTE_SECS * 1_000_000 + minute).unwrap_err(), SessionRefusal::Unknown);
        assert_eq!(sessions.check("nope", 0).unwrap_err(), SessionRefusal::Unknown);
    }
}
