//! The `users` table insights join for user properties (channel, campaign, …): each user's
//! fields from their first signup.
//!
//! As a query it is a group-by over every signup in the store, run again by every insight that
//! breaks down or filters by a user property (about 0.2 s at 100k users). Compacted files never
//! change, so their part — each user's first signup in them — is kept for the latest set of
//! files, and only signups still in the tail are folded in per session.

use crate::InsightError;
use crate::params::{USER_PROPERTIES_EVENT, ident};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use finpulse_log::StoreView;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The table insights read user properties from; the `users` CTE selects from it.
pub const USERS_TABLE: &str = "_users";
/// The users table's column with the time of each user's first signup (named apart from any
/// signup field).
pub const FIRST_SIGNUP_COLUMN: &str = "_first_ts";

/// The compacted files' first signups, with the time of each ([`FIRST_SIGNUP_COLUMN`]), kept for one set of
/// files (the latest asked about): one row per user, so its size follows the user count.
struct Compacted {
    files: Vec<FileKey>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

/// A compacted file as written: its path, length and modification time.
type FileKey = (PathBuf, u64, Option<std::time::SystemTime>);

fn cache() -> &'static Mutex<Option<Arc<Compacted>>> {
    static CACHE: OnceLock<Mutex<Option<Arc<Compacted>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The signup fields that become user properties.
fn fields(view: &StoreView) -> Vec<String> {
    let registry = &view.registry;
    registry
        .type_id(USER_PROPERTIES_EVENT)
        .map(|t| registry.event_type(t).fields.iter().map(|f| registry.field(f.field).name.clone()).collect())
        .unwrap_or_default()
}

/// `user_id, min(ts) AS _first_ts, first_value(f ORDER BY ts) AS f, …` grouped by user, over
/// `from` (rows with `user_id`, `ts` and the fields).
fn first_signups_sql(fields: &[String], from: &str) -> String {
    let mut select = vec!["user_id".to_string(), format!("min(ts) AS {FIRST_SIGNUP_COLUMN}")];
    select.extend(fields.iter().map(|f| format!("first_value({f} ORDER BY ts) AS {f}", f = ident(f))));
    format!("SELECT {} FROM {from} GROUP BY user_id", select.join(", "))
}

/// Registers [`USERS_TABLE`] in `ctx`: per user, the time and fields of their first signup —
/// what `SELECT user_id, min(ts), first_value(f ORDER BY ts) … FROM user_signup GROUP BY user_id`
/// gives.
pub(crate) async fn register(ctx: &SessionContext, view: &StoreView) -> Result<(), InsightError> {
    let fields = fields(view);
    let compacted = compacted(view, &fields).await?;
    let tail = tail_signups(view)?;
    let compacted_table = MemTable::try_new(compacted.schema.clone(), vec![compacted.batches.clone()])?;
    if tail.is_empty() {
        // No signup waits in the tail: the compacted part is the answer.
        ctx.register_table(USERS_TABLE, Arc::new(compacted_table))?;
        return Ok(());
    }
    // Tail signups are few: each user's compacted first signup competes with them.
    let schema = view.schema.clone();
    ctx.register_table("_users_compacted", Arc::new(compacted_table))?;
    ctx.register_table("_tail_signups", Arc::new(MemTable::try_new(schema, vec![tail])?))?;
    let columns: Vec<String> = fields.iter().map(|f| ident(f)).collect();
    let list = if columns.is_empty() { String::new() } else { format!(", {}", columns.join(", ")) };
    let union = format!(
        "(SELECT user_id, {FIRST_SIGNUP_COLUMN} AS ts{list} FROM _users_compacted UNION ALL \
         SELECT user_id, ts{list} FROM _tail_signups WHERE \"type\" = '{USER_PROPERTIES_EVENT}') AS s"
    );
    let users = ctx.sql(&first_signups_sql(&fields, &union)).await?;
    ctx.register_table(USERS_TABLE, users.into_view())?;
    Ok(())
}

/// The compacted files' part, from the cache or worked out now (and kept).
async fn compacted(view: &StoreView, fields: &[String]) -> Result<Arc<Compacted>, InsightError> {
    let files: Vec<FileKey> = view
        .files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).map_err(|e| InsightError::Query(format!("reading {}: {e}", p.display())))?;
            Ok((p.clone(), meta.len(), meta.modified().ok()))
        })
        .collect::<Result<_, InsightError>>()?;
    // The cache is only ever replaced whole, so a lock poisoned elsewhere still holds a whole value.
    if let Some(c) = cache().lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|c| c.files == files) {
        return Ok(c.clone());
    }
    let files_only = StoreView {
        registry: view.registry.clone(),
        schema: view.schema.clone(),
        files: view.files.clone(),
        masked_forms: view.masked_forms.clone(),
        tail: Vec::new(),
        tail_first_seq: view.tail_first_seq,
        sealer: view.sealer.clone(),
    };
    let ctx = crate::plain_session(&files_only).await?;
    let df = if ctx.table_exist(USER_PROPERTIES_EVENT)? {
        ctx.sql(&first_signups_sql(fields, USER_PROPERTIES_EVENT)).await?
    } else {
        // A catalogue without signups: no user has properties.
        ctx.sql(&format!("SELECT CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS TIMESTAMP) AS {FIRST_SIGNUP_COLUMN} WHERE FALSE")).await?
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let c = Arc::new(Compacted { files, schema, batches });
    *cache().lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
    Ok(c)
}

/// The tail's signup rows, widened to the store's schema.
fn tail_signups(view: &StoreView) -> Result<Vec<RecordBatch>, InsightError> {
    let mut out = Vec::new();
    for batch in &view.tail {
        let Some(kinds) = batch.column_by_name("type") else { continue };
        let kinds = arrow::compute::cast(kinds, &arrow::datatypes::DataType::Utf8).map_err(|e| InsightError::Query(e.to_string()))?;
        let is_signup: arrow::array::BooleanArray =
            kinds.as_string::<i32>().iter().map(|k| Some(k == Some(USER_PROPERTIES_EVENT))).collect();
        if is_signup.true_count() == 0 {
            continue;
        }
        let kept = arrow::compute::filter_record_batch(batch, &is_signup).map_err(|e| InsightError::Query(e.to_string()))?;
        out.push(finpulse_log::columns::widen(&kept, &view.schema));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use finpulse_core::{RawRecord, RawValue, ValidationLimits};

    /// The users table gives what the group-by over every signup gives, from compacted files
    /// alone and with signups in the tail — one earlier than a user's compacted signup (it
    /// wins), one later (it does not), one of a new user — and again after a compaction.
    #[test]
    fn users_from_the_cache_and_the_tail_equal_the_sql_answer() {
        let (_dir, mut store) = crate::test_support::empty_store();
        let registry = store.registry();
        crate::test_support::simulate(&mut store, 300, 20, 3, |_, _| {});
        store.compact().unwrap();
        let runtime = crate::test_support::runtime();
        let check = |view: &StoreView, what: &str| {
            let fields = fields(view);
            let ctx = runtime.block_on(crate::session(view)).unwrap();
            let rows = |q: String| crate::table::rows(&runtime.block_on(crate::sql(&ctx, &q)).unwrap()).unwrap();
            let by_table = rows(format!("SELECT * FROM {USERS_TABLE} ORDER BY user_id"));
            let by_sql = rows(format!("{} ORDER BY user_id", first_signups_sql(&fields, USER_PROPERTIES_EVENT)));
            assert!(by_sql.len() >= 300, "{what}: {} users", by_sql.len());
            assert_eq!(by_table, by_sql, "{what}");
            by_table
        };
        let before = check(&store.view_handle().snapshot(), "compacted only");
        // u-ids and channels as the simulator writes them; the first user's compacted signup
        // is at some time in the first day.
        let first = before[0][0].as_text().unwrap().to_string();
        let signup = |n: u32, user: &str, ts_us: i64, channel: &str| {
            let r = RawRecord::default()
                .with("event_id", RawValue::Str(format!("late-signup-{n}")))
                .with("ts", RawValue::Micros(ts_us))
                .with("type", RawValue::Str(USER_PROPERTIES_EVENT.into()))
                .with("user_id", RawValue::Str(user.into()))
                .with("channel", RawValue::Str(channel.into()));
            registry.validate(&r, &ValidationLimits::default()).unwrap()
        };
        let start_us = 20_454 * 86_400_000_000i64;
        store
            .append_groups(&[vec![
                signup(1, &first, start_us - 86_400_000_000, "tail_earlier"),
                signup(2, before[1][0].as_text().unwrap(), start_us + 40 * 86_400_000_000, "tail_later"),
                signup(3, "zz-new-user", start_us + 41 * 86_400_000_000, "tail_new"),
            ]])
            .unwrap();
        let view = store.view_handle().snapshot();
        assert!(!view.tail.is_empty(), "signups in the tail");
        let with_tail = check(&view, "with the tail");
        let channel_of = |rows: &[Vec<crate::Cell>], user: &str| {
            let i = 2 + fields(&view).iter().position(|f| f == "channel").unwrap();
            rows.iter().find(|r| r[0].as_text() == Some(user)).map(|r| r[i].clone())
        };
        assert_eq!(channel_of(&with_tail, &first), Some(crate::Cell::from("tail_earlier")));
        assert_eq!(channel_of(&with_tail, "zz-new-user"), Some(crate::Cell::from("tail_new")));
        store.compact().unwrap();
        let after = check(&store.view_handle().snapshot(), "after compacting the tail");
        assert_eq!(after, with_tail);
    }
}
