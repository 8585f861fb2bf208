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
    let req = make();
    let region = Region::new(GLOBAL);
    let fut = plain.call(req);
    let change = region.change();
    drop(fut);
    let real = futures_now(svc.call(make())).expect("layer stored a RealIp");
    (change.allocations + change.reallocations, real)
}

fn futures_now<T>(fut: Ready<Result<T, Infallible>>) -> T {
    match fut.into_inner() {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

#[test]
fn one_allocation_per_request() {
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
