//! Segments: named groups of users defined by behaviour and properties, evaluated on demand as
//! of a moment, saved in the data directory, materialised (members written to a CSV) on a
//! schedule or on request, and usable as a filter in every insight (`segment = NAME`).
//!
//! A segment is a list of rules that must all hold:
//! - `did EVENT [>= N | <= N | = N | > N | < N] [in Nd]` — how often the user did EVENT (a type or
//!   `TYPE:FIELD=VALUE`), in the last N days before the as-of moment or ever (`did deposit >= 3
//!   in 30d`; `did X` alone means at least once);
//! - `not EVENT [in Nd]` — never (in the last N days);
//! - `user.FIELD OP VALUE` — a property of the user's signup (`user.channel = douyin`).
//!
//! Members are the users with a signup or any counted event before the as-of moment.
//! Definitions are versioned ([`finpulse_core::versions`], in `<data-dir>/segments/defs`): every
//! save is a new version, a removal keeps them, and a roll-back returns to the one before.
//! Once materialised, `<data-dir>/segments/NAME.members.csv` (one user_id per line) and
//! `NAME.state.json` (as-of and count) hold the members.

use crate::params::{EventSpec, Filter, USER_PROPERTIES_EVENT};
use crate::versioned::JsonVersions;
use crate::{InsightError, sql, table};
use datafusion::prelude::SessionContext;
use finpulse_core::registry::Registry;
use finpulse_core::versions::{Activation, Kind, VersionsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest segment name.
pub const SEGMENT_NAME_BYTES_MAX: usize = 64;
/// Most rules in one segment.
pub const SEGMENT_RULES_MAX: usize = 32;
/// How often a server re-materialises saved segments, by default.
pub const SEGMENT_REFRESH_SECS_DEFAULT: u64 = 300;

/// A segment as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    /// Its name: letters, digits, `_` and `-`.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Rules that must all hold.
    pub rules: Vec<String>,
}

/// What a materialisation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentState {
    /// The moment membership was evaluated at (RFC 3339, UTC).
    pub as_of: String,
    /// Members.
    pub members: usize,
    /// When it was computed (RFC 3339, UTC).
    pub computed_at: String,
}

#[derive(Debug, Clone)]
enum Rule {
    Count { event: EventSpec, op: &'static str, n: u64, days: Option<u32> },
    Property(Filter),
}

/// A checked segment, ready to be turned into SQL.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its definition.
    pub def: SegmentDef,
    rules: Vec<Rule>,
}

fn rule_error(i: usize, message: impl std::fmt::Display) -> InsightError {
    InsightError::param(&format!("rules[{i}]"), message.to_string())
}

fn check_name(name: &str) -> Result<(), InsightError> {
    let ok =
        !name.is_empty() && name.len() <= SEGMENT_NAME_BYTES_MAX && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(InsightError::param("name", format!("'{name}': 1 to {SEGMENT_NAME_BYTES_MAX} letters, digits, '_' or '-'")))
    }
}

impl Segment {
    /// Checks a definition against the registry.
    pub fn parse(def: SegmentDef, registry: &Registry) -> Result<Self, InsightError> {
        check_name(&def.name)?;
        if def.rules.is_empty() {
            return Err(InsightError::param("rules", "give at least one rule"));
        }
        if def.rules.len() > SEGMENT_RULES_MAX {
            return Err(InsightError::param("rules", format!("at most {SEGMENT_RULES_MAX} rules, got {}", def.rules.len())));
        }
        let rules = def.rules.iter().enumerate().map(|(i, r)| parse_rule(i, r, registry)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { def, rules })
    }

    /// SQL listing the members' user ids as of `as_of` (an SQL timestamp expression).
    pub fn members_sql(&self, as_of: &str) -> String {
        let before = format!("e.ts < {as_of}");
        let mut ctes = vec![format!("users AS ({})", crate::params::users_cte())];
        let mut joins = Vec::new();
        let mut conditions = Vec::new();
        let mut bases = vec![format!("SELECT user_id FROM {USER_PROPERTIES_EVENT} WHERE ts < {as_of}")];
        for (i, rule) in self.rules.iter().enumerate() {
            match rule {
                Rule::Count { event, op, n, days } => {
                    let since = days.map_or(String::new(), |d| format!(" AND e.ts >= {as_of} - INTERVAL '{d} days'"));
                    ctes.push(format!(
                        "c{i} AS (SELECT e.user_id, count(*) AS n FROM events e WHERE {} AND {before}{since} GROUP BY e.user_id)",
                        event.sql()
                    ));
                    joins.push(format!("LEFT JOIN c{i} ON c{i}.user_id = b.user_id"));
                    conditions.push(format!("coalesce(c{i}.n, 0) {op} {n}"));
                    bases.push(format!("SELECT user_id FROM c{i}"));
                }
                Rule::Property(filter) => conditions.push(filter.sql()),
            }
        }
        format!(
            "WITH {}, b AS (SELECT DISTINCT user_id FROM ({}) WHERE user_id IS NOT NULL AND user_id <> '') \
             SELECT b.user_id FROM b LEFT JOIN users u ON u.user_id = b.user_id {} WHERE {}",
            ctes.join(", "),
            bases.join(" UNION ALL "),
            joins.join(" "),
            conditions.join(" AND ")
        )
    }
}

fn parse_rule(i: usize, text: &str, registry: &Registry) -> Result<Rule, InsightError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let days = |words: &[&str]| -> Result<(Option<u32>, usize), InsightError> {
        match words {
            [.., "in", d] => {
                let n = d
                    .strip_suffix('d')
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| rule_error(i, format!("'{d}' is not a number of days such as 30d")))?;
                Ok((Some(n), 2))
            }
            _ => Ok((None, 0)),
        }
    };
    match words.first().copied() {
        Some("did") | Some("not") => {
            let negated = words[0] == "not";
            let event = words.get(1).ok_or_else(|| rule_error(i, format!("'{text}': which event?")))?;
            let event = EventSpec::parse(event, registry, &format!("rules[{i}]"))?;
            let (days, tail) = days(&words[2..])?;
            let middle = &words[2..words.len() - tail];
            let (op, n) = match (negated, middle) {
                (true, []) => ("=", 0),
                (true, _) => return Err(rule_error(i, format!("'{text}': `not EVENT [in Nd]` takes no count"))),
                (false, []) => (">=", 1),
                (false, [op, n]) => {
                    let op = match *op {
                        ">=" => ">=",
                        "<=" => "<=",
                        "=" => "=",
                        ">" => ">",
                        "<" => "<",
                        other => return Err(rule_error(i, format!("'{other}' is not >=, <=, =, > or <"))),
                    };
                    (op, n.parse::<u64>().map_err(|_| rule_error(i, format!("'{n}' is not a count")))?)
                }
                _ => return Err(rule_error(i, format!("'{text}' is not `did EVENT [OP N] [in Nd]`"))),
            };
            Ok(Rule::Count { event, op, n, days })
        }
        Some(w) if w.starts_with("user.") => {
            let filter = Filter::parse(text, registry, &format!("rules[{i}]"))?;
            Ok(Rule::Property(filter))
        }
        _ => Err(rule_error(i, format!("'{text}' is not `did EVENT …`, `not EVENT …` or `user.FIELD OP VALUE`"))),
    }
}

/// The segments saved in a data directory.
#[derive(Debug, Clone)]
pub struct SegmentBook {
    dir: PathBuf,
    defs: BTreeMap<String, SegmentDef>,
}

fn io(e: std::io::Error, what: &Path) -> InsightError {
    InsightError::file(what, e)
}

/// Where segment definitions are versioned, under `<data-dir>/segments`.
pub const SEGMENT_VERSIONS_DIR: &str = "defs";

const SEGMENTS: Kind = Kind { noun: "segment", format: "finpulse-segments/1", reads_also: &[], no_active_hint: "", ext: "json" };

impl SegmentBook {
    /// The versioned definitions of a data directory.
    fn store(dir: &Path) -> JsonVersions<SegmentDef> {
        JsonVersions::new(dir.join(SEGMENT_VERSIONS_DIR), SEGMENTS)
    }

    /// Loads the active definitions under `<data_dir>/segments` (none when it does not exist).
    /// Definitions saved before they were versioned (`segments/NAME.json`) are adopted once.
    pub fn load(data_dir: &Path) -> Result<Self, InsightError> {
        let dir = data_dir.join("segments");
        let store = Self::store(&dir);
        if dir.exists() {
            store.adopt(|| {
                let mut earlier = Vec::new();
                for entry in std::fs::read_dir(&dir).map_err(|source| VersionsError::Io { path: dir.clone(), source })? {
                    let path = entry.map_err(|source| VersionsError::Io { path: dir.clone(), source })?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if let Some(stem) = name.strip_suffix(".json").filter(|s| !s.ends_with(".state")) {
                        let content = std::fs::read(&path).map_err(|source| VersionsError::Io { path: path.clone(), source })?;
                        earlier.push((stem.to_string(), content));
                    }
                }
                Ok(earlier)
            })?;
        }
        let defs = store.active()?;
        Ok(Self { dir, defs })
    }

    /// An empty book (no data directory, e.g. in tests).
    pub fn empty() -> Self {
        Self { dir: PathBuf::new(), defs: BTreeMap::new() }
    }

    /// Saved definitions by name.
    pub fn defs(&self) -> &BTreeMap<String, SegmentDef> {
        &self.defs
    }

    /// A saved segment, checked.
    pub fn get(&self, name: &str, registry: &Registry) -> Result<Segment, InsightError> {
        let def = self.defs.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.defs.keys().map(String::as_str).collect();
            InsightError::param(
                "segment",
                format!("no segment '{name}' (saved: {})", if known.is_empty() { "none".into() } else { known.join(", ") }),
            )
        })?;
        Segment::parse(def.clone(), registry)
    }

    /// Checks and saves a definition as the next version of its name, durably, recording `by`.
    pub fn save(&mut self, def: SegmentDef, registry: &Registry, by: &str) -> Result<Segment, InsightError> {
        let segment = Segment::parse(def, registry)?;
        Self::store(&self.dir).put(&segment.def.name, &segment.def, by)?;
        self.defs.insert(segment.def.name.clone(), segment.def.clone());
        Ok(segment)
    }

    /// Removes a segment (its versions stay; a roll-back brings it back). False when there
    /// was none.
    pub fn remove(&mut self, name: &str, by: &str) -> Result<bool, InsightError> {
        let removed = Self::store(&self.dir).remove(name, by)?;
        self.defs.remove(name);
        Ok(removed)
    }

    /// Returns a segment to its definition before the current one (or brings back a removed
    /// one).
    pub fn rollback(&mut self, name: &str, by: &str) -> Result<Activation, InsightError> {
        let (a, def) = Self::store(&self.dir).rollback(name, by)?;
        self.defs.insert(name.to_string(), def);
        Ok(a)
    }

    /// Every save, removal and roll-back, oldest first.
    pub fn history(&self) -> Result<Vec<Activation>, InsightError> {
        Self::store(&self.dir).history()
    }

    /// The last materialisation of a segment, if any.
    pub fn state(&self, name: &str) -> Option<SegmentState> {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.state.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The members written by the last materialisation, if any.
    pub fn materialised_members(&self, name: &str) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.members.csv"))).ok()?;
        Some(text.lines().skip(1).map(str::to_string).collect())
    }

    /// Writes a segment's members and state (members first, so a state always has its file).
    pub fn write_members(&self, name: &str, as_of_us: i64, members: &[String]) -> Result<SegmentState, InsightError> {
        let mut csv = String::from("user_id\n");
        for m in members {
            csv.push_str(m);
            csv.push('\n');
        }
        let path = self.dir.join(format!("{name}.members.csv"));
        finpulse_core::durable::write_file(&path, csv.as_bytes()).map_err(|e| io(e, &path))?;
        let state = SegmentState {
            as_of: finpulse_core::time::format_us_brief(as_of_us),
            members: members.len(),
            computed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let path = self.dir.join(format!("{name}.state.json"));
        finpulse_core::durable::write_file(&path, &serde_json::to_vec_pretty(&state).expect("state serialises"))
            .map_err(|e| io(e, &path))?;
        Ok(state)
    }
}

/// The moment segments are evaluated at by default: just after the last stored event.
pub async fn default_as_of_us(ctx: &SessionContext) -> Result<i64, InsightError> {
    let rows = table::rows(&sql(ctx, "SELECT CAST(max(ts) AS BIGINT) FROM events").await?)?;
    match rows.first() {
        Some(r) => Ok(table::int_or_null(r, 0, "max(ts)")?.map_or(0, |t| t + 1)),
        None => Ok(0),
    }
}

/// The members of a segment as of a moment, sorted.
pub async fn members(ctx: &SessionContext, segment: &Segment, as_of_us: i64) -> Result<Vec<String>, InsightError> {
    let as_of = format!("arrow_cast({as_of_us}, 'Timestamp(µs, \"UTC\")')");
    let q = format!("{} ORDER BY b.user_id", segment.members_sql(&as_of));
    let mut out = Vec::new();
    for b in sql(ctx, &q).await? {
        out.extend(finpulse_query::text_values(b.column(0).as_ref())?.into_iter().flatten());
    }
    Ok(out)
}

/// Evaluates saved segments as of the end of the data and writes their members; returns each
/// one's state.
async fn materialise(
    view: &finpulse_log::StoreView,
    book: &SegmentBook,
    names: &[&str],
) -> Result<Vec<(String, SegmentState)>, InsightError> {
    // A lineage run from the events to the members files (the data directory is the one
    // holding `segments/`).
    let data_dir = book.dir.parent().unwrap_or(&book.dir);
    let outputs = names.iter().map(|n| finpulse_log::lineage::dataset(data_dir, &format!("segments/{n}.members.csv"))).collect();
    let inputs = finpulse_log::lineage::events_inputs(data_dir);
    finpulse_log::lineage::around(data_dir, SEGMENT_JOB, inputs, outputs, async {
        let ctx = crate::session(view).await?;
        let as_of = default_as_of_us(&ctx).await?;
        let mut out = Vec::new();
        for &name in names {
            let segment = book.get(name, &view.registry)?;
            let members = members(&ctx, &segment, as_of).await?;
            out.push((name.to_string(), book.write_members(name, as_of, &members)?));
        }
        Ok(out)
    })
    .await
}

/// The lineage job that materialises segments.
pub const SEGMENT_JOB: &str = "segment_materialisation";

/// Re-materialises every saved segment as of the end of the data; returns each one's state.
pub async fn materialise_all(view: &finpulse_log::StoreView, book: &SegmentBook) -> Result<Vec<(String, SegmentState)>, InsightError> {
    let names: Vec<&str> = book.defs.keys().map(String::as_str).collect();
    materialise(view, book, &names).await
}

/// Materialises one saved segment as of the end of the data.
pub async fn materialise_one(view: &finpulse_log::StoreView, book: &SegmentBook, name: &str) -> Result<SegmentState, InsightError> {
    let mut states = materialise(view, book, &[name]).await?;
    Ok(states.remove(0).1)
}
