//! Load through a real haproxy `send-proxy-v2`: 2,000 connections held open
//! at once from 200 loopback sources (127.0.0.10 to 127.0.0.209), then one
//! request each, for a few rounds. Every answer must name its own sender
//! (address and port); a single mismatch or error fails the test.
//!
//! Figures (throughput, latency percentiles) are printed; run with
//! `--nocapture` to see them. They are informative, never asserted: speed
//! is shown by benches.

mod common;
mod e2e_util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Haproxy};
use e2e_util::*;
use realip::RealIpLayer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Connections open at once in each round.
const CONNECTIONS: usize = 2000;
/// Distinct client source addresses: 127.0.0.10 ..= 127.0.0.209.
const SOURCES: usize = 200;
const FIRST_SOURCE: usize = 10;
const ROUNDS: usize = 3;
/// Bound on one whole round (connect, hold, request, answer).
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one `show` command to haproxy's stats socket.
fn stats_command(sock: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connect to haproxy's stats socket");
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `Name: value` from `show info`.
fn info_value(sock: &Path, name: &str) -> u64 {
    let info = stats_command(sock, "show info");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in haproxy's show info:\n{info}"))
}

/// Current sessions of `backend/server` (`scur` in `show stat`): the
/// connections haproxy holds open towards that server.
fn server_sessions(sock: &Path, backend: &str, server: &str) -> u64 {
    let csv = stats_command(sock, "show stat");
    let mut lines = csv.lines();
    let columns: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let scur = columns
        .iter()
        .position(|c| *c == "scur")
        .expect("scur column");
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r.len() > scur && r[0] == backend && r[1] == server)
        .and_then(|r| r[scur].parse().ok())
        .unwrap_or_else(|| panic!("no {backend}/{server} scur in\n{csv}"))
}

/// The process's soft limit on open files, from `/proc/self/limits`.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files in /proc/self/limits")
}

/// One client: its source, the port it got, what the app answered, how
/// long from writing the request to the end of the answer.
struct Sample {
    from: SocketAddr,
    seen: Seen,
    latency: Duration,
}

/// Connects from `src`, holds the connection until `gate` opens, then
/// sends one request and reads the answer to the end.
async fn client(
    src: std::net::IpAddr,
    to: SocketAddr,
    connected: Arc<AtomicUsize>,
    mut gate: watch::Receiver<bool>,
) -> Result<Sample, String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("bind {src}: {e}"))?;
    let mut s = sock
        .connect(to)
        .await
        .map_err(|e| format!("connect from {src}: {e}"))?;
    let from = s.local_addr().map_err(|e| e.to_string())?;
    connected.fetch_add(1, Ordering::SeqCst);
    gate.wait_for(|open| *open)
        .await
        .map_err(|e| format!("gate: {e}"))?;

    let start = Instant::now();
    s.write_all(b"GET /load HTTP/1.1\r\nHost: app\r\n\r\n")
        .await
        .map_err(|e| format!("write from {from}: {e}"))?;
    let body = read_response(&mut s)
        .await
        .map_err(|e| format!("{from}: {e}"))?;
    let latency = start.elapsed();
    // Close with a reset: no TIME_WAIT here, and haproxy (`option
    // nolinger`) resets its side towards the app too. Thousands of
    // TIME_WAIT sockets per run would slow every later test that reads
    // the socket tables.
    let _ = s.set_zero_linger();
    drop(s);
    Ok(Sample {
        from,
        seen: Seen::parse(&body),
        latency,
    })
}

/// Reads one `200` keep-alive answer (head, then `content-length` bytes);
/// returns the body.
async fn read_response(s: &mut tokio::net::TcpStream) -> Result<String, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("not a 200: {head}"));
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length: {head}"))?;
            if buf.len() >= end + 4 + len {
                return Ok(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed mid-answer: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_clients_from_200_sources_through_haproxy_v2() {
    // This process holds both ends of every app connection plus each
    // client socket: about 2 fds per connection here (haproxy has its own).
    let limit = open_files_limit();
    let need = (CONNECTIONS * 2 + 256) as u64;
    assert!(
        limit >= need,
        "this test needs {need} open files, the soft limit is {limit}: run `ulimit -n {need}` first"
    );

    let (app, _) = echo_router(RealIpLayer::new());
    let app = serve_proxied(app);
    let hp = free_port();
    let stats_dir = tempfile::tempdir().unwrap();
    let stats = stats_dir.path().join("stats.sock");
    let haproxy = Haproxy::start_with_maxconn(
        &format!(
            "global\n\
             \x20   stats socket {stats} mode 600 level admin\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   option nolinger\n\
             \x20   timeout connect 5s\n\
             \x20   timeout client 30s\n\
             \x20   timeout server 30s\n\
             frontend nlb\n\
             \x20   bind 127.0.0.1:{hp} backlog 4096\n\
             \x20   maxconn 4200\n\
             \x20   default_backend app\n\
             backend app\n\
             \x20   server s1 {app} send-proxy-v2\n",
            stats = stats.display(),
        ),
        4200,
    );
    let maxconn = info_value(&stats, "Maxconn");
    assert!(maxconn >= CONNECTIONS as u64, "haproxy Maxconn {maxconn}");
    let to = SocketAddr::new(lo(1), hp);

    let mut latencies = Vec::with_capacity(CONNECTIONS * ROUNDS);
    let mut mismatches = Vec::new();
    let mut errors = Vec::new();
    let mut busy = Duration::ZERO;
    let mut peak_sessions = 0;
    let total_start = Instant::now();
    for round in 0..ROUNDS {
        let connected = Arc::new(AtomicUsize::new(0));
        let (open, gate) = watch::channel(false);
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let src = lo(u8::try_from(FIRST_SOURCE + i % SOURCES).unwrap());
                tokio::spawn(client(src, to, connected.clone(), gate.clone()))
            })
            .collect();

        // Hold the gate until every client is connected and haproxy has
        // all of them open towards the app at the same time.
        let held =
            tokio::time::timeout(ROUND_TIMEOUT, async {
                loop {
                    let sessions = info_value(&stats, "CurrConns");
                    if connected.load(Ordering::SeqCst) == CONNECTIONS
                        && sessions >= CONNECTIONS as u64
                    {
                        return sessions;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                "round {round}: only {} of {CONNECTIONS} clients connected, haproxy holds {}\n{}",
                connected.load(Ordering::SeqCst),
                server_sessions(&stats, "app", "s1"),
                haproxy.log().lines().rev().take(20).collect::<Vec<_>>().join("\n"),
            )
            });
        peak_sessions = peak_sessions.max(held);

        let start = Instant::now();
        open.send(true).unwrap();
        let results = tokio::time::timeout(ROUND_TIMEOUT, async {
            let mut results = Vec::with_capacity(CONNECTIONS);
            for c in clients {
                results.push(c.await.unwrap_or_else(|e| Err(format!("task: {e}"))));
            }
            results
        })
        .await
        .unwrap_or_else(|_| panic!("round {round} did not finish within {ROUND_TIMEOUT:?}"));
        busy += start.elapsed();

        for r in results {
            match r {
                Ok(s) => {
                    if s.seen.client_ip != s.from.ip()
                        || s.seen.client_port != Some(s.from.port())
                        || s.seen.source != "proxy_protocol"
                    {
                        mismatches.push(format!("{} saw {:?}", s.from, s.seen));
                    }
                    latencies.push(s.latency);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    let total = total_start.elapsed();

    latencies.sort();
    let answered = latencies.len();
    println!(
        "e2e_load: {ROUNDS} rounds x {CONNECTIONS} concurrent connections from {SOURCES} \
         sources through haproxy send-proxy-v2 (peak {peak_sessions} held at once)"
    );
    println!(
        "e2e_load: {answered} answers, {} mismatches, {} errors, {:.0} req/s while requests \
         were in flight, {:.0} req/s overall (connects included) in {total:.2?}",
        mismatches.len(),
        errors.len(),
        answered as f64 / busy.as_secs_f64(),
        answered as f64 / total.as_secs_f64(),
    );
    if answered > 0 {
        println!(
            "e2e_load: latency (request written -> answer read) p50 {:.2?} p90 {:.2?} \
             p99 {:.2?} max {:.2?}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
            latencies[answered - 1],
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} answers named someone else, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    assert!(
        errors.is_empty(),
        "{} clients failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(answered, CONNECTIONS * ROUNDS);
}
