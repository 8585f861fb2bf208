//! The layer's per-request cost on the heap: exactly the one allocation
//! `Extensions::insert` makes to box the stored `RealIp`, whatever the
//! policy and the header chain.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use http::Request;
use realip::proxy::{self, Status};
use realip::{HeaderSource, ProxiedAddr, RealIp, RealIpLayer};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use tower::{Layer, Service};

// `stats_alloc` counts every call to the system allocator; the crate's
// lints forbid writing that `unsafe impl GlobalAlloc` here.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counters are global: tests that read them take turns.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An inner service that does nothing, so only the layer is measured.
fn inner() -> impl Service<
    Request<()>,
    Response = (),
    Error = Infallible,
    Future = Ready<Result<(), Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<()>| ready(Ok::<_, Infallible>(())))
}

/// Allocations made by `svc.call(req)` and the `RealIp` it stored.
fn measure(layer: &RealIpLayer, make: impl Fn() -> Request<()>) -> (usize, RealIp) {
    let mut svc = layer.layer(tower::service_fn(|req: Request<()>| {
        let real = req.extensions().get::<RealIp>().cloned();
        ready(Ok::<_, Infallible>(real))
    }));
    // Warm up (first-use paths in std and the policy).
    drop(svc.call(make()));
    let mut plain = layer.layer(inner());
    // The fewest of a few tries: the counters are process-wide (see
    // `measure_served`).
    let allocations = (0..5)
        .map(|_| {
            let req = make();
            let region = Region::new(GLOBAL);
            let fut = plain.call(req);
            let change = region.change();
            drop(fut);
            change.allocations + change.reallocations
        })
        .min()
        .unwrap();
    let real = futures_now(svc.call(make())).expect("layer stored a RealIp");
    (allocations, real)
}

fn futures_now<T>(fut: Ready<Result<T, Infallible>>) -> T {
    match fut.into_inner() {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

#[test]
fn one_allocation_per_request() {
    let _turn = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let xff = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let chain = "203.0.113.9, 10.0.0.5:80, 192.168.1.4, 172.16.0.3, 10.1.2.3";
    let (n, real) = measure(&xff, || {
        let mut r = Request::new(());
        r.headers_mut()
            .insert("x-forwarded-for", chain.parse().unwrap());
        r.extensions_mut()
            .insert(ConnectInfo("10.0.0.1:4000".parse::<SocketAddr>().unwrap()));
        r
    });
    assert_eq!(real.ip().to_string(), "203.0.113.9");
    assert_eq!(real.hops().len(), 6);
    assert_eq!(n, 1, "XFF walk through ConnectInfo<SocketAddr>");

    // PROXY header through ConnectInfo<ProxiedAddr>: the header is shared
    // (an `Arc` clone), not copied.
    let bytes = b"PROXY TCP4 203.0.113.50 10.0.0.1 5555 80\r\n";
    let Status::Complete(h, _) = proxy::parse(bytes).unwrap() else {
        panic!("complete header")
    };
    let addr = ProxiedAddr::new(
        "10.0.0.9:34000".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
        Some(Arc::new(h.to_owned_header())),
    );
    let (n, real) = measure(&RealIpLayer::new(), || {
        let mut r = Request::new(());
        r.extensions_mut().insert(ConnectInfo(addr.clone()));
        r
    });
    assert_eq!(real.client_addr().to_string(), "203.0.113.50:5555");
    assert!(Arc::ptr_eq(
        real.proxy_header_arc().unwrap(),
        addr.header_arc().unwrap()
    ));
    assert_eq!(n, 1, "PROXY source through ConnectInfo<ProxiedAddr>");
}

/// Allocations made by serving one request to completion.
fn measure_served<S>(rt: &tokio::runtime::Runtime, svc: &mut S) -> usize
where
    S: Service<Request<axum::body::Body>, Response = axum::response::Response, Error = Infallible>,
{
    let request = || {
        let mut r = Request::new(axum::body::Body::empty());
        r.headers_mut().insert(
            "x-forwarded-for",
            "203.0.113.7, 10.0.0.2, 10.0.0.3".parse().unwrap(),
        );
        r
    };
    // Warm up, then count; the fewest of a few tries, since the counters
    // are process-wide and the test harness's own thread may allocate
    // meanwhile (reporting another test's result).
    drop(rt.block_on(svc.call(request())));
    (0..5)
        .map(|_| {
            let req = request();
            let region = Region::new(GLOBAL);
            let response = rt.block_on(svc.call(req));
            let change = region.change();
            drop(response);
            change.allocations + change.reallocations
        })
        .min()
        .unwrap()
}

#[test]
fn router_request_costs_one_allocation_more_with_the_layer() {
    use axum::routing::get;

    let _turn = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let app = || {
        axum::Router::new()
            .route("/", get(|| async { "hi" }))
            .with_state::<()>(())
    };
    let layer = RealIpLayer::builder()
        .trust_private()
        .trust_loopback()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let base = measure_served(&rt, &mut app());
    let with_layer = measure_served(&rt, &mut layer.layer_connection(app(), &peer));
    // The router itself fills a request's extension map (original URI,
    // matched path, URL params); the layer's entry must cost the box that
    // holds it and nothing more: no growth of the map.
    assert_eq!(
        with_layer,
        base + 1,
        "plain {base}, with the layer {with_layer}"
    );
}
