//! Accounting periods. The ledger's days are business days (Beijing dates,
//! [`finpulse_core::time::BUSINESS_UTC_OFFSET_SECS`]): a movement at 23:30 in Beijing belongs
//! to that Beijing date, as the books of a Chinese business keep it.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One business day.
    Day,
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    /// Parses `day`, `week` or `month`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The first day (days since 1970-01-01) of the period holding `day`.
    pub fn start(self, day: i64) -> i64 {
        match self {
            Self::Day => day,
            // 1970-01-01 was a Thursday: day + 3 counts from a Monday.
            Self::Week => day - (day + 3).rem_euclid(7),
            Self::Month => {
                let d = date(day);
                day - i64::from(d.day0())
            }
        }
    }

    /// The first day of the period after the one holding `day`.
    pub fn next_start(self, day: i64) -> i64 {
        match self {
            Self::Day => day + 1,
            Self::Week => self.start(day) + 7,
            Self::Month => {
                let d = date(day);
                let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
                day_number(NaiveDate::from_ymd_opt(y, m, 1).expect("the first of a month is a date"))
            }
        }
    }

    /// The period holding `day` as text: `2026-03-05`, `2026-W10` (ISO week) or `2026-03`.
    pub fn label(self, day: i64) -> String {
        let d = date(day);
        match self {
            Self::Day => d.format("%Y-%m-%d").to_string(),
            Self::Week => format!("{}-W{:02}", d.iso_week().year(), d.iso_week().week()),
            Self::Month => d.format("%Y-%m").to_string(),
        }
    }
}

/// The business day of a time.
pub fn day_of(ts_us: i64) -> i64 {
    finpulse_core::time::business_day_of_us(ts_us)
}

/// The time business day `day` starts, UTC microseconds.
pub fn day_start_us(day: i64) -> i64 {
    use finpulse_core::time::{BUSINESS_UTC_OFFSET_SECS, MICROS_PER_DAY, MICROS_PER_SEC};
    day * MICROS_PER_DAY - BUSINESS_UTC_OFFSET_SECS * MICROS_PER_SEC
}

/// The date of a day number; days outside chrono's range clamp to its ends.
pub fn date(day: i64) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");
    epoch.checked_add_signed(chrono::Duration::days(day)).unwrap_or(if day < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
}

/// The day number of a date.
pub fn day_number(d: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");
    (d - epoch).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> i64 {
        day_number(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn periods_start_on_mondays_and_firsts() {
        // 2026-03-05 is a Thursday.
        assert_eq!(Period::Week.start(day("2026-03-05")), day("2026-03-02"));
        assert_eq!(Period::Week.start(day("2026-03-02")), day("2026-03-02"));
        assert_eq!(Period::Week.next_start(day("2026-03-08")), day("2026-03-09"));
        assert_eq!(Period::Month.start(day("2026-03-31")), day("2026-03-01"));
        assert_eq!(Period::Month.next_start(day("2026-12-15")), day("2027-01-01"));
        assert_eq!(Period::Week.label(day("2026-03-05")), "2026-W10");
        assert_eq!(Period::Month.label(day("2026-03-05")), "2026-03");
    }

    #[test]
    fn a_late_evening_in_beijing_is_that_beijing_day() {
        let utc_1530 = finpulse_core::time::parse_rfc3339_us("2026-03-05T15:30:00Z").unwrap();
        assert_eq!(day_of(utc_1530), day("2026-03-05"));
        let utc_1630 = finpulse_core::time::parse_rfc3339_us("2026-03-05T16:30:00Z").unwrap();
        assert_eq!(day_of(utc_1630), day("2026-03-06"));
        assert_eq!(day_of(day_start_us(day("2026-03-06"))), day("2026-03-06"));
        assert_eq!(day_of(day_start_us(day("2026-03-06")) - 1), day("2026-03-05"));
    }
}
