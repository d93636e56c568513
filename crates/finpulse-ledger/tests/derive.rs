//! Derivation from events: the simulated app's revenue and costs become transactions whose
//! totals by stream and day equal, exactly, the sums over the events they came from (counted
//! here from the events themselves, not through SQL); deriving again posts nothing.

use finpulse_core::event::{Event, Value};
use finpulse_core::registry::Registry;
use finpulse_ledger::derive::{self, DeriveOptions};
use finpulse_ledger::period::{Period, day_of};
use finpulse_ledger::report::{self, Dimension, ReportRequest, View};
use finpulse_ledger::{Ledger, Stream};
use finpulse_log::{EventStore, StoreOptions};
use finpulse_sim::{SimConfig, Simulator};
use std::collections::{BTreeMap, HashSet};

/// 2026-01-01 in days since 1970-01-01.
const START_DAY: i64 = 20_454;

fn simulate(store: &mut EventStore, users: u32, days: u32) -> Vec<Event> {
    let registry = store.registry();
    let mut sim = Simulator::new(SimConfig { users, days, seed: 7, start_day: START_DAY }, &registry);
    let mut all = Vec::new();
    let mut day = 0;
    while let Some(events) = sim.next_day() {
        store.append_groups(std::slice::from_ref(&events)).unwrap();
        all.extend(events);
        day += 1;
        // Half the history compacted to Parquet, half left in the tail: both are read.
        if day == days / 2 {
            store.compact().unwrap();
        }
    }
    all
}

fn text<'a>(r: &Registry, e: &'a Event, field: &str) -> Option<&'a str> {
    match e.get(r.field_id(field)?) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn int(r: &Registry, e: &Event, field: &str) -> Option<i64> {
    match e.get(r.field_id(field)?) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

/// Revenue by (stream, business day) and costs by business day, from the events alone.
fn expected(r: &Registry, events: &[Event]) -> (BTreeMap<(String, i64), i128>, BTreeMap<i64, i128>) {
    let revenue_type = r.type_id("revenue").unwrap();
    let spend_type = r.type_id("marketing_spend").unwrap();
    let fee_sources: HashSet<&str> = events
        .iter()
        .filter(|e| e.type_id == revenue_type && text(r, e, "stream") == Some("fees"))
        .filter_map(|e| text(r, e, "source_event_id"))
        .collect();
    let (mut revenue, mut cost) = (BTreeMap::new(), BTreeMap::new());
    for e in events {
        let day = day_of(e.ts_us);
        if e.type_id == revenue_type {
            let key = (text(r, e, "stream").unwrap().to_string(), day);
            *revenue.entry(key).or_insert(0) += i128::from(int(r, e, "amount_fen").unwrap());
        } else if let Some(fee) = int(r, e, "fee_fen").filter(|f| *f > 0 && !fee_sources.contains(e.event_id.as_str())) {
            *revenue.entry(("fees".to_string(), day)).or_insert(0) += i128::from(fee);
        }
        if e.type_id == spend_type {
            *cost.entry(day).or_insert(0) += i128::from(int(r, e, "amount_fen").unwrap());
        }
        if let Some(reward) = int(r, e, "reward_fen").filter(|v| *v > 0) {
            *cost.entry(day).or_insert(0) += i128::from(reward);
        }
    }
    revenue.retain(|_, v| *v != 0);
    (revenue, cost)
}

fn by_stream_and_day(ledger: &Ledger, view: View) -> (BTreeMap<(String, i64), i128>, BTreeMap<i64, i128>) {
    let req = ReportRequest { view, period: Period::Day, by: vec![Dimension::Stream], from_day: None, to_day: None };
    let (mut revenue, mut cost) = (BTreeMap::new(), BTreeMap::new());
    for row in report::report(&ledger.read(), &req).unwrap() {
        if row.revenue_minor != 0 {
            *revenue.entry((row.keys[0].clone().unwrap(), row.period_start_day)).or_insert(0) += row.revenue_minor;
        }
        if row.cost_minor != 0 {
            *cost.entry(row.period_start_day).or_insert(0) += row.cost_minor;
        }
    }
    (revenue, cost)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn ledger_totals_by_stream_and_day_reconcile_exactly_with_the_events() {
    let data = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(data.path(), StoreOptions::default()).unwrap();
    let events = simulate(&mut store, 1_500, 75);
    let registry = store.registry();
    let view = store.view_handle().snapshot();
    let ledger = Ledger::open(finpulse_ledger::ledger_dir(data.path())).unwrap();
    let end_us = events.iter().map(|e| e.ts_us).max().unwrap();
    let rt = runtime();

    let derived = rt.block_on(derive::derive(&view, &DeriveOptions::standard(end_us))).unwrap();
    assert_eq!(derived.skipped_count, 0, "{:?}", derived.skipped);
    let summary = derive::post(&ledger, derived).unwrap();
    assert!(summary.posted > 1_000, "{summary:?}");

    let (want_revenue, want_cost) = expected(&registry, &events);
    let (got_revenue, got_cost) = by_stream_and_day(&ledger, View::Accrual);
    let streams: HashSet<&str> = want_revenue.keys().map(|(s, _)| s.as_str()).collect();
    assert_eq!(streams.len(), Stream::ALL.len(), "the demo books every stream: {streams:?}");
    assert_eq!(got_revenue, want_revenue);
    assert_eq!(got_cost, want_cost);

    // Deriving again (a replay) posts nothing and changes nothing.
    let again = rt.block_on(derive::derive(&view, &DeriveOptions::standard(end_us))).unwrap();
    let summary2 = derive::post(&ledger, again).unwrap();
    assert_eq!((summary2.posted, summary2.already_posted), (0, summary.posted));
    assert_eq!(by_stream_and_day(&ledger, View::Accrual).0, want_revenue);
}

#[test]
fn cash_lags_accrual_for_partner_streams_until_they_settle() {
    let data = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(data.path(), StoreOptions::default()).unwrap();
    let events = simulate(&mut store, 800, 45);
    let view = store.view_handle().snapshot();
    let ledger = Ledger::open(finpulse_ledger::ledger_dir(data.path())).unwrap();
    let end_us = events.iter().map(|e| e.ts_us).max().unwrap();
    let rt = runtime();
    derive::post(&ledger, rt.block_on(derive::derive(&view, &DeriveOptions::standard(end_us))).unwrap()).unwrap();

    let total = |view: View, stream: &str| -> i128 {
        by_stream_and_day(&ledger, view).0.iter().filter(|((s, _), _)| s == stream).map(|(_, v)| v).sum()
    };
    // Settled at once: cash equals accrual.
    assert_eq!(total(View::Cash, "interest"), total(View::Accrual, "interest"));
    assert_eq!(total(View::Cash, "fees"), total(View::Accrual, "fees"));
    // Partners settle on the 10th of the next month: February's commissions are still owed.
    let (accrued, received) = (total(View::Accrual, "scenario_finance"), total(View::Cash, "scenario_finance"));
    assert!(received > 0 && received < accrued, "received {received} of {accrued}");

    // A later as-of settles everything; the recognitions are not posted again.
    let later = end_us + 60 * 86_400 * 1_000_000;
    let summary = derive::post(&ledger, rt.block_on(derive::derive(&view, &DeriveOptions::standard(later))).unwrap()).unwrap();
    assert!(summary.posted > 0 && summary.already_posted > 0);
    for s in Stream::ALL {
        assert_eq!(total(View::Cash, s.name()), total(View::Accrual, s.name()), "{s}");
    }
    let state = ledger.read();
    let receivable: i128 = finpulse_ledger::report::balances(&state, None)
        .iter()
        .filter(|b| b.account.kind == finpulse_ledger::AccountKind::Receivable)
        .map(|b| b.balance_minor)
        .sum();
    assert_eq!(receivable, 0);
}

#[test]
fn derived_revenue_carries_scenario_product_partner_and_channel_and_sql_sees_it() {
    let data = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(data.path(), StoreOptions::default()).unwrap();
    let events = simulate(&mut store, 800, 40);
    let view = store.view_handle().snapshot();
    let ledger = Ledger::open(finpulse_ledger::ledger_dir(data.path())).unwrap();
    let end_us = events.iter().map(|e| e.ts_us).max().unwrap();
    let rt = runtime();
    derive::post(&ledger, rt.block_on(derive::derive(&view, &DeriveOptions::standard(end_us))).unwrap()).unwrap();
    let mut by_report: BTreeMap<String, i128> = BTreeMap::new();
    for ((s, _), v) in by_stream_and_day(&ledger, View::Accrual).0 {
        *by_report.entry(s).or_insert(0) += v;
    }
    let state = ledger.read();
    let revenue_legs =
        || state.transactions().iter().flat_map(|t| &t.postings).filter(|p| p.account.kind == finpulse_ledger::AccountKind::Revenue);
    let scenario_legs: Vec<_> = revenue_legs().filter(|p| p.account.stream == Some(Stream::ScenarioFinance)).collect();
    assert!(!scenario_legs.is_empty() && scenario_legs.iter().all(|p| p.account.scenario.is_some()));
    assert!(scenario_legs.iter().all(|p| p.account.channel.is_some()), "every user signed up through a channel");
    let api_legs: Vec<_> = revenue_legs().filter(|p| p.account.stream == Some(Stream::ApiEcosystem)).collect();
    assert!(!api_legs.is_empty() && api_legs.iter().all(|p| p.account.partner.is_some()));
    let interest_legs: Vec<_> = revenue_legs().filter(|p| p.account.stream == Some(Stream::Interest)).collect();
    assert!(!interest_legs.is_empty() && interest_legs.iter().all(|p| p.account.product.is_some()), "a loan's product");

    // SQL over the same postings gives the same revenue by stream.
    let ctx = datafusion::prelude::SessionContext::new();
    finpulse_ledger::sql::register(&ctx, &state).unwrap();
    let sql = "SELECT stream, CAST(-sum(amount_minor) AS BIGINT) AS revenue FROM ledger WHERE account = 'revenue' GROUP BY stream";
    let batches = rt.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() });
    let mut by_sql = BTreeMap::new();
    for b in &batches {
        let streams = finpulse_query::text_values(b.column(0).as_ref()).unwrap();
        let sums = b.column(1).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
        for (i, s) in streams.into_iter().enumerate() {
            by_sql.insert(s.unwrap(), i128::from(sums.value(i)));
        }
    }
    assert_eq!(by_sql, by_report);
}

/// An event of `type_name` with `fields` (names and values), for crafted stores.
fn event(r: &Registry, id: &str, user: Option<&str>, ts_us: i64, type_name: &str, fields: &[(&str, Value)]) -> Event {
    let mut fields: Vec<_> = fields.iter().map(|(n, v)| (r.field_id(n).unwrap(), v.clone())).collect();
    fields.sort_by_key(|(f, _)| *f);
    Event { event_id: id.into(), user_id: user.map(String::from), ts_us, type_id: r.type_id(type_name).unwrap(), fields }
}

#[test]
fn a_fee_is_booked_once_and_events_that_cannot_be_booked_are_named() {
    let data = tempfile::tempdir().unwrap();
    let mut store = EventStore::open(data.path(), StoreOptions::default()).unwrap();
    let r = store.registry();
    let ts = finpulse_core::time::parse_rfc3339_us("2026-03-05T10:00:00+08:00").unwrap();
    let s = |v: &str| Value::Str(v.into());
    let events = vec![
        event(&r, "u1-signup", Some("u1"), ts - 1, "user_signup", &[("channel", s("huawei_store"))]),
        // A fee with its own revenue event: booked from the revenue event only.
        event(
            &r,
            "w1",
            Some("u1"),
            ts,
            "withdrawal",
            &[("amount_fen", Value::Int(10_000)), ("currency", s("CNY")), ("fee_fen", Value::Int(100))],
        ),
        event(
            &r,
            "r1",
            Some("u1"),
            ts,
            "revenue",
            &[("stream", s("fees")), ("amount_fen", Value::Int(100)), ("currency", s("CNY")), ("source_event_id", s("w1"))],
        ),
        // A fee with none: booked from the fee.
        event(
            &r,
            "w2",
            Some("u1"),
            ts,
            "withdrawal",
            &[("amount_fen", Value::Int(20_000)), ("currency", s("CNY")), ("fee_fen", Value::Int(200))],
        ),
        // Cannot be booked: no such stream; a reward without a currency.
        event(&r, "r2", None, ts, "revenue", &[("stream", s("royalties")), ("amount_fen", Value::Int(5)), ("currency", s("CNY"))]),
        event(&r, "t1", Some("u1"), ts, "task_completed", &[("task", s("bind_card")), ("reward_fen", Value::Int(800))]),
    ];
    store.append_groups(&[events]).unwrap();
    let ledger = Ledger::open(finpulse_ledger::ledger_dir(data.path())).unwrap();
    let derived = runtime().block_on(derive::derive(&store.view_handle().snapshot(), &DeriveOptions::standard(ts))).unwrap();
    let skipped: Vec<(&str, &str)> = derived.skipped.iter().map(|s| (s.event_id.as_str(), s.why.split(':').next().unwrap())).collect();
    assert_eq!(skipped, vec![("r2", "stream"), ("t1", "currency")]);
    let ids: Vec<&str> = derived.transactions.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["fee:w2", "rev:r1"]);
    derive::post(&ledger, derived).unwrap();
    let (revenue, _) = by_stream_and_day(&ledger, View::Accrual);
    assert_eq!(revenue.values().sum::<i128>(), 300);
    let state = ledger.read();
    assert_eq!(state.get("fee:w2").unwrap().postings[1].account.channel.as_deref(), Some("huawei_store"));
}
