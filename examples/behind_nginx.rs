//! Behind nginx as an HTTP reverse proxy, which appends the address it saw
//! to `X-Forwarded-For`:
//!
//! ```nginx
//! location / {
//!     proxy_pass http://127.0.0.1:8080;
//!     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//! }
//! ```
//!
//! ```sh
//! cargo run --example behind_nginx
//! curl -H 'X-Forwarded-For: 203.0.113.9' http://127.0.0.1:8080/   # as nginx would
//! ```
//!
//! The header is believed only from nginx's address (`NGINX_ADDR`, default
//! loopback), and only as far left as trusted hops go: whatever a client
//! wrote further left is never read.

use axum::{routing::get, Router};
use realip::{ClientIp, HeaderSource, RealIpLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nginx = std::env::var("NGINX_ADDR").unwrap_or_else(|_| "127.0.0.1/32".into());

    let layer = RealIpLayer::builder()
        .trust(nginx.parse()?)
        .header(HeaderSource::XForwardedFor)
        .build()?; // a contradictory policy fails here, not per request

    let app = Router::new().route(
        "/",
        get(|ClientIp(ip): ClientIp| async move { format!("{ip}\n") }),
    );

    let listener = realip::io::bind("127.0.0.1:8080").await?;
    println!("listening on 127.0.0.1:8080, trusting X-Forwarded-For from {nginx}");
    // The layer around the whole app, reading each connection's peer once.
    axum::serve(listener, layer.into_make_service(app)).await?;
    Ok(())
}
