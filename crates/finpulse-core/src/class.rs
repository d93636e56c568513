//! Data classes: every field carries a JR/T 0171-2020 category and a JR/T 0197-2020 level, so
//! masking, encryption and audit can follow the class instead of ad-hoc code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// JR/T 0171-2020 personal financial information category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JrCategory {
    /// C1: internal and basic account information whose leak has limited effect.
    C1,
    /// C2: information that identifies a person or their finances (ID number, mobile, card number,
    /// transactions, credit data).
    C2,
    /// C3: authentication information (passwords, CVN, biometrics) whose leak harms directly.
    C3,
}

/// The lowest and highest JR/T 0197-2020 data security level.
pub const LEVEL_MIN: u8 = 1;
/// See [`LEVEL_MIN`].
pub const LEVEL_MAX: u8 = 5;

/// A field's data class: JR/T 0171 category plus JR/T 0197 level (1 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataClass {
    /// JR/T 0171-2020 category.
    pub category: JrCategory,
    /// JR/T 0197-2020 level, 1 (public) to 5 (critical).
    pub level: u8,
}

impl DataClass {
    /// Builds a class; `None` when the level is outside 1..=5.
    pub const fn new(category: JrCategory, level: u8) -> Option<Self> {
        if level < LEVEL_MIN || level > LEVEL_MAX {
            return None;
        }
        Some(Self { category, level })
    }

    /// Internal, non-personal data such as ids of terminals or currencies.
    pub const INTERNAL: Self = Self { category: JrCategory::C1, level: 1 };
    /// Basic account and behaviour data: sessions, pages, channels.
    pub const BASIC: Self = Self { category: JrCategory::C1, level: 2 };
    /// Personal financial data: amounts, balances, pseudonymous user ids, devices.
    pub const PERSONAL: Self = Self { category: JrCategory::C2, level: 2 };
    /// Sensitive personal data: resident ID, mobile, card number, real name, credit data.
    pub const SENSITIVE: Self = Self { category: JrCategory::C2, level: 3 };
    /// Authentication data: passwords, CVN, biometrics.
    pub const AUTHENTICATION: Self = Self { category: JrCategory::C3, level: 4 };

    /// The class a well-known personal-data field name implies, used when a custom type does
    /// not state one. `None` for names that imply nothing.
    pub fn implied_by_name(field_name: &str) -> Option<Self> {
        let name = field_name.to_ascii_lowercase();
        const AUTH: [&str; 6] = ["password", "cvn", "cvv", "pin", "biometric", "otp"];
        const SENSITIVE: [&str; 7] = ["id_number", "resident_id", "mobile", "phone", "card_number", "real_name", "bank_account"];
        if AUTH.iter().any(|w| name.contains(w)) {
            return Some(Self::AUTHENTICATION);
        }
        if SENSITIVE.iter().any(|w| name.contains(w)) {
            return Some(Self::SENSITIVE);
        }
        None
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/L{}", self.category, self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_outside_one_to_five_are_refused() {
        assert!(DataClass::new(JrCategory::C2, 0).is_none());
        assert!(DataClass::new(JrCategory::C2, 6).is_none());
        assert_eq!(DataClass::new(JrCategory::C3, 4), Some(DataClass::AUTHENTICATION));
    }

    #[test]
    fn passwords_and_cvn_imply_c3_level_4_and_id_numbers_c2_level_3() {
        assert_eq!(DataClass::implied_by_name("login_password"), Some(DataClass::AUTHENTICATION));
        assert_eq!(DataClass::implied_by_name("CVN"), Some(DataClass::AUTHENTICATION));
        assert_eq!(DataClass::implied_by_name("resident_id_number"), Some(DataClass::SENSITIVE));
        assert_eq!(DataClass::implied_by_name("mobile"), Some(DataClass::SENSITIVE));
        assert_eq!(DataClass::implied_by_name("amount_fen"), None);
    }
}
