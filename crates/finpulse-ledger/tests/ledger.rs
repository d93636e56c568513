//! The ledger's invariants: balanced on every write, idempotent by id, nothing lost or doubled
//! under concurrent writers, reversals and refunds as new entries, a journal that survives a
//! torn write and refuses damage.

use finpulse_core::money::Currency;
use finpulse_ledger::ledger::JOURNAL_FILE;
use finpulse_ledger::report::{self, Dimension, ReportRequest, View};
use finpulse_ledger::{Account, AccountKind, Ledger, LedgerError, Posted, Posting, Stream, Transaction, TxKind};
use std::sync::Arc;

fn revenue(id: &str, stream: Stream, amount_minor: i64, booked_us: i64) -> Transaction {
    let rev = Account::new(AccountKind::Revenue).with_stream(stream);
    Transaction {
        id: id.into(),
        booked_us,
        kind: TxKind::Recognition,
        source_event_id: None,
        memo: None,
        postings: vec![
            Posting { account: rev.as_kind(AccountKind::Cash), amount_minor, currency: Currency::CNY },
            Posting { account: rev, amount_minor: -amount_minor, currency: Currency::CNY },
        ],
    }
}

fn revenue_total(ledger: &Ledger) -> i128 {
    let state = ledger.read();
    let req =
        ReportRequest { view: View::Accrual, period: finpulse_ledger::period::Period::Month, by: vec![], from_day: None, to_day: None };
    report::report(&state, &req).unwrap().iter().map(|r| r.revenue_minor).sum()
}

fn assert_balanced(ledger: &Ledger) {
    let state = ledger.read();
    assert!(state.totals().values().all(|t| *t == 0), "{:?}", state.totals());
    let sum: i128 = state.balances().values().sum();
    assert_eq!(sum, 0);
}

#[test]
fn concurrent_writers_lose_nothing_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path()).unwrap());
    const THREADS: usize = 8;
    const EACH: usize = 300;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut new = 0;
                for i in 0..EACH {
                    // Every thread also posts the same shared transactions: each lands once.
                    let (id, amount) =
                        if i % 3 == 0 { (format!("shared-{i}"), 1_000 + i as i64) } else { (format!("t{t}-{i}"), 7 + i as i64) };
                    let batch = vec![revenue(&id, Stream::ALL[i % 5], amount, i as i64)];
                    for posted in ledger.post_batch(batch).unwrap() {
                        new += usize::from(posted == Posted::New);
                    }
                    assert_balanced(&ledger);
                }
                new
            })
        })
        .collect();
    let new: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let shared = (0..EACH).filter(|i| i % 3 == 0).count();
    let unique = THREADS * (EACH - shared);
    assert_eq!(new, unique + shared);
    assert_eq!(ledger.read().transactions().len(), unique + shared);
    let expected: i128 = (0..EACH).map(|i| if i % 3 == 0 { 1_000 + i as i128 } else { THREADS as i128 * (7 + i as i128) }).sum();
    assert_eq!(revenue_total(&ledger), expected);
    assert_balanced(&ledger);
    let before = ledger.read().balances().clone();
    drop(ledger);
    let reopened = Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.read().balances(), &before);
    assert_eq!(reopened.read().transactions().len(), unique + shared);
}

#[test]
fn an_unbalanced_transaction_is_refused_and_nothing_of_its_batch_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut bad = revenue("bad", Stream::Fees, 500, 0);
    bad.postings[1].amount_minor = -499;
    let err = ledger.post_batch(vec![revenue("good", Stream::Fees, 100, 0), bad]).unwrap_err();
    assert!(matches!(&err, LedgerError::Unbalanced { id, by_currency } if id == "bad" && by_currency == &[(Currency::CNY, 1)]), "{err}");
    assert_eq!(err.to_string(), "transaction bad is unbalanced: CNY +1");
    assert!(ledger.read().transactions().is_empty());
    drop(ledger);
    assert!(Ledger::open(dir.path()).unwrap().read().transactions().is_empty());
}

#[test]
fn a_retry_is_idempotent_and_a_changed_retry_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.post(revenue("r1", Stream::Interest, 900, 0)).unwrap(), Posted::New);
    assert_eq!(ledger.post(revenue("r1", Stream::Interest, 900, 0)).unwrap(), Posted::AlreadyPosted);
    let err = ledger.post(revenue("r1", Stream::Interest, 901, 0)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { ref id } if id == "r1"));
    // The same id twice in one batch: once.
    let posted = ledger.post_batch(vec![revenue("r2", Stream::Fees, 5, 0), revenue("r2", Stream::Fees, 5, 0)]).unwrap();
    assert_eq!(posted, vec![Posted::New, Posted::AlreadyPosted]);
    assert_eq!(revenue_total(&ledger), 905);
}

#[test]
fn reversals_and_refunds_are_new_entries_that_never_undo_more_than_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.post(revenue("r1", Stream::ValueAdded, 1500, 0)).unwrap();
    ledger.refund("r1", "r1:refund1", 10, 500, Some("partial refund".into())).unwrap();
    let err = ledger.refund("r1", "r1:refund2", 20, 1001, None).unwrap_err();
    assert!(err.to_string().contains("more than the 1500 recognised"), "{err}");
    // Reversing a recognition with refunds standing is refused; reverse the refund first.
    assert!(matches!(ledger.reverse("r1", "r1:rev", 30, None).unwrap_err(), LedgerError::NotUndoable { .. }));
    ledger.reverse("r1:refund1", "r1:refund1:rev", 30, None).unwrap();
    ledger.reverse("r1", "r1:rev", 40, None).unwrap();
    assert!(ledger.reverse("r1", "r1:rev2", 50, None).unwrap_err().to_string().contains("already reversed by r1:rev"));
    assert!(ledger.reverse("r1:rev", "r1:rev:rev", 50, None).unwrap_err().to_string().contains("itself a reversal"));
    assert!(matches!(ledger.reverse("nope", "x", 0, None).unwrap_err(), LedgerError::Unknown { .. }));
    assert!(ledger.refund("r1", "r1:refund3", 60, 1, None).unwrap_err().to_string().contains("it was reversed"));
    let state = ledger.read();
    // Four entries, none edited: the original still reads as posted.
    assert_eq!(state.transactions().len(), 4);
    assert_eq!(state.get("r1").unwrap().postings[1].amount_minor, -1500);
    drop(state);
    assert_eq!(revenue_total(&ledger), 0);
    assert_balanced(&ledger);
}

#[test]
fn hand_made_reversals_and_refunds_must_undo_exactly_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let original = revenue("r1", Stream::Fees, 100, 0);
    ledger.post(original.clone()).unwrap();
    let mut wrong = original.reversal("r1:rev", 1, None);
    wrong.postings[0].amount_minor = -50;
    wrong.postings[1].amount_minor = 50;
    assert!(ledger.post(wrong).unwrap_err().to_string().contains("negates every posting"));
    // A "refund" that credits revenue would raise it: refused.
    let mut inflating = original.reversal("r1:refund", 1, None);
    inflating.kind = TxKind::Refund { of: "r1".into() };
    inflating.postings.iter_mut().for_each(|p| p.amount_minor = -p.amount_minor);
    assert!(ledger.post(inflating).unwrap_err().to_string().contains("a refund debits revenue"));
    assert_eq!(ledger.read().transactions().len(), 1);
}

#[test]
fn a_torn_last_write_is_cut_and_the_ledger_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.post(revenue("r1", Stream::Fees, 100, 0)).unwrap();
    ledger.post(revenue("r2", Stream::Fees, 200, 0)).unwrap();
    drop(ledger);
    let path = dir.path().join(JOURNAL_FILE);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() - 7]).unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.read().transactions().len(), 1);
    ledger.post(revenue("r3", Stream::Fees, 300, 0)).unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(revenue_total(&ledger), 400);
}

#[test]
fn damage_before_the_tail_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger.post(revenue("r1", Stream::Fees, 100, 0)).unwrap();
    ledger.post(revenue("r2", Stream::Fees, 200, 0)).unwrap();
    drop(ledger);
    let path = dir.path().join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 8 + 3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = Ledger::open(dir.path()).err().unwrap();
    assert!(matches!(err, LedgerError::Corrupt { offset: 8, .. }), "{err}");
}

#[test]
fn a_journal_record_that_does_not_balance_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(Ledger::open(dir.path()).unwrap());
    // A well-framed record (right checksum) whose postings do not sum to zero.
    let mut bad = revenue("forged", Stream::Fees, 100, 0);
    bad.postings[0].amount_minor = 101;
    let payload = serde_json::to_vec(&bad).unwrap();
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c_of(&len, &payload);
    let path = dir.path().join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&path, &bytes).unwrap();
    let err = Ledger::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("damaged at byte 8: transaction forged is unbalanced"), "{err}");
}

/// CRC32C (Castagnoli), bit by bit: the journal's checksum, computed here independently.
fn crc32c_of(a: &[u8], b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in a.iter().chain(b) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn one_process_holds_a_ledger_and_a_failed_write_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    assert!(matches!(Ledger::open(dir.path()).err().unwrap(), LedgerError::Locked { .. }));
    ledger.poison_for_test("disk full");
    let err = ledger.post(revenue("r1", Stream::Fees, 1, 0)).unwrap_err();
    assert!(matches!(err, LedgerError::Failed { .. }), "{err}");
    assert!(ledger.read().transactions().is_empty());
}

#[test]
fn reports_group_by_dimension_and_balances_sum_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut t = revenue("r1", Stream::ScenarioFinance, 250, 0);
    for p in &mut t.postings {
        p.account.scenario = Some("meituan_food".into());
    }
    ledger.post(t).unwrap();
    ledger.post(revenue("r2", Stream::ScenarioFinance, 100, 0)).unwrap();
    let req = ReportRequest {
        view: View::Accrual,
        period: finpulse_ledger::period::Period::Day,
        by: vec![Dimension::Stream, Dimension::Scenario],
        from_day: None,
        to_day: None,
    };
    let rows = report::report(&ledger.read(), &req).unwrap();
    let got: Vec<(Option<String>, i128)> = rows.iter().map(|r| (r.keys[1].clone(), r.revenue_minor)).collect();
    assert_eq!(got, vec![(None, 100), (Some("meituan_food".into()), 250)]);
    let balances = report::balances(&ledger.read(), None);
    assert_eq!(balances.iter().map(|b| b.balance_minor).sum::<i128>(), 0);
    let twice = ReportRequest { by: vec![Dimension::Stream, Dimension::Stream], ..req };
    assert!(report::report(&ledger.read(), &twice).unwrap_err().to_string().starts_with("by[1]:"));
}
