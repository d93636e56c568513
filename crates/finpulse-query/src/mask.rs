//! The masking projection every reader's query runs over: one expression per column of
//! `events`, chosen by the field's data class and mask style in the schema.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArrayType};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::{cast, col, lit};
use finpulse_core::mask::{Exposure, FieldExposure, MaskStyle, field_exposure};
use finpulse_core::seal::{FieldSealer, SealedFields};
use finpulse_core::{FieldId, Registry};
use std::sync::Arc;

/// Where a relation's masked forms come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskedForms {
    /// Masked here, value by value (the tail, and files compacted before forms were stored).
    Computed,
    /// Read from each field's stored form ([`finpulse_log::columns::masked_form_column`]),
    /// which the relation must have as plain text.
    Stored,
}

/// The projection that shows `events` as a reader with `exposure` may see it. Columns that are
/// not fields (event_id, user_id, ts, type, _seq) are shown as they are. Sealed fields of a
/// protected store are opened (with each row's user) before they are shown or masked; stored
/// masked forms are read as they are, but an erased user's are hidden.
pub(crate) fn columns(
    schema: &Schema,
    registry: &Registry,
    exposure: Exposure,
    forms: MaskedForms,
    sealer: Option<&Arc<dyn FieldSealer>>,
) -> Vec<Expr> {
    let sealed = SealedFields::of(registry);
    schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().as_str();
            let Some(field) = registry.field_id(name).map(|id| registry.field(id)) else {
                return col(name);
            };
            let hidden = || cast(lit(ScalarValue::Null), f.data_type().clone()).alias(name);
            let opener = sealer.filter(|_| sealed.contains(field.id)).map(|s| open_udf(s.clone(), field.id, name));
            let value = || match &opener {
                Some(open) => open.call(vec![col("user_id"), col(name)]),
                None => col(name),
            };
            match field_exposure(field.class, field.mask, exposure) {
                FieldExposure::Shown => value().alias(name),
                FieldExposure::Masked(style) if matches!(f.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
                    match forms {
                        MaskedForms::Computed => udf(style).call(vec![value()]).alias(name),
                        MaskedForms::Stored => {
                            let stored = col(finpulse_log::columns::masked_form_column(name));
                            match sealer.filter(|s| s.erased_count() > 0 && sealed.contains(field.id)) {
                                Some(s) => unless_erased_udf(s.clone()).call(vec![col("user_id"), stored]).alias(name),
                                None => stored.alias(name),
                            }
                        }
                    }
                }
                FieldExposure::Masked(_) | FieldExposure::Withheld => hidden(),
            }
        })
        .collect()
}

/// The function that opens `field`'s sealed values with each row's user.
fn open_udf(sealer: Arc<dyn FieldSealer>, field: FieldId, name: &str) -> ScalarUDF {
    ScalarUDF::new_from_impl(OpenSealed::new(sealer, field, format!("open_{name}")))
}

/// The function that keeps a value unless its row's user was erased.
fn unless_erased_udf(sealer: Arc<dyn FieldSealer>) -> ScalarUDF {
    ScalarUDF::new_from_impl(OpenSealed::new(sealer, FieldId(u16::MAX), "unless_erased".into()))
}

/// Opens sealed text (`open_NAME(user_id, value)`), or, as `unless_erased(user_id, value)`,
/// keeps a value only while its user is not erased. Answers plain strings.
struct OpenSealed {
    sealer: Arc<dyn FieldSealer>,
    /// The field opened; `u16::MAX` for `unless_erased`.
    field: FieldId,
    name: String,
    signature: Signature,
}

impl OpenSealed {
    fn new(sealer: Arc<dyn FieldSealer>, field: FieldId, name: String) -> Self {
        let text = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
        let pairs = text.iter().flat_map(|u| text.iter().map(move |v| TypeSignature::Exact(vec![u.clone(), v.clone()])));
        Self { sealer, field, name, signature: Signature::one_of(pairs.collect(), Volatility::Volatile) }
    }
}

impl std::fmt::Debug for OpenSealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSealed").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PartialEq for OpenSealed {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.field == other.field && Arc::ptr_eq(&self.sealer, &other.sealer)
    }
}

impl Eq for OpenSealed {}

impl std::hash::Hash for OpenSealed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.field.0.hash(state);
    }
}

impl ScalarUDFImpl for OpenSealed {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let users = args.args[0].to_array(rows)?;
        let values = args.args[1].to_array(rows)?;
        let out = if self.field.0 == u16::MAX {
            let users = arrow::compute::cast(&users, &DataType::Utf8)?;
            let values = arrow::compute::cast(&values, &DataType::Utf8)?;
            let (users, values) = (users.as_string::<i32>(), values.as_string::<i32>());
            let kept = (0..rows).map(|i| {
                let erased = users.is_valid(i) && self.sealer.is_erased(users.value(i));
                (values.is_valid(i) && !erased).then(|| values.value(i))
            });
            Arc::new(kept.collect::<arrow::array::StringArray>()) as ArrayRef
        } else {
            finpulse_log::protection::open_column(&*self.sealer, self.field, &users, &values)
                .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.name)))?
        };
        Ok(ColumnarValue::Array(out))
    }
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

/// The names a plan shows for a style's masking function and for its prefix test.
fn function_names(style: MaskStyle) -> (&'static str, &'static str) {
    match style {
        MaskStyle::IdNumber => ("mask_id_number", "mask_id_number_starts_with"),
        MaskStyle::Mobile => ("mask_mobile", "mask_mobile_starts_with"),
        MaskStyle::Card => ("mask_card", "mask_card_starts_with"),
        MaskStyle::Name => ("mask_name", "mask_name_starts_with"),
        MaskStyle::Partial => ("mask_partial", "mask_partial_starts_with"),
    }
}

impl ScalarUDFImpl for Mask {
    fn name(&self) -> &str {
        function_names(self.style).0
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

/// Whether `value`'s masked form in `style` starts with `prefix`, worked out from the first
/// characters of the masked form only: the same answer as masking it and comparing, for every
/// value, without building the masked text.
pub(crate) fn masked_starts_with(style: MaskStyle, value: &str, prefix: &str) -> bool {
    /// Takes the masked text piece by piece and stops as soon as it differs from the prefix
    /// or has matched all of it.
    struct Compare<'a> {
        rest: &'a str,
        differs: bool,
    }
    impl std::fmt::Write for Compare<'_> {
        fn write_str(&mut self, piece: &str) -> std::fmt::Result {
            let n = piece.len().min(self.rest.len());
            if piece.as_bytes()[..n] != self.rest.as_bytes()[..n] {
                self.differs = true;
                return Err(std::fmt::Error);
            }
            self.rest = &self.rest[n..];
            if self.rest.is_empty() { Err(std::fmt::Error) } else { Ok(()) }
        }
    }
    if prefix.is_empty() {
        return true;
    }
    // The common card: digits only, long enough to show its first four. Its masked form starts
    // with those four and a space; decided without the masking code.
    if style == MaskStyle::Card && prefix.len() <= 5 && value.len() >= 12 && all_ascii_digits(value.as_bytes()) {
        let head = prefix.len().min(4);
        return value.as_bytes()[..head] == prefix.as_bytes()[..head] && (prefix.len() < 5 || prefix.as_bytes()[4] == b' ');
    }
    let mut c = Compare { rest: prefix, differs: false };
    let _stopped_early = style.write_masked(value, &mut c);
    !c.differs && c.rest.is_empty()
}

/// Whether every byte is an ASCII digit, eight bytes at a time: a byte is a digit when its high
/// nibble is 3 and adding 6 to its low nibble does not carry (no carry crosses a byte: at most
/// 15 + 6).
fn all_ascii_digits(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        if x & HIGH != 0x3030_3030_3030_3030 || ((x & LOW) + 0x0606_0606_0606_0606) & HIGH != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(u8::is_ascii_digit)
}

/// Whether a text whose first four bytes are `head` certainly does not mask in `style` to
/// something starting with `prefix`, from those bytes alone; false when they cannot tell. Most
/// values of a selective filter are ruled out here without their text being read.
///
/// Each style shows either nothing (stars throughout, for a value too short) or its value's
/// first `k` kept characters; a prefix that does not start with a star and differs from those
/// characters matches neither. The head's bytes are those characters when they are ASCII (and,
/// for cards, letters or digits: spaces and dashes are not kept).
fn head_rules_out(style: MaskStyle, head: [u8; 4], prefix: &[u8]) -> bool {
    let shown = match style {
        MaskStyle::Card => 4,
        MaskStyle::IdNumber | MaskStyle::Mobile => 3,
        MaskStyle::Name => 1,
        // How much it shows depends on the length in characters: not decided here.
        MaskStyle::Partial => return false,
    };
    let k = shown.min(prefix.len());
    if k == 0 || prefix[0] == b'*' {
        return false;
    }
    let kept = |b: &u8| if style == MaskStyle::Card { b.is_ascii_alphanumeric() } else { b.is_ascii() && *b != 0 };
    head[..k].iter().all(kept) && head[..k] != prefix[..k]
}

/// `mask_STYLE(text) LIKE 'prefix%'` (no wildcard or escape in the prefix, case sensitive)
/// rewritten to `mask_STYLE_starts_with(text, 'prefix')`: the same answer for every row, from
/// the first characters of each masked value instead of the whole masked text. No clear value
/// is compared with anything but the masked form, so the rewrite reveals nothing the masked
/// column does not. A `CAST(text AS Utf8)` around a string-view column is dropped on the way
/// (the function reads views), so the files' values are not copied either.
#[derive(Debug, Default)]
pub(crate) struct MaskedPrefixFilter;

impl datafusion::optimizer::OptimizerRule for MaskedPrefixFilter {
    fn name(&self) -> &str {
        "masked_prefix_filter"
    }

    fn apply_order(&self) -> Option<datafusion::optimizer::ApplyOrder> {
        Some(datafusion::optimizer::ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _: &dyn datafusion::optimizer::OptimizerConfig,
    ) -> DfResult<Transformed<datafusion::logical_expr::LogicalPlan>> {
        use datafusion::logical_expr::LogicalPlan;
        let input_schema = match &plan {
            LogicalPlan::Filter(f) => f.input.schema().clone(),
            LogicalPlan::Projection(p) => p.input.schema().clone(),
            LogicalPlan::TableScan(_) => plan.schema().clone(),
            _ => return Ok(Transformed::no(plan)),
        };
        plan.map_expressions(|e| e.transform_up(|e| prefix_like(e, &input_schema)))
    }
}

fn prefix_like(e: Expr, schema: &datafusion::common::DFSchema) -> DfResult<Transformed<Expr>> {
    use datafusion::logical_expr::expr::{Cast, Like, ScalarFunction};
    let Expr::Like(Like { negated, expr, pattern, escape_char: None, case_insensitive: false }) = &e else {
        return Ok(Transformed::no(e));
    };
    let (Expr::ScalarFunction(ScalarFunction { func, args }), Expr::Literal(pattern, _)) = (expr.as_ref(), pattern.as_ref()) else {
        return Ok(Transformed::no(e));
    };
    let (Some(mask), [arg]) = (func.inner().downcast_ref::<Mask>(), args.as_slice()) else {
        return Ok(Transformed::no(e));
    };
    let (ScalarValue::Utf8(Some(pattern)) | ScalarValue::Utf8View(Some(pattern)) | ScalarValue::LargeUtf8(Some(pattern))) = pattern else {
        return Ok(Transformed::no(e));
    };
    // DataFusion's LIKE takes a backslash as its escape even when none is named.
    let Some(prefix) = pattern.strip_suffix('%').filter(|p| !p.contains(['%', '_', '\\'])) else {
        return Ok(Transformed::no(e));
    };
    let text = match arg {
        Expr::Cast(Cast { expr: inner, field })
            if field.data_type() == &DataType::Utf8 && matches!(inner.get_type(schema), Ok(DataType::Utf8View | DataType::LargeUtf8)) =>
        {
            inner.as_ref().clone()
        }
        other => other.clone(),
    };
    let test = ScalarUDF::new_from_impl(MaskedStartsWith::new(mask.style)).call(vec![text, lit(prefix)]);
    Ok(Transformed::yes(if *negated { Expr::Not(Box::new(test)) } else { test }))
}

/// Whether each text's masked form starts with a prefix (see [`MaskedPrefixFilter`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct MaskedStartsWith {
    style: MaskStyle,
    signature: Signature,
}

impl MaskedStartsWith {
    fn new(style: MaskStyle) -> Self {
        let text = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
        let signature =
            Signature::one_of(text.into_iter().map(|t| TypeSignature::Exact(vec![t, DataType::Utf8])).collect(), Volatility::Immutable);
        Self { style, signature }
    }
}

impl ScalarUDFImpl for MaskedStartsWith {
    fn name(&self) -> &str {
        function_names(self.style).1
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(prefix))) = &args.args[1] else {
            return Err(DataFusionError::Internal("the masked prefix test takes a text literal".into()));
        };
        let style = self.style;
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(v.as_deref().map(|v| masked_starts_with(style, v, prefix)))))
            }
            ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None))),
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(Arc::new(starts_with_array(a, style, prefix)?))),
        }
    }
}

/// [`masked_starts_with`] over a column. A user's rows sit together in the files, so a value
/// often repeats the row before: its answer is reused. For string views (as Parquet gives
/// them) a repeat is found from the 16-byte view alone, without reading the text.
fn starts_with_array(a: &ArrayRef, style: MaskStyle, prefix: &str) -> DfResult<BooleanArray> {
    let test = |v: &str| masked_starts_with(style, v, prefix);
    let values = match a.data_type() {
        DataType::Utf8View => {
            let strings = a.as_string_view();
            let views = strings.views();
            let mut last: Option<(u128, bool)> = None;
            BooleanBuffer::collect_bool(strings.len(), |i| match last {
                _ if strings.is_null(i) => false,
                Some((view, answer)) if view == views[i] => answer,
                // Bytes 4..8 of a view are the text's first four (zero-padded when shorter).
                _ if head_rules_out(style, ((views[i] >> 32) as u32).to_le_bytes(), prefix.as_bytes()) => false,
                _ => {
                    let answer = test(strings.value(i));
                    last = Some((views[i], answer));
                    answer
                }
            })
        }
        DataType::Utf8 => repeat_aware(a.as_string::<i32>(), test),
        DataType::LargeUtf8 => repeat_aware(a.as_string::<i64>(), test),
        other => return Err(DataFusionError::Internal(format!("the masked prefix test takes text, not {other}"))),
    };
    Ok(BooleanArray::new(values, a.nulls().cloned()))
}

fn repeat_aware<'a, A>(strings: A, test: impl Fn(&str) -> bool) -> BooleanBuffer
where
    A: StringArrayType<'a> + Array,
{
    let mut last: Option<(&str, bool)> = None;
    BooleanBuffer::collect_bool(strings.len(), |i| match last {
        _ if strings.is_null(i) => false,
        Some((value, answer)) if value == strings.value(i) => answer,
        _ => {
            let value = strings.value(i);
            let answer = test(value);
            last = Some((value, answer));
            answer
        }
    })
}

fn mask_array(a: &ArrayRef, style: MaskStyle) -> DfResult<ArrayRef> {
    Ok(finpulse_log::columns::mask_text(a, style)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn the_masked_prefix_test_agrees_with_masking_then_comparing() {
        let values = [
            "110101199003071234",
            "13812345678",
            "6222021234561234",
            "6222 0212 3456 1234 567",
            "62-22-0212-3456-1234",
            "62220212345",
            "张三",
            "欧阳娜娜",
            "账户6222021234561234",
            "é1234567890ü",
            "ab",
            "",
        ];
        let styles = [MaskStyle::IdNumber, MaskStyle::Mobile, MaskStyle::Card, MaskStyle::Name, MaskStyle::Partial];
        for style in styles {
            for value in values {
                let masked = style.apply(value);
                // Every prefix of the masked form, and each one with a wrong last character.
                let mut prefixes: Vec<String> = masked.char_indices().map(|(i, _)| masked[..i].to_string()).collect();
                prefixes.push(masked.clone());
                prefixes.push(format!("{masked}x"));
                prefixes.extend(masked.char_indices().map(|(i, c)| format!("{}{}", &masked[..i], if c == '*' { '0' } else { '*' })));
                for p in prefixes {
                    assert_eq!(masked_starts_with(style, value, &p), masked.starts_with(&p), "{style:?} {value:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn the_prefix_test_over_a_column_answers_each_row_as_alone_in_every_layout() {
        let values = vec![
            Some("6222021234561234"),
            Some("6222021234561234"),
            None,
            Some("6222021234561234"),
            Some("62-22-0212-3456-1234"),
            Some("62 220212345612"),
            Some("62220212"),
            Some("62220212"),
            Some(""),
            None,
            Some("4000123412341234"),
            Some("110101199003071234"),
            Some("13812345678"),
            Some("138"),
            Some("张三"),
            Some("é1234567890ü"),
            Some("ab"),
            Some("a\0bcdefghijklmn"),
        ];
        let plain: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let view: ArrayRef = Arc::new(arrow::array::StringViewArray::from_iter(values.iter().copied()));
        let large: ArrayRef = Arc::new(arrow::array::LargeStringArray::from(values.clone()));
        let styles = [MaskStyle::IdNumber, MaskStyle::Mobile, MaskStyle::Card, MaskStyle::Name, MaskStyle::Partial];
        for style in styles {
            // Every masked value's prefixes, and a few that match nothing or only stars.
            let mut prefixes: Vec<String> = ["6222", "6222 ", "4", "*", "", "13", "139", "張", "a"].map(String::from).to_vec();
            for masked in values.iter().flatten().map(|v| style.apply(v)) {
                prefixes.extend(masked.char_indices().map(|(i, _)| masked[..i].to_string()));
            }
            for prefix in &prefixes {
                for a in [&plain, &view, &large] {
                    let got = starts_with_array(a, style, prefix).unwrap();
                    for (i, v) in values.iter().enumerate() {
                        assert_eq!(got.is_null(i), v.is_none(), "{prefix:?} row {i}");
                        if let Some(v) = v {
                            assert_eq!(got.value(i), style.apply(v).starts_with(prefix.as_str()), "{style:?} {prefix:?} row {i} {v:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_eight_at_a_time_digit_test_agrees_with_testing_each_byte() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'7'; len];
                    v[at] = b;
                    assert_eq!(all_ascii_digits(&v), v.iter().all(u8::is_ascii_digit), "{v:?}");
                }
            }
        }
    }

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
