//! The key store through its public API: sealing, erasure, rotation, crashes and damage.

use finpulse_protect::{
    Algorithm, ENVELOPE_OVERHEAD_BYTES, FIELD_PLAINTEXT_BYTES_MAX, JOURNAL_FILE, KeyProvider, KeyState, KeyStore, MasterKeyError,
    MasterKeys, ProtectError, is_envelope,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// A provider holding `versions`, each key 32 copies of its byte.
fn provider(versions: &[(u32, u8)]) -> Arc<dyn KeyProvider> {
    Arc::new(MasterKeys::new(versions.iter().map(|(v, b)| (*v, [*b; 32]))).unwrap())
}

fn open(dir: &Path, versions: &[(u32, u8)]) -> KeyStore {
    KeyStore::open(dir, provider(versions), Algorithm::Aes256Gcm).unwrap()
}

fn journal_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(JOURNAL_FILE)).unwrap().len()
}

const PHONE: u16 = 11;
const CARD: u16 = 12;

#[test]
fn fields_round_trip_under_both_algorithms_and_each_opens_whatever_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut sealed = Vec::new();
    for algorithm in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        let store = KeyStore::open(dir.path(), provider(&[(1, 1)]), algorithm).unwrap();
        assert_eq!(store.ensure_keys(&["u1"]).unwrap(), usize::from(algorithm == Algorithm::Aes256Gcm));
        let bytes = store.encrypt("u1", CARD, b"6222020200112233445").unwrap();
        assert_eq!(bytes.len(), 19 + ENVELOPE_OVERHEAD_BYTES);
        assert_eq!(bytes[1], algorithm.code());
        assert_eq!(store.decrypt("u1", CARD, &bytes).unwrap(), b"6222020200112233445");
        let text = store.encrypt_text("u1", PHONE, "13800138000").unwrap();
        assert!(text.starts_with("enc1:") && is_envelope(&text), "{text}");
        assert_eq!(store.decrypt_text("u1", PHONE, &text).unwrap(), "13800138000");
        assert_eq!(store.decrypt("u1", CARD, &store.encrypt("u1", CARD, b"").unwrap()).unwrap(), b"");
        sealed.push((algorithm, bytes));
    }
    let store = open(dir.path(), &[(1, 1)]);
    for (algorithm, bytes) in sealed {
        assert_eq!(store.decrypt("u1", CARD, &bytes).unwrap(), b"6222020200112233445", "{algorithm}");
    }
}

#[test]
fn changing_any_byte_of_an_envelope_makes_it_fail() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        let store = KeyStore::open(dir.path(), provider(&[(1, 1)]), algorithm).unwrap();
        store.ensure_keys(&["u1"]).unwrap();
        let sealed = store.encrypt("u1", PHONE, b"13800138000").unwrap();
        for at in 0..sealed.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut changed = sealed.clone();
                changed[at] ^= flip;
                assert!(store.decrypt("u1", PHONE, &changed).is_err(), "{algorithm}: byte {at} ^ {flip:#x} still opened");
            }
        }
        assert!(store.decrypt("u1", PHONE, &sealed[..sealed.len() - 1]).is_err(), "a cut tag opened");
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(store.decrypt("u1", PHONE, &longer).is_err(), "an extended envelope opened");
        assert!(matches!(store.decrypt("u1", PHONE, &changed_at(&sealed, 5)), Err(ProtectError::KeyVersion { version: 0, held: 1, .. })));
        assert!(matches!(store.decrypt("u1", PHONE, &changed_at(&sealed, 20)), Err(ProtectError::Decrypt { field: PHONE, .. })));
        drop(store);
    }
}

fn changed_at(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 1;
    out
}

#[test]
fn an_envelope_moved_to_another_user_or_field_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1", "u2"]).unwrap();
    let sealed = store.encrypt("u1", PHONE, b"13800138000").unwrap();
    assert!(matches!(store.decrypt("u2", PHONE, &sealed), Err(ProtectError::Decrypt { .. })));
    assert!(matches!(store.decrypt("u1", CARD, &sealed), Err(ProtectError::Decrypt { field: CARD, .. })));
    let text = store.encrypt_text("u1", PHONE, "13800138000").unwrap();
    let err = store.decrypt_text("u2", PHONE, &text).unwrap_err();
    assert!(err.to_string().contains("belongs to another user or field"), "{err}");
    assert!(matches!(store.decrypt("u3", PHONE, &sealed), Err(ProtectError::NoKey { .. })));
    assert!(matches!(store.decrypt_text("u1", PHONE, "13800138000"), Err(ProtectError::NotEnvelope(_))));
}

#[test]
fn encrypting_needs_a_key_made_first_and_inputs_within_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    let err = store.encrypt("u1", PHONE, b"x").unwrap_err();
    assert!(err.to_string().contains("call ensure_keys"), "{err}");
    assert!(matches!(store.ensure_keys(&[""]), Err(ProtectError::BadUserId(_))));
    assert!(matches!(store.ensure_keys(&["x".repeat(129)]), Err(ProtectError::BadUserId(_))));
    assert_eq!(store.ensure_keys(&["u1", "u1", "u2"]).unwrap(), 2, "a repeated user gets one key");
    assert_eq!(store.ensure_keys(&["u1", "u2"]).unwrap(), 0);
    let big = vec![0u8; FIELD_PLAINTEXT_BYTES_MAX + 1];
    assert!(matches!(store.encrypt("u1", PHONE, &big), Err(ProtectError::TooLarge { .. })));
    assert!(store.encrypt("u1", PHONE, &big[1..]).is_ok());
}

#[test]
fn erasure_makes_every_field_of_the_user_say_erased_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1", "u2"]).unwrap();
    let (a, b) = (store.encrypt("u1", PHONE, b"13800138000").unwrap(), store.encrypt("u1", CARD, b"6222").unwrap());
    let other = store.encrypt("u2", PHONE, b"13900139000").unwrap();
    let receipt = store.erase("u1").unwrap();
    assert_eq!((receipt.user.as_str(), receipt.already_erased), ("u1", false));
    for sealed in [&a, &b] {
        assert!(matches!(store.decrypt("u1", PHONE, sealed), Err(ProtectError::Erased { ref user }) if user == "u1"));
    }
    assert!(matches!(store.encrypt("u1", PHONE, b"x"), Err(ProtectError::Erased { .. })));
    assert_eq!(store.decrypt("u2", PHONE, &other).unwrap(), b"13900139000", "another user is untouched");
    drop(store);
    let store = open(dir.path(), &[(1, 1)]);
    assert_eq!(store.key_state("u1"), KeyState::Erased);
    assert!(matches!(store.decrypt("u1", PHONE, &a), Err(ProtectError::Erased { .. })));
    assert_eq!(store.decrypt("u2", PHONE, &other).unwrap(), b"13900139000");
    let again = store.erase("u1").unwrap();
    assert!(again.already_erased);
    assert_eq!(again.erased_at_us, receipt.erased_at_us, "the receipt keeps the first erasure's time");
}

#[test]
fn ensure_keys_refuses_an_erased_user_and_makes_no_key_for_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1"]).unwrap();
    store.erase("u1").unwrap();
    assert!(matches!(store.ensure_keys(&["u2", "u1"]), Err(ProtectError::Erased { ref user }) if user == "u1"));
    assert_eq!(store.key_state("u2"), KeyState::Absent, "no key is made when the batch is refused");
    drop(store);
    let store = open(dir.path(), &[(1, 1)]);
    assert!(matches!(store.ensure_keys(&["u1"]), Err(ProtectError::Erased { .. })));
    assert_eq!(store.key_state("u1"), KeyState::Erased);
}

#[test]
fn erasing_an_unknown_user_is_an_error_and_erases_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1"]).unwrap();
    let err = store.erase_all(&["u1", "ghost"]).unwrap_err();
    assert!(matches!(&err, ProtectError::UnknownUser { user } if user == "ghost"), "{err}");
    assert_eq!(store.key_state("u1"), KeyState::Live);
    let receipts = store.erase_all(&["u1", "u1"]).unwrap();
    assert_eq!(receipts.iter().map(|r| r.already_erased).collect::<Vec<_>>(), [false, true]);
}

#[test]
fn after_rotation_only_the_new_master_key_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1", "u2", "u3"]).unwrap();
    store.erase("u3").unwrap();
    let sealed = store.encrypt("u1", PHONE, b"13800138000").unwrap();
    let index = store.blind_index(CARD, b"6222020200112233445");
    drop(store);
    let store = open(dir.path(), &[(1, 1), (2, 2)]);
    assert!(matches!(store.rotate_master(3), Err(ProtectError::Master(MasterKeyError::UnknownVersion { version: 3, .. }))));
    assert_eq!(store.rotate_master(2).unwrap(), 2, "u1 and u2 are re-wrapped; u3 has no key");
    assert_eq!(store.master_version(), 2);
    store.ensure_keys(&["u4"]).unwrap();
    drop(store);
    let store = open(dir.path(), &[(2, 2)]);
    assert_eq!(store.decrypt("u1", PHONE, &sealed).unwrap(), b"13800138000", "the event needs no rewrite");
    assert_eq!(store.blind_index(CARD, b"6222020200112233445"), index, "stored indexes stay valid");
    assert_eq!((store.key_state("u3"), store.key_state("u4")), (KeyState::Erased, KeyState::Live));
    drop(store);
    let err = KeyStore::open(dir.path(), provider(&[(1, 1)]), Algorithm::Aes256Gcm).err().unwrap();
    assert!(err.to_string().contains("master key version 2 is not available"), "{err}");
}

#[test]
fn a_wrong_master_key_fails_to_open_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1"]).unwrap();
    drop(store);
    let err = KeyStore::open(dir.path(), provider(&[(1, 9)]), Algorithm::Aes256Gcm).err().unwrap();
    assert!(matches!(&err, ProtectError::Unwrap { source: MasterKeyError::Unwrap { version: 1 }, .. }), "{err}");
    assert!(err.to_string().contains("does not unwrap with master key version 1"), "{err}");
    assert!(err.to_string().contains(JOURNAL_FILE), "{err}");
}

#[test]
fn a_torn_tail_is_cut_on_open_and_the_keys_before_it_survive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    store.ensure_keys(&["u1", "u2"]).unwrap();
    let sealed = store.encrypt("u2", PHONE, b"13800138000").unwrap();
    drop(store);
    let whole = journal_len(dir.path());
    // A record whose length runs past the end: the crash came mid-write.
    std::fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL_FILE)).unwrap().write_all(&[90, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    assert_eq!(journal_len(dir.path()), whole);
    assert_eq!(store.decrypt("u2", PHONE, &sealed).unwrap(), b"13800138000");
    store.ensure_keys(&["u3"]).unwrap();
    drop(store);
    // The last record whole in length but not in content: also a torn write, cut with it.
    let mut bytes = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(dir.path().join(JOURNAL_FILE), &bytes).unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    assert_eq!(journal_len(dir.path()), whole);
    assert_eq!(store.key_state("u3"), KeyState::Absent);
    assert_eq!(store.decrypt("u2", PHONE, &sealed).unwrap(), b"13800138000");
    store.ensure_keys(&["u3"]).unwrap();
    drop(store);
    assert_eq!(open(dir.path(), &[(1, 1)]).key_state("u3"), KeyState::Live);
}

#[test]
fn damage_before_the_last_record_is_an_error_naming_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    let first = journal_len(dir.path());
    store.ensure_keys(&["u1"]).unwrap();
    store.ensure_keys(&["u2"]).unwrap();
    drop(store);
    let mut bytes = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    bytes[first as usize + 12] ^= 0x01;
    std::fs::write(dir.path().join(JOURNAL_FILE), &bytes).unwrap();
    let err = KeyStore::open(dir.path(), provider(&[(1, 1)]), Algorithm::Aes256Gcm).err().unwrap();
    assert!(matches!(&err, ProtectError::Corrupt { offset, .. } if *offset == first), "{err}");
    assert!(err.to_string().contains(&format!("byte {first}")), "{err}");
    assert_eq!(std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap(), bytes, "a damaged journal is left as it is");
}

#[test]
fn erasing_while_other_threads_encrypt_and_make_keys_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), &[(1, 1)]));
    store.ensure_keys(&["victim"]).unwrap();
    let encryptors: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut sealed = Vec::new();
                loop {
                    match store.encrypt("victim", PHONE, b"13800138000") {
                        Ok(s) if sealed.len() < 1_000 => sealed.push(s),
                        Ok(_) => {}
                        Err(ProtectError::Erased { .. }) => return sealed,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let maker = {
        let store = store.clone();
        std::thread::spawn(move || {
            for batch in 0..50 {
                let users: Vec<String> = (0..20).map(|i| format!("other-{batch}-{i}")).collect();
                assert_eq!(store.ensure_keys(&users[..]).unwrap(), 20);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.erase("victim").unwrap();
    assert!(matches!(store.encrypt("victim", PHONE, b"x"), Err(ProtectError::Erased { .. })), "an encrypt after erase returned");
    let sealed: Vec<Vec<u8>> = encryptors.into_iter().flat_map(|t| t.join().unwrap()).collect();
    maker.join().unwrap();
    assert!(!sealed.is_empty());
    assert!(sealed.iter().all(|s| matches!(store.decrypt("victim", PHONE, s), Err(ProtectError::Erased { .. }))));
    assert!(matches!(store.ensure_keys(&["victim"]), Err(ProtectError::Erased { .. })));
    drop(store);
    let store = open(dir.path(), &[(1, 1)]);
    assert_eq!(store.key_state("victim"), KeyState::Erased);
    let lost =
        (0..50).flat_map(|b| (0..20).map(move |i| format!("other-{b}-{i}"))).filter(|u| store.key_state(u) != KeyState::Live).count();
    assert_eq!(lost, 0, "keys made during the erasure's rewrite were lost");
}

#[test]
fn blind_indexes_are_the_same_for_every_user_across_restarts_and_differ_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    let card = b"6222020200112233445";
    let index = store.blind_index(CARD, card);
    assert_ne!(index, store.blind_index(PHONE, card), "the same value in two fields");
    let text = store.blind_index_text(CARD, card);
    assert!(text.starts_with("bi1:") && text.len() == 26, "{text}");
    drop(store);
    let store = open(dir.path(), &[(1, 1)]);
    assert_eq!(store.blind_index(CARD, card), index);
    assert_eq!(store.blind_index_text(CARD, card), text);
    let elsewhere = tempfile::tempdir().unwrap();
    assert_ne!(open(elsewhere.path(), &[(1, 1)]).blind_index(CARD, card), index, "each store has its own blind-index key");
}

#[test]
fn a_second_opener_of_the_same_folder_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[(1, 1)]);
    let err = KeyStore::open(dir.path(), provider(&[(1, 1)]), Algorithm::Aes256Gcm).err().unwrap();
    assert!(matches!(err, ProtectError::Locked { .. }), "{err}");
    drop(store);
    assert!(KeyStore::open(dir.path(), provider(&[(1, 1)]), Algorithm::Aes256Gcm).is_ok());
}

#[test]
fn the_journal_is_owner_only_and_the_store_can_be_shared_between_threads() {
    use std::os::unix::fs::PermissionsExt;
    fn shared<T: Send + Sync>() {}
    shared::<KeyStore>();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("protect");
    let store = open(&keys_dir, &[(1, 1)]);
    store.ensure_keys(&["u1"]).unwrap();
    store.erase("u1").unwrap();
    assert_eq!(std::fs::metadata(keys_dir.join(JOURNAL_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777, 0o700);
}
