//! LTV-based pricing: every user gets an offer on a product by their value tier (CLV quantile)
//! and churn-risk band, from a discount matrix the pricing team writes — bounded by two
//! guardrails that no cell can break: a cap on the discount, and a floor on the margin left
//! after it. Each offer says which guardrail, if any, bound it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Floating-point noise ignored when rounding a price up to the fen.
const PRICE_ROUNDING_SLACK_FEN: f64 = 1e-6;
/// Value tiers, highest first.
pub const LTV_TIERS: &[&str] = &["high", "mid", "low"];
/// Churn-risk bands; `lapsed` is a user with no recent activity (not scored by the churn model).
pub const RISK_BANDS: &[&str] = &["high", "medium", "low", "lapsed"];

/// A pricing policy for one product.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PricingPolicy {
    /// What is priced (e.g. the value-added membership).
    pub product: String,
    /// List price, minor units.
    pub list_price_fen: i64,
    /// Cost to serve one unit, minor units.
    pub unit_cost_fen: i64,
    /// Guardrail: the margin left after a discount, as a share of the price paid, never falls
    /// below this (percent).
    pub margin_floor_pct: f64,
    /// Guardrail: no discount above this (percent).
    pub discount_cap_pct: f64,
    /// Users at or above this CLV quantile are the `high` tier.
    pub ltv_high_quantile: f64,
    /// Users below this CLV quantile are the `low` tier.
    pub ltv_low_quantile: f64,
    /// Churn probability at or above which risk is `high`.
    pub risk_high: f64,
    /// Churn probability at or above which risk is `medium`.
    pub risk_medium: f64,
    /// Discount in percent per `"tier/band"` cell (e.g. `"high/high" = 25`); missing cells get 0.
    pub discounts_pct: BTreeMap<String, f64>,
}

impl Default for PricingPolicy {
    fn default() -> Self {
        let cell = |k: &str, v: f64| (k.to_string(), v);
        Self {
            product: "value_added_membership".into(),
            list_price_fen: 1500,
            unit_cost_fen: 300,
            margin_floor_pct: 60.0,
            discount_cap_pct: 30.0,
            ltv_high_quantile: 0.8,
            ltv_low_quantile: 0.3,
            risk_high: 0.5,
            risk_medium: 0.2,
            discounts_pct: BTreeMap::from([
                cell("high/high", 40.0),
                cell("high/medium", 15.0),
                cell("mid/high", 15.0),
                cell("mid/medium", 5.0),
            ]),
        }
    }
}

/// A policy that cannot be applied; the message names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("pricing policy: {0}")]
pub struct PolicyError(pub String);

impl PricingPolicy {
    /// Checks every field and the matrix's keys.
    pub fn check(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError(m));
        if self.list_price_fen <= 0 {
            return bad(format!("list_price_fen must be positive, not {}", self.list_price_fen));
        }
        if self.unit_cost_fen < 0 {
            return bad(format!("unit_cost_fen must not be negative, not {}", self.unit_cost_fen));
        }
        for (name, v) in [("margin_floor_pct", self.margin_floor_pct), ("discount_cap_pct", self.discount_cap_pct)] {
            if !(0.0..100.0).contains(&v) {
                return bad(format!("{name} must be in [0, 100), not {v}"));
            }
        }
        if self.margin_max_discount_pct() < 0.0 {
            return bad(format!(
                "margin_floor_pct {} cannot be met even at the list price ({} fen at a cost of {} fen)",
                self.margin_floor_pct, self.list_price_fen, self.unit_cost_fen
            ));
        }
        if !(0.0 < self.ltv_low_quantile && self.ltv_low_quantile < self.ltv_high_quantile && self.ltv_high_quantile < 1.0) {
            return bad(format!(
                "need 0 < ltv_low_quantile ({}) < ltv_high_quantile ({}) < 1",
                self.ltv_low_quantile, self.ltv_high_quantile
            ));
        }
        if !(0.0 < self.risk_medium && self.risk_medium < self.risk_high && self.risk_high < 1.0) {
            return bad(format!("need 0 < risk_medium ({}) < risk_high ({}) < 1", self.risk_medium, self.risk_high));
        }
        for (key, v) in &self.discounts_pct {
            let known = key.split_once('/').is_some_and(|(t, b)| LTV_TIERS.contains(&t) && RISK_BANDS.contains(&b));
            if !known {
                return bad(format!(
                    "discounts_pct: '{key}' is not a cell; cells are TIER/BAND with TIER in {LTV_TIERS:?} and BAND in {RISK_BANDS:?}"
                ));
            }
            if !(0.0..=100.0).contains(v) {
                return bad(format!("discounts_pct.\"{key}\" must be in [0, 100], not {v}"));
            }
        }
        Ok(())
    }

    /// The largest discount (percent) that keeps the margin floor.
    pub fn margin_max_discount_pct(&self) -> f64 {
        // price_paid − cost ≥ floor · price_paid  ⇔  price_paid ≥ cost / (1 − floor).
        let floor_price = self.unit_cost_fen as f64 / (1.0 - self.margin_floor_pct / 100.0);
        100.0 * (1.0 - floor_price / self.list_price_fen as f64)
    }
}

/// One user to price: their CLV and, when the churn model scored them, the churn probability.
#[derive(Clone, Debug, PartialEq)]
pub struct PricingInput {
    /// The user.
    pub user_id: String,
    /// Predicted CLV (0 without purchases).
    pub clv: f64,
    /// Churn probability; `None` for users without recent activity.
    pub churn_probability: Option<f64>,
}

/// How an offer is priced. Stored and sent as its lower-case name.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PriceTier {
    /// Discounted to keep a user at risk.
    Retention,
    /// A high-value user at full price.
    Premium,
    /// Everyone else, at full price.
    Standard,
}

impl PriceTier {
    /// Its name: retention, premium or standard.
    pub fn name(self) -> &'static str {
        match self {
            Self::Retention => "retention",
            Self::Premium => "premium",
            Self::Standard => "standard",
        }
    }

    /// The tier named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Retention, Self::Premium, Self::Standard].into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for PriceTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What a user is offered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Offer {
    /// The user.
    pub user_id: String,
    /// Their CLV.
    pub clv: f64,
    /// Their churn probability, if scored.
    pub churn_probability: Option<f64>,
    /// `high`, `mid` or `low`.
    pub ltv_tier: String,
    /// `high`, `medium`, `low` or `lapsed`.
    pub risk_band: String,
    /// `retention` (discounted), `premium` (high tier, full price) or `standard`.
    pub price_tier: PriceTier,
    /// Discount granted, percent.
    pub discount_pct: f64,
    /// Price offered, minor units.
    pub price_fen: i64,
    /// The guardrail that lowered the matrix's discount: `discount_cap` or `margin_floor`.
    pub bound_by: Option<String>,
}

/// Where the current offers live inside a data directory.
pub const OFFERS_FILE: &str = "pricing/offers.json";

/// A computed set of offers with what produced it, as stored for campaigns to read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OfferSet {
    /// Seconds since the Unix epoch when it was computed.
    pub computed_unix_secs: u64,
    /// The churn-risk date.
    pub as_of: String,
    /// The LTV calibration end.
    pub calibration_end: String,
    /// The churn model version used.
    pub churn_model_version: u32,
    /// The policy applied.
    pub policy: PricingPolicy,
    /// One offer per user, by user id.
    pub offers: Vec<Offer>,
}

/// The CLV at quantile `q` (nearest rank) of ascending `sorted`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Prices every user under `policy` (checked first). Tiers come from the CLV distribution of
/// `users` itself; a user whose CLV is 0 is never above the `low` tier.
pub fn assign(policy: &PricingPolicy, users: &[PricingInput]) -> Result<Vec<Offer>, PolicyError> {
    policy.check()?;
    let mut sorted: Vec<f64> = users.iter().map(|u| u.clv).collect();
    sorted.sort_by(f64::total_cmp);
    let (high_from, low_below) = if sorted.is_empty() {
        (f64::INFINITY, 0.0)
    } else {
        (quantile(&sorted, policy.ltv_high_quantile), quantile(&sorted, policy.ltv_low_quantile))
    };
    let margin_max = policy.margin_max_discount_pct();
    Ok(users
        .iter()
        .map(|u| {
            let tier = if u.clv > 0.0 && u.clv >= high_from {
                "high"
            } else if u.clv > 0.0 && u.clv >= low_below {
                "mid"
            } else {
                "low"
            };
            let band = match u.churn_probability {
                None => "lapsed",
                Some(p) if p >= policy.risk_high => "high",
                Some(p) if p >= policy.risk_medium => "medium",
                Some(_) => "low",
            };
            let wanted = policy.discounts_pct.get(&format!("{tier}/{band}")).copied().unwrap_or(0.0);
            let (discount, bound_by) = if wanted > margin_max.min(policy.discount_cap_pct) {
                if margin_max < policy.discount_cap_pct {
                    (margin_max, Some("margin_floor"))
                } else {
                    (policy.discount_cap_pct, Some("discount_cap"))
                }
            } else {
                (wanted, None)
            };
            // Rounded up to the fen, so rounding never takes the price under the margin floor
            // (less a hair, so 1049.9999999 and 1050.0000001 both mean 1050).
            let price_fen = (policy.list_price_fen as f64 * (1.0 - discount / 100.0) - PRICE_ROUNDING_SLACK_FEN).ceil() as i64;
            let price_tier = if discount > 0.0 {
                PriceTier::Retention
            } else if tier == "high" {
                PriceTier::Premium
            } else {
                PriceTier::Standard
            };
            Offer {
                user_id: u.user_id.clone(),
                clv: u.clv,
                churn_probability: u.churn_probability,
                ltv_tier: tier.into(),
                risk_band: band.into(),
                price_tier,
                discount_pct: discount,
                price_fen,
                bound_by: bound_by.map(String::from),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<PricingInput> {
        (0..100)
            .map(|i| PricingInput {
                user_id: format!("u{i:03}"),
                clv: if i < 20 { 0.0 } else { f64::from(i) * 10.0 },
                churn_probability: match i % 4 {
                    0 => None,
                    1 => Some(0.9),
                    2 => Some(0.3),
                    _ => Some(0.05),
                },
            })
            .collect()
    }

    #[test]
    fn tiers_bands_and_guardrails_decide_each_offer() {
        let policy = PricingPolicy::default();
        let offers = assign(&policy, &users()).unwrap();
        let by_id = |id: &str| offers.iter().find(|o| o.user_id == id).unwrap();
        // u097: top CLV, high risk: the matrix asks 40%, the cap allows 30%, and the margin floor
        // (cost 300 of 1500, 60% margin kept) allows 1 − 750/1500 = 50%: the cap binds.
        let o = by_id("u097");
        assert_eq!((o.ltv_tier.as_str(), o.risk_band.as_str(), o.discount_pct, o.price_fen), ("high", "high", 30.0, 1050));
        assert_eq!(o.bound_by.as_deref(), Some("discount_cap"));
        // u099: top CLV, low risk: full price, premium tier.
        let o = by_id("u099");
        assert_eq!((o.price_tier, o.discount_pct, o.price_fen, o.bound_by.as_deref()), (PriceTier::Premium, 0.0, 1500, None));
        // u050: mid tier, medium risk: 5% as asked.
        let o = by_id("u050");
        assert_eq!((o.ltv_tier.as_str(), o.risk_band.as_str(), o.discount_pct, o.price_fen), ("mid", "medium", 5.0, 1425));
        // Without CLV a user is low tier whatever the risk; without a churn score, lapsed.
        assert_eq!(by_id("u001").ltv_tier, "low");
        assert_eq!(by_id("u004").risk_band, "lapsed");
        // No offer ever breaks either guardrail.
        for o in &offers {
            let margin = (o.price_fen - policy.unit_cost_fen) as f64 / o.price_fen as f64;
            assert!(o.discount_pct <= policy.discount_cap_pct && margin >= policy.margin_floor_pct / 100.0, "{o:?}");
        }
    }

    #[test]
    fn the_margin_floor_binds_before_the_cap_when_cost_is_high() {
        let policy = PricingPolicy { unit_cost_fen: 1000, margin_floor_pct: 20.0, ..PricingPolicy::default() };
        // 1000 / 0.8 = 1250: at most 1 − 1250/1500 = 16.7% off.
        let offers = assign(&policy, &users()).unwrap();
        let o = offers.iter().find(|o| o.user_id == "u097").unwrap();
        assert_eq!(o.bound_by.as_deref(), Some("margin_floor"));
        assert!((o.discount_pct - 100.0 / 6.0).abs() < 1e-9 && o.price_fen == 1250, "{o:?}");
    }

    #[test]
    fn a_bad_policy_is_refused_naming_the_field() {
        let err = |p: PricingPolicy| assign(&p, &users()).unwrap_err().to_string();
        assert!(err(PricingPolicy { list_price_fen: 0, ..Default::default() }).contains("list_price_fen must be positive"));
        assert!(
            err(PricingPolicy { unit_cost_fen: 1400, margin_floor_pct: 50.0, ..Default::default() })
                .contains("cannot be met even at the list price")
        );
        assert!(err(PricingPolicy { ltv_low_quantile: 0.9, ..Default::default() }).contains("ltv_low_quantile"));
        assert!(err(PricingPolicy { risk_medium: 0.7, ..Default::default() }).contains("risk_medium"));
        let mut cells = PricingPolicy::default();
        cells.discounts_pct.insert("vip/high".into(), 10.0);
        assert!(err(cells).contains("'vip/high' is not a cell"));
        let mut cells = PricingPolicy::default();
        cells.discounts_pct.insert("low/low".into(), 120.0);
        assert!(err(cells).contains("discounts_pct.\"low/low\" must be in [0, 100]"));
    }
}
