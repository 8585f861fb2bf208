//! Helpers for the `io_*` socket tests: headers written byte by byte from
//! the specification (independent of the crate's codec), an axum app that
//! echoes the address it sees, clients bound to their own 127.0.0.N.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::{extract::ConnectInfo, routing::get, Router};
use realip::io::{Incoming, ProxiedAddr, ProxyProtocolListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The 12-byte v2 signature.
pub const SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 PROXY/TCP4 header from `src` to `dst`, with `tlvs` appended.
pub fn v2(src: SocketAddrV4, dst: SocketAddrV4, tlvs: &[u8]) -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // AF_INET, STREAM
    h.extend_from_slice(&u16::try_from(12 + tlvs.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&src.ip().octets());
    h.extend_from_slice(&dst.ip().octets());
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h.extend_from_slice(tlvs);
    h
}

/// A v2 LOCAL header (what health checks send).
pub fn v2_local() -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    h
}

/// A v1 `TCP4` header line.
pub fn v1(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

pub fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

pub fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// The app every io test serves: answers
/// `peer=<socket peer> local=<this end> source=<PROXY source or ->`.
pub fn echo_app() -> Router {
    Router::new().route(
        "/",
        get(|ConnectInfo(addr): ConnectInfo<ProxiedAddr>| async move {
            let source = addr
                .proxy_source()
                .map_or_else(|| "-".to_owned(), |s| s.to_string());
            format!(
                "peer={} local={} source={}",
                addr.peer(),
                addr.local(),
                source
            )
        }),
    )
}

/// Serves [`echo_app`] over `listener` in the background; returns its address.
pub fn serve<L>(listener: ProxyProtocolListener<L>) -> SocketAddr
where
    L: Incoming,
{
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            echo_app().into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A loopback listener on a free port of 127.0.0.1.
pub async fn tcp() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Connect to `to` from `from:0` (its own source address on loopback).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    let s = sock.connect(to).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Send `prefix` then a `GET /`, read the whole answer (bounded by 5 s).
/// `None` when the server closed without an HTTP answer.
pub async fn get_with(mut s: TcpStream, prefix: &[u8]) -> Option<String> {
    let mut msg = prefix.to_vec();
    msg.extend_from_slice(GET);
    // The server may already have closed (rejected): a failed write is
    // the same outcome as no answer.
    if s.write_all(&msg).await.is_err() {
        return None;
    }
    read_answer(s).await
}

/// Read until EOF (bounded by 5 s); `None` when nothing came back.
pub async fn read_answer(mut s: TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("server neither answered nor closed within 5 s");
    if read.is_err() && out.is_empty() {
        return None; // reset
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// The body of a `200 OK` answer, panicking on anything else.
pub fn body_200(answer: Option<String>) -> String {
    let a = answer.expect("expected an HTTP answer, the server closed");
    assert!(a.starts_with("HTTP/1.1 200"), "not a 200: {a}");
    a.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

/// Waits for the server to close `s` without sending anything; returns
/// how long that took. Panics if bytes arrive or `within` passes.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> Duration {
    let start = std::time::Instant::now();
    let mut b = [0u8; 64];
    match tokio::time::timeout(within, s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => start.elapsed(),
        Ok(Ok(n)) => panic!(
            "expected a close, got {n} bytes: {:?}",
            String::from_utf8_lossy(&b[..n])
        ),
        Err(_) => panic!("connection still open after {within:?}"),
    }
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// What the crate logs, as text: written by [`captured_log`]'s subscriber.
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<u8>>>);

impl LogSink {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary, from one global subscriber installed on
/// the first call at `level` (a thread-local one can miss events whose
/// callsites other test threads registered first).
pub fn captured_log(level: tracing::Level) -> &'static LogSink {
    static SINK: OnceLock<LogSink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = LogSink::default();
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        sink
    })
}
