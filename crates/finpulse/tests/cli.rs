//! End to end: the real `finpulse` binary, real files, a real server, a real SIGKILL.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// This package's directory, asked at run time: a path baked in at compile time would point
/// into whichever checkout built the test binary when builds are cached across checkouts.
fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

fn finpulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_finpulse"));
    c.env("FINPULSE_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    finpulse().args(args).output().expect("running finpulse")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn sql_csv(dir: &Path, query: &str) -> Vec<Vec<String>> {
    let o = run(&["sql", "--data-dir", dir.to_str().unwrap(), "--format", "csv", query]);
    assert!(o.status.success(), "sql failed: {}", stderr(&o));
    stdout(&o).lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Served {
    child: Child,
    base: String,
    /// An administrator's key, made with `finpulse keys create` before the start.
    key: String,
    /// A client that sends the key.
    client: reqwest::blocking::Client,
}

/// A blocking client whose requests carry `key`.
fn client_with(key: &str, timeout: Duration) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    reqwest::blocking::Client::builder().default_headers(headers).timeout(timeout).build().unwrap()
}

/// Makes a key with `finpulse keys create`: the key is the last line of its output.
fn make_key(dir: &Path, role: &str) -> String {
    let o = run(&["keys", "create", "--role", role, "--data-dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "keys create: {}", stderr(&o));
    stdout(&o).lines().last().expect("the key on the last line").to_string()
}

impl Drop for Served {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let key = make_key(dir, "admin");
    let port = free_port();
    let child = finpulse()
        .args(["serve", "--data-dir", dir.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().map(|r| !r.status().is_success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "server did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = client_with(&key, Duration::from_secs(600));
    Served { child, base, key, client }
}

#[test]
fn csv_import_keeps_valid_rows_and_names_bad_ones_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("payments.csv");
    std::fs::write(
        &file,
        "event_id,user_id,ts,type,amount_fen,currency,terminal_id\n\
         p1,u1,2026-02-01T10:00:00+08:00,payment,1999,CNY,t1\n\
         p2,u1,2026-02-01T11:00:00+08:00,payment,12.50,CNY,t1\n\
         p3,u2,1769918400000,payment,500,CNY,t2\n\
         p4,u2,2026-02-01T12:00:00+08:00,payment,700,CNY,\n\
         p5,u3,2026-02-02T12:00:00+08:00,payment,800,CNY,t3\n",
    )
    .unwrap();
    let o = run(&["import", "--data-dir", data.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!o.status.success(), "rejections must fail the command");
    let err = stderr(&o);
    assert!(err.contains("line 3") && err.contains("amount_fen"), "{err}");
    assert!(err.contains("line 5") && err.contains("terminal_id"), "{err}");
    assert!(stdout(&o).contains("3 accepted, 0 duplicates, 2 rejected"), "{}", stdout(&o));
    assert_eq!(sql_csv(&data, "SELECT count(*), sum(amount_fen) FROM payment"), vec![vec!["3", "3299"]]);
    // Importing again stores nothing twice.
    let o = run(&["import", "--data-dir", data.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(stdout(&o).contains("0 accepted, 3 duplicates, 2 rejected"), "{}", stdout(&o));
    assert_eq!(sql_csv(&data, "SELECT count(*) FROM events"), vec![vec!["3"]]);
}

#[test]
fn demo_data_round_trips_through_parquet_import_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let args = ["demo", "--users", "300", "--days", "20", "--seed", "5", "--no-serve", "--data-dir", a.to_str().unwrap()];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let by_type = sql_csv(&a, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type");
    assert!(by_type.len() >= 15, "{by_type:?}");
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(0 new,"), "{}", stderr(&o));
    assert_eq!(sql_csv(&a, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"), by_type);

    // The compacted Parquet files import into a fresh directory unchanged.
    let b = dir.path().join("b");
    let mut files: Vec<String> = Vec::new();
    for day in std::fs::read_dir(a.join("parquet")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            files.push(f.unwrap().path().to_string_lossy().to_string());
        }
    }
    let mut import_args = vec!["import", "--data-dir", b.to_str().unwrap()];
    import_args.extend(files.iter().map(String::as_str));
    let o = run(&import_args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sql_csv(&b, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"), by_type);
    let q = "SELECT sum(amount_fen), count(DISTINCT user_id), min(ts), max(ts) FROM events";
    assert_eq!(sql_csv(&b, q), sql_csv(&a, q));
}

#[test]
fn schema_lists_every_type_with_data_classes() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["schema", "--data-dir", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let schema: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let payment = schema["types"].as_array().unwrap().iter().find(|t| t["name"] == "payment").unwrap();
    let fields: Vec<&str> = payment["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(fields, ["amount_fen", "currency", "terminal_id", "merchant_id", "device_id", "channel", "card_number"]);
    let o = run(&["schema", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(stdout(&o).contains("id_number") && stdout(&o).contains("C2 / level 3"), "{}", stdout(&o));
    // The command list describes `schema` on its own line, and `goals` as goals only.
    let help = stdout(&run(&["--help"]));
    let line = |name: &str| help.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_default().to_string();
    assert!(line("schema ").contains("Show every event type"), "{help}");
    assert!(line("goals ").contains("KPI goals") && !line("goals ").contains("event type"), "{help}");
}

#[test]
fn the_cli_reads_beside_a_running_server_but_will_not_write_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path());
    let client = served.client.clone();
    let r = client
        .post(format!("{}/v1/events", served.base))
        .json(&json!([{"user_id": "u1", "ts": "2026-02-01T10:00:00Z", "type": "deposit", "amount_fen": 100000, "currency": "CNY"}]))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let o = run(&["sql", "--data-dir", dir.path().to_str().unwrap(), "--format", "csv", "SELECT sum(amount_fen) FROM deposit"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().nth(1), Some("100000"));
    let o = run(&["import", "--data-dir", dir.path().to_str().unwrap(), "/dev/null.csv"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("in use by another finpulse process"), "{}", stderr(&o));
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[test]
fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|t| {
            let (acked, stop, base, key) = (acked.clone(), stop.clone(), served.base.clone(), served.key.clone());
            std::thread::spawn(move || {
                let client = client_with(&key, Duration::from_secs(10));
                let mut batch_no = 0;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<String> = (0..100).map(|k| format!("c{t}-{batch_no}-{k}")).collect();
                    let body: Vec<Value> = ids
                        .iter()
                        .map(|id| json!({"event_id": id, "user_id": format!("u{t}"), "ts": 1769940000000i64 + batch_no, "type": "payment", "amount_fen": 100, "currency": "CNY", "terminal_id": "t1"}))
                        .collect();
                    match client.post(format!("{base}/v1/events")).json(&body).send() {
                        Ok(r) if r.status().is_success() => {
                            let v: Value = r.json().unwrap();
                            assert_eq!(v["accepted"], 100, "{v}");
                            acked.lock().unwrap().extend(ids);
                        }
                        _ => break, // the server is gone
                    }
                    batch_no += 1;
                }
            })
        })
        .collect();
    // Let ingestion run, then kill the server without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    served.child.kill().unwrap(); // SIGKILL
    served.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 1000, "only {} events were acknowledged", acked.len());

    // Restart on the same directory: recovery, then every acknowledged id exactly once.
    let mut served = serve(dir.path());
    let client = served.client.clone();
    let answer: Value = client
        .post(format!("{}/v1/sql", served.base))
        .json(&json!({"query": "SELECT event_id, count(*) AS n FROM events GROUP BY event_id"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(answer["rows_truncated"], false);
    let twice: Vec<&Value> = rows.iter().filter(|r| r[1] != 1).take(5).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let stored: HashSet<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(id.as_str())).take(5).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?} (of {} acknowledged)", acked.len());
    // The idempotency index was rebuilt: sending an acknowledged event again stores nothing.
    let again = json!([{"event_id": "c0-0-0", "user_id": "u0", "ts": 1769940000000i64, "type": "payment", "amount_fen": 100, "currency": "CNY", "terminal_id": "t1"}]);
    let v: Value = client.post(format!("{}/v1/events", served.base)).json(&again).send().unwrap().json().unwrap();
    assert_eq!(v["duplicates"], 1, "{v}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[test]
fn ltv_fits_a_summary_file_and_the_stores_own_purchases() {
    let cdnow = package_dir().join("../../testdata/cdnow-sample-summary.csv");
    let o = run(&["ltv", "fit", "--model", "bgnbd", "--input", cdnow.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fit: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(fit["params"][0]["name"], "r");
    assert!((fit["params"][0]["value"].as_f64().unwrap() - 0.2426).abs() < 1e-3, "{fit}");
    assert!((fit["log_likelihood"].as_f64().unwrap() + 9582.43).abs() < 0.01);

    // A summary written by lifetimes itself (`summary_data_from_transaction_data`: monetary_value
    // is 0 for customers without a repeat purchase) fits as lifetimes 0.11.3 fits it:
    // BetaGeoFitter r 0.16180, alpha 1.64994, a 2.05184, b 3.46791; GammaGammaFitter on the
    // customers with frequency > 0: p 1.73062, q 102.781, v 2385.95.
    let summary = package_dir().join("../../testdata/lifetimes-example-summary.csv");
    let fit_of = |model: &str| {
        let o = run(&["ltv", "fit", "--model", model, "--input", summary.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{model}: {}", stderr(&o));
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()
    };
    let close = |fit: &Value, want: &[f64]| {
        for (i, w) in want.iter().enumerate() {
            let got = fit["params"][i]["value"].as_f64().unwrap();
            assert!((got - w).abs() <= 1e-3 * w.abs(), "parameter {i}: {got} against lifetimes' {w}: {fit}");
        }
    };
    close(&fit_of("bgnbd"), &[0.16180, 1.64994, 2.05184, 3.46791]);
    let gg = fit_of("gg");
    close(&gg, &[1.73062, 102.781, 2385.95]);
    assert_eq!((gg["customers"].as_u64(), gg["left_out"].as_u64()), (Some(313), Some(287)), "{gg}");
    assert!(fit_of("pnbd")["log_likelihood"].as_f64().unwrap().is_finite());
    let o = run(&["ltv", "fit", "--model", "gg", "--input", summary.to_str().unwrap()]);
    assert!(stdout(&o).contains("287 customers without a repeat purchase left out"), "{}", stdout(&o));

    // Bad input names the row and column, and nothing is printed as a result.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "frequency,recency,T\n1,2,3\n2,9,4\n").unwrap();
    let o = run(&["ltv", "fit", "--model", "pnbd", "--input", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("row 2, column 'recency'"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());

    // From the demo's own events: revenue-generating events before day 40, per user, in days.
    let data = dir.path().join("d");
    let o = run(&["demo", "--users", "400", "--days", "60", "--seed", "3", "--no-serve", "--data-dir", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("ltv.csv");
    let predict = |extra: &[&str]| {
        let mut args = vec!["ltv", "predict", "--data-dir", data.to_str().unwrap(), "--calibration-end", "2026-02-10"];
        args.extend(["--purchase-event", "revenue", "--unit", "day", "--out", out.to_str().unwrap()]);
        args.extend(extra);
        run(&args)
    };
    let o = predict(&["--horizon", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,frequency,recency,T,p_alive,expected_purchases,expected_spend,clv"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.len() > 50, "{} customers", rows.len());
    for row in &rows {
        let p_alive: f64 = row[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&p_alive), "{row:?}");
        assert!(row[7].parse::<f64>().unwrap() >= 0.0, "{row:?}");
    }

    // LTV:CAC by signup channel, answered by the acquisition insight's model over the CLV
    // horizon (12 periods of 30 days): the same numbers `finpulse insight acquisition` gives.
    let o = predict(&["--model", "mbgnbd", "--by", "channel", "--periods", "12", "--period-units", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("mbgnbd:") && text.contains("LTV over 360 days") && text.contains("LTV:CAC"), "{text}");
    let douyin: Vec<&str> = text.lines().find(|l| l.starts_with("douyin")).expect("a douyin row").split_whitespace().collect();
    let (cac, ltv, ratio): (f64, f64, f64) = (douyin[3].parse().unwrap(), douyin[4].parse().unwrap(), douyin[5].parse().unwrap());
    assert!(cac > 0.0 && ltv > 0.0 && (ratio - ltv / cac).abs() < 0.01, "{douyin:?}");
    let o = run(&[
        "insight",
        "acquisition",
        "--data-dir",
        data.to_str().unwrap(),
        "--to",
        "2026-02-09",
        "--period",
        "month",
        "--ltv-horizon",
        "360d",
        "--format",
        "csv",
    ]);
    let insight_douyin =
        stdout(&o).lines().find(|l| l.starts_with("total,douyin,")).map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let insight_ltv_yuan: f64 = insight_douyin.as_ref().expect("a douyin total").get(9).unwrap().parse::<f64>().unwrap() / 100.0;
    assert!((insight_ltv_yuan - ltv).abs() < 0.01, "the CLI and the insight agree: {insight_ltv_yuan} vs {ltv}");
    let o = predict(&["--by", "cohort"]);
    assert!(o.status.success() && stdout(&o).lines().any(|l| l.starts_with("2026-01 ")), "{}{}", stdout(&o), stderr(&o));
    // Pricing needs an active churn model, and says so.
    let o = run(&[
        "pricing",
        "compute",
        "--data-dir",
        data.to_str().unwrap(),
        "--calibration-end",
        "2026-02-10",
        "--purchase-event",
        "revenue",
        "--unit",
        "day",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("no active model purpose 'churn': train one"), "{}", stderr(&o));
    let o = run(&["ltv", "predict", "--input", cdnow.to_str().unwrap(), "--out", out.to_str().unwrap(), "--by", "channel"]);
    assert!(!o.status.success() && stderr(&o).contains("--by needs the store"), "{}", stderr(&o));
}

#[test]
fn model_trains_on_a_public_table_scores_in_order_and_names_bad_input() {
    let uci = package_dir().join("../../testdata/uci-default-credit-card.csv");
    let text = std::fs::read_to_string(&uci).unwrap();
    // Every fifth row is held out, as bench/gbdt_compare.py does.
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut a, mut b) = (format!("{header}\n"), format!("{header}\n"));
    for (i, line) in lines.enumerate() {
        if i % 5 == 4 { &mut b } else { &mut a }.push_str(&format!("{line}\n"));
    }
    std::fs::write(&train, a).unwrap();
    std::fs::write(&test, &b).unwrap();
    let model = dir.path().join("m.json");
    let label = "default.payment.next.month";
    let data = dir.path().join("data");
    let o = run(&[
        "model",
        "train",
        "--data",
        train.to_str().unwrap(),
        "--label",
        label,
        "--id",
        "ID",
        "--out",
        model.to_str().unwrap(),
        "--format",
        "json",
        "--register",
        "credit",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["algo"], "gbdt");
    assert!(stderr(&o).contains("registered as credit v1 (active)"), "{}", stderr(&o));

    let o = run(&["model", "eval", "--model", model.to_str().unwrap(), "--data", test.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // LightGBM 4.7 with default settings reaches 0.7865 on this split (bench/gbdt_compare.py).
    let auc = e["auc"].as_f64().unwrap();
    assert!(auc > 0.77, "held-out AUC {auc}");

    let scores = dir.path().join("scores.csv");
    let o = run(&[
        "model",
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
        "--reasons",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(&scores).unwrap();
    let ids: Vec<&str> = out.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    let expected: Vec<&str> = b.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, expected, "one score per input row, in input order");

    // Bad input: a missing label column, a non-numeric label, a NaN cell, a wrong model file.
    let bad = dir.path().join("bad.csv");
    let o = run(&["model", "train", "--data", train.to_str().unwrap(), "--label", "defaulted", "--out", model.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("no column 'defaulted' in the header"), "{}", stderr(&o));
    std::fs::write(&bad, "x,y\n1,0\n2,1\n3,perhaps\n").unwrap();
    let o = run(&["model", "train", "--data", bad.to_str().unwrap(), "--label", "y", "--out", model.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("row 3, label column 'y': 'perhaps'"), "{}", stderr(&o));
    std::fs::write(&bad, "x,y\n1,0\nNaN,1\n").unwrap();
    let o = run(&["model", "train", "--data", bad.to_str().unwrap(), "--label", "y", "--out", model.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("row 2, column 'x': 'NaN' is not a finite number"), "{}", stderr(&o));
    let o =
        run(&["model", "predict", "--model", test.to_str().unwrap(), "--data", test.to_str().unwrap(), "--out", scores.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("not a finpulse model file"), "{}", stderr(&o));
}

#[test]
fn churn_trains_on_the_demo_serves_a_risk_list_and_versions_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let o = run(&["demo", "--users", "3000", "--days", "90", "--seed", "11", "--no-serve", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Trained as of March 1st: labels of snapshots up to January 30th are known by then.
    let o = run(&["churn", "train", "--data-dir", d, "--as-of", "2026-03-01", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trained: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(trained["version"], 1);
    assert_eq!(trained["report"]["snapshots"][0]["as_of"], "2026-01-30");
    // Out of time: March, a month after every training label.
    let o = run(&["churn", "eval", "--data-dir", d, "--as-of", "2026-03-01", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let auc = e["evaluation"]["evaluation"]["auc"].as_f64().unwrap();
    assert!(auc > 0.75, "AUC {auc}: {e}");
    assert!(e["evaluation"]["evaluation"]["top_decile_lift"].as_f64().unwrap() > 2.0, "{e}");

    let list = dir.path().join("risk.csv");
    let o = run(&["churn", "score", "--data-dir", d, "--as-of", "2026-04-01", "--out", list.to_str().unwrap(), "--top", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("churn risk as of 2026-04-01 (model v1"), "{}", stdout(&o));
    let csv = std::fs::read_to_string(&list).unwrap();
    assert_eq!(csv.lines().next(), Some("user_id,probability,reasons"));
    assert!(csv.lines().count() > 100);

    // LTV-based offers: CLV from revenue before March, churn risk from the active model.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "discount_cap_pct = 20\n[discounts_pct]\n\"high/high\" = 35\n\"mid/high\" = 10\n").unwrap();
    let pricing = |policy: &Path| {
        run(&[
            "pricing",
            "compute",
            "--data-dir",
            d,
            "--calibration-end",
            "2026-03-01",
            "--purchase-event",
            "revenue",
            "--unit",
            "day",
            "--policy",
            policy.to_str().unwrap(),
            "--format",
            "json",
        ])
    };
    let o = pricing(&policy);
    assert!(o.status.success(), "{}", stderr(&o));
    let priced: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let segments = priced["segments"].as_array().unwrap();
    let cell = |t: &str, b: &str| segments.iter().find(|s| s["ltv_tier"] == t && s["risk_band"] == b).cloned();
    let top = cell("high", "high").expect("valuable users at high risk exist");
    assert_eq!((top["discount_pct"].as_f64(), top["bound_by"].as_str()), (Some(20.0), Some("discount_cap")), "{top}");
    assert_eq!(cell("high", "low").expect("valuable loyal users")["discount_pct"], 0.0);
    std::fs::write(&policy, "discount_cap_pct = 120\n").unwrap();
    let o = pricing(&policy);
    assert!(!o.status.success() && stderr(&o).contains("discount_cap_pct must be in [0, 100), not 120"), "{}", stderr(&o));
    std::fs::write(&policy, "discount_cap = 5\n").unwrap();
    let o = pricing(&policy);
    assert!(!o.status.success() && stderr(&o).contains("discount_cap"), "{}", stderr(&o));

    // Labels for April are not in the data yet.
    let o = run(&["churn", "eval", "--data-dir", d, "--as-of", "2026-04-01"]);
    assert!(!o.status.success() && stderr(&o).contains("labels are not known yet"), "{}", stderr(&o));
    let o = run(&["churn", "train", "--data-dir", d, "--as-of", "2026-03-01", "--activity", "app_open"]);
    assert!(!o.status.success() && stderr(&o).contains("--activity: unknown event type 'app_open'"), "{}", stderr(&o));

    // A second version in shadow, promoted, then rolled back over HTTP.
    let o = run(&["churn", "train", "--data-dir", d, "--as-of", "2026-03-15", "--no-promote"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("registered, not active"), "{}", stdout(&o));
    let o = run(&["models", "promote", "churn", "2", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("churn: v2 is active (was v1"), "{}{}", stdout(&o), stderr(&o));

    let server = serve(&data);
    let client = server.client.clone();
    let risk: Value = client.get(format!("{}/v1/churn/risk?limit=3", server.base)).send().unwrap().json().unwrap();
    assert_eq!(risk["model_version"], 2);
    assert_eq!(risk["list"]["as_of"], "2026-04-01", "defaults to the day after the last event");
    assert_eq!(risk["list"]["rows"].as_array().unwrap().len(), 3);
    let top = risk["list"]["rows"][0]["probability"].as_f64().unwrap();
    assert!(top >= risk["list"]["rows"][2]["probability"].as_f64().unwrap());
    let offers: Value =
        client.get(format!("{}/v1/pricing/offers?price_tier=retention&limit=5", server.base)).send().unwrap().json().unwrap();
    let listed = offers["offers"].as_array().unwrap();
    assert!(
        !listed.is_empty() && listed.iter().all(|o| o["price_tier"] == "retention" && o["discount_pct"].as_f64().unwrap() <= 20.0),
        "{offers}"
    );
    let user = listed[0]["user_id"].as_str().unwrap();
    let one: Value = client.get(format!("{}/v1/pricing/offers?user_id={user}", server.base)).send().unwrap().json().unwrap();
    assert_eq!(one["offer"]["user_id"], user);
    assert_eq!(client.get(format!("{}/v1/pricing/offers?user_id=nobody", server.base)).send().unwrap().status(), 404);
    assert_eq!(client.get(format!("{}/v1/pricing/offers?price_tier=gold", server.base)).send().unwrap().status(), 400);
    // The server recomputes offers itself, with the same pipeline, and serves the new ones.
    let compute = |body: Value| client.post(format!("{}/v1/pricing/compute", server.base)).json(&body).send().unwrap();
    let settings = json!({"purchase_event": "revenue", "calibration_end": "2026-03-01", "unit": "day",
                          "policy": {"discount_cap_pct": 15, "discounts_pct": {"high/high": 35, "mid/high": 10}}});
    let r = compute(settings.clone());
    assert_eq!(r.status(), 200);
    let computed: Value = r.json().unwrap();
    assert_eq!(computed["offers"], priced["offers"], "the same users are priced as by the CLI");
    let top = computed["segments"].as_array().unwrap().iter().find(|s| s["ltv_tier"] == "high" && s["risk_band"] == "high").cloned();
    let top = top.expect("valuable users at high risk exist");
    assert_eq!((top["discount_pct"].as_f64(), top["bound_by"].as_str()), (Some(15.0), Some("discount_cap")), "{top}");
    let offers: Value =
        client.get(format!("{}/v1/pricing/offers?price_tier=retention&limit=50", server.base)).send().unwrap().json().unwrap();
    assert!(offers["offers"].as_array().unwrap().iter().all(|o| o["discount_pct"].as_f64().unwrap() <= 15.0), "{offers}");
    let mut unknown = settings.clone();
    unknown["policy"]["discount_cap"] = json!(5);
    let r = compute(unknown);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("policy: unknown field 'discount_cap'"));
    let mut bad_date = settings.clone();
    bad_date["calibration_end"] = json!("March");
    let r = compute(bad_date);
    assert!(r.status() == 400 && r.text().unwrap().contains("calibration_end: 'March' is not a YYYY-MM-DD date"));
    let mut bad_event = settings;
    bad_event["purchase_event"] = json!("purchase");
    let r = compute(bad_event);
    assert!(r.status() == 400 && r.text().unwrap().contains("unknown event type 'purchase'"));
    assert_eq!(client.get(format!("{}/v1/churn/risk?limit=0", server.base)).send().unwrap().status(), 400);
    let r = client.post(format!("{}/v1/models/churn/promote", server.base)).json(&json!({"v": 1})).send().unwrap();
    assert_eq!(r.status(), 400);
    let r = client.get(format!("{}/v1/churn/risk?as_of=April", server.base)).send().unwrap();
    assert_eq!(r.status(), 400);
    let r = client.post(format!("{}/v1/models/churn/rollback", server.base)).send().unwrap();
    assert_eq!(r.status(), 200);
    let models: Value = client.get(format!("{}/v1/models", server.base)).send().unwrap().json().unwrap();
    assert_eq!(models["active"]["churn"], 1);
    assert_eq!(models["history"].as_array().unwrap().len(), 3, "{models}");
    let r = client.post(format!("{}/v1/models/churn/promote", server.base)).json(&json!({"version": 9})).send().unwrap();
    assert_eq!(r.status(), 404);
    drop(server);
    let o = run(&["models", "list", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("churn"), "{}", stderr(&o));
}

#[test]
fn fraud_follows_the_handbook_protocol_rules_backtest_and_publish_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();

    // Before any data: the command says there is none, and where it looked.
    let o = run(&["fraud", "train", "--data-dir", d, "--from", "2026-02-15", "--to", "2026-02-22"]);
    assert!(!o.status.success() && stderr(&o).contains("no finpulse data here"), "{}", stderr(&o));

    let o = run(&["demo", "--users", "3000", "--days", "70", "--seed", "5", "--no-serve", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Bad periods and no model yet.
    let o = run(&["fraud", "train", "--data-dir", d, "--from", "2026-02-22", "--to", "2026-02-15"]);
    assert!(!o.status.success() && stderr(&o).contains("--to (2026-02-15) must be after --from (2026-02-22)"), "{}", stderr(&o));
    let o = run(&["fraud", "train", "--data-dir", d, "--from", "2026-02-30", "--to", "2026-03-05"]);
    assert!(!o.status.success() && stderr(&o).contains("--from '2026-02-30' is not a YYYY-MM-DD date"), "{}", stderr(&o));
    let o = run(&["fraud", "eval", "--data-dir", d, "--from", "2026-03-01", "--to", "2026-03-08"]);
    assert!(!o.status.success() && stderr(&o).contains("no active fraud model"), "{}", stderr(&o));

    // Train a week, wait a week for the labels, test the week after.
    let o =
        run(&["fraud", "train", "--data-dir", d, "--from", "2026-02-08", "--to", "2026-02-15", "--delay-days", "7", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trained: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(trained["version"], 1);
    assert_eq!(trained["report"]["frauds_unknown_at_training"], 0, "labels arrive within the delay: {trained}");
    // --to is excluded, and every range command says which days it covered.
    let covered = &trained["covered"];
    assert_eq!(
        (covered["first_day"].as_str(), covered["last_day"].as_str(), covered["days"].as_i64()),
        (Some("2026-02-08"), Some("2026-02-14"), Some(7))
    );
    let o = run(&["fraud", "eval", "--data-dir", d, "--from", "2026-02-22", "--to", "2026-03-01", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // A sanity bound (a model that learnt nothing scores 0.5): on 3,000 users the test week holds
    // about 70 frauds, too few for a quality figure; those come from bench/fraud_handbook.py.
    let auc = e["evaluation"]["auc"].as_f64().unwrap();
    assert!(auc > 0.75, "AUC {auc}: {e}");
    assert_eq!(e["evaluation"]["days"].as_array().unwrap().len(), 7);
    assert_eq!(e["covered"]["last_day"], "2026-02-28", "{}", e["covered"]);
    // Which frauds make a card known compromised: since the training start by default, every
    // one with `all` (more cards left out), and a bad day is named.
    let removed = |extra: &[&str]| {
        let mut args = vec!["fraud", "eval", "--data-dir", d, "--from", "2026-02-22", "--to", "2026-03-01", "--format", "json"];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let e: Value = serde_json::from_str(&stdout(&o)).unwrap();
        (e["known_since"].as_str().unwrap().to_string(), e["evaluation"]["removed_known_compromised"].as_u64().unwrap())
    };
    let (since, by_default) = removed(&[]);
    assert_eq!(since, "2026-02-08");
    let (since, by_all) = removed(&["--known-since", "all"]);
    assert_eq!(since, "all");
    assert!(by_all >= by_default, "{by_all} < {by_default}");
    let o = run(&["fraud", "eval", "--data-dir", d, "--from", "2026-02-22", "--to", "2026-03-01", "--known-since", "2026-13-01"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--known-since '2026-13-01' is neither a YYYY-MM-DD date nor `all`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["fraud", "eval", "--data-dir", d, "--from", "2026-02-22", "--to", "2026-02-23"]);
    assert!(stdout(&o).contains("2026-02-22 to 2026-02-22 inclusive, 1 day ("), "{}", stdout(&o));
    assert!(e["evaluation"]["removed_known_compromised"].as_u64().unwrap() > 0);

    let scores = dir.path().join("scores.csv");
    let o = run(&[
        "fraud",
        "score",
        "--data-dir",
        d,
        "--from",
        "2026-02-22",
        "--to",
        "2026-02-23",
        "--out",
        scores.to_str().unwrap(),
        "--with-features",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&scores).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..7], ["event_id", "user_id", "ts", "score", "label", "known_compromised", "txn.amount_fen"]);
    assert!(csv.lines().skip(1).all(|l| l.split(',').count() == header.len()));

    // Rules: a bad file is refused with its place, a good one published and backtested.
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "name = \"cards\"\n[[rule]]\nname = \"big\"\nwhen = \"txn.amount_fen >> 22000\"\naction = \"block\"\nscore = 0.95\n",
    )
    .unwrap();
    let o = run(&["rules", "publish", rules.to_str().unwrap(), "--data-dir", d]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("rules.toml:4:25: rule \"big\": expected a value, found \">\""), "{}", stderr(&o));
    assert!(stderr(&o).contains("the active ruleset is still none"), "{}", stderr(&o));
    std::fs::write(
        &rules,
        "name = \"cards\"\n[[rule]]\nname = \"big\"\nwhen = \"txn.amount_fen > 22000\"\naction = \"block\"\nscore = 0.95\n",
    )
    .unwrap();
    let o = run(&[
        "rules",
        "backtest",
        rules.to_str().unwrap(),
        "--data-dir",
        d,
        "--from",
        "2026-02-22",
        "--to",
        "2026-03-01",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = &b["confusion"];
    let total: u64 =
        ["true_positives", "false_positives", "false_negatives", "true_negatives"].iter().map(|k| c[k].as_u64().unwrap()).sum();
    assert_eq!(total, b["transactions"].as_u64().unwrap());
    assert_eq!(b["model_version"], 1);
    assert!(b["rules"][0]["hits"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["covered"]["days"], 7, "{}", b["covered"]);
    let o = run(&["rules", "publish", rules.to_str().unwrap(), "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("as v1"), "{}", stderr(&o));

    // Decisions through a server raise alerts; the CLI works the case once the server stops.
    {
        let served = serve(&data);
        let client = served.client.clone();
        for (id, amount) in [("try-1", 1_500), ("try-2", 90_000)] {
            let tx = json!({"event_id": id, "user_id": "u0000007", "ts": "2026-03-11T10:00:00+08:00", "type": "payment", "amount_fen": amount, "currency": "CNY", "terminal_id": "t00001"});
            let r: Value = client.post(format!("{}/v1/decisions", served.base)).body(tx.to_string()).send().unwrap().json().unwrap();
            assert_eq!(r["ruleset_version"], 1, "{r}");
            if amount > 22_000 {
                assert_eq!(r["action"], "block", "{r}");
            }
        }
        // While it runs, the CLI will not write under it and says what to do instead.
        let o = run(&["cases", "comment", "case-1", "looking", "--by", "ana", "--data-dir", d]);
        assert!(!o.status.success() && stderr(&o).contains("/v1/cases/case-1/comment"), "{}", stderr(&o));
    }
    let o = run(&["cases", "list", "--status", "open", "--format", "json", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let open: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let case = open.as_array().unwrap().iter().find(|c| c["user_id"] == "u0000007").expect("a case for the blocked payment");
    let id = case["case_id"].as_str().unwrap().to_string();
    let o = run(&["cases", "resolve", &id, "--label", "fraud", "--by", "ana", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("with 1 fraud labels"), "{} {}", stdout(&o), stderr(&o));
    let o = run(&["cases", "resolve", &id, "--label", "fraud", "--by", "ana", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("is already resolved"), "{}", stderr(&o));
    let o = run(&["cases", "resolve", &id, "--label", "maybe", "--by", "ana", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("maybe"), "{}", stderr(&o));
    let o = run(&["cases", "list", "--status", "closed", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("use open or resolved"), "{}", stderr(&o));
    let rows = sql_csv(&data, "SELECT target_event_id FROM fraud_label WHERE event_id LIKE 'case-%'");
    assert_eq!(rows, [["try-2"]]);

    // A user's live profile, rebuilt from the log.
    let o = run(&["user", "u0000001", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let profile: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(profile["user_id"], "u0000001");
    assert!(profile["counters"]["user_signup"] == 1, "{profile}");
    let o = run(&["user", "nobody", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("no user \"nobody\""), "{}", stderr(&o));
}

#[test]
fn output_piped_into_a_closed_reader_ends_quietly() {
    // `finpulse rules features | head -1`: the reader leaves after one line.
    let mut child = finpulse().args(["rules", "features"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn models_trained_by_lightgbm_and_xgboost_import_score_like_their_libraries_and_register() {
    let dir = tempfile::tempdir().unwrap();
    let golden = package_dir().join("../finpulse-models/tests/data/golden");
    let uci = package_dir().join("../../testdata/uci-default-credit-card.csv");
    let d = dir.path().join("d");
    let rows = golden.join("rows.csv");
    let expected: Vec<Vec<f64>> = std::fs::read_to_string(&rows)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').take(2).map(|v| v.parse().unwrap()).collect())
        .collect();
    for (from, file, column, tolerance) in [("lightgbm", "lightgbm.txt", 1, 1e-9), ("xgboost", "xgboost.json", 0, 1e-6)] {
        let model = dir.path().join(format!("{from}.json"));
        let o = run(&[
            "model",
            "import",
            "--from",
            from,
            "--file",
            golden.join(file).to_str().unwrap(),
            "--data",
            uci.to_str().unwrap(),
            "--label",
            "default.payment.next.month",
            "--out",
            model.to_str().unwrap(),
            "--register",
            "credit",
            "--data-dir",
            d.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(summary["train"]["auc"].as_f64().unwrap() > 0.75, "checked on the labelled table: {summary}");
        // The stored model scores the golden rows as the library did.
        let scores = dir.path().join(format!("{from}-scores.csv"));
        let o = run(&[
            "model",
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data",
            rows.to_str().unwrap(),
            "--out",
            scores.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got: Vec<f64> = std::fs::read_to_string(&scores).unwrap().lines().skip(1).map(|l| l.parse().unwrap()).collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e[column]).abs() <= tolerance, "{from}: {g} vs {}", e[column]);
        }
    }
    let o = run(&["models", "list", "--data-dir", d.to_str().unwrap(), "--format", "json"]);
    assert!(stdout(&o).contains("imported_xgboost"), "{}", stdout(&o));
    let import = |from: &str, data: &Path| {
        let out = dir.path().join("x.json");
        let (file, data, out) = (golden.join("lightgbm.txt"), data.to_str().unwrap().to_string(), out.to_str().unwrap().to_string());
        run(&[
            "model",
            "import",
            "--from",
            from,
            "--file",
            file.to_str().unwrap(),
            "--data",
            &data,
            "--label",
            "default.payment.next.month",
            "--out",
            &out,
        ])
    };
    // A check file without the model's features is refused, naming the column.
    let o = import("lightgbm", &rows);
    assert!(!o.status.success() && stderr(&o).contains("default.payment.next.month"), "{}", stderr(&o));
    // A LightGBM file read as XGBoost is refused, saying what was expected.
    let o = import("xgboost", &uci);
    assert!(!o.status.success() && stderr(&o).contains("XGBoost model, document"), "{}", stderr(&o));
}

#[test]
fn insights_segments_and_goals_from_the_command_line_agree_with_sql_and_name_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["demo", "--users", "300", "--days", "20", "--seed", "5", "--no-serve", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let douyin = sql_csv(dir.path(), "SELECT count(DISTINCT user_id) FROM user_signup WHERE channel = 'douyin'")[0][0].clone();

    // Flags become the API's request: steps, breakdown and a filter on a user property.
    let o = run(&[
        "insight",
        "funnel",
        "--data-dir",
        d,
        "--steps",
        "user_signup,deposit",
        "--breakdown",
        "user.channel",
        "--filter",
        "user.channel=douyin",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Vec<String>> = stdout(&o).lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0][0].as_str(), rows[0][3].clone()), ("douyin", douyin.clone()));

    let o = run(&["insight", "retention", "--data-dir", d, "--period", "week", "--periods", "2", "--unbounded", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(table["columns"][4], "week_2");

    // A segment saved, then asked about by user.
    let o = run(&["segment", "save", "--data-dir", d, "douyin", "--rule", "user.channel = douyin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["segment", "members", "--data-dir", d, "douyin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count().to_string(), douyin);
    let member = stdout(&o).lines().next().unwrap().to_string();
    let o = run(&["segment", "members", "--data-dir", d, "douyin", "--user", &member]);
    assert_eq!(stdout(&o).trim(), format!("{member} is a member of douyin"));

    // A goal set and listed with a status.
    let o = run(&["goals", "set", "--data-dir", d, "reach", "--metric", "mau", "--target", "100", "--deadline", "2030-01-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["goals", "list", "--data-dir", d, "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().nth(1).unwrap().starts_with("reach,growth,mau,100,2030-01-01,"), "{}", stdout(&o));

    // Bad flags are named, and nothing is printed as an answer.
    let o = run(&["insight", "funnel", "--data-dir", d, "--steps", "user_signup", "--window", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("window: must be more than 0"), "{}", stderr(&o));
    let o = run(&["insight", "trends", "--data-dir", d, "--steps", "user_signup"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("steps: trends does not take steps"), "{}", stderr(&o));
    let o = run(&["segment", "members", "--data-dir", d, "nobody"]);
    assert!(stderr(&o).contains("no segment 'nobody'"), "{}", stderr(&o));
}

#[test]
fn every_type_a_query_returns_prints_in_every_format_and_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let o = run(&["demo", "--users", "50", "--days", "2", "--no-serve", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A list, a struct, a map, a decimal, times with a zone and in nanoseconds, an interval, a
    // date and a list of structs: what retention(), named_struct() and friends return.
    let query = "SELECT make_array(1, 2) AS list, named_struct('a', 1, 'b', 'x') AS st, map(['k'], [1]) AS m, \
                 CAST(1.25 AS DECIMAL(10,2)) AS dec, arrow_cast(0, 'Timestamp(Microsecond, Some(\"+08:00\"))') AS tz, \
                 arrow_cast(1000, 'Timestamp(Nanosecond, None)') AS ns, INTERVAL '1 day' AS iv, DATE '2026-01-05' AS d, \
                 make_array(named_struct('x', 1.5)) AS ls";
    let want = json!([[1, 2], {"a": 1, "b": "x"}, {"k": 1}, "1.25", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000001Z", "1 days", "2026-01-05", [{"x": 1.5}]]);

    let o = run(&["sql", "--data-dir", d, "--format", "json", query]);
    assert!(o.status.success(), "{}", stderr(&o));
    let answer: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(answer["rows"][0], want, "{answer}");

    let o = run(&["sql", "--data-dir", d, "--format", "csv", query]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let row = csv.records().next().unwrap().unwrap();
    assert_eq!(row.len(), 9);
    assert_eq!(serde_json::from_str::<Value>(&row[0]).unwrap(), want[0]);
    assert_eq!(serde_json::from_str::<Value>(&row[1]).unwrap(), want[1]);
    assert_eq!(serde_json::from_str::<Value>(&row[8]).unwrap(), want[8]);
    assert_eq!((&row[3], &row[4], &row[7]), ("1.25", "1970-01-01T00:00:00Z", "2026-01-05"));

    let o = run(&["sql", "--data-dir", d, "--format", "table", query]);
    assert!(o.status.success() && stdout(&o).contains("[{x: 1.5}]"), "{}{}", stdout(&o), stderr(&o));

    let served = serve(&data);
    let r: Value = served.client.post(format!("{}/v1/sql", served.base)).json(&json!({"query": query})).send().unwrap().json().unwrap();
    assert_eq!(r["rows"][0], want, "{r}");
}

#[test]
fn keys_users_purposes_and_the_audit_log_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = dir.path().join("kyc.ndjson");
    std::fs::write(
        &file,
        "{\"event_id\":\"v1\",\"user_id\":\"u1\",\"ts\":\"2026-02-01T10:00:00+08:00\",\"type\":\"identity_verified\",\"id_number\":\"110101199003071234\",\"real_name\":\"张三\"}\n",
    )
    .unwrap();
    let o = run(&["import", "--data-dir", d, file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The key is alone on the last line; a bad role is named with the roles there are.
    let key = make_key(&data, "risk_analyst");
    assert!(key.starts_with("fpk_") && !key.contains(' '), "{key}");
    let o = run(&["keys", "create", "--role", "root", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("'root' is not a role"), "{}", stderr(&o));
    let o = run(&["keys", "create", "--role", "partner_app", "--tenant", "bank-b", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["keys", "list", "--data-dir", d, "--format", "csv"]);
    assert!(stdout(&o).contains(",partner_app,bank-b,active,"), "{}", stdout(&o));
    assert!(!stdout(&o).contains(&key[17..]), "a key's secret is never listed");

    let create_user = |password: &str| {
        let mut child = finpulse()
            .args(["users", "create", "--name", "li.na", "--role", "compliance_officer", "--password-stdin", "--data-dir", d])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = create_user("short\n");
    assert!(!o.status.success() && stderr(&o).contains("password must be"), "{}", stderr(&o));
    let o = create_user("a long enough passphrase\n");
    assert!(o.status.success() && stdout(&o).contains("made user li.na"), "{}", stderr(&o));
    let o = run(&["users", "role", "--name", "li.na", "--role", "auditor", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("li.na is now auditor"), "{}", stderr(&o));
    let o = run(&["users", "role", "--name", "nobody", "--role", "auditor", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("no user 'nobody'"), "{}", stderr(&o));
    let o = run(&["users", "list", "--data-dir", d]);
    assert!(stdout(&o).contains("li.na  auditor  default"), "{}", stdout(&o));

    // Masked by default; in clear with a purpose, and that read is in the audit log.
    assert_eq!(sql_csv(&data, "SELECT id_number, real_name FROM identity_verified"), vec![vec!["110***********1234", "张*"]]);
    let o = run(&["sql", "--data-dir", d, "--format", "csv", "--purpose", "KYC review 7", "SELECT id_number FROM identity_verified"]);
    assert!(o.status.success() && stdout(&o).contains("110101199003071234"), "{}", stderr(&o));
    let o = run(&["audit", "list", "--data-dir", d, "--format", "csv"]);
    assert!(stdout(&o).contains("sql (read in clear)") && stdout(&o).contains("KYC review 7"), "{}", stdout(&o));
    assert!(stdout(&o).contains("users.role") && stdout(&o).contains("user li.na -> auditor"), "{}", stdout(&o));

    // A server asks for the key; the key works.
    {
        let served = serve(&data);
        let anonymous = reqwest::blocking::Client::new();
        assert_eq!(anonymous.get(format!("{}/v1/schema", served.base)).send().unwrap().status(), 401);
        assert_eq!(anonymous.get(format!("{}/healthz", served.base)).send().unwrap().status(), 200);
        let analyst = client_with(&key, Duration::from_secs(30));
        let r = analyst
            .post(format!("{}/v1/sql", served.base))
            .json(&json!({"query": "SELECT id_number FROM identity_verified"}))
            .send()
            .unwrap();
        assert_eq!(r.headers()["x-data-exposure"], "masked");
        assert!(r.text().unwrap().contains("110***********1234"));
    }

    let o = run(&["audit", "verify", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("audit log verified"), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["audit", "head", "--data-dir", d]);
    let head = dir.path().join("head.json");
    std::fs::write(&head, stdout(&o)).unwrap();
    let o = run(&["audit", "verify", "--data-dir", d, "--entry", "1", "--trusted-head", head.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).contains("\"inclusion_proof\""), "{}{}", stdout(&o), stderr(&o));

    // One byte changed anywhere in an entry: verify fails and names it.
    let entries = data.join("audit").join("entries.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    let second = text.lines().nth(1).unwrap();
    std::fs::write(&entries, text.replacen(second, &second.replacen("keys.create", "keys.crEate", 1), 1)).unwrap();
    let o = run(&["audit", "verify", "--data-dir", d]);
    assert!(!o.status.success(), "a changed entry verified");
    assert!(stderr(&o).contains("audit entry 1 (line 2"), "{}", stderr(&o));
}

#[test]
fn tuning_refuses_settings_it_would_choose_and_folds_without_tuning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["fraud", "train", "--from", "2026-02-15", "--to", "2026-02-22", "--tune", "--rounds", "50", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("--rounds"), "{}", stderr(&o));
    let o = run(&["fraud", "train", "--from", "2026-02-15", "--to", "2026-02-22", "--tune-folds", "2", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("--tune"), "{}", stderr(&o));
    let o = run(&["fraud", "train", "--from", "2026-02-15", "--to", "2026-02-22", "--tune", "--tune-folds", "0", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("tuning folds must be 1 to"), "{}", stderr(&o));
}

/// Runs finpulse as an operator (by `$USER`) on a data directory under `dir` whose
/// configuration makes changes of `kind` wait for a second person.
fn operators_needing_approval(dir: &Path, kind: &str) -> impl Fn(&str, &[&str]) -> std::process::Output {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join("finpulse.toml");
    std::fs::write(&config, format!("[access]\napproval_required = [\"{kind}\"]\n")).unwrap();
    move |user: &str, args: &[&str]| {
        finpulse().env("USER", user).args(args).arg("--config").arg(&config).arg("--data-dir").arg(&data).output().unwrap()
    }
}

#[test]
fn a_ruleset_set_to_need_approval_waits_for_a_second_operator() {
    let dir = tempfile::tempdir().unwrap();
    let as_user = operators_needing_approval(dir.path(), "rules");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "name = \"cards\"\nreview_at = 0.5\nblock_at = 0.9\n[[rule]]\nname = \"big\"\nwhen = \"payment.amount_fen > 100000\"\nscore = 0.6\n").unwrap();
    let o = as_user("maker", &["rules", "publish", rules.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).contains("waits for a second person's approval (request 1)"), "{}{}", stdout(&o), stderr(&o));
    let o = as_user("maker", &["rules", "history"]);
    assert!(!stdout(&o).contains("v1"), "not active before approval: {}", stdout(&o));
    let o = as_user("maker", &["approvals", "approve", "1"]);
    assert!(!o.status.success() && stderr(&o).contains("a second person must decide it"), "{}", stderr(&o));
    let o = as_user("checker", &["approvals", "approve", "1"]);
    assert!(o.status.success() && stdout(&o).contains("Approved by cli:checker"), "{}{}", stdout(&o), stderr(&o));
    let o = as_user("checker", &["rules", "history"]);
    assert!(stdout(&o).contains("v1"), "{}", stdout(&o));
    let o = as_user("auditor", &["audit", "list", "--format", "csv"]);
    let log = stdout(&o);
    assert!(
        log.contains("cli:maker,default,rules.publish")
            && log.contains("cli:maker,default,approvals.approve")
            && log.contains("cli:checker,default,approvals.approve"),
        "{log}"
    );
    // The change's intent went to the log before the change, then its outcome.
    let publish: Vec<&str> = log.lines().filter(|l| l.contains("cli:maker,default,rules.publish")).collect();
    assert_eq!(publish.len(), 2, "{log}");
    assert!(publish[0].contains(",started,") && publish[1].contains(",ok,"), "{log}");

    // A roll-back asks too: v2 stays active until a second person approves going back to v1.
    std::fs::write(&rules, std::fs::read_to_string(&rules).unwrap().replace("score = 0.6", "score = 0.7")).unwrap();
    assert!(as_user("maker", &["rules", "publish", rules.to_str().unwrap()]).status.success());
    assert!(as_user("checker", &["approvals", "approve", "2"]).status.success());
    let o = as_user("maker", &["rules", "rollback"]);
    assert!(
        o.status.success() && stdout(&o).contains("(a roll-back) waits for a second person's approval (request 3)"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = as_user("maker", &["rules", "history"]);
    assert!(stdout(&o).contains("v2") && !stdout(&o).contains("rollback"), "not rolled back before approval: {}", stdout(&o));
    let o = as_user("checker", &["approvals", "approve", "3"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = as_user("checker", &["rules", "history"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("v1  rollback")), "{}", stdout(&o));
}

#[test]
fn models_set_to_need_approval_are_registered_inactive_and_roll_back_only_when_approved() {
    let dir = tempfile::tempdir().unwrap();
    let as_user = operators_needing_approval(dir.path(), "models");
    let table = dir.path().join("t.csv");
    let rows: String = (0..200).map(|i| format!("{},{}\n", i, u8::from(i % 3 == 0))).collect();
    std::fs::write(&table, format!("x,y\n{rows}")).unwrap();
    let model = dir.path().join("m.json");
    let train = |user: &str| {
        let args = [
            "model",
            "train",
            "--data",
            table.to_str().unwrap(),
            "--label",
            "y",
            "--out",
            model.to_str().unwrap(),
            "--format",
            "json",
            "--register",
            "credit",
        ];
        as_user(user, &args)
    };
    let o = train("maker");
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str::<Value>(&stdout(&o)).expect("the JSON report stays JSON");
    assert!(stderr(&o).contains("registered as credit v1 (not active until approved)"), "{}", stderr(&o));
    assert!(stderr(&o).contains("waits for a second person's approval (request 1)"), "{}", stderr(&o));
    let active = || {
        let o = as_user("maker", &["models", "list", "--format", "json"]);
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()["active"]["credit"].clone()
    };
    assert_eq!(active(), Value::Null, "not active before approval");
    let o = as_user("checker", &["approvals", "approve", "1"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = train("maker");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_user("checker", &["approvals", "approve", "2"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(active(), 2);

    // A roll-back asks too, and happens when a second person approves it.
    let o = as_user("maker", &["models", "rollback", "credit"]);
    assert!(
        o.status.success() && stdout(&o).contains("credit v1 (a roll-back) waits for a second person's approval (request 3)"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(active(), 2, "still v2 before approval");
    let o = as_user("checker", &["approvals", "approve", "3"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(active(), 1, "rolled back once approved");
}

#[test]
fn a_tenant_chosen_with_tenant_imports_queries_and_is_served_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = |name: &str, user: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("event_id,user_id,ts,type,amount_fen,currency,terminal_id\np1,{user},2026-02-01T10:00:00+08:00,payment,1999,CNY,t1\n"),
        )
        .unwrap();
        path
    };
    let home = file("home.csv", "home-user");
    let other = file("bank_b.csv", "bank-b-user");
    let o = run(&["import", "--data-dir", d, home.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same event id is new to another tenant: its data is a store of its own.
    let o = run(&["import", "--tenant", "bank-b", "--data-dir", d, other.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).contains("1 accepted, 0 duplicates"), "{}{}", stdout(&o), stderr(&o));
    assert!(data.join("tenants/bank-b/wal").is_dir());
    let users = |tenant: Option<&str>| {
        let mut args = vec!["sql", "--data-dir", d, "--format", "csv"];
        args.extend(tenant.map(|t| ["--tenant", t]).into_iter().flatten());
        args.push("SELECT user_id FROM events");
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().skip(1).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(users(None), vec!["home-user"]);
    assert_eq!(users(Some("bank-b")), vec!["bank-b-user"]);
    let o = run(&["sql", "--tenant", "Bank B", "--data-dir", d, "SELECT 1"]);
    assert!(!o.status.success() && stderr(&o).contains("--tenant 'Bank B'"), "{}", stderr(&o));
    let o = run(&["serve", "--tenant", "bank-b", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("a server serves every tenant"), "{}", stderr(&o));

    // One server serves both; each key reads its own tenant's events.
    let o = run(&["keys", "create", "--role", "data_scientist", "--tenant", "bank-b", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b_key = stdout(&o).lines().last().unwrap().trim().to_string();
    let mut served = serve(&data);
    let query = |client: &reqwest::blocking::Client| -> String {
        let r = client
            .post(format!("{}/v1/sql", served.base))
            .json(&serde_json::json!({"query": "SELECT user_id FROM events"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    };
    let home_rows = query(&served.client);
    assert!(home_rows.contains("home-user") && !home_rows.contains("bank-b-user"), "{home_rows}");
    let b_rows = query(&client_with(&b_key, Duration::from_secs(60)));
    assert!(b_rows.contains("bank-b-user") && !b_rows.contains("home-user"), "{b_rows}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();

    // The CLI's change to bank-b is in the deployment's one audit log, under bank-b.
    let o = run(&["audit", "list", "--data-dir", d, "--format", "csv"]);
    assert!(stdout(&o).lines().any(|l| l.contains(",bank-b,keys.create,")), "{}", stdout(&o));
    let o = run(&["audit", "list", "--tenant", "bank-b", "--data-dir", d, "--format", "csv"]);
    assert!(stdout(&o).lines().skip(1).all(|l| l.contains(",bank-b,")), "{}", stdout(&o));
    let o = run(&["audit", "verify", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_subject_export_from_the_command_line_is_a_signed_zip_of_their_data_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = dir.path().join("people.ndjson");
    std::fs::write(
        &file,
        "{\"event_id\":\"v1\",\"user_id\":\"u1\",\"ts\":\"2026-02-01T10:00:00+08:00\",\"type\":\"identity_verified\",\"id_number\":\"110101199003071234\",\"real_name\":\"张三\"}\n\
         {\"event_id\":\"s1\",\"user_id\":\"u1\",\"ts\":\"2026-02-01T09:00:00+08:00\",\"type\":\"user_signup\",\"channel\":\"app\",\"mobile\":\"13812345678\"}\n\
         {\"event_id\":\"s2\",\"user_id\":\"u2\",\"ts\":\"2026-02-01T09:00:00+08:00\",\"type\":\"user_signup\",\"channel\":\"app\",\"mobile\":\"13900001111\"}\n",
    )
    .unwrap();
    let o = run(&["import", "--data-dir", d, file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let zip = dir.path().join("u1.zip");
    let z = zip.to_str().unwrap();
    let o = run(&["subject", "export", "u1", "--out", z, "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("subject export of u1: 2 events"), "{}", stdout(&o));
    // Any unzip opens it; the events are the user's, in clear, and nobody else's.
    let listed = Command::new("unzip").args(["-l", z]).output().expect("unzip is installed");
    let listed = stdout(&listed);
    for name in ["manifest.json", "manifest.sig", "signing.pub", "events.ndjson", "events/user_signup.csv", "profile.json"] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    let events = stdout(&Command::new("unzip").args(["-p", z, "events.ndjson"]).output().unwrap());
    assert!(events.contains("110101199003071234") && events.contains("13812345678") && !events.contains("13900001111"), "{events}");
    let tested = Command::new("unzip").args(["-t", z]).output().unwrap();
    assert!(tested.status.success(), "{}", stdout(&tested));

    // Never over an existing file; an unknown user is named; each try is on record.
    let o = run(&["subject", "export", "u1", "--out", z, "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("exists"), "{}", stderr(&o));
    let other = dir.path().join("nobody.zip");
    let o = run(&["subject", "export", "nobody", "--out", other.to_str().unwrap(), "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("no user \"nobody\""), "{}", stderr(&o));
    assert!(!other.exists(), "nothing written for an unknown user");
    let o = run(&["audit", "list", "--data-dir", d, "--format", "csv"]);
    let trail = stdout(&o);
    assert_eq!(trail.lines().filter(|l| l.contains("subject.export") && l.contains(",ok,")).count(), 1, "{trail}");
    assert_eq!(trail.lines().filter(|l| l.contains("subject.export") && l.contains(",failed,")).count(), 2, "{trail}");
    let o = run(&["audit", "verify", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The import's compaction and each export are on the lineage record, as OpenLineage run
    // events: a failed export as a failed run.
    let o = run(&["lineage", "events", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).expect("one JSON event per line")).collect();
    let kinds = |job: &str| -> Vec<String> {
        events.iter().filter(|e| e["job"]["name"] == job).map(|e| e["eventType"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(kinds("compaction"), ["START", "COMPLETE"], "{events:?}");
    assert_eq!(kinds("subject_export"), ["START", "COMPLETE", "START", "FAIL", "START", "FAIL"], "{events:?}");
    assert!(events.iter().all(|e| e["schemaURL"].as_str().unwrap().contains("2-0-2")));
    let exported = events.iter().find(|e| e["job"]["name"] == "subject_export" && e["eventType"] == "COMPLETE").unwrap();
    assert_eq!(exported["outputs"][0]["name"], z, "{exported}");
    let o = run(&["lineage", "events", "--since", "2999-01-01", "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stdout(&o));
    let o = run(&["lineage", "events", "--since", "yesterday", "--data-dir", d]);
    assert!(!o.status.success() && stderr(&o).contains("--since 'yesterday'"), "{}", stderr(&o));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(files_under(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn after_the_demo_no_resident_id_mobile_or_card_number_is_anywhere_in_the_data_directory_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let o = run(&["demo", "--users", "300", "--days", "20", "--seed", "11", "--no-serve", "--data-dir", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("master key"), "the demo says where its master key is: {}", stderr(&o));
    assert!(dir.path().join("demo.master-key").exists());
    // The demo's users' identifiers, read in clear through the key with a stated purpose.
    let query = "SELECT id_number AS v FROM events WHERE id_number IS NOT NULL UNION SELECT mobile FROM events WHERE mobile IS NOT NULL UNION SELECT card_number FROM events WHERE card_number IS NOT NULL";
    let o = run(&["sql", "--data-dir", data.to_str().unwrap(), "--purpose", "at-rest scan", "--format", "csv", query]);
    assert!(o.status.success(), "{}", stderr(&o));
    let clear: Vec<String> = stdout(&o).lines().skip(1).map(str::to_string).collect();
    assert!(clear.len() >= 300, "the demo has resident ids, mobiles and cards: {}", clear.len());
    assert!(clear.iter().all(|v| v.len() >= 11 && !v.starts_with("enc1:")), "read in clear: {:?}", &clear[..3]);
    // Without a purpose they are masked.
    let o = run(&["sql", "--data-dir", data.to_str().unwrap(), "--format", "csv", query]);
    assert!(stdout(&o).lines().skip(1).all(|v| v.contains('*')), "{}", stdout(&o));

    // Every byte of every file: the log's records, Parquet pages, manifests, state, audit.
    let mut scanned = 0;
    for path in files_under(&data) {
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        for value in &clear {
            assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "{value} in clear in {}", path.display());
        }
    }
    assert!(scanned > 100_000, "{scanned} bytes scanned");
    // Parquet pages are compressed: their values, decoded, hold only envelopes and masked forms.
    let o =
        run(&["sql", "--data-dir", data.to_str().unwrap(), "--format", "csv", "SELECT count(*) FROM events WHERE card_number IS NOT NULL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for path in files_under(&data.join("parquet")) {
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for column in batch.columns() {
                let Ok(text) = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8) else { continue };
                let text = arrow::array::AsArray::as_string::<i32>(&text);
                for value in text.iter().flatten() {
                    assert!(!clear.iter().any(|c| value.contains(c.as_str())), "{value} in {}", path.display());
                }
            }
        }
    }
}

#[test]
fn subject_erase_shreds_a_demo_user_after_their_legal_hold_is_lifted_and_proves_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let o = run(&["demo", "--users", "200", "--days", "10", "--seed", "3", "--no-serve", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let user = "u0000007";
    let mobile = |purpose: bool| {
        let q = format!("SELECT max(mobile) FROM events WHERE user_id = '{user}'");
        let mut args = vec!["sql", "--data-dir", d, "--format", "csv", q.as_str()];
        if purpose {
            args.extend(["--purpose", "DSR-1"]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().nth(1).unwrap_or_default().trim_matches('"').to_string()
    };
    assert!(mobile(true).starts_with('1') && mobile(true).len() == 11, "{}", mobile(true));

    let o = run(&["subject", "hold", user, "--reason", "AML record keeping", "--until", "2099-01-01", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["subject", "erase", user, "--data-dir", d]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("legal hold until 2099-01-01 (AML record keeping)"), "{}", stderr(&o));
    assert!(mobile(true).len() == 11, "nothing was erased");
    let o = run(&["subject", "release", user, "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));

    let certificate = dir.path().join("erasure.json");
    let o = run(&["subject", "erase", user, "--certificate", certificate.to_str().unwrap(), "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("data key destroyed"), "{}", stdout(&o));
    let cert: Value = serde_json::from_slice(&std::fs::read(&certificate).unwrap()).unwrap();
    assert!(cert["entry"].as_str().unwrap().contains(user) && cert["proof"].is_array(), "{cert}");
    assert_eq!(mobile(true), "", "their mobile reads as nothing, even in clear");
    assert_eq!(mobile(false), "");
    let o = run(&["subject", "erase", user, "--data-dir", d]);
    assert!(o.status.success() && stdout(&o).contains("already erased"), "{}", stdout(&o));

    // A late event for them is refused by line; the others in the file are stored.
    let late = dir.path().join("late.ndjson");
    std::fs::write(
        &late,
        format!(
            "{{\"event_id\":\"late-1\",\"user_id\":\"{user}\",\"ts\":\"2026-03-01T10:00:00Z\",\"type\":\"app_session\",\"session_secs\":5}}\n{{\"event_id\":\"late-2\",\"user_id\":\"u0000008\",\"ts\":\"2026-03-01T10:00:00Z\",\"type\":\"app_session\",\"session_secs\":5}}\n"
        ),
    )
    .unwrap();
    let o = run(&["import", "--data-dir", d, late.to_str().unwrap()]);
    assert!(!o.status.success(), "an import with a refused record says so by its exit status");
    assert!(stderr(&o).contains("line 1: user 'u0000007' was erased"), "{}", stderr(&o));
    assert_eq!(sql_csv(&data, "SELECT event_id FROM events WHERE event_id LIKE 'late-%'"), vec![vec!["late-2"]]);
}
