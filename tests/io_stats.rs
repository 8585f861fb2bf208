//! `ListenerStats`: every outcome counted exactly once per event, readable
//! without a subscriber; per-connection warnings rate-limited under a
//! flood, with the count of the ones folded in.
//!
//! Alone in its binary: it installs a global subscriber and counts lines.

mod io_util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::{extract::ConnectInfo, routing::get, Router};
use io_util::*;
use realip::io::{
    ListenerStats, Mode, ProxiedAddr, ProxyAcceptor, ProxyProtocolListener, StatsSnapshot,
};
use tokio::io::AsyncWriteExt;

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn outcomes(s: &StatsSnapshot) -> u64 {
    s.accepted
        + s.no_header
        + s.missing
        + s.rejected
        + s.malformed
        + s.too_large
        + s.timed_out
        + s.closed
        + s.shed
        + s.handshake_failed
}

/// The counters once at least `connections` connections were taken and
/// every one has its outcome.
async fn settled_at(stats: &ListenerStats, connections: u64) -> StatsSnapshot {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats.snapshot();
        if s.connections >= connections && outcomes(&s) == s.connections {
            return s;
        }
        assert!(Instant::now() < until, "outcomes never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn settled(stats: &ListenerStats) -> StatsSnapshot {
    settled_at(stats, 0).await
}

/// The counters once `n` more connections than `before` have their outcome.
async fn after(stats: &ListenerStats, before: &StatsSnapshot, n: u64) -> StatsSnapshot {
    settled_at(stats, before.connections + n).await
}

fn delta(a: &StatsSnapshot, b: &StatsSnapshot) -> StatsSnapshot {
    let mut d = StatsSnapshot::default();
    d.connections = b.connections - a.connections;
    d.accepted = b.accepted - a.accepted;
    d.no_header = b.no_header - a.no_header;
    d.missing = b.missing - a.missing;
    d.rejected = b.rejected - a.rejected;
    d.malformed = b.malformed - a.malformed;
    d.too_large = b.too_large - a.too_large;
    d.timed_out = b.timed_out - a.timed_out;
    d.closed = b.closed - a.closed;
    d.shed = b.shed - a.shed;
    d.handshake_failed = b.handshake_failed - a.handshake_failed;
    d.accept_errors = b.accept_errors - a.accept_errors;
    d
}

/// One connection, one outcome: `set` names the field expected to be 1.
fn one(set: fn(&mut StatsSnapshot)) -> StatsSnapshot {
    let mut d = StatsSnapshot::default();
    d.connections = 1;
    set(&mut d);
    d
}

/// Source ports the handshake step below treats specially.
const FAIL_PORT: u16 = 7;
const SLOW_PORT: u16 = 8;

async fn stats_server() -> (SocketAddr, ListenerStats) {
    let listener = ProxyProtocolListener::new(tcp().await)
        .require_from([net("127.0.0.1/32")])
        .optional_from([net("127.0.0.3/32")])
        .ignore_from([net("127.0.0.4/32")])
        .reject_from([net("127.0.0.5/32")])
        .skip_from([net("127.0.0.6/32")])
        .header_timeout_unclamped(Duration::from_millis(300))
        .max_in_flight_untrusted(1)
        .with_handshake(|stream, addr: ProxiedAddr| async move {
            match addr.proxy_source().map(|s| s.port()) {
                Some(FAIL_PORT) => Err("refused by the test's handshake step"),
                Some(SLOW_PORT) => {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(stream)
                }
                _ => Ok(stream),
            }
        });
    let stats = listener.stats();
    let addr = listener.local_addr().unwrap();
    let app =
        Router::new().route(
            "/",
            get(|ConnectInfo(a): ConnectInfo<ProxiedAddr>| async move {
                format!("{:?}", a.proxy_source())
            }),
        );
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap()
    });
    (addr, stats)
}

fn too_large() -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    h
}

fn bad_version() -> Vec<u8> {
    let mut h = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    h[12] = 0x11;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_is_counted_once_per_event() {
    let (addr, stats) = stats_server().await;
    let good = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    type Case = (&'static str, u8, Vec<u8>, bool, fn(&mut StatsSnapshot));
    // (what, from 127.0.0.N, bytes sent, whether a 200 comes back, counter)
    let cases: Vec<Case> = vec![
        ("header", 1, good.clone(), true, |d| d.accepted = 1),
        ("LOCAL header", 3, v2_local(), true, |d| d.accepted = 1),
        ("optional, none", 3, vec![], true, |d| d.no_header = 1),
        ("ignored header", 4, good.clone(), true, |d| d.no_header = 1),
        ("reject, none", 5, vec![], true, |d| d.no_header = 1),
        ("skip", 6, vec![], true, |d| d.no_header = 1),
        ("missing", 1, vec![], false, |d| d.missing = 1),
        ("rejected", 5, good.clone(), false, |d| d.rejected = 1),
        ("malformed", 1, bad_version(), false, |d| d.malformed = 1),
        ("too large", 1, too_large(), false, |d| d.too_large = 1),
        (
            "handshake failed",
            1,
            v2(sa("203.0.113.9:7"), sa("10.0.0.1:80"), &[]),
            false,
            |d| d.handshake_failed = 1,
        ),
    ];
    for (what, from, bytes, served, counter) in cases {
        let before = settled(&stats).await;
        let answer = get_with(connect_from(lo(from), addr).await, &bytes).await;
        assert_eq!(answer.is_some(), served, "{what}: {answer:?}");
        let now = after(&stats, &before, 1).await;
        assert_eq!(delta(&before, &now), one(counter), "{what}");
    }

    // Deadlines: of the header, and of the handshake step after it.
    let before = settled(&stats).await;
    let mut silent = connect_from(lo(1), addr).await;
    closed_within(&mut silent, Duration::from_secs(2)).await;
    assert_eq!(
        delta(&before, &after(&stats, &before, 1).await),
        one(|d| d.timed_out = 1),
        "header deadline"
    );
    let before = settled(&stats).await;
    let mut slow = connect_from(lo(1), addr).await;
    slow.write_all(&v2(sa("203.0.113.9:8"), sa("10.0.0.1:80"), &[]))
        .await
        .unwrap();
    closed_within(&mut slow, Duration::from_secs(2)).await;
    assert_eq!(
        delta(&before, &after(&stats, &before, 1).await),
        one(|d| d.timed_out = 1),
        "handshake deadline"
    );

    // The peer leaves halfway through its header.
    let before = settled(&stats).await;
    let mut half = connect_from(lo(1), addr).await;
    half.write_all(&good[..10]).await.unwrap();
    drop(half);
    assert_eq!(
        delta(&before, &after(&stats, &before, 1).await),
        one(|d| d.closed = 1),
        "closed"
    );

    // Shed: the untrusted budget is 1, so a second silent outsider closes
    // the first; then the second leaves (closed).
    let before = settled(&stats).await;
    let mut first = connect_from(lo(5), addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = connect_from(lo(5), addr).await;
    closed_within(&mut first, Duration::from_secs(1)).await;
    drop(second);
    let mut want = one(|d| d.shed = 1);
    want.connections = 2;
    want.closed = 1;
    assert_eq!(
        delta(&before, &after(&stats, &before, 2).await),
        want,
        "shed"
    );
    assert_eq!(stats.snapshot().accept_errors, 0);
}

#[tokio::test]
async fn acceptor_counts_its_own_connections() {
    let acceptor = ProxyAcceptor::new().header_timeout_unclamped(Duration::from_millis(100));
    let stats = acceptor.stats();
    let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let (mut c, s) = tokio::io::duplex(256);
    c.write_all(&v1(sa("203.0.113.9:1234"), sa("10.0.0.1:80")))
        .await
        .unwrap();
    acceptor.accept(s, peer).await.unwrap();
    let (mut c2, s) = tokio::io::duplex(256);
    c2.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    acceptor.clone().accept(s, peer).await.unwrap_err();
    let (_c3, s) = tokio::io::duplex(256);
    acceptor.accept(s, peer).await.unwrap_err();
    let s = stats.snapshot();
    assert_eq!(
        (s.connections, s.accepted, s.missing, s.timed_out),
        (3, 1, 1, 1),
        "{s:?}"
    );
    assert_eq!(outcomes(&s), 3);
}

fn warn_lines(sink: &LogSink, needle: &str) -> Vec<String> {
    let log = sink.text();
    log.lines()
        .filter(|l| l.contains(" WARN ") && l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_connections_logs_one_warning_per_second() {
    let sink = captured_log(tracing::Level::INFO);
    let listener = ProxyProtocolListener::new(tcp().await)
        .require_from([net("127.0.0.1/32")])
        .otherwise(Mode::Require);
    let stats = listener.stats();
    let addr = serve(listener);
    const FLOOD: u64 = 40;
    let start = Instant::now();
    for _ in 0..FLOOD {
        assert_eq!(get_with(connect_from(lo(9), addr).await, b"").await, None);
    }
    let flood_took = start.elapsed();
    assert_eq!(settled_at(&stats, FLOOD).await.missing, FLOOD);
    let lines = warn_lines(sink, "peer=127.0.0.9:");
    if flood_took < Duration::from_millis(900) {
        assert_eq!(lines.len(), 1, "{lines:#?}");
    } else {
        // A slow host: still at most one per started second.
        assert!(
            lines.len() as u128 <= flood_took.as_millis() / 1000 + 1,
            "{lines:#?}"
        );
    }
    assert!(lines[0].contains("suppressed=0"), "{}", lines[0]);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_with(connect_from(lo(9), addr).await, b"").await, None);
    settled_at(&stats, FLOOD + 1).await;
    let lines = warn_lines(sink, "peer=127.0.0.9:");
    let folded: u64 = lines
        .iter()
        .map(|l| {
            let v = l.split("suppressed=").nth(1).unwrap();
            v.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    // Every event is either a WARN line or folded into one.
    assert_eq!(lines.len() as u64 + folded, FLOOD + 1, "{lines:#?}");
}
