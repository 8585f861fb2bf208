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
//!   networks (and the fixed one once more, after it: the scatter between
//!   two rows of the same code), each pair also timed in alternating
//!   slices (printed).

#[path = "common/trust.rs"]
mod common;

use common::{aws_and_private, headers, peer, policies, probes, ten, AWS, CHAINS, CLOUDFLARE_V4};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::HeaderMap;
use realip::resolve::Policy;
use realip::trust::providers::{parse_aws, parse_cidr_list, AwsFilter};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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

    let (fixed, live) = policies(&big);
    let peer = peer();
    let mut g = c.benchmark_group("resolve");
    for (chain, value) in CHAINS {
        let h = headers(value);
        assert_eq!(
            fixed.resolve(peer, None, &h).ip(),
            live.resolve(peer, None, &h).ip()
        );
        // `fixed_again` is the fixed policy timed once more, after `live`:
        // how far two criterion rows of the very same code differ here.
        for (mode, policy) in [("fixed", &fixed), ("live", &live), ("fixed_again", &fixed)] {
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
