//! Records as they arrive (format-neutral) and their validation against the registry.

use crate::event::{Event, FieldId, TypeId, Value};
use crate::money::Currency;
use crate::registry::{FieldCheck, FieldType, MASKED_FORM_PREFIX, Registry, SEQ_COLUMN, Scope};
use crate::time::{self, TimeError};
use std::fmt;

/// The longest event_id or user_id, in bytes.
pub const ID_BYTES_MAX: usize = 128;

/// A value as a wire format gives it, before it is checked against a field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// JSON null or an absent CSV cell: the field is treated as absent.
    Null,
    /// A typed boolean.
    Bool(bool),
    /// A typed integer.
    Int(i64),
    /// A typed float.
    Float(f64),
    /// A typed string (JSON): only string and timestamp fields take it.
    Str(String),
    /// Untyped text (a CSV cell): converted to the field's type.
    Text(String),
    /// A typed UTC time in microseconds since the epoch (Arrow/Parquet timestamps).
    Micros(i64),
}

impl RawValue {
    /// The borrowed form validation reads.
    pub fn as_raw_ref(&self) -> RawRef<'_> {
        match self {
            Self::Null => RawRef::Null,
            Self::Bool(b) => RawRef::Bool(*b),
            Self::Int(i) => RawRef::Int(*i),
            Self::Float(x) => RawRef::Float(*x),
            Self::Str(s) => RawRef::Str(s),
            Self::Text(s) => RawRef::Text(s),
            Self::Micros(us) => RawRef::Micros(*us),
        }
    }
}

/// A [`RawValue`] borrowed from its input, so bulk readers (a CSV chunk) validate cells in
/// place instead of copying each into its own allocation first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawRef<'a> {
    /// See [`RawValue::Null`].
    Null,
    /// See [`RawValue::Bool`].
    Bool(bool),
    /// See [`RawValue::Int`].
    Int(i64),
    /// See [`RawValue::Float`].
    Float(f64),
    /// See [`RawValue::Str`].
    Str(&'a str),
    /// See [`RawValue::Text`].
    Text(&'a str),
    /// See [`RawValue::Micros`].
    Micros(i64),
}

impl RawRef<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Int(_) => "integer",
            Self::Float(_) => "float",
            Self::Str(_) => "string",
            Self::Text(_) => "text",
            Self::Micros(_) => "timestamp",
        }
    }

    /// Null, or an empty untyped cell: the field is absent.
    fn is_absent(&self) -> bool {
        matches!(self, Self::Null) || matches!(self, Self::Text(t) if t.is_empty())
    }
}

/// One flat record: `event_id`, `user_id`, `ts`, `type`, then the type's fields, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord {
    /// Name/value pairs as given.
    pub fields: Vec<(String, RawValue)>,
}

impl RawRecord {
    /// Adds a pair (builder style).
    pub fn with(mut self, name: &str, value: RawValue) -> Self {
        self.fields.push((name.to_string(), value));
        self
    }
}

impl RecordError {
    /// The error as it may leave the server: text quoted from a field the data class masks is
    /// masked as the field would be in an answer (errors are printed, logged and sent back).
    fn shown_as(mut self, field: &crate::FieldSpec) -> Self {
        use crate::mask::{Exposure, FieldExposure, field_exposure};
        if let RecordProblem::Unconvertible { text, .. } = &mut self.problem {
            match field_exposure(field.class, field.mask, Exposure::Masked) {
                FieldExposure::Shown => {}
                FieldExposure::Masked(style) => *text = style.apply(text),
                FieldExposure::Withheld => *text = "(withheld)".into(),
            }
        }
        self
    }
}

/// What was wrong with a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordProblem {
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// Value of the wrong type.
    #[error("expected {expected}, got {got}")]
    WrongType {
        /// The field's type.
        expected: &'static str,
        /// What was given.
        got: &'static str,
    },
    /// Text that does not convert to the field's type.
    #[error("'{text}' is not a valid {expected}")]
    Unconvertible {
        /// The field's type.
        expected: &'static str,
        /// The text.
        text: String,
    },
    /// Unknown event type.
    #[error("unknown event type '{0}' (see GET /v1/schema or `finpulse schema`)")]
    UnknownType(String),
    /// A field the type does not have.
    #[error("is not a field of type '{0}'")]
    UnknownField(String),
    /// The same name twice in one record.
    #[error("appears more than once")]
    Duplicate,
    /// Negative where not allowed.
    #[error("must not be negative, got {0}")]
    Negative(i64),
    /// Text too long.
    #[error("is {len} bytes, over the limit of {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Empty id.
    #[error("must not be empty")]
    Empty,
    /// Not a currency code.
    #[error("'{0}' is not an ISO 4217 currency code (three upper-case letters)")]
    BadCurrency(String),
    /// A bad time.
    #[error("{0}")]
    BadTime(#[from] TimeError),
    /// A float that is NaN or infinite.
    #[error("must be a finite number")]
    NotFinite,
}

/// A record's error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// The offending field (`None` when the record as a whole is wrong).
    pub field: Option<String>,
    /// The problem.
    pub problem: RecordProblem,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field '{field}' {}", self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

impl std::error::Error for RecordError {}

fn err(field: &str, problem: RecordProblem) -> RecordError {
    RecordError { field: Some(field.to_string()), problem }
}

/// The limits validation enforces; see [`ValidationLimits::default`] for the defaults.
#[derive(Debug, Clone, Copy)]
pub struct ValidationLimits {
    /// The longest text value, in bytes.
    pub field_bytes_max: usize,
    /// How far after `now_us` an event time may be, in seconds (clock skew).
    pub ts_future_skew_secs: i64,
    /// The current time used for the future check, UTC microseconds.
    pub now_us: i64,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self { field_bytes_max: 4096, ts_future_skew_secs: 86_400, now_us: time::now_us() }
    }
}

fn check_len(name: &str, text: &str, max: usize) -> Result<(), RecordError> {
    if text.len() > max {
        return Err(err(name, RecordProblem::TooLong { len: text.len(), max }));
    }
    Ok(())
}

fn id_text(name: &str, value: RawRef<'_>) -> Result<Option<String>, RecordError> {
    let text = match value {
        RawRef::Null => return Ok(None),
        RawRef::Str(s) | RawRef::Text(s) => s.to_string(),
        RawRef::Int(i) => i.to_string(),
        other => return Err(err(name, RecordProblem::WrongType { expected: "string", got: other.kind() })),
    };
    if text.is_empty() {
        return Err(err(name, RecordProblem::Empty));
    }
    check_len(name, &text, ID_BYTES_MAX)?;
    Ok(Some(text))
}

fn parse_ts(name: &str, value: RawRef<'_>) -> Result<i64, RecordError> {
    let us = match value {
        RawRef::Int(ms) => time::epoch_ms_to_us(ms),
        RawRef::Micros(us) => Ok(us),
        RawRef::Str(s) => time::parse_rfc3339_us(s),
        RawRef::Text(s) => match s.trim().parse::<i64>() {
            Ok(ms) => time::epoch_ms_to_us(ms),
            Err(_) => time::parse_rfc3339_us(s),
        },
        other => {
            return Err(err(name, RecordProblem::WrongType { expected: "RFC 3339 string or epoch milliseconds", got: other.kind() }));
        }
    };
    us.map_err(|e| err(name, RecordProblem::BadTime(e)))
}

fn convert(name: &str, ty: FieldType, value: RawRef<'_>, limits: &ValidationLimits) -> Result<Value, RecordError> {
    let wrong = |got: RawRef<'_>| err(name, RecordProblem::WrongType { expected: ty.name(), got: got.kind() });
    let unconvertible = |text: &str| err(name, RecordProblem::Unconvertible { expected: ty.name(), text: text.to_string() });
    Ok(match (ty, value) {
        (FieldType::Bool, RawRef::Bool(b)) => Value::Bool(b),
        (FieldType::Bool, RawRef::Text(t)) => match t.trim() {
            "true" | "TRUE" | "True" | "1" => Value::Bool(true),
            "false" | "FALSE" | "False" | "0" => Value::Bool(false),
            _ => return Err(unconvertible(t)),
        },
        (FieldType::Int, RawRef::Int(i)) => Value::Int(i),
        (FieldType::Int, RawRef::Text(t)) => Value::Int(t.trim().parse().map_err(|_| unconvertible(t))?),
        (FieldType::Float, RawRef::Float(x)) => Value::Float(x),
        (FieldType::Float, RawRef::Int(i)) => Value::Float(i as f64),
        (FieldType::Float, RawRef::Text(t)) => Value::Float(t.trim().parse().map_err(|_| unconvertible(t))?),
        (FieldType::String, RawRef::Str(s) | RawRef::Text(s)) => {
            check_len(name, s, limits.field_bytes_max)?;
            Value::Str(s.to_string())
        }
        (FieldType::Timestamp, v @ (RawRef::Int(_) | RawRef::Str(_) | RawRef::Text(_) | RawRef::Micros(_))) => {
            let us = parse_ts(name, v)?;
            time::check_range(us, limits.now_us, limits.ts_future_skew_secs).map_err(|e| err(name, e.into()))?;
            Value::Ts(us)
        }
        (_, other) => return Err(wrong(other)),
    })
}

impl Registry {
    /// Validates a record against its type: every error names the field and the problem.
    /// An absent `event_id` is generated (UUID v7).
    pub fn validate(&self, record: &RawRecord, limits: &ValidationLimits) -> Result<Event, RecordError> {
        let fields = record.fields.iter().map(|(name, value)| (name.as_str(), value.as_raw_ref()));
        self.validate_fields(fields, NameCheck::PerRecord, limits)
    }

    /// Validates one row of a table whose column names were checked once for duplicates
    /// ([`Registry::check_column_names`]): `names[i]` names `cells[i]`, which is untyped text;
    /// an empty cell is an absent value.
    pub fn validate_row<'a>(
        &self,
        names: &'a [String],
        cells: impl Iterator<Item = &'a str> + Clone,
        limits: &ValidationLimits,
    ) -> Result<Event, RecordError> {
        let cells = cells.map(|c| if c.is_empty() { RawRef::Null } else { RawRef::Text(c) });
        let fields = names.iter().map(String::as_str).zip(cells);
        self.validate_fields(fields, NameCheck::AlreadyUnique, limits)
    }

    /// Refuses a header that names a column twice, naming the column.
    pub fn check_column_names(names: &[String]) -> Result<(), RecordError> {
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(err(name, RecordProblem::Duplicate));
            }
        }
        Ok(())
    }

    fn validate_fields<'a, I>(&self, fields: I, names: NameCheck, limits: &ValidationLimits) -> Result<Event, RecordError>
    where
        I: Iterator<Item = (&'a str, RawRef<'a>)> + Clone,
    {
        let mut event_id = None;
        let mut user_id = None;
        let mut ts = None;
        let mut type_name = None;
        for (i, (name, value)) in fields.clone().enumerate() {
            if names == NameCheck::PerRecord && fields.clone().take(i).any(|(n, _)| n == name) {
                return Err(err(name, RecordProblem::Duplicate));
            }
            match name {
                "event_id" => event_id = id_text(name, value)?,
                "user_id" => user_id = id_text(name, value)?,
                "ts" if value != RawRef::Null => ts = Some(parse_ts(name, value)?),
                "type" => match value {
                    RawRef::Str(s) | RawRef::Text(s) => type_name = Some(s),
                    RawRef::Null => {}
                    other => return Err(err(name, RecordProblem::WrongType { expected: "string", got: other.kind() })),
                },
                _ => {}
            }
        }
        let type_name = type_name.ok_or_else(|| err("type", RecordProblem::Missing))?;
        let type_id: TypeId = self.type_id(type_name).ok_or_else(|| err("type", RecordProblem::UnknownType(type_name.to_string())))?;
        let spec = self.event_type(type_id);
        if spec.scope == Scope::User && user_id.is_none() {
            return Err(err("user_id", RecordProblem::Missing));
        }
        let ts_us = ts.ok_or_else(|| err("ts", RecordProblem::Missing))?;
        time::check_range(ts_us, limits.now_us, limits.ts_future_skew_secs).map_err(|e| err("ts", e.into()))?;

        let mut fields_out: Vec<(FieldId, Value)> = Vec::with_capacity(spec.fields.len());
        for (name, value) in fields {
            if matches!(name, "event_id" | "user_id" | "ts" | "type" | SEQ_COLUMN) || name.starts_with(MASKED_FORM_PREFIX) {
                continue;
            }
            // Absent values (null, an empty CSV cell) are skipped before the field check, so
            // wide files holding many types import: each row's other-type columns are empty.
            if value.is_absent() {
                continue;
            }
            let field_id = self
                .field_id(name)
                .filter(|id| spec.fields.iter().any(|f| f.field == *id))
                .ok_or_else(|| err(name, RecordProblem::UnknownField(spec.name.clone())))?;
            let field = self.field(field_id);
            let converted = convert(name, field.ty, value, limits).map_err(|e| e.shown_as(field))?;
            match (&converted, field.check) {
                (Value::Int(i), FieldCheck::NonNegative) if *i < 0 => {
                    return Err(err(name, RecordProblem::Negative(*i)));
                }
                (Value::Float(x), FieldCheck::NonNegative) if *x < 0.0 => {
                    return Err(err(name, RecordProblem::Negative(*x as i64)));
                }
                (Value::Str(s), FieldCheck::Currency) if Currency::parse(s).is_none() => {
                    return Err(err(name, RecordProblem::BadCurrency(s.clone())));
                }
                _ => {}
            }
            if let Value::Float(x) = converted
                && !x.is_finite()
            {
                return Err(err(name, RecordProblem::NotFinite));
            }
            fields_out.push((field_id, converted));
        }
        for f in &spec.fields {
            if f.required && !fields_out.iter().any(|(id, _)| *id == f.field) {
                return Err(err(&self.field(f.field).name, RecordProblem::Missing));
            }
        }
        fields_out.sort_unstable_by_key(|(id, _)| *id);
        let event_id = event_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        Ok(Event { event_id, user_id, ts_us, type_id, fields: fields_out })
    }
}

/// Whether validation must look for a name given twice in each record (JSON objects), or the
/// names were checked once for the whole input (a CSV header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameCheck {
    PerRecord,
    AlreadyUnique,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ValidationLimits {
        ValidationLimits { now_us: time::parse_rfc3339_us("2026-06-01T00:00:00Z").unwrap(), ..Default::default() }
    }

    fn payment() -> RawRecord {
        RawRecord::default()
            .with("event_id", RawValue::Str("e1".into()))
            .with("user_id", RawValue::Str("u1".into()))
            .with("ts", RawValue::Str("2026-05-01T12:00:00+08:00".into()))
            .with("type", RawValue::Str("payment".into()))
            .with("amount_fen", RawValue::Int(1999))
            .with("currency", RawValue::Str("CNY".into()))
            .with("terminal_id", RawValue::Str("t9".into()))
    }

    fn problem_of(record: RawRecord) -> (Option<String>, RecordProblem) {
        let e = Registry::builtin().validate(&record, &limits()).unwrap_err();
        (e.field, e.problem)
    }

    fn replace(record: RawRecord, name: &str, value: RawValue) -> RawRecord {
        let mut r = record;
        for (n, v) in &mut r.fields {
            if n == name {
                *v = value.clone();
            }
        }
        r
    }

    #[test]
    fn a_valid_payment_becomes_an_event_in_utc() {
        let reg = Registry::builtin();
        let e = reg.validate(&payment(), &limits()).unwrap();
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.user_id.as_deref(), Some("u1"));
        assert_eq!(e.ts_us, time::parse_rfc3339_us("2026-05-01T04:00:00Z").unwrap());
        assert_eq!(e.get(reg.field_id("amount_fen").unwrap()), Some(&Value::Int(1999)));
    }

    #[test]
    fn a_log_position_from_another_store_is_ignored() {
        let reg = Registry::builtin();
        let plain = reg.validate(&payment(), &limits()).unwrap();
        let exported = reg.validate(&payment().with(SEQ_COLUMN, RawValue::Int(41)), &limits()).unwrap();
        assert_eq!(exported, plain);
    }

    #[test]
    fn a_stored_masked_form_from_a_compacted_file_is_ignored() {
        let reg = Registry::builtin();
        let plain = reg.validate(&payment(), &limits()).unwrap();
        let exported =
            reg.validate(&payment().with("_masked_card_number", RawValue::Str("6222 **** **** 1234".into())), &limits()).unwrap();
        assert_eq!(exported, plain);
    }

    #[test]
    fn epoch_milliseconds_and_csv_text_are_accepted() {
        let reg = Registry::builtin();
        let r = replace(payment(), "ts", RawValue::Int(1_777_600_000_000));
        assert_eq!(reg.validate(&r, &limits()).unwrap().ts_us, 1_777_600_000_000_000);
        let r = replace(payment(), "amount_fen", RawValue::Text("250".into()));
        assert_eq!(reg.validate(&r, &limits()).unwrap().get(FieldId(0)), Some(&Value::Int(250)));
    }

    #[test]
    fn missing_event_id_is_generated() {
        let mut r = payment();
        r.fields.remove(0);
        let e = Registry::builtin().validate(&r, &limits()).unwrap();
        assert_eq!(e.event_id.len(), 36);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let (field, problem) = problem_of(replace(payment(), "amount_fen", RawValue::Str("100".into())));
        assert_eq!(field.as_deref(), Some("amount_fen"));
        assert_eq!(problem, RecordProblem::WrongType { expected: "int", got: "string" });
        let (field, _) = problem_of(replace(payment(), "amount_fen", RawValue::Float(1.5)));
        assert_eq!(field.as_deref(), Some("amount_fen"));
        let (field, problem) = problem_of(replace(payment(), "amount_fen", RawValue::Text("12.5".into())));
        assert_eq!(field.as_deref(), Some("amount_fen"));
        assert!(matches!(problem, RecordProblem::Unconvertible { .. }));
    }

    #[test]
    fn an_error_quoting_a_masked_field_masks_the_quote() {
        let report = RawRecord::default()
            .with("user_id", RawValue::Str("u1".into()))
            .with("ts", RawValue::Str("2026-05-01T12:00:00+08:00".into()))
            .with("type", RawValue::Str("credit_report".into()))
            .with("bureau_score", RawValue::Text("score 712 of 900".into()));
        let e = Registry::builtin().validate(&report, &limits()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("bureau_score"));
        assert!(!e.to_string().contains("712"), "{e}");
        // A field every reader sees is quoted as sent.
        let (_, problem) = problem_of(replace(payment(), "amount_fen", RawValue::Text("12.5".into())));
        assert!(problem.to_string().contains("'12.5'"), "{problem}");
    }

    #[test]
    fn missing_required_fields_are_named() {
        let mut r = payment();
        r.fields.retain(|(n, _)| n != "terminal_id");
        assert_eq!(problem_of(r), (Some("terminal_id".into()), RecordProblem::Missing));
        let mut r = payment();
        r.fields.retain(|(n, _)| n != "user_id");
        assert_eq!(problem_of(r), (Some("user_id".into()), RecordProblem::Missing));
        let mut r = payment();
        r.fields.retain(|(n, _)| n != "ts");
        assert_eq!(problem_of(r), (Some("ts".into()), RecordProblem::Missing));
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        let (field, problem) = problem_of(replace(payment(), "type", RawValue::Str("teleport".into())));
        assert_eq!(field.as_deref(), Some("type"));
        assert!(matches!(problem, RecordProblem::UnknownType(t) if t == "teleport"));
        let (field, problem) = problem_of(payment().with("colour", RawValue::Str("red".into())));
        assert_eq!(field.as_deref(), Some("colour"));
        assert!(matches!(problem, RecordProblem::UnknownField(_)));
    }

    #[test]
    fn negative_amounts_and_bad_currencies_are_refused() {
        assert_eq!(
            problem_of(replace(payment(), "amount_fen", RawValue::Int(-1))),
            (Some("amount_fen".into()), RecordProblem::Negative(-1))
        );
        let (field, problem) = problem_of(replace(payment(), "currency", RawValue::Str("yuan".into())));
        assert_eq!(field.as_deref(), Some("currency"));
        assert!(matches!(problem, RecordProblem::BadCurrency(_)));
    }

    #[test]
    fn unparseable_and_future_times_are_refused() {
        let (field, problem) = problem_of(replace(payment(), "ts", RawValue::Str("next tuesday".into())));
        assert_eq!(field.as_deref(), Some("ts"));
        assert!(matches!(problem, RecordProblem::BadTime(TimeError::Unparseable(_))));
        let (_, problem) = problem_of(replace(payment(), "ts", RawValue::Str("2099-01-01T00:00:00Z".into())));
        assert!(matches!(problem, RecordProblem::BadTime(TimeError::TooFarInFuture { .. })));
        let (_, problem) = problem_of(replace(payment(), "ts", RawValue::Bool(true)));
        assert!(matches!(problem, RecordProblem::WrongType { .. }));
    }

    #[test]
    fn oversized_text_and_ids_are_refused() {
        let big = "x".repeat(5000);
        let (field, problem) = problem_of(replace(payment(), "terminal_id", RawValue::Str(big.clone())));
        assert_eq!(field.as_deref(), Some("terminal_id"));
        assert_eq!(problem, RecordProblem::TooLong { len: 5000, max: 4096 });
        let (field, _) = problem_of(replace(payment(), "event_id", RawValue::Str(big)));
        assert_eq!(field.as_deref(), Some("event_id"));
        let (field, problem) = problem_of(replace(payment(), "user_id", RawValue::Str(String::new())));
        assert_eq!((field.as_deref(), problem), (Some("user_id"), RecordProblem::Empty));
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let (field, problem) = problem_of(payment().with("amount_fen", RawValue::Int(5)));
        assert_eq!((field.as_deref(), problem), (Some("amount_fen"), RecordProblem::Duplicate));
    }

    #[test]
    fn business_events_need_no_user() {
        let r = RawRecord::default()
            .with("ts", RawValue::Int(1_777_600_000_000))
            .with("type", RawValue::Str("fraud_label".into()))
            .with("target_event_id", RawValue::Str("e1".into()))
            .with("is_fraud", RawValue::Bool(true));
        let e = Registry::builtin().validate(&r, &limits()).unwrap();
        assert_eq!(e.user_id, None);
    }
}
