//! `RealIpLayer` and the extractors through tower `oneshot`: every policy,
//! every way the peer reaches the layer, nesting, rejections, `Option`
//! extractors and the `testing` helpers. Each test asserts the exact client
//! address, port and deciding source.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use realip::proxy::{self, OwnedHeader, Status};
use realip::{
    testing, ClientAddr, ClientIp, Conclusive, HeaderSource, ProxiedAddr, RealIp, RealIpLayer,
    Source,
};
use tower::{Layer, Service, ServiceExt};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Socket => "socket".into(),
        Source::ProxyProtocol => "proxy-protocol".into(),
        Source::Header(n) => n.to_string(),
    }
}

/// `ip|port|source|stop|hops` of the whole resolution.
async fn describe(real: RealIp) -> String {
    let port = real.port().map_or("-".into(), |p| p.to_string());
    let hops: Vec<String> = real.hops().map(|h| h.to_string()).collect();
    format!(
        "{}|{}|{}|{:?}|{}",
        real.ip(),
        port,
        source_name(real.source()),
        real.stop(),
        hops.join(",")
    )
}

async fn client_ip(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

async fn client_addr(addr: ClientAddr) -> String {
    addr.to_string()
}

async fn maybe(ip: Option<ClientIp>, addr: Option<ClientAddr>, real: Option<RealIp>) -> String {
    format!(
        "{:?}|{:?}|{:?}",
        ip.map(|ClientIp(i)| i),
        addr.map(|a| a.to_string()),
        real.map(|r| r.ip())
    )
}

async fn conclusive_ip(Conclusive(ClientIp(ip)): Conclusive<ClientIp>) -> String {
    ip.to_string()
}

async fn maybe_conclusive(c: Option<Conclusive<ClientAddr>>, ip: ClientIp) -> String {
    match c {
        Some(Conclusive(addr)) => format!("conclusive {addr}"),
        None => format!("inconclusive {ip}"),
    }
}

fn app(layer: RealIpLayer) -> Router {
    routes().layer(layer)
}

fn routes() -> Router {
    Router::new()
        .route("/", get(describe))
        .route("/ip", get(client_ip))
        .route("/addr", get(client_addr))
        .route("/maybe", get(maybe))
        .route("/conclusive", get(conclusive_ip))
        .route("/maybe-conclusive", get(maybe_conclusive))
}

/// A GET to `uri` from `peer` (axum `ConnectInfo<SocketAddr>`) with headers.
fn req(uri: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = bare(uri, headers);
    r.extensions_mut().insert(ConnectInfo(sa(peer)));
    r
}

fn bare(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn call(app: Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn ok(app: Router, req: Request<Body>) -> String {
    let (status, body) = call(app, req).await;
    assert_eq!(status, StatusCode::OK, "body: {body}");
    body
}

fn header(bytes: &[u8]) -> Arc<OwnedHeader> {
    match proxy::parse(bytes).unwrap() {
        Status::Complete(h, n) => {
            assert_eq!(n, bytes.len());
            Arc::new(h.to_owned_header())
        }
        Status::Partial(_) => panic!("incomplete test header"),
    }
}

fn proxied(peer: &str, header_bytes: Option<&[u8]>) -> ProxiedAddr {
    ProxiedAddr::new(sa(peer), sa("10.0.0.1:80"), header_bytes.map(header))
}

fn xff_private() -> RealIpLayer {
    RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap()
}

const CHAIN: &str = "6.6.6.6, 203.0.113.9:5123, 10.0.0.7";

// ---- policies ---------------------------------------------------------

#[tokio::test]
async fn default_layer_trusts_no_proxy() {
    // A forged header from a direct client is ignored: the peer is the client.
    let r = req("/", "198.51.100.4:4000", &[("x-forwarded-for", "1.2.3.4")]);
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "198.51.100.4|4000|socket|UntrustedHop|198.51.100.4"
    );
    // Even a private peer is not trusted by default.
    let r = req("/", "10.0.0.2:40000", &[("x-forwarded-for", "1.2.3.4")]);
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "10.0.0.2|40000|socket|UntrustedHop|10.0.0.2"
    );
}

#[tokio::test]
async fn trusted_xff_recursive_walks_to_first_untrusted() {
    let r = req("/", "10.0.0.2:40000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(
        ok(app(xff_private()), r).await,
        "203.0.113.9|5123|x-forwarded-for|UntrustedHop|10.0.0.2,10.0.0.7,203.0.113.9"
    );
    // The same header from an untrusted peer is not read.
    let r = req("/", "198.51.100.4:4000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(
        ok(app(xff_private()), r).await,
        "198.51.100.4|4000|socket|UntrustedHop|198.51.100.4"
    );
    // Repeated lines join in order, the last line holding the nearest hop.
    let r = req(
        "/",
        "10.0.0.2:40000",
        &[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.7"),
        ],
    );
    assert_eq!(
        ok(app(xff_private()), r).await,
        "203.0.113.9|-|x-forwarded-for|UntrustedHop|10.0.0.2,10.0.0.7,203.0.113.9"
    );
    // Trusted peer without the header.
    let r = req("/", "10.0.0.2:40000", &[]);
    assert_eq!(
        ok(app(xff_private()), r).await,
        "10.0.0.2|40000|socket|HeaderAbsent|10.0.0.2"
    );
}

#[tokio::test]
async fn non_recursive_takes_one_step() {
    let layer = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .recursive(false)
        .build()
        .unwrap();
    let r = req("/", "10.0.0.2:40000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(
        ok(app(layer), r).await,
        "10.0.0.7|-|x-forwarded-for|SingleStep|10.0.0.2,10.0.0.7"
    );
}

#[tokio::test]
async fn hop_count_takes_nth_from_the_right() {
    let layer = RealIpLayer::builder()
        .trusted_hops(2)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    // Two proxies: the peer, and the one that wrote 3.3.3.3.
    let r = req(
        "/",
        "198.51.100.1:443",
        &[("x-forwarded-for", "1.1.1.1, 2.2.2.2:7, 3.3.3.3")],
    );
    assert_eq!(
        ok(app(layer.clone()), r).await,
        "2.2.2.2|7|x-forwarded-for|HopCount|198.51.100.1,3.3.3.3,2.2.2.2"
    );
    // Too short a chain fails closed to the nearest hop.
    let r = req("/", "198.51.100.1:443", &[("x-forwarded-for", "3.3.3.3")]);
    assert_eq!(
        ok(app(layer), r).await,
        "198.51.100.1|443|socket|TooShort|198.51.100.1,3.3.3.3"
    );
}

#[tokio::test]
async fn single_ip_header_only_from_trusted_peer_and_only_once() {
    let layer = RealIpLayer::builder()
        .trust("127.0.0.0/8".parse().unwrap())
        .header(HeaderSource::XRealIp)
        .build()
        .unwrap();
    let r = req("/", "127.0.0.1:5000", &[("x-real-ip", "203.0.113.77")]);
    assert_eq!(
        ok(app(layer.clone()), r).await,
        "203.0.113.77|-|x-real-ip|UntrustedHop|127.0.0.1,203.0.113.77"
    );
    let r = req("/", "192.0.2.1:5000", &[("x-real-ip", "203.0.113.77")]);
    assert_eq!(
        ok(app(layer.clone()), r).await,
        "192.0.2.1|5000|socket|UntrustedHop|192.0.2.1"
    );
    let r = req(
        "/",
        "127.0.0.1:5000",
        &[("x-real-ip", "203.0.113.77"), ("x-real-ip", "203.0.113.78")],
    );
    assert_eq!(
        ok(app(layer), r).await,
        "127.0.0.1|5000|socket|Ambiguous|127.0.0.1"
    );
}

#[tokio::test]
async fn custom_single_header() {
    let layer = RealIpLayer::builder()
        .trust_loopback()
        .header(HeaderSource::Single(http::HeaderName::from_static(
            "x-client",
        )))
        .build()
        .unwrap();
    let r = req("/", "127.0.0.1:5000", &[("x-client", "[2001:db8::5]:8443")]);
    assert_eq!(
        ok(app(layer), r).await,
        "2001:db8::5|8443|x-client|UntrustedHop|127.0.0.1,2001:db8::5"
    );
}

/// Inconclusive walks (malformed entry, ambiguous single header, hop cap,
/// too short a chain) resolve to the nearest trusted hop for `ClientIp`,
/// but `Conclusive<_>` rejects them with 400 and `Option<Conclusive<_>>`
/// gives `None`; conclusive walks pass through unchanged.
#[tokio::test]
async fn conclusive_extractor_rejects_inconclusive_walks() {
    let xff = xff_private();
    let count = RealIpLayer::builder()
        .trusted_hops(3)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let capped = RealIpLayer::builder()
        .trust_private()
        .hop_cap(2)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let real_ip = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XRealIp)
        .build()
        .unwrap();
    type Row<'a> = (RealIpLayer, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let inconclusive: Vec<Row> = vec![
        (
            xff.clone(),
            vec![("x-forwarded-for", "203.0.113.9, garbage, 10.0.0.7")],
            "10.0.0.7",
            "did not parse",
        ),
        (
            capped,
            vec![("x-forwarded-for", "203.0.113.9, 10.0.0.8, 10.0.0.7")],
            "10.0.0.8",
            "hop cap",
        ),
        (
            real_ip,
            vec![("x-real-ip", "203.0.113.9"), ("x-real-ip", "198.51.100.1")],
            "10.0.0.2",
            "more than once",
        ),
        (
            count,
            vec![("x-forwarded-for", "203.0.113.9")],
            "10.0.0.2",
            "shorter",
        ),
    ];
    for (layer, headers, nearest, why) in inconclusive {
        let r = req("/ip", "10.0.0.2:1", &headers);
        assert_eq!(ok(app(layer.clone()), r).await, nearest, "{headers:?}");
        let r = req("/conclusive", "10.0.0.2:1", &headers);
        let (status, body) = call(app(layer.clone()), r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {body}");
        assert!(body.contains(why), "{body}");
        let r = req("/maybe-conclusive", "10.0.0.2:1", &headers);
        assert_eq!(ok(app(layer), r).await, format!("inconclusive {nearest}"));
    }
    let r = req("/conclusive", "10.0.0.2:1", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(ok(app(xff.clone()), r).await, "203.0.113.9");
    let r = req(
        "/maybe-conclusive",
        "10.0.0.2:1",
        &[("x-forwarded-for", CHAIN)],
    );
    assert_eq!(ok(app(xff), r).await, "conclusive 203.0.113.9:5123");
}

/// Two address headers would let the client pick the one its proxy does
/// not overwrite: one header per layer, a second is refused at build time.
#[test]
fn a_second_address_header_is_a_config_error() {
    let err = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XRealIp)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), realip::ConfigErrorKind::SeveralHeaders);
    let msg = err.to_string();
    assert!(
        msg.contains("x-real-ip") && msg.contains("x-forwarded-for"),
        "{msg}"
    );
    assert!(msg.contains("one policy"), "names the fix: {msg}");
}

#[tokio::test]
async fn forwarded_rfc7239_with_port() {
    let layer = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::Forwarded)
        .build()
        .unwrap();
    let r = req(
        "/",
        "10.0.0.2:1",
        &[(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
        )],
    );
    assert_eq!(
        ok(app(layer), r).await,
        "2001:db8::7|4711|forwarded|UntrustedHop|10.0.0.2,10.0.0.9,2001:db8::7"
    );
}

#[tokio::test]
async fn ipv4_mapped_peer_is_normalized() {
    let r = req("/", "[::ffff:203.0.113.5]:8000", &[]);
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "203.0.113.5|8000|socket|UntrustedHop|203.0.113.5"
    );
}

// ---- PROXY protocol ---------------------------------------------------

const V1_PUBLIC: &[u8] = b"PROXY TCP4 203.0.113.50 10.0.0.1 5555 80\r\n";
const V1_PRIVATE: &[u8] = b"PROXY TCP4 10.1.1.1 10.0.0.1 6666 80\r\n";

fn with_proxied(uri: &str, addr: ProxiedAddr, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = bare(uri, headers);
    r.extensions_mut().insert(ConnectInfo(addr));
    r
}

#[tokio::test]
async fn proxy_source_replaces_the_peer() {
    let r = with_proxied(
        "/",
        proxied("10.0.0.9:34000", Some(V1_PUBLIC)),
        &[("x-forwarded-for", "1.2.3.4")],
    );
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "203.0.113.50|5555|proxy-protocol|UntrustedHop|10.0.0.9,203.0.113.50"
    );
}

#[tokio::test]
async fn proxy_source_is_the_anchor_of_the_header_walk() {
    // Trusted PROXY source (an internal LB): its XFF is believed.
    let r = with_proxied(
        "/",
        proxied("10.0.0.9:34000", Some(V1_PRIVATE)),
        &[("x-forwarded-for", "6.6.6.6, 198.51.100.7")],
    );
    assert_eq!(
        ok(app(xff_private()), r).await,
        "198.51.100.7|-|x-forwarded-for|UntrustedHop|10.0.0.9,10.1.1.1,198.51.100.7"
    );
    // Untrusted PROXY source (the client itself): its XFF is forged.
    let r = with_proxied(
        "/",
        proxied("10.0.0.9:34000", Some(V1_PUBLIC)),
        &[("x-forwarded-for", "198.51.100.7")],
    );
    assert_eq!(
        ok(app(xff_private()), r).await,
        "203.0.113.50|5555|proxy-protocol|UntrustedHop|10.0.0.9,203.0.113.50"
    );
}

#[tokio::test]
async fn proxy_local_command_keeps_the_peer_and_exposes_header() {
    // v2 LOCAL (a health check), AF_UNSPEC, no addresses.
    let mut local = proxy::v2::SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    let addr = proxied("10.0.0.9:34000", Some(&local));
    let app = Router::new()
        .route(
            "/",
            get(|real: RealIp| async move {
                let h = real.proxy_header().expect("header kept");
                format!("{}|{:?}|{:?}", real.ip(), h.command(), real.source())
            }),
        )
        .layer(RealIpLayer::new());
    assert_eq!(
        ok(app, with_proxied("/", addr, &[])).await,
        "10.0.0.9|Local|Socket"
    );
}

#[tokio::test]
async fn real_ip_exposes_v2_tlvs() {
    // v2 PROXY TCP4 192.0.2.10:1234 -> 10.0.0.1:443 with AUTHORITY + AWS VPCE TLVs.
    let mut v2 = proxy::v2::SIGNATURE.to_vec();
    let mut body = vec![192, 0, 2, 10, 10, 0, 0, 1, 0x04, 0xd2, 0x01, 0xbb];
    body.extend_from_slice(&[0x02, 0x00, 0x0b]);
    body.extend_from_slice(b"example.com");
    body.extend_from_slice(&[0xea, 0x00, 0x0d, 0x01]);
    body.extend_from_slice(b"vpce-abc1234");
    v2.extend_from_slice(&[0x21, 0x11]);
    v2.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v2.extend_from_slice(&body);
    let app = Router::new()
        .route(
            "/",
            get(|real: RealIp| async move {
                let h = real.proxy_header().unwrap().as_header();
                format!(
                    "{}|{}|{}|{}",
                    real.client_addr(),
                    source_name(real.source()),
                    String::from_utf8_lossy(h.authority().unwrap()),
                    String::from_utf8_lossy(h.aws_vpce_id().unwrap()),
                )
            }),
        )
        .layer(RealIpLayer::new());
    let r = with_proxied("/", proxied("10.0.0.9:34000", Some(&v2)), &[]);
    assert_eq!(
        ok(app, r).await,
        "192.0.2.10:1234|proxy-protocol|example.com|vpce-abc1234"
    );
}

#[tokio::test]
async fn connect_info_proxied_addr_wins_over_socket_addr() {
    let mut r = with_proxied("/", proxied("10.0.0.9:34000", Some(V1_PUBLIC)), &[]);
    r.extensions_mut().insert(ConnectInfo(sa("192.0.2.99:1")));
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "203.0.113.50|5555|proxy-protocol|UntrustedHop|10.0.0.9,203.0.113.50"
    );
}

// ---- plain extensions (hyper-util servers) ----------------------------

/// A bare `SocketAddr` extension (which any middleware may insert) is never
/// taken as the peer: the layer finds no connection info and the extractor
/// answers 500, rather than letting that value decide the client.
#[tokio::test]
async fn bare_socket_addr_extension_is_never_the_peer() {
    let mut r = bare("/", &[("x-forwarded-for", CHAIN)]);
    r.extensions_mut().insert(sa("10.0.0.2:40000"));
    let (status, body) = call(app(xff_private()), r).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("found no peer address"), "{body}");
}

#[tokio::test]
async fn plain_proxied_addr_extension() {
    let mut r = bare("/", &[]);
    r.extensions_mut()
        .insert(proxied("10.0.0.9:34000", Some(V1_PUBLIC)));
    assert_eq!(
        ok(app(RealIpLayer::new()), r).await,
        "203.0.113.50|5555|proxy-protocol|UntrustedHop|10.0.0.9,203.0.113.50"
    );
}

#[tokio::test]
async fn layer_in_a_plain_tower_stack() {
    let svc = tower::service_fn(|req: Request<()>| async move {
        let real = RealIp::from_extensions(req.extensions()).expect("layer ran");
        Ok::<_, Infallible>(real.client_addr())
    });
    let mut svc = xff_private().layer(svc);
    let mut r = Request::new(());
    r.headers_mut()
        .insert("x-forwarded-for", CHAIN.parse().unwrap());
    r.extensions_mut().insert(proxied("10.0.0.2:40000", None));
    let got = svc.ready().await.unwrap().call(r).await.unwrap();
    assert_eq!(
        got,
        ClientAddr {
            ip: ip("203.0.113.9"),
            port: Some(5123)
        }
    );
}

// ---- extractors -------------------------------------------------------

#[tokio::test]
async fn client_ip_and_client_addr() {
    let r = req("/ip", "10.0.0.2:40000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(ok(app(xff_private()), r).await, "203.0.113.9");
    let r = req("/addr", "10.0.0.2:40000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(ok(app(xff_private()), r).await, "203.0.113.9:5123");
    // No port in the deciding entry: the address alone.
    let r = req(
        "/addr",
        "10.0.0.2:40000",
        &[("x-forwarded-for", "2001:db8::9")],
    );
    assert_eq!(ok(app(xff_private()), r).await, "2001:db8::9");
    let r = req("/addr", "[2001:db8::1]:443", &[]);
    assert_eq!(ok(app(RealIpLayer::new()), r).await, "[2001:db8::1]:443");
}

#[tokio::test]
async fn missing_layer_is_a_500_naming_the_fix() {
    for path in ["/", "/ip", "/addr"] {
        let (status, body) = call(routes(), req(path, "10.0.0.2:1", &[])).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(body.contains("add RealIpLayer"), "{path}: {body}");
    }
}

#[tokio::test]
async fn missing_connect_info_is_a_500_naming_the_fix() {
    for path in ["/", "/ip", "/addr"] {
        let (status, body) = call(app(RealIpLayer::new()), bare(path, &[])).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(
            body.contains("into_make_service_with_connect_info::<ProxiedAddr>()")
                && body.contains("::<SocketAddr>()"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn option_extractors() {
    // No layer: None, not a rejection.
    let r = req("/maybe", "10.0.0.2:1", &[]);
    assert_eq!(ok(routes(), r).await, "None|None|None");
    // Layer without connect info: None too.
    let r = bare("/maybe", &[]);
    assert_eq!(ok(app(RealIpLayer::new()), r).await, "None|None|None");
    // Layer and peer: Some.
    let r = req("/maybe", "10.0.0.2:40000", &[("x-forwarded-for", CHAIN)]);
    assert_eq!(
        ok(app(xff_private()), r).await,
        "Some(203.0.113.9)|Some(\"203.0.113.9:5123\")|Some(203.0.113.9)"
    );
}

// ---- several layers ---------------------------------------------------

#[tokio::test]
async fn nested_routers_have_their_own_policy() {
    // Outer: trusts nobody. /cdn: trusts the CDN's range and CF-Connecting-IP.
    let cdn = RealIpLayer::builder()
        .trust("192.0.2.0/24".parse().unwrap())
        .header(HeaderSource::CfConnectingIp)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(describe))
        .nest("/cdn", Router::new().route("/x", get(describe)).layer(cdn))
        .layer(RealIpLayer::new());
    let h = [("cf-connecting-ip", "198.51.100.1")];
    assert_eq!(
        ok(app.clone(), req("/cdn/x", "192.0.2.5:1000", &h)).await,
        "198.51.100.1|-|cf-connecting-ip|UntrustedHop|192.0.2.5,198.51.100.1"
    );
    assert_eq!(
        ok(app, req("/", "192.0.2.5:1000", &h)).await,
        "192.0.2.5|1000|socket|UntrustedHop|192.0.2.5"
    );
}

#[tokio::test]
async fn nearest_layer_wins() {
    // Outer trusts XFF from private peers; the inner router turns it off.
    let app = Router::new()
        .route("/", get(describe))
        .nest(
            "/strict",
            Router::new()
                .route("/x", get(describe))
                .layer(RealIpLayer::new()),
        )
        .layer(xff_private());
    let h = [("x-forwarded-for", "198.51.100.3")];
    assert_eq!(
        ok(app.clone(), req("/strict/x", "10.0.0.2:1", &h)).await,
        "10.0.0.2|1|socket|UntrustedHop|10.0.0.2"
    );
    assert_eq!(
        ok(app, req("/", "10.0.0.2:1", &h)).await,
        "198.51.100.3|-|x-forwarded-for|UntrustedHop|10.0.0.2,198.51.100.3"
    );
}

#[tokio::test]
async fn merged_routers_and_route_layer() {
    let a = Router::new()
        .route("/a", get(describe))
        .route_layer(xff_private());
    let b = Router::new()
        .route("/b", get(describe))
        .layer(RealIpLayer::new());
    let app = Router::new().merge(a).merge(b);
    let h = [("x-forwarded-for", "198.51.100.3")];
    assert_eq!(
        ok(app.clone(), req("/a", "10.0.0.2:1", &h)).await,
        "198.51.100.3|-|x-forwarded-for|UntrustedHop|10.0.0.2,198.51.100.3"
    );
    assert_eq!(
        ok(app, req("/b", "10.0.0.2:1", &h)).await,
        "10.0.0.2|1|socket|UntrustedHop|10.0.0.2"
    );
}

// ---- per-connection services ------------------------------------------

/// `routes()` readied as `axum::serve` would, behind a service made for
/// one connection from `peer`.
fn per_connection<A: realip::ConnectionAddr>(
    layer: &RealIpLayer,
    conn: &A,
) -> realip::RealIpService<Router> {
    layer.layer_connection(routes().with_state(()), conn)
}

async fn ok_svc(mut svc: realip::RealIpService<Router>, req: Request<Body>) -> String {
    let res = svc.call(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    body
}

#[tokio::test]
async fn per_connection_service_resolves_from_its_connection() {
    let svc = per_connection(&xff_private(), &sa("10.0.0.2:40000"));
    assert_eq!(
        ok_svc(svc.clone(), bare("/", &[("x-forwarded-for", CHAIN)])).await,
        "203.0.113.9|5123|x-forwarded-for|UntrustedHop|10.0.0.2,10.0.0.7,203.0.113.9"
    );
    // Connection info in the request is not consulted: the connection
    // the service was made for decides.
    assert_eq!(
        ok_svc(
            svc,
            req("/", "203.0.113.66:1", &[("x-forwarded-for", CHAIN)])
        )
        .await,
        "203.0.113.9|5123|x-forwarded-for|UntrustedHop|10.0.0.2,10.0.0.7,203.0.113.9"
    );
}

#[tokio::test]
async fn per_connection_service_reads_the_proxy_header() {
    let addr = proxied(
        "10.0.0.9:34000",
        Some(b"PROXY TCP4 203.0.113.50 10.0.0.1 5555 80\r\n"),
    );
    let svc = per_connection(&RealIpLayer::new(), &addr);
    assert_eq!(
        ok_svc(svc, bare("/", &[])).await,
        "203.0.113.50|5555|proxy-protocol|UntrustedHop|10.0.0.9,203.0.113.50"
    );
}

#[tokio::test]
async fn inner_layer_under_a_per_connection_service_uses_its_own_policy() {
    // The outer service trusts nobody; /x trusts XFF from private peers,
    // reading the peer the outer service stored.
    let app = Router::new()
        .route("/", get(describe))
        .nest(
            "/in",
            Router::new()
                .route("/x", get(describe))
                .layer(xff_private()),
        )
        .with_state(());
    let h = [("x-forwarded-for", "198.51.100.3")];
    let svc = RealIpLayer::new().layer_connection(app, &sa("10.0.0.2:1"));
    assert_eq!(
        ok_svc(svc.clone(), bare("/in/x", &h)).await,
        "198.51.100.3|-|x-forwarded-for|UntrustedHop|10.0.0.2,198.51.100.3"
    );
    assert_eq!(
        ok_svc(svc, bare("/", &h)).await,
        "10.0.0.2|1|socket|UntrustedHop|10.0.0.2"
    );
}

/// The URI the handler saw and the client's scheme.
async fn uri_and_scheme(uri: http::Uri, real: RealIp) -> String {
    format!("{uri} {}", real.scheme().map_or("-", |s| s.as_str()))
}

#[tokio::test]
async fn layer_options_reach_every_service_it_makes() {
    let layer = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .connection_tls(true)
        .rewrite_uri(true)
        .build()
        .unwrap();
    let routes = || Router::new().route("/p", get(uri_and_scheme));
    let h = [("host", "shop.example"), ("x-forwarded-for", "203.0.113.7")];
    let rewritten = "https://shop.example/p?q=1 https";
    // Router::layer (the service `Layer::layer` makes, cloned per request).
    assert_eq!(
        ok(
            routes().layer(layer.clone()),
            req("/p?q=1", "10.0.0.2:5000", &h)
        )
        .await,
        rewritten
    );
    // A service for one connection, as `into_make_service` makes it.
    let svc = layer.layer_connection(routes().with_state(()), &sa("10.0.0.2:5000"));
    let res = svc.oneshot(bare("/p?q=1", &h)).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    assert_eq!(body, rewritten);
    // `RealIpService::new` takes only a policy: no TLS, the URI untouched.
    let plain = realip::RealIpService::new(routes().with_state(()), layer.policy().clone());
    let mut r = bare("/p?q=1", &h);
    r.extensions_mut().insert(ConnectInfo(sa("10.0.0.2:5000")));
    let res = plain.oneshot(r).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    assert_eq!(body, "/p?q=1 http");
}

#[tokio::test]
async fn the_presized_extension_map_holds_only_the_result() {
    // A request that arrives with no extensions gets a map with room for
    // axum's entries and ours (`roomy_extensions`); what it holds must be
    // what a fresh map would: the layer's result and nothing else.
    let inner = tower::service_fn(|req: Request<Body>| async move {
        let ext = req.extensions();
        Ok::<_, Infallible>((ext.len(), RealIp::from_extensions(ext).map(RealIp::ip)))
    });
    let svc = xff_private().layer_connection(inner, &sa("10.0.0.2:1"));
    let (len, client) = svc
        .oneshot(bare("/", &[("x-forwarded-for", "198.51.100.3")]))
        .await
        .unwrap();
    assert_eq!((len, client), (1, Some(ip("198.51.100.3"))));
}

// ---- testing helpers --------------------------------------------------

#[tokio::test]
async fn testing_with_client_ip_and_addr() {
    let r = testing::with_client_ip(bare("/addr", &[]), ip("203.0.113.1"));
    assert_eq!(ok(routes(), r).await, "203.0.113.1");
    let r = testing::with_client_addr(bare("/", &[]), sa("[2001:db8::2]:99"));
    assert_eq!(
        ok(routes(), r).await,
        "2001:db8::2|99|socket|UntrustedHop|2001:db8::2"
    );
}

#[tokio::test]
async fn testing_with_peer_runs_the_policy() {
    let r = testing::with_peer(
        bare("/", &[("x-forwarded-for", CHAIN)]),
        sa("10.0.0.2:40000"),
    );
    assert_eq!(
        ok(app(xff_private()), r).await,
        "203.0.113.9|5123|x-forwarded-for|UntrustedHop|10.0.0.2,10.0.0.7,203.0.113.9"
    );
}

#[test]
fn config_errors_surface_at_build() {
    let err = RealIpLayer::builder()
        .trust_private()
        .trusted_hops(2)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), realip::ConfigErrorKind::HopCountWithRanges);
    let err = RealIpLayer::builder().trust_private().build().unwrap_err();
    assert_eq!(err.kind(), realip::ConfigErrorKind::NoHeaderSource);
    // A policy built separately converts.
    let policy = realip::Policy::builder()
        .trust_loopback()
        .header(HeaderSource::XRealIp)
        .build()
        .unwrap();
    let layer = RealIpLayer::from(policy);
    assert!(layer.policy().trusted_proxies().contains(ip("127.0.0.1")));
}

#[tokio::test]
async fn make_service_for_a_plain_tower_service_on_a_real_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Any tower service, not only a Router, served by axum::serve.
    let svc = tower::service_fn(|req: Request<Body>| async move {
        let real = RealIp::from_extensions(req.extensions()).expect("the layer ran");
        let body = format!("{}|{}", real.ip(), real.peer().ip());
        Ok::<_, Infallible>(axum::response::IntoResponse::into_response(body))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = RealIpLayer::builder()
        .trust_loopback()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, realip::IntoMakeServiceWithRealIp::new(svc, layer)).await
    });

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.4, 127.0.0.9\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_string(&mut answer),
    )
    .await
    .expect("answered within 5 s")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\n198.51.100.4|127.0.0.1"),
        "{answer}"
    );
    server.abort();
}
