//! The web console in a real browser: Debian's Chromium, driven by playwright-core, against
//! `finpulse serve` on demo data (see `crates/finpulse-console/web/e2e/console.mjs` for what it
//! checks). Without Chromium the test says so loudly and passes, unless
//! `REQUIRE_BROWSER` is set (CI sets it and installs Chromium).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn finpulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_finpulse"));
    c.env("FINPULSE_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    finpulse().args(args).output().expect("running finpulse")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    path.is_file().then_some(path)
}

fn payment(id: &str, user: &str, amount_fen: i64) -> serde_json::Value {
    serde_json::json!({"event_id": id, "user_id": user, "ts": "2026-01-30T10:00:00+08:00", "type": "payment",
        "amount_fen": amount_fen, "currency": "CNY", "terminal_id": "t-e2e", "device_id": "d-e2e"})
}

#[test]
fn the_console_signs_in_and_every_screen_works_in_a_real_browser() {
    let Some(browser) = chromium() else {
        let message =
            "!!! the console's browser test did not run: no Chromium at /usr/bin/chromium (apt-get install chromium fonts-wqy-microhei)";
        assert!(std::env::var_os("REQUIRE_BROWSER").is_none(), "{message}");
        eprintln!("{message}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    ok(&run(&["demo", "--users", "2000", "--days", "30", "--no-serve", "--data-dir", d]), "demo");
    // A fraud model for the evaluation screen: a week of the demo's payments (2026-01-01 to
    // 2026-01-30), with the labels known a week later, as the demo's tour suggests.
    let train = ["fraud", "train", "--data-dir", d, "--from", "2026-01-03", "--to", "2026-01-10", "--delay-days", "7"];
    ok(&run(&train), "fraud train");
    let password = "console test passphrase";
    let mut child = finpulse()
        .args(["users", "create", "--name", "ops.lead", "--role", "admin", "--password-stdin", "--data-dir", d])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let key = ok(&run(&["keys", "create", "--role", "admin", "--data-dir", d]), "keys create").lines().last().unwrap().to_string();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Killed(
        finpulse().args(["serve", "--data-dir", d, "--listen", &format!("127.0.0.1:{port}")]).stdout(Stdio::null()).spawn().unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    let api = reqwest::blocking::Client::builder().default_headers(headers).timeout(Duration::from_secs(60)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get(format!("{base}/healthz")).send().map(|r| !r.status().is_success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Cases to work on: a ruleset that reviews large payments, and two of them.
    let rules = "name = \"cards\"\nreview_at = 0.5\nblock_at = 0.95\n[[rule]]\nname = \"large\"\nwhen = \"payment.amount_fen > 500000\"\nscore = 0.7\naction = \"review\"\n";
    let r = api.post(format!("{base}/v1/rules")).body(rules).send().unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    for (id, user) in [("e2e-1", "u-e2e-1"), ("e2e-2", "u-e2e-2")] {
        let r = api.post(format!("{base}/v1/decisions")).json(&payment(id, user, 900_000)).send().unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let out = Command::new("node")
        .arg("e2e/console.mjs")
        .current_dir(finpulse_console::WEB_WORK_DIR)
        .env("FINPULSE_BASE", &base)
        .env("FINPULSE_USER", "ops.lead")
        .env("FINPULSE_PASSWORD", password)
        .env("FINPULSE_SHOTS", &shots)
        .env("CHROMIUM", &browser)
        .output()
        .expect("running node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}\nscreenshots: {}", shots.display());
    assert!(out.status.success(), "the console's browser test failed:\n{text}");
}
