//! Every message parties exchange, as one typed enum. Values travel only as ciphertexts,
//! blinded points, masked sums, row positions inside the intersection, or split choices; the
//! privacy tests read these bytes back (see `tests/privacy.rs`).

use serde::{Deserialize, Serialize};

use crate::cipher::CipherBlob;
use crate::psi::Point;

/// A message between parties.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message {
    /// The first message of a job: the sender's digest of the declaration and the number of
    /// features it actually holds.
    Hello {
        /// SHA-256 of the job declaration (`JobSpec::digest`).
        digest: [u8; 32],
        /// Feature columns the sender found in its data for this job.
        features: u32,
    },
    /// The sender stops the job; the reason is for the other party's log.
    Abort {
        /// Why.
        reason: String,
    },
    /// The sender has finished its part.
    Done,
    /// A public key, as the cipher encodes it (Paillier: `n` and `h_s`).
    PublicKey {
        /// The encoding.
        key: Vec<u8>,
    },
    /// PSI: the sender's ids hashed to the curve and raised to its secret.
    PsiBlinded {
        /// One point per id.
        points: Vec<Point>,
    },
    /// PSI: the receiver's points raised to the sender's secret.
    PsiDoubled {
        /// One point per point received, in its order (or shuffled, for size-only).
        points: Vec<Point>,
    },
    /// PSI: the host's positions that matched, in the guest's order.
    PsiMatches {
        /// Positions in the host's list.
        positions: Vec<u32>,
    },
    /// Vertical LR: the host's partial linear scores of a batch, encrypted (host → guest).
    LrHostScores {
        /// Batch number in the job.
        batch: u32,
        /// One ciphertext per row of the batch.
        scores: CipherBlob,
    },
    /// Vertical LR: the batch's residuals, encrypted (guest → host).
    LrResiduals {
        /// Batch number.
        batch: u32,
        /// One ciphertext per row.
        residuals: CipherBlob,
    },
    /// Vertical LR: a party's gradient sums plus its masks, encrypted (party → arbiter).
    LrMaskedGradient {
        /// Batch number.
        batch: u32,
        /// One ciphertext per weight of the sender.
        gradient: CipherBlob,
    },
    /// Vertical LR: the arbiter's decryption of the masked gradient (arbiter → party).
    LrDecrypted {
        /// Batch number.
        batch: u32,
        /// Gradient sums plus masks, as signed fixed-point integers.
        values: Vec<i128>,
    },
    /// SecureBoost: every row's gradient, hessian and a one, packed and encrypted (guest → host).
    BoostGradients {
        /// Tree number.
        tree: u32,
        /// One ciphertext per row.
        packed: CipherBlob,
    },
    /// SecureBoost: the node of each row at this level (`u32::MAX`: in no open node).
    BoostNodes {
        /// Tree number.
        tree: u32,
        /// Node index within the level, per row.
        node_of_row: Vec<u32>,
    },
    /// SecureBoost: the host's encrypted histograms, node by node, feature by feature, bin by bin.
    BoostHistograms {
        /// Tree number.
        tree: u32,
        /// Bins of each host feature.
        bins: Vec<u32>,
        /// Packed sums per bin.
        sums: CipherBlob,
    },
    /// SecureBoost: for each open node, the host split the guest chose, if any.
    BoostSplits {
        /// Tree number.
        tree: u32,
        /// `(host feature slot, last bin on the left)` per open node, or `None`.
        choices: Vec<Option<(u32, u32)>>,
    },
    /// SecureBoost: for rows in nodes split by the host, whether each goes left (row order).
    BoostRowsLeft {
        /// Tree number.
        tree: u32,
        /// One bit per such row, packed little-endian in bytes.
        left: Vec<u8>,
    },
    /// SecureBoost scoring: for each host split, whether each scored row goes left.
    BoostRoutes {
        /// One bit per (host split, row), split-major, packed.
        left: Vec<u8>,
    },
}

impl Message {
    /// The message's kind, as logged.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Abort { .. } => "abort",
            Message::Done => "done",
            Message::PublicKey { .. } => "public_key",
            Message::PsiBlinded { .. } => "psi_blinded",
            Message::PsiDoubled { .. } => "psi_doubled",
            Message::PsiMatches { .. } => "psi_matches",
            Message::LrHostScores { .. } => "lr_host_scores",
            Message::LrResiduals { .. } => "lr_residuals",
            Message::LrMaskedGradient { .. } => "lr_masked_gradient",
            Message::LrDecrypted { .. } => "lr_decrypted",
            Message::BoostGradients { .. } => "boost_gradients",
            Message::BoostNodes { .. } => "boost_nodes",
            Message::BoostHistograms { .. } => "boost_histograms",
            Message::BoostSplits { .. } => "boost_splits",
            Message::BoostRowsLeft { .. } => "boost_rows_left",
            Message::BoostRoutes { .. } => "boost_routes",
        }
    }
}

/// Packs booleans into bytes, bit `i % 8` of byte `i / 8`.
pub fn pack_bits(bits: impl IntoIterator<Item = bool>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, bit) in bits.into_iter().enumerate() {
        if i % 8 == 0 {
            out.push(0);
        }
        if bit {
            // `out` got a byte for this index on its first bit.
            *out.last_mut().expect("a byte per eight bits") |= 1 << (i % 8);
        }
    }
    out
}

/// Bit `i` of bytes packed by [`pack_bits`]; `None` past the end.
pub fn bit(bytes: &[u8], i: usize) -> Option<bool> {
    bytes.get(i / 8).map(|b| b >> (i % 8) & 1 == 1)
}
