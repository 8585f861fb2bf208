//! Property: the hand scan that finds the address header, `Host` and the
//! context headers in a request of at most 12 lines decides exactly as the
//! hashed lookups used for larger requests. The same lines, resolved alone
//! and with 13 unrelated lines added (which moves the request onto the
//! hashed path), give the same resolution, context included, for every
//! kind of address header, context on and off.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use realip::resolve::{ContextHeaders, HeaderSource, Policy};
use std::net::SocketAddr;

const NAMES: [&str; 10] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "host",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-ssl",
    "user-agent",
];

const VALUES: [&str; 16] = [
    "203.0.113.9",
    "203.0.113.9, 10.0.0.5",
    "6.6.6.6, 203.0.113.9:81, 10.1.2.3",
    "garbage",
    "for=203.0.113.9;proto=https;host=shop.example",
    "for=203.0.113.9, for=10.0.0.6;host=edge.example",
    "for=unknown",
    "https",
    "https, http",
    "on",
    "shop.example",
    "Shop.Example:8443",
    "bad host",
    "443",
    "/app",
    "/a/../b",
];

fn line() -> impl Strategy<Value = (usize, usize)> {
    (0..NAMES.len(), 0..VALUES.len())
}

fn policies() -> Vec<Policy> {
    let mut out = Vec::new();
    for source in [
        HeaderSource::XForwardedFor,
        HeaderSource::Forwarded,
        HeaderSource::XRealIp,
    ] {
        let b = || Policy::builder().trust_private().header(source.clone());
        out.push(b().build().unwrap());
        out.push(b().context(false).build().unwrap());
        out.push(
            b().context_headers(
                ContextHeaders::default().ssl_flag(HeaderName::from_static("x-forwarded-ssl")),
            )
            .symmetric(true)
            .build()
            .unwrap(),
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn small_maps_scan_as_large_maps_look_up(
        lines in proptest::collection::vec(line(), 0..=10),
        peer in prop_oneof![Just("10.0.0.1:4000"), Just("198.51.100.7:4000")],
    ) {
        let peer: SocketAddr = peer.parse().unwrap();
        let mut small = HeaderMap::new();
        for &(n, v) in &lines {
            small.append(NAMES[n], HeaderValue::from_static(VALUES[v]));
        }
        let mut large = small.clone();
        for i in 0..13 {
            let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap();
            large.append(name, HeaderValue::from_static("x"));
        }
        prop_assert!(small.len() <= 12 && large.len() > 12);
        for policy in policies() {
            let (a, b) = (policy.resolve(peer, None, &small), policy.resolve(peer, None, &large));
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
}
