//! What every API test needs: a server on a free port and a client that signs its requests.

#![allow(dead_code)]

use finpulse_access::{Keys, NewKey, Role};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::access::AccessOptions;
use finpulse_server::{ApiLimits, Server};
use std::path::Path;

/// Starts a server on a free loopback port.
pub async fn start(store: EventStore, limits: ApiLimits) -> std::io::Result<Server> {
    Server::start(store, StoreOptions::default(), "127.0.0.1:0".parse().unwrap(), limits, AccessOptions::default()).await
}

/// Makes a key of `role` in the default tenant of the data directory `dir`.
pub fn key(dir: &Path, role: Role) -> String {
    key_in(dir, role, "")
}

/// Makes a key of `role` in `tenant`.
pub fn key_in(dir: &Path, role: Role, tenant: &str) -> String {
    let keys = Keys::open(finpulse_access::access_dir(dir)).unwrap();
    keys.create(NewKey { role: Some(role), tenant: tenant.into(), ..NewKey::default() }, "test").unwrap().1
}

/// A client whose every request carries `key`.
pub fn client_with(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// A client signed in as a new administrator of the data directory `dir`.
pub fn admin_client(dir: &Path) -> reqwest::Client {
    client_with(&key(dir, Role::Admin))
}

/// Every (method, path) the served OpenAPI document lists, with path parameters filled in
/// (`{kind}` as funnel, `{action}` as comment, any other `{x}` as `x`).
pub async fn every_route(base: &str, client: &reqwest::Client) -> Vec<(String, String, String)> {
    let spec: serde_json::Value = client.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let filled = path.replace("{kind}", "funnel").replace("{action}", "comment").replace(['{', '}'], "");
            routes.push((method.to_uppercase(), path.clone(), filled));
        }
    }
    routes
}
