//! The masking projection every reader's query runs over: one expression per column of
//! `events`, chosen by the field's data class and mask style in the schema.

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringArrayType};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility};
use datafusion::prelude::{cast, col, lit};
use finpulse_core::Registry;
use finpulse_core::mask::{Exposure, FieldExposure, MaskStyle, field_exposure};
use std::sync::Arc;

/// The projection that shows `events` as a reader with `exposure` may see it. Columns that are
/// not fields (event_id, user_id, ts, type, _seq) are shown as they are.
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
                FieldExposure::Masked(style) if matches!(f.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
                    udf(style).call(vec![col(name)]).alias(name)
                }
                FieldExposure::Masked(_) | FieldExposure::Withheld => hidden(),
            }
        })
        .collect()
}

/// The function that masks text in `style`; named so a plan shows what it does.
fn udf(style: MaskStyle) -> ScalarUDF {
    ScalarUDF::new_from_impl(Mask::new(style))
}

/// Masks text in one style. It takes text in any of Arrow's layouts as it comes from the scan
/// (Parquet gives string views, the tail plain strings) so no cast copies every value first,
/// and answers plain strings.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mask {
    style: MaskStyle,
    signature: Signature,
}

impl Mask {
    fn new(style: MaskStyle) -> Self {
        let text = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
        let signature = Signature::one_of(text.into_iter().map(|t| TypeSignature::Exact(vec![t])).collect(), Volatility::Immutable);
        Self { style, signature }
    }
}

impl ScalarUDFImpl for Mask {
    fn name(&self) -> &str {
        match self.style {
            MaskStyle::IdNumber => "mask_id_number",
            MaskStyle::Mobile => "mask_mobile",
            MaskStyle::Card => "mask_card",
            MaskStyle::Name => "mask_name",
            MaskStyle::Partial => "mask_partial",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let style = self.style;
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.as_deref().map(|v| style.apply(v)))))
            }
            ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(mask_array(a, style)?)),
        }
    }
}

fn mask_array(a: &ArrayRef, style: MaskStyle) -> DfResult<ArrayRef> {
    match a.data_type() {
        DataType::Utf8 => mask_strings(a.as_string::<i32>(), style),
        DataType::LargeUtf8 => mask_strings(a.as_string::<i64>(), style),
        DataType::Utf8View => mask_strings(a.as_string_view(), style),
        other => Err(DataFusionError::Internal(format!("masking takes text, not {other}"))),
    }
}

fn mask_strings<'a, A>(strings: A, style: MaskStyle) -> DfResult<ArrayRef>
where
    A: StringArrayType<'a> + Array,
{
    let rows = strings.len();
    let mut text = String::with_capacity(24 * rows);
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    // A user's rows sit together in the files, so a value often repeats the row before: its
    // masked form is copied instead of worked out again.
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
        let end = i32::try_from(text.len()).map_err(|_| DataFusionError::Execution("masked text over 2 GiB in one batch".into()))?;
        offsets.push(end);
    }
    // Nulls stay where they were; every value is whole UTF-8 text, checked once more here.
    let masked = StringArray::try_new(OffsetBuffer::new(offsets.into()), Buffer::from(text.into_bytes()), strings.nulls().cloned())?;
    Ok(Arc::new(masked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_values_and_nulls_mask_as_each_would_alone() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![
            Some("6222021234561234"),
            Some("6222021234561234"),
            None,
            Some("6222021234561234"),
            Some("4000123412341234"),
            Some(""),
            Some("4000123412341234"),
        ]));
        let masked = mask_array(&input, MaskStyle::Card).unwrap();
        let masked = masked.as_string::<i32>();
        let alone = |v: &str| {
            let mut s = String::new();
            MaskStyle::Card.write_masked(v, &mut s).unwrap();
            s
        };
        let strings = input.as_string::<i32>();
        assert_eq!(masked.len(), strings.len());
        for i in 0..strings.len() {
            assert_eq!(masked.is_null(i), strings.is_null(i), "row {i}");
            if strings.is_valid(i) {
                assert_eq!(masked.value(i), alone(strings.value(i)), "row {i}");
            }
        }
        assert_eq!(masked.value(1), "6222 **** **** 1234");
        // String views (as Parquet gives them) mask the same.
        let view: ArrayRef = Arc::new(arrow::array::StringViewArray::from_iter(strings.iter()));
        assert_eq!(mask_array(&view, MaskStyle::Card).unwrap().as_string::<i32>(), masked);
    }
}
