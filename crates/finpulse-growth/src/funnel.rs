//! Funnel: ordered steps inside a window, with ClickHouse's `windowFunnel` strictness modes —
//! users reaching each step, conversion from the first and from the previous step, drop-off,
//! the median time between steps, and the users who dropped at a step.

use crate::params::{EventSpec, Scope, ScopeInput, duration_secs, text_literal};
use crate::table::{self, Cell};
use crate::{Catalog, InsightError, Table, sql};
use datafusion::prelude::SessionContext;
use finpulse_query::behaviour::{FunnelMode, MAX_CONDITIONS};
use std::collections::BTreeMap;

/// Most users listed behind a step when no limit is given.
pub const USERS_LISTED_DEFAULT: usize = 1_000;

/// A funnel as asked.
#[derive(Debug, Clone, Default)]
pub struct FunnelInput {
    /// Steps in order: `TYPE` or `TYPE:FIELD=VALUE`.
    pub steps: Vec<String>,
    /// Window from the first step: seconds or `30m`, `24h`, `7d` (default 7d).
    pub window: Option<String>,
    /// '' or comma-separated strict_order, strict_deduplication, strict_increase, strict_once, allow_reentry.
    pub mode: String,
    /// List the users who reached the step before this one (1-based) but not this one.
    pub dropped_at: Option<usize>,
    /// Most users listed.
    pub limit: Option<usize>,
}

/// A checked funnel.
#[derive(Debug, Clone)]
pub struct Funnel {
    steps: Vec<EventSpec>,
    window_secs: i64,
    mode: String,
    strict_order: bool,
    dropped_at: Option<usize>,
    limit: usize,
    scope: Scope,
}

impl Funnel {
    /// Checks a funnel request.
    pub fn parse(input: &FunnelInput, scope: &ScopeInput, cx: &Catalog) -> Result<Self, InsightError> {
        let registry = cx.registry;
        if input.steps.is_empty() {
            return Err(InsightError::param("steps", "give at least one step"));
        }
        if input.steps.len() > MAX_CONDITIONS {
            return Err(InsightError::param("steps", format!("at most {MAX_CONDITIONS} steps, got {}", input.steps.len())));
        }
        let steps = input.steps.iter().map(|s| EventSpec::parse(s, registry, "steps")).collect::<Result<Vec<_>, _>>()?;
        let window_secs = duration_secs(input.window.as_deref().unwrap_or("7d"), "window")?;
        let mode = FunnelMode::parse(&input.mode).map_err(|e| InsightError::param("mode", e.to_string().trim_start_matches("mode: ")))?;
        if let Some(k) = input.dropped_at
            && (k < 2 || k > steps.len())
        {
            return Err(InsightError::param("dropped_at", format!("a step from 2 to {}, got {k}", steps.len())));
        }
        let scope = Scope::parse(scope, cx)?;
        Ok(Self {
            steps,
            window_secs,
            mode: input.mode.clone(),
            strict_order: mode.strict_order,
            dropped_at: input.dropped_at,
            limit: input.limit.unwrap_or(USERS_LISTED_DEFAULT),
            scope,
        })
    }

    fn where_sql(&self) -> String {
        let mut parts = vec![self.scope.range_sql("e.ts"), self.scope.filters_sql()];
        // Under strict_order every row counts (an unrelated one breaks the order).
        if !self.strict_order {
            parts.push(format!("({})", self.steps.iter().map(|s| s.sql().to_string()).collect::<Vec<_>>().join(" OR ")));
        }
        parts.join(" AND ")
    }

    /// Each user's level, from the step events read once into `funnel_steps`.
    fn levels_sql(&self) -> String {
        let flags = (1..=self.steps.len()).map(|k| format!("s{k}")).collect::<Vec<_>>().join(", ");
        format!(
            "WITH levels AS (SELECT user_id, grp, window_funnel({w}, {mode}, ts, {flags}) AS level FROM funnel_steps GROUP BY user_id, grp)",
            w = self.window_secs,
            mode = text_literal(&self.mode),
        )
    }

    /// The step events of the funnel's users (`user_id, grp, ts, s1…sN`).
    fn steps_sql(&self) -> String {
        let flags = self.steps.iter().enumerate().map(|(i, s)| format!("{} AS s{}", s.sql(), i + 1)).collect::<Vec<_>>().join(", ");
        format!(
            "WITH {users}x AS (SELECT e.user_id, {grp} AS grp, e.ts, {flags} FROM {from} WHERE {filter}) SELECT * FROM x",
            users = self.scope.with_users(),
            grp = self.scope.breakdown_sql(),
            from = self.scope.from_events(),
            filter = self.where_sql()
        )
    }
}

/// Registers query results as a table of the session; false when there were no rows.
fn register(ctx: &SessionContext, name: &str, batches: Vec<arrow::array::RecordBatch>) -> Result<bool, InsightError> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(false);
    }
    ctx.register_table(name, ctx.read_batches(batches)?.into_view())?;
    Ok(true)
}

/// Answers a funnel. The step events are read once; levels, the users who dropped and the
/// times between steps all come from them.
pub async fn run(ctx: &SessionContext, funnel: &Funnel) -> Result<Table, InsightError> {
    let any_steps = register(ctx, "funnel_steps", sql(ctx, &funnel.steps_sql()).await?)?;
    if let Some(k) = funnel.dropped_at {
        let mut t = Table::new(&["user_id", "breakdown"]);
        if any_steps {
            let q = format!(
                "{} SELECT user_id, grp FROM levels WHERE level = {} ORDER BY user_id LIMIT {}",
                funnel.levels_sql(),
                k - 1,
                funnel.limit
            );
            t.rows = table::rows(&sql(ctx, &q).await?)?;
        }
        if funnel.scope.breakdown.is_none() {
            t.drop_column(1);
        }
        return Ok(t);
    }
    let n = funnel.steps.len();
    let mut levels: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut medians: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    if !any_steps {
        return Ok(table_of(funnel, &levels, &medians));
    }
    let q = format!("{} SELECT grp, level, count(*) AS users FROM levels GROUP BY grp, level", funnel.levels_sql());
    for r in table::rows(&sql(ctx, &q).await?)? {
        let (level, users) = (table::int(&r, 1, "level")?, table::int(&r, 2, "users")?);
        let level = usize::try_from(level).unwrap_or(0).min(n);
        levels.entry(table::group(&r, 0)).or_insert_with(|| vec![0; n + 1])[level] += users;
    }
    // Median time between steps k−1 and k, over the users who reached step k: following each
    // user's first step-1 event, the first occurrence of each later step inside the window.
    // Each step's users are computed once from the previous step's.
    let first = sql(ctx, "SELECT user_id, grp, min(ts) AS t1, min(ts) AS tp FROM funnel_steps WHERE s1 GROUP BY user_id, grp").await?;
    let mut reached = register(ctx, "funnel_reached_1", first)?;
    for k in 2..=n {
        if !reached {
            break;
        }
        let q = format!(
            "SELECT f.user_id, f.grp, f.t1, min(s.ts) AS tp, f.tp AS tprev FROM funnel_reached_{p} f JOIN funnel_steps s \
             ON s.user_id = f.user_id AND (s.grp IS NOT DISTINCT FROM f.grp) AND s.s{k} AND s.ts >= f.tp AND s.ts <= f.t1 + INTERVAL '{w} seconds' \
             GROUP BY f.user_id, f.grp, f.t1, f.tp",
            p = k - 1,
            w = funnel.window_secs
        );
        reached = register(ctx, &format!("funnel_reached_{k}"), sql(ctx, &q).await?)?;
        if !reached {
            break;
        }
        let m = format!("SELECT grp, median(date_part('epoch', tp) - date_part('epoch', tprev)) FROM funnel_reached_{k} GROUP BY grp");
        for r in table::rows(&sql(ctx, &m).await?)? {
            let median = table::float_or_null(&r, 1, "median")?;
            medians.entry(table::group(&r, 0)).or_insert_with(|| vec![None; n - 1])[k - 2] = median;
        }
    }
    Ok(table_of(funnel, &levels, &medians))
}

/// Users per step, conversion, drop-off and median times, per breakdown group.
fn table_of(funnel: &Funnel, levels: &BTreeMap<String, Vec<i64>>, medians: &BTreeMap<String, Vec<Option<f64>>>) -> Table {
    let n = funnel.steps.len();
    let mut t = Table::new(&["breakdown", "step", "event", "users", "conversion", "from_previous", "dropped", "median_secs_from_previous"]);
    for (grp, counts) in levels {
        // Users who reached at least step k.
        let reached: Vec<i64> = (0..=n).map(|k| counts[k..].iter().sum()).collect();
        for k in 1..=n {
            let ratio = |a: i64, b: i64| if b > 0 { Cell::from(a as f64 / b as f64) } else { Cell::Null };
            t.rows.push(vec![
                Cell::from(grp.as_str()),
                Cell::from(k),
                Cell::from(funnel.steps[k - 1].label.as_str()),
                Cell::from(reached[k]),
                ratio(reached[k], reached[1]),
                if k == 1 { Cell::Null } else { ratio(reached[k], reached[k - 1]) },
                if k == 1 { Cell::Int(0) } else { Cell::from(reached[k - 1] - reached[k]) },
                if k == 1 { Cell::Null } else { Cell::from(medians.get(grp).and_then(|m| m.get(k - 2).copied().flatten())) },
            ]);
        }
    }
    if funnel.scope.breakdown.is_none() {
        t.drop_column(0);
    }
    t
}
