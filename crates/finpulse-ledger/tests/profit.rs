//! The profit balance on crafted histories: each bound, crossed already and crossed only on
//! the trend, must raise its alert, and a history that keeps to it must not; what-if moves the
//! mix by exactly the change asked for; alerts are stored once.

use finpulse_core::money::Currency;
use finpulse_ledger::alerts::AlertStore;
use finpulse_ledger::period::{day_number, day_start_us};
use finpulse_ledger::profit::config::{Guardrail, ProfitConfig, Subject};
use finpulse_ledger::profit::{self, AlertStatus, Assessment, Bound, VolumeChange};
use finpulse_ledger::{Account, AccountKind, CostKind, Ledger, Posting, Stream, Transaction, TxKind};

fn day(text: &str) -> i64 {
    day_number(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
}

/// Movements of one day: revenue by stream, and costs (attributed to a stream or not).
#[derive(Default)]
struct Day {
    revenue: Vec<(Stream, i64)>,
    costs: Vec<(Option<Stream>, i64)>,
}

/// A ledger holding `f(d)` for every day from 2026-02-01 to 2026-03-15 (the as-of day).
fn history(f: impl Fn(i64) -> Day) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut batch = Vec::new();
    for d in day("2026-02-01")..=day("2026-03-15") {
        let booked_us = day_start_us(d) + 12 * 3600 * 1_000_000;
        let today = f(d);
        for (stream, amount) in today.revenue.into_iter().filter(|(_, a)| *a > 0) {
            let rev = Account::new(AccountKind::Revenue).with_stream(stream);
            batch.push(tx(format!("{d}/{stream}"), booked_us, TxKind::Recognition, rev.as_kind(AccountKind::Cash), rev, amount));
        }
        for (i, (stream, amount)) in today.costs.into_iter().filter(|(_, a)| *a > 0).enumerate() {
            let kind = if stream.is_some() { CostKind::FundingCost } else { CostKind::Acquisition };
            let expense = Account { stream, ..Account::new(AccountKind::Expense(kind)) };
            batch.push(tx(format!("{d}/cost{i}"), booked_us, TxKind::Cost, expense, Account::new(AccountKind::Cash), amount));
        }
    }
    ledger.post_batch(batch).unwrap();
    (dir, ledger)
}

fn tx(id: String, booked_us: i64, kind: TxKind, debit: Account, credit: Account, amount: i64) -> Transaction {
    let postings = vec![
        Posting { account: debit, amount_minor: amount, currency: Currency::CNY },
        Posting { account: credit, amount_minor: -amount, currency: Currency::CNY },
    ];
    Transaction { id, booked_us, kind, source_event_id: None, memo: None, postings }
}

fn config(g: Guardrail) -> ProfitConfig {
    ProfitConfig { guardrails: vec![g], ..ProfitConfig::standard() }
}

fn guardrail(subject: Subject) -> Guardrail {
    Guardrail { subject, share_max: None, share_min: None, growth_max: None, growth_min: None, margin_floor: None }
}

fn assess(ledger: &Ledger, config: &ProfitConfig) -> Assessment {
    let as_of = day("2026-03-15");
    profit::assess(&ledger.read(), config, as_of, day_start_us(as_of + 1) - 1)
}

fn statuses(a: &Assessment, bound: Bound) -> Vec<AlertStatus> {
    a.alerts.iter().filter(|x| x.bound == bound).map(|x| x.status).collect()
}

/// Days since 2026-02-16, the first day of the 28-day trend window ending 2026-03-15.
fn t(d: i64) -> i64 {
    d - day("2026-02-16")
}

/// Days since 2026-03-01 (0 on the 1st), negative in February.
fn k(d: i64) -> i64 {
    d - day("2026-03-01")
}

fn revenue(pairs: &[(Stream, i64)]) -> Day {
    Day { revenue: pairs.to_vec(), costs: vec![] }
}

#[test]
fn a_share_above_its_bound_raises_a_breach_and_a_share_within_raises_nothing() {
    let c = config(Guardrail { share_max: Some(0.5), ..guardrail(Subject::Stream(Stream::Interest)) });
    let (_d, high) = history(|_| revenue(&[(Stream::Interest, 600), (Stream::Fees, 400)]));
    let a = assess(&high, &c);
    assert_eq!(statuses(&a, Bound::ShareMax), vec![AlertStatus::Breach]);
    assert!((a.alerts[0].value - 0.6).abs() < 1e-12 && a.alerts[0].limit == 0.5);
    assert_eq!(a.alerts[0].id, "2026-03/interest/share_max/breach");
    let (_d, fine) = history(|_| revenue(&[(Stream::Interest, 400), (Stream::Fees, 600)]));
    assert!(assess(&fine, &c).alerts.is_empty());
}

#[test]
fn a_share_rising_through_its_bound_raises_a_projected_breach() {
    let c = config(Guardrail { share_max: Some(0.5), ..guardrail(Subject::Stream(Stream::Interest)) });
    let (_d, rising) = history(|d| revenue(&[(Stream::Interest, 45 * t(d)), (Stream::Fees, 1000)]));
    let a = assess(&rising, &c);
    let now = a.to_date.share(Subject::Stream(Stream::Interest)).unwrap();
    let then = a.projected.as_ref().unwrap().share(Subject::Stream(Stream::Interest)).unwrap();
    assert!(now < 0.5 && then > 0.5, "to date {now}, projected {then}");
    assert_eq!(statuses(&a, Bound::ShareMax), vec![AlertStatus::ProjectedBreach]);
    // The same share held flat: nothing.
    let (_d, flat) = history(|_| revenue(&[(Stream::Interest, 470), (Stream::Fees, 530)]));
    assert!(assess(&flat, &c).alerts.is_empty());
}

#[test]
fn a_share_below_its_floor_raises_a_breach_or_a_projected_one_and_a_healthy_one_nothing() {
    let c = config(Guardrail { share_min: Some(0.2), ..guardrail(Subject::Stream(Stream::ValueAdded)) });
    let (_d, low) = history(|_| revenue(&[(Stream::ValueAdded, 100), (Stream::Fees, 900)]));
    assert_eq!(statuses(&assess(&low, &c), Bound::ShareMin), vec![AlertStatus::Breach]);
    let (_d, falling) = history(|d| revenue(&[(Stream::ValueAdded, 1000 - 30 * t(d).max(0)), (Stream::Fees, 1500)]));
    let a = assess(&falling, &c);
    assert!(a.to_date.share(Subject::Stream(Stream::ValueAdded)).unwrap() > 0.2);
    assert_eq!(statuses(&a, Bound::ShareMin), vec![AlertStatus::ProjectedBreach]);
    let (_d, fine) = history(|_| revenue(&[(Stream::ValueAdded, 300), (Stream::Fees, 700)]));
    assert!(assess(&fine, &c).alerts.is_empty());
}

#[test]
fn growth_above_its_bound_raises_a_breach_or_a_projected_one_and_steady_growth_nothing() {
    let c = config(Guardrail { growth_max: Some(0.5), ..guardrail(Subject::Stream(Stream::Fees)) });
    let (_d, doubled) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 2000 })]));
    let a = assess(&doubled, &c);
    assert_eq!(statuses(&a, Bound::GrowthMax), vec![AlertStatus::Breach]);
    assert!((a.alerts[0].value - 1.0).abs() < 1e-12, "March to date against the same days of February");
    let (_d, ramp) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 1000 + 40 * (k(d) + 1) })]));
    let a = assess(&ramp, &c);
    assert_eq!(statuses(&a, Bound::GrowthMax), vec![AlertStatus::ProjectedBreach], "{:?}", a.alerts);
    let (_d, steady) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 1200 })]));
    assert!(assess(&steady, &c).alerts.is_empty());
}

#[test]
fn growth_below_its_floor_raises_a_breach_or_a_projected_one_and_a_mild_dip_nothing() {
    let c = config(Guardrail { growth_min: Some(-0.45), ..guardrail(Subject::Total) });
    let (_d, halved) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 500 })]));
    assert_eq!(statuses(&assess(&halved, &c), Bound::GrowthMin), vec![AlertStatus::Breach]);
    let (_d, sliding) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 1000 - 40 * (k(d) + 1) })]));
    let a = assess(&sliding, &c);
    assert_eq!(statuses(&a, Bound::GrowthMin), vec![AlertStatus::ProjectedBreach], "{:?}", a.alerts);
    let (_d, dip) = history(|d| revenue(&[(Stream::Fees, if k(d) < 0 { 1000 } else { 900 })]));
    assert!(assess(&dip, &c).alerts.is_empty());
}

#[test]
fn a_margin_under_its_floor_raises_a_breach_or_a_projected_one_and_a_healthy_margin_nothing() {
    let c = config(Guardrail { margin_floor: Some(0.5), ..guardrail(Subject::Stream(Stream::Interest)) });
    let with_cost = |cost: i64| Day { revenue: vec![(Stream::Interest, 1000)], costs: vec![(Some(Stream::Interest), cost)] };
    let (_d, thin) = history(|_| with_cost(900));
    let a = assess(&thin, &c);
    assert_eq!(statuses(&a, Bound::MarginFloor), vec![AlertStatus::Breach]);
    assert!((a.alerts[0].value - 0.1).abs() < 1e-12);
    let (_d, squeezed) = history(|d| with_cost(20 * t(d).max(0)));
    let a = assess(&squeezed, &c);
    assert!(a.to_date.margin(Subject::Stream(Stream::Interest)).unwrap() > 0.5);
    assert_eq!(statuses(&a, Bound::MarginFloor), vec![AlertStatus::ProjectedBreach]);
    let (_d, healthy) = history(|_| with_cost(300));
    assert!(assess(&healthy, &c).alerts.is_empty());
}

#[test]
fn the_total_margin_counts_costs_attributed_to_no_stream() {
    let c = config(Guardrail { margin_floor: Some(0.1), ..guardrail(Subject::Total) });
    let (_d, spent) = history(|_| Day { revenue: vec![(Stream::Interest, 1000)], costs: vec![(None, 950)] });
    assert_eq!(statuses(&assess(&spent, &c), Bound::MarginFloor), vec![AlertStatus::Breach]);
    // The same spend does not touch a stream's own margin.
    let stream = config(Guardrail { margin_floor: Some(0.1), ..guardrail(Subject::Stream(Stream::Interest)) });
    assert!(assess(&spent, &stream).alerts.is_empty());
}

#[test]
fn too_little_history_projects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let rev = Account::new(AccountKind::Revenue).with_stream(Stream::Interest);
    for d in day("2026-03-13")..=day("2026-03-15") {
        let booked = day_start_us(d) + 1;
        ledger.post(tx(format!("{d}"), booked, TxKind::Recognition, rev.as_kind(AccountKind::Cash), rev.clone(), 100)).unwrap();
    }
    let a = assess(&ledger, &ProfitConfig::standard());
    assert!(a.projected.is_none());
    assert_eq!(statuses(&a, Bound::ShareMax), vec![AlertStatus::Breach], "all revenue is interest so far");
}

#[test]
fn what_if_scales_one_stream_and_says_where_the_mix_lands() {
    let c = config(Guardrail { share_max: Some(0.48), ..guardrail(Subject::Stream(Stream::Interest)) });
    let (_d, ledger) = history(|_| revenue(&[(Stream::Interest, 500), (Stream::ScenarioFinance, 300), (Stream::Fees, 200)]));
    let a = assess(&ledger, &c);
    assert_eq!(statuses(&a, Bound::ShareMax), vec![AlertStatus::Breach]);
    let projected = a.projected.as_ref().unwrap();
    assert_eq!(projected.revenue_minor[&Stream::Interest], 31 * 500, "a flat history projects exactly");
    let (mix, alerts) = profit::what_if(&a, &c, &[VolumeChange { stream: Stream::ScenarioFinance, growth: 0.3 }]).unwrap();
    assert_eq!(mix.revenue_minor[&Stream::ScenarioFinance], 31 * 390);
    assert_eq!(mix.revenue_minor[&Stream::Interest], 31 * 500);
    let share = mix.share(Subject::Stream(Stream::Interest)).unwrap();
    assert!((share - 500.0 / 1090.0).abs() < 1e-12, "{share}");
    assert!(alerts.is_empty(), "{alerts:?}");
    let (_, worse) = profit::what_if(&a, &c, &[VolumeChange { stream: Stream::Interest, growth: 0.3 }]).unwrap();
    assert_eq!(worse.iter().map(|x| (x.bound, x.status)).collect::<Vec<_>>(), vec![(Bound::ShareMax, AlertStatus::ProjectedBreach)]);
    let bad = profit::what_if(&a, &c, &[VolumeChange { stream: Stream::Fees, growth: -1.5 }]).unwrap_err();
    assert!(bad.to_string().starts_with("changes[0].growth"));
}

#[test]
fn alerts_are_stored_once_and_read_back() {
    let c = config(Guardrail { share_max: Some(0.5), ..guardrail(Subject::Stream(Stream::Interest)) });
    let (dir, ledger) = history(|_| revenue(&[(Stream::Interest, 600), (Stream::Fees, 400)]));
    let a = assess(&ledger, &c);
    let store = AlertStore::of_ledger(dir.path()).unwrap();
    assert_eq!(store.record(&a.alerts).unwrap().len(), 1);
    assert!(store.record(&a.alerts).unwrap().is_empty(), "assessed again: nothing new");
    drop(store);
    let store = AlertStore::of_ledger(dir.path()).unwrap();
    assert_eq!(store.list(), a.alerts);
}

#[test]
fn the_mix_history_has_one_entry_per_month_with_shares_summing_to_one() {
    let (_d, ledger) = history(|_| revenue(&[(Stream::Interest, 500), (Stream::ApiEcosystem, 250), (Stream::Fees, 250)]));
    let a = assess(&ledger, &ProfitConfig::standard());
    assert_eq!(a.history.iter().map(|m| m.period.as_str()).collect::<Vec<_>>(), vec!["2026-02", "2026-03"]);
    assert_eq!(a.history[0].revenue_total_minor(), 28 * 1000);
    assert_eq!(a.previous, a.history[0]);
    let shares = a.history[0].shares();
    assert!((shares.values().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(shares[&Stream::Interest], 0.5);
}
