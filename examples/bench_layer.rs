//! `bench_layer`: the server `scripts/bench-layer` runs wrk against, to
//! show what `RealIpLayer` costs a hello-world axum app.
//!
//! ```sh
//! cargo run --release --example bench_layer -- plain 127.0.0.1:0
//! cargo run --release --example bench_layer -- make-service 127.0.0.1:0
//! ```
//!
//! Modes (`GET /` always answers `Hello, World!`):
//! - `plain`: no layer, no connect info.
//! - `make-service`: the same handler with `RealIpLayer` trusting private
//!   and loopback ranges with `X-Forwarded-For` (a 3-hop header such as
//!   `203.0.113.7, 10.0.0.2, 10.0.0.3` from loopback walks 3 entries),
//!   served with `layer.into_make_service(app)`: the layer resolves every
//!   request and stores the result; the handler is unchanged.
//! - `make-service-ip`: the same, the handler extracting `ClientIp`.
//! - `layer`: the layer added with `Router::layer`, the app served with
//!   `into_make_service_with_connect_info::<SocketAddr>()`.
//! - `layer-ip`: the same, the handler extracting `ClientIp`.
//! - `connect-info`: no layer, served with connect info, the handler
//!   extracting `ConnectInfo` (the plumbing `layer` needs, alone).
//! - `filter`: `make-service` with an `IpFilterLayer` around the whole
//!   router (allow and deny rules the resolved client passes), served with
//!   `IntoMakeServiceWithRealIp::new(filter.layer(app), layer)`: compare
//!   with `make-service`.
//! - `filter-router`: the filter added with `Router::layer` instead (the
//!   per-router form), served like `make-service`.
//! - `noop-router`: a layer that does nothing (`MapRequestLayer` with the
//!   identity) added with `Router::layer`: what axum's wrapping of every
//!   route costs, whatever the layer.
//! - `noop-router-ci`: the same no-op layer, served with connect info as
//!   `layer` is: the floor of any layer added with `Router::layer` to an app
//!   served that way (axum's wrapping of each route), against which
//!   `layer` is read beside `connect-info`.
//! - `store-floor`: no realip at all: a `MapRequest` around the plain
//!   app inserts one fixed `SocketAddr` into every request's extensions.
//!   The least any layer that hands a result to the handler pays (the
//!   extension map and its box), against which `make-service` is read.
//! - `governor-peer`: `layer` with a `tower_governor` `GovernorLayer`
//!   inside it keyed by tower_governor's `PeerIpKeyExtractor` (the socket
//!   peer), under a quota the load never exhausts.
//! - `governor-realip`: the same app keyed by `RealIpKeyExtractor` (the
//!   resolved client): the two differ in the key extractor alone.
//!
//! Every layered mode also answers `GET /ip` with the resolved address, so
//! the script can check the layer really resolves. All run on a
//! single-threaded tokio runtime, so on a 2-core machine the server and one
//! wrk thread each get a core. The first line on stdout is the bound
//! address.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Router, ServiceExt};
use realip::filter::IpFilterLayer;
use realip::governor::RealIpKeyExtractor;
use realip::{ClientIp, HeaderSource, IntoMakeServiceWithRealIp, RealIpLayer};
use tokio::net::TcpListener;
use tower::util::{MapRequest, MapRequestLayer};
use tower::Layer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{KeyExtractor, PeerIpKeyExtractor};
use tower_governor::GovernorLayer;

const BODY: &str = "Hello, World!";
const MODES: [&str; 13] = [
    "plain",
    "make-service",
    "make-service-ip",
    "layer",
    "layer-ip",
    "connect-info",
    "filter",
    "filter-router",
    "noop-router",
    "noop-router-ci",
    "store-floor",
    "governor-peer",
    "governor-realip",
];

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

/// `GET /` (extracting `ClientIp` or not) and `GET /ip`.
fn routes(extract: bool) -> Router {
    let root = if extract { get(hello_from) } else { get(hello) };
    Router::new().route("/", root).route("/ip", get(ip))
}

/// [`routes`] behind a governor keyed by `key`: a token every nanosecond,
/// a burst of a million, so the load is never refused and every request
/// pays for the key and the limiter's check.
fn governed<K>(key: K) -> Router
where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync,
{
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000)
        .key_extractor(key)
        .finish()
        .expect("valid quota");
    routes(false).layer(GovernorLayer::new(Arc::new(config)))
}

/// Rules the bench's client (203.0.113.7) passes: it is allowed, and every
/// deny range is looked up and missed.
fn filter() -> IpFilterLayer {
    IpFilterLayer::builder()
        .allow("203.0.113.0/24".parse().expect("valid net"))
        .allow("10.0.0.0/8".parse().expect("valid net"))
        .deny("203.0.113.128/25".parse().expect("valid net"))
        .deny("198.51.100.0/24".parse().expect("valid net"))
        .build()
        .expect("valid filter")
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
    if !MODES.contains(&mode.as_str()) {
        eprintln!("usage: bench_layer {} [ADDR]", MODES.join("|"));
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
        let layer = RealIpLayer::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .build()
            .expect("valid policy");
        let served = match mode.as_str() {
            "plain" => axum::serve(listener, Router::new().route("/", get(hello))).await,
            "connect-info" => {
                let app = Router::new().route("/", get(hello_peer));
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app).await
            }
            "make-service" | "make-service-ip" => {
                let app = routes(mode == "make-service-ip");
                axum::serve(listener, layer.into_make_service(app)).await
            }
            "filter" => {
                let app = filter().layer(routes(false).with_state(()));
                axum::serve(listener, IntoMakeServiceWithRealIp::new(app, layer)).await
            }
            "filter-router" => {
                let app = routes(false).layer(filter());
                axum::serve(listener, layer.into_make_service(app)).await
            }
            "noop-router" => {
                let noop = MapRequestLayer::new(|req: axum::extract::Request| req);
                let app = routes(false).layer(noop);
                axum::serve(listener, layer.into_make_service(app)).await
            }
            "noop-router-ci" => {
                let noop = MapRequestLayer::new(|req: axum::extract::Request| req);
                let app = routes(false).layer(noop);
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app).await
            }
            "store-floor" => {
                let fixed: SocketAddr = ([203, 0, 113, 7], 40000).into();
                let app = MapRequest::new(routes(false), move |mut req: axum::extract::Request| {
                    req.extensions_mut().insert(fixed);
                    req
                });
                axum::serve(
                    listener,
                    ServiceExt::<axum::extract::Request>::into_make_service(app),
                )
                .await
            }
            "governor-peer" | "governor-realip" => {
                let app = if mode == "governor-peer" {
                    governed(PeerIpKeyExtractor)
                } else {
                    governed(RealIpKeyExtractor::new())
                };
                let app = app.layer(layer);
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app).await
            }
            _ => {
                let app = routes(mode == "layer-ip").layer(layer);
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app).await
            }
        };
        served.expect("serve");
    });
    ExitCode::SUCCESS
}
