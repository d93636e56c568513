//! Accounts: a kind (revenue, receivable, cash, an expense) plus the dimensions revenue is
//! reported by (stream, product, channel, scenario, partner).

use crate::LedgerError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest value of one dimension (a product, channel, scenario or partner id), in bytes.
pub const DIMENSION_BYTES_MAX: usize = 64;

/// A revenue stream, as the `revenue` event's `stream` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Interest on loans.
    Interest,
    /// Fees: withdrawals, late repayments, distribution of wealth products.
    Fees,
    /// Value-added services (e.g. robo-advice subscriptions).
    ValueAdded,
    /// Commissions on instalments inside partner scenarios.
    ScenarioFinance,
    /// Revenue from third-party developers on the open API.
    ApiEcosystem,
}

impl Stream {
    /// Every stream, in report order.
    pub const ALL: [Self; 5] = [Self::Interest, Self::Fees, Self::ValueAdded, Self::ScenarioFinance, Self::ApiEcosystem];

    /// The name events and configuration use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interest => "interest",
            Self::Fees => "fees",
            Self::ValueAdded => "value_added",
            Self::ScenarioFinance => "scenario_finance",
            Self::ApiEcosystem => "api_ecosystem",
        }
    }

    /// The stream of a name; `None` for any other text.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a cost was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// Marketing spend to acquire users (`marketing_spend`).
    Acquisition,
    /// Rewards paid to users (`task_completed.reward_fen`).
    Rewards,
    /// The cost of the money lent.
    FundingCost,
    /// Credit losses written off.
    CreditLoss,
}

impl CostKind {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Acquisition => "acquisition",
            Self::Rewards => "rewards",
            Self::FundingCost => "funding_cost",
            Self::CreditLoss => "credit_loss",
        }
    }
}

/// The kind of an account. Debits are positive amounts, credits negative: revenue accounts
/// carry credit (negative) balances, cash and expenses debit (positive) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "of")]
pub enum AccountKind {
    /// Revenue recognised (accrual); needs a stream.
    Revenue,
    /// Revenue recognised and not yet received; needs a stream.
    Receivable,
    /// Money held. A cash account carries a stream only for revenue received or refunded.
    Cash,
    /// A cost; may carry the stream it is attributed to.
    Expense(CostKind),
}

impl AccountKind {
    /// The name reports use (`revenue`, `cash`, `expense:acquisition`, …).
    pub fn name(self) -> String {
        match self {
            Self::Revenue => "revenue".into(),
            Self::Receivable => "receivable".into(),
            Self::Cash => "cash".into(),
            Self::Expense(c) => format!("expense:{}", c.name()),
        }
    }
}

/// An account: its kind and the dimensions it is kept by. Two postings to the same kind with
/// the same dimensions reach the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Account {
    /// The kind.
    pub kind: AccountKind,
    /// The revenue stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// The product (wealth or loan product id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The user's acquisition channel, or the channel a cost was spent on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The partner scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The partner or developer application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

impl Account {
    /// An account of `kind` with no dimensions.
    pub fn new(kind: AccountKind) -> Self {
        Self { kind, stream: None, product: None, channel: None, scenario: None, partner: None }
    }

    /// The same account with a stream.
    pub fn with_stream(mut self, stream: Stream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// The same account with another kind (same dimensions).
    pub fn as_kind(&self, kind: AccountKind) -> Self {
        Self { kind, ..self.clone() }
    }

    /// Checks the account's shape; `at` names where it sits (e.g. `postings[1].account`).
    pub fn check(&self, at: &str) -> Result<(), LedgerError> {
        if matches!(self.kind, AccountKind::Revenue | AccountKind::Receivable) && self.stream.is_none() {
            return Err(LedgerError::invalid(format!("{at}.stream"), format!("a {} account needs a stream", self.kind.name())));
        }
        for (name, value) in self.dimensions() {
            if let Some(v) = value {
                check_dimension(&format!("{at}.{name}"), v)?;
            }
        }
        Ok(())
    }

    /// The text dimensions by name.
    pub fn dimensions(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("product", self.product.as_deref()),
            ("channel", self.channel.as_deref()),
            ("scenario", self.scenario.as_deref()),
            ("partner", self.partner.as_deref()),
        ]
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.name())?;
        if let Some(s) = self.stream {
            write!(f, "/{s}")?;
        }
        for (name, value) in self.dimensions() {
            if let Some(v) = value {
                write!(f, "/{name}={v}")?;
            }
        }
        Ok(())
    }
}

/// Checks one dimension value: not empty, at most [`DIMENSION_BYTES_MAX`] bytes, no control
/// characters (they would break reports and CSV exports).
pub fn check_dimension(field: &str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() {
        return Err(LedgerError::invalid(field, "is empty"));
    }
    if value.len() > DIMENSION_BYTES_MAX {
        return Err(LedgerError::invalid(field, format!("is {} bytes, over the limit of {DIMENSION_BYTES_MAX}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(LedgerError::invalid(field, "holds a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip_and_unknown_names_are_none() {
        for s in Stream::ALL {
            assert_eq!(Stream::parse(s.name()), Some(s));
        }
        assert_eq!(Stream::parse("Interest"), None);
        assert_eq!(Stream::parse("royalties"), None);
    }

    #[test]
    fn revenue_accounts_need_a_stream_and_dimensions_are_bounded() {
        let err = Account::new(AccountKind::Revenue).check("postings[0].account").unwrap_err();
        assert!(err.to_string().contains("postings[0].account.stream"), "{err}");
        let mut a = Account::new(AccountKind::Cash);
        a.partner = Some("p".repeat(DIMENSION_BYTES_MAX + 1));
        assert!(a.check("x").unwrap_err().to_string().contains("x.partner"));
        a.partner = Some("a\nb".into());
        assert!(a.check("x").unwrap_err().to_string().contains("control"));
        a.partner = Some("partner_travel".into());
        a.check("x").unwrap();
    }
}
