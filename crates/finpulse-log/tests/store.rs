//! The event store end to end on real files: idempotency across restarts, recovery, locking,
//! custom types, and compaction into day-partitioned Parquet sorted by (type, user_id, ts).

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use finpulse_core::registry::{CustomFieldDef, CustomTypeDef, FieldCheck};
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_core::{DataClass, Event, FieldType, Registry, Scope, Value};
use finpulse_log::{AppendStatus, EventStore, StoreError, StoreOptions};
use std::path::Path;
use std::sync::Arc;

const DAY0_US: i64 = 20_454 * MICROS_PER_DAY; // 2026-01-01

fn payment(id: &str, user: &str, ts_us: i64, amount_fen: i64) -> Event {
    let reg = Registry::builtin();
    Event {
        event_id: id.into(),
        user_id: Some(user.into()),
        ts_us,
        type_id: reg.type_id("payment").unwrap(),
        fields: vec![
            (reg.field_id("amount_fen").unwrap(), Value::Int(amount_fen)),
            (reg.field_id("currency").unwrap(), Value::Str("CNY".into())),
            (reg.field_id("terminal_id").unwrap(), Value::Str("t1".into())),
        ],
    }
}

fn tail_ids(store: &EventStore) -> Vec<String> {
    let view = store.view_handle().snapshot();
    view.tail.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().map(|s| s.unwrap().to_string()).collect::<Vec<_>>()).collect()
}

fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn duplicate_event_ids_are_accepted_once_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let batch = vec![payment("e1", "u1", DAY0_US, 100), payment("e2", "u1", DAY0_US + 1, 200), payment("e1", "u1", DAY0_US + 2, 300)];
    let statuses = store.append_groups(&[batch]).unwrap();
    assert_eq!(statuses[0], vec![AppendStatus::Accepted, AppendStatus::Accepted, AppendStatus::Duplicate]);
    drop(store);

    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(tail_ids(&store), vec!["e1", "e2"]);
    let statuses = store.append_groups(&[vec![payment("e2", "u1", DAY0_US, 1)], vec![payment("e3", "u2", DAY0_US, 1)]]).unwrap();
    assert_eq!(statuses, vec![vec![AppendStatus::Duplicate], vec![AppendStatus::Accepted]]);
    store.compact().unwrap();
    drop(store);

    // Ids compacted into Parquet are still known after a restart.
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(tail_ids(&store).is_empty());
    let statuses = store.append_groups(&[vec![payment("e1", "u9", DAY0_US, 1), payment("e4", "u9", DAY0_US, 1)]]).unwrap();
    assert_eq!(statuses[0], vec![AppendStatus::Duplicate, AppendStatus::Accepted]);
    assert_eq!(store.stats().events_stored, 4);
}

#[test]
fn small_groups_left_to_the_writer_land_in_the_tail_in_log_order_beside_built_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let preparer = store.preparer();
    let shared = |ids: &[&str]| {
        let events: Vec<Event> = ids.iter().map(|id| payment(id, "u1", DAY0_US, 5)).collect();
        preparer.prepare_shared(std::sync::Arc::new(events)).unwrap()
    };
    let big: Vec<Event> =
        (0..=finpulse_log::store::WRITER_BUILT_GROUP_EVENTS_MAX).map(|i| payment(&format!("b{i}"), "u2", DAY0_US, 7)).collect();
    let groups =
        [shared(&["s1", "s2"]), shared(&["s1", "s3"]), preparer.prepare_shared(std::sync::Arc::new(big.clone())).unwrap(), shared(&["s4"])];
    let statuses = store.append_prepared(&groups).unwrap();
    assert_eq!(statuses[1], vec![AppendStatus::Duplicate, AppendStatus::Accepted]);
    let mut expected: Vec<String> = ["s1", "s2", "s3"].map(String::from).to_vec();
    expected.extend(big.iter().map(|e| e.event_id.clone()));
    expected.push("s4".into());
    assert_eq!(tail_ids(&store), expected);
    let view = store.view_handle().snapshot();
    let amounts: Vec<i64> = view
        .tail
        .iter()
        .flat_map(|b| b.column_by_name("amount_fen").unwrap().as_primitive::<arrow::datatypes::Int64Type>().values().to_vec())
        .collect();
    assert_eq!(amounts.iter().filter(|a| **a == 5).count(), 4);
    drop(store);
    // The log holds the same events: a restart rebuilds the same tail.
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(tail_ids(&store), expected);
}

#[test]
fn small_appends_fill_one_open_batch_sealed_at_its_size_and_compaction_takes_the_open_rows() {
    use finpulse_log::store::TAIL_BATCH_ROWS_MIN;
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let n = TAIL_BATCH_ROWS_MIN + 101;
    let ids: Vec<String> = (0..n).map(|i| format!("d{i:06}")).collect();
    // Two events per append, as a decision stores its transaction and its verdict.
    for pair in ids.chunks(2) {
        append_small(&mut store, pair.iter().map(|id| payment(id, "u1", DAY0_US, 5)).collect());
    }
    let view = store.view_handle().snapshot();
    let sizes: Vec<usize> = view.tail.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, vec![TAIL_BATCH_ROWS_MIN, 101], "one sealed batch, then the open rows");
    assert_eq!(tail_ids(&store), ids);
    store.compact().unwrap();
    assert_eq!(store.stats().tail_events, 0);
    let view = store.view_handle().snapshot();
    assert!(view.tail.is_empty(), "the open rows went into the compaction");
    let mut stored: Vec<String> = view.files.iter().flat_map(|f| column_strings(&read_parquet(f), "event_id")).collect();
    stored.sort();
    assert_eq!(stored, ids);
    drop(store);
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(store.view_handle().snapshot().tail.is_empty(), "nothing left in the log after the compaction");
}

#[test]
fn a_second_process_cannot_open_a_held_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.set_owner_note("finpulse serve, pid 1, http://127.0.0.1:1").unwrap();
    match EventStore::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::Locked { owner, .. }) => assert!(owner.contains("http://127.0.0.1:1")),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a held directory was opened twice"),
    }
    drop(store);
    // The next owner replaces the stale note, so a third process is not sent to a dead server.
    let _store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    match EventStore::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::Locked { owner, .. }) => assert!(!owner.contains("http://127.0.0.1:1"), "{owner}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a held directory was opened twice"),
    }
}

#[test]
fn records_following_a_duplicate_first_event_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.append_groups(&[vec![payment("tx", "u1", DAY0_US, 1)]]).unwrap();
    let group = |ids: [&str; 2]| Arc::new(ids.iter().map(|id| payment(id, "u1", DAY0_US, 2)).collect::<Vec<_>>());
    let preparer = store.preparer();
    // The transaction was stored before: the record about it is not stored either.
    let followed = preparer.prepare_shared(group(["tx", "tx#record"])).unwrap().following_the_first();
    assert_eq!(store.append_prepared(&[followed]).unwrap(), vec![vec![AppendStatus::Duplicate, AppendStatus::Duplicate]]);
    // Without the link, each event stands alone; with it, a new first event takes its records.
    let alone = preparer.prepare_shared(group(["tx", "tx#other"])).unwrap();
    let new_first = preparer.prepare_shared(group(["tx2", "tx2#record"])).unwrap().following_the_first();
    assert_eq!(
        store.append_prepared(&[alone, new_first]).unwrap(),
        vec![vec![AppendStatus::Duplicate, AppendStatus::Accepted], vec![AppendStatus::Accepted, AppendStatus::Accepted]]
    );
    drop(store);
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(tail_ids(&store), vec!["tx", "tx#other", "tx2", "tx2#record"]);
}

#[test]
fn a_torn_log_tail_loses_only_the_unacknowledged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.append_groups(&[vec![payment("e1", "u1", DAY0_US, 1), payment("e2", "u1", DAY0_US, 2)]]).unwrap();
    drop(store);
    // A crash mid-write leaves a partial frame at the end of the segment.
    let seg = std::fs::read_dir(dir.path().join("wal")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&seg, &bytes).unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.recovery().truncated_bytes, 9);
    assert_eq!(tail_ids(&store), vec!["e1", "e2"]);
    store.append_groups(&[vec![payment("e3", "u1", DAY0_US, 3)]]).unwrap();
    drop(store);
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(tail_ids(&store), vec!["e1", "e2", "e3"]);
}

#[test]
fn compaction_writes_one_file_per_day_sorted_by_type_user_then_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let mut login = payment("f", "u1", DAY0_US + 95, 6);
    login.type_id = store.registry().type_id("login").unwrap();
    login.fields.clear();
    let events = vec![
        payment("a", "u2", DAY0_US + 50, 1),
        payment("b", "u1", DAY0_US + 90, 2),
        payment("c", "u1", DAY0_US + 10, 3),
        payment("d", "u1", DAY0_US + MICROS_PER_DAY + 5, 4),
        payment("e", "u2", DAY0_US + 50, 5), // same user and time as "a": keeps log order
        login,                               // "login" sorts before "payment"
    ];
    store.append_groups(&[events]).unwrap();
    let report = store.compact().unwrap();
    assert_eq!((report.events, report.files), (6, 2));
    let view = store.view_handle().snapshot();
    assert!(view.tail.is_empty());
    assert_eq!(view.files.len(), 2);
    assert!(view.files[0].to_string_lossy().contains("day=2026-01-01"));
    let day0 = read_parquet(&view.files[0]);
    let ids: Vec<&str> = day0.column(0).as_string::<i32>().iter().map(|s| s.unwrap()).collect();
    assert_eq!(ids, vec!["f", "c", "b", "a", "e"]);
    let ts = day0.column(2).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(1), DAY0_US + 10);
    let day1 = read_parquet(&view.files[1]);
    assert_eq!(day1.num_rows(), 1);
}

#[test]
fn a_compaction_cut_short_by_a_crash_is_redone_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.append_groups(&[vec![payment("a", "u1", DAY0_US, 1)]]).unwrap();
    drop(store);
    // A Parquet file that no manifest lists: what a crash between writing it and the manifest leaves.
    let orphan = dir.path().join("parquet/day=2026-01-01/part-x.parquet");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"partial").unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(!orphan.exists());
    assert_eq!(tail_ids(&store), vec!["a"]);
    assert_eq!(store.compact().unwrap().events, 1);
}

#[test]
fn automatic_compaction_keeps_the_tail_bounded_and_loses_nothing() {
    compaction_keeps_the_tail_bounded_and_loses_nothing(60, |store, events| {
        store.append_groups(&[events]).unwrap();
    });
}

#[test]
fn automatic_compaction_takes_open_rows_of_small_appends_and_loses_nothing() {
    compaction_keeps_the_tail_bounded_and_loses_nothing(3, append_small);
}

/// Appends 20 × 50 chunks of `per_append` events through `append` into a store whose tail
/// compacts at 100 events, checking that every event is in a file or the tail exactly once.
fn compaction_keeps_the_tail_bounded_and_loses_nothing(per_append: i64, append: impl Fn(&mut EventStore, Vec<Event>)) {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions { tail_events_max: 100, ..StoreOptions::default() };
    let mut store = EventStore::open(dir.path(), opts).unwrap();
    let stored = |store: &EventStore| {
        let view = store.view_handle().snapshot();
        let mut ids: Vec<String> = view.files.iter().flat_map(|f| column_strings(&read_parquet(f), "event_id")).collect();
        ids.extend(view.tail.iter().flat_map(|b| column_strings(b, "event_id")));
        ids.sort();
        ids
    };
    let mut all_ids = Vec::new();
    for chunk in 0..20 * 60 / per_append {
        let events: Vec<Event> =
            (0..per_append).map(|i| payment(&format!("e{chunk}-{i}"), &format!("u{}", i % 7), DAY0_US + i, 1)).collect();
        all_ids.extend(events.iter().map(|e| e.event_id.clone()));
        append(&mut store, events);
        // Compaction runs in the background; appends wait for it only at twice the limit.
        assert!(store.stats().tail_events < 200 + per_append as u64, "tail {}", store.stats().tail_events);
        if chunk % 25 == 0 {
            let mut so_far = all_ids.clone();
            so_far.sort();
            assert_eq!(stored(&store), so_far, "after chunk {chunk}: every event once, in a file or the tail");
        }
    }
    all_ids.sort();
    assert_eq!(stored(&store), all_ids, "every event once, in a file or the tail");
    store.compact().unwrap();
    assert_eq!(store.stats().tail_events, 0);
    assert_eq!(stored(&store), all_ids);
    drop(store);
    let store = EventStore::open(dir.path(), opts).unwrap();
    assert_eq!(stored(&store), all_ids, "the same after a restart");
}

fn column_strings(batch: &arrow::array::RecordBatch, name: &str) -> Vec<String> {
    let col = batch.column_by_name(name).unwrap().as_string::<i32>();
    col.iter().map(|v| v.unwrap_or_default().to_string()).collect()
}

/// Appends `events` as a small group the writer builds into the tail itself, as a decision's
/// transaction and record are appended.
fn append_small(store: &mut EventStore, events: Vec<Event>) {
    let prepared = store.preparer().prepare_shared(std::sync::Arc::new(events)).unwrap();
    store.append_prepared(&[prepared]).unwrap();
}

/// Registers the custom type `coupon_redeemed` (one required string, `coupon_code`) and returns
/// a maker of its events.
fn register_coupon_type(store: &mut EventStore) -> impl Fn(&str, &str) -> Event + use<> {
    let def = CustomTypeDef {
        name: "coupon_redeemed".into(),
        doc: String::new(),
        scope: Scope::User,
        fields: vec![CustomFieldDef {
            name: "coupon_code".into(),
            ty: FieldType::String,
            required: true,
            class: Some(DataClass::BASIC),
            check: FieldCheck::None,
            mask: None,
            doc: String::new(),
        }],
    };
    let type_id = store.register_type(def).unwrap();
    let field = store.registry().field_id("coupon_code").unwrap();
    move |id: &str, code: &str| Event {
        event_id: id.into(),
        user_id: Some("u1".into()),
        ts_us: DAY0_US,
        type_id,
        fields: vec![(field, Value::Str(code.into()))],
    }
}

#[test]
fn custom_types_persist_and_their_events_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let coupon = register_coupon_type(&mut store);
    let type_id = store.registry().type_id("coupon_redeemed").unwrap();
    store.append_groups(&[vec![coupon("c1", "SPRING")]]).unwrap();
    drop(store);
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.registry().type_id("coupon_redeemed"), Some(type_id));
    assert_eq!(tail_ids(&store), vec!["c1"]);
    store.compact().unwrap();
    let view = store.view_handle().snapshot();
    let batch = read_parquet(&view.files[0]);
    assert_eq!(batch.column_by_name("coupon_code").unwrap().as_string::<i32>().value(0), "SPRING");
}

#[test]
fn open_rows_keep_their_schema_when_a_custom_type_is_registered() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    append_small(&mut store, vec![payment("p1", "u1", DAY0_US, 5)]);
    let coupon = register_coupon_type(&mut store);
    append_small(&mut store, vec![coupon("c1", "SPRING"), payment("p2", "u1", DAY0_US, 6)]);
    let view = store.view_handle().snapshot();
    assert_eq!(view.tail.len(), 2, "the rows before the type was registered were sealed under the old schema");
    assert!(view.tail[0].column_by_name("coupon_code").is_none());
    assert_eq!(view.tail[1].column_by_name("coupon_code").unwrap().as_string::<i32>().value(0), "SPRING");
    assert_eq!(tail_ids(&store), vec!["p1", "c1", "p2"]);
    store.compact().unwrap();
    let view = store.view_handle().snapshot();
    let mut ids: Vec<String> = view.files.iter().flat_map(|f| column_strings(&read_parquet(f), "event_id")).collect();
    ids.sort();
    assert_eq!(ids, vec!["c1", "p1", "p2"]);
}

#[test]
fn a_log_whose_types_the_registry_lost_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let def = CustomTypeDef { name: "x".into(), doc: String::new(), scope: Scope::Business, fields: vec![] };
    let type_id = store.register_type(def).unwrap();
    store.append_groups(&[vec![Event { event_id: "x1".into(), user_id: None, ts_us: DAY0_US, type_id, fields: vec![] }]]).unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join("schema.json")).unwrap();
    match EventStore::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::BadRecord { seq, .. }) => assert_eq!(seq, 0),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("opened a log the registry cannot read"),
    }
}

#[test]
fn one_event_appends_keep_the_tail_in_few_batches_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let n = 3000;
    for i in 0..n {
        store.append_groups(&[vec![payment(&format!("e{i:05}"), "u1", 1_767_225_600_000_000 + i, 100)]]).unwrap();
    }
    let view = store.view_handle().snapshot();
    // Merged like a binary counter: about log2(n) batches, not one per append.
    assert!(view.tail.len() <= 12, "{} tail batches", view.tail.len());
    let expected: Vec<String> = (0..n).map(|i| format!("e{i:05}")).collect();
    assert_eq!(tail_ids(&store), expected);
}

#[test]
fn an_event_over_the_log_record_limit_is_refused_without_stopping_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let mut huge = payment("huge", "u1", DAY0_US, 1);
    let terminal = Registry::builtin().field_id("terminal_id").unwrap();
    huge.fields.iter_mut().find(|(f, _)| *f == terminal).unwrap().1 = Value::Str("t".repeat(finpulse_log::wal::RECORD_BYTES_MAX + 1));
    let refused = store.append_groups(&[vec![payment("before", "u1", DAY0_US, 1), huge]]);
    assert!(
        matches!(refused, Err(StoreError::RecordTooLarge { event_index: 1, bytes }) if bytes > finpulse_log::wal::RECORD_BYTES_MAX),
        "{refused:?}"
    );
    // Nothing of the refused batch was stored, and the store still takes writes.
    assert_eq!(store.append_groups(&[vec![payment("after", "u1", DAY0_US, 1)]]).unwrap(), vec![vec![AppendStatus::Accepted]]);
    assert_eq!(tail_ids(&store), vec!["after".to_string()]);
    drop(store);
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(tail_ids(&store), vec!["after".to_string()]);
}

#[test]
fn each_compaction_is_a_lineage_run_from_the_log_to_the_files_with_masked_forms_marked_as_masking() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.append_groups(&[vec![payment("p1", "u1", DAY0_US, 100)]]).unwrap();
    store.compact().unwrap();
    drop(store);
    let lineage = finpulse_lineage::LineageStore::open(dir.path().join(finpulse_log::lineage::LINEAGE_DIR)).unwrap();
    let events = lineage.events_since(None).unwrap();
    let kinds: Vec<String> = events.iter().map(|e| serde_json::to_value(e).unwrap()["eventType"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["START", "COMPLETE"]);
    let complete = serde_json::to_value(&events[1]).unwrap();
    assert_eq!(complete["job"]["name"], "compaction");
    assert_eq!(complete["inputs"][0]["name"], dir.path().join("wal").to_string_lossy().as_ref());
    let files = &complete["outputs"][0];
    assert_eq!(files["name"], dir.path().join("parquet").to_string_lossy().as_ref());
    let columns: Vec<&str> = files["facets"]["schema"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(columns.contains(&"card_number") && columns.contains(&"_masked_card_number") && columns.contains(&"_seq"), "{columns:?}");
    let masked = &files["facets"]["columnLineage"]["fields"]["_masked_card_number"]["inputFields"][0];
    assert_eq!(masked["field"], "card_number");
    assert_eq!(masked["transformations"][0]["masking"], true);
    let copied = &files["facets"]["columnLineage"]["fields"]["id_number"]["inputFields"][0];
    assert_eq!(copied["transformations"][0]["subtype"], "IDENTITY");
    // The graph leads from the files back to the log through the compaction.
    let graph = lineage.graph(&finpulse_lineage::DatasetId::new("file", dir.path().join("parquet").to_string_lossy()), 2).unwrap();
    let text = graph.to_json().to_string();
    assert!(
        text.contains("job:finpulse:compaction") && text.contains(&format!("dataset:file:{}", dir.path().join("wal").display())),
        "{text}"
    );
}
