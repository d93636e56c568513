//! Data-subject rights (PIPL Art. 44–47): everything finpulse keeps about one user, gathered
//! from each place it is kept, handed over as a zip of JSON and CSV with a signed manifest.
//!
//! What an export holds, and where each part comes from:
//! - `events.ndjson` and `events/<type>.csv`: every event of the user in the store (compacted
//!   files and the log tail), in clear for this request only — authentication data (C3) is
//!   never included — in time order, each type's CSV with that type's columns.
//! - `decisions.json`: the risk engine's decisions on the user's transactions (PIPL Art. 24:
//!   automated decisions), as recorded with them.
//! - `profile.json`: the live profile the caller holds (the server's live state, or the
//!   CLI's rebuild of it).
//! - `cases.json`: the fraud cases about the user, with their alerts and history.
//! - `segments.json`: the segments whose last materialisation held the user.
//! - `offers.json`: the pricing offer computed for the user, if any.
//! - `README.txt`: what each file is, in Chinese and English.
//! - `manifest.json`: the format, the user, when and by whom and for what it was made, and each
//!   file's size, SHA-256 and record count; `manifest.sig`, the deployment's Ed25519 signature
//!   of it, and `signing.pub`, the key to check it with (the audit log's, whose entry of the
//!   export also carries the manifest's hash).
//!
//! It reads the store and the data directory's segment and pricing files; it writes nothing
//! and knows no HTTP. The caller authorises, audits and hands over the bytes.

use arrow::array::RecordBatch;
use finpulse_core::Registry;
use finpulse_core::mask::Exposure;
use finpulse_log::StoreView;
use finpulse_query::{QueryOptions, run_sql};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

pub mod holds;
pub mod zip;

/// The export's format, named in its manifest.
pub const EXPORT_FORMAT: &str = "finpulse-subject-export/1";
/// The purpose an export is recorded with when the request states none: the subject's own.
pub const PURPOSE_DEFAULT: &str = "data subject access request (PIPL Art. 45)";
/// The manifest's name in the archive.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's signature (hex) in the archive.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The key that signed it (hex) in the archive.
pub const SIGNING_KEY_FILE: &str = "signing.pub";
/// What the signature covers before the manifest's bytes, so it can never be taken for the
/// deployment's signature of anything else (a tree head of the audit log).
pub const SIGNATURE_DOMAIN: &[u8] = b"finpulse subject export manifest v1\n";
/// The most events one export holds: far past what one person does, so reaching it means
/// the id is not a person's (a test user, a merged id) and the export is refused.
pub const EXPORT_EVENTS_MAX: usize = 2_000_000;
/// The event type the risk engine records its decisions as.
const DECISION_TYPE: &str = "risk_decision";
/// The longest user id taken: the one ingest takes (`finpulse_core::record::ID_BYTES_MAX`).
pub const USER_ID_BYTES_MAX: usize = finpulse_core::record::ID_BYTES_MAX;

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// Nothing is kept about the user.
    #[error("no user {0:?}: no event, profile or case of them is kept")]
    UnknownUser(String),
    /// An id that cannot be a user's.
    #[error("user id {id:?}: {why}")]
    BadUserId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More events than one export holds.
    #[error("more than {EXPORT_EVENTS_MAX} events for user {0:?}: refused as not one person's")]
    TooManyEvents(String),
    /// A part could not be read.
    #[error("reading {what}: {why}")]
    Read {
        /// Which part.
        what: &'static str,
        /// The cause.
        why: String,
    },
    /// The archive could not be made.
    #[error(transparent)]
    Zip(#[from] zip::ZipError),
    /// The signer refused the manifest.
    #[error("the manifest could not be signed")]
    Unsigned,
}

fn read_err(what: &'static str) -> impl Fn(String) -> SubjectError {
    move |why| SubjectError::Read { what, why }
}

/// What the caller holds about the user that the store does not.
#[derive(Debug, Default)]
pub struct Held {
    /// The live profile, as the caller shows it in clear; `None` when there is none.
    pub profile: Option<serde_json::Value>,
    /// The user's fraud cases.
    pub cases: Vec<serde_json::Value>,
}

/// One file of an export.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// Its path in the archive.
    pub name: String,
    /// What it holds (for the manifest and the README).
    pub what: &'static str,
    /// Records in it (events, rows, entries).
    pub records: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// One user's data, gathered.
#[derive(Debug, Clone)]
pub struct SubjectExport {
    /// The user.
    pub user_id: String,
    /// The files, in archive order.
    pub files: Vec<ExportFile>,
}

impl SubjectExport {
    /// Events found for the user.
    pub fn events(&self) -> u64 {
        self.files.iter().find(|f| f.name == "events.ndjson").map_or(0, |f| f.records)
    }
}

/// A file as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Its path in the archive.
    pub name: String,
    /// What it holds.
    pub what: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Records in it.
    pub records: u64,
}

/// The signed description of an export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The user.
    pub user_id: String,
    /// When it was made (RFC 3339, UTC).
    pub generated_at: String,
    /// Who made it (the audit trail's actor).
    pub generated_by: String,
    /// The purpose stated for it (the request it answers).
    pub purpose: String,
    /// The files, in archive order, the manifest and its signature excepted.
    pub files: Vec<ManifestFile>,
}

/// A finished export: the archive's bytes and the manifest signed in it.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The zip.
    pub bytes: Vec<u8>,
    /// The manifest as written in it.
    pub manifest: Manifest,
    /// SHA-256 of the manifest's bytes (hex): what the audit entry records.
    pub manifest_sha256: String,
}

/// Refuses an id no user can have.
pub fn check_user_id(id: &str) -> Result<(), SubjectError> {
    let bad = |why| Err(SubjectError::BadUserId { id: id.chars().take(64).collect(), why });
    if id.trim().is_empty() {
        return bad("empty");
    }
    if id.len() > USER_ID_BYTES_MAX {
        return bad("longer than an id may be (finpulse_core::record::ID_BYTES_MAX bytes)");
    }
    if id.chars().any(char::is_control) {
        return bad("holds a control character");
    }
    Ok(())
}

/// Gathers everything kept about `user_id`: the store's events (in clear, C3 withheld), and
/// the segment memberships and pricing offer in `data_dir`, with what the caller `held`.
/// An unknown user is an error, not an empty export.
pub async fn gather(view: &StoreView, data_dir: &Path, user_id: &str, held: Held) -> Result<SubjectExport, SubjectError> {
    check_user_id(user_id)?;
    let sql = format!("SELECT * FROM events WHERE user_id = {} ORDER BY ts, _seq", finpulse_query::sql::text_literal(user_id));
    let opts = QueryOptions { exposure: Exposure::Clear, rows_max: Some(EXPORT_EVENTS_MAX), ..Default::default() };
    let result = run_sql(view, &sql, opts).await.map_err(|e| read_err("events")(e.to_string()))?;
    if result.rows_truncated {
        return Err(SubjectError::TooManyEvents(user_id.to_string()));
    }
    let batches: Vec<RecordBatch> = result.batches.iter().map(without_log_position).collect::<Result<_, _>>()?;
    let events: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let segments = segment_memberships(data_dir, user_id)?;
    let offers = offers_of(data_dir, user_id)?;
    if events == 0 && held.profile.is_none() && held.cases.is_empty() && segments.is_empty() && offers.is_empty() {
        return Err(SubjectError::UnknownUser(user_id.to_string()));
    }

    let mut files = Vec::new();
    files.push(ExportFile {
        name: "events.ndjson".into(),
        what: "every event of the user, one JSON object per line, in time order",
        records: events as u64,
        bytes: ndjson(&batches)?,
    });
    let typed = by_type(&view.registry, &batches)?;
    for (type_name, batch) in &typed {
        files.push(ExportFile {
            name: format!("events/{type_name}.csv"),
            what: "the user's events of one type, with that type's fields",
            records: batch.num_rows() as u64,
            bytes: csv(batch)?,
        });
    }
    let decisions = match typed.iter().find(|(t, _)| t == DECISION_TYPE) {
        Some((_, batch)) => json_rows(batch)?,
        None => Vec::new(),
    };
    files.push(json_file("decisions.json", "automated decisions on the user's transactions, as recorded (PIPL Art. 24)", decisions));
    files.push(ExportFile {
        name: "profile.json".into(),
        what: "the user's live profile: balances, behaviour, lifecycle and tags (null when none is kept)",
        records: u64::from(held.profile.is_some()),
        bytes: serde_json::to_vec_pretty(&held.profile).expect("JSON values serialise"),
    });
    files.push(json_file("cases.json", "fraud cases about the user, with their alerts and history", held.cases));
    files.push(json_file("segments.json", "segments whose last materialisation held the user", segments));
    files.push(json_file("offers.json", "the pricing offer computed for the user", offers));
    Ok(SubjectExport { user_id: user_id.to_string(), files })
}

/// The archive of an export: its files, a README, the manifest, its signature by `sign` (an
/// Ed25519 signature of [`SIGNATURE_DOMAIN`] followed by the manifest's bytes) and the key
/// that checks it.
pub fn archive(
    export: &SubjectExport,
    generated_by: &str,
    purpose: &str,
    generated_at_us: i64,
    sign: impl FnOnce(&[u8]) -> Option<[u8; 64]>,
    verifying_key: [u8; 32],
) -> Result<Archive, SubjectError> {
    let readme = readme(export);
    let mut files: Vec<(&str, &str, u64, &[u8])> =
        export.files.iter().map(|f| (f.name.as_str(), f.what, f.records, f.bytes.as_slice())).collect();
    files.push(("README.txt", "what each file holds, in Chinese and English", 0, readme.as_bytes()));
    let manifest = Manifest {
        format: EXPORT_FORMAT.into(),
        user_id: export.user_id.clone(),
        generated_at: finpulse_core::time::format_us(generated_at_us),
        generated_by: generated_by.into(),
        purpose: purpose.into(),
        files: files
            .iter()
            .map(|(name, what, records, bytes)| ManifestFile {
                name: (*name).into(),
                what: (*what).into(),
                bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
                records: *records,
            })
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| read_err("manifest")(e.to_string()))?;
    let mut signed = SIGNATURE_DOMAIN.to_vec();
    signed.extend_from_slice(&manifest_bytes);
    let signature = format!("{}\n", hex::encode(sign(&signed).ok_or(SubjectError::Unsigned)?));
    let key = format!("{}\n", hex::encode(verifying_key));
    let mut entries: Vec<zip::ZipFile<'_>> = files.iter().map(|(name, _, _, bytes)| zip::ZipFile { name, bytes }).collect();
    entries.push(zip::ZipFile { name: MANIFEST_FILE, bytes: &manifest_bytes });
    entries.push(zip::ZipFile { name: SIGNATURE_FILE, bytes: signature.as_bytes() });
    entries.push(zip::ZipFile { name: SIGNING_KEY_FILE, bytes: key.as_bytes() });
    let bytes = zip::write_stored(&entries)?;
    Ok(Archive { bytes, manifest_sha256: hex::encode(Sha256::digest(&manifest_bytes)), manifest })
}

fn json_file(name: &str, what: &'static str, rows: Vec<serde_json::Value>) -> ExportFile {
    let records = rows.len() as u64;
    let bytes = serde_json::to_vec_pretty(&rows).expect("JSON values serialise");
    ExportFile { name: name.into(), what, records, bytes }
}

fn readme(export: &SubjectExport) -> String {
    let mut text = format!(
        "finpulse 个人信息副本 / personal data export\n用户 / user: {}\n\n\
         本压缩包包含本系统保存的该用户的全部个人信息（《个人信息保护法》第四十五条）。\n\
         This archive holds all personal data this system keeps about the user (PIPL Art. 45).\n\
         manifest.json 列出每个文件的 SHA-256；manifest.sig 是其 Ed25519 签名，用 signing.pub 校验。\n\
         manifest.json lists each file's SHA-256; manifest.sig is its Ed25519 signature, checked with signing.pub.\n\n",
        export.user_id
    );
    for f in &export.files {
        text.push_str(&format!("{} ({} records): {}\n", f.name, f.records, f.what));
    }
    text
}

/// A batch without the store's log-position column (internal bookkeeping, not the user's data).
fn without_log_position(batch: &RecordBatch) -> Result<RecordBatch, SubjectError> {
    let schema = batch.schema();
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|i| schema.field(*i).name() != finpulse_log::columns::SEQ_COLUMN).collect();
    batch.project(&keep).map_err(|e| read_err("events")(e.to_string()))
}

/// The rows of each event type present, with the common columns and that type's fields.
fn by_type(registry: &Registry, batches: &[RecordBatch]) -> Result<Vec<(String, RecordBatch)>, SubjectError> {
    let Some(first) = batches.first() else { return Ok(Vec::new()) };
    let all = arrow::compute::concat_batches(&first.schema(), batches).map_err(|e| read_err("events")(e.to_string()))?;
    let types = all.column_by_name("type").ok_or_else(|| read_err("events")("no type column".into()))?;
    let types: Vec<Option<String>> = finpulse_query::text_values(types.as_ref()).map_err(|e| read_err("events")(e.to_string()))?;
    let mut names: Vec<&str> = types.iter().flatten().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let Some(spec) = registry.type_id(name).map(|id| registry.event_type(id)) else { continue };
        let keep = arrow::array::BooleanArray::from(types.iter().map(|t| Some(t.as_deref() == Some(name))).collect::<Vec<_>>());
        let rows = arrow::compute::filter_record_batch(&all, &keep).map_err(|e| read_err("events")(e.to_string()))?;
        let mut columns = vec!["event_id".to_string(), "user_id".into(), "ts".into()];
        columns.extend(spec.fields.iter().map(|f| registry.field(f.field).name.clone()));
        let schema = rows.schema();
        let indices: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        let projected = rows.project(&indices).map_err(|e| read_err("events")(e.to_string()))?;
        out.push((name.to_string(), projected));
    }
    Ok(out)
}

fn ndjson(batches: &[RecordBatch]) -> Result<Vec<u8>, SubjectError> {
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    for b in batches {
        writer.write(b).map_err(|e| read_err("events")(e.to_string()))?;
    }
    writer.finish().map_err(|e| read_err("events")(e.to_string()))?;
    Ok(writer.into_inner())
}

fn json_rows(batch: &RecordBatch) -> Result<Vec<serde_json::Value>, SubjectError> {
    let bytes = ndjson(std::slice::from_ref(batch))?;
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| read_err("decisions")(e.to_string())))
        .collect()
}

fn csv(batch: &RecordBatch) -> Result<Vec<u8>, SubjectError> {
    let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(Vec::new());
    writer.write(batch).map_err(|e| read_err("events")(e.to_string()))?;
    Ok(writer.into_inner())
}

/// The segments whose last materialisation held the user, with when it was computed.
fn segment_memberships(data_dir: &Path, user_id: &str) -> Result<Vec<serde_json::Value>, SubjectError> {
    let store = finpulse_growth::segments::SegmentBook::load(data_dir).map_err(|e| read_err("segments")(e.to_string()))?;
    let mut out = Vec::new();
    for name in store.defs().keys() {
        let held = store.materialised_members(name).is_some_and(|m| m.iter().any(|u| u == user_id));
        if held {
            let state = store.state(name);
            out.push(serde_json::json!({
                "segment": name,
                "as_of": state.as_ref().map(|s| s.as_of.clone()),
                "computed_at": state.as_ref().map(|s| s.computed_at.clone()),
            }));
        }
    }
    Ok(out)
}

/// The user's offer in the stored offer set, with what produced it.
fn offers_of(data_dir: &Path, user_id: &str) -> Result<Vec<serde_json::Value>, SubjectError> {
    let path = data_dir.join(finpulse_models::pricing::OFFERS_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err("offers")(format!("{}: {e}", path.display()))),
    };
    let set: finpulse_models::pricing::OfferSet =
        serde_json::from_slice(&text).map_err(|e| read_err("offers")(format!("{}: {e}", path.display())))?;
    Ok(set
        .offers
        .iter()
        .filter(|o| o.user_id == user_id)
        .map(|o| {
            serde_json::json!({
                "offer": o,
                "computed_unix_secs": set.computed_unix_secs,
                "as_of": set.as_of,
                "churn_model_version": set.churn_model_version,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_no_user_can_have_are_refused() {
        for id in ["", "  ", "a\nb", &"x".repeat(USER_ID_BYTES_MAX + 1)] {
            assert!(matches!(check_user_id(id), Err(SubjectError::BadUserId { .. })), "{id:?}");
        }
        check_user_id("u123").unwrap();
        check_user_id("用户-7").unwrap();
    }
}
