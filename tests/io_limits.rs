//! Deadlines, size cap, partial and interrupted headers, replay, backpressure
//! and the tracing events, on real loopback sockets.

mod io_util;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use io_util::*;
use realip::io::{HandshakeError, ProxyAcceptor, ProxyProtocolListener, MIN_HEADER_TIMEOUT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

#[tokio::test]
async fn header_one_byte_per_write_arrives_intact() {
    let addr = serve(ProxyProtocolListener::new(tcp().await));
    for header in [
        v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]),
        v1(sa("203.0.113.9:1234"), sa("10.0.0.1:80")),
    ] {
        let mut s = connect_from(lo(2), addr).await;
        for b in &header {
            s.write_all(std::slice::from_ref(b)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let body = body_200(get_with(s, b"").await);
        assert!(body.starts_with("peer=127.0.0.2:"), "{body}");
        assert!(body.contains(&format!(" local={addr} ")), "{body}");
        assert!(body.ends_with(" source=203.0.113.9:1234"), "{body}");
    }
}

#[tokio::test]
async fn tokio_listener_tap_io_and_any_axum_listener_can_be_wrapped() {
    use axum::serve::ListenerExt;
    use realip::io::FromAxum;

    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let tapped = tcp().await.tap_io(|s| s.set_nodelay(true).unwrap());
    for addr in [
        serve(ProxyProtocolListener::new(tcp().await)),
        serve(ProxyProtocolListener::new(tapped)),
        serve(ProxyProtocolListener::new(FromAxum(tcp().await))),
    ] {
        let body = body_200(get_with(connect_from(lo(2), addr).await, &header).await);
        assert!(body.starts_with("peer=127.0.0.2:"), "{body}");
        assert!(body.ends_with(" source=203.0.113.9:1234"), "{body}");
    }
}

#[tokio::test]
async fn trickle_slower_than_the_deadline_is_cut() {
    let deadline = Duration::from_millis(400);
    let addr = serve(ProxyProtocolListener::new(tcp().await).header_timeout_unclamped(deadline));
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let mut s = connect_from(lo(2), addr).await;
    let start = Instant::now();
    // 28 bytes at one per 50 ms would need 1.4 s.
    let mut sent = 0;
    for b in &header {
        if s.write_all(std::slice::from_ref(b)).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if start.elapsed() > deadline + Duration::from_millis(300) {
            break;
        }
    }
    let waited = start.elapsed() + closed_within(&mut s, Duration::from_secs(2)).await;
    assert!(sent < header.len(), "whole header went through");
    assert!(waited >= deadline, "cut before the deadline: {waited:?}");
    assert!(
        waited < deadline + Duration::from_secs(1),
        "cut late: {waited:?}"
    );
}

#[tokio::test]
async fn fin_mid_header_closes_cleanly_and_others_are_served() {
    let addr = serve(ProxyProtocolListener::new(tcp().await));
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let mut s = connect_from(lo(2), addr).await;
    s.write_all(&header[..20]).await.unwrap();
    s.shutdown().await.unwrap(); // FIN
                                 // Closed promptly (not at the 5 s deadline), without an answer.
    let took = closed_within(&mut s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let body = body_200(get_with(connect_from(lo(3), addr).await, &header).await);
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
}

#[tokio::test]
async fn v2_length_over_the_cap_is_rejected_on_the_length_field() {
    // Default cap 4096: a header announcing 5000 bytes is refused as soon as
    // its 16-byte prefix is in, long before the 5 s deadline.
    let addr = serve(ProxyProtocolListener::new(tcp().await));
    let mut prefix = SIG.to_vec();
    prefix.extend_from_slice(&[0x21, 0x11]);
    prefix.extend_from_slice(&5000u16.to_be_bytes());
    let mut s = connect_from(lo(2), addr).await;
    s.write_all(&prefix).await.unwrap();
    let took = closed_within(&mut s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn complete_header_larger_than_a_small_cap_is_rejected() {
    let addr = serve(ProxyProtocolListener::new(tcp().await).max_header_len(300));
    // 400 bytes of NOOP TLV: valid, but over the 300-byte cap.
    let mut noop = vec![0x04];
    noop.extend_from_slice(&397u16.to_be_bytes());
    noop.resize(400, 0);
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &noop);
    assert!(get_with(connect_from(lo(2), addr).await, &header)
        .await
        .is_none());
    // The same header fits the default cap.
    let addr = serve(ProxyProtocolListener::new(tcp().await));
    let body = body_200(get_with(connect_from(lo(2), addr).await, &header).await);
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
}

/// Counts the bytes the acceptor pulls from a real socket.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::SeqCst);
        res
    }
}

#[tokio::test]
async fn nothing_is_read_past_the_cap() {
    let tcp = tcp().await;
    let addr = tcp.local_addr().unwrap();
    let acceptor = ProxyAcceptor::new().max_header_len(300);
    for flood in [
        // v1 signature then no CRLF, 64 KiB of it.
        {
            let mut v = b"PROXY TCP4 ".to_vec();
            v.resize(65536, b'1');
            v
        },
        // A v2 header announcing 5000 bytes, all of them sent.
        {
            let mut v = v2(sa("1.2.3.4:5"), sa("6.7.8.9:10"), &[]);
            v[14..16].copy_from_slice(&5000u16.to_be_bytes());
            v.resize(16 + 5000, 0);
            v
        },
    ] {
        let mut client = connect_from(lo(2), addr).await;
        let writer = tokio::spawn(async move {
            let _ = client.write_all(&flood).await;
            client
        });
        let (sock, peer) = tcp.accept().await.unwrap();
        let read = Arc::new(AtomicUsize::new(0));
        let res = acceptor
            .accept(
                Counting {
                    inner: sock,
                    read: read.clone(),
                },
                peer,
            )
            .await;
        assert!(res.is_err(), "a 64 KiB flood must not be a header");
        let n = read.load(Ordering::SeqCst);
        assert!(n <= 300, "read {n} bytes with a 300-byte cap");
        drop(writer);
    }
}

#[tokio::test]
async fn bytes_after_the_header_reach_the_application_untouched() {
    let tcp = tcp().await;
    let addr = tcp.local_addr().unwrap();
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut msg = header.clone();
    msg.extend_from_slice(&payload);
    let mut client = connect_from(lo(2), addr).await;
    let send = tokio::spawn(async move {
        client.write_all(&msg).await.unwrap();
        client.shutdown().await.unwrap();
        client
    });
    let (sock, peer) = tcp.accept().await.unwrap();
    let mut stream = ProxyAcceptor::new().accept(sock, peer).await.unwrap();
    assert_eq!(
        stream.proxy_header().unwrap().source(),
        Some("203.0.113.9:1234".parse().unwrap())
    );
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "replayed bytes differ");
    drop(send.await.unwrap());
}

#[tokio::test]
async fn into_inner_returns_the_unread_replay_bytes() {
    let tcp = tcp().await;
    let addr = tcp.local_addr().unwrap();
    let mut msg = v1(sa("203.0.113.9:1234"), sa("10.0.0.1:80"));
    msg.extend_from_slice(b"hello");
    let mut client = connect_from(lo(2), addr).await;
    client.write_all(&msg).await.unwrap();
    let (sock, peer) = tcp.accept().await.unwrap();
    let stream = ProxyAcceptor::new().accept(sock, peer).await.unwrap();
    let (mut sock, rest) = stream.into_inner();
    assert_eq!(rest, b"hello");
    client.write_all(b" world").await.unwrap();
    let mut more = [0u8; 6];
    sock.read_exact(&mut more).await.unwrap();
    assert_eq!(&more, b" world");
}

#[tokio::test]
async fn acceptor_reports_why() {
    let tcp = tcp().await;
    let addr = tcp.local_addr().unwrap();
    let acceptor = ProxyAcceptor::new().header_timeout_unclamped(Duration::from_millis(200));
    type Expect = fn(&HandshakeError) -> bool;
    let cases: [(&[u8], Expect); 3] = [
        (b"GET / HTTP/1.1\r\n\r\n", |e| {
            matches!(e, HandshakeError::Missing)
        }),
        (b"PROXY TCP4", |e| matches!(e, HandshakeError::Timeout(_))),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", |e| {
            matches!(e, HandshakeError::Malformed(_))
        }),
    ];
    for (bytes, expected) in cases {
        let mut client = connect_from(lo(2), addr).await;
        client.write_all(bytes).await.unwrap();
        let (sock, peer) = tcp.accept().await.unwrap();
        let err = acceptor.accept(sock, peer).await.unwrap_err();
        assert!(expected(&err), "{bytes:?}: {err:?}");
    }
}

#[test]
fn header_timeout_is_clamped_to_what_the_spec_asks() {
    assert_eq!(
        ProxyAcceptor::new()
            .header_timeout(Duration::from_millis(500))
            .timeout(),
        MIN_HEADER_TIMEOUT
    );
    assert_eq!(
        ProxyAcceptor::new()
            .header_timeout(Duration::from_secs(10))
            .timeout(),
        Duration::from_secs(10)
    );
    assert_eq!(
        ProxyAcceptor::new()
            .header_timeout_unclamped(Duration::from_millis(500))
            .timeout(),
        Duration::from_millis(500)
    );
    assert_eq!(ProxyAcceptor::new().max_header_len(10).max_len(), 232);
    assert_eq!(
        ProxyAcceptor::new().max_header_len(1 << 20).max_len(),
        16 + 65535
    );
}

#[tokio::test]
async fn full_in_flight_set_holds_new_connections_in_the_backlog() {
    let deadline = Duration::from_millis(600);
    let listener = ProxyProtocolListener::new(tcp().await)
        .header_timeout_unclamped(deadline)
        .max_in_flight(2);
    let addr = serve(listener);
    // Two silent clients fill the set.
    let mut a = connect_from(lo(2), addr).await;
    let mut b = connect_from(lo(2), addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A good client is not dropped: it waits in the backlog, and is served
    // once a slot frees (the silent ones time out).
    let start = Instant::now();
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let body = body_200(get_with(connect_from(lo(3), addr).await, &header).await);
    let waited = start.elapsed();
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
    assert!(
        waited >= deadline - Duration::from_millis(150),
        "served before a slot was free: {waited:?}"
    );
    closed_within(&mut a, Duration::from_secs(2)).await;
    closed_within(&mut b, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn rejected_and_timed_out_connections_emit_events() {
    let sink = captured_log(tracing::Level::DEBUG);

    let addr = serve(
        ProxyProtocolListener::new(tcp().await)
            .header_timeout_unclamped(Duration::from_millis(200)),
    );
    let mut silent = connect_from(lo(7), addr).await;
    let mut plain = connect_from(lo(8), addr).await;
    plain.write_all(GET).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(2)).await;
    closed_within(&mut plain, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let log = sink.text();
    let line = |ip: &str| {
        log.lines()
            .find(|l| l.contains(&format!("peer={ip}:")))
            .unwrap_or_else(|| panic!("no event for {ip} in:\n{log}"))
            .to_owned()
    };
    let timeout = line("127.0.0.7");
    assert!(timeout.contains("reason=\"timeout\""), "{timeout}");
    assert!(timeout.contains("elapsed="), "{timeout}");
    let missing = line("127.0.0.8");
    assert!(missing.contains("reason=\"missing\""), "{missing}");
    assert!(missing.contains("WARN"), "{missing}");
    assert!(missing.contains("elapsed="), "{missing}");
}

/// Waits `for_` and asserts the server neither closed `s` nor sent anything.
async fn still_open(s: &mut TcpStream, for_: Duration) {
    let mut b = [0u8; 16];
    if let Ok(r) = tokio::time::timeout(for_, s.read(&mut b)).await {
        panic!("expected the connection to stay open, read {r:?}");
    }
}

#[tokio::test]
async fn outsiders_shed_their_oldest_and_never_stall_the_balancer() {
    let listener = ProxyProtocolListener::new(tcp().await)
        .require_from(["127.0.0.1/32".parse().unwrap()])
        .header_timeout(Duration::from_secs(30))
        .max_in_flight(1)
        .max_in_flight_untrusted(2);
    let addr = serve(listener);
    let mut outsiders = Vec::new();
    for _ in 0..3 {
        outsiders.push(connect_from(lo(2), addr).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // The third closed the first; the second and third are still read.
    closed_within(&mut outsiders[0], Duration::from_secs(1)).await;
    still_open(&mut outsiders[1], Duration::from_millis(200)).await;
    still_open(&mut outsiders[2], Duration::from_millis(10)).await;
    // The balancer's budget (1) is untouched by them.
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let start = Instant::now();
    let body = body_200(get_with(connect_from(lo(1), addr).await, &header).await);
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // A fourth outsider sheds the second, oldest of those left.
    outsiders.push(connect_from(lo(2), addr).await);
    closed_within(&mut outsiders[1], Duration::from_secs(1)).await;
    still_open(&mut outsiders[2], Duration::from_millis(200)).await;
    still_open(&mut outsiders[3], Duration::from_millis(10)).await;
}

#[tokio::test]
async fn huge_header_timeouts_wait_instead_of_panicking() {
    let settings: [fn(
        ProxyProtocolListener<tokio::net::TcpListener>,
    ) -> ProxyProtocolListener<tokio::net::TcpListener>; 3] = [
        |l| l.header_timeout(Duration::MAX),
        |l| l.header_timeout_unclamped(Duration::MAX),
        |l| l.header_timeout_unclamped(Duration::from_secs(u64::MAX / 2)),
    ];
    for set in settings {
        let listener = set(ProxyProtocolListener::new(tcp().await));
        assert!(listener.proxy_acceptor().timeout() >= Duration::from_secs(u64::MAX / 2));
        let addr = serve(listener);
        let mut silent = connect_from(lo(2), addr).await;
        let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
        let body = body_200(get_with(connect_from(lo(3), addr).await, &header).await);
        assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
        still_open(&mut silent, Duration::from_millis(100)).await;
        // The accept loop is still alive after both.
        body_200(get_with(connect_from(lo(3), addr).await, &header).await);
    }
    // The acceptor on its own.
    let (mut c, s) = tokio::io::duplex(256);
    c.write_all(&v1(sa("203.0.113.9:1234"), sa("10.0.0.1:80")))
        .await
        .unwrap();
    let stream = ProxyAcceptor::new()
        .header_timeout(Duration::MAX)
        .accept(s, "10.0.0.2:1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stream.proxy_header().and_then(|h| h.source()),
        Some("203.0.113.9:1234".parse().unwrap())
    );
}

#[tokio::test]
async fn clamped_settings_tell_the_value_in_force() {
    use realip::io::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_UNTRUSTED, MIN_MAX_HEADER_LEN};
    let l = ProxyProtocolListener::new(tcp().await);
    assert_eq!(l.in_flight_limit(), DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(
        l.in_flight_untrusted_limit(),
        DEFAULT_MAX_IN_FLIGHT_UNTRUSTED
    );
    let l = l
        .max_in_flight(0)
        .max_in_flight_untrusted(0)
        .header_timeout(Duration::ZERO)
        .max_header_len(0);
    assert_eq!(l.in_flight_limit(), 1);
    assert_eq!(l.in_flight_untrusted_limit(), 1);
    assert_eq!(l.proxy_acceptor().timeout(), MIN_HEADER_TIMEOUT);
    assert_eq!(l.proxy_acceptor().max_len(), MIN_MAX_HEADER_LEN);
    // Kept through `with_handshake`.
    let l = l.with_handshake(|s, _| async move { Ok::<_, std::io::Error>(s) });
    assert_eq!((l.in_flight_limit(), l.in_flight_untrusted_limit()), (1, 1));

    // The largest budgets work: no arithmetic on them overflows.
    let listener = ProxyProtocolListener::new(tcp().await)
        .require_from(["127.0.0.1/32".parse().unwrap()])
        .max_in_flight(usize::MAX)
        .max_in_flight_untrusted(usize::MAX);
    assert_eq!(listener.in_flight_untrusted_limit(), usize::MAX);
    let addr = serve(listener);
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    for _ in 0..40 {
        body_200(get_with(connect_from(lo(1), addr).await, &header).await);
        body_200(get_with(connect_from(lo(2), addr).await, b"").await);
    }
}
