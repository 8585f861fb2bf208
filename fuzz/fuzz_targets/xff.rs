//! X-Forwarded-For: the parser and the resolver never panic, and a
//! resolved client is always one of the addresses walked.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use realip::forwarded::xff;
use realip::resolve::{HeaderSource, Policy};
use std::sync::OnceLock;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .hop_cap(8)
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    // Raw parser over arbitrary bytes: bounded, no panic.
    let n = xff::Line::new(data).count();
    assert!(n <= data.len() / 2 + 1);
    // Split into header lines at NUL bytes, as repeated headers.
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == 0) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append("x-forwarded-for", v);
        }
    }
    let r = policy().resolve("10.0.0.1:1".parse().unwrap(), None, &headers);
    assert!(r.hops().len() <= 8 + 1);
    assert!(r.hops().any(|h| h == r.ip()));
});
