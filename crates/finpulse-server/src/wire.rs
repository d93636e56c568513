//! The JSON the API answers with, kept apart from the engine's types: renaming a field of
//! `finpulse_risk::engine::Decision` or `finpulse_risk::cases::Case` changes the conversion
//! below, never the public answer. `tests/contract.rs` pins these shapes.

use finpulse_risk::cases::{Alert, Case, Change, Resolution};
use finpulse_risk::engine::{Decision, Reason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a decision came out as it did. (Also the shape the reasons of a `risk_decision` event
/// are stored in, so a retried decision reads them back into this.)
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasonBody {
    /// An allow or block list matched.
    List {
        /// Which list (e.g. `block_devices`).
        list: String,
    },
    /// A rule's condition held.
    Rule {
        /// The rule.
        name: String,
        /// Its score.
        score: f64,
        /// Its action: allow, review or block.
        action: String,
    },
    /// A feature pushed the model's score up.
    Model {
        /// The feature.
        feature: String,
        /// Its value (absent when missing).
        value: Option<f64>,
        /// Its contribution to the log-odds.
        contribution: f64,
    },
}

impl From<&Reason> for ReasonBody {
    fn from(r: &Reason) -> Self {
        match r {
            Reason::List { list } => Self::List { list: (*list).to_string() },
            Reason::Rule { name, score, action } => Self::Rule { name: name.clone(), score: *score, action: action.name().to_string() },
            Reason::Model { feature, value, contribution } => {
                Self::Model { feature: (*feature).to_string(), value: *value, contribution: *contribution }
            }
        }
    }
}

/// A decision on one transaction.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct DecisionBody {
    /// The transaction.
    pub event_id: String,
    /// Its user.
    pub user_id: Option<String>,
    /// allow, review or block.
    pub action: String,
    /// In [0, 1]: the highest of the model's score and the scores of the rules that hit.
    pub score: Option<f64>,
    /// Lists, rules and model features behind it.
    pub reasons: Vec<ReasonBody>,
    /// Shadow rules that would have hit (recorded, not acted on).
    pub shadow_hits: Vec<String>,
    /// The ruleset's name (null for a decision read back from the log, which does not keep it).
    pub ruleset: Option<String>,
    /// The ruleset's version.
    pub ruleset_version: Option<u32>,
    /// The model's registry version, if a model scored it.
    pub model_version: Option<u32>,
    /// The model's own probability (null when no model scored it, or read back from the log).
    pub model_score: Option<f64>,
    /// Time from the request's arrival to the decision, microseconds.
    pub elapsed_us: Option<f64>,
    /// Set when the decision is the fail-open/closed fallback: why.
    pub fallback: Option<String>,
    /// `new`, or why this decision is not a new record (a retried event id).
    pub recorded: String,
}

impl DecisionBody {
    /// A decision made now, with what became of its record.
    pub fn new(d: &Decision, recorded: impl Into<String>) -> Self {
        Self {
            event_id: d.event_id.clone(),
            user_id: d.user_id.clone(),
            action: d.action.name().to_string(),
            score: Some(d.score),
            reasons: d.reasons.iter().map(ReasonBody::from).collect(),
            shadow_hits: d.shadow_hits.clone(),
            ruleset: Some(d.ruleset.clone()),
            ruleset_version: Some(d.ruleset_version),
            model_version: d.model_version,
            model_score: d.model_score,
            elapsed_us: Some(d.elapsed_us),
            fallback: d.fallback.clone(),
            recorded: recorded.into(),
        }
    }
}

/// An alert: a transaction decided review or block.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct AlertBody {
    /// The transaction.
    pub event_id: String,
    /// review or block.
    pub action: String,
    /// The decision's score.
    pub score: f64,
    /// When the transaction happened (UTC µs).
    pub ts_us: i64,
}

/// One change to a case.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ChangeBody {
    /// assign, comment or resolve.
    pub action: String,
    /// Who.
    pub by: String,
    /// When (UTC µs).
    pub at_us: i64,
    /// The assignee, comment or resolution note.
    pub detail: Option<String>,
}

/// A case's verdict.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct ResolutionBody {
    /// Whether the transactions were fraud.
    pub fraud: bool,
    /// Who decided.
    pub by: String,
    /// When (UTC µs).
    pub at_us: i64,
}

/// A user's risk case.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CaseBody {
    /// `case-N`, numbered in log order.
    pub case_id: String,
    /// The user.
    pub user_id: String,
    /// open or resolved.
    pub status: String,
    /// When its first alert happened (UTC µs).
    pub opened_us: i64,
    /// Its alerts, oldest first.
    pub alerts: Vec<AlertBody>,
    /// The analyst it is assigned to.
    pub assignee: Option<String>,
    /// Every change, oldest first.
    pub history: Vec<ChangeBody>,
    /// The verdict, once resolved.
    pub resolution: Option<ResolutionBody>,
}

impl From<&Case> for CaseBody {
    fn from(c: &Case) -> Self {
        let alert = |a: &Alert| AlertBody { event_id: a.event_id.clone(), action: a.action.clone(), score: a.score, ts_us: a.ts_us };
        let change = |h: &Change| ChangeBody { action: h.action.clone(), by: h.by.clone(), at_us: h.at_us, detail: h.detail.clone() };
        let resolution = |r: &Resolution| ResolutionBody { fraud: r.fraud, by: r.by.clone(), at_us: r.at_us };
        Self {
            case_id: c.case_id.clone(),
            user_id: c.user_id.clone(),
            status: c.status.name().to_string(),
            opened_us: c.opened_us,
            alerts: c.alerts.iter().map(alert).collect(),
            assignee: c.assignee.clone(),
            history: c.history.iter().map(change).collect(),
            resolution: c.resolution.as_ref().map(resolution),
        }
    }
}

/// A page of cases.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct CasesBody {
    /// Newest first.
    pub cases: Vec<CaseBody>,
}
