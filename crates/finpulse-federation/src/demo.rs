//! The UCI credit-default table (Taiwan, 2005) split by columns the way two institutions would
//! hold it: the lender (guest) knows who defaulted and each client's repayment status
//! (`PAY_*`); a payment company (host) knows the bills and payments (`BILL_AMT*`, `PAY_AMT*`).
//! Limit, sex, education, marriage and age are left out: in this story neither party's
//! business gives it them. Each side also holds ids the other does not, so the job starts with
//! an intersection. Held out for scoring: every fifth client by id.

use std::path::Path;

use crate::FederationError;
use crate::table::Table;

/// The guest's feature columns.
pub const GUEST_FEATURES: [&str; 6] = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"];
/// The host's feature columns.
pub const HOST_FEATURES: [&str; 12] = [
    "BILL_AMT1",
    "BILL_AMT2",
    "BILL_AMT3",
    "BILL_AMT4",
    "BILL_AMT5",
    "BILL_AMT6",
    "PAY_AMT1",
    "PAY_AMT2",
    "PAY_AMT3",
    "PAY_AMT4",
    "PAY_AMT5",
    "PAY_AMT6",
];
/// The label column.
pub const LABEL: &str = "default.payment.next.month";

/// One party's rows: ids and features (and, at the guest, labels) in the party's own order.
#[derive(Debug, Clone)]
pub struct PartyData {
    /// User ids.
    pub ids: Vec<String>,
    /// Feature columns.
    pub features: Table,
    /// 0/1 labels (the guest only; empty at the host).
    pub labels: Vec<f64>,
}

impl PartyData {
    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Self {
        Self {
            ids: rows.iter().map(|&r| self.ids[r].clone()).collect(),
            features: self.features.take(rows),
            labels: if self.labels.is_empty() { Vec::new() } else { rows.iter().map(|&r| self.labels[r]).collect() },
        }
    }
}

/// The two parties' tables: the guest lacks every 23rd client and the host every 19th; the
/// host lists its clients in reverse order.
pub fn credit_split(path: &Path) -> Result<(PartyData, PartyData), FederationError> {
    let table = Table::read_csv(path)?;
    let ids: Vec<String> = table.column("ID")?.iter().map(|id| format!("client-{id}")).collect();
    let labels = table.column(LABEL)?.to_vec();
    let guest_rows: Vec<usize> = (0..table.rows()).filter(|r| r % 23 != 7).collect();
    let host_rows: Vec<usize> = (0..table.rows()).rev().filter(|r| r % 19 != 3).collect();
    let guest = PartyData { ids: ids.clone(), features: table.select(&GUEST_FEATURES)?, labels };
    let host = PartyData { ids, features: table.select(&HOST_FEATURES)?, labels: Vec::new() };
    Ok((guest.take(&guest_rows), host.take(&host_rows)))
}

/// Whether a client is held out for scoring: every fifth by id (ids are `client-N`).
pub fn held_out(id: &str) -> bool {
    id.rsplit('-').next().and_then(|n| n.parse::<f64>().ok()).is_some_and(|n| (n as u64).is_multiple_of(5))
}
