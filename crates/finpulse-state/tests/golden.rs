//! Data directories written by earlier builds — their log segment, registry and live-state
//! checkpoint, committed under `tests/golden/` — must still open, replay and load with every
//! later build. A format change that breaks this needs a migration (and a new fixture beside
//! the old ones), never a silent rewrite.
//!
//! - `store`: checkpoint format 3 (32 days of terminal buckets), migrated when loaded;
//! - `store-v5`: checkpoint format 5 (the current one). Format 4 was never released: a
//!   checkpoint of it is set aside and the log rebuilds the state, as for any earlier format.
//!
//! The newest fixture is made by this test with `FINPULSE_BLESS_GOLDEN=1` (a small simulated
//! app, checkpointed half-way); blessing again replaces only it, and is only right when no build
//! that wrote it was ever released.

use finpulse_core::Event;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_sim::{SimConfig, Simulator};
use finpulse_state::{LiveState, Vocabulary, checkpoint_path, load_checkpoint, rebuild, save_checkpoint};
use std::path::{Path, PathBuf};

const SIM: SimConfig = SimConfig { users: 40, days: 6, seed: 5, start_day: 20_454 };
const PARTITIONS: usize = 4;

/// Every fixture, oldest first; blessing writes the last.
const FIXTURES: &[&str] = &["store", "store-v5"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test")).join("tests/golden").join(name)
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
        bless(&fixture(FIXTURES[FIXTURES.len() - 1]));
    }
    for (i, name) in FIXTURES.iter().enumerate() {
        opens_replays_and_loads(&fixture(name), i + 1 == FIXTURES.len());
    }
}

/// `latest`: the fixture is in today's format, so its checkpoint must decode to exactly the
/// state the log gives.
fn opens_replays_and_loads(fixture: &Path, latest: bool) {
    let expected = std::fs::read_to_string(fixture.join("SUMMARY"))
        .unwrap_or_else(|e| panic!("{}: {e} (the golden data directory is committed)", fixture.display()));
    // Work on a copy: opening a store writes to its directory.
    let work = tempfile::tempdir().unwrap();
    copy_dir(fixture, work.path());
    let dir = work.path();
    let which = fixture.display();

    let mut events = Vec::new();
    EventStore::replay(dir, 0, |_, _| true, |_, e| events.push(e)).unwrap();
    let (_, checkpoint_seq) =
        load_checkpoint(&checkpoint_path(dir)).unwrap_or_else(|e| panic!("today's build loads the checkpoint of {which}: {e}"));
    assert_eq!(summary(&events, checkpoint_seq), expected, "{which}: the log replays to the events it was written with");

    let store = EventStore::open(dir, StoreOptions::default()).expect("today's build opens the committed store");
    assert_eq!(store.recovery().truncated_bytes, 0, "nothing of the committed log of {which} is cut");
    assert_eq!(store.stats().events_stored as usize, events.len());
    drop(store);

    // The checkpoint plus the log after it gives the state the whole log gives.
    let vocab = Vocabulary::new(&EventStore::load_registry(dir).unwrap());
    let mut from_log = LiveState::new(PARTITIONS);
    events.iter().for_each(|e| from_log.apply(&vocab, e));
    let (from_checkpoint, _, next) = rebuild(dir, PARTITIONS).unwrap();
    assert_eq!(next as usize, events.len());
    if latest {
        assert!(from_checkpoint == from_log, "the checkpoint of {which} decodes to the state the log gives");
    }
    // A migrated checkpoint lacks what its format did not keep (the times behind its seen-sets),
    // so it is held to what decisions read: every feature of a payment after the history.
    let end = events.iter().map(|e| e.ts_us).max().unwrap();
    let payments: Vec<&Event> = events.iter().filter(|e| vocab.kind(e.type_id) == finpulse_state::Kind::Payment).collect();
    assert!(!payments.is_empty());
    for p in payments {
        let probe = Event { event_id: "probe".into(), ts_us: end + 1, ..p.clone() };
        let (a, b) = (from_log.features(&vocab, &probe).unwrap(), from_checkpoint.features(&vocab, &probe).unwrap());
        let bits = |r: &finpulse_state::features::FeatureRow<'_>| r.num.map(f64::to_bits);
        assert_eq!(bits(&a), bits(&b), "{which}: the features of a payment like {}", p.event_id);
    }
}
