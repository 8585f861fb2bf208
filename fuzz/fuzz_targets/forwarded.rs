//! RFC 7239 Forwarded: the parser and the resolver never panic, and a
//! resolved client is always one of the addresses walked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realip::forwarded::rfc7239;
use realip::resolve::{HeaderSource, Policy};
use realip_fuzz::{check_header_lines, header_policy};
use std::sync::OnceLock;

static POLICY: OnceLock<Policy> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // Each element needs at least `a=b`, so the count is bounded by the input.
    let n = rfc7239::Line::new(data).count();
    assert!(n <= data.len() / 2 + 1);
    let policy = POLICY.get_or_init(|| header_policy(HeaderSource::Forwarded));
    check_header_lines(policy, "forwarded", data);
});
