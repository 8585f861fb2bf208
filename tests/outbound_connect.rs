//! `UpstreamClient` on real loopback TCP: the PROXY header is the first
//! thing on every upstream connection, written once per connection (not
//! per request), and a request of another client is refused before
//! anything is sent. Also `write_header` on a plain `TcpStream`.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use realip::outbound::{write_header, ProxyVersion, UpstreamClient, UpstreamError, UpstreamHeader};
use realip::proxy::{self, Status};
use realip::{testing, RealIp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn real(addr: &str) -> RealIp {
    let req = testing::with_client_addr(http::Request::new(()), addr.parse().unwrap());
    RealIp::from_extensions(req.extensions()).unwrap().clone()
}

fn request(to: SocketAddr, client: Option<&RealIp>) -> http::Request<Empty<Bytes>> {
    let mut req = http::Request::get(format!("http://{to}/"))
        .body(Empty::new())
        .unwrap();
    if let Some(r) = client {
        req.extensions_mut().insert(r.clone());
    }
    req
}

/// The end of the first `GET` request head in `buf` (a v2 header's
/// signature holds a CRLF CRLF of its own, so the search starts at `GET `).
fn head_end(buf: &[u8]) -> Option<usize> {
    let start = buf.windows(4).position(|w| w == b"GET ")?;
    let end = buf[start..].windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(start + end + 4)
}

/// Reads until `buf` holds a whole request head.
async fn read_until_head(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    while head_end(buf).is_none() {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("request within 5 s")
            .unwrap();
        assert!(n > 0, "closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn header_once_per_connection_and_other_clients_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let client = real("203.0.113.9:5123");
    let header =
        UpstreamHeader::for_client(ProxyVersion::V2, &client, "10.0.0.1:443".parse().unwrap())
            .authority("example.com")
            .crc32c();
    let upstream: UpstreamClient<HttpConnector, Empty<Bytes>> =
        UpstreamClient::new(HttpConnector::new(), &header).unwrap();

    // Another client, and no client at all: refused, nothing connects.
    for other in [
        Some(real("198.51.100.1:5123")),
        Some(real("203.0.113.9:5124")),
        None,
    ] {
        let err = upstream
            .request(request(up, other.as_ref()))
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::OtherClient { .. }), "{err}");
    }
    let none = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(none.is_err(), "a refused request opened a connection");

    // The bound client: two requests on one kept-alive connection, the
    // header once, before the first request.
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut heads = Vec::new();
        for _ in 0..2 {
            read_until_head(&mut s, &mut buf).await;
            let end = head_end(&buf).unwrap();
            heads.push(buf.drain(..end).collect::<Vec<u8>>());
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        }
        heads
    });
    for _ in 0..2 {
        let res = upstream.request(request(up, Some(&client))).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    let heads = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    let first = &heads[0];
    let Status::Complete(h, n) = proxy::parse(first).unwrap() else {
        panic!("partial")
    };
    assert_eq!(h.source(), Some("203.0.113.9:5123".parse().unwrap()));
    assert_eq!(h.destination(), Some("10.0.0.1:443".parse().unwrap()));
    assert_eq!(h.authority(), Some(&b"example.com"[..]));
    assert!(first[n..].starts_with(b"GET / HTTP/1.1\r\n"));
    // The second request on the same connection carries no second header.
    assert!(
        heads[1].starts_with(b"GET / HTTP/1.1\r\n"),
        "{:?}",
        String::from_utf8_lossy(&heads[1])
    );
}

#[tokio::test]
async fn write_header_on_a_tcp_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let header = UpstreamHeader::new(
        ProxyVersion::V1,
        "192.0.2.7:56324".parse().unwrap(),
        "198.51.100.1:443".parse().unwrap(),
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    write_header(&mut s, &header).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    drop(s);
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nhello");
    // v1 cannot carry TLVs: an error, nothing written.
    let mut sink = Vec::new();
    let err = write_header(&mut sink, &header.clone().crc32c())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(sink.is_empty());
}
