//! Resolving a request must not touch the heap: a counting global
//! allocator observes every allocation made by `Policy::resolve`.

use http::{HeaderMap, HeaderValue};
use realip::resolve::{HeaderSource, Policy, Stop};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::{IpAddr, SocketAddr};

// `stats_alloc` wraps the system allocator and counts every call; the
// crate's lints forbid writing that `unsafe impl GlobalAlloc` here.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations made while running `f`. The counters are
/// global, so the tests in this file are serialized through one lock.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    (change.allocations + change.reallocations, out)
}

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(policy: &Policy, headers: &HeaderMap, proxy: Option<SocketAddr>, want: &str, stop: Stop) {
    let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    // Warm up (lazy statics in std, first-use paths).
    let _ = policy.resolve(peer, proxy, headers);
    let (n, r) = allocations(|| policy.resolve(peer, proxy, headers));
    assert_eq!(r.ip(), want.parse::<IpAddr>().unwrap());
    assert_eq!(r.stop(), stop);
    assert_eq!(n, 0, "resolve allocated {n} times: {r:?}");
    // Reading the hops is free too.
    let (n, len) = allocations(|| r.hops().len());
    assert_eq!(n, 0);
    assert!(len >= 5, "{len}");
}

#[test]
fn five_hop_chains_allocate_nothing() {
    let _guard = LOCK.lock().unwrap();
    let xff = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_static("203.0.113.9, 10.0.0.5:80, 192.168.1.4, 172.16.0.3, 10.1.2.3"),
    );
    check(&xff, &headers, None, "203.0.113.9", Stop::UntrustedHop);

    // Same chain over repeated lines, with a PROXY source anchor.
    let mut lines = HeaderMap::new();
    for v in [
        "203.0.113.9, 10.0.0.5:80",
        "192.168.1.4",
        "172.16.0.3, 10.1.2.3",
    ] {
        lines.append("x-forwarded-for", HeaderValue::from_static(v));
    }
    check(
        &xff,
        &lines,
        Some("10.0.0.9:1".parse().unwrap()),
        "203.0.113.9",
        Stop::UntrustedHop,
    );

    // Its elements carry `proto=`, a context value: the address walk alone
    // here (the context's own rule is the test below).
    let fwd = Policy::builder()
        .trust_private()
        .header(HeaderSource::Forwarded)
        .context(false)
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "forwarded",
        HeaderValue::from_static(
            r#"for="[2001:db8::9]:443";proto=https, for=10.0.0.5, For="192.168.1.4:8080", for=172.16.0.3;by=_lb, for="[fd00::1]""#,
        ),
    );
    check(&fwd, &headers, None, "2001:db8::9", Stop::UntrustedHop);

    // Hop-count mode and a custom header name (refcounted name clone).
    let count = Policy::builder()
        .trusted_hops(5)
        .header(HeaderSource::List(
            http::HeaderName::from_bytes(b"x-custom-chain").unwrap(),
        ))
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-custom-chain",
        HeaderValue::from_static(
            "6.6.6.6, 203.0.113.9, 198.51.100.1, 198.51.100.2, 198.51.100.3, 198.51.100.4",
        ),
    );
    check(&count, &headers, None, "203.0.113.9", Stop::HopCount);
}

#[test]
fn counter_sees_allocations() {
    // The allocator is really installed: a boxed value is counted.
    let _guard = LOCK.lock().unwrap();
    let (n, b) = allocations(|| Box::new([0u8; 64]));
    assert!(n >= 1);
    drop(b);
}

/// The client context allocates nothing while resolving a request that
/// carries no context header (only `Host`), nor one whose context headers
/// came on one line each: the short values are copied into the record,
/// and validated and copied (one allocation, the result) when first read.
/// Repeated lines take the general path, which takes the values while
/// resolving: one allocation in all, never more.
#[test]
fn client_context_allocates_nothing_without_context_headers() {
    let _guard = LOCK.lock().unwrap();
    let policy = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    assert!(
        policy.has_context(),
        "context is on by default with a header"
    );
    let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let mut absent = HeaderMap::new();
    absent.insert("host", HeaderValue::from_static("app.internal:8080"));
    absent.insert("user-agent", HeaderValue::from_static("test/1.0"));
    absent.insert(
        "x-forwarded-for",
        HeaderValue::from_static("203.0.113.9, 10.0.0.5"),
    );
    let mut present = absent.clone();
    present.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
    present.insert("x-forwarded-host", HeaderValue::from_static("shop.example"));
    present.insert("x-forwarded-port", HeaderValue::from_static("443"));
    present.insert("x-forwarded-prefix", HeaderValue::from_static("/app"));
    // Forged context headers from an untrusted peer are never read.
    let outside: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    // Repeated lines (the general path), prefix included.
    let mut repeated = present.clone();
    repeated.append("x-forwarded-proto", HeaderValue::from_static("https"));
    repeated.append("x-forwarded-prefix", HeaderValue::from_static("/shop"));
    for (peer, headers, host, most) in [
        (peer, &absent, "app.internal", 0),
        (outside, &present, "app.internal", 0),
        (peer, &present, "shop.example", 0),
        (peer, &repeated, "shop.example", 1),
    ] {
        let _ = policy.resolve(peer, None, headers);
        let (n, r) = allocations(|| policy.resolve(peer, None, headers));
        assert!(n <= most, "resolve allocated {n} times: {r:?}");
        let (m, h) = allocations(|| r.context().unwrap().host().map(str::len));
        assert!(
            n + m <= 1,
            "resolving and reading allocated {n} + {m} times"
        );
        assert_eq!(h, Some(host.len()));
        // Read again: no further work.
        let (n, _) = allocations(|| r.context().unwrap().host().map(str::len));
        assert_eq!(n, 0);
    }
    // Forwarded elements without proto or host: nothing is copied either.
    let fwd = Policy::builder()
        .trust_private()
        .header(HeaderSource::Forwarded)
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("app.internal"));
    headers.insert(
        "forwarded",
        HeaderValue::from_static("for=203.0.113.9, for=10.0.0.5"),
    );
    let _ = fwd.resolve(peer, None, &headers);
    let (n, r) = allocations(|| fwd.resolve(peer, None, &headers));
    assert_eq!(n, 0, "{r:?}");
    assert_eq!(r.context().unwrap().host(), Some("app.internal"));
}
