//! Different trust per router: one app reached through different paths.
//!
//! - `/` is reached directly: no header is trusted;
//! - `/api` sits behind an internal nginx that sets `X-Real-IP`;
//! - `/edge` is served through a CDN on loopback (for the demo) that sets
//!   `CF-Connecting-IP`.
//!
//! Each `RealIpLayer` resolves with its own policy; when layers are
//! nested, the one nearest the handler runs last and decides.
//!
//! ```sh
//! cargo run --example per_router
//! curl -H 'X-Real-IP: 203.0.113.1' http://127.0.0.1:8080/       # 127.0.0.1
//! curl -H 'X-Real-IP: 203.0.113.1' http://127.0.0.1:8080/api    # 203.0.113.1
//! curl -H 'CF-Connecting-IP: 203.0.113.2' http://127.0.0.1:8080/edge  # 203.0.113.2
//! ```

use std::net::SocketAddr;

use axum::{routing::get, Router};
use realip::{ClientIp, HeaderSource, RealIpLayer};

async fn whoami(ClientIp(ip): ClientIp) -> String {
    format!("{ip}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = Router::new().route("/", get(whoami)).layer(
        RealIpLayer::builder()
            .trust_loopback() // where the internal nginx runs
            .header(HeaderSource::XRealIp)
            .build()?,
    );
    let edge = Router::new().route("/", get(whoami)).layer(
        RealIpLayer::builder()
            .trust_loopback() // stands for the CDN's ranges
            .header(HeaderSource::CfConnectingIp)
            .build()?,
    );

    let app = Router::new()
        .route("/", get(whoami))
        .nest("/api", api)
        .nest("/edge", edge)
        // Outermost: the secure default for every route above. The nested
        // layers run after it and overwrite its result on their routes.
        .layer(RealIpLayer::new());

    let listener = realip::io::bind("127.0.0.1:8080").await?;
    println!("listening on 127.0.0.1:8080");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
