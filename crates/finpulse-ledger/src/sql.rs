//! The ledger as a SQL table: one row per posting, registered as `ledger` in a DataFusion
//! session beside the event views, so `SELECT stream, sum(-amount_minor) FROM ledger WHERE
//! account = 'revenue' GROUP BY stream` answers revenue by stream.

use crate::LedgerError;
use crate::ledger::State;
use crate::period::day_of;
use arrow::array::{ArrayRef, Date32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::sync::{Arc, LazyLock};

/// The table's name in a session.
pub const TABLE: &str = "ledger";
/// Postings per Arrow batch.
pub const BATCH_ROWS_MAX: usize = 64 * 1024;

/// The table's columns.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("tx_id", false),
        text("tx_kind", false),
        Field::new("booked", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("business_day", DataType::Date32, false),
        text("refers_to", true),
        text("source_event_id", true),
        text("account", false),
        text("stream", true),
        text("product", true),
        text("channel", true),
        text("scenario", true),
        text("partner", true),
        text("currency", false),
        Field::new("amount_minor", DataType::Int64, false),
    ]))
});

/// Every posting as Arrow batches of [`SCHEMA`].
pub fn batches(state: &State) -> Result<Vec<RecordBatch>, LedgerError> {
    let mut out = Vec::new();
    let mut b = Builders::default();
    for tx in state.transactions() {
        for p in &tx.postings {
            b.tx_id.append_value(&tx.id);
            b.tx_kind.append_value(tx.kind.name());
            b.booked.append_value(tx.booked_us);
            b.day.append_value(i32::try_from(day_of(tx.booked_us)).unwrap_or(i32::MAX));
            b.refers_to.append_option(tx.kind.refers_to());
            b.source.append_option(tx.source_event_id.as_deref());
            b.account.append_value(p.account.kind.name());
            b.stream.append_option(p.account.stream.map(|s| s.name()));
            let [product, channel, scenario, partner] = p.account.dimensions().map(|(_, v)| v);
            b.product.append_option(product);
            b.channel.append_option(channel);
            b.scenario.append_option(scenario);
            b.partner.append_option(partner);
            b.currency.append_value(p.currency.as_str());
            b.amount.append_value(p.amount_minor);
            b.rows += 1;
            if b.rows == BATCH_ROWS_MAX {
                out.push(std::mem::take(&mut b).finish()?);
            }
        }
    }
    if b.rows > 0 {
        out.push(b.finish()?);
    }
    Ok(out)
}

/// Registers the postings as [`TABLE`] in `ctx` (a copy: later posts are not seen).
pub fn register(ctx: &SessionContext, state: &State) -> Result<(), LedgerError> {
    let table = MemTable::try_new(SCHEMA.clone(), vec![batches(state)?])?;
    ctx.register_table(TABLE, Arc::new(table))?;
    Ok(())
}

#[derive(Default)]
struct Builders {
    tx_id: StringBuilder,
    tx_kind: StringBuilder,
    booked: TimestampMicrosecondBuilder,
    day: Date32Builder,
    refers_to: StringBuilder,
    source: StringBuilder,
    account: StringBuilder,
    stream: StringBuilder,
    product: StringBuilder,
    channel: StringBuilder,
    scenario: StringBuilder,
    partner: StringBuilder,
    currency: StringBuilder,
    amount: Int64Builder,
    rows: usize,
}

impl Builders {
    fn finish(mut self) -> Result<RecordBatch, LedgerError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.tx_id.finish()),
            Arc::new(self.tx_kind.finish()),
            Arc::new(self.booked.finish().with_timezone("UTC")),
            Arc::new(self.day.finish()),
            Arc::new(self.refers_to.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.stream.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.scenario.finish()),
            Arc::new(self.partner.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.amount.finish()),
        ];
        RecordBatch::try_new(SCHEMA.clone(), columns).map_err(|e| LedgerError::Query(e.to_string()))
    }
}
