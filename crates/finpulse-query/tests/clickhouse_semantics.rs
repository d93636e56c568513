//! Differential test: finpulse's behaviour functions against ClickHouse itself (embedded, from
//! the `chdb` package on PyPI) on randomised event sets with ties in time, rows meeting several
//! conditions, repeated steps, every funnel mode and a spread of sequence patterns.
//!
//! The reference Python comes from `tools/reference-python.sh`, which installs chdb on first use;
//! without it the test fails saying what is missing.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Schema, UInt8Type, UInt64Type};
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// This package's directory, asked at run time: a path baked in at compile time would point
/// into whichever checkout built the test binary when builds are cached across checkouts.
fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

/// A small deterministic generator (the test must not depend on the run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Users with up to 20 rows each, times with frequent ties, event kinds 0–4 and a property p in
/// 0–2, each row numbered in `_seq` by its place in the file (the order ClickHouse inserts them
/// in, as finpulse numbers events by their place in its log). Twenty, because ClickHouse's
/// sequence functions order rows tied in time by an unstable sort once a user has more than 20
/// rows meeting a condition (the order is then an artefact of its sort), and below that in
/// insertion order.
fn write_events(path: &Path, seed: u64) {
    let mut rng = Lcg(seed);
    let mut out = String::from("user,ts,e,p,_seq\n");
    let mut seq = 0u64;
    let mut row = |out: &mut String, user: u64, ts: u64, e: u64, p: u64| {
        out.push_str(&format!("{user},{ts},{e},{p},{seq}\n"));
        seq += 1;
    };
    for user in 0..600u64 {
        let rows = rng.below(20);
        let mut ts = 1_000 + rng.below(50);
        for _ in 0..rows {
            ts += [0, 0, 1, 1, 2, 3, 7][rng.below(7) as usize];
            let (e, p) = (rng.below(5), rng.below(3));
            row(&mut out, user, ts, e, p);
        }
        // Rows arrive out of time order for some users.
        if user % 7 == 0 && rows > 0 {
            row(&mut out, user, ts.saturating_sub(5), 1, 0);
        }
    }
    std::fs::write(path, out).unwrap();
}

const CONDITION_SETS: &[&[&str]] = &[
    &["e = 1", "e = 2", "e = 3"],
    &["e = 1", "e = 2 OR p = 0", "e = 3", "e IN (2, 3)"],
    &["e = 1"],
    &["e = 1", "e = 1", "e = 2"],
    &["p = 0", "p = 1", "p = 2", "e = 3", "e = 1"],
];

const MODES: &[&str] = &[
    "",
    "strict_order",
    "strict_deduplication",
    "strict_increase",
    "strict_once",
    "strict_order,allow_reentry",
    "strict_order,strict_deduplication",
    "strict_increase,strict_once",
    "strict_deduplication,strict_once",
    "strict_order,strict_once",
    "strict_order,strict_increase,strict_once,allow_reentry",
];

const PATTERNS: &[&str] = &[
    "(?1)(?2)",
    "(?1).*(?2)",
    "(?1)(?2)(?3)",
    "(?1).*(?2).*(?3)",
    "(?1).(?2)",
    "(?1)(?t<=3)(?2)",
    "(?1)(?t<3)(?2)",
    "(?1)(?t>=2)(?2)",
    "(?1)(?t>2)(?2)",
    "(?1)(?t==1)(?2)",
    "(?1)(?t>=0)(?2)",
    "(?1)(?t<=5)(?2)(?t>1)(?3)",
    "(?1).*",
    ".*(?2)",
    "(?2)(?1)",
    "(?1)(?1)",
    "(?1)(?t<=2).*(?3)",
    "(?1).*(?t>=3)(?3)",
    ".(?t<=1)(?2)",
    "(?3)(?t<=4)(?1)(?t<=4)(?2)",
];

/// One query in both dialects.
struct Case {
    clickhouse: String,
    finpulse: String,
}

fn cases(csv: &Path) -> Vec<Case> {
    let table = format!("file('{}', CSVWithNames, 'user UInt32, ts UInt32, e UInt8, p UInt8, _seq UInt64')", csv.display());
    let mut out = Vec::new();
    let mut push = |ch_call: String, fp_call: String| {
        out.push(Case {
            clickhouse: format!("SELECT user, {ch_call} AS v FROM {table} GROUP BY user ORDER BY user"),
            finpulse: format!("SELECT \"user\", {fp_call} AS v FROM events GROUP BY \"user\" ORDER BY \"user\""),
        });
    };
    for conditions in CONDITION_SETS {
        let conds = conditions.join(", ");
        for window in [0, 2, 5, 30] {
            for mode in MODES {
                let ch_params = std::iter::once(window.to_string())
                    .chain(mode.split(',').filter(|m| !m.is_empty()).map(|m| format!("'{m}'")))
                    .collect::<Vec<_>>()
                    .join(", ");
                push(format!("windowFunnel({ch_params})(ts, {conds})"), format!("window_funnel({window}, '{mode}', ts, {conds})"));
            }
        }
        if conditions.len() >= 2 {
            push(format!("retention({conds})"), format!("retention({conds})"));
        }
    }
    // The same funnel over DateTime / timestamp values: the window counts seconds.
    push(
        "windowFunnel(5, 'strict_increase')(toDateTime(ts), e = 1, e = 2, e = 3)".into(),
        "window_funnel(5, 'strict_increase', to_timestamp_seconds(ts), e = 1, e = 2, e = 3)".into(),
    );
    push(
        "windowFunnel(5)(toDateTime(ts), e = 1, e = 2, e = 3)".into(),
        "window_funnel(5, '', to_timestamp_micros(ts * 1000000), e = 1, e = 2, e = 3)".into(),
    );
    for conditions in [CONDITION_SETS[0], CONDITION_SETS[1], CONDITION_SETS[4]] {
        let conds = conditions.join(", ");
        for pattern in PATTERNS {
            push(format!("sequenceMatch('{pattern}')(ts, {conds})"), format!("sequence_match('{pattern}', ts, {conds})"));
            push(format!("sequenceCount('{pattern}')(ts, {conds})"), format!("sequence_count('{pattern}', ts, {conds})"));
        }
    }
    push(
        "sequenceCount('(?1)(?t<=3)(?2)')(toDateTime(ts), e = 1, e = 2)".into(),
        "sequence_count('(?1)(?t<=3)(?2)', to_timestamp_millis(ts * 1000), e = 1, e = 2)".into(),
    );
    out
}

fn reference_python() -> PathBuf {
    let script = package_dir().join("../../tools/reference-python.sh");
    let out = Command::new("bash").arg(&script).arg("chdb").output().expect("running tools/reference-python.sh");
    assert!(
        out.status.success(),
        "this test needs ClickHouse's `chdb` package from PyPI, installed by tools/reference-python.sh, which failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Query index → rows of (user, value), from ClickHouse.
fn clickhouse(cases: &[Case], dir: &Path) -> BTreeMap<usize, Vec<(u64, String)>> {
    let queries = dir.join("queries.sql");
    let mut f = std::fs::File::create(&queries).unwrap();
    for c in cases {
        writeln!(f, "{}", c.clickhouse).unwrap();
    }
    let script = package_dir().join("tests/clickhouse_reference.py");
    let out = Command::new(reference_python()).arg(script).arg(&queries).output().unwrap();
    assert!(out.status.success(), "chdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut results: BTreeMap<usize, Vec<(u64, String)>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, '\t');
        let i: usize = parts.next().unwrap().parse().unwrap();
        let user = parts.next().unwrap();
        let value = parts.next().unwrap();
        assert_ne!(user, "error", "ClickHouse rejected query {i} ({}): {value}", cases[i].clickhouse);
        results.entry(i).or_default().push((user.parse().unwrap(), value.to_string()));
    }
    results
}

async fn finpulse(cases: &[Case], csv: &Path, partitions: usize, batch_rows: usize) -> BTreeMap<usize, Vec<(u64, String)>> {
    let mut config = SessionConfig::new().with_target_partitions(partitions).with_batch_size(batch_rows).with_repartition_file_min_size(1);
    if partitions > 1 {
        // Give up partial aggregation at once, so rows also travel as states of their own.
        config = config
            .set_usize("datafusion.execution.skip_partial_aggregation_probe_rows_threshold", 1)
            .set_str("datafusion.execution.skip_partial_aggregation_probe_ratio_threshold", "0.0");
    }
    let ctx = SessionContext::new_with_config(config);
    finpulse_query::behaviour::register(&ctx).unwrap();
    let mut fields = ["user", "ts", "e", "p"].map(|n| Field::new(n, DataType::Int64, false)).to_vec();
    fields.push(Field::new("_seq", DataType::UInt64, false));
    let schema = Schema::new(fields);
    ctx.register_csv("events", csv.to_str().unwrap(), CsvReadOptions::new().schema(&schema)).await.unwrap();
    let mut results = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let batches = ctx
            .sql(&case.finpulse)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.finpulse))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.finpulse));
        let rows = result_rows(&batches);
        results.insert(i, rows);
    }
    results
}

/// (user, value as text) of a query's answer, whatever the value's type.
fn result_rows(batches: &[arrow::array::RecordBatch]) -> Vec<(u64, String)> {
    let mut rows = Vec::new();
    for b in batches {
        let users = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let values = b.column(1);
        for r in 0..b.num_rows() {
            let v = match values.data_type() {
                DataType::UInt8 => values.as_primitive::<UInt8Type>().value(r).to_string(),
                DataType::UInt64 => values.as_primitive::<UInt64Type>().value(r).to_string(),
                DataType::List(_) => {
                    let list = values.as_list::<i32>().value(r);
                    let items: Vec<String> = list.as_primitive::<UInt8Type>().values().iter().map(u8::to_string).collect();
                    format!("[{}]", items.join(","))
                }
                other => panic!("unexpected result type {other}"),
            };
            rows.push((users.value(r) as u64, v));
        }
    }
    rows
}

fn compare(
    cases: &[Case],
    reference: &BTreeMap<usize, Vec<(u64, String)>>,
    ours: &BTreeMap<usize, Vec<(u64, String)>>,
    label: &str,
) -> usize {
    let mut compared = 0;
    for (i, rows) in ours {
        let expected = &reference[i];
        assert_eq!(rows.len(), expected.len(), "{label}: row count of {}", cases[*i].finpulse);
        for (got, want) in rows.iter().zip(expected) {
            assert_eq!(
                got, want,
                "{label}: user {} differs\n  finpulse:   {}\n  ClickHouse: {}",
                want.0, cases[*i].finpulse, cases[*i].clickhouse
            );
        }
        compared += 1;
    }
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_functions_agree_with_clickhouse_on_random_event_sets() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for seed in [7, 2026] {
        let csv = dir.path().join(format!("events-{seed}.csv"));
        write_events(&csv, seed);
        let cases = cases(&csv);
        let reference = clickhouse(&cases, dir.path());
        assert_eq!(reference.len(), cases.len(), "ClickHouse answered every query");
        // One partition keeps rows in file order (what ClickHouse sees); several partitions and
        // small batches exercise partial states, their merge, and rows converted to states, and
        // reach ClickHouse's answers only because ties are ordered by `_seq`, not by arrival.
        total += compare(&cases, &reference, &finpulse(&cases, &csv, 1, 8192).await, "1 partition");
        total += compare(&cases, &reference, &finpulse(&cases, &csv, 4, 97).await, "4 partitions");
    }
    assert!(total > 500, "compared {total} queries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_rejected_naming_the_function_and_the_argument() {
    let ctx = SessionContext::new();
    finpulse_query::behaviour::register(&ctx).unwrap();
    ctx.sql("CREATE TABLE t (u BIGINT, ts BIGINT, e BIGINT) AS VALUES (1, 10, 1), (1, 11, 2)").await.unwrap().collect().await.unwrap();
    let error = |q: &'static str| {
        let ctx = ctx.clone();
        async move {
            match ctx.sql(q).await {
                Err(e) => e.to_string(),
                Ok(df) => df.collect().await.expect_err(q).to_string(),
            }
        }
    };
    let cases = [
        ("SELECT window_funnel(10, 'fast', ts, e = 1) FROM t", "window_funnel: mode: unknown option 'fast'"),
        ("SELECT window_funnel(-1, '', ts, e = 1) FROM t", "window_funnel: window must not be negative"),
        ("SELECT window_funnel(w, '', ts, e = 1) FROM (SELECT 10 AS w, ts, e FROM t)", "window_funnel: window must be a constant"),
        ("SELECT window_funnel(10, '', ts, e) FROM t", "window_funnel: condition 1 must be a boolean"),
        ("SELECT window_funnel(10, '', 'x', e = 1) FROM t", "window_funnel: ts must be a timestamp, date or integer"),
        ("SELECT retention(e = 1) FROM t", "retention: takes 2 to 32 conditions, got 1"),
        ("SELECT sequence_match('(?1)(?3)', ts, e = 1, e = 2) FROM t", "sequence_match: pattern: condition 3 does not exist"),
        ("SELECT sequence_count('(?1)x', ts, e = 1, e = 2) FROM t", "position 4"),
        ("SELECT sequence_match('(?1)(?t~1)(?2)', ts, e = 1, e = 2) FROM t", "unknown time comparison"),
        // An order key must be UInt64: a signed column there is a condition that is not boolean.
        ("SELECT sequence_match('(?1)(?2)', ts, e = 1, e = 2, ts) FROM t", "sequence_match: condition 3 must be a boolean"),
        // An order key alone is not a condition.
        ("SELECT window_funnel(10, '', ts, CAST(1 AS BIGINT UNSIGNED)) FROM t", "window_funnel: condition 1 must be a boolean"),
    ];
    for (q, expected) in cases {
        let got = error(q).await;
        assert!(got.contains(expected), "{q}\n  got: {got}\n  expected to contain: {expected}");
    }
    let many = (0..33).map(|i| format!("e = {i}")).collect::<Vec<_>>().join(", ");
    let q: &'static str = Box::leak(format!("SELECT window_funnel(10, '', ts, {many}) FROM t").into_boxed_str());
    assert!(error(q).await.contains("takes 1 to 32 conditions, got 33"));
}

/// Events of 300 users appended to a store in a shuffled order with many ties in time, over
/// several compactions (files of two days, each sorted by type, then user, then time) and a
/// tail: returns the store's view and a CSV of the same events in log order (`user,ts,e`, ts
/// in seconds), which is the order ClickHouse inserts them in.
fn store_with_ties(dir: &Path, csv: &Path) -> finpulse_log::StoreView {
    use finpulse_core::event::Event;
    use finpulse_core::registry::{CustomTypeDef, Scope};
    let mut store = finpulse_log::EventStore::open(&dir.join("data"), finpulse_log::StoreOptions::default()).unwrap();
    let types: Vec<_> = (0..5)
        .map(|e| {
            let def = CustomTypeDef { name: format!("e{e}"), doc: String::new(), scope: Scope::User, fields: Vec::new() };
            store.register_type(def).unwrap()
        })
        .collect();
    // Midnight UTC minus 40 s: a user's rows straddle two day files.
    let base_secs: u64 = 20_454 * 86_400 - 40;
    let mut rng = Lcg(29);
    let mut rows: Vec<(u64, u64, u64)> = Vec::new();
    for user in 0..300u64 {
        let mut ts = base_secs + rng.below(30);
        for _ in 0..rng.below(20) {
            ts += [0, 0, 0, 1, 2, 5][rng.below(6) as usize];
            rows.push((user, ts, rng.below(5)));
        }
    }
    for i in (1..rows.len()).rev() {
        rows.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut out = String::from("user,ts,e\n");
    for (n, chunk) in rows.chunks(400).enumerate() {
        let events: Vec<Event> = chunk
            .iter()
            .enumerate()
            .map(|(i, &(user, ts, e))| Event {
                event_id: format!("{n}-{i}"),
                user_id: Some(user.to_string()),
                ts_us: (ts * 1_000_000) as i64,
                type_id: types[e as usize],
                fields: Vec::new(),
            })
            .collect();
        store.append_groups(&[events]).unwrap();
        for &(user, ts, e) in chunk {
            out.push_str(&format!("{user},{ts},{e}\n"));
        }
        if n % 3 == 2 {
            store.compact().unwrap();
        }
    }
    std::fs::write(csv, out).unwrap();
    let view = store.view_handle().snapshot();
    assert!(view.files.len() >= 4 && !view.tail.is_empty(), "files {} and a tail of {} batches", view.files.len(), view.tail.len());
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_over_the_store_take_ties_in_the_order_events_were_accepted_as_clickhouse_does() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("log-order.csv");
    let view = store_with_ties(dir.path(), &csv);
    let table = format!("file('{}', CSVWithNames, 'user UInt32, ts UInt32, e UInt8')", csv.display());
    let ch_conds = "e = 1, e = 2, e = 3";
    let fp_conds = "type = 'e1', type = 'e2', type = 'e3'";
    let mut calls: Vec<(String, String)> = Vec::new();
    for pattern in PATTERNS {
        calls.push((
            format!("sequenceMatch('{pattern}')(toDateTime(ts), {ch_conds})"),
            format!("sequence_match('{pattern}', ts, {fp_conds})"),
        ));
        calls.push((
            format!("sequenceCount('{pattern}')(toDateTime(ts), {ch_conds})"),
            format!("sequence_count('{pattern}', ts, {fp_conds})"),
        ));
    }
    for mode in MODES {
        let ch_params = std::iter::once("5".to_string()).chain(mode.split(',').filter(|m| !m.is_empty()).map(|m| format!("'{m}'")));
        let ch_params = ch_params.collect::<Vec<_>>().join(", ");
        calls.push((
            format!("windowFunnel({ch_params})(toDateTime(ts), {ch_conds})"),
            format!("window_funnel(5, '{mode}', ts, {fp_conds})"),
        ));
    }
    let cases: Vec<Case> = calls
        .into_iter()
        .map(|(ch, fp)| Case {
            clickhouse: format!("SELECT user, {ch} AS v FROM {table} GROUP BY user ORDER BY user"),
            finpulse: format!("SELECT CAST(user_id AS BIGINT) AS u, {fp} AS v FROM events GROUP BY user_id ORDER BY u"),
        })
        .collect();
    let reference = clickhouse(&cases, dir.path());
    let mut differing = Vec::new();
    for partitions in [1, 4] {
        let opts = finpulse_query::QueryOptions { target_partitions: partitions, ..Default::default() };
        for (i, case) in cases.iter().enumerate() {
            let result = finpulse_query::run_sql(&view, &case.finpulse, opts).await.unwrap_or_else(|e| panic!("{}: {e}", case.finpulse));
            let got = result_rows(&result.batches);
            if got != reference[&i] {
                differing.push(format!("{partitions} partitions: {}", case.finpulse));
            }
        }
    }
    assert!(differing.is_empty(), "{} of {} queries differ from ClickHouse:\n{}", differing.len(), cases.len() * 2, differing.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_argument_orders_rows_tied_in_time_and_the_log_position_is_used_unasked() {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    finpulse_query::behaviour::register(&ctx).unwrap();
    // Both rows at ts 10, arriving as step 2 then step 1.
    let rows = "(1, 10, 2, CAST(1 AS BIGINT UNSIGNED), CAST(2 AS BIGINT UNSIGNED)), (1, 10, 1, CAST(2 AS BIGINT UNSIGNED), CAST(1 AS BIGINT UNSIGNED))";
    let create = format!("CREATE TABLE t (u BIGINT, ts BIGINT, e BIGINT, o BIGINT UNSIGNED, _seq BIGINT UNSIGNED) AS VALUES {rows}");
    ctx.sql(&create).await.unwrap().collect().await.unwrap();
    let answer = |q: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(q).await.unwrap().collect().await.unwrap();
            batches[0].column(0).as_primitive::<UInt8Type>().value(0)
        }
    };
    // Given: `o` puts step 2 first, so no step 1 → step 2.
    assert_eq!(answer("SELECT sequence_match('(?1)(?2)', ts, e = 1, e = 2, o) FROM t").await, 0);
    // Unasked: `_seq` puts step 1 first.
    assert_eq!(answer("SELECT sequence_match('(?1)(?2)', ts, e = 1, e = 2) FROM t").await, 1);
    // A subquery without `_seq`: arrival order.
    assert_eq!(answer("SELECT sequence_match('(?1)(?2)', ts, e = 1, e = 2) FROM (SELECT ts, e FROM t)").await, 0);
}
