//! Gradient-boosted decision trees for binary classification, histogram-based and grown leaf by
//! leaf, in the manner LightGBM made standard: each feature is cut into at most
//! [`GbdtParams::bins_max`] bins once; a tree's split search then reads per-bin sums of gradients
//! and hessians instead of rows, and a child's histogram is its parent's minus its sibling's.
//!
//! - Missing numbers get a bin of their own; every split learns which side they go to.
//! - Categorical features split by set: one category against the rest when there are few,
//!   otherwise categories ordered by their gradient ratio and cut along that order.
//! - Early stopping watches the log loss on a held-out validation slice and keeps the best round.
//! - Every node records its own value, so a prediction decomposes into per-feature contributions
//!   along its path (the "top reasons" a risk analyst reads).

use crate::metrics;
use crate::table::{MISSING_CODE, Table, Values};
use serde::{Deserialize, Serialize};

/// Values sampled per feature to place bin edges.
const BIN_SAMPLE_ROWS_MAX: usize = 200_000;
/// Categorical features with at most this many categories split one-against-rest.
const ONE_HOT_CATEGORIES_MAX: usize = 4;
/// Most categories a sorted categorical split puts on one side.
const CATEGORY_SET_MAX: usize = 32;
/// Added to a category's hessian when ordering categories, so rare ones do not lead.
const CATEGORY_SMOOTHING: f64 = 10.0;
/// Extra L2 regularisation on sorted categorical splits.
const CATEGORY_L2: f64 = 10.0;
/// Rows × features below which histograms are built on one thread.
const PARALLEL_CELLS_MIN: usize = 200_000;
/// A split must gain at least this much.
const GAIN_MIN: f64 = 1e-10;
/// Hessians are floored here so a confident row still carries a little weight.
const HESSIAN_MIN: f64 = 1e-16;

/// Training settings. Defaults follow LightGBM's, plus early stopping.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GbdtParams {
    /// Most boosting rounds.
    pub rounds_max: usize,
    /// Shrinkage applied to every tree.
    pub learning_rate: f64,
    /// Most leaves per tree.
    pub leaves_max: usize,
    /// Deepest a leaf may be; `None` for no limit.
    pub depth_max: Option<usize>,
    /// Fewest training rows in a leaf.
    pub leaf_rows_min: usize,
    /// Smallest hessian sum in a leaf.
    pub leaf_hessian_min: f64,
    /// L2 regularisation on leaf values.
    pub l2: f64,
    /// Most bins per feature (at most 255: one more is kept for missing values).
    pub bins_max: usize,
    /// Stop after this many rounds without a better validation loss; 0 turns early stopping off.
    pub early_stopping_rounds: usize,
    /// Share of the rows held out for early stopping.
    pub valid_fraction: f64,
    /// Seed for the validation split.
    pub seed: u64,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            rounds_max: 500,
            learning_rate: 0.1,
            leaves_max: 31,
            depth_max: None,
            leaf_rows_min: 20,
            leaf_hessian_min: 1e-3,
            l2: 0.0,
            bins_max: 255,
            early_stopping_rounds: 20,
            valid_fraction: 0.1,
            seed: 42,
            threads: 0,
        }
    }
}

/// Why training could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GbdtError {
    /// A setting out of range.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// Labels and rows disagree.
    #[error("{labels} labels for {rows} rows")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Table rows.
        rows: usize,
    },
    /// The validation marks and rows disagree.
    #[error("{marks} validation marks for {rows} rows")]
    ValidationMarks {
        /// Marks given.
        marks: usize,
        /// Table rows.
        rows: usize,
    },
    /// Too few rows to hold out a validation slice with both classes.
    #[error(
        "the validation slice ({valid} rows) or the training rows ({train}) lack one of the classes; use more rows or a larger --valid-fraction"
    )]
    Split {
        /// Training rows.
        train: usize,
        /// Validation rows.
        valid: usize,
    },
}

/// How one feature's values map to bins.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BinMap {
    /// Bin `b` holds values up to `uppers[b]`; bin `uppers.len()` holds missing values.
    Numeric {
        /// Upper edges, ascending; the last is +∞ (stored as `f64::MAX`).
        #[serde(with = "crate::float_text::many")]
        uppers: Vec<f64>,
    },
    /// Bin per kept category code, then one bin for the rest, then one for missing.
    Categorical {
        /// Bin of each category code.
        bin_of_code: Vec<u8>,
        /// Bins used by categories.
        categories: u8,
    },
}

impl BinMap {
    /// Bins this feature uses, the missing bin included.
    fn bins(&self) -> usize {
        match self {
            Self::Numeric { uppers } => uppers.len() + 1,
            Self::Categorical { categories, .. } => *categories as usize + 2,
        }
    }

    pub(crate) fn numeric_bin(uppers: &[f64], x: f64) -> u8 {
        if x.is_nan() {
            return uppers.len() as u8;
        }
        // Bins are at most 255 (checked when the map is built), so the index fits.
        uppers.partition_point(|&u| u < x) as u8
    }

    fn category_bin(bin_of_code: &[u8], categories: u8, code: u32) -> u8 {
        if code == MISSING_CODE { categories + 1 } else { bin_of_code.get(code as usize).copied().unwrap_or(categories) }
    }

    /// Bins one column.
    fn apply(&self, values: &Values) -> Vec<u8> {
        match (self, values) {
            (Self::Numeric { uppers }, Values::Numeric(v)) => v.iter().map(|&x| Self::numeric_bin(uppers, x)).collect(),
            (Self::Categorical { bin_of_code, categories }, Values::Categorical { codes, .. }) => {
                codes.iter().map(|&c| Self::category_bin(bin_of_code, *categories, c)).collect()
            }
            // The model's schema fixed each column's type when the table was read.
            (Self::Numeric { uppers }, Values::Categorical { codes, .. }) => vec![uppers.len() as u8; codes.len()],
            (Self::Categorical { categories, .. }, Values::Numeric(v)) => vec![categories + 1; v.len()],
        }
    }

    fn build(values: &Values, bins_max: usize) -> Self {
        match values {
            Values::Numeric(v) => {
                let stride = (v.len() / BIN_SAMPLE_ROWS_MAX).max(1);
                let mut sample: Vec<f64> = v.iter().step_by(stride).copied().filter(|x| !x.is_nan()).collect();
                sample.sort_unstable_by(f64::total_cmp);
                let mut distinct: Vec<(f64, usize)> = Vec::new();
                for x in sample {
                    match distinct.last_mut() {
                        Some((last, n)) if *last == x => *n += 1,
                        _ => distinct.push((x, 1)),
                    }
                }
                let mut uppers = Vec::new();
                let mut remaining: usize = distinct.iter().map(|d| d.1).sum();
                let mut in_bin = 0usize;
                for (i, &(x, n)) in distinct.iter().enumerate() {
                    in_bin += n;
                    remaining -= n;
                    let Some(&(next, _)) = distinct.get(i + 1) else { break };
                    let bins_left = bins_max.saturating_sub(uppers.len() + 1).max(1);
                    let target = (remaining + in_bin) / (bins_left + 1);
                    let close = distinct.len() <= bins_max || in_bin >= target.max(1);
                    if close && uppers.len() + 1 < bins_max {
                        uppers.push(x + (next - x) / 2.0);
                        in_bin = 0;
                    }
                }
                uppers.push(f64::MAX);
                Self::Numeric { uppers }
            }
            Values::Categorical { codes, levels } => {
                let mut counts = vec![0usize; levels.len()];
                for &c in codes.iter().filter(|&&c| c != MISSING_CODE) {
                    counts[c as usize] += 1;
                }
                let mut by_count: Vec<usize> = (0..levels.len()).filter(|&c| counts[c] > 0).collect();
                by_count.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
                by_count.truncate(bins_max - 1);
                let categories = by_count.len() as u8;
                let mut bin_of_code = vec![categories; levels.len()];
                for (bin, &code) in by_count.iter().enumerate() {
                    bin_of_code[code] = bin as u8;
                }
                Self::Categorical { bin_of_code, categories }
            }
        }
    }
}

/// A split or a leaf, as a child reference: `>= 0` a node, `< 0` the leaf `!child`.
type Child = i32;

/// One internal node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Node {
    /// Feature index.
    pub feature: u32,
    /// Bins that go left (a 256-bit set); missing values are the feature's last bin.
    pub left_bins: [u64; 4],
    /// For numeric features, the value at or below which rows go left (for reading).
    pub threshold: Option<f64>,
    /// Left child.
    pub left: Child,
    /// Right child.
    pub right: Child,
    /// What this node would predict as a leaf (its share of the raw score).
    #[serde(with = "crate::float_text::one")]
    pub value: f64,
    /// Split gain.
    #[serde(with = "crate::float_text::one")]
    pub gain: f64,
}

/// One tree: nodes (node 0 is the root) and leaf values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tree {
    /// Internal nodes; empty for a single-leaf tree.
    pub nodes: Vec<Node>,
    /// Leaf values, learning rate applied.
    #[serde(with = "crate::float_text::many")]
    pub leaves: Vec<f64>,
}

fn goes_left(set: &[u64; 4], bin: u8) -> bool {
    set[(bin >> 6) as usize] >> (bin & 63) & 1 == 1
}

impl Tree {
    fn leaf_of(&self, bins: &[Vec<u8>], row: usize) -> usize {
        self.leaf_by(|feature| bins[feature][row])
    }

    /// The leaf a row reaches, given its bin of each feature.
    pub(crate) fn leaf_by(&self, bin_of: impl Fn(usize) -> u8) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut at: Child = 0;
        while at >= 0 {
            let node = &self.nodes[at as usize];
            at = if goes_left(&node.left_bins, bin_of(node.feature as usize)) { node.left } else { node.right };
        }
        !at as usize
    }
}

/// A trained model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Gbdt {
    /// Bin maps, one per feature of the training table.
    pub bins: Vec<BinMap>,
    /// Raw score before any tree: the training log-odds.
    #[serde(with = "crate::float_text::one")]
    pub init_score: f64,
    /// The trees, best round last.
    pub trees: Vec<Tree>,
}

/// What training did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GbdtReport {
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows held out for early stopping.
    pub valid_rows: usize,
    /// Rounds run.
    pub rounds_run: usize,
    /// Rounds kept (the best validation loss).
    pub rounds_kept: usize,
    /// Validation log loss at the best round.
    pub valid_log_loss: Option<f64>,
    /// Validation AUC at the best round.
    pub valid_auc: Option<f64>,
    /// Summed split gain per feature, in feature order.
    pub gain_by_feature: Vec<f64>,
}

#[derive(Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: f64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
    fn minus(&self, o: &Sums) -> Sums {
        Sums { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

#[derive(Clone, Copy)]
struct Candidate {
    feature: usize,
    left_bins: [u64; 4],
    threshold: Option<f64>,
    gain: f64,
    left: Sums,
}

struct Leaf {
    start: usize,
    len: usize,
    sums: Sums,
    hist: Vec<Sums>,
    best: Option<Candidate>,
    depth: usize,
    /// The node whose child this leaf is, and which side.
    parent: Option<(usize, bool)>,
}

/// The binned training data and the settings, shared by every tree.
struct Grower<'a> {
    bins: &'a [Vec<u8>],
    /// The same bins row by row (`row * features + feature`): a histogram pass reads one row's
    /// bins from one place instead of touching every column at a scattered index.
    row_bins: &'a [u8],
    maps: &'a [BinMap],
    offsets: Vec<usize>,
    params: &'a GbdtParams,
    threads: usize,
}

fn set_bit(set: &mut [u64; 4], bin: usize) {
    set[bin >> 6] |= 1 << (bin & 63);
}

impl Grower<'_> {
    fn score(&self, s: &Sums, extra_l2: f64) -> f64 {
        s.g * s.g / (s.h + self.params.l2 + extra_l2)
    }

    fn leaf_value(&self, s: &Sums) -> f64 {
        -s.g / (s.h + self.params.l2) * self.params.learning_rate
    }

    fn allowed(&self, s: &Sums) -> bool {
        s.n >= self.params.leaf_rows_min as f64 && s.h >= self.params.leaf_hessian_min
    }

    /// Per-bin sums over the rows `rows`, whose gradients are `g` and hessians `h` (same order).
    /// Rows are read row-wise; large leaves are split across threads, each filling its own
    /// histogram, then summed.
    fn histogram(&self, rows: &[u32], g: &[f64], h: &[f64]) -> Vec<Sums> {
        let total_bins = *self.offsets.last().unwrap_or(&0);
        let features = self.maps.len();
        let offsets = &self.offsets[..features];
        let fill = |rows: &[u32], g: &[f64], h: &[f64]| {
            let mut hist = vec![Sums::default(); total_bins];
            for (k, &r) in rows.iter().enumerate() {
                // A leaf's rows are scattered over the table: ask for a later row's bins early,
                // so they are in cache by the time they are summed.
                if let Some(&ahead) = rows.get(k + PREFETCH_ROWS_AHEAD) {
                    prefetch(self.row_bins.as_ptr().wrapping_add(ahead as usize * features));
                }
                let row = &self.row_bins[r as usize * features..(r as usize + 1) * features];
                let (gk, hk) = (g[k], h[k]);
                for (&offset, &bin) in offsets.iter().zip(row) {
                    let e = &mut hist[offset + bin as usize];
                    e.g += gk;
                    e.h += hk;
                    e.n += 1.0;
                }
            }
            hist
        };
        if self.threads <= 1 || rows.len() * features < PARALLEL_CELLS_MIN {
            return fill(rows, g, h);
        }
        let per = rows.len().div_ceil(self.threads);
        let parts: Vec<Vec<Sums>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                rows.chunks(per).zip(g.chunks(per)).zip(h.chunks(per)).map(|((r, g), h)| s.spawn(move || fill(r, g, h))).collect();
            handles.into_iter().map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut parts = parts.into_iter();
        let mut hist = parts.next().unwrap_or_else(|| vec![Sums::default(); total_bins]);
        for part in parts {
            for (a, b) in hist.iter_mut().zip(&part) {
                a.add(b);
            }
        }
        hist
    }

    fn best_split(&self, leaf: &Leaf) -> Option<Candidate> {
        if leaf.len < 2 * self.params.leaf_rows_min || self.params.depth_max.is_some_and(|d| leaf.depth >= d) {
            return None;
        }
        let mut best: Option<Candidate> = None;
        for (f, map) in self.maps.iter().enumerate() {
            let hist = &leaf.hist[self.offsets[f]..self.offsets[f + 1]];
            let found = match map {
                BinMap::Numeric { uppers } => self.numeric_split(f, hist, &leaf.sums, uppers),
                BinMap::Categorical { .. } => self.categorical_split(f, hist, &leaf.sums),
            };
            if let Some(c) = found
                && best.is_none_or(|b| c.gain > b.gain)
            {
                best = Some(c);
            }
        }
        best
    }

    fn numeric_split(&self, feature: usize, hist: &[Sums], total: &Sums, uppers: &[f64]) -> Option<Candidate> {
        let missing_bin = hist.len() - 1;
        let missing = hist[missing_bin];
        let parent = self.score(total, 0.0);
        let mut best: Option<(usize, bool, f64, Sums)> = None;
        for missing_left in [false, true] {
            if missing_left && missing.n == 0.0 {
                continue;
            }
            let mut left = if missing_left { missing } else { Sums::default() };
            for (t, bin) in hist[..missing_bin.saturating_sub(1)].iter().enumerate() {
                left.add(bin);
                if bin.n == 0.0 || !self.allowed(&left) {
                    continue;
                }
                let right = total.minus(&left);
                if !self.allowed(&right) {
                    break;
                }
                let gain = self.score(&left, 0.0) + self.score(&right, 0.0) - parent;
                if gain > GAIN_MIN && best.is_none_or(|b| gain > b.2) {
                    best = Some((t, missing_left, gain, left));
                }
            }
        }
        let (t, missing_left, gain, left) = best?;
        let mut set = [0u64; 4];
        for b in 0..=t {
            set_bit(&mut set, b);
        }
        // Missing values unseen in training follow the larger side.
        if missing_left || (missing.n == 0.0 && left.n >= total.n - left.n) {
            set_bit(&mut set, missing_bin);
        }
        Some(Candidate { feature, left_bins: set, threshold: Some(uppers[t]), gain, left })
    }

    fn categorical_split(&self, feature: usize, hist: &[Sums], total: &Sums) -> Option<Candidate> {
        let used: Vec<usize> = (0..hist.len()).filter(|&b| hist[b].n > 0.0).collect();
        if used.len() < 2 {
            return None;
        }
        let parent_plain = self.score(total, 0.0);
        let mut best: Option<(Vec<usize>, f64, Sums)> = None;
        if used.len() <= ONE_HOT_CATEGORIES_MAX {
            for &b in &used {
                let left = hist[b];
                let right = total.minus(&left);
                if !self.allowed(&left) || !self.allowed(&right) {
                    continue;
                }
                let gain = self.score(&left, 0.0) + self.score(&right, 0.0) - parent_plain;
                if gain > GAIN_MIN && best.as_ref().is_none_or(|b| gain > b.1) {
                    best = Some((vec![b], gain, left));
                }
            }
        } else {
            let mut order = used.clone();
            let ratio = |b: usize| hist[b].g / (hist[b].h + CATEGORY_SMOOTHING);
            order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
            let parent = self.score(total, CATEGORY_L2);
            let steps = CATEGORY_SET_MAX.min(order.len() - 1);
            for reversed in [false, true] {
                let mut left = Sums::default();
                let mut taken = Vec::new();
                for k in 0..steps {
                    let b = if reversed { order[order.len() - 1 - k] } else { order[k] };
                    left.add(&hist[b]);
                    taken.push(b);
                    if !self.allowed(&left) {
                        continue;
                    }
                    let right = total.minus(&left);
                    if !self.allowed(&right) {
                        break;
                    }
                    let gain = self.score(&left, CATEGORY_L2) + self.score(&right, CATEGORY_L2) - parent;
                    if gain > GAIN_MIN && best.as_ref().is_none_or(|b| gain > b.1) {
                        best = Some((taken.clone(), gain, left));
                    }
                }
            }
        }
        let (taken, gain, left) = best?;
        let mut set = [0u64; 4];
        for &b in &taken {
            set_bit(&mut set, b);
        }
        // Categories unseen here (other, missing, or absent from this leaf) follow the larger side.
        if left.n >= total.n - left.n {
            for b in (0..hist.len()).filter(|&b| hist[b].n == 0.0) {
                set_bit(&mut set, b);
            }
        }
        Some(Candidate { feature, left_bins: set, threshold: None, gain, left })
    }

    /// Grows one tree on the rows `rows` (reordered in place) and returns it with each row's leaf.
    fn grow(&self, rows: &mut [u32], g: &[f64], h: &[f64], gain_by_feature: &mut [f64]) -> (Tree, Vec<(usize, usize)>) {
        let gather = |rows: &[u32]| -> (Vec<f64>, Vec<f64>) {
            let (mut rg, mut rh) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
            for (k, &r) in rows.iter().enumerate() {
                if let Some(&ahead) = rows.get(k + PREFETCH_ROWS_AHEAD) {
                    prefetch(g.as_ptr().wrapping_add(ahead as usize).cast());
                    prefetch(h.as_ptr().wrapping_add(ahead as usize).cast());
                }
                rg.push(g[r as usize]);
                rh.push(h[r as usize]);
            }
            (rg, rh)
        };
        let (rg, rh) = gather(rows);
        let sums = Sums { g: rg.iter().sum(), h: rh.iter().sum(), n: rows.len() as f64 };
        let mut leaves =
            vec![Leaf { start: 0, len: rows.len(), sums, hist: self.histogram(rows, &rg, &rh), best: None, depth: 0, parent: None }];
        leaves[0].best = self.best_split(&leaves[0]);
        let mut nodes: Vec<Node> = Vec::new();
        let mut scratch: Vec<u32> = Vec::with_capacity(rows.len());
        while leaves.len() < self.params.leaves_max {
            let Some((id, split)) =
                leaves.iter().enumerate().filter_map(|(i, l)| l.best.map(|b| (i, b))).max_by(|a, b| a.1.gain.total_cmp(&b.1.gain))
            else {
                break;
            };
            gain_by_feature[split.feature] += split.gain;
            let (start, len) = (leaves[id].start, leaves[id].len);
            // Partition the leaf's rows: left ones first, stable on both sides.
            let col = &self.bins[split.feature];
            let slice = &mut rows[start..start + len];
            scratch.clear();
            let mut kept = 0;
            for i in 0..slice.len() {
                let r = slice[i];
                if goes_left(&split.left_bins, col[r as usize]) {
                    slice[kept] = r;
                    kept += 1;
                } else {
                    scratch.push(r);
                }
            }
            slice[kept..].copy_from_slice(&scratch);
            let right_sums = leaves[id].sums.minus(&split.left);
            let node_index = nodes.len();
            let new_id = leaves.len();
            nodes.push(Node {
                feature: split.feature as u32,
                left_bins: split.left_bins,
                threshold: split.threshold,
                left: !(id as i32),
                right: !(new_id as i32),
                value: self.leaf_value(&leaves[id].sums),
                gain: split.gain,
            });
            if let Some((parent, is_left)) = leaves[id].parent {
                if is_left {
                    nodes[parent].left = node_index as i32;
                } else {
                    nodes[parent].right = node_index as i32;
                }
            }
            // The smaller child is summed from rows; the larger is the parent minus it.
            let depth = leaves[id].depth + 1;
            let left_is_smaller = kept <= len - kept;
            let (small_start, small_len) = if left_is_smaller { (start, kept) } else { (start + kept, len - kept) };
            let (sg, sh) = gather(&rows[small_start..small_start + small_len]);
            let small_hist = self.histogram(&rows[small_start..small_start + small_len], &sg, &sh);
            let parent_hist = std::mem::take(&mut leaves[id].hist);
            let large_hist: Vec<Sums> = parent_hist.iter().zip(&small_hist).map(|(p, s)| p.minus(s)).collect();
            let (left_hist, right_hist) = if left_is_smaller { (small_hist, large_hist) } else { (large_hist, small_hist) };
            leaves[id] = Leaf { start, len: kept, sums: split.left, hist: left_hist, best: None, depth, parent: Some((node_index, true)) };
            leaves.push(Leaf {
                start: start + kept,
                len: len - kept,
                sums: right_sums,
                hist: right_hist,
                best: None,
                depth,
                parent: Some((node_index, false)),
            });
            leaves[id].best = self.best_split(&leaves[id]);
            leaves[new_id].best = self.best_split(&leaves[new_id]);
        }
        let values = leaves.iter().map(|l| self.leaf_value(&l.sums)).collect();
        let spans = leaves.iter().map(|l| (l.start, l.len)).collect();
        (Tree { nodes, leaves: values }, spans)
    }
}

/// How many rows ahead a histogram pass asks for a row's bins (and gradients) to be loaded.
pub const PREFETCH_ROWS_AHEAD: usize = 16;

/// Asks the CPU to bring the cache line at `p` in; a hint with no effect on results (and none
/// at all off x86-64). `p` may point anywhere: nothing is read through it.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults or reads memory into the program; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A deterministic hash of (seed, row) in [0, 1), for the validation split.
fn unit_hash(seed: u64, row: u64) -> f64 {
    let mut z = seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn thread_count(params: &GbdtParams) -> usize {
    if params.threads > 0 { params.threads } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
}

impl Gbdt {
    /// Trains on `table` with 0/1 `labels`, holding out a random `valid_fraction` of the rows
    /// for early stopping.
    pub fn fit(table: &Table, labels: &[f64], params: &GbdtParams) -> Result<(Self, GbdtReport), GbdtError> {
        check_params(params)?;
        if labels.len() != table.rows {
            return Err(GbdtError::LabelCount { labels: labels.len(), rows: table.rows });
        }
        let holdout = params.early_stopping_rounds > 0 && params.valid_fraction > 0.0;
        let is_valid: Vec<bool> = (0..table.rows as u64).map(|r| holdout && unit_hash(params.seed, r) < params.valid_fraction).collect();
        let valid = is_valid.iter().filter(|&&v| v).count();
        if holdout && valid == 0 {
            return Err(GbdtError::Split { train: table.rows, valid });
        }
        Self::fit_with_validation(table, labels, &is_valid, params)
    }

    /// Trains on `table` with 0/1 `labels`, early stopping on the rows marked in `is_valid`
    /// (a time-based split, say); with no row marked, or early stopping off, every row trains.
    pub fn fit_with_validation(
        table: &Table,
        labels: &[f64],
        is_valid: &[bool],
        params: &GbdtParams,
    ) -> Result<(Self, GbdtReport), GbdtError> {
        check_params(params)?;
        if labels.len() != table.rows {
            return Err(GbdtError::LabelCount { labels: labels.len(), rows: table.rows });
        }
        if is_valid.len() != table.rows {
            return Err(GbdtError::ValidationMarks { marks: is_valid.len(), rows: table.rows });
        }
        let maps: Vec<BinMap> = table.columns.iter().map(|c| BinMap::build(&c.values, params.bins_max)).collect();
        let bins: Vec<Vec<u8>> = maps.iter().zip(&table.columns).map(|(m, c)| m.apply(&c.values)).collect();
        let mut offsets = vec![0];
        for m in &maps {
            offsets.push(offsets.last().copied().unwrap_or(0) + m.bins());
        }

        let holdout = params.early_stopping_rounds > 0 && is_valid.iter().any(|&v| v);
        let (mut train, mut valid): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for r in 0..table.rows as u32 {
            if holdout && is_valid[r as usize] { valid.push(r) } else { train.push(r) }
        }
        let has_both = |rows: &[u32]| {
            let p = rows.iter().filter(|&&r| labels[r as usize] > 0.5).count();
            p > 0 && p < rows.len()
        };
        if !has_both(&train) || (holdout && !has_both(&valid)) {
            return Err(GbdtError::Split { train: train.len(), valid: valid.len() });
        }

        let positive = train.iter().map(|&r| labels[r as usize]).sum::<f64>() / train.len() as f64;
        let init_score = (positive / (1.0 - positive)).ln();
        let train_labels: Vec<f64> = train.iter().map(|&r| labels[r as usize]).collect();
        let valid_labels: Vec<f64> = valid.iter().map(|&r| labels[r as usize]).collect();
        // Training rows are addressed by position in `train` inside the grower, so bins are
        // re-indexed to the training rows once.
        let train_bins: Vec<Vec<u8>> = bins.iter().map(|col| train.iter().map(|&r| col[r as usize]).collect()).collect();
        let row_bins: Vec<u8> = (0..train.len()).flat_map(|r| train_bins.iter().map(move |col| col[r])).collect();
        let grower = Grower { bins: &train_bins, row_bins: &row_bins, maps: &maps, offsets, params, threads: thread_count(params) };

        let mut raw = vec![init_score; train.len()];
        let mut valid_raw = vec![init_score; valid.len()];
        let mut g = vec![0.0; train.len()];
        let mut h = vec![0.0; train.len()];
        let mut order: Vec<u32> = (0..train.len() as u32).collect();
        let mut trees = Vec::new();
        let mut gain_by_feature = vec![0.0; maps.len()];
        let mut gains_kept = gain_by_feature.clone();
        let (mut best_loss, mut best_round, mut best_auc) = (f64::INFINITY, 0usize, None);
        let mut rounds_run = 0;
        for round in 0..params.rounds_max {
            rounds_run = round + 1;
            for i in 0..train.len() {
                let p = sigmoid(raw[i]);
                g[i] = p - train_labels[i];
                h[i] = (p * (1.0 - p)).max(HESSIAN_MIN);
            }
            let (tree, spans) = grower.grow(&mut order, &g, &h, &mut gain_by_feature);
            for (leaf, &(start, len)) in spans.iter().enumerate() {
                for &r in &order[start..start + len] {
                    raw[r as usize] += tree.leaves[leaf];
                }
            }
            for (k, &r) in valid.iter().enumerate() {
                valid_raw[k] += tree.leaves[tree.leaf_of(&bins, r as usize)];
            }
            let single_leaf = tree.nodes.is_empty();
            trees.push(tree);
            if holdout {
                let probabilities: Vec<f64> = valid_raw.iter().map(|&x| sigmoid(x)).collect();
                let loss = metrics::log_loss(&probabilities, &valid_labels);
                if loss < best_loss {
                    (best_loss, best_round, best_auc) = (loss, round + 1, metrics::auc(&probabilities, &valid_labels));
                    gains_kept.clone_from(&gain_by_feature);
                } else if round + 1 - best_round >= params.early_stopping_rounds {
                    break;
                }
            } else {
                best_round = round + 1;
                gains_kept.clone_from(&gain_by_feature);
            }
            if single_leaf {
                break;
            }
        }
        trees.truncate(best_round);
        let report = GbdtReport {
            train_rows: train.len(),
            valid_rows: valid.len(),
            rounds_run,
            rounds_kept: trees.len(),
            valid_log_loss: holdout.then_some(best_loss),
            valid_auc: best_auc,
            gain_by_feature: gains_kept,
        };
        Ok((Self { bins: maps, init_score, trees }, report))
    }

    /// Bins a table read under this model's schema.
    fn bin(&self, table: &Table) -> Vec<Vec<u8>> {
        self.bins.iter().zip(&table.columns).map(|(m, c)| m.apply(&c.values)).collect()
    }

    /// Raw scores (log-odds), one per row, on every core.
    pub fn predict_raw(&self, table: &Table) -> Vec<f64> {
        let bins = self.bin(table);
        let mut out = vec![self.init_score; table.rows];
        let threads = thread_count(&GbdtParams::default()).min(table.rows.div_ceil(10_000).max(1));
        let chunk = table.rows.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (c, part) in out.chunks_mut(chunk).enumerate() {
                let bins = &bins;
                s.spawn(move || {
                    for (k, score) in part.iter_mut().enumerate() {
                        let row = c * chunk + k;
                        *score += self.trees.iter().map(|t| t.leaves[t.leaf_of(bins, row)]).sum::<f64>();
                    }
                });
            }
        });
        out
    }

    /// Probabilities, one per row.
    pub fn predict(&self, table: &Table) -> Vec<f64> {
        self.predict_raw(table).into_iter().map(sigmoid).collect()
    }

    /// Per-feature contributions to each row's raw score (the change in node value along the
    /// row's path, summed per feature); with the initial score they add up to the raw score.
    /// One list per row, in row order; the table is binned once.
    pub fn contributions(&self, table: &Table) -> Vec<Vec<f64>> {
        let bins = self.bin(table);
        (0..table.rows).map(|row| self.contributions_binned(&bins, row)).collect()
    }

    fn contributions_binned(&self, bins: &[Vec<u8>], row: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.bins.len()];
        self.contributions_by(|feature| bins[feature][row], &mut out);
        out
    }

    /// Adds each feature's contribution along a row's paths to `out`, given the row's bin of
    /// each feature.
    pub(crate) fn contributions_by(&self, bin_of: impl Fn(usize) -> u8, out: &mut [f64]) {
        for tree in &self.trees {
            let mut at: Child = 0;
            if tree.nodes.is_empty() {
                continue;
            }
            while at >= 0 {
                let node = &tree.nodes[at as usize];
                let next = if goes_left(&node.left_bins, bin_of(node.feature as usize)) { node.left } else { node.right };
                let next_value = if next >= 0 { tree.nodes[next as usize].value } else { tree.leaves[!next as usize] };
                out[node.feature as usize] += next_value - node.value;
                at = next;
            }
        }
    }

    /// The first tree's root value summed over trees: the part of every raw score not owed to
    /// any feature.
    pub fn base_value(&self) -> f64 {
        self.init_score + self.trees.iter().map(|t| t.nodes.first().map_or(t.leaves[0], |n| n.value)).sum::<f64>()
    }
}

fn check_params(p: &GbdtParams) -> Result<(), GbdtError> {
    let bad = |what: &str| Err(GbdtError::Setting(what.to_string()));
    if p.rounds_max == 0 {
        return bad("rounds must be at least 1");
    }
    if !(p.learning_rate > 0.0 && p.learning_rate <= 1.0) {
        return bad("learning rate must be in (0, 1]");
    }
    if p.leaves_max < 2 {
        return bad("leaves must be at least 2");
    }
    if !(2..=255).contains(&p.bins_max) {
        return bad("bins must be between 2 and 255");
    }
    if p.leaf_rows_min == 0 {
        return bad("rows per leaf must be at least 1");
    }
    if !(0.0..0.9).contains(&p.valid_fraction) {
        return bad("validation fraction must be in [0, 0.9)");
    }
    if p.l2 < 0.0 || !p.l2.is_finite() {
        return bad("l2 must be a finite number ≥ 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn table(columns: Vec<(&str, Values)>) -> Table {
        let rows = match &columns[0].1 {
            Values::Numeric(v) => v.len(),
            Values::Categorical { codes, .. } => codes.len(),
        };
        Table { columns: columns.into_iter().map(|(n, values)| Column { name: n.into(), values }).collect(), rows, ids: None }
    }

    fn lcg(state: &mut u64) -> f64 {
        *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn numeric_bins_respect_order_and_missing() {
        let map = BinMap::build(&Values::Numeric(vec![3.0, 1.0, 2.0, f64::NAN, 2.0]), 255);
        let BinMap::Numeric { uppers } = &map else { panic!() };
        assert_eq!(uppers, &[1.5, 2.5, f64::MAX]);
        assert_eq!(map.apply(&Values::Numeric(vec![0.0, 1.5, 1.6, 9.0, f64::NAN])), vec![0, 0, 1, 2, 3]);
        let many: Vec<f64> = (0..10_000).map(f64::from).collect();
        let BinMap::Numeric { uppers } = BinMap::build(&Values::Numeric(many), 16) else { panic!() };
        assert_eq!(uppers.len(), 16);
        assert!(uppers.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn learns_an_interaction_and_a_missing_value_rule() {
        // y = 1 when x > 0.5 and the plan is gold, or when z is missing.
        let mut seed = 7;
        let n = 4000;
        let (mut x, mut plan, mut z, mut y) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let xi = lcg(&mut seed);
            let pi = (lcg(&mut seed) * 3.0) as u32;
            let missing = lcg(&mut seed) < 0.1;
            x.push(xi);
            plan.push(pi);
            z.push(if missing { f64::NAN } else { lcg(&mut seed) });
            y.push(if (xi > 0.5 && pi == 0) || missing { 1.0 } else { 0.0 });
        }
        let t = table(vec![
            ("x", Values::Numeric(x)),
            ("plan", Values::Categorical { codes: plan, levels: vec!["gold".into(), "silver".into(), "basic".into()] }),
            ("z", Values::Numeric(z)),
        ]);
        let (model, report) = Gbdt::fit(&t, &y, &GbdtParams::default()).unwrap();
        let p = model.predict(&t);
        assert!(metrics::auc(&p, &y).unwrap() > 0.999, "auc {:?}", metrics::auc(&p, &y));
        assert!(report.rounds_kept >= 1 && report.rounds_kept <= report.rounds_run);
        assert!(report.valid_auc.unwrap() > 0.99);
        // Contributions and the base value add up to the raw score.
        let raw = model.predict_raw(&t);
        let contributions = model.contributions(&t);
        for row in [0, 1, 2, 100] {
            let sum: f64 = contributions[row].iter().sum::<f64>() + model.base_value();
            assert!((sum - raw[row]).abs() < 1e-9, "row {row}: {sum} vs {}", raw[row]);
        }
        // The noise-free feature z only matters through its missingness, x and plan through the rule.
        assert!(report.gain_by_feature.iter().all(|&g| g > 0.0));
    }

    #[test]
    fn many_categories_split_by_their_gradient_order() {
        // Twelve categories; even ones are risky.
        let mut seed = 3;
        let n = 6000;
        let mut codes = vec![];
        let mut y = vec![];
        for _ in 0..n {
            let c = (lcg(&mut seed) * 12.0) as u32;
            codes.push(c);
            y.push(if c.is_multiple_of(2) == (lcg(&mut seed) < 0.9) { 1.0 } else { 0.0 });
        }
        let levels = (0..12).map(|i| format!("c{i}")).collect();
        let t = table(vec![("c", Values::Categorical { codes, levels })]);
        let (model, _) =
            Gbdt::fit(&t, &y, &GbdtParams { rounds_max: 1, leaves_max: 2, early_stopping_rounds: 0, ..Default::default() }).unwrap();
        let root = &model.trees[0].nodes[0];
        let left: Vec<bool> = (0..12u32)
            .map(|c| {
                goes_left(
                    &root.left_bins,
                    BinMap::category_bin(
                        match &model.bins[0] {
                            BinMap::Categorical { bin_of_code, .. } => bin_of_code,
                            BinMap::Numeric { .. } => unreachable!(),
                        },
                        12,
                        c,
                    ),
                )
            })
            .collect();
        assert!((0..12).all(|c| left[c] == left[0] ^ (c % 2 == 1)), "one side holds exactly the even categories: {left:?}");
    }

    #[test]
    fn early_stopping_keeps_the_best_round_on_noise() {
        let mut seed = 11;
        let n = 3000;
        let x: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
        let y: Vec<f64> = (0..n).map(|_| if lcg(&mut seed) < 0.3 { 1.0 } else { 0.0 }).collect();
        let t = table(vec![("x", Values::Numeric(x))]);
        let (model, report) = Gbdt::fit(&t, &y, &GbdtParams::default()).unwrap();
        assert!(report.rounds_run < 100, "pure noise should stop early, ran {}", report.rounds_run);
        assert_eq!(model.trees.len(), report.rounds_kept);
        assert_eq!(report.rounds_run - report.rounds_kept, 20);
    }

    #[test]
    fn bad_settings_and_unsplittable_data_are_refused() {
        let t = table(vec![("x", Values::Numeric(vec![1.0, 2.0]))]);
        let err = Gbdt::fit(&t, &[0.0, 1.0], &GbdtParams { learning_rate: 0.0, ..Default::default() }).unwrap_err();
        assert_eq!(err.to_string(), "invalid setting: learning rate must be in (0, 1]");
        assert!(matches!(Gbdt::fit(&t, &[0.0], &GbdtParams::default()), Err(GbdtError::LabelCount { .. })));
        assert!(matches!(Gbdt::fit(&t, &[0.0, 1.0], &GbdtParams::default()), Err(GbdtError::Split { .. })));
        let err = Gbdt::fit_with_validation(&t, &[0.0, 1.0], &[true], &GbdtParams::default()).unwrap_err();
        assert_eq!(err.to_string(), "1 validation marks for 2 rows");
    }
}
