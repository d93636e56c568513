//! Arrow results as JSON: `{"columns": [{"name", "type"}], "rows": [[...], ...]}`. Every type
//! DataFusion returns has a JSON form: lists are arrays, structs objects, maps objects keyed by
//! the key's text, times RFC 3339 in UTC, and decimals, dates and intervals their exact text.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::*;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};

/// One cell as JSON: numbers stay numbers (integers exactly), times are RFC 3339 text, lists,
/// structs and maps nest, and anything else is its Arrow display text.
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
        DataType::Timestamp(_, _) => match arrow::compute::cast(&array.slice(row, 1), &DataType::Timestamp(TimeUnit::Microsecond, None)) {
            Ok(us) => cell(us.as_ref(), 0),
            Err(e) => Value::String(format!("<{e}>")),
        },
        DataType::List(_) => nested(array.as_list::<i32>().value(row).as_ref()),
        DataType::LargeList(_) => nested(array.as_list::<i64>().value(row).as_ref()),
        DataType::FixedSizeList(_, _) => nested(array.as_fixed_size_list().value(row).as_ref()),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), cell(c.as_ref(), row))).collect())
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let key_text = |i: usize| match cell(keys.as_ref(), i) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Value::Object((0..entries.len()).map(|i| (key_text(i), cell(values.as_ref(), i))).collect())
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

/// Every element of a list as JSON.
fn nested(values: &dyn Array) -> Value {
    Value::Array((0..values.len()).map(|i| cell(values, i)).collect())
}

/// One cell as text for a CSV or a terminal: nested values as their JSON, text as itself.
pub fn text(array: &dyn Array, row: usize) -> String {
    match cell(array, row) {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
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
