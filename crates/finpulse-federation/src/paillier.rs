//! Paillier's additively homomorphic cryptosystem with `g = n + 1`.
//!
//! `Enc(m) = (1 + m·n) · r^n mod n²`; the product of two ciphertexts encrypts the sum of their
//! plaintexts and a ciphertext to the power `k` encrypts `k` times its plaintext. Decryption uses
//! the CRT over `p²` and `q²` (as python-paillier does). The key holder also encrypts faster than
//! anyone else: a uniformly random `r^n` is `CRT(s^p mod p², t^q mod q²)` for uniform `s`, `t`
//! (the `n`-th residues modulo `p²` are the subgroup of order `p − 1`, which is also the image of
//! `x ↦ x^p` when `q ∤ p − 1`), half-length exponents on half-length moduli. Randomness `r^n` may
//! be computed ahead of time into a [`RandomnessPool`]; each value is used once.
//!
//! A key made by [`SecretKey::generate`] also publishes `h_s = h^n mod n²` for `h = −x² mod n`,
//! and then everyone encrypts with randomness `h_s^α` for a random `α` of half the modulus'
//! bits, as Damgård, Jurik and Nielsen proposed (2010) and Intel's IPCL does: with a table of
//! `h_s`'s powers per byte of `α` that is one product per byte instead of a full-length
//! exponentiation. Its semantic security rests on DCR together with the hardness of telling
//! such short-exponent powers from random `n`-th residues, the assumption that scheme states.
//!
//! Big integers are `num-bigint`'s; exponentiation modulo `n²`, `p²` and `q²` goes through
//! [`crate::modpow`].

use std::sync::Arc;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use parking_lot::Mutex;
use rand::RngCore;

use crate::FederationError;
use crate::cipher::{Cipher, CipherSuite, Decrypt};
use crate::modpow::{FixedBase, Modulus};

/// Smallest modulus accepted (tests use 512-bit keys; production 2048).
pub const KEY_BITS_MIN: u32 = 256;
/// Largest modulus accepted.
pub const KEY_BITS_MAX: u32 = 8192;
/// Default modulus size.
pub const KEY_BITS_DEFAULT: u32 = 2048;
/// Miller–Rabin rounds with random bases for each prime of a key.
const MILLER_RABIN_ROUNDS: usize = 40;

/// A public key: anyone holding it can encrypt and compute on ciphertexts.
#[derive(Clone)]
pub struct PublicKey {
    n: BigUint,
    nn: Arc<Modulus>,
    width: usize,
    pool: Option<Arc<RandomnessPool>>,
    djn: Option<Arc<Djn>>,
}

/// The published base `h_s` and its table of powers.
struct Djn {
    hs: BigUint,
    table: FixedBase,
    alpha_bits: u32,
}

/// A ciphertext modulo `n²`.
pub type Ciphertext = BigUint;

/// Values `r^n mod n²` computed ahead of time; each is taken once.
pub struct RandomnessPool {
    values: Mutex<Vec<BigUint>>,
}

impl RandomnessPool {
    /// Values left.
    pub fn len(&self) -> usize {
        self.values.lock().len()
    }

    /// Whether the pool is used up.
    pub fn is_empty(&self) -> bool {
        self.values.lock().is_empty()
    }

    fn take(&self) -> Option<BigUint> {
        self.values.lock().pop()
    }
}

fn random_below(bound: &BigUint) -> BigUint {
    let mut bytes = vec![0u8; (bound.bits() as usize).div_ceil(8) + 8];
    rand::rng().fill_bytes(&mut bytes);
    BigUint::from_bytes_be(&bytes) % bound
}

/// A random unit below `bound` (non-zero; a non-unit would reveal a factor of the key and
/// appears with negligible probability).
fn random_unit(bound: &BigUint) -> BigUint {
    loop {
        let r = random_below(bound);
        if !r.is_zero() {
            return r;
        }
    }
}

impl PublicKey {
    /// The public key with modulus `n`.
    pub fn from_modulus(n: BigUint) -> Result<Self, FederationError> {
        let bits = n.bits();
        if bits < KEY_BITS_MIN as u64 || bits > KEY_BITS_MAX as u64 || n.is_even() {
            return Err(FederationError::Paillier(format!("a modulus of {bits} bits (odd, {KEY_BITS_MIN} to {KEY_BITS_MAX}) is required")));
        }
        Ok(Self::any_size(n))
    }

    fn any_size(n: BigUint) -> Self {
        let nn = &n * &n;
        let width = (nn.bits() as usize).div_ceil(8);
        Self { nn: Arc::new(Modulus::new(nn)), n, width, pool: None, djn: None }
    }

    /// This key with the published base `h_s` (an `n`-th residue modulo `n²`), so that
    /// encryption uses short-exponent randomness `h_s^α`.
    pub fn with_djn_base(mut self, hs: BigUint) -> Result<Self, FederationError> {
        if hs.is_zero() || hs >= *self.nn.value() || !hs.gcd(&self.n).is_one() {
            return Err(FederationError::Paillier("h_s is not a unit modulo n²".into()));
        }
        let alpha_bits = (self.n.bits() as u32 / 2).div_ceil(8) * 8;
        let table = FixedBase::new(&self.nn, &hs, alpha_bits);
        self.djn = Some(Arc::new(Djn { hs, table, alpha_bits }));
        Ok(self)
    }

    /// Whether encryption uses the short-exponent randomness of a published `h_s`.
    pub fn has_djn_base(&self) -> bool {
        self.djn.is_some()
    }

    /// The key's encoding: `n`'s length (4 bytes, big-endian), `n`, then `h_s` if published.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.n.to_bytes_be();
        let mut out = (n.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&n);
        if let Some(djn) = &self.djn {
            out.extend_from_slice(&djn.hs.to_bytes_be());
        }
        out
    }

    /// Reads [`PublicKey::to_bytes`]' encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FederationError> {
        let bad = || FederationError::Paillier(format!("a public key encoding of {} bytes is malformed", bytes.len()));
        let len = u32::from_be_bytes(bytes.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let n = bytes.get(4..4 + len).ok_or_else(bad)?;
        let key = Self::from_modulus(BigUint::from_bytes_be(n))?;
        let hs = &bytes[4 + len..];
        if hs.is_empty() { Ok(key) } else { key.with_djn_base(BigUint::from_bytes_be(hs)) }
    }

    /// The modulus `n`.
    pub fn n(&self) -> &BigUint {
        &self.n
    }

    /// Fresh randomness for one encryption: `h_s^α` when the key publishes `h_s`, else
    /// [`PublicKey::full_randomness`].
    pub fn randomness(&self) -> BigUint {
        match &self.djn {
            Some(djn) => {
                let mut alpha = vec![0u8; djn.alpha_bits as usize / 8];
                rand::rng().fill_bytes(&mut alpha);
                djn.table.pow(&self.nn, &BigUint::from_bytes_be(&alpha))
            }
            None => self.full_randomness(),
        }
    }

    /// `r^n mod n²` for a fresh random `r` (textbook Paillier, as python-paillier does).
    pub fn full_randomness(&self) -> BigUint {
        self.nn.pow(&random_unit(&self.n), &self.n)
    }

    /// Computes `count` randomness values now (on all cores) and uses them, once each, for
    /// encryptions after this; when they run out encryption computes its own again.
    pub fn with_pool(mut self, count: usize) -> Self {
        use rayon::prelude::*;
        let values = (0..count).into_par_iter().map(|_| self.randomness()).collect();
        self.pool = Some(Arc::new(RandomnessPool { values: Mutex::new(values) }));
        self
    }

    /// The pool in use, if any.
    pub fn pool(&self) -> Option<&RandomnessPool> {
        self.pool.as_deref()
    }

    /// `m mod n` for a signed `m`.
    fn plaintext(&self, m: i128) -> BigUint {
        let magnitude = BigUint::from(m.unsigned_abs());
        let reduced = magnitude % &self.n;
        if m < 0 && !reduced.is_zero() { &self.n - reduced } else { reduced }
    }

    /// `(1 + m·n) mod n²`, the deterministic part of an encryption.
    fn g_to(&self, m: &BigUint) -> BigUint {
        (m * &self.n + 1u32) % self.nn.value()
    }

    /// Encrypts `m` with the given randomness `r^n mod n²` (known-answer tests, pools).
    pub fn encrypt_with(&self, m: i128, randomness: &BigUint) -> Ciphertext {
        self.nn.mul(&self.g_to(&self.plaintext(m)), randomness)
    }

    /// Encrypts `m` with randomness `r` (computing `r^n`).
    pub fn encrypt_with_r(&self, m: i128, r: &BigUint) -> Ciphertext {
        self.encrypt_with(m, &self.nn.pow(r, &self.n))
    }
}

/// A secret key, with its public key.
#[derive(Clone)]
pub struct SecretKey {
    public: PublicKey,
    p: BigUint,
    q: BigUint,
    pp: Arc<Modulus>,
    qq: Arc<Modulus>,
    hp: BigUint,
    hq: BigUint,
    q_inv_p: BigUint,
    qq_inv_pp: BigUint,
}

impl SecretKey {
    /// A fresh key whose modulus has exactly `bits` bits.
    pub fn generate(bits: u32) -> Result<Self, FederationError> {
        if !(KEY_BITS_MIN..=KEY_BITS_MAX).contains(&bits) || !bits.is_multiple_of(2) {
            return Err(FederationError::Paillier(format!("key size {bits} bits: an even number from {KEY_BITS_MIN} to {KEY_BITS_MAX}")));
        }
        loop {
            let p = random_prime(bits / 2);
            let q = random_prime(bits / 2);
            if let Ok(key) = Self::from_primes(p, q) {
                return key.with_djn_base();
            }
        }
    }

    /// This key with a published `h_s = (−x²)^n mod n²` for a random `x` (see the module).
    pub fn with_djn_base(mut self) -> Result<Self, FederationError> {
        let n = self.public.n.clone();
        let x = random_unit(&n);
        let h = &n - (&x * &x) % &n;
        let hs = self.fast_power_n(&h);
        self.public = self.public.with_djn_base(hs)?;
        Ok(self)
    }

    /// `x^n mod n²` by the CRT: `x^n mod p²` and `mod q²` with exponents reduced modulo
    /// `p(p − 1)` and `q(q − 1)`.
    fn fast_power_n(&self, x: &BigUint) -> BigUint {
        let n = &self.public.n;
        let xp = self.pp.pow(x, &(n % (&self.p * (&self.p - 1u32))));
        let xq = self.qq.pow(x, &(n % (&self.q * (&self.q - 1u32))));
        self.crt_squares(xp, xq)
    }

    /// The residue modulo `n²` of residues modulo `p²` and `q²`.
    fn crt_squares(&self, xp: BigUint, xq: BigUint) -> BigUint {
        let diff = (xp + self.pp.value() - (&xq % self.pp.value())) % self.pp.value();
        xq + self.qq.value() * ((diff * &self.qq_inv_pp) % self.pp.value())
    }

    /// The key of primes `p` and `q` (distinct, with `gcd(pq, (p−1)(q−1)) = 1`, `p ∤ q − 1`,
    /// `q ∤ p − 1`, and `pq` of [`KEY_BITS_MIN`] bits or more).
    pub fn from_primes(p: BigUint, q: BigUint) -> Result<Self, FederationError> {
        PublicKey::from_modulus(&p * &q)?;
        Self::from_primes_any_size(p, q)
    }

    /// [`SecretKey::from_primes`] without the size check: small primes make known-answer tests.
    fn from_primes_any_size(p: BigUint, q: BigUint) -> Result<Self, FederationError> {
        let one = BigUint::one();
        let (p1, q1) = (&p - &one, &q - &one);
        let unsuitable = p == q || (&p1 % &q).is_zero() || (&q1 % &p).is_zero() || !(&p * &q).gcd(&(&p1 * &q1)).is_one();
        if unsuitable {
            return Err(FederationError::Paillier("unsuitable primes".into()));
        }
        let public = PublicKey::any_size(&p * &q);
        let pp = Arc::new(Modulus::new(&p * &p));
        let qq = Arc::new(Modulus::new(&q * &q));
        let h = |prime: &BigUint, square: &Modulus| -> Result<BigUint, FederationError> {
            let g = (public.n() + 1u32) % square.value();
            let l = (square.pow(&g, &(prime - 1u32)) - 1u32) / prime;
            l.modinv(prime).ok_or_else(|| FederationError::Paillier("unsuitable primes".into()))
        };
        let (hp, hq) = (h(&p, &pp)?, h(&q, &qq)?);
        let q_inv_p = q.modinv(&p).ok_or_else(|| FederationError::Paillier("unsuitable primes".into()))?;
        let qq_inv_pp = qq.value().modinv(pp.value()).ok_or_else(|| FederationError::Paillier("unsuitable primes".into()))?;
        Ok(Self { public, p, q, pp, qq, hp, hq, q_inv_p, qq_inv_pp })
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The plaintext of `c` in `[0, n)`.
    pub fn decrypt_raw(&self, c: &Ciphertext) -> BigUint {
        let part = |prime: &BigUint, square: &Modulus, h: &BigUint| {
            let x = square.pow(&(c % square.value()), &(prime - 1u32));
            ((x - 1u32) / prime * h) % prime
        };
        let mp = part(&self.p, &self.pp, &self.hp);
        let mq = part(&self.q, &self.qq, &self.hq);
        // m = mq + q·((mp − mq)·q⁻¹ mod p), with the difference taken modulo p.
        let diff = (mp + &self.p - (&mq % &self.p)) % &self.p;
        mq + &self.q * ((diff * &self.q_inv_p) % &self.p)
    }

    /// `r^n mod n²` for a uniformly random `r`, by the CRT (see the module's documentation).
    pub fn fast_randomness(&self) -> BigUint {
        let xp = self.pp.pow(&random_unit(self.pp.value()), &self.p);
        let xq = self.qq.pow(&random_unit(self.qq.value()), &self.q);
        self.crt_squares(xp, xq)
    }
}

/// Miller–Rabin with random bases, after trial division by small primes.
pub fn is_probable_prime(n: &BigUint) -> bool {
    const SMALL: [u32; 24] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89];
    for s in SMALL {
        if (n % s).is_zero() {
            return *n == BigUint::from(s);
        }
    }
    if *n < BigUint::from(97u32 * 97) {
        return *n > BigUint::one();
    }
    let n1 = n - 1u32;
    let twos = n1.trailing_zeros().unwrap_or(0);
    let d = &n1 >> twos;
    let modulus = Modulus::new(n.clone());
    'rounds: for _ in 0..MILLER_RABIN_ROUNDS {
        let a = random_below(&(n - 3u32)) + 2u32;
        let mut x = modulus.pow(&a, &d);
        if x.is_one() || x == n1 {
            continue;
        }
        for _ in 1..twos {
            x = modulus.mul(&x, &x);
            if x == n1 {
                continue 'rounds;
            }
        }
        return false;
    }
    true
}

/// A random prime of exactly `bits` bits with its two top bits set (so a product of two has
/// exactly twice the bits).
fn random_prime(bits: u32) -> BigUint {
    loop {
        let mut bytes = vec![0u8; (bits as usize).div_ceil(8)];
        rand::rng().fill_bytes(&mut bytes);
        let mut candidate = BigUint::from_bytes_be(&bytes) >> (bytes.len() * 8 - bits as usize);
        candidate.set_bit(bits as u64 - 1, true);
        candidate.set_bit(bits as u64 - 2, true);
        candidate.set_bit(0, true);
        if is_probable_prime(&candidate) {
            return candidate;
        }
    }
}

fn to_signed(m: BigUint, n: &BigUint) -> Result<i128, FederationError> {
    let half = n >> 1u32;
    let (negative, magnitude) = if m > half { (true, n - &m) } else { (false, m) };
    let value = i128::try_from(magnitude)
        .map_err(|_| FederationError::Paillier("a plaintext beyond 128 bits: an overflow or a ciphertext of other data".into()))?;
    Ok(if negative { -value } else { value })
}

impl Cipher for PublicKey {
    type Ct = Ciphertext;

    fn encrypt(&self, m: i128) -> Result<Ciphertext, FederationError> {
        let randomness = self.pool.as_ref().and_then(|p| p.take()).unwrap_or_else(|| self.randomness());
        Ok(self.encrypt_with(m, &randomness))
    }
    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        self.nn.mul(a, b)
    }
    fn add_plain(&self, a: &Ciphertext, m: i128) -> Ciphertext {
        self.nn.mul(a, &self.g_to(&self.plaintext(m)))
    }
    fn mul_plain(&self, a: &Ciphertext, k: i128) -> Ciphertext {
        let magnitude = k.unsigned_abs();
        let powered = match u64::try_from(magnitude) {
            Ok(small) => self.nn.pow_public_small(a, small),
            Err(_) => self.nn.pow(a, &BigUint::from(magnitude)),
        };
        if k >= 0 {
            return powered;
        }
        // Ciphertexts are units modulo n² (they come from `read`, which checks, or from
        // products of units).
        powered.modinv(self.nn.value()).expect("a ciphertext is a unit modulo n²")
    }
    fn zero(&self) -> Ciphertext {
        BigUint::one()
    }
    fn width(&self) -> usize {
        self.width
    }
    fn write(&self, c: &Ciphertext, out: &mut Vec<u8>) {
        let bytes = c.to_bytes_be();
        out.extend(std::iter::repeat_n(0, self.width - bytes.len()));
        out.extend_from_slice(&bytes);
    }
    fn read(&self, bytes: &[u8]) -> Result<Ciphertext, FederationError> {
        let c = BigUint::from_bytes_be(bytes);
        if bytes.len() != self.width || c.is_zero() || c >= *self.nn.value() || !c.gcd(&self.n).is_one() {
            return Err(FederationError::Paillier("a ciphertext outside Z*(n²)".into()));
        }
        Ok(c)
    }
    fn public_bytes(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn weighted_sum(&self, cts: &[Ciphertext], weights: &[u64]) -> Ciphertext {
        crate::modpow::multi_pow(&self.nn, cts, weights)
    }
}

impl Cipher for SecretKey {
    type Ct = Ciphertext;

    fn encrypt(&self, m: i128) -> Result<Ciphertext, FederationError> {
        self.public.encrypt(m)
    }
    fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        self.public.add(a, b)
    }
    fn add_plain(&self, a: &Ciphertext, m: i128) -> Ciphertext {
        self.public.add_plain(a, m)
    }
    fn mul_plain(&self, a: &Ciphertext, k: i128) -> Ciphertext {
        self.public.mul_plain(a, k)
    }
    fn zero(&self) -> Ciphertext {
        self.public.zero()
    }
    fn width(&self) -> usize {
        self.public.width
    }
    fn write(&self, c: &Ciphertext, out: &mut Vec<u8>) {
        self.public.write(c, out)
    }
    fn read(&self, bytes: &[u8]) -> Result<Ciphertext, FederationError> {
        self.public.read(bytes)
    }
    fn public_bytes(&self) -> Vec<u8> {
        self.public.public_bytes()
    }
    fn weighted_sum(&self, cts: &[Ciphertext], weights: &[u64]) -> Ciphertext {
        self.public.weighted_sum(cts, weights)
    }
}

impl Decrypt for SecretKey {
    fn decrypt(&self, c: &Ciphertext) -> Result<i128, FederationError> {
        to_signed(self.decrypt_raw(c), &self.public.n)
    }
    fn encrypt_own(&self, m: i128) -> Result<Ciphertext, FederationError> {
        // The published base's table is faster still than the CRT when there is one.
        let fresh = || if self.public.has_djn_base() { self.public.randomness() } else { self.fast_randomness() };
        let randomness = self.public.pool.as_ref().and_then(|p| p.take()).unwrap_or_else(fresh);
        Ok(self.public.encrypt_with(m, &randomness))
    }
}

/// Paillier as a [`CipherSuite`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PaillierSuite;

impl CipherSuite for PaillierSuite {
    type Secret = SecretKey;
    type Public = PublicKey;
    fn generate(bits: u32) -> Result<SecretKey, FederationError> {
        SecretKey::generate(bits)
    }
    fn public_from_bytes(bytes: &[u8]) -> Result<PublicKey, FederationError> {
        PublicKey::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use std::sync::OnceLock;

    fn small() -> SecretKey {
        SecretKey::from_primes_any_size(BigUint::from(17u32), BigUint::from(19u32)).unwrap()
    }

    fn key512() -> &'static SecretKey {
        static KEY: OnceLock<SecretKey> = OnceLock::new();
        KEY.get_or_init(|| SecretKey::generate(512).unwrap())
    }

    #[test]
    fn known_answers_with_small_primes_and_fixed_randomness() {
        // (1 + m·n)·r^n mod n² with n = 17·19 = 323, computed independently.
        let key = small();
        let public = key.public();
        let cases = [(42i128, 5u32, 84_326u32), (100, 7, 74_871), (-3, 11, 101_087)];
        for (m, r, c) in cases {
            let ct = public.encrypt_with_r(m, &BigUint::from(r));
            assert_eq!(ct, BigUint::from(c), "Enc({m}; r = {r})");
            assert_eq!(key.decrypt(&ct).unwrap(), m);
        }
        let sum = public.add(&BigUint::from(84_326u32), &BigUint::from(74_871u32));
        assert_eq!(sum, BigUint::from(102_511u32));
        assert_eq!(key.decrypt(&sum).unwrap(), 142);
        // Plaintexts live modulo n and read back as the residue nearest zero: 300 is −23.
        assert_eq!(key.decrypt(&public.encrypt_with_r(300, &BigUint::from(7u32))).unwrap(), -23);
    }

    #[test]
    fn unsuitable_primes_are_refused() {
        assert!(SecretKey::from_primes_any_size(BigUint::from(17u32), BigUint::from(17u32)).is_err());
        // 3 divides 7 − 1.
        assert!(SecretKey::from_primes_any_size(BigUint::from(7u32), BigUint::from(3u32)).is_err());
        // Too small outside tests.
        assert!(SecretKey::from_primes(BigUint::from(17u32), BigUint::from(19u32)).is_err());
    }

    #[test]
    fn a_generated_key_has_the_bits_asked_for() {
        assert_eq!(key512().public().n().bits(), 512);
        assert!(SecretKey::generate(100).is_err());
    }

    #[test]
    fn sums_and_scalar_products_decrypt_to_the_plain_results() {
        let key = key512();
        let public = key.public().clone();
        let mut rng = rand::rng();
        for _ in 0..40 {
            let (a, b) = (rng.random_range(-(1i128 << 90)..(1i128 << 90)), rng.random_range(-(1i128 << 90)..(1i128 << 90)));
            let k = rng.random_range(-(1i128 << 30)..(1i128 << 30));
            let (ca, cb) = (public.encrypt(a).unwrap(), public.encrypt(b).unwrap());
            assert_eq!(key.decrypt(&public.add(&ca, &cb)).unwrap(), a + b);
            assert_eq!(key.decrypt(&public.add_plain(&ca, b)).unwrap(), a + b);
            assert_eq!(key.decrypt(&public.mul_plain(&ca, k)).unwrap(), a * k);
        }
    }

    #[test]
    fn weighted_sums_equal_the_plain_weighted_sums() {
        let key = key512();
        let mut rng = rand::rng();
        let values: Vec<i128> = (0..50).map(|_| rng.random_range(-1_000_000..1_000_000)).collect();
        let weights: Vec<u64> = (0..50).map(|_| rng.random_range(0..100_000)).collect();
        let cts = key.encrypt_own_all(&values).unwrap();
        let expected: i128 = values.iter().zip(&weights).map(|(v, &w)| v * w as i128).sum();
        assert_eq!(key.decrypt(&key.weighted_sum(&cts, &weights)).unwrap(), expected);
    }

    #[test]
    fn fixed_point_negatives_and_fractions_survive_encryption() {
        let key = key512();
        let f = crate::fixed::Fixed::new(24);
        let (a, b) = (-2.5, 0.125);
        let c = key.add(&key.encrypt(f.encode(a).unwrap()).unwrap(), &key.encrypt_own(f.encode(b).unwrap()).unwrap());
        assert_eq!(f.decode(key.decrypt(&c).unwrap()), -2.375);
    }

    #[test]
    fn the_key_holders_randomness_is_an_nth_residue() {
        // An n-th residue r^n decrypts (as a ciphertext) to 0.
        let key = key512();
        for _ in 0..5 {
            assert!(key.decrypt_raw(&key.fast_randomness()).is_zero());
        }
    }

    #[test]
    fn short_exponent_randomness_is_an_nth_residue_and_the_key_travels_with_its_base() {
        let key = key512();
        assert!(key.public().has_djn_base());
        let public = PublicKey::from_bytes(&key.public().to_bytes()).unwrap();
        assert!(public.has_djn_base());
        for _ in 0..5 {
            assert!(key.decrypt_raw(&public.randomness()).is_zero());
        }
        let c = public.encrypt(-123_456).unwrap();
        assert_eq!(key.decrypt(&c).unwrap(), -123_456);
        assert_ne!(public.encrypt(5).unwrap(), public.encrypt(5).unwrap(), "fresh randomness each time");
        assert!(PublicKey::from_bytes(&[0, 0, 1]).is_err());
    }

    #[test]
    fn pooled_randomness_is_used_once_each() {
        let public = key512().public().clone().with_pool(3);
        let cts: Vec<Ciphertext> = (0..3).map(|_| public.encrypt(7).unwrap()).collect();
        assert!(public.pool().unwrap().is_empty());
        assert!(cts[0] != cts[1] && cts[1] != cts[2] && cts[0] != cts[2]);
        assert!(cts.iter().all(|c| key512().decrypt(c).unwrap() == 7));
    }

    #[test]
    fn bytes_outside_the_ciphertext_space_are_refused() {
        let public = key512().public();
        assert!(public.read(&vec![0xff; public.width()]).is_err());
        assert!(public.read(&vec![0; public.width()]).is_err());
        assert!(public.read(&[1]).is_err());
    }
}
