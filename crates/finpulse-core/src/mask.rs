//! What a reader may see of a field, decided by the field's data class alone: C3 never leaves
//! the server in clear, C2 at JR/T 0197 level 3 and above is masked unless the reader may see it
//! in clear and has stated a purpose, and everything else is shown.
//!
//! A field's [`MaskStyle`] (part of the schema, like its class) says how a masked value looks.

use crate::class::{DataClass, JrCategory};
use serde::{Deserialize, Serialize};

/// The lowest JR/T 0197 level of C2 data that is masked: level 2 is pseudonymous personal data
/// (user ids, amounts, devices) that analytics works on; level 3 identifies a person directly
/// (resident ID, mobile, card number, name, credit data).
pub const MASKED_LEVEL_MIN: u8 = 3;

/// The character masked positions are shown as.
pub const MASK_CHAR: char = '*';

/// How a masked text value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    /// Resident ID: the first 3 and last 4 characters (`110***********1234`).
    IdNumber,
    /// Mobile number: the first 3 and last 4 digits (`138****5678`).
    Mobile,
    /// Bank card: the first and last 4 digits in groups (`6222 **** **** 1234`).
    Card,
    /// Personal name: the first character (`张*`).
    Name,
    /// Anything else: at most a quarter of the characters at each end, the rest masked.
    #[default]
    Partial,
}

impl MaskStyle {
    /// The style a well-known field name implies, for custom fields that do not state one
    /// (the same rule that implies their data class).
    pub fn implied_by_name(field_name: &str) -> Self {
        let name = field_name.to_ascii_lowercase();
        if name.contains("id_number") || name.contains("resident_id") {
            Self::IdNumber
        } else if name.contains("mobile") || name.contains("phone") {
            Self::Mobile
        } else if name.contains("card_number") || name.contains("bank_account") {
            Self::Card
        } else if name.contains("real_name") {
            Self::Name
        } else {
            Self::Partial
        }
    }

    /// The masked form of `value`. Never returns more than the ends the style keeps, whatever
    /// the value's length: a value too short to keep anything is masked whole.
    pub fn apply(self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 8);
        self.write_masked(value, &mut out).expect("writing to a String does not fail");
        out
    }

    /// Writes the masked form of `value` to `out` without building it first (the SQL mask
    /// runs this once per row). ASCII values (identity, mobile and card numbers) are cut by
    /// byte; others by character.
    pub fn write_masked(self, value: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        let n = if value.is_ascii() { value.len() } else { value.chars().count() };
        // The first `head` and last `tail` characters, the rest masked; all masked when the
        // ends would meet.
        let keep = |out: &mut dyn std::fmt::Write, head: usize, tail: usize| -> std::fmt::Result {
            if head + tail >= n {
                return stars(out, n);
            }
            if value.len() == n {
                out.write_str(&value[..head])?;
                stars(out, n - head - tail)?;
                return out.write_str(&value[n - tail..]);
            }
            let tail_start = value.char_indices().nth(n - tail).map_or(value.len(), |(i, _)| i);
            let head_end = value.char_indices().nth(head).map_or(value.len(), |(i, _)| i);
            out.write_str(&value[..head_end])?;
            stars(out, n - head - tail)?;
            out.write_str(&value[tail_start..])
        };
        match self {
            Self::IdNumber | Self::Mobile => keep(out, 3, 4),
            // The common case, digits only, cut by byte.
            Self::Card if n >= 12 && value.bytes().all(|b| b.is_ascii_digit()) => {
                out.write_str(&value[..4])?;
                out.write_str(" **** **** ")?;
                out.write_str(&value[n - 4..])
            }
            Self::Card => {
                let digit = |c: &char| !c.is_whitespace() && *c != '-';
                let digits = value.chars().filter(digit).count();
                if digits < 12 {
                    return stars(out, n);
                }
                let mut kept = value.chars().filter(digit);
                for c in kept.by_ref().take(4) {
                    out.write_char(c)?;
                }
                out.write_str(" **** **** ")?;
                for c in kept.skip(digits - 8) {
                    out.write_char(c)?;
                }
                Ok(())
            }
            Self::Name => keep(out, 1.min(n.saturating_sub(1)), 0),
            Self::Partial => keep(out, n / 4, n / 4),
        }
    }
}

fn stars(out: &mut dyn std::fmt::Write, n: usize) -> std::fmt::Result {
    const STARS: &str = "********************************";
    let mut left = n;
    while left > 0 {
        let take = left.min(STARS.len());
        out.write_str(&STARS[..take])?;
        left -= take;
    }
    Ok(())
}

/// How much of the C2 data a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Exposure {
    /// Masked (the default for everyone).
    #[default]
    Masked,
    /// In clear: the reader holds the permission and stated a purpose, and the read is audited.
    Clear,
    /// Everything as stored, C3 included: only for the engine's own computations (models,
    /// rules, insights), never for an answer.
    Internal,
}

/// What happens to one field on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldExposure {
    /// Shown as stored.
    Shown,
    /// Masked in the given style (text), or null (other types).
    Masked(MaskStyle),
    /// Never shown: null.
    Withheld,
}

/// What a reader with `exposure` sees of a field of `class` masked in `style`.
pub fn field_exposure(class: DataClass, style: MaskStyle, exposure: Exposure) -> FieldExposure {
    if exposure == Exposure::Internal {
        return FieldExposure::Shown;
    }
    match class.category {
        JrCategory::C3 => FieldExposure::Withheld,
        JrCategory::C2 if class.level >= MASKED_LEVEL_MIN && exposure == Exposure::Masked => FieldExposure::Masked(style),
        _ => FieldExposure::Shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_style_masks_as_the_standard_examples_show() {
        assert_eq!(MaskStyle::IdNumber.apply("110101199003071234"), "110***********1234");
        assert_eq!(MaskStyle::Mobile.apply("13812345678"), "138****5678");
        assert_eq!(MaskStyle::Card.apply("6222021234561234"), "6222 **** **** 1234");
        assert_eq!(MaskStyle::Card.apply("6222 0212 3456 1234 567"), "6222 **** **** 4567");
        assert_eq!(MaskStyle::Name.apply("张三"), "张*");
        assert_eq!(MaskStyle::Name.apply("欧阳娜娜"), "欧***");
        assert_eq!(MaskStyle::Partial.apply("abcdefgh"), "ab****gh");
    }

    #[test]
    fn masking_keeps_the_length_in_characters_whatever_the_script() {
        for value in ["账户6222021234561234", "abc", "张三丰", "13812345678", "é1234567890ü", ""] {
            for style in [MaskStyle::IdNumber, MaskStyle::Mobile, MaskStyle::Name, MaskStyle::Partial] {
                let masked = style.apply(value);
                assert_eq!(masked.chars().count(), value.chars().count(), "{style:?} {value:?} -> {masked:?}");
            }
        }
        assert_eq!(MaskStyle::Partial.apply("账户6222021234561234"), "账户62**********1234");
        assert_eq!(MaskStyle::IdNumber.apply("é1234567890ü"), "é12*****890ü");
    }

    #[test]
    fn short_values_are_masked_whole() {
        assert_eq!(MaskStyle::Mobile.apply("1234567"), "*******");
        assert_eq!(MaskStyle::Card.apply("1234"), "****");
        assert_eq!(MaskStyle::Name.apply("张"), "*");
        assert_eq!(MaskStyle::Partial.apply("abc"), "***");
        assert_eq!(MaskStyle::IdNumber.apply(""), "");
    }

    #[test]
    fn exposure_follows_the_class_not_the_name() {
        use FieldExposure::*;
        let s = MaskStyle::Mobile;
        assert_eq!(field_exposure(DataClass::SENSITIVE, s, Exposure::Masked), Masked(s));
        assert_eq!(field_exposure(DataClass::SENSITIVE, s, Exposure::Clear), Shown);
        assert_eq!(field_exposure(DataClass::AUTHENTICATION, s, Exposure::Clear), Withheld);
        assert_eq!(field_exposure(DataClass::PERSONAL, s, Exposure::Masked), Shown);
        assert_eq!(field_exposure(DataClass::BASIC, s, Exposure::Masked), Shown);
        assert_eq!(field_exposure(DataClass::AUTHENTICATION, s, Exposure::Internal), Shown);
    }
}
