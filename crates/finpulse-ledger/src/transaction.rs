//! Transactions: postings in minor units with a currency that sum to zero per currency.

use crate::LedgerError;
use crate::account::{Account, AccountKind};
use finpulse_core::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest transaction id, in bytes.
pub const TX_ID_BYTES_MAX: usize = 160;
/// The most postings one transaction holds.
pub const POSTINGS_MAX: usize = 32;
/// The largest amount one posting moves, in minor units (10 billion yuan): far above any real
/// movement, and low enough that no sum of postings within a transaction overflows.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000;
/// The longest memo, in bytes.
pub const MEMO_BYTES_MAX: usize = 256;

/// Why a transaction exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TxKind {
    /// Revenue recognised (from a `revenue` event or a fee carried by a money movement).
    Recognition,
    /// Revenue recognised earlier received in cash.
    Settlement,
    /// A cost.
    Cost,
    /// A whole earlier transaction undone: every posting negated.
    Reversal {
        /// The transaction reversed.
        of: String,
    },
    /// Part or all of earlier revenue paid back to the customer.
    Refund {
        /// The recognition refunded.
        of: String,
    },
    /// Entered by a person (an adjustment, a funding cost, a write-off).
    Manual,
}

impl TxKind {
    /// The name reports and the SQL table use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Recognition => "recognition",
            Self::Settlement => "settlement",
            Self::Cost => "cost",
            Self::Reversal { .. } => "reversal",
            Self::Refund { .. } => "refund",
            Self::Manual => "manual",
        }
    }

    /// The transaction this one refers to, for reversals and refunds.
    pub fn refers_to(&self) -> Option<&str> {
        match self {
            Self::Reversal { of } | Self::Refund { of } => Some(of),
            _ => None,
        }
    }
}

/// One leg of a transaction: a signed amount (debit positive, credit negative) on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account.
    pub account: Account,
    /// Minor units (fen for CNY); debit positive, credit negative, never zero.
    pub amount_minor: i64,
    /// The currency.
    #[serde(with = "currency_code")]
    pub currency: Currency,
}

/// A balanced set of postings, identified by an id that makes posting it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Unique id; posting an id again with the same content changes nothing.
    pub id: String,
    /// When the movement happened (its business time), UTC microseconds.
    pub booked_us: i64,
    /// Why it exists.
    #[serde(flatten)]
    pub kind: TxKind,
    /// The event it was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_event_id: Option<String>,
    /// A note from whoever entered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The postings, at least two.
    pub postings: Vec<Posting>,
}

impl Transaction {
    /// Checks every rule a transaction keeps on its own: id and memo within limits, 2 to
    /// [`POSTINGS_MAX`] postings, each non-zero and within [`AMOUNT_MINOR_MAX`] on a
    /// well-formed account, and the postings summing to zero in every currency.
    pub fn check(&self) -> Result<(), LedgerError> {
        check_id("id", &self.id)?;
        if let Some(of) = self.kind.refers_to() {
            check_id("of", of)?;
        }
        if self.memo.as_ref().is_some_and(|m| m.len() > MEMO_BYTES_MAX) {
            return Err(LedgerError::invalid("memo", format!("over the limit of {MEMO_BYTES_MAX} bytes")));
        }
        if self.postings.len() < 2 || self.postings.len() > POSTINGS_MAX {
            let n = self.postings.len();
            return Err(LedgerError::invalid("postings", format!("{n} postings (2 to {POSTINGS_MAX} expected)")));
        }
        for (i, p) in self.postings.iter().enumerate() {
            p.account.check(&format!("postings[{i}].account"))?;
            if p.amount_minor == 0 || p.amount_minor.unsigned_abs() > AMOUNT_MINOR_MAX as u64 {
                let why = format!("{} is not a non-zero amount within ±{AMOUNT_MINOR_MAX}", p.amount_minor);
                return Err(LedgerError::invalid(format!("postings[{i}].amount_minor"), why));
            }
        }
        self.check_cash_attribution()?;
        let unbalanced: Vec<(Currency, i64)> = self.sums().into_iter().filter(|(_, sum)| *sum != 0).collect();
        if !unbalanced.is_empty() {
            return Err(LedgerError::Unbalanced { id: self.id.clone(), by_currency: unbalanced });
        }
        Ok(())
    }

    /// The sum of the postings per currency (exact: each is within [`AMOUNT_MINOR_MAX`] and
    /// there are at most [`POSTINGS_MAX`]).
    pub fn sums(&self) -> BTreeMap<Currency, i64> {
        let mut sums = BTreeMap::new();
        for p in &self.postings {
            *sums.entry(p.currency).or_insert(0) += p.amount_minor;
        }
        sums
    }

    /// Cash carries a stream only for revenue received or refunded, so the cash view of
    /// revenue never counts a cost: a transaction posting to an expense may not also post to
    /// cash with a stream.
    fn check_cash_attribution(&self) -> Result<(), LedgerError> {
        let has_expense = self.postings.iter().any(|p| matches!(p.account.kind, AccountKind::Expense(_)));
        let stream_cash = self.postings.iter().position(|p| p.account.kind == AccountKind::Cash && p.account.stream.is_some());
        match stream_cash {
            Some(i) if has_expense => Err(LedgerError::invalid(
                format!("postings[{i}].account.stream"),
                "cash paid for a cost carries no stream (the expense account does)",
            )),
            _ => Ok(()),
        }
    }

    /// The transaction that undoes this one: every posting negated, referring to it.
    pub fn reversal(&self, id: impl Into<String>, booked_us: i64, memo: Option<String>) -> Self {
        let postings = self.postings.iter().map(|p| Posting { amount_minor: -p.amount_minor, ..p.clone() }).collect();
        Self { id: id.into(), booked_us, kind: TxKind::Reversal { of: self.id.clone() }, source_event_id: None, memo, postings }
    }
}

fn check_id(field: &str, id: &str) -> Result<(), LedgerError> {
    if id.is_empty() || id.len() > TX_ID_BYTES_MAX {
        return Err(LedgerError::invalid(field, format!("{} bytes (1 to {TX_ID_BYTES_MAX} expected)", id.len())));
    }
    if id.chars().any(char::is_control) {
        return Err(LedgerError::invalid(field, "holds a control character"));
    }
    Ok(())
}

/// Serde for [`Currency`] as its ISO 4217 code.
pub(crate) mod currency_code {
    use finpulse_core::money::Currency;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).ok_or_else(|| serde::de::Error::custom(format!("'{code}' is not an ISO 4217 code")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{CostKind, Stream};

    fn cash(stream: Option<Stream>) -> Account {
        Account { stream, ..Account::new(AccountKind::Cash) }
    }

    fn tx(postings: Vec<(Account, i64, Currency)>) -> Transaction {
        Transaction {
            id: "t1".into(),
            booked_us: 0,
            kind: TxKind::Manual,
            source_event_id: None,
            memo: None,
            postings: postings.into_iter().map(|(account, amount_minor, currency)| Posting { account, amount_minor, currency }).collect(),
        }
    }

    #[test]
    fn balanced_postings_pass_and_unbalanced_ones_name_the_currency() {
        let revenue = Account::new(AccountKind::Revenue).with_stream(Stream::Fees);
        tx(vec![(cash(Some(Stream::Fees)), 500, Currency::CNY), (revenue.clone(), -500, Currency::CNY)]).check().unwrap();
        let err = tx(vec![(cash(Some(Stream::Fees)), 500, Currency::CNY), (revenue, -499, Currency::CNY)]).check().unwrap_err();
        assert!(matches!(&err, LedgerError::Unbalanced { by_currency, .. } if by_currency == &[(Currency::CNY, 1)]), "{err}");
        assert!(err.to_string().contains("CNY +1"), "{err}");
    }

    #[test]
    fn each_currency_balances_on_its_own() {
        let usd = Currency::parse("USD").unwrap();
        let err = tx(vec![(cash(None), 100, Currency::CNY), (cash(None), -100, usd)]).check().unwrap_err();
        assert!(matches!(err, LedgerError::Unbalanced { ref by_currency, .. } if by_currency.len() == 2));
    }

    #[test]
    fn bad_shapes_are_named() {
        let one = tx(vec![(cash(None), 0, Currency::CNY)]);
        assert!(one.check().unwrap_err().to_string().contains("postings: 1 postings"));
        let zero = tx(vec![(cash(None), 0, Currency::CNY), (cash(None), 0, Currency::CNY)]);
        assert!(zero.check().unwrap_err().to_string().contains("postings[0].amount_minor"));
        let huge = tx(vec![(cash(None), AMOUNT_MINOR_MAX + 1, Currency::CNY), (cash(None), -AMOUNT_MINOR_MAX - 1, Currency::CNY)]);
        assert!(huge.check().unwrap_err().to_string().contains("postings[0].amount_minor"));
        let mut no_id = tx(vec![(cash(None), 1, Currency::CNY), (cash(None), -1, Currency::CNY)]);
        no_id.id.clear();
        assert!(no_id.check().unwrap_err().to_string().starts_with("id:"));
        let cost = Account::new(AccountKind::Expense(CostKind::FundingCost)).with_stream(Stream::Interest);
        let mixed = tx(vec![(cost, 10, Currency::CNY), (cash(Some(Stream::Interest)), -10, Currency::CNY)]);
        assert!(mixed.check().unwrap_err().to_string().contains("postings[1].account.stream"));
    }

    #[test]
    fn a_reversal_negates_every_posting_and_refers_to_the_original() {
        let revenue = Account::new(AccountKind::Revenue).with_stream(Stream::Interest);
        let original = tx(vec![(cash(Some(Stream::Interest)), 700, Currency::CNY), (revenue, -700, Currency::CNY)]);
        let r = original.reversal("t1:rev", 5, None);
        r.check().unwrap();
        assert_eq!(r.kind, TxKind::Reversal { of: "t1".into() });
        assert_eq!(r.postings.iter().map(|p| p.amount_minor).collect::<Vec<_>>(), vec![-700, 700]);
    }

    #[test]
    fn transactions_round_trip_through_json() {
        let revenue = Account::new(AccountKind::Revenue).with_stream(Stream::Fees);
        let mut t = tx(vec![(cash(Some(Stream::Fees)), 5, Currency::CNY), (revenue, -5, Currency::CNY)]);
        t.kind = TxKind::Refund { of: "t0".into() };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), t);
    }
}
