//! The log's binary encoding of an [`Event`]: compact, versioned, and strict on decode.
//!
//! Layout (little-endian): version u8, ts_us i64, type_id u16, event_id (len-prefixed),
//! user_id (flag u8 then len-prefixed), field count u8, then per field: field id u16, tag u8,
//! payload (bool u8 0 or 1 | int i64 | float f64 | str len-prefixed | ts i64), fields in increasing
//! id order. Lengths are LEB128 in their shortest form. Bytes decode only if they are the
//! encoding of their event.

use finpulse_core::{Event, FieldId, TypeId, Value};

const VERSION: u8 = 1;
const TAG_BOOL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_FLOAT: u8 = 3;
const TAG_STR: u8 = 4;
const TAG_TS: u8 = 5;

/// Why bytes did not decode into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Ran out of bytes.
    #[error("record ends early at byte {0}")]
    Truncated(usize),
    /// An unknown version, user flag, value tag or boolean byte.
    #[error("unknown {what} {value} at byte {at}")]
    Unknown {
        /// Version or tag.
        what: &'static str,
        /// The byte.
        value: u8,
        /// Where.
        at: usize,
    },
    /// Text that is not UTF-8.
    #[error("text at byte {0} is not UTF-8")]
    Utf8(usize),
    /// A length that is overlong (a zero last byte after the first) or past 64 bits.
    #[error("malformed length at byte {0}")]
    Length(usize),
    /// Bytes left over.
    #[error("{0} bytes left over after the record")]
    Trailing(usize),
    /// A field id not above the one before it: an event's fields are sorted by id, each once.
    #[error("field {id} at byte {at} is out of order or repeated")]
    FieldOrder {
        /// The field id.
        id: u16,
        /// Where.
        at: usize,
    },
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of `event` to `out`.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&event.ts_us.to_le_bytes());
    out.extend_from_slice(&event.type_id.0.to_le_bytes());
    put_str(out, &event.event_id);
    match &event.user_id {
        Some(u) => {
            out.push(1);
            put_str(out, u);
        }
        None => out.push(0),
    }
    // Validation bounds an event's fields by its type's field count (TYPE_FIELDS_MAX = 64).
    debug_assert!(event.fields.len() <= u8::MAX as usize);
    out.push(event.fields.len() as u8);
    for (id, value) in &event.fields {
        out.extend_from_slice(&id.0.to_le_bytes());
        match value {
            Value::Bool(b) => out.extend_from_slice(&[TAG_BOOL, *b as u8]),
            Value::Int(i) => {
                out.push(TAG_INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(x) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) => {
                out.push(TAG_STR);
                put_str(out, s);
            }
            Value::Ts(t) => {
                out.push(TAG_TS);
                out.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or(DecodeError::Truncated(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// A length in its one encoding: the shortest LEB128 that holds it, within 64 bits.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let start = self.at;
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            // A last byte of 0 after the first adds nothing (an overlong encoding); the tenth
            // byte holds only bit 63.
            if (b == 0 && shift > 0) || (shift == 63 && b > 1) {
                return Err(DecodeError::Length(start));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| DecodeError::Length(start));
            }
        }
        Err(DecodeError::Length(start))
    }
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::Utf8(at))
    }
}

/// Reads only the event id of an encoded event (for rebuilding the dedup index cheaply).
pub fn decode_event_id(bytes: &[u8]) -> Result<&str, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Unknown { what: "version", value: version, at: 0 });
    }
    r.take(10)?;
    r.str()
}

/// Reads only the type of an encoded event (so a replay can skip types it does not need).
pub fn decode_type_id(bytes: &[u8]) -> Result<TypeId, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Unknown { what: "version", value: version, at: 0 });
    }
    r.take(8)?;
    Ok(TypeId(u16::from_le_bytes(r.array()?)))
}

/// Decodes one event; the whole slice must be the record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Unknown { what: "version", value: version, at: 0 });
    }
    let ts_us = i64::from_le_bytes(r.array()?);
    let type_id = TypeId(u16::from_le_bytes(r.array()?));
    let event_id = r.str()?.to_string();
    let user_id = match r.u8()? {
        0 => None,
        1 => Some(r.str()?.to_string()),
        other => return Err(DecodeError::Unknown { what: "user flag", value: other, at: r.at - 1 }),
    };
    let count = r.u8()? as usize;
    let mut fields: Vec<(FieldId, Value)> = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.at;
        let id = FieldId(u16::from_le_bytes(r.array()?));
        if fields.last().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::FieldOrder { id: id.0, at });
        }
        let tag = r.u8()?;
        let value = match tag {
            TAG_BOOL => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return Err(DecodeError::Unknown { what: "boolean", value: other, at: r.at - 1 }),
            },
            TAG_INT => Value::Int(i64::from_le_bytes(r.array()?)),
            TAG_FLOAT => Value::Float(f64::from_le_bytes(r.array()?)),
            TAG_STR => Value::Str(r.str()?.to_string()),
            TAG_TS => Value::Ts(i64::from_le_bytes(r.array()?)),
            other => return Err(DecodeError::Unknown { what: "value tag", value: other, at: r.at - 1 }),
        };
        fields.push((id, value));
    }
    if r.at != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - r.at));
    }
    Ok(Event { event_id, user_id, ts_us, type_id, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            event_id: "evt-é-1".into(),
            user_id: Some("u".repeat(200)),
            ts_us: 1_777_600_000_123_456,
            type_id: TypeId(1001),
            fields: vec![
                (FieldId(0), Value::Int(-42)),
                (FieldId(1), Value::Str("CNY".into())),
                (FieldId(7), Value::Bool(true)),
                (FieldId(9), Value::Float(2.5)),
                (FieldId(1000), Value::Ts(5)),
            ],
        }
    }

    #[test]
    fn events_round_trip() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
        assert_eq!(decode(&buf).unwrap(), sample());
        assert_eq!(decode_event_id(&buf).unwrap(), "evt-é-1");
        let none = Event { user_id: None, fields: vec![], ..sample() };
        buf.clear();
        encode(&none, &mut buf);
        assert_eq!(decode(&buf).unwrap(), none);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        buf.push(0);
        assert_eq!(decode(&buf), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn decoder_refuses_fields_out_of_order_or_repeated() {
        // Found by fuzzing: field ids 32768, 1, 5 decoded into an event whose lookups
        // (a binary search by id) then miss fields that are there.
        let record: &[u8] = &[
            1, 64, 98, 143, 192, 183, 80, 6, 0, 4, 0, 5, 101, 118, 116, 45, 49, 1, 2, 117, 49, 3, 0, 128, 2, 100, 0, 0, 0, 0, 0, 0, 0, 1,
            0, 4, 3, 67, 78, 89, 5, 0, 4, 6, 116, 48, 48, 48, 52, 50,
        ];
        assert_eq!(decode(record), Err(DecodeError::FieldOrder { id: 1, at: 33 }));
        let mut buf = Vec::new();
        let twice = Event { fields: vec![(FieldId(3), Value::Int(1)), (FieldId(3), Value::Int(2))], ..sample() };
        encode(&twice, &mut buf);
        assert!(matches!(decode(&buf), Err(DecodeError::FieldOrder { id: 3, .. })), "{:?}", decode(&buf));
    }

    #[test]
    fn decoder_refuses_an_overlong_length() {
        // Found by fuzzing: the user id's length 0 written as 0x81 0x00 decoded, so the record
        // was not the encoding of its event.
        let record: &[u8] = &[1, 255, 255, 255, 255, 0, 0, 59, 0, 0, 0, 1, 0, 1, 129, 0, 0];
        assert_eq!(decode(record), Err(DecodeError::Length(14)));
        assert_eq!(decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x00, 0, 0]), Err(DecodeError::Length(11)));
        assert_eq!(decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0, 0]), Err(DecodeError::Length(11)));
    }

    #[test]
    fn decoder_refuses_a_length_past_64_bits() {
        // Ten bytes of 0xff then 0x01: bits past 63 were dropped, so a huge length read as a small one.
        let mut record = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        record.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]);
        record.extend_from_slice(&[b'x', 0, 0]);
        assert_eq!(decode(&record), Err(DecodeError::Length(11)));
        record[20] = 0x80;
        record.insert(21, 0x01);
        assert_eq!(decode(&record), Err(DecodeError::Length(11)));
        // The longest length there is, 2^64 - 1, still reads: as a record too short for it.
        let mut longest = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        put_len(&mut longest, usize::MAX);
        assert_eq!(longest.len(), 21);
        assert_eq!(decode(&longest), Err(DecodeError::Truncated(21)));
    }

    #[test]
    fn lengths_read_back_at_every_width() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 1 << 35, usize::MAX >> 1, usize::MAX] {
            let mut buf = Vec::new();
            put_len(&mut buf, n);
            let mut r = Reader { bytes: &buf, at: 0 };
            assert_eq!(r.len(), Ok(n), "{n}");
            assert_eq!(r.at, buf.len());
        }
    }

    #[test]
    fn decoder_refuses_a_boolean_other_than_0_or_1() {
        // Found by fuzzing: 255 decoded as true, so the record was not the encoding of its event.
        let record: &[u8] = &[1, 255, 43, 0, 71, 255, 0, 0, 1, 255, 255, 0, 0, 1, 0, 91, 1, 255];
        assert_eq!(decode(record), Err(DecodeError::Unknown { what: "boolean", value: 255, at: 17 }));
        let mut fixed = record.to_vec();
        fixed[17] = 1;
        assert_eq!(decode(&fixed).unwrap().fields, vec![(FieldId(23296), Value::Bool(true))]);
    }
}
