//! Authentication, permissions, per-key limits and the audit trail of every request, in one
//! middleware in front of every route, and the `/v1/auth/*` and `/v1/audit` endpoints.
//!
//! Every route's permission is in [`ROUTES`]; a route missing from it is refused (a test checks
//! that every route in the OpenAPI document is listed). Refusals (401, 403, 429) are audited,
//! as is every change (any non-GET request except ingestion and decisions, the data plane) and
//! every read that returned personal data in clear; the audit entry is durable before the
//! answer leaves.

use crate::tenants::{Shared, Tenants};
use crate::{AppState, ErrorBody, Tenant, error};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use finpulse_access::approvals::{Approval, ApprovalError, ApprovalKind, Change};
use finpulse_access::audit::{self, Entry, Record};
use finpulse_access::{Exposure, KeyLimits, KeyRecord, NewKey, Permission, Principal, Role, TENANT_DEFAULT};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// The header a read in clear states its purpose in.
pub const PURPOSE_HEADER: &str = "x-purpose";
/// The header a cookie-authenticated change repeats its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header every authenticated answer says what it showed of personal data in.
pub const EXPOSURE_HEADER: &str = "x-data-exposure";
/// The console's session cookie.
pub const SESSION_COOKIE: &str = "finpulse_session";
/// The longest `Authorization` header looked at, bytes.
pub const AUTHORIZATION_BYTES_MAX: usize = 512;

/// Access settings of a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessOptions {
    /// The home tenant: its events are the data directory's own, and a key or user made with
    /// no tenant named belongs to it. Every other tenant's data is under `tenants/<name>`.
    pub tenant: String,
    /// Whether `/metrics` needs a key (with the `operate` permission).
    pub metrics_need_key: bool,
    /// Whether the console's session cookie is marked `Secure` (sent over HTTPS only): set it
    /// when the server is reached through TLS (a proxy in front of it); browsers then never send
    /// the session over plain HTTP.
    pub session_cookie_secure: bool,
    /// Changes that wait for a second person's approval: `rules` (a published ruleset going
    /// live), `models` (a model promoted).
    pub approval_required: Vec<ApprovalKind>,
    /// The proxies in front of the server (`10.0.0.2`, `10.0.0.0/8`): a request from one of
    /// them is taken to come from the nearest address in its `X-Forwarded-For` that is not
    /// one of them, for the audit trail and the sign-in throttle. From anyone else the header
    /// is ignored (a client could write anything in it).
    pub trusted_proxies: Vec<AddressRange>,
}

impl Default for AccessOptions {
    fn default() -> Self {
        Self {
            tenant: TENANT_DEFAULT.into(),
            metrics_need_key: false,
            session_cookie_secure: false,
            approval_required: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The header proxies list the addresses a request came through in, the client's first.
pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";
/// The most `X-Forwarded-For` entries looked at, from the right: no deployment has a longer
/// chain of its own proxies, and the rest of the header is the client's to fill.
pub const FORWARDED_HOPS_MAX: usize = 16;

/// A range of network addresses: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressRange {
    base: std::net::IpAddr,
    prefix_bits: u8,
}

impl AddressRange {
    /// Whether `ip` is in the range (an IPv4 address written as IPv6, `::ffff:10.0.0.1`, is
    /// the IPv4 one).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let bits = |total: u32, a: u128, b: u128| {
            let shift = total - u32::from(self.prefix_bits);
            shift >= total || (a >> shift) == (b >> shift)
        };
        match (self.base, ip.to_canonical()) {
            (V4(base), V4(ip)) => bits(32, u32::from(base).into(), u32::from(ip).into()),
            (V6(base), V6(ip)) => bits(128, u128::from(base), u128::from(ip)),
            _ => false,
        }
    }
}

impl std::str::FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let base: std::net::IpAddr =
            address.trim().parse().map_err(|_| format!("{text:?} is not an address or an address/prefix-length range"))?;
        let base = base.to_canonical();
        let total = if base.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match bits {
            None => total,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= total)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {total}"))?,
        };
        Ok(Self { base, prefix_bits })
    }
}

impl TryFrom<String> for AddressRange {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<AddressRange> for String {
    fn from(r: AddressRange) -> Self {
        format!("{}/{}", r.base, r.prefix_bits)
    }
}

/// What a handler adds to its request's audit entry (a subject export's manifest hash, and
/// the purpose it acted for when the request stated none): put in the answer's extensions,
/// read by the guard when it records the outcome.
#[derive(Debug, Clone)]
pub(crate) struct AuditDetail {
    /// What the entry's detail says.
    pub detail: String,
    /// The purpose the handler acted for, when `X-Purpose` gave none.
    pub purpose: Option<String>,
}

/// Where a request came from: the connection's peer and, behind trusted proxies, the client
/// they forwarded it for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddress {
    /// The address the sign-in throttle counts: the client's.
    pub client: std::net::IpAddr,
    /// The connection's other end.
    pub peer: SocketAddr,
}

impl ClientAddress {
    /// The client, and from a proxy the client and the connection: `203.0.113.7 via
    /// 10.0.0.2:51234`.
    pub fn describe(&self) -> String {
        if self.client == self.peer.ip().to_canonical() { self.peer.to_string() } else { format!("{} via {}", self.client, self.peer) }
    }

    /// From a connection's peer and its headers: the peer, unless it is a trusted proxy;
    /// then, walking `X-Forwarded-For` from the right (each proxy appends who it heard
    /// from), the first address that is not a trusted proxy. An entry that is not an
    /// address ends the walk at the last one that was.
    pub fn of(peer: SocketAddr, headers: &HeaderMap, trusted: &[AddressRange]) -> Self {
        let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|r| r.contains(ip));
        let mut client = peer.ip().to_canonical();
        if is_trusted(client) {
            let entries: Vec<&str> =
                headers.get_all(FORWARDED_FOR_HEADER).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
            for entry in entries.iter().rev().take(FORWARDED_HOPS_MAX) {
                let entry = entry.trim();
                let parsed = entry.parse::<std::net::IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()));
                let Some(ip) = parsed else { break };
                client = ip.to_canonical();
                if !is_trusted(client) {
                    break;
                }
            }
        }
        Self { client, peer }
    }
}

impl AccessOptions {
    /// Whether changes of `kind` wait for approval.
    pub fn needs_approval(&self, kind: ApprovalKind) -> bool {
        self.approval_required.contains(&kind)
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: answers everyone.
    Open,
    /// Any signed-in principal.
    SignedIn,
    /// One permission.
    Permission(Permission),
}

/// Whether a route's requests are audited when they succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trail {
    /// Not audited unless refused (reads; the data plane).
    Refusals,
    /// Audited whatever the answer (changes, reads of the audit log).
    Always,
    /// Audited when it answered in clear (user profiles).
    ClearReads,
    /// Audited when it answered in clear or as an export, an Arrow stream of any size (SQL).
    ClearReadsAndExports,
}

use Need::{Open, SignedIn};
use Permission as P;
use Trail::{Always, ClearReads, ClearReadsAndExports, Refusals};

/// Every route, what it needs, and whether it is audited.
const ROUTES: &[(&str, &str, Need, Trail)] = &[
    ("GET", "/healthz", Open, Refusals),
    ("GET", "/metrics", Open, Refusals),
    ("GET", "/openapi.json", SignedIn, Refusals),
    ("POST", "/v1/auth/login", Open, Always),
    ("POST", "/v1/auth/logout", SignedIn, Always),
    ("GET", "/v1/auth/whoami", SignedIn, Refusals),
    ("GET", "/v1/auth/keys", Need::Permission(P::ManageAccess), Refusals),
    ("POST", "/v1/auth/keys", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/keys/{id}/revoke", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/keys/{id}/rotate", Need::Permission(P::ManageAccess), Always),
    ("GET", "/v1/auth/users", Need::Permission(P::ManageAccess), Refusals),
    ("POST", "/v1/auth/users", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/users/{name}/remove", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/users/{name}/password", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/users/{name}/role", Need::Permission(P::ManageAccess), Always),
    ("POST", "/v1/auth/password", SignedIn, Always),
    ("GET", "/v1/audit", Need::Permission(P::ReadAudit), Always),
    // Each request's kind needs its own permission (publish_rules, promote_models): checked by
    // the handlers, which list and decide only what the caller may.
    ("GET", "/v1/approvals", SignedIn, Refusals),
    ("POST", "/v1/approvals/{id}/approve", SignedIn, Always),
    ("POST", "/v1/approvals/{id}/reject", SignedIn, Always),
    ("POST", "/v1/events", Need::Permission(P::Ingest), Refusals),
    ("POST", "/v1/sql", Need::Permission(P::RunSql), ClearReadsAndExports),
    ("GET", "/v1/schema", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/schema/types", Need::Permission(P::Operate), Always),
    ("POST", "/v1/admin/compact", Need::Permission(P::Operate), Always),
    ("GET", "/v1/models", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/models/{purpose}/promote", Need::Permission(P::PromoteModels), Always),
    ("POST", "/v1/models/{purpose}/rollback", Need::Permission(P::PromoteModels), Always),
    ("GET", "/v1/churn/risk", Need::Permission(P::ReadInsights), Refusals),
    ("GET", "/v1/pricing/offers", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/pricing/compute", Need::Permission(P::EditGrowth), Always),
    ("GET", "/v1/insights/{kind}", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/insights/{kind}", Need::Permission(P::ReadInsights), Refusals),
    ("GET", "/v1/segments", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/segments", Need::Permission(P::EditGrowth), Always),
    // A list of users to take elsewhere (a campaign): an export, audited.
    ("GET", "/v1/segments/{name}/members", Need::Permission(P::ReadInsights), Always),
    ("POST", "/v1/segments/{name}/rollback", Need::Permission(P::EditGrowth), Always),
    ("GET", "/v1/goals", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/goals", Need::Permission(P::EditGrowth), Always),
    ("POST", "/v1/goals/{name}/rollback", Need::Permission(P::EditGrowth), Always),
    ("GET", "/v1/experiments", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/experiments", Need::Permission(P::EditGrowth), Always),
    ("POST", "/v1/experiments/{key}/start", Need::Permission(P::EditGrowth), Always),
    ("POST", "/v1/experiments/{key}/stop", Need::Permission(P::EditGrowth), Always),
    ("GET", "/v1/experiments/{key}/report", Need::Permission(P::ReadInsights), Refusals),
    // Which variation a user sees: asked by the partner's app on its hot path, like a decision.
    ("GET", "/v1/experiments/assign", Need::Permission(P::Decide), Refusals),
    // Arithmetic only: nothing is read or stored.
    ("GET", "/v1/experiments/power", Need::Permission(P::ReadInsights), Refusals),
    ("POST", "/v1/decisions", Need::Permission(P::Decide), Refusals),
    // The latest decisions, for the risk team's live stream; user ids masked by exposure.
    ("GET", "/v1/decisions/recent", Need::Permission(P::ReadCases), ClearReads),
    ("GET", "/v1/users/{id}", Need::Permission(P::ReadUsers), ClearReads),
    ("GET", "/v1/rules", Need::Permission(P::ReadCases), Refusals),
    ("POST", "/v1/rules", Need::Permission(P::PublishRules), Always),
    ("POST", "/v1/rules/rollback", Need::Permission(P::PublishRules), Always),
    // Compiles only: nothing is stored or changed.
    ("POST", "/v1/rules/check", Need::Permission(P::PublishRules), Refusals),
    ("POST", "/v1/rules/backtest", Need::Permission(P::PublishRules), Refusals),
    ("GET", "/v1/cases", Need::Permission(P::ReadCases), Refusals),
    ("GET", "/v1/cases/{id}", Need::Permission(P::ReadCases), Refusals),
    ("POST", "/v1/cases/{id}/{action}", Need::Permission(P::ChangeCases), Always),
    // Personal data in clear, handed over: the handler also needs read_personal_clear and a
    // stated purpose.
    ("POST", "/v1/subjects/{id}/export", Need::Permission(P::ExportPersonal), Always),
    // Crypto-shredding: the user's data key is destroyed; the audit entry is the record of it.
    ("POST", "/v1/subjects/{id}/erase", Need::Permission(P::ErasePersonal), Always),
    // The audit entry of an erasure with its inclusion proof: no personal data.
    ("GET", "/v1/subjects/{id}/erasure", Need::Permission(P::ReadAudit), Refusals),
    // Which derivations read and wrote which datasets: names and schemas, no personal data.
    ("GET", "/v1/lineage", Need::Permission(P::ReadAudit), Refusals),
];

/// Routes whose bodies carry a password: their audit entries hash the body under the
/// key-hash secret (HMAC-SHA256), not with plain SHA-256.
const PASSWORD_BODY_ROUTES: &[&str] = &["/v1/auth/users", "/v1/auth/users/{name}/password", "/v1/auth/password"];

/// Whether a request asks for its answer as an Arrow stream (an export: no row limit).
pub(crate) fn wants_arrow(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(crate::ARROW_STREAM_MEDIA_TYPE))
}

/// Whether `path` is the API's (under `/v1`, or one of the operations routes) rather than
/// the console's.
pub fn is_api_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || ["/healthz", "/metrics", "/openapi.json"].contains(&path)
}

/// What `method path` needs; `None` for a route not in the table.
pub fn route_need(method: &str, path: &str) -> Option<Need> {
    route(method, path).map(|(need, _)| need)
}

fn route(method: &str, path: &str) -> Option<(Need, Trail)> {
    let method = if method == Method::HEAD { "GET" } else { method };
    ROUTES.iter().find(|(m, p, _, _)| *m == method && *p == path).map(|(_, _, n, t)| (*n, *t))
}

/// Who is calling, as handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal.
    pub principal: Arc<Principal>,
    /// The purpose stated in `X-Purpose`.
    pub purpose: Option<String>,
    /// What they may see of personal data in this request.
    pub exposure: Exposure,
}

impl Caller {
    /// The name changes are recorded under.
    pub fn actor(&self) -> &str {
        &self.principal.actor
    }

    /// A turn for one more query under the caller's `queries_concurrent_max`.
    pub(crate) fn query_turn(&self, app: &AppState) -> Result<finpulse_access::limits::QueryTurn, Refusal> {
        app.access.limiter.query_turn(&self.principal.actor, &self.principal.limits).map_err(|r| {
            metrics::counter!("finpulse_requests_limited_total", "limit" => r.name()).increment(1);
            Refusal::TooMany { message: r.to_string(), retry_after_secs: r.retry_after_secs() }
        })
    }

    /// The caller's `query_secs_max`, if set.
    pub(crate) fn query_time_max(&self) -> Option<std::time::Duration> {
        self.principal.limits.query_secs_max.map(|s| std::time::Duration::from_secs(u64::from(s)))
    }
}

/// Why a request is refused, before its handler or by it.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// 400: the request names something that is not there to name.
    BadRequest(String),
    /// 401: no usable credentials.
    Unauthorized(String),
    /// 403: the credentials may not do this.
    Forbidden(String),
    /// 404: nothing of this tenant's by that name.
    NotFound(String),
    /// 429: over a limit.
    TooMany {
        /// Which limit.
        message: String,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// 500: the access files could not be read.
    Internal(String),
}

impl Refusal {
    /// What the audit log and the answer say.
    pub(crate) fn message(&self) -> &str {
        match self {
            Refusal::BadRequest(m) | Refusal::Unauthorized(m) | Refusal::Forbidden(m) | Refusal::NotFound(m) | Refusal::Internal(m) => m,
            Refusal::TooMany { message, .. } => message,
        }
    }

    /// The answer.
    pub(crate) fn response(&self) -> Response {
        match self {
            Refusal::BadRequest(m) => error(StatusCode::BAD_REQUEST, m.clone()),
            Refusal::Unauthorized(m) => unauthorized(m.clone()),
            Refusal::Forbidden(m) => error(StatusCode::FORBIDDEN, m.clone()),
            Refusal::NotFound(m) => error(StatusCode::NOT_FOUND, m.clone()),
            Refusal::TooMany { message, retry_after_secs } => too_many(message, *retry_after_secs),
            Refusal::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
        }
    }
}

fn too_many(message: &str, retry_after_secs: u64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn unauthorized(message: impl Into<String>) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"finpulse\""));
    r
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE).then_some(value)
    })
}

/// Who the request's credentials name, or the refusal.
fn authenticate(app: &Shared, method: &Method, headers: &HeaderMap, now_us: i64) -> Result<Arc<Principal>, Refusal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        if value.len() > AUTHORIZATION_BYTES_MAX {
            return Err(Refusal::Unauthorized("the Authorization header is too long to be a finpulse key".into()));
        }
        let text = value.to_str().unwrap_or("");
        let Some(token) = text.strip_prefix("Bearer ").map(str::trim) else {
            return Err(Refusal::Unauthorized("the Authorization header must be 'Bearer <key>'".into()));
        };
        return app.access.keys.principal(token, now_us).map_err(|e| Refusal::Unauthorized(e.to_string()));
    }
    if let Some(token) = session_cookie(headers) {
        let session = app.access.sessions.check(token, now_us).map_err(|e| Refusal::Unauthorized(e.to_string()))?;
        // A user removed or given another role since signing in is signed out.
        if !app.access.users.still(&session).unwrap_or(false) {
            app.access.sessions.end(token);
            return Err(Refusal::Unauthorized(format!(
                "user '{}' was removed, given another role or a new password since signing in; sign in again",
                session.user
            )));
        }
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or(b"");
            if !bool::from(sent.ct_eq(session.csrf.as_bytes())) {
                return Err(Refusal::Forbidden(format!(
                    "a change made with a session cookie must repeat the session's CSRF token in {CSRF_HEADER}"
                )));
            }
        }
        return Ok(Arc::new(Principal::of_session(&session)));
    }
    Err(Refusal::Unauthorized(
        "authentication required: send 'Authorization: Bearer <key>' (finpulse keys create) or sign in at /v1/auth/login".into(),
    ))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Appends to the audit log off the async workers; the entry is durable when this returns.
pub(crate) async fn append_audit(access: &SharedAccess, record: Record) -> Result<Entry, String> {
    let access = access.clone();
    match tokio::task::spawn_blocking(move || access.audit.append(record)).await {
        Ok(Ok(e)) => Ok(e),
        Ok(Err(e)) => {
            metrics::counter!("finpulse_audit_failures_total").increment(1);
            tracing::error!(error = %e, "writing the audit log failed");
            Err(e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The middleware in front of every route.
pub(crate) async fn guard(State(tenants): State<Arc<Tenants>>, mut req: Request, next: Next) -> Response {
    let app = &tenants.shared;
    let method = req.method().clone();
    let matched_path = req.extensions().get::<MatchedPath>().cloned();
    let matched = matched_path.as_ref().map(MatchedPath::as_str);
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let client = peer.map(|p| ClientAddress::of(p, req.headers(), &app.access_options.trusted_proxies));
    if let Some(c) = client {
        req.extensions_mut().insert(c);
    }
    let uri = req.uri().clone();
    // What the audit log says of the request; only worked out when an entry is written.
    let from = || client.map(|c| c.describe());
    let target = || uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let action = || format!("{method} {}", matched.unwrap_or(uri.path()));
    let now_us = finpulse_core::time::now_us();
    let refusal = |principal: Option<&Principal>, status: StatusCode, why: String| Record {
        actor: principal.map_or_else(|| "anonymous".into(), |p| p.actor.clone()),
        role: principal.map(|p| p.role.name().to_string()),
        // Whose trail it is in: the principal's tenant, or the home tenant's when no
        // credentials named one.
        tenant: principal.map_or_else(|| app.access_options.tenant.clone(), |p| p.tenant.clone()),
        action: action(),
        target: Some(target()),
        purpose: None,
        from: from(),
        outcome: "denied".into(),
        status: Some(status.as_u16()),
        request_sha256: None,
        detail: Some(why),
    };

    let (need, trail) = match (matched.and_then(|path| route(method.as_str(), path)), matched.is_some()) {
        (Some(r), _) => r,
        // A path outside the API is the console's: its page and files answer everyone (it
        // signs in through /v1 like any client).
        (None, false) if !is_api_path(uri.path()) => (Open, Refusals),
        // An API path no route matches: signed-in callers get the 404, others the 401. A known
        // path with a method it does not take: the 405, once signed in.
        (None, false) => (SignedIn, Refusals),
        (None, true) if ROUTES.iter().any(|(_, p, _, _)| Some(*p) == matched) => (SignedIn, Refusals),
        (None, true) => {
            let why = format!("{} has no permission defined, so it is refused", action());
            let _ = append_audit(&app.access, refusal(None, StatusCode::FORBIDDEN, why.clone())).await;
            return error(StatusCode::FORBIDDEN, why);
        }
    };
    let need = match (need, matched) {
        (Open, Some("/metrics")) if app.access_options.metrics_need_key => Need::Permission(P::Operate),
        (n, _) => n,
    };
    if need == Open {
        req.extensions_mut().insert(tenants.home());
        return next.run(req).await;
    }
    let principal = match authenticate(app, &method, req.headers(), now_us) {
        Ok(p) => p,
        Err(r) => {
            let answer = r.response();
            metrics::counter!("finpulse_requests_refused_total", "status" => answer.status().as_str().to_string()).increment(1);
            // A refusal is answered even when its entry cannot be written (the failure is
            // logged and counted): nothing was done that needs the trail first.
            let _ = append_audit(&app.access, refusal(None, answer.status(), r.message().to_string())).await;
            return answer;
        }
    };
    if let Need::Permission(p) = need
        && !principal.allows(p)
    {
        let why = format!("role {} does not have the {p} permission that {} needs", principal.role, action());
        metrics::counter!("finpulse_requests_refused_total", "status" => "403").increment(1);
        let _ = append_audit(&app.access, refusal(Some(&principal), StatusCode::FORBIDDEN, why.clone())).await;
        return error(StatusCode::FORBIDDEN, why);
    }
    if let Err(r) = app.access.limiter.admit(&principal.actor, &principal.limits, now_us) {
        metrics::counter!("finpulse_requests_limited_total", "limit" => r.name()).increment(1);
        let _ = append_audit(&app.access, refusal(Some(&principal), StatusCode::TOO_MANY_REQUESTS, r.to_string())).await;
        return too_many(&r.to_string(), r.retry_after_secs());
    }
    let purpose = match req.headers().get(PURPOSE_HEADER).map(|v| std::str::from_utf8(v.as_bytes())) {
        None => None,
        Some(Ok(text)) => match finpulse_access::check_purpose(text) {
            Ok(p) => Some(p.to_string()),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("{PURPOSE_HEADER}: {e}")),
        },
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, format!("{PURPOSE_HEADER}: not UTF-8 text")),
    };
    let exposure = principal.exposure(purpose.as_deref());
    let caller = Caller { principal: principal.clone(), purpose: purpose.clone(), exposure };

    let export = trail == ClearReadsAndExports && wants_arrow(req.headers());
    let audited = match trail {
        Always => true,
        ClearReads => exposure == Exposure::Clear,
        ClearReadsAndExports => exposure == Exposure::Clear || export,
        Refusals => false,
    };
    let (mut req, request_sha256) = if audited {
        let (parts, body) = req.into_parts();
        let bytes: Bytes = match axum::body::to_bytes(body, app.limits.body_bytes_max).await {
            Ok(b) => b,
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body is over the limit of {} bytes (body_bytes_max)", app.limits.body_bytes_max),
                );
            }
        };
        let hashed = if bytes.is_empty() {
            sha256_hex(target().as_bytes())
        } else if matched.is_some_and(|p| PASSWORD_BODY_ROUTES.contains(&p)) {
            // A plain digest of a body with a password in it could be tested against guesses
            // by anyone who reads the trail.
            hex::encode(app.access.keys.keyed_hash(&bytes))
        } else {
            sha256_hex(&bytes)
        };
        (Request::from_parts(parts, Body::from(bytes)), Some(hashed))
    } else {
        (req, None)
    };
    // The principal's tenant, and no other, is what the handler can reach.
    let tenant = match tenants.get(&principal.tenant).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "opening a tenant failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    };
    req.extensions_mut().insert(tenant);
    req.extensions_mut().insert(caller);
    let entry = |outcome: &str, status: Option<StatusCode>, added: Option<AuditDetail>| Record {
        actor: principal.actor.clone(),
        role: Some(principal.role.name().to_string()),
        tenant: principal.tenant.clone(),
        action: match (exposure == Exposure::Clear, export) {
            (true, true) => format!("{} (export in clear)", action()),
            (true, false) if trail != Always => format!("{} (read in clear)", action()),
            (false, true) => format!("{} (export)", action()),
            _ => action(),
        },
        target: Some(target()),
        purpose: purpose.clone().or_else(|| added.as_ref().and_then(|a| a.purpose.clone())),
        from: from(),
        outcome: outcome.into(),
        status: status.map(|s| s.as_u16()),
        request_sha256: request_sha256.clone(),
        detail: added.map(|a| a.detail),
    };
    // A change is in the audit log before it is made: a crash between the two leaves its
    // intent on record, never a change without a trace.
    let change = trail == Always && method != Method::GET;
    if change && let Err(e) = append_audit(&app.access, entry(audit::OUTCOME_STARTED, None, None)).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("the audit log could not be written, so nothing was changed: {e}"));
    }
    let mut answer = next.run(req).await;
    // A handler that hands over data in clear whatever the request stated (a subject's export)
    // says so itself; otherwise the request's exposure is what the answer showed.
    if !answer.headers().contains_key(EXPOSURE_HEADER) {
        answer
            .headers_mut()
            .insert(EXPOSURE_HEADER, HeaderValue::from_static(if exposure == Exposure::Clear { "clear" } else { "masked" }));
    }
    // A handler's own limit refusal (a query over its time or its key's concurrent queries)
    // is on record like the guard's.
    if audited || answer.status() == StatusCode::TOO_MANY_REQUESTS {
        let status = answer.status();
        let outcome = if status.is_success() {
            "ok"
        } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            "denied"
        } else if status.is_client_error() {
            "refused"
        } else {
            "failed"
        };
        let added = answer.extensions_mut().remove::<AuditDetail>();
        if let Err(e) = append_audit(&app.access, entry(outcome, Some(status), added)).await {
            let done = if change { "its intent is on record but not its outcome" } else { "nothing was changed" };
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the audit log could not be written, so the answer is withheld ({done}): {e}"),
            );
        }
    }
    answer
}

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// Who is signed in.
#[derive(Serialize, ToSchema)]
pub struct WhoAmIBody {
    /// How the audit log names them.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Their tenant.
    pub tenant: String,
    /// What each permission allows them.
    pub permissions: Vec<String>,
    /// For a console session: the token to repeat in X-CSRF-Token on every change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn permissions_of(role: Role) -> Vec<String> {
    role.permissions().map(|p| p.name().to_string()).collect()
}

/// Sign in to the console: sets an HttpOnly, SameSite=Strict session cookie and answers the
/// CSRF token every change must repeat. Five failures in a row lock the account for 15 minutes.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = WhoAmIBody),
        (status = 400, description = "The body is not {name, password}", body = ErrorBody),
        (status = 401, description = "Wrong name or password", body = ErrorBody),
        (status = 429, description = "The account is locked", body = ErrorBody),
    ))]
pub(crate) async fn sign_in(
    Tenant(app): Tenant,
    client: Option<axum::Extension<ClientAddress>>,
    body: Result<Json<SignInRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"name\", \"password\"}}: {}", e.body_text())),
    };
    let access = app.access.clone();
    let name = req.name.clone();
    let now_us = finpulse_core::time::now_us();
    let address = client.as_ref().map(|c| c.0.client);
    // Whose user the name is stays unsaid to the caller; the home tenant's trail has it.
    let denied = |status: StatusCode, why: String| Record {
        actor: format!("user:{}", bounded_name(&name)),
        tenant: app.access_options.tenant.clone(),
        action: "sign_in".into(),
        from: client.as_ref().map(|c| c.0.describe()),
        outcome: "denied".into(),
        status: Some(status.as_u16()),
        detail: Some(why),
        ..Record::default()
    };
    if let Some(ip) = address
        && let Err(r) = app.access.sign_in_throttle.check(ip, now_us)
    {
        metrics::counter!("finpulse_requests_limited_total", "limit" => r.name()).increment(1);
        let _ = append_audit(&app.access, denied(StatusCode::TOO_MANY_REQUESTS, r.to_string())).await;
        return too_many(&r.to_string(), r.retry_after_secs());
    }
    let checked = tokio::task::spawn_blocking(move || access.users.sign_in(&req.name, &req.password, now_us)).await;
    let user = match checked {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            let (status, answer) = match &e {
                finpulse_access::UsersError::Locked(secs) => (StatusCode::TOO_MANY_REQUESTS, too_many(&e.to_string(), *secs as u64)),
                finpulse_access::UsersError::WrongCredentials => (StatusCode::UNAUTHORIZED, unauthorized(e.to_string())),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            };
            if let Some(ip) = address
                && status != StatusCode::INTERNAL_SERVER_ERROR
            {
                app.access.sign_in_throttle.failed(ip, now_us);
            }
            let _ = append_audit(&app.access, denied(status, e.to_string())).await;
            return answer;
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (token, session) = app.access.sessions.start(&user, now_us);
    let record = Record {
        actor: format!("user:{}", user.name),
        role: Some(user.role.name().into()),
        tenant: user.tenant.clone(),
        action: "sign_in".into(),
        from: client.as_ref().map(|c| c.0.describe()),
        outcome: "ok".into(),
        status: Some(200),
        ..Record::default()
    };
    if let Err(e) = append_audit(&app.access, record).await {
        app.access.sessions.end(&token);
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("the audit log could not be written: {e}"));
    }
    session_answer(&app, &user, &token, session)
}

/// The answer that starts a console session: the cookie, and who it is with the CSRF token.
fn session_answer(app: &AppState, user: &finpulse_access::UserRecord, token: &str, session: finpulse_access::Session) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        finpulse_access::users::SESSION_ABSOLUTE_SECS,
        secure_flag(app)
    );
    let body = WhoAmIBody {
        actor: format!("user:{}", user.name),
        role: user.role.name().into(),
        tenant: user.tenant.clone(),
        permissions: permissions_of(user.role),
        csrf_token: Some(session.csrf),
    };
    let mut answer = Json(body).into_response();
    answer.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("the cookie is ASCII"));
    answer
}

fn bounded_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The cookie attribute `access.session_cookie_secure` asks for.
fn secure_flag(app: &AppState) -> &'static str {
    if app.access_options.session_cookie_secure { "; Secure" } else { "" }
}

/// Sign out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out")))]
pub(crate) async fn sign_out(Tenant(app): Tenant, headers: HeaderMap) -> Response {
    if let Some(token) = session_cookie(&headers) {
        app.access.sessions.end(token);
    }
    let mut answer = StatusCode::NO_CONTENT.into_response();
    let cleared = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", secure_flag(&app));
    answer.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cleared).expect("ASCII"));
    answer
}

/// Who the credentials name, with their role and permissions; for a console session, also the
/// CSRF token its changes repeat (a page reloaded after sign-in reads it here).
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth", responses((status = 200, body = WhoAmIBody)))]
pub(crate) async fn whoami(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>, headers: HeaderMap) -> Response {
    let p = &caller.principal;
    let csrf_token = match (headers.contains_key(header::AUTHORIZATION), session_cookie(&headers)) {
        (false, Some(token)) => app.access.sessions.check(token, finpulse_core::time::now_us()).ok().map(|s| s.csrf),
        _ => None,
    };
    Json(WhoAmIBody {
        actor: p.actor.clone(),
        role: p.role.name().into(),
        tenant: p.tenant.clone(),
        permissions: permissions_of(p.role),
        csrf_token,
    })
    .into_response()
}

/// A key as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct KeyBody {
    /// Its id.
    pub id: String,
    /// How it starts (`fpk_<id>_…`).
    pub shown: String,
    /// What it is for.
    pub label: String,
    /// Its role.
    pub role: String,
    /// Its tenant.
    pub tenant: String,
    /// active, expired or revoked.
    pub state: String,
    /// When made (RFC 3339).
    pub created_at: String,
    /// Who made it.
    pub created_by: String,
    /// When it stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The key it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Its limits.
    #[schema(value_type = Object)]
    pub limits: KeyLimits,
}

impl KeyBody {
    fn of(k: &KeyRecord, now_us: i64) -> Self {
        let time = finpulse_core::time::format_us;
        Self {
            id: k.id.clone(),
            shown: k.shown(),
            label: k.label.clone(),
            role: k.role.name().into(),
            tenant: k.tenant.clone(),
            state: serde_json::to_value(k.state_at(now_us)).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            created_at: time(k.created_at_us),
            created_by: k.created_by.clone(),
            expires_at: k.expires_at_us.map(time),
            revoked_at: k.revoked_at_us.map(time),
            rotated_from: k.rotated_from.clone(),
            limits: k.limits,
        }
    }
}

/// The keys of the caller's tenant.
#[derive(Serialize, ToSchema)]
pub struct KeysBody {
    /// Oldest first.
    pub keys: Vec<KeyBody>,
}

/// List the caller's tenant's API keys (never their secrets).
#[utoipa::path(get, path = "/v1/auth/keys", tag = "auth", responses((status = 200, body = KeysBody)))]
pub(crate) async fn list_keys(Tenant(app): Tenant) -> Response {
    let now = finpulse_core::time::now_us();
    match app.access.keys.list() {
        Ok(keys) => {
            Json(KeysBody { keys: keys.iter().filter(|k| *k.tenant == *app.tenant).map(|k| KeyBody::of(k, now)).collect() }).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A new key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// Its role.
    pub role: String,
    /// What it is for.
    #[serde(default)]
    pub label: String,
    /// Days until it stops working (none: it does not expire).
    pub expires_in_days: Option<u32>,
    /// Its limits.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub limits: KeyLimits,
}

/// A key just made: the only answer that carries its secret.
#[derive(Serialize, ToSchema)]
pub struct NewKeyBody {
    /// The key itself: send it as `Authorization: Bearer <key>`. It is not shown again.
    pub key: String,
    /// The key as listed.
    #[serde(flatten)]
    pub record: KeyBody,
}

/// Make an API key for the caller's tenant; its secret is in this answer only.
#[utoipa::path(post, path = "/v1/auth/keys", tag = "auth", request_body = NewKeyRequest,
    responses((status = 201, body = NewKeyBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn create_key(
    Tenant(app): Tenant,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Json<NewKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let role = match role_of(&req.role) {
        Ok(r) => r,
        Err(r) => return r.response(),
    };
    let now = finpulse_core::time::now_us();
    let new = NewKey {
        label: req.label,
        role: Some(role),
        tenant: app.tenant.to_string(),
        expires_at_us: req.expires_in_days.map(|d| now + i64::from(d) * 86_400 * 1_000_000),
        limits: req.limits,
    };
    let access = app.access.clone();
    let by = caller.actor().to_string();
    match tokio::task::spawn_blocking(move || access.keys.create(new, &by)).await {
        Ok(Ok((record, key))) => (StatusCode::CREATED, Json(NewKeyBody { key, record: KeyBody::of(&record, now) })).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A role named in a request body, or the 400 naming the roles there are.
fn role_of(name: &str) -> Result<Role, Refusal> {
    name.parse().map_err(|e: finpulse_access::UnknownRole| Refusal::BadRequest(format!("role: {e}")))
}

/// The key `id` if it is this tenant's.
fn own_key(app: &AppState, id: &str) -> Result<KeyRecord, Refusal> {
    let keys = app.access.keys.list().map_err(|e| Refusal::Internal(e.to_string()))?;
    keys.into_iter()
        .find(|k| k.id == id && *k.tenant == *app.tenant)
        .ok_or_else(|| Refusal::NotFound(format!("no key with id '{id}' in this tenant")))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(post, path = "/v1/auth/keys/{id}/revoke", tag = "auth", params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = KeyBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_key(Tenant(app): Tenant, Path(id): Path<String>) -> Response {
    if let Err(r) = own_key(&app, &id) {
        return r.response();
    }
    match app.access.keys.revoke(&id) {
        Ok(k) => Json(KeyBody::of(&k, finpulse_core::time::now_us())).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// How long a rotated key keeps working.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Seconds the old key keeps working beside the new one (default a day).
    pub overlap_secs: Option<i64>,
}

/// Rotate a key: a successor with the same role and limits; the old key works for the overlap.
#[utoipa::path(post, path = "/v1/auth/keys/{id}/rotate", tag = "auth", params(("id" = String, Path, description = "key id")),
    request_body = RotateRequest, responses((status = 201, body = NewKeyBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn rotate_key(
    Tenant(app): Tenant,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    // The body is optional: none keeps the default overlap.
    let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"overlap_secs\": N}} or empty: {e}")),
        }
    };
    if let Err(r) = own_key(&app, &id) {
        return r.response();
    }
    let overlap = req.overlap_secs.unwrap_or(finpulse_access::keys::ROTATION_OVERLAP_SECS_DEFAULT);
    match app.access.keys.rotate(&id, overlap, caller.actor()) {
        Ok((record, key)) => {
            (StatusCode::CREATED, Json(NewKeyBody { key, record: KeyBody::of(&record, finpulse_core::time::now_us()) })).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// A new console user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Password (12 characters or more).
    pub password: String,
}

/// A console user as listed: never their password hash.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: String,
    /// When the user was made (RFC 3339).
    pub created_at: String,
    /// Wrong passwords since the last sign-in.
    pub failures: u32,
    /// Until when the account is locked after too many wrong passwords (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

/// The console users of the caller's tenant.
#[derive(Serialize, ToSchema)]
pub struct UsersBody {
    /// In the order they were made.
    pub users: Vec<UserBody>,
}

/// List the console users of the caller's tenant (never their password hashes).
#[utoipa::path(get, path = "/v1/auth/users", tag = "auth", responses((status = 200, body = UsersBody)))]
pub(crate) async fn list_users(Tenant(app): Tenant) -> Response {
    let now = finpulse_core::time::now_us();
    match app.access.users.list() {
        Ok(all) => Json(UsersBody {
            users: all
                .iter()
                .filter(|u| *u.tenant == *app.tenant)
                .map(|u| UserBody {
                    name: u.name.clone(),
                    role: u.role.name().into(),
                    created_at: finpulse_core::time::format_us(u.created_at_us),
                    failures: u.failures,
                    locked_until: u.locked_until_us.filter(|t| *t > now).map(finpulse_core::time::format_us),
                })
                .collect(),
        })
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Make a console user in the caller's tenant.
#[utoipa::path(post, path = "/v1/auth/users", tag = "auth", request_body = NewUserRequest,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn create_user(
    Tenant(app): Tenant,
    body: Result<Json<NewUserRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let role = match role_of(&req.role) {
        Ok(r) => r,
        Err(r) => return r.response(),
    };
    let access = app.access.clone();
    let tenant = app.tenant.to_string();
    match tokio::task::spawn_blocking(move || access.users.create(&req.name, role, &tenant, &req.password)).await {
        Ok(Ok(u)) => {
            (StatusCode::CREATED, Json(serde_json::json!({"name": u.name, "role": u.role.name(), "tenant": u.tenant}))).into_response()
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The user `name` if they are this tenant's.
fn own_user(app: &AppState, name: &str) -> Result<finpulse_access::UserRecord, Refusal> {
    match app.access.users.get(name) {
        Ok(Some(u)) if *u.tenant == *app.tenant => Ok(u),
        Ok(_) => Err(Refusal::NotFound(format!("no user '{name}' in this tenant"))),
        Err(e) => Err(Refusal::Internal(e.to_string())),
    }
}

/// A user as a change answers it.
fn user_json(u: &finpulse_access::UserRecord) -> serde_json::Value {
    serde_json::json!({"name": u.name, "role": u.role.name(), "tenant": u.tenant})
}

/// How a change to users answers a refusal from the users file.
fn users_error(e: finpulse_access::UsersError) -> Response {
    use finpulse_access::UsersError as E;
    let status = match e {
        E::NoSuchUser(_) => StatusCode::NOT_FOUND,
        E::WrongCredentials => StatusCode::FORBIDDEN,
        E::Locked(secs) => return too_many(&e.to_string(), secs as u64),
        E::Files(_) => StatusCode::INTERNAL_SERVER_ERROR,
        E::Exists(_) | E::BadName(_) | E::BadPassword | E::BadTenant(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// Runs a change to the users file off the async workers.
async fn users_change<T: Send + 'static>(
    app: &AppState,
    change: impl FnOnce(&finpulse_access::Users) -> Result<T, finpulse_access::UsersError> + Send + 'static,
) -> Result<T, Response> {
    let access = app.access.clone();
    match tokio::task::spawn_blocking(move || change(&access.users)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(users_error(e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Remove a console user of the caller's tenant: they cannot sign in, and their sessions end
/// at their next request.
#[utoipa::path(post, path = "/v1/auth/users/{name}/remove", tag = "auth", params(("name" = String, Path, description = "sign-in name")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_user(Tenant(app): Tenant, Path(name): Path<String>) -> Response {
    if let Err(r) = own_user(&app, &name) {
        return r.response();
    }
    match users_change(&app, move |users| users.remove(&name)).await {
        Ok(u) => Json(user_json(&u)).into_response(),
        Err(answer) => answer,
    }
}

/// A new password set by an administrator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The new password (12 characters or more).
    pub password: String,
}

/// Set a user's password (an administrator's reset): it lifts a lockout, and the user's
/// sessions end at their next request.
#[utoipa::path(post, path = "/v1/auth/users/{name}/password", tag = "auth", params(("name" = String, Path, description = "sign-in name")),
    request_body = ResetPasswordRequest, responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn reset_password(
    Tenant(app): Tenant,
    Path(name): Path<String>,
    body: Result<Json<ResetPasswordRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"password\"}}: {}", e.body_text())),
    };
    if let Err(r) = own_user(&app, &name) {
        return r.response();
    }
    match users_change(&app, move |users| users.set_password(&name, &req.password)).await {
        Ok(u) => Json(user_json(&u)).into_response(),
        Err(answer) => answer,
    }
}

/// Another role for a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// The role.
    pub role: String,
}

/// Give a user of the caller's tenant another role; their sessions end at their next request.
#[utoipa::path(post, path = "/v1/auth/users/{name}/role", tag = "auth", params(("name" = String, Path, description = "sign-in name")),
    request_body = SetRoleRequest, responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_role(
    Tenant(app): Tenant,
    Path(name): Path<String>,
    body: Result<Json<SetRoleRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body must be {{\"role\"}}: {}", e.body_text())),
    };
    let role = match role_of(&req.role) {
        Ok(r) => r,
        Err(r) => return r.response(),
    };
    if let Err(r) = own_user(&app, &name) {
        return r.response();
    }
    match users_change(&app, move |users| users.set_role(&name, role)).await {
        Ok(u) => Json(user_json(&u)).into_response(),
        Err(answer) => answer,
    }
}

/// A signed-in user's change of their own password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password they signed in with.
    pub current_password: String,
    /// The new one (12 characters or more).
    pub new_password: String,
}

/// Change the signed-in user's own password. Every session of theirs ends, this one included:
/// the answer starts a new session (a new cookie and CSRF token). A wrong current password
/// counts towards the lockout as a failed sign-in does.
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = WhoAmIBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn change_own_password(
    Tenant(app): Tenant,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Json<ChangePasswordRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("body must be {{\"current_password\", \"new_password\"}}: {}", e.body_text()));
        }
    };
    let Some(name) = caller.actor().strip_prefix("user:").map(str::to_string) else {
        return error(StatusCode::FORBIDDEN, "only a signed-in console user has a password to change; an API key is rotated instead");
    };
    let now_us = finpulse_core::time::now_us();
    let user =
        match users_change(&app, move |users| users.change_own_password(&name, &req.current_password, &req.new_password, now_us)).await {
            Ok(u) => u,
            Err(answer) => return answer,
        };
    let (token, session) = app.access.sessions.start(&user, now_us);
    session_answer(&app, &user, &token, session)
}

/// Filters on the audit log.
#[derive(Deserialize, ToSchema, utoipa::IntoParams, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor (`key:<id>`, `user:<name>`, `cli:<user>`, `anonymous`).
    pub actor: Option<String>,
    /// Only actions containing this text (e.g. `rules`, `sign_in`).
    pub action: Option<String>,
    /// Only this outcome: ok, refused, denied or failed.
    pub outcome: Option<String>,
    /// From this entry number on.
    pub from_seq: Option<u64>,
    /// Only entries at or after this time (RFC 3339, or a YYYY-MM-DD day in UTC).
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339, or a YYYY-MM-DD day in UTC).
    pub until: Option<String>,
    /// Most entries answered (default 1,000; at most 100,000).
    pub limit: Option<usize>,
    /// json (default) or csv.
    pub format: Option<String>,
}

/// Most audit entries one answer carries.
pub const AUDIT_ENTRIES_MAX: usize = 100_000;

/// An audit entry with the proof that it is in the signed tree.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryBody {
    /// The entry as stored.
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub entry: Entry,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Its leaf hash (hex): SHA-256(0x00 || the stored line).
    pub leaf_hash: String,
    /// Its audit path to `tree_head` (hex hashes, leaf level first).
    pub inclusion_proof: Vec<String>,
}

/// A page of the audit log with the tree head its proofs lead to.
#[derive(Serialize, ToSchema)]
pub struct AuditBody {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntryBody>,
    /// The latest signed tree head.
    #[schema(value_type = Object)]
    pub tree_head: Option<audit::TreeHead>,
    /// The Ed25519 key heads are signed with (hex).
    pub verifying_key: String,
}

/// The audit log of this tenant, filtered, with inclusion proofs to the latest signed tree
/// head; as JSON or CSV (`format=csv`).
#[utoipa::path(get, path = "/v1/audit", tag = "auth", params(AuditQuery),
    responses((status = 200, body = AuditBody), (status = 400, body = ErrorBody)))]
pub(crate) async fn audit_log(Tenant(app): Tenant, query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("format '{other}': use json or csv")),
    };
    let limit = q.limit.unwrap_or(1000).min(AUDIT_ENTRIES_MAX);
    let time = |name: &str, value: &Option<String>| -> Result<Option<i64>, String> {
        let Some(text) = value else { return Ok(None) };
        finpulse_core::time::parse_date_us(text)
            .map_or_else(|| finpulse_core::time::parse_rfc3339_us(text), Ok)
            .map(Some)
            .map_err(|_| format!("{name} '{text}': use an RFC 3339 time or a YYYY-MM-DD day"))
    };
    let (since_us, until_us) = match (time("since", &q.since), time("until", &q.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(why), _) | (_, Err(why)) => return error(StatusCode::BAD_REQUEST, why),
    };
    let dir = app.access.audit.dir().to_path_buf();
    let key = hex::encode(app.access.audit.verifying_key().to_bytes());
    let tenant = app.tenant.to_string();
    let page = tokio::task::spawn_blocking(move || -> Result<AuditBody, String> {
        let snap = audit::read(&dir).map_err(|e| e.to_string())?;
        let head = snap.heads.last().cloned();
        let size = head.as_ref().map_or(0, |h| h.tree_size as usize);
        let entries = snap
            .entries
            .into_iter()
            .filter(|e| e.record.tenant == tenant)
            .filter(|e| q.from_seq.is_none_or(|s| e.seq >= s))
            .filter(|e| since_us.is_none_or(|t| e.at_us >= t) && until_us.is_none_or(|t| e.at_us < t))
            .filter(|e| q.actor.as_ref().is_none_or(|a| &e.record.actor == a))
            .filter(|e| q.action.as_ref().is_none_or(|a| e.record.action.contains(a.as_str())))
            .filter(|e| q.outcome.as_ref().is_none_or(|o| &e.record.outcome == o))
            .take(limit)
            .map(|e| {
                let seq = e.seq as usize;
                let proof = if seq < size { snap.tree.inclusion_proof(seq, size).unwrap_or_default() } else { Vec::new() };
                AuditEntryBody {
                    at: finpulse_core::time::format_us(e.at_us),
                    leaf_hash: snap.tree.leaf(seq).map(hex::encode).unwrap_or_default(),
                    inclusion_proof: proof.iter().map(hex::encode).collect(),
                    entry: e,
                }
            })
            .collect();
        Ok(AuditBody { entries, tree_head: head, verifying_key: key })
    })
    .await;
    let body = match page {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !csv {
        return Json(body).into_response();
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], audit_csv(&body)).into_response()
}

fn audit_csv(body: &AuditBody) -> String {
    let mut w = csv_writer();
    let head = body.tree_head.as_ref();
    let _ = w.write_record([
        "seq",
        "at",
        "actor",
        "role",
        "tenant",
        "action",
        "target",
        "purpose",
        "from",
        "outcome",
        "status",
        "request_sha256",
        "detail",
        "leaf_hash",
        "inclusion_proof",
        "tree_size",
        "tree_root",
    ]);
    for e in &body.entries {
        let r = &e.entry.record;
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let _ = w.write_record([
            e.entry.seq.to_string(),
            e.at.clone(),
            r.actor.clone(),
            opt(&r.role),
            r.tenant.clone(),
            r.action.clone(),
            opt(&r.target),
            opt(&r.purpose),
            opt(&r.from),
            r.outcome.clone(),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            opt(&r.request_sha256),
            opt(&r.detail),
            e.leaf_hash.clone(),
            e.inclusion_proof.join(";"),
            head.map(|h| h.tree_size.to_string()).unwrap_or_default(),
            head.map(|h| h.root.clone()).unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}

/// Whether the listen address is loopback only.
pub fn loopback_only(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Shared access state of a server.
pub(crate) type SharedAccess = Arc<finpulse_access::Access>;

/// The permission deciding a request of `kind` needs.
pub fn approval_permission(kind: ApprovalKind) -> Permission {
    match kind {
        ApprovalKind::Rules => Permission::PublishRules,
        ApprovalKind::Models => Permission::PromoteModels,
    }
}

/// A change waiting for a second person, as listed.
#[derive(Serialize, ToSchema)]
pub struct ApprovalBody {
    /// The request's id.
    pub id: u64,
    /// rules or models.
    pub kind: String,
    /// The model purpose, or the ruleset slot.
    pub name: String,
    /// The version to make active.
    pub version: u32,
    /// activate (a publication or promotion) or roll_back.
    pub change: String,
    /// Who asked.
    pub requested_by: String,
    /// When (RFC 3339).
    pub requested_at: String,
    /// pending, approved or rejected.
    pub state: String,
    /// Who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

impl From<&Approval> for ApprovalBody {
    fn from(a: &Approval) -> Self {
        Self {
            id: a.id,
            kind: a.kind.name().into(),
            name: a.name.clone(),
            version: a.version,
            change: a.change.name().into(),
            requested_by: a.requested_by.clone(),
            requested_at: finpulse_core::time::format_us(a.requested_at_us),
            state: serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            decided_by: a.decided_by.clone(),
        }
    }
}

/// The approval requests.
#[derive(Serialize, ToSchema)]
pub struct ApprovalsBody {
    /// Oldest first.
    pub approvals: Vec<ApprovalBody>,
}

/// Changes waiting for (or decided by) a second person, of the kinds the caller may decide.
#[utoipa::path(get, path = "/v1/approvals", tag = "auth", responses((status = 200, body = ApprovalsBody)))]
pub(crate) async fn list_approvals(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>) -> Response {
    match app.access.approvals.list(&app.tenant) {
        Ok(all) => Json(ApprovalsBody {
            approvals: all.iter().filter(|a| caller.principal.allows(approval_permission(a.kind))).map(ApprovalBody::from).collect(),
        })
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Approve a waiting change: it takes effect now. The person who asked cannot approve it.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "auth", params(("id" = u64, Path, description = "request id")),
    responses((status = 200, body = ApprovalBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>, Path(id): Path<u64>) -> Response {
    decide(app, caller, id, true).await
}

/// Reject a waiting change: nothing changes. The person who asked cannot reject it either.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "auth", params(("id" = u64, Path, description = "request id")),
    responses((status = 200, body = ApprovalBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reject(Tenant(app): Tenant, axum::Extension(caller): axum::Extension<Caller>, Path(id): Path<u64>) -> Response {
    decide(app, caller, id, false).await
}

/// Makes an approved change take effect: the version becomes active, or the roll-back it names
/// happens (refused when a roll-back would now reach another version). The ruleset made
/// active, for a running engine to load.
pub fn apply_approval(data_dir: &std::path::Path, a: &Approval, by: &str) -> Result<Option<finpulse_risk::ruleset::Ruleset>, String> {
    match a.kind {
        ApprovalKind::Rules => {
            let store = finpulse_risk::ruleset::RulesetStore::in_data_dir(data_dir);
            apply_change(a, || store.rollback_target(), || store.promote(a.version, by), || store.rollback(by)).map(Some)
        }
        ApprovalKind::Models => {
            let registry = finpulse_models::registry::ModelRegistry::in_data_dir(data_dir).map_err(|e| e.to_string())?;
            let name = a.name.as_str();
            apply_change(a, || registry.rollback_target(name), || registry.promote(name, a.version, by), || registry.rollback(name, by))
                .map(|_| None)
        }
    }
}

/// Makes approved change `a` through one versioned store: activates its version, or rolls
/// back when the roll-back still reaches the version that was approved.
fn apply_change<T, E: std::fmt::Display>(
    a: &Approval,
    rollback_target: impl FnOnce() -> Result<u32, E>,
    activate: impl FnOnce() -> Result<T, E>,
    rollback: impl FnOnce() -> Result<T, E>,
) -> Result<T, String> {
    let done = match a.change {
        Change::Activate => activate(),
        Change::RollBack => match rollback_target().map_err(|e| e.to_string())? {
            v if v == a.version => rollback(),
            v => return Err(format!("a roll-back now reaches v{v}, not v{} as when it was asked: ask again", a.version)),
        },
    };
    done.map_err(|e| e.to_string())
}

async fn decide(app: AppState, caller: Caller, id: u64, approve: bool) -> Response {
    let kind = match app.access.approvals.list(&app.tenant) {
        Ok(all) => match all.iter().find(|a| a.id == id) {
            Some(a) => a.kind,
            None => return error(StatusCode::NOT_FOUND, format!("no approval request {id}")),
        },
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let needed = approval_permission(kind);
    if !caller.principal.allows(needed) {
        return error(
            StatusCode::FORBIDDEN,
            format!("role {} does not have the {needed} permission that deciding a {} request needs", caller.principal.role, kind.name()),
        );
    }
    let data_dir = app.data_dir.clone();
    let access = app.access.clone();
    let by = caller.actor().to_string();
    let tenant = app.tenant.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let mut activated = None;
        let outcome = access.approvals.decide(&tenant, id, approve, &by, |a| -> Result<(), String> {
            activated = apply_approval(&data_dir, a, &by)?;
            Ok(())
        });
        (outcome, activated)
    })
    .await;
    match decided {
        Ok((Ok(Ok(a)), activated)) => {
            if let Some(r) = activated {
                app.live.activate_ruleset(r);
            }
            Json(ApprovalBody::from(&a)).into_response()
        }
        Ok((Ok(Err(why)), _)) => {
            error(StatusCode::CONFLICT, format!("approval request {id} could not take effect and stays pending: {why}"))
        }
        Ok((Err(e @ ApprovalError::SamePerson { .. }), _)) => error(StatusCode::FORBIDDEN, e.to_string()),
        Ok((Err(e @ ApprovalError::NotFound(_)), _)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok((Err(e @ ApprovalError::Decided { .. }), _)) => error(StatusCode::CONFLICT, e.to_string()),
        Ok((Err(e), _)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Adds what access control does to the OpenAPI document: the two ways to authenticate, and
/// the 401, 403 and 429 answers every protected operation may give (the routes' own
/// annotations list only what their handlers answer).
pub(crate) fn document(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("fpk_<id>_<secret>")
                .description(Some("An API key (finpulse keys create)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "A console session (POST /v1/auth/login); changes repeat its CSRF token in X-CSRF-Token",
        ))),
    );
    let answer = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        ResponseBuilder::new().description(description).content("application/json", content).build()
    };
    for (path, item) in api.paths.paths.iter_mut() {
        let operations = [("GET", &mut item.get), ("POST", &mut item.post), ("PUT", &mut item.put), ("DELETE", &mut item.delete)];
        for (method, operation) in operations {
            let Some(op) = operation.as_mut() else { continue };
            if matches!(route_need(method, path), Some(Need::Open)) {
                continue;
            }
            op.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ]);
            let responses = &mut op.responses.responses;
            responses
                .entry("400".into())
                .or_insert_with(|| answer("A path or query parameter, or the body, does not parse; the error says which and why").into());
            responses
                .entry("401".into())
                .or_insert_with(|| answer("No credentials, or a malformed, unknown, expired or revoked key").into());
            responses
                .entry("403".into())
                .or_insert_with(|| answer("The role lacks the permission, or a session change lacks its CSRF token").into());
            responses
                .entry("429".into())
                .or_insert_with(|| answer("Over the key's rate, daily quota or concurrent queries; see Retry-After").into());
        }
    }
}

/// Gives every error answer the API's JSON shape, including those the framework writes itself
/// (a path or query parameter of the wrong type, a method a route does not take).
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let answer = next.run(req).await;
    let status = answer.status();
    // JSON errors stay as they are, and so does the console's own HTML page.
    let typed = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || typed {
        return answer;
    }
    let (parts, body) = answer.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let mut json = error(status, message);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in forwarded {
            h.append(FORWARDED_FOR_HEADER, HeaderValue::from_str(f).unwrap());
        }
        h
    }

    #[test]
    fn address_ranges_hold_what_their_prefix_covers() {
        let r: AddressRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.200.1.2".parse().unwrap()));
        assert!(r.contains("::ffff:10.0.0.1".parse().unwrap()), "IPv4 written as IPv6 is IPv4");
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        let one: AddressRange = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let all: AddressRange = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(String::from(one), "192.0.2.7/32");
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy_and_only_up_to_the_first_untrusted_hop() {
        let trusted: Vec<AddressRange> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        let client = |peer, h: &[&str]| ClientAddress::of(peer, &headers(h), &trusted).client.to_string();
        // Not from a proxy: the header is the client's own and says nothing.
        assert_eq!(client(stranger, &["203.0.113.7"]), "198.51.100.9");
        // Through one proxy, and through two of ours.
        assert_eq!(client(proxy, &["203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(proxy, &["203.0.113.7, 10.1.1.1"]), "203.0.113.7");
        assert_eq!(client(proxy, &["203.0.113.7", "10.1.1.1"]), "203.0.113.7", "the header repeated is one list");
        // A client that writes its own entries before the ones our proxies add cannot choose.
        assert_eq!(client(proxy, &["1.2.3.4, 203.0.113.7"]), "203.0.113.7");
        // Garbage ends the walk at the last address a proxy vouched for.
        assert_eq!(client(proxy, &["junk, 10.1.1.1"]), "10.1.1.1");
        assert_eq!(client(proxy, &[]), "10.0.0.2");
        let described = ClientAddress::of(proxy, &headers(&["203.0.113.7"]), &trusted).describe();
        assert_eq!(described, "203.0.113.7 via 10.0.0.2:5000");
        assert_eq!(ClientAddress::of(stranger, &headers(&[]), &trusted).describe(), "198.51.100.9:5000");
    }
}
