//! Arrow results as JSON: `{"columns": [{"name", "type"}], "rows": [[...], ...]}`.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::*;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};

/// One cell as JSON: numbers stay numbers (integers exactly), times are RFC 3339 text, and
/// anything else is its Arrow display text.
pub fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => json!(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => json!(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::String(finpulse_core::time::format_us(array.as_primitive::<TimestampMicrosecondType>().value(row)))
        }
        _ => {
            let options = FormatOptions::default();
            match ArrayFormatter::try_new(array, &options) {
                Ok(f) => Value::String(f.value(row).to_string()),
                Err(e) => Value::String(format!("<{e}>")),
            }
        }
    }
}

fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}

/// The column list of a result.
pub fn columns(schema: &Schema) -> Value {
    Value::Array(schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect())
}

/// Rows of a result as arrays, at most `rows_max`; the flag says whether rows were cut.
pub fn rows(batches: &[RecordBatch], rows_max: usize) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            if out.len() >= rows_max {
                return (out, true);
            }
            out.push(Value::Array(batch.columns().iter().map(|c| cell(c.as_ref(), row)).collect()));
        }
    }
    (out, false)
}
