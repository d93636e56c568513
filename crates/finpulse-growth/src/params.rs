//! What every insight shares: a date range, filters on event and user properties, a breakdown,
//! and their checked translation into SQL over the session's `events` table.
//!
//! User properties are the fields of a user's first `user_signup` event, written `user.FIELD`
//! (`user.channel`, `user.campaign`, `user.city`, `user.os`). Event properties are fields of the
//! event catalogue, written bare (`amount_fen`). Values are quoted by this module, never pasted.

use crate::{Catalog, InsightError};
use chrono::{Datelike, NaiveDate};
use finpulse_core::registry::{FieldType, Registry};

/// The breakdown value when none is asked for.
pub const NO_BREAKDOWN_SQL: &str = "'all'";

/// Whole days since 1970-01-01 (UTC) of a timestamp column, as integer arithmetic on its
/// microseconds (floor division, so times before 1970 fall on the right day too).
pub fn day_number_sql(ts: &str) -> String {
    let micros = format!("arrow_cast({ts}, 'Int64')");
    format!("(CASE WHEN {micros} >= 0 THEN {micros} / 86400000000 ELSE ({micros} - 86399999999) / 86400000000 END)")
}

/// The event type whose first occurrence carries a user's properties.
pub const USER_PROPERTIES_EVENT: &str = "user_signup";

/// Refuses a field every reader would not see in clear: an insight is read by roles without the
/// clear-text permission, and a breakdown would print its values and a filter would test them.
fn shown_to_everyone(field: &finpulse_core::FieldSpec, param: &str) -> Result<(), InsightError> {
    use finpulse_core::mask::{Exposure, FieldExposure, field_exposure};
    if field_exposure(field.class, field.mask, Exposure::Masked) == FieldExposure::Shown {
        return Ok(());
    }
    Err(InsightError::param(
        param,
        format!(
            "'{}' is {} personal data, masked for most readers: insights filter and break down only on fields every reader may see (read it through SQL with a stated purpose)",
            field.name, field.class
        ),
    ))
}

/// A property an insight can filter or break down on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// A field of the user's first signup event.
    User(String),
    /// A field of the event itself.
    Event(String),
}

impl Property {
    /// Parses `user.FIELD` or `FIELD`, checking the field exists (`param` names the option).
    pub fn parse(text: &str, registry: &Registry, param: &str) -> Result<(Self, FieldType), InsightError> {
        let text = text.trim();
        if let Some(field) = text.strip_prefix("user.") {
            let signup = registry.type_id(USER_PROPERTIES_EVENT).map(|t| registry.event_type(t));
            let found = signup.and_then(|s| s.fields.iter().map(|f| registry.field(f.field)).find(|f| f.name == field));
            return match found {
                Some(f) => {
                    shown_to_everyone(f, param)?;
                    Ok((Self::User(field.to_string()), f.ty))
                }
                None => {
                    let known: Vec<String> = signup
                        .map(|s| s.fields.iter().map(|f| format!("user.{}", registry.field(f.field).name)).collect())
                        .unwrap_or_default();
                    Err(InsightError::param(param, format!("unknown user property '{text}' (known: {})", known.join(", "))))
                }
            };
        }
        match registry.field_id(text) {
            Some(id) if text != "ts" => {
                shown_to_everyone(registry.field(id), param)?;
                Ok((Self::Event(text.to_string()), registry.field(id).ty))
            }
            _ => Err(InsightError::param(
                param,
                format!(
                    "unknown property '{text}': use an event field (see `finpulse schema`) or user.FIELD for a property of the user's signup"
                ),
            )),
        }
    }

    /// The SQL column: `u."f"` for a user property, `e."f"` for an event property.
    pub fn sql(&self) -> String {
        match self {
            Self::User(f) => format!("u.{}", ident(f)),
            Self::Event(f) => format!("e.{}", ident(f)),
        }
    }

    /// The name shown in results.
    pub fn label(&self) -> String {
        match self {
            Self::User(f) => format!("user.{f}"),
            Self::Event(f) => f.clone(),
        }
    }
}

pub use finpulse_query::sql::{ident, text_literal};

/// One filter: `PROPERTY OP VALUE`, OP one of `=`, `!=`, `>`, `>=`, `<`, `<=`; or
/// `segment = NAME` / `segment != NAME` for the members of a saved segment.
#[derive(Debug, Clone)]
pub enum Filter {
    /// A property compared with a value.
    Compare {
        /// The property.
        property: Property,
        /// The comparison.
        op: &'static str,
        /// The value, as an SQL literal.
        value: String,
    },
    /// Membership of a segment, evaluated as of the end of the data.
    Segment {
        /// `!=`: users outside the segment.
        negated: bool,
        /// SQL listing the members.
        members_sql: String,
    },
}

impl Filter {
    /// Parses `user.channel = douyin`, `amount_fen >= 100000`, `task = 'bind_card'`.
    pub fn parse(text: &str, registry: &Registry, param: &str) -> Result<Self, InsightError> {
        let ops = ["!=", ">=", "<=", "=", ">", "<"];
        let (at, op) = ops
            .iter()
            .filter_map(|op| text.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
            .ok_or_else(|| InsightError::param(param, format!("'{text}' is not PROPERTY OP VALUE (OP: = != > >= < <=)")))?;
        let (name, raw) = (text[..at].trim(), text[at + op.len()..].trim());
        let (property, ty) = Property::parse(name, registry, param)?;
        let unquoted = raw.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(raw);
        if unquoted.is_empty() {
            return Err(InsightError::param(param, format!("'{text}' has no value")));
        }
        let value = match ty {
            FieldType::Int | FieldType::Float => match (unquoted.parse::<i64>(), unquoted.parse::<f64>()) {
                (Ok(i), _) => i.to_string(),
                (_, Ok(f)) if f.is_finite() => format!("{f:?}"),
                _ => return Err(InsightError::param(param, format!("{name} is a number, '{unquoted}' is not"))),
            },
            FieldType::Bool => match unquoted {
                "true" | "false" => unquoted.to_string(),
                _ => return Err(InsightError::param(param, format!("{name} is true or false, not '{unquoted}'"))),
            },
            FieldType::String => {
                if !matches!(op, "=" | "!=") {
                    return Err(InsightError::param(param, format!("{name} is text: compare it with = or !=")));
                }
                text_literal(unquoted)
            }
            FieldType::Timestamp => text_literal(unquoted),
        };
        Ok(Self::Compare { property, op, value })
    }

    /// Parses a filter, resolving `segment = NAME` with the saved segments.
    pub fn parse_in(text: &str, cx: &Catalog, param: &str) -> Result<Self, InsightError> {
        let Some(rest) = text.trim().strip_prefix("segment").map(str::trim_start) else { return Self::parse(text, cx.registry, param) };
        let (negated, name) = match (rest.strip_prefix("!="), rest.strip_prefix('=')) {
            (Some(n), _) => (true, n),
            (None, Some(n)) => (false, n),
            _ => return Err(InsightError::param(param, format!("'{text}': write segment = NAME or segment != NAME"))),
        };
        let segment = cx.segments.get(name.trim().trim_matches('\''), cx.registry)?;
        let end_of_data = "(SELECT max(ts) FROM events) + INTERVAL '1 microsecond'";
        Ok(Self::Segment { negated, members_sql: segment.members_sql(end_of_data) })
    }

    /// The SQL condition (on an `events e` row, users joined as `u`).
    pub fn sql(&self) -> String {
        match self {
            Self::Compare { property, op, value } => format!("{} {op} {value}", property.sql()),
            Self::Segment { negated, members_sql } => format!("e.user_id {}IN ({members_sql})", if *negated { "NOT " } else { "" }),
        }
    }

    /// Whether it needs user properties.
    pub fn on_user(&self) -> bool {
        matches!(self, Self::Compare { property: Property::User(_), .. })
    }
}

/// An event type, optionally narrowed by one field: `TYPE` or `TYPE:FIELD=VALUE`
/// (`task_completed:task=bind_card`). `any` is every event of a user-scoped type.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// As written.
    pub label: String,
    condition: String,
    /// The type, or `None` for `any`.
    pub event_type: Option<String>,
    /// The types it matches when it is a set of types and nothing more (no field condition).
    types: Option<Vec<String>>,
}

impl EventSpec {
    /// Parses and checks an event spec.
    pub fn parse(text: &str, registry: &Registry, param: &str) -> Result<Self, InsightError> {
        let text = text.trim();
        let (name, narrow) = match text.split_once(':') {
            Some((n, rest)) => (n.trim(), Some(rest)),
            None => (text, None),
        };
        if name == "any" && narrow.is_none() {
            // Every event a user does; business records (spend, revenue bookings) are not activity.
            let user_types: Vec<String> =
                registry.event_types().filter(|t| t.scope == finpulse_core::Scope::User).map(|t| t.name.clone()).collect();
            let literals: Vec<String> = user_types.iter().map(|t| text_literal(t)).collect();
            let condition = format!("e.\"type\" IN ({})", literals.join(", "));
            return Ok(Self { label: text.into(), condition, event_type: None, types: Some(user_types) });
        }
        let Some(type_id) = registry.type_id(name) else {
            let mut known = registry.type_names();
            known.sort_unstable();
            return Err(InsightError::param(param, format!("unknown event type '{name}' (known: any, {})", known.join(", "))));
        };
        let mut condition = format!("e.\"type\" = {}", text_literal(name));
        if let Some(narrow) = narrow {
            let filter = Filter::parse(narrow, registry, param)?;
            let spec = registry.event_type(type_id);
            if let Filter::Compare { property: Property::Event(field), .. } = &filter
                && !spec.fields.iter().any(|f| registry.field(f.field).name == *field)
            {
                return Err(InsightError::param(param, format!("event type '{name}' has no field '{field}'")));
            }
            condition = format!("({condition} AND {})", filter.sql());
        }
        let types = narrow.is_none().then(|| vec![name.to_string()]);
        Ok(Self { label: text.into(), condition, event_type: Some(name.to_string()), types })
    }

    /// The SQL condition on an `events e` row.
    pub fn sql(&self) -> &str {
        &self.condition
    }

    /// The event types matched, when the spec is only a set of types (`any` or `TYPE`, not
    /// `TYPE:FIELD=VALUE`).
    pub fn types_only(&self) -> Option<&[String]> {
        self.types.as_deref()
    }
}

/// Options every insight takes: `from`, `to`, `filters`, `breakdown`.
#[derive(Debug, Clone, Default)]
pub struct ScopeInput {
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: Option<String>,
    /// Filters, each `PROPERTY OP VALUE` or `segment = NAME`.
    pub filters: Vec<String>,
    /// A property to break results down by.
    pub breakdown: Option<String>,
}

impl ScopeInput {
    /// The same, breaking down by `property` when no breakdown was given.
    pub fn with_default_breakdown(&self, property: &str) -> Self {
        Self { breakdown: self.breakdown.clone().or_else(|| Some(property.to_string())), ..self.clone() }
    }
}

/// Checked scope.
#[derive(Debug, Clone)]
pub struct Scope {
    /// First day.
    pub from: Option<NaiveDate>,
    /// Last day.
    pub to: Option<NaiveDate>,
    /// Filters.
    pub filters: Vec<Filter>,
    /// Breakdown.
    pub breakdown: Option<Property>,
}

fn date(text: &str, param: &str) -> Result<NaiveDate, InsightError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| InsightError::param(param, format!("'{text}' is not a date (YYYY-MM-DD)")))
}

impl Scope {
    /// Checks the common options against the registry.
    pub fn parse(input: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let from = input.from.as_deref().map(|d| date(d, "from")).transpose()?;
        let to = input.to.as_deref().map(|d| date(d, "to")).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(InsightError::param("to", format!("{t} is before from ({f})")));
        }
        let filters = input.filters.iter().map(|f| Filter::parse_in(f, cx, "filters")).collect::<Result<Vec<_>, _>>()?;
        let breakdown = input.breakdown.as_deref().map(|b| Property::parse(b, registry, "breakdown").map(|(p, _)| p)).transpose()?;
        Ok(Self { from, to, filters, breakdown })
    }

    /// SQL conditions on `e.ts` for the range (`TRUE` when open).
    pub fn range_sql(&self, column: &str) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.from {
            parts.push(format!("{column} >= '{f}T00:00:00Z'"));
        }
        if let Some(t) = self.to.and_then(|t| t.succ_opt()) {
            parts.push(format!("{column} < '{t}T00:00:00Z'"));
        }
        if parts.is_empty() { "TRUE".into() } else { parts.join(" AND ") }
    }

    /// SQL conditions for the filters (`TRUE` when none).
    pub fn filters_sql(&self) -> String {
        if self.filters.is_empty() { "TRUE".into() } else { self.filters.iter().map(Filter::sql).collect::<Vec<_>>().join(" AND ") }
    }

    /// Whether user properties must be joined.
    pub fn needs_users(&self) -> bool {
        self.filters.iter().any(Filter::on_user) || matches!(self.breakdown, Some(Property::User(_)))
    }

    /// The breakdown column's SQL, or [`NO_BREAKDOWN_SQL`] when there is none.
    pub fn breakdown_sql(&self) -> String {
        self.breakdown.as_ref().map_or_else(|| NO_BREAKDOWN_SQL.to_string(), Property::sql)
    }

    /// `FROM events e` with the users join when needed.
    pub fn from_events(&self) -> &'static str {
        if self.needs_users() { "events e LEFT JOIN users u ON e.user_id = u.user_id" } else { "events e" }
    }

    /// `users AS (…), ` for a WITH clause when needed, else empty.
    pub fn with_users(&self) -> String {
        if self.needs_users() { self.with_users_always() } else { String::new() }
    }

    /// `users AS (…), ` whether or not filters need it (for insights that always join users).
    pub fn with_users_always(&self) -> String {
        format!("users AS ({}), ", users_cte())
    }
}

/// The `users u` CTE body: each user's properties from their first signup (see
/// [`crate::users`]).
pub(crate) fn users_cte() -> String {
    format!("SELECT * FROM {}", crate::users::USERS_TABLE)
}

/// A duration: `30m`, `24h`, `7d`, or seconds.
pub fn duration_secs(text: &str, param: &str) -> Result<i64, InsightError> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| InsightError::param(param, format!("'{text}' is not a duration (e.g. 3600, 30m, 24h, 7d)")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(InsightError::param(param, format!("'{text}': unit must be s, m, h or d"))),
    };
    if secs <= 0 {
        return Err(InsightError::param(param, format!("must be more than 0, got '{text}'")));
    }
    Ok(secs)
}

/// The date of a day number (days since 1970-01-01).
pub fn date_of_day(day: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(719_163 + day as i32).unwrap_or_default()
}

/// The day number (days since 1970-01-01) of a date; the inverse of [`date_of_day`].
pub fn day_of_date(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// A calendar period for cohorts and series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar days (UTC).
    Day,
    /// ISO weeks, from Monday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
}

impl Period {
    /// Parses `day|week|month|quarter`.
    pub fn parse(text: &str, param: &str) -> Result<Self, InsightError> {
        match text.trim() {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "quarter" => Ok(Self::Quarter),
            other => Err(InsightError::param(param, format!("'{other}' is not day, week, month or quarter"))),
        }
    }

    /// The `date_trunc` unit.
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
        }
    }

    /// SQL for the start of the period holding the time `ts`, as a UTC timestamp. Days and
    /// weeks are integer arithmetic on the day number; months and quarters truncate a zone-less
    /// time. Either way no row goes through a time zone (`date_trunc` on a UTC-zoned time, and
    /// a cast of a zone-less time to one, convert every row: about 8× slower over 15M events).
    pub fn trunc_sql(self, ts: &str) -> String {
        let as_utc = |micros: String| format!("arrow_cast({micros}, 'Timestamp(µs, \"UTC\")')");
        let day = day_number_sql(ts);
        match self {
            Self::Day => as_utc(format!("{day} * 86400000000")),
            // 1970-01-01 was a Thursday: a week starts on the day whose number + 3 is a multiple of 7.
            Self::Week => as_utc(format!("({day} - ((({day} + 3) % 7) + 7) % 7) * 86400000000")),
            Self::Month | Self::Quarter => {
                as_utc(format!("arrow_cast(date_trunc('{}', arrow_cast({ts}, 'Timestamp(Microsecond, None)')), 'Int64')", self.name()))
            }
        }
    }

    /// SQL for the whole number of periods from period start `a` to period start `b`.
    pub fn between_sql(self, a: &str, b: &str) -> String {
        match self {
            Self::Day => format!("CAST((date_part('epoch', {b}) - date_part('epoch', {a})) / 86400 AS BIGINT)"),
            Self::Week => format!("CAST((date_part('epoch', {b}) - date_part('epoch', {a})) / 604800 AS BIGINT)"),
            Self::Month => format!(
                "CAST((date_part('year', {b}) - date_part('year', {a})) * 12 + date_part('month', {b}) - date_part('month', {a}) AS BIGINT)"
            ),
            Self::Quarter => format!(
                "CAST((date_part('year', {b}) - date_part('year', {a})) * 4 + date_part('quarter', {b}) - date_part('quarter', {a}) AS BIGINT)"
            ),
        }
    }

    /// The ordinal of the period holding `day` (days since 1970-01-01, UTC). Consecutive
    /// periods have consecutive ordinals, so the difference of two is [`Self::between_sql`]'s.
    pub fn ordinal(self, day: i64) -> i64 {
        match self {
            Self::Day => day,
            // 1970-01-01 was a Thursday: weeks start on Monday.
            Self::Week => (day + 3).div_euclid(7),
            Self::Month | Self::Quarter => {
                let d = date_of_day(day);
                let month = i64::from(d.year()) * 12 + i64::from(d.month0());
                if self == Self::Month { month } else { month.div_euclid(3) }
            }
        }
    }

    /// The first day of the period with ordinal `ordinal`.
    pub fn ordinal_start(self, ordinal: i64) -> NaiveDate {
        let month_start = |m: i64| NaiveDate::from_ymd_opt(m.div_euclid(12) as i32, m.rem_euclid(12) as u32 + 1, 1).unwrap_or_default();
        match self {
            Self::Day => date_of_day(ordinal),
            Self::Week => date_of_day(ordinal * 7 - 3),
            Self::Month => month_start(ordinal),
            Self::Quarter => month_start(ordinal * 3),
        }
    }

    /// The start of the period `k` periods after the one starting on `start`.
    pub fn advance(self, start: NaiveDate, k: i64) -> Option<NaiveDate> {
        match self {
            Self::Day => start.checked_add_signed(chrono::Duration::days(k)),
            Self::Week => start.checked_add_signed(chrono::Duration::days(7 * k)),
            Self::Month => start.checked_add_months(chrono::Months::new(u32::try_from(k).ok()?)),
            Self::Quarter => start.checked_add_months(chrono::Months::new(u32::try_from(3 * k).ok()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zone-free truncation gives `date_trunc`'s answer on UTC times, before and after
    /// 1970, at period edges and inside, and `ordinal` numbers the same periods.
    #[test]
    fn periods_truncate_like_date_trunc_in_utc() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        // Microseconds: around 1970-01-01 (a Thursday), a Monday midnight, month and year ends.
        let times: [i64; 9] = [
            0,
            -1,
            -86_400_000_001,
            -400 * 86_400_000_000 + 5,
            1_767_571_200_000_000,
            1_767_571_199_999_999,
            1_772_323_199_999_999,
            1_774_915_200_000_000,
            1_798_761_599_999_999,
        ];
        for period in [Period::Day, Period::Week, Period::Month, Period::Quarter] {
            for t in times {
                let ts = format!("arrow_cast({t}, 'Timestamp(µs, \"UTC\")')");
                let q = format!(
                    "SELECT arrow_cast({}, 'Int64'), arrow_cast(date_trunc('{}', {ts}), 'Int64')",
                    period.trunc_sql(&ts),
                    period.name()
                );
                let batches = runtime.block_on(async { ctx.sql(&q).await.unwrap().collect().await.unwrap() });
                let row = crate::table::rows(&batches).unwrap().remove(0);
                assert_eq!(row[0], row[1], "{period:?} of {t}");
                let start_us = row[0].as_int().unwrap();
                let day = t.div_euclid(86_400_000_000);
                let start = period.ordinal_start(period.ordinal(day));
                assert_eq!(start, date_of_day(start_us.div_euclid(86_400_000_000)), "{period:?} ordinal of {t}");
            }
        }
    }
}
