//! Events as Arrow columns: one wide `events` schema with the common columns and every field of
//! the registry (null where a type lacks it). The live tail and Parquet segments share it.

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use finpulse_core::registry::CUSTOM_ID_BASE;
use finpulse_core::{Event, FieldId, FieldType, Registry, Value};
use std::sync::Arc;

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
    let n = events.len();
    let mut event_id = StringBuilder::with_capacity(n, n * 24);
    let mut user_id = StringBuilder::with_capacity(n, n * 12);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
    let mut ty = StringBuilder::with_capacity(n, n * 10);
    let index = FieldIndex::new(registry);
    let types: Vec<FieldType> = registry.fields().map(|f| f.ty).collect();
    let mut columns: Vec<Column> = types.iter().map(|ty| Column::with_capacity(*ty, 0)).collect();
    for (row, e) in events.enumerate() {
        event_id.append_value(&e.event_id);
        user_id.append_option(e.user_id.as_deref());
        ts.append_value(e.ts_us);
        ty.append_value(&registry.event_type(e.type_id).name);
        for (fid, value) in &e.fields {
            if let Some(c) = index.column(*fid) {
                let column = &mut columns[c];
                if column.len() == 0 {
                    // First value: size the column for the whole batch rather than by doubling;
                    // columns no event uses allocate nothing until the final null padding.
                    *column = Column::with_capacity(types[c], n);
                }
                column.pad_nulls_to(row);
                column.push(value);
            }
        }
    }
    let mut arrays: Vec<ArrayRef> =
        vec![Arc::new(event_id.finish()), Arc::new(user_id.finish()), Arc::new(ts.finish().with_timezone(UTC)), Arc::new(ty.finish())];
    for mut c in columns {
        c.pad_nulls_to(n);
        arrays.push(c.finish());
    }
    // The arrays follow `events_schema(registry)` field by field, each of length `n`.
    RecordBatch::try_new(schema.clone(), arrays).expect("arrays built to the events schema")
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
            None => arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    // Older registries only ever lack fields (ids are append-only), so names and types match.
    RecordBatch::try_new(schema.clone(), arrays).expect("older batch is a prefix of the schema")
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
}
