//! Per-source policy and malformed headers over real loopback TCP: each
//! client connects from its own 127.0.0.N.

mod io_util;

use std::net::SocketAddr;
use std::time::Duration;

use io_util::*;
use realip::io::{Mode, ProxyProtocolListener};

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

const SRC: &str = "203.0.113.9:1234";

fn header() -> Vec<u8> {
    v2(sa(SRC), sa("10.0.0.1:80"), &[])
}

/// One port, one mode per source address.
async fn policy_server() -> SocketAddr {
    serve(
        ProxyProtocolListener::new(tcp().await)
            .require_from([net("127.0.0.2/32")])
            .optional_from([net("127.0.0.3/32")])
            .ignore_from([net("127.0.0.4/32")])
            .reject_from([net("127.0.0.5/32")])
            .skip_from([net("127.0.0.6/32")])
            .otherwise(Mode::Reject)
            .header_timeout_unclamped(Duration::from_millis(500)),
    )
}

async fn ask(from: u8, addr: SocketAddr, prefix: &[u8]) -> Option<String> {
    get_with(connect_from(lo(from), addr).await, prefix).await
}

fn served(from: u8, source: &str, answer: Option<String>) {
    let body = body_200(answer);
    assert!(body.starts_with(&format!("peer=127.0.0.{from}:")), "{body}");
    assert!(body.ends_with(&format!(" source={source}")), "{body}");
}

#[tokio::test]
async fn require_uses_the_header_and_closes_without_one() {
    let addr = policy_server().await;
    served(2, SRC, ask(2, addr, &header()).await);
    served(2, SRC, ask(2, addr, &v1(sa(SRC), sa("10.0.0.1:80"))).await);
    assert_eq!(
        ask(2, addr, b"").await,
        None,
        "required but missing must close"
    );
}

#[tokio::test]
async fn optional_serves_plain_http_and_proxy_clients_on_one_port() {
    let addr = policy_server().await;
    served(3, SRC, ask(3, addr, &header()).await);
    served(3, SRC, ask(3, addr, &v1(sa(SRC), sa("10.0.0.1:80"))).await);
    served(3, "-", ask(3, addr, b"").await);
    // A health check's LOCAL header: accepted, no source.
    served(3, "-", ask(3, addr, &v2_local()).await);
}

#[tokio::test]
async fn optional_still_closes_on_a_malformed_header() {
    let addr = policy_server().await;
    let mut bad = header();
    bad[12] = 0x11; // version 1 in a v2 header
    assert_eq!(ask(3, addr, &bad).await, None);
}

#[tokio::test]
async fn ignore_drops_the_header_and_serves_with_the_socket_peer() {
    let addr = policy_server().await;
    served(4, "-", ask(4, addr, &header()).await);
    served(4, "-", ask(4, addr, b"").await);
}

#[tokio::test]
async fn reject_closes_on_a_header_and_serves_without() {
    let addr = policy_server().await;
    assert_eq!(ask(5, addr, &header()).await, None);
    assert_eq!(ask(5, addr, &v1(sa(SRC), sa("10.0.0.1:80"))).await, None);
    served(5, "-", ask(5, addr, b"").await);
}

#[tokio::test]
async fn skip_reads_nothing_so_a_header_reaches_the_application() {
    let addr = policy_server().await;
    served(6, "-", ask(6, addr, b"").await);
    // The header bytes reach hyper, which answers 400: proof they were
    // neither read nor dropped by the listener.
    let answer = ask(6, addr, &header()).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn peers_outside_every_range_get_the_fallback() {
    let addr = policy_server().await;
    // Fallback is Reject here.
    assert_eq!(ask(9, addr, &header()).await, None);
    served(9, "-", ask(9, addr, b"").await);
}

#[tokio::test]
async fn policy_fn_decides_per_peer() {
    let addr = serve(ProxyProtocolListener::new(tcp().await).policy_fn(|peer| {
        match peer.ip().to_string().as_str() {
            "127.0.0.10" => Mode::Require,
            _ => Mode::Optional,
        }
    }));
    assert_eq!(ask(10, addr, b"").await, None);
    served(10, SRC, ask(10, addr, &header()).await);
    served(11, "-", ask(11, addr, b"").await);
}

/// One example of every class of malformed header the codec knows.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let good = header();
    let with = |i: usize, b: u8| {
        let mut h = good.clone();
        h[i] = b;
        h
    };
    let with_tlvs = |tlvs: &[u8]| v2(sa(SRC), sa("10.0.0.1:80"), tlvs);
    vec![
        ("bad signature", with(11, b'X')),
        ("bad version", with(12, 0x11)),
        ("bad command", with(12, 0x2F)),
        ("bad family", with(13, 0x41)),
        ("bad transport", with(13, 0x13)),
        ("bad length", {
            let mut h = with(15, 4); // INET needs 12 address bytes
            h.truncate(16 + 4);
            h
        }),
        // A TLV announcing 10 bytes with 3 left in the header.
        ("bad TLV tiling", with_tlvs(&[0x04, 0x00, 0x0A, 0, 0, 0])),
        // A CRC32C TLV whose value is not the checksum.
        (
            "CRC mismatch",
            with_tlvs(&[0x03, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]),
        ),
        (
            "v1 bad protocol",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        ),
        (
            "v1 family mismatch",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        ),
        (
            "v1 leading zero",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        ),
        (
            "v1 port range",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n".to_vec(),
        ),
        (
            "v1 missing port",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".to_vec(),
        ),
        (
            "v1 double space",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        ),
        (
            "v1 trailing field",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".to_vec(),
        ),
        ("v1 bare LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec()),
        ("v1 no CRLF in 107 bytes", {
            let mut v = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2".to_vec();
            v.resize(120, b' ');
            v
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_class_closes_while_a_concurrent_good_client_is_served() {
    let addr = serve(ProxyProtocolListener::new(tcp().await));
    let mut bad = Vec::new();
    for (name, bytes) in malformed() {
        // Each vector really is malformed to the codec (not merely cut short).
        assert!(
            realip::proxy::parse(&bytes).is_err(),
            "{name}: codec accepts it"
        );
        bad.push(tokio::spawn(async move {
            let start = std::time::Instant::now();
            let answer = ask(2, addr, &bytes).await;
            (name, answer, start.elapsed())
        }));
    }
    served(3, SRC, ask(3, addr, &header()).await);
    for task in bad {
        let (name, answer, took) = task.await.unwrap();
        assert_eq!(answer, None, "{name}: must close without an answer");
        // Closed on the error, not at the 5 s deadline.
        assert!(
            took < Duration::from_secs(2),
            "{name}: closed after {took:?}"
        );
    }
}
