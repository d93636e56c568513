//! `finpulse subject`: data-subject requests (PIPL Art. 44–47) on a data directory.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use finpulse_log::EventStore;
use std::path::{Path, PathBuf};

/// The lineage job of a subject export.
pub const EXPORT_JOB: &str = "subject_export";

#[derive(Subcommand, Debug)]
pub enum SubjectCommand {
    /// Everything kept about one user — events in clear (never authentication data), automated
    /// decisions, profile, cases, segment memberships, offers — as a zip of JSON and CSV with a
    /// manifest signed by the deployment's audit key. Audited with the manifest's SHA-256.
    Export {
        /// The user id.
        user: String,
        /// Where to write the zip (not overwritten if it exists).
        #[arg(long)]
        out: PathBuf,
        /// The request it answers (logged in the audit log).
        #[arg(long, default_value = finpulse_subjects::PURPOSE_DEFAULT)]
        purpose: String,
    },
    /// Erases one user by crypto-shredding: their data key is destroyed, so every sealed field
    /// of theirs (resident id, mobile, card numbers, name) is unreadable everywhere at once, and
    /// later events for them are refused. Events stay for counts and models, without identity.
    /// Audited. While a server owns the data directory, ask it: POST /v1/subjects/{id}/erase.
    Erase {
        /// The user id.
        user: String,
        /// Also write the erasure certificate here (JSON: the audit entry, the signed tree head
        /// and the inclusion proof between them).
        #[arg(long)]
        certificate: Option<PathBuf>,
    },
    /// Places a legal hold on a user (records a law requires kept, e.g. AML customer records
    /// for 10 years): their erasure is refused, saying which hold, until its last day. Audited.
    Hold {
        /// The user id.
        user: String,
        /// The law or case that requires the records.
        #[arg(long)]
        reason: String,
        /// The hold's last day, YYYY-MM-DD (UTC).
        #[arg(long)]
        until: String,
    },
    /// Lifts a user's legal hold. Audited.
    Release {
        /// The user id.
        user: String,
    },
    /// Every legal hold, as JSON lines.
    Holds {},
}

pub fn run(config: &Config, command: SubjectCommand, runtime: &tokio::runtime::Runtime) -> Result<()> {
    match command {
        SubjectCommand::Export { user, out, purpose } => {
            let purpose = finpulse_access::check_purpose(&purpose).context("--purpose")?.to_string();
            // A lineage run from the events to the archive (where there is a data directory).
            let lineage = config.data_dir.exists().then(|| finpulse_log::lineage::open(&config.data_dir)).flatten();
            let written = vec![finpulse_lineage::Dataset::new(finpulse_log::lineage::FILE_NAMESPACE, out.to_string_lossy())];
            let (run, started) = finpulse_lineage::Run::start(
                finpulse_log::lineage::JOB_NAMESPACE,
                EXPORT_JOB,
                finpulse_log::lineage::events_inputs(&config.data_dir),
                written.clone(),
            );
            finpulse_log::lineage::record(lineage.as_ref(), started);
            let exported = export(config, &user, &out, &purpose, runtime);
            let ended = match &exported {
                Ok(_) => run.complete(written),
                Err(e) => run.fail(&format!("{e:#}")),
            };
            finpulse_log::lineage::record(lineage.as_ref(), ended);
            let outcome: Result<()> = match &exported {
                Ok(_) => Ok(()),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            let detail = exported.as_ref().ok().cloned();
            // A data directory that does not exist holds nobody: there is no trail to write.
            if config.access_root().exists() {
                crate::access::record_with_detail(config, "subject.export", Some(user.clone()), Some(purpose), &outcome, detail)?;
            }
            let summary = exported?;
            println!("{summary}");
            println!("wrote {}", out.display());
            Ok(())
        }
        SubjectCommand::Hold { user, reason, until } => {
            let hold = finpulse_subjects::holds::LegalHold {
                user_id: user.clone(),
                reason,
                until,
                placed_by: finpulse_access::Principal::local_operator(config.tenant()).actor,
                placed_at: finpulse_core::time::format_us(finpulse_core::time::now_us()),
            };
            finpulse_subjects::holds::place(&config.data_dir, hold.clone())?;
            println!("{hold}");
            Ok(())
        }
        SubjectCommand::Release { user } => {
            if !finpulse_subjects::holds::release(&config.data_dir, &user)? {
                anyhow::bail!("user '{user}' has no legal hold");
            }
            println!("the legal hold on {user} is lifted");
            Ok(())
        }
        SubjectCommand::Holds {} => {
            for hold in finpulse_subjects::holds::load(&config.data_dir)? {
                println!("{}", serde_json::to_string(&hold)?);
            }
            Ok(())
        }
        SubjectCommand::Erase { user, certificate } => {
            let erased = erase(config, &user);
            let detail = erased.as_ref().ok().cloned();
            let outcome: Result<()> = match &erased {
                Ok(_) => Ok(()),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            if config.access_root().exists() {
                crate::access::record_with_detail(config, "subject.erase", Some(user.clone()), None, &outcome, detail)?;
            }
            let said = erased?;
            println!("{said}");
            let audit = finpulse_access::audit_dir(config.access_root());
            let snapshot = finpulse_access::audit::read(&audit)?;
            let seq = finpulse_server::subjects::erasure_entry(&snapshot.entries, config.tenant(), &user)
                .context("the erasure's audit entry was not found")?;
            let inclusion = finpulse_access::audit::inclusion(&audit, seq)?.context("no signed head covers the erasure's audit entry")?;
            println!(
                "certificate: audit entry {seq}, in the tree of {} entries with root {}",
                inclusion.tree_head.tree_size, inclusion.tree_head.root
            );
            if let Some(path) = certificate {
                finpulse_core::durable::write_file(&path, &serde_json::to_vec_pretty(&inclusion)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// Destroys the user's data key; answers what the audit entry says of it.
fn erase(config: &Config, user: &str) -> Result<String> {
    finpulse_subjects::check_user_id(user)?;
    if let Some(hold) = finpulse_subjects::holds::covering(&config.data_dir, user, finpulse_core::time::now_us())? {
        anyhow::bail!("{hold}: erasure is blocked until it ends or is released (finpulse subject release {user})");
    }
    if !finpulse_log::protection::is_protected(&config.data_dir) {
        anyhow::bail!(
            "{} does not seal personal fields (no key store), so there is no key to destroy: erasure by crypto-shredding needs a master key from the start (finpulse demo makes one; or FINPULSE_MASTER_KEY / protect.master_key_file)",
            config.data_dir.display()
        );
    }
    let opener = finpulse_server::protection::Opener::Owner;
    let keys = finpulse_server::protection::open(&config.data_dir, config.access_root(), &config.protect, opener).map_err(|e| match e {
        finpulse_server::protection::ProtectionError::Store(finpulse_protect::ProtectError::Locked { .. }) => {
            let owner = finpulse_log::store::owner_note(&config.data_dir).unwrap_or_else(|| "another process".into());
            anyhow::anyhow!("{e}: {owner} owns the data directory; ask it instead: POST /v1/subjects/{user}/erase")
        }
        e => anyhow::Error::from(e),
    })?;
    let keys = keys.context("the key store did not open")?;
    let receipt = keys.erase(user)?;
    let at = finpulse_core::time::format_us(receipt.erased_at_us);
    let prefix = finpulse_server::subjects::ERASURE_DETAIL_PREFIX;
    Ok(if receipt.already_erased {
        format!("{prefix}{user}: already erased at {at}")
    } else {
        let done = finpulse_server::subjects::ERASURE_DONE;
        format!("{prefix}{user}: {done} at {at}; their sealed fields are unreadable everywhere from now on")
    })
}

/// Writes the export; answers what the audit entry says of it.
fn export(config: &Config, user: &str, out: &Path, purpose: &str, runtime: &tokio::runtime::Runtime) -> Result<String> {
    finpulse_subjects::check_user_id(user)?;
    if out.exists() {
        anyhow::bail!("--out {}: the file exists; an export never overwrites one", out.display());
    }
    let data_dir = &config.data_dir;
    let view = EventStore::read_view(data_dir).with_context(|| format!("reading {}", data_dir.display()))?;
    let (state, _, _) = finpulse_state::rebuild(data_dir, finpulse_state::LIVE_STATE_PARTITIONS)?;
    let profile = finpulse_state::view::user_view(&state, user).map(|v| serde_json::to_value(&v)).transpose()?;
    let book = finpulse_risk::cases::CaseBook::rebuild(data_dir)?;
    let cases = book.of_user(user).map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
    let held = finpulse_subjects::Held { profile, cases };
    let gathered = runtime.block_on(finpulse_subjects::gather(&view, data_dir, user, held))?;
    let audit = finpulse_access::AuditLog::open(finpulse_access::audit_dir(config.access_root())).context("opening the audit log")?;
    let actor = finpulse_access::Principal::local_operator_actor();
    let now_us = finpulse_core::time::now_us();
    let archive = finpulse_subjects::archive(&gathered, &actor, purpose, now_us, |m| audit.sign(m), audit.verifying_key().to_bytes())?;
    // Written whole and durably, under a name of its own, never over another file.
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(out).with_context(|| format!("creating {}", out.display()))?;
    std::io::Write::write_all(&mut file, &archive.bytes).with_context(|| format!("writing {}", out.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", out.display()))?;
    Ok(format!(
        "subject export of {user}: {} events, {} files, manifest sha256 {}",
        gathered.events(),
        archive.manifest.files.len(),
        archive.manifest_sha256
    ))
}
