//! The log's event decoder on arbitrary bytes: a log file is read back after crashes, disk
//! damage and copies, so every record must decode to an event or to a typed error.
//!
//! Beyond not panicking: a record that decodes is the one encoding of its event (re-encoding
//! gives the same bytes back), the event keeps the invariants the rest of the system relies on
//! (fields sorted by id, each at most once), and the id and type readers used on replay agree
//! with the full decode.
#![no_main]

use finpulse_log::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = codec::decode_event_id(data);
    let type_id = codec::decode_type_id(data);
    let Ok(event) = codec::decode(data) else { return };
    let mut again = Vec::new();
    codec::encode(&event, &mut again);
    assert_eq!(again, data, "the record is not the encoding of the event it decodes to: {event:?}");
    assert!(event.fields.windows(2).all(|w| w[0].0 < w[1].0), "decoded fields are not sorted by id, each once: {:?}", event.fields);
    assert_eq!(id, Ok(event.event_id.as_str()));
    assert_eq!(type_id, Ok(event.type_id));
});
