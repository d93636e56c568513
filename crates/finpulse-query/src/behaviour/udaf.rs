//! The behaviour functions as DataFusion aggregate functions: argument checks, groups
//! accumulators, the partial state that travels between aggregation stages (per group, the
//! rows' timestamps, condition masks and order keys as three lists), and the rewrite that gives
//! the functions over a table with `_seq` the events' log positions as the order of ties.

use super::funnel::{Funnel, FunnelMode};
use super::rows::{Bucketed, RowStore};
use super::sequence::Pattern;
use super::{BehaviourError, MAX_CONDITIONS};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, UInt8Array, UInt32Array, UInt64Array};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, UInt32Type, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ExprSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use datafusion::prelude::SessionContext;
use finpulse_log::columns::SEQ_COLUMN;
use std::borrow::Cow;
use std::sync::Arc;

/// Registers `window_funnel`, `retention`, `sequence_match` and `sequence_count`.
pub fn register(ctx: &SessionContext) -> Result<()> {
    for kind in [Kind::Funnel, Kind::Retention, Kind::SequenceMatch, Kind::SequenceCount] {
        ctx.register_udaf(AggregateUDF::new_from_impl(BehaviourUdaf::new(kind)));
    }
    ctx.state_ref().write().register_function_rewrite(Arc::new(TiesInLogOrder))
}

/// Gives `window_funnel`, `sequence_match` and `sequence_count` the events' log positions as
/// their order key wherever `ts` is read from one relation that has [`SEQ_COLUMN`] (`events`
/// and the type tables): `sequence_match(p, ts, c1, c2)` runs as
/// `sequence_match(p, ts, c1, c2, _seq)`, so rows tied in time are taken in the order finpulse
/// accepted them, whichever file, partition or batch they were read from. The result keeps
/// its name. A query whose `ts` comes from a subquery without `_seq` gets arrival order.
#[derive(Debug)]
struct TiesInLogOrder;

impl FunctionRewrite for TiesInLogOrder {
    fn name(&self) -> &str {
        "ties_in_log_order"
    }

    fn rewrite(&self, expr: Expr, schema: &DFSchema, _config: &ConfigOptions) -> Result<Transformed<Expr>> {
        let Expr::AggregateFunction(mut call) = expr else { return Ok(Transformed::no(expr)) };
        let Some(kind) = Kind::of_name(call.func.name()).filter(|k| k.layout().1) else {
            return Ok(Transformed::no(Expr::AggregateFunction(call)));
        };
        let args = &call.params.args;
        let ts_at = kind.first_condition() - 1;
        // An order key given already (`_seq` or another UInt64 column) is left as it is.
        let already = args.last().is_some_and(|a| a.get_type(schema).is_ok_and(|t| t == DataType::UInt64));
        // The relation `ts` is read from: its one column's, or the one all its columns share
        // (`to_timestamp_millis(ts * 1000)`).
        let relation = match args.get(ts_at).map(Expr::column_refs) {
            Some(columns) if !already => {
                let mut relations = columns.iter().map(|c| &c.relation);
                match relations.next() {
                    Some(first) if relations.all(|r| r == first) => first.clone(),
                    _ => return Ok(Transformed::no(Expr::AggregateFunction(call))),
                }
            }
            _ => return Ok(Transformed::no(Expr::AggregateFunction(call))),
        };
        let seq = Column::new(relation, SEQ_COLUMN);
        let is_seq = schema.field_from_column(&seq).is_ok_and(|f| f.data_type() == &DataType::UInt64);
        if !is_seq {
            return Ok(Transformed::no(Expr::AggregateFunction(call)));
        }
        call.params.args.push(Expr::Column(seq));
        Ok(Transformed::yes(Expr::AggregateFunction(call)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Funnel,
    Retention,
    SequenceMatch,
    SequenceCount,
}

impl Kind {
    fn of_name(name: &str) -> Option<Self> {
        [Kind::Funnel, Kind::Retention, Kind::SequenceMatch, Kind::SequenceCount].into_iter().find(|k| k.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Funnel => "window_funnel",
            Kind::Retention => "retention",
            Kind::SequenceMatch => "sequence_match",
            Kind::SequenceCount => "sequence_count",
        }
    }

    /// Constant parameters before the timestamp, and whether there is a timestamp.
    fn layout(self) -> (usize, bool) {
        match self {
            Kind::Funnel => (2, true),
            Kind::Retention => (0, false),
            Kind::SequenceMatch | Kind::SequenceCount => (1, true),
        }
    }

    fn usage(self) -> &'static str {
        match self {
            Kind::Funnel => "window_funnel(window, mode, ts, cond1, …[, order])",
            Kind::Retention => "retention(cond1, …)",
            Kind::SequenceMatch => "sequence_match(pattern, ts, cond1, …[, order])",
            Kind::SequenceCount => "sequence_count(pattern, ts, cond1, …[, order])",
        }
    }

    /// Fewest conditions accepted (as in ClickHouse).
    fn min_conditions(self) -> usize {
        match self {
            Kind::Funnel => 1,
            Kind::Retention | Kind::SequenceMatch | Kind::SequenceCount => 2,
        }
    }

    fn first_condition(self) -> usize {
        let (constants, has_ts) = self.layout();
        constants + usize::from(has_ts)
    }

    /// Where the order key is among arguments of these types, if one is given: the last
    /// argument, when it is a UInt64 (conditions are booleans) of a function with a timestamp.
    fn order_at(self, types: &[DataType]) -> Option<usize> {
        let last = types.len().checked_sub(1)?;
        (self.layout().1 && last > self.first_condition() && types[last] == DataType::UInt64).then_some(last)
    }
}

fn plan_error(kind: Kind, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("{}: {message}", kind.name()))
}

fn exec_error(kind: Kind, e: BehaviourError) -> DataFusionError {
    DataFusionError::Execution(format!("{}: {e}", kind.name()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BehaviourUdaf {
    kind: Kind,
    signature: Signature,
}

impl BehaviourUdaf {
    fn new(kind: Kind) -> Self {
        Self { kind, signature: Signature::variadic_any(Volatility::Immutable) }
    }

    fn check_types(&self, types: &[DataType]) -> Result<()> {
        let kind = self.kind;
        let first = kind.first_condition();
        let end = kind.order_at(types).unwrap_or(types.len());
        let conditions = end.saturating_sub(first);
        if conditions < kind.min_conditions() || conditions > MAX_CONDITIONS {
            let min = kind.min_conditions();
            return Err(plan_error(kind, format!("takes {min} to {MAX_CONDITIONS} conditions, got {conditions}: {}", kind.usage())));
        }
        let (_, has_ts) = kind.layout();
        if has_ts {
            time_unit_per_second(&types[first - 1])
                .ok_or_else(|| plan_error(kind, format!("ts must be a timestamp, date or integer, got {}", types[first - 1])))?;
        }
        for (i, t) in types[first.min(end)..end].iter().enumerate() {
            if *t != DataType::Boolean && *t != DataType::Null {
                return Err(plan_error(kind, format!("condition {} must be a boolean, got {t}", i + 1)));
            }
        }
        Ok(())
    }

    fn make(&self, args: &AccumulatorArgs) -> Result<Box<dyn Grouped>> {
        let kind = self.kind;
        let types: Vec<DataType> = args.expr_fields.iter().map(|f| f.data_type().clone()).collect();
        self.check_types(&types)?;
        let first = kind.first_condition();
        let order_at = kind.order_at(&types);
        let conditions = order_at.unwrap_or(types.len()) - first;
        let constant = |i: usize, what: &str| -> Result<ScalarValue> {
            args.exprs[i]
                .downcast_ref::<Literal>()
                .map(|l| l.value().clone())
                .ok_or_else(|| plan_error(kind, format!("{what} must be a constant")))
        };
        let text = |i: usize, what: &str| -> Result<String> {
            match constant(i, what)? {
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Ok(s),
                other => Err(plan_error(kind, format!("{what} must be a text constant, got {other}"))),
            }
        };
        let ts_units = |i: usize| time_unit_per_second(&types[i]).expect("checked");
        match kind {
            Kind::Retention => Ok(Box::new(RetentionAccumulator { conditions, masks: Vec::new() })),
            Kind::Funnel => {
                let window = match constant(0, "window")? {
                    ScalarValue::Int64(Some(w)) => w,
                    ScalarValue::Int32(Some(w)) => i64::from(w),
                    ScalarValue::UInt64(Some(w)) => i64::try_from(w).map_err(|_| plan_error(kind, "window is too large"))?,
                    other => return Err(plan_error(kind, format!("window must be an integer constant, got {other}"))),
                };
                if window < 0 {
                    return Err(plan_error(kind, format!("window must not be negative, got {window}")));
                }
                let window = window.checked_mul(ts_units(2)).ok_or_else(|| plan_error(kind, "window is too large"))?;
                let mode = FunnelMode::parse(&text(1, "mode")?).map_err(|e| plan_error(kind, e))?;
                let funnel = Funnel::new(window, mode, conditions).map_err(|e| plan_error(kind, e))?;
                Ok(Box::new(RowsAccumulator::new(kind, Evaluator::Funnel(funnel), order_at)))
            }
            Kind::SequenceMatch | Kind::SequenceCount => {
                let pattern = Pattern::parse(&text(0, "pattern")?, conditions, ts_units(1)).map_err(|e| plan_error(kind, e))?;
                let evaluator = if kind == Kind::SequenceMatch { Evaluator::Match(pattern) } else { Evaluator::Count(pattern) };
                Ok(Box::new(RowsAccumulator::new(kind, evaluator, order_at)))
            }
        }
    }
}

/// Timestamp units per second of a `ts` type (dates count days; integers their own units).
fn time_unit_per_second(t: &DataType) -> Option<i64> {
    match t {
        DataType::Timestamp(TimeUnit::Second, _) => Some(1),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(1_000),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Some(1_000_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(1_000_000_000),
        DataType::Date32 => Some(1),
        t if t.is_integer() => Some(1),
        _ => None,
    }
}

impl AggregateUDFImpl for BehaviourUdaf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.check_types(arg_types)?;
        Ok(match self.kind {
            Kind::Funnel | Kind::SequenceMatch => DataType::UInt8,
            Kind::SequenceCount => DataType::UInt64,
            Kind::Retention => DataType::List(Arc::new(Field::new("item", DataType::UInt8, false))),
        })
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleGroup(self.make(&acc_args)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let name = args.name;
        Ok(match self.kind {
            Kind::Retention => vec![Arc::new(Field::new(format!("{name}[met]"), DataType::UInt32, false))],
            _ => vec![
                Arc::new(Field::new(format!("{name}[ts]"), DataType::List(Arc::new(Field::new("item", DataType::Int64, false))), false)),
                Arc::new(Field::new(
                    format!("{name}[masks]"),
                    DataType::List(Arc::new(Field::new("item", DataType::UInt32, false))),
                    false,
                )),
                Arc::new(Field::new(
                    format!("{name}[order]"),
                    DataType::List(Arc::new(Field::new("item", DataType::UInt64, false))),
                    false,
                )),
            ],
        })
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(self.make(&args)?.into_groups())
    }
}

/// A groups accumulator that can be asked to have at least `n` groups (a plain aggregate without
/// GROUP BY has one group even over no rows).
trait Grouped: GroupsAccumulator + std::fmt::Debug + Send + Sync {
    fn ensure_groups(&mut self, n: usize);
    fn into_groups(self: Box<Self>) -> Box<dyn GroupsAccumulator>;
}

/// Condition masks of one batch, and which rows take part (no NULL argument, filter passed).
fn batch_masks(values: &[ArrayRef], first: usize, filter: Option<&BooleanArray>) -> (Vec<u32>, Option<Vec<bool>>) {
    let n = values.first().map_or(0, |v| v.len());
    let mut masks = vec![0u32; n];
    let mut skip: Option<Vec<bool>> = None;
    let mark_nulls = |a: &dyn Array, skip: &mut Option<Vec<bool>>| {
        if let Some(nulls) = a.logical_nulls().filter(|n| n.null_count() > 0) {
            let s = skip.get_or_insert_with(|| vec![false; n]);
            for (r, valid) in nulls.iter().enumerate() {
                s[r] |= !valid;
            }
        }
    };
    // The timestamp, when there is one.
    for a in &values[first.saturating_sub(1)..first] {
        mark_nulls(a.as_ref(), &mut skip);
    }
    for (i, a) in values[first..].iter().enumerate() {
        mark_nulls(a.as_ref(), &mut skip);
        if a.data_type() == &DataType::Null {
            continue;
        }
        let bits = a.as_boolean().values();
        for r in bits.set_indices() {
            masks[r] |= 1 << i;
        }
    }
    if let Some(f) = filter {
        let s = skip.get_or_insert_with(|| vec![false; n]);
        for (r, pass) in f.iter().enumerate() {
            s[r] |= pass != Some(true);
        }
    }
    (masks, skip)
}

fn timestamps(a: &ArrayRef) -> Result<Int64Array> {
    let cast = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(cast.as_primitive::<Int64Type>().clone())
}

#[derive(Debug)]
enum Evaluator {
    Funnel(Funnel),
    Match(Pattern),
    Count(Pattern),
}

/// window_funnel, sequence_match and sequence_count: keep each group's rows, decide at the end.
#[derive(Debug)]
struct RowsAccumulator {
    kind: Kind,
    evaluator: Evaluator,
    keep_empty: bool,
    /// The argument holding the order key of ties, if the call has one; rows without one (or
    /// with a NULL key, as files compacted before `_seq` existed give) get key 0 and keep their
    /// arrival order among each other.
    order_at: Option<usize>,
    store: RowStore,
    groups: usize,
}

impl RowsAccumulator {
    fn new(kind: Kind, evaluator: Evaluator, order_at: Option<usize>) -> Self {
        let keep_empty = matches!(&evaluator, Evaluator::Funnel(f) if f.keeps_empty_rows());
        Self { kind, evaluator, keep_empty, order_at, store: RowStore::default(), groups: 0 }
    }

    fn take(&mut self, emit_to: EmitTo) -> Bucketed {
        let n = match emit_to {
            EmitTo::All => self.groups,
            EmitTo::First(n) => n.min(self.groups),
        };
        self.groups -= n;
        self.store.take_first(n)
    }

    /// The arguments before the order key, and the order keys (0 where none, or NULL).
    fn split<'v>(&self, values: &'v [ArrayRef]) -> (&'v [ArrayRef], Cow<'v, [u64]>) {
        match self.order_at {
            Some(at) => {
                let keys = values[at].as_primitive::<UInt64Type>();
                let order = if keys.null_count() == 0 {
                    Cow::Borrowed(&keys.values()[..])
                } else {
                    Cow::Owned(keys.iter().map(|k| k.unwrap_or(0)).collect())
                };
                (&values[..at], order)
            }
            None => (values, Cow::Owned(vec![0; values.first().map_or(0, |v| v.len())])),
        }
    }

    /// Calls `row(r, ts, mask, order)` for each row of a batch that is kept.
    fn kept_rows(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>, mut row: impl FnMut(usize, i64, u32, u64)) -> Result<()> {
        let first = self.kind.first_condition();
        let (args, order) = self.split(values);
        let ts = timestamps(&args[first - 1])?;
        let ts = ts.values();
        let (masks, skip) = batch_masks(args, first, opt_filter);
        for (r, &m) in masks.iter().enumerate() {
            if (m != 0 || self.keep_empty) && !skip.as_ref().is_some_and(|s| s[r]) {
                row(r, ts[r], m, order[r]);
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for RowsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups = self.groups.max(total_num_groups);
        let mut store = std::mem::take(&mut self.store);
        store.reserve(group_indices.len());
        let result = self.kept_rows(values, opt_filter, |r, ts, mask, order| store.push(group_indices[r], ts, mask, order));
        self.store = store;
        result
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let rows = self.take(emit_to);
        let groups = rows.groups();
        let kind = self.kind;
        Ok(match &self.evaluator {
            Evaluator::Funnel(funnel) => {
                let mut scratch = Vec::new();
                Arc::new((0..groups).map(|g| funnel.level(rows.rows(g), &mut scratch)).collect::<UInt8Array>())
            }
            Evaluator::Match(pattern) => {
                let mut scratch = Vec::new();
                let matched =
                    (0..groups).map(|g| pattern.matches(rows.rows(g), &mut scratch).map(u8::from)).collect::<Result<Vec<u8>, _>>();
                Arc::new(UInt8Array::from(matched.map_err(|e| exec_error(kind, e))?))
            }
            Evaluator::Count(pattern) => {
                let mut scratch = Vec::new();
                let counts = (0..groups).map(|g| pattern.count(rows.rows(g), &mut scratch)).collect::<Result<Vec<u64>, _>>();
                Arc::new(UInt64Array::from(counts.map_err(|e| exec_error(kind, e))?))
            }
        })
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let rows = self.take(emit_to);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(rows.offsets.iter().map(|&o| o as i32).collect::<Vec<i32>>()));
        state_lists(offsets, Int64Array::from(rows.ts), UInt32Array::from(rows.masks), UInt64Array::from(rows.order))
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.groups = self.groups.max(total_num_groups);
        let ts = values[0].as_list::<i32>();
        let masks = values[1].as_list::<i32>();
        let order = values[2].as_list::<i32>();
        let ts_values = ts.values().as_primitive::<Int64Type>();
        let mask_values = masks.values().as_primitive::<UInt32Type>();
        let order_values = order.values().as_primitive::<UInt64Type>();
        let (ts_offsets, mask_offsets, order_offsets) = (ts.value_offsets(), masks.value_offsets(), order.value_offsets());
        for (r, &g) in group_indices.iter().enumerate() {
            let (a, b) = (ts_offsets[r] as usize, ts_offsets[r + 1] as usize);
            let (m, o) = (mask_offsets[r] as usize, order_offsets[r] as usize);
            let n = b - a;
            self.store.extend_group(g, &ts_values.values()[a..b], &mask_values.values()[m..m + n], &order_values.values()[o..o + n]);
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each row becomes a group of its own: a list of one row, or of none.
        let n = values.first().map_or(0, |v| v.len());
        let mut lengths = vec![0usize; n];
        let (mut ts, mut masks, mut order) = (Vec::new(), Vec::new(), Vec::new());
        self.kept_rows(values, opt_filter, |r, t, m, o| {
            lengths[r] = 1;
            ts.push(t);
            masks.push(m);
            order.push(o);
        })?;
        state_lists(OffsetBuffer::from_lengths(lengths), Int64Array::from(ts), UInt32Array::from(masks), UInt64Array::from(order))
    }

    fn size(&self) -> usize {
        self.store.size_bytes() + std::mem::size_of::<Self>()
    }
}

/// The partial state of the row-keeping functions: per group, its rows' timestamps, masks and
/// order keys as three lists sharing `offsets`.
fn state_lists(offsets: OffsetBuffer<i32>, ts: Int64Array, masks: UInt32Array, order: UInt64Array) -> Result<Vec<ArrayRef>> {
    let list = |item: DataType, values: ArrayRef| -> Result<ArrayRef> {
        Ok(Arc::new(ListArray::try_new(Arc::new(Field::new("item", item, false)), offsets.clone(), values, None)?))
    };
    Ok(vec![list(DataType::Int64, Arc::new(ts))?, list(DataType::UInt32, Arc::new(masks))?, list(DataType::UInt64, Arc::new(order))?])
}

impl Grouped for RowsAccumulator {
    fn ensure_groups(&mut self, n: usize) {
        self.groups = self.groups.max(n);
    }

    fn into_groups(self: Box<Self>) -> Box<dyn GroupsAccumulator> {
        self
    }
}

/// retention: which conditions each group met at least once.
#[derive(Debug)]
struct RetentionAccumulator {
    conditions: usize,
    masks: Vec<u32>,
}

impl RetentionAccumulator {
    fn take(&mut self, emit_to: EmitTo) -> Vec<u32> {
        emit_to.take_needed(&mut self.masks)
    }
}

impl GroupsAccumulator for RetentionAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.masks.resize(total_num_groups.max(self.masks.len()), 0);
        let (masks, skip) = batch_masks(values, 0, opt_filter);
        for (r, (&g, &mask)) in group_indices.iter().zip(&masks).enumerate() {
            if !skip.as_ref().is_some_and(|s| s[r]) {
                self.masks[g] |= mask;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let masks = self.take(emit_to);
        let n = self.conditions;
        let mut flags = Vec::with_capacity(masks.len() * n);
        for m in &masks {
            let first = m & 1;
            flags.push(first as u8);
            flags.extend((1..n).map(|i| (first & (m >> i) & 1) as u8));
        }
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(n, masks.len()));
        Ok(Arc::new(ListArray::try_new(
            Arc::new(Field::new("item", DataType::UInt8, false)),
            offsets,
            Arc::new(UInt8Array::from(flags)),
            None,
        )?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(UInt32Array::from(self.take(emit_to)))])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.masks.resize(total_num_groups.max(self.masks.len()), 0);
        let met = values[0].as_primitive::<UInt32Type>();
        for (&g, &m) in group_indices.iter().zip(met.values()) {
            self.masks[g] |= m;
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let (masks, skip) = batch_masks(values, 0, opt_filter);
        let met: UInt32Array = masks.iter().enumerate().map(|(r, &m)| if skip.as_ref().is_some_and(|s| s[r]) { 0 } else { m }).collect();
        Ok(vec![Arc::new(met)])
    }

    fn size(&self) -> usize {
        self.masks.capacity() * 4 + std::mem::size_of::<Self>()
    }
}

impl Grouped for RetentionAccumulator {
    fn ensure_groups(&mut self, n: usize) {
        if self.masks.len() < n {
            self.masks.resize(n, 0);
        }
    }

    fn into_groups(self: Box<Self>) -> Box<dyn GroupsAccumulator> {
        self
    }
}

/// A groups accumulator used for an aggregate without GROUP BY: one group.
#[derive(Debug)]
struct SingleGroup(Box<dyn Grouped>);

impl Accumulator for SingleGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values.first().map_or(0, |v| v.len());
        self.0.update_batch(values, &vec![0; n], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.ensure_groups(1);
        ScalarValue::try_from_array(&self.0.evaluate(EmitTo::All)?, 0)
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.ensure_groups(1);
        self.0.state(EmitTo::All)?.iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let n = states.first().map_or(0, |v| v.len());
        self.0.merge_batch(states, &vec![0; n], 1)
    }
}
