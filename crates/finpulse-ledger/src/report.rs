//! Reports: revenue and cost by dimension and period, in the accrual or the cash view, and
//! balances.
//!
//! - Accrual: revenue when it is recognised (credits to revenue accounts, net of refunds and
//!   reversals), costs when incurred (debits to expense accounts).
//! - Cash: revenue when the money arrives (cash postings that carry a stream: receipts at once,
//!   settlements of receivables, refunds paid back), costs when paid (cash credited by a
//!   transaction that debits an expense).

use crate::LedgerError;
use crate::account::{Account, AccountKind};
use crate::ledger::State;
use crate::period::{Period, day_of};
use crate::transaction::Transaction;
use finpulse_core::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// When revenue and cost count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// When earned or incurred.
    Accrual,
    /// When received or paid.
    Cash,
}

impl View {
    /// Parses `accrual` or `cash`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "accrual" => Some(Self::Accrual),
            "cash" => Some(Self::Cash),
            _ => None,
        }
    }
}

/// A dimension a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The revenue stream.
    Stream,
    /// The product.
    Product,
    /// The acquisition or spend channel.
    Channel,
    /// The partner scenario.
    Scenario,
    /// The partner or developer application.
    Partner,
    /// The account kind (`revenue`, `expense:acquisition`, …).
    Kind,
}

impl Dimension {
    /// Parses a dimension's name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Stream, Self::Product, Self::Channel, Self::Scenario, Self::Partner, Self::Kind].into_iter().find(|d| d.name() == text)
    }

    /// The name requests and columns use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Product => "product",
            Self::Channel => "channel",
            Self::Scenario => "scenario",
            Self::Partner => "partner",
            Self::Kind => "kind",
        }
    }

    fn of(self, a: &Account) -> Option<String> {
        match self {
            Self::Stream => a.stream.map(|s| s.name().to_string()),
            Self::Product => a.product.clone(),
            Self::Channel => a.channel.clone(),
            Self::Scenario => a.scenario.clone(),
            Self::Partner => a.partner.clone(),
            Self::Kind => Some(a.kind.name()),
        }
    }
}

/// What to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// Accrual or cash.
    pub view: View,
    /// Day, week or month.
    pub period: Period,
    /// The dimensions to group by, at most one of each.
    pub by: Vec<Dimension>,
    /// The first business day counted (inclusive), if any.
    pub from_day: Option<i64>,
    /// The last business day counted (inclusive), if any.
    pub to_day: Option<i64>,
}

impl ReportRequest {
    /// Checks the request, naming the field at fault.
    pub fn check(&self) -> Result<(), LedgerError> {
        for (i, d) in self.by.iter().enumerate() {
            if self.by[..i].contains(d) {
                return Err(LedgerError::invalid(format!("by[{i}]"), format!("{} is named twice", d.name())));
            }
        }
        if let (Some(from), Some(to)) = (self.from_day, self.to_day)
            && from > to
        {
            return Err(LedgerError::invalid("to", "is before from"));
        }
        Ok(())
    }
}

/// One row of a report: a period, one value per dimension asked for, a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The first business day of the period.
    pub period_start_day: i64,
    /// The period as text (`2026-03-05`, `2026-W10`, `2026-03`).
    pub period: String,
    /// The values of the dimensions asked for, in order (`None`: the movement has none).
    pub keys: Vec<Option<String>>,
    /// The currency.
    pub currency: String,
    /// Revenue, minor units (net of refunds and reversals).
    pub revenue_minor: i128,
    /// Cost, minor units.
    pub cost_minor: i128,
}

/// What a posting counts for in a view: revenue or cost, and how much.
pub(crate) enum Counted {
    Revenue(i128),
    Cost(i128),
}

/// What each posting of `tx` counts for in `view` (postings that count for nothing are left out).
pub(crate) fn counted(tx: &Transaction, view: View) -> impl Iterator<Item = (&crate::Posting, Counted)> {
    let pays_cost = tx.postings.iter().any(|p| matches!(p.account.kind, AccountKind::Expense(_)));
    tx.postings.iter().filter_map(move |p| {
        let amount = i128::from(p.amount_minor);
        let c = match (view, p.account.kind) {
            (View::Accrual, AccountKind::Revenue) => Counted::Revenue(-amount),
            (View::Accrual, AccountKind::Expense(_)) => Counted::Cost(amount),
            (View::Cash, AccountKind::Cash) if p.account.stream.is_some() => Counted::Revenue(amount),
            (View::Cash, AccountKind::Cash) if pays_cost => Counted::Cost(-amount),
            _ => return None,
        };
        Some((p, c))
    })
}

/// A report row's key (period start, dimension values, currency) and its (revenue, cost).
type Sums = BTreeMap<(i64, Vec<Option<String>>, Currency), (i128, i128)>;

/// Revenue and cost by period and the dimensions asked for.
pub fn report(state: &State, req: &ReportRequest) -> Result<Vec<ReportRow>, LedgerError> {
    req.check()?;
    let mut sums = Sums::new();
    for tx in state.transactions() {
        let day = day_of(tx.booked_us);
        if req.from_day.is_some_and(|f| day < f) || req.to_day.is_some_and(|t| day > t) {
            continue;
        }
        let start = req.period.start(day);
        for (p, c) in counted(tx, req.view) {
            let keys = req.by.iter().map(|d| d.of(&p.account)).collect();
            let sum = sums.entry((start, keys, p.currency)).or_insert((0, 0));
            match c {
                Counted::Revenue(v) => sum.0 += v,
                Counted::Cost(v) => sum.1 += v,
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|((start, keys, currency), (revenue_minor, cost_minor))| ReportRow {
            period_start_day: start,
            period: req.period.label(start),
            keys,
            currency: currency.to_string(),
            revenue_minor,
            cost_minor,
        })
        .collect())
}

/// One account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// The account.
    pub account: Account,
    /// The currency.
    pub currency: String,
    /// Debit positive, credit negative, minor units.
    pub balance_minor: i128,
}

/// Every account's balance at the end of business day `as_of_day` (all of it when `None`).
/// The balances of each currency sum to zero.
pub fn balances(state: &State, as_of_day: Option<i64>) -> Vec<Balance> {
    let rows: BTreeMap<(Account, Currency), i128> = match as_of_day {
        None => state.balances().clone(),
        Some(last) => {
            let mut m = BTreeMap::new();
            for tx in state.transactions().iter().filter(|t| day_of(t.booked_us) <= last) {
                for p in &tx.postings {
                    *m.entry((p.account.clone(), p.currency)).or_insert(0) += i128::from(p.amount_minor);
                }
            }
            m
        }
    };
    rows.into_iter()
        .filter(|(_, b)| *b != 0)
        .map(|((account, currency), balance_minor)| Balance { account, currency: currency.to_string(), balance_minor })
        .collect()
}
