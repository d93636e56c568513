//! A data subject's export over HTTP: one user's data from every place it is kept, in clear,
//! in a zip whose manifest the deployment signed; only roles that may export personal data get
//! it, an unknown user is a 404, and each export is in the audit trail with its manifest hash.

mod common;

use finpulse_access::Role;
use finpulse_access::audit;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const USER: &str = "u-7781";
const MOBILE: &str = "13877665544";
const CARD: &str = "6222027788991122";
const ID_NUMBER: &str = "110101199003074258";
const OTHER: &str = "u-9000";
const OTHER_MOBILE: &str = "13900001111";

fn events() -> Value {
    json!([
        {"event_id": "s1", "user_id": USER, "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "douyin", "mobile": MOBILE},
        {"event_id": "v1", "user_id": USER, "ts": "2026-03-01T09:05:00+08:00", "type": "identity_verified", "id_number": ID_NUMBER, "real_name": "张三"},
        {"event_id": "c1", "user_id": USER, "ts": "2026-03-01T09:06:00+08:00", "type": "card_bound", "card_number": CARD},
        {"event_id": "p1", "user_id": USER, "ts": "2026-03-01T10:00:00+08:00", "type": "payment", "amount_fen": 1999, "currency": "CNY", "terminal_id": "t1", "card_number": CARD},
        {"event_id": "s2", "user_id": OTHER, "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "app", "mobile": OTHER_MOBILE},
    ])
}

/// The files of a stored (uncompressed) zip, each checked against its CRC-32 and listed in
/// the central directory as its local header says.
fn unzip(zip: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let u16_at = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(zip[at..at + 4].try_into().unwrap()) as usize;
    let end = zip.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50, "end of central directory");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
    let mut files = BTreeMap::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50, "central directory record");
        let (crc, size, name_len, local) = (u32_at(at + 16), u32_at(at + 24), u16_at(at + 28), u32_at(at + 42));
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        assert_eq!(u32_at(local), 0x0403_4b50, "local header of {name}");
        assert_eq!(u16_at(local + 8), 0, "{name} is stored");
        let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        let bytes = zip[start..start + size].to_vec();
        assert_eq!(crc32(&bytes), crc as u32, "{name}'s checksum");
        files.insert(name, bytes);
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    files
}

/// CRC-32 (IEEE), bit by bit: independent of the code under test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_export_holds_all_their_data_in_clear_with_a_signed_manifest_and_nothing_of_anyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(EventStore::open(dir.path(), StoreOptions::default()).unwrap(), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    let r = admin.post(format!("{base}/v1/events")).json(&events()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Half the events in Parquet, the rest in the log's tail.
    assert_eq!(admin.post(format!("{base}/v1/admin/compact")).send().await.unwrap().status(), 200);
    let decision = json!({"event_id": "p2", "user_id": USER, "ts": "2026-03-01T11:00:00+08:00", "type": "payment", "amount_fen": 500, "currency": "CNY", "terminal_id": "t2"});
    assert_eq!(admin.post(format!("{base}/v1/decisions")).json(&decision).send().await.unwrap().status(), 200);

    let officer = common::client_with(&common::key(dir.path(), Role::ComplianceOfficer));
    let r = officer.post(format!("{base}/v1/subjects/{USER}/export")).header("x-purpose", "request DSR-2026-0042").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.headers()["x-data-exposure"], "clear", "an export is personal data in clear, and says so");
    let files = unzip(&r.bytes().await.unwrap());

    // The manifest lists every other file with its hash, and the deployment signed it.
    let manifest_bytes = &files["manifest.json"];
    let manifest: Value = serde_json::from_slice(manifest_bytes).unwrap();
    assert_eq!((manifest["user_id"].as_str(), manifest["purpose"].as_str()), (Some(USER), Some("request DSR-2026-0042")));
    let listed: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for f in manifest["files"].as_array().unwrap() {
        let bytes = &files[f["name"].as_str().unwrap()];
        assert_eq!(f["sha256"].as_str().unwrap(), hex::encode(Sha256::digest(bytes)), "{f}");
        assert_eq!(f["bytes"].as_u64().unwrap(), bytes.len() as u64);
    }
    for name in ["events.ndjson", "decisions.json", "profile.json", "cases.json", "segments.json", "offers.json", "README.txt"] {
        assert!(listed.contains(&name), "{name} in {listed:?}");
    }
    assert!(listed.contains(&"events/payment.csv") && listed.contains(&"events/identity_verified.csv"), "{listed:?}");
    let key_hex = String::from_utf8(files["signing.pub"].clone()).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(key_hex.trim()).unwrap().try_into().unwrap()).unwrap();
    let audit_key = audit::read_verifying_key(&finpulse_access::audit_dir(dir.path())).unwrap();
    assert_eq!(key, audit_key, "signed with the deployment's audit key");
    let signature = hex::decode(String::from_utf8(files["manifest.sig"].clone()).unwrap().trim()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    let mut signed = finpulse_subjects::SIGNATURE_DOMAIN.to_vec();
    signed.extend_from_slice(manifest_bytes);
    key.verify_strict(&signed, &signature).expect("the manifest's signature checks out");
    let mut forged = signed.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(key.verify_strict(&forged, &signature).is_err());

    // Their data, in clear; nobody else's.
    let events = String::from_utf8(files["events.ndjson"].clone()).unwrap();
    assert_eq!(events.lines().count(), 6, "five events and the decision: {events}");
    for clear in [MOBILE, CARD, ID_NUMBER, "张三"] {
        assert!(events.contains(clear), "{clear} in {events}");
    }
    let everything: String = files.values().map(|b| String::from_utf8_lossy(b).to_string()).collect();
    assert!(!everything.contains(OTHER) && !everything.contains(OTHER_MOBILE), "nothing of another user");
    assert!(!events.contains("_seq") && !events.contains("_masked_"), "no internal columns: {events}");
    let payments = String::from_utf8(files["events/payment.csv"].clone()).unwrap();
    assert!(payments.starts_with("event_id,user_id,ts,") && payments.lines().count() == 3, "{payments}");
    let decisions: Value = serde_json::from_slice(&files["decisions.json"]).unwrap();
    assert_eq!(decisions.as_array().unwrap().len(), 1, "{decisions}");
    assert_eq!(decisions[0]["target_event_id"], "p2");
    let profile: Value = serde_json::from_slice(&files["profile.json"]).unwrap();
    assert_eq!((profile["user_id"].as_str(), profile["channel"].as_str()), (Some(USER), Some("douyin")), "{profile}");

    // On record, with the manifest's hash.
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let entry = snap
        .entries
        .iter()
        .find(|e| e.record.action == "POST /v1/subjects/{id}/export" && e.record.outcome == "ok")
        .expect("the export is audited");
    assert_eq!(entry.record.purpose.as_deref(), Some("request DSR-2026-0042"));
    let manifest_sha = hex::encode(Sha256::digest(manifest_bytes));
    assert!(entry.record.detail.as_deref().unwrap().contains(&manifest_sha), "{:?}", entry.record.detail);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_refused_to_roles_without_the_permission_and_for_unknown_or_impossible_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(EventStore::open(dir.path(), StoreOptions::default()).unwrap(), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    assert_eq!(admin.post(format!("{base}/v1/events")).json(&events()).send().await.unwrap().status(), 200);
    for role in [Role::RiskAnalyst, Role::OpsManager, Role::DataScientist, Role::Auditor, Role::PartnerApp] {
        let c = common::client_with(&common::key(dir.path(), role));
        let r = c.post(format!("{base}/v1/subjects/{USER}/export")).header("x-purpose", "curious").send().await.unwrap();
        assert_eq!(r.status(), 403, "{role}");
    }
    let officer = common::client_with(&common::key(dir.path(), Role::ComplianceOfficer));
    let r = officer.post(format!("{base}/v1/subjects/nobody/export")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no user \\\"nobody\\\""));
    let r = officer.post(format!("{base}/v1/subjects/a%0Ab/export")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Without a stated purpose the subject's own request is recorded; twice at once, both whole.
    let (a, b) = tokio::join!(
        officer.post(format!("{base}/v1/subjects/{USER}/export")).send(),
        officer.post(format!("{base}/v1/subjects/{USER}/export")).send()
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.headers()["x-data-exposure"], "clear", "clear even without a stated purpose");
    let (a, b) = (a.bytes().await.unwrap(), b.bytes().await.unwrap());
    assert_eq!(unzip(&a)["events.ndjson"], unzip(&b)["events.ndjson"]);
    server.stop().await.unwrap();
    let snap = audit::read(&finpulse_access::audit_dir(dir.path())).unwrap();
    let exports: Vec<_> = snap.entries.iter().filter(|e| e.record.action == "POST /v1/subjects/{id}/export").collect();
    assert_eq!(exports.iter().filter(|e| e.record.outcome == "denied").count(), 5, "each refusal on record");
    let ok: Vec<_> = exports.iter().filter(|e| e.record.outcome == "ok").collect();
    assert_eq!(ok.len(), 2);
    assert!(ok.iter().all(|e| e.record.purpose.as_deref() == Some(finpulse_subjects::PURPOSE_DEFAULT)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lineage_graph_of_the_compacted_files_leads_back_to_the_log_for_roles_that_read_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(EventStore::open(dir.path(), StoreOptions::default()).unwrap(), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir.path());
    assert_eq!(admin.post(format!("{base}/v1/events")).json(&events()).send().await.unwrap().status(), 200);
    assert_eq!(admin.post(format!("{base}/v1/admin/compact")).send().await.unwrap().status(), 200);
    let files = dir.path().join("parquet").to_string_lossy().to_string();
    let auditor = common::client_with(&common::key(dir.path(), Role::Auditor));
    let r = auditor.get(format!("{base}/v1/lineage")).query(&[("dataset", files.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let graph: Value = r.json().await.unwrap();
    let edges: Vec<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["origin"].as_str().unwrap().to_string(), e["destination"].as_str().unwrap().to_string()))
        .collect();
    let wal = format!("dataset:file:{}", dir.path().join("wal").display());
    assert!(edges.contains(&(wal, "job:finpulse:compaction".into())), "{graph}");
    assert!(edges.contains(&("job:finpulse:compaction".into(), format!("dataset:file:{files}"))), "{graph}");
    let r = auditor.get(format!("{base}/v1/lineage")).query(&[("dataset", files.as_str()), ("depth", "99")]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = auditor.get(format!("{base}/v1/lineage")).send().await.unwrap();
    assert_eq!(r.status(), 400, "a graph needs the dataset it is around");
    assert!(r.text().await.unwrap().contains("dataset"));
    let ops = common::client_with(&common::key(dir.path(), Role::OpsManager));
    assert_eq!(ops.get(format!("{base}/v1/lineage")).query(&[("dataset", files.as_str())]).send().await.unwrap().status(), 403);
    server.stop().await.unwrap();
}
