//! Invariants every PROXY parse result must keep, shared by the fuzz targets.

use realip::proxy::{self, Status};

/// Checks one parse result of `data` (from any of the parsers).
pub fn check(data: &[u8], result: Result<Status<'_>, proxy::Error>) {
    match result {
        Ok(Status::Complete(h, n)) => {
            assert!(n <= data.len(), "consumed {n} of {}", data.len());
            // The header alone parses the same; one byte less is Partial.
            assert_eq!(proxy::parse(&data[..n]), Ok(Status::Complete(h, n)));
            assert!(matches!(proxy::parse(&data[..n - 1]), Ok(Status::Partial(_))));
            // Re-encoding gives a header that parses back equal.
            let mut out = Vec::new();
            h.write_to(&mut out).expect("a parsed header encodes");
            assert_eq!(proxy::parse(&out), Ok(Status::Complete(h, out.len())));
            // Validated TLVs iterate to the end of their region.
            let walked: usize = h.tlvs().map(|t| 3 + t.value.len()).sum();
            assert_eq!(walked, h.tlv_bytes().len());
            if let Some(ssl) = h.ssl() {
                let _ = ssl.tlvs().count();
            }
            assert_eq!(h.to_owned_header().as_header(), h);
        }
        Ok(Status::Partial(need)) => {
            if let Some(need) = need {
                assert!(data.len() + need.get() <= proxy::v2::MAX_LEN);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The trusted-private policy the header targets resolve with, reading only
/// `source`, with a small hop cap so the cap is reached often.
pub fn header_policy(source: realip::resolve::HeaderSource) -> realip::resolve::Policy {
    realip::resolve::Policy::builder()
        .trust_private()
        .header(source)
        .hop_cap(HOP_CAP)
        .build()
        .unwrap()
}

const HOP_CAP: usize = 8;

/// Splits `data` at NUL bytes into repeated `name` lines, resolves them with
/// `policy`, and checks the walk stayed within the cap and the client is one
/// of the hops walked.
pub fn check_header_lines(policy: &realip::resolve::Policy, name: &'static str, data: &[u8]) {
    let mut headers = http::HeaderMap::new();
    for line in data.split(|&b| b == 0) {
        if let Ok(v) = http::HeaderValue::from_bytes(line) {
            headers.append(name, v);
        }
    }
    let r = policy.resolve("10.0.0.1:1".parse().unwrap(), None, &headers);
    assert!(r.hops().len() <= HOP_CAP + 1);
    assert!(r.hops().any(|h| h == r.ip()));
}
