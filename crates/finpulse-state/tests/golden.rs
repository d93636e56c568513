//! A data directory written by an earlier build — its log segment, registry and live-state
//! checkpoint, committed under `tests/golden/store` — must still open, replay and load with
//! every later build. A format change that breaks this needs a migration (and a new fixture
//! beside this one), never a silent rewrite.
//!
//! The fixture was made by this test with `FINPULSE_BLESS_GOLDEN=1` (a small simulated app,
//! checkpointed half-way); blessing again replaces it and is only right when no build that
//! wrote the old one was ever released.

use finpulse_core::Event;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_sim::{SimConfig, Simulator};
use finpulse_state::{LiveState, Vocabulary, checkpoint_path, load_checkpoint, rebuild, save_checkpoint};
use std::path::{Path, PathBuf};

const SIM: SimConfig = SimConfig { users: 40, days: 6, seed: 5, start_day: 20_454 };
const PARTITIONS: usize = 4;

fn fixture() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test")).join("tests/golden/store")
}

/// What the fixture holds, written beside it: events, where the checkpoint stands, and a
/// digest of the event ids in log order.
fn summary(events: &[Event], checkpoint_seq: u64) -> String {
    let digest = events.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, e| {
        e.event_id.bytes().chain([0]).fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    });
    format!("events {}\ncheckpoint_next_seq {checkpoint_seq}\nevent_id_digest {digest:016x}\n", events.len())
}

fn bless(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let mut store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let mut sim = Simulator::new(SIM, &store.registry());
    let mut events = Vec::new();
    while let Some(day) = sim.next_day() {
        store.append_groups(std::slice::from_ref(&day)).unwrap();
        events.extend(day);
    }
    drop(store);
    let vocab = Vocabulary::new(&EventStore::load_registry(dir).unwrap());
    let half = events.len() / 2;
    let mut state = LiveState::new(PARTITIONS);
    events[..half].iter().for_each(|e| state.apply(&vocab, e));
    save_checkpoint(&checkpoint_path(dir), &state, half as u64).unwrap();
    // Only what a later build must read: the log, the registry, the checkpoint.
    for extra in ["LOCK", "OWNER", "manifest.json", "parquet"] {
        let p = dir.join(extra);
        let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
    }
    std::fs::write(dir.join("SUMMARY"), summary(&events, half as u64)).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_log_and_checkpoint_written_by_an_earlier_build_still_open_replay_and_load() {
    if std::env::var_os("FINPULSE_BLESS_GOLDEN").is_some() {
        bless(&fixture());
    }
    let expected = std::fs::read_to_string(fixture().join("SUMMARY"))
        .unwrap_or_else(|e| panic!("{}: {e} (the golden data directory is committed)", fixture().display()));
    // Work on a copy: opening a store writes to its directory.
    let work = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), work.path());
    let dir = work.path();

    let mut events = Vec::new();
    EventStore::replay(dir, 0, |_, _| true, |_, e| events.push(e)).unwrap();
    let (_, checkpoint_seq) = load_checkpoint(&checkpoint_path(dir)).expect("today's build loads the committed checkpoint");
    assert_eq!(summary(&events, checkpoint_seq), expected, "the log replays to the events it was written with");

    let store = EventStore::open(dir, StoreOptions::default()).expect("today's build opens the committed store");
    assert_eq!(store.recovery().truncated_bytes, 0, "nothing of the committed log is cut");
    assert_eq!(store.stats().events_stored as usize, events.len());
    drop(store);

    // The checkpoint plus the log after it gives the state the whole log gives.
    let vocab = Vocabulary::new(&EventStore::load_registry(dir).unwrap());
    let mut from_log = LiveState::new(PARTITIONS);
    events.iter().for_each(|e| from_log.apply(&vocab, e));
    let (from_checkpoint, _, next) = rebuild(dir, PARTITIONS).unwrap();
    assert_eq!(next as usize, events.len());
    assert!(from_checkpoint == from_log, "the committed checkpoint decodes to the state the log gives");
}
