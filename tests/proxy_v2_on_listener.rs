//! The v2 family/transport and LOCAL rules as a listener meets them, over
//! real loopback TCP: a DGRAM header keeps the socket's endpoints, a PROXY
//! header with an unlisted family/transport byte closes the connection, a
//! LOCAL header is served whatever its family byte and body hold.

mod io_util;

use std::net::SocketAddr;

use io_util::*;
use realip::io::ProxyProtocolListener;

/// A v2 header with the given command and family/transport bytes and body.
fn raw(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend_from_slice(&[ver_cmd, fam]);
    h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// 203.0.113.9:1234 -> 10.0.0.1:80, the INET block.
const BLOCK: [u8; 12] = [203, 0, 113, 9, 10, 0, 0, 1, 0x04, 0xD2, 0, 80];

async fn server() -> SocketAddr {
    serve(ProxyProtocolListener::new(tcp().await))
}

async fn ask(addr: SocketAddr, prefix: &[u8]) -> Option<String> {
    get_with(connect_from(lo(1), addr).await, prefix).await
}

#[tokio::test]
async fn dgram_header_keeps_the_socket_endpoints() {
    let addr = server().await;
    let stream = body_200(ask(addr, &raw(0x21, 0x11, &BLOCK)).await);
    assert!(stream.ends_with(" source=203.0.113.9:1234"), "{stream}");
    let dgram = body_200(ask(addr, &raw(0x21, 0x12, &BLOCK)).await);
    assert!(dgram.starts_with("peer=127.0.0.1:"), "{dgram}");
    assert!(dgram.ends_with(" source=-"), "{dgram}");
}

#[tokio::test]
async fn unlisted_family_transport_byte_closes_the_connection() {
    let addr = server().await;
    // 0x20 (INET6, UNSPEC) once named the client [::]:0.
    for fam in [0x20u8, 0x10, 0x01] {
        assert_eq!(
            ask(addr, &raw(0x21, fam, &[0; 36])).await,
            None,
            "{fam:#04x}"
        );
    }
}

#[tokio::test]
async fn local_header_is_served_whatever_its_family_byte_and_body() {
    let addr = server().await;
    for (fam, body) in [
        (0x03u8, &[][..]),
        (0x3f, &[1, 2, 3][..]),
        (0x11, &[0xAB; 13][..]),
    ] {
        let body = body_200(ask(addr, &raw(0x20, fam, body)).await);
        assert!(body.ends_with(" source=-"), "{fam:#04x}: {body}");
    }
}
