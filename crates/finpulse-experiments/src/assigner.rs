//! Assigning users to the running experiments, in process: the book's running experiments
//! compiled once (bucket ranges, layer seeds, parsed filters, segment members), then each call
//! a few hashes and comparisons that allocate nothing — the caller hands in the vector the
//! assignments are written to and reuses it.
//!
//! A user is in an experiment when every condition holds, in this order: they have an id; they
//! are in its segment (as of the segment's last materialisation); every property filter passes
//! on the attributes given; their layer bucket (GrowthBook's namespace hash, `"__" + layer`,
//! hash version 1) falls in its slice; and their bucket for the experiment (the key as seed,
//! hash version 2) falls in a variation's range, whose length is the variation's weight times
//! the traffic share.

use crate::assignment::{BucketRange, HashVersion, bucket_of_parts, bucket_ranges, choose_variation};
use crate::definition::{Experiment, PropertyFilter, Status};
use crate::{BookError, ExperimentBook};
use finpulse_core::registry::Registry;
use std::sync::Arc;

/// A user's variation in one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'a> {
    /// The experiment's key.
    pub experiment: &'a str,
    /// The variation's key.
    pub variation: &'a str,
    /// Its position (0 is control).
    pub variation_index: usize,
}

/// A segment's members, sorted, for membership by binary search.
#[derive(Debug, Clone, Default)]
pub struct Members(Vec<String>);

impl Members {
    /// From a list in any order.
    pub fn new(mut users: Vec<String>) -> Self {
        users.sort_unstable();
        users.dedup();
        Self(users)
    }

    /// Whether `user_id` is a member.
    pub fn contains(&self, user_id: &str) -> bool {
        self.0.binary_search_by(|m| m.as_str().cmp(user_id)).is_ok()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
struct Compiled {
    key: String,
    variations: Vec<String>,
    ranges: Vec<BucketRange>,
    layer: Option<(String, f64, f64)>,
    filters: Vec<PropertyFilter>,
    segment: Option<Arc<Members>>,
}

impl Compiled {
    fn eligible(&self, user_id: &str, attributes: &[(&str, &str)]) -> bool {
        if let Some(members) = &self.segment
            && !members.contains(user_id)
        {
            return false;
        }
        let value = |name: &str| attributes.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if !self.filters.iter().all(|f| f.passes(value(&f.property))) {
            return false;
        }
        match &self.layer {
            Some((name, start, end)) => {
                let n = bucket_of_parts(&["__", name], user_id, HashVersion::V1);
                *start <= n && n < *end
            }
            None => true,
        }
    }
}

/// The running experiments of a book, ready to assign.
#[derive(Debug, Default)]
pub struct Assigner {
    experiments: Vec<Compiled>,
}

impl Assigner {
    /// Compiles the running experiments of `book`; `members` gives a segment's members by
    /// name (`None` when it was never materialised: then nobody is in it).
    pub fn new(book: &ExperimentBook, registry: &Registry, mut members: impl FnMut(&str) -> Option<Members>) -> Result<Self, BookError> {
        let mut experiments = Vec::new();
        let mut loaded: Vec<(String, Arc<Members>)> = Vec::new();
        for e in book.experiments().values().filter(|e| e.status == Status::Running) {
            let segment = e.definition.targeting.segment.as_ref().map(|name| match loaded.iter().find(|(n, _)| n == name) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = Arc::new(members(name).unwrap_or_default());
                    loaded.push((name.clone(), m.clone()));
                    m
                }
            });
            experiments.push(compile(e, registry, segment)?);
        }
        Ok(Self { experiments })
    }

    /// How many experiments are running.
    pub fn len(&self) -> usize {
        self.experiments.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.experiments.is_empty()
    }

    /// Writes to `out` (cleared first) the variation of `user_id` in every running experiment
    /// they are in, in key order; `attributes` are their properties (`channel`, `city`) for
    /// the property filters.
    pub fn assign<'a>(&'a self, user_id: &str, attributes: &[(&str, &str)], out: &mut Vec<Assignment<'a>>) {
        out.clear();
        if user_id.is_empty() {
            return;
        }
        for e in &self.experiments {
            if !e.eligible(user_id, attributes) {
                continue;
            }
            let n = bucket_of_parts(&[&e.key], user_id, HashVersion::V2);
            if let Some(i) = choose_variation(n, &e.ranges) {
                out.push(Assignment { experiment: &e.key, variation: &e.variations[i], variation_index: i });
            }
        }
    }
}

fn compile(e: &Experiment, registry: &Registry, segment: Option<Arc<Members>>) -> Result<Compiled, BookError> {
    let def = &e.definition;
    let filters = (def.targeting.filters.iter().enumerate())
        .map(|(i, f)| PropertyFilter::parse(f, registry, &format!("{}: targeting.filters[{i}]", def.key)))
        .collect::<Result<Vec<_>, _>>()?;
    let weights = def.weights();
    let ranges =
        bucket_ranges(weights.len(), def.traffic_share, Some(&weights)).map_err(|e| BookError::field("variations", e.to_string()))?;
    Ok(Compiled {
        key: def.key.clone(),
        variations: def.variations.iter().map(|v| v.key.clone()).collect(),
        ranges,
        layer: def.layer.as_ref().map(|l| (l.name.clone(), l.start, l.end)),
        filters,
        segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::{ExperimentSplit, assign_variation};
    use crate::definition::{AnalysisSettings, ExperimentDef, LayerSlot, Targeting, VariationDef};

    fn def(key: &str) -> ExperimentDef {
        ExperimentDef {
            key: key.into(),
            description: String::new(),
            variations: vec![VariationDef { key: "control".into(), weight: 0.5 }, VariationDef { key: "treatment".into(), weight: 0.5 }],
            traffic_share: 1.0,
            targeting: Targeting::default(),
            layer: None,
            metrics: Vec::new(),
            analysis: AnalysisSettings::default(),
        }
    }

    fn book_with(defs: Vec<ExperimentDef>, segments: &[&str]) -> (tempfile::TempDir, ExperimentBook) {
        let dir = tempfile::tempdir().unwrap();
        let mut book = ExperimentBook::load(dir.path()).unwrap();
        for d in defs {
            let key = d.key.clone();
            book.define(d, &Registry::builtin(), segments, "t").unwrap();
            book.start(&key, 1, "t").unwrap();
        }
        (dir, book)
    }

    #[test]
    fn assignments_equal_growthbooks_and_survive_a_stop_and_restart() {
        let (_dir, mut book) = book_with(vec![def("checkout")], &[]);
        let registry = Registry::builtin();
        let before = Assigner::new(&book, &registry, |_| None).unwrap();
        let split = ExperimentSplit {
            key: "checkout",
            seed: None,
            variations: 2,
            weights: Some(&[0.5, 0.5][..]),
            coverage: 1.0,
            hash_version: HashVersion::V2,
        };
        let mut out = Vec::new();
        let users: Vec<String> = (0..2_000).map(|i| format!("u{i}")).collect();
        let first: Vec<usize> = users
            .iter()
            .map(|u| {
                before.assign(u, &[], &mut out);
                assert_eq!(Some(out[0].variation_index), assign_variation(&split, u).unwrap());
                out[0].variation_index
            })
            .collect();
        book.stop("checkout", 2, "t").unwrap();
        let stopped = Assigner::new(&book, &registry, |_| None).unwrap();
        stopped.assign("u1", &[], &mut out);
        assert!(out.is_empty(), "a stopped experiment assigns nobody");
        book.start("checkout", 3, "t").unwrap();
        let after = Assigner::new(&book, &registry, |_| None).unwrap();
        for (u, v) in users.iter().zip(&first) {
            after.assign(u, &[], &mut out);
            assert_eq!(out[0].variation_index, *v, "{u} moved");
        }
    }

    #[test]
    fn targeting_needs_the_segment_and_the_properties() {
        let mut d = def("vip-offer");
        d.targeting = Targeting { segment: Some("vips".into()), filters: vec!["user.channel = douyin".into()] };
        let (_dir, book) = book_with(vec![d], &["vips"]);
        let assigner = Assigner::new(&book, &Registry::builtin(), |name| {
            assert_eq!(name, "vips");
            Some(Members::new(vec!["u2".into(), "u1".into()]))
        })
        .unwrap();
        let mut out = Vec::new();
        assigner.assign("u1", &[("channel", "douyin")], &mut out);
        assert_eq!(out.len(), 1);
        assigner.assign("u1", &[("channel", "wechat")], &mut out);
        assert!(out.is_empty());
        assigner.assign("u1", &[], &mut out);
        assert!(out.is_empty(), "a property not given does not pass");
        assigner.assign("u3", &[("channel", "douyin")], &mut out);
        assert!(out.is_empty(), "not a member");
    }

    #[test]
    fn experiments_in_one_layer_never_share_a_user() {
        let mut a = def("a");
        a.layer = Some(LayerSlot { name: "home".into(), start: 0.0, end: 0.3 });
        let mut b = def("b");
        b.layer = Some(LayerSlot { name: "home".into(), start: 0.3, end: 1.0 });
        let (_dir, book) = book_with(vec![a, b], &[]);
        let assigner = Assigner::new(&book, &Registry::builtin(), |_| None).unwrap();
        let mut out = Vec::new();
        let mut in_a = 0;
        for i in 0..10_000 {
            assigner.assign(&format!("user-{i}"), &[], &mut out);
            assert_eq!(out.len(), 1, "each user is in exactly one of the layer's experiments");
            in_a += usize::from(out[0].experiment == "a");
        }
        assert!((2_700..=3_300).contains(&in_a), "{in_a}");
    }

    #[test]
    fn traffic_share_leaves_users_out() {
        let mut d = def("half");
        d.traffic_share = 0.5;
        let (_dir, book) = book_with(vec![d], &[]);
        let assigner = Assigner::new(&book, &Registry::builtin(), |_| None).unwrap();
        let mut out = Vec::new();
        let entered = (0..10_000)
            .filter(|i| {
                assigner.assign(&format!("u{i}"), &[], &mut out);
                !out.is_empty()
            })
            .count();
        assert!((4_700..=5_300).contains(&entered), "{entered}");
    }
}
