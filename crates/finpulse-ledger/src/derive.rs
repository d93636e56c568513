//! Events into transactions. Every movement the store records becomes one transaction whose id
//! is made from its event's id, so deriving again (a replay, a restart, a second run) posts
//! nothing twice:
//!
//! | event | transaction (id) | postings |
//! |---|---|---|
//! | `revenue` | `rev:<event_id>` | Dr cash (settled at once) or receivable / Cr revenue, by stream |
//! | its settlement, when the stream settles later | `rev:<event_id>:settled` | Dr cash / Cr receivable |
//! | any event with `fee_fen > 0` that no `fees` revenue event names as its source | `fee:<event_id>` | as `revenue`, stream `fees` |
//! | `marketing_spend` | `cost:<event_id>` | Dr expense:acquisition / Cr cash, by channel |
//! | any event with `reward_fen > 0` | `cost:<event_id>` | Dr expense:rewards / Cr cash, by the user's channel |
//!
//! Dimensions: the stream, the partner and product named on the revenue event; otherwise the
//! product of its source event (a wealth product, or the loan product a repaid loan was applied
//! for); the scenario of its source event (an instalment purchase); the user's acquisition
//! channel (their first `user_signup`).

use crate::LedgerError;
use crate::account::{Account, AccountKind, CostKind, Stream};
use crate::ledger::{BATCH_TRANSACTIONS_MAX, Ledger, Posted};
use crate::period::{Period, day_of, day_start_us};
use crate::transaction::{Posting, TX_ID_BYTES_MAX, Transaction, TxKind};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use finpulse_core::money::Currency;
use finpulse_core::record::ID_BYTES_MAX;
use finpulse_log::StoreView;
use finpulse_query::QueryOptions;
use std::collections::BTreeMap;

/// The most skipped events listed by name in a derivation (all are counted).
pub const SKIPPED_LISTED_MAX: usize = 100;
const _: () = assert!("rev:".len() + ID_BYTES_MAX + ":settled".len() <= TX_ID_BYTES_MAX);

/// When a stream's revenue is received in cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// With the movement that earned it (a repayment's interest, a fee taken from a withdrawal).
    Immediate,
    /// On this day (1 to 28) of the month after it was earned, as partners settle commissions
    /// and developers pay invoices.
    NextMonthDay(u8),
}

/// How to derive.
#[derive(Debug, Clone)]
pub struct DeriveOptions {
    /// Settlement terms by stream (a stream not named settles at once).
    pub terms: BTreeMap<Stream, Settlement>,
    /// Settlements due after this moment are not posted yet (UTC microseconds).
    pub as_of_us: i64,
}

impl DeriveOptions {
    /// The demo's terms: interest, fees and value-added services are received with the
    /// movement; partners settle scenario commissions on the 10th of the next month and
    /// developers pay API invoices on the 15th. The events carry no settlements of their own.
    pub fn standard(as_of_us: i64) -> Self {
        let terms =
            BTreeMap::from([(Stream::ScenarioFinance, Settlement::NextMonthDay(10)), (Stream::ApiEcosystem, Settlement::NextMonthDay(15))]);
        Self { terms, as_of_us }
    }

    /// Checks the terms.
    pub fn check(&self) -> Result<(), LedgerError> {
        for (stream, terms) in &self.terms {
            if let Settlement::NextMonthDay(d) = terms
                && !(1..=28).contains(d)
            {
                return Err(LedgerError::invalid(format!("terms.{stream}"), format!("day {d} of the month (1 to 28 expected)")));
            }
        }
        Ok(())
    }
}

/// An event the derivation did not turn into a transaction, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The event.
    pub event_id: String,
    /// Why (naming the field).
    pub why: String,
}

/// What a derivation produced.
#[derive(Debug, Default)]
pub struct Derived {
    /// The transactions, in event-time order.
    pub transactions: Vec<Transaction>,
    /// The first [`SKIPPED_LISTED_MAX`] events skipped.
    pub skipped: Vec<Skipped>,
    /// Every event skipped.
    pub skipped_count: usize,
}

impl Derived {
    fn skip(&mut self, event_id: &str, why: String) {
        self.skipped_count += 1;
        if self.skipped.len() < SKIPPED_LISTED_MAX {
            self.skipped.push(Skipped { event_id: event_id.into(), why });
        }
    }
}

/// What posting a derivation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeriveSummary {
    /// Transactions written.
    pub posted: usize,
    /// Transactions the ledger already held.
    pub already_posted: usize,
    /// Events skipped.
    pub skipped: usize,
}

const SIGNUP_CHANNEL: &str =
    "signup AS (SELECT user_id, first_value(channel ORDER BY ts, event_id) AS channel FROM user_signup GROUP BY user_id)";
const LOAN_PRODUCT: &str = "loan_product AS (SELECT d.loan_id, min(a.product_id) AS product_id FROM loan_decision d \
     JOIN loan_application a ON a.application_id = d.application_id WHERE d.loan_id IS NOT NULL GROUP BY d.loan_id)";

fn revenue_sql() -> String {
    format!(
        "WITH {SIGNUP_CHANNEL}, {LOAN_PRODUCT} \
         SELECT r.event_id, CAST(r.ts AS BIGINT) AS ts_us, r.stream, r.amount_fen AS amount, r.currency, r.partner_id AS partner, \
           COALESCE(r.product_id, s.product_id, lp.product_id) AS product, s.scenario_id AS scenario, u.channel \
         FROM revenue r LEFT JOIN events s ON s.event_id = r.source_event_id \
         LEFT JOIN loan_product lp ON lp.loan_id = s.loan_id LEFT JOIN signup u ON u.user_id = r.user_id \
         ORDER BY ts_us, r.event_id"
    )
}

fn fee_sql() -> String {
    format!(
        "WITH {SIGNUP_CHANNEL} \
         SELECT e.event_id, CAST(e.ts AS BIGINT) AS ts_us, 'fees' AS stream, e.fee_fen AS amount, e.currency, \
           CAST(NULL AS VARCHAR) AS partner, e.product_id AS product, e.scenario_id AS scenario, u.channel \
         FROM events e LEFT JOIN signup u ON u.user_id = e.user_id \
         WHERE e.fee_fen > 0 AND e.\"type\" <> 'revenue' AND e.event_id NOT IN \
           (SELECT source_event_id FROM revenue WHERE stream = 'fees' AND source_event_id IS NOT NULL) \
         ORDER BY ts_us, e.event_id"
    )
}

fn cost_sql() -> String {
    format!(
        "WITH {SIGNUP_CHANNEL} \
         SELECT event_id, CAST(ts AS BIGINT) AS ts_us, 'acquisition' AS cost, amount_fen AS amount, currency, channel \
         FROM marketing_spend \
         UNION ALL \
         SELECT e.event_id, CAST(e.ts AS BIGINT) AS ts_us, 'rewards' AS cost, e.reward_fen AS amount, e.currency, u.channel \
         FROM events e LEFT JOIN signup u ON u.user_id = e.user_id WHERE e.reward_fen > 0 \
         ORDER BY ts_us, event_id"
    )
}

/// Derives the transactions of every revenue and cost movement in `view`.
pub async fn derive(view: &StoreView, opts: &DeriveOptions) -> Result<Derived, LedgerError> {
    opts.check()?;
    let mut out = Derived::default();
    for (prefix, sql) in [("rev", revenue_sql()), ("fee", fee_sql())] {
        let result = finpulse_query::run_sql(view, &sql, QueryOptions::default()).await?;
        for batch in &result.batches {
            revenue_rows(batch, prefix, opts, &mut out)?;
        }
    }
    let result = finpulse_query::run_sql(view, &cost_sql(), QueryOptions::default()).await?;
    for batch in &result.batches {
        cost_rows(batch, &mut out)?;
    }
    out.transactions.sort_by(|a, b| (a.booked_us, &a.id).cmp(&(b.booked_us, &b.id)));
    Ok(out)
}

/// Posts a derivation in batches of at most [`BATCH_TRANSACTIONS_MAX`].
pub fn post(ledger: &Ledger, derived: Derived) -> Result<DeriveSummary, LedgerError> {
    let mut summary = DeriveSummary { skipped: derived.skipped_count, ..Default::default() };
    let mut rest = derived.transactions;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH_TRANSACTIONS_MAX));
        for posted in ledger.post_batch(std::mem::replace(&mut rest, tail))? {
            match posted {
                Posted::New => summary.posted += 1,
                Posted::AlreadyPosted => summary.already_posted += 1,
            }
        }
    }
    Ok(summary)
}

/// One row's columns, read by name.
struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl Columns<'_> {
    fn texts(&self, name: &str) -> Result<Vec<Option<String>>, LedgerError> {
        let column = self.batch.column_by_name(name).ok_or_else(|| LedgerError::Query(format!("no column {name}")))?;
        Ok(finpulse_query::text_values(column.as_ref())?)
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>, LedgerError> {
        let column = self.batch.column_by_name(name).ok_or_else(|| LedgerError::Query(format!("no column {name}")))?;
        let cast = arrow::compute::cast(column, &DataType::Int64).map_err(|e| LedgerError::Query(format!("column {name}: {e}")))?;
        let a = cast.as_primitive::<Int64Type>();
        Ok((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect())
    }
}

/// The common columns of a movement row.
struct Movement {
    event_id: String,
    ts_us: i64,
    amount_minor: i64,
    currency: Currency,
}

/// Reads the common columns of row `i`, or says why the row cannot be booked.
fn movement(
    ids: &[Option<String>],
    ts: &[Option<i64>],
    amounts: &[Option<i64>],
    currencies: &[Option<String>],
    i: usize,
) -> Result<Movement, (String, String)> {
    let event_id = ids[i].clone().unwrap_or_default();
    let fail = |why: &str| Err((event_id.clone(), why.to_string()));
    if event_id.is_empty() || event_id.len() > ID_BYTES_MAX {
        return fail("event_id: missing or too long");
    }
    let Some(ts_us) = ts[i] else { return fail("ts: missing") };
    let amount_minor = match amounts[i] {
        Some(a) if a > 0 && a <= crate::transaction::AMOUNT_MINOR_MAX => a,
        Some(a) => return Err((event_id.clone(), format!("amount: {a} is not a positive amount within the ledger's limit"))),
        None => return fail("amount: missing"),
    };
    let Some(currency) = currencies[i].as_deref().and_then(Currency::parse) else {
        return fail("currency: missing or not an ISO 4217 code");
    };
    Ok(Movement { event_id, ts_us, amount_minor, currency })
}

fn revenue_rows(batch: &RecordBatch, prefix: &str, opts: &DeriveOptions, out: &mut Derived) -> Result<(), LedgerError> {
    let c = Columns { batch };
    let (ids, ts, amounts, currencies) = (c.texts("event_id")?, c.ints("ts_us")?, c.ints("amount")?, c.texts("currency")?);
    let (streams, partners, products, scenarios, channels) =
        (c.texts("stream")?, c.texts("partner")?, c.texts("product")?, c.texts("scenario")?, c.texts("channel")?);
    for i in 0..batch.num_rows() {
        let m = match movement(&ids, &ts, &amounts, &currencies, i) {
            Ok(m) => m,
            Err((id, why)) => {
                out.skip(&id, why);
                continue;
            }
        };
        let Some(stream) = streams[i].as_deref().and_then(Stream::parse) else {
            out.skip(&m.event_id, format!("stream: '{}' is not a revenue stream", streams[i].as_deref().unwrap_or("")));
            continue;
        };
        let revenue = Account {
            kind: AccountKind::Revenue,
            stream: Some(stream),
            product: dimension(&products[i]),
            channel: dimension(&channels[i]),
            scenario: dimension(&scenarios[i]),
            partner: dimension(&partners[i]),
        };
        let terms = opts.terms.get(&stream).copied().unwrap_or(Settlement::Immediate);
        out.transactions.extend(recognition(prefix, &m, revenue, terms, opts.as_of_us));
    }
    Ok(())
}

/// A dimension value, dropped when it could not be an account's (the movement is still booked).
fn dimension(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| crate::account::check_dimension("dimension", v).is_ok()).cloned()
}

/// The recognition of a revenue movement and, when it settles later and is due by `as_of_us`,
/// its settlement.
fn recognition(prefix: &str, m: &Movement, revenue: Account, terms: Settlement, as_of_us: i64) -> Vec<Transaction> {
    let received = revenue.as_kind(if terms == Settlement::Immediate { AccountKind::Cash } else { AccountKind::Receivable });
    let id = format!("{prefix}:{}", m.event_id);
    let legs = |debit: Account, credit: Account| {
        vec![
            Posting { account: debit, amount_minor: m.amount_minor, currency: m.currency },
            Posting { account: credit, amount_minor: -m.amount_minor, currency: m.currency },
        ]
    };
    let tx = |id: String, booked_us: i64, kind: TxKind, postings: Vec<Posting>| Transaction {
        id,
        booked_us,
        kind,
        source_event_id: Some(m.event_id.clone()),
        memo: None,
        postings,
    };
    let mut out = vec![tx(id.clone(), m.ts_us, TxKind::Recognition, legs(received.clone(), revenue.clone()))];
    if let Settlement::NextMonthDay(d) = terms {
        let settled_us = day_start_us(Period::Month.next_start(day_of(m.ts_us)) + i64::from(d) - 1);
        if settled_us <= as_of_us {
            out.push(tx(format!("{id}:settled"), settled_us, TxKind::Settlement, legs(revenue.as_kind(AccountKind::Cash), received)));
        }
    }
    out
}

fn cost_rows(batch: &RecordBatch, out: &mut Derived) -> Result<(), LedgerError> {
    let c = Columns { batch };
    let (ids, ts, amounts, currencies) = (c.texts("event_id")?, c.ints("ts_us")?, c.ints("amount")?, c.texts("currency")?);
    let (costs, channels) = (c.texts("cost")?, c.texts("channel")?);
    for i in 0..batch.num_rows() {
        let m = match movement(&ids, &ts, &amounts, &currencies, i) {
            Ok(m) => m,
            Err((id, why)) => {
                out.skip(&id, why);
                continue;
            }
        };
        let kind = if costs[i].as_deref() == Some("acquisition") { CostKind::Acquisition } else { CostKind::Rewards };
        let expense = Account { channel: dimension(&channels[i]), ..Account::new(AccountKind::Expense(kind)) };
        let cash = expense.as_kind(AccountKind::Cash);
        out.transactions.push(Transaction {
            id: format!("cost:{}", m.event_id),
            booked_us: m.ts_us,
            kind: TxKind::Cost,
            source_event_id: Some(m.event_id.clone()),
            memo: None,
            postings: vec![
                Posting { account: expense, amount_minor: m.amount_minor, currency: m.currency },
                Posting { account: cash, amount_minor: -m.amount_minor, currency: m.currency },
            ],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_commission_settles_on_the_configured_day_of_the_next_month_once_due() {
        let ts = finpulse_core::time::parse_rfc3339_us("2026-01-20T12:00:00+08:00").unwrap();
        let m = Movement { event_id: "e1".into(), ts_us: ts, amount_minor: 250, currency: Currency::CNY };
        let revenue = Account::new(AccountKind::Revenue).with_stream(Stream::ScenarioFinance);
        let due = finpulse_core::time::parse_rfc3339_us("2026-02-10T00:00:00+08:00").unwrap();
        let before = recognition("rev", &m, revenue.clone(), Settlement::NextMonthDay(10), due - 1);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].postings[0].account.kind, AccountKind::Receivable);
        let after = recognition("rev", &m, revenue.clone(), Settlement::NextMonthDay(10), due);
        assert_eq!(after.len(), 2);
        assert_eq!((after[1].id.as_str(), after[1].booked_us), ("rev:e1:settled", due));
        for t in &after {
            t.check().unwrap();
        }
        let now = recognition("rev", &m, revenue, Settlement::Immediate, 0);
        assert_eq!((now.len(), now[0].postings[0].account.kind), (1, AccountKind::Cash));
    }

    #[test]
    fn settlement_days_past_the_28th_are_refused_by_name() {
        let mut opts = DeriveOptions::standard(0);
        opts.terms.insert(Stream::ApiEcosystem, Settlement::NextMonthDay(31));
        assert!(opts.check().unwrap_err().to_string().starts_with("terms.api_ecosystem:"));
    }
}
