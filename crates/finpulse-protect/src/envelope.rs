//! The envelope one protected field is stored as, and its text form.
//!
//! ```text
//! byte 0       format (1)
//! byte 1       algorithm (1 = AES-256-GCM, 2 = SM4-GCM)
//! bytes 2..6   the user's data-key version, u32 big-endian
//! bytes 6..18  nonce, 96 random bits
//! bytes 18..   ciphertext (as long as the plaintext), then the 16-byte tag
//! ```
//!
//! The associated data is a label, the format, algorithm and key version bytes, the field id
//! and the user id: an envelope moved to another user or another field, or with its header
//! changed, does not open. The nonce is authenticated by GCM itself.
//!
//! Text form, for the event store's text columns: `enc1:` then the envelope in base64url
//! without padding (`-` and `_`, so it needs no escaping in URLs, CSV or JSON).

use crate::algorithm::{Algorithm, KEY_BYTES, NONCE_BYTES, NotAuthentic, TAG_BYTES};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The envelope format this crate writes and reads.
pub const ENVELOPE_FORMAT: u8 = 1;
/// Bytes before the ciphertext: format, algorithm, key version, nonce.
pub const ENVELOPE_HEADER_BYTES: usize = 1 + 1 + 4 + NONCE_BYTES;
/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD_BYTES: usize = ENVELOPE_HEADER_BYTES + TAG_BYTES;
/// The most plaintext one field may hold: well above the write path's default field limit
/// (4 KiB), and a bound on what one call allocates.
pub const FIELD_PLAINTEXT_BYTES_MAX: usize = 64 * 1024;
/// What the text form starts with.
pub const ENVELOPE_TEXT_PREFIX: &str = "enc1:";
/// The longest text form of an envelope of [`FIELD_PLAINTEXT_BYTES_MAX`] plaintext.
pub const ENVELOPE_TEXT_BYTES_MAX: usize =
    ENVELOPE_TEXT_PREFIX.len() + (FIELD_PLAINTEXT_BYTES_MAX + ENVELOPE_OVERHEAD_BYTES).div_ceil(3) * 4;
/// The shortest text form (an empty plaintext): base64 of the overhead, unpadded.
const ENVELOPE_TEXT_BYTES_MIN: usize = ENVELOPE_TEXT_PREFIX.len() + (ENVELOPE_OVERHEAD_BYTES * 4).div_ceil(3);
/// What the associated data opens with, so an envelope's tag never verifies for another use
/// of the same key.
const AAD_LABEL: &[u8] = b"finpulse-protect v1 field\0";
/// The longest user id the associated data holds (its length is one byte).
pub(crate) const AAD_USER_BYTES_MAX: usize = u8::MAX as usize;
/// Bytes of the longest associated data.
const AAD_BYTES_MAX: usize = AAD_LABEL.len() + 1 + 1 + 4 + 2 + 1 + AAD_USER_BYTES_MAX;

/// An envelope's parts, borrowed from it.
pub(crate) struct Parsed<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) key_version: u32,
    nonce: &'a [u8; NONCE_BYTES],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_BYTES],
}

/// Seals `plaintext` for `user`'s field `field` under `key` (version `key_version`) with a
/// fresh random nonce. Random 96-bit nonces keep the chance of a repeat under one key below
/// 2^-32 up to 2^32 fields per user (NIST SP 800-38D, 8.3), far beyond any user's history.
pub(crate) fn seal(algorithm: Algorithm, key_version: u32, key: &[u8; KEY_BYTES], user: &str, field: u16, plaintext: &[u8]) -> Vec<u8> {
    debug_assert!(plaintext.len() <= FIELD_PLAINTEXT_BYTES_MAX);
    let mut nonce = [0u8; NONCE_BYTES];
    rand::fill(&mut nonce);
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD_BYTES + plaintext.len());
    out.push(ENVELOPE_FORMAT);
    out.push(algorithm.code());
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (aad, aad_len) = aad(algorithm, key_version, user, field);
    let tag = algorithm.seal(key, &nonce, &aad[..aad_len], &mut out[ENVELOPE_HEADER_BYTES..]);
    out.extend_from_slice(&tag);
    out
}

/// The parts of `envelope`, or why it is not one.
pub(crate) fn parse(envelope: &[u8]) -> Result<Parsed<'_>, String> {
    if envelope.len() < ENVELOPE_OVERHEAD_BYTES {
        return Err(format!("{} bytes, shorter than the {ENVELOPE_OVERHEAD_BYTES} every envelope has", envelope.len()));
    }
    if envelope.len() > ENVELOPE_OVERHEAD_BYTES + FIELD_PLAINTEXT_BYTES_MAX {
        return Err(format!("{} bytes, longer than any envelope this crate makes", envelope.len()));
    }
    if envelope[0] != ENVELOPE_FORMAT {
        return Err(format!("unknown envelope format {}", envelope[0]));
    }
    let algorithm = Algorithm::from_code(envelope[1]).ok_or_else(|| format!("unknown algorithm {}", envelope[1]))?;
    let (body, tag) = envelope.split_at(envelope.len() - TAG_BYTES);
    Ok(Parsed {
        algorithm,
        key_version: u32::from_be_bytes(envelope[2..6].try_into().expect("4 bytes")),
        nonce: envelope[6..ENVELOPE_HEADER_BYTES].try_into().expect("12 bytes"),
        ciphertext: &body[ENVELOPE_HEADER_BYTES..],
        tag: tag.try_into().expect("16 bytes"),
    })
}

/// The plaintext of a parsed envelope, if it authenticates for `user` and `field` under `key`.
pub(crate) fn open(parsed: &Parsed<'_>, key: &[u8; KEY_BYTES], user: &str, field: u16) -> Result<Vec<u8>, NotAuthentic> {
    let (aad, aad_len) = aad(parsed.algorithm, parsed.key_version, user, field);
    let mut out = parsed.ciphertext.to_vec();
    parsed.algorithm.open(key, parsed.nonce, &aad[..aad_len], &mut out, parsed.tag)?;
    Ok(out)
}

/// The associated data, on the stack: label, format, algorithm, key version, field, user id
/// length and user id (the length makes the encoding unambiguous).
fn aad(algorithm: Algorithm, key_version: u32, user: &str, field: u16) -> ([u8; AAD_BYTES_MAX], usize) {
    // User ids are checked against USER_ID_BYTES_MAX (<= AAD_USER_BYTES_MAX) before any key
    // exists for them, and no envelope is sealed or opened without a key.
    assert!(user.len() <= AAD_USER_BYTES_MAX, "user id over {AAD_USER_BYTES_MAX} bytes");
    let mut out = [0u8; AAD_BYTES_MAX];
    let mut at = 0;
    let parts: [&[u8]; 6] = [
        AAD_LABEL,
        &[ENVELOPE_FORMAT, algorithm.code()],
        &key_version.to_be_bytes(),
        &field.to_be_bytes(),
        &[user.len() as u8],
        user.as_bytes(),
    ];
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    (out, at)
}

/// The text form of an envelope.
pub(crate) fn to_text(envelope: &[u8]) -> String {
    let mut out = String::with_capacity(ENVELOPE_TEXT_PREFIX.len() + (envelope.len() * 4).div_ceil(3));
    out.push_str(ENVELOPE_TEXT_PREFIX);
    URL_SAFE_NO_PAD.encode_string(envelope, &mut out);
    out
}

/// The envelope a text form holds, or why it holds none.
pub(crate) fn from_text(text: &str) -> Result<Vec<u8>, String> {
    let body = text.strip_prefix(ENVELOPE_TEXT_PREFIX).ok_or_else(|| format!("the text does not start with {ENVELOPE_TEXT_PREFIX}"))?;
    if text.len() > ENVELOPE_TEXT_BYTES_MAX {
        return Err(format!("the text is {} bytes, longer than any envelope's ({ENVELOPE_TEXT_BYTES_MAX})", text.len()));
    }
    URL_SAFE_NO_PAD.decode(body).map_err(|e| format!("the text is not base64url: {e}"))
}

/// Whether `text` looks like the text form of an envelope: the prefix and a plausible length,
/// without decoding. For telling protected values from clear ones already stored; a `true` is
/// confirmed only by decrypting.
pub fn is_envelope(text: &str) -> bool {
    text.starts_with(ENVELOPE_TEXT_PREFIX) && (ENVELOPE_TEXT_BYTES_MIN..=ENVELOPE_TEXT_BYTES_MAX).contains(&text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_BYTES] = [5; KEY_BYTES];

    #[test]
    fn an_envelope_carries_its_header_and_grows_by_the_overhead() {
        let env = seal(Algorithm::Sm4Gcm, 7, &KEY, "u1", 3, b"13800138000");
        assert_eq!(env.len(), 11 + ENVELOPE_OVERHEAD_BYTES);
        assert_eq!(&env[..6], &[ENVELOPE_FORMAT, 2, 0, 0, 0, 7]);
        let parsed = parse(&env).unwrap();
        assert_eq!((parsed.algorithm, parsed.key_version), (Algorithm::Sm4Gcm, 7));
        assert_eq!(open(&parsed, &KEY, "u1", 3).unwrap(), b"13800138000");
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let a = seal(Algorithm::Aes256Gcm, 1, &KEY, "u1", 3, b"x");
        let b = seal(Algorithm::Aes256Gcm, 1, &KEY, "u1", 3, b"x");
        assert_ne!(a, b);
    }

    #[test]
    fn the_text_form_round_trips_and_is_recognised_cheaply() {
        let empty = seal(Algorithm::Aes256Gcm, 1, &KEY, "u1", 3, b"");
        let text = to_text(&empty);
        assert_eq!(text.len(), ENVELOPE_TEXT_BYTES_MIN);
        assert!(is_envelope(&text));
        assert_eq!(from_text(&text).unwrap(), empty);
        assert!(!text[ENVELOPE_TEXT_PREFIX.len()..].contains(['+', '/', '=']));
        let big = to_text(&seal(Algorithm::Aes256Gcm, 1, &KEY, "u1", 3, &vec![0; FIELD_PLAINTEXT_BYTES_MAX]));
        assert!(big.len() <= ENVELOPE_TEXT_BYTES_MAX && is_envelope(&big));
        assert!(!is_envelope("13800138000"));
        assert!(!is_envelope("enc1:short"));
        assert!(from_text("enc1:not*base64*at*all*but*long*enough*to*pass*the*length").is_err());
        assert!(from_text("plain").is_err());
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let env = seal(Algorithm::Aes256Gcm, 1, &KEY, "u1", 3, b"x");
        assert!(parse(&env[..10]).err().unwrap().contains("shorter"));
        let mut bad = env.clone();
        bad[0] = 9;
        assert!(parse(&bad).err().unwrap().contains("format 9"));
        let mut bad = env;
        bad[1] = 9;
        assert!(parse(&bad).err().unwrap().contains("algorithm 9"));
    }
}
