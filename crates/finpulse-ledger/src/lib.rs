//! The revenue ledger and the profit balance.
//!
//! The ledger (`ledger.rs`) keeps every revenue and cost movement as a double-entry
//! [`Transaction`] in minor units with a currency: its postings sum to zero in every currency,
//! checked before a transaction is written and again, over the whole ledger, after. A
//! transaction is never edited: reversals and refunds are new transactions that refer to the
//! one they undo. The journal (`journal.rs`) is append-only, framed with CRC32C and fsync'd
//! before a post returns; posting an id again is idempotent.
//!
//! `derive.rs` turns the store's `revenue`, `marketing_spend`, `task_completed` and fee-carrying
//! events into transactions (ids from event ids, so replays change nothing), `report.rs` sums
//! them by stream, product, channel, scenario and partner per day, week or month in the accrual
//! or the cash view, `profit` holds the revenue mix to its guardrails (share, growth and margin
//! bounds, projections to the period end, alerts, what-if) and `sql.rs` gives the postings as
//! Arrow for a `ledger` SQL table. Knows no HTTP or JSON wire format of its own.

pub mod account;
pub mod alerts;
pub mod derive;
mod journal;
pub mod ledger;
pub mod period;
pub mod profit;
pub mod report;
pub mod sql;
pub mod transaction;

pub use account::{Account, AccountKind, CostKind, Stream};
pub use ledger::{Ledger, Posted};
pub use transaction::{Posting, Transaction, TxKind};

use finpulse_core::money::Currency;
use std::path::PathBuf;

/// The ledger's folder inside a data directory.
pub const LEDGER_DIR: &str = "ledger";

/// The ledger's folder in `data_dir`.
pub fn ledger_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join(LEDGER_DIR)
}

/// Why the ledger refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A field of a transaction, request or configuration is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field (e.g. `postings[1].amount_minor`, `guardrails[0].share_max`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The postings do not sum to zero in every currency.
    #[error("transaction {id} is unbalanced: {}", by_currency.iter().map(|(c, s)| format!("{c} {s:+}")).collect::<Vec<_>>().join(", "))]
    Unbalanced {
        /// The transaction.
        id: String,
        /// Each currency whose postings do not sum to zero, with their sum.
        by_currency: Vec<(Currency, i64)>,
    },
    /// An id already posted with other content (a retry must repeat the first content).
    #[error("transaction {id} was already posted with other content")]
    Conflict {
        /// The transaction id.
        id: String,
    },
    /// A reversal or refund names a transaction the ledger does not hold.
    #[error("{field}: no transaction {id} in the ledger")]
    Unknown {
        /// The field that named it.
        field: String,
        /// The id named.
        id: String,
    },
    /// A transaction may be reversed once, and a reversal or refund never.
    #[error("transaction {id} cannot be {what}: {why}")]
    NotUndoable {
        /// The transaction.
        id: String,
        /// `reversed` or `refunded`.
        what: &'static str,
        /// Why not.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A journal is damaged (not at its tail), named by byte offset.
    #[error("{path}: damaged at byte {offset}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What was found.
        why: String,
    },
    /// Another process has the ledger open.
    #[error("ledger {path} is open in another process")]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// An earlier write or fsync failed; the ledger takes no writes until reopened.
    #[error("{path}: writes stopped after a failed write ({why}); reopen the ledger")]
    Failed {
        /// The journal.
        path: PathBuf,
        /// The first failure.
        why: String,
    },
    /// A query over the events failed.
    #[error("query failed: {0}")]
    Query(String),
}

impl LedgerError {
    /// An invalid-field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_path_buf(), source }
    }
}

impl From<finpulse_query::QueryError> for LedgerError {
    fn from(e: finpulse_query::QueryError) -> Self {
        Self::Query(e.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for LedgerError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Query(e.to_string())
    }
}
