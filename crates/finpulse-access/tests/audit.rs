//! The audit log finds any change to what was written: every byte of every entry and head.

use finpulse_access::audit::{self, AuditLog, ENTRIES_FILE, HEADS_FILE, Record};
use std::path::Path;

fn record(i: usize) -> Record {
    Record {
        actor: format!("key:{i:012x}"),
        role: Some("risk_analyst".into()),
        tenant: "default".into(),
        action: "POST /v1/rules".into(),
        target: Some("/v1/rules".into()),
        purpose: i.is_multiple_of(2).then(|| "案件复核 case review".into()),
        from: Some("127.0.0.1:5000".into()),
        outcome: "ok".into(),
        status: Some(200),
        request_sha256: Some("ab".repeat(32)),
        detail: None,
    }
}

fn verify(dir: &Path) -> Result<audit::Verified, audit::AuditError> {
    audit::verify(dir, &audit::read_verifying_key(dir).unwrap())
}

fn written_log(entries: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    for i in 0..entries {
        assert_eq!(log.append(record(i)).unwrap().seq, i as u64);
    }
    dir
}

#[test]
fn a_log_as_written_verifies_with_its_proofs() {
    let dir = written_log(9);
    let v = verify(dir.path()).unwrap();
    assert_eq!((v.entries, v.heads), (9, 9));
    assert_eq!(v.latest.unwrap().tree_size, 9);
    assert!(v.inclusion_proofs >= 9 && v.consistency_proofs >= 9, "{:?}", (v.inclusion_proofs, v.consistency_proofs));
    let snap = audit::read(dir.path()).unwrap();
    assert_eq!(snap.entries[4].record, record(4));
}

#[test]
fn flipping_any_byte_of_any_entry_or_head_is_found() {
    let dir = written_log(5);
    for file in [ENTRIES_FILE, HEADS_FILE] {
        let path = dir.path().join(file);
        let original = std::fs::read(&path).unwrap();
        for i in 0..original.len() {
            let mut bytes = original.clone();
            bytes[i] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            assert!(verify(dir.path()).is_err(), "{file}: flipping byte {i} went unnoticed");
        }
        std::fs::write(&path, &original).unwrap();
    }
    verify(dir.path()).unwrap();
}

#[test]
fn the_first_changed_entry_is_named() {
    let dir = written_log(6);
    let path = dir.path().join(ENTRIES_FILE);
    let text = std::fs::read_to_string(&path).unwrap().replace("\"seq\":3,\"at_us\"", "\"seq\":3, \"at_us\"");
    std::fs::write(&path, text).unwrap();
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("audit entry 3 (line 4"), "{err}");
}

#[test]
fn removed_or_added_entries_are_found() {
    let dir = written_log(4);
    let path = dir.path().join(ENTRIES_FILE);
    let original = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines.pop();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(err.contains("entries were removed"), "{err}");

    let forged = original.lines().last().unwrap().replace("\"seq\":3", "\"seq\":4");
    std::fs::write(&path, format!("{original}{forged}\n")).unwrap();
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("audit entry 4") && err.contains("no signed tree head covers it"), "{err}");
}

#[test]
fn two_writers_on_one_directory_append_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let a = AuditLog::open(dir.path()).unwrap();
    let b = AuditLog::open(dir.path()).unwrap();
    for i in 0..6usize {
        let log = if i.is_multiple_of(2) { &a } else { &b };
        assert_eq!(log.append(record(i)).unwrap().seq, i as u64);
    }
    assert_eq!(verify(dir.path()).unwrap().entries, 6);
}

#[test]
fn an_entry_cut_by_a_crash_is_dropped_and_the_log_still_verifies() {
    let dir = written_log(3);
    let path = dir.path().join(ENTRIES_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":3,\"at_us\":1,\"actor\":\"cli:x\"");
    std::fs::write(&path, &bytes).unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    assert_eq!(log.append(record(3)).unwrap().seq, 3);
    assert_eq!(verify(dir.path()).unwrap().entries, 4);
}

#[test]
fn a_replaced_signing_key_is_found() {
    let dir = written_log(2);
    let other = written_log(1);
    std::fs::copy(other.path().join(audit::SIGNING_KEY_FILE), dir.path().join(audit::SIGNING_KEY_FILE)).unwrap();
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(err.contains("its public half is not signing.pub"), "{err}");
}

#[test]
fn appends_at_the_same_time_share_writes_and_every_one_is_in_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(AuditLog::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || (0..50).map(|i| log.append(record(t * 100 + i)).unwrap().seq).collect::<Vec<u64>>())
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..400).collect::<Vec<u64>>(), "each append got its own place");
    let v = verify(dir.path()).unwrap();
    assert_eq!(v.entries, 400);
    assert!(v.heads <= 400, "{} heads", v.heads);
}
