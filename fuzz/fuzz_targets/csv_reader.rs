//! The CSV file reader and row validation on arbitrary file contents, as `finpulse import`
//! reads a file a user hands it.
//!
//! Beyond not panicking: every row comes out once, as an event or as a rejection naming its
//! line (after the header, in file order), and every accepted event survives the log's
//! encoding byte for byte.
#![no_main]

use finpulse_core::{Registry, ValidationLimits};
use finpulse_ingest::{Position, open_file, validate_chunk};
use finpulse_log::codec;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Fixture {
    path: PathBuf,
    registry: Registry,
    limits: ValidationLimits,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        // The reader takes a path: each input is written to one file per process.
        path: std::env::temp_dir().join(format!("finpulse-fuzz-{}.csv", std::process::id())),
        registry: Registry::builtin(),
        // A fixed clock, so an input behaves the same on every run.
        limits: ValidationLimits { now_us: 1_800_000_000_000_000, ..Default::default() },
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    std::fs::write(&f.path, data).expect("write the input file");
    let Ok(mut reader) = open_file(&f.path) else { return };
    let mut last_line = 1;
    let mut chunks = 0;
    while let Some(chunk) = reader.next_chunk() {
        chunks += 1;
        assert!(chunks <= data.len() + 1, "the reader keeps yielding chunks past the end of the file");
        let chunk = chunk.expect("a CSV chunk reads");
        let rows = chunk.len();
        assert!(rows > 0, "an empty chunk instead of the end");
        let v = validate_chunk(&f.registry, chunk, &f.limits);
        assert_eq!(v.events.len(), v.positions.len());
        assert_eq!(v.events.len() + v.rejected.len(), rows, "every row is an event or a rejection");
        let mut lines: Vec<usize> = v
            .positions
            .iter()
            .chain(v.rejected.iter().map(|r| &r.position))
            .map(|p| match p {
                Position::CsvLine(l) => *l,
                other => panic!("a CSV row placed at {other:?}"),
            })
            .collect();
        lines.sort_unstable();
        for l in lines {
            assert!(l > last_line, "row at line {l} after line {last_line}: rows must be after the header, in order, each once");
            last_line = l;
        }
        for r in &v.rejected {
            assert!(!r.message.is_empty(), "a rejection without a reason at {:?}", r.position);
        }
        for e in &v.events {
            let mut bytes = Vec::new();
            codec::encode(e, &mut bytes);
            let back = codec::decode(&bytes).unwrap_or_else(|err| panic!("an accepted event does not decode: {err}: {e:?}"));
            let mut again = Vec::new();
            codec::encode(&back, &mut again);
            assert_eq!(bytes, again, "an accepted event changes through the log's encoding: {e:?}");
        }
    }
    assert!(reader.done <= reader.total, "read {} of a {}-byte file", reader.done, reader.total);
});
