//! Realistic-looking Chinese personal data: resident ID numbers with a valid check digit,
//! mainland mobile numbers, UnionPay card numbers with a valid Luhn digit. All synthetic.

use rand::Rng;

/// Region codes of a few large cities (first six digits of a resident ID).
const REGIONS: [&str; 8] = ["110101", "310104", "440305", "330106", "510107", "420111", "320102", "500103"];

/// An 18-character resident ID number (GB 11643) with a correct check character.
pub(crate) fn resident_id(rng: &mut impl Rng) -> String {
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    let year = rng.random_range(1960..=2005);
    let month = rng.random_range(1..=12);
    let day = rng.random_range(1..=28);
    let seq = rng.random_range(0..1000);
    let body = format!("{region}{year:04}{month:02}{day:02}{seq:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(b, w)| (b - b'0') as u32 * w).sum();
    format!("{body}{}", CHECK[(sum % 11) as usize] as char)
}

/// An 11-digit mainland mobile number.
pub(crate) fn mobile(rng: &mut impl Rng) -> String {
    const PREFIXES: [&str; 8] = ["138", "139", "150", "186", "187", "177", "199", "135"];
    format!("{}{:08}", PREFIXES[rng.random_range(0..PREFIXES.len())], rng.random_range(0..100_000_000u32))
}

/// A 16-digit UnionPay card number (prefix 62) with a valid Luhn check digit.
pub(crate) fn unionpay_card(rng: &mut impl Rng) -> String {
    let body = format!("62{:013}", rng.random_range(0..10_000_000_000_000u64));
    let mut sum = 0;
    for (i, b) in body.bytes().rev().enumerate() {
        let mut d = (b - b'0') as u32;
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A plausible Chinese name.
pub(crate) fn real_name(rng: &mut impl Rng) -> String {
    const FAMILY: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
    const GIVEN: [&str; 12] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷"];
    format!("{}{}", FAMILY[rng.random_range(0..10)], GIVEN[rng.random_range(0..12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn resident_ids_have_valid_check_characters() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        // A known valid example from GB 11643's documentation pattern.
        for _ in 0..100 {
            let id = resident_id(&mut rng);
            assert_eq!(id.len(), 18);
            let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
            let sum: u32 = id.bytes().take(17).zip(weights).map(|(b, w)| (b - b'0') as u32 * w).sum();
            assert_eq!(id.as_bytes()[17], b"10X98765432"[(sum % 11) as usize]);
        }
    }

    #[test]
    fn card_numbers_pass_luhn_and_mobiles_have_eleven_digits() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(2);
        for _ in 0..100 {
            let card = unionpay_card(&mut rng);
            assert!(card.starts_with("62") && card.len() == 16);
            let sum: u32 = card
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = (b - b'0') as u32;
                    if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{card}");
            let m = mobile(&mut rng);
            assert!(m.len() == 11 && m.starts_with('1'));
        }
    }
}
