//! The schema registry: every event type and field, typed and classed; the built-in catalogue
//! plus custom types registered at run time.

use crate::catalogue;
use crate::class::DataClass;
use crate::event::{FieldId, TypeId};
use crate::mask::MaskStyle;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Ids at or above this are custom; below are built-in.
pub const CUSTOM_ID_BASE: u16 = 1000;
/// The most fields a registry holds (built-in plus custom).
pub const FIELDS_MAX: usize = 2000;
/// The most event types a registry holds.
pub const TYPES_MAX: usize = 1000;
/// The most fields one event type has.
pub const TYPE_FIELDS_MAX: usize = 64;
/// Names of the columns every record has; no field may take them.
pub const RESERVED_NAMES: [&str; 5] = ["event_id", "user_id", "ts", "type", "day"];

/// The column of each stored event's log position (`_seq`): the order in which the store
/// accepted it. The store assigns it; a record that carries one (a re-imported export or
/// compacted file) has it ignored. No field can be named so: field names start with a letter.
pub const SEQ_COLUMN: &str = "_seq";
/// What begins the name of a compacted file's column holding a masked field's masked form
/// (`_masked_card_number`). The store derives them; a record that carries one (a re-imported
/// compacted file) has it ignored, and no field can be named so.
pub const MASKED_FORM_PREFIX: &str = "_masked_";
/// Names no custom event type may take: they are tables or schemas of the SQL session.
pub const RESERVED_TYPE_NAMES: [&str; 3] = ["events", "information_schema", "public"];

/// A field's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// true or false.
    Bool,
    /// 64-bit signed integer; money in minor units is always this.
    Int,
    /// 64-bit float; never money.
    Float,
    /// UTF-8 text.
    String,
    /// A time: RFC 3339 with a zone or epoch milliseconds on input, UTC on storage.
    Timestamp,
}

impl FieldType {
    /// Lower-case name, as in the schema listing.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Float => "float",
            Self::String => "string",
            Self::Timestamp => "timestamp",
        }
    }
}

/// An extra check a field's values pass beyond their type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldCheck {
    /// No further check.
    #[default]
    None,
    /// Integers must be ≥ 0.
    NonNegative,
    /// Text must be an ISO 4217 code.
    Currency,
}

/// Whether an event type belongs to a user (user_id required) or to the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// user_id is required.
    User,
    /// user_id is optional (spend, labels, business revenue).
    Business,
}

/// A field: one name, one type and one class across every event type that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Its id.
    pub id: FieldId,
    /// Its name.
    pub name: String,
    /// Its value type.
    pub ty: FieldType,
    /// Its data class.
    pub class: DataClass,
    /// Extra check on values.
    pub check: FieldCheck,
    /// How a masked value looks (whether it is masked follows its class).
    pub mask: MaskStyle,
    /// What it means.
    pub doc: String,
}

/// A field's use in an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeFieldSpec {
    /// The field.
    pub field: FieldId,
    /// Whether records of the type must carry it.
    pub required: bool,
}

/// An event type.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeSpec {
    /// Its id.
    pub id: TypeId,
    /// Its name.
    pub name: String,
    /// What it records.
    pub doc: String,
    /// User or business.
    pub scope: Scope,
    /// Its fields.
    pub fields: Vec<TypeFieldSpec>,
    /// Built into the catalogue (true) or registered at run time.
    pub builtin: bool,
}

/// A custom event type as a user defines it; also the registry's persisted form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomTypeDef {
    /// Type name: lower-case letters, digits and `_`, starting with a letter.
    pub name: String,
    /// What it records.
    #[serde(default)]
    pub doc: String,
    /// User (default) or business.
    #[serde(default = "default_scope")]
    pub scope: Scope,
    /// Its fields.
    pub fields: Vec<CustomFieldDef>,
}

fn default_scope() -> Scope {
    Scope::User
}

/// A field of a custom type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    /// Field name; if it already exists, its type must match and it keeps its class.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Whether records must carry it.
    #[serde(default)]
    pub required: bool,
    /// Data class; may be left out only when the field exists or its name implies one.
    #[serde(default)]
    pub class: Option<DataClass>,
    /// Extra check.
    #[serde(default)]
    pub check: FieldCheck,
    /// How a masked value looks; implied by the name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskStyle>,
    /// What it means.
    #[serde(default)]
    pub doc: String,
}

/// Why a custom type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name breaks the naming rule.
    #[error("name '{0}' must be 1 to 63 lower-case letters, digits or '_', starting with a letter")]
    BadName(String),
    /// The name is a common column or an SQL table.
    #[error("'{0}' is reserved (a column of every record, or a table of the SQL session)")]
    ReservedName(String),
    /// The type exists.
    #[error("event type '{0}' already exists")]
    TypeExists(String),
    /// A field reused with another type.
    #[error("field '{name}' already exists with type {existing}, not {requested}")]
    FieldTypeConflict {
        /// Field name.
        name: String,
        /// Its type.
        existing: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// A field reused with another class.
    #[error("field '{name}' already exists with class {existing}, not {requested}")]
    FieldClassConflict {
        /// Field name.
        name: String,
        /// Its class.
        existing: DataClass,
        /// The class asked for.
        requested: DataClass,
    },
    /// A new field without a class.
    #[error("new field '{0}' needs a data class (category C1/C2/C3 and level 1-5)")]
    MissingClass(String),
    /// Level outside 1..=5.
    #[error("field '{0}' has a level outside 1-5")]
    BadLevel(String),
    /// The same field twice.
    #[error("field '{0}' is listed twice")]
    DuplicateField(String),
    /// A check that does not fit the type.
    #[error("field '{name}': check {check:?} does not apply to type {ty}")]
    CheckDoesNotFit {
        /// Field name.
        name: String,
        /// The check.
        check: FieldCheck,
        /// The type.
        ty: &'static str,
    },
    /// A named limit was reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
}

/// Names to ids. Every record looks up its type and each field by name, so the hash is FNV-1a,
/// fast on short keys; the keys are the registry's own names, so no input can grow the table.
type NameMap<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// FNV-1a over the bytes of a name.
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The registry of event types and fields.
#[derive(Debug, Clone)]
pub struct Registry {
    builtin_fields: Vec<FieldSpec>,
    custom_fields: Vec<FieldSpec>,
    builtin_types: Vec<EventTypeSpec>,
    custom_types: Vec<EventTypeSpec>,
    custom_defs: Vec<CustomTypeDef>,
    field_by_name: NameMap<FieldId>,
    type_by_name: NameMap<TypeId>,
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

impl Registry {
    /// The built-in catalogue alone.
    pub fn builtin() -> Self {
        let mut reg = Self {
            builtin_fields: Vec::new(),
            custom_fields: Vec::new(),
            builtin_types: Vec::new(),
            custom_types: Vec::new(),
            custom_defs: Vec::new(),
            field_by_name: NameMap::default(),
            type_by_name: NameMap::default(),
        };
        for (i, f) in catalogue::FIELDS.iter().enumerate() {
            let id = FieldId(i as u16);
            reg.builtin_fields.push(FieldSpec {
                id,
                name: f.name.to_string(),
                ty: f.ty,
                class: f.class,
                check: f.check,
                mask: f.mask,
                doc: f.doc.to_string(),
            });
            let previous = reg.field_by_name.insert(f.name.to_string(), id);
            debug_assert!(previous.is_none(), "catalogue field {} listed twice", f.name);
        }
        for (i, t) in catalogue::TYPES.iter().enumerate() {
            let id = TypeId(i as u16);
            let fields = t
                .fields
                .iter()
                .map(|(name, required)| TypeFieldSpec {
                    // The catalogue's own test proves every type field names a catalogue field.
                    field: reg.field_by_name[*name],
                    required: *required,
                })
                .collect();
            reg.builtin_types.push(EventTypeSpec {
                id,
                name: t.name.to_string(),
                doc: t.doc.to_string(),
                scope: t.scope,
                fields,
                builtin: true,
            });
            reg.type_by_name.insert(t.name.to_string(), id);
        }
        reg
    }

    /// The built-in catalogue plus the given custom types, in registration order.
    pub fn with_custom(defs: &[CustomTypeDef]) -> Result<Self, RegistryError> {
        let mut reg = Self::builtin();
        for def in defs {
            reg.register(def.clone())?;
        }
        Ok(reg)
    }

    /// Registers a custom type; on error the registry is unchanged.
    pub fn register(&mut self, def: CustomTypeDef) -> Result<TypeId, RegistryError> {
        if !valid_name(&def.name) {
            return Err(RegistryError::BadName(def.name));
        }
        if RESERVED_TYPE_NAMES.contains(&def.name.as_str()) {
            return Err(RegistryError::ReservedName(def.name));
        }
        if self.type_by_name.contains_key(&def.name) {
            return Err(RegistryError::TypeExists(def.name));
        }
        if self.builtin_types.len() + self.custom_types.len() >= TYPES_MAX {
            return Err(RegistryError::Limit("event types per registry (TYPES_MAX)"));
        }
        if def.fields.len() > TYPE_FIELDS_MAX {
            return Err(RegistryError::Limit("fields per event type (TYPE_FIELDS_MAX)"));
        }
        // Validate everything before changing anything.
        let mut new_fields: Vec<FieldSpec> = Vec::new();
        let mut type_fields = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for fd in &def.fields {
            if !valid_name(&fd.name) {
                return Err(RegistryError::BadName(fd.name.clone()));
            }
            if RESERVED_NAMES.contains(&fd.name.as_str()) {
                return Err(RegistryError::ReservedName(fd.name.clone()));
            }
            if !seen.insert(fd.name.clone()) {
                return Err(RegistryError::DuplicateField(fd.name.clone()));
            }
            if let Some(class) = fd.class
                && DataClass::new(class.category, class.level).is_none()
            {
                return Err(RegistryError::BadLevel(fd.name.clone()));
            }
            let id = if let Some(id) = self.field_by_name.get(&fd.name) {
                let existing = self.field(*id);
                if existing.ty != fd.ty {
                    return Err(RegistryError::FieldTypeConflict {
                        name: fd.name.clone(),
                        existing: existing.ty.name(),
                        requested: fd.ty.name(),
                    });
                }
                if let Some(class) = fd.class
                    && class != existing.class
                {
                    return Err(RegistryError::FieldClassConflict { name: fd.name.clone(), existing: existing.class, requested: class });
                }
                *id
            } else {
                let class = fd
                    .class
                    .or_else(|| DataClass::implied_by_name(&fd.name))
                    .ok_or_else(|| RegistryError::MissingClass(fd.name.clone()))?;
                let fits = match fd.check {
                    FieldCheck::None => true,
                    FieldCheck::NonNegative => matches!(fd.ty, FieldType::Int | FieldType::Float),
                    FieldCheck::Currency => fd.ty == FieldType::String,
                };
                if !fits {
                    return Err(RegistryError::CheckDoesNotFit { name: fd.name.clone(), check: fd.check, ty: fd.ty.name() });
                }
                let index = self.custom_fields.len() + new_fields.len();
                if self.builtin_fields.len() + index >= FIELDS_MAX {
                    return Err(RegistryError::Limit("fields per registry (FIELDS_MAX)"));
                }
                let id = FieldId(CUSTOM_ID_BASE + index as u16);
                let mask = fd.mask.unwrap_or_else(|| MaskStyle::implied_by_name(&fd.name));
                new_fields.push(FieldSpec { id, name: fd.name.clone(), ty: fd.ty, class, check: fd.check, mask, doc: fd.doc.clone() });
                id
            };
            type_fields.push(TypeFieldSpec { field: id, required: fd.required });
        }
        for spec in new_fields {
            self.field_by_name.insert(spec.name.clone(), spec.id);
            self.custom_fields.push(spec);
        }
        let id = TypeId(CUSTOM_ID_BASE + self.custom_types.len() as u16);
        self.custom_types.push(EventTypeSpec {
            id,
            name: def.name.clone(),
            doc: def.doc.clone(),
            scope: def.scope,
            fields: type_fields,
            builtin: false,
        });
        self.type_by_name.insert(def.name.clone(), id);
        self.custom_defs.push(def);
        Ok(id)
    }

    /// The custom types in registration order, for persisting.
    pub fn custom_defs(&self) -> &[CustomTypeDef] {
        &self.custom_defs
    }

    /// A field by id.
    ///
    /// # Panics
    /// On an id this registry never issued; ids come only from the registry itself.
    pub fn field(&self, id: FieldId) -> &FieldSpec {
        self.try_field(id).expect("field id issued by this registry")
    }

    /// A field by id, or `None` for an id this registry does not know (e.g. a corrupt log).
    pub fn try_field(&self, id: FieldId) -> Option<&FieldSpec> {
        if id.0 >= CUSTOM_ID_BASE {
            self.custom_fields.get((id.0 - CUSTOM_ID_BASE) as usize)
        } else {
            self.builtin_fields.get(id.0 as usize)
        }
    }

    /// An event type by id, or `None` for an unknown id.
    pub fn try_event_type(&self, id: TypeId) -> Option<&EventTypeSpec> {
        if id.0 >= CUSTOM_ID_BASE { self.custom_types.get((id.0 - CUSTOM_ID_BASE) as usize) } else { self.builtin_types.get(id.0 as usize) }
    }

    /// An event type by id.
    ///
    /// # Panics
    /// On an id this registry never issued.
    pub fn event_type(&self, id: TypeId) -> &EventTypeSpec {
        self.try_event_type(id).expect("type id issued by this registry")
    }

    /// A field id by name.
    pub fn field_id(&self, name: &str) -> Option<FieldId> {
        self.field_by_name.get(name).copied()
    }

    /// A type id by name.
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_by_name.get(name).copied()
    }

    /// Every field, built-in first, in id order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.builtin_fields.iter().chain(self.custom_fields.iter())
    }

    /// Every event type, built-in first, in id order.
    pub fn event_types(&self) -> impl Iterator<Item = &EventTypeSpec> {
        self.builtin_types.iter().chain(self.custom_types.iter())
    }

    /// The names of all known types, sorted, for error messages.
    pub fn type_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.type_by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::JrCategory;

    fn custom(name: &str, fields: Vec<CustomFieldDef>) -> CustomTypeDef {
        CustomTypeDef { name: name.into(), doc: String::new(), scope: Scope::User, fields }
    }

    fn field(name: &str, ty: FieldType, class: Option<DataClass>) -> CustomFieldDef {
        CustomFieldDef { name: name.into(), ty, required: true, class, check: FieldCheck::None, mask: None, doc: String::new() }
    }

    #[test]
    fn catalogue_types_name_only_catalogue_fields_and_names_are_unique() {
        let reg = Registry::builtin();
        assert_eq!(reg.fields().count(), catalogue::FIELDS.len());
        assert_eq!(reg.event_types().count(), catalogue::TYPES.len());
        for t in catalogue::TYPES {
            assert!(valid_name(t.name), "{}", t.name);
        }
        for f in catalogue::FIELDS {
            assert!(valid_name(f.name) && !RESERVED_NAMES.contains(&f.name), "{}", f.name);
        }
    }

    #[test]
    fn payment_and_fraud_label_have_their_fixed_shapes() {
        let reg = Registry::builtin();
        let payment = reg.event_type(reg.type_id("payment").unwrap());
        let required: Vec<&str> = payment.fields.iter().filter(|f| f.required).map(|f| reg.field(f.field).name.as_str()).collect();
        assert_eq!(required, ["amount_fen", "currency", "terminal_id"]);
        let label = reg.event_type(reg.type_id("fraud_label").unwrap());
        assert_eq!(label.fields.len(), 2);
        assert_eq!(reg.field(reg.field_id("is_fraud").unwrap()).ty, FieldType::Bool);
    }

    #[test]
    fn sensitive_identity_fields_are_c2_level_3() {
        let reg = Registry::builtin();
        for name in ["id_number", "mobile", "card_number"] {
            let class = reg.field(reg.field_id(name).unwrap()).class;
            assert_eq!((class.category, class.level), (JrCategory::C2, 3), "{name}");
        }
    }

    #[test]
    fn custom_type_reuses_existing_fields_and_adds_new_ones() {
        let mut reg = Registry::builtin();
        let id = reg
            .register(custom(
                "coupon_redeemed",
                vec![
                    field("amount_fen", FieldType::Int, None),
                    field("coupon_code", FieldType::String, Some(DataClass::BASIC)),
                    field("pay_password", FieldType::String, None),
                ],
            ))
            .unwrap();
        assert_eq!(id, TypeId(CUSTOM_ID_BASE));
        assert_eq!(reg.field_id("amount_fen"), Some(FieldId(0)));
        let code = reg.field(reg.field_id("coupon_code").unwrap());
        assert_eq!(code.id, FieldId(CUSTOM_ID_BASE));
        let pw = reg.field(reg.field_id("pay_password").unwrap());
        assert_eq!(pw.class, DataClass::AUTHENTICATION);
        let rebuilt = Registry::with_custom(reg.custom_defs()).unwrap();
        assert_eq!(rebuilt.type_id("coupon_redeemed"), Some(id));
    }

    #[test]
    fn conflicting_or_unclassed_custom_fields_are_refused_and_leave_registry_unchanged() {
        let mut reg = Registry::builtin();
        let before = reg.fields().count();
        let err = reg
            .register(custom(
                "x1",
                vec![field("newf", FieldType::Int, Some(DataClass::BASIC)), field("amount_fen", FieldType::String, None)],
            ))
            .unwrap_err();
        assert!(matches!(err, RegistryError::FieldTypeConflict { .. }), "{err}");
        assert_eq!(reg.fields().count(), before);
        assert!(reg.field_id("newf").is_none());
        let err = reg.register(custom("x2", vec![field("mystery", FieldType::Int, None)])).unwrap_err();
        assert_eq!(err, RegistryError::MissingClass("mystery".into()));
        let err = reg.register(custom("payment", vec![])).unwrap_err();
        assert_eq!(err, RegistryError::TypeExists("payment".into()));
        let err = reg.register(custom("Bad-Name", vec![])).unwrap_err();
        assert!(matches!(err, RegistryError::BadName(_)));
        let err = reg.register(custom("x3", vec![field("ts", FieldType::Int, Some(DataClass::BASIC))])).unwrap_err();
        assert!(matches!(err, RegistryError::ReservedName(_)));
        let bad_level = DataClass { category: JrCategory::C1, level: 9 };
        let err = reg.register(custom("x4", vec![field("zz", FieldType::Int, Some(bad_level))])).unwrap_err();
        assert!(matches!(err, RegistryError::BadLevel(_)));
    }
}
