//! `tower_governor` keyed by `RealIpKeyExtractor`, behind real nginx: a
//! client's bucket is the client the policy resolved, whatever it writes in
//! its headers, and IPv6 clients share one bucket per /64.
//!
//! Every limit here is a burst of 3 refilled once a minute, so no token
//! comes back while a test runs. nginx connects from 127.0.0.22x
//! (`proxy_bind`); clients use 127.0.0.61 to 127.0.0.89.

mod common;
mod e2e_util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::{free_port, Curl, CurlOutput, Nginx};
use e2e_util::{lo, serve_made};
use realip::governor::RealIpKeyExtractor;
use realip::{ClientIp, HeaderSource, RealIpLayer};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{KeyExtractor, SmartIpKeyExtractor};
use tower_governor::GovernorLayer;

const BURST: u32 = 3;

/// `GET /` answers the resolved client, behind a governor keyed by `key`.
fn governed<K>(key: K) -> Router
where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync,
{
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_secs(60))
        .burst_size(BURST)
        .key_extractor(key)
        .finish()
        .unwrap();
    Router::new()
        .route(
            "/",
            get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
        )
        .layer(GovernorLayer::new(Arc::new(config)))
}

fn trusting(net: &str, header: HeaderSource) -> RealIpLayer {
    RealIpLayer::builder()
        .trust(net.parse().unwrap())
        .header(header)
        .build()
        .unwrap()
}

async fn get_from(n: u8, port: u16, headers: &[&str]) -> CurlOutput {
    let mut curl = Curl::new(format!("http://127.0.0.1:{port}/")).interface(lo(n));
    for h in headers {
        curl = curl.header(h);
    }
    curl.run_async().await
}

/// The value of response header `name` in curl's `-v` trace.
fn response_header(out: &CurlOutput, name: &str) -> Option<String> {
    out.stderr.lines().find_map(|l| {
        let (k, v) = l.strip_prefix("< ")?.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn expect_limited(out: &CurlOutput, what: &str) {
    assert_eq!(out.status, 429, "{what}: {}\n{}", out.text(), out.stderr);
    let retry: u64 = response_header(out, "retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After\n{}", out.stderr))
        .parse()
        .unwrap();
    assert!(retry <= 60, "{what}: Retry-After {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_rotating_forged_xff_still_gets_429_after_its_burst() {
    let app = serve_made(
        governed(RealIpKeyExtractor::new()),
        trusting("127.0.0.221/32", HeaderSource::XForwardedFor),
        false,
    );
    let (nginx, port) = Nginx::xff_proxy(app, lo(221));
    for i in 0..BURST {
        let forged = format!("X-Forwarded-For: 198.51.100.{i}");
        let out = get_from(61, port, &[&forged]).await;
        out.expect_status(200);
        assert_eq!(out.text(), "127.0.0.61", "nginx log:\n{}", nginx.log());
    }
    for i in BURST..BURST + 3 {
        let forged = format!("X-Forwarded-For: 198.51.100.{i}, 203.0.113.{i}");
        expect_limited(&get_from(61, port, &[&forged]).await, "forged XFF");
    }

    // What the issue reports, for contrast: the same app keyed by
    // tower_governor's SmartIpKeyExtractor (first XFF value, no trust
    // check) never limits the rotating client.
    let smart = serve_made(
        governed(SmartIpKeyExtractor),
        trusting("127.0.0.222/32", HeaderSource::XForwardedFor),
        false,
    );
    let (_nginx, port) = Nginx::xff_proxy(smart, lo(222));
    for i in 0..BURST + 3 {
        let forged = format!("X-Forwarded-For: 198.51.100.{i}");
        get_from(62, port, &[&forged]).await.expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_different_loopback_addresses_have_separate_buckets() {
    let app = serve_made(
        governed(RealIpKeyExtractor::new()),
        trusting("127.0.0.223/32", HeaderSource::XForwardedFor),
        false,
    );
    let (_nginx, port) = Nginx::xff_proxy(app, lo(223));
    for _ in 0..BURST {
        get_from(71, port, &[]).await.expect_status(200);
    }
    expect_limited(&get_from(71, port, &[]).await, "127.0.0.71 past its burst");
    // 127.0.0.72 behind the same nginx: a full bucket of its own.
    for _ in 0..BURST {
        let out = get_from(72, port, &[]).await;
        out.expect_status(200);
        assert_eq!(out.text(), "127.0.0.72");
    }
    expect_limited(&get_from(72, port, &[]).await, "127.0.0.72 past its burst");
    expect_limited(&get_from(71, port, &[]).await, "127.0.0.71 still limited");
}

/// nginx appending `for=$remote_addr` to the `Forwarded` header it got.
fn forwarded_proxy(upstream: SocketAddr, bind: u8) -> (Nginx, u16) {
    let port = free_port();
    let bind = lo(bind);
    let nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   map $http_forwarded $forwarded {{\n\
         \x20       \"\" \"for=$remote_addr\";\n\
         \x20       default \"$http_forwarded, for=$remote_addr\";\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{upstream};\n\
         \x20           proxy_bind {bind};\n\
         \x20           proxy_set_header Forwarded $forwarded;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    ));
    (nginx, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ipv6_clients_in_one_64_share_a_bucket() {
    // The curl clients play a trusted edge proxy that names its IPv6
    // client in `Forwarded`; nginx appends the edge; the app trusts
    // loopback.
    let v6 = |ip: &str| format!("Forwarded: for=\"[{ip}]\"");
    let (a, b, other) = (
        v6("2001:db8:1:2::a"),
        v6("2001:db8:1:2:ffff::b"),
        v6("2001:db8:1:3::a"),
    );

    let app = serve_made(
        governed(RealIpKeyExtractor::new()),
        trusting("127.0.0.0/8", HeaderSource::Forwarded),
        false,
    );
    let (nginx, port) = forwarded_proxy(app, 224);
    for _ in 0..BURST - 1 {
        let out = get_from(81, port, &[&a]).await;
        out.expect_status(200);
        assert_eq!(out.text(), "2001:db8:1:2::a", "nginx log:\n{}", nginx.log());
    }
    // b, from another edge address, takes the /64's last token...
    let out = get_from(82, port, &[&b]).await;
    out.expect_status(200);
    assert_eq!(out.text(), "2001:db8:1:2:ffff::b");
    // ...and both are limited now.
    expect_limited(&get_from(82, port, &[&b]).await, "b after the shared burst");
    expect_limited(&get_from(81, port, &[&a]).await, "a after the shared burst");
    // The next /64 has its own bucket.
    get_from(81, port, &[&other]).await.expect_status(200);

    // Keyed per address (/128), the same sequence never limits b early.
    let app = serve_made(
        governed(RealIpKeyExtractor::with_ipv6_prefix(128).unwrap()),
        trusting("127.0.0.0/8", HeaderSource::Forwarded),
        false,
    );
    let (_nginx, port) = forwarded_proxy(app, 225);
    for _ in 0..BURST {
        get_from(83, port, &[&a]).await.expect_status(200);
    }
    for _ in 0..BURST {
        get_from(84, port, &[&b]).await.expect_status(200);
    }
    expect_limited(&get_from(84, port, &[&b]).await, "b past its own burst");
}
