//! Provider-sized trusted sets, side by side in one run:
//!
//! - `aws_parse_build`: the real AWS `ip-ranges.json` snapshot (13,344
//!   prefixes) parsed and its set built, next to serde_json reading the
//!   same bytes into nothing (the floor), the CloudFront subset, and the
//!   plain Cloudflare list;
//! - `lookup`: `contains` over the same 64 probe addresses (IPv4, then
//!   IPv6) in a 10-network set and in the AWS set plus the private preset;
//! - `resolve`: the same 1-hop and 5-hop `X-Forwarded-For` resolutions
//!   through a fixed set and through a `LiveTrust` holding the same
//!   networks, each pair also timed in alternating slices (printed).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use realip::resolve::{HeaderSource, Policy};
use realip::trust::live::LiveTrust;
use realip::trust::providers::{parse_aws, parse_cidr_list, AwsFilter};
use realip::trust::TrustedProxies;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

const AWS: &[u8] = include_bytes!("../tests/fixtures/ranges/aws-ip-ranges.json");
const CLOUDFLARE_V4: &str = include_str!("../tests/fixtures/ranges/cloudflare-v4-ip-ranges.txt");

/// The private, CGNAT and link-local presets plus one documentation
/// range, as in `benches/resolve.rs`.
fn ten() -> TrustedProxies {
    let mut t = TrustedProxies::private();
    t.merge(&TrustedProxies::cgnat()).unwrap();
    t.merge(&TrustedProxies::link_local()).unwrap();
    t.add("192.0.2.0/24".parse().unwrap()).unwrap();
    assert_eq!(t.len(), 10);
    t
}

fn aws_and_private() -> TrustedProxies {
    let mut t = parse_aws(AWS, &AwsFilter::all()).unwrap();
    assert_eq!(t.len(), 13_344);
    t.merge(&TrustedProxies::private()).unwrap();
    t
}

/// 64 addresses: every fourth inside an AWS prefix, the rest spread over
/// public IPv4 or, for `v6`, the IPv6 `2600::/16` block where AWS's
/// IPv6 prefixes cluster (mostly outside both sets).
fn probes(aws: &TrustedProxies, v6: bool) -> Vec<IpAddr> {
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

fn headers(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.com"));
    h.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert("x-forwarded-for", HeaderValue::from_static(value));
    h
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("aws_parse_build");
    g.throughput(Throughput::Bytes(AWS.len() as u64));
    g.bench_function("aws_all_13344", |b| {
        b.iter(|| parse_aws(black_box(AWS), &AwsFilter::all()).unwrap())
    });
    // The floor: serde_json reading the same document into nothing.
    g.bench_function("json_scan_only", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(AWS)).unwrap())
    });
    g.bench_function("aws_cloudfront", |b| {
        let f = AwsFilter::service("CLOUDFRONT");
        b.iter(|| parse_aws(black_box(AWS), &f).unwrap())
    });
    g.finish();
    c.bench_function("cloudflare_v4_list", |b| {
        b.iter(|| parse_cidr_list(black_box(CLOUDFLARE_V4)).unwrap())
    });

    let small = ten();
    let big = aws_and_private();
    let mut g = c.benchmark_group("lookup");
    for (family, v6) in [("v4", false), ("v6", true)] {
        let probe = probes(&big, v6);
        g.throughput(Throughput::Elements(probe.len() as u64));
        for (name, set) in [("ten", &small), ("aws", &big)] {
            g.bench_function(format!("{family}/{name}"), |b| {
                b.iter(|| {
                    let mut n = 0;
                    for &ip in &probe {
                        n += usize::from(black_box(set).contains(ip));
                    }
                    n
                })
            });
        }
    }
    g.finish();

    let fixed = Policy::builder()
        .trusted_proxies(&big)
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
    let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let mut g = c.benchmark_group("resolve");
    for (chain, value) in [
        ("xff_1hop", "203.0.113.9"),
        (
            "xff_5hop",
            "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3",
        ),
    ] {
        let h = headers(value);
        assert_eq!(
            fixed.resolve(peer, None, &h).ip(),
            live.resolve(peer, None, &h).ip()
        );
        for (mode, policy) in [("fixed", &fixed), ("live", &live)] {
            g.bench_function(format!("{chain}/{mode}"), |b| {
                b.iter(|| black_box(policy).resolve(black_box(peer), None, black_box(&h)))
            });
        }
        interleaved(chain, &fixed, &live, peer, &h);
    }
    g.finish();
}

/// The same two resolutions timed in alternating slices (the order
/// swapped every pair), so load from other processes on this shared
/// machine falls on both alike: prints live / fixed overall and the
/// median of the per-pair ratios.
fn interleaved(chain: &str, fixed: &Policy, live: &Policy, peer: SocketAddr, h: &HeaderMap) {
    const PAIRS: usize = 40;
    const PER_SLICE: u32 = 100_000;
    let slice = |p: &Policy| {
        let t = Instant::now();
        for _ in 0..PER_SLICE {
            black_box(black_box(p).resolve(black_box(peer), None, black_box(h)));
        }
        t.elapsed()
    };
    let (mut total_fixed, mut total_live) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        let (f, l) = if i % 2 == 0 {
            let f = slice(fixed);
            (f, slice(live))
        } else {
            let l = slice(live);
            (slice(fixed), l)
        };
        total_fixed += f;
        total_live += l;
        ratios.push(l.as_secs_f64() / f.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(PER_SLICE) / PAIRS as f64;
    println!(
        "resolve/{chain} interleaved ({PAIRS} pairs of {PER_SLICE}): fixed {:.1} ns, live {:.1} ns, \
         live/fixed overall {:.3}, median pair {:.3}",
        per(total_fixed),
        per(total_live),
        total_live.as_secs_f64() / total_fixed.as_secs_f64(),
        ratios[PAIRS / 2],
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
