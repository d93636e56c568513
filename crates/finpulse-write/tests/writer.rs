//! The write path end to end on real files: what consumers of committed events see, answers
//! from async and blocking producers, and a panic while applying stopping the process.

use finpulse_core::time::MICROS_PER_DAY;
use finpulse_core::{Event, Registry, Value};
use finpulse_log::{AppendStatus, EventStore, StoreOptions};
use finpulse_write::{Batch, CommitConsumer, Submission, Writer, WriterOptions};
use std::sync::{Arc, Mutex};

const DAY0_US: i64 = 20_454 * MICROS_PER_DAY; // 2026-01-01

fn payment(id: &str, user: &str, amount_fen: i64) -> Event {
    let reg = Registry::builtin();
    Event {
        event_id: id.into(),
        user_id: Some(user.into()),
        ts_us: DAY0_US,
        type_id: reg.type_id("payment").unwrap(),
        fields: vec![
            (reg.field_id("amount_fen").unwrap(), Value::Int(amount_fen)),
            (reg.field_id("currency").unwrap(), Value::Str("CNY".into())),
            (reg.field_id("terminal_id").unwrap(), Value::Str("t1".into())),
        ],
    }
}

/// Remembers every (event id, status) it was handed, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, AppendStatus)>>);

impl CommitConsumer for Recorder {
    fn apply(&self, events: &[Event], statuses: &[AppendStatus]) {
        assert_eq!(events.len(), statuses.len());
        self.0.lock().unwrap().extend(events.iter().map(|e| e.event_id.clone()).zip(statuses.iter().copied()));
    }
}

fn log_ids(dir: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    EventStore::replay(dir, 0, |_, _| true, |_, e| ids.push(e.event_id)).unwrap();
    ids
}

#[test]
fn consumers_are_handed_every_committed_event_once_in_log_order_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let recorder = Arc::new(Recorder::default());
    let (writer, thread) = Writer::start(store, WriterOptions::default(), vec![recorder.clone() as Arc<dyn CommitConsumer>]);
    let preparer = writer.preparer();
    let first =
        writer.append_blocking(Batch::in_parts(&preparer, vec![payment("a", "u1", 1), payment("b", "u2", 2)], 2, true).unwrap()).unwrap();
    assert_eq!(first, vec![AppendStatus::Accepted; 2]);
    // A repeat of "a" beside a new event: the consumer learns which was stored.
    let second =
        writer.append_blocking(Batch::shared(&preparer, Arc::new(vec![payment("a", "u1", 1), payment("c", "u3", 3)])).unwrap()).unwrap();
    assert_eq!(second, vec![AppendStatus::Duplicate, AppendStatus::Accepted]);
    drop(writer);
    thread.join().unwrap();
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("a".into(), AppendStatus::Accepted),
            ("b".into(), AppendStatus::Accepted),
            ("a".into(), AppendStatus::Duplicate),
            ("c".into(), AppendStatus::Accepted),
        ]
    );
    let accepted: Vec<String> = seen.into_iter().filter(|(_, s)| *s == AppendStatus::Accepted).map(|(id, _)| id).collect();
    assert_eq!(accepted, log_ids(dir.path()), "the consumer saw what the log holds, in its order");
}

#[test]
fn a_decision_record_is_stored_only_with_a_new_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let (writer, thread) = Writer::start(store, WriterOptions::default(), Vec::new());
    let preparer = writer.preparer();
    writer.append_blocking(Batch::shared(&preparer, Arc::new(vec![payment("tx", "u1", 1)])).unwrap()).unwrap();
    let retried =
        Batch::shared(&preparer, Arc::new(vec![payment("tx", "u1", 1), payment("tx#decision", "u1", 1)])).unwrap().following_the_first();
    assert_eq!(writer.append_blocking(retried).unwrap(), vec![AppendStatus::Duplicate; 2]);
    drop(writer);
    thread.join().unwrap();
    assert_eq!(log_ids(dir.path()), vec!["tx".to_string()]);
}

#[test]
fn submissions_name_the_records_they_refuse_and_keep_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let (writer, thread) = Writer::start(store, WriterOptions::default(), Vec::new());
    let body = br#"[{"event_id": "ok", "user_id": "u1", "ts": 1767225600000, "type": "payment", "amount_fen": 5, "currency": "CNY", "terminal_id": "t1"},
        {"event_id": "bad", "user_id": "u1", "ts": 1767225600000, "type": "payment", "amount_fen": "five", "currency": "CNY", "terminal_id": "t1"}]"#;
    let decoded = finpulse_ingest::decode_body(body).unwrap();
    let submission = Submission::records(&writer.preparer(), decoded, &finpulse_core::ValidationLimits::default()).unwrap();
    assert_eq!(submission.rejected.len(), 1);
    assert_eq!(submission.rejected[0].field.as_deref(), Some("amount_fen"));
    assert_eq!(writer.append_blocking(submission.batch).unwrap(), vec![AppendStatus::Accepted]);
    drop(writer);
    thread.join().unwrap();
    assert_eq!(log_ids(dir.path()), vec!["ok".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_producers_are_answered_after_their_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let recorder = Arc::new(Recorder::default());
    let (writer, thread) = Writer::start(store, WriterOptions::default(), vec![recorder.clone() as Arc<dyn CommitConsumer>]);
    let requests = (0..50).map(|i| {
        let writer = writer.clone();
        tokio::spawn(async move {
            let batch = Batch::shared(&writer.preparer(), Arc::new(vec![payment(&format!("e{i}"), "u1", i)])).unwrap();
            let statuses = writer.append(batch).await.unwrap();
            // Answered only after the consumers applied it.
            assert!(writer.stats().await.unwrap().events_stored > i as u64);
            statuses
        })
    });
    for r in futures_join(requests).await {
        assert_eq!(r, vec![AppendStatus::Accepted]);
    }
    assert_eq!(recorder.0.lock().unwrap().len(), 50);
    drop(writer);
    tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();
    assert_eq!(log_ids(dir.path()).len(), 50);
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Panics on the first event it is handed.
struct Faulty;

impl CommitConsumer for Faulty {
    fn apply(&self, _: &[Event], _: &[AppendStatus]) {
        panic!("a consumer failed half-way through applying");
    }
}

/// The child half of the test below: set in the environment of the process it starts.
const CHILD_DATA_DIR: &str = "FINPULSE_WRITE_TEST_PANIC_DIR";

#[test]
fn a_panic_while_applying_stops_the_process_and_the_log_keeps_the_batch() {
    if let Some(dir) = std::env::var_os(CHILD_DATA_DIR) {
        // In the child: this must never return normally.
        let store = EventStore::open(std::path::Path::new(&dir), StoreOptions::default()).unwrap();
        let (writer, _thread) = Writer::start(store, WriterOptions::default(), vec![Arc::new(Faulty) as Arc<dyn CommitConsumer>]);
        let _ = writer.append_blocking(Batch::shared(&writer.preparer(), Arc::new(vec![payment("kept", "u1", 1)])).unwrap());
        std::thread::sleep(std::time::Duration::from_secs(10));
        unreachable!("the process should have stopped");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_panic_while_applying_stops_the_process_and_the_log_keeps_the_batch", "--nocapture", "--test-threads=1"])
        .env(CHILD_DATA_DIR, dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "the child was not aborted: {:?}\n{stderr}", out.status);
    }
    assert!(stderr.contains("the writer thread panicked"), "{stderr}");
    // The batch was durable before the consumer ran: a start finds it in the log.
    assert_eq!(log_ids(dir.path()), vec!["kept".to_string()]);
}

/// The child half of the test below: the data directory it writes, set in its environment.
const CHILD_FULL_DIR: &str = "FINPULSE_WRITE_TEST_FULL_DIR";
/// Bytes the child may write to any one file before the kernel refuses (RLIMIT_FSIZE).
const CHILD_FILE_BYTES_MAX: u64 = 256 << 10;

#[cfg(target_os = "linux")]
#[test]
fn a_failed_log_write_stops_the_store_and_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(CHILD_FULL_DIR) {
        // In the child: the kernel refuses writes past the limit (EFBIG) instead of signalling.
        // SAFETY: plain system calls on this process's own settings, before any writer starts.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: CHILD_FILE_BYTES_MAX, rlim_max: CHILD_FILE_BYTES_MAX };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
        let store = EventStore::open(std::path::Path::new(&dir), StoreOptions::default()).unwrap();
        let (writer, _thread) = Writer::start(store, WriterOptions::default(), Vec::new());
        for round in 0.. {
            let events: Vec<Event> = (0..50).map(|i| payment(&format!("r{round}-{i}"), "u1", i)).collect();
            match writer.append_blocking(Batch::in_parts(&writer.preparer(), events.clone(), 1, false).unwrap()) {
                Ok(_) => println!("ACK {}", events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>().join(" ")),
                Err(e) => {
                    println!("FAILED {e}");
                    let again =
                        writer.append_blocking(Batch::in_parts(&writer.preparer(), vec![payment("after", "u1", 1)], 1, false).unwrap());
                    println!("AGAIN {}", again.map(|_| "stored".to_string()).unwrap_or_else(|e| e.to_string()));
                    break;
                }
            }
            assert!(round < 10_000, "the file-size limit never stopped a write");
        }
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_failed_log_write_stops_the_store_and_loses_nothing_acknowledged", "--nocapture", "--test-threads=1"])
        .env(CHILD_FULL_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let line = |tag: &str| stdout.lines().find_map(|l| l.strip_prefix(tag)).unwrap_or_else(|| panic!("no {tag} line:\n{stdout}"));
    // The failure is reported to the producer, and every later write is refused.
    assert!(line("FAILED ").contains("File too large"), "{stdout}");
    assert!(line("AGAIN ").contains("stopped accepting writes"), "{stdout}");
    let acknowledged: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("ACK ")).flat_map(|l| l.split(' ')).collect();
    assert!(acknowledged.len() >= 100, "the limit left room for some commits first: {}", acknowledged.len());
    // A start recovers from what is on disk: everything acknowledged is there.
    let stored: std::collections::HashSet<String> = log_ids(dir.path()).into_iter().collect();
    let lost: Vec<&&str> = acknowledged.iter().filter(|id| !stored.contains(**id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(!stored.contains("after"));
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(store.stats().events_stored as usize >= acknowledged.len());
}

#[test]
fn a_bulk_batch_without_its_events_is_stored_by_a_writer_without_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let (writer, thread) = Writer::start(store, WriterOptions::default(), Vec::new());
    assert!(!writer.has_consumers());
    let events = vec![payment("x", "u1", 1), payment("y", "u2", 2), payment("x", "u1", 1)];
    let batch = Batch::in_parts(&writer.preparer(), events, 2, false).unwrap();
    assert!(batch.events().is_none());
    let statuses = writer.append_blocking(batch).unwrap();
    assert_eq!(statuses, vec![AppendStatus::Accepted, AppendStatus::Accepted, AppendStatus::Duplicate]);
    drop(writer);
    thread.join().unwrap();
    assert_eq!(log_ids(dir.path()), vec!["x".to_string(), "y".to_string()]);
}
