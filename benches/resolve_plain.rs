//! A plain timing loop (no criterion) over the rows of `resolve`'s
//! `context_*` groups (context off; on without context headers; on with
//! them; each "resolve" alone and "resolve+read", with the first
//! `context()` read that runs the deferred context walk) and the #14
//! request (five other headers, then `X-Forwarded-For`; 5 hops over 10
//! trusted ranges, default policy and context off) next to `client-ip`'s
//! rightmost entry. Seven rounds, contenders interleaved
//! within each round; the median ns per call and the ratio to the first
//! row of each group are printed. Bounded: a few seconds.
//! `cargo bench --bench resolve_plain`; `RESOLVE_PLAIN_ONLY=group/row` runs
//! that row alone (for `valgrind --tool=callgrind`, with
//! `RESOLVE_PLAIN_ITERS` calls).

#[path = "common/plain.rs"]
mod plain;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use plain::{median, ns_per_call};
use realip::resolve::{HeaderSource, Policy};
use realip::trust::TrustedProxies;
use std::hint::black_box;
use std::net::SocketAddr;

const ROUNDS: usize = 7;

fn ten_ranges() -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = TrustedProxies::private().iter().copied().collect();
    nets.extend(TrustedProxies::cgnat().iter().copied());
    nets.extend(TrustedProxies::link_local().iter().copied());
    nets.push("192.0.2.0/24".parse().unwrap());
    assert_eq!(nets.len(), 10);
    nets
}

fn group(name: &str, iters: u32, rows: &[(&str, &dyn Fn() -> u64)]) {
    if let Ok(only) = std::env::var("RESOLVE_PLAIN_ONLY") {
        let iters = std::env::var("RESOLVE_PLAIN_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(iters);
        for (n, f) in rows {
            if format!("{name}/{n}") == only {
                ns_per_call(iters, *f);
            }
        }
        return;
    }
    let mut times = vec![Vec::new(); rows.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in rows.iter().enumerate() {
            times[i].push(ns_per_call(iters, *f));
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    println!("{name}");
    for ((n, _), m) in rows.iter().zip(&medians) {
        println!("  {n:<20} {m:>7.2} ns   {:.2}x", m / medians[0]);
    }
}

fn map(lines: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in lines {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

fn main() {
    let peer: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let build = |source: HeaderSource, on: bool| {
        Policy::builder()
            .trust_all(ten_ranges())
            .header(source)
            .context(on)
            .build()
            .unwrap()
    };
    let common = [
        ("host", "example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
    ];
    let xff5 = "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3";
    let fwd5 = "for=203.0.113.9, for=10.0.0.5, for=192.168.1.4, for=172.16.0.3, for=10.1.2.3";
    type Case = (
        &'static str,
        HeaderSource,
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    let cases: [Case; 4] = [
        (
            "context_xff_1hop",
            HeaderSource::XForwardedFor,
            "x-forwarded-for",
            "203.0.113.9",
            "203.0.113.9",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "shop.example"),
                ("x-forwarded-port", "443"),
            ],
        ),
        (
            "context_xff_5hop",
            HeaderSource::XForwardedFor,
            "x-forwarded-for",
            xff5,
            xff5,
            &[
                ("x-forwarded-proto", "https, http, http, http, http"),
                ("x-forwarded-host", "shop.example"),
                ("x-forwarded-port", "443"),
            ],
        ),
        (
            "context_fwd_1hop",
            HeaderSource::Forwarded,
            "forwarded",
            "for=203.0.113.9",
            "for=203.0.113.9;proto=https;host=shop.example",
            &[],
        ),
        (
            "context_fwd_5hop",
            HeaderSource::Forwarded,
            "forwarded",
            fwd5,
            "for=203.0.113.9;proto=https;host=shop.example, for=10.0.0.5, for=192.168.1.4, \
             for=172.16.0.3, for=10.1.2.3",
            &[],
        ),
    ];
    for (name, source, header, plain, with_cx, extra) in cases {
        let mut absent = map(&common);
        absent.insert(header, HeaderValue::from_static(plain));
        let mut present = map(&common);
        present.insert(header, HeaderValue::from_static(with_cx));
        for (k, v) in extra {
            present.insert(*k, HeaderValue::from_static(v));
        }
        let (off, on) = (build(source.clone(), false), build(source, true));
        let r = on.resolve(peer, None, &present);
        assert_eq!(r.context().unwrap().host(), Some("shop.example"));
        let run = |p: &Policy, h: &HeaderMap| {
            let r = p.resolve(black_box(peer), None, black_box(h));
            r.port().map_or(0, u64::from) ^ r.hops().len() as u64
        };
        // The same, then the first `context()` read (which runs the
        // deferred context walk): the price of an app that reads it.
        let read = |p: &Policy, h: &HeaderMap| {
            let r = p.resolve(black_box(peer), None, black_box(h));
            let cx = r.context().unwrap();
            r.port().map_or(0, u64::from) ^ cx.host().map_or(0, |h| h.len() as u64)
        };
        group(
            name,
            200_000,
            &[
                ("off", &|| run(&off, &absent)),
                ("absent-resolve", &|| run(&on, &absent)),
                ("absent-resolve+read", &|| read(&on, &absent)),
                ("present-resolve", &|| run(&on, &present)),
                ("present-resolve+read", &|| read(&on, &present)),
            ],
        );
    }

    // #14: five other headers, X-Forwarded-For last; the default policy
    // (context on) walking 5 hops over 10 ranges, against client-ip's
    // rightmost entry with no trust check.
    let h = map(&[
        ("host", "example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=abc123"),
        ("x-forwarded-for", xff5),
    ]);
    let default = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    assert!(default.has_context());
    assert_eq!(default.resolve(peer, None, &h).hops().len(), 6);
    let off14 = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::XForwardedFor)
        .context(false)
        .build()
        .unwrap();
    group(
        "issue14_xff_5hop",
        200_000,
        &[
            ("realip-default", &|| {
                let r = default.resolve(black_box(peer), None, black_box(&h));
                r.port().map_or(0, u64::from) ^ r.hops().len() as u64
            }),
            ("realip-off", &|| {
                let r = off14.resolve(black_box(peer), None, black_box(&h));
                r.port().map_or(0, u64::from) ^ r.hops().len() as u64
            }),
            ("client-ip-rightmost", &|| {
                client_ip::rightmost_x_forwarded_for(black_box(&h))
                    .map_or(0, |ip| u64::from(ip.is_ipv4()))
            }),
        ],
    );

    // #14's resolve-side fast paths beside their general paths. The hand
    // scan of a small HeaderMap against the hashed `get_all`:
    let name = http::HeaderName::from_static("x-forwarded-for");
    group(
        "fastpath_header_lookup",
        200_000,
        &[
            ("scan", &|| {
                let mut n = 0;
                for (k, v) in black_box(&h) {
                    if k == black_box(&name) {
                        n = v.len() as u64;
                    }
                }
                n
            }),
            ("get_all", &|| {
                black_box(&h)
                    .get_all(black_box(&name))
                    .iter()
                    .next_back()
                    .map_or(0, |v| v.len() as u64)
            }),
        ],
    );
    // A built-in name recorded as a static `Source` pointer, against a
    // custom name of the same length, cloned into every resolution.
    let custom = http::HeaderName::from_static("x-forwarded-fxr");
    let mut h_custom = map(&common);
    h_custom.insert(custom.clone(), HeaderValue::from_static(xff5));
    let mut h_builtin = map(&common);
    h_builtin.insert("x-forwarded-for", HeaderValue::from_static(xff5));
    let shared = build(HeaderSource::XForwardedFor, false);
    let owned = build(HeaderSource::List(custom), false);
    let run = |p: &Policy, h: &HeaderMap| {
        let r = p.resolve(black_box(peer), None, black_box(h));
        r.port().map_or(0, u64::from) ^ r.hops().len() as u64
    };
    assert_eq!(run(&shared, &h_builtin), run(&owned, &h_custom));
    group(
        "fastpath_source",
        200_000,
        &[
            ("static-pointer", &|| run(&shared, &h_builtin)),
            ("cloned-name", &|| run(&owned, &h_custom)),
        ],
    );
}
