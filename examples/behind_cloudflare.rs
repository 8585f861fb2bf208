//! Behind Cloudflare: the client is in `CF-Connecting-IP`, a header
//! anyone can send, so it is believed only when the connection comes from
//! Cloudflare's published ranges.
//!
//! ```sh
//! cargo run --example behind_cloudflare
//! curl -H 'CF-Connecting-IP: 203.0.113.9' http://127.0.0.1:8080/   # not from Cloudflare: ignored
//! ```
//!
//! The ranges change rarely but do change: refresh them from
//! <https://www.cloudflare.com/ips-v4> and <https://www.cloudflare.com/ips-v6>
//! (for instance at deploy time) rather than trusting this copy forever.

use axum::{routing::get, Router};
use realip::{HeaderSource, RealIp, RealIpLayer, TrustedProxies};

/// Cloudflare's published edge ranges (IPv4 and IPv6).
const CLOUDFLARE: &str = "
    173.245.48.0/20 103.21.244.0/22 103.22.200.0/22 103.31.4.0/22
    141.101.64.0/18 108.162.192.0/18 190.93.240.0/20 188.114.96.0/20
    197.234.240.0/22 198.41.128.0/17 162.158.0.0/15 104.16.0.0/13
    104.24.0.0/14 172.64.0.0/13 131.0.72.0/22
    2400:cb00::/32 2606:4700::/32 2803:f800::/32 2405:b500::/32
    2405:8100::/32 2a06:98c0::/29 2c0f:f248::/32
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cloudflare: TrustedProxies = CLOUDFLARE.parse()?;
    let layer = RealIpLayer::builder()
        .trusted_proxies(&cloudflare)
        .header(HeaderSource::CfConnectingIp)
        .build()?;

    let app = Router::new().route(
        "/",
        get(|real: RealIp| async move {
            // `source` says whether Cloudflare's header decided.
            format!("{} (source {:?})\n", real.ip(), real.source())
        }),
    );

    let listener = realip::io::bind("127.0.0.1:8080").await?;
    println!("listening on 127.0.0.1:8080, trusting CF-Connecting-IP from Cloudflare");
    axum::serve(listener, layer.into_make_service(app)).await?;
    Ok(())
}
