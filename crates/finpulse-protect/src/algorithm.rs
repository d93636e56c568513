//! The two AEADs a field (or a wrapped key) can be sealed with, behind one small surface: seal
//! and open in place under a 256-bit key, a 96-bit nonce and associated data.
//!
//! Both are GCM over a 128-bit block cipher (`aes_gcm::AesGcm` is generic over any such cipher),
//! so one envelope layout and one tag size serve both. SM4 takes a 128-bit key: it is derived
//! from the 256-bit key with HKDF-SHA256 under its own label, so one data key serves either
//! algorithm and an envelope can always be opened whichever the store's default is now.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes of every key this crate seals with (data keys, master keys).
pub const KEY_BYTES: usize = 32;
/// Bytes of a GCM nonce (96 bits: the size GCM is defined for without hashing the nonce).
pub const NONCE_BYTES: usize = 12;
/// Bytes of a GCM tag (the full 128 bits).
pub const TAG_BYTES: usize = 16;
/// Bytes of an SM4 key.
const SM4_KEY_BYTES: usize = 16;
/// The HKDF label the SM4 key is derived under; changing it makes every SM4 envelope unreadable.
const SM4_KEY_LABEL: &[u8] = b"finpulse-protect v1 sm4-gcm key";

/// SM4-GCM: GCM with SM4 (GB/T 32907-2016) as its block cipher, as RFC 8998 specifies it.
type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, U12>;

/// An AEAD. `Aes256Gcm` is the default; `Sm4Gcm` is for deployments held to the national
/// (GM/T) algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// AES-256-GCM (NIST SP 800-38D).
    #[default]
    Aes256Gcm,
    /// SM4-GCM (GB/T 32907-2016 with GCM, RFC 8998), keyed by HKDF from the 256-bit key.
    Sm4Gcm,
}

/// A name that is not one of the algorithms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm '{0}' (expected aes-256-gcm or sm4-gcm)")]
pub struct UnknownAlgorithm(pub String);

/// Why an AEAD refused to open: the ciphertext, tag, nonce, key or associated data is not the
/// one it was sealed with. Deliberately says no more (which one it was is not knowable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAuthentic;

impl Algorithm {
    /// Its byte in envelopes and wrapped keys.
    pub fn code(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::Sm4Gcm => 2,
        }
    }

    /// The algorithm of an envelope or wrapped-key byte.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::Sm4Gcm),
            _ => None,
        }
    }

    /// Its name in configuration: `aes-256-gcm` or `sm4-gcm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::Sm4Gcm => "sm4-gcm",
        }
    }

    /// Encrypts `buffer` in place and returns the tag. The caller guarantees `nonce` is never
    /// reused under `key` (every caller draws it at random; see `envelope`).
    pub(crate) fn seal(self, key: &[u8; KEY_BYTES], nonce: &[u8; NONCE_BYTES], aad: &[u8], buffer: &mut [u8]) -> [u8; TAG_BYTES] {
        match self {
            Self::Aes256Gcm => seal_with(&aes_gcm::Aes256Gcm::new(GenericArray::from_slice(key)), nonce, aad, buffer),
            Self::Sm4Gcm => seal_with(&Sm4Gcm::new(GenericArray::from_slice(&*sm4_key(key))), nonce, aad, buffer),
        }
    }

    /// Decrypts `buffer` in place when `tag` authenticates it with `aad`; on failure `buffer`
    /// holds no plaintext (the AEAD checks the tag before decrypting).
    pub(crate) fn open(
        self,
        key: &[u8; KEY_BYTES],
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), NotAuthentic> {
        match self {
            Self::Aes256Gcm => open_with(&aes_gcm::Aes256Gcm::new(GenericArray::from_slice(key)), nonce, aad, buffer, tag),
            Self::Sm4Gcm => open_with(&Sm4Gcm::new(GenericArray::from_slice(&*sm4_key(key))), nonce, aad, buffer, tag),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "aes-256-gcm" | "aes256gcm" => Ok(Self::Aes256Gcm),
            "sm4-gcm" | "sm4gcm" => Ok(Self::Sm4Gcm),
            _ => Err(UnknownAlgorithm(s.to_string())),
        }
    }
}

/// The 128-bit SM4 key of a 256-bit key: HKDF-SHA256 (no salt: the input is already uniformly
/// random), labelled so it is independent of every other use of the same key.
fn sm4_key(key: &[u8; KEY_BYTES]) -> Zeroizing<[u8; SM4_KEY_BYTES]> {
    let mut out = Zeroizing::new([0u8; SM4_KEY_BYTES]);
    Hkdf::<Sha256>::new(None, key).expand(SM4_KEY_LABEL, &mut *out).expect("16 bytes is far below HKDF-SHA256's 8160-byte limit");
    out
}

fn seal_with<C: AeadInPlace<NonceSize = U12>>(cipher: &C, nonce: &[u8; NONCE_BYTES], aad: &[u8], buffer: &mut [u8]) -> [u8; TAG_BYTES] {
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, buffer)
        // GCM refuses only plaintexts over 2^36 - 32 bytes; every caller's input is bounded far
        // below that (FIELD_PLAINTEXT_BYTES_MAX, KEY_BYTES).
        .expect("GCM seals any input under 64 GiB");
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&tag);
    out
}

fn open_with<C: AeadInPlace<NonceSize = U12>>(
    cipher: &C,
    nonce: &[u8; NONCE_BYTES],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; TAG_BYTES],
) -> Result<(), NotAuthentic> {
    cipher.decrypt_in_place_detached(GenericArray::from_slice(nonce), aad, buffer, GenericArray::from_slice(tag)).map_err(|_| NotAuthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_round_trip_through_their_codes_and_names() {
        for a in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
            assert_eq!(Algorithm::from_code(a.code()), Some(a));
            assert_eq!(a.name().parse::<Algorithm>(), Ok(a));
        }
        assert_eq!(Algorithm::from_code(0), None);
        assert!("des".parse::<Algorithm>().unwrap_err().to_string().contains("'des'"));
    }

    #[test]
    fn the_two_algorithms_give_different_ciphertexts_under_one_key() {
        let (key, nonce) = ([7u8; KEY_BYTES], [9u8; NONCE_BYTES]);
        let (mut a, mut b) = (*b"same plaintext", *b"same plaintext");
        let tag_a = Algorithm::Aes256Gcm.seal(&key, &nonce, b"", &mut a);
        let tag_b = Algorithm::Sm4Gcm.seal(&key, &nonce, b"", &mut b);
        assert_ne!(a, b);
        assert!(Algorithm::Sm4Gcm.open(&key, &nonce, b"", &mut a.clone(), &tag_a).is_err());
        Algorithm::Sm4Gcm.open(&key, &nonce, b"", &mut b, &tag_b).unwrap();
        assert_eq!(&b, b"same plaintext");
    }

    /// Known answers: the primitives are the standard ones, wired as the module says.
    mod known_answers {
        use super::*;
        use sm4::cipher::BlockEncrypt;

        fn unhex(s: &str) -> Vec<u8> {
            hex::decode(s).unwrap()
        }

        /// The GCM specification's test case 16 (McGrew and Viega, "The Galois/Counter Mode of
        /// Operation", 2005; the same vector NIST's GCM validation uses): AES-256, 60-byte
        /// plaintext, 20-byte associated data.
        #[test]
        fn aes_256_gcm_matches_the_gcm_specification_test_case_16() {
            let key: [u8; KEY_BYTES] = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308").try_into().unwrap();
            let nonce: [u8; NONCE_BYTES] = unhex("cafebabefacedbaddecaf888").try_into().unwrap();
            let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
            let plaintext = unhex(
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            );
            let mut buffer = plaintext.clone();
            let tag = Algorithm::Aes256Gcm.seal(&key, &nonce, &aad, &mut buffer);
            assert_eq!(
                hex::encode(&buffer),
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            );
            assert_eq!(hex::encode(tag), "76fc6ece0f4e1768cddf8853bb2d551b");
            Algorithm::Aes256Gcm.open(&key, &nonce, &aad, &mut buffer, &tag).unwrap();
            assert_eq!(buffer, plaintext);
        }

        /// GB/T 32907-2016, appendix A, example 1: the key encrypting itself as one block.
        #[test]
        fn sm4_block_cipher_matches_the_gb_t_32907_example() {
            let key = unhex("0123456789abcdeffedcba9876543210");
            let cipher = sm4::Sm4::new(GenericArray::from_slice(&key));
            let mut block = GenericArray::clone_from_slice(&key);
            cipher.encrypt_block(&mut block);
            assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
        }

        /// RFC 8998 (ShangMi in TLS 1.3), appendix A.1: SM4-GCM, the construction `Sm4Gcm` names.
        #[test]
        fn sm4_gcm_matches_the_rfc_8998_example() {
            let key = unhex("0123456789abcdeffedcba9876543210");
            let nonce: [u8; NONCE_BYTES] = unhex("00001234567800000000abcd").try_into().unwrap();
            let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
            let mut buffer = unhex(
                "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccddddddddddddddddeeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
            );
            let tag = seal_with(&Sm4Gcm::new(GenericArray::from_slice(&key)), &nonce, &aad, &mut buffer);
            assert_eq!(
                hex::encode(&buffer),
                "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
            );
            assert_eq!(hex::encode(tag), "83de3541e4c2b58177e065a9bf7b62ec");
        }

        /// The SM4 key derivation and both algorithms end to end, against answers computed
        /// independently (Python `cryptography` 48: HKDF-SHA256, SM4 in GCM mode, AESGCM).
        #[test]
        fn both_algorithms_under_a_256_bit_key_match_an_independent_implementation() {
            let key: [u8; KEY_BYTES] = std::array::from_fn(|i| i as u8);
            let nonce: [u8; NONCE_BYTES] = std::array::from_fn(|i| i as u8);
            assert_eq!(hex::encode(*sm4_key(&key)), "e33e6ba110ec3331e21ecab7d2df9ced");
            let mut sm4 = b"6222020200112233445".to_vec();
            let tag = Algorithm::Sm4Gcm.seal(&key, &nonce, b"finpulse", &mut sm4);
            assert_eq!(hex::encode(&sm4), "e2097565251ee35192c3e9c75e6de2a571dccf");
            assert_eq!(hex::encode(tag), "eb7ff3cf7e36ebc11532b0f4394917d7");
            let mut aes = b"6222020200112233445".to_vec();
            let tag = Algorithm::Aes256Gcm.seal(&key, &nonce, b"finpulse", &mut aes);
            assert_eq!(hex::encode(&aes), "7130e429f5d7f229bd71a6ba83db4b5eb7e2b2");
            assert_eq!(hex::encode(tag), "b0da9ee528ed495efc4a590710c3a381");
        }
    }
}
