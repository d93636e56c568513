//! Builds the console from `web/` into OUT_DIR and writes `assets.rs`, the table of files the
//! crate embeds.
//!
//! npm and Vite run only when the web inputs change: their hash is kept beside the build, so a
//! build script re-run by cargo for any other reason costs a hash of a few files. A machine
//! without Node.js or npm gets a warning at build time and a binary whose console page says
//! what is missing (the API works either way); a web build that fails is a build error.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the console is built from, relative to `web/`.
const INPUTS: &[&str] = &["package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json", "src", "test", "e2e"];

enum Outcome {
    Built,
    /// Node.js or npm is not there: the console page says so.
    Missing(String),
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = manifest.join("web");
    for input in INPUTS {
        println!("cargo:rerun-if-changed=web/{input}");
    }
    let work = out.join("web");
    let dist = out.join("dist");
    let hash = format!("{:016x}", hash_inputs(&web).expect("reading the console's web inputs"));
    let stamp = dist.join(".inputs-hash");
    let outcome = if fs::read_to_string(&stamp).is_ok_and(|h| h == hash) {
        Outcome::Built
    } else {
        match build(&web, &work, &dist) {
            Ok(Outcome::Built) => {
                fs::write(&stamp, &hash).expect("writing the console's build stamp");
                Outcome::Built
            }
            Ok(missing) => missing,
            Err(e) => panic!("building the web console failed: {e}"),
        }
    };
    let not_built = match outcome {
        Outcome::Built => None,
        Outcome::Missing(why) => {
            println!("cargo:warning=the web console was not built ({why}); the binary serves a page saying so at /");
            Some(why)
        }
    };
    write_assets(&out, &work, &dist, not_built.as_deref()).expect("writing the console's asset table");
}

/// FNV-1a over every input file's path and bytes, in path order.
fn hash_inputs(web: &Path) -> io::Result<u64> {
    let mut files = Vec::new();
    for input in INPUTS {
        collect(&web.join(input), &mut files)?;
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in files {
        eat(f.strip_prefix(web).unwrap_or(&f).to_string_lossy().as_bytes());
        eat(&[0]);
        eat(&fs::read(&f)?);
        eat(&[0]);
    }
    Ok(h)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            collect(&entry?.path(), files)?;
        }
    } else if path.is_file() {
        files.push(path.to_path_buf());
    }
    Ok(())
}

fn works(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} exited with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Copies the inputs into `work`, installs the locked packages when the lock file changed,
/// and builds into `dist`.
fn build(web: &Path, work: &Path, dist: &Path) -> Result<Outcome, String> {
    if !works("node") || !works("npm") {
        return Ok(Outcome::Missing("Node.js 20 or later and npm are needed to build it".into()));
    }
    fs::create_dir_all(work).map_err(|e| e.to_string())?;
    for input in INPUTS {
        let (from, to) = (web.join(input), work.join(input));
        if to.is_dir() {
            fs::remove_dir_all(&to).map_err(|e| e.to_string())?;
        }
        copy(&from, &to).map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    let lock = fs::read(web.join("package-lock.json")).map_err(|e| e.to_string())?;
    let lock_stamp = work.join("node_modules").join(".finpulse-lock");
    if fs::read(&lock_stamp).ok().as_deref() != Some(&lock[..]) {
        run(Command::new("npm").args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]).current_dir(work), "npm ci")?;
        fs::write(&lock_stamp, &lock).map_err(|e| e.to_string())?;
    }
    let vite = work.join("node_modules/vite/bin/vite.js");
    run(Command::new("node").arg(&vite).args(["build", "--emptyOutDir", "--outDir"]).arg(dist).current_dir(work), "vite build")?;
    Ok(Outcome::Built)
}

fn copy(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if from.is_file() {
        fs::copy(from, to)?;
    }
    Ok(())
}

/// `assets.rs`: every built file (with its brotli twin when there is one) as `include_bytes!`,
/// an ETag from its bytes, where the build's working copy is (for the console's own tests),
/// and why it was not built.
fn write_assets(out: &Path, work: &Path, dist: &Path, not_built: Option<&str>) -> io::Result<()> {
    let mut files = Vec::new();
    if not_built.is_none() {
        collect(dist, &mut files)?;
    }
    files.sort();
    let mut table = String::from("/// The console's files, as built.\npub static ASSETS: &[Asset] = &[\n");
    for f in &files {
        let name = f.strip_prefix(dist).unwrap_or(f).to_string_lossy().replace('\\', "/");
        if name.ends_with(".br") || name.starts_with('.') {
            continue;
        }
        let bytes = fs::read(f)?;
        let br = PathBuf::from(format!("{}.br", f.display()));
        let brotli = if br.is_file() { format!("Some(include_bytes!({:?}))", br.display().to_string()) } else { "None".into() };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        table.push_str(&format!(
            "    Asset {{ path: {:?}, body: include_bytes!({:?}), brotli: {brotli}, etag: \"\\\"{h:016x}\\\"\" }},\n",
            format!("/{name}"),
            f.display().to_string()
        ));
    }
    table.push_str("];\n");
    table.push_str(&format!(
        "/// Why the console was not built, when it was not.\npub const NOT_BUILT: Option<&str> = {};\n",
        not_built.map_or("None".to_string(), |w| format!("Some({w:?})"))
    ));
    table.push_str(&format!(
        "/// The build's working copy of `web/` with its installed packages (for the console's tests).\npub const WEB_WORK_DIR: &str = {:?};\n",
        work.display().to_string()
    ));
    fs::write(out.join("assets.rs"), table)
}
