//! A validated event, as the log stores it and live state and compaction read it.

/// An event type's id in the [`crate::Registry`]. Built-in ids are below
/// [`crate::registry::CUSTOM_ID_BASE`]; custom ones start there, so the catalogue can grow
/// without renumbering data already in a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u16);

/// A field's id in the [`crate::Registry`]; a field name has one id and one type across all
/// event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u16);

/// A typed field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed integer; money is always this, in minor units.
    Int(i64),
    /// A floating-point number; never money.
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// A time, UTC microseconds since the epoch.
    Ts(i64),
}

/// A validated event: the common columns plus the type's fields, sorted by field id.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Globally unique id; ingestion is idempotent on it.
    pub event_id: String,
    /// The user the event belongs to; `None` only for business-scoped types.
    pub user_id: Option<String>,
    /// When it happened, UTC microseconds.
    pub ts_us: i64,
    /// Its type.
    pub type_id: TypeId,
    /// Present fields, sorted by id, each at most once.
    pub fields: Vec<(FieldId, Value)>,
}

impl Event {
    /// The value of a field, if present.
    pub fn get(&self, field: FieldId) -> Option<&Value> {
        self.fields.binary_search_by_key(&field, |(id, _)| *id).ok().map(|i| &self.fields[i].1)
    }
}
