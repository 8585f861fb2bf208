//! `bench_layer`: the server `scripts/bench-layer` runs wrk against, to
//! show what `RealIpLayer` costs a hello-world axum app.
//!
//! ```sh
//! cargo run --release --example bench_layer -- plain 127.0.0.1:0
//! cargo run --release --example bench_layer -- layer 127.0.0.1:0
//! cargo run --release --example bench_layer -- connect-info 127.0.0.1:0
//! ```
//!
//! - `plain`: `GET /` answers `Hello, World!`; no layer, no `ConnectInfo`.
//! - `connect-info`: the plain app served with
//!   `into_make_service_with_connect_info::<SocketAddr>()`, the handler
//!   extracting `ConnectInfo` (what the layer needs, without the layer), to
//!   split the layer's cost from the connection-info plumbing.
//! - `make-service`: the same route with `RealIpLayer` trusting private
//!   and loopback ranges with `X-Forwarded-For` (a 3-hop header such as
//!   `203.0.113.7, 10.0.0.2, 10.0.0.3` from loopback walks 3 entries),
//!   served with `layer.into_make_service(app)` (the peer is read once per
//!   connection), the handler extracting `ClientIp`; `GET /ip` answers the
//!   resolved address, so the script can check the layer really resolves.
//! - `layer`: the same, with `Router::layer` and
//!   `into_make_service_with_connect_info::<SocketAddr>()`.
//! - `layer-outer`: the same, the layer around the whole `Router`
//!   (`axum::ServiceExt`) and connect info.
//!
//! All run on a single-threaded tokio runtime, so on a 2-core machine the
//! server and one wrk thread each get a core. The first line on stdout is
//! the bound address.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use realip::{ClientIp, HeaderSource, RealIpLayer};
use tokio::net::TcpListener;

const BODY: &str = "Hello, World!";

async fn hello() -> &'static str {
    BODY
}

async fn hello_from(ClientIp(ip): ClientIp) -> &'static str {
    // The extractor's work is part of what is measured; the answer stays
    // byte for byte the same as the plain app's.
    std::hint::black_box(ip);
    BODY
}

async fn hello_peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> &'static str {
    std::hint::black_box(peer);
    BODY
}

async fn ip(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let addr: SocketAddr = match args.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bad address: {e}");
            return ExitCode::FAILURE;
        }
    };
    if ![
        "plain",
        "connect-info",
        "layer",
        "layer-outer",
        "make-service",
    ]
    .contains(&mode.as_str())
    {
        eprintln!("usage: bench_layer plain|connect-info|layer|layer-outer|make-service [ADDR]");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!("{}", listener.local_addr().expect("local address"));
        std::io::stdout().flush().expect("flush stdout");
        if mode == "plain" {
            let app = Router::new().route("/", get(hello));
            axum::serve(listener, app).await.expect("serve");
        } else if mode == "connect-info" {
            let app = Router::new().route("/", get(hello_peer));
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        } else if mode == "make-service" {
            let layer = RealIpLayer::builder()
                .trust_private()
                .header(HeaderSource::XForwardedFor)
                .build()
                .expect("valid policy");
            let app = Router::new()
                .route("/", get(hello_from))
                .route("/ip", get(ip));
            axum::serve(listener, layer.into_make_service(app))
                .await
                .expect("serve");
        } else if mode == "layer-outer" {
            // The layer around the whole Router (axum::ServiceExt), instead
            // of `Router::layer`, which wraps and re-boxes every route.
            use axum::ServiceExt;
            use tower_layer::Layer;
            let layer = RealIpLayer::builder()
                .trust_private()
                .header(HeaderSource::XForwardedFor)
                .build()
                .expect("valid policy");
            let app = Router::new()
                .route("/", get(hello_from))
                .route("/ip", get(ip));
            axum::serve(
                listener,
                ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                    SocketAddr,
                >(layer.layer(app)),
            )
            .await
            .expect("serve");
        } else {
            let layer = RealIpLayer::builder()
                .trust_private()
                .header(HeaderSource::XForwardedFor)
                .build()
                .expect("valid policy");
            let app = Router::new()
                .route("/", get(hello_from))
                .route("/ip", get(ip))
                .layer(layer);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        }
    });
    ExitCode::SUCCESS
}
