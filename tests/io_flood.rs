//! 1,000 silent connections cannot delay a well-behaved client, are closed
//! at their deadline, and leave no descriptor behind.
//!
//! Alone in its binary: it counts this process's open descriptors.

mod io_util;

use std::time::{Duration, Instant};

use io_util::*;
use realip::io::ProxyProtocolListener;

const SILENT: usize = 1000;
const DEADLINE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_flood_does_not_delay_a_good_client_and_is_closed_at_deadline() {
    let listener = ProxyProtocolListener::new(tcp().await).header_timeout_unclamped(DEADLINE);
    let addr = serve(listener);
    // Let the server task start before taking the baseline.
    body_200(
        get_with(
            connect_from(lo(3), addr).await,
            &v2(sa("1.1.1.1:1"), sa("2.2.2.2:2"), &[]),
        )
        .await,
    );
    let baseline = open_fds();

    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        // Timestamp before connecting: the server's deadline starts at its
        // accept, which cannot come earlier.
        let opened = Instant::now();
        silent.push((connect_from(lo(2), addr).await, opened));
    }
    let flood_ready = Instant::now();

    let start = Instant::now();
    let header = v2(sa("203.0.113.7:4242"), sa("198.51.100.1:80"), &[]);
    let body = body_200(get_with(connect_from(lo(3), addr).await, &header).await);
    let latency = start.elapsed();
    println!("good client served in {latency:?} with {SILENT} silent connections open");
    assert!(body.starts_with("peer=127.0.0.3:"), "{body}");
    assert!(body.ends_with("source=203.0.113.7:4242"), "{body}");
    assert!(
        latency < Duration::from_secs(1),
        "good client took {latency:?}"
    );
    assert!(
        flood_ready.elapsed() < DEADLINE,
        "the good client must have been served while the flood was still pending"
    );

    // Every silent connection is closed by the server, not before its
    // deadline and not long after.
    let mut waits = Vec::with_capacity(SILENT);
    for (s, opened) in &mut silent {
        closed_within(s, Duration::from_secs(5)).await;
        waits.push(opened.elapsed());
    }
    let min = *waits.iter().min().unwrap();
    let max = *waits.iter().max().unwrap();
    println!("silent connections closed after {min:?}..{max:?} (deadline {DEADLINE:?})");
    assert!(min >= DEADLINE, "closed early: {min:?}");
    assert!(
        max < DEADLINE + Duration::from_millis(1500),
        "closed late: {max:?}"
    );
    drop(silent);

    // Server side descriptors are released too.
    let wait_until = Instant::now() + Duration::from_secs(5);
    let mut now = open_fds();
    while now > baseline && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        now = open_fds();
    }
    println!("open descriptors: baseline {baseline}, after {now}");
    assert!(now <= baseline, "descriptors leaked: {baseline} -> {now}");
}
