//! Alerts and cases. A review or block decision (a `risk_decision` event) raises an alert; a
//! user's alerts gather in one open case until it is resolved. Analysts assign, comment and
//! resolve through `case_update` events; resolving with a verdict also writes a `fraud_label`
//! for every transaction of the case, so the labels flow back into terminal risk and training.
//! Everything is in the log: the case book is rebuilt from it, in log order.

use finpulse_core::{Event, FieldId, Registry, TypeId, Value};
use serde::Serialize;
use std::collections::HashMap;

/// Longest comment or note, bytes.
pub const NOTE_BYTES_MAX: usize = 2000;
/// Longest analyst or assignee name, bytes.
pub const ACTOR_BYTES_MAX: usize = 100;

/// Why a case could not be changed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CaseError {
    /// No such case.
    #[error("no case {0:?}")]
    NotFound(String),
    /// The case is closed.
    #[error("case {0:?} is already resolved")]
    Resolved(String),
    /// A bad field in the request.
    #[error("{field}: {problem}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// An alert: a transaction decided review or block.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    /// The transaction.
    pub event_id: String,
    /// Review or block.
    pub action: crate::ruleset::Action,
    /// The decision's score.
    pub score: f64,
    /// When the transaction happened (UTC µs).
    pub ts_us: i64,
}

/// What a change to a case did.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Given to an analyst.
    Assign,
    /// A comment added.
    Comment,
    /// Closed with a verdict.
    Resolve,
}

impl ChangeKind {
    /// As stored in a `case_update` event and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Comment => "comment",
            Self::Resolve => "resolve",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Assign, Self::Comment, Self::Resolve].into_iter().find(|k| k.name() == name)
    }
}

/// One change to a case.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Change {
    /// What it did.
    pub action: ChangeKind,
    /// Who.
    pub by: String,
    /// When (UTC µs).
    pub at_us: i64,
    /// The assignee, comment or resolution note.
    pub detail: Option<String>,
}

/// A case's verdict.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Resolution {
    /// Whether the transactions were fraud.
    pub fraud: bool,
    /// Who decided.
    pub by: String,
    /// When.
    pub at_us: i64,
}

/// Where a case stands.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Alerts come in; an analyst may assign, comment or resolve it.
    Open,
    /// A verdict was given; nothing changes it any more.
    Resolved,
}

impl CaseStatus {
    /// Its name: open or resolved.
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    /// The status named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Open, Self::Resolved].into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A user's case.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Case {
    /// `case-N`, numbered in log order.
    pub case_id: String,
    /// The user.
    pub user_id: String,
    /// open or resolved.
    pub status: CaseStatus,
    /// When its first alert happened.
    pub opened_us: i64,
    /// Its alerts, oldest first.
    pub alerts: Vec<Alert>,
    /// The analyst it is assigned to.
    pub assignee: Option<String>,
    /// Every change, oldest first: who did what and when.
    pub history: Vec<Change>,
    /// The verdict, once resolved.
    pub resolution: Option<Resolution>,
}

/// What an analyst does to a case.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseAction {
    /// Give it to an analyst.
    Assign {
        /// Who gets it.
        assignee: String,
    },
    /// Add a comment.
    Comment {
        /// The comment.
        text: String,
    },
    /// Close it with a verdict on its transactions.
    Resolve {
        /// Fraud or genuine.
        fraud: bool,
        /// Why.
        note: Option<String>,
    },
}

struct Ids {
    decision_type: Option<TypeId>,
    update_type: Option<TypeId>,
    label_type: Option<TypeId>,
    target: Option<FieldId>,
    decision: Option<FieldId>,
    risk_score: Option<FieldId>,
    case_id: Option<FieldId>,
    case_action: Option<FieldId>,
    actor: Option<FieldId>,
    assignee: Option<FieldId>,
    note: Option<FieldId>,
    is_fraud: Option<FieldId>,
}

/// Every case, derived from the log.
pub struct CaseBook {
    ids: Ids,
    cases: Vec<Case>,
    by_id: HashMap<String, usize>,
    open_by_user: HashMap<String, usize>,
}

fn text(e: &Event, f: Option<FieldId>) -> Option<&str> {
    match e.get(f?)? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

impl CaseBook {
    /// An empty book for a registry's types.
    pub fn new(registry: &Registry) -> Self {
        let f = |n: &str| registry.field_id(n);
        Self {
            ids: Ids {
                decision_type: registry.type_id("risk_decision"),
                update_type: registry.type_id("case_update"),
                label_type: registry.type_id("fraud_label"),
                target: f("target_event_id"),
                decision: f("decision"),
                risk_score: f("risk_score"),
                case_id: f("case_id"),
                case_action: f("case_action"),
                actor: f("actor"),
                assignee: f("assignee"),
                note: f("note"),
                is_fraud: f("is_fraud"),
            },
            cases: Vec::new(),
            by_id: HashMap::new(),
            open_by_user: HashMap::new(),
        }
    }

    /// The book of a data directory, from its whole log (a replay that decodes only
    /// decisions and case updates).
    pub fn rebuild(data_dir: &std::path::Path) -> Result<Self, finpulse_log::StoreError> {
        let registry = finpulse_log::EventStore::load_registry(data_dir)?;
        let mut book = Self::new(&registry);
        let (decisions, updates) = (book.ids.decision_type, book.ids.update_type);
        finpulse_log::EventStore::replay(data_dir, 0, |_, t| Some(t) == decisions || Some(t) == updates, |_, e| book.apply(&e))?;
        Ok(book)
    }

    /// Applies one event in log order.
    pub fn apply(&mut self, e: &Event) {
        if Some(e.type_id) == self.ids.decision_type {
            self.apply_decision(e);
        } else if Some(e.type_id) == self.ids.update_type {
            self.apply_update(e);
        }
    }

    fn apply_decision(&mut self, e: &Event) {
        let (Some(user), Some(action)) = (e.user_id.as_deref(), text(e, self.ids.decision).and_then(crate::ruleset::Action::parse)) else {
            return;
        };
        if action == crate::ruleset::Action::Allow {
            return;
        }
        let alert = Alert {
            event_id: text(e, self.ids.target).unwrap_or_default().to_string(),
            action,
            score: match self.ids.risk_score.and_then(|f| e.get(f)) {
                Some(Value::Float(x)) => *x,
                _ => f64::NAN,
            },
            ts_us: e.ts_us,
        };
        let at = match self.open_by_user.get(user) {
            Some(&i) => i,
            None => {
                let case_id = format!("case-{}", self.cases.len() + 1);
                self.cases.push(Case {
                    case_id: case_id.clone(),
                    user_id: user.to_string(),
                    status: CaseStatus::Open,
                    opened_us: e.ts_us,
                    alerts: Vec::new(),
                    assignee: None,
                    history: Vec::new(),
                    resolution: None,
                });
                self.by_id.insert(case_id, self.cases.len() - 1);
                self.open_by_user.insert(user.to_string(), self.cases.len() - 1);
                self.cases.len() - 1
            }
        };
        self.cases[at].alerts.push(alert);
    }

    fn apply_update(&mut self, e: &Event) {
        let action = text(e, self.ids.case_action).and_then(ChangeKind::parse);
        let (Some(id), Some(action), Some(by)) = (text(e, self.ids.case_id), action, text(e, self.ids.actor)) else {
            return;
        };
        let Some(&i) = self.by_id.get(id) else { return };
        let case = &mut self.cases[i];
        if case.status == CaseStatus::Resolved {
            return; // the log decides: the first resolution stands
        }
        let note = text(e, self.ids.note).map(str::to_string);
        let detail = match action {
            ChangeKind::Assign => {
                case.assignee = text(e, self.ids.assignee).map(str::to_string);
                case.assignee.clone()
            }
            ChangeKind::Resolve => {
                let fraud = matches!(self.ids.is_fraud.and_then(|f| e.get(f)), Some(Value::Bool(true)));
                case.status = CaseStatus::Resolved;
                case.resolution = Some(Resolution { fraud, by: by.to_string(), at_us: e.ts_us });
                self.open_by_user.remove(&case.user_id);
                note
            }
            ChangeKind::Comment => note,
        };
        case.history.push(Change { action, by: by.to_string(), at_us: e.ts_us, detail });
    }

    /// A case by id.
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.by_id.get(id).map(|&i| &self.cases[i])
    }

    /// One user's cases, newest first.
    pub fn of_user<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a Case> + 'a {
        self.cases.iter().rev().filter(move |c| c.user_id == user_id)
    }

    /// Cases, newest first, optionally only `open` or `resolved` ones and one assignee's.
    pub fn list<'a>(&'a self, status: Option<CaseStatus>, assignee: Option<&'a str>) -> impl Iterator<Item = &'a Case> + 'a {
        self.cases
            .iter()
            .rev()
            .filter(move |c| status.is_none_or(|s| c.status == s))
            .filter(move |c| assignee.is_none_or(|a| c.assignee.as_deref() == Some(a)))
    }

    /// The events that carry out `action` on case `id` by `by` at `now_us`: a `case_update`
    /// and, for a resolution, a `fraud_label` per transaction of the case. Checked against the
    /// book first; nothing is written for a refused action.
    pub fn plan(&self, id: &str, action: &CaseAction, by: &str, now_us: i64) -> Result<Vec<Event>, CaseError> {
        let case = self.case(id).ok_or_else(|| CaseError::NotFound(id.to_string()))?;
        if case.status == CaseStatus::Resolved {
            return Err(CaseError::Resolved(id.to_string()));
        }
        let short = |field: &'static str, v: &str, max: usize| {
            if v.trim().is_empty() {
                Err(CaseError::Field { field, problem: "is empty".into() })
            } else if v.len() > max {
                Err(CaseError::Field { field, problem: format!("is longer than {max} bytes") })
            } else {
                Ok(())
            }
        };
        short("by", by, ACTOR_BYTES_MAX)?;
        let ids = &self.ids;
        let (Some(update_type), Some(label_type)) = (ids.update_type, ids.label_type) else {
            return Err(CaseError::Field { field: "registry", problem: "has no case_update or fraud_label type".into() });
        };
        let field = |f: Option<FieldId>| f.expect("built-in case fields exist when the type does");
        let mut fields = vec![(field(ids.case_id), Value::Str(id.to_string())), (field(ids.actor), Value::Str(by.to_string()))];
        let mut labels = Vec::new();
        let name = match action {
            CaseAction::Assign { assignee } => {
                short("assignee", assignee, ACTOR_BYTES_MAX)?;
                fields.push((field(ids.assignee), Value::Str(assignee.clone())));
                ChangeKind::Assign
            }
            CaseAction::Comment { text } => {
                short("text", text, NOTE_BYTES_MAX)?;
                fields.push((field(ids.note), Value::Str(text.clone())));
                ChangeKind::Comment
            }
            CaseAction::Resolve { fraud, note } => {
                if let Some(n) = note {
                    short("note", n, NOTE_BYTES_MAX)?;
                    fields.push((field(ids.note), Value::Str(n.clone())));
                }
                fields.push((field(ids.is_fraud), Value::Bool(*fraud)));
                for (k, alert) in case.alerts.iter().enumerate() {
                    let mut f = vec![(field(ids.target), Value::Str(alert.event_id.clone())), (field(ids.is_fraud), Value::Bool(*fraud))];
                    f.sort_by_key(|x| x.0);
                    labels.push(Event {
                        event_id: format!("{id}#label-{}", k + 1),
                        user_id: Some(case.user_id.clone()),
                        ts_us: now_us,
                        type_id: label_type,
                        fields: f,
                    });
                }
                ChangeKind::Resolve
            }
        };
        fields.push((field(ids.case_action), Value::Str(name.name().into())));
        fields.sort_by_key(|x| x.0);
        let update = Event {
            event_id: format!("{id}#{}", case.history.len() + 1),
            user_id: Some(case.user_id.clone()),
            ts_us: now_us,
            type_id: update_type,
            fields,
        };
        Ok(std::iter::once(update).chain(labels).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(reg: &Registry, n: u32, user: &str, action: &str) -> Event {
        let f = |x: &str| reg.field_id(x).unwrap();
        let mut fields = vec![
            (f("target_event_id"), Value::Str(format!("p{n}"))),
            (f("decision"), Value::Str(action.into())),
            (f("risk_score"), Value::Float(0.7)),
            (f("ruleset_version"), Value::Int(1)),
        ];
        fields.sort_by_key(|x| x.0);
        Event {
            event_id: format!("p{n}#decision"),
            user_id: Some(user.into()),
            ts_us: i64::from(n),
            type_id: reg.type_id("risk_decision").unwrap(),
            fields,
        }
    }

    #[test]
    fn alerts_gather_per_user_until_resolved_and_resolution_labels_every_transaction() {
        let reg = Registry::builtin();
        let mut book = CaseBook::new(&reg);
        for (n, user, action) in [(1, "a", "review"), (2, "a", "allow"), (3, "b", "block"), (4, "a", "block")] {
            book.apply(&decision(&reg, n, user, action));
        }
        let a = book.case("case-1").unwrap();
        assert_eq!((a.user_id.as_str(), a.alerts.len(), a.status), ("a", 2, CaseStatus::Open), "allows raise no alert");
        assert_eq!(book.case("case-2").unwrap().user_id, "b");

        for (action, by) in
            [(CaseAction::Assign { assignee: "li".into() }, "lead"), (CaseAction::Comment { text: "card used abroad".into() }, "li")]
        {
            for e in book.plan("case-1", &action, by, 100).unwrap() {
                book.apply(&e);
            }
        }
        let plan = book.plan("case-1", &CaseAction::Resolve { fraud: true, note: Some("confirmed".into()) }, "li", 200).unwrap();
        assert_eq!(plan.len(), 3, "the update and a label per transaction");
        let target = reg.field_id("target_event_id").unwrap();
        let labelled: Vec<&Value> = plan[1..].iter().map(|e| e.get(target).unwrap()).collect();
        assert_eq!(labelled, [&Value::Str("p1".into()), &Value::Str("p4".into())]);
        for e in &plan {
            book.apply(e);
        }
        let a = book.case("case-1").unwrap();
        assert_eq!(a.status, CaseStatus::Resolved);
        assert_eq!(a.assignee.as_deref(), Some("li"));
        assert_eq!(
            a.history.iter().map(|c| (c.action.name(), c.by.as_str(), c.at_us)).collect::<Vec<_>>(),
            [("assign", "lead", 100), ("comment", "li", 100), ("resolve", "li", 200)]
        );
        assert_eq!(a.resolution, Some(Resolution { fraud: true, by: "li".into(), at_us: 200 }));

        // A new alert after the resolution opens a new case; the old one refuses changes.
        book.apply(&decision(&reg, 5, "a", "review"));
        assert_eq!(book.list(Some(CaseStatus::Open), None).map(|c| c.case_id.as_str()).collect::<Vec<_>>(), ["case-3", "case-2"]);
        let refused = book.plan("case-1", &CaseAction::Comment { text: "late".into() }, "li", 300).unwrap_err();
        assert_eq!(refused, CaseError::Resolved("case-1".into()));
        assert_eq!(book.list(None, Some("li")).count(), 1);
    }

    #[test]
    fn bad_requests_are_named_and_write_nothing() {
        let reg = Registry::builtin();
        let mut book = CaseBook::new(&reg);
        book.apply(&decision(&reg, 1, "a", "review"));
        let plan = |action: CaseAction, by: &str| book.plan("case-1", &action, by, 1).unwrap_err().to_string();
        assert_eq!(plan(CaseAction::Comment { text: "x".into() }, " "), "by: is empty");
        assert_eq!(plan(CaseAction::Assign { assignee: "".into() }, "lead"), "assignee: is empty");
        assert_eq!(plan(CaseAction::Comment { text: "x".repeat(NOTE_BYTES_MAX + 1) }, "lead"), "text: is longer than 2000 bytes");
        assert_eq!(
            book.plan("case-9", &CaseAction::Comment { text: "x".into() }, "lead", 1).unwrap_err(),
            CaseError::NotFound("case-9".into())
        );
    }
}
