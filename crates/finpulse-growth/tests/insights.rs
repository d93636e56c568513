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
use finpulse_growth::{Cell, InsightError, InsightKind, InsightOptions, Table};
use finpulse_log::{EventStore, StoreOptions, StoreView};

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

fn o() -> InsightOptions {
    InsightOptions::default()
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A cell as the tables hold it.
fn c<T: Into<Cell>>(v: T) -> Cell {
    v.into()
}

/// A day cell.
fn d(date: &str) -> Cell {
    Cell::Day(finpulse_core::time::parse_date_us(date).unwrap().div_euclid(DAY_US))
}

async fn run_in(view: &StoreView, book: &SegmentBook, kind: InsightKind, options: InsightOptions) -> Result<Table, InsightError> {
    finpulse_growth::run(view, book, &options.into_insight(kind)?).await
}

fn ask(view: &StoreView, kind: InsightKind, options: InsightOptions) -> Result<Table, InsightError> {
    block_on(run_in(view, &SegmentBook::empty(), kind, options))
}

fn column(t: &Table, name: &str) -> Vec<Cell> {
    let i = t.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {:?}", t.columns));
    t.rows.iter().map(|r| r[i].clone()).collect()
}

#[test]
fn a_funnel_counts_users_per_step_inside_the_window_and_lists_who_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let steps = ["user_signup", "task_completed:task=verify_identity", "deposit"];
    let t = ask(&view, InsightKind::Funnel, InsightOptions { steps: list(&steps), window: Some("7d".into()), ..o() }).unwrap();
    assert_eq!(column(&t, "users"), [c(4), c(2), c(1)]);
    assert_eq!(column(&t, "dropped"), [c(0), c(2), c(1)]);
    assert_eq!(column(&t, "conversion")[2], c(0.25));
    // Verified 1 h (u1) and 72 h (u2) after signing up; u1 deposited 47 h after verifying.
    assert_eq!(column(&t, "median_secs_from_previous")[1..], [c(36.5 * 3600.0), c(47.0 * 3600.0)]);
    let dropped = ask(&view, InsightKind::Funnel, InsightOptions { steps: list(&steps), dropped_at: Some(2), ..o() }).unwrap();
    assert_eq!(column(&dropped, "user_id"), [c("u3"), c("u4")]);
    let by_channel =
        ask(&view, InsightKind::Funnel, InsightOptions { steps: list(&steps), breakdown: Some("user.channel".into()), ..o() }).unwrap();
    assert_eq!(column(&by_channel, "breakdown"), ["douyin", "douyin", "douyin", "wechat", "wechat", "wechat"].map(c));
    assert_eq!(column(&by_channel, "users"), [2, 1, 1, 2, 1, 0].map(c));
    // Strict order: u1's task between signup and deposit breaks a signup → deposit funnel.
    let strict = ask(
        &view,
        InsightKind::Funnel,
        InsightOptions { steps: list(&["user_signup", "deposit"]), mode: Some("strict_order".into()), ..o() },
    )
    .unwrap();
    assert_eq!(column(&strict, "users"), [c(4), c(0)]);
    let loose = ask(&view, InsightKind::Funnel, InsightOptions { steps: list(&["user_signup", "deposit"]), ..o() }).unwrap();
    assert_eq!(column(&loose, "users"), [c(4), c(1)]);
}

#[test]
fn retention_follows_weekly_cohorts_and_leaves_unreached_periods_empty() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let body = InsightOptions { return_event: Some("app_session".into()), period: Some("week".into()), periods: Some(2), ..o() };
    let t = ask(&view, InsightKind::Retention, body.clone()).unwrap();
    assert_eq!(column(&t, "cohort"), [d("2026-01-05"), d("2026-01-12")]);
    assert_eq!(column(&t, "users"), [c(3), c(1)]);
    assert_eq!(t.rows[0][2..], [c(2.0 / 3.0), c(1.0 / 3.0), c(0.0)]);
    // The data ends on 2026-01-19: the second cohort's week 2 (from 01-26) is not known yet.
    assert_eq!(t.rows[1][2..], [c(0.0), c(1.0), Cell::Null]);
    let cell = InsightOptions { cohort: Some("2026-01-05".into()), period_index: Some(1), ..body.clone() };
    assert_eq!(column(&ask(&view, InsightKind::Retention, cell).unwrap(), "user_id"), [c("u1")]);
    let unbounded = InsightOptions { unbounded: Some(true), counts: Some(true), ..body };
    let u = ask(&view, InsightKind::Retention, unbounded).unwrap();
    assert_eq!(u.rows[1][2..], [c(1), c(1), Cell::Null], "u4 came back in week 1, so also 'on or after' week 0");
}

#[test]
fn trends_lifecycle_activation_and_acquisition_answer_from_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let trends =
        ask(&view, InsightKind::Trends, InsightOptions { event: Some("user_signup".into()), interval: Some("week".into()), ..o() })
            .unwrap();
    assert_eq!(trends.rows, vec![vec![d("2026-01-05"), c(3)], vec![d("2026-01-12"), c(1)]]);
    let sums = ask(
        &view,
        InsightKind::Trends,
        InsightOptions { event: Some("deposit".into()), measure: Some("sum:amount_fen".into()), interval: Some("month".into()), ..o() },
    )
    .unwrap();
    assert_eq!(sums.rows, vec![vec![d("2026-01-01"), c(30_000)]]);

    let lc = ask(&view, InsightKind::Lifecycle, InsightOptions { event: Some("app_session".into()), interval: Some("week".into()), ..o() })
        .unwrap();
    assert_eq!(column(&lc, "period"), ["2026-01-05", "2026-01-12", "2026-01-19"].map(d));
    assert_eq!(column(&lc, "new"), [2, 0, 1].map(c));
    assert_eq!(column(&lc, "returning"), [0, 1, 0].map(c));
    assert_eq!(column(&lc, "dormant"), [0, -1, -1].map(c));
    assert_eq!(column(&lc, "usage_secs_per_active_user"), [100.0, 100.0, 100.0].map(c));
    let by_channel = ask(
        &view,
        InsightKind::Lifecycle,
        InsightOptions { event: Some("app_session".into()), breakdown: Some("user.channel".into()), ..o() },
    )
    .unwrap();
    let rows: Vec<(String, String, i64, i64, i64)> = by_channel
        .rows
        .iter()
        .map(|r| (r[0].display(), r[1].display(), r[2].as_int().unwrap(), r[3].as_int().unwrap(), r[5].as_int().unwrap()))
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

    let act = ask(&view, InsightKind::Activation, o()).unwrap();
    assert_eq!(column(&act, "breakdown"), [c("douyin"), c("wechat")]);
    assert_eq!(column(&act, "signups"), [c(2), c(2)]);
    assert_eq!(column(&act, "verify_identity"), [c(0.5), c(0.5)]);
    assert_eq!(column(&act, "bind_card"), [c(0.5), c(0.0)]);
    assert_eq!(column(&act, "next_day_active"), [c(0.5), c(0.5)]);

    let acq = ask(&view, InsightKind::Acquisition, InsightOptions { period: Some("week".into()), ..o() }).unwrap();
    let row = |period: &str, channel: &str| {
        acq.rows.iter().find(|r| r[0] == c(period) && r[1] == c(channel)).unwrap_or_else(|| panic!("{period} {channel}: {acq:?}")).clone()
    };
    assert_eq!(row("2026-01-05", "douyin")[2..5], [c(2), c(3000), c(1500.0)]);
    assert_eq!(row("2026-01-12", "wechat")[2..5], [c(1), c(1000), c(1000.0)]);
    // douyin: CAC 1,500 fen per user; u1's 5,000 fen on day 3 is 2,500 per user: paid back on day 3.
    assert_eq!(row("total", "douyin")[8], c(3));
    // wechat: CAC 1,500; 1,000 fen over two users never covers it.
    assert_eq!(row("total", "wechat")[8], Cell::Null);
    // Per week too: u1 alone pays back the week's douyin CAC on day 3.
    assert_eq!(row("2026-01-05", "douyin")[8], c(3));
    // Two buyers are too few to fit LTV models: the predicted columns are empty, and say why.
    assert_eq!(column(&acq, "ltv_fen"), vec![Cell::Null; acq.rows.len()]);
    assert_eq!(column(&acq, "payback_days_projected"), vec![Cell::Null; acq.rows.len()]);
    assert!(acq.notes.iter().any(|n| n.starts_with("no LTV:") && n.contains("at least 30")), "{:?}", acq.notes);
}

#[test]
fn bad_requests_name_the_parameter_and_an_empty_range_is_an_empty_answer() {
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    let param = |kind: InsightKind, options: InsightOptions| match ask(&view, kind, options) {
        Err(InsightError::Param { param, message }) => format!("{param}: {message}"),
        other => panic!("expected a parameter error, got {other:?}"),
    };
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup", "no_such_event"]), ..o() })
            .starts_with("steps: unknown event type 'no_such_event'")
    );
    let many: Vec<&str> = vec!["user_signup"; 33];
    assert!(param(InsightKind::Funnel, InsightOptions { steps: list(&many), ..o() }).starts_with("steps: at most 32 steps"));
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), window: Some("0".into()), ..o() })
            .starts_with("window:")
    );
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), window: Some("-5".into()), ..o() })
            .starts_with("window:")
    );
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), mode: Some("fast".into()), ..o() }).starts_with("mode:")
    );
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), breakdown: Some("user.colour".into()), ..o() })
            .starts_with("breakdown: unknown user property")
    );
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), filters: list(&["amount_fen > lots"]), ..o() })
            .starts_with("filters: amount_fen is a number")
    );
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), filters: list(&["amount_fen > inf"]), ..o() })
            .starts_with("filters: amount_fen is a number")
    );
    let big =
        ask(&view, InsightKind::Trends, InsightOptions { event: Some("deposit".into()), filters: list(&["amount_fen >= 1.5e4"]), ..o() })
            .unwrap();
    assert_eq!(big.rows.iter().map(|r| r[1].as_int().unwrap()).sum::<i64>(), 1, "only u3's 20,000 fen deposit");
    assert!(
        param(InsightKind::Funnel, InsightOptions { steps: list(&["user_signup"]), periods: Some(3), ..o() })
            .starts_with("periods: funnel does not take periods")
    );
    assert!(
        param(InsightKind::Retention, InsightOptions { from: Some("2026-02-01".into()), to: Some("2026-01-01".into()), ..o() })
            .starts_with("to:")
    );
    assert!(param(InsightKind::Retention, InsightOptions { period: Some("fortnight".into()), ..o() }).starts_with("period:"));
    assert!(
        param(InsightKind::Trends, InsightOptions { measure: Some("sum:channel".into()), ..o() })
            .starts_with("measure: channel is not numeric")
    );
    assert!("insights".parse::<InsightKind>().unwrap_err().to_string().starts_with("kind: unknown insight"));
    let empty = ask(
        &view,
        InsightKind::Funnel,
        InsightOptions { steps: list(&["user_signup", "deposit"]), from: Some("2030-01-01".into()), to: Some("2030-01-31".into()), ..o() },
    )
    .unwrap();
    assert!(empty.rows.is_empty());
    let empty = ask(&view, InsightKind::Retention, InsightOptions { from: Some("2030-01-01".into()), ..o() }).unwrap();
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
    let active_wechat =
        book.save(def("active_wechat", &["user.channel = wechat", "did app_session >= 1 in 7d"]), &view.registry, "analyst").unwrap();
    let douyin_no_deposit =
        book.save(def("douyin_no_deposit", &["user.channel = douyin", "not deposit"]), &view.registry, "analyst").unwrap();
    let sessions = book.save(def("sessions", &["did app_session"]), &view.registry, "analyst").unwrap();
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
    // The materialisation is a lineage run from the events to the three members files.
    let lineage = finpulse_lineage::LineageStore::open(dir.path().join(finpulse_log::lineage::LINEAGE_DIR)).unwrap();
    let run: Vec<serde_json::Value> = lineage
        .events_since(None)
        .unwrap()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["job"]["name"] == segments::SEGMENT_JOB)
        .collect();
    assert_eq!(run.iter().map(|e| e["eventType"].as_str().unwrap()).collect::<Vec<_>>(), ["START", "COMPLETE"]);
    let written: Vec<&str> = run[1]["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert!(written.len() == 3 && written.iter().all(|w| w.ends_with(".members.csv")), "{written:?}");
    let t = block_on(run_in(
        &view,
        &book,
        InsightKind::Funnel,
        InsightOptions { steps: list(&["user_signup"]), filters: list(&["segment = active_wechat"]), ..o() },
    ))
    .unwrap();
    assert_eq!(column(&t, "users"), [c(1)]);
    let t = block_on(run_in(
        &view,
        &book,
        InsightKind::Funnel,
        InsightOptions { steps: list(&["user_signup"]), filters: list(&["segment != active_wechat"]), ..o() },
    ))
    .unwrap();
    assert_eq!(column(&t, "users"), [c(3)]);

    // Bad definitions and references are named.
    let mut book = book;
    let err = |d: SegmentDef, book: &mut SegmentBook| book.save(d, &view.registry, "analyst").unwrap_err().to_string();
    assert!(err(def("x", &["did no_such_event"]), &mut book).starts_with("rules[0]: unknown event type"));
    assert!(err(def("x", &["did deposit", "sometimes deposit"]), &mut book).starts_with("rules[1]:"));
    assert!(err(def("x", &["did deposit in 30"]), &mut book).starts_with("rules[0]: '30' is not a number of days"));
    assert!(err(def("bad name!", &["did deposit"]), &mut book).starts_with("name:"));
    let missing = block_on(run_in(&view, &book, InsightKind::Trends, InsightOptions { filters: list(&["segment = nobody"]), ..o() }))
        .unwrap_err()
        .to_string();
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
    book.set(goal("signups", "new_users_7d", 2.0, "2026-01-12"), "analyst").unwrap();
    book.set(goal("signups-stretch", "new_users_7d", 3.0, "2026-01-12"), "analyst").unwrap();
    book.set(goal("incidents", "risk_incident_rate", 0.005, "2026-06-30"), "analyst").unwrap();
    book.set(goal("reach", "mau", 10.0, "2026-06-30"), "analyst").unwrap();
    let book = GoalBook::load(dir.path()).unwrap();
    let t = block_on(async {
        let ctx = finpulse_growth::session(&view).await.unwrap();
        evaluate(&ctx, &view.registry, &book).await.unwrap()
    });
    let row = |name: &str| t.rows.iter().find(|r| r[0] == c(name)).unwrap().clone();
    assert_eq!(row("signups")[6], c(2.0));
    assert_eq!(row("signups")[8], c("met"));
    assert_eq!(row("signups-stretch")[8], c("missed"));
    assert_eq!(row("incidents")[1], c("compliance"));
    assert_eq!(row("incidents")[8], c("no data"), "no payments: no rate");
    // Everyone (4 users) was active in the 30 days to 01-19, growing from 2: the trend reaches 10 by June.
    assert_eq!(row("reach")[6], c(4.0));
    assert_eq!(row("reach")[8], c("on track"));
    assert_eq!(row("reach")[5], d("2026-01-19"));
}

#[test]
fn segments_and_goals_keep_every_version_roll_back_and_adopt_earlier_files() {
    use finpulse_growth::goals::{Goal, GoalBook};
    let dir = tempfile::tempdir().unwrap();
    let view = history(dir.path());
    // Files written before definitions were versioned: a segment and a goals list.
    std::fs::create_dir_all(dir.path().join("segments")).unwrap();
    std::fs::write(dir.path().join("segments/wechat.json"), r#"{"name": "wechat", "rules": ["user.channel = wechat"]}"#).unwrap();
    std::fs::write(dir.path().join("segments/wechat.state.json"), r#"{"as_of": "2026-01-19", "members": 2, "computed_at": "x"}"#).unwrap();
    std::fs::write(dir.path().join("goals.json"), r#"[{"name": "reach", "metric": "mau", "target": 10.0, "deadline": "2026-06-30"}]"#)
        .unwrap();

    let mut book = SegmentBook::load(dir.path()).unwrap();
    assert_eq!(book.defs()["wechat"].rules, ["user.channel = wechat"], "adopted");
    let def = |rules: &[&str]| SegmentDef { name: "wechat".into(), description: String::new(), rules: list(rules) };
    book.save(def(&["user.channel = wechat", "did app_session"]), &view.registry, "ana").unwrap();
    assert_eq!(SegmentBook::load(dir.path()).unwrap().defs()["wechat"].rules.len(), 2);
    assert!(book.remove("wechat", "ana").unwrap());
    assert!(SegmentBook::load(dir.path()).unwrap().defs().is_empty(), "removed, though the earlier file is still there");
    assert_eq!(book.rollback("wechat", "lead").unwrap().version, 2, "a roll-back brings the removed definition back");
    assert_eq!(book.rollback("wechat", "lead").unwrap().version, 1);
    assert_eq!(SegmentBook::load(dir.path()).unwrap().defs()["wechat"].rules, ["user.channel = wechat"]);
    assert!(book.rollback("wechat", "lead").unwrap_err().to_string().contains("no earlier version"));
    let who: Vec<String> = book.history().unwrap().iter().map(|a| format!("{} {}", a.action, a.by)).collect();
    assert_eq!(who, ["publish adopted", "publish ana", "remove ana", "rollback lead", "rollback lead"]);

    // Two books loaded side by side (a server and the CLI) both keep their change.
    let mut goals_a = GoalBook::load(dir.path()).unwrap();
    let mut goals_b = GoalBook::load(dir.path()).unwrap();
    assert_eq!(goals_a.goals["reach"].target, 10.0, "adopted");
    let goal = |name: &str, target: f64| Goal { name: name.into(), metric: "mau".into(), target, deadline: "2026-06-30".into() };
    goals_a.set(goal("reach", 12.0), "ana").unwrap();
    goals_b.set(goal("growth", 20.0), "bo").unwrap();
    let now = GoalBook::load(dir.path()).unwrap();
    assert_eq!((now.goals["reach"].target, now.goals["growth"].target), (12.0, 20.0), "no change lost");
    assert_eq!(goals_b.rollback("reach", "lead").unwrap().version, 1);
    assert_eq!(GoalBook::load(dir.path()).unwrap().goals["reach"].target, 10.0);
    let bad = goals_a.set(goal("Q2 reach", 1.0), "ana").unwrap_err().to_string();
    assert!(bad.starts_with("name: goal name 'Q2 reach' must be"), "{bad}");
}
