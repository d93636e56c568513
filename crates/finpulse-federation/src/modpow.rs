//! Arithmetic modulo one odd modulus: products (`num-bigint`), powers (`crypto-bigint`'s
//! Montgomery form: the fastest of the pure-Rust libraries measured, and constant-time in the
//! exponent, which matters because decryption raises to secret exponents), and products of
//! many powers (the weighted sums of ciphertexts) by Pippenger's bucket method.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use num_bigint::BigUint;
use num_traits::One;

/// An odd modulus and what is precomputed for it.
#[derive(Debug, Clone)]
pub struct Modulus {
    value: BigUint,
    params: BoxedMontyParams,
    precision: u32,
}

fn boxed(x: &BigUint, precision: u32) -> BoxedUint {
    // `x` has at most `precision` bits: callers reduce it or size `precision` from it.
    BoxedUint::from_be_slice(&x.to_bytes_be(), precision).expect("a value within the precision")
}

fn precision_of(x: &BigUint) -> u32 {
    (x.bits().max(1) as u32).div_ceil(64) * 64
}

impl Modulus {
    /// The modulus `value` (odd).
    pub fn new(value: BigUint) -> Self {
        assert!(value.bit(0), "an odd modulus");
        let precision = precision_of(&value);
        // Checked odd above.
        let odd = Odd::new(boxed(&value, precision)).expect("an odd modulus");
        Self { params: BoxedMontyParams::new(odd), value, precision }
    }

    /// The modulus.
    pub fn value(&self) -> &BigUint {
        &self.value
    }

    /// `a·b mod m`.
    pub fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a * b) % &self.value
    }

    /// `base^exp mod m` for a public exponent of at most 64 bits (variable time: square and
    /// multiply on `num-bigint`, cheaper than a constant-time window for short exponents).
    pub fn pow_public_small(&self, base: &BigUint, exp: u64) -> BigUint {
        let mut acc = BigUint::one();
        for i in (0..64 - exp.leading_zeros()).rev() {
            acc = self.mul(&acc, &acc);
            if exp >> i & 1 == 1 {
                acc = self.mul(&acc, base);
            }
        }
        acc
    }

    /// `base^exp mod m`, in time that depends on the exponent's length but not its value.
    pub fn pow(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let base = BoxedMontyForm::new(boxed(&(base % &self.value), self.precision), self.params.clone());
        let exp = boxed(exp, precision_of(exp));
        BigUint::from_bytes_be(&base.pow(&exp).retrieve().to_be_bytes())
    }
}

/// Powers of one fixed base, precomputed by windows of the exponent's bits: `base^e` is then
/// one product per window, with no squaring.
#[derive(Debug)]
pub struct FixedBase {
    /// `table[i][d − 1] = base^(d·2^(WINDOW_BITS·i))`.
    table: Vec<Vec<BigUint>>,
}

/// Exponent bits per window of a [`FixedBase`] table.
const WINDOW_BITS: u32 = 8;

impl FixedBase {
    /// The table for exponents of at most `exp_bits` bits.
    pub fn new(m: &Modulus, base: &BigUint, exp_bits: u32) -> Self {
        use rayon::prelude::*;
        let windows = exp_bits.div_ceil(WINDOW_BITS) as usize;
        let mut firsts = Vec::with_capacity(windows);
        let mut b = base % m.value();
        for _ in 0..windows {
            firsts.push(b.clone());
            for _ in 0..WINDOW_BITS {
                b = m.mul(&b, &b);
            }
        }
        let table = firsts
            .par_iter()
            .map(|first| {
                let mut row = Vec::with_capacity((1 << WINDOW_BITS) - 1);
                row.push(first.clone());
                for d in 1..(1usize << WINDOW_BITS) - 1 {
                    row.push(m.mul(&row[d - 1], first));
                }
                row
            })
            .collect();
        Self { table }
    }

    /// `base^exp mod m`; `exp` must have at most the bits the table was made for.
    pub fn pow(&self, m: &Modulus, exp: &BigUint) -> BigUint {
        assert!(exp.bits() <= (self.table.len() as u64) * WINDOW_BITS as u64, "an exponent within the table");
        let bytes = exp.to_bytes_le();
        let mut acc: Option<BigUint> = None;
        for (i, &digit) in bytes.iter().enumerate() {
            if digit != 0 {
                let factor = &self.table[i][digit as usize - 1];
                acc = Some(acc.map_or_else(|| factor.clone(), |a| m.mul(&a, factor)));
            }
        }
        acc.unwrap_or_else(BigUint::one)
    }
}

/// Window bits of the bucket method for `n` bases: about `log2(n) − 2`, within 1..=8.
fn window_bits(n: usize) -> u32 {
    (usize::BITS - n.leading_zeros()).saturating_sub(2).clamp(1, 8)
}

/// `Π base_i^weight_i mod m`: per window of the weights' bits, each base joins the bucket of
/// its digit, and the buckets are combined by running products — about
/// `(bits / c)·(n + 2^(c+1))` products instead of `n·(bits + bits/2)`.
pub fn multi_pow(m: &Modulus, bases: &[BigUint], weights: &[u64]) -> BigUint {
    assert_eq!(bases.len(), weights.len(), "one weight per base");
    let bits = 64 - weights.iter().copied().max().unwrap_or(0).leading_zeros();
    if bits == 0 {
        return BigUint::one();
    }
    let c = window_bits(bases.len());
    let windows = bits.div_ceil(c);
    let mut acc = BigUint::one();
    for w in (0..windows).rev() {
        for _ in 0..c {
            if !acc.is_one() {
                acc = m.mul(&acc, &acc);
            }
        }
        let mut buckets: Vec<Option<BigUint>> = vec![None; 1 << c];
        for (base, &weight) in bases.iter().zip(weights) {
            let digit = ((weight >> (w * c)) & ((1 << c) - 1)) as usize;
            if digit != 0 {
                buckets[digit] = Some(match &buckets[digit] {
                    Some(b) => m.mul(b, base),
                    None => base.clone(),
                });
            }
        }
        let mut running: Option<BigUint> = None;
        let mut total: Option<BigUint> = None;
        for bucket in buckets.iter().skip(1).rev() {
            if let Some(b) = bucket {
                running = Some(running.map_or_else(|| b.clone(), |r| m.mul(&r, b)));
            }
            if let Some(r) = &running {
                total = Some(total.map_or_else(|| r.clone(), |t| m.mul(&t, r)));
            }
        }
        if let Some(t) = total {
            acc = m.mul(&acc, &t);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_base_powers_equal_plain_powers() {
        let m = Modulus::new(BigUint::from(1_000_003u64 * 999_983u64));
        let base = BigUint::from(123_456_789u64);
        let table = FixedBase::new(&m, &base, 40);
        for e in [0u64, 1, 255, 256, 65_537, (1 << 40) - 1] {
            assert_eq!(table.pow(&m, &BigUint::from(e)), m.pow(&base, &BigUint::from(e)), "{e}");
        }
    }

    #[test]
    fn multi_pow_equals_the_product_of_powers() {
        let m = Modulus::new(BigUint::from(1_000_003u64 * 999_983u64));
        let bases: Vec<BigUint> = (2u32..40).map(|b| BigUint::from(b * 7919)).collect();
        let weights: Vec<u64> = (0..38u64).map(|i| (i * 2_654_435_761) % 70_000).collect();
        let expected = bases.iter().zip(&weights).fold(BigUint::one(), |acc, (b, &w)| m.mul(&acc, &m.pow(b, &BigUint::from(w))));
        assert_eq!(multi_pow(&m, &bases, &weights), expected);
        assert_eq!(multi_pow(&m, &bases, &vec![0; 38]), BigUint::one());
    }
}
