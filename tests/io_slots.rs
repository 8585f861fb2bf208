//! Silent connections from outside the PROXY ranges cannot take the
//! handshake slots of the load balancer: 3,000 of them held open from
//! 127.0.0.2 while a client from 127.0.0.1 (the `require_from` range) is
//! served promptly, 20 times in a row, and every descriptor comes back.
//!
//! Alone in its binary: it counts this process's open descriptors.

mod io_util;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use io_util::*;
use realip::io::{ProxyProtocolListener, DEFAULT_MAX_IN_FLIGHT};

const SILENT: usize = 3000;
const GOOD_ROUNDS: usize = 20;
const GOOD_WITHIN: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(30);

/// Descriptors this test needs: the silent clients, the server's ends of
/// the connections it holds, and slack for the runtime.
const FDS_NEEDED: u64 = (SILENT + 2 * DEFAULT_MAX_IN_FLIGHT + 512) as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_outsiders_cannot_delay_the_load_balancer() {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if soft < FDS_NEEDED {
        assert!(
            hard >= FDS_NEEDED,
            "RLIMIT_NOFILE hard limit {hard} < {FDS_NEEDED}: raise it (ulimit -Hn)"
        );
        rlimit::setrlimit(rlimit::Resource::NOFILE, FDS_NEEDED, hard).unwrap();
    }

    // Default budgets; a deadline the flood outlives, so no slot frees by
    // itself while the good client is tried.
    let listener = ProxyProtocolListener::new(tcp().await)
        .require_from(["127.0.0.1/32".parse().unwrap()])
        .header_timeout(DEADLINE);
    let stats = listener.stats();
    let addr = serve(listener);
    let header = v2(sa("203.0.113.7:4242"), sa("198.51.100.1:80"), &[]);
    // Let the server task start before taking the baseline.
    body_200(get_with(connect_from(lo(1), addr).await, &header).await);
    let baseline = open_fds();

    let silent = open_many(SILENT, lo(2), addr).await;
    let flood_ready = Instant::now();

    let mut latencies = Vec::with_capacity(GOOD_ROUNDS);
    for round in 0..GOOD_ROUNDS {
        let start = Instant::now();
        let body = body_200(get_with(connect_from(lo(1), addr).await, &header).await);
        let latency = start.elapsed();
        assert!(body.starts_with("peer=127.0.0.1:"), "{body}");
        assert!(body.ends_with("source=203.0.113.7:4242"), "{body}");
        assert!(
            latency < GOOD_WITHIN,
            "round {round}: good client took {latency:?} with {SILENT} silent connections open"
        );
        latencies.push(latency);
    }
    latencies.sort();
    println!(
        "good client with {SILENT} silent outsiders open: median {:?}, max {:?} over {GOOD_ROUNDS} rounds",
        latencies[GOOD_ROUNDS / 2],
        latencies[GOOD_ROUNDS - 1]
    );
    assert!(
        flood_ready.elapsed() < DEADLINE,
        "the flood must still be within its deadline while the good client is served"
    );
    let snap = stats.snapshot();
    println!("{snap:?}");
    assert!(
        snap.shed >= (SILENT - DEFAULT_MAX_IN_FLIGHT) as u64,
        "the oldest outsiders must have been shed to stay in budget: {snap:?}"
    );

    drop(silent);
    // Every server-side descriptor is released.
    let wait_until = Instant::now() + Duration::from_secs(5);
    let mut now = open_fds();
    while now > baseline && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        now = open_fds();
    }
    println!("open descriptors: baseline {baseline}, after {now}");
    assert!(now <= baseline, "descriptors leaked: {baseline} -> {now}");
}

/// `n` connections from `from` to `to`, opened up to 64 at a time.
async fn open_many(n: usize, from: IpAddr, to: SocketAddr) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..n {
        if pending.len() == 64 {
            out.push(pending.join_next().await.unwrap().unwrap());
        }
        pending.spawn(connect_from(from, to));
    }
    while let Some(s) = pending.join_next().await {
        out.push(s.unwrap());
    }
    out
}
