//! The client-context path: never panics, never changes the address walk,
//! and every value it hands back is valid and came from a hop it walked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realip::forwarded::context::{parse_host, parse_prefix};
use realip::resolve::{ContextSource, HeaderSource, Policy};
use std::sync::OnceLock;

const NAMES: [&str; 9] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "host",
    "x-forwarded-ssl",
];

/// (context on, context off) per address header and option mix.
static POLICIES: OnceLock<Vec<(Policy, Policy)>> = OnceLock::new();

fn policies() -> &'static [(Policy, Policy)] {
    POLICIES.get_or_init(|| {
        let mut out = Vec::new();
        for source in [HeaderSource::XForwardedFor, HeaderSource::Forwarded, HeaderSource::XRealIp] {
            for opts in 0..4u8 {
                let b = || Policy::builder().trust_private().header(source.clone()).hop_cap(8);
                let mut on = b().context(true);
                if opts & 1 != 0 {
                    on = on.symmetric(true);
                }
                if opts & 2 != 0 {
                    on = on.allowed_host("shop.example").allowed_host("*.example.org");
                }
                out.push((on.build().unwrap(), b().context(false).build().unwrap()));
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (on, off) = &policies()[usize::from(sel) % policies().len()];
    // Lines separated by NUL; each line's first byte picks its header.
    let mut headers = http::HeaderMap::new();
    for line in rest.split(|&b| b == 0) {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.append(NAMES[usize::from(which) % NAMES.len()], v);
        }
    }
    let peer = "10.0.0.1:1".parse().unwrap();
    let proxy = (sel & 0x80 != 0).then(|| "10.0.0.9:2".parse().unwrap());
    let a = on.resolve(peer, proxy, &headers);
    let b = off.resolve(peer, proxy, &headers);
    // The context walk never moves the address walk.
    assert_eq!(a.ip(), b.ip());
    assert_eq!(a.port(), b.port());
    assert_eq!(a.stop(), b.stop());
    assert!(a.hops().eq(b.hops()));
    // A clone taken before the first read finishes the recorded context
    // on its own; it must come to the same values.
    let unread = a.clone();
    let c = a.context().expect("context on");
    // The context is finished once: repeated reads, a clone taken after
    // the read and one taken before it all read the same.
    assert_eq!(format!("{c:?}"), format!("{:?}", a.context().unwrap()));
    assert_eq!(format!("{c:?}"), format!("{:?}", a.clone().context().unwrap()));
    let seen = format!("{c:?}");
    if c.host_source() == ContextSource::Request {
        // The request's own host: its one `Host` line, validated, lowercased.
        let mut lines = headers.get_all("host").iter();
        let own = match (lines.next(), lines.next()) {
            (Some(v), None) => parse_host(v.as_bytes()).map(|(h, _)| h.to_ascii_lowercase()),
            _ => None,
        };
        assert_eq!(c.host().map(str::as_bytes), own.as_deref());
    }
    let hops = a.hops().len();
    for s in [c.scheme_source(), c.host_source(), c.port_source(), c.prefix_source()] {
        if let ContextSource::Header { hop } = s {
            assert!(hop >= 1 && hop < hops, "hop {hop} of {hops}");
        }
    }
    if let Some(h) = c.host() {
        let (host, port) = parse_host(h.as_bytes()).expect("a valid host");
        assert_eq!((host, port), (h.as_bytes(), None));
        assert!(!h.bytes().any(|b| b.is_ascii_uppercase()));
    }
    if let Some(p) = c.prefix() {
        assert!(parse_prefix(p.as_bytes()).is_some());
    }
    if let Some(url) = c.base_url() {
        assert!(url.parse::<http::Uri>().is_ok(), "{url}");
    }
    // The record borrows nothing from the request: with the headers gone,
    // the clone taken before any read walks to the same values.
    drop(headers);
    assert_eq!(seen, format!("{:?}", unread.context().unwrap()));
});
