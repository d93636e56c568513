//! The log's binary encoding of an [`Event`]: compact, versioned, and strict on decode.
//!
//! Layout (little-endian): version u8, ts_us i64, type_id u16, event_id (len-prefixed),
//! user_id (flag u8 then len-prefixed), field count u8, then per field: field id u16, tag u8,
//! payload (bool u8 | int i64 | float f64 | str len-prefixed | ts i64). Lengths are LEB128.

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
    /// Unknown version or tag.
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
    /// Bytes left over.
    #[error("{0} bytes left over after the record")]
    Trailing(usize),
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
    fn len(&mut self) -> Result<usize, DecodeError> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::Unknown { what: "length", value: 0xff, at: self.at })
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
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let id = FieldId(u16::from_le_bytes(r.array()?));
        let tag = r.u8()?;
        let value = match tag {
            TAG_BOOL => Value::Bool(r.u8()? != 0),
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
}
