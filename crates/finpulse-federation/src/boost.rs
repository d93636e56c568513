//! SecureBoost: vertical gradient-boosted trees (Cheng et al., 2019, as in FATE).
//!
//! The guest holds the label and the key. Per tree it encrypts every row's gradient, hessian and
//! a one, packed into one plaintext ([`pack`]), and sends them once. Per level it tells the host
//! which open node each row is in; the host returns, per node, feature and bin, the encrypted
//! sum of the packed values of the rows there; the guest decrypts, evaluates every split of its
//! own and the host's features, and tells the host which of its splits won (feature slot and
//! bin, never a threshold: the host keeps those). The host answers which of those nodes' rows go
//! left. Leaf values are the guest's. Gradients are fixed-point integers, so the sums are exact
//! and the trees equal [`train_central`]'s — the same grower with every feature local — on the
//! same bins, with the stand-in cipher or with Paillier.

use rayon::prelude::*;

use crate::FederationError;
use crate::cipher::{Cipher, CipherSuite, Decrypt};
use crate::fixed::Fixed;
use crate::job::{Algorithm, BoostParams, JobSpec, Role};
use crate::message::{Message, bit, pack_bits};
use crate::session::handshake;
use crate::table::{BINS_MAX, Bins, Table};
use crate::transport::Endpoint;

/// Scale of gradients and hessians.
pub const GH: Fixed = Fixed::new(20);
/// Rows a SecureBoost job may train on: each packed slot then holds its sums exactly.
pub const BOOST_ROWS_MAX: usize = 1 << 20;
/// Trees a job may grow, at most.
pub const TREES_MAX: usize = 10_000;
/// Depth of a tree, at most.
pub const DEPTH_MAX: usize = 16;
/// Bits of each of the three slots of a packed plaintext.
const SLOT_BITS: u32 = 42;
const SLOT_MASK: i128 = (1 << SLOT_BITS) - 1;
/// Added to each gradient so its slot stays non-negative (gradients are within ±1).
const G_OFFSET: i128 = 1 << GH.frac_bits;
/// Marks a row in no open node.
const NO_NODE: u32 = u32::MAX;

/// Sums of gradients, hessians (fixed-point) and rows over some rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Σ g, at scale [`GH`].
    pub g: i128,
    /// Σ h, at scale [`GH`].
    pub h: i128,
    /// Rows.
    pub rows: i128,
}

/// One row's gradient, hessian and a one in one plaintext of three 42-bit slots; sums of up to
/// [`BOOST_ROWS_MAX`] packed values unpack exactly.
pub fn pack(g_q: i128, h_q: i128) -> i128 {
    ((g_q + G_OFFSET) << (2 * SLOT_BITS)) | (h_q << SLOT_BITS) | 1
}

/// The sums a sum of packed values stands for.
pub fn unpack(packed: i128) -> Sums {
    let rows = packed & SLOT_MASK;
    let h = (packed >> SLOT_BITS) & SLOT_MASK;
    let g = (packed >> (2 * SLOT_BITS)) - rows * G_OFFSET;
    Sums { g, h, rows }
}

/// Features cut into bins, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct BinnedFeatures {
    /// Each feature's bins, fitted on training rows.
    pub bins: Vec<Bins>,
    /// Bin of each row, column by column.
    pub codes: Vec<Vec<u8>>,
}

impl BinnedFeatures {
    /// Fits bins on `table` (training rows) and codes it.
    pub fn fit(table: &Table, bins_max: usize) -> Self {
        let bins: Vec<Bins> = table.columns.par_iter().map(|c| Bins::fit(c, bins_max)).collect();
        Self::apply(table, bins)
    }

    /// Codes `table` (held-out rows) with bins from training.
    pub fn apply(table: &Table, bins: Vec<Bins>) -> Self {
        let codes = table.columns.iter().zip(&bins).map(|(c, b)| c.iter().map(|&v| b.bin(v)).collect()).collect();
        Self { bins, codes }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.codes.first().map_or(0, Vec::len)
    }

    /// The features of `self` followed by those of `other` (the central table of a split).
    pub fn concat(&self, other: &Self) -> Self {
        Self { bins: [self.bins.clone(), other.bins.clone()].concat(), codes: [self.codes.clone(), other.codes.clone()].concat() }
    }

    fn histograms(&self, packed: &[i128], node_of_row: &[u32], nodes: usize) -> Vec<Vec<Vec<Sums>>> {
        let per_feature: Vec<Vec<Vec<i128>>> = self
            .codes
            .par_iter()
            .zip(&self.bins)
            .map(|(codes, bins)| {
                let mut sums = vec![vec![0i128; bins.count()]; nodes];
                for ((&node, &code), &p) in node_of_row.iter().zip(codes).zip(packed) {
                    if node != NO_NODE {
                        sums[node as usize][code as usize] += p;
                    }
                }
                sums
            })
            .collect();
        (0..nodes).map(|n| per_feature.iter().map(|f| f[n].iter().map(|&p| unpack(p)).collect()).collect()).collect()
    }
}

/// Where a node splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitAt {
    /// On a feature the tree's owner holds: rows with bin at most `bin` go left.
    Local {
        /// Feature position.
        feature: u32,
        /// Last bin on the left.
        bin: u8,
    },
    /// On a host's feature, known to the guest only by its number in the job.
    Host {
        /// The host's split number.
        id: u32,
    },
}

/// A node of a tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node {
    /// A leaf with its value (learning rate applied).
    Leaf {
        /// Added to the score.
        value: f64,
    },
    /// An inner node.
    Split {
        /// The test.
        at: SplitAt,
        /// Index of the left child.
        left: u32,
        /// Index of the right child.
        right: u32,
    },
}

/// A tree, root first.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Nodes; children come after their parent.
    pub nodes: Vec<Node>,
}

/// A boosted model as the guest holds it (host splits by number only).
#[derive(Debug, Clone, PartialEq)]
pub struct BoostModel {
    /// Log-odds of the training labels' mean.
    pub init_score: f64,
    /// The trees.
    pub trees: Vec<Tree>,
}

impl BoostModel {
    /// Scores (log-odds) of rows given by `go_left(row, split)` for each split.
    pub fn scores(&self, rows: usize, go_left: impl Fn(usize, SplitAt) -> bool + Sync) -> Vec<f64> {
        (0..rows)
            .into_par_iter()
            .map(|row| {
                self.init_score
                    + self
                        .trees
                        .iter()
                        .map(|tree| {
                            let mut i = 0usize;
                            loop {
                                match tree.nodes[i] {
                                    Node::Leaf { value } => break value,
                                    Node::Split { at, left, right } => i = if go_left(row, at) { left } else { right } as usize,
                                }
                            }
                        })
                        .sum::<f64>()
            })
            .collect()
    }
}

/// The host's part of a model: its splits, by number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostSplits {
    /// `(feature, last bin on the left)` of each split the guest chose, in the order chosen.
    pub splits: Vec<(u32, u8)>,
}

fn score(s: Sums, l2: f64) -> f64 {
    let g = GH.decode(s.g);
    g * g / (GH.decode(s.h) + l2)
}

fn minus(a: Sums, b: Sums) -> Sums {
    Sums { g: a.g - b.g, h: a.h - b.h, rows: a.rows - b.rows }
}

/// The best split of one node over features given by histograms: `(gain, feature, bin)`; the
/// first in feature then bin order wins a tie.
fn best_split(hists: &[Vec<Sums>], total: Sums, params: &BoostParams) -> Option<(f64, usize, u8)> {
    let parent = score(total, params.l2);
    let mut best: Option<(f64, usize, u8)> = None;
    for (f, hist) in hists.iter().enumerate() {
        let mut left = Sums::default();
        for (b, s) in hist.iter().enumerate().take(hist.len().saturating_sub(1)) {
            left = Sums { g: left.g + s.g, h: left.h + s.h, rows: left.rows + s.rows };
            let right = minus(total, left);
            if left.rows < params.leaf_rows_min as i128 || right.rows < params.leaf_rows_min as i128 {
                continue;
            }
            let gain = score(left, params.l2) + score(right, params.l2) - parent;
            if gain > best.map_or(0.0, |b| b.0) {
                best = Some((gain, f, b as u8));
            }
        }
    }
    best
}

/// A split the guest's grower chose for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Local(u32, u8),
    Host(u32, u8),
}

/// The host as the guest's grower sees it.
struct Remote<'a, C: Decrypt> {
    ep: &'a Endpoint<'a>,
    host: &'a str,
    key: &'a C,
    splits_made: u32,
}

impl<C: Decrypt> Remote<'_, C> {
    fn histograms(&self, tree: u32, node_of_row: &[u32], nodes: usize) -> Result<Vec<Vec<Vec<Sums>>>, FederationError> {
        self.ep.send(self.host, Message::BoostNodes { tree, node_of_row: node_of_row.to_vec() })?;
        let (bins, sums) = match self.ep.recv(self.host)? {
            Message::BoostHistograms { tree: t, bins, sums } if t == tree => (bins, sums),
            other => return Err(FederationError::Protocol(format!("expected tree {tree}'s histograms, got {}", other.kind()))),
        };
        if bins.iter().any(|&b| b == 0 || b as usize > BINS_MAX) {
            return Err(FederationError::Protocol(format!("a host feature with no bins or more than {BINS_MAX}")));
        }
        let per_node: usize = bins.iter().map(|&b| b as usize).sum();
        let plain = self.key.decrypt_all(&self.key.read_blob(&sums, per_node * nodes)?)?;
        let mut values = plain.into_iter().map(unpack);
        Ok((0..nodes).map(|_| bins.iter().map(|&b| values.by_ref().take(b as usize).collect()).collect()).collect())
    }

    /// Tells the host its winning splits; returns the sides of the rows in those nodes (row
    /// order, packed) and the number of the first new host split.
    fn rows_left(&mut self, tree: u32, choices: &[Option<Choice>]) -> Result<(Vec<u8>, u32), FederationError> {
        let asked: Vec<Option<(u32, u32)>> =
            choices.iter().map(|c| if let Some(Choice::Host(f, b)) = c { Some((*f, *b as u32)) } else { None }).collect();
        let first_id = self.splits_made;
        self.splits_made += asked.iter().flatten().count() as u32;
        self.ep.send(self.host, Message::BoostSplits { tree, choices: asked })?;
        match self.ep.recv(self.host)? {
            Message::BoostRowsLeft { tree: t, left } if t == tree => Ok((left, first_id)),
            other => Err(FederationError::Protocol(format!("expected tree {tree}'s row sides, got {}", other.kind()))),
        }
    }
}

/// Grows trees over local features, and a host's when there is one.
struct Grower<'a> {
    local: &'a BinnedFeatures,
    params: &'a BoostParams,
}

impl Grower<'_> {
    /// Grows one tree on `packed` gradients; returns it and each row's leaf value.
    fn tree<C: Decrypt>(
        &self,
        tree_no: u32,
        packed: &[i128],
        mut remote: Option<&mut Remote<C>>,
    ) -> Result<(Tree, Vec<f64>), FederationError> {
        let rows = packed.len();
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut row_node = vec![0u32; rows];
        let mut open: Vec<u32> = vec![0];
        for _ in 0..self.params.depth_max {
            if open.is_empty() {
                break;
            }
            let node_of_row = open_positions(&row_node, &open, nodes.len());
            let totals = totals(packed, &node_of_row, open.len());
            let local = self.local.histograms(packed, &node_of_row, open.len());
            let host = match remote.as_deref_mut() {
                Some(r) => Some(r.histograms(tree_no, &node_of_row, open.len())?),
                None => None,
            };
            let choices: Vec<Option<Choice>> =
                (0..open.len()).map(|n| self.choose(&local[n], host.as_ref().map(|h| h[n].as_slice()), totals[n])).collect();
            let (sides, mut host_id) = match remote.as_deref_mut() {
                Some(r) => r.rows_left(tree_no, &choices)?,
                None => (Vec::new(), 0),
            };
            let mut next_open = Vec::new();
            let mut children = vec![None; open.len()];
            for (n, choice) in choices.iter().enumerate() {
                let Some(choice) = *choice else {
                    nodes[open[n] as usize] = self.leaf(totals[n]);
                    continue;
                };
                let at = match choice {
                    Choice::Local(feature, bin) => SplitAt::Local { feature, bin },
                    Choice::Host(..) => {
                        host_id += 1;
                        SplitAt::Host { id: host_id - 1 }
                    }
                };
                let (left, right) = (nodes.len() as u32, nodes.len() as u32 + 1);
                nodes.extend([Node::Leaf { value: 0.0 }, Node::Leaf { value: 0.0 }]);
                nodes[open[n] as usize] = Node::Split { at, left, right };
                children[n] = Some((left, right));
                next_open.extend([left, right]);
            }
            self.route(&mut row_node, &node_of_row, &choices, &children, &sides)?;
            open = next_open;
        }
        let node_of_row = open_positions(&row_node, &open, nodes.len());
        for (n, t) in totals(packed, &node_of_row, open.len()).into_iter().enumerate() {
            nodes[open[n] as usize] = self.leaf(t);
        }
        let values = row_node.iter().map(|&n| if let Node::Leaf { value } = nodes[n as usize] { value } else { 0.0 }).collect();
        Ok((Tree { nodes }, values))
    }

    /// The best split of a node: the guest's own features first, then the host's, the first
    /// best gain winning — the order of the central table's columns.
    fn choose(&self, local: &[Vec<Sums>], host: Option<&[Vec<Sums>]>, total: Sums) -> Option<Choice> {
        let own = best_split(local, total, self.params);
        let theirs = host.and_then(|h| best_split(h, total, self.params));
        match (own, theirs) {
            (Some(o), Some(t)) if t.0 > o.0 => Some(Choice::Host(t.1 as u32, t.2)),
            (Some(o), _) => Some(Choice::Local(o.1 as u32, o.2)),
            (None, Some(t)) => Some(Choice::Host(t.1 as u32, t.2)),
            (None, None) => None,
        }
    }

    fn leaf(&self, total: Sums) -> Node {
        Node::Leaf { value: -self.params.learning_rate * GH.decode(total.g) / (GH.decode(total.h) + self.params.l2) }
    }

    /// Moves every row of a split node to its child; host sides come in row order.
    fn route(
        &self,
        row_node: &mut [u32],
        node_of_row: &[u32],
        choices: &[Option<Choice>],
        children: &[Option<(u32, u32)>],
        sides: &[u8],
    ) -> Result<(), FederationError> {
        let mut host_rows = 0usize;
        for (row, &n) in node_of_row.iter().enumerate() {
            if n == NO_NODE {
                continue;
            }
            let (Some(choice), Some((left, right))) = (choices[n as usize], children[n as usize]) else { continue };
            let goes_left = match choice {
                Choice::Local(feature, bin) => self.local.codes[feature as usize][row] <= bin,
                Choice::Host(..) => {
                    host_rows += 1;
                    bit(sides, host_rows - 1).ok_or_else(|| FederationError::Protocol("the host sent fewer row sides than rows".into()))?
                }
            };
            row_node[row] = if goes_left { left } else { right };
        }
        Ok(())
    }
}

/// Each row's position in `open` (or [`NO_NODE`]).
fn open_positions(row_node: &[u32], open: &[u32], nodes: usize) -> Vec<u32> {
    let mut position = vec![NO_NODE; nodes];
    for (i, &o) in open.iter().enumerate() {
        position[o as usize] = i as u32;
    }
    row_node.iter().map(|&n| position[n as usize]).collect()
}

fn totals(packed: &[i128], node_of_row: &[u32], nodes: usize) -> Vec<Sums> {
    let mut sums = vec![0i128; nodes];
    for (&n, &p) in node_of_row.iter().zip(packed) {
        if n != NO_NODE {
            sums[n as usize] += p;
        }
    }
    sums.into_iter().map(unpack).collect()
}

/// Packed fixed-point gradients and hessians of the logistic loss at scores `f`.
fn packed_gradients(f: &[f64], labels: &[f64]) -> Result<Vec<i128>, FederationError> {
    f.par_iter()
        .zip(labels)
        .map(|(&f, &y)| {
            let p = 1.0 / (1.0 + (-f).exp());
            Ok(pack(GH.encode(p - y)?, GH.encode(p * (1.0 - p))?))
        })
        .collect()
}

fn check(params: &BoostParams, rows: usize, labels: &[f64]) -> Result<(), FederationError> {
    if rows == 0 || rows > BOOST_ROWS_MAX || labels.len() != rows {
        return Err(FederationError::Data(format!("{rows} rows and {} labels; 1 to {BOOST_ROWS_MAX} rows, one label each", labels.len())));
    }
    if params.trees > TREES_MAX || params.depth_max > DEPTH_MAX || !(2..=BINS_MAX).contains(&params.bins_max) {
        return Err(FederationError::Data(format!("at most {TREES_MAX} trees of depth {DEPTH_MAX}, 2 to {BINS_MAX} bins")));
    }
    if labels.iter().any(|&y| y != 0.0 && y != 1.0) {
        return Err(FederationError::Data("labels must be 0 or 1".into()));
    }
    Ok(())
}

fn boost_loop(
    features: &BinnedFeatures,
    labels: &[f64],
    params: &BoostParams,
    mut grow: impl FnMut(u32, &[i128]) -> Result<(Tree, Vec<f64>), FederationError>,
) -> Result<BoostModel, FederationError> {
    check(params, features.rows(), labels)?;
    let mean = labels.iter().sum::<f64>() / labels.len() as f64;
    let init_score = (mean / (1.0 - mean)).ln();
    let mut f = vec![init_score; labels.len()];
    let mut trees = Vec::with_capacity(params.trees);
    for t in 0..params.trees {
        let packed = packed_gradients(&f, labels)?;
        let (tree, values) = grow(t as u32, &packed)?;
        for (f, v) in f.iter_mut().zip(values) {
            *f += v;
        }
        trees.push(tree);
    }
    Ok(BoostModel { init_score, trees })
}

/// Histogram GBDT with every feature in one place, on the same bins and fixed-point gradients
/// as SecureBoost.
pub fn train_central(features: &BinnedFeatures, labels: &[f64], params: &BoostParams) -> Result<BoostModel, FederationError> {
    let grower = Grower { local: features, params };
    boost_loop(features, labels, params, |t, packed| grower.tree::<crate::cipher::PlainCipher>(t, packed, None))
}

fn boost_params(job: &JobSpec) -> Result<&BoostParams, FederationError> {
    match &job.algorithm {
        Algorithm::SecureBoost(p) => Ok(p),
        _ => Err(FederationError::Job { job: job.id.clone(), reason: "not a SecureBoost job".into() }),
    }
}

/// The guest: its binned features and 0/1 labels in the intersection's order. Returns the model.
pub fn run_guest<S: CipherSuite>(
    ep: &Endpoint,
    job: &JobSpec,
    features: &BinnedFeatures,
    labels: &[f64],
) -> Result<BoostModel, FederationError> {
    handshake(ep, job, features.codes.len())?;
    let params = boost_params(job)?;
    let host = job.name_of(Role::Host)?;
    let key = S::generate(params.key_bits)?;
    ep.send(host, Message::PublicKey { key: key.public_bytes() })?;
    let grower = Grower { local: features, params };
    let mut remote = Remote { ep, host, key: &key, splits_made: 0 };
    let model = boost_loop(features, labels, params, |t, packed| {
        let encrypted = key.encrypt_own_all(packed)?;
        ep.send(host, Message::BoostGradients { tree: t, packed: key.write_blob(&encrypted) })?;
        grower.tree(t, packed, Some(&mut remote))
    })?;
    ep.send(host, Message::Done)?;
    Ok(model)
}

/// A host: its binned features in the intersection's order. Returns its splits.
pub fn run_host<S: CipherSuite>(ep: &Endpoint, job: &JobSpec, features: &BinnedFeatures) -> Result<HostSplits, FederationError> {
    handshake(ep, job, features.codes.len())?;
    let guest = job.name_of(Role::Guest)?;
    let cipher = match ep.recv(guest)? {
        Message::PublicKey { key } => S::public_from_bytes(&key)?,
        other => return Err(FederationError::Protocol(format!("expected the guest's public key, got {}", other.kind()))),
    };
    let rows = features.rows();
    let mut splits = HostSplits::default();
    let mut gradients: Option<(u32, Vec<<S::Public as Cipher>::Ct>)> = None;
    let mut nodes: Vec<u32> = Vec::new();
    loop {
        match ep.recv(guest)? {
            Message::BoostGradients { tree, packed } => gradients = Some((tree, cipher.read_blob(&packed, rows)?)),
            Message::BoostNodes { tree, node_of_row } => {
                let Some((t, cts)) = gradients.as_ref().filter(|(t, _)| *t == tree) else {
                    return Err(FederationError::Protocol(format!("nodes of tree {tree} before its gradients")));
                };
                if node_of_row.len() != rows {
                    return Err(FederationError::Protocol(format!("{} row nodes for {rows} rows", node_of_row.len())));
                }
                nodes = node_of_row;
                let (bins, sums) = host_histograms(&cipher, features, cts, &nodes)?;
                ep.send(guest, Message::BoostHistograms { tree: *t, bins, sums })?;
            }
            Message::BoostSplits { tree, choices } => {
                let left = host_sides(features, &nodes, &choices, &mut splits)?;
                ep.send(guest, Message::BoostRowsLeft { tree, left })?;
            }
            Message::Done => return Ok(splits),
            other => return Err(FederationError::Protocol(format!("host did not expect {}", other.kind()))),
        }
    }
}

/// Encrypted sums per open node, feature and bin.
fn host_histograms<C: Cipher>(
    cipher: &C,
    features: &BinnedFeatures,
    cts: &[C::Ct],
    node_of_row: &[u32],
) -> Result<(Vec<u32>, crate::cipher::CipherBlob), FederationError> {
    let nodes = node_of_row.iter().filter(|&&n| n != NO_NODE).map(|&n| n as usize + 1).max().unwrap_or(0);
    let per_feature: Vec<Vec<C::Ct>> = features
        .codes
        .par_iter()
        .zip(&features.bins)
        .map(|(codes, bins)| {
            let b = bins.count();
            let mut sums = vec![cipher.zero(); nodes * b];
            for ((&n, &code), ct) in node_of_row.iter().zip(codes).zip(cts) {
                if n != NO_NODE {
                    let slot = &mut sums[n as usize * b + code as usize];
                    *slot = cipher.add(slot, ct);
                }
            }
            sums
        })
        .collect();
    let bins: Vec<u32> = features.bins.iter().map(|b| b.count() as u32).collect();
    let mut ordered = Vec::with_capacity(per_feature.iter().map(Vec::len).sum());
    for n in 0..nodes {
        for (f, sums) in per_feature.iter().enumerate() {
            let b = bins[f] as usize;
            ordered.extend_from_slice(&sums[n * b..(n + 1) * b]);
        }
    }
    Ok((bins, cipher.write_blob(&ordered)))
}

/// Records the guest's choices of the host's splits and says which rows of those nodes go left.
fn host_sides(
    features: &BinnedFeatures,
    node_of_row: &[u32],
    choices: &[Option<(u32, u32)>],
    splits: &mut HostSplits,
) -> Result<Vec<u8>, FederationError> {
    for &(feature, bin) in choices.iter().flatten() {
        let bins = features.bins.get(feature as usize).ok_or_else(|| FederationError::Protocol(format!("no host feature {feature}")))?;
        if bin as usize + 1 >= bins.count() {
            return Err(FederationError::Protocol(format!("bin {bin} of host feature {feature} leaves nothing on the right")));
        }
        splits.splits.push((feature, bin as u8));
    }
    let sides = node_of_row.iter().enumerate().filter_map(|(row, &n)| {
        let (feature, bin) = (*choices.get(n as usize)?)?;
        Some(features.codes[feature as usize][row] <= bin as u8)
    });
    Ok(pack_bits(sides))
}

/// Scoring at the guest: held-out rows binned with the training bins; asks the host for the
/// sides of its splits. Returns log-odds.
pub fn score_guest(ep: &Endpoint, host: &str, model: &BoostModel, features: &BinnedFeatures) -> Result<Vec<f64>, FederationError> {
    let rows = features.rows();
    let routes = match ep.recv(host)? {
        Message::BoostRoutes { left } => left,
        other => return Err(FederationError::Protocol(format!("expected the host's routes, got {}", other.kind()))),
    };
    let host_splits =
        model.trees.iter().flat_map(|t| &t.nodes).filter(|n| matches!(n, Node::Split { at: SplitAt::Host { .. }, .. })).count();
    if routes.len() != (host_splits * rows).div_ceil(8) {
        return Err(FederationError::Protocol(format!(
            "routes for {} bits; the model needs {host_splits} splits × {rows} rows",
            routes.len() * 8
        )));
    }
    Ok(model.scores(rows, |row, at| match at {
        SplitAt::Local { feature, bin } => features.codes[feature as usize][row] <= bin,
        // The length was checked above.
        SplitAt::Host { id } => bit(&routes, id as usize * rows + row).unwrap_or(false),
    }))
}

/// Scoring at a host: sends the side of every one of its splits for every held-out row.
pub fn score_host(ep: &Endpoint, guest: &str, splits: &HostSplits, features: &BinnedFeatures) -> Result<(), FederationError> {
    let rows = features.rows();
    let left = pack_bits(splits.splits.iter().flat_map(|&(f, b)| (0..rows).map(move |r| features.codes[f as usize][r] <= b)));
    ep.send(guest, Message::BoostRoutes { left })?;
    Ok(())
}

/// Scores of a model whose every split is local (the central model).
pub fn score_central(model: &BoostModel, features: &BinnedFeatures) -> Vec<f64> {
    model.scores(features.rows(), |row, at| match at {
        SplitAt::Local { feature, bin } => features.codes[feature as usize][row] <= bin,
        SplitAt::Host { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_sums_unpack_to_the_sums() {
        let rows = [(-1_048_576i128, 262_144i128), (5, 0), (1_048_576, 1)];
        let packed: i128 = rows.iter().map(|&(g, h)| pack(g, h)).sum();
        assert_eq!(unpack(packed), Sums { g: 5, h: 262_145, rows: 3 });
    }

    #[test]
    fn the_most_rows_of_extreme_gradients_still_unpack() {
        let n = BOOST_ROWS_MAX as i128;
        let sum = n * pack(G_OFFSET, G_OFFSET / 4);
        assert_eq!(unpack(sum), Sums { g: n * G_OFFSET, h: n * G_OFFSET / 4, rows: n });
    }
}
