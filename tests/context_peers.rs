//! The client context against real proxies: nginx over HTTP and
//! terminating TLS (generated certificate), two nginx tiers, haproxy with
//! a TLS frontend setting `X-Forwarded-Proto` and `option forwardfor`, and
//! haproxy in TCP mode terminating TLS with `send-proxy-v2-ssl` (the SSL
//! TLV gives `https`). Each client connects from its own 127.0.0.N and
//! forges context headers; every field the app resolved is asserted.
//!
//! Proxy source addresses are 127.0.0.200 and up; clients use
//! 127.0.0.21 to 127.0.0.39.

mod common;
mod e2e_util;

use std::net::SocketAddr;

use axum::http::Uri;
use axum::routing::get;
use axum::{Json, Router};
use common::{free_port, Curl, CurlOutput, Haproxy, Nginx, SelfSigned};
use e2e_util::{host_net, lo, tcp};
use realip::io::ProxyProtocolListener;
use realip::{BaseUrl, ClientHost, ClientScheme, HeaderSource, RealIp, RealIpLayer};
use serde_json::{json, Value};

/// An app answering with what it resolved: address, scheme, host, port,
/// prefix, where each came from, the base URL and the URI it saw.
fn app() -> Router {
    Router::new()
        .route("/", get(answer))
        .route("/{*path}", get(answer))
}

async fn answer(
    real: RealIp,
    scheme: Option<ClientScheme>,
    host: Option<ClientHost>,
    base: Option<BaseUrl>,
    uri: Uri,
) -> Json<Value> {
    let cx = real.context().expect("context on");
    // The extractors agree with the stored context.
    assert_eq!(scheme.map(|s| s.0), Some(cx.scheme()));
    assert_eq!(host.as_ref().map(|h| h.host.as_str()), cx.host());
    assert_eq!(base.map(|b| b.0), cx.base_url());
    Json(json!({
        "ip": real.ip().to_string(),
        "scheme": cx.scheme().as_str(),
        "host": cx.host(),
        "port": cx.port(),
        "prefix": cx.prefix(),
        "scheme_source": cx.scheme_source().to_string(),
        "host_source": cx.host_source().to_string(),
        "port_source": cx.port_source().to_string(),
        "stop": cx.stop().to_string(),
        "base_url": cx.base_url(),
        "uri": uri.to_string(),
    }))
}

/// Serves [`app`] with `layer`, per connection, on a plain or a PROXY
/// listener (header required from every peer).
fn serve(layer: RealIpLayer, proxied: bool) -> SocketAddr {
    let tcp = tcp();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move {
        if proxied {
            let listener = ProxyProtocolListener::new(tcp);
            axum::serve(listener, layer.into_make_service(app()))
                .await
                .unwrap();
        } else {
            axum::serve(tcp, layer.into_make_service(app()))
                .await
                .unwrap();
        }
    });
    addr
}

/// Believes `X-Forwarded-For` (and its context headers) from these proxies.
fn trust(proxies: &[u8]) -> realip::RealIpLayerBuilder {
    proxies
        .iter()
        .fold(RealIpLayer::builder(), |b, n| b.trust(host_net(lo(*n))))
        .header(HeaderSource::XForwardedFor)
        .context(true)
}

/// Headers a client forges to pass for someone else's origin.
const FORGED: &[&str] = &[
    "X-Forwarded-For: 6.6.6.6",
    "X-Forwarded-Proto: http",
    "X-Forwarded-Host: evil.example",
    "X-Forwarded-Port: 1",
    "X-Forwarded-Prefix: /evil",
];

async fn get_from(n: u8, curl: Curl) -> (Value, CurlOutput) {
    let mut curl = curl.interface(lo(n));
    for h in FORGED {
        curl = curl.header(h);
    }
    let out = curl.run_async().await;
    out.expect_status(200);
    let v: Value = serde_json::from_str(&out.text()).expect("json");
    (v, out)
}

fn nginx_tls_server(cert: &SelfSigned, port: u16) -> String {
    format!(
        "listen 127.0.0.1:{port} ssl;\n\
         \x20       ssl_certificate {};\n\
         \x20       ssl_certificate_key {};\n",
        cert.cert_path().display(),
        cert.key_path().display()
    )
}

/// nginx over plain HTTP setting `X-Forwarded-Proto $scheme`,
/// `X-Forwarded-Host $host`, `X-Forwarded-Port $server_port`: the client's
/// forged values are overwritten and the app sees nginx's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_http_sets_proto_host_port() {
    let app = serve(trust(&[201]).build().unwrap(), false);
    let port = free_port();
    let _nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{app};\n\
         \x20           proxy_bind 127.0.0.201;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20           proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20           proxy_set_header X-Forwarded-Host $host;\n\
         \x20           proxy_set_header X-Forwarded-Port $server_port;\n\
         \x20           proxy_set_header X-Forwarded-Prefix \"\";\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    ));
    let curl =
        Curl::new(format!("http://shop.example:{port}/a/b")).resolve("shop.example", port, lo(1));
    let (v, _) = get_from(21, curl).await;
    assert_eq!(v["ip"], "127.0.0.21", "{v}");
    assert_eq!(v["scheme"], "http", "{v}");
    assert_eq!(v["host"], "shop.example", "{v}");
    assert_eq!(v["port"], port, "{v}");
    assert_eq!(v["prefix"], Value::Null, "{v}");
    assert_eq!(v["scheme_source"], "header (hop 1)", "{v}");
    assert_eq!(v["host_source"], "header (hop 1)", "{v}");
    assert_eq!(v["port_source"], "header (hop 1)", "{v}");
    assert_eq!(v["stop"], "followed", "{v}");
    assert_eq!(v["base_url"], format!("http://shop.example:{port}"), "{v}");
    // The URI is left alone unless rewriting was asked for.
    assert_eq!(v["uri"], "/a/b", "{v}");
}

/// nginx terminating TLS with a generated certificate: `$scheme` is
/// `https`; with `rewrite_uri` the app's `req.uri()` is the client's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_tls_termination_gives_https() {
    let cert = SelfSigned::new("shop.example", &["shop.example"]);
    let app = serve(trust(&[202]).rewrite_uri(true).build().unwrap(), false);
    let port = free_port();
    let _nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       {}\
         \x20       location / {{\n\
         \x20           proxy_pass http://{app};\n\
         \x20           proxy_bind 127.0.0.202;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20           proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20           proxy_set_header X-Forwarded-Host $host;\n\
         \x20           proxy_set_header X-Forwarded-Port $server_port;\n\
         \x20           proxy_set_header X-Forwarded-Prefix /shop;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        nginx_tls_server(&cert, port)
    ));
    let curl = Curl::new(format!("https://shop.example:{port}/cart?x=1"))
        .resolve("shop.example", port, lo(1))
        .insecure();
    let (v, out) = get_from(22, curl).await;
    assert!(out.tls().is_some(), "curl spoke TLS");
    assert_eq!(v["ip"], "127.0.0.22", "{v}");
    assert_eq!(v["scheme"], "https", "{v}");
    assert_eq!(v["host"], "shop.example", "{v}");
    assert_eq!(v["port"], port, "{v}");
    assert_eq!(v["prefix"], "/shop", "{v}");
    assert_eq!(v["scheme_source"], "header (hop 1)", "{v}");
    assert_eq!(
        v["base_url"],
        format!("https://shop.example:{port}/shop"),
        "{v}"
    );
    assert_eq!(
        v["uri"],
        format!("https://shop.example:{port}/cart?x=1"),
        "{v}"
    );
}

/// Two nginx tiers: the outer one terminates TLS and sets the context
/// headers, the inner one appends to `X-Forwarded-For` and passes them
/// through. Both are trusted; the outer's values arrive with the step to
/// its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nginx_tiers() {
    let cert = SelfSigned::new("shop.example", &["shop.example"]);
    let app = serve(trust(&[203, 204]).build().unwrap(), false);
    let (outer, inner) = (free_port(), free_port());
    let _nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       {}\
         \x20       location / {{\n\
         \x20           proxy_pass http://127.0.0.1:{inner};\n\
         \x20           proxy_bind 127.0.0.203;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20           proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20           proxy_set_header X-Forwarded-Host $host;\n\
         \x20           proxy_set_header X-Forwarded-Port $server_port;\n\
         \x20           proxy_set_header X-Forwarded-Prefix \"\";\n\
         \x20       }}\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{inner};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{app};\n\
         \x20           proxy_bind 127.0.0.204;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        nginx_tls_server(&cert, outer)
    ));
    let curl = Curl::new(format!("https://shop.example:{outer}/"))
        .resolve("shop.example", outer, lo(1))
        .insecure();
    let (v, _) = get_from(23, curl).await;
    assert_eq!(v["ip"], "127.0.0.23", "{v}");
    assert_eq!(v["scheme"], "https", "{v}");
    assert_eq!(v["host"], "shop.example", "{v}");
    assert_eq!(v["port"], outer, "{v}");
    assert_eq!(v["prefix"], Value::Null, "{v}");
    // Hop 1 is the outer nginx (127.0.0.203), as the inner one wrote it.
    assert_eq!(v["scheme_source"], "header (hop 1)", "{v}");
    assert_eq!(v["host_source"], "header (hop 1)", "{v}");
    assert_eq!(
        v["base_url"],
        format!("https://shop.example:{outer}"),
        "{v}"
    );
}

/// haproxy TLS frontend (`mode http`), `option forwardfor` and
/// `http-request set-header X-Forwarded-Proto https if { ssl_fc }`. The
/// client's own `X-Forwarded-For` line stays ahead of haproxy's; its
/// forged proto is replaced; the host is the request's own `Host`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_tls_frontend_sets_proto() {
    let cert = SelfSigned::new("shop.example", &["shop.example"]);
    let app = serve(
        trust(&[205])
            .context_headers(
                realip::ContextHeaders::default()
                    .without(realip::resolve::Field::Host)
                    .without(realip::resolve::Field::Port)
                    .without(realip::resolve::Field::Prefix),
            )
            .build()
            .unwrap(),
        false,
    );
    let port = free_port();
    let _haproxy = Haproxy::start(&format!(
        "frontend web\n\
         \x20   mode http\n\
         \x20   bind 127.0.0.1:{port} ssl crt {crt}\n\
         \x20   option forwardfor\n\
         \x20   http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   mode http\n\
         \x20   server s1 {app} source 127.0.0.205\n",
        crt = cert.combined_path().display(),
    ));
    let curl = Curl::new(format!("https://shop.example:{port}/x"))
        .resolve("shop.example", port, lo(1))
        .insecure();
    let (v, _) = get_from(24, curl).await;
    assert_eq!(v["ip"], "127.0.0.24", "{v}");
    assert_eq!(v["scheme"], "https", "{v}");
    assert_eq!(v["scheme_source"], "header (hop 1)", "{v}");
    assert_eq!(v["host"], "shop.example", "{v}");
    assert_eq!(v["host_source"], "request", "{v}");
    assert_eq!(v["port"], port, "{v}");
    assert_eq!(v["port_source"], "request", "{v}");
    assert_eq!(v["prefix"], Value::Null, "{v}");
    assert_eq!(v["base_url"], format!("https://shop.example:{port}"), "{v}");
}

/// haproxy in TCP mode terminating TLS and sending `send-proxy-v2-ssl`:
/// the SSL TLV's client-SSL flag gives `https`; no header is trusted, so
/// the client's forged context headers are never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_tcp_send_proxy_v2_ssl_gives_https() {
    let cert = SelfSigned::new("shop.example", &["shop.example"]);
    let app = serve(RealIpLayer::builder().context(true).build().unwrap(), true);
    let port = free_port();
    let _haproxy = Haproxy::start(&format!(
        "frontend tls\n\
         \x20   bind 127.0.0.1:{port} ssl crt {crt}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server s1 {app} source 127.0.0.206 send-proxy-v2-ssl\n",
        crt = cert.combined_path().display(),
    ));
    let curl = Curl::new(format!("https://shop.example:{port}/"))
        .resolve("shop.example", port, lo(1))
        .insecure();
    let (v, out) = get_from(25, curl).await;
    let client = out.local_addr().unwrap();
    assert_eq!(v["ip"], "127.0.0.25", "{v}");
    assert_eq!(client.ip(), lo(25));
    assert_eq!(v["scheme"], "https", "{v}");
    assert_eq!(v["scheme_source"], "proxy-protocol", "{v}");
    assert_eq!(v["host"], "shop.example", "{v}");
    assert_eq!(v["host_source"], "request", "{v}");
    assert_eq!(v["port"], port, "{v}");
    assert_eq!(v["prefix"], Value::Null, "{v}");
    assert_eq!(v["base_url"], format!("https://shop.example:{port}"), "{v}");

    // The same haproxy with plain `send-proxy-v2` (no SSL TLV): `http`.
    let app = serve(RealIpLayer::builder().context(true).build().unwrap(), true);
    let port = free_port();
    let _plain = Haproxy::start(&format!(
        "frontend tls\n\
         \x20   bind 127.0.0.1:{port} ssl crt {crt}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server s1 {app} source 127.0.0.207 send-proxy-v2\n",
        crt = cert.combined_path().display(),
    ));
    let curl = Curl::new(format!("https://shop.example:{port}/"))
        .resolve("shop.example", port, lo(1))
        .insecure();
    let (v, _) = get_from(26, curl).await;
    assert_eq!(v["ip"], "127.0.0.26", "{v}");
    assert_eq!(v["scheme"], "http", "{v}");
    assert_eq!(v["scheme_source"], "connection", "{v}");
}

/// `connection_tls(true)`: a listener that terminates TLS itself starts
/// the client's scheme at `https` (no proxy involved); without it the same
/// request is `http`. A forged `X-Forwarded-Proto` from the untrusted
/// client changes neither.
#[tokio::test]
async fn connection_tls_starts_https() {
    use tower::ServiceExt;
    for (tls, want) in [(true, "https"), (false, "http")] {
        let layer = trust(&[201]).connection_tls(tls).build().unwrap();
        let req = axum::http::Request::builder()
            .uri("/x")
            .header("host", "shop.example")
            .header("x-forwarded-proto", "http")
            .body(axum::body::Body::empty())
            .unwrap();
        let req = realip::testing::with_peer(req, "127.0.0.30:5000".parse().unwrap());
        let res = app().layer(layer).oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ip"], "127.0.0.30", "{v}");
        assert_eq!(v["scheme"], want, "{v}");
        assert_eq!(v["scheme_source"], "connection", "{v}");
        assert_eq!(v["port"], if tls { 443 } else { 80 }, "{v}");
        assert_eq!(v["base_url"], format!("{want}://shop.example"), "{v}");
    }
}

/// Context is on by default with an address header (the trusted proxy's
/// `X-Forwarded-Proto` gives `https`); with `.context(false)` the address
/// still resolves through the trusted proxy, `RealIp::context()` is
/// `None`, the `Option<_>` context extractors are `None`, and the plain
/// ones reject with a `500` whose body names `.context(true)`.
#[tokio::test]
async fn context_on_by_default_and_off_rejects_naming_the_switch() {
    use axum::http::StatusCode;
    use tower::ServiceExt;
    let builder = || {
        RealIpLayer::builder()
            .trust(host_net(lo(201)))
            .header(HeaderSource::XForwardedFor)
    };
    let layer = || builder().context(false).build().unwrap();
    let request = |path: &str| {
        let req = axum::http::Request::builder()
            .uri(path)
            .header("host", "shop.example")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https")
            .body(axum::body::Body::empty())
            .unwrap();
        realip::testing::with_peer(req, "127.0.0.201:5000".parse().unwrap())
    };
    let optional = Router::new().route(
        "/",
        get(
            |real: RealIp,
             scheme: Option<ClientScheme>,
             host: Option<ClientHost>,
             base: Option<BaseUrl>| async move {
                assert!(real.context().is_none());
                assert!(scheme.is_none() && host.is_none() && base.is_none());
                real.ip().to_string()
            },
        ),
    );
    let default = Router::new()
        .route("/", get(|BaseUrl(b): BaseUrl| async move { b }))
        .layer(builder().build().unwrap());
    let res = default.oneshot(request("/")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    assert_eq!(&body[..], b"https://shop.example");
    let res = optional.layer(layer()).oneshot(request("/")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    assert_eq!(&body[..], b"203.0.113.9");
    let strict = Router::new()
        .route(
            "/scheme",
            get(|ClientScheme(s): ClientScheme| async move { s.to_string() }),
        )
        .route("/host", get(|h: ClientHost| async move { h.host }))
        .route("/base", get(|BaseUrl(b): BaseUrl| async move { b }));
    for path in ["/scheme", "/host", "/base"] {
        let res = strict
            .clone()
            .layer(layer())
            .oneshot(request(path))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("`.context(true)`"), "{path}: {text}");
    }
}
