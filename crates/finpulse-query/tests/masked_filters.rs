//! A `LIKE 'prefix%'` on a masked column is answered from the first characters of each masked
//! value, not by building every masked value: the rows it keeps are exactly those whose masked
//! form starts with the prefix, in the Parquet files (which store masked forms) and the log tail
//! alike, and nothing of the clear value beyond its masked form decides.

use finpulse_core::mask::{Exposure, MaskStyle};
use finpulse_core::{Event, Value};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_query::{QueryOptions, run_sql, text_values};

/// Card numbers of every shape the masking handles: plain, grouped, too short to show, long,
/// not digits at all.
const CARDS: &[&str] = &[
    "6222021234561234",
    "6222 0212 3456 1234 567",
    "6222-0212-3456-9999",
    "62-22-0212-3456-1234",
    "4000123412341234",
    "62220212345",
    "622",
    "",
    "卡6222021234561234",
    "abcdefghijklmnop",
];

fn payment(store: &EventStore, i: usize, card: &str) -> Event {
    let r = store.registry();
    let f = |n: &str| r.field_id(n).unwrap();
    let mut fields = vec![
        (f("amount_fen"), Value::Int(100 + i as i64)),
        (f("currency"), Value::Str("CNY".into())),
        (f("terminal_id"), Value::Str("t1".into())),
        (f("card_number"), Value::Str(card.into())),
    ];
    fields.sort_by_key(|x| x.0);
    Event {
        event_id: format!("p{i:03}"),
        user_id: Some(format!("u{}", i % 7)),
        ts_us: 1_780_000_000_000_000 + i as i64 * 1_000_000,
        type_id: r.type_id("payment").unwrap(),
        fields,
    }
}

async fn ids(view: &finpulse_log::StoreView, sql: &str) -> Vec<String> {
    let opts = QueryOptions { exposure: Exposure::Masked, ..Default::default() };
    let result = run_sql(view, sql, opts).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    result.batches.iter().flat_map(|b| text_values(b.column(0)).unwrap()).map(|v| v.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_filter_on_a_masked_column_keeps_exactly_the_rows_whose_masked_form_starts_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    // Every card twice: once compacted into Parquet (read as string views), once in the tail.
    let first: Vec<Event> = CARDS.iter().enumerate().map(|(i, c)| payment(&store, i, c)).collect();
    store.append_groups(&[first]).unwrap();
    store.compact().unwrap();
    let second: Vec<Event> = CARDS.iter().enumerate().map(|(i, c)| payment(&store, 100 + i, c)).collect();
    store.append_groups(&[second]).unwrap();
    let view = EventStore::read_view(dir.path()).unwrap();
    assert!(!view.files.is_empty() && !view.tail.is_empty(), "both halves are exercised");

    let masked = |i: usize| MaskStyle::Card.apply(CARDS[i % 100]);
    let all: Vec<usize> = (0..CARDS.len()).chain(100..100 + CARDS.len()).collect();
    for prefix in ["6222", "622", "6", "6222 ", "6222 *", "62220212", "4000", "**", "卡", "", "abc"] {
        for negated in [false, true] {
            let not = if negated { "NOT " } else { "" };
            let sql = format!("SELECT event_id FROM payment WHERE card_number {not}LIKE '{prefix}%' ORDER BY event_id");
            let expected: Vec<String> =
                all.iter().filter(|&&i| masked(i).starts_with(prefix) != negated).map(|i| format!("p{i:03}")).collect();
            assert_eq!(ids(&view, &sql).await, expected, "{sql}");
        }
    }
    // The clear digits past what the mask shows decide nothing.
    assert!(ids(&view, "SELECT event_id FROM payment WHERE card_number LIKE '62220212%'").await.is_empty());

    // The plan tests the prefix on the masked form without building it: on the tail's values
    // straight from the views, on the files' stored masked forms.
    let opts = QueryOptions { exposure: Exposure::Masked, ..Default::default() };
    let plan = run_sql(&view, "EXPLAIN SELECT count(*) FROM payment WHERE card_number LIKE '6222%'", opts).await.unwrap();
    let text: String = plan.batches.iter().flat_map(|b| text_values(b.column(1)).unwrap()).flatten().collect::<Vec<_>>().join("\n");
    assert!(text.contains("mask_card_starts_with(card_number"), "{text}");
    assert!(text.contains("_masked_card_number"), "{text}");
    assert!(!text.contains("mask_card(card_number"), "no masked value is built to be compared: {text}");
    // Patterns it does not cover still answer by the masked form.
    for pattern in ["%1234", "62_2%", "%***%"] {
        let sql = format!("SELECT event_id FROM payment WHERE card_number LIKE '{pattern}' ORDER BY event_id");
        let got = ids(&view, &sql).await;
        let like = |m: &str| match pattern {
            "%1234" => m.ends_with("1234"),
            "62_2%" => m.chars().count() >= 4 && m.starts_with("62") && m.chars().nth(3) == Some('2'),
            _ => m.contains("***"),
        };
        let expected: Vec<String> = all.iter().filter(|&&i| like(&masked(i))).map(|i| format!("p{i:03}")).collect();
        assert_eq!(got, expected, "{sql}");
    }
}
