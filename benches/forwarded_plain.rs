//! A plain timing loop (no criterion) over the forwarded-header parsers on
//! the lines proxies really write, alone and inside a whole resolution:
//! the figures behind each parser fast path's keep-or-delete decision
//! (README, "Fast paths"). Seven rounds, inputs interleaved within each
//! round; the median ns per call is printed. Bounded: about two seconds.
//! `cargo bench --bench forwarded_plain`; `FORWARDED_PLAIN_ONLY=NAME` runs
//! one input alone (e.g. under `valgrind --tool=callgrind`; give the binary
//! `--bench` for the full 200,000 calls per round).

#[path = "common/plain.rs"]
mod plain;

use plain::{median, ns_per_call};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue};
use realip::forwarded::{rfc7239, xff, Node, FORWARDED, X_FORWARDED_FOR};
use realip::resolve::{HeaderSource, Policy};
use realip::trust::TrustedProxies;

const ROUNDS: usize = 7;

/// What nginx (`$proxy_add_x_forwarded_for`), AWS ALB and two tiers write.
const XFF: &[(&str, &str)] = &[
    ("xff_1", "203.0.113.9"),
    ("xff_2", "203.0.113.9, 10.0.0.5"),
    (
        "xff_5",
        "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3",
    ),
    ("xff_port", "203.0.113.9:41234"),
    ("xff_v6", "2001:db8::9"),
];

/// What nginx (`for=$remote_addr`), Envoy and two tiers write.
const FWD: &[(&str, &str)] = &[
    ("fwd_1", "for=203.0.113.9"),
    (
        "fwd_5",
        "for=203.0.113.9, for=10.0.0.5, for=192.168.1.4, for=172.16.0.3, for=10.1.2.3",
    ),
    ("fwd_proto", "for=203.0.113.9;proto=https;host=shop.example"),
    ("fwd_v6", "for=\"[2001:db8::9]:443\""),
];

/// Every entry's address folded into one number, so nothing is skipped.
fn fold(nodes: impl Iterator<Item = Node>) -> u64 {
    nodes.fold(0u64, |acc, n| match n.ip() {
        Some(IpAddr::V4(v4)) => acc.wrapping_mul(31).wrapping_add(u64::from(u32::from(v4))),
        Some(IpAddr::V6(v6)) => acc.wrapping_mul(31).wrapping_add(u128::from(v6) as u64),
        None => acc.wrapping_add(1),
    })
}

fn request(name: HeaderName, value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("shop.example"));
    h.insert("user-agent", HeaderValue::from_static("curl/8.5.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert(name, HeaderValue::from_static(value));
    h
}

fn main() {
    let peer = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 4711));
    let policy = |source| {
        Policy::builder()
            .trusted_proxies(&TrustedProxies::private())
            .header(source)
            .build()
            .expect("a valid policy")
    };
    let by_xff = policy(HeaderSource::XForwardedFor);
    let by_fwd = policy(HeaderSource::Forwarded);

    let mut cases: Vec<(String, Box<dyn Fn() -> u64>)> = Vec::new();
    for &(name, line) in XFF {
        let bytes = line.as_bytes();
        cases.push((
            format!("{name}/line"),
            Box::new(move || fold(xff::Line::new(black_box(bytes)))),
        ));
        let req = request(X_FORWARDED_FOR, line);
        let p = by_xff.clone();
        cases.push((
            format!("{name}/resolve"),
            Box::new(move || {
                let r = p.resolve(peer, None, black_box(&req));
                u64::from(r.ip().is_ipv4()) + u64::from(r.port().unwrap_or(0))
            }),
        ));
    }
    for &(name, line) in FWD {
        let bytes = line.as_bytes();
        cases.push((
            format!("{name}/line"),
            Box::new(move || fold(rfc7239::Line::new(black_box(bytes)))),
        ));
        let req = request(FORWARDED, line);
        let p = by_fwd.clone();
        cases.push((
            format!("{name}/resolve"),
            Box::new(move || {
                let r = p.resolve(peer, None, black_box(&req));
                u64::from(r.ip().is_ipv4()) + u64::from(r.port().unwrap_or(0))
            }),
        ));
    }

    // `cargo test --benches` runs this without `--bench`: a quick smoke run
    // (a debug build would take a minute over the full count).
    let iters = if std::env::args().any(|a| a == "--bench") {
        200_000
    } else {
        200
    };
    if let Ok(only) = std::env::var("FORWARDED_PLAIN_ONLY") {
        for (n, f) in &cases {
            if *n == only {
                ns_per_call(iters, f.as_ref());
            }
        }
        return;
    }
    let mut times = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in cases.iter().enumerate() {
            times[i].push(ns_per_call(iters, f.as_ref()));
        }
    }
    for ((n, _), t) in cases.iter().zip(times) {
        println!("{n:<20} {:>7.2} ns", median(t));
    }
}
