//! Properties of the event codec and the log's framing, checked on thousands of random cases
//! from fixed seeds (a failure names its seed and case, so it replays exactly).

use finpulse_core::{Event, FieldId, TypeId, Value};
use finpulse_log::codec;
use finpulse_log::wal::{Wal, WalOptions};
use rand::{Rng, RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;

const CASES: u64 = 3_000;

fn text(rng: &mut Pcg64Mcg, len_max: usize) -> String {
    let len = rng.random_range(0..=len_max);
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => char::from(rng.random_range(b'a'..=b'z')),
            1 => ['é', '中', '文', '€', '\u{0}', '\'', '"', '\n'][rng.random_range(0..8)],
            2 => char::from_u32(rng.random_range(0x20..0xD7FF)).unwrap_or('x'),
            _ => char::from(rng.random_range(b'0'..=b'9')),
        })
        .collect()
}

fn value(rng: &mut Pcg64Mcg) -> Value {
    match rng.random_range(0..5) {
        0 => Value::Bool(rng.random()),
        1 => Value::Int(rng.next_u64() as i64),
        2 => Value::Float(f64::from_bits(rng.next_u64())),
        3 => Value::Str(text(rng, 300)),
        _ => Value::Ts(rng.next_u64() as i64),
    }
}

fn event(rng: &mut Pcg64Mcg) -> Event {
    let mut ids: Vec<u16> = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
    ids.sort_unstable();
    ids.dedup();
    Event {
        event_id: text(rng, 128),
        user_id: rng.random_bool(0.8).then(|| text(rng, 64)),
        ts_us: rng.next_u64() as i64,
        type_id: TypeId(rng.random()),
        fields: ids.into_iter().map(|id| (FieldId(id), value(rng))).collect(),
    }
}

/// Equality that holds NaN payloads equal to themselves (a float is kept as its bits).
fn same(a: &Event, b: &Event) -> bool {
    let bits = |v: &Value| match v {
        Value::Float(f) => Value::Int(f.to_bits() as i64),
        other => other.clone(),
    };
    a.event_id == b.event_id
        && a.user_id == b.user_id
        && a.ts_us == b.ts_us
        && a.type_id == b.type_id
        && a.fields.len() == b.fields.len()
        && a.fields.iter().zip(&b.fields).all(|((fa, va), (fb, vb))| fa == fb && bits(va) == bits(vb))
}

#[test]
fn any_event_decodes_to_itself_and_its_id_and_type_read_alone() {
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_c0dec);
    let mut buf = Vec::new();
    for case in 0..CASES {
        let e = event(&mut rng);
        buf.clear();
        codec::encode(&e, &mut buf);
        let back = codec::decode(&buf).unwrap_or_else(|err| panic!("case {case}: {err} for {e:?}"));
        assert!(same(&back, &e), "case {case}: {e:?} came back as {back:?}");
        assert_eq!(codec::decode_event_id(&buf).unwrap(), e.event_id, "case {case}");
        assert_eq!(codec::decode_type_id(&buf).unwrap(), e.type_id, "case {case}");
    }
}

#[test]
fn damaged_encodings_are_errors_or_events_never_panics() {
    let mut rng = Pcg64Mcg::seed_from_u64(0xbad_b17e5);
    let mut buf = Vec::new();
    for case in 0..CASES {
        buf.clear();
        codec::encode(&event(&mut rng), &mut buf);
        match rng.random_range(0..3) {
            0 if !buf.is_empty() => {
                let i = rng.random_range(0..buf.len());
                buf[i] ^= 1 << rng.random_range(0..8);
            }
            1 => buf.truncate(rng.random_range(0..=buf.len())),
            _ => {
                let n = rng.random_range(0..200);
                buf = (0..n).map(|_| rng.random()).collect();
            }
        }
        // Whatever it returns, it returns: a panic here fails the test with its case.
        if let Ok(e) = codec::decode(&buf) {
            let mut again = Vec::new();
            codec::encode(&e, &mut again);
            assert!(codec::decode(&again).is_ok_and(|back| same(&back, &e)), "case {case}: a decoded event re-encodes");
        }
    }
}

/// Opens the log in `dir`, returning the payloads recovered (or the error).
fn recover(dir: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    let mut seen = Vec::new();
    Wal::open(dir, WalOptions::default(), |_, p| {
        seen.push(p.to_vec());
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(seen)
}

#[test]
fn a_log_cut_or_damaged_anywhere_recovers_only_a_prefix_of_its_records() {
    let mut rng = Pcg64Mcg::seed_from_u64(0x109f_4a3e);
    for case in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let payloads: Vec<Vec<u8>> =
            (0..rng.random_range(1..40)).map(|_| (0..rng.random_range(1..600)).map(|_| rng.random()).collect()).collect();
        {
            let (mut wal, _) = Wal::open(dir.path(), WalOptions::default(), |_, _| Ok(())).unwrap();
            for p in &payloads {
                wal.append(p).unwrap();
                if rng.random_bool(0.5) {
                    wal.commit().unwrap();
                }
            }
            wal.commit().unwrap();
        }
        assert_eq!(recover(dir.path()).unwrap(), payloads, "case {case}: an intact log reads back whole");
        let segment = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let mut bytes = std::fs::read(&segment).unwrap();
        let damage = rng.random_range(0..3);
        match damage {
            0 => bytes.truncate(rng.random_range(0..bytes.len())),
            1 => {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            _ => {
                let i = rng.random_range(0..bytes.len());
                let n = rng.random_range(1..64).min(bytes.len() - i);
                bytes[i..i + n].iter_mut().for_each(|b| *b = 0);
            }
        }
        std::fs::write(&segment, &bytes).unwrap();
        match recover(dir.path()) {
            // Refusing a damaged log is allowed; reading back anything but a prefix is not.
            Err(_) => {}
            Ok(seen) => assert!(
                seen.len() <= payloads.len() && seen[..] == payloads[..seen.len()],
                "case {case} (damage {damage}): recovered {} records that are not a prefix of the {} written",
                seen.len(),
                payloads.len()
            ),
        }
    }
}
