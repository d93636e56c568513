//! The rules language and ruleset files on arbitrary text, as an analyst's ruleset reaches
//! `finpulse rules publish` or the HTTP API. Each input is tried both as one condition and as a
//! whole ruleset file.
//!
//! Beyond not panicking: an error's offset is a character boundary inside the text (the file's
//! line and column are computed from it); a condition that compiles evaluates, its negation
//! compiles and holds exactly when it does not; a ruleset that compiles decides a payment with
//! no feature values, within its own thresholds.
#![no_main]

use finpulse_core::{Event, TypeId};
use finpulse_risk::engine::{Engine, Policy, Reason};
use finpulse_risk::rules::Condition;
use finpulse_risk::ruleset::{Action, Ruleset, RulesetError};
use finpulse_state::features::{FeatureRow, NUM_COUNT, TEXT_COUNT, lookup};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fn rows() -> [FeatureRow<'static>; 3] {
    [
        FeatureRow::default(),
        FeatureRow { num: [0.0; NUM_COUNT], text: [""; TEXT_COUNT] },
        FeatureRow { num: [1.0; NUM_COUNT], text: ["payment"; TEXT_COUNT] },
    ]
}

fn condition(src: &str) {
    let c = match Condition::compile(src) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.at <= src.len() && src.is_char_boundary(e.at), "error offset {} is not a character of the text", e.at);
            assert!(!e.message.is_empty());
            return;
        }
    };
    assert!(c.features().windows(2).all(|w| w[0] < w[1]), "features listed unsorted or twice: {:?}", c.features());
    assert!(c.features().iter().all(|f| lookup(f).is_some()), "an unknown feature listed: {:?}", c.features());
    // Comments end at a line's end and text cannot span lines, so the wrapping parentheses
    // always close what they open.
    let negated = format!("not (\n{src}\n)");
    let not_c = match Condition::compile(&negated) {
        Ok(n) => Some(n),
        // Wrapping adds two levels; only the nesting limit may refuse it.
        Err(e) if e.message.contains("nested") => None,
        Err(e) => panic!("the negation of a condition that compiles is refused: {e} at {}", e.at),
    };
    for row in rows() {
        let holds = c.holds(&row);
        if let Some(n) = &not_c {
            assert_eq!(n.holds(&row), !holds, "not (...) does not negate");
        }
    }
}

fn ruleset(src: &str) {
    let r = match Ruleset::compile(src, "fuzz.toml") {
        Ok(r) => r,
        Err(RulesetError::At { line, column, message, .. }) => {
            assert!(line >= 1 && column >= 1 && line <= src.lines().count().max(1) + 1, "placed at {line}:{column}");
            assert!(!message.is_empty());
            return;
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!((0.0..=1.0).contains(&r.review_at) && r.review_at <= r.block_at && r.block_at <= 1.0);
    let engine = Engine { ruleset: Arc::new(r.clone()), model: None, policy: Policy { budget_us: u64::MAX, ..Policy::default() } };
    let payment =
        Event { event_id: "e1".into(), user_id: Some("u1".into()), ts_us: 1_777_600_000_000_000, type_id: TypeId(1), fields: vec![] };
    for row in rows() {
        let hits: Vec<bool> = r.rules.iter().map(|rule| rule.when.holds(&row)).collect();
        let d = engine.decide_row(&payment, row);
        assert!((0.0..=1.0).contains(&d.score), "score {} outside [0, 1]", d.score);
        let shadow: Vec<&str> =
            r.rules.iter().zip(&hits).filter(|(rule, hit)| rule.shadow && **hit).map(|(rule, _)| rule.name.as_str()).collect();
        let lists_decided = d.reasons.iter().any(|reason| matches!(reason, Reason::List { .. }));
        if !lists_decided {
            assert_eq!(d.shadow_hits, shadow, "shadow hits differ from the shadow rules that hold");
            if d.score >= r.block_at {
                assert_eq!(d.action, Action::Block);
            } else if d.score >= r.review_at {
                assert!(d.action >= Action::Review);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    condition(src);
    ruleset(src);
});
