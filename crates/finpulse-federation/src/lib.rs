//! Federated learning across institutions that may not pool their data: private set
//! intersection of user ids, vertical logistic regression and SecureBoost under Paillier, with
//! parties as actors that talk only through typed, sized, logged messages.
//!
//! - [`paillier`]: the additively homomorphic cipher (fixed-point plaintexts, CRT decryption,
//!   the key holder's fast encryption, precomputed randomness).
//! - [`cipher`]: the trait protocols are written against, and the plaintext stand-in.
//! - [`psi`]: ECDH private set intersection on ristretto255.
//! - [`job`]: the job declaration every party checks; [`session`]: the handshake that checks it.
//! - [`transport`]: how parties reach each other, sizing and logging every message.
//! - [`lr`]: vertical logistic regression coordinated by an arbiter; [`boost`]: SecureBoost.
//! - [`table`]: numeric CSV tables split by columns between parties.
//!
//! This crate knows no HTTP and no CLI; `finpulse federation …` calls it.

pub mod boost;
pub mod cipher;
pub mod demo;
pub mod fixed;
pub mod job;
pub mod local;
pub mod lr;
pub mod message;
pub mod modpow;
pub mod paillier;
pub mod psi;
pub mod secagg;
pub mod session;
pub mod table;
pub mod transport;

/// What can go wrong in a federated job.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// A value cannot be encoded at the fixed-point scale.
    #[error("{value} cannot be encoded with {frac_bits} fractional bits")]
    Encoding {
        /// The value.
        value: f64,
        /// The scale's fractional bits.
        frac_bits: u32,
    },
    /// A key or ciphertext is malformed, or a plaintext is out of range.
    #[error("paillier: {0}")]
    Paillier(String),
    /// The job declaration is inconsistent, or the parties' declarations differ.
    #[error("job {job}: {reason}")]
    Job {
        /// The job's id.
        job: String,
        /// What is wrong.
        reason: String,
    },
    /// A party sent something the protocol does not expect at this point.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A message could not be encoded or is too large.
    #[error("wire: {0}")]
    Wire(String),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(String),
    /// A party did not answer in time.
    #[error("party {party:?} did not answer within {secs} s")]
    Timeout {
        /// The silent party.
        party: String,
        /// How long we waited.
        secs: f64,
    },
    /// Another party stopped the job.
    #[error("party {party:?} stopped the job: {reason}")]
    Aborted {
        /// The party that stopped.
        party: String,
        /// Its reason.
        reason: String,
    },
    /// Input data is unusable.
    #[error("data: {0}")]
    Data(String),
}
