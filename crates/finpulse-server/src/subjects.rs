//! Data-subject requests (PIPL Art. 44–47) and lineage over HTTP: a user's data handed over
//! as a signed zip (`finpulse_subjects`), in clear for that request only, audited with the
//! manifest's hash; the lineage graph around a dataset (`finpulse_lineage`).

use crate::access::{AuditDetail, Caller};
use crate::{Tenant, error};
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use finpulse_access::{Exposure, Permission};
use finpulse_subjects::{Held, SubjectError};

/// The media type of a subject export.
pub const ZIP_MEDIA_TYPE: &str = "application/zip";

/// Everything finpulse keeps about one user (PIPL Art. 45): their events in clear (never
/// authentication data), automated decisions with their reasons, live profile, cases, segment
/// memberships and pricing offer, as a zip of JSON and CSV with a manifest signed by the
/// deployment's audit key. `X-Purpose` may name the request it answers (the subject's access
/// request by default); the audit entry carries the purpose and the manifest's SHA-256.
#[utoipa::path(post, path = "/v1/subjects/{id}/export", tag = "subjects", params(("id" = String, Path, description = "user id")),
    responses(
        (status = 200, description = "The export (application/zip)", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "Not a user id", body = crate::ErrorBody),
        (status = 403, description = "The role may not export personal data in clear", body = crate::ErrorBody),
        (status = 404, description = "Nothing is kept about this user", body = crate::ErrorBody),
    ))]
pub(crate) async fn export(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>, Path(id): Path<String>) -> Response {
    if !caller.principal.allows(Permission::ReadPersonalClear) || !caller.principal.allows(Permission::ExportPersonal) {
        return error(
            StatusCode::FORBIDDEN,
            format!("role {} may not export personal data in clear (read_personal_clear and export_personal)", caller.principal.role),
        );
    }
    // The export answers the subject's own request; a stated purpose (the request's
    // reference) is recorded in its place.
    let stated = caller.purpose.clone();
    let purpose = stated.clone().unwrap_or_else(|| finpulse_subjects::PURPOSE_DEFAULT.to_string());
    if let Err(e) = finpulse_subjects::check_user_id(&id) {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let _turn = app.query_turn().await;
    let registry = app.views.registry();
    let profile = app.live.with_user_view(&id, |view| {
        view.map(|v| {
            serde_json::to_value(crate::wire::UserBody::from(&v).exposed(&registry, Exposure::Clear)).expect("a profile serialises")
        })
    });
    let cases =
        app.live.cases_of(&id).iter().map(|c| serde_json::to_value(crate::wire::CaseBody::from(c)).expect("a case serialises")).collect();
    let view = app.views.snapshot();
    let gathered = finpulse_subjects::gather(&view, &app.data_dir, &id, Held { profile, cases }).await;
    let export = match gathered {
        Ok(e) => e,
        Err(e @ SubjectError::UnknownUser(_)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ (SubjectError::BadUserId { .. } | SubjectError::TooManyEvents(_))) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let audit = &app.access.audit;
    let now_us = finpulse_core::time::now_us();
    let signed = finpulse_subjects::archive(&export, caller.actor(), &purpose, now_us, |m| audit.sign(m), audit.verifying_key().to_bytes());
    let archive = match signed {
        Ok(a) => a,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let detail = format!(
        "subject export of {id}: {} events, {} files, manifest sha256 {}",
        export.events(),
        archive.manifest.files.len(),
        archive.manifest_sha256
    );
    let headers = [
        (header::CONTENT_TYPE, ZIP_MEDIA_TYPE),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"subject-export.zip\""),
        (axum::http::HeaderName::from_static(crate::access::EXPOSURE_HEADER), "clear"),
    ];
    let mut answer = (headers, archive.bytes).into_response();
    answer.extensions_mut().insert(AuditDetail { detail, purpose: stated.is_none().then_some(purpose) });
    answer
}

/// Which dataset's lineage.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LineageQuery {
    /// The dataset's name (for files, its path, as `finpulse lineage events` shows it).
    pub dataset: String,
    /// Its namespace (`file` for the data directory's files).
    pub namespace: Option<String>,
    /// How many jobs away to follow each way (default 4).
    pub depth: Option<usize>,
}

/// The lineage graph around a dataset of this tenant: the jobs that wrote it and what they
/// read (upstream), the jobs that read it and what they wrote (downstream), from the
/// OpenLineage run events its derivations recorded.
#[utoipa::path(get, path = "/v1/lineage", tag = "subjects", params(LineageQuery),
    responses((status = 200, description = "nodes (datasets and jobs) and edges, as Marquez answers", body = Object),
        (status = 400, description = "A depth over the limit", body = crate::ErrorBody)))]
pub(crate) async fn lineage(
    Tenant(app): Tenant,
    query: Result<axum::extract::Query<LineageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let axum::extract::Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let dir = app.data_dir.join(finpulse_log::lineage::LINEAGE_DIR);
    let namespace = q.namespace.unwrap_or_else(|| finpulse_log::lineage::FILE_NAMESPACE.to_string());
    let graph = tokio::task::spawn_blocking(move || {
        let store = finpulse_lineage::LineageStore::open(&dir)?;
        store.graph(&finpulse_lineage::DatasetId::new(namespace, q.dataset), q.depth.unwrap_or(4))
    })
    .await;
    match graph {
        Ok(Ok(g)) => axum::Json(g.to_json()).into_response(),
        Ok(Err(e @ finpulse_lineage::LineageError::DepthTooLarge { .. })) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What an erasure did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErasureBody {
    /// The user.
    pub user_id: String,
    /// When their data key was destroyed (RFC 3339; the first erasure's time when repeated).
    pub erased_at: String,
    /// Whether they had been erased before (nothing was done this time).
    pub already_erased: bool,
}

/// Erases a user by crypto-shredding (PIPL Art. 47): their data key is destroyed, so every
/// sealed field of theirs — in the log, the Parquet files, exports and backups — is unreadable
/// at once, and their masked forms are hidden from every reader. Events stay (counts, sums and
/// models keep them, without identity); later events for the user are refused. The audit entry
/// of this request records the erasure; `GET /v1/subjects/{id}/erasure` gives its inclusion
/// proof, the erasure certificate. Needs erase_personal.
#[utoipa::path(post, path = "/v1/subjects/{id}/erase", tag = "subjects", params(("id" = String, Path, description = "user id")),
    responses(
        (status = 200, description = "The user is erased", body = ErasureBody),
        (status = 400, description = "Not a user id", body = crate::ErrorBody),
        (status = 404, description = "No data key was ever made for this user", body = crate::ErrorBody),
        (status = 409, description = "A legal hold covers the user, or this data directory does not seal personal fields", body = crate::ErrorBody),
    ))]
pub(crate) async fn erase(Tenant(app): Tenant, Path(id): Path<String>) -> Response {
    if let Err(e) = finpulse_subjects::check_user_id(&id) {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    match finpulse_subjects::holds::covering(&app.data_dir, &id, finpulse_core::time::now_us()) {
        Ok(Some(hold)) => return error(StatusCode::CONFLICT, format!("{hold}: erasure is blocked until it ends or is released")),
        Ok(None) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let Some(keys) = crate::protection::owned(&app.data_dir) else {
        return error(
            StatusCode::CONFLICT,
            "this data directory does not seal personal fields (no master key was configured when it was opened), so there is no key to destroy",
        );
    };
    let erased = tokio::task::spawn_blocking(move || keys.erase(&id)).await;
    let receipt = match erased {
        Ok(Ok(r)) => r,
        Ok(Err(e @ finpulse_protect::ProtectError::UnknownUser { .. })) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let erased_at = finpulse_core::time::format_us(receipt.erased_at_us);
    let detail = if receipt.already_erased {
        format!("{ERASURE_DETAIL_PREFIX}{}: already erased at {erased_at}", receipt.user)
    } else {
        format!("{ERASURE_DETAIL_PREFIX}{}: {ERASURE_DONE} at {erased_at}", receipt.user)
    };
    let body = ErasureBody { user_id: receipt.user, erased_at, already_erased: receipt.already_erased };
    let mut answer = axum::Json(body).into_response();
    answer.extensions_mut().insert(AuditDetail { detail, purpose: None });
    answer
}

/// The audit entry that records the erasure of `tenant`'s `user`: the one whose request
/// destroyed the key (later requests found them erased already), by its detail.
pub fn erasure_entry(entries: &[finpulse_access::audit::Entry], tenant: &str, user: &str) -> Option<u64> {
    let prefix = format!("{ERASURE_DETAIL_PREFIX}{user}: {ERASURE_DONE}");
    entries
        .iter()
        .rev()
        .filter(|e| e.record.tenant == tenant && e.record.outcome == "ok")
        .find(|e| e.record.detail.as_deref().is_some_and(|d| d.starts_with(&prefix)))
        .map(|e| e.seq)
}

/// How an erasure's audit entry begins, before the user id.
pub const ERASURE_DETAIL_PREFIX: &str = "subject erasure of ";
/// What follows the user id in the entry of the erasure that destroyed the key.
pub const ERASURE_DONE: &str = "data key destroyed";

/// The erasure certificate of a user: the audit entry that records their erasure, the latest
/// signed tree head, and the inclusion proof from one to the other (RFC 6962), checkable by
/// anyone with the deployment's verifying key and nothing else. Needs read_audit.
#[utoipa::path(get, path = "/v1/subjects/{id}/erasure", tag = "subjects", params(("id" = String, Path, description = "user id")),
    responses(
        (status = 200, description = "entry, leaf_index, tree_head, proof (hex hashes, leaf to root), verifying_key", body = Object),
        (status = 404, description = "No erasure of this user is on record", body = crate::ErrorBody),
    ))]
pub(crate) async fn erasure_certificate(Tenant(app): Tenant, Path(id): Path<String>) -> Response {
    let dir = app.access.audit.dir().to_path_buf();
    let tenant = app.tenant.to_string();
    let found =
        tokio::task::spawn_blocking(move || -> Result<Option<finpulse_access::audit::Inclusion>, finpulse_access::audit::AuditError> {
            let snapshot = finpulse_access::audit::read(&dir)?;
            match erasure_entry(&snapshot.entries, &tenant, &id) {
                Some(seq) => finpulse_access::audit::inclusion(&dir, seq),
                None => Ok(None),
            }
        })
        .await;
    match found {
        Ok(Ok(Some(inclusion))) => axum::Json(inclusion).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no erasure of this user is on record"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
