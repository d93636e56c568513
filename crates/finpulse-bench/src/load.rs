//! Open-loop HTTP load at a fixed arrival rate over a fixed pool of keep-alive HTTP/1.1
//! connections, the method of wrk2: request `i` is due at `start + i / rate`; a pacing thread
//! releases each request at its due time, and a free connection takes it and sends it. Latency counts
//! from the due time, so a server that falls behind is charged for the queueing it causes
//! (no coordinated omission), and the number of connections stays fixed however slow the
//! server gets (a client that opens a connection per late request measures its own connection
//! storm instead).
//!
//! The client speaks just enough HTTP/1.1 for this: one request per connection at a time, a
//! `Content-Length` body in each answer. The connections run on one thread and the pacer
//! (asleep between due times) on another, so the client costs the server about one core.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What a run measured.
pub struct LoadReport {
    pub sent: u64,
    pub failed: u64,
    pub secs: f64,
    /// Latency from due time to the whole answer, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The most latency of a request due in each second of the run, in microseconds.
    pub worst_by_second_us: Vec<u64>,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// How late the client sent each request after its due time (its timer and its own
    /// scheduling, not the server's), sorted, in microseconds.
    pub send_lateness_us: Vec<u64>,
    /// The pacing thread's time on a core and waiting for one, read as it ended.
    pub pacer: Option<crate::sched::ThreadTimes>,
}

impl LoadReport {
    /// The `p` quantile of latency, in milliseconds.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        quantile_ms(&self.latencies_us, p)
    }

    /// The `p` quantile of the client's send lateness, in milliseconds.
    pub fn send_lateness_quantile_ms(&self, p: f64) -> f64 {
        quantile_ms(&self.send_lateness_us, p)
    }
}

/// The `p` quantile of sorted microseconds, in milliseconds.
fn quantile_ms(l: &[u64], p: f64) -> f64 {
    if l.is_empty() {
        return f64::NAN;
    }
    l[((l.len() as f64 * p) as usize).min(l.len() - 1)] as f64 / 1000.0
}

/// Sends `total` POSTs of `body(i)` to `path` (with `authorization` as its Authorization
/// header) at `rate` per second over `connections` connections; gives up on a request after
/// `timeout`.
#[allow(clippy::too_many_arguments)]
pub fn post_open_loop(
    addr: SocketAddr,
    path: &str,
    authorization: &str,
    rate: u64,
    total: u64,
    connections: usize,
    timeout: Duration,
    body: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Result<LoadReport> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let body = Arc::new(body);
    let path: Arc<str> = path.into();
    let authorization: Arc<str> = authorization.into();
    rt.block_on(async move {
        let next = Arc::new(AtomicU64::new(0));
        let mut streams = Vec::with_capacity(connections);
        for _ in 0..connections {
            let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
            stream.set_nodelay(true)?;
            streams.push(stream);
        }
        let started = Instant::now();
        let due_requests = Arc::new(tokio::sync::Semaphore::new(0));
        let pacer = {
            let due_requests = due_requests.clone();
            std::thread::Builder::new().name("pacer".into()).spawn(move || pace(started, rate, total, connections, &due_requests))?
        };
        let mut tasks = Vec::with_capacity(connections);
        for stream in streams {
            let (next, body, path, due_requests) = (next.clone(), body.clone(), path.clone(), due_requests.clone());
            let authorization = authorization.clone();
            tasks.push(tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let (mut latencies, mut failed, mut first_error) = (Vec::new(), 0u64, None);
                let mut lateness = Vec::new();
                let mut request = Vec::new();
                loop {
                    // One permit per request due; the pacer adds one per connection at the end.
                    match due_requests.acquire().await {
                        Ok(permit) => permit.forget(),
                        Err(_) => break,
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let due = due_time(started, i, rate);
                    lateness.push(due.elapsed().as_micros() as u64);
                    let b = body(i);
                    request.clear();
                    request.extend_from_slice(
                        format!(
                            "POST {path} HTTP/1.1\r\nhost: finpulse\r\nauthorization: {authorization}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            b.len()
                        )
                        .as_bytes(),
                    );
                    request.extend_from_slice(b.as_bytes());
                    let exchange = async {
                        write.write_all(&request).await?;
                        read_response(&mut read).await
                    };
                    match tokio::time::timeout(timeout, exchange).await {
                        Ok(Ok(())) => latencies.push((i * 1_000_000_000 / rate / 1_000_000_000, due.elapsed().as_micros() as u64)),
                        Ok(Err(e)) => {
                            failed += 1;
                            first_error.get_or_insert(e.to_string());
                            // The connection's state is unknown after a failed exchange.
                            break;
                        }
                        Err(_) => {
                            failed += 1;
                            first_error.get_or_insert(format!("no answer within {timeout:?}"));
                            break;
                        }
                    }
                }
                (latencies, failed, first_error, lateness)
            }));
        }
        let mut report = LoadReport {
            sent: 0,
            failed: 0,
            secs: 0.0,
            latencies_us: Vec::new(),
            worst_by_second_us: Vec::new(),
            first_error: None,
            send_lateness_us: Vec::new(),
            pacer: None,
        };
        for t in tasks {
            let (latencies, failed, error, lateness) = t.await?;
            report.send_lateness_us.extend(lateness);
            for (second, us) in latencies {
                let second = second as usize;
                if report.worst_by_second_us.len() <= second {
                    report.worst_by_second_us.resize(second + 1, 0);
                }
                report.worst_by_second_us[second] = report.worst_by_second_us[second].max(us);
                report.latencies_us.push(us);
            }
            report.failed += failed;
            if report.first_error.is_none() {
                report.first_error = error;
            }
        }
        // Every connection is done, so the pacer has finished or has only its schedule to end.
        report.pacer = pacer.join().map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
        report.secs = started.elapsed().as_secs_f64();
        report.sent = report.latencies_us.len() as u64 + report.failed;
        report.latencies_us.sort_unstable();
        report.send_lateness_us.sort_unstable();
        Ok(report)
    })
}

/// When request `i` is due.
fn due_time(started: Instant, i: u64, rate: u64) -> Instant {
    started + Duration::from_nanos(i * 1_000_000_000 / rate)
}

/// How often the pacer wakes at most. Waking for every request (every 50 µs at 20k/s) cost
/// the client a sixth of a core, which the server it measures shares.
pub const PACER_TICK: Duration = Duration::from_micros(250);

/// Adds a permit to `due_requests` as each of `total` requests falls due, then one per
/// connection so that every connection task wakes to find nothing left. It sleeps on the OS
/// timer, waking at most every [`PACER_TICK`], so a request goes out within about that of its
/// due time; the runtime's timer ticks every 1 ms and sent requests up to a millisecond late.
/// Returns its own time on a core and waiting for one, read as it ends.
fn pace(
    started: Instant,
    rate: u64,
    total: u64,
    connections: usize,
    due_requests: &tokio::sync::Semaphore,
) -> Option<crate::sched::ThreadTimes> {
    let mut released = 0;
    while released < total {
        let now = Instant::now();
        let mut due = 0;
        while released + due < total && due_time(started, released + due, rate) <= now {
            due += 1;
        }
        if due > 0 {
            due_requests.add_permits(due as usize);
            released += due;
        }
        if released < total {
            let wake = due_time(started, released, rate).max(now + PACER_TICK);
            std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        }
    }
    due_requests.add_permits(connections);
    crate::sched::this_thread("pacer")
}

/// Reads one answer: a 2xx status line, headers, and a body of `Content-Length` bytes.
async fn read_response(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<()> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        bail!("connection closed by the server");
    }
    let status = line.split_whitespace().nth(1).context("malformed status line")?.to_string();
    let mut length = None;
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            bail!("connection closed inside the headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().context("bad content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked answers are not supported by this load generator");
            }
        }
    }
    let mut body = vec![0; length.context("answer without content-length")?];
    read.read_exact(&mut body).await?;
    if !status.starts_with('2') {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
