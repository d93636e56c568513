//! Time: timestamps keep their zone on input and are stored as UTC microseconds since the epoch.

use chrono::{DateTime, NaiveDate, Utc};

/// Microseconds per second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
/// Microseconds per day.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// The earliest accepted event time, 2000-01-01T00:00:00Z: older times are input mistakes.
pub const TS_MIN_US: i64 = 946_684_800 * MICROS_PER_SEC;

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Text that is not RFC 3339 with a zone.
    #[error("'{0}' is not an RFC 3339 timestamp with a zone (e.g. 2026-03-01T08:30:00+08:00) or epoch milliseconds")]
    Unparseable(String),
    /// Epoch milliseconds out of range.
    #[error("epoch milliseconds {0} are out of range")]
    OutOfRange(i64),
    /// Before [`TS_MIN_US`].
    #[error("{0} is before 2000-01-01T00:00:00Z")]
    TooOld(String),
    /// Too far past the current time.
    #[error("{ts} is more than {skew_secs} s after the current time {now}")]
    TooFarInFuture {
        /// The offending time.
        ts: String,
        /// The allowed skew.
        skew_secs: i64,
        /// The current time.
        now: String,
    },
}

/// Parses RFC 3339 text (any zone) to UTC microseconds.
pub fn parse_rfc3339_us(text: &str) -> Result<i64, TimeError> {
    let parsed = DateTime::parse_from_rfc3339(text.trim()).map_err(|_| TimeError::Unparseable(text.to_string()))?;
    Ok(parsed.with_timezone(&Utc).timestamp_micros())
}

/// Converts epoch milliseconds to microseconds.
pub fn epoch_ms_to_us(ms: i64) -> Result<i64, TimeError> {
    ms.checked_mul(1000).ok_or(TimeError::OutOfRange(ms))
}

/// Checks a time against the accepted range: not before 2000, not more than `skew_secs` after `now_us`.
pub fn check_range(ts_us: i64, now_us: i64, skew_secs: i64) -> Result<(), TimeError> {
    if ts_us < TS_MIN_US {
        return Err(TimeError::TooOld(format_us(ts_us)));
    }
    if ts_us > now_us.saturating_add(skew_secs.saturating_mul(MICROS_PER_SEC)) {
        return Err(TimeError::TooFarInFuture { ts: format_us(ts_us), skew_secs, now: format_us(now_us) });
    }
    Ok(())
}

/// The current time in UTC microseconds.
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Formats UTC microseconds as RFC 3339.
pub fn format_us(ts_us: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(ts_us) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => format!("{ts_us}us"),
    }
}

/// A time as a person writes it: `2026-01-05` at midnight UTC, RFC 3339 to the second
/// otherwise (`2026-01-05T10:30:00Z`).
pub fn format_us_brief(ts_us: i64) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_micros(ts_us) else { return format!("{ts_us}us") };
    if ts_us.rem_euclid(MICROS_PER_DAY) == 0 {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// Business time is Beijing time (UTC+8): live features count hours of day, weekends and days in
/// it, and so do the risk backtest's daily report and the simulator's days. Insights, goals and
/// the fraud evaluation count UTC days ([`day_of_us`]); both are named here, and nothing else
/// decides what a day is.
pub const BUSINESS_UTC_OFFSET_SECS: i64 = 8 * 3600;

/// The business day (days since 1970-01-01 in business time) of a time.
pub fn business_day_of_us(ts_us: i64) -> i64 {
    (ts_us + BUSINESS_UTC_OFFSET_SECS * MICROS_PER_SEC).div_euclid(MICROS_PER_DAY)
}

/// The UTC day number (days since 1970-01-01) of a time.
pub fn day_of_us(ts_us: i64) -> i64 {
    ts_us.div_euclid(MICROS_PER_DAY)
}

/// The UTC date of a day number, as YYYY-MM-DD.
pub fn day_label(day: i64) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date");
    match epoch.checked_add_signed(chrono::Duration::days(day)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("day{day}"),
    }
}

/// Parses YYYY-MM-DD to the UTC microseconds of its midnight.
pub fn parse_date_us(text: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_input_is_stored_as_utc() {
        let beijing = parse_rfc3339_us("2026-03-01T08:30:00+08:00").unwrap();
        let utc = parse_rfc3339_us("2026-03-01T00:30:00Z").unwrap();
        assert_eq!(beijing, utc);
        assert_eq!(format_us(utc), "2026-03-01T00:30:00Z");
    }

    #[test]
    fn text_without_zone_is_refused() {
        assert!(matches!(parse_rfc3339_us("2026-03-01 08:30:00"), Err(TimeError::Unparseable(_))));
        assert!(matches!(parse_rfc3339_us("yesterday"), Err(TimeError::Unparseable(_))));
    }

    #[test]
    fn absurd_times_are_refused() {
        let now = parse_rfc3339_us("2026-03-01T00:00:00Z").unwrap();
        assert!(check_range(now, now, 60).is_ok());
        assert!(matches!(check_range(now + 61 * MICROS_PER_SEC, now, 60), Err(TimeError::TooFarInFuture { .. })));
        assert!(matches!(check_range(0, now, 60), Err(TimeError::TooOld(_))));
        assert!(epoch_ms_to_us(i64::MAX).is_err());
    }

    #[test]
    fn day_labels_are_utc_dates() {
        let ts = parse_rfc3339_us("2026-03-01T23:59:59+00:00").unwrap();
        assert_eq!(day_label(day_of_us(ts)), "2026-03-01");
        assert_eq!(parse_date_us("2026-03-01").map(day_of_us), Some(day_of_us(ts)));
    }
}
