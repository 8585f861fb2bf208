//! `UpstreamClient` on real loopback TCP: the PROXY header is the first
//! thing on every upstream connection, written once per connection (not
//! per request), and a request of another client is refused before
//! anything is sent. A connection the upstream closed, or one still busy
//! with a response, is replaced by a new one that starts with the header
//! too. Also `write_header` on a plain `TcpStream`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use realip::outbound::{write_header, ProxyVersion, UpstreamClient, UpstreamError, UpstreamHeader};
use realip::proxy::{self, Status};
use realip::{testing, RealIp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

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

/// Both constructors: `new` (the client's own connections) and
/// `with_builder` (hyper-util's pool, private to the client).
#[tokio::test]
async fn header_once_per_connection_and_other_clients_refused() {
    for pooled in [false, true] {
        header_once_and_refusals(pooled).await;
    }
}

async fn header_once_and_refusals(pooled: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let client = real("203.0.113.9:5123");
    let header =
        UpstreamHeader::for_client(ProxyVersion::V2, &client, "10.0.0.1:443".parse().unwrap())
            .authority("example.com")
            .crc32c();
    let upstream: UpstreamClient<HttpConnector, Empty<Bytes>> = if pooled {
        let builder = Client::builder(TokioExecutor::new());
        UpstreamClient::with_builder(&builder, HttpConnector::new(), &header).unwrap()
    } else {
        UpstreamClient::new(HttpConnector::new(), &header).unwrap()
    };

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

/// What the scripted upstream saw: the PROXY source each accepted
/// connection started with.
type Accepted = tokio::sync::mpsc::UnboundedReceiver<SocketAddr>;

/// A scripted HTTP/1.1 upstream: every connection must start with one
/// PROXY header (its source is sent on the returned channel), then serves
/// requests in turn: `/close` is answered with `Connection: close` and the
/// connection closed, `/hold` with a chunked body finished only once
/// `hold` is notified, anything else with `ok`. A second PROXY header, or
/// anything but a `GET` where a request starts, fails the test.
fn scripted_upstream(listener: TcpListener, hold: Arc<Notify>) -> Accepted {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (tx, hold) = (tx.clone(), hold.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let n = loop {
                    if let Ok(Status::Complete(h, n)) = proxy::parse(&buf) {
                        tx.send(h.source().unwrap()).unwrap();
                        break n;
                    }
                    let got = s.read(&mut chunk).await.unwrap();
                    assert!(got > 0, "closed before a whole PROXY header");
                    buf.extend_from_slice(&chunk[..got]);
                };
                buf.drain(..n);
                loop {
                    while head_end(&buf).is_none() {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                assert!(buf.is_empty(), "partial request {buf:?}");
                                return;
                            }
                            Ok(got) => buf.extend_from_slice(&chunk[..got]),
                        }
                    }
                    let head: Vec<u8> = buf.drain(..head_end(&buf).unwrap()).collect();
                    assert!(
                        head.starts_with(b"GET /"),
                        "{:?}",
                        String::from_utf8_lossy(&head)
                    );
                    let path = head.split(|&b| b == b' ').nth(1).unwrap().to_vec();
                    match &path[..] {
                        b"/close" => {
                            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                                .await
                                .unwrap();
                            return;
                        }
                        b"/hold" => {
                            s.write_all(
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n",
                            )
                            .await
                            .unwrap();
                            hold.notified().await;
                            s.write_all(b"0\r\n\r\n").await.unwrap();
                        }
                        _ => s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await
                            .unwrap(),
                    }
                }
            });
        }
    });
    rx
}

fn get(to: SocketAddr, path: &str, client: &RealIp) -> http::Request<Empty<Bytes>> {
    let mut req = http::Request::get(format!("http://{to}{path}"))
        .body(Empty::new())
        .unwrap();
    req.extensions_mut().insert(client.clone());
    req
}

/// Connections accepted so far (waiting briefly for one in flight).
async fn accepted(rx: &mut Accepted, expect: usize, client: SocketAddr) -> usize {
    let mut n = 0;
    while let Ok(Some(source)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        assert_eq!(source, client, "a connection named another client");
        n += 1;
        if n == expect {
            // Any further connection arrives within the same wait.
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                n += 1;
            }
            break;
        }
    }
    n
}

/// `UpstreamClient::new`'s own connections: reused while idle, replaced by
/// a new connection (starting with the header) when the upstream closed
/// the idle one or when it is busy with a response still streaming.
#[tokio::test]
async fn closed_or_busy_connections_are_replaced_each_with_the_header() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let hold = Arc::new(Notify::new());
    let mut rx = scripted_upstream(listener, hold.clone());
    let client = real("203.0.113.9:5123");
    let source: SocketAddr = "203.0.113.9:5123".parse().unwrap();
    let header = UpstreamHeader::for_client(ProxyVersion::V2, &client, up).crc32c();
    let upstream: UpstreamClient<HttpConnector, Empty<Bytes>> =
        UpstreamClient::new(HttpConnector::new(), &header).unwrap();
    let body = |res: http::Response<hyper::body::Incoming>| async move {
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap().to_bytes()
    };

    // A URI without an authority names no upstream: refused, no connection.
    let mut relative = get(up, "/", &client);
    *relative.uri_mut() = "/".parse().unwrap();
    let err = upstream.request(relative).await.unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidRequest(_)), "{err}");
    assert_eq!(accepted(&mut rx, 0, source).await, 0);

    // Two requests, one connection; the upstream then closes it.
    for path in ["/", "/close"] {
        let res = upstream.request(get(up, path, &client)).await.unwrap();
        assert_eq!(&body(res).await[..], b"ok");
    }
    assert_eq!(accepted(&mut rx, 1, source).await, 1);
    // The next request goes on a new connection, header first.
    let res = upstream.request(get(up, "/", &client)).await.unwrap();
    assert_eq!(&body(res).await[..], b"ok");
    assert_eq!(accepted(&mut rx, 1, source).await, 1);

    // A response still streaming keeps its connection busy: the next
    // request opens another one, header first.
    let held = upstream.request(get(up, "/hold", &client)).await.unwrap();
    let res = upstream.request(get(up, "/", &client)).await.unwrap();
    assert_eq!(&body(res).await[..], b"ok");
    assert_eq!(accepted(&mut rx, 1, source).await, 1);
    hold.notify_one();
    assert_eq!(&body(held).await[..], b"hi");

    // Both are idle now: requests reuse them, no new connection.
    for _ in 0..4 {
        let res = upstream.request(get(up, "/", &client)).await.unwrap();
        assert_eq!(&body(res).await[..], b"ok");
    }
    assert_eq!(accepted(&mut rx, 0, source).await, 0);
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
