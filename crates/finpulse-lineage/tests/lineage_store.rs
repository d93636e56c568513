//! The lineage store through its public API: what is appended reads back, a crash's torn line
//! is cut, damage is named by line, retention rewrites the file, and the graph walks a chain of
//! derivations both ways.

use finpulse_lineage::graph::{GRAPH_DEPTH_MAX, NodeId};
use finpulse_lineage::store::{APPEND_EVENTS_MAX, EVENTS_FILE};
use finpulse_lineage::{
    Dataset, DatasetId, EventType, InputField, JobId, LineageError, LineageStore, Pruned, Run, RunEvent, SchemaField, Transformation,
    TransformationKind,
};
use std::io::Write;
use std::sync::Arc;

const NS: &str = "finpulse://test";
/// 2026-03-01T00:00:00Z.
const T0_US: i64 = 1_772_323_200_000_000;
const MINUTE_US: i64 = 60_000_000;

fn dataset(name: &str) -> Dataset {
    Dataset::new(NS, name)
}

/// One derivation, started at `at_us` and completed a minute later.
fn derivation(job: &str, inputs: &[&str], outputs: &[&str], at_us: i64) -> [RunEvent; 2] {
    let datasets = |names: &[&str]| names.iter().map(|n| dataset(n)).collect::<Vec<_>>();
    let (run, start) = Run::start_at(NS, job, datasets(inputs), datasets(outputs), at_us);
    [start, run.complete_at(datasets(outputs), at_us + MINUTE_US)]
}

fn with_protected_column(d: Dataset) -> Dataset {
    let events = DatasetId::new(NS, "events");
    d.with_schema(vec![SchemaField::new("user_id", "Utf8"), SchemaField::new("mobile", "Utf8").described("C2/L3 (sensitive)")])
        .with_column_lineage("mobile", vec![InputField::new(&events, "mobile", Transformation::new(TransformationKind::Identity, false))])
}

#[test]
fn events_read_back_exactly_as_appended() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    let (run, start) = Run::start_at(NS, "compaction", vec![dataset("events")], vec![with_protected_column(dataset("parquet"))], T0_US);
    let done = run.complete_at(vec![with_protected_column(dataset("parquet"))], T0_US + MINUTE_US);
    let (failing, start2) = Run::start_at(NS, "export", vec![dataset("parquet")], vec![], T0_US + 2 * MINUTE_US);
    let failed = failing.fail_at("disk full\nwhile writing", T0_US + 3 * MINUTE_US);
    store.append(&[start.clone(), done.clone()]).unwrap();
    store.append(&[start2.clone(), failed.clone()]).unwrap();
    store.append(&[]).unwrap();
    let expected = vec![start, done, start2, failed];
    assert_eq!(store.events_since(None).unwrap(), expected);
    let text = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
    assert_eq!(text.lines().count(), 4, "one event per line, the newline in the message escaped");
    drop(store);
    assert_eq!(LineageStore::open(dir.path()).unwrap().events_since(None).unwrap(), expected);
}

#[test]
fn events_since_returns_the_events_at_or_after_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    store.append(&derivation("compaction", &["events"], &["parquet"], T0_US)).unwrap();
    store.append(&derivation("segment", &["parquet"], &["segments"], T0_US + 10 * MINUTE_US)).unwrap();
    let since = store.events_since(Some(T0_US + MINUTE_US)).unwrap();
    let times: Vec<i64> = since.iter().map(|e| e.event_time_us).collect();
    assert_eq!(times, [T0_US + MINUTE_US, T0_US + 10 * MINUTE_US, T0_US + 11 * MINUTE_US]);
    assert!(store.events_since(Some(T0_US + 12 * MINUTE_US)).unwrap().is_empty());
}

#[test]
fn a_torn_last_line_is_cut_on_open_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = derivation("compaction", &["events"], &["parquet"], T0_US);
    LineageStore::open(dir.path()).unwrap().append(&first).unwrap();
    // A crash in the middle of the next append: half a line, no newline.
    let path = dir.path().join(EVENTS_FILE);
    let good_len = std::fs::metadata(&path).unwrap().len();
    let torn = serde_json::to_string(&first[0]).unwrap();
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();

    let store = LineageStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len, "the torn line is gone from the file");
    assert_eq!(store.events_since(None).unwrap(), first);
    let second = derivation("segment", &["parquet"], &["segments"], T0_US + MINUTE_US);
    store.append(&second).unwrap();
    assert_eq!(store.events_since(None).unwrap(), [first, second].concat());
}

#[test]
fn a_torn_line_left_by_another_process_is_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    let first = derivation("compaction", &["events"], &["parquet"], T0_US);
    store.append(&first).unwrap();
    let path = dir.path().join(EVENTS_FILE);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"eventType\":\"STA").unwrap();
    assert_eq!(store.events_since(None).unwrap(), first, "an unterminated line is not read as an event");
    let second = derivation("segment", &["parquet"], &["segments"], T0_US + MINUTE_US);
    store.append(&second).unwrap();
    assert_eq!(store.events_since(None).unwrap(), [first, second].concat());
}

#[test]
fn a_bad_line_is_reported_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    store.append(&derivation("compaction", &["events"], &["parquet"], T0_US)).unwrap();
    let path = dir.path().join(EVENTS_FILE);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"eventType\":\"COMPLETE\"}\n").unwrap();
    store.append(&derivation("segment", &["parquet"], &["segments"], T0_US + MINUTE_US)).unwrap();

    let expect_line_3 = |result: Result<(), LineageError>| match result {
        Err(LineageError::BadLine { line, path: p, .. }) => {
            assert_eq!(line, 3);
            assert_eq!(p, path);
        }
        other => panic!("expected line 3 to be named, got {other:?}"),
    };
    expect_line_3(store.events_since(None).map(drop));
    expect_line_3(store.graph(&DatasetId::new(NS, "parquet"), 1).map(drop));
    expect_line_3(store.prune_older_than(T0_US + MINUTE_US).map(drop));
    expect_line_3(LineageStore::open(dir.path()).map(drop));
    let message = LineageStore::open(dir.path()).err().unwrap().to_string();
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn a_long_tail_without_newline_is_damage_not_a_torn_append() {
    let dir = tempfile::tempdir().unwrap();
    LineageStore::open(dir.path()).unwrap().append(&derivation("compaction", &["events"], &["parquet"], T0_US)).unwrap();
    let path = dir.path().join(EVENTS_FILE);
    let junk = vec![b'x'; finpulse_lineage::store::EVENT_LINE_BYTES_MAX + 2];
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&junk).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    assert!(matches!(LineageStore::open(dir.path()), Err(LineageError::BadLine { line: 3, .. })));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), before, "nothing is cut that a crash could not have left");
}

#[test]
fn pruning_removes_events_before_the_cutoff_and_keeps_the_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    let old = derivation("compaction", &["events"], &["parquet"], T0_US);
    let new = derivation("segment", &["parquet"], &["segments"], T0_US + 60 * MINUTE_US);
    store.append(&old).unwrap();
    store.append(&new).unwrap();

    assert_eq!(store.prune_older_than(T0_US + MINUTE_US).unwrap(), Pruned { kept: 3, removed: 1 });
    assert_eq!(store.events_since(None).unwrap(), [old[1].clone(), new[0].clone(), new[1].clone()]);
    assert_eq!(store.prune_older_than(T0_US + MINUTE_US).unwrap(), Pruned { kept: 3, removed: 0 });
    assert_eq!(store.prune_older_than(T0_US + 30 * MINUTE_US).unwrap(), Pruned { kept: 2, removed: 1 });

    // The rewritten file is the store: reopened, appended to, no temporary file beside it.
    let later = derivation("pricing", &["segments"], &["prices"], T0_US + 90 * MINUTE_US);
    store.append(&later).unwrap();
    drop(store);
    let store = LineageStore::open(dir.path()).unwrap();
    assert_eq!(store.events_since(None).unwrap(), [new.to_vec(), later.to_vec()].concat());
    let mut names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["LOCK", EVENTS_FILE]);
}

/// events → compaction → parquet → segment → segments → pricing (also reading price_rules) → prices.
fn chain(store: &LineageStore) {
    store.append(&derivation("compaction", &["events"], &["parquet"], T0_US)).unwrap();
    store.append(&derivation("segment", &["parquet"], &["segments"], T0_US + MINUTE_US)).unwrap();
    store.append(&derivation("pricing", &["segments", "price_rules"], &["prices"], T0_US + 2 * MINUTE_US)).unwrap();
}

fn d(name: &str) -> NodeId {
    NodeId::Dataset(DatasetId::new(NS, name))
}

fn j(name: &str) -> NodeId {
    NodeId::Job(JobId::new(NS, name))
}

fn names(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = ids.collect();
    v.sort();
    v
}

#[test]
fn the_graph_walks_a_chain_of_derivations_upstream_and_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    chain(&store);

    let one = store.graph(&DatasetId::new(NS, "parquet"), 1).unwrap();
    assert_eq!(names(one.datasets().map(|d| d.name.clone())), ["events", "parquet", "segments"]);
    assert_eq!(names(one.jobs().map(|j| j.name.clone())), ["compaction", "segment"]);
    assert_eq!(one.edges.len(), 4);
    assert!(one.has_edge(&d("events"), &j("compaction")));
    assert!(one.has_edge(&j("compaction"), &d("parquet")));
    assert!(one.has_edge(&d("parquet"), &j("segment")));
    assert!(one.has_edge(&j("segment"), &d("segments")));

    let two = store.graph(&DatasetId::new(NS, "parquet"), 2).unwrap();
    assert!(two.has_edge(&d("segments"), &j("pricing")));
    assert!(two.has_edge(&j("pricing"), &d("prices")));
    assert!(!two.datasets().any(|d| d.name == "price_rules"), "another input of a downstream job is not downstream");

    let up = store.graph(&DatasetId::new(NS, "prices"), GRAPH_DEPTH_MAX).unwrap();
    assert_eq!(names(up.datasets().map(|d| d.name.clone())), ["events", "parquet", "price_rules", "prices", "segments"]);
    assert!(up.has_edge(&d("price_rules"), &j("pricing")));
    assert!(up.has_edge(&d("events"), &j("compaction")));
    assert!(!up.truncated);
    let compaction = up.nodes.iter().find(|n| n.id == j("compaction")).unwrap();
    assert_eq!(compaction.last_run.unwrap().completed_us, T0_US + MINUTE_US);

    let alone = store.graph(&DatasetId::new(NS, "parquet"), 0).unwrap();
    assert_eq!((alone.nodes.len(), alone.edges.len()), (1, 0));
}

#[test]
fn a_failed_run_derives_nothing_in_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    let (run, start) = Run::start_at(NS, "training", vec![dataset("parquet")], vec![dataset("model")], T0_US);
    store.append(&[start, run.fail_at("out of memory", T0_US + MINUTE_US)]).unwrap();
    let graph = store.graph(&DatasetId::new(NS, "model"), 3).unwrap();
    assert_eq!((graph.nodes.len(), graph.edges.len()), (1, 0));
    let failed = store.events_since(None).unwrap().pop().unwrap();
    assert_eq!(failed.event_type, EventType::Fail);
}

#[test]
fn appends_from_threads_and_a_second_store_on_the_same_folder_all_arrive_whole() {
    let dir = tempfile::tempdir().unwrap();
    let stores = [Arc::new(LineageStore::open(dir.path()).unwrap()), Arc::new(LineageStore::open(dir.path()).unwrap())];
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&stores[t % 2]);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let at_us = T0_US + (t * 100 + i) as i64 * MINUTE_US;
                    let output = format!("out{t}_{i}");
                    store.append(&derivation(&format!("job{t}"), &["events"], &[output.as_str()], at_us)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let events = stores[0].events_since(None).unwrap();
    assert_eq!(events.len(), 8 * 25 * 2);
    // Each append's START and COMPLETE stay together: one append is one write.
    for pair in events.chunks(2) {
        assert_eq!(pair[0].run.run_id, pair[1].run.run_id);
    }
}

#[test]
fn an_append_over_the_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path()).unwrap();
    let events: Vec<RunEvent> =
        (0..APPEND_EVENTS_MAX as i64 + 1).map(|i| Run::start_at(NS, "report", vec![], vec![], T0_US + i).1).collect();
    assert!(matches!(store.append(&events), Err(LineageError::TooManyEvents { .. })));
    let mut huge = events[0].clone();
    huge.outputs = vec![dataset(&"x".repeat(finpulse_lineage::store::EVENT_LINE_BYTES_MAX))];
    assert!(matches!(store.append(&[events[1].clone(), huge]), Err(LineageError::EventTooLarge { .. })));
    assert!(store.events_since(None).unwrap().is_empty());
}
