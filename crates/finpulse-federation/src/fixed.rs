//! Fixed-point encoding: reals as signed integers scaled by a power of two, so that sums and
//! products under an additive cipher are exact integer arithmetic and come out the same in any
//! order, on any party.

use crate::FederationError;

/// Magnitude limit of an encoded value: encoded integers stay below 2^100 so that sums of many
/// of them and a statistical mask (see [`MASK_BITS`]) still fit in an `i128`.
pub const ENCODED_BITS_MAX: u32 = 100;

/// Bits of the uniform masks a party adds to an encrypted sum before the key holder decrypts it:
/// 2^-(`MASK_BITS` - bits of the sum) statistical hiding, and the masked sum still fits an `i128`.
pub const MASK_BITS: u32 = 118;

/// A fixed-point scale: `x` is encoded as `round(x * 2^frac_bits)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// Fractional bits of the encoding.
    pub frac_bits: u32,
}

impl Fixed {
    /// A scale with `frac_bits` fractional bits (at most 60).
    pub const fn new(frac_bits: u32) -> Self {
        assert!(frac_bits <= 60, "fractional bits are at most 60");
        Self { frac_bits }
    }

    /// `round(x * 2^frac_bits)`; refuses NaN, infinities and values beyond [`ENCODED_BITS_MAX`].
    pub fn encode(self, x: f64) -> Result<i128, FederationError> {
        let scaled = (x * (self.frac_bits as f64).exp2()).round();
        if !scaled.is_finite() || scaled.abs() >= (ENCODED_BITS_MAX as f64).exp2() {
            return Err(FederationError::Encoding { value: x, frac_bits: self.frac_bits });
        }
        Ok(scaled as i128)
    }

    /// The real an encoded integer stands for.
    pub fn decode(self, q: i128) -> f64 {
        q as f64 / (self.frac_bits as f64).exp2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negatives_and_fractions_round_trip_within_half_a_step() {
        let f = Fixed::new(16);
        for x in [-3.75, -0.5, 0.0, 1.0 / 3.0, 12345.678, -1e-6] {
            let q = f.encode(x).unwrap();
            assert!((f.decode(q) - x).abs() <= 0.5 / 65536.0, "{x}");
        }
        assert_eq!(f.encode(-3.75).unwrap(), -245_760);
    }

    #[test]
    fn non_finite_and_huge_values_are_refused() {
        let f = Fixed::new(16);
        assert!(f.encode(f64::NAN).is_err());
        assert!(f.encode(f64::INFINITY).is_err());
        assert!(f.encode(1e30).is_err());
    }
}
