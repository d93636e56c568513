//! The profit balance's configuration: a TOML file of guardrails, checked field by field.
//!
//! ```toml
//! currency = "CNY"        # the mix is of revenue in this currency
//! period = "month"        # "week" or "month": what "period end" means
//! trend_days = 28         # days of daily revenue the trend is fitted on
//! trend_days_min = 7      # fewer days of data: no projection
//!
//! [[guardrails]]
//! stream = "interest"     # a stream, or "total" (growth and margin only)
//! share_max = 0.50        # of the period's revenue
//! share_min = 0.10
//! growth_max = 1.0        # period on period: 1.0 = doubling
//! growth_min = -0.3
//! margin_floor = 0.2      # (revenue - costs attributed) / revenue
//! ```

use crate::LedgerError;
use crate::account::Stream;
use crate::period::Period;
use finpulse_core::money::Currency;
use serde::Deserialize;

/// The longest trend window, in days.
pub const TREND_DAYS_MAX: u32 = 366;
/// The most guardrails a configuration holds.
pub const GUARDRAILS_MAX: usize = 64;

/// What a guardrail watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// One stream.
    Stream(Stream),
    /// All revenue (and all costs).
    Total,
}

impl Subject {
    /// `interest`, …, or `total`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream(s) => s.name(),
            Self::Total => "total",
        }
    }
}

/// Bounds on one subject; a bound left out is not checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrail {
    /// What it watches.
    pub subject: Subject,
    /// The highest share of the period's revenue (streams only), 0 to 1.
    pub share_max: Option<f64>,
    /// The lowest share (streams only), 0 to 1.
    pub share_min: Option<f64>,
    /// The highest growth on the previous period (0.5 = +50%).
    pub growth_max: Option<f64>,
    /// The lowest growth on the previous period, at least -1.
    pub growth_min: Option<f64>,
    /// The lowest margin, (revenue - costs attributed) / revenue, at most 1.
    pub margin_floor: Option<f64>,
}

/// The profit balance's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfitConfig {
    /// The currency whose revenue the mix is of.
    pub currency: Currency,
    /// The period guardrails are held over.
    pub period: Period,
    /// Days of history the trend is fitted on.
    pub trend_days: u32,
    /// The fewest days of history a projection needs.
    pub trend_days_min: u32,
    /// The guardrails, at most one per subject.
    pub guardrails: Vec<Guardrail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    currency: Option<String>,
    period: Option<String>,
    trend_days: Option<u32>,
    trend_days_min: Option<u32>,
    #[serde(default)]
    guardrails: Vec<RawGuardrail>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrail {
    stream: String,
    share_max: Option<f64>,
    share_min: Option<f64>,
    growth_max: Option<f64>,
    growth_min: Option<f64>,
    margin_floor: Option<f64>,
}

impl ProfitConfig {
    /// The product's default: interest at most half of revenue, every stream's margin floor
    /// left to the operator.
    pub fn standard() -> Self {
        let interest = Guardrail {
            subject: Subject::Stream(Stream::Interest),
            share_max: Some(0.5),
            share_min: None,
            growth_max: None,
            growth_min: None,
            margin_floor: None,
        };
        Self { currency: Currency::CNY, period: Period::Month, trend_days: 28, trend_days_min: 7, guardrails: vec![interest] }
    }

    /// Reads a configuration from TOML, each error naming its field.
    pub fn from_toml(text: &str) -> Result<Self, LedgerError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| LedgerError::invalid("profit config", e.to_string()))?;
        let std = Self::standard();
        let currency = match raw.currency {
            None => std.currency,
            Some(c) => Currency::parse(&c).ok_or_else(|| LedgerError::invalid("currency", format!("'{c}' is not an ISO 4217 code")))?,
        };
        let period = match raw.period.as_deref() {
            None => std.period,
            Some(p @ ("week" | "month")) => Period::parse(p).expect("week and month parse"),
            Some(p) => return Err(LedgerError::invalid("period", format!("'{p}' (week or month expected)"))),
        };
        let guardrails = raw.guardrails.into_iter().enumerate().map(|(i, g)| g.into_guardrail(i)).collect::<Result<Vec<_>, _>>()?;
        let config = Self {
            currency,
            period,
            trend_days: raw.trend_days.unwrap_or(std.trend_days),
            trend_days_min: raw.trend_days_min.unwrap_or(std.trend_days_min),
            guardrails,
        };
        config.check()?;
        Ok(config)
    }

    /// Checks every field, naming the first one at fault.
    pub fn check(&self) -> Result<(), LedgerError> {
        if !(2..=TREND_DAYS_MAX).contains(&self.trend_days) {
            return Err(LedgerError::invalid("trend_days", format!("{} (2 to {TREND_DAYS_MAX} expected)", self.trend_days)));
        }
        if !(2..=self.trend_days).contains(&self.trend_days_min) {
            return Err(LedgerError::invalid(
                "trend_days_min",
                format!("{} (2 to trend_days, {}, expected)", self.trend_days_min, self.trend_days),
            ));
        }
        if self.period == Period::Day {
            return Err(LedgerError::invalid("period", "day (week or month expected: a day has no trend inside it)"));
        }
        if self.guardrails.len() > GUARDRAILS_MAX {
            return Err(LedgerError::invalid("guardrails", format!("{} guardrails, over {GUARDRAILS_MAX}", self.guardrails.len())));
        }
        for (i, g) in self.guardrails.iter().enumerate() {
            if self.guardrails[..i].iter().any(|o| o.subject == g.subject) {
                return Err(LedgerError::invalid(
                    format!("guardrails[{i}].stream"),
                    format!("{} has a guardrail already", g.subject.name()),
                ));
            }
            g.check(&format!("guardrails[{i}]"))?;
        }
        Ok(())
    }
}

impl RawGuardrail {
    fn into_guardrail(self, i: usize) -> Result<Guardrail, LedgerError> {
        let subject = match self.stream.as_str() {
            "total" => Subject::Total,
            s => Subject::Stream(Stream::parse(s).ok_or_else(|| {
                let names: Vec<&str> = Stream::ALL.iter().map(|s| s.name()).collect();
                LedgerError::invalid(format!("guardrails[{i}].stream"), format!("'{s}' is not a stream ({} or total)", names.join(", ")))
            })?),
        };
        Ok(Guardrail {
            subject,
            share_max: self.share_max,
            share_min: self.share_min,
            growth_max: self.growth_max,
            growth_min: self.growth_min,
            margin_floor: self.margin_floor,
        })
    }
}

impl Guardrail {
    /// The bounds by name.
    pub fn bounds(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("share_max", self.share_max),
            ("share_min", self.share_min),
            ("growth_max", self.growth_max),
            ("growth_min", self.growth_min),
            ("margin_floor", self.margin_floor),
        ]
    }

    fn check(&self, at: &str) -> Result<(), LedgerError> {
        let bad = |field: &str, why: String| Err(LedgerError::invalid(format!("{at}.{field}"), why));
        if self.bounds().iter().all(|(_, b)| b.is_none()) {
            return bad("stream", "a guardrail with no bound".into());
        }
        for (name, bound) in self.bounds() {
            let Some(v) = bound else { continue };
            if !v.is_finite() {
                return bad(name, format!("{v} is not a number"));
            }
            let ok = match name {
                "share_max" | "share_min" => (0.0..=1.0).contains(&v),
                "growth_min" | "growth_max" => v >= -1.0,
                _ => v <= 1.0,
            };
            if !ok {
                let expected = match name {
                    "share_max" | "share_min" => "a share from 0 to 1",
                    "margin_floor" => "a margin of at most 1",
                    _ => "a growth of at least -1 (-100%)",
                };
                return bad(name, format!("{v} ({expected} expected)"));
            }
        }
        if self.subject == Subject::Total && (self.share_max.is_some() || self.share_min.is_some()) {
            return bad("share_max", "total revenue is always all of it: share bounds are for streams".into());
        }
        if let (Some(lo), Some(hi)) = (self.share_min, self.share_max)
            && lo > hi
        {
            return bad("share_min", format!("{lo} is above share_max {hi}"));
        }
        if let (Some(lo), Some(hi)) = (self.growth_min, self.growth_max)
            && lo > hi
        {
            return bad("growth_min", format!("{lo} is above growth_max {hi}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        ProfitConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_config_reads_and_defaults_fill_the_rest() {
        let c = ProfitConfig::from_toml(
            "[[guardrails]]\nstream = \"interest\"\nshare_max = 0.5\n[[guardrails]]\nstream = \"total\"\nmargin_floor = 0.1\ngrowth_min = -0.2\n",
        )
        .unwrap();
        assert_eq!((c.currency, c.period, c.trend_days), (Currency::CNY, Period::Month, 28));
        assert_eq!(c.guardrails[1].subject, Subject::Total);
        assert_eq!(c.guardrails[1].margin_floor, Some(0.1));
    }

    #[test]
    fn bad_values_are_named_by_field() {
        assert!(err("[[guardrails]]\nstream = \"interest\"\nshare_max = 1.5\n").starts_with("guardrails[0].share_max: 1.5"));
        assert!(err("[[guardrails]]\nstream = \"royalties\"\nshare_max = 0.5\n").starts_with("guardrails[0].stream: 'royalties'"));
        assert!(err("[[guardrails]]\nstream = \"fees\"\n").starts_with("guardrails[0].stream: a guardrail with no bound"));
        assert!(err("[[guardrails]]\nstream = \"fees\"\nshare_min = 0.6\nshare_max = 0.5\n").starts_with("guardrails[0].share_min"));
        assert!(err("[[guardrails]]\nstream = \"fees\"\ngrowth_min = -2.0\n").starts_with("guardrails[0].growth_min"));
        assert!(err("[[guardrails]]\nstream = \"fees\"\nmargin_floor = nan\n").starts_with("guardrails[0].margin_floor"));
        assert!(err("[[guardrails]]\nstream = \"total\"\nshare_max = 0.5\n").starts_with("guardrails[0].share_max"));
        let twice = "[[guardrails]]\nstream = \"fees\"\nshare_max = 0.5\n[[guardrails]]\nstream = \"fees\"\nshare_min = 0.1\n";
        assert!(err(twice).starts_with("guardrails[1].stream"));
        assert!(err("currency = \"yuan\"\n").starts_with("currency:"));
        assert!(err("period = \"day\"\n").starts_with("period:"));
        assert!(err("trend_days = 1\n").starts_with("trend_days:"));
        assert!(err("trend_days = 10\ntrend_days_min = 11\n").starts_with("trend_days_min:"));
        assert!(err("[[guardrails]]\nstream = \"fees\"\nshare_cap = 0.5\n").contains("share_cap"));
    }
}
