//! Insights over a small hand-made history whose answers are known, and bad requests named.
//!
//! Week of Monday 2026-01-05 (UTC):
//! - u1 (douyin) signs up Mon 10:00, verifies identity at 11:00, binds a card Tue, deposits Wed;
//!   sessions Tue and the next Monday (2026-01-12); 5,000 fen revenue three days after signup.
//! - u2 (wechat) signs up Mon 10:00, verifies identity Thu; a session Tue; 1,000 fen revenue day 10.
//! - u3 (douyin) signs up Tue 10:00, deposits nine days later (outside a 7-day window).
//! - u4 (wechat) signs up Mon 2026-01-12, a session on 2026-01-19.
//!
//! Spend: douyin 3,000 fen and wechat 2,000 fen on 01-05, wechat 1,000 fen on 01-12.

use finpulse_core::{RawRecord, RawValue, ValidationLimits};
use finpulse_growth::segments::{self, SegmentBook, SegmentDef};
use finpulse_growth::{InsightError, Table, run_json};
use finpulse_log::{EventStore, StoreOptions, StoreView};
use serde_json::{Value, json};

use finpulse_core::time::MICROS_PER_DAY as DAY_US;
const HOUR_US: i64 = 3_600_000_000;
/// 2026-01-05T00:00:00Z, a Monday.
const MONDAY_US: i64 = 1_767_571_200_000_000;

fn at(day: i64, hour: i64) -> i64 {
    MONDAY_US + day * DAY_US + hour * HOUR_US
}

fn history(dir: &std::path::Path) -> StoreView {
    let mut store = EventStore::open(dir, StoreOptions::default()).unwrap();
    let registry = store.registry();
    let mut n = 0;
    let mut events = Vec::new();
    let mut add = |user: Option<&str>, ts: i64, kind: &str, fields: &[(&str, RawValue)]| {
        n += 1;
        let mut r = RawRecord::default()
            .with("event_id", RawValue::Str(format!("e{n}")))
            .with("ts", RawValue::Micros(ts))
            .with("type", RawValue::Str(kind.into()));
        if let Some(u) = user {
            r = r.with("user_id", RawValue::Str(u.into()));
        }
        for (k, v) in fields {
            r = r.with(k, v.clone());
        }
        events.push(registry.validate(&r, &ValidationLimits::default()).unwrap());
    };
    let s = |v: &str| RawValue::Str(v.into());
    let task = |t: &str| vec![("task", RawValue::Str(t.into()))];
    let session = vec![("session_secs", RawValue::Int(100))];
    let money = |fen: i64| vec![("amount_fen", RawValue::Int(fen)), ("currency", RawValue::Str("CNY".into()))];
    add(Some("u1"), at(0, 10), "user_signup", &[("channel", s("douyin"))]);
    add(Some("u1"), at(0, 11), "task_completed", &task("verify_identity"));
    add(Some("u1"), at(1, 10), "task_completed", &task("bind_card"));
    add(Some("u1"), at(1, 12), "app_session", &session);
    add(Some("u1"), at(2, 10), "deposit", &money(10_000));
    add(Some("u1"), at(7, 10), "app_session", &session);
    let mut revenue = money(5_000);
    revenue.push(("stream", s("fees")));
    add(Some("u1"), at(3, 10), "revenue", &revenue);
    add(Some("u2"), at(0, 10), "user_signup", &[("channel", s("wechat"))]);
    add(Some("u2"), at(1, 9), "app_session", &session);
    add(Some("u2"), at(3, 10), "task_completed", &task("verify_identity"));
    let mut revenue = money(1_000);
    revenue.push(("stream", s("fees")));
    add(Some("u2"), at(10, 10), "revenue", &revenue);
    add(Some("u3"), at(1, 10), "user_signup", &[("channel", s("douyin"))]);
    add(Some("u3"), at(10, 10), "deposit", &money(20_000));
    add(Some("u4"), at(7, 10), "user_signup", &[("channel", s("wechat"))]);
    add(Some("u4"), at(14, 10), "app_session", &session);
    for (day, channel, fen) in [(0, "douyin", 3_000), (0, "wechat", 2_000), (7, "wechat", 1_000)] {
        let mut spend = money(fen);
        spend.push(("channel", s(channel)));
        add(None, at(day, 0), "marketing_spend", &spend);
    }
    store.append_groups(&[events]).unwrap();
    store.view_handle().snapshot()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

fn ask(view: &StoreView, kind: &str, body: Value) -> Result<Table, InsightError> {
    block_on(run_json(view, &SegmentBook::empty(), kind, body))
}

fn column(t: &Table, name: &str) -> Vec<Value> {
    let i = t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {:?}", t.columns));
    t.rows.iter().map(|r| r[i].clone()).collect()
}

#[test]
fn a_funnel_counts_users_per_step_inside_the_window_and_lists_who_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let steps = json!(["user_signup", "task_completed:task=verify_identity", "deposit"]);
    let t = ask(&view, "funnel", json!({ "steps": steps, "window": "7d" })).unwrap();
    assert_eq!(column(&t, "users"), [json!(4), json!(2), json!(1)]);
    assert_eq!(column(&t, "dropped"), [json!(0), json!(2), json!(1)]);
    assert_eq!(column(&t, "conversion")[2], json!(0.25));
    // Verified 1 h (u1) and 72 h (u2) after signing up; u1 deposited 47 h after verifying.
    assert_eq!(column(&t, "median_secs_from_previous")[1..], [json!(36.5 * 3600.0), json!(47.0 * 3600.0)]);
    let dropped = ask(&view, "funnel", json!({ "steps": steps, "dropped_at": 2 })).unwrap();
    assert_eq!(column(&dropped, "user_id"), [json!("u3"), json!("u4")]);
    let by_channel = ask(&view, "funnel", json!({ "steps": steps, "breakdown": "user.channel" })).unwrap();
    assert_eq!(column(&by_channel, "breakdown"), ["douyin", "douyin", "douyin", "wechat", "wechat", "wechat"].map(|c| json!(c)));
    assert_eq!(column(&by_channel, "users"), [2, 1, 1, 2, 1, 0].map(|n| json!(n)));
    // Strict order: u1's task between signup and deposit breaks a signup → deposit funnel.
    let strict = ask(&view, "funnel", json!({ "steps": ["user_signup", "deposit"], "mode": "strict_order" })).unwrap();
    assert_eq!(column(&strict, "users"), [json!(4), json!(0)]);
    let loose = ask(&view, "funnel", json!({ "steps": ["user_signup", "deposit"] })).unwrap();
    assert_eq!(column(&loose, "users"), [json!(4), json!(1)]);
}

#[test]
fn retention_follows_weekly_cohorts_and_leaves_unreached_periods_empty() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let body = json!({ "return_event": "app_session", "period": "week", "periods": 2 });
    let t = ask(&view, "retention", body.clone()).unwrap();
    assert_eq!(column(&t, "cohort"), [json!("2026-01-05"), json!("2026-01-12")]);
    assert_eq!(column(&t, "users"), [json!(3), json!(1)]);
    assert_eq!(t.rows[0][2..], [json!(2.0 / 3.0), json!(1.0 / 3.0), json!(0.0)]);
    // The data ends on 2026-01-19: the second cohort's week 2 (from 01-26) is not known yet.
    assert_eq!(t.rows[1][2..], [json!(0.0), json!(1.0), Value::Null]);
    let mut cell = body.clone();
    cell["cohort"] = json!("2026-01-05");
    cell["period_index"] = json!(1);
    assert_eq!(column(&ask(&view, "retention", cell).unwrap(), "user_id"), [json!("u1")]);
    let mut unbounded = body;
    unbounded["unbounded"] = json!(true);
    unbounded["counts"] = json!(true);
    let u = ask(&view, "retention", unbounded).unwrap();
    assert_eq!(u.rows[1][2..], [json!(1), json!(1), Value::Null], "u4 came back in week 1, so also 'on or after' week 0");
}

#[test]
fn trends_lifecycle_activation_and_acquisition_answer_from_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let trends = ask(&view, "trends", json!({ "event": "user_signup", "interval": "week" })).unwrap();
    assert_eq!(trends.rows, vec![vec![json!("2026-01-05"), json!(3)], vec![json!("2026-01-12"), json!(1)]]);
    let sums = ask(&view, "trends", json!({ "event": "deposit", "measure": "sum:amount_fen", "interval": "month" })).unwrap();
    assert_eq!(sums.rows, vec![vec![json!("2026-01-01"), json!(30_000)]]);

    let lc = ask(&view, "lifecycle", json!({ "event": "app_session", "interval": "week" })).unwrap();
    assert_eq!(column(&lc, "period"), ["2026-01-05", "2026-01-12", "2026-01-19"].map(|p| json!(p)));
    assert_eq!(column(&lc, "new"), [2, 0, 1].map(|n| json!(n)));
    assert_eq!(column(&lc, "returning"), [0, 1, 0].map(|n| json!(n)));
    assert_eq!(column(&lc, "dormant"), [0, -1, -1].map(|n| json!(n)));
    assert_eq!(column(&lc, "usage_secs_per_active_user"), [100.0, 100.0, 100.0].map(|n| json!(n)));
    let by_channel = ask(&view, "lifecycle", json!({ "event": "app_session", "breakdown": "user.channel" })).unwrap();
    let rows: Vec<(String, String, i64, i64, i64)> = by_channel
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().into(),
                r[1].as_str().unwrap().into(),
                r[2].as_i64().unwrap(),
                r[3].as_i64().unwrap(),
                r[5].as_i64().unwrap(),
            )
        })
        .collect();
    let row = |g: &str, p: &str, new: i64, returning: i64, dormant: i64| (g.to_string(), p.to_string(), new, returning, dormant);
    assert_eq!(
        rows,
        [
            row("douyin", "2026-01-05", 1, 0, 0),
            row("douyin", "2026-01-12", 0, 1, 0),
            row("douyin", "2026-01-19", 0, 0, -1),
            row("wechat", "2026-01-05", 1, 0, 0),
            row("wechat", "2026-01-12", 0, 0, -1),
            row("wechat", "2026-01-19", 1, 0, 0),
        ]
    );

    let act = ask(&view, "activation", json!({})).unwrap();
    assert_eq!(column(&act, "breakdown"), [json!("douyin"), json!("wechat")]);
    assert_eq!(column(&act, "signups"), [json!(2), json!(2)]);
    assert_eq!(column(&act, "verify_identity"), [json!(0.5), json!(0.5)]);
    assert_eq!(column(&act, "bind_card"), [json!(0.5), json!(0.0)]);
    assert_eq!(column(&act, "next_day_active"), [json!(0.5), json!(0.5)]);

    let acq = ask(&view, "acquisition", json!({ "period": "week" })).unwrap();
    let row = |period: &str, channel: &str| {
        acq.rows
            .iter()
            .find(|r| r[0] == json!(period) && r[1] == json!(channel))
            .unwrap_or_else(|| panic!("{period} {channel}: {acq:?}"))
            .clone()
    };
    assert_eq!(row("2026-01-05", "douyin")[2..5], [json!(2), json!(3000), json!(1500.0)]);
    assert_eq!(row("2026-01-12", "wechat")[2..5], [json!(1), json!(1000), json!(1000.0)]);
    // douyin: CAC 1,500 fen per user; u1's 5,000 fen on day 3 is 2,500 per user: paid back on day 3.
    assert_eq!(row("total", "douyin")[8], json!(3));
    // wechat: CAC 1,500; 1,000 fen over two users never covers it.
    assert_eq!(row("total", "wechat")[8], Value::Null);
    // Per week too: u1 alone pays back the week's douyin CAC on day 3.
    assert_eq!(row("2026-01-05", "douyin")[8], json!(3));
    // Two buyers are too few to fit LTV models: the predicted columns are empty, and say why.
    assert_eq!(column(&acq, "ltv_fen"), vec![Value::Null; acq.rows.len()]);
    assert_eq!(column(&acq, "payback_days_projected"), vec![Value::Null; acq.rows.len()]);
    assert!(acq.notes.iter().any(|n| n.starts_with("no LTV:") && n.contains("at least 30")), "{:?}", acq.notes);
}

#[test]
fn bad_requests_name_the_parameter_and_an_empty_range_is_an_empty_answer() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let param = |kind: &str, body: Value| match ask(&view, kind, body) {
        Err(InsightError::Param { param, message }) => format!("{param}: {message}"),
        other => panic!("expected a parameter error, got {other:?}"),
    };
    assert!(param("funnel", json!({ "steps": ["user_signup", "no_such_event"] })).starts_with("steps: unknown event type 'no_such_event'"));
    let many: Vec<&str> = vec!["user_signup"; 33];
    assert!(param("funnel", json!({ "steps": many })).starts_with("steps: at most 32 steps"));
    assert!(param("funnel", json!({ "steps": ["user_signup"], "window": "0" })).starts_with("window:"));
    assert!(param("funnel", json!({ "steps": ["user_signup"], "window": "-5" })).starts_with("window:"));
    assert!(param("funnel", json!({ "steps": ["user_signup"], "mode": "fast" })).starts_with("mode:"));
    assert!(
        param("funnel", json!({ "steps": ["user_signup"], "breakdown": "user.colour" })).starts_with("breakdown: unknown user property")
    );
    assert!(
        param("funnel", json!({ "steps": ["user_signup"], "filters": ["amount_fen > lots"] }))
            .starts_with("filters: amount_fen is a number")
    );
    assert!(
        param("funnel", json!({ "steps": ["user_signup"], "filters": ["amount_fen > inf"] }))
            .starts_with("filters: amount_fen is a number")
    );
    let big = ask(&view, "trends", json!({ "event": "deposit", "filters": ["amount_fen >= 1.5e4"] })).unwrap();
    assert_eq!(big.rows.iter().map(|r| r[1].as_i64().unwrap()).sum::<i64>(), 1, "only u3's 20,000 fen deposit");
    assert!(param("funnel", json!({ "steps": ["user_signup"], "stepz": 1 })).contains("stepz"));
    assert!(param("retention", json!({ "from": "2026-02-01", "to": "2026-01-01" })).starts_with("to:"));
    assert!(param("retention", json!({ "period": "fortnight" })).starts_with("period:"));
    assert!(param("trends", json!({ "measure": "sum:channel" })).starts_with("measure: channel is not numeric"));
    assert!(param("insights", json!({})).starts_with("kind: unknown insight"));
    assert!(param("trends", json!({ "from": 20260101 })).starts_with("from: invalid type"));
    assert!(param("trends", json!({ "filters": "user.channel = douyin" })).starts_with("filters: invalid type"));
    assert!(param("trends", json!(["not", "an", "object"])).starts_with("body:"));
    let empty = ask(&view, "funnel", json!({ "steps": ["user_signup", "deposit"], "from": "2030-01-01", "to": "2030-01-31" })).unwrap();
    assert!(empty.rows.is_empty());
    let empty = ask(&view, "retention", json!({ "from": "2030-01-01" })).unwrap();
    assert!(empty.rows.is_empty());
}

#[test]
fn segments_select_users_by_behaviour_and_properties_and_filter_insights() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let mut book = SegmentBook::load(dir.path()).unwrap();
    let def = |name: &str, rules: &[&str]| SegmentDef {
        name: name.into(),
        description: String::new(),
        rules: rules.iter().map(|r| r.to_string()).collect(),
    };
    let active_wechat = book.save(def("active_wechat", &["user.channel = wechat", "did app_session >= 1 in 7d"]), &view.registry).unwrap();
    let douyin_no_deposit = book.save(def("douyin_no_deposit", &["user.channel = douyin", "not deposit"]), &view.registry).unwrap();
    let sessions = book.save(def("sessions", &["did app_session"]), &view.registry).unwrap();
    let members = |s: &segments::Segment, as_of: Option<i64>| {
        block_on(async {
            let ctx = finpulse_growth::session(&view).await.unwrap();
            let as_of = match as_of {
                Some(t) => t,
                None => segments::default_as_of_us(&ctx).await.unwrap(),
            };
            segments::members(&ctx, s, as_of).await.unwrap()
        })
    };
    // As of the end (just after u4's session on 01-19 10:00), u1's session of 01-12 10:00 is
    // exactly seven days old: outside "in 7d".
    assert_eq!(members(&active_wechat, None), ["u4"]);
    assert!(members(&douyin_no_deposit, None).is_empty());
    // On 01-07 at midnight neither douyin user had deposited yet (u1 did at 10:00).
    assert_eq!(members(&douyin_no_deposit, Some(at(2, 0))), ["u1", "u3"]);
    assert_eq!(members(&sessions, Some(at(5, 0))), ["u1", "u2"]);

    // Saved, reloaded, materialised, and used as a filter.
    let book = SegmentBook::load(dir.path()).unwrap();
    assert_eq!(book.defs().len(), 3);
    let states = block_on(segments::materialise_all(&view, &book)).unwrap();
    assert_eq!(
        states.iter().map(|(n, s)| (n.as_str(), s.members)).collect::<Vec<_>>(),
        [("active_wechat", 1), ("douyin_no_deposit", 0), ("sessions", 3)]
    );
    assert_eq!(book.materialised_members("sessions").unwrap(), ["u1", "u2", "u4"]);
    let t =
        block_on(run_json(&view, &book, "funnel", json!({ "steps": ["user_signup"], "filters": ["segment = active_wechat"] }))).unwrap();
    assert_eq!(column(&t, "users"), [json!(1)]);
    let t =
        block_on(run_json(&view, &book, "funnel", json!({ "steps": ["user_signup"], "filters": ["segment != active_wechat"] }))).unwrap();
    assert_eq!(column(&t, "users"), [json!(3)]);

    // Bad definitions and references are named.
    let mut book = book;
    let err = |d: SegmentDef, book: &mut SegmentBook| book.save(d, &view.registry).unwrap_err().to_string();
    assert!(err(def("x", &["did no_such_event"]), &mut book).starts_with("rules[0]: unknown event type"));
    assert!(err(def("x", &["did deposit", "sometimes deposit"]), &mut book).starts_with("rules[1]:"));
    assert!(err(def("x", &["did deposit in 30"]), &mut book).starts_with("rules[0]: '30' is not a number of days"));
    assert!(err(def("bad name!", &["did deposit"]), &mut book).starts_with("name:"));
    let missing = block_on(run_json(&view, &book, "trends", json!({ "filters": ["segment = nobody"] }))).unwrap_err().to_string();
    assert!(missing.starts_with("segment: no segment 'nobody'"), "{missing}");
}

#[test]
fn goals_report_current_value_projection_and_status() {
    use finpulse_growth::goals::{Goal, GoalBook, evaluate};
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let mut book = GoalBook::load(dir.path()).unwrap();
    let goal = |name: &str, metric: &str, target: f64, deadline: &str| Goal {
        name: name.into(),
        metric: metric.into(),
        target,
        deadline: deadline.into(),
    };
    // Signups in the 7 days to 01-12: u3 (01-06) and u4 (01-12). The data ends 01-19: judged on the deadline.
    book.set(goal("signups", "new_users_7d", 2.0, "2026-01-12")).unwrap();
    book.set(goal("signups-stretch", "new_users_7d", 3.0, "2026-01-12")).unwrap();
    book.set(goal("incidents", "risk_incident_rate", 0.005, "2026-06-30")).unwrap();
    book.set(goal("reach", "mau", 10.0, "2026-06-30")).unwrap();
    let book = GoalBook::load(dir.path()).unwrap();
    let t = block_on(async {
        let ctx = finpulse_growth::session(&view).await.unwrap();
        evaluate(&ctx, &view.registry, &book).await.unwrap()
    });
    let row = |name: &str| t.rows.iter().find(|r| r[0] == json!(name)).unwrap().clone();
    assert_eq!(row("signups")[6], json!(2.0));
    assert_eq!(row("signups")[8], json!("met"));
    assert_eq!(row("signups-stretch")[8], json!("missed"));
    assert_eq!(row("incidents")[1], json!("compliance"));
    assert_eq!(row("incidents")[8], json!("no data"), "no payments: no rate");
    // Everyone (4 users) was active in the 30 days to 01-19, growing from 2: the trend reaches 10 by June.
    assert_eq!(row("reach")[6], json!(4.0));
    assert_eq!(row("reach")[8], json!("on track"));
    assert_eq!(row("reach")[5], json!("2026-01-19"));
}
