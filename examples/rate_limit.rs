//! Rate limiting per client with `tower_governor`, keyed on the client
//! realip resolved: behind nginx (`X-Forwarded-For`) or behind an AWS NLB
//! (PROXY protocol v2).
//!
//! ```sh
//! cargo run --example rate_limit --features governor                # behind nginx
//! BEHIND=nlb cargo run --example rate_limit --features governor     # behind an NLB
//! for i in 1 2 3 4 5 6; do curl -s -H "X-Forwarded-For: 198.51.100.$i" http://127.0.0.1:8080/; done
//! ```
//!
//! Each client gets 5 requests per second in bursts of up to 5; the sixth
//! request of a burst gets `429 Too Many Requests` with `Retry-After`.
//! Writing a new `X-Forwarded-For` on every request does not help: the
//! key is the address the trusted proxy saw (tower_governor's
//! `SmartIpKeyExtractor` takes the first value of the header unchecked,
//! so that loop above would never be limited). IPv6 clients share one
//! bucket per /64.
//!
//! Behind nginx, the header is believed from nginx's address only
//! (`NGINX_ADDR`, default loopback):
//!
//! ```nginx
//! location / {
//!     proxy_pass http://127.0.0.1:8080;
//!     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//! }
//! ```
//!
//! Behind an NLB (target type IP, "Proxy protocol v2" on), every connection
//! from the VPC (`VPC_CIDR`) must carry the header and the client is its
//! source; try it locally with `curl --haproxy-protocol`. The health check
//! route stays outside the limit: the NLB's checks come from its own nodes
//! (as `LOCAL` headers, so the key is the node), and a refused check takes
//! the target out of service.

use std::sync::Arc;

use axum::{routing::get, Router};
use realip::governor::RealIpKeyExtractor;
use realip::{ClientIp, HeaderSource, Mode, ProxyProtocolListener, RealIpLayer};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let behind = std::env::var("BEHIND").unwrap_or_else(|_| "nginx".into());

    // One token every 200 ms, up to 5 at once: 5 requests per second.
    let config = GovernorConfigBuilder::default()
        .per_millisecond(200)
        .burst_size(5)
        .key_extractor(RealIpKeyExtractor::new())
        .finish()
        .ok_or("invalid rate limit")?;
    let limited = Router::new()
        .route(
            "/",
            get(|ClientIp(ip): ClientIp| async move { format!("hello {ip}\n") }),
        )
        .layer(GovernorLayer::new(Arc::new(config)));
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .merge(limited);

    // A backlog sized for bursts (see the README).
    let tcp = realip::io::bind(&listen).await?;
    match behind.as_str() {
        "nginx" => {
            let nginx = std::env::var("NGINX_ADDR").unwrap_or_else(|_| "127.0.0.1/32".into());
            let layer = RealIpLayer::builder()
                .trust(nginx.parse()?)
                .header(HeaderSource::XForwardedFor)
                .build()?;
            println!("listening on {listen}, behind nginx at {nginx}");
            axum::serve(tcp, layer.into_make_service(app)).await?;
        }
        "nlb" => {
            // Loopback is included so the example can be tried with curl.
            let vpc = std::env::var("VPC_CIDR").unwrap_or_else(|_| "10.0.0.0/16".into());
            let listener = ProxyProtocolListener::new(tcp)
                .require_from([vpc.parse()?, "127.0.0.0/8".parse()?])
                .otherwise(Mode::Reject);
            println!("listening on {listen}, PROXY v2 required from {vpc}");
            // No header is trusted: the client is the PROXY source.
            axum::serve(listener, RealIpLayer::new().into_make_service(app)).await?;
        }
        other => return Err(format!("BEHIND must be nginx or nlb, not {other}").into()),
    }
    Ok(())
}
