//! Exact money: integer minor units plus an ISO 4217 currency code. Never floating point.

use std::fmt;

/// An ISO 4217 alphabetic currency code: three ASCII upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Chinese yuan renminbi, the home currency; its minor unit is the fen.
    pub const CNY: Self = Self(*b"CNY");

    /// Parses a code; `None` unless it is exactly three ASCII upper-case letters.
    pub fn parse(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Some(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII upper-case letters by construction in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in minor units (fen for CNY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in the currency's minor unit.
    pub amount_minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in fen of CNY.
    pub const fn cny_fen(amount_fen: i64) -> Self {
        Self { amount_minor: amount_fen, currency: Currency::CNY }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_must_be_three_upper_case_letters() {
        assert_eq!(Currency::parse("CNY"), Some(Currency::CNY));
        assert_eq!(Currency::parse("cny"), None);
        assert_eq!(Currency::parse("CN"), None);
        assert_eq!(Currency::parse("CNYY"), None);
        assert_eq!(Currency::parse("C1Y"), None);
    }

    #[test]
    fn money_displays_exact_minor_units() {
        assert_eq!(Money::cny_fen(12345).to_string(), "123.45 CNY");
        assert_eq!(Money::cny_fen(-5).to_string(), "-0.05 CNY");
    }
}
