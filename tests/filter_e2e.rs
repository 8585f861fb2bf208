//! `IpFilterLayer` behind real nginx appending `X-Forwarded-For`
//! (`proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`), each
//! curl client on its own 127.0.0.N: the filter decides on the client the
//! policy resolved, never on what the client wrote.
//!
//! nginx connects from 127.0.0.21x (`proxy_bind`); clients use
//! 127.0.0.11 to 127.0.0.59, a decade per test.

mod common;
mod e2e_util;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use common::{Curl, CurlOutput, Nginx};
use e2e_util::{host_net, lo, serve_made, serve_plain};
use realip::filter::IpFilterLayer;
use realip::{ClientIp, HeaderSource, RealIpLayer};

/// `GET /` answers the resolved client; the filter guards it.
fn guarded(filter: IpFilterLayer) -> Router {
    Router::new()
        .route(
            "/",
            get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
        )
        .layer(filter)
}

fn xff_layer(trusted: &[&str], hop_cap: Option<usize>) -> RealIpLayer {
    let b = trusted
        .iter()
        .fold(RealIpLayer::builder(), |b, n| b.trust(n.parse().unwrap()))
        .header(HeaderSource::XForwardedFor);
    let b = match hop_cap {
        Some(cap) => b.hop_cap(cap),
        None => b,
    };
    b.build().unwrap()
}

/// curl from 127.0.0.`n` to `addr` with `headers`.
async fn get_from(n: u8, addr: SocketAddr, headers: &[&str]) -> CurlOutput {
    let mut curl = Curl::new(format!("http://{addr}/")).interface(lo(n));
    for h in headers {
        curl = curl.header(h);
    }
    curl.run_async().await
}

fn via(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_forging_an_allowed_address_is_denied() {
    // The app trusts nginx alone; 192.0.2.0/24 and 127.0.0.12 are allowed.
    let filter = IpFilterLayer::builder()
        .allow("192.0.2.0/24".parse().unwrap())
        .allow(host_net(lo(12)))
        .build()
        .unwrap();
    let app = serve_made(guarded(filter), xff_layer(&["127.0.0.211/32"], None), false);
    let (nginx, port) = Nginx::xff_proxy(app, lo(211));

    // nginx makes it `192.0.2.1, 127.0.0.11`: the client is 127.0.0.11.
    let forged = get_from(11, via(port), &["X-Forwarded-For: 192.0.2.1"]).await;
    forged.expect_status(403);
    assert_eq!(
        forged.text(),
        "realip: the client is in no allow range",
        "nginx log:\n{}",
        nginx.log()
    );
    // Forged as a whole chain of allowed addresses: the same.
    let chain = get_from(
        11,
        via(port),
        &["X-Forwarded-For: 192.0.2.1, 192.0.2.2, 127.0.0.12"],
    )
    .await;
    chain.expect_status(403);
    // Straight to the app, forging the header: nobody trusts the client.
    get_from(11, app, &["X-Forwarded-For: 192.0.2.1"])
        .await
        .expect_status(403);

    // The allowed client gets in, forged header or not: it is itself.
    for headers in [&[][..], &["X-Forwarded-For: 198.51.100.1"][..]] {
        let ok = get_from(12, via(port), headers).await;
        ok.expect_status(200);
        assert_eq!(ok.text(), "127.0.0.12");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_forms_of_a_denied_address_are_denied() {
    // Every loopback hop is a trusted proxy, so the curl client plays an
    // inner proxy that wrote the entry: the entry is the client.
    let deny_only = IpFilterLayer::builder()
        .deny("198.51.100.7/32".parse().unwrap())
        .build()
        .unwrap();
    let with_allow = IpFilterLayer::builder()
        .allow("198.51.100.0/24".parse().unwrap())
        .deny("198.51.100.7/32".parse().unwrap())
        .build()
        .unwrap();
    for (filter, bind) in [(deny_only, 212), (with_allow, 213)] {
        let app = serve_made(guarded(filter), xff_layer(&["127.0.0.0/8"], None), false);
        let (nginx, port) = Nginx::xff_proxy(app, lo(bind));
        for form in [
            "198.51.100.7",
            "::ffff:198.51.100.7",
            "[::ffff:198.51.100.7]:8443",
            "::ffff:c633:6407",
            "0:0:0:0:0:FFFF:198.51.100.7",
            "[0::ffff:198.51.100.7]",
        ] {
            let out = get_from(21, via(port), &[&format!("X-Forwarded-For: {form}")]).await;
            assert_eq!(out.status, 403, "{form}\nnginx log:\n{}", nginx.log());
            assert_eq!(
                out.text(),
                "realip: the client is refused by rule deny 198.51.100.7/32",
                "{form}"
            );
        }
        // Its neighbour, in mapped form, gets in and is named as IPv4.
        let ok = get_from(21, via(port), &["X-Forwarded-For: ::ffff:198.51.100.8"]).await;
        ok.expect_status(200);
        assert_eq!(ok.text(), "198.51.100.8");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_walk_is_denied_under_allow_rules() {
    // Loopback is allowed and trusted: an inconclusive walk resolves to a
    // loopback proxy, which the allow rule alone would let in.
    let allow = IpFilterLayer::builder()
        .allow("127.0.0.0/8".parse().unwrap())
        .build()
        .unwrap();
    let app = serve_made(guarded(allow), xff_layer(&["127.0.0.0/8"], Some(3)), false);
    let (nginx, port) = Nginx::xff_proxy(app, lo(214));

    // `garbage, 127.0.0.31`: the walk stops at the garbage, on 127.0.0.31.
    let malformed = get_from(31, via(port), &["X-Forwarded-For: garbage"]).await;
    assert_eq!(malformed.status, 403, "nginx log:\n{}", nginx.log());
    assert_eq!(
        malformed.text(),
        "realip: the client address could not be determined (malformed); the allow \
         rules need a conclusive one"
    );
    // Four trusted entries, hop cap 3: inconclusive too.
    let capped = get_from(
        31,
        via(port),
        &["X-Forwarded-For: 127.0.0.41, 127.0.0.42, 127.0.0.43"],
    )
    .await;
    capped.expect_status(403);
    assert!(capped.text().contains("(hop-cap)"), "{}", capped.text());
    // The same client with a well-formed chain is found, and allowed.
    let ok = get_from(31, via(port), &["X-Forwarded-For: 127.0.0.32"]).await;
    ok.expect_status(200);
    assert_eq!(ok.text(), "127.0.0.32");

    // A deny-only filter lets the inconclusive request through (its
    // address is a proxy's, and nothing is granted on it) unless told not to.
    for (strict, bind, status) in [(false, 215, 200), (true, 216, 403)] {
        let deny = IpFilterLayer::builder()
            .deny("198.51.100.0/24".parse().unwrap())
            .deny_inconclusive(strict)
            .build()
            .unwrap();
        let app = serve_made(guarded(deny), xff_layer(&["127.0.0.0/8"], None), false);
        let (_nginx, port) = Nginx::xff_proxy(app, lo(bind));
        let out = get_from(33, via(port), &["X-Forwarded-For: garbage"]).await;
        out.expect_status(status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_configurable_and_a_missing_layer_fails_closed() {
    let hidden = IpFilterLayer::builder()
        .allow("192.0.2.0/24".parse().unwrap())
        .status(http::StatusCode::NOT_FOUND)
        .build()
        .unwrap();
    let app = serve_made(guarded(hidden), xff_layer(&["127.0.0.217/32"], None), false);
    let (_nginx, port) = Nginx::xff_proxy(app, lo(217));
    let out = get_from(51, via(port), &["X-Forwarded-For: 192.0.2.1"]).await;
    out.expect_status(404);
    assert_eq!(out.text(), "realip: the client is in no allow range");

    // No RealIpLayer anywhere: 500 naming the fix, never the handler.
    let open = IpFilterLayer::builder().build().unwrap();
    let app = Router::new()
        .route("/", get(|| async { "reached" }))
        .layer(open);
    let addr = serve_plain(app);
    let out = get_from(52, addr, &[]).await;
    out.expect_status(500);
    assert!(out.text().contains("put RealIpLayer"), "{}", out.text());
}
