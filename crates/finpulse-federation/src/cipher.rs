//! The additive cipher protocols are written against, so that Paillier and a plaintext stand-in
//! are interchangeable: with the stand-in the same protocol runs on plain integers, which is how
//! the tests hold federated training to centralised training exactly.
//!
//! Plaintexts are signed fixed-point integers ([`crate::fixed`]). Both ciphers compute in a
//! ring — Paillier modulo `n`, the stand-in modulo 2^128 — and read a result back as the signed
//! integer nearest zero, so a mask added and later subtracted cancels exactly in either.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::FederationError;

/// Ciphertexts as they travel: fixed-width big-endian encodings, back to back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherBlob {
    /// Bytes per ciphertext.
    pub width: u32,
    /// `width` bytes per ciphertext.
    pub bytes: Vec<u8>,
}

impl CipherBlob {
    /// Ciphertexts in the blob.
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.width as usize).unwrap_or(0)
    }

    /// Whether the blob holds no ciphertext.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What anyone holding the public key can do.
pub trait Cipher: Send + Sync {
    /// A ciphertext.
    type Ct: Clone + Send + Sync;

    /// Encrypts `m` with fresh randomness.
    fn encrypt(&self, m: i128) -> Result<Self::Ct, FederationError>;
    /// The encryption of the sum.
    fn add(&self, a: &Self::Ct, b: &Self::Ct) -> Self::Ct;
    /// The encryption of `a`'s plaintext plus `m`, with `a`'s randomness (not re-randomised).
    fn add_plain(&self, a: &Self::Ct, m: i128) -> Self::Ct;
    /// The encryption of `a`'s plaintext times `k`.
    fn mul_plain(&self, a: &Self::Ct, k: i128) -> Self::Ct;
    /// The encryption of zero with no randomness: the neutral element of [`Cipher::add`].
    fn zero(&self) -> Self::Ct;
    /// Bytes of one encoded ciphertext.
    fn width(&self) -> usize;
    /// Appends `c`'s encoding (exactly [`Cipher::width`] bytes).
    fn write(&self, c: &Self::Ct, out: &mut Vec<u8>);
    /// Reads one ciphertext; an encoding outside the ciphertext space is an error.
    fn read(&self, bytes: &[u8]) -> Result<Self::Ct, FederationError>;
    /// The public key's encoding, as sent in [`crate::message::Message::PublicKey`].
    fn public_bytes(&self) -> Vec<u8>;

    /// `Σ k_i · a_i` for non-negative weights. Ciphers override it with a faster method.
    fn weighted_sum(&self, cts: &[Self::Ct], weights: &[u64]) -> Self::Ct {
        assert_eq!(cts.len(), weights.len(), "one weight per ciphertext");
        cts.iter().zip(weights).fold(self.zero(), |acc, (c, &w)| if w == 0 { acc } else { self.add(&acc, &self.mul_plain(c, w as i128)) })
    }

    /// `Σ a_i`.
    fn sum(&self, cts: &[Self::Ct]) -> Self::Ct {
        cts.iter().fold(self.zero(), |acc, c| self.add(&acc, c))
    }

    /// Encrypts every value, on all cores.
    fn encrypt_all(&self, ms: &[i128]) -> Result<Vec<Self::Ct>, FederationError> {
        ms.par_iter().map(|&m| self.encrypt(m)).collect()
    }

    /// Packs ciphertexts for the wire.
    fn write_blob(&self, cts: &[Self::Ct]) -> CipherBlob {
        let mut bytes = Vec::with_capacity(cts.len() * self.width());
        for c in cts {
            self.write(c, &mut bytes);
        }
        CipherBlob { width: self.width() as u32, bytes }
    }

    /// Unpacks exactly `count` ciphertexts, checking each.
    fn read_blob(&self, blob: &CipherBlob, count: usize) -> Result<Vec<Self::Ct>, FederationError> {
        if blob.width as usize != self.width() || blob.bytes.len() != count * self.width() {
            return Err(FederationError::Protocol(format!(
                "expected {count} ciphertexts of {} bytes, got {} bytes of width {}",
                self.width(),
                blob.bytes.len(),
                blob.width
            )));
        }
        blob.bytes.par_chunks(self.width()).map(|chunk| self.read(chunk)).collect()
    }
}

/// What only the key holder can do.
pub trait Decrypt: Cipher {
    /// The plaintext, as the signed integer nearest zero; one beyond `i128` is an error.
    fn decrypt(&self, c: &Self::Ct) -> Result<i128, FederationError>;

    /// Encrypts with the key holder's faster method where there is one.
    fn encrypt_own(&self, m: i128) -> Result<Self::Ct, FederationError> {
        self.encrypt(m)
    }

    /// Decrypts every ciphertext, on all cores.
    fn decrypt_all(&self, cts: &[Self::Ct]) -> Result<Vec<i128>, FederationError> {
        cts.par_iter().map(|c| self.decrypt(c)).collect()
    }

    /// Encrypts every value with [`Decrypt::encrypt_own`], on all cores.
    fn encrypt_own_all(&self, ms: &[i128]) -> Result<Vec<Self::Ct>, FederationError> {
        ms.par_iter().map(|&m| self.encrypt_own(m)).collect()
    }
}

/// A family of ciphers: how a key holder makes its key and how the others read its public key.
pub trait CipherSuite: Send + Sync + 'static {
    /// The key holder's cipher.
    type Secret: Decrypt<Ct = <Self::Public as Cipher>::Ct>;
    /// Everyone else's.
    type Public: Cipher;
    /// A fresh key of `bits` bits.
    fn generate(bits: u32) -> Result<Self::Secret, FederationError>;
    /// The public cipher from its encoding.
    fn public_from_bytes(bytes: &[u8]) -> Result<Self::Public, FederationError>;
}

/// The plaintext stand-in: "ciphertexts" are the plaintexts, in the ring of integers modulo
/// 2^128. Only for tests and for measuring what encryption costs; it hides nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainCipher;

impl Cipher for PlainCipher {
    type Ct = i128;

    fn encrypt(&self, m: i128) -> Result<i128, FederationError> {
        Ok(m)
    }
    fn add(&self, a: &i128, b: &i128) -> i128 {
        a.wrapping_add(*b)
    }
    fn add_plain(&self, a: &i128, m: i128) -> i128 {
        a.wrapping_add(m)
    }
    fn mul_plain(&self, a: &i128, k: i128) -> i128 {
        a.wrapping_mul(k)
    }
    fn zero(&self) -> i128 {
        0
    }
    fn width(&self) -> usize {
        16
    }
    fn write(&self, c: &i128, out: &mut Vec<u8>) {
        out.extend_from_slice(&c.to_be_bytes());
    }
    fn read(&self, bytes: &[u8]) -> Result<i128, FederationError> {
        let array: [u8; 16] =
            bytes.try_into().map_err(|_| FederationError::Protocol(format!("a plain ciphertext has 16 bytes, not {}", bytes.len())))?;
        Ok(i128::from_be_bytes(array))
    }
    fn public_bytes(&self) -> Vec<u8> {
        Vec::new()
    }
}

impl Decrypt for PlainCipher {
    fn decrypt(&self, c: &i128) -> Result<i128, FederationError> {
        Ok(*c)
    }
}

/// The suite of [`PlainCipher`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainSuite;

impl CipherSuite for PlainSuite {
    type Secret = PlainCipher;
    type Public = PlainCipher;
    fn generate(_bits: u32) -> Result<PlainCipher, FederationError> {
        Ok(PlainCipher)
    }
    fn public_from_bytes(_bytes: &[u8]) -> Result<PlainCipher, FederationError> {
        Ok(PlainCipher)
    }
}

/// A uniform mask of [`crate::fixed::MASK_BITS`] bits (signed), added to a sum before the key
/// holder sees it.
pub fn random_mask() -> i128 {
    use rand::Rng;
    let bound = 1i128 << crate::fixed::MASK_BITS;
    rand::rng().random_range(-bound..bound)
}
