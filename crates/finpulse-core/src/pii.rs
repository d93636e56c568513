//! Personal data (PII) in Chinese formats: whether a value is personal data of a known kind, and
//! where such values sit inside free text, judged from each format's own structure and check
//! character alone (std only: no dictionaries, no network).
//!
//! # What is recognised
//!
//! - [`PiiKind::ResidentId`], 居民身份证号码 (GB 11643-1999): 18 characters — a 6-digit region
//!   code whose first two digits are a province-level code (11–15, 21–23, 31–37, 41–46, 50–54,
//!   61–65, 71, and 81/82/83 for the residence permits of Hong Kong, Macau and Taiwan residents,
//!   which share the format), the birth date `YYYYMMDD` (a real calendar date in 1900..=2100),
//!   a 3-digit sequence and the check character (`X`, or `x`, stands for 10). Also the 15-digit
//!   first generation: region, birth date `YYMMDD` read as 19YY, 3 digits, no check character.
//! - [`PiiKind::Mobile`], mainland mobile numbers: 11 digits opening with an assigned mobile
//!   prefix (`13x`, `14[5-9]`, `15x` but 154, `16[2567]`, `17[0-8]`, `18x`, `19x` but 194),
//!   bare or in the 3-4-4 layout with one space or one hyphen, optionally after `+86`, `0086`
//!   or `86` and one optional separator.
//! - [`PiiKind::BankCard`]: 16–19 digits, Luhn-valid, starting with 62 (UnionPay) or with 3, 4
//!   or 5 (JCB, Visa, Mastercard, which Chinese banks issue as well). Deliberately the schemes'
//!   prefixes rather than a list of bank BINs: a BIN list goes stale and misses small banks,
//!   while length plus Luhn already reject nine random numbers in ten. Bare, or in groups of
//!   four joined by one space or one hyphen (the last group may be shorter).
//! - [`PiiKind::SocialCreditCode`], 统一社会信用代码 (GB 32100-2015): 18 characters from
//!   `0-9A-HJ-NPQRTUWXY`; a registration authority and category from the standard's table
//!   (1 or 5 with 1/2/3/9, 9 with 1/2/3, Y with 1); a 6-digit region code (a province code, or
//!   `10` for national registrations such as `121000…`); the 9-character organisation code,
//!   whose own GB 11714-1997 check character is verified too; the mod-31 check character.
//!   A legal entity's code, but it names a person when the entity is a sole trader (`92…`).
//! - [`PiiKind::Email`]: a pragmatic RFC 5322 subset, `local@domain.tld` — a dot-atom local part
//!   of at most 64 characters, two or more domain labels of letters, digits and inner hyphens,
//!   a top-level domain of two or more letters, at most 254 characters in all.
//! - [`PiiKind::Passport`], PRC ordinary passports (普通护照): `G` + 8 digits (before 2012),
//!   `E` + 8 digits (electronic passports, from 2012) and `E` + a letter other than I and O + 7
//!   digits (once the `E` numbers ran out). Source: 国家移民管理局's answer 「中国护照号码按照
//!   什么规则编制」 (February 2024).
//! - [`PiiKind::HkMacauPermit`], mainland residents' 往来港澳通行证: `C` + 8 digits (the card type,
//!   from May 2014), `C` + a letter other than I and O + 7 digits (from `CA0000001`, announced in
//!   国家移民管理局's 「电子往来港澳通行证号码编制规则调整」, 2018-12-10), and `W` + 8 digits for
//!   the older booklet type (common practice, not a published rule).
//!
//! Letters must be upper case, as the documents print them, except the resident-ID check `x`.
//!
//! # Check characters
//!
//! - Resident ID, ISO 7064 MOD 11-2: the 17 digits times the weights 7 9 10 5 8 4 2 1 6 3 7 9 10
//!   5 8 4 2 (2^(17−i) mod 11), summed mod 11, index `"10X98765432"`. It catches every
//!   single-digit error and every swap of adjacent digits.
//! - Bank card, Luhn (ISO/IEC 7812-1): catches every single-digit error and every adjacent swap
//!   except 09 ↔ 90.
//! - Social credit code: each character's value in the 31-character alphabet times the weights
//!   1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28 (3^i mod 31), check = (31 − sum mod 31) mod
//!   31. The embedded organisation code: weights 3 7 9 10 5 8 4 2 over its first 8 characters
//!   (letters count A = 10 … Z = 35), check = 11 − sum mod 11, with 10 written `X` and 11 `0`.
//! - Mobiles, passports, permits and 15-digit IDs carry none: structure is all there is.
//!
//! # Deliberately not recognised
//!
//! Taiwan's own identity numbers (`A123456789`), Hong Kong and Macau identity cards, the
//! 港澳居民来往内地通行证 (`H`/`M` + digits) and 台胞证, diplomatic, service and public-affairs
//! passports (`DE`, `SE`, `PE`…), foreigners' permanent residence cards, landlines, social
//! credit codes of registration authorities added after the standard's original table (such as
//! law firms' `31…`), numbers written in full-width digits or with separators other than the
//! layouts above, lower-case document letters, internationalised e-mail addresses, names and
//! addresses. The 15-digit first-generation ID has no check character, so any 15-digit number
//! with a province code and a real `YYMMDD` passes: about one random number in eighty, IMEIs
//! included. Cards have only Luhn, so one broken 17–19-digit ID in ten that starts with 3, 4, 5
//! or 62 reads as a card.
//!
//! # Finding personal data in text
//!
//! [`find_all`] finds e-mail addresses around each `@` first, then reads the rest as groups of
//! ASCII letters and digits: a value is one group, or up to five groups joined by single spaces
//! or hyphens (3-4-4 mobiles, 4-4-4-4 cards, a country code), and the longest that classifies
//! wins. A value must stand alone: no letter or digit may touch it, it may not continue into a
//! longer number through `.`, `,` or `-` and a digit (amounts, dates, landlines, order
//! numbers), and a grouped value may not continue with a further digit group. So digits inside
//! longer runs, hashes and identifiers never match, and neither does a mobile glued to a label
//! (`Tel13800138000`); Chinese text around a value is fine. Matches never overlap: a mobile
//! that is an e-mail's local part is reported as the e-mail.
//!
//! # The labelled evaluation set
//!
//! The tests build a labelled set with a seeded splitmix64 generator: 3,000 positives per kind
//! with valid check characters, realistic prefixes (province and region codes, assigned mobile
//! prefixes, UnionPay and scheme BINs, registration types, mail domains) and every accepted
//! layout; and families of hard negatives of 600 each: the same values with one digit changed or
//! two adjacent digits swapped, impossible birth dates (30 February, 29 February 1900), unknown
//! province and registration codes with recomputed check characters, 17- and 19/20-digit runs
//! cut from IDs, Luhn-valid numbers of the wrong length or with a non-card prefix, unassigned
//! mobile prefixes, landlines, malformed layouts, broken e-mail addresses, timestamps, order
//! numbers, snowflake ids, IMEIs and amounts. The tests print precision and recall per kind and
//! which families were taken for what, assert the floors measured, and check that [`find_all`]
//! on each value set in Chinese prose agrees with [`classify`] on the bare value.

use std::fmt;
use std::ops::Range;

/// A kind of personal data this module recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// Resident identity number (居民身份证号码, GB 11643-1999), 18 or 15 digits; also the
    /// residence permits of Hong Kong, Macau and Taiwan residents, which share the format.
    ResidentId,
    /// Mainland mobile number, 11 digits, optionally with the +86 country code.
    Mobile,
    /// Payment card number: UnionPay, or a Visa, Mastercard or JCB card, Luhn-checked.
    BankCard,
    /// Unified social credit code of an organisation (统一社会信用代码, GB 32100-2015).
    SocialCreditCode,
    /// E-mail address.
    Email,
    /// PRC ordinary passport number (普通护照).
    Passport,
    /// Mainland residents' travel permit to Hong Kong and Macau (往来港澳通行证).
    HkMacauPermit,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 7] = [
        PiiKind::ResidentId,
        PiiKind::Mobile,
        PiiKind::BankCard,
        PiiKind::SocialCreditCode,
        PiiKind::Email,
        PiiKind::Passport,
        PiiKind::HkMacauPermit,
    ];

    /// The kind's stable snake_case name, for logs, configuration and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::ResidentId => "resident_id",
            PiiKind::Mobile => "mobile",
            PiiKind::BankCard => "bank_card",
            PiiKind::SocialCreditCode => "social_credit_code",
            PiiKind::Email => "email",
            PiiKind::Passport => "passport",
            PiiKind::HkMacauPermit => "hk_macau_permit",
        }
    }

    /// Whether `value`, exactly as given (no trimming), is personal data of this kind.
    pub fn recognises(self, value: &str) -> bool {
        match self {
            PiiKind::ResidentId => is_resident_id(value),
            PiiKind::Mobile => is_mobile(value),
            PiiKind::BankCard => is_bank_card(value),
            PiiKind::SocialCreditCode => is_social_credit_code(value),
            PiiKind::Email => is_email(value),
            PiiKind::Passport => is_passport(value),
            PiiKind::HkMacauPermit => is_hk_macau_permit(value),
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The order [`classify`] tries the kinds in. Only e-mail has an `@` and only mobiles have 11
/// digits; the all-digit 18-character kinds go from the strongest check to the weakest, so the
/// rare number that is valid as two kinds gets the more specific name; the travel documents
/// start with letters no other kind allows.
const CLASSIFY_ORDER: [PiiKind; 7] = [
    PiiKind::Email,
    PiiKind::Mobile,
    PiiKind::ResidentId,
    PiiKind::SocialCreditCode,
    PiiKind::BankCard,
    PiiKind::Passport,
    PiiKind::HkMacauPermit,
];

/// One piece of personal data found in a text by [`find_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    /// What it is.
    pub kind: PiiKind,
    /// Byte offset of its first byte in the text.
    pub start: usize,
    /// Byte offset just past its last byte.
    pub end: usize,
}

impl Match {
    /// Its byte range, always on char boundaries: `&text[m.range()]` is the value.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// The kind of personal data `value` is, if any, after trimming surrounding whitespace. Kinds
/// are tried in a fixed order (e-mail, mobile, resident ID, social credit code, bank card,
/// passport, permit), so a value valid as two kinds gets the more specific one.
pub fn classify(value: &str) -> Option<PiiKind> {
    classify_exact(value.trim())
}

fn classify_exact(value: &str) -> Option<PiiKind> {
    CLASSIFY_ORDER.into_iter().find(|kind| kind.recognises(value))
}

/// Every piece of personal data in `text`, in order, with byte ranges; matches never overlap.
/// Values must stand alone (see the module documentation): digits inside longer digit runs,
/// amounts, dates and identifiers are not matched. The result has at most one match per
/// six bytes of text, so it is bounded by the input.
pub fn find_all(text: &str) -> Vec<Match> {
    let emails = find_emails(text);
    let mut found = find_outside(text, &emails);
    found.extend(emails);
    found.sort_by_key(|m| m.start);
    found
}

// ---------------------------------------------------------------------------------------------
// Resident identity numbers

/// Characters in a resident ID number (GB 11643-1999).
const RESIDENT_ID_LEN: usize = 18;
/// Characters in a first-generation (1984–2004) resident ID number.
const RESIDENT_ID_FIRST_GENERATION_LEN: usize = 15;
/// Earliest birth year accepted in an 18-digit number.
const BIRTH_YEAR_MIN: u32 = 1900;
/// Latest birth year accepted in an 18-digit number.
const BIRTH_YEAR_MAX: u32 = 2100;
/// The century a first-generation number's two-digit year lies in.
const FIRST_GENERATION_CENTURY: u32 = 1900;
/// ISO 7064 MOD 11-2 weights of the 17 body digits: 2^(17−i) mod 11.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each weighted sum mod 11.
const RESIDENT_ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";
/// Province-level codes (GB/T 2260) that open a resident's region code: 71 is Taiwan, and 81,
/// 82, 83 open the residence permits of Hong Kong, Macau and Taiwan residents.
const PROVINCE_CODES: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
    83,
];

/// Whether `s` is an 18-digit resident ID number with a province code, a real birth date in
/// 1900..=2100 and a valid check character (`X` or `x`), or a 15-digit first-generation one
/// with a province code and a real 19YY birth date.
pub fn is_resident_id(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        RESIDENT_ID_LEN => is_resident_id_18(b),
        RESIDENT_ID_FIRST_GENERATION_LEN => is_resident_id_15(b),
        _ => false,
    }
}

fn is_resident_id_18(b: &[u8]) -> bool {
    let (body, check) = b.split_at(RESIDENT_ID_LEN - 1);
    if !all_digits(body) || !is_province_code(number(&body[..2])) {
        return false;
    }
    let year = number(&body[6..10]);
    (BIRTH_YEAR_MIN..=BIRTH_YEAR_MAX).contains(&year)
        && is_real_date(year, number(&body[10..12]), number(&body[12..14]))
        && check[0].to_ascii_uppercase() == resident_id_check_char(body)
}

fn is_resident_id_15(b: &[u8]) -> bool {
    all_digits(b)
        && is_province_code(number(&b[..2]))
        && is_real_date(FIRST_GENERATION_CENTURY + number(&b[6..8]), number(&b[8..10]), number(&b[10..12]))
}

/// The check character of 17 ASCII digits (the caller has checked they are digits).
fn resident_id_check_char(body: &[u8]) -> u8 {
    debug_assert!(body.len() == RESIDENT_ID_LEN - 1 && all_digits(body));
    let sum: u32 = body.iter().zip(RESIDENT_ID_WEIGHTS).map(|(&c, w)| u32::from(c - b'0') * w).sum();
    RESIDENT_ID_CHECK_CHARS[(sum % 11) as usize]
}

fn is_province_code(code: u32) -> bool {
    PROVINCE_CODES.contains(&code)
}

/// Whether `year-month-day` exists in the Gregorian calendar.
fn is_real_date(year: u32, month: u32, day: u32) -> bool {
    day >= 1 && day <= days_in_month(year, month)
}

/// Days in `month` (1..=12) of `year`; 0 for a month that does not exist.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

// ---------------------------------------------------------------------------------------------
// Mobile numbers

/// Digits in a mainland mobile number.
const MOBILE_DIGITS: usize = 11;
/// Characters in the 3-4-4 layout: 11 digits and two separators.
const MOBILE_GROUPED_LEN: usize = MOBILE_DIGITS + 2;
/// Ways the country code is written before a mobile number, longest first where one is a
/// prefix of another (`86` alone is safe: no national number starts with 8).
const COUNTRY_CODE_PREFIXES: [&str; 3] = ["+86", "0086", "86"];
/// The separators allowed inside the layouts (after a country code, between digit groups).
const SEPARATOR_CHARS: [char; 2] = [' ', '-'];

/// Whether `s` is a mainland mobile number: an assigned 3-digit prefix and 8 more digits, bare
/// or as 3-4-4 with one space or one hyphen, optionally after `+86`, `0086` or `86` and one
/// optional space or hyphen.
pub fn is_mobile(s: &str) -> bool {
    is_national_mobile(without_country_code(s))
}

fn without_country_code(s: &str) -> &str {
    match COUNTRY_CODE_PREFIXES.iter().find_map(|prefix| s.strip_prefix(prefix)) {
        Some(rest) => rest.strip_prefix(SEPARATOR_CHARS).unwrap_or(rest),
        None => s,
    }
}

fn is_national_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    let well_formed = match b.len() {
        MOBILE_DIGITS => all_digits(b),
        MOBILE_GROUPED_LEN => is_separator(b[3]) && b[8] == b[3] && all_digits(&b[..3]) && all_digits(&b[4..8]) && all_digits(&b[9..]),
        _ => false,
    };
    well_formed && is_assigned_mobile_prefix(b[0] - b'0', b[1] - b'0', b[2] - b'0')
}

/// Whether the first three digits open a mobile number in the MIIT numbering plan: 13x,
/// 145–149 (data and messaging numbers among them), 15x but 154, 162/165/166/167, 170–178,
/// 18x, 19x but 194. 140–144 are 13-digit IoT numbers, never 11-digit ones.
fn is_assigned_mobile_prefix(first: u8, second: u8, third: u8) -> bool {
    first == 1
        && match second {
            3 | 8 => true,
            4 => (5..=9).contains(&third),
            5 | 9 => third != 4,
            6 => matches!(third, 2 | 5 | 6 | 7),
            7 => third <= 8,
            _ => false,
        }
}

// ---------------------------------------------------------------------------------------------
// Bank cards

/// Fewest digits in a card number accepted (ISO/IEC 7812 allows fewer; Chinese cards have 16+).
const CARD_DIGITS_MIN: usize = 16;
/// Most digits in a card number.
const CARD_DIGITS_MAX: usize = 19;
/// Digits per group when a card number is written in groups.
const CARD_GROUP_DIGITS: usize = 4;

/// Whether `s` is a payment card number: 16–19 digits, Luhn-valid, starting with 62 (UnionPay)
/// or 3, 4 or 5 (JCB, Visa, Mastercard), bare or in groups of four joined by one space or
/// one hyphen.
pub fn is_bank_card(s: &str) -> bool {
    let mut digits = [0u8; CARD_DIGITS_MAX];
    let Some(n) = card_digits(s.as_bytes(), &mut digits) else {
        return false;
    };
    let digits = &digits[..n];
    n >= CARD_DIGITS_MIN && is_card_scheme_prefix(digits) && luhn_sum(digits, false).is_multiple_of(10)
}

/// Copies the digits of a card number written bare or in groups of four into `out` and returns
/// how many there are, or `None` if it is written otherwise or has more than fit.
fn card_digits(b: &[u8], out: &mut [u8; CARD_DIGITS_MAX]) -> Option<usize> {
    let separator = b.get(CARD_GROUP_DIGITS).copied().filter(|&c| is_separator(c));
    let mut n = 0;
    for (i, &c) in b.iter().enumerate() {
        let separator_slot = separator.is_some() && i % (CARD_GROUP_DIGITS + 1) == CARD_GROUP_DIGITS;
        if separator_slot {
            if Some(c) != separator || i + 1 == b.len() {
                return None;
            }
        } else if c.is_ascii_digit() && n < CARD_DIGITS_MAX {
            out[n] = c;
            n += 1;
        } else {
            return None;
        }
    }
    Some(n)
}

fn is_card_scheme_prefix(digits: &[u8]) -> bool {
    matches!(digits, [b'3' | b'4' | b'5', ..] | [b'6', b'2', ..])
}

/// The Luhn sum of ASCII `digits`: every second digit from the right doubled (digits of the
/// product summed), starting with the rightmost one if `double_rightmost` (computing a check
/// digit) or the one left of it (verifying a number).
fn luhn_sum(digits: &[u8], double_rightmost: bool) -> u32 {
    let doubled_parity = usize::from(!double_rightmost);
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == doubled_parity { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Unified social credit codes

/// Characters in a unified social credit code.
const SCC_LEN: usize = 18;
/// The code's alphabet (GB 32100-2015): digits and capitals without I, O, S, V, Z; a
/// character's value is its index.
const SCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of the 17 characters before the check character: 3^i mod 31.
const SCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// Registration authorities and the organisation categories each registers (GB 32100-2015,
/// table 1): 1 机构编制, 5 民政, 9 工商, Y 其他.
const SCC_AUTHORITY_CATEGORIES: [(u8, &[u8]); 4] = [(b'1', b"1239"), (b'5', b"1239"), (b'9', b"123"), (b'Y', b"1")];
/// The first two digits of the region code of organisations registered at national level
/// (`100000`), which no resident ID uses.
const NATIONAL_REGION: u32 = 10;
/// Where the organisation code (GB 11714-1997) sits in a social credit code.
const SCC_ORG_CODE: Range<usize> = 8..17;
/// Weights of the organisation code's 8 characters before its check character.
const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Whether `s` is a unified social credit code: 18 characters from the code's alphabet, a
/// registration authority and category from GB 32100-2015's table, a region code, an
/// organisation code with a valid GB 11714 check character, and a valid mod-31 check character.
pub fn is_social_credit_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == SCC_LEN
        && b.iter().all(|&c| scc_value(c).is_some())
        && is_scc_registration_type(b[0], b[1])
        && is_scc_region(&b[2..8])
        && org_code_check_char(&b[SCC_ORG_CODE.start..SCC_ORG_CODE.end - 1]) == Some(b[SCC_ORG_CODE.end - 1])
        && scc_check_char(&b[..SCC_LEN - 1]) == Some(b[SCC_LEN - 1])
}

fn scc_value(c: u8) -> Option<u32> {
    SCC_ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

fn is_scc_registration_type(authority: u8, category: u8) -> bool {
    SCC_AUTHORITY_CATEGORIES.iter().any(|(a, categories)| *a == authority && categories.contains(&category))
}

fn is_scc_region(region: &[u8]) -> bool {
    all_digits(region) && {
        let province = number(&region[..2]);
        is_province_code(province) || province == NATIONAL_REGION
    }
}

/// The mod-31 check character of a code's first 17 characters, `None` if one is outside the
/// alphabet.
fn scc_check_char(body: &[u8]) -> Option<u8> {
    let mut sum = 0;
    for (&c, w) in body.iter().zip(SCC_WEIGHTS) {
        sum += scc_value(c)? * w;
    }
    Some(SCC_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// The GB 11714-1997 check character of an organisation code's first 8 characters (digits and
/// capitals, A = 10 … Z = 35), `None` if one is neither.
fn org_code_check_char(body: &[u8]) -> Option<u8> {
    let mut sum = 0;
    for (&c, w) in body.iter().zip(ORG_CODE_WEIGHTS) {
        let value = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        sum += u32::from(value) * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        check => b'0' + check as u8,
    })
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses

/// Longest address (RFC 5321's path limit less the angle brackets).
const EMAIL_LEN_MAX: usize = 254;
/// Longest local part (RFC 5321).
const EMAIL_LOCAL_LEN_MAX: usize = 64;
/// Longest domain label (RFC 1035).
const EMAIL_LABEL_LEN_MAX: usize = 63;
/// Shortest top-level domain.
const EMAIL_TLD_LEN_MIN: usize = 2;
/// The RFC 5322 `atext` punctuation allowed in a local part besides letters and digits.
const EMAIL_ATEXT_PUNCTUATION: &[u8] = b"!#$%&'*+/=?^_`{|}~-";

/// Whether `s` is an e-mail address in a pragmatic RFC 5322 subset: a dot-atom local part (no
/// quoted strings, no comments), `@`, two or more domain labels and a top-level domain of two
/// or more letters (no IP literals, no internationalised names).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= EMAIL_LEN_MAX && is_email_local_part(local) && is_email_domain(domain)
}

fn is_email_local_part(local: &str) -> bool {
    local.len() <= EMAIL_LOCAL_LEN_MAX
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(|c| c.is_ascii_alphanumeric() || EMAIL_ATEXT_PUNCTUATION.contains(&c)))
}

fn is_email_domain(domain: &str) -> bool {
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    domain.split('.').all(is_domain_label) && tld.len() >= EMAIL_TLD_LEN_MIN && tld.bytes().all(|c| c.is_ascii_alphabetic())
}

fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    (1..=EMAIL_LABEL_LEN_MAX).contains(&b.len())
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

// ---------------------------------------------------------------------------------------------
// Travel documents

/// Characters in a passport or permit number.
const TRAVEL_DOC_LEN: usize = 9;
/// Letters that open a passport number followed by 8 digits (G before 2012, E after).
const PASSPORT_DIGIT_PREFIXES: &[u8] = b"GE";
/// The letter that opens a passport number with a second, serial letter and 7 digits.
const PASSPORT_SERIAL_PREFIX: u8 = b'E';
/// Letters that open a permit number followed by 8 digits (C card type, W booklet type).
const PERMIT_DIGIT_PREFIXES: &[u8] = b"CW";
/// The letter that opens a permit number with a second, serial letter and 7 digits.
const PERMIT_SERIAL_PREFIX: u8 = b'C';

/// Whether `s` is a PRC ordinary passport number: `G` or `E` and 8 digits, or `E`, a capital
/// other than I and O, and 7 digits.
pub fn is_passport(s: &str) -> bool {
    is_travel_doc(s.as_bytes(), PASSPORT_DIGIT_PREFIXES, PASSPORT_SERIAL_PREFIX)
}

/// Whether `s` is a mainland resident's 往来港澳通行证 number: `C` or `W` and 8 digits, or `C`, a
/// capital other than I and O, and 7 digits.
pub fn is_hk_macau_permit(s: &str) -> bool {
    is_travel_doc(s.as_bytes(), PERMIT_DIGIT_PREFIXES, PERMIT_SERIAL_PREFIX)
}

fn is_travel_doc(b: &[u8], digit_prefixes: &[u8], serial_prefix: u8) -> bool {
    match b {
        [first, rest @ ..] if b.len() == TRAVEL_DOC_LEN && digit_prefixes.contains(first) && all_digits(rest) => true,
        [first, serial, rest @ ..] if b.len() == TRAVEL_DOC_LEN && *first == serial_prefix => is_serial_letter(*serial) && all_digits(rest),
        _ => false,
    }
}

/// Serial letters run A to Z without I and O, which read as 1 and 0.
fn is_serial_letter(c: u8) -> bool {
    c.is_ascii_uppercase() && c != b'I' && c != b'O'
}

// ---------------------------------------------------------------------------------------------
// Finding values in text

/// Most digit groups one value spans: a 19-digit card in groups of four.
const CANDIDATE_GROUPS_MAX: usize = 5;
/// Longest value outside e-mail: a 19-digit card in groups of four with its four separators.
const CANDIDATE_LEN_MAX: usize = CARD_DIGITS_MAX + 4;

/// The separators allowed inside the layouts, as bytes.
fn is_separator(c: u8) -> bool {
    SEPARATOR_CHARS.iter().any(|&s| s as u8 == c)
}

/// Characters that continue a digit run into a longer number when a digit follows: decimal
/// and thousands marks (amounts, versions) and hyphens (dates, landlines, order numbers).
fn is_joiner(c: u8) -> bool {
    matches!(c, b'.' | b',' | b'-')
}

/// Characters a local part is read from in running text: the usual ones, not the rarer `atext`
/// punctuation that is more often the text's own.
fn is_text_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// E-mail addresses in `text`: around each `@`, the local-part characters before it (leading
/// dots dropped) and the domain characters after it (trailing dots and hyphens dropped, as in
/// `a@b.cn.` ending a sentence), kept if they form a valid address.
fn find_emails(text: &str) -> Vec<Match> {
    let b = text.as_bytes();
    let mut found: Vec<Match> = Vec::new();
    for at in (0..b.len()).filter(|&i| b[i] == b'@') {
        let (Some(start), Some(end)) = (email_start(b, at), email_end(b, at)) else {
            continue;
        };
        if found.last().is_some_and(|m| m.end > start) {
            continue;
        }
        // `start` and `end` are at ASCII bytes or the text's end, so on char boundaries.
        if is_email(&text[start..end]) {
            found.push(Match { kind: PiiKind::Email, start, end });
        }
    }
    found
}

/// Where the local part ending at `at` starts, or `None` if the run before `at` is longer than
/// any local part (then it is part of something else).
fn email_start(b: &[u8], at: usize) -> Option<usize> {
    let run = b[..at].iter().rev().take(EMAIL_LOCAL_LEN_MAX + 1).take_while(|&&c| is_text_local_char(c)).count();
    if run > EMAIL_LOCAL_LEN_MAX {
        return None;
    }
    let dots = b[at - run..at].iter().take_while(|&&c| c == b'.').count();
    Some(at - run + dots)
}

/// Where the domain after the `@` at `at` ends, or `None` if the run is longer than any address.
fn email_end(b: &[u8], at: usize) -> Option<usize> {
    let run = b[at + 1..].iter().take(EMAIL_LEN_MAX + 1).take_while(|&&c| is_domain_char(c)).count();
    if run > EMAIL_LEN_MAX {
        return None;
    }
    let trailing = b[at + 1..at + 1 + run].iter().rev().take_while(|&&c| c == b'.' || c == b'-').count();
    Some(at + 1 + run - trailing)
}

/// Values other than e-mail addresses, read group by group; none overlaps an address.
fn find_outside(text: &str, emails: &[Match]) -> Vec<Match> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut next_email = 0;
    let mut from = 0;
    while let Some(first) = next_group(b, from) {
        while emails.get(next_email).is_some_and(|e| e.end <= first.start) {
            next_email += 1;
        }
        let limit = emails.get(next_email).map_or(b.len(), |e| e.start);
        match match_at(text, &first, from, limit) {
            Some(m) => {
                from = m.end;
                found.push(m);
            }
            None => from = first.end,
        }
    }
    found
}

/// The next maximal run of ASCII letters and digits at or after `from`.
fn next_group(b: &[u8], from: usize) -> Option<Range<usize>> {
    let start = from + b.get(from..)?.iter().position(u8::is_ascii_alphanumeric)?;
    Some(start..group_end(b, start))
}

fn group_end(b: &[u8], start: usize) -> usize {
    start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric()).count()
}

/// The longest value that starts with the group `first` (or with a `+` just before it, not
/// before `floor`), ends by `limit`, classifies and stands alone.
fn match_at(text: &str, first: &Range<usize>, floor: usize, limit: usize) -> Option<Match> {
    let b = text.as_bytes();
    let (ends, n) = joined_group_ends(b, first);
    let plus = first.start > floor && b[first.start - 1] == b'+';
    let starts = [first.start - usize::from(plus), first.start];
    for (i, &end) in ends[..n].iter().enumerate().rev() {
        for &start in &starts[..1 + usize::from(plus)] {
            if end > limit || end - start > CANDIDATE_LEN_MAX {
                continue;
            }
            // Both ends are at ASCII bytes or the text's end, so on char boundaries.
            let Some(kind) = classify_exact(&text[start..end]) else { continue };
            if stands_alone(b, start, end, i > 0) {
                return Some(Match { kind, start, end });
            }
        }
    }
    None
}

/// The ends of the groups joined to `first` by single separators, `first` included, and how
/// many there are.
fn joined_group_ends(b: &[u8], first: &Range<usize>) -> ([usize; CANDIDATE_GROUPS_MAX], usize) {
    let mut ends = [0; CANDIDATE_GROUPS_MAX];
    ends[0] = first.end;
    let mut n = 1;
    while n < CANDIDATE_GROUPS_MAX {
        let separator = ends[n - 1];
        let joined = b.get(separator).is_some_and(|&c| is_separator(c)) && b.get(separator + 1).is_some_and(u8::is_ascii_alphanumeric);
        if !joined {
            break;
        }
        ends[n] = group_end(b, separator + 1);
        n += 1;
    }
    (ends, n)
}

/// Whether `b[start..end]` is a value on its own rather than part of a longer one: no letter
/// or digit touches it, it does not continue into digits through a joiner, and, if `grouped`
/// (written with separators), not through a separator either.
fn stands_alone(b: &[u8], start: usize, end: usize, grouped: bool) -> bool {
    let continues =
        |mark: u8, next: Option<&u8>| (is_joiner(mark) || (grouped && is_separator(mark))) && next.is_some_and(u8::is_ascii_digit);
    let before = start.checked_sub(1).map(|i| b[i]);
    let after = b.get(end).copied();
    let touched = before.is_some_and(|c| c.is_ascii_alphanumeric()) || after.is_some_and(|c| c.is_ascii_alphanumeric());
    let continued_before = before.is_some_and(|c| continues(c, start.checked_sub(2).and_then(|i| b.get(i))));
    let continued_after = after.is_some_and(|c| continues(c, b.get(end + 1)));
    !touched && !continued_before && !continued_after
}

// ---------------------------------------------------------------------------------------------
// Digits

fn all_digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// The value of a few ASCII digits (the caller has checked they are digits).
fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, &c| n * 10 + u32::from(c.wrapping_sub(b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ops::RangeInclusive;

    use PiiKind::*;

    /// Positives generated per kind.
    const POSITIVES_PER_KIND: usize = 3000;
    /// Hard negatives generated per family.
    const NEGATIVES_PER_FAMILY: usize = 600;
    /// Seed of the labelled set: fixed, so the printed rates are reproducible.
    const SEED: u64 = 0x5EED_F1A7_2026_0301;

    /// splitmix64 (Steele, Lea and Flood, 2014): a few lines, deterministic, well spread.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A number in `0..n`; the modulo bias is far below anything the rates here can show.
        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        fn between(&mut self, lo: u32, hi: u32) -> u32 {
            lo + self.below((hi - lo + 1) as usize) as u32
        }

        fn one_in(&mut self, n: usize) -> bool {
            self.below(n) == 0
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }

        fn letter(&mut self, alphabet: &[u8]) -> char {
            char::from(self.pick(alphabet))
        }

        fn digits(&mut self, n: usize) -> String {
            (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
        }
    }

    // -----------------------------------------------------------------------------------------
    // Positives

    /// Province codes of mainland registrations (no Taiwan, no residence permits).
    const MAINLAND_PROVINCES: &[u32] = PROVINCE_CODES.split_at(31).0;
    /// Mobile prefixes in use (MIIT numbering plan), written out independently of the code.
    const MOBILE_PREFIXES: [u32; 53] = [
        130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 145, 147, 149, 150, 151, 152, 153, 155, 156, 157, 158, 159, 162, 165, 166, 167,
        170, 171, 172, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 195, 196, 197, 198,
        199,
    ];
    /// Issuer prefixes and lengths like those of Chinese cards: UnionPay debit and credit BINs
    /// of large banks, and Visa, Mastercard and JCB cards they issue.
    const CARD_BINS: [(&str, &[usize]); 13] = [
        ("622202", &[16, 19]),
        ("621226", &[19]),
        ("622848", &[19]),
        ("621700", &[19]),
        ("622700", &[19]),
        ("622588", &[16]),
        ("621483", &[16]),
        ("622262", &[19]),
        ("625906", &[16]),
        ("623668", &[17, 18, 19]),
        ("436742", &[16]),
        ("524047", &[16]),
        ("356833", &[16]),
    ];
    /// Registration type pairs, weighted towards companies and sole traders as in real data.
    const SCC_TYPES: [&str; 18] =
        ["91", "91", "91", "91", "91", "92", "92", "93", "11", "12", "12", "13", "19", "51", "52", "53", "59", "Y1"];
    const EMAIL_NAMES: [&str; 10] =
        ["zhang.san", "lisi", "wang_wu", "chen.jing", "liu-yang", "zhao+bank", "huang.lei", "finance", "kefu", "yang.fan"];
    const EMAIL_DOMAINS: [&str; 11] = [
        "qq.com",
        "163.com",
        "126.com",
        "sina.com.cn",
        "foxmail.com",
        "gmail.com",
        "outlook.com",
        "yeah.net",
        "139.com",
        "example.com.cn",
        "mail.corp-example.cn",
    ];
    /// Serial letters of passports and permits: A to Z without I and O.
    const SERIAL_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

    fn region_code(rng: &mut SplitMix64, province: u32) -> String {
        if province > 80 { format!("{province}0000") } else { format!("{province}{:02}{:02}", rng.between(1, 15), rng.between(1, 30)) }
    }

    fn birth_date(rng: &mut SplitMix64, years: RangeInclusive<u32>) -> String {
        let year = rng.between(*years.start(), *years.end());
        let month = rng.between(1, 12);
        let day = rng.between(1, days_in_month(year, month));
        format!("{year:04}{month:02}{day:02}")
    }

    fn with_resident_check(body: &str) -> String {
        format!("{body}{}", char::from(resident_id_check_char(body.as_bytes())))
    }

    fn resident_id_18(rng: &mut SplitMix64) -> String {
        let province = rng.pick(&PROVINCE_CODES);
        let region = region_code(rng, province);
        let date = birth_date(rng, 1930..=2015);
        with_resident_check(&format!("{region}{date}{}", rng.digits(3)))
    }

    fn resident_id(rng: &mut SplitMix64) -> String {
        if rng.one_in(6) {
            let province = rng.pick(MAINLAND_PROVINCES);
            let region = region_code(rng, province);
            let date = birth_date(rng, 1930..=1999);
            return format!("{region}{}{}", &date[2..], rng.digits(3));
        }
        let id = resident_id_18(rng);
        if id.ends_with('X') && rng.one_in(3) { id.to_lowercase() } else { id }
    }

    fn national_mobile(rng: &mut SplitMix64) -> String {
        format!("{}{}", rng.pick(&MOBILE_PREFIXES), rng.digits(8))
    }

    fn three_four_four(national: &str, separator: char) -> String {
        format!("{}{separator}{}{separator}{}", &national[..3], &national[3..7], &national[7..])
    }

    fn mobile(rng: &mut SplitMix64) -> String {
        let bare = national_mobile(rng);
        let national = match rng.below(4) {
            0 => three_four_four(&bare, ' '),
            1 => three_four_four(&bare, '-'),
            _ => bare.clone(),
        };
        match rng.below(8) {
            0 => format!("+86 {national}"),
            1 => format!("+86-{national}"),
            2 => format!("+86{bare}"),
            3 => format!("0086 {national}"),
            4 => format!("86{bare}"),
            _ => national,
        }
    }

    fn with_luhn(body: &str) -> String {
        format!("{body}{}", (10 - luhn_sum(body.as_bytes(), true) % 10) % 10)
    }

    fn card_number(rng: &mut SplitMix64) -> String {
        let (bin, lengths) = rng.pick(&CARD_BINS);
        let len = rng.pick(lengths);
        with_luhn(&format!("{bin}{}", rng.digits(len - bin.len() - 1)))
    }

    fn in_fours(digits: &str, separator: char) -> String {
        let groups: Vec<&str> =
            digits.as_bytes().chunks(CARD_GROUP_DIGITS).map(|g| std::str::from_utf8(g).expect("digits are ASCII")).collect();
        groups.join(&separator.to_string())
    }

    fn bank_card(rng: &mut SplitMix64) -> String {
        let digits = card_number(rng);
        match rng.below(6) {
            0 => in_fours(&digits, ' '),
            1 => in_fours(&digits, '-'),
            _ => digits,
        }
    }

    fn org_code(rng: &mut SplitMix64) -> String {
        let body =
            if rng.one_in(2) { rng.digits(8) } else { format!("MA{}", (0..6).map(|_| rng.letter(SCC_ALPHABET)).collect::<String>()) };
        let check = org_code_check_char(body.as_bytes()).expect("digits and capitals");
        format!("{body}{}", char::from(check))
    }

    fn with_scc_check(body: &str) -> String {
        format!("{body}{}", char::from(scc_check_char(body.as_bytes()).expect("characters from the alphabet")))
    }

    fn scc_with(rng: &mut SplitMix64, registration_type: &str, province: u32) -> String {
        let region = region_code(rng, province);
        let org = org_code(rng);
        with_scc_check(&format!("{registration_type}{region}{org}"))
    }

    fn social_credit_code(rng: &mut SplitMix64) -> String {
        let registration_type = rng.pick(&SCC_TYPES);
        if registration_type.starts_with('1') && rng.one_in(4) {
            let org = org_code(rng);
            return with_scc_check(&format!("{registration_type}100000{org}"));
        }
        let province = rng.pick(MAINLAND_PROVINCES);
        scc_with(rng, registration_type, province)
    }

    fn email_name(rng: &mut SplitMix64) -> String {
        let name = rng.pick(&EMAIL_NAMES);
        if rng.one_in(2) { format!("{name}{}", rng.between(1, 2025)) } else { name.to_string() }
    }

    fn email(rng: &mut SplitMix64) -> String {
        let local = match rng.below(4) {
            0 => national_mobile(rng),
            1 => {
                let len = 4 + rng.below(7);
                format!("{}{}", rng.between(1, 9), rng.digits(len))
            }
            _ => email_name(rng),
        };
        format!("{local}@{}", rng.pick(&EMAIL_DOMAINS))
    }

    fn passport(rng: &mut SplitMix64) -> String {
        match rng.below(3) {
            0 => format!("G{}", rng.digits(8)),
            1 => format!("E{}", rng.digits(8)),
            _ => format!("E{}{}", rng.letter(SERIAL_LETTERS), rng.digits(7)),
        }
    }

    fn hk_macau_permit(rng: &mut SplitMix64) -> String {
        match rng.below(5) {
            0 | 1 => format!("C{}", rng.digits(8)),
            2 | 3 => format!("C{}{}", rng.letter(SERIAL_LETTERS), rng.digits(7)),
            _ => format!("W{}", rng.digits(8)),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Hard negatives

    const IMPOSSIBLE_DATES: [&str; 15] = [
        "19900230", "20000231", "19000229", "21000229", "20230229", "19850431", "19920631", "19990931", "20011131", "19881301", "19950010",
        "20050500", "19871232", "18991231", "21010101",
    ];
    /// `YYMMDD` that are impossible in every 19YY year.
    const IMPOSSIBLE_SHORT_DATES: [&str; 6] = ["900230", "850431", "881301", "950010", "871232", "230229"];
    const UNKNOWN_PROVINCES: [u32; 16] = [0, 10, 16, 20, 24, 30, 38, 40, 47, 49, 55, 60, 66, 70, 80, 99];
    const UNASSIGNED_MOBILE_PREFIXES: [u32; 21] =
        [100, 105, 110, 116, 120, 123, 127, 140, 141, 142, 143, 144, 154, 160, 161, 163, 164, 168, 169, 179, 194];
    const AREA_CODES: [&str; 15] =
        ["010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0512", "0591", "0731"];
    /// Registration types in no version of the table.
    const UNKNOWN_SCC_TYPES: [&str; 10] = ["14", "16", "54", "57", "94", "97", "Y2", "Y9", "B1", "C1"];
    /// Letters no recognised document number starts with (nor the 回乡证's H and M).
    const UNUSED_DOC_LETTERS: &[u8] = b"ABFJKQUXZ";

    /// `value` with one character, picked where `eligible` holds, replaced by a different one
    /// from `alphabet`.
    fn change_one(rng: &mut SplitMix64, value: &str, alphabet: &[u8]) -> String {
        let mut b = value.as_bytes().to_vec();
        let positions: Vec<usize> = (0..b.len()).filter(|&i| alphabet.contains(&b[i])).collect();
        let i = rng.pick(&positions);
        let old = b[i];
        while b[i] == old {
            b[i] = rng.pick(alphabet);
        }
        String::from_utf8(b).expect("ASCII stays UTF-8")
    }

    /// `value` with two different adjacent characters swapped.
    fn swap_adjacent(rng: &mut SplitMix64, value: &str) -> String {
        let mut b = value.as_bytes().to_vec();
        let positions: Vec<usize> = (0..b.len() - 1).filter(|&i| b[i] != b[i + 1]).collect();
        let i = rng.pick(&positions);
        b.swap(i, i + 1);
        String::from_utf8(b).expect("ASCII stays UTF-8")
    }

    fn id_one_digit_changed(rng: &mut SplitMix64) -> String {
        let id = resident_id_18(rng);
        change_one(rng, &id, b"0123456789")
    }

    fn id_digits_swapped(rng: &mut SplitMix64) -> String {
        let id = resident_id_18(rng);
        swap_adjacent(rng, &id)
    }

    fn id_impossible_date(rng: &mut SplitMix64) -> String {
        let province = rng.pick(MAINLAND_PROVINCES);
        let region = region_code(rng, province);
        if rng.one_in(4) {
            return format!("{region}{}{}", rng.pick(&IMPOSSIBLE_SHORT_DATES), rng.digits(3));
        }
        let date = rng.pick(&IMPOSSIBLE_DATES);
        with_resident_check(&format!("{region}{date}{}", rng.digits(3)))
    }

    fn id_unknown_province(rng: &mut SplitMix64) -> String {
        let province = rng.pick(&UNKNOWN_PROVINCES);
        let date = birth_date(rng, 1930..=2015);
        with_resident_check(&format!("{province:02}{:04}{date}{}", rng.between(101, 9999), rng.digits(3)))
    }

    fn id_digit_dropped(rng: &mut SplitMix64) -> String {
        let mut id = resident_id_18(rng);
        id.remove(rng.below(id.len()));
        id
    }

    fn id_digits_appended(rng: &mut SplitMix64) -> String {
        let id = resident_id_18(rng);
        let extra = 1 + rng.below(2);
        format!("{id}{}", rng.digits(extra))
    }

    fn mobile_unassigned_prefix(rng: &mut SplitMix64) -> String {
        format!("{}{}", rng.pick(&UNASSIGNED_MOBILE_PREFIXES), rng.digits(8))
    }

    fn mobile_wrong_length(rng: &mut SplitMix64) -> String {
        let national = national_mobile(rng);
        if rng.one_in(2) { national[..10].to_string() } else { format!("{national}{}", rng.digits(1)) }
    }

    fn landline(rng: &mut SplitMix64) -> String {
        let area = rng.pick(&AREA_CODES);
        let local_len = if area.len() == 3 || rng.one_in(2) { 8 } else { 7 };
        let local = format!("{}{}", rng.between(2, 8), rng.digits(local_len - 1));
        match rng.below(4) {
            0 => format!("{area}-{local}"),
            1 => format!("{area}{local}"),
            2 => format!("({area}){local}"),
            _ => format!("{area} {local}"),
        }
    }

    fn mobile_malformed_layout(rng: &mut SplitMix64) -> String {
        let n = national_mobile(rng);
        match rng.below(6) {
            0 => format!("{} {} {}", &n[..3], &n[3..8], &n[8..]),
            1 => format!("{} {} {}", &n[..4], &n[4..7], &n[7..]),
            2 => format!("{}--{}", &n[..3], &n[3..]),
            3 => format!("{} {}-{}", &n[..3], &n[3..7], &n[7..]),
            4 => format!("+86 {} {} {}", &n[..3], &n[3..7], &n[7..10]),
            _ => format!("+852 {}{} {}", rng.between(5, 9), rng.digits(3), rng.digits(4)),
        }
    }

    fn card_one_digit_changed(rng: &mut SplitMix64) -> String {
        let card = card_number(rng);
        change_one(rng, &card, b"0123456789")
    }

    fn card_digits_swapped(rng: &mut SplitMix64) -> String {
        let card = card_number(rng);
        swap_adjacent(rng, &card)
    }

    fn card_luhn_valid_wrong_length(rng: &mut SplitMix64) -> String {
        let (bin, _) = rng.pick(&CARD_BINS);
        let len = rng.pick(&[12, 13, 14, 15, 20, 21]);
        with_luhn(&format!("{bin}{}", rng.digits(len - bin.len() - 1)))
    }

    fn card_luhn_valid_other_prefix(rng: &mut SplitMix64) -> String {
        let first = rng.pick(&[1, 7, 8, 9]);
        let len = rng.between(16, 19) as usize;
        with_luhn(&format!("{first}{}", rng.digits(len - 2)))
    }

    fn card_malformed_grouping(rng: &mut SplitMix64) -> String {
        let d = card_number(rng);
        match rng.below(4) {
            0 => format!("{} {} {} {}", &d[..5], &d[5..9], &d[9..13], &d[13..]),
            1 => format!("{} {}-{} {}", &d[..4], &d[4..8], &d[8..12], &d[12..]),
            2 => format!("{}  {}", &d[..4], in_fours(&d[4..], ' ')),
            _ => format!("{} {} {}", &d[..4], &d[4..8], in_fours(&d[8..], ' ').replacen(' ', "", 1)),
        }
    }

    fn scc_one_char_changed(rng: &mut SplitMix64) -> String {
        let code = social_credit_code(rng);
        change_one(rng, &code, SCC_ALPHABET)
    }

    fn scc_chars_swapped(rng: &mut SplitMix64) -> String {
        let code = social_credit_code(rng);
        swap_adjacent(rng, &code)
    }

    fn scc_letter_outside_alphabet(rng: &mut SplitMix64) -> String {
        let mut b = social_credit_code(rng).into_bytes();
        b[SCC_ORG_CODE.start + rng.below(SCC_ORG_CODE.len())] = rng.pick(b"IOSVZ");
        String::from_utf8(b).expect("ASCII stays UTF-8")
    }

    fn scc_unknown_type_or_region(rng: &mut SplitMix64) -> String {
        if rng.one_in(2) {
            let registration_type = rng.pick(&UNKNOWN_SCC_TYPES);
            let province = rng.pick(MAINLAND_PROVINCES);
            return scc_with(rng, registration_type, province);
        }
        let province = rng.pick(&[0, 20, 47, 99]);
        let org = org_code(rng);
        with_scc_check(&format!("91{province:02}{:04}{org}", rng.between(101, 9999)))
    }

    fn email_broken(rng: &mut SplitMix64) -> String {
        let local = email_name(rng);
        let domain = rng.pick(&EMAIL_DOMAINS);
        let host = domain.split('.').next().expect("split yields at least one piece");
        match rng.below(12) {
            0 => format!("{local}@localhost"),
            1 => format!("{local}@@{domain}"),
            2 => format!("{local}.@{domain}"),
            3 => format!("{local}..x@{domain}"),
            4 => format!("{local}@{host}"),
            5 => format!("{local}@{host}.c"),
            6 => format!("{local}@{host}.c0m"),
            7 => format!("{local}@-{domain}"),
            8 => format!("{local}@{host}-.com"),
            9 => format!("{local}@{host}..com"),
            10 => format!("@{domain}"),
            _ => format!("{local}.{domain}"),
        }
    }

    fn passport_malformed(rng: &mut SplitMix64) -> String {
        match rng.below(6) {
            0 => format!("E{}", rng.digits(7)),
            1 => format!("E{}", rng.digits(9)),
            2 => format!("E{}{}", rng.letter(b"IO"), rng.digits(7)),
            3 => format!("G{}{}", rng.letter(SERIAL_LETTERS), rng.digits(7)),
            4 => format!("{}{}", rng.letter(UNUSED_DOC_LETTERS), rng.digits(8)),
            _ => format!("E{}{}", rng.digits(7), rng.letter(SERIAL_LETTERS)),
        }
    }

    fn permit_malformed(rng: &mut SplitMix64) -> String {
        match rng.below(5) {
            0 => format!("C{}", rng.digits(7)),
            1 => format!("C{}", rng.digits(9)),
            2 => format!("C{}{}", rng.letter(b"IO"), rng.digits(7)),
            3 => format!("W{}{}", rng.letter(SERIAL_LETTERS), rng.digits(7)),
            _ => format!("C{}{}", rng.digits(7), rng.letter(SERIAL_LETTERS)),
        }
    }

    fn timestamp(rng: &mut SplitMix64) -> String {
        let date = birth_date(rng, 2015..=2026);
        let time = format!("{:02}{:02}{:02}", rng.between(0, 23), rng.between(0, 59), rng.between(0, 59));
        match rng.below(4) {
            0 => format!("{date}{time}{}", rng.digits(3)),
            1 => format!("{date}{time}"),
            2 => format!("1{}", rng.digits(12)),
            _ => format!("1{}", rng.digits(9)),
        }
    }

    fn order_number(rng: &mut SplitMix64) -> String {
        let date = birth_date(rng, 2015..=2026);
        match rng.below(3) {
            0 => format!("{date}{}", rng.digits(10)),
            1 => format!("{date}{}", rng.digits(12)),
            _ => format!("{}{date}{}", rng.pick(&["DD", "NO", "TX", "PAY"]), rng.digits(8)),
        }
    }

    fn snowflake_id(rng: &mut SplitMix64) -> String {
        let len = 17 + rng.below(2);
        format!("1{}", rng.digits(len))
    }

    fn imei(rng: &mut SplitMix64) -> String {
        let tac_prefix = rng.pick(&["86", "35", "49", "01"]);
        with_luhn(&format!("{tac_prefix}{}", rng.digits(12)))
    }

    fn with_thousands_marks(digits: &str) -> String {
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    fn amount(rng: &mut SplitMix64) -> String {
        let cents = rng.digits(2);
        match rng.below(4) {
            0 => format!("{}.{cents}", national_mobile(rng)),
            1 => format!("{}.{cents}", card_number(rng)),
            2 => format!("{}.{cents}", with_thousands_marks(&national_mobile(rng))),
            _ => format!("-{}.{cents}", national_mobile(rng)),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The labelled set

    /// One labelled value: what it is (`label`), which kind it imitates or was derived from
    /// (`about`, to tell a kind's own confusions from confusions with other kinds), and the
    /// family that built it.
    #[derive(Debug)]
    struct Sample {
        value: String,
        label: Option<PiiKind>,
        about: Option<PiiKind>,
        family: &'static str,
    }

    type Generator = fn(&mut SplitMix64) -> String;

    const POSITIVE_GENERATORS: [(PiiKind, Generator); 7] = [
        (ResidentId, resident_id),
        (Mobile, mobile),
        (BankCard, bank_card),
        (SocialCreditCode, social_credit_code),
        (Email, email),
        (Passport, passport),
        (HkMacauPermit, hk_macau_permit),
    ];

    const NEGATIVE_GENERATORS: [(&str, Option<PiiKind>, Generator); 27] = [
        ("resident_id: one digit changed", Some(ResidentId), id_one_digit_changed),
        ("resident_id: adjacent digits swapped", Some(ResidentId), id_digits_swapped),
        ("resident_id: impossible birth date", Some(ResidentId), id_impossible_date),
        ("resident_id: unknown province", Some(ResidentId), id_unknown_province),
        ("resident_id: a digit dropped (17)", Some(ResidentId), id_digit_dropped),
        ("resident_id: digits appended (19-20)", Some(ResidentId), id_digits_appended),
        ("mobile: unassigned prefix", Some(Mobile), mobile_unassigned_prefix),
        ("mobile: 10 or 12 digits", Some(Mobile), mobile_wrong_length),
        ("mobile: landline", Some(Mobile), landline),
        ("mobile: malformed layout", Some(Mobile), mobile_malformed_layout),
        ("bank_card: one digit changed", Some(BankCard), card_one_digit_changed),
        ("bank_card: adjacent digits swapped", Some(BankCard), card_digits_swapped),
        ("bank_card: Luhn-valid, wrong length", Some(BankCard), card_luhn_valid_wrong_length),
        ("bank_card: Luhn-valid, prefix 1/7/8/9", Some(BankCard), card_luhn_valid_other_prefix),
        ("bank_card: malformed grouping", Some(BankCard), card_malformed_grouping),
        ("social_credit_code: one char changed", Some(SocialCreditCode), scc_one_char_changed),
        ("social_credit_code: adjacent chars swapped", Some(SocialCreditCode), scc_chars_swapped),
        ("social_credit_code: I/O/S/V/Z inside", Some(SocialCreditCode), scc_letter_outside_alphabet),
        ("social_credit_code: unknown type or region", Some(SocialCreditCode), scc_unknown_type_or_region),
        ("email: malformed", Some(Email), email_broken),
        ("passport: malformed", Some(Passport), passport_malformed),
        ("hk_macau_permit: malformed", Some(HkMacauPermit), permit_malformed),
        ("noise: timestamps", None, timestamp),
        ("noise: order numbers", None, order_number),
        ("noise: snowflake ids (18-19)", None, snowflake_id),
        ("noise: IMEIs (15, Luhn)", None, imei),
        ("noise: amounts", None, amount),
    ];

    fn labelled_set() -> Vec<Sample> {
        let mut rng = SplitMix64(SEED);
        let mut set = Vec::new();
        for (kind, generate) in POSITIVE_GENERATORS {
            for _ in 0..POSITIVES_PER_KIND {
                set.push(Sample { value: generate(&mut rng), label: Some(kind), about: Some(kind), family: kind.name() });
            }
        }
        for (family, about, generate) in NEGATIVE_GENERATORS {
            for _ in 0..NEGATIVES_PER_FAMILY {
                set.push(Sample { value: generate(&mut rng), label: None, about, family });
            }
        }
        set
    }

    #[derive(Debug, Default)]
    struct Tally {
        positives: usize,
        true_positives: usize,
        /// Values built from this kind but broken, still recognised as it.
        own_false_positives: usize,
        /// Values of other kinds or of no kind, recognised as this one.
        cross_false_positives: usize,
    }

    impl Tally {
        fn recall(&self) -> f64 {
            ratio(self.true_positives, self.positives)
        }

        fn precision(&self) -> f64 {
            ratio(self.true_positives, self.true_positives + self.own_false_positives + self.cross_false_positives)
        }

        fn own_precision(&self) -> f64 {
            ratio(self.true_positives, self.true_positives + self.own_false_positives)
        }
    }

    fn ratio(part: usize, whole: usize) -> f64 {
        if whole == 0 { 1.0 } else { part as f64 / whole as f64 }
    }

    fn tally(set: &[Sample]) -> BTreeMap<PiiKind, Tally> {
        let mut tallies: BTreeMap<PiiKind, Tally> = PiiKind::ALL.iter().map(|&k| (k, Tally::default())).collect();
        for sample in set {
            let predicted = classify(&sample.value);
            if let Some(label) = sample.label {
                let t = tallies.get_mut(&label).expect("every kind has a tally");
                t.positives += 1;
                t.true_positives += usize::from(predicted == Some(label));
            }
            if let Some(kind) = predicted
                && sample.label != Some(kind)
            {
                let t = tallies.get_mut(&kind).expect("every kind has a tally");
                if sample.about == Some(kind) {
                    t.own_false_positives += 1;
                } else {
                    t.cross_false_positives += 1;
                }
            }
        }
        tallies
    }

    /// For each family of negatives: how many there are, and how many were taken for each kind.
    type FamilyFlags = BTreeMap<&'static str, (usize, BTreeMap<PiiKind, usize>)>;

    /// What the negatives of each family were classified as.
    fn flagged_negatives(set: &[Sample]) -> FamilyFlags {
        let mut families = FamilyFlags::new();
        for sample in set.iter().filter(|s| s.label.is_none()) {
            let (total, flagged) = families.entry(sample.family).or_default();
            *total += 1;
            if let Some(kind) = classify(&sample.value) {
                *flagged.entry(kind).or_default() += 1;
            }
        }
        families
    }

    fn print_report(tallies: &BTreeMap<PiiKind, Tally>, families: &FamilyFlags) {
        eprintln!(
            "{:<20} {:>9} {:>8} {:>10} {:>14} {:>8} {:>10}",
            "kind", "positives", "recall", "precision", "own precision", "own FP", "cross FP"
        );
        for (kind, t) in tallies {
            eprintln!(
                "{:<20} {:>9} {:>8.4} {:>10.4} {:>14.4} {:>8} {:>10}",
                kind.name(),
                t.positives,
                t.recall(),
                t.precision(),
                t.own_precision(),
                t.own_false_positives,
                t.cross_false_positives
            );
        }
        eprintln!("\nhard negatives flagged, by family:");
        for (family, (total, flagged)) in families {
            let taken_for: Vec<String> = flagged.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
            eprintln!("  {family:<46} {:>4}/{total:<4} {}", flagged.values().sum::<usize>(), taken_for.join(", "));
        }
    }

    /// Precision floors per kind as `(kind, overall, own)`: overall counts every value wrongly
    /// given the kind, own only the broken values built from the kind itself. Just under what
    /// six seeds measured (so a change of seed does not fail them): cards 0.945–0.956 overall
    /// and 0.994–0.998 own, resident IDs 0.996–0.998, credit codes 0.9997–1, the rest 1. Cards
    /// fall short in both: Luhn misses 09 ↔ 90 swaps (own), and one broken 17- to 19-digit
    /// resident ID in ten that starts with 3, 4, 5 or 62 is Luhn-valid (cross). Resident IDs
    /// lose a little to 15-digit Luhn numbers (IMEIs): the first generation has no check.
    const PRECISION_MIN: [(PiiKind, f64, f64); 7] = [
        (ResidentId, 0.995, 1.0),
        (Mobile, 1.0, 1.0),
        (BankCard, 0.94, 0.99),
        (SocialCreditCode, 0.999, 1.0),
        (Email, 1.0, 1.0),
        (Passport, 1.0, 1.0),
        (HkMacauPermit, 1.0, 1.0),
    ];

    #[test]
    fn labelled_set_precision_and_recall_meet_their_floors() {
        let set = labelled_set();
        let tallies = tally(&set);
        print_report(&tallies, &flagged_negatives(&set));
        for (kind, precision_min, own_precision_min) in PRECISION_MIN {
            let t = &tallies[&kind];
            assert_eq!(t.positives, POSITIVES_PER_KIND, "{kind}");
            assert_eq!(t.recall(), 1.0, "{kind}: every generated positive is recognised");
            assert!(t.precision() >= precision_min, "{kind}: precision {:.4} < {precision_min}", t.precision());
            assert!(t.own_precision() >= own_precision_min, "{kind}: own precision {:.4} < {own_precision_min}", t.own_precision());
        }
    }

    #[test]
    fn checksums_reject_every_single_change_of_ids_cards_and_credit_codes() {
        let families = flagged_negatives(&labelled_set());
        for family in ["resident_id: one digit changed", "bank_card: one digit changed", "social_credit_code: one char changed"] {
            let (total, flagged) = &families[family];
            let own = family.split(':').next().expect("families are named kind: what");
            assert_eq!(*total, NEGATIVES_PER_FAMILY);
            assert!(!flagged.keys().any(|kind| kind.name() == own), "{family}: {flagged:?}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // find_all on the labelled set

    const PROSE_BEFORE: [&str; 9] = ["", "客户手机：", "身份证号 ", "卡号:", "备注（", "Contact: ", "联系邮箱 ", "\t", "请核对"];
    const PROSE_AFTER: [&str; 7] = ["", "，请核实。", "）", " ", ". ", "\n", "；下一位"];

    #[test]
    fn find_all_in_prose_agrees_with_classify_on_the_bare_value() {
        let mut rng = SplitMix64(SEED ^ 0xF1D);
        let set = labelled_set();
        let mut disagreements = Vec::new();
        let mut positives_found = 0;
        for sample in &set {
            let before = rng.pick(&PROSE_BEFORE);
            let text = format!("{before}{}{}", sample.value, rng.pick(&PROSE_AFTER));
            let expected: Vec<Match> = classify(&sample.value)
                .map(|kind| Match { kind, start: before.len(), end: before.len() + sample.value.len() })
                .into_iter()
                .collect();
            let found = find_all(&text);
            positives_found += usize::from(sample.label.is_some() && found == expected);
            if found != expected {
                disagreements.push((text, found, expected));
            }
        }
        let positives = set.iter().filter(|s| s.label.is_some()).count();
        eprintln!(
            "find_all in prose: {positives_found}/{positives} positives found exactly, {} disagreements with classify",
            disagreements.len()
        );
        assert!(
            disagreements.is_empty(),
            "{} disagreements, first ones: {:#?}",
            disagreements.len(),
            &disagreements[..disagreements.len().min(5)]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Hand-written examples

    #[test]
    fn the_published_sample_resident_id_and_its_relatives_are_valid() {
        for id in ["11010519491231002X", "11010519491231002x", "110105491231002", "810000199408230021", "830000198805120044"] {
            assert!(is_resident_id(id), "{id}");
            assert_eq!(classify(id), Some(ResidentId), "{id}");
        }
        assert!(is_resident_id("440306200002291239"), "29 February 2000: 2000 is a leap year");
    }

    #[test]
    fn resident_ids_with_a_broken_check_date_or_province_are_rejected() {
        assert!(!is_resident_id("110105194912310021"), "check 1 instead of X");
        assert!(!is_resident_id("11010519491231002Y"));
        assert!(!is_resident_id("11010519491231003X"), "sequence changed");
        assert!(!is_resident_id("11010519491213002X"), "digits swapped");
        assert!(!is_resident_id("440306190002291232"), "1900 is not a leap year, though the check is right");
        assert!(!is_resident_id("110105189901010017"), "born before 1900, though the check is right");
        assert!(!is_resident_id(&with_resident_check("00010519491231002")), "no province 00");
        assert!(!is_resident_id(&with_resident_check("10010519491231002")), "10 opens only national organisation codes");
        assert!(!is_resident_id("110105490230002"), "first generation, 30 February");
        assert!(!is_resident_id("1101051949123100"), "16 characters");
        assert!(!is_resident_id("110105１９491231002"), "full-width digits");
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_real_date(2000, 2, 29));
        assert!(is_real_date(2024, 2, 29));
        assert!(!is_real_date(1900, 2, 29));
        assert!(!is_real_date(2100, 2, 29));
        assert!(!is_real_date(2023, 2, 29));
        assert!(!is_real_date(2024, 4, 31));
        assert!(!is_real_date(2024, 13, 1));
        assert!(!is_real_date(2024, 1, 0));
    }

    #[test]
    fn mobiles_accept_country_codes_and_the_3_4_4_layout() {
        let valid = [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+8613800138000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "0086 13800138000",
            "008613800138000",
            "8613800138000",
            "14712345678",
            "16612345678",
            "17012345678",
            "19912345678",
        ];
        for m in valid {
            assert!(is_mobile(m), "{m}");
            assert_eq!(classify(m), Some(Mobile), "{m}");
        }
        let invalid = [
            "15412345678",
            "14012345678",
            "16012345678",
            "17912345678",
            "19412345678",
            "12345678901",
            "1380013800",
            "138001380001",
            "138 0013-8000",
            "1380 013 8000",
            "+86  13800138000",
            "+85213800138000",
            "+86",
        ];
        for m in invalid {
            assert!(!is_mobile(m), "{m}");
        }
    }

    #[test]
    fn landlines_are_not_mobiles() {
        for n in ["010-12345678", "01012345678", "(010)12345678", "0755-8123 4567", "021 87654321", "075581234567"] {
            assert_eq!(classify(n), None, "{n}");
        }
    }

    #[test]
    fn bank_cards_need_luhn_a_scheme_prefix_and_16_to_19_digits() {
        let valid = [
            "6222021234567894",
            "6222 0212 3456 7894",
            "6222-0212-3456-7894",
            "622848001234567894",
            "6228 4800 1234 5678 94",
            "4532012345678902",
            "5226123456789012",
            "3568001234567895",
        ];
        for card in valid {
            assert!(is_bank_card(card), "{card}");
            assert_eq!(classify(card), Some(BankCard), "{card}");
        }
        let invalid = [
            "6222021234567895",
            "6222021234567849",
            "622202123456789",
            "62220212345678901236",
            "6011000990139424",
            "1234567812345670",
            "6222 0212 3456-7894",
            "62220 2123 4567 894",
            "6222 0212 3456 7894 ",
        ];
        for card in invalid {
            assert!(!is_bank_card(card), "{card}");
        }
    }

    #[test]
    fn social_credit_codes_of_real_organisations_validate() {
        // python-stdnum's example, two universities' published codes (national registration,
        // region 100000) and a company's new-style `MA` code.
        for code in ["91110000600037341L", "12100000470095016Q", "12100000425006117P", "91440300MA5H0HLK5U"] {
            assert!(is_social_credit_code(code), "{code}");
            assert_eq!(classify(code), Some(SocialCreditCode), "{code}");
        }
        assert!(!is_social_credit_code("91110000600037341K"), "check character");
        assert!(!is_social_credit_code(&with_scc_check("91110000600037342")), "organisation code check, though the code's own is right");
        assert!(!is_social_credit_code(&with_scc_check("94110000600037341")), "no category 4 under authority 9");
        assert!(!is_social_credit_code("91310000MA1FL3GJ5X"), "a made-up code from a demo");
        assert!(!is_social_credit_code("9111000060003734IL"), "I is not in the alphabet");
        assert!(!is_social_credit_code("91110000600037341l"), "lower case");
    }

    #[test]
    fn emails_follow_a_pragmatic_rfc_5322_subset() {
        for e in [
            "zhang.san@example.com.cn",
            "13800138000@163.com",
            "service+cn@qq.com",
            "o'brien@example.org",
            "a@b.cn",
            "x_y-z@mail.corp-example.cn",
        ] {
            assert!(is_email(e), "{e}");
            assert_eq!(classify(e), Some(Email), "{e}");
        }
        let long_local = format!("{}@qq.com", "a".repeat(EMAIL_LOCAL_LEN_MAX + 1));
        let invalid = [
            "zhangsan@localhost",
            "zhang san@qq.com",
            ".zhangsan@qq.com",
            "zhangsan.@qq.com",
            "zhang..san@qq.com",
            "zhangsan@qq.c",
            "zhangsan@qq.c0m",
            "zhangsan@-qq.com",
            "zhangsan@qq-.com",
            "zhangsan@qq..com",
            "@qq.com",
            "zhangsan@",
            "a@b@c.com",
            "张三@qq.com",
            "zhangsan@例子.中国",
            &long_local,
        ];
        for e in invalid {
            assert!(!is_email(e), "{e}");
        }
    }

    #[test]
    fn passports_and_permits_follow_the_published_numbering_rules() {
        for p in ["G12345678", "E12345678", "EA1234567", "EL9876543"] {
            assert!(is_passport(p), "{p}");
            assert_eq!(classify(p), Some(Passport), "{p}");
        }
        for p in ["EI1234567", "EO1234567", "E1234567", "E123456789", "GA1234567", "e12345678"] {
            assert!(!is_passport(p), "{p}");
        }
        for p in ["C12345678", "CA0000001", "CB7654321", "W12345678"] {
            assert!(is_hk_macau_permit(p), "{p}");
            assert_eq!(classify(p), Some(HkMacauPermit), "{p}");
        }
        for p in ["CI1234567", "CO1234567", "C1234567", "WA1234567", "c12345678"] {
            assert!(!is_hk_macau_permit(p), "{p}");
        }
    }

    #[test]
    fn formats_left_out_on_purpose_are_not_classified() {
        let left_out = [
            "A123456789",             // Taiwan identity card
            "A123456(7)",             // Hong Kong identity card
            "H12345678",              // 港澳居民来往内地通行证
            "H1234567800",            // its older 11-character form
            "DE1234567",              // diplomatic passport
            "１３８００１３８０００", // full-width digits
            "110105 19491231 002X",   // a resident ID with spaces
            "张三@例子.公司",         // internationalised address
        ];
        for value in left_out {
            assert_eq!(classify(value), None, "{value}");
        }
    }

    #[test]
    fn classify_trims_whitespace_but_recognisers_take_the_value_exactly() {
        assert_eq!(classify("  13800138000\n"), Some(Mobile));
        assert!(!is_mobile(" 13800138000"));
        assert!(!Mobile.recognises("13800138000 "));
        assert_eq!(classify(""), None);
        assert_eq!(classify("hello"), None);
    }

    #[test]
    fn kind_names_are_snake_case_and_display_prints_them() {
        let names: Vec<&str> = PiiKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["resident_id", "mobile", "bank_card", "social_credit_code", "email", "passport", "hk_macau_permit"]);
        for kind in PiiKind::ALL {
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    // -----------------------------------------------------------------------------------------
    // find_all on hand-written text

    fn found(text: &str) -> Vec<(PiiKind, &str)> {
        find_all(text).iter().map(|m| (m.kind, &text[m.range()])).collect()
    }

    #[test]
    fn find_all_reports_each_value_in_chinese_text_with_its_byte_range() {
        let text = "客户张三，身份证11010519491231002X，手机+86 138 0013 8000，卡号6222 0212 3456 7894，\
                    邮箱zhang.san@example.com.cn。护照EA1234567，通行证C12345678，企业91110000600037341L。";
        let expected = [
            (ResidentId, "11010519491231002X"),
            (Mobile, "+86 138 0013 8000"),
            (BankCard, "6222 0212 3456 7894"),
            (Email, "zhang.san@example.com.cn"),
            (Passport, "EA1234567"),
            (HkMacauPermit, "C12345678"),
            (SocialCreditCode, "91110000600037341L"),
        ];
        assert_eq!(found(text), expected);
        let first = find_all(text)[0];
        assert_eq!(first.range(), "客户张三，身份证".len().."客户张三，身份证11010519491231002X".len());
    }

    #[test]
    fn digits_inside_longer_runs_amounts_and_identifiers_are_not_matched() {
        let texts = [
            "订单号20260301123456789已支付",
            "流水 2013800138000123 完成",
            "trace a13800138000b",
            "Tel13800138000",
            "金额 13800138000.00 元",
            "共 1,380,013,800 元",
            "电话 010-12345678",
            "编号 138 0013 8000 1",
            "卡 6222 0212 3456 7894 1234",
            "v13800138000.1",
            "2026-13800138000",
            "1.13800138000",
            "9911010519491231002X",
            "sha 5d41402abc4b2a76b9719d911017c592",
        ];
        for text in texts {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }

    #[test]
    fn values_separated_by_punctuation_are_all_found() {
        let text = "13800138000/13900139000、E12345678;C12345678 a@b.cn,c@d.com";
        let kinds: Vec<PiiKind> = found(text).iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, [Mobile, Mobile, Passport, HkMacauPermit, Email, Email]);
    }

    #[test]
    fn a_mobile_used_as_a_mail_name_is_reported_once_as_the_address() {
        let text = "邮箱13800138000@163.com";
        assert_eq!(find_all(text), [Match { kind: Email, start: "邮箱".len(), end: text.len() }]);
    }

    #[test]
    fn a_dot_ending_the_sentence_is_not_part_of_the_address() {
        assert_eq!(found("Write to kefu@bank.com.cn."), [(Email, "kefu@bank.com.cn")]);
    }
}
