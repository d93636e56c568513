//! Files written so that a crash leaves either the old content or the new, never a torn mix:
//! the store's manifest and registry, checkpoints, model files and their registry, rulesets,
//! segments, goals and stored offers. The one place finpulse writes a whole file durably.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path`: a temporary file beside it, fsync'd, renamed over `path`, then the
/// folder fsync'd so the rename itself survives a crash.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// As [`write_file`], with the content streamed by `write` through a buffer (for content too
/// large to hold twice in memory).
pub fn write_with(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rewrite_replaces_the_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        super::write_file(&path, b"old").unwrap();
        super::write_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(super::write_file(&dir.path().join("missing/x.json"), b"x").is_err());
    }
}
