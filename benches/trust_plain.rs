//! A plain timing loop over the same pairs as the criterion bench `trust`
//! (no criterion): AWS parse and build against serde_json's floor, lookups
//! in the 10-network set against the AWS set (IPv4, IPv6), and resolution
//! through a fixed set against a `LiveTrust` (1 and 5 hops). Seven rounds,
//! the two of each pair alternating within a round; the median time per
//! operation and the ratio of the second to the first are printed.
//! Bounded: a few seconds. `cargo bench --bench trust_plain --features
//! providers,live`.
//!
//! `TRUST_PLAIN_ONLY=lookup_v6/aws` (a `group/name` below) runs that one
//! operation alone, `TRUST_PLAIN_ITERS` times (default 1,000), inside
//! `run_only`, for `valgrind --tool=callgrind --toggle-collect='*run_only*'`
//! to count its instructions.

#[path = "common/trust.rs"]
mod common;

#[path = "common/plain.rs"]
mod plain;

use common::{aws_and_private, headers, peer, policies, probes, ten, AWS, CHAINS};
use http::HeaderMap;
use plain::median;
use realip::resolve::Policy;
use realip::trust::providers::{parse_aws, AwsFilter};
use realip::trust::TrustedProxies;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const ROUNDS: usize = 7;

type Op<'a> = Box<dyn Fn() -> usize + 'a>;

fn ns_per_op(iters: u32, f: &dyn Fn() -> usize) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

#[inline(never)]
fn run_only(iters: u32, f: &dyn Fn() -> usize) {
    for _ in 0..iters {
        black_box(f());
    }
}

/// Times `a` and `b` alternately (the order swapped every round) and
/// prints both medians and `b / a`.
fn pair(group: &str, iters: u32, a: (&str, Op<'_>), b: (&str, Op<'_>)) {
    if let Ok(only) = std::env::var("TRUST_PLAIN_ONLY") {
        let n = std::env::var("TRUST_PLAIN_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000);
        for (name, f) in [&a, &b] {
            if format!("{group}/{name}") == only {
                run_only(n, f);
            }
        }
        return;
    }
    ns_per_op(iters / 4 + 1, &a.1);
    ns_per_op(iters / 4 + 1, &b.1);
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ta.push(ns_per_op(iters, &a.1));
            tb.push(ns_per_op(iters, &b.1));
        } else {
            tb.push(ns_per_op(iters, &b.1));
            ta.push(ns_per_op(iters, &a.1));
        }
    }
    let (ma, mb) = (median(ta), median(tb));
    println!(
        "{group}: {} {ma:.1} ns, {} {mb:.1} ns, {}/{} {:.3}",
        a.0,
        b.0,
        b.0,
        a.0,
        mb / ma
    );
}

fn lookups<'a>(set: &'a TrustedProxies, probe: &'a [IpAddr]) -> Op<'a> {
    Box::new(move || {
        let mut n = 0;
        for &ip in probe {
            n += usize::from(black_box(set).contains(ip));
        }
        n
    })
}

fn resolves<'a>(p: &'a Policy, peer: SocketAddr, h: &'a HeaderMap) -> Op<'a> {
    Box::new(move || {
        let r = black_box(p).resolve(black_box(peer), None, black_box(h));
        usize::from(black_box(r).ip().is_ipv4())
    })
}

fn main() {
    pair(
        "aws_parse_build",
        20,
        (
            "json_scan_only",
            Box::new(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(AWS)).unwrap();
                0
            }),
        ),
        (
            "aws_all_13344",
            Box::new(|| parse_aws(black_box(AWS), &AwsFilter::all()).unwrap().len()),
        ),
    );

    let small = ten();
    let big = aws_and_private();
    for (group, v6) in [("lookup_v4", false), ("lookup_v6", true)] {
        let probe = probes(&big, v6);
        pair(
            group,
            20_000,
            ("ten", lookups(&small, &probe)),
            ("aws", lookups(&big, &probe)),
        );
    }

    let (fixed, live) = policies(&big);
    let peer = peer();
    for (chain, value) in CHAINS {
        let h = headers(value);
        pair(
            &format!("resolve_{chain}"),
            1_000_000,
            ("fixed", resolves(&fixed, peer, &h)),
            ("live", resolves(&live, peer, &h)),
        );
    }
}
