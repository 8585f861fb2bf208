//! Two proxy tiers: client → public HTTP load balancer (adds
//! `X-Forwarded-For`) → internal TCP balancer (adds a PROXY header) → app.
//!
//! Resolution peels one trusted hop at a time: the socket peer is the
//! internal balancer; its PROXY header names the public balancer's node;
//! that node is trusted, so its `X-Forwarded-For` entry (the nearest one)
//! names the client. A client that forged entries further left is not
//! believed, because the walk stops at the first untrusted address.
//!
//! ```sh
//! cargo run --example multi_tier
//! # What the internal balancer would send for a client 203.0.113.9
//! # that went through a public balancer node at 10.1.2.3:
//! curl --haproxy-protocol -H 'X-Forwarded-For: 6.6.6.6, 203.0.113.9' http://127.0.0.1:8080/
//! ```
//!
//! (curl's PROXY header names curl itself, 127.0.0.1, which the example
//! trusts so it can be tried locally.)

use axum::{routing::get, Router};
use realip::{HeaderSource, Mode, ProxyProtocolListener, RealIp, RealIpLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Tier 2 (internal TCP balancer) connects from here and must send PROXY.
    let internal = ["10.0.0.0/16".parse()?, "127.0.0.0/8".parse()?];
    // Tier 1 (public HTTP balancer) nodes: their X-Forwarded-For is believed.
    let public_lb = ["10.1.0.0/16".parse()?, "127.0.0.0/8".parse()?];

    let listener = ProxyProtocolListener::new(realip::io::bind("127.0.0.1:8080").await?)
        .require_from(internal)
        .otherwise(Mode::Reject);

    let layer = RealIpLayer::builder()
        .trust_all(public_lb)
        .header(HeaderSource::XForwardedFor)
        .build()?;
    // If the tiers are not on known ranges but their number is fixed,
    // count them instead: `.trusted_hops(2)` (the PROXY source counts as
    // the first).

    let app = Router::new().route(
        "/",
        get(|real: RealIp| async move {
            format!(
                "client {} via hops {:?} ({:?})\n",
                real.ip(),
                real.hops().collect::<Vec<_>>(),
                real.stop()
            )
        }),
    );

    println!("listening on 127.0.0.1:8080");
    axum::serve(listener, layer.into_make_service(app)).await?;
    Ok(())
}
