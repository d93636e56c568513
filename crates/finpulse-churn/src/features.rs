//! Churn features as of a moment: one row per user who was active in the
//! [`ChurnSpec::active_within_days`] before it, computed by one SQL aggregation over the events
//! strictly before that moment — so nothing from the future can leak in, whatever the store
//! holds after it.

use crate::{ChurnError, ChurnSpec, DAY_US};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use finpulse_log::StoreView;
use finpulse_models::table::{RawColumn, RawValues};
use finpulse_query::{QueryOptions, run_sql, text_values};

/// One feature: its name, the SQL aggregate that computes it over the events before the as-of
/// moment, and what it means. In the SQL, `{A}` is the as-of time and `{A7}`, `{A14}`, `{A30}`
/// the times 7, 14 and 30 days before it (UTC microseconds, in `t`); `{D}` is a day in
/// microseconds; `{ACT}` is true for a qualifying activity.
pub struct Feature {
    /// Column name.
    pub name: &'static str,
    /// SQL aggregate.
    sql: &'static str,
    /// What it measures.
    pub doc: &'static str,
}

/// The churn features, in model order.
pub const FEATURES: &[Feature] = &[
    Feature { name: "tenure_days", sql: "CAST({A} - min(t) AS DOUBLE) / {D}", doc: "days since the user's first event" },
    Feature { name: "channel", sql: "max(CASE WHEN type = 'user_signup' THEN channel END)", doc: "acquisition channel (from user_signup)" },
    Feature { name: "os", sql: "max(CASE WHEN type = 'user_signup' THEN os END)", doc: "operating system at signup" },
    Feature {
        name: "days_since_active",
        sql: "CAST({A} - max(CASE WHEN {ACT} THEN t END) AS DOUBLE) / {D}",
        doc: "days since the last qualifying activity",
    },
    Feature {
        name: "active_days_7d",
        sql: "count(DISTINCT CASE WHEN {ACT} AND t >= {A7} THEN t / {D} END)",
        doc: "days with activity in the last 7 days",
    },
    Feature {
        name: "active_days_prev_7d",
        sql: "count(DISTINCT CASE WHEN {ACT} AND t >= {A14} AND t < {A7} THEN t / {D} END)",
        doc: "days with activity in the 7 days before those",
    },
    Feature {
        name: "active_days_30d",
        sql: "count(DISTINCT CASE WHEN {ACT} AND t >= {A30} THEN t / {D} END)",
        doc: "days with activity in the last 30 days",
    },
    Feature {
        name: "sessions_7d",
        sql: "sum(CASE WHEN type = 'app_session' AND t >= {A7} THEN 1 ELSE 0 END)",
        doc: "app sessions in the last 7 days",
    },
    Feature {
        name: "sessions_prev_7d",
        sql: "sum(CASE WHEN type = 'app_session' AND t >= {A14} AND t < {A7} THEN 1 ELSE 0 END)",
        doc: "app sessions in the 7 days before those",
    },
    Feature {
        name: "sessions_30d",
        sql: "sum(CASE WHEN type = 'app_session' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "app sessions in the last 30 days",
    },
    Feature {
        name: "session_minutes_30d",
        sql: "CAST(sum(CASE WHEN type = 'app_session' AND t >= {A30} THEN session_secs ELSE 0 END) AS DOUBLE) / 60",
        doc: "minutes in the app over the last 30 days",
    },
    Feature {
        name: "page_views_7d",
        sql: "sum(CASE WHEN type = 'page_view' AND t >= {A7} THEN 1 ELSE 0 END)",
        doc: "screens viewed in the last 7 days",
    },
    Feature {
        name: "logins_30d",
        sql: "sum(CASE WHEN type = 'login' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "logins in the last 30 days",
    },
    Feature {
        name: "payments_30d",
        sql: "sum(CASE WHEN type = 'payment' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "card payments in the last 30 days",
    },
    Feature {
        name: "payment_fen_30d",
        sql: "sum(CASE WHEN type = 'payment' AND t >= {A30} THEN amount_fen ELSE 0 END)",
        doc: "card payment amount in the last 30 days, fen",
    },
    Feature {
        name: "deposit_fen_30d",
        sql: "sum(CASE WHEN type = 'deposit' AND t >= {A30} THEN amount_fen ELSE 0 END)",
        doc: "deposits in the last 30 days, fen",
    },
    Feature {
        name: "withdrawal_fen_30d",
        sql: "sum(CASE WHEN type = 'withdrawal' AND t >= {A30} THEN amount_fen ELSE 0 END)",
        doc: "withdrawals in the last 30 days, fen",
    },
    Feature {
        name: "transfers_30d",
        sql: "sum(CASE WHEN type = 'transfer' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "transfers in the last 30 days",
    },
    Feature {
        name: "wealth_purchase_fen",
        sql: "sum(CASE WHEN type = 'wealth_purchase' THEN amount_fen ELSE 0 END)",
        doc: "wealth products bought since signup, fen",
    },
    Feature {
        name: "wealth_redemption_fen_30d",
        sql: "sum(CASE WHEN type = 'wealth_redemption' AND t >= {A30} THEN amount_fen ELSE 0 END)",
        doc: "wealth redeemed in the last 30 days, fen",
    },
    Feature {
        name: "tasks_completed",
        sql: "sum(CASE WHEN type = 'task_completed' THEN 1 ELSE 0 END)",
        doc: "new-user tasks completed since signup",
    },
    Feature {
        name: "complaints_30d",
        sql: "sum(CASE WHEN type = 'feedback' AND kind = 'complaint' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "complaints in the last 30 days",
    },
    Feature {
        name: "nps_min_30d",
        sql: "min(CASE WHEN type = 'feedback' AND t >= {A30} THEN nps_score END)",
        doc: "lowest NPS answer in the last 30 days (missing when none)",
    },
    Feature {
        name: "overdues_30d",
        sql: "sum(CASE WHEN type = 'loan_overdue' AND t >= {A30} THEN 1 ELSE 0 END)",
        doc: "loan instalments past due in the last 30 days",
    },
];

/// The features of every active user as of one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The as-of time, UTC microseconds; only events before it were read.
    pub as_of_us: i64,
    /// User ids, ascending.
    pub users: Vec<String>,
    /// One column per entry of [`FEATURES`].
    pub columns: Vec<RawColumn>,
}

/// A SQL string literal.
pub(crate) use finpulse_query::sql::text_literal as quote;

/// `type IN (...)` for the qualifying activity.
pub(crate) fn activity_predicate(spec: &ChurnSpec) -> String {
    format!("type IN ({})", spec.activity.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", "))
}

/// The snapshot SQL as of `as_of_us`.
pub fn snapshot_sql(spec: &ChurnSpec, as_of_us: i64) -> String {
    let fill = |sql: &str| {
        sql.replace("{ACT}", &activity_predicate(spec))
            .replace("{A7}", &(as_of_us - 7 * DAY_US).to_string())
            .replace("{A14}", &(as_of_us - 14 * DAY_US).to_string())
            .replace("{A30}", &(as_of_us - 30 * DAY_US).to_string())
            .replace("{A}", &as_of_us.to_string())
            .replace("{D}", &DAY_US.to_string())
    };
    let columns: Vec<String> = FEATURES.iter().map(|f| format!("  {} AS {}", fill(f.sql), f.name)).collect();
    let active_since = as_of_us - i64::from(spec.active_within_days) * DAY_US;
    format!(
        "WITH e AS (\n  SELECT user_id, type, arrow_cast(ts, 'Int64') AS t, session_secs, amount_fen, channel, os, kind, nps_score\n  FROM events WHERE user_id IS NOT NULL AND arrow_cast(ts, 'Int64') < {as_of_us}\n)\nSELECT user_id,\n{}\nFROM e GROUP BY user_id\nHAVING {}\nORDER BY user_id",
        columns.join(",\n"),
        fill(&format!("max(CASE WHEN {{ACT}} THEN t END) >= {active_since}"))
    )
}

fn numbers(column: &dyn Array) -> Result<Vec<f64>, ChurnError> {
    let f = cast(column, &DataType::Float64).map_err(|e| ChurnError::Internal(format!("reading a number column: {e}")))?;
    let a = f.as_primitive::<Float64Type>();
    Ok((0..a.len()).map(|i| if a.is_valid(i) { a.value(i) } else { f64::NAN }).collect())
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Computes the snapshot of every user active in the window before `as_of_us`.
pub async fn snapshot(view: &StoreView, spec: &ChurnSpec, as_of_us: i64) -> Result<Snapshot, ChurnError> {
    let result = run_sql(view, &snapshot_sql(spec, as_of_us), QueryOptions::default()).await?;
    let mut users = Vec::new();
    let mut columns: Vec<RawColumn> = FEATURES
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let text = result.schema.field(k + 1).data_type();
            (f.name.to_string(), if is_text(text) { RawValues::Text(Vec::new()) } else { RawValues::Numeric(Vec::new()) })
        })
        .collect();
    for batch in &result.batches {
        users.extend(text_values(batch.column(0))?.into_iter().map(Option::unwrap_or_default));
        for (k, (_, values)) in columns.iter_mut().enumerate() {
            let column = batch.column(k + 1);
            match values {
                RawValues::Text(v) => v.extend(text_values(column)?),
                RawValues::Numeric(v) => v.extend(numbers(column)?),
            }
        }
    }
    Ok(Snapshot { as_of_us, users, columns })
}

/// Users with a qualifying activity in `[from_us, to_us)`, ascending.
pub async fn active_between(view: &StoreView, spec: &ChurnSpec, from_us: i64, to_us: i64) -> Result<Vec<String>, ChurnError> {
    let sql = format!(
        "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL AND {} AND arrow_cast(ts, 'Int64') >= {from_us} AND arrow_cast(ts, 'Int64') < {to_us} ORDER BY user_id",
        activity_predicate(spec)
    );
    let result = run_sql(view, &sql, QueryOptions::default()).await?;
    let mut users = Vec::new();
    for batch in &result.batches {
        users.extend(text_values(batch.column(0))?.into_iter().flatten());
    }
    Ok(users)
}

/// The time of the last event in the store, if any.
pub async fn data_end_us(view: &StoreView) -> Result<Option<i64>, ChurnError> {
    let result = run_sql(view, "SELECT max(arrow_cast(ts, 'Int64')) FROM events", QueryOptions::default()).await?;
    let batch: Option<&RecordBatch> = result.batches.iter().find(|b| b.num_rows() > 0);
    Ok(batch.and_then(|b| {
        let a = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        a.is_valid(0).then(|| a.value(0))
    }))
}
