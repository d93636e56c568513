//! `finpulse keys`, `finpulse users` and `finpulse audit`, and the audit entries the CLI's own
//! changes leave. Whoever runs the CLI owns the data directory's files, so it acts as the
//! administrator of the tenant it works on (`--tenant`, else the home tenant), named
//! `cli:<os user>` in the audit log. Keys, users, approvals and the audit log are the
//! deployment's: they live in its data directory whichever tenant is chosen.

use crate::Format;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use finpulse_access::approvals::{ApprovalKind, Approvals, Change};
use finpulse_access::audit::{self, TreeHead};
use finpulse_access::{Access, AuditLog, KeyLimits, Keys, NewKey, Principal, Record, Role, Users, merkle};
use finpulse_models::registry::{ModelEntry, ModelRegistry, Registration};
use finpulse_models::tabular::TabularModel;
use std::io::Read;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make an API key; it is printed once, alone on the last line.
    Create(CreateKey),
    /// List keys (never their secrets).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Revoke a key: it stops working at once, in a running server too.
    Revoke {
        /// The key's id (`finpulse keys list`).
        id: String,
    },
    /// Make a successor key; the old one keeps working for the overlap.
    Rotate {
        /// The key's id.
        id: String,
        /// Seconds the old key keeps working.
        #[arg(long, default_value_t = finpulse_access::keys::ROTATION_OVERLAP_SECS_DEFAULT)]
        overlap_secs: i64,
    },
}

#[derive(Args)]
pub struct CreateKey {
    /// admin, ops_manager, risk_analyst, data_scientist, compliance_officer, auditor or partner_app.
    #[arg(long)]
    role: Role,
    /// What it is for.
    #[arg(long, default_value = "")]
    label: String,
    /// Days until it stops working (default: it does not expire).
    #[arg(long)]
    expires_in_days: Option<u32>,
    /// Requests per second it may make.
    #[arg(long)]
    requests_per_sec: Option<u32>,
    /// Requests per UTC day it may make.
    #[arg(long)]
    daily_requests_max: Option<u64>,
    /// Queries it may run at once.
    #[arg(long)]
    queries_concurrent_max: Option<u32>,
    /// Seconds one of its queries may run.
    #[arg(long)]
    query_secs_max: Option<u32>,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Make a console user; the password is read from standard input.
    Create {
        /// Sign-in name.
        #[arg(long)]
        name: String,
        /// The user's role.
        #[arg(long)]
        role: Role,
        /// Read the password from standard input (its first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List console users.
    List,
    /// Remove a user: they cannot sign in, and their sessions end at their next request.
    Remove {
        /// Sign-in name.
        #[arg(long)]
        name: String,
    },
    /// Give a user another role; their sessions end at their next request.
    Role {
        /// Sign-in name.
        #[arg(long)]
        name: String,
        /// The new role.
        #[arg(long)]
        role: Role,
    },
    /// Set a user's password (read from standard input), lifting a lockout; their sessions end
    /// at their next request.
    Password {
        /// Sign-in name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input (its first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Changes waiting for (or decided by) a second person.
    List,
    /// Approve a waiting change: it takes effect now (a running server picks it up within a
    /// second). Whoever asked cannot approve it.
    Approve {
        /// The request's id.
        id: u64,
    },
    /// Reject a waiting change: nothing changes.
    Reject {
        /// The request's id.
        id: u64,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit log: every entry, every signed tree head, and proofs between them.
    /// Exits non-zero naming the first bad entry or head.
    Verify {
        /// Also print and check the inclusion proof of this entry.
        #[arg(long)]
        entry: Option<u64>,
        /// A tree head saved earlier (`finpulse audit head > FILE`): the log must still extend it.
        #[arg(long)]
        trusted_head: Option<PathBuf>,
    },
    /// Print the latest signed tree head as JSON, to keep outside this machine.
    Head,
    /// List entries.
    List {
        /// Only this actor.
        #[arg(long)]
        actor: Option<String>,
        /// Only actions containing this text.
        #[arg(long)]
        action: Option<String>,
        /// The most recent this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn audit_log(config: &Config) -> Result<AuditLog> {
    AuditLog::open(finpulse_access::audit_dir(config.access_root())).context("opening the audit log")
}

/// A failed step's error as the audit log's outcome takes it.
fn outcome_error(e: &impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Appends what the CLI did to the audit log; the entry is durable when this returns.
pub fn record(config: &Config, action: &str, target: Option<String>, purpose: Option<String>, outcome: &Result<()>) -> Result<()> {
    let (outcome, detail) = match outcome {
        Ok(()) => ("ok", None),
        Err(e) => ("failed", Some(format!("{e:#}"))),
    };
    append(config, action, target, purpose, outcome, detail)
}

/// [`record`], with what the entry says of a success (`detail`, e.g. an export's manifest hash).
pub fn record_with_detail(
    config: &Config,
    action: &str,
    target: Option<String>,
    purpose: Option<String>,
    outcome: &Result<()>,
    detail: Option<String>,
) -> Result<()> {
    match outcome {
        Ok(()) => append(config, action, target, purpose, "ok", detail),
        Err(_) => record(config, action, target, purpose, outcome),
    }
}

/// Records that a change is about to be made, before making it.
pub fn record_started(config: &Config, action: &str, target: Option<String>) -> Result<()> {
    append(config, action, target, None, finpulse_access::audit::OUTCOME_STARTED, None)
}

fn append(
    config: &Config,
    action: &str,
    target: Option<String>,
    purpose: Option<String>,
    outcome: &str,
    detail: Option<String>,
) -> Result<()> {
    let p = Principal::local_operator(config.tenant());
    let entry = Record {
        actor: p.actor,
        role: Some(p.role.name().into()),
        tenant: p.tenant,
        action: action.into(),
        target,
        purpose,
        from: Some("cli".into()),
        outcome: outcome.into(),
        detail,
        ..Record::default()
    };
    audit_log(config)?.append(entry).context("writing the audit log")?;
    Ok(())
}

pub fn keys(config: &Config, command: KeysCommand) -> Result<()> {
    let keys = Keys::open(finpulse_access::access_dir(config.access_root()))?;
    let by = Principal::local_operator_actor();
    match command {
        KeysCommand::Create(a) => {
            let now = finpulse_core::time::now_us();
            let limits = KeyLimits {
                requests_per_sec: a.requests_per_sec,
                queries_concurrent_max: a.queries_concurrent_max,
                query_secs_max: a.query_secs_max,
                daily_requests_max: a.daily_requests_max,
            };
            let new = NewKey {
                label: a.label,
                role: Some(a.role),
                tenant: config.tenant().to_string(),
                expires_at_us: a.expires_in_days.map(|d| now + i64::from(d) * 86_400 * 1_000_000),
                limits,
            };
            let made = keys.create(new, &by);
            let target = made.as_ref().ok().map(|(r, _)| format!("key {} ({}, tenant {})", r.id, r.role, r.tenant));
            let outcome = made.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "keys.create", target, None, &outcome)?;
            let (r, text) = made?;
            eprintln!("made key {} for role {} in tenant {}; it is shown once, now:", r.id, r.role, r.tenant);
            println!("{text}");
        }
        KeysCommand::List { format } => {
            let now = finpulse_core::time::now_us();
            let list = keys.list()?;
            let time = |us: Option<i64>| us.map(finpulse_core::time::format_us_brief).unwrap_or_default();
            let rows: Vec<[String; 8]> = list
                .iter()
                .map(|k| {
                    [
                        k.id.clone(),
                        k.role.name().into(),
                        k.tenant.clone(),
                        format!("{:?}", k.state_at(now)).to_lowercase(),
                        finpulse_core::time::format_us_brief(k.created_at_us),
                        time(k.expires_at_us),
                        k.label.clone(),
                        k.created_by.clone(),
                    ]
                })
                .collect();
            print_rows(&["id", "role", "tenant", "state", "created", "expires", "label", "created_by"], &rows, format)?;
        }
        KeysCommand::Revoke { id } => {
            let done = keys.revoke(&id);
            let outcome = done.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "keys.revoke", Some(format!("key {id}")), None, &outcome)?;
            let r = done?;
            println!("revoked key {} ({}, tenant {})", r.id, r.role, r.tenant);
        }
        KeysCommand::Rotate { id, overlap_secs } => {
            let done = keys.rotate(&id, overlap_secs, &by);
            let outcome = done.as_ref().map(|_| ()).map_err(outcome_error);
            let target = done.as_ref().ok().map(|(r, _)| format!("key {id} -> {}", r.id));
            record(config, "keys.rotate", target.or(Some(format!("key {id}"))), None, &outcome)?;
            let (r, text) = done?;
            eprintln!("made key {} to replace {id}, which keeps working for {overlap_secs} s; the new key is shown once, now:", r.id);
            println!("{text}");
        }
    }
    Ok(())
}

pub fn users(config: &Config, command: UsersCommand) -> Result<()> {
    let users = Users::open(finpulse_access::access_dir(config.access_root()))?;
    match command {
        UsersCommand::Create { name, role, password_stdin: _ } => {
            let tenant = config.tenant();
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).context("reading the password from standard input")?;
            let password = input.lines().next().unwrap_or("");
            let made = users.create(&name, role, tenant, password);
            let outcome = made.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "users.create", Some(format!("user {name} ({role}, tenant {tenant})")), None, &outcome)?;
            let u = made?;
            println!("made user {} ({}, tenant {})", u.name, u.role, u.tenant);
        }
        UsersCommand::Remove { name } => {
            let done = users.remove(&name);
            let outcome = done.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "users.remove", Some(format!("user {name}")), None, &outcome)?;
            let u = done?;
            println!("removed user {} ({}, tenant {})", u.name, u.role, u.tenant);
        }
        UsersCommand::Role { name, role } => {
            let done = users.set_role(&name, role);
            let outcome = done.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "users.role", Some(format!("user {name} -> {role}")), None, &outcome)?;
            let u = done?;
            println!("user {} is now {} (tenant {})", u.name, u.role, u.tenant);
        }
        UsersCommand::Password { name, password_stdin: _ } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).context("reading the password from standard input")?;
            let done = users.set_password(&name, input.lines().next().unwrap_or(""));
            let outcome = done.as_ref().map(|_| ()).map_err(outcome_error);
            record(config, "users.password", Some(format!("user {name}")), None, &outcome)?;
            done?;
            println!("set a new password for user {name}");
        }
        UsersCommand::List => {
            for u in users.list()? {
                let locked = u.locked_until_us.filter(|t| *t > finpulse_core::time::now_us()).map_or("", |_| "  locked");
                println!("{}  {}  {}{locked}", u.name, u.role, u.tenant);
            }
        }
    }
    Ok(())
}

pub fn audit(config: &Config, command: AuditCommand) -> Result<()> {
    let dir = finpulse_access::audit_dir(config.access_root());
    if !dir.join(audit::VERIFYING_KEY_FILE).exists() {
        bail!("{} holds no audit log yet (it is made by the first key, user or server)", dir.display());
    }
    let key = audit::read_verifying_key(&dir)?;
    match command {
        AuditCommand::Verify { entry, trusted_head } => {
            let v = audit::verify(&dir, &key).map_err(|e| anyhow::anyhow!("the audit log does not verify: {e}"))?;
            let snap = audit::read(&dir)?;
            let latest = v.latest.as_ref();
            if let Some(path) = trusted_head {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let trusted: TreeHead = serde_json::from_str(&text).with_context(|| format!("{} is not a tree head", path.display()))?;
                check_trusted(&snap, &trusted, latest, &key)?;
                println!("the log extends the trusted head of {} entries", trusted.tree_size);
            }
            if let Some(seq) = entry {
                let Some(head) = latest else { bail!("no signed tree head yet") };
                let size = head.tree_size as usize;
                let Some(proof) = snap.tree.inclusion_proof(seq as usize, size) else {
                    bail!("entry {seq} is not in the signed tree of {size} entries");
                };
                let leaf = snap.tree.leaf(seq as usize).expect("index checked");
                let root = head.root_hash().expect("verified");
                if !merkle::verify_inclusion(&leaf, seq, head.tree_size, &proof, &root) {
                    bail!("entry {seq}: its inclusion proof does not verify");
                }
                let out = serde_json::json!({
                    "entry": snap.entries[seq as usize],
                    "leaf_hash": hex::encode(leaf),
                    "inclusion_proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                    "tree_head": head,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            println!(
                "audit log verified: {} entries, {} signed tree heads{}; {} consistency and {} inclusion proofs checked",
                v.entries,
                v.heads,
                latest.map(|h| format!(", latest covers {} with root {}", h.tree_size, h.root)).unwrap_or_default(),
                v.consistency_proofs,
                v.inclusion_proofs
            );
        }
        AuditCommand::Head => {
            let heads = audit::read_heads(&dir)?;
            let Some(h) = heads.last() else { bail!("no signed tree head yet") };
            println!("{}", serde_json::to_string_pretty(h)?);
        }
        AuditCommand::List { actor, action, limit, format } => {
            let snap = audit::read(&dir)?;
            // The deployment's operator sees every tenant's entries unless `--tenant` names one.
            let tenant = config.chosen_tenant.as_deref();
            let rows: Vec<[String; 9]> = snap
                .entries
                .iter()
                .filter(|e| tenant.is_none_or(|t| e.record.tenant == t))
                .filter(|e| actor.as_ref().is_none_or(|a| &e.record.actor == a))
                .filter(|e| action.as_ref().is_none_or(|a| e.record.action.contains(a.as_str())))
                .rev()
                .take(limit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|e| {
                    let r = &e.record;
                    [
                        e.seq.to_string(),
                        finpulse_core::time::format_us_brief(e.at_us),
                        r.actor.clone(),
                        r.tenant.clone(),
                        r.action.clone(),
                        r.target.clone().unwrap_or_default(),
                        r.outcome.clone(),
                        r.purpose.clone().unwrap_or_default(),
                        r.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_rows(&["seq", "at", "actor", "tenant", "action", "target", "outcome", "purpose", "detail"], &rows, format)?;
        }
    }
    Ok(())
}

/// Checks that the log still extends a head kept elsewhere: it is signed, and the tree at its
/// size has its root and is consistent with the latest head.
fn check_trusted(snap: &audit::Snapshot, trusted: &TreeHead, latest: Option<&TreeHead>, key: &ed25519_dalek::VerifyingKey) -> Result<()> {
    if !trusted.signed_by(key) {
        bail!("the trusted head is not signed by this log's key");
    }
    let size = trusted.tree_size as usize;
    let Some(root) = snap.tree.root(size) else {
        bail!("the log holds {} entries, fewer than the trusted head's {size}: entries were removed", snap.tree.size());
    };
    if Some(root) != trusted.root_hash() {
        bail!("the first {size} entries no longer hash to the trusted head's root: the log was rewritten");
    }
    if let Some(latest) = latest {
        let proof = snap.tree.consistency_proof(size, latest.tree_size as usize).expect("sizes checked");
        let ok = merkle::verify_consistency(
            trusted.tree_size,
            latest.tree_size,
            &trusted.root_hash().expect("checked"),
            &latest.root_hash().expect("verified"),
            &proof,
        );
        if !ok {
            bail!("the latest head is not consistent with the trusted head");
        }
    }
    Ok(())
}

fn print_rows<const N: usize>(header: &[&str; N], rows: &[[String; N]], format: Format) -> Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(header)?;
            for r in rows {
                w.write_record(r)?;
            }
            w.flush()?;
        }
        Format::Json => {
            let out: Vec<serde_json::Map<String, serde_json::Value>> = rows
                .iter()
                .map(|r| header.iter().zip(r).map(|(h, v)| (h.to_string(), serde_json::Value::from(v.as_str()))).collect())
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for r in rows {
                for (w, v) in widths.iter_mut().zip(r) {
                    *w = (*w).max(v.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
            };
            println!("{}", line(header.to_vec()));
            for r in rows {
                println!("{}", line(r.iter().map(String::as_str).collect()));
            }
        }
    }
    Ok(())
}

/// What the demo prints for signing in: a console administrator (made once per data
/// directory) and a fresh administrator key.
pub struct DemoCredentials {
    /// The administrator's name.
    pub user: String,
    /// Their password, when it was made now (`None`: the user already existed).
    pub password: Option<String>,
    /// A new admin key.
    pub key: String,
}

/// The demo administrator's sign-in name.
pub const DEMO_ADMIN: &str = "admin";

/// Makes the demo's administrator (once) and a new admin key, audited.
pub fn demo_credentials(config: &Config) -> Result<DemoCredentials> {
    let access = Access::open(config.access_root())?;
    let by = Principal::local_operator_actor();
    let password = if access.users.list()?.iter().any(|u| u.name == DEMO_ADMIN) {
        None
    } else {
        let mut bytes = [0u8; 12];
        rand::fill(&mut bytes);
        let password = hex::encode(bytes);
        let made = access.users.create(DEMO_ADMIN, Role::Admin, config.tenant(), &password);
        let outcome = made.as_ref().map(|_| ()).map_err(outcome_error);
        record(config, "users.create", Some(format!("user {DEMO_ADMIN} (admin, tenant {})", config.tenant())), None, &outcome)?;
        made?;
        Some(password)
    };
    let made = access
        .keys
        .create(NewKey { label: "demo".into(), role: Some(Role::Admin), tenant: config.tenant().into(), ..NewKey::default() }, &by);
    let outcome = made.as_ref().map(|_| ()).map_err(outcome_error);
    record(config, "keys.create", made.as_ref().ok().map(|(r, _)| format!("key {} (admin, tenant {})", r.id, r.tenant)), None, &outcome)?;
    let (_, key) = made?;
    Ok(DemoCredentials { user: DEMO_ADMIN.into(), password, key })
}

/// Asks for a second person's approval of `version` of `name`; prints how to give it.
pub fn request_approval(config: &Config, kind: ApprovalKind, name: &str, version: u32, change: Change) -> Result<()> {
    println!("{}", ask_approval(config, kind, name, version, change)?);
    Ok(())
}

/// Asks for a second person's approval of `version` of `name`; says how to give it.
fn ask_approval(config: &Config, kind: ApprovalKind, name: &str, version: u32, change: Change) -> Result<String> {
    let approvals = Approvals::open(finpulse_access::access_dir(config.access_root()));
    let a = approvals.request(config.tenant(), kind, name, version, change, &Principal::local_operator_actor())?;
    let what = match change {
        Change::Activate => "",
        Change::RollBack => " (a roll-back)",
    };
    Ok(format!(
        "{} {name} v{version}{what} waits for a second person's approval (request {}): finpulse approvals approve {} (another operator), or POST /v1/approvals/{}/approve",
        kind.name(),
        a.id,
        a.id,
        a.id
    ))
}

/// Registers a model. One asked to be active becomes so at once, unless promotions need a
/// second person (`access.approval_required` has models): then it is registered inactive and
/// waits for their approval. Whether it is active now.
pub fn register_model(
    config: &Config,
    registry: &ModelRegistry,
    model: &TabularModel,
    mut registration: Registration,
) -> Result<(ModelEntry, bool)> {
    let waits = registration.activate && config.access.needs_approval(ApprovalKind::Models);
    registration.activate &= !waits;
    let entry = registry.register(model, &registration)?;
    if waits {
        // On standard error: a JSON report on standard output stays JSON.
        eprintln!("{}", ask_approval(config, ApprovalKind::Models, &entry.name, entry.version, Change::Activate)?);
    }
    Ok((entry, registration.activate))
}

pub fn approvals(config: &Config, command: ApprovalsCommand) -> Result<()> {
    let approvals = Approvals::open(finpulse_access::access_dir(config.access_root()));
    let by = Principal::local_operator_actor();
    let (id, approve) = match command {
        ApprovalsCommand::List => {
            for a in approvals.list(config.tenant())? {
                println!(
                    "{}  {}  {} v{}  {:?}  asked by {} at {}{}",
                    a.id,
                    a.kind.name(),
                    a.name,
                    a.version,
                    a.state,
                    a.requested_by,
                    finpulse_core::time::format_us_brief(a.requested_at_us),
                    a.decided_by.map(|d| format!(", decided by {d}")).unwrap_or_default()
                );
            }
            return Ok(());
        }
        ApprovalsCommand::Approve { id } => (id, true),
        ApprovalsCommand::Reject { id } => (id, false),
    };
    let data_dir = config.data_dir.clone();
    let decided = approvals.decide(config.tenant(), id, approve, &by, |a| -> Result<()> {
        finpulse_server::access::apply_approval(&data_dir, a, &by).map_err(anyhow::Error::msg)?;
        Ok(())
    });
    let outcome = match &decided {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("{e:#}")),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    record(config, if approve { "approvals.approve" } else { "approvals.reject" }, Some(format!("request {id}")), None, &outcome)?;
    let a = decided??;
    println!("request {id} ({} {} v{}) {:?} by {by}", a.kind.name(), a.name, a.version, a.state);
    Ok(())
}
