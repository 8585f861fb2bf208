//! Helpers for the `e2e_*` tests: an axum app that answers with the JSON of
//! the client it resolved, served over a PROXY-protocol or a plain listener,
//! and raw clients bound to their own 127.0.0.N.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use realip::io::{ProxiedAddr, ProxyProtocolListener};
use realip::proxy::Version;
use realip::{ClientAddr, ClientIp, RealIp, RealIpLayer, Source};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// 127.0.0.`n`.
pub fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// `ip/32` as a trusted range.
pub fn host_net(ip: IpAddr) -> ipnet::IpNet {
    ipnet::IpNet::from(ip)
}

/// What the app saw for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The resolved client address.
    pub client_ip: IpAddr,
    /// Its port, when the deciding input carried one.
    pub client_port: Option<u16>,
    /// `socket`, `proxy_protocol` or `header:<name>`.
    pub source: String,
    /// The TCP peer of the app's socket.
    pub peer: SocketAddr,
    /// `v1`/`v2` when a PROXY header was accepted on the connection.
    pub proxy: Option<String>,
    /// Why the walk stopped (`Debug` of `Stop`).
    pub stop: String,
    /// Request path, to tell routes (and health checks) apart.
    pub path: String,
    /// The `X-Forwarded-For` lines the app received, joined with `, `.
    pub xff: Option<String>,
}

impl Seen {
    /// What a handler's extractors say about its request.
    fn from_extractors(
        ClientIp(ip): ClientIp,
        ClientAddr { ip: addr_ip, port }: ClientAddr,
        real: &RealIp,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Seen {
        assert_eq!(ip, addr_ip, "ClientIp and ClientAddr disagree");
        assert_eq!(ip, real.ip(), "ClientIp and RealIp disagree");
        let source = match real.source() {
            Source::Socket => "socket".to_owned(),
            Source::ProxyProtocol => "proxy_protocol".to_owned(),
            Source::Header(name) => format!("header:{name}"),
        };
        Seen {
            client_ip: ip,
            client_port: port,
            source,
            peer: real.peer(),
            proxy: real.proxy_header().map(|h| match h.version() {
                Version::V1 => "v1".to_owned(),
                Version::V2 => "v2".to_owned(),
            }),
            stop: format!("{:?}", real.stop()),
            path: uri.path().to_owned(),
            xff: xff_of(headers),
        }
    }

    /// The JSON the app answers with.
    pub fn to_json(&self) -> Value {
        json!({
            "client_ip": self.client_ip.to_string(),
            "client_port": self.client_port,
            "source": self.source,
            "peer": self.peer.to_string(),
            "proxy": self.proxy,
            "stop": self.stop,
            "path": self.path,
            "xff": self.xff,
        })
    }

    /// Parses the app's answer; panics (with the text) on anything else.
    pub fn parse(text: &str) -> Seen {
        let v: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("app did not answer JSON ({e}): {text:?}"));
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {text}"));
        Seen {
            client_ip: s("client_ip").parse().unwrap(),
            client_port: v["client_port"].as_u64().map(|p| u16::try_from(p).unwrap()),
            source: s("source").to_owned(),
            peer: s("peer").parse().unwrap(),
            proxy: v["proxy"].as_str().map(str::to_owned),
            stop: s("stop").to_owned(),
            path: s("path").to_owned(),
            xff: v["xff"].as_str().map(str::to_owned),
        }
    }
}

/// Every request the app answered, in order (health checks included).
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// The app under test, as a user writes it: `layer` resolves, the
/// handlers read [`ClientIp`], [`ClientAddr`] and [`RealIp`]. Every route
/// answers with the JSON of what it saw (`/ws` in a WebSocket text frame)
/// and records it in the returned log.
pub fn echo_router(layer: RealIpLayer) -> (Router, Log) {
    let (router, log) = echo_routes();
    (router.layer(layer), log)
}

/// The routes of [`echo_router`] without a layer, for
/// [`RealIpLayer::into_make_service`].
pub fn echo_routes() -> (Router, Log) {
    let log = Log::default();
    let router = Router::new()
        .route("/", get(echo))
        .route("/{*rest}", get(echo))
        .route("/ws", get(ws))
        .with_state(log.clone());
    (router, log)
}

/// One echo route at `path` with its own layer (to nest or merge).
pub fn echo_route(path: &str, layer: RealIpLayer) -> Router {
    Router::new()
        .route(path, get(echo))
        .with_state(Log::default())
        .layer(layer)
}

/// The `X-Forwarded-For` lines of a request, joined in order.
pub fn xff_of(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("<non-ascii>"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

async fn echo(
    State(log): State<Log>,
    ip: ClientIp,
    addr: ClientAddr,
    real: RealIp,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let seen = Seen::from_extractors(ip, addr, &real, &uri, &headers);
    log.lock().unwrap().push(seen.clone());
    (
        [(CONTENT_TYPE, "application/json")],
        seen.to_json().to_string(),
    )
        .into_response()
}

/// The upgrade handler sends one text frame: the JSON of what it resolved.
async fn ws(
    State(log): State<Log>,
    ip: ClientIp,
    addr: ClientAddr,
    real: RealIp,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let seen = Seen::from_extractors(ip, addr, &real, &uri, &headers);
    log.lock().unwrap().push(seen.clone());
    upgrade.on_upgrade(move |mut socket| async move {
        let text = seen.to_json().to_string();
        let _ = socket.send(Message::Text(text.into())).await;
        let _ = socket.send(Message::Close(None)).await;
    })
}

/// A loopback listener on a free port of 127.0.0.1 with a deep backlog.
pub fn tcp() -> TcpListener {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_reuseaddr(true).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    sock.listen(4096).unwrap()
}

/// Serves `app` behind a [`ProxyProtocolListener`] (header required from
/// every peer); returns its address.
pub fn serve_proxied(app: Router) -> SocketAddr {
    let listener = ProxyProtocolListener::new(tcp());
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Serves `app` with `layer.into_make_service(app)`, behind a
/// [`ProxyProtocolListener`] when `proxied` (header required from every
/// peer), else on a plain TCP listener; returns its address.
pub fn serve_made(app: Router, layer: RealIpLayer, proxied: bool) -> SocketAddr {
    let tcp = tcp();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        if proxied {
            let listener = ProxyProtocolListener::new(tcp);
            axum::serve(listener, layer.into_make_service(app))
                .await
                .unwrap();
        } else {
            axum::serve(tcp, layer.into_make_service(app))
                .await
                .unwrap();
        }
    });
    addr
}

/// Serves `app` on a plain TCP listener (no PROXY protocol); returns its address.
pub fn serve_plain(app: Router) -> SocketAddr {
    let listener = tcp();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Connect to `to` from `from:0` (its own source address on loopback).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    assert!(from.is_loopback() && to.ip().is_loopback());
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    let s = tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
        .await
        .unwrap_or_else(|_| panic!("connect {from} -> {to} timed out"))
        .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"));
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until the end of an HTTP head (`\r\n\r\n`), bounded by 5 s and
/// 16 KiB; returns the head and any bytes read past it.
pub async fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        assert!(buf.len() < 16 * 1024, "head too long");
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no HTTP head within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before the end of the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A WebSocket handshake written by hand from `from` to `to`, with
/// `extra` header lines; returns the response head and the payload of the
/// first text frame the server sent (bounded by 5 s).
pub async fn websocket_text(
    from: IpAddr,
    to: SocketAddr,
    path: &str,
    extra: &str,
) -> (String, String) {
    let mut s = connect_from(from, to).await;
    let request = format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {to}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         {extra}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let (head, mut buf) = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    // Server frames are unmasked: FIN|opcode, then a 7-bit length (or 126
    // and a 16-bit one), then the payload.
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((start, len)) = frame_bounds(&buf) {
            if buf.len() >= start + len {
                assert_eq!(buf[0], 0x81, "expected a final text frame: {buf:?}");
                let text = String::from_utf8(buf[start..start + len].to_vec()).unwrap();
                return (head, text);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no frame within 5 s")
            .expect("read frame");
        assert!(n > 0, "closed before the first frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// (payload start, payload length) of the frame at the start of `buf`,
/// once its length is known.
fn frame_bounds(buf: &[u8]) -> Option<(usize, usize)> {
    match *buf.get(1)? & 0x7f {
        126 => Some((
            4,
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        )),
        127 => panic!("unexpectedly long frame"),
        len => Some((2, usize::from(len))),
    }
}
