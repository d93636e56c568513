//! Activation: of the users who signed up in the range, the share who completed each new-user
//! task within the window after signup (default 7 days), all of them, and who came back the day
//! after signing up; the median time to complete every task; by channel (or any breakdown).

use crate::params::{EventSpec, Scope, ScopeInput, duration_secs};
use crate::{Catalog, InsightError, Table, sql, table};
use datafusion::prelude::SessionContext;
use finpulse_core::registry::Registry;
use finpulse_core::time::MICROS_PER_DAY;
use finpulse_log::StoreView;

/// The table of signed-up users (user_id, grp, t0, next_day) an activation query reads: the
/// signups from SQL, and whether each was active the day after from the store; a name no event
/// type can take (type names start with a letter).
pub const SIGNUPS_TABLE: &str = "_signups";

/// The new-user tasks when none are given: the catalogue's `task_completed` events.
pub const DEFAULT_TASKS: [&str; 4] = [
    "task_completed:task=verify_identity",
    "task_completed:task=bind_card",
    "task_completed:task=first_deposit",
    "task_completed:task=first_investment",
];

/// An activation request as asked.
#[derive(Debug, Clone, Default)]
pub struct ActivationInput {
    /// The tasks, each `TYPE` or `TYPE:FIELD=VALUE` (default: the four new-user tasks).
    pub tasks: Vec<String>,
    /// Window after signup (default 7d).
    pub window: Option<String>,
}

/// Checked new-user tasks and their window, shared with acquisition.
#[derive(Debug, Clone)]
pub struct Tasks {
    /// The tasks.
    pub tasks: Vec<EventSpec>,
    /// The window after signup.
    pub window_secs: i64,
    /// Any event of a user (for next-day activity).
    any_user_event: EventSpec,
}

impl Tasks {
    /// Checks tasks (the defaults when empty) and a window (7 days when absent).
    pub fn parse(tasks: &[String], window: Option<&str>, registry: &Registry) -> Result<Self, InsightError> {
        let given: Vec<String> = if tasks.is_empty() { DEFAULT_TASKS.iter().map(|t| t.to_string()).collect() } else { tasks.to_vec() };
        if given.len() > 32 {
            return Err(InsightError::param("tasks", format!("at most 32 tasks, got {}", given.len())));
        }
        let tasks = given.iter().map(|t| EventSpec::parse(t, registry, "tasks")).collect::<Result<Vec<_>, _>>()?;
        let any_user_event = EventSpec::parse("any", registry, "tasks")?;
        Ok(Self { tasks, window_secs: duration_secs(window.unwrap_or("7d"), "window")?, any_user_event })
    }

    /// A short name for task `i`: the value it is narrowed to, or its type.
    pub fn name(&self, i: usize) -> String {
        let label = &self.tasks[i].label;
        label.rsplit_once('=').map_or(label.clone(), |(_, v)| v.trim_matches('\'').to_string())
    }

    /// `per_user` CTE body: per signed-up user (`s`: user_id, grp, t0), when each task was
    /// first completed inside the window (t1…tn) and whether they were active the next day.
    /// Without `next_day`, the column is NULL and no activity is joined (acquisition needs only
    /// the tasks).
    pub fn per_user_sql(&self, next_day: bool) -> String {
        let firsts = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!("min(CASE WHEN {} AND e.ts < s.t0 + INTERVAL '{} seconds' THEN e.ts END) AS t{}", t.sql(), self.window_secs, i + 1)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let any_task = self.tasks.iter().map(|t| t.sql().to_string()).collect::<Vec<_>>().join(" OR ");
        // Only task events are joined for the tasks; next-day activity is a column of the
        // signups (see `register_signups`).
        let next_day = if next_day { "max(s.next_day)" } else { "CAST(NULL AS BIGINT)" };
        format!(
            "SELECT s.user_id, s.grp, s.t0, {firsts}, {next_day} AS next_day FROM s \
             LEFT JOIN events e ON e.user_id = s.user_id AND e.ts >= s.t0 AND e.ts < s.t0 + INTERVAL '{w} seconds' AND ({any_task}) \
             GROUP BY s.user_id, s.grp, s.t0",
            w = self.window_secs,
        )
    }

    /// Registers [`SIGNUPS_TABLE`] in `ctx`: the signups in `scope`, and with `next_day` whether
    /// each user did anything the day after their signup (from the user's active days, read
    /// from the store).
    pub async fn register_signups(
        &self,
        ctx: &SessionContext,
        view: &StoreView,
        scope: &Scope,
        next_day: bool,
    ) -> Result<(), InsightError> {
        use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
        use arrow::datatypes::{DataType, Field, Schema, TimestampMicrosecondType};
        use std::sync::Arc;
        let types = self.any_user_event.types_only().map(<[String]>::to_vec).unwrap_or_default();
        let active = if next_day { crate::active_days(view, types).await? } else { Vec::new() };
        let by_user: std::collections::HashMap<&str, &[finpulse_query::activity::ActiveDay]> =
            active.iter().map(|(u, d)| (u.as_str(), d.as_slice())).collect();
        let signups = ctx.sql(&format!("WITH {} SELECT user_id, grp, t0 FROM s", signups_sql(scope))).await?;
        let mut fields: Vec<Field> = signups.schema().as_arrow().fields().iter().map(|f| f.as_ref().clone()).collect();
        if next_day {
            fields.push(Field::new("next_day", DataType::Int64, false));
        }
        let schema = Arc::new(Schema::new(fields));
        let mut batches = Vec::new();
        for b in signups.collect().await? {
            let mut columns: Vec<ArrayRef> = b.columns().to_vec();
            if next_day {
                let users = finpulse_query::text_values(b.column(0))?;
                let t0 = b
                    .column(2)
                    .as_primitive_opt::<TimestampMicrosecondType>()
                    .ok_or_else(|| InsightError::Query("signups: t0 is not a time".into()))?;
                let active_next_day: Int64Array = users
                    .iter()
                    .enumerate()
                    .map(|(i, user)| {
                        let days = user.as_deref().and_then(|u| by_user.get(u).copied()).unwrap_or_default();
                        let after = t0.is_valid(i).then(|| t0.value(i).div_euclid(MICROS_PER_DAY) + 1);
                        i64::from(after.is_some_and(|d| days.binary_search_by_key(&d, |a| a.0).is_ok()))
                    })
                    .collect();
                columns.push(Arc::new(active_next_day));
            }
            batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| InsightError::Query(e.to_string()))?);
        }
        ctx.register_table(SIGNUPS_TABLE, Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![batches])?))?;
        Ok(())
    }

    /// SQL true when a `per_user` row completed every task.
    pub fn all_done_sql(&self) -> String {
        (1..=self.tasks.len()).map(|i| format!("t{i} IS NOT NULL")).collect::<Vec<_>>().join(" AND ")
    }
}

/// A checked activation request.
#[derive(Debug, Clone)]
pub struct Activation {
    tasks: Tasks,
    scope: Scope,
}

impl Activation {
    /// Checks an activation request.
    pub fn parse(input: &ActivationInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        let tasks = Tasks::parse(&input.tasks, input.window.as_deref(), registry)?;
        let scope = Scope::parse(&scope.with_default_breakdown("user.channel"), cx)?;
        Ok(Self { tasks, scope })
    }
}

/// The signups CTE (`s`) for activation and acquisition: first signup per user in the range.
pub fn signups_sql(scope: &Scope) -> String {
    format!(
        "{users}s AS (SELECT e.user_id, {grp} AS grp, min(e.ts) AS t0 FROM events e LEFT JOIN users u ON e.user_id = u.user_id \
         WHERE e.\"type\" = 'user_signup' AND {range} AND {filters} GROUP BY e.user_id, {grp})",
        users = scope.with_users_always(),
        grp = scope.breakdown_sql(),
        range = scope.range_sql("e.ts"),
        filters = scope.filters_sql(),
    )
}

/// Answers an activation request.
pub async fn run(ctx: &SessionContext, view: &StoreView, a: &Activation) -> Result<Table, InsightError> {
    // The signups, with next-day activity, as the CTE `s`.
    let signups = format!("s AS (SELECT user_id, grp, t0, next_day FROM {SIGNUPS_TABLE})");
    a.tasks.register_signups(ctx, view, &a.scope, true).await?;
    let n = a.tasks.tasks.len();
    let shares = (1..=n).map(|i| format!("avg(CASE WHEN t{i} IS NOT NULL THEN 1.0 ELSE 0.0 END)")).collect::<Vec<_>>().join(", ");
    let last =
        if n == 1 { "t1".to_string() } else { format!("greatest({})", (1..=n).map(|i| format!("t{i}")).collect::<Vec<_>>().join(", ")) };
    let q = format!(
        "WITH {s}, per_user AS ({per_user}) SELECT grp, count(*) AS signups, {shares}, \
         avg(CASE WHEN {all} THEN 1.0 ELSE 0.0 END), avg(CAST(next_day AS DOUBLE)), \
         median(CASE WHEN {all} THEN date_part('epoch', {last}) - date_part('epoch', t0) END) \
         FROM per_user GROUP BY grp ORDER BY signups DESC, grp",
        s = signups,
        per_user = a.tasks.per_user_sql(true),
        all = a.tasks.all_done_sql(),
    );
    let mut columns = vec!["breakdown".to_string(), "signups".to_string()];
    columns.extend((0..n).map(|i| a.tasks.name(i)));
    columns.extend(["all_tasks".to_string(), "next_day_active".to_string(), "median_secs_to_activate".to_string()]);
    let rows = table::rows(&sql(ctx, &q).await?)?;
    Ok(Table { columns, rows, notes: Vec::new() })
}
