//! Forwarding to a Marquez-compatible collector: the URL and body of each
//! `POST /api/v1/lineage`, one event per request as Marquez takes them. The server or CLI sends
//! them with its own HTTP client (and its own timeouts); this crate knows no HTTP.

use crate::LineageError;
use crate::event::RunEvent;
use crate::store::encode;

/// The collector's endpoint, below its base URL.
pub const LINEAGE_API_PATH: &str = "/api/v1/lineage";
/// The method every forward request uses.
pub const METHOD: &str = "POST";
/// The body's content type.
pub const CONTENT_TYPE: &str = "application/json";
/// Longest base URL taken.
pub const COLLECTOR_URL_BYTES_MAX: usize = 2048;

/// One request to send: `POST url` with `body` as `content_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRequest {
    /// The full URL, the base URL with [`LINEAGE_API_PATH`].
    pub url: String,
    /// Always [`CONTENT_TYPE`].
    pub content_type: &'static str,
    /// One event as JSON, at most [`crate::store::EVENT_LINE_BYTES_MAX`] bytes.
    pub body: Vec<u8>,
}

/// The lineage endpoint of the collector at `base_url` (`http://marquez:5000`, or with a path
/// prefix such as `https://gateway/marquez`; a base that already ends in the endpoint is taken
/// as it is).
pub fn lineage_url(base_url: &str) -> Result<String, LineageError> {
    let bad = |why| LineageError::BadCollectorUrl { url: base_url.chars().take(COLLECTOR_URL_BYTES_MAX).collect(), why };
    if base_url.len() > COLLECTOR_URL_BYTES_MAX {
        return Err(bad("longer than the limit"));
    }
    let Some(rest) = base_url.strip_prefix("http://").or_else(|| base_url.strip_prefix("https://")) else {
        return Err(bad("it does not start with http:// or https://"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it names no host"));
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it has a query, a fragment or spaces"));
    }
    let base = base_url.trim_end_matches('/');
    if base.ends_with(LINEAGE_API_PATH) {
        return Ok(base.to_string());
    }
    Ok(format!("{base}{LINEAGE_API_PATH}"))
}

/// The request that forwards `event` to the collector at `base_url`.
pub fn forward_request(base_url: &str, event: &RunEvent) -> Result<ForwardRequest, LineageError> {
    Ok(ForwardRequest { url: lineage_url(base_url)?, content_type: CONTENT_TYPE, body: encode(event)? })
}

/// The requests that forward `events`, one each, in order.
pub fn forward_requests(base_url: &str, events: &[RunEvent]) -> Result<Vec<ForwardRequest>, LineageError> {
    let url = lineage_url(base_url)?;
    events.iter().map(|e| Ok(ForwardRequest { url: url.clone(), content_type: CONTENT_TYPE, body: encode(e)? })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Run;

    #[test]
    fn the_endpoint_is_added_once_to_the_base_url() {
        assert_eq!(lineage_url("http://marquez:5000").unwrap(), "http://marquez:5000/api/v1/lineage");
        assert_eq!(lineage_url("https://gw.example/marquez/").unwrap(), "https://gw.example/marquez/api/v1/lineage");
        assert_eq!(lineage_url("http://m:5000/api/v1/lineage").unwrap(), "http://m:5000/api/v1/lineage");
    }

    #[test]
    fn a_base_url_that_is_not_http_or_has_a_query_is_refused() {
        for bad in ["marquez:5000", "ftp://m", "http://", "http:///x", "http://m/?a=1", "http://m/#x", "http://m /x"] {
            assert!(matches!(lineage_url(bad), Err(LineageError::BadCollectorUrl { .. })), "{bad}");
        }
        assert!(lineage_url(&format!("http://m/{}", "a".repeat(COLLECTOR_URL_BYTES_MAX))).is_err());
    }

    #[test]
    fn each_event_becomes_one_request_whose_body_is_the_event() {
        let (run, start) = Run::start("finpulse://t", "report", vec![], vec![]);
        let events = [start, run.complete(vec![])];
        let requests = forward_requests("http://marquez:5000", &events).unwrap();
        assert_eq!(requests.len(), 2);
        for (request, event) in requests.iter().zip(&events) {
            assert_eq!(request.content_type, CONTENT_TYPE);
            assert_eq!(request.url, "http://marquez:5000/api/v1/lineage");
            assert_eq!(&serde_json::from_slice::<RunEvent>(&request.body).unwrap(), event);
        }
        assert_eq!(forward_request("http://marquez:5000", &events[0]).unwrap(), requests[0]);
    }
}
