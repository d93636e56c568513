//! Rulesets: a TOML file of rules (condition, score, action, shadow), score thresholds and
//! allow/block lists; compiled with every error placed at its line and column in the file;
//! published as numbered versions, one active, the previous one kept active when a publish fails.

use crate::rules::Condition;
use finpulse_state::key;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
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
    #[error("ruleset store {path}: {detail}")]
    Store {
        /// The path.
        path: String,
        /// Why.
        detail: String,
    },
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

/// One publication.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    /// The version published.
    pub version: u32,
    /// Its name.
    pub name: String,
    /// When (UTC seconds).
    pub at_secs: u64,
    /// Who.
    pub by: String,
    /// Rules in it.
    pub rules: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoreIndex {
    active: Option<u32>,
    history: Vec<Publication>,
}

/// Published rulesets of a data directory: `risk/rulesets/v{N}.toml`, and `index.json` naming
/// the active one with the history. Writers hold a lock; every write is fsync'd and atomic.
pub struct RulesetStore {
    dir: PathBuf,
}

/// Where a data directory keeps its rulesets.
pub const RULESETS_DIR: &str = "risk/rulesets";

impl RulesetStore {
    /// The store of a data directory (created on first publish).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self { dir: data_dir.join(RULESETS_DIR) }
    }

    fn fail(&self, detail: impl ToString) -> RulesetError {
        RulesetError::Store { path: self.dir.display().to_string(), detail: detail.to_string() }
    }

    fn index(&self) -> Result<StoreIndex, RulesetError> {
        match std::fs::read(self.dir.join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.fail(format!("index.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreIndex::default()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The time `index.json` last changed, to notice publications from another process.
    pub fn stamp(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.join("index.json")).and_then(|m| m.modified()).ok()
    }

    /// Compiles and publishes `src` as the next version and makes it active. A ruleset that
    /// does not compile is refused and the active one stays.
    pub fn publish(&self, src: &str, file: &str, by: &str) -> Result<Ruleset, RulesetError> {
        let mut ruleset = Ruleset::compile(src, file)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.fail(e))?;
        let lock = File::options().create(true).truncate(false).write(true).open(self.dir.join("LOCK")).map_err(|e| self.fail(e))?;
        lock.lock().map_err(|e| self.fail(e))?;
        let mut index = self.index()?;
        let version = index.history.iter().map(|p| p.version).max().unwrap_or(0) + 1;
        finpulse_core::durable::write_file(&self.dir.join(format!("v{version}.toml")), src.as_bytes()).map_err(|e| self.fail(e))?;
        let at_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        index.active = Some(version);
        index.history.push(Publication { version, name: ruleset.name.clone(), at_secs, by: by.to_string(), rules: ruleset.rules.len() });
        let json = serde_json::to_vec_pretty(&index).map_err(|e| self.fail(e))?;
        finpulse_core::durable::write_file(&self.dir.join("index.json"), &json).map_err(|e| self.fail(e))?;
        ruleset.version = version;
        Ok(ruleset)
    }

    /// The active ruleset, if one was published.
    pub fn active(&self) -> Result<Option<Ruleset>, RulesetError> {
        let Some(version) = self.index()?.active else { return Ok(None) };
        self.get(version).map(Some)
    }

    /// A published version.
    pub fn get(&self, version: u32) -> Result<Ruleset, RulesetError> {
        let path = self.dir.join(format!("v{version}.toml"));
        let src = std::fs::read_to_string(&path).map_err(|e| self.fail(format!("v{version}.toml: {e}")))?;
        let mut r = Ruleset::compile(&src, &path.display().to_string())?;
        r.version = version;
        Ok(r)
    }

    /// Publications, oldest first.
    pub fn history(&self) -> Result<Vec<Publication>, RulesetError> {
        Ok(self.index()?.history)
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
}
