//! Every kind of event this crate makes, as the store writes it, validates against the
//! OpenLineage schemas copied in `spec/`, checked by Python's `jsonschema` (the reference
//! validator) through `tests/validate.py`. Deliberately broken events must be rejected, which
//! proves the validator is really checking.
//!
//! The Python comes from `tools/reference-python.sh`, which installs `jsonschema` (and the
//! format checkers for date-time and uri) on first use; without it the test fails saying what
//! is missing.

use finpulse_lineage::{
    Dataset, DatasetId, InputField, LineageStore, Run, RunEvent, SchemaField, Transformation, TransformationKind, forward_requests,
};
use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "finpulse://test";
/// 2026-03-01T00:00:00Z.
const T0_US: i64 = 1_772_323_200_000_000;

/// This package's directory, asked at run time: a path baked in at compile time would point
/// into whichever checkout built the test binary when builds are cached across checkouts.
fn package_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

fn reference_python() -> PathBuf {
    let script = package_dir().join("../../tools/reference-python.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["jsonschema", "rfc3339_validator", "rfc3987"])
        .output()
        .expect("running tools/reference-python.sh (needs bash)");
    assert!(
        out.status.success(),
        "this test needs Python with the `jsonschema`, `rfc3339-validator` and `rfc3987` packages from PyPI, \
         installed by tools/reference-python.sh, which failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("an interpreter path").trim())
}

/// The verdict for each line of each file: `(file:line, Ok(()) or Err(reason))`.
fn validate(files: &[&Path]) -> Vec<(String, Result<(), String>)> {
    let script = package_dir().join("tests/validate.py");
    let out = Command::new(reference_python()).arg(&script).args(files).output().expect("running tests/validate.py");
    assert!(
        out.status.success(),
        "tests/validate.py could not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let place = parts.next().unwrap().to_string();
            match (parts.next(), parts.next()) {
                (Some("ok"), None) => (place, Ok(())),
                (Some("invalid"), Some(reason)) => (place, Err(reason.to_string())),
                _ => panic!("validate.py printed an unexpected line: {line}"),
            }
        })
        .collect()
}

/// A dataset with a schema and column lineage for its protected columns, using every kind of
/// transformation the builder knows.
fn protected(name: &str) -> Dataset {
    let events = DatasetId::new(NS, "events");
    let profiles = DatasetId::new(NS, "profiles");
    let kinds = [
        TransformationKind::Transformation,
        TransformationKind::Aggregation,
        TransformationKind::Filter,
        TransformationKind::Join,
        TransformationKind::GroupBy,
        TransformationKind::Sort,
        TransformationKind::Window,
        TransformationKind::Conditional,
    ];
    Dataset::new(NS, name)
        .with_schema(vec![
            SchemaField::new("user_id", "Utf8"),
            SchemaField::new("mobile", "Utf8").described("C2/L3 sensitive: mobile number"),
            SchemaField::new("spend_fen", "Int64").described("C2/L2 personal: amount in fen"),
        ])
        .with_column_lineage("mobile", vec![InputField::new(&events, "mobile", Transformation::new(TransformationKind::Identity, false))])
        .with_column_lineage(
            "user_id",
            vec![InputField::new(
                &events,
                "user_id",
                Transformation::new(TransformationKind::Transformation, true).described("HMAC-SHA256"),
            )],
        )
        .with_column_lineage(
            "spend_fen",
            kinds.iter().map(|k| InputField::new(&profiles, "amount_fen", Transformation::new(*k, false))).collect(),
        )
}

/// One of each: START and COMPLETE with schemas and column lineage, FAIL with its error
/// message, datasets without facets, and a run without datasets.
fn every_kind_of_event() -> Vec<RunEvent> {
    let mut events = Vec::new();
    let (run, start) = Run::start_at(NS, "compaction", vec![Dataset::new(NS, "events")], vec![protected("parquet")], T0_US);
    events.push(start);
    events.push(run.complete_at(vec![protected("parquet")], T0_US + 1));
    let (run, start) =
        Run::start(NS, "churn_scoring", vec![protected("parquet"), Dataset::new(NS, "model/churn")], vec![protected("scores")]);
    events.push(start);
    events.push(run.fail("model file unreadable: \"model/churn\"\nat line 3"));
    let (run, start) = Run::start(NS, "report", vec![], vec![]);
    events.push(start);
    events.push(run.complete(vec![]));
    events
}

#[test]
fn every_event_the_builder_makes_validates_and_broken_events_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = LineageStore::open(dir.path().join("lineage")).unwrap();
    let made = every_kind_of_event();
    store.append(&made).unwrap();
    let stored = store.events_path();

    // The forward bodies are the same JSON, but check them as sent too.
    let bodies = dir.path().join("bodies.ndjson");
    let requests = forward_requests("http://marquez:5000", &made).unwrap();
    let text: Vec<String> = requests.iter().map(|r| String::from_utf8(r.body.clone()).unwrap()).collect();
    std::fs::write(&bodies, text.join("\n") + "\n").unwrap();

    let broken = dir.path().join("broken.ndjson");
    let cases = broken_events(&made);
    let lines: Vec<String> = cases.iter().map(|(_, _, e)| e.to_string()).collect();
    std::fs::write(&broken, lines.join("\n") + "\n").unwrap();

    let verdicts = validate(&[&stored, &bodies, &broken]);
    assert_eq!(verdicts.len(), 2 * made.len() + cases.len(), "a verdict per line: {verdicts:?}");
    for (place, verdict) in &verdicts[..2 * made.len()] {
        assert!(verdict.is_ok(), "{place} should validate: {verdict:?}");
    }
    for ((place, verdict), (what, expected, _)) in verdicts[2 * made.len()..].iter().zip(&cases) {
        match verdict {
            Err(reason) => assert!(reason.contains(expected), "{place} ({what}) was rejected, but for: {reason}"),
            Ok(()) => panic!("{place} ({what}) should have been rejected"),
        }
    }
}

/// (what is broken, a word the rejection must mention, the event) for each kind of damage.
fn broken_events(made: &[RunEvent]) -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let start = serde_json::to_value(&made[0]).unwrap();
    let failed = serde_json::to_value(&made[3]).unwrap();
    let edit = |base: &serde_json::Value, f: &dyn Fn(&mut serde_json::Value)| {
        let mut e = base.clone();
        f(&mut e);
        e
    };
    let schema = |e: &mut serde_json::Value| e["outputs"][0]["facets"]["schema"].clone();
    vec![
        ("no runId", "runId", edit(&start, &|e| drop(e["run"].as_object_mut().unwrap().remove("runId")))),
        ("runId not a UUID", "uuid", edit(&start, &|e| e["run"]["runId"] = "run-1".into())),
        ("eventTime not RFC 3339", "date-time", edit(&start, &|e| e["eventTime"] = "2026-03-01 08:00".into())),
        ("unknown eventType", "eventType", edit(&start, &|e| e["eventType"] = "DONE".into())),
        ("producer not a URI", "uri", edit(&start, &|e| e["producer"] = "finpulse lineage".into())),
        ("job without name", "name", edit(&start, &|e| drop(e["job"].as_object_mut().unwrap().remove("name")))),
        (
            "schema facet without _producer",
            "_producer",
            edit(&start, &|e| drop(e["outputs"][0]["facets"]["schema"].as_object_mut().unwrap().remove("_producer"))),
        ),
        (
            "schema field without name",
            "name",
            edit(&start, &|e| drop(e["outputs"][0]["facets"]["schema"]["fields"][0].as_object_mut().unwrap().remove("name"))),
        ),
        (
            "column lineage input without field",
            "field",
            edit(&start, &|e| {
                let input = &mut e["outputs"][0]["facets"]["columnLineage"]["fields"]["mobile"]["inputFields"][0];
                drop(input.as_object_mut().unwrap().remove("field"));
            }),
        ),
        (
            "transformation without type",
            "type",
            edit(&start, &|e| {
                let t = &mut e["outputs"][0]["facets"]["columnLineage"]["fields"]["mobile"]["inputFields"][0]["transformations"][0];
                drop(t.as_object_mut().unwrap().remove("type"));
            }),
        ),
        (
            "error message without programmingLanguage",
            "programmingLanguage",
            edit(&failed, &|e| drop(e["run"]["facets"]["errorMessage"].as_object_mut().unwrap().remove("programmingLanguage"))),
        ),
        (
            "facet pointing at a schema not in spec/",
            "not a schema in spec/",
            edit(&start, &|e| e["outputs"][0]["facets"]["schema"]["_schemaURL"] = "https://openlineage.io/spec/facets/9-9-9/X.json".into()),
        ),
        (
            "facet under another facet's name",
            "names its facet",
            edit(&start, &|e| {
                let facet = schema(e);
                e["outputs"][0]["facets"]["columns"] = facet;
            }),
        ),
    ]
}
