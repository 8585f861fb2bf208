//! A burst through haproxy `send-proxy-v2`: 2,000 client connections open
//! at once (haproxy opens one to the listener for each), are held idle,
//! then all send a request together. Every request is answered, and the
//! kernel reports no accept-queue overflow (`TcpExtListenOverflows`).
//!
//! The overflow counter is per network namespace: anything else
//! overflowing a listen queue on this host during the test (another test
//! binary, a stalled server) counts too, so run it alone when it fails.

mod common;
mod io_util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::net::{listen_backlog, listen_overflows};
use common::Haproxy;
use io_util::*;
use realip::io::ProxyProtocolListener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

const CONNS: usize = 2000;
const ROUNDS: usize = 10;
const FDS_NEEDED: u64 = (3 * CONNS + 512) as u64;

/// One client: connect, wait for everyone, send a request, read the whole
/// answer. `Err` says what went wrong.
async fn client(to: SocketAddr, ready: Arc<Barrier>, go: Arc<Barrier>) -> Result<(), String> {
    let connected = TcpStream::connect(to).await;
    ready.wait().await;
    let mut s = connected.map_err(|e| format!("connect: {e}"))?;
    go.wait().await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let read = async {
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!("closed after {:?}", String::from_utf8_lossy(&buf)));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("no content-length: {head}"))?;
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]);
                    if !head.starts_with("http/1.1 200") || !body.contains("source=127.0.0.1:") {
                        return Err(format!("{head} / {body}"));
                    }
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .map_err(|_| "no answer within 20 s".to_owned())?
}

#[test]
fn burst_through_haproxy_send_proxy_v2_loses_nothing() {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if soft < FDS_NEEDED {
        assert!(
            hard >= FDS_NEEDED,
            "RLIMIT_NOFILE hard limit {hard} < {FDS_NEEDED}: raise it (ulimit -Hn)"
        );
        rlimit::setrlimit(rlimit::Resource::NOFILE, FDS_NEEDED, hard).unwrap();
    }

    // The server on its own runtime, as it would be in its own process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, stats) = server_rt.block_on(async {
        let tcp = realip::io::bind("127.0.0.1:0").await.unwrap();
        let listener =
            ProxyProtocolListener::new(tcp).require_from(["127.0.0.1/32".parse().unwrap()]);
        let stats = listener.stats();
        (serve(listener), stats)
    });
    let backlog = listen_backlog(addr);
    println!(
        "listener backlog {backlog} (somaxconn {})",
        realip::io::max_backlog()
    );
    assert_eq!(backlog, realip::io::max_backlog());

    let hp_port = common::free_port();
    let haproxy = Haproxy::start_with_maxconn(
        &format!(
            "frontend fe\n\
             \x20   bind 127.0.0.1:{hp_port}\n\
             \x20   maxconn {max}\n\
             \x20   backlog {max}\n\
             \x20   default_backend be\n\
             backend be\n\
             \x20   server app {addr} send-proxy-v2 maxconn {max}\n",
            max = 2 * CONNS
        ),
        (3 * CONNS) as u32,
    );
    let hp: SocketAddr = ([127, 0, 0, 1], hp_port).into();

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let overflows_before = listen_overflows();
    let mut errors = Vec::new();
    for round in 0..ROUNDS {
        let round_errors: Vec<String> = client_rt.block_on(async {
            let ready = Arc::new(Barrier::new(CONNS + 1));
            let go = Arc::new(Barrier::new(CONNS + 1));
            let tasks: Vec<_> = (0..CONNS)
                .map(|_| tokio::spawn(client(hp, ready.clone(), go.clone())))
                .collect();
            ready.wait().await;
            // Held idle: haproxy has opened its connections to the listener.
            tokio::time::sleep(Duration::from_millis(300)).await;
            go.wait().await;
            let mut errs = Vec::new();
            for t in tasks {
                if let Err(e) = t.await.unwrap() {
                    errs.push(e);
                }
            }
            errs
        });
        println!(
            "round {round}: {} errors, overflows so far {}",
            round_errors.len(),
            listen_overflows() - overflows_before
        );
        errors.extend(round_errors);
    }
    let overflows = listen_overflows() - overflows_before;
    println!(
        "{ROUNDS} rounds of {CONNS} in {:?}: {} errors, {overflows} listen overflows; {:?}",
        start.elapsed(),
        errors.len(),
        stats.snapshot()
    );
    errors.sort();
    errors.dedup();
    assert!(
        errors.is_empty(),
        "{} distinct errors, e.g. {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        haproxy
            .log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(overflows, 0, "the kernel's accept queue overflowed");
    assert_eq!(stats.snapshot().accepted, (ROUNDS * CONNS) as u64);
    drop(haproxy);
}
