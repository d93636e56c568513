//! The web console, embedded: the files `build.rs` built from `web/` with Vite, answered from
//! memory. Hashed assets are cached for a year, `index.html` is revalidated by ETag, a client
//! that accepts brotli gets the brotli twin built beside each asset, and any other path (a
//! deep link such as `/insights?kind=funnel`) answers `index.html`, whose router draws it.
//!
//! The console has no privileges of its own: it signs in like any user and calls `/v1`, so
//! every permission, mask and audit entry applies to it as to any client. What it adds is a
//! Content-Security-Policy that lets the page load only its own scripts and talk only to its
//! own origin.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

/// One built file.
#[derive(Debug)]
pub struct Asset {
    /// Its path under `/`.
    pub path: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// The same, brotli-compressed, when the build made it.
    pub brotli: Option<&'static [u8]>,
    /// A strong ETag of `body`.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// What the console's page may load and talk to: only its own origin (ECharts sets inline
/// styles; charts export through `data:` and `blob:` URLs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's files and, when it was not built, why.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    assets: &'static [Asset],
    not_built: Option<&'static str>,
}

impl Console {
    /// The console embedded in this binary.
    pub fn embedded() -> Self {
        Self { assets: ASSETS, not_built: NOT_BUILT }
    }

    /// A console of `assets` (tests use this to see what a binary built without Node.js
    /// answers).
    pub fn of(assets: &'static [Asset], not_built: Option<&'static str>) -> Self {
        Self { assets, not_built }
    }

    /// Whether the console was built into this binary.
    pub fn built(&self) -> bool {
        self.not_built.is_none() && self.assets.iter().any(|a| a.path == "/index.html")
    }

    fn find(&self, path: &str) -> Option<&'static Asset> {
        self.assets.iter().find(|a| a.path == path)
    }

    /// The answer to `method path` with the request's `headers`.
    pub fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "the console answers GET only");
        }
        if !self.built() {
            return not_built_page(self.not_built.unwrap_or("its files are missing from this build"));
        }
        // A file with an extension that is not there is a 404; anything else is a screen.
        let asset = match self.find(path) {
            Some(a) => a,
            None if path.rsplit('/').next().is_some_and(|last| last.contains('.')) => {
                return plain(StatusCode::NOT_FOUND, "no such file in the console");
            }
            None => self.find("/index.html").expect("a built console has index.html"),
        };
        let fresh =
            headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
        let mut r = Response::builder()
            .header(header::CONTENT_TYPE, content_type(asset.path))
            .header(header::ETAG, asset.etag)
            .header(header::VARY, "accept-encoding")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "same-origin");
        r = if asset.path.starts_with("/assets/") {
            r.header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        } else {
            r.header(header::CACHE_CONTROL, "no-cache")
                .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
                .header(header::X_FRAME_OPTIONS, "DENY")
        };
        if fresh {
            return r.status(StatusCode::NOT_MODIFIED).body(Body::empty()).expect("valid response");
        }
        let brotli = asset.brotli.filter(|_| accepts_brotli(headers));
        if brotli.is_some() {
            r = r.header(header::CONTENT_ENCODING, "br");
        }
        let bytes = brotli.unwrap_or(asset.body);
        let body = if method == Method::HEAD { Body::empty() } else { Body::from(bytes) };
        r.header(header::CONTENT_LENGTH, bytes.len()).body(body).expect("valid response")
    }
}

fn accepts_brotli(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let refused = it.any(|p| p.trim().replace(' ', "") == "q=0");
        coding.eq_ignore_ascii_case("br") && !refused
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// What a binary built without Node.js answers at `/`: the console is missing and why, in
/// both languages, with a 503.
fn not_built_page(why: &str) -> Response {
    let escaped = why.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>finpulse</title></head><body>\
         <h1>运营台未构建 · The console was not built</h1>\
         <p>构建这个程序时没有生成网页运营台：{escaped}。安装 Node.js 20 及以上和 npm 后重新构建即可；/v1 下的 API 不受影响。</p>\
         <p>This binary was built without its web console: {escaped}. Install Node.js 20 or later and npm, then build again; the API under /v1 works without it.</p>\
         </body></html>"
    );
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    r
}
