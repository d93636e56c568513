//! The masking projection every reader's query runs over: one expression per column of
//! `events`, chosen by the field's data class and mask style in the schema.

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{cast, col, lit};
use finpulse_core::Registry;
use finpulse_core::mask::{Exposure, FieldExposure, MaskStyle, field_exposure};
use std::sync::Arc;

/// The projection that shows `events` as a reader with `exposure` may see it. Columns that are
/// not fields (event_id, user_id, ts, type) are shown as they are.
pub(crate) fn columns(schema: &Schema, registry: &Registry, exposure: Exposure) -> Vec<Expr> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let Some(field) = registry.field_id(name).map(|id| registry.field(id)) else {
                return col(name);
            };
            let hidden = || cast(lit(ScalarValue::Null), f.data_type().clone()).alias(name);
            match field_exposure(field.class, field.mask, exposure) {
                FieldExposure::Shown => col(name),
                FieldExposure::Masked(style) if f.data_type() == &DataType::Utf8 => udf(style).call(vec![col(name)]).alias(name),
                FieldExposure::Masked(_) | FieldExposure::Withheld => hidden(),
            }
        })
        .collect()
}

/// The function that masks text in `style`; named so a plan shows what it does.
fn udf(style: MaskStyle) -> ScalarUDF {
    let name = match style {
        MaskStyle::IdNumber => "mask_id_number",
        MaskStyle::Mobile => "mask_mobile",
        MaskStyle::Card => "mask_card",
        MaskStyle::Name => "mask_name",
        MaskStyle::Partial => "mask_partial",
    };
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| -> DfResult<ColumnarValue> {
            match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(v)) => {
                    Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.as_deref().map(|v| style.apply(v)))))
                }
                ColumnarValue::Scalar(other) => Ok(ColumnarValue::Scalar(ScalarValue::try_new_null(&other.data_type())?)),
                ColumnarValue::Array(a) => Ok(ColumnarValue::Array(mask_array(a, style))),
            }
        }),
    )
}

fn mask_array(a: &ArrayRef, style: MaskStyle) -> ArrayRef {
    let strings = a.as_string::<i32>();
    let mut out = StringBuilder::with_capacity(strings.len(), strings.value_data().len() + 8 * strings.len());
    for i in 0..strings.len() {
        if strings.is_valid(i) {
            // Written into the builder's buffer, then closed as one value: no string per row.
            style.write_masked(strings.value(i), &mut out).expect("writing to a string builder does not fail");
            out.append_value("");
        } else {
            out.append_null();
        }
    }
    Arc::new(out.finish())
}
