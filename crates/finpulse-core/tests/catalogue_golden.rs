//! The built-in catalogue's identities, frozen: logs, Parquet files and checkpoints store type
//! and field ids, so an id that moves or changes type makes every existing store unreadable or,
//! worse, read as something else. Adding types and fields at the end is fine: bless the file
//! again (`FINPULSE_BLESS_GOLDEN=1 cargo test --workspace --test catalogue_golden`) and review
//! the diff, which must only add lines. Adding a field to a type changes that type's line: that
//! needs a migration note, since old events lack it.

use finpulse_core::Registry;
use std::fmt::Write;

fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

/// Every built-in field and type with its id, value type, data class and check, one per line.
fn rendered() -> String {
    let registry = Registry::builtin();
    let mut out = String::from("# fields: id name type category level check\n");
    for f in registry.fields() {
        writeln!(out, "field {} {} {} {:?} {} {:?}", f.id.0, f.name, f.ty.name(), f.class.category, f.class.level, f.check).unwrap();
    }
    out.push_str("# types: id name scope, then each field id with * when required\n");
    for t in registry.event_types() {
        let fields: Vec<String> = t.fields.iter().map(|f| format!("{}{}", f.field.0, if f.required { "*" } else { "" })).collect();
        writeln!(out, "type {} {} {:?} {}", t.id.0, t.name, t.scope, fields.join(",")).unwrap();
    }
    out
}

#[test]
fn built_in_type_and_field_ids_never_move() {
    let path = package_dir().join("tests/golden/catalogue.txt");
    let now = rendered();
    if std::env::var_os("FINPULSE_BLESS_GOLDEN").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let frozen = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let current: std::collections::HashSet<&str> = now.lines().collect();
    for (i, line) in frozen.lines().enumerate() {
        assert!(
            current.contains(line),
            "line {} of {} is gone: {line:?}; ids, value types, classes and required fields of built-ins never change",
            i + 1,
            path.display()
        );
    }
}
