//! Deterministic assignment of users to variations, bit-for-bit GrowthBook's SDK bucketing: a
//! user's bucket in [0, 1) is a hash of the experiment's seed and the user's id, and the
//! variations own consecutive ranges of buckets sized by their weights and the coverage. The
//! same seed and id land in the same bucket on every server and in every GrowthBook SDK, so an
//! assignment needs no storage as long as the weights are not changed; keeping users in their
//! variation across a weight change (GrowthBook's sticky bucketing) needs stored assignments,
//! which belong to the caller.

use crate::{ExperimentError, VARIATIONS_MAX};

/// FNV-1a 32-bit offset basis.
const FNV_OFFSET_BASIS: u32 = 0x811C_9DC5;
/// FNV-1a 32-bit prime.
const FNV_PRIME: u32 = 0x0100_0193;
/// Version 2 buckets are hash mod this, over this: a resolution of 0.01% of traffic.
const BUCKETS_V2: u32 = 10_000;
/// Version 1 buckets: 0.1% resolution.
const BUCKETS_V1: u32 = 1_000;
/// The SDKs fall back to equal weights unless the weights sum to within this of 1.
const WEIGHT_SUM_MIN: f64 = 0.99;
/// See [`WEIGHT_SUM_MIN`].
const WEIGHT_SUM_MAX: f64 = 1.01;

/// FNV-1a over the UTF-16 code units of `text`, as the JavaScript SDK hashes (`charCodeAt`) and
/// the Python SDK follows: user ids in Chinese hash the same in every SDK.
pub fn fnv1a32(text: &str) -> u32 {
    fnv1a32_extend(FNV_OFFSET_BASIS, text)
}

/// Continues an FNV-1a hash over more text: hashing `a` then `b` is hashing `a + b` (UTF-16
/// encodes each string on its own, with no pair crossing the join), without building `a + b`.
fn fnv1a32_extend(hash: u32, text: &str) -> u32 {
    text.encode_utf16().fold(hash, |hash, unit| (hash ^ u32::from(unit)).wrapping_mul(FNV_PRIME))
}

/// FNV-1a over the decimal digits of `n`, as `fnv1a32(&n.to_string())` without the string.
fn fnv1a32_decimal(n: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[..len].iter().rev().fold(FNV_OFFSET_BASIS, |hash, &d| (hash ^ u32::from(d)).wrapping_mul(FNV_PRIME))
}

/// GrowthBook's hashing algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashVersion {
    /// fnv1a32(value + seed) mod 1000 / 1000: biased, kept for experiments started with it.
    V1,
    /// fnv1a32(decimal(fnv1a32(seed + value))) mod 10000 / 10000: the current default.
    V2,
}

/// The user's bucket in [0, 1) for an experiment seed (GrowthBook's `hash`). Allocates
/// nothing: it runs on every assignment.
pub fn bucket(seed: &str, value: &str, version: HashVersion) -> f64 {
    bucket_of_parts(&[seed], value, version)
}

/// [`bucket`] with the seed given in parts (`["__", layer]` for a layer's seed), so no caller
/// has to join them.
pub(crate) fn bucket_of_parts(seed: &[&str], value: &str, version: HashVersion) -> f64 {
    match version {
        HashVersion::V2 => {
            let inner = fnv1a32_extend(seed.iter().fold(FNV_OFFSET_BASIS, |h, part| fnv1a32_extend(h, part)), value);
            f64::from(fnv1a32_decimal(inner) % BUCKETS_V2) / f64::from(BUCKETS_V2)
        }
        HashVersion::V1 => {
            let hash = seed.iter().fold(fnv1a32(value), |h, part| fnv1a32_extend(h, part));
            f64::from(hash % BUCKETS_V1) / f64::from(BUCKETS_V1)
        }
    }
}

/// The buckets [start, end) a variation owns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketRange {
    /// First bucket in the range.
    pub start: f64,
    /// First bucket past it.
    pub end: f64,
}

impl BucketRange {
    /// Whether bucket `n` falls in this range.
    pub fn contains(&self, n: f64) -> bool {
        self.start <= n && n < self.end
    }
}

/// Each variation's bucket range (GrowthBook's `getBucketRanges`): variation i starts at the sum
/// of the weights before it and covers `coverage` of its weight, so lowering the coverage drops
/// users from the end of each range and never moves one to another variation. Weights that are
/// missing, of the wrong length, negative, non-finite or not summing to about 1 are replaced by
/// equal weights, and the coverage is clamped to [0, 1], as the SDK does.
pub fn bucket_ranges(variations: usize, coverage: f64, weights: Option<&[f64]>) -> Result<Vec<BucketRange>, ExperimentError> {
    if variations > VARIATIONS_MAX {
        return Err(ExperimentError::TooManyVariations { variations, max: VARIATIONS_MAX });
    }
    // NaN stays NaN (no bucket is then in range), as in the SDK.
    let coverage = coverage.clamp(0.0, 1.0);
    let equal = vec![1.0 / variations as f64; variations];
    let weights = match weights {
        Some(w) if valid_weights(w, variations) => w,
        _ => &equal,
    };
    let mut cumulative = 0.0;
    Ok(weights
        .iter()
        .map(|&w| {
            let start = cumulative;
            cumulative += w;
            BucketRange { start, end: start + coverage * w }
        })
        .collect())
}

fn valid_weights(weights: &[f64], variations: usize) -> bool {
    weights.len() == variations
        && weights.iter().all(|w| w.is_finite() && *w >= 0.0)
        && (WEIGHT_SUM_MIN..=WEIGHT_SUM_MAX).contains(&weights.iter().sum::<f64>())
}

/// The variation whose range holds bucket `n`; `None` when `n` is outside every range (the user
/// is not in the experiment).
pub fn choose_variation(n: f64, ranges: &[BucketRange]) -> Option<usize> {
    ranges.iter().position(|r| r.contains(n))
}

/// An experiment as the assignment sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExperimentSplit<'a> {
    /// The experiment's key.
    pub key: &'a str,
    /// The hash seed; the key when `None` or empty, as in GrowthBook.
    pub seed: Option<&'a str>,
    /// How many variations (control first).
    pub variations: usize,
    /// The traffic share of each variation; equal when `None`.
    pub weights: Option<&'a [f64]>,
    /// The share of users included at all, in [0, 1].
    pub coverage: f64,
    /// The hashing algorithm.
    pub hash_version: HashVersion,
}

/// The variation `user_id` is assigned to, or `None` when the user is outside the coverage or
/// has no id (GrowthBook skips users whose hash attribute is empty).
pub fn assign_variation(split: &ExperimentSplit<'_>, user_id: &str) -> Result<Option<usize>, ExperimentError> {
    if user_id.is_empty() {
        return Ok(None);
    }
    let seed = split.seed.filter(|s| !s.is_empty()).unwrap_or(split.key);
    let ranges = bucket_ranges(split.variations, split.coverage, split.weights)?;
    Ok(choose_variation(bucket(seed, user_id, split.hash_version), &ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with the `growthbook` Python SDK from PyPI (4.0.0): `fnv1a32` and
    /// `gbhash(seed, value, version)`.
    #[test]
    fn hashes_match_the_growthbook_sdk() {
        for (text, hash) in
            [("", 2_166_136_261), ("a", 3_826_002_220), ("hello", 1_335_831_723), ("用户", 3_303_804_768), ("😀", 3_409_036_472)]
        {
            assert_eq!(fnv1a32(text), hash, "{text}");
        }
        let cases = [
            ("", "", HashVersion::V2, 0.2305),
            ("exp-checkout", "user-1", HashVersion::V2, 0.4084),
            ("pricing", "10086", HashVersion::V2, 0.7167),
            ("新手礼包", "用户_42", HashVersion::V2, 0.4574),
            ("seed", "😀x", HashVersion::V2, 0.6751),
            ("a", "b", HashVersion::V1, 0.708),
            ("exp-checkout", "user-1", HashVersion::V1, 0.406),
            ("新手礼包", "用户_42", HashVersion::V1, 0.105),
        ];
        for (seed, value, version, expected) in cases {
            assert_eq!(bucket(seed, value, version), expected, "{seed}/{value}");
        }
    }

    #[test]
    fn hashing_in_parts_equals_hashing_the_joined_text() {
        for n in [0, 7, 10, 4_294_967_295, 1_234_567_890] {
            assert_eq!(fnv1a32_decimal(n), fnv1a32(&n.to_string()), "{n}");
        }
        for (a, b, value) in [("__", "onboarding", "用户_42"), ("", "", ""), ("x😀", "y", "z")] {
            for version in [HashVersion::V1, HashVersion::V2] {
                assert_eq!(bucket_of_parts(&[a, b], value, version), bucket(&format!("{a}{b}"), value, version));
            }
        }
    }

    /// Also from the SDK's `getBucketRanges`.
    #[test]
    fn ranges_follow_weights_and_coverage_like_the_sdk() {
        let r = bucket_ranges(3, 0.5, Some(&[0.2, 0.3, 0.5])).unwrap();
        let expected = [(0.0, 0.1), (0.2, 0.35), (0.5, 0.75)];
        assert_eq!(r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(), expected);
        // Weights summing to 1.4 fall back to equal weights; coverage above 1 is clamped.
        let r = bucket_ranges(2, 1.0, Some(&[0.7, 0.7])).unwrap();
        assert_eq!(r.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(), [(0.0, 0.5), (0.5, 1.0)]);
        let r = bucket_ranges(3, 1.5, None).unwrap();
        assert_eq!(r[2], BucketRange { start: 2.0 / 3.0, end: 1.0 });
    }

    #[test]
    fn assignment_is_deterministic_and_respects_coverage() {
        let split =
            ExperimentSplit { key: "exp-checkout", seed: None, variations: 2, weights: None, coverage: 1.0, hash_version: HashVersion::V2 };
        // bucket 0.4084 < 0.5: control, every time.
        assert_eq!(assign_variation(&split, "user-1").unwrap(), Some(0));
        assert_eq!(assign_variation(&split, "user-1").unwrap(), Some(0));
        let narrow = ExperimentSplit { coverage: 0.5, ..split };
        // Control now owns [0, 0.25): the same user is left out, not moved to treatment.
        assert_eq!(assign_variation(&narrow, "user-1").unwrap(), None);
        assert_eq!(assign_variation(&split, "").unwrap(), None);
    }

    #[test]
    fn equal_weights_split_many_users_evenly() {
        let split =
            ExperimentSplit { key: "even", seed: Some("s"), variations: 4, weights: None, coverage: 1.0, hash_version: HashVersion::V2 };
        let mut counts = [0u32; 4];
        for i in 0..40_000 {
            counts[assign_variation(&split, &format!("u{i}")).unwrap().unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..=10_500).contains(&c)), "{counts:?}");
    }
}
