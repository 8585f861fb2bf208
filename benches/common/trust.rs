//! Inputs shared by the trusted-set benches (criterion's `trust` and the
//! plain timing loop `trust_plain`), so both time the same sets, probes and
//! requests.
#![allow(dead_code)]

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use realip::resolve::{HeaderSource, Policy};
use realip::trust::live::LiveTrust;
use realip::trust::providers::{parse_aws, AwsFilter};
use realip::trust::TrustedProxies;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The real AWS `ip-ranges.json` snapshot (13,344 prefixes).
pub(crate) const AWS: &[u8] = include_bytes!("../../tests/fixtures/ranges/aws-ip-ranges.json");
/// Cloudflare's `ips-v4` list.
pub(crate) const CLOUDFLARE_V4: &str =
    include_str!("../../tests/fixtures/ranges/cloudflare-v4-ip-ranges.txt");

/// The private, CGNAT and link-local presets plus one documentation
/// range, as in `benches/resolve.rs`.
pub(crate) fn ten() -> TrustedProxies {
    let mut t = TrustedProxies::private();
    t.merge(&TrustedProxies::cgnat()).unwrap();
    t.merge(&TrustedProxies::link_local()).unwrap();
    t.add("192.0.2.0/24".parse().unwrap()).unwrap();
    assert_eq!(t.len(), 10);
    t
}

/// Every AWS prefix plus the private preset.
pub(crate) fn aws_and_private() -> TrustedProxies {
    let mut t = parse_aws(AWS, &AwsFilter::all()).unwrap();
    assert_eq!(t.len(), 13_344);
    t.merge(&TrustedProxies::private()).unwrap();
    t
}

/// 64 addresses: every fourth inside an AWS prefix, the rest spread over
/// public IPv4 or, for `v6`, the IPv6 `2600::/16` block where AWS's
/// IPv6 prefixes cluster (mostly outside both sets).
pub(crate) fn probes(aws: &TrustedProxies, v6: bool) -> Vec<IpAddr> {
    let nets: Vec<IpNet> = aws
        .iter()
        .copied()
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..64)
        .map(|i| {
            let r = next();
            match i % 4 {
                0 => nets[(r as usize) % nets.len()].network(),
                _ if !v6 => IpAddr::V4(Ipv4Addr::from((r >> 16) as u32)),
                _ => IpAddr::V6(Ipv6Addr::from((0x2600u128 << 112) | (u128::from(r) << 40))),
            }
        })
        .collect()
}

/// A request's headers with one `X-Forwarded-For` value.
pub(crate) fn headers(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.com"));
    h.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert("x-forwarded-for", HeaderValue::from_static(value));
    h
}

/// The 1-hop and 5-hop chains resolved through both policies.
pub(crate) const CHAINS: [(&str, &str); 2] = [
    ("xff_1hop", "203.0.113.9"),
    (
        "xff_5hop",
        "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3",
    ),
];

/// The peer every resolution comes from (inside the private preset).
pub(crate) fn peer() -> SocketAddr {
    "10.0.0.2:40000".parse().unwrap()
}

/// The same networks behind a fixed policy and behind a live one.
pub(crate) fn policies(big: &TrustedProxies) -> (Policy, Policy) {
    let fixed = Policy::builder()
        .trusted_proxies(big)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let live_set = LiveTrust::new(TrustedProxies::new());
    live_set.set_source("aws", big.clone()).unwrap();
    let live = Policy::builder()
        .live_trust(live_set)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    (fixed, live)
}
