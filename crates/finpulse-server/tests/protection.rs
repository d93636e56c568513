//! Personal fields sealed at rest and erased by crypto-shredding, through the real server: the
//! log and the Parquet files never hold a resident id, mobile or card number in clear; readers
//! with a purpose see them, others see them masked; an erased user's fields read as nothing for
//! everyone, before and after a restart, and their later events are refused.

mod common;

use finpulse_access::Role;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_server::ApiLimits;
use finpulse_server::protection::{Opener, ProtectOptions};
use serde_json::{Value, json};
use std::path::Path;

const USER: &str = "u-5501";
const ID_NUMBER: &str = "110101199003074258";
const MOBILE: &str = "13877665544";
const CARD: &str = "6222027788991122";
const OTHER: &str = "u-5502";
const OTHER_MOBILE: &str = "13900001111";

fn events() -> Value {
    json!([
        {"event_id": "s1", "user_id": USER, "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "douyin", "mobile": MOBILE},
        {"event_id": "v1", "user_id": USER, "ts": "2026-03-01T09:05:00+08:00", "type": "identity_verified", "id_number": ID_NUMBER, "real_name": "张三"},
        {"event_id": "p1", "user_id": USER, "ts": "2026-03-01T10:00:00+08:00", "type": "payment", "amount_fen": 1999, "currency": "CNY", "terminal_id": "t1", "card_number": CARD},
        {"event_id": "s2", "user_id": OTHER, "ts": "2026-03-01T09:00:00+08:00", "type": "user_signup", "channel": "app", "mobile": OTHER_MOBILE},
    ])
}

fn options(dir: &Path) -> ProtectOptions {
    let file = dir.with_file_name(format!("{}.key", dir.file_name().unwrap().to_string_lossy()));
    if !file.exists() {
        finpulse_protect::MasterKeys::generate(&file).unwrap();
    }
    ProtectOptions { master_key_file: Some(file), ..Default::default() }
}

/// Opens the data directory as its owner would: keys first, then the store.
fn open(dir: &Path) -> EventStore {
    finpulse_server::protection::open(dir, dir, &options(dir), Opener::Owner).unwrap().expect("a key was given");
    EventStore::open(dir, StoreOptions::default()).unwrap()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn sql(client: &reqwest::Client, base: &str, query: &str, purpose: Option<&str>) -> Value {
    let mut req = client.post(format!("{base}/v1/sql")).json(&json!({"query": query}));
    if let Some(p) = purpose {
        req = req.header("x-purpose", p);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["rows"].clone()
}

/// A protected server on `dir` holding [`events`]: it, its base URL and an administrator.
async fn serve_with_events(dir: &Path) -> (finpulse_server::Server, String, reqwest::Client) {
    let server = common::start(open(dir), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let admin = common::admin_client(dir);
    assert_eq!(admin.post(format!("{base}/v1/events")).json(&events()).send().await.unwrap().status(), 200);
    (server, base, admin)
}

const PERSONAL: &str = "SELECT user_id, mobile, id_number, card_number FROM events WHERE type <> 'risk_decision' ORDER BY event_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_fields_never_reach_disk_in_clear_and_an_erased_user_reads_as_nobody_for_good() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let (server, base, admin) = serve_with_events(&dir).await;
    // Half in Parquet, then one more event in the tail.
    assert_eq!(admin.post(format!("{base}/v1/admin/compact")).send().await.unwrap().status(), 200);
    let late = json!([{"event_id": "c1", "user_id": USER, "ts": "2026-03-02T09:00:00+08:00", "type": "card_bound", "card_number": CARD}]);
    assert_eq!(admin.post(format!("{base}/v1/events")).json(&late).send().await.unwrap().status(), 200);

    // On disk: no clear value anywhere (the log, the files, the manifests, the key store).
    for (path, bytes) in files(&dir) {
        for clear in [ID_NUMBER, MOBILE, CARD, OTHER_MOBILE, "张三"] {
            assert!(!holds(&bytes, clear), "{clear} in clear in {path}");
        }
    }
    let envelopes = files(&dir.join("wal")).iter().map(|(_, b)| b.windows(5).filter(|w| w == b"enc1:").count()).sum::<usize>();
    assert_eq!(envelopes, 6, "each sealed value of the log is an envelope");

    // Readers: clear with a purpose, masked without; both from Parquet and the tail.
    let officer = common::client_with(&common::key(&dir, Role::ComplianceOfficer));
    let clear = sql(&officer, &base, PERSONAL, Some("DSR-7")).await;
    assert_eq!(
        clear,
        json!([
            [USER, null, null, CARD],
            [USER, null, null, CARD],
            [USER, MOBILE, null, null],
            [OTHER, OTHER_MOBILE, null, null],
            [USER, null, ID_NUMBER, null]
        ])
    );
    let masked = sql(&officer, &base, PERSONAL, None).await;
    assert_eq!(masked[1], json!([USER, null, null, "6222 **** **** 1122"]), "{masked}");
    assert_eq!(masked[2], json!([USER, "138****5544", null, null]), "{masked}");
    let by_card = sql(&officer, &base, &format!("SELECT count(*) FROM events WHERE card_number = '{CARD}'"), Some("DSR-7")).await;
    assert_eq!(by_card, json!([[2]]), "a clear reader filters on clear values");

    // Erasure: only a role with erase_personal; unknown users are a 404.
    let scientist = common::client_with(&common::key(&dir, Role::DataScientist));
    assert_eq!(scientist.post(format!("{base}/v1/subjects/{USER}/erase")).send().await.unwrap().status(), 403);
    assert_eq!(officer.post(format!("{base}/v1/subjects/nobody/erase")).send().await.unwrap().status(), 404);
    let r = officer.post(format!("{base}/v1/subjects/{USER}/erase")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!((receipt["user_id"].as_str(), receipt["already_erased"].as_bool()), (Some(USER), Some(false)), "{receipt}");
    let again: Value = officer.post(format!("{base}/v1/subjects/{USER}/erase")).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["already_erased"], true);
    assert_eq!(again["erased_at"], receipt["erased_at"]);

    let after_clear = sql(&officer, &base, PERSONAL, Some("DSR-7")).await;
    let after_masked = sql(&officer, &base, PERSONAL, None).await;
    for rows in [&after_clear, &after_masked] {
        for row in rows.as_array().unwrap() {
            if row[0] == USER {
                assert_eq!(row, &json!([USER, null, null, null]), "nothing of the erased user: {rows}");
            }
        }
    }
    assert_eq!(after_clear[3], json!([OTHER, OTHER_MOBILE, null, null]), "another user is untouched");
    assert_eq!(
        sql(&officer, &base, "SELECT count(*) FROM events WHERE type = 'payment'", None).await,
        json!([[1]]),
        "events stay, without identity"
    );

    // A later event for them is refused, by position and field; their neighbours are stored.
    let more = json!([
        {"event_id": "s3", "user_id": "u-5503", "ts": "2026-03-03T09:00:00+08:00", "type": "user_signup", "channel": "app", "mobile": "13700000000"},
        {"event_id": "p9", "user_id": USER, "ts": "2026-03-03T10:00:00+08:00", "type": "payment", "amount_fen": 5, "currency": "CNY", "terminal_id": "t1", "card_number": CARD},
    ]);
    let r: Value = admin.post(format!("{base}/v1/events")).json(&more).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["accepted"].as_u64(), r["rejected"].as_u64()), (Some(1), Some(1)), "{r}");
    assert!(r["errors"].to_string().contains("erased") && r["errors"].to_string().contains("user_id"), "{r}");

    // On record.
    let snap = finpulse_access::audit::read(&finpulse_access::audit_dir(&dir)).unwrap();
    assert!(snap.entries.iter().any(|e| e.record.action == "POST /v1/subjects/{id}/erase" && e.record.outcome == "ok"));
    // The certificate: that entry, a signed head and the inclusion proof between them.
    let auditor = common::client_with(&common::key(&dir, Role::Auditor));
    let r = auditor.get(format!("{base}/v1/subjects/{USER}/erasure")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let certificate: finpulse_access::audit::Inclusion = r.json().await.unwrap();
    let key = finpulse_access::audit::read_verifying_key(&finpulse_access::audit_dir(&dir)).unwrap();
    assert!(certificate.verify(&key), "the certificate checks out with the deployment's key alone");
    assert!(certificate.entry.contains(USER) && certificate.entry.contains("data key destroyed"), "{}", certificate.entry);
    let mut forged = certificate.clone();
    forged.entry = forged.entry.replace(USER, OTHER);
    assert!(!forged.verify(&key), "a changed entry does not verify");
    assert_eq!(auditor.get(format!("{base}/v1/subjects/{OTHER}/erasure")).send().await.unwrap().status(), 404);

    // After a restart and a rebuild of the live state from the log: still nobody.
    server.stop().await.unwrap();
    finpulse_server::protection::close(&dir);
    let server = common::start(open(&dir), ApiLimits::default()).await.unwrap();
    let base = format!("http://{}", server.addr);
    let nobody = json!([USER, null, null, null]);
    let expected = json!([nobody, nobody, nobody, [OTHER, OTHER_MOBILE, null, null], ["u-5503", "13700000000", null, null], nobody]);
    assert_eq!(sql(&officer, &base, PERSONAL, Some("DSR-7")).await, expected);
    server.stop().await.unwrap();
    finpulse_server::protection::close(&dir);

    // Without the master key the directory does not open, and says what is missing.
    let e = EventStore::open(&dir, StoreOptions::default()).err().expect("a protected directory needs its key");
    assert!(e.to_string().contains("FINPULSE_MASTER_KEY"), "{e}");
    let wrong = parent.path().join("wrong.key");
    finpulse_protect::MasterKeys::generate(&wrong).unwrap();
    let wrong = ProtectOptions { master_key_file: Some(wrong), ..Default::default() };
    let e = finpulse_server::protection::open(&dir, &dir, &wrong, Opener::Owner).err().expect("a wrong key is refused");
    assert!(e.to_string().contains("key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_blocks_erasure_and_says_which_hold_until_it_is_released() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let (server, base, admin) = serve_with_events(&dir).await;
    let hold = finpulse_subjects::holds::LegalHold {
        user_id: USER.into(),
        reason: "AML: customer records kept 10 years".into(),
        until: "2099-12-31".into(),
        placed_by: "cli:compliance".into(),
        placed_at: "2026-12-08T00:00:00Z".into(),
    };
    finpulse_subjects::holds::place(&dir, hold).unwrap();
    let r = admin.post(format!("{base}/v1/subjects/{USER}/erase")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(text.contains("legal hold until 2099-12-31") && text.contains("AML"), "{text}");
    let officer = common::client_with(&common::key(&dir, Role::ComplianceOfficer));
    assert_eq!(
        sql(&officer, &base, "SELECT mobile FROM user_signup ORDER BY user_id", Some("check")).await,
        json!([[MOBILE], [OTHER_MOBILE]])
    );
    assert!(finpulse_subjects::holds::release(&dir, USER).unwrap());
    assert_eq!(admin.post(format!("{base}/v1/subjects/{USER}/erase")).send().await.unwrap().status(), 200);
    server.stop().await.unwrap();
    finpulse_server::protection::close(&dir);
}
