//! Behind an AWS Network Load Balancer with target type IP (ECS on Fargate,
//! EKS pods): the NLB rewrites the source address to its own, so the
//! client is only known from the PROXY protocol v2 header it prepends when
//! "Proxy protocol v2" is enabled on the target group. The NLB sends the
//! header on health checks too (command LOCAL), so requiring it breaks
//! nothing.
//!
//! ```sh
//! cargo run --example behind_aws_nlb
//! curl --haproxy-protocol http://127.0.0.1:8080/   # curl sends v1; the NLB sends v2
//! ```
//!
//! In production listen on `0.0.0.0:8080` (`LISTEN=0.0.0.0:8080`) and set
//! `VPC_CIDR` to your VPC's range: only the NLB's nodes live there.

use axum::{routing::get, Router};
use realip::{ClientAddr, Mode, ProxyProtocolListener, RealIp, RealIpLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    // Loopback is included so the example can be tried locally with curl.
    let vpc = std::env::var("VPC_CIDR").unwrap_or_else(|_| "10.0.0.0/16".into());

    let listener = ProxyProtocolListener::new(realip::io::bind(&listen).await?)
        // Every connection from the VPC must start with a PROXY header ...
        .require_from([vpc.parse()?, "127.0.0.0/8".parse()?])
        // ... and nobody else may send one (a client forging a header
        // from outside is closed, a plain connection is served).
        .otherwise(Mode::Reject);

    let app = Router::new()
        // Health checks arrive with a LOCAL header: answer them plainly.
        .route("/health", get(|| async { "ok" }))
        .route("/", get(hello));

    println!("listening on {listen}, PROXY v2 required from {vpc}");
    // No forwarded header is trusted: the NLB does not add any, so an
    // X-Forwarded-For here was written by the client. The client is the
    // PROXY source.
    axum::serve(listener, RealIpLayer::new().into_make_service(app)).await?;
    Ok(())
}

async fn hello(client: ClientAddr, real: RealIp) -> String {
    // With AWS PrivateLink, the header also names the VPC endpoint the
    // client came through (TLV 0xEA).
    let vpce = real.proxy_header().and_then(|h| {
        h.as_header()
            .aws_vpce_id()
            .map(|id| String::from_utf8_lossy(id).into_owned())
    });
    match vpce {
        Some(id) => format!("hello {client} (via {id})\n"),
        None => format!("hello {client}\n"),
    }
}
