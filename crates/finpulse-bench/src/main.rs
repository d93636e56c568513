//! `finpulse-bench`: measures finpulse against physical limits and peers on this machine, in one
//! run, and prints ratios. Not a test: numbers are reported, never asserted.

mod behaviour;
mod decide;
mod growth;
mod load;
mod sched;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// The finpulse binary to measure.
    #[arg(long, default_value = "target/release/finpulse")]
    finpulse: PathBuf,
    /// Scratch directory (on the disk being measured).
    #[arg(long, default_value = "bench/out")]
    scratch: PathBuf,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Sequential writes with fdatasync per block: the disk's durable bandwidth.
    Disk {
        #[arg(long, default_value_t = 512)]
        mib: usize,
        #[arg(long, default_value_t = 1024)]
        block_kib: usize,
    },
    /// Durable HTTP ingest in batches against a `finpulse serve` process.
    IngestHttp {
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
    /// Writes an NDJSON or CSV file of N payment events.
    MakeFile {
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        #[arg(long)]
        out: PathBuf,
        /// Give each payment a card number (a C2 level-3 field: masked for most readers), for
        /// measuring what masking costs. CSV only.
        #[arg(long)]
        with_cards: bool,
    },
    /// In-process decision latency with N users in live state, a GBDT model and a ruleset.
    Decide {
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        /// Payments per user in the 30 days of history.
        #[arg(long, default_value_t = 20)]
        history: u64,
        #[arg(long, default_value_t = 200_000)]
        decisions: usize,
        /// The model's training settings: `fraud` (what `finpulse fraud train` uses: many small
        /// trees) or `library` (the GBDT library's defaults: fewer, larger trees).
        #[arg(long, value_enum, default_value = "fraud")]
        gbdt: decide::GbdtSettings,
    },
    /// Log commits (write + fdatasync) of small records, with zeroed space ahead of the records
    /// and without, in alternating rounds: wall time per commit and CPU per commit.
    WalCommit {
        #[arg(long, default_value_t = 4000)]
        commits: usize,
        /// Records per commit.
        #[arg(long, default_value_t = 10)]
        records: usize,
        #[arg(long, default_value_t = 300)]
        record_bytes: usize,
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// The zeroed space kept ahead (the log's default unless given).
        #[arg(long)]
        zero_ahead_bytes: Option<u64>,
    },
    /// The longest single insert while a map fills, one `HashMap` against a `ShardedMap`
    /// (the live state's and the idempotency index's maps), in alternating rounds.
    MapGrowth {
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Decisions over HTTP at a fixed rate against a `finpulse serve` process.
    DecideHttp {
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        users: u64,
        /// Keep-alive connections the requests share.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Every Nth request sends again the transaction of 1,000 requests before (a client
        /// retrying after a timeout); 0 sends none.
        #[arg(long, default_value_t = 0)]
        retry_every: u64,
    },
    /// A SQL query with the behaviour functions over one Parquet file (as `events`), best of
    /// `repeat`; with `--machine-steps`, also the funnel state machine alone.
    Behaviour {
        #[arg(long)]
        parquet: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Comma-separated values of `event` that are the funnel's steps.
        #[arg(long)]
        machine_steps: Option<String>,
        /// The funnel's window, in the file's time units.
        #[arg(long, default_value_t = 604_800)]
        machine_window: i64,
        query: String,
    },
    /// Every insight kind over HTTP against `finpulse serve` on an existing data directory (e.g.
    /// made by `finpulse demo --users 100000 --no-serve`): the first answer after start and the
    /// median of the repeats.
    Insights {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// In-process SQL over a data directory, repeated; prints the median time.
    Sql {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        query: String,
    },
    /// SQL through `finpulse serve` over a data directory, personal data masked (no purpose)
    /// and in clear (an admin key stating a purpose), interleaved; prints both medians.
    SqlMasking {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 7)]
        repeat: usize,
        query: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.scratch)?;
    match cli.command {
        Bench::Disk { mib, block_kib } => {
            let mb_s = disk(&cli.scratch, mib, block_kib)?;
            println!("disk: {mb_s:.1} MB/s sequential with fdatasync every {block_kib} KiB");
        }
        Bench::IngestHttp { batch, connections, seconds } => ingest_http(&cli.finpulse, &cli.scratch, batch, connections, seconds)?,
        Bench::MakeFile { events, out, with_cards } => make_file(events, &out, with_cards)?,
        Bench::Sql { data_dir, repeat, query } => sql(&data_dir, repeat, &query)?,
        Bench::SqlMasking { data_dir, repeat, query } => sql_masking(&cli.finpulse, &data_dir, repeat, &query)?,
        Bench::Insights { data_dir, repeat } => insights(&cli.finpulse, &data_dir, repeat)?,
        Bench::Behaviour { parquet, repeat, machine_steps, machine_window, query } => {
            let machine =
                machine_steps.map(|s| behaviour::Machine { steps: s.split(',').map(str::to_string).collect(), window: machine_window });
            behaviour::run(&parquet, repeat, &query, machine)?
        }
        Bench::Decide { users, history, decisions, gbdt } => decide::run(users, history, decisions, gbdt)?,
        Bench::WalCommit { commits, records, record_bytes, rounds, zero_ahead_bytes } => wal_commit(
            &cli.scratch,
            commits,
            records,
            record_bytes,
            rounds,
            zero_ahead_bytes.unwrap_or(finpulse_log::wal::ZERO_AHEAD_BYTES_DEFAULT),
        )?,
        Bench::MapGrowth { entries, rounds } => growth::run(entries, rounds),
        Bench::DecideHttp { rate, seconds, users, connections, retry_every } => {
            decide_http(&cli.finpulse, &cli.scratch, rate, seconds, users, connections, retry_every)?
        }
    }
    Ok(())
}

/// Writes `mib` MiB in blocks, fdatasync after each, and returns MB/s.
fn disk(scratch: &Path, mib: usize, block_kib: usize) -> Result<f64> {
    let path = scratch.join("disk.bin");
    let mut f = std::fs::File::create(&path)?;
    let block = vec![0xA5u8; block_kib * 1024];
    let blocks = mib * 1024 / block_kib;
    let started = Instant::now();
    for _ in 0..blocks {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok((blocks * block.len()) as f64 / secs / 1e6)
}

/// The machine's busy time so far (all cores, every process and the kernel's own threads), in
/// clock ticks, from `/proc/stat`; 0 where unreadable.
fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let fields: Vec<u64> = stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice: idle and iowait are not
    // busy, and guest time is already in user.
    [0, 1, 2, 5, 6, 7].iter().filter_map(|i| fields.get(*i)).sum()
}

fn wal_commit(scratch: &Path, commits: usize, records: usize, record_bytes: usize, rounds: usize, zero_ahead_bytes: u64) -> Result<()> {
    use finpulse_log::wal::{Wal, WalOptions};
    let zeroed = format!("into zeroed space ({} KiB ahead)", zero_ahead_bytes >> 10);
    let modes = [("extending the file", 0), (zeroed.as_str(), zero_ahead_bytes)];
    let tick_ns = 1e9 / 100.0; // USER_HZ
    let mut results: Vec<(Vec<u64>, u64, u64)> = vec![(Vec::new(), 0, 0); modes.len()];
    let record: Vec<u8> = (0..record_bytes).map(|i| (i % 251) as u8 + 1).collect();
    for _ in 0..rounds {
        for (m, (_, zero_ahead_bytes)) in modes.iter().enumerate() {
            let dir = scratch.join("wal-commit");
            let _ = std::fs::remove_dir_all(&dir);
            let opts = WalOptions { zero_ahead_bytes: *zero_ahead_bytes, ..WalOptions::default() };
            let (mut wal, _) = Wal::open(&dir, opts, |_, _| Ok(()))?;
            let (cpu0, busy0) = (sched::this_thread("bench").map_or(0, |t| t.on_core_ns), machine_busy_ticks());
            for _ in 0..commits {
                for _ in 0..records {
                    wal.append(&record)?;
                }
                let started = Instant::now();
                wal.commit()?;
                results[m].0.push(started.elapsed().as_nanos() as u64);
            }
            results[m].1 += sched::this_thread("bench").map_or(0, |t| t.on_core_ns) - cpu0;
            results[m].2 += machine_busy_ticks() - busy0;
            drop(wal);
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let n = (commits * rounds) as f64;
    let mut p50s = Vec::new();
    for ((name, _), (mut walls, cpu_ns, busy)) in modes.iter().zip(results) {
        walls.sort_unstable();
        let q = |p: f64| walls[((walls.len() as f64 * p) as usize).min(walls.len() - 1)] as f64 / 1000.0;
        p50s.push(q(0.5));
        println!(
            "wal-commit {name}: {} commits of {records} x {record_bytes} B, wall p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; CPU per commit: this thread {:.1} us, whole machine {:.1} us",
            walls.len(),
            q(0.5),
            q(0.99),
            q(0.999),
            q(1.0),
            cpu_ns as f64 / n / 1000.0,
            busy as f64 * tick_ns / n / 1000.0
        );
    }
    println!("wal-commit: zeroed space takes {:.2}x the wall time per commit at p50", p50s[1] / p50s[0]);
    Ok(())
}

fn payment_json(i: u64) -> String {
    format!(
        r#"{{"event_id":"b{i}","user_id":"u{}","ts":{},"type":"payment","amount_fen":{},"currency":"CNY","terminal_id":"t{}","merchant_id":"m{}"}}"#,
        i % 1_000_000,
        1_767_225_600_000u64 + i * 37 % 7_776_000_000,
        100 + i * 7919 % 100_000,
        i % 10_000,
        i % 3_000
    )
}

fn make_file(events: u64, out: &Path, with_cards: bool) -> Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let csv = out.extension().is_some_and(|e| e == "csv");
    anyhow::ensure!(csv || !with_cards, "--with-cards writes CSV only");
    if csv {
        let cards = if with_cards { ",card_number" } else { "" };
        writeln!(w, "event_id,user_id,ts,type,amount_fen,currency,terminal_id,merchant_id{cards}")?;
    }
    for i in 0..events {
        if csv {
            write!(
                w,
                "b{i},u{},{},payment,{},CNY,t{},m{}",
                i % 1_000_000,
                1_767_225_600_000u64 + i * 37 % 7_776_000_000,
                100 + i * 7919 % 100_000,
                i % 10_000,
                i % 3_000
            )?;
            if with_cards {
                // One card per user: 6222 and twelve digits.
                write!(w, ",6222{:012}", (i % 1_000_000) * 7_919 % 1_000_000_000_000)?;
            }
            writeln!(w)?;
        } else {
            writeln!(w, "{}", payment_json(i))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// The insights the console's pages ask for, as `/v1/insights/…` paths.
const INSIGHT_PATHS: [&str; 10] = [
    "funnel?steps=user_signup,identity_verified,card_bound,deposit&window=7d",
    "trends",
    "lifecycle?interval=day",
    "lifecycle?interval=week&breakdown=user.channel",
    "retention",
    "retention?period=week&return_event=app_session&unbounded=true",
    "retention?period=week&breakdown=user.channel",
    "activation",
    "acquisition",
    "acquisition?breakdown=user.campaign&period=month",
];

/// Times each of [`INSIGHT_PATHS`] over HTTP against a `finpulse serve` of `data_dir`.
fn insights(finpulse: &Path, data_dir: &Path, repeat: usize) -> Result<()> {
    let (_server, base, key) = serve(finpulse, data_dir)?;
    let client = reqwest::blocking::Client::builder().default_headers(bearer(&key)?).timeout(Duration::from_secs(600)).build()?;
    let started = Instant::now();
    let health = loop {
        match client.get(format!("{base}/healthz")).send() {
            Ok(r) if r.status().is_success() => break r.json::<serde_json::Value>()?,
            _ if started.elapsed() > Duration::from_secs(600) => bail!("the server did not answer /healthz within 600 s"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    println!(
        "insights: {} events stored, server up in {:.1} s; seconds per answer over HTTP",
        health["events_stored"],
        started.elapsed().as_secs_f64()
    );
    println!("{:<72} {:>8} {:>8} {:>8}", "insight", "first", "median", "max");
    for path in INSIGHT_PATHS {
        let mut secs = Vec::with_capacity(repeat + 1);
        for _ in 0..=repeat {
            let t = Instant::now();
            let response = client.get(format!("{base}/v1/insights/{path}")).send()?;
            let status = response.status();
            let body = response.text()?;
            if !status.is_success() {
                bail!("{path}: {status}: {body}");
            }
            secs.push(t.elapsed().as_secs_f64());
        }
        let first = secs[0];
        let mut warm = secs[1..].to_vec();
        warm.sort_by(f64::total_cmp);
        let median = warm.get(warm.len() / 2).copied().unwrap_or(first);
        let max = warm.last().copied().unwrap_or(first);
        println!("{path:<72} {first:>8.3} {median:>8.3} {max:>8.3}");
    }
    Ok(())
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `finpulse serve` on an empty data directory `scratch/name` (a separate process);
/// returns it, its data directory, its base URL and an admin key.
fn start_server(finpulse: &Path, scratch: &Path, name: &str) -> Result<(Server, PathBuf, String, String)> {
    let data = scratch.join(name);
    let _ = std::fs::remove_dir_all(&data);
    let (server, base, key) = serve(finpulse, &data)?;
    Ok((server, data, base, key))
}

/// The Authorization header for `key`.
fn bearer(key: &str) -> Result<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    Ok(headers)
}

/// Makes an admin key for `data` with `finpulse keys create`, as an operator would.
fn make_key(finpulse: &Path, data: &Path) -> Result<String> {
    let out = Command::new(finpulse)
        .args(["keys", "create", "--role", "admin", "--label", "benchmark", "--data-dir", data.to_str().context("utf-8 path")?])
        .env("FINPULSE_LOG", "warn")
        .output()
        .with_context(|| format!("running {} keys create", finpulse.display()))?;
    if !out.status.success() {
        bail!("finpulse keys create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout)?.lines().last().map(str::to_string).context("finpulse keys create printed no key")
}

/// Starts `finpulse serve` on `data` on a free local port (a separate process), with an admin
/// key made first; returns it, its base URL and the key.
fn serve(finpulse: &Path, data: &Path) -> Result<(Server, String, String)> {
    let key = make_key(finpulse, data)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server(
        Command::new(finpulse)
            .args(["serve", "--data-dir", data.to_str().context("utf-8 path")?, "--listen", &format!("127.0.0.1:{port}")])
            .env("FINPULSE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", finpulse.display()))?,
    );
    Ok((server, format!("http://127.0.0.1:{port}"), key))
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn ingest_http(finpulse: &Path, scratch: &Path, batch: usize, connections: usize, seconds: u64) -> Result<()> {
    let (_server, data, base, key) = start_server(finpulse, scratch, "ingest-http")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder().default_headers(bearer(&key)?).build()?;
        wait_healthy(&client, &base).await?;
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let stop_at = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, base, next) = (client.clone(), base.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies_us = Vec::new();
                let mut body = String::with_capacity(batch * 200);
                while Instant::now() < stop_at {
                    let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                    body.clear();
                    body.push('[');
                    for i in first..first + batch as u64 {
                        if i > first {
                            body.push(',');
                        }
                        body.push_str(&payment_json(i));
                    }
                    body.push(']');
                    let sent = Instant::now();
                    let r = client.post(format!("{base}/v1/events")).header("content-type", "application/json").body(body.clone()).send().await?;
                    let status = r.status();
                    let text = r.text().await?;
                    if !status.is_success() || !text.contains(&format!("\"accepted\":{batch}")) {
                        bail!("ingest failed: {status} {text}");
                    }
                    latencies_us.push(sent.elapsed().as_micros() as u64);
                }
                Ok::<_, anyhow::Error>(latencies_us)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort_unstable();
        let events = all.len() * batch;
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
        let log_bytes: u64 = std::fs::read_dir(data.join("wal"))?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
        println!(
            "ingest-http: {events} events in {secs:.1} s = {:.0} events/s durable; batch {batch}, {connections} connections; ack latency p50 {:.1} ms, p99 {:.1} ms; log {:.1} MB/s",
            events as f64 / secs,
            pct(0.5),
            pct(0.99),
            log_bytes as f64 / secs / 1e6
        );
        Ok(())
    })
}

/// Decisions over HTTP at a fixed arrival rate, open loop over a fixed pool of connections
/// (see [`load`]).
/// Retries go back this many requests (far enough that the first has been answered).
const RETRY_DISTANCE: u64 = 1_000;

fn decide_http(finpulse: &Path, scratch: &Path, rate: u64, seconds: u64, users: u64, connections: usize, retry_every: u64) -> Result<()> {
    let (server, _data, base, key) = start_server(finpulse, scratch, "decide-http")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(wait_healthy(&reqwest::Client::new(), &base))?;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
    let total = rate * seconds;
    let (server_pid, client_pid) = (server.0.id(), std::process::id());
    let (server_before, client_before, started) = (sched::sample(server_pid), sched::sample(client_pid), Instant::now());
    let authorization = format!("Bearer {key}");
    let report = load::post_open_loop(
        addr,
        "/v1/decisions",
        &authorization,
        rate,
        total,
        connections,
        Duration::from_secs(10),
        move |request| {
            let retry = retry_every > 0 && request >= RETRY_DISTANCE && request % retry_every == 0;
            let i = if retry { request - RETRY_DISTANCE } else { request };
            format!(
                "{{\"event_id\":\"dh{i}\",\"user_id\":\"u{}\",\"ts\":{},\"type\":\"payment\",\"amount_fen\":{},\"currency\":\"CNY\",\"terminal_id\":\"t{}\"}}",
                i * 7919 % users,
                1_780_000_000_000u64 + i,
                100 + i * 7919 % 50_000,
                i % 10_000
            )
        },
    )?;
    println!(
        "decide-http: {total} decisions offered at {rate}/s over {connections} connections, answered {} in {:.1} s ({:.0}/s), {} failed{}; latency from due time p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms (target p99 <= 5 ms at 20k/s)",
        report.latencies_us.len(),
        report.secs,
        report.latencies_us.len() as f64 / report.secs,
        report.failed,
        report.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default(),
        report.quantile_ms(0.5),
        report.quantile_ms(0.99),
        report.quantile_ms(0.999)
    );
    if retry_every > 0 {
        let retries = (RETRY_DISTANCE..total).filter(|r| r % retry_every == 0).count();
        println!(
            "decide-http: {retries} of the requests were retries (every {retry_every}th sent again the transaction of {RETRY_DISTANCE} requests before)"
        );
    }
    let wall = started.elapsed();
    let mut client_after = sched::sample(client_pid);
    // The pacer has ended by now: its own reading stands in for it (it started at zero).
    client_after.extend(report.pacer.clone().map(|p| (u32::MAX, p)));
    let (server_threads, client_threads) =
        (sched::report(&server_before, &sched::sample(server_pid), wall), sched::report(&client_before, &client_after, wall));
    let worst: Vec<String> = report.worst_by_second_us.iter().map(|us| format!("{:.1}", *us as f64 / 1000.0)).collect();
    println!("decide-http: slowest answer per second of the run (ms): {}", worst.join(" "));
    println!(
        "decide-http: the client sent requests late by p50 {:.2} ms, p99 {:.2} ms (its timer and scheduling; included in the latency above)",
        report.send_lateness_quantile_ms(0.5),
        report.send_lateness_quantile_ms(0.99)
    );
    if !server_threads.is_empty() {
        println!(
            "decide-http: threads, as shares of one core over the run (waiting: runnable, but no core free): server {}; load generator {}",
            server_threads.join(", "),
            client_threads.join(", ")
        );
    }
    Ok(())
}

/// Times one query through the server, masked and in clear by turns, after one warm-up each.
fn sql_masking(finpulse: &Path, data_dir: &Path, repeat: usize, query: &str) -> Result<()> {
    let (_server, base, key) = serve(finpulse, data_dir)?;
    let client = reqwest::blocking::Client::builder().default_headers(bearer(&key)?).timeout(Duration::from_secs(600)).build()?;
    let started = Instant::now();
    // Timed once the server is up and done filling its insight caches: a query meanwhile shares
    // the cores with that, which is not what it costs a user later.
    let settled = || -> bool {
        let Ok(r) = client.get(format!("{base}/healthz")).send() else { return false };
        r.status().is_success() && r.json::<serde_json::Value>().is_ok_and(|h| h["warming"] != true)
    };
    while !settled() {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the server did not answer /healthz as settled within 600 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = serde_json::json!({ "query": query }).to_string();
    let run = |purpose: Option<&str>| -> Result<(f64, String)> {
        let mut req = client.post(format!("{base}/v1/sql")).header("content-type", "application/json").body(body.clone());
        if let Some(p) = purpose {
            req = req.header("x-purpose", p);
        }
        let t = Instant::now();
        let r = req.send()?;
        let exposure = r.headers().get("x-data-exposure").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let status = r.status();
        let text = r.text()?;
        if !status.is_success() {
            bail!("{status}: {text}");
        }
        Ok((t.elapsed().as_secs_f64(), exposure))
    };
    let purpose = Some("benchmark of masking cost");
    run(None)?;
    run(purpose)?;
    let (mut masked, mut clear) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (secs, exposure) = run(None)?;
        anyhow::ensure!(exposure == "masked", "expected a masked answer, got {exposure:?}");
        masked.push(secs);
        let (secs, exposure) = run(purpose)?;
        anyhow::ensure!(exposure == "clear", "expected an answer in clear, got {exposure:?}");
        clear.push(secs);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, c) = (median(&mut masked), median(&mut clear));
    println!(
        "sql-masking: median over {repeat} runs each through the server: masked {m:.4} s, in clear {c:.4} s, masked/clear {:.3}",
        m / c
    );
    Ok(())
}

fn sql(data_dir: &Path, repeat: usize, query: &str) -> Result<()> {
    let view = finpulse_log::EventStore::read_view(data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        let result = rt.block_on(finpulse_query::run_sql(&view, query, finpulse_query::QueryOptions::default()))?;
        times.push(started.elapsed().as_secs_f64());
        rows = result.batches.iter().map(|b| b.num_rows()).sum();
    }
    times.sort_by(f64::total_cmp);
    println!("{{\"engine\": \"finpulse\", \"median_secs\": {:.4}, \"rows\": {rows}}}", times[times.len() / 2]);
    Ok(())
}
