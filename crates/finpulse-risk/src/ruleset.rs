//! Rulesets: a TOML file of rules (condition, score, action, shadow), score thresholds and
//! allow/block lists; compiled with every error placed at its line and column in the file;
//! published as numbered versions, one active, the previous one kept active when a publish fails.

use crate::rules::Condition;
use finpulse_core::versions::{self, Adopted, Kind, Version, VersionedStore, VersionsError};
use finpulse_state::key;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A ruleset file's size limit.
pub const RULESET_BYTES_MAX: usize = 1 << 20;
/// Rules per ruleset.
pub const RULES_MAX: usize = 1000;

/// What a decision does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Let it through and raise an alert for an analyst.
    Review,
    /// Stop it.
    Block,
}

impl Action {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Review => "review",
            Action::Block => "block",
        }
    }

    /// The action of a name (`allow`, `review`, `block`).
    pub fn parse(name: &str) -> Option<Self> {
        [Action::Allow, Action::Review, Action::Block].into_iter().find(|a| a.name() == name)
    }
}

/// Why a ruleset was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    /// A problem at a place in the file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file (or "request body").
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A problem with the file as a whole.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The ruleset store.
    #[error("ruleset store: {0}")]
    Store(#[from] VersionsError),
}

fn default_review_at() -> f64 {
    0.5
}
fn default_block_at() -> f64 {
    0.9
}
fn default_action() -> Action {
    Action::Review
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    name: toml::Spanned<String>,
    when: toml::Spanned<String>,
    #[serde(default)]
    score: Option<toml::Spanned<f64>>,
    #[serde(default = "default_action")]
    action: Action,
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    description: Option<String>,
}

/// Allow and block lists, by id.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lists {
    /// Users always blocked.
    #[serde(default)]
    pub block_users: Vec<String>,
    /// Devices always blocked.
    #[serde(default)]
    pub block_devices: Vec<String>,
    /// Terminals always blocked.
    #[serde(default)]
    pub block_terminals: Vec<String>,
    /// Merchants always blocked.
    #[serde(default)]
    pub block_merchants: Vec<String>,
    /// Cards (the event's `card_number`) always blocked.
    #[serde(default)]
    pub block_cards: Vec<String>,
    /// Users always allowed (unless a block list matches).
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// Devices always allowed (unless a block list matches).
    #[serde(default)]
    pub allow_devices: Vec<String>,
    /// Cards always allowed (unless a block list matches).
    #[serde(default)]
    pub allow_cards: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesetFile {
    name: String,
    #[serde(default = "default_review_at")]
    review_at: f64,
    #[serde(default = "default_block_at")]
    block_at: f64,
    #[serde(default)]
    lists: Lists,
    #[serde(default, rename = "rule")]
    rules: Vec<FileRule>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, unique in the ruleset.
    pub name: String,
    /// The condition.
    pub when: Condition,
    /// The score a hit contributes (the decision's score is the highest of the model's and the
    /// hits').
    pub score: f64,
    /// The action a hit asks for.
    pub action: Action,
    /// Evaluated and recorded, never acted on.
    pub shadow: bool,
    /// What it is for.
    pub description: Option<String>,
}

/// The key sets of the lists.
#[derive(Debug, Clone, Default)]
pub struct KeyLists {
    pub(crate) block_users: HashSet<u64>,
    pub(crate) block_devices: HashSet<u64>,
    pub(crate) block_terminals: HashSet<u64>,
    pub(crate) block_merchants: HashSet<u64>,
    pub(crate) block_cards: HashSet<u64>,
    pub(crate) allow_users: HashSet<u64>,
    pub(crate) allow_devices: HashSet<u64>,
    pub(crate) allow_cards: HashSet<u64>,
}

fn keys(ids: &[String]) -> HashSet<u64> {
    ids.iter().map(|s| key(s)).collect()
}

/// A compiled ruleset.
#[derive(Debug, Clone)]
pub struct Ruleset {
    /// Its name.
    pub name: String,
    /// The published version (0 before publishing).
    pub version: u32,
    /// A score at or above this is reviewed.
    pub review_at: f64,
    /// A score at or above this is blocked.
    pub block_at: f64,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
    /// The lists as written.
    pub lists: Lists,
    pub(crate) keys: KeyLists,
    /// The source text.
    pub source: String,
}

/// (line, column), both 1-based, of a byte offset.
fn line_column(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where the text of a TOML string value starts in the file, when offsets inside it map 1:1
/// to the file (literal strings, and basic strings without escapes); else its opening quote.
fn string_content_start(src: &str, span: std::ops::Range<usize>) -> (usize, bool) {
    let raw = &src[span.clone()];
    let (open, exact) = if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with("\"\"\"") {
        (3, !raw.contains('\\'))
    } else if raw.starts_with('\'') {
        (1, true)
    } else {
        (1, !raw.contains('\\'))
    };
    let mut start = span.start + open;
    // A newline right after a multi-line string's opening is not part of the string.
    if open == 3 {
        if src[start..].starts_with("\r\n") {
            start += 2;
        } else if src[start..].starts_with('\n') {
            start += 1;
        }
    }
    if exact { (start, true) } else { (span.start, false) }
}

impl Ruleset {
    /// Compiles a ruleset file's text; `file` names it in errors.
    pub fn compile(src: &str, file: &str) -> Result<Self, RulesetError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_column(src, offset);
            RulesetError::At { file: file.to_string(), line, column, message }
        };
        if src.len() > RULESET_BYTES_MAX {
            return Err(RulesetError::File { file: file.into(), message: format!("larger than {RULESET_BYTES_MAX} bytes") });
        }
        let parsed: RulesetFile = toml::from_str(src).map_err(|e| match e.span() {
            Some(span) => at(span.start, e.message().trim().to_string()),
            None => RulesetError::File { file: file.into(), message: e.message().trim().to_string() },
        })?;
        let check_threshold = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(RulesetError::File { file: file.into(), message: format!("{name} = {v} is outside [0, 1]") })
            }
        };
        check_threshold("review_at", parsed.review_at)?;
        check_threshold("block_at", parsed.block_at)?;
        if parsed.review_at > parsed.block_at {
            return Err(RulesetError::File {
                file: file.into(),
                message: format!("review_at ({}) is above block_at ({})", parsed.review_at, parsed.block_at),
            });
        }
        if parsed.rules.len() > RULES_MAX {
            return Err(RulesetError::File { file: file.into(), message: format!("more than {RULES_MAX} rules") });
        }
        let mut rules = Vec::with_capacity(parsed.rules.len());
        let mut names = HashSet::new();
        for r in parsed.rules {
            let name = r.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(at(r.name.span().start, "a rule's name is empty".into()));
            }
            if !names.insert(name.clone()) {
                return Err(at(r.name.span().start, format!("rule {name:?} is defined twice")));
            }
            let when = Condition::compile(r.when.get_ref()).map_err(|e| {
                let (start, exact) = string_content_start(src, r.when.span());
                let offset = if exact { start + e.at } else { start };
                at(offset, format!("rule {name:?}: {}", e.message))
            })?;
            let score = match &r.score {
                Some(s) if !(0.0..=1.0).contains(s.get_ref()) => {
                    return Err(at(s.span().start, format!("rule {name:?}: score {} is outside [0, 1]", s.get_ref())));
                }
                Some(s) => *s.get_ref(),
                None => 0.0,
            };
            rules.push(Rule { name, when, score, action: r.action, shadow: r.shadow, description: r.description });
        }
        let l = &parsed.lists;
        let keys = KeyLists {
            block_users: keys(&l.block_users),
            block_devices: keys(&l.block_devices),
            block_terminals: keys(&l.block_terminals),
            block_merchants: keys(&l.block_merchants),
            block_cards: keys(&l.block_cards),
            allow_users: keys(&l.allow_users),
            allow_devices: keys(&l.allow_devices),
            allow_cards: keys(&l.allow_cards),
        };
        Ok(Self {
            name: parsed.name,
            version: 0,
            review_at: parsed.review_at,
            block_at: parsed.block_at,
            rules,
            lists: parsed.lists,
            keys,
            source: src.to_string(),
        })
    }

    /// A ruleset with no rules or lists: decisions come from the model's score alone.
    pub fn empty() -> Self {
        Self::compile("name = \"none\"", "built-in").expect("the empty ruleset compiles")
    }
}

/// One publication, as shown in the history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    /// The version made active.
    pub version: u32,
    /// What happened: `publish`, `promote` or `rollback`.
    pub action: String,
    /// The ruleset's name.
    pub name: String,
    /// When (UTC seconds).
    pub at_secs: u64,
    /// Who.
    pub by: String,
    /// Rules in it.
    pub rules: usize,
}

/// What the store records beside each ruleset version.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RulesetMeta {
    /// The ruleset's own name (`name = ...` in the file).
    pub ruleset: String,
    /// Rules in it.
    pub rules: usize,
}

/// Where a data directory keeps its rulesets: a versioned store with one name,
/// [`RULESET_SLOT`], whose active version is the ruleset decisions run with.
pub const RULESETS_DIR: &str = "rulesets";
/// The name the active ruleset is published under.
pub const RULESET_SLOT: &str = "active";
/// Where rulesets were published before the versioned store; adopted once, left in place.
pub const EARLIER_RULESETS_DIR: &str = "risk/rulesets";

const RULESETS: Kind =
    Kind { noun: "ruleset", format: "finpulse-rulesets/1", reads_also: &[], no_active_hint: ": publish one", ext: "toml" };

/// Published rulesets of a data directory, in the versioned store
/// ([`finpulse_core::versions`]): every publication kept, one active, roll-back to the one
/// before. Writers hold the store's lock; every write is fsync'd and atomic.
pub struct RulesetStore {
    store: VersionedStore<RulesetMeta>,
    earlier: PathBuf,
}

impl RulesetStore {
    /// The store of a data directory (created on first publish).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self { store: VersionedStore::new(data_dir.join(RULESETS_DIR), RULESETS), earlier: data_dir.join(EARLIER_RULESETS_DIR) }
    }

    /// Adopts rulesets published before the versioned store (`risk/rulesets/vN.toml` and its
    /// `index.json`), once, keeping their numbers, authors and times.
    fn adopted(&self) -> Result<&VersionedStore<RulesetMeta>, RulesetError> {
        #[derive(Deserialize)]
        struct EarlierPublication {
            version: u32,
            name: String,
            at_secs: u64,
            by: String,
            rules: usize,
        }
        #[derive(Deserialize)]
        struct EarlierIndex {
            history: Vec<EarlierPublication>,
        }
        self.store.adopt(|| {
            let index_path = self.earlier.join("index.json");
            let bytes = match std::fs::read(&index_path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => return Err(VersionsError::Io { path: index_path, source }),
            };
            let index: EarlierIndex =
                serde_json::from_slice(&bytes).map_err(|e| VersionsError::Format { path: index_path.clone(), detail: e.to_string() })?;
            let mut out = Vec::new();
            // Every earlier publication was active in its turn (publishing activated it), and
            // the last one is active now.
            for p in &index.history {
                let path = self.earlier.join(format!("v{}.toml", p.version));
                let content = std::fs::read(&path).map_err(|source| VersionsError::Io { path, source })?;
                out.push(Adopted {
                    name: RULESET_SLOT.to_string(),
                    content,
                    meta: RulesetMeta { ruleset: p.name.clone(), rules: p.rules },
                    by: p.by.clone(),
                    at_unix_secs: p.at_secs,
                    active: true,
                });
            }
            Ok(out)
        })?;
        Ok(&self.store)
    }

    /// The time the store last changed, to notice publications from another process.
    pub fn stamp(&self) -> Option<std::time::SystemTime> {
        self.store.stamp()
    }

    /// Compiles and publishes `src` as the next version and makes it active. A ruleset that
    /// does not compile is refused and the active one stays.
    pub fn publish(&self, src: &str, file: &str, by: &str) -> Result<Ruleset, RulesetError> {
        let mut ruleset = Ruleset::compile(src, file)?;
        let meta = RulesetMeta { ruleset: ruleset.name.clone(), rules: ruleset.rules.len() };
        let version = self.adopted()?.publish(RULESET_SLOT, src.as_bytes(), meta, by, true)?;
        ruleset.version = version.version;
        Ok(ruleset)
    }

    /// Compiles and stores `src` as the next version without making it active (it waits for a
    /// second person's approval). A ruleset that does not compile is refused.
    pub fn propose(&self, src: &str, file: &str, by: &str) -> Result<Ruleset, RulesetError> {
        let mut ruleset = Ruleset::compile(src, file)?;
        let meta = RulesetMeta { ruleset: ruleset.name.clone(), rules: ruleset.rules.len() };
        let version = self.adopted()?.publish(RULESET_SLOT, src.as_bytes(), meta, by, false)?;
        ruleset.version = version.version;
        Ok(ruleset)
    }

    /// Makes a stored version the active ruleset.
    pub fn promote(&self, version: u32, by: &str) -> Result<Ruleset, RulesetError> {
        let a = self.adopted()?.promote(RULESET_SLOT, version, by)?;
        self.get(a.version)
    }

    /// The name approvals and the versioned store know the ruleset by.
    pub fn slot() -> &'static str {
        RULESET_SLOT
    }

    /// Makes the ruleset active before the current one active again.
    pub fn rollback(&self, by: &str) -> Result<Ruleset, RulesetError> {
        let a = self.adopted()?.rollback(RULESET_SLOT, by)?;
        self.get(a.version)
    }

    /// The version a roll-back would make active now.
    pub fn rollback_target(&self) -> Result<u32, RulesetError> {
        Ok(self.adopted()?.rollback_target(RULESET_SLOT)?)
    }

    /// The active ruleset, if one was published.
    pub fn active(&self) -> Result<Option<Ruleset>, RulesetError> {
        let store = self.adopted()?;
        match store.active(RULESET_SLOT) {
            Ok((v, src)) => Self::compiled(&v, &src, store).map(Some),
            Err(VersionsError::NoActive { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A published version.
    pub fn get(&self, version: u32) -> Result<Ruleset, RulesetError> {
        let store = self.adopted()?;
        let (v, src) = store.get(RULESET_SLOT, version)?;
        Self::compiled(&v, &src, store)
    }

    fn compiled(v: &Version<RulesetMeta>, src: &[u8], store: &VersionedStore<RulesetMeta>) -> Result<Ruleset, RulesetError> {
        let path = store.dir().join(&v.file).display().to_string();
        let src = std::str::from_utf8(src).map_err(|_| RulesetError::File { file: path.clone(), message: "not UTF-8 text".into() })?;
        let mut r = Ruleset::compile(src, &path)?;
        r.version = v.version;
        Ok(r)
    }

    /// Changes of the active ruleset, oldest first.
    pub fn history(&self) -> Result<Vec<Publication>, RulesetError> {
        let store = self.adopted()?;
        let (versions, _) = store.list()?;
        Ok(store
            .history()?
            .into_iter()
            .filter(|a| a.action != versions::Action::Remove)
            .map(|a| {
                let meta = versions.iter().find(|v| v.version == a.version).map(|v| v.meta.clone()).unwrap_or_default();
                Publication {
                    version: a.version,
                    action: a.action.to_string(),
                    name: meta.ruleset,
                    at_secs: a.at_unix_secs,
                    by: a.by,
                    rules: meta.rules,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "cards"
review_at = 0.6
block_at = 0.95

[lists]
block_terminals = ["t00042"]

[[rule]]
name = "burst_of_large_payments"
when = "payment.amount_fen > 5 * user.avg_amount_fen_30d and user.tx_count_1h > 10"
score = 0.8
action = "block"

[[rule]]
name = "new_device_at_night"
when = '''
txn.new_device == 1
  and txn.is_night == 1'''
score = 0.4
shadow = true
"#;

    #[test]
    fn a_ruleset_file_compiles_with_its_rules_and_lists() {
        let r = Ruleset::compile(GOOD, "cards.toml").unwrap();
        assert_eq!(r.name, "cards");
        assert_eq!((r.review_at, r.block_at), (0.6, 0.95));
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[0].action, Action::Block);
        assert!(r.rules[1].shadow);
        assert_eq!(r.rules[1].action, Action::Review);
        assert!(r.keys.block_terminals.contains(&key("t00042")));
    }

    fn error_of(src: &str) -> String {
        Ruleset::compile(src, "r.toml").unwrap_err().to_string()
    }

    #[test]
    fn expression_errors_point_at_their_line_and_column_in_the_file() {
        let bad = GOOD.replace("user.tx_count_1h > 10", "user.tx_count_1h > > 10");
        assert_eq!(error_of(&bad), "r.toml:11:81: rule \"burst_of_large_payments\": expected a value, found \">\"");
        let bad = GOOD.replace("  and txn.is_night == 1", "  and txn.is_nite == 1");
        assert_eq!(
            error_of(&bad),
            "r.toml:19:7: rule \"new_device_at_night\": unknown feature \"txn.is_nite\" (`finpulse rules features` lists them)"
        );
    }

    #[test]
    fn file_level_errors_are_named() {
        assert!(
            error_of("name = \"x\"\n[[rule]]\nname = \"a\"\nwhen = \"true\"\nscore = 2.0\n")
                .starts_with("r.toml:5:9: rule \"a\": score 2 is outside [0, 1]")
        );
        assert!(
            error_of("name = \"x\"\n[[rule]]\nname = \"a\"\nwhen = \"true\"\nactoin = \"block\"\n")
                .starts_with("r.toml:5:1: unknown field `actoin`")
        );
        assert!(error_of("name = \"x\"\nreview_at = 0.9\nblock_at = 0.5\n").contains("review_at (0.9) is above block_at (0.5)"));
        assert!(
            error_of("name = \"x\"\n[[rule]]\nname = \"a\"\nwhen = \"true\"\n[[rule]]\nname = \"a\"\nwhen = \"true\"\n")
                .contains("r.toml:6:8: rule \"a\" is defined twice")
        );
        assert!(
            error_of("name = \"x\"\n[[rule]]\nname = \"a\"\nwhen = \"true\"\naction = \"deny\"\n")
                .starts_with("r.toml:5:10: unknown variant `deny`")
        );
        assert!(error_of("name = ").starts_with("r.toml:1:"));
    }

    #[test]
    fn a_failed_publish_keeps_the_previous_version_active() {
        let dir = tempfile::tempdir().unwrap();
        let store = RulesetStore::in_data_dir(dir.path());
        assert!(store.active().unwrap().is_none());
        let v1 = store.publish(GOOD, "cards.toml", "ana").unwrap();
        assert_eq!(v1.version, 1);
        let bad = GOOD.replace("> 10", "> 'ten'");
        assert!(store.publish(&bad, "cards.toml", "ana").is_err());
        assert_eq!(store.active().unwrap().unwrap().version, 1);
        let v2 = store.publish(&GOOD.replace("0.8", "0.85"), "cards.toml", "bo").unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(store.active().unwrap().unwrap().rules[0].score, 0.85);
        let h = store.history().unwrap();
        assert_eq!(h.iter().map(|p| (p.version, p.by.as_str())).collect::<Vec<_>>(), [(1, "ana"), (2, "bo")]);
    }

    #[test]
    fn a_rollback_returns_to_the_ruleset_active_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = RulesetStore::in_data_dir(dir.path());
        store.publish(GOOD, "cards.toml", "ana").unwrap();
        store.publish(&GOOD.replace("0.8", "0.85"), "cards.toml", "bo").unwrap();
        let back = store.rollback("lead").unwrap();
        assert_eq!((back.version, back.rules[0].score), (1, 0.8));
        assert_eq!(store.active().unwrap().unwrap().version, 1);
        assert!(store.rollback("lead").unwrap_err().to_string().contains("no earlier version"));
        let actions: Vec<(u32, String)> = store.history().unwrap().into_iter().map(|p| (p.version, p.action)).collect();
        assert_eq!(actions, [(1, "publish".to_string()), (2, "publish".to_string()), (1, "rollback".to_string())]);
    }

    #[test]
    fn rulesets_published_before_the_versioned_store_are_adopted_with_their_history() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = dir.path().join(EARLIER_RULESETS_DIR);
        std::fs::create_dir_all(&earlier).unwrap();
        std::fs::write(earlier.join("v1.toml"), GOOD).unwrap();
        std::fs::write(earlier.join("v2.toml"), GOOD.replace("0.8", "0.85")).unwrap();
        std::fs::write(
            earlier.join("index.json"),
            r#"{"active": 2, "history": [{"version": 1, "name": "cards", "at_secs": 100, "by": "ana", "rules": 2},
                {"version": 2, "name": "cards", "at_secs": 200, "by": "bo", "rules": 2}]}"#,
        )
        .unwrap();
        let store = RulesetStore::in_data_dir(dir.path());
        let active = store.active().unwrap().unwrap();
        assert_eq!((active.version, active.rules[0].score), (2, 0.85));
        let h = store.history().unwrap();
        assert_eq!(h.iter().map(|p| (p.version, p.by.as_str(), p.at_secs)).collect::<Vec<_>>(), [(1, "ana", 100), (2, "bo", 200)]);
        assert_eq!(store.get(1).unwrap().rules[0].score, 0.8, "every earlier version is kept");
        assert_eq!(store.publish(GOOD, "cards.toml", "cy").unwrap().version, 3, "numbering goes on");
        assert_eq!(store.rollback("lead").unwrap().version, 2);
        assert_eq!(store.rollback("lead").unwrap().version, 1, "back through the adopted history");
    }
}
