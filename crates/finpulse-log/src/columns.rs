//! Events as Arrow columns: one wide `events` schema with the common columns and every field of
//! the registry (null where a type lacks it). The live tail and Parquet segments share it.

use arrow::array::{
    Array, ArrayData, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    make_array,
};
use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use finpulse_core::mask::{Exposure, FieldExposure, MaskStyle, field_exposure};
use finpulse_core::registry::CUSTOM_ID_BASE;
use finpulse_core::{Event, FieldId, FieldType, Registry, Value};
use std::sync::{Arc, Mutex, OnceLock};

/// The UTC zone name Arrow timestamps carry.
pub const UTC: &str = "UTC";

/// The Arrow type of a field type.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::Bool => DataType::Boolean,
        FieldType::Int => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::String => DataType::Utf8,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
    }
}

/// The column holding each event's log position (its record's sequence number): the order in
/// which the store accepted events, and the tie-break among a user's events with the same
/// timestamp wherever a per-user sequence is built (`sequence_match`, `window_funnel`). Compacted
/// files carry it; queries add it to the tail from [`crate::StoreView::tail_first_seq`].
pub use finpulse_core::registry::SEQ_COLUMN;

/// The Arrow field of [`SEQ_COLUMN`]: nullable, because files compacted before it existed lack it.
pub fn seq_field() -> Field {
    Field::new(SEQ_COLUMN, DataType::UInt64, true)
}

/// `batch` with [`SEQ_COLUMN`] appended: row `i` gets `first_seq + i` (the batch must hold
/// consecutive log records in log order).
pub fn with_seq(batch: &RecordBatch, first_seq: u64) -> Result<RecordBatch, ArrowError> {
    let seq: ArrayRef = Arc::new(arrow::array::UInt64Array::from_iter_values(first_seq..first_seq + batch.num_rows() as u64));
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(seq_field());
    let mut columns = batch.columns().to_vec();
    columns.push(seq);
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, batch.schema().metadata().clone())), columns)
}

/// The wide `events` schema for a registry: event_id, user_id, ts, type, then every field.
pub fn events_schema(registry: &Registry) -> SchemaRef {
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())), false),
        Field::new("type", DataType::Utf8, false),
    ];
    fields.extend(registry.fields().map(|f| Field::new(&f.name, arrow_type(f.ty), true)));
    Arc::new(Schema::new(fields))
}

enum Column {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Str(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
}

impl Column {
    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Self::Bool(b) => b.len(),
            Self::Int(b) => b.len(),
            Self::Float(b) => b.len(),
            Self::Str(b) => b.len(),
            Self::Ts(b) => b.len(),
        }
    }
    fn pad_nulls_to(&mut self, len: usize) {
        let n = len - self.len();
        if n == 0 {
            return;
        }
        match self {
            Self::Bool(b) => b.append_nulls(n),
            Self::Int(b) => b.append_nulls(n),
            Self::Float(b) => b.append_nulls(n),
            Self::Str(b) => b.append_nulls(n),
            Self::Ts(b) => b.append_nulls(n),
        }
    }
    /// Appends a value; a value whose type does not match the column is stored as null (the
    /// registry guarantees it never happens for validated events).
    fn push(&mut self, value: &Value) {
        match (self, value) {
            (Self::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Self::Int(b), Value::Int(v)) => b.append_value(*v),
            (Self::Float(b), Value::Float(v)) => b.append_value(*v),
            (Self::Str(b), Value::Str(v)) => b.append_value(v),
            (Self::Ts(b), Value::Ts(v)) => b.append_value(*v),
            (c, _) => {
                debug_assert!(false, "value type does not match its column");
                let len = c.len() + 1;
                c.pad_nulls_to(len);
            }
        }
    }
    /// An empty column with room for `rows` values (`rows` = 0: no allocation yet).
    fn with_capacity(ty: FieldType, rows: usize) -> Self {
        match ty {
            FieldType::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            FieldType::Int => Self::Int(Int64Builder::with_capacity(rows)),
            FieldType::Float => Self::Float(Float64Builder::with_capacity(rows)),
            FieldType::String => Self::Str(StringBuilder::with_capacity(rows, rows * STRING_BYTES_GUESS)),
            FieldType::Timestamp => Self::Ts(TimestampMicrosecondBuilder::with_capacity(rows)),
        }
    }
    fn finish(self) -> ArrayRef {
        match self {
            Self::Bool(mut b) => Arc::new(b.finish()),
            Self::Int(mut b) => Arc::new(b.finish()),
            Self::Float(mut b) => Arc::new(b.finish()),
            Self::Str(mut b) => Arc::new(b.finish()),
            Self::Ts(mut b) => Arc::new(b.finish().with_timezone(UTC)),
        }
    }
    fn finish_cloned(&self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish_cloned()),
            Self::Int(b) => Arc::new(b.finish_cloned()),
            Self::Float(b) => Arc::new(b.finish_cloned()),
            Self::Str(b) => Arc::new(b.finish_cloned()),
            Self::Ts(b) => Arc::new(b.finish_cloned().with_timezone(UTC)),
        }
    }
    fn field_type(&self) -> FieldType {
        match self {
            Self::Bool(_) => FieldType::Bool,
            Self::Int(_) => FieldType::Int,
            Self::Float(_) => FieldType::Float,
            Self::Str(_) => FieldType::String,
            Self::Ts(_) => FieldType::Timestamp,
        }
    }
}

/// Bytes per value a string column is first sized for.
const STRING_BYTES_GUESS: usize = 12;

/// Column position (after the 4 common columns) of each field id, by direct lookup.
struct FieldIndex {
    builtin: Vec<Option<usize>>,
    custom: Vec<Option<usize>>,
}

impl FieldIndex {
    fn new(registry: &Registry) -> Self {
        let mut index = Self { builtin: Vec::new(), custom: Vec::new() };
        for (i, f) in registry.fields().enumerate() {
            let (slots, at) = if f.id.0 >= CUSTOM_ID_BASE {
                (&mut index.custom, (f.id.0 - CUSTOM_ID_BASE) as usize)
            } else {
                (&mut index.builtin, f.id.0 as usize)
            };
            if slots.len() <= at {
                slots.resize(at + 1, None);
            }
            slots[at] = Some(i);
        }
        index
    }

    fn column(&self, id: FieldId) -> Option<usize> {
        let slot = if id.0 >= CUSTOM_ID_BASE { self.custom.get((id.0 - CUSTOM_ID_BASE) as usize) } else { self.builtin.get(id.0 as usize) };
        slot.copied().flatten()
    }
}

/// Converts events to a batch of the registry's `events` schema. Cost is proportional to the
/// number of values present, not to events × columns.
pub fn events_to_batch<'a>(registry: &Registry, schema: &SchemaRef, events: impl ExactSizeIterator<Item = &'a Event>) -> RecordBatch {
    let mut open = OpenBatch::with_capacity(registry, schema.clone(), events.len());
    for e in events {
        open.push(registry, e);
    }
    open.into_batch()
}

/// Rows of the `events` schema growing in Arrow builders, one event at a time: the log tail's
/// newest rows. Appending costs the values an event carries; [`OpenBatch::finish`] hands the
/// columns over without copying them, so rows are copied once however small the commits that
/// brought them (merging many small batches instead copies each row several times, and the
/// largest merges stall whoever waits on them). [`OpenBatch::snapshot`] copies the rows so far
/// for a reader.
pub struct OpenBatch {
    schema: SchemaRef,
    index: FieldIndex,
    types: Vec<FieldType>,
    /// Rows each column is sized for at its first value.
    capacity: usize,
    event_id: StringBuilder,
    user_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    ty: StringBuilder,
    /// One per registry field; a column no event has used yet holds nothing (its nulls are
    /// added when the batch is finished).
    columns: Vec<Column>,
    rows: usize,
}

impl OpenBatch {
    /// An empty batch of `schema` (the registry's `events_schema`) sized for `capacity` rows.
    pub fn with_capacity(registry: &Registry, schema: SchemaRef, capacity: usize) -> Self {
        let types: Vec<FieldType> = registry.fields().map(|f| f.ty).collect();
        Self {
            schema,
            index: FieldIndex::new(registry),
            columns: types.iter().map(|ty| Column::with_capacity(*ty, 0)).collect(),
            types,
            capacity,
            event_id: StringBuilder::with_capacity(capacity, capacity * 24),
            user_id: StringBuilder::with_capacity(capacity, capacity * 12),
            ts: TimestampMicrosecondBuilder::with_capacity(capacity),
            ty: StringBuilder::with_capacity(capacity, capacity * 10),
            rows: 0,
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends an event of `registry` (the one the batch was made for, or a later one: field
    /// ids the batch has no column for are left out).
    pub fn push(&mut self, registry: &Registry, e: &Event) {
        self.event_id.append_value(&e.event_id);
        self.user_id.append_option(e.user_id.as_deref());
        self.ts.append_value(e.ts_us);
        self.ty.append_value(&registry.event_type(e.type_id).name);
        for (fid, value) in &e.fields {
            if let Some(c) = self.index.column(*fid) {
                let column = &mut self.columns[c];
                if column.len() == 0 {
                    // First value: size the column for the whole batch rather than by doubling;
                    // columns no event uses allocate nothing until the final null padding.
                    *column = Column::with_capacity(self.types[c], self.capacity.max(self.rows + 1));
                }
                column.pad_nulls_to(self.rows);
                column.push(value);
            }
        }
        self.rows += 1;
    }

    /// The rows as a batch, leaving this one empty (and sized as before) for the next rows.
    pub fn finish(&mut self) -> RecordBatch {
        self.take(self.capacity)
    }

    /// The rows as a batch.
    pub fn into_batch(mut self) -> RecordBatch {
        self.take(0)
    }

    /// The rows as a batch, leaving the common columns sized for `cap` rows.
    fn take(&mut self, cap: usize) -> RecordBatch {
        let n = self.rows;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(std::mem::replace(&mut self.event_id, StringBuilder::with_capacity(cap, cap * 24)).finish()),
            Arc::new(std::mem::replace(&mut self.user_id, StringBuilder::with_capacity(cap, cap * 12)).finish()),
            Arc::new(std::mem::replace(&mut self.ts, TimestampMicrosecondBuilder::with_capacity(cap)).finish().with_timezone(UTC)),
            Arc::new(std::mem::replace(&mut self.ty, StringBuilder::with_capacity(cap, cap * 10)).finish()),
        ];
        for (c, field) in self.columns.iter_mut().zip(self.schema.fields().iter().skip(4)) {
            if c.len() == 0 {
                arrays.push(null_column(field.data_type(), n));
            } else {
                c.pad_nulls_to(n);
                let ty = c.field_type();
                arrays.push(std::mem::replace(c, Column::with_capacity(ty, 0)).finish());
            }
        }
        self.rows = 0;
        // The arrays follow the schema field by field, each of length `n`.
        RecordBatch::try_new(self.schema.clone(), arrays).expect("arrays built to the events schema")
    }

    /// A copy of the rows so far as a batch, or `None` when there are none.
    pub fn snapshot(&self) -> Option<RecordBatch> {
        let n = self.rows;
        if n == 0 {
            return None;
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish_cloned()),
            Arc::new(self.user_id.finish_cloned()),
            Arc::new(self.ts.finish_cloned().with_timezone(UTC)),
            Arc::new(self.ty.finish_cloned()),
        ];
        for (c, field) in self.columns.iter().zip(self.schema.fields().iter().skip(4)) {
            let len = c.len();
            arrays.push(if len == 0 {
                null_column(field.data_type(), n)
            } else if len == n {
                c.finish_cloned()
            } else {
                // Rows after the column's last value are null.
                let nulls = null_column(field.data_type(), n - len);
                arrow::compute::concat(&[c.finish_cloned().as_ref(), nulls.as_ref()]).expect("one type")
            });
        }
        Some(RecordBatch::try_new(self.schema.clone(), arrays).expect("arrays built to the events schema"))
    }
}

/// Widens a batch built under an older registry to `schema`, filling new columns with nulls.
pub fn widen(batch: &RecordBatch, schema: &SchemaRef) -> RecordBatch {
    if batch.schema() == *schema {
        return batch.clone();
    }
    let arrays = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(a) => a.clone(),
            None => null_column(f.data_type(), batch.num_rows()),
        })
        .collect();
    // Older registries only ever lack fields (ids are append-only), so names and types match.
    RecordBatch::try_new(schema.clone(), arrays).expect("older batch is a prefix of the schema")
}

/// Zeroed bytes shared by every all-null column: a field no event in a batch carries costs no
/// memory and no copying, however many batches are built, merged and sorted. (Most of the wide
/// schema's columns are null in any batch; giving each its own zeroed buffers made them the
/// larger part of an import's memory traffic.)
static ZEROS: Mutex<Option<Buffer>> = Mutex::new(None);

/// At least `bytes` zeroed bytes, shared.
fn zeros(bytes: usize) -> Buffer {
    // Only ever replaced whole: a lock poisoned elsewhere still holds a whole buffer.
    let mut shared = ZEROS.lock().unwrap_or_else(|p| p.into_inner());
    match shared.as_ref() {
        Some(b) if b.len() >= bytes => b.slice_with_length(0, bytes),
        _ => {
            let b = Buffer::from(MutableBuffer::from_len_zeroed(bytes.next_power_of_two().max(64 * 1024)));
            let out = b.slice_with_length(0, bytes);
            *shared = Some(b);
            out
        }
    }
}

/// Rows of the ready-made all-null columns that small batches take slices of.
const NULL_TEMPLATE_ROWS: usize = 4096;

/// An all-null array of `len` rows over the shared zeroed bytes. A small one (a decision's
/// one-row batch has some sixty) is a slice of a ready-made column, which costs one
/// allocation instead of building the array. Types outside the events schema get arrow's own
/// null array.
pub fn null_column(data_type: &DataType, len: usize) -> ArrayRef {
    static TEMPLATES: OnceLock<Vec<ArrayRef>> = OnceLock::new();
    if len <= NULL_TEMPLATE_ROWS {
        let templates = TEMPLATES.get_or_init(|| {
            [FieldType::Bool, FieldType::Int, FieldType::Float, FieldType::String, FieldType::Timestamp]
                .map(|ty| build_null_column(&arrow_type(ty), NULL_TEMPLATE_ROWS))
                .to_vec()
        });
        if let Some(t) = templates.iter().find(|t| t.data_type() == data_type) {
            return t.slice(0, len);
        }
    }
    build_null_column(data_type, len)
}

fn build_null_column(data_type: &DataType, len: usize) -> ArrayRef {
    let values = match data_type {
        DataType::Boolean => zeros(len.div_ceil(8)),
        DataType::Int64 | DataType::Float64 | DataType::Timestamp(TimeUnit::Microsecond, _) => zeros(len * 8),
        // Offsets all zero: every value is the empty slice of an empty value buffer.
        DataType::Utf8 => zeros((len + 1) * 4),
        other => return arrow::array::new_null_array(other, len),
    };
    let mut builder = ArrayData::builder(data_type.clone()).len(len).null_count(len).null_bit_buffer(Some(zeros(len.div_ceil(8))));
    builder = builder.add_buffer(values);
    if *data_type == DataType::Utf8 {
        builder = builder.add_buffer(Buffer::from(MutableBuffer::new(0)));
    }
    // SAFETY: the buffers are sized for `len` rows of the type above and hold zeros, which is
    // a valid value for each of them (zero offsets for strings); every row is null.
    make_array(unsafe { builder.build_unchecked() })
}

/// Whether every row of a column is null.
fn all_null(column: &ArrayRef) -> bool {
    column.null_count() == column.len()
}

/// Concatenates batches of one schema, giving columns that are null in every batch the shared
/// null column instead of copying zeros.
pub fn concat_wide(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, ArrowError> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let columns = (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            if batches.iter().all(|b| all_null(b.column(i))) {
                Ok(null_column(schema.field(i).data_type(), rows))
            } else {
                arrow::compute::concat(&parts)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(schema.clone(), columns, &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)))
}

/// Reorders a batch's rows by `indices`; all-null columns stay shared.
pub fn take_wide(batch: &RecordBatch, indices: &arrow::array::UInt32Array) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| if all_null(c) { Ok(null_column(c.data_type(), indices.len())) } else { arrow::compute::take(c, indices, None) })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(batch.schema(), columns)
}

/// The name of the column in which compacted files store a field's masked form. Field names
/// start with a letter, so it can never be a field's own name.
pub fn masked_form_column(field_name: &str) -> String {
    format!("{MASKED_FORM_PREFIX}{field_name}")
}

pub use finpulse_core::registry::MASKED_FORM_PREFIX;

/// The fields whose masked form compaction stores beside them: text fields that every reader
/// without a purpose sees masked (their data class and mask style in the registry), with the
/// style. Masking is then a column read for the compacted files, not work per row per query.
pub fn masked_fields(registry: &Registry) -> Vec<(String, MaskStyle)> {
    registry
        .fields()
        .filter(|f| f.ty == FieldType::String)
        .filter_map(|f| match field_exposure(f.class, f.mask, Exposure::Masked) {
            FieldExposure::Masked(style) => Some((f.name.clone(), style)),
            FieldExposure::Shown | FieldExposure::Withheld => None,
        })
        .collect()
}

/// `batch` (a wide `events` batch) with the masked form of each of `fields` appended as
/// [`masked_form_column`], in the order given, worked out from the same rows of `clear` (the
/// batch itself, or the batch with its sealed fields opened). A field the batch lacks, or that
/// is null in every row, gets the shared null column.
pub fn with_masked_forms(batch: &RecordBatch, clear: &RecordBatch, fields: &[(String, MaskStyle)]) -> Result<RecordBatch, ArrowError> {
    assert_eq!(batch.num_rows(), clear.num_rows(), "the clear rows are the batch's");
    let schema = batch.schema();
    let mut out_fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = batch.columns().to_vec();
    for (name, style) in fields {
        out_fields.push(Field::new(masked_form_column(name), DataType::Utf8, true));
        let masked = match clear.schema().index_of(name).ok().map(|i| clear.column(i)) {
            Some(values) if !all_null(values) => mask_text(values, *style)?,
            _ => null_column(&DataType::Utf8, batch.num_rows()),
        };
        columns.push(masked);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(out_fields, schema.metadata().clone())),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// The masked form of each value of a text column (plain, large or view strings) in `style`,
/// as plain strings; nulls stay null. The one implementation of masking over a column: the
/// compaction's stored forms and the query's masking of what is not compacted both use it.
pub fn mask_text(values: &ArrayRef, style: MaskStyle) -> Result<ArrayRef, ArrowError> {
    use arrow::array::AsArray;
    match values.data_type() {
        DataType::Utf8 => mask_strings(values.as_string::<i32>(), style),
        DataType::LargeUtf8 => mask_strings(values.as_string::<i64>(), style),
        DataType::Utf8View => mask_strings(values.as_string_view(), style),
        other => Err(ArrowError::InvalidArgumentError(format!("masking takes text, not {other}"))),
    }
}

fn mask_strings<'a, A>(strings: A, style: MaskStyle) -> Result<ArrayRef, ArrowError>
where
    A: arrow::array::StringArrayType<'a> + Array,
{
    let rows = strings.len();
    let mut text = String::with_capacity(24 * rows);
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    // A user's rows sit together, so a value often repeats the row before: its masked form is
    // copied instead of worked out again.
    let mut previous: Option<(&str, usize)> = None;
    for i in 0..rows {
        if strings.is_valid(i) {
            let value = strings.value(i);
            let start = text.len();
            match previous {
                Some((p, at)) if p == value => text.extend_from_within(at..start),
                _ => style.write_masked(value, &mut text).expect("writing to a String does not fail"),
            }
            previous = Some((value, start));
        }
        let end = i32::try_from(text.len()).map_err(|_| ArrowError::ComputeError("masked text over 2 GiB in one batch".into()))?;
        offsets.push(end);
    }
    // Nulls stay where they were; every value is whole UTF-8 text, checked once more here.
    let masked = arrow::array::StringArray::try_new(
        arrow::buffer::OffsetBuffer::new(offsets.into()),
        Buffer::from(text.into_bytes()),
        strings.nulls().cloned(),
    )?;
    Ok(Arc::new(masked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    use finpulse_core::{FieldId, TypeId};

    #[test]
    fn sparse_fields_land_in_their_columns_with_nulls_elsewhere() {
        let reg = Registry::builtin();
        let schema = events_schema(&reg);
        let amount = reg.field_id("amount_fen").unwrap();
        let events = [
            Event {
                event_id: "a".into(),
                user_id: Some("u".into()),
                ts_us: 1,
                type_id: reg.type_id("payment").unwrap(),
                fields: vec![(amount, Value::Int(5))],
            },
            Event { event_id: "b".into(), user_id: None, ts_us: 2, type_id: TypeId(1), fields: vec![(FieldId(7), Value::Bool(true))] },
            Event { event_id: "c".into(), user_id: Some("v".into()), ts_us: 3, type_id: TypeId(0), fields: vec![(amount, Value::Int(7))] },
        ];
        let batch = events_to_batch(&reg, &schema, events.iter());
        assert_eq!(batch.num_rows(), 3);
        let amounts = batch.column_by_name("amount_fen").unwrap().as_primitive::<Int64Type>();
        assert_eq!(amounts.value(0), 5);
        assert!(amounts.is_null(1));
        assert_eq!(amounts.value(2), 7);
        assert_eq!(batch.column_by_name("type").unwrap().as_string::<i32>().value(1), "fraud_label");
        assert!(batch.column_by_name("user_id").unwrap().is_null(1));
    }

    #[test]
    fn an_open_batch_gives_the_batch_its_events_make_whether_copied_midway_or_finished() {
        let reg = Registry::builtin();
        let schema = events_schema(&reg);
        let (amount, label) = (reg.field_id("amount_fen").unwrap(), FieldId(7));
        let payment = reg.type_id("payment").unwrap();
        // The amount column's last value comes before the last row, and the label's first
        // value after the first: both need nulls added at either end.
        let events: Vec<Event> = (0..5)
            .map(|i| Event {
                event_id: format!("e{i}"),
                user_id: (i != 2).then(|| format!("u{i}")),
                ts_us: i,
                type_id: if i == 3 { TypeId(1) } else { payment },
                fields: match i {
                    0 | 2 => vec![(amount, Value::Int(i * 10))],
                    3 => vec![(label, Value::Bool(true))],
                    _ => vec![],
                },
            })
            .collect();
        let mut open = OpenBatch::with_capacity(&reg, schema.clone(), 2);
        assert!(open.snapshot().is_none());
        for (i, e) in events.iter().enumerate() {
            open.push(&reg, e);
            let copy = open.snapshot().unwrap();
            copy.columns().iter().for_each(|c| c.to_data().validate_full().unwrap());
            assert_eq!(copy, events_to_batch(&reg, &schema, events[..=i].iter()), "after {} rows", i + 1);
        }
        assert_eq!(open.finish(), events_to_batch(&reg, &schema, events.iter()));
        assert!(open.is_empty() && open.snapshot().is_none());
        // Emptied, it takes the next rows as a new batch.
        open.push(&reg, &events[3]);
        open.push(&reg, &events[0]);
        let next = open.finish();
        next.columns().iter().for_each(|c| c.to_data().validate_full().unwrap());
        assert_eq!(next, events_to_batch(&reg, &schema, [&events[3], &events[0]].into_iter()));
    }

    #[test]
    fn shared_null_columns_read_as_null_for_every_type_and_length() {
        for ty in [FieldType::Bool, FieldType::Int, FieldType::Float, FieldType::String, FieldType::Timestamp] {
            for len in [0, 1, 7, NULL_TEMPLATE_ROWS, NULL_TEMPLATE_ROWS + 3] {
                let column = null_column(&arrow_type(ty), len);
                column.to_data().validate_full().unwrap();
                assert_eq!((column.len(), column.null_count(), column.data_type()), (len, len, &arrow_type(ty)));
            }
        }
    }

    #[test]
    fn concatenating_and_reordering_keep_values_and_nulls_in_place() {
        let reg = Registry::builtin();
        let schema = events_schema(&reg);
        let amount = reg.field_id("amount_fen").unwrap();
        let payment = reg.type_id("payment").unwrap();
        let event = |id: &str, value: Option<i64>| Event {
            event_id: id.into(),
            user_id: Some("u".into()),
            ts_us: 1,
            type_id: payment,
            fields: value.map(|v| vec![(amount, Value::Int(v))]).unwrap_or_default(),
        };
        let first = events_to_batch(&reg, &schema, [event("a", None), event("b", None)].iter());
        let second = events_to_batch(&reg, &schema, [event("c", Some(3))].iter());
        let all = concat_wide(&schema, &[first.clone(), second]).unwrap();
        let amounts = all.column_by_name("amount_fen").unwrap().as_primitive::<Int64Type>();
        assert_eq!((amounts.null_count(), amounts.value(2)), (2, 3));
        let nulls_only = concat_wide(&schema, &[first.clone(), first]).unwrap();
        assert_eq!(nulls_only.column_by_name("amount_fen").unwrap().null_count(), 4);
        let reordered = take_wide(&all, &arrow::array::UInt32Array::from(vec![2, 0, 1])).unwrap();
        let ids = reordered.column(0).as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1), ids.value(2)), ("c", "a", "b"));
        let amounts = reordered.column_by_name("amount_fen").unwrap().as_primitive::<Int64Type>();
        assert_eq!((amounts.value(0), amounts.is_null(1), amounts.is_null(2)), (3, true, true));
        for c in reordered.columns() {
            c.to_data().validate_full().unwrap();
        }
    }
}
