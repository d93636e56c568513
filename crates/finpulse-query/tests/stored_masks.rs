//! Compacted files store each masked field's masked form beside it, and masked queries read
//! those columns instead of masking every value. Whatever a reader asks, the answer is the one
//! masking each value as it is read gives: over files that store the forms, over files compacted
//! before they were stored (which have no such columns), and over the log tail.

use datafusion::prelude::{ParquetReadOptions, SessionContext, col};
use finpulse_core::mask::Exposure;
use finpulse_core::{Event, Registry, Value};
use finpulse_log::columns::MASKED_FORM_PREFIX;
use finpulse_log::{EventStore, StoreOptions, StoreView};
use finpulse_query::{QueryOptions, run_sql};
use std::path::Path;

const T0_US: i64 = 1_780_000_000_000_000;

/// Values of every shape the masking handles, clear digits past what it shows included.
const CARDS: &[&str] = &["6222021234561234", "6222 0212 3456 1234 567", "62-22-0212-3456-1234", "622", "", "卡6222021234561234"];
const MOBILES: &[&str] = &["13812345678", "+86 138 1234 5678", "1381", ""];
const ID_NUMBERS: &[&str] = &["110101199003074258", "11010119900307", "X"];
const NAMES: &[&str] = &["张三", "欧阳小明", "李", "Ann Lee"];

fn event(r: &Registry, id: String, user: usize, ts_us: i64, ty: &str, fields: &[(&str, &str)]) -> Event {
    let mut fields: Vec<_> = fields.iter().map(|(n, v)| (r.field_id(n).unwrap(), Value::Str((*v).into()))).collect();
    if ty == "payment" {
        fields.push((r.field_id("amount_fen").unwrap(), Value::Int(100 + user as i64)));
        fields.push((r.field_id("currency").unwrap(), Value::Str("CNY".into())));
        fields.push((r.field_id("terminal_id").unwrap(), Value::Str("t1".into())));
    }
    fields.sort_by_key(|x| x.0);
    Event { event_id: id, user_id: Some(format!("u{user}")), ts_us, type_id: r.type_id(ty).unwrap(), fields }
}

/// One round of events: payments with cards, signups with mobiles, verifications with ID
/// numbers and names; ids start at `base`.
fn round(r: &Registry, base: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..24 {
        let ts = T0_US + (base + i) as i64 * 1_000_000;
        let n = base + i;
        events.push(event(r, format!("p{n:04}"), i % 5, ts, "payment", &[("card_number", CARDS[i % CARDS.len()])]));
        let mobile = MOBILES[i % MOBILES.len()];
        events.push(event(r, format!("s{n:04}"), i % 5, ts, "user_signup", &[("channel", "app"), ("mobile", mobile)]));
        let verified = [("id_number", ID_NUMBERS[i % ID_NUMBERS.len()]), ("real_name", NAMES[i % NAMES.len()])];
        events.push(event(r, format!("v{n:04}"), i % 5, ts, "identity_verified", &verified));
    }
    events
}

/// Rewrites a compacted file as a compaction before stored forms wrote it: without the
/// masked-form columns, and listed in the manifest without the flag.
async fn as_written_before_stored_forms(dir: &Path, file: &Path) {
    let ctx = SessionContext::new();
    let df = ctx.read_parquet(file.to_string_lossy().as_ref(), ParquetReadOptions::default()).await.unwrap();
    let kept: Vec<_> =
        df.schema().fields().iter().filter(|f| !f.name().starts_with(MASKED_FORM_PREFIX)).map(|f| col(f.name().as_str())).collect();
    assert!(kept.len() < df.schema().fields().len(), "the file stores masked forms");
    let batches = df.select(kept).unwrap().collect().await.unwrap();
    let out = std::fs::File::create(file).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, batches[0].schema(), None).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let name = file.strip_prefix(dir).unwrap().to_string_lossy().to_string();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == name.as_str() {
            f.as_object_mut().unwrap().remove("masked_forms").expect("the flag was written");
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

async fn rows(view: &StoreView, sql: &str, exposure: Exposure) -> Vec<String> {
    let opts = QueryOptions { exposure, ..Default::default() };
    let result = run_sql(view, sql, opts).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = arrow::util::pretty::pretty_format_batches(&result.batches).unwrap().to_string();
    text.lines().map(str::to_string).collect()
}

const QUERIES: &[&str] = &[
    "SELECT * FROM events ORDER BY event_id",
    "SELECT event_id, card_number FROM payment WHERE card_number LIKE '6222%' ORDER BY event_id",
    "SELECT event_id FROM payment WHERE card_number NOT LIKE '%1234' ORDER BY event_id",
    "SELECT card_number, count(*) FROM payment GROUP BY card_number ORDER BY card_number",
    "SELECT count(DISTINCT mobile), min(mobile), max(mobile) FROM user_signup",
    "SELECT id_number || '/' || real_name AS who FROM identity_verified ORDER BY who",
    "SELECT substr(id_number, 1, 6), length(id_number) FROM identity_verified ORDER BY 1, 2",
    "SELECT v.real_name, p.card_number FROM identity_verified v JOIN payment p ON v.user_id = p.user_id \
     WHERE p.card_number = '6222 **** **** 1234' ORDER BY v.event_id, p.event_id LIMIT 40",
    "SELECT event_id FROM events WHERE mobile = '138****5678' OR real_name = '张*' ORDER BY event_id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_answers_are_the_same_from_stored_forms_from_older_files_and_from_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let r = store.registry();
    // Three rounds: one compacted and then rewritten as an older build wrote it, one compacted
    // with stored forms, one left in the tail.
    store.append_groups(&[round(&r, 0)]).unwrap();
    store.compact().unwrap();
    let older: Vec<_> = EventStore::read_view(dir.path()).unwrap().files;
    store.append_groups(&[round(&r, 1000)]).unwrap();
    store.compact().unwrap();
    store.append_groups(&[round(&r, 2000)]).unwrap();
    drop(store);
    for file in &older {
        as_written_before_stored_forms(dir.path(), file).await;
    }
    let view = EventStore::read_view(dir.path()).unwrap();
    assert!(view.masked_forms.contains(&true) && view.masked_forms.contains(&false) && !view.tail.is_empty(), "every source is read");

    // The same view with every file masked as read: what the stored forms must reproduce.
    let mut computed = view.clone();
    computed.masked_forms = vec![false; view.files.len()];
    for sql in QUERIES {
        let stored = rows(&view, sql, Exposure::Masked).await;
        assert!(stored.len() > 4, "{sql} answers rows");
        assert_eq!(stored, rows(&computed, sql, Exposure::Masked).await, "{sql}");
        // In clear and internally the stored forms play no part.
        assert_eq!(rows(&view, sql, Exposure::Clear).await, rows(&computed, sql, Exposure::Clear).await, "{sql}");
    }
    let star = rows(&view, QUERIES[0], Exposure::Masked).await.join("\n");
    assert!(!star.contains(MASKED_FORM_PREFIX), "the stored forms are never columns of their own: {star}");
    assert!(!star.contains("6222021234561234") && !star.contains("13812345678") && !star.contains("110101199003074258"));
    assert!(star.contains("6222 **** **** 1234") && star.contains("138****5678") && star.contains("张*"), "{star}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_form_is_not_reachable_by_its_column_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let r = store.registry();
    store.append_groups(&[round(&r, 0)]).unwrap();
    store.compact().unwrap();
    let view = store.view_handle().snapshot();
    for exposure in [Exposure::Masked, Exposure::Clear] {
        let opts = QueryOptions { exposure, ..Default::default() };
        let Err(err) = run_sql(&view, "SELECT _masked_card_number FROM events", opts).await else {
            panic!("a stored form was reachable by its name");
        };
        assert!(err.to_string().contains("_masked_card_number"), "{err}");
    }
}
