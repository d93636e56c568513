//! Lifetime value per acquisition group (channel, signup cohort) against what acquiring the
//! group cost: CLV per acquired user, CAC and LTV:CAC — the numbers a growth team moves budget
//! by.

use serde::Serialize;
use std::collections::BTreeMap;

/// One group's value and cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupValue {
    /// The channel, or the cohort's label.
    pub group: String,
    /// Users acquired in the group.
    pub users_acquired: u64,
    /// Of them, customers with a purchase (the ones the LTV model scored).
    pub customers: u64,
    /// Predicted CLV summed over the group's customers.
    pub clv_total: f64,
    /// Predicted CLV per acquired user (users without purchases count as 0).
    pub clv_per_user: f64,
    /// Acquisition spend, when known.
    pub spend: Option<f64>,
    /// Spend per acquired user.
    pub cac: Option<f64>,
    /// CLV per user over CAC: above 1 the channel pays back within the CLV horizon.
    pub ltv_to_cac: Option<f64>,
}

/// Aggregates per-customer CLV (`(group, clv)`, one per customer) by group, with the number of
/// users acquired per group and the spend per group. Groups appear in name order; a group with
/// acquired users but no customers has a CLV of 0, and one with spend but no users has no CAC.
pub fn by_group<'a>(
    clv: impl IntoIterator<Item = (&'a str, f64)>,
    acquired: &BTreeMap<String, u64>,
    spend: &BTreeMap<String, f64>,
) -> Vec<GroupValue> {
    let mut totals: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for (group, value) in clv {
        let t = totals.entry(group.to_string()).or_default();
        t.0 += 1;
        t.1 += value;
    }
    let mut groups: Vec<&String> = totals.keys().chain(acquired.keys()).chain(spend.keys()).collect();
    groups.sort();
    groups.dedup();
    groups
        .into_iter()
        .map(|g| {
            let (customers, clv_total) = totals.get(g).copied().unwrap_or_default();
            let users = acquired.get(g).copied().unwrap_or(0).max(customers);
            let clv_per_user = if users > 0 { clv_total / users as f64 } else { 0.0 };
            let spend = spend.get(g).copied();
            let cac = spend.filter(|_| users > 0).map(|s| s / users as f64);
            let ltv_to_cac = cac.filter(|&c| c > 0.0).map(|c| clv_per_user / c);
            GroupValue { group: g.clone(), users_acquired: users, customers, clv_total, clv_per_user, spend, cac, ltv_to_cac }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clv_is_spread_over_every_acquired_user_and_set_against_spend() {
        let clv = [("douyin", 30.0), ("douyin", 10.0), ("referral", 50.0)];
        let acquired = BTreeMap::from([("douyin".to_string(), 4), ("referral".to_string(), 1), ("offline".to_string(), 2)]);
        let spend = BTreeMap::from([("douyin".to_string(), 200.0), ("referral".to_string(), 10.0), ("tv".to_string(), 99.0)]);
        let g = by_group(clv, &acquired, &spend);
        let names: Vec<&str> = g.iter().map(|v| v.group.as_str()).collect();
        assert_eq!(names, ["douyin", "offline", "referral", "tv"]);
        // douyin: 40 over 4 users = 10 per user; CAC 50; LTV:CAC 0.2.
        assert_eq!((g[0].customers, g[0].clv_per_user, g[0].cac, g[0].ltv_to_cac), (2, 10.0, Some(50.0), Some(0.2)));
        // offline: users but no customers and no spend.
        assert_eq!((g[1].clv_per_user, g[1].cac, g[1].ltv_to_cac), (0.0, None, None));
        assert_eq!(g[2].ltv_to_cac, Some(5.0));
        // tv: spend, nobody acquired: no CAC rather than a division by zero.
        assert_eq!((g[3].users_acquired, g[3].cac), (0, None));
    }
}
