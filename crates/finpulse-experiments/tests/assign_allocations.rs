//! Assignment allocates nothing per call once the caller's vector has room: counted by a global
//! allocator over thousands of calls across experiments with layers, filters and a segment.

use finpulse_core::Registry;
use finpulse_experiments::definition::{AnalysisSettings, ExperimentDef, LayerSlot, Targeting, VariationDef};
use finpulse_experiments::{Assigner, ExperimentBook, Members};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn def(key: &str, layer: Option<(f64, f64)>, targeting: Targeting) -> ExperimentDef {
    ExperimentDef {
        key: key.into(),
        description: String::new(),
        variations: vec![
            VariationDef { key: "control".into(), weight: 0.34 },
            VariationDef { key: "a".into(), weight: 0.33 },
            VariationDef { key: "b".into(), weight: 0.33 },
        ],
        traffic_share: 0.9,
        targeting,
        layer: layer.map(|(start, end)| LayerSlot { name: "home".into(), start, end }),
        metrics: Vec::new(),
        analysis: AnalysisSettings::default(),
    }
}

#[test]
fn assigning_allocates_nothing_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin();
    let mut book = ExperimentBook::load(dir.path()).unwrap();
    let filtered = Targeting { segment: None, filters: vec!["user.channel in douyin, wechat".into(), "user.city != 北京".into()] };
    let segmented = Targeting { segment: Some("vips".into()), filters: Vec::new() };
    for d in [def("plain", None, Targeting::default()), def("left", Some((0.0, 0.5)), filtered), def("right", Some((0.5, 1.0)), segmented)]
    {
        let key = d.key.clone();
        book.define(d, &registry, &["vips"], "t").unwrap();
        book.start(&key, 1, "t").unwrap();
    }
    let assigner = Assigner::new(&book, &registry, |_| Some(Members::new((0..1_000).map(|i| format!("user-{i}")).collect()))).unwrap();
    let users: Vec<String> = (0..5_000).map(|i| format!("user-{i}")).collect();
    let attributes = [("channel", "douyin"), ("city", "上海")];
    let mut out = Vec::with_capacity(assigner.len());
    let mut assigned = 0;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for user in &users {
        assigner.assign(user, &attributes, &mut out);
        assigned += out.len();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "{allocations} allocations in {} calls", users.len());
    // Every call did real work: about 90% of users are in `plain`, 45% in `left`, 9% in `right`.
    assert!(assigned > 6_500, "{assigned}");
}
