//! X-Forwarded-For: the parser and the resolver never panic, and a
//! resolved client is always one of the addresses walked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realip::forwarded::xff;
use realip::resolve::{HeaderSource, Policy};
use realip_fuzz::{check_header_lines, header_policy};
use std::sync::OnceLock;

static POLICY: OnceLock<Policy> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // Raw parser over arbitrary bytes: bounded, no panic.
    let n = xff::Line::new(data).count();
    assert!(n <= data.len() / 2 + 1);
    let policy = POLICY.get_or_init(|| header_policy(HeaderSource::XForwardedFor));
    check_header_lines(policy, "x-forwarded-for", data);
});
