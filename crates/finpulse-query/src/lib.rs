//! finpulse's SQL: a DataFusion session over a [`StoreView`] — compacted Parquet plus the live
//! tail — with an `events` table and one view per event type whose columns are its fields.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache, FileStatisticsCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, cast, col, lit};
pub use finpulse_core::mask::Exposure;
use finpulse_core::mask::MaskStyle;
use finpulse_log::StoreView;
use finpulse_log::columns::{SEQ_COLUMN, masked_form_column, seq_field, widen, with_seq};
use futures::StreamExt;
use mask::MaskedForms;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub mod activity;
pub mod behaviour;
mod mask;
pub mod sql;

/// Memory a query may use before it spills or fails.
pub const QUERY_MEMORY_BYTES_MAX_DEFAULT: usize = 4 << 30;
/// The longest SQL text accepted.
pub const SQL_BYTES_MAX: usize = 64 * 1024;
/// Memory for Parquet footers kept across queries (a compacted day's file carries about 100 KB
/// of footer for the 69-column schema).
pub const PARQUET_FOOTER_CACHE_BYTES: usize = 256 << 20;
/// Memory for per-file statistics kept across queries.
pub const FILE_STATISTICS_CACHE_BYTES: usize = 64 << 20;

/// Caches every query session shares: Parquet footers and per-file statistics. Each query has
/// its own session (and memory budget), and without these every query would read and decode the
/// footer of every file again (0.2 s over 104 files). Files are never rewritten in place — a
/// compaction writes new names — and an entry is used only while the file's size and
/// modification time match it.
fn shared_caches() -> CacheManagerConfig {
    static CACHES: OnceLock<(Arc<FileMetadataCache>, Arc<FileStatisticsCache>)> = OnceLock::new();
    let (footers, statistics) = CACHES.get_or_init(|| {
        (
            Arc::new(DefaultCache::new(PARQUET_FOOTER_CACHE_BYTES).with_name("finpulse parquet footers")),
            Arc::new(DefaultCache::new(FILE_STATISTICS_CACHE_BYTES).with_name("finpulse file statistics")),
        )
    });
    CacheManagerConfig::default()
        .with_file_metadata_cache(Some(footers.clone()))
        .with_metadata_cache_limit(PARQUET_FOOTER_CACHE_BYTES)
        .with_file_statistics_cache(Some(statistics.clone()))
        .with_file_statistics_cache_limit(FILE_STATISTICS_CACHE_BYTES)
}

/// Query errors.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is wrong or failed to run (DataFusion's message says where).
    #[error("{0}")]
    Sql(String),
    /// The SQL text is too long.
    #[error("query is {0} bytes, over the limit of {SQL_BYTES_MAX}")]
    TooLong(usize),
    /// An empty query.
    #[error("query is empty")]
    Empty,
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Sql(e.to_string())
    }
}

/// The memory budget of every query this process runs with default options: the operator's
/// `query_memory_bytes_max`, set once at start ([`set_query_memory_bytes_max`]), so that SQL,
/// insights, segments, churn features and the CLI all keep to it.
static QUERY_MEMORY_BYTES_MAX: AtomicUsize = AtomicUsize::new(QUERY_MEMORY_BYTES_MAX_DEFAULT);

/// Sets the memory budget of every query run with [`QueryOptions::default`] from now on.
pub fn set_query_memory_bytes_max(bytes: usize) {
    QUERY_MEMORY_BYTES_MAX.store(bytes, Ordering::Relaxed);
}

/// The memory budget queries get by default (see [`set_query_memory_bytes_max`]).
pub fn query_memory_bytes_max() -> usize {
    QUERY_MEMORY_BYTES_MAX.load(Ordering::Relaxed)
}

/// Query options.
#[derive(Debug, Clone, Copy)]
pub struct QueryOptions {
    /// Memory budget per query.
    pub memory_bytes_max: usize,
    /// Parallel partitions (defaults to the number of cores).
    pub target_partitions: usize,
    /// Stop reading the result after this many rows ([`QueryResult::rows_truncated`] then
    /// says so); the rest is never computed. `None`: every row.
    pub rows_max: Option<usize>,
    /// What the query may see of personal data: every column of `events` and the type views
    /// is masked at the scan by its field's data class, so no expression over a column (cast,
    /// concatenation, `substr`, a join) reaches a value the reader may not see.
    pub exposure: Exposure,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            memory_bytes_max: query_memory_bytes_max(),
            target_partitions: finpulse_core::cores(),
            rows_max: None,
            exposure: Exposure::Internal,
        }
    }
}

/// A query's result.
pub struct QueryResult {
    /// Column names and types.
    pub schema: SchemaRef,
    /// Rows.
    pub batches: Vec<RecordBatch>,
    /// Whether rows were left out at [`QueryOptions::rows_max`].
    pub rows_truncated: bool,
}

/// The values of a text column of a query result, whatever string encoding DataFusion chose
/// (Parquet scans give views, the tail gives plain strings); `None` where null.
pub fn text_values(column: &dyn arrow::array::Array) -> Result<Vec<Option<String>>, QueryError> {
    use arrow::array::{Array, AsArray};
    let utf8 = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
        .map_err(|e| QueryError::Sql(format!("reading a text column: {e}")))?;
    let a = utf8.as_string::<i32>();
    Ok((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())).collect())
}

/// Builds a session with `events` and the per-type views over a store view.
pub async fn session(view: &StoreView, opts: QueryOptions) -> Result<SessionContext, QueryError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(opts.memory_bytes_max)))
        .with_cache_manager(shared_caches())
        .build_arc()?;
    // DataFusion's own settings can be tuned by the operator through `DATAFUSION_*` variables.
    let config = SessionConfig::from_env()?.with_target_partitions(opts.target_partitions.max(1)).with_information_schema(true);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    behaviour::register(&ctx)?;
    let schema = view.schema.clone();
    // What `events` holds: the registry's wide schema, then each event's log position.
    let with_seq_schema = {
        let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(seq_field()));
        Arc::new(arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()))
    };

    let mut first_seq = view.tail_first_seq;
    let mut tail: Vec<RecordBatch> = Vec::with_capacity(view.tail.len());
    for batch in &view.tail {
        tail.push(with_seq(&widen(batch, &schema), first_seq).map_err(|e| QueryError::Sql(format!("numbering the tail: {e}")))?);
        first_seq += batch.num_rows() as u64;
    }
    let tail_table = MemTable::try_new(with_seq_schema.clone(), vec![tail])?;
    let masking = opts.exposure != Exposure::Internal;
    let shown = |df: DataFrame, forms: MaskedForms| -> Result<DataFrame, QueryError> {
        Ok(if masking {
            df.select(mask::columns(&with_seq_schema, &view.registry, opts.exposure, forms, view.sealer.as_ref()))?
        } else {
            df
        })
    };
    let mut events = shown(ctx.read_table(Arc::new(tail_table))?, MaskedForms::Computed)?;
    // Files that store masked forms are read with those columns in place of masking each
    // value; files compacted before forms were stored are masked as they are read.
    // (A file the view does not say stores them is masked as read.)
    let (mut stored, mut computed): (Vec<&PathBuf>, Vec<&PathBuf>) = (Vec::new(), Vec::new());
    for (i, file) in view.files.iter().enumerate() {
        if view.masked_forms.get(i) == Some(&true) { stored.push(file) } else { computed.push(file) }
    }
    let stored_forms = if opts.exposure == Exposure::Masked { finpulse_log::columns::masked_fields(&view.registry) } else { Vec::new() };
    for (files, forms) in [(computed, MaskedForms::Computed), (stored, MaskedForms::Stored)] {
        if files.is_empty() {
            continue;
        }
        let extra: &[(String, MaskStyle)] = if forms == MaskedForms::Stored { &stored_forms } else { &[] };
        let parquet = shown(read_files(&ctx, &files, &with_seq_schema, extra)?, forms)?;
        events = parquet.union(events)?;
    }
    if masking {
        ctx.add_optimizer_rule(Arc::new(mask::MaskedPrefixFilter));
    }
    ctx.register_table("events", events.clone().into_view())?;

    for spec in view.registry.event_types() {
        let mut columns = vec![col("event_id"), col("user_id"), col("ts")];
        columns.extend(spec.fields.iter().map(|f| col(view.registry.field(f.field).name.as_str())));
        columns.push(col(SEQ_COLUMN));
        let typed = events.clone().filter(col("type").eq(lit(spec.name.as_str())))?.select(columns)?;
        ctx.register_table(spec.name.as_str(), typed.into_view())?;
    }
    Ok(ctx)
}

/// The compacted `files` as a relation of `events`' columns plus the stored masked form of each
/// of `masked` (named by [`finpulse_log::columns::masked_form_column`]). Text is read from the
/// files as string views (no copy of each value out of the page dictionaries) and seen as plain
/// text: a filter on a text column (`type = 'deposit'`) runs on the views, and only the rows it
/// keeps are copied.
fn read_files(
    ctx: &SessionContext,
    files: &[&PathBuf],
    events_schema: &arrow::datatypes::Schema,
    masked: &[(String, MaskStyle)],
) -> Result<DataFrame, QueryError> {
    let urls = files.iter().map(|p| ListingTableUrl::parse(p.to_string_lossy())).collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let mut fields: Vec<arrow::datatypes::Field> = events_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(masked.iter().map(|(name, _)| arrow::datatypes::Field::new(masked_form_column(name), DataType::Utf8, true)));
    let read_schema = Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => f.clone().with_data_type(DataType::Utf8View),
                _ => f.clone(),
            })
            .collect::<Vec<_>>(),
        events_schema.metadata().clone(),
    ));
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(read_schema);
    let parquet: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?);
    let as_text = fields.iter().map(|f| match f.data_type() {
        DataType::Utf8 => cast(col(f.name()), DataType::Utf8).alias(f.name()),
        _ => col(f.name()),
    });
    Ok(ctx.read_table(parquet)?.select(as_text.collect::<Vec<_>>())?)
}

/// Runs one SQL statement over a store view.
pub async fn run_sql(view: &StoreView, sql: &str, opts: QueryOptions) -> Result<QueryResult, QueryError> {
    if sql.len() > SQL_BYTES_MAX {
        return Err(QueryError::TooLong(sql.len()));
    }
    if sql.trim().is_empty() {
        return Err(QueryError::Empty);
    }
    let ctx = session(view, opts).await?;
    // Read-only: no DDL (CREATE/DROP), no DML (INSERT/COPY TO writes files), no SET.
    let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, read_only).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let Some(rows_max) = opts.rows_max else {
        let batches = df.collect().await?;
        return Ok(QueryResult { schema, batches, rows_truncated: false });
    };
    // Read the result as it is produced and stop at the limit: dropping the stream cancels
    // the rest of the plan, so a huge result is never built in memory.
    let mut stream = df.execute_stream().await?;
    let (mut batches, mut rows) = (Vec::new(), 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let room = rows_max - rows;
        if batch.num_rows() > room {
            batches.push(batch.slice(0, room));
            return Ok(QueryResult { schema, batches, rows_truncated: true });
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(QueryResult { schema, batches, rows_truncated: false })
}
