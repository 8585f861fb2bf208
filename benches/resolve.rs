//! Resolution cost: 1-hop and 5-hop `X-Forwarded-For` and `Forwarded`
//! chains with 10 and with 10,000 trusted ranges, next to the `real-ip`
//! crate (same trust list, linear scan) and `client-ip` (rightmost
//! `X-Forwarded-For` entry, no trust check) on the same inputs, with the
//! bare `HeaderMap::get_all` lookup (pre-built name, and `&str` key) as a
//! reference.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use realip::resolve::{HeaderSource, Policy};
use realip::trust::TrustedProxies;
use std::collections::HashSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The private, CGNAT and link-local presets plus one documentation range:
/// 10 networks.
fn ten_ranges() -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = TrustedProxies::private().iter().copied().collect();
    nets.extend(TrustedProxies::cgnat().iter().copied());
    nets.extend(TrustedProxies::link_local().iter().copied());
    nets.push("192.0.2.0/24".parse().unwrap());
    assert_eq!(nets.len(), 10);
    nets
}

/// 10,000 distinct networks shaped like a cloud provider's published list:
/// mostly /24s and /20s across public IPv4 space, some IPv6 /32–/48s,
/// plus the private preset so the benchmark chain stays trusted.
fn many_ranges() -> Vec<IpNet> {
    let mut nets = ten_ranges();
    let ten = TrustedProxies::from_nets(nets.iter().copied()).unwrap();
    let mut seen: HashSet<IpNet> = nets.iter().copied().collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while nets.len() < 10_000 {
        let r = next();
        let net = match r % 10 {
            0..=5 | 7 => {
                let len = if r % 10 == 7 { 20 } else { 24 };
                // Public unicast: 1.0.0.0 .. 223.255.255.255, skipping 10/8,
                // 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16.
                let a = (r >> 8) as u32;
                let first = 1 + (a >> 24) % 223;
                let ip = Ipv4Addr::from((first << 24) | (a & 0x00ff_ffff));
                if ten.contains(IpAddr::V4(ip)) {
                    continue;
                }
                IpNet::V4(Ipv4Net::new(ip, len).unwrap().trunc())
            }
            _ => {
                let len = [32u8, 36, 40, 44, 48][(r >> 4) as usize % 5];
                let hi = 0x2000_u128 | u128::from((r >> 16) & 0x0fff);
                let ip = Ipv6Addr::from((hi << 112) | (u128::from(next()) << 48));
                IpNet::V6(Ipv6Net::new(ip, len).unwrap().trunc())
            }
        };
        if seen.insert(net) {
            nets.push(net);
        }
    }
    nets
}

const XFF_1: &str = "203.0.113.9";
const XFF_5: &str = "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3";
const FWD_1: &str = "for=203.0.113.9";
const FWD_5: &str = "for=203.0.113.9, for=10.0.0.5, for=192.168.1.4, for=172.16.0.3, for=10.1.2.3";

fn headers(name: &'static str, value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    // A realistic request carries other headers too.
    h.insert("host", HeaderValue::from_static("example.com"));
    h.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h.insert(name, HeaderValue::from_static(value));
    h
}

fn bench(c: &mut Criterion) {
    let peer: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let client: IpAddr = "203.0.113.9".parse().unwrap();
    let sets = [("10", ten_ranges()), ("10k", many_ranges())];
    let inputs = [
        ("xff_1hop", "x-forwarded-for", XFF_1),
        ("xff_5hop", "x-forwarded-for", XFF_5),
        ("fwd_1hop", "forwarded", FWD_1),
        ("fwd_5hop", "forwarded", FWD_5),
    ];
    for (input, name, value) in inputs {
        let h = headers(name, value);
        let mut group = c.benchmark_group(input);
        for (label, nets) in &sets {
            // The usual configuration: the one header the proxies send.
            let source = if name == "forwarded" {
                HeaderSource::Forwarded
            } else {
                HeaderSource::XForwardedFor
            };
            let policy = Policy::builder()
                .trust_all(nets.iter().copied())
                .header(source)
                .build()
                .unwrap();
            assert_eq!(policy.resolve(peer, None, &h).ip(), client);
            group.bench_with_input(BenchmarkId::new("realip", label), &h, |b, h| {
                b.iter(|| policy.resolve(black_box(peer), None, black_box(h)).ip())
            });
            assert_eq!(real_ip::real_ip(&h, peer.ip(), nets), Some(client));
            group.bench_with_input(BenchmarkId::new("real-ip", label), &h, |b, h| {
                b.iter(|| real_ip::real_ip(black_box(h), black_box(peer.ip()), nets))
            });
        }
        // Floor: one hashed lookup of a pre-built name, as a resolver that
        // builds its names once pays it. A `&str` key would be parsed and
        // validated on every call first, which is the `str-key` figure.
        let header_name = HeaderName::from_static(name);
        group.bench_with_input(BenchmarkId::new("headermap-get_all", "name"), &h, |b, h| {
            b.iter(|| {
                black_box(h)
                    .get_all(black_box(&header_name))
                    .iter()
                    .next_back()
                    .map(|v| v.len())
            })
        });
        group.bench_with_input(
            BenchmarkId::new("headermap-get_all", "str-key"),
            &h,
            |b, h| {
                b.iter(|| {
                    black_box(h)
                        .get_all(black_box(name))
                        .iter()
                        .next_back()
                        .map(|v| v.len())
                })
            },
        );
        if name == "x-forwarded-for" {
            // No trust list: the rightmost entry, whatever it is.
            assert!(client_ip::rightmost_x_forwarded_for(&h).is_ok());
            group.bench_with_input(BenchmarkId::new("client-ip", "rightmost"), &h, |b, h| {
                b.iter(|| client_ip::rightmost_x_forwarded_for(black_box(h)).ok())
            });
        }
        group.finish();
    }

    context(c, peer, client);
    issue14(c, peer, client);
    fast_paths(c, peer, client);

    // Trusted-range lookup alone: 10 vs 10,000 ranges, hit and miss.
    let mut group = c.benchmark_group("trust_lookup");
    for (label, nets) in &sets {
        let set = TrustedProxies::from_nets(nets.iter().copied()).unwrap();
        for (what, ip) in [
            ("hit_v4", "172.16.0.3"),
            ("miss_v4", "203.0.113.9"),
            ("miss_v6", "2001:db8::1"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            group.bench_with_input(BenchmarkId::new(what, label), &ip, |b, ip| {
                b.iter(|| set.contains(black_box(*ip)))
            });
        }
    }
    group.finish();
}

/// The client context's cost, side by side in one group per input: the
/// address alone (`off`: `context(false)`), context on with no context
/// header (`absent`: only `Host`), and context on with the headers a
/// TLS-terminating proxy sets (`present`: `X-Forwarded-Proto`, `-Host`,
/// `-Port`; `proto=`/`host=` for `Forwarded`), each as `resolve` and
/// `resolve+read`.
fn context(c: &mut Criterion, peer: SocketAddr, client: IpAddr) {
    const XFF_CX: &[(&str, &str)] = &[
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-port", "443"),
    ];
    const XFF5_CX: &[(&str, &str)] = &[
        ("x-forwarded-proto", "https, http, http, http, http"),
        ("x-forwarded-host", "shop.example"),
        ("x-forwarded-port", "443"),
    ];
    /// Group, address header, its name, its value without and with the
    /// context, the context headers.
    type Input<'a> = (
        &'a str,
        HeaderSource,
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
    );
    let inputs: [Input<'_>; 4] = [
        (
            "context_xff_1hop",
            HeaderSource::XForwardedFor,
            "x-forwarded-for",
            XFF_1,
            XFF_1,
            XFF_CX,
        ),
        (
            "context_xff_5hop",
            HeaderSource::XForwardedFor,
            "x-forwarded-for",
            XFF_5,
            XFF_5,
            XFF5_CX,
        ),
        (
            "context_fwd_1hop",
            HeaderSource::Forwarded,
            "forwarded",
            FWD_1,
            "for=203.0.113.9;proto=https;host=shop.example",
            &[],
        ),
        (
            "context_fwd_5hop",
            HeaderSource::Forwarded,
            "forwarded",
            FWD_5,
            "for=203.0.113.9;proto=https;host=shop.example, for=10.0.0.5, for=192.168.1.4, \
             for=172.16.0.3, for=10.1.2.3",
            &[],
        ),
    ];
    for (group_name, source, name, plain, with_cx, extra) in inputs {
        let mut group = c.benchmark_group(group_name);
        let absent = headers(name, plain);
        let mut present = headers(name, with_cx);
        for (k, v) in extra {
            present.insert(*k, HeaderValue::from_static(v));
        }
        let build = |on: bool| {
            Policy::builder()
                .trust_all(ten_ranges())
                .header(source.clone())
                .context(on)
                .build()
                .unwrap()
        };
        let (off, on) = (build(false), build(true));
        assert_eq!(off.resolve(peer, None, &absent).ip(), client);
        let r = on.resolve(peer, None, &present);
        assert_eq!(r.ip(), client);
        assert_eq!(r.context().unwrap().host(), Some("shop.example"));
        assert_eq!(
            on.resolve(peer, None, &absent).context().unwrap().host(),
            Some("example.com")
        );
        // Each context case twice: the resolution alone (what every request
        // pays), and with the first `context()` read, which runs the
        // deferred context walk (what an app that reads it pays).
        group.bench_with_input(BenchmarkId::new("off", "resolve"), &absent, |b, h| {
            b.iter(|| off.resolve(black_box(peer), None, black_box(h)).ip())
        });
        for (case, h) in [("absent", &absent), ("present", &present)] {
            group.bench_with_input(BenchmarkId::new(case, "resolve"), h, |b, h| {
                b.iter(|| on.resolve(black_box(peer), None, black_box(h)).ip())
            });
            group.bench_with_input(BenchmarkId::new(case, "resolve+read"), h, |b, h| {
                b.iter(|| {
                    let r = on.resolve(black_box(peer), None, black_box(h));
                    let host_len = r.context().unwrap().host().map_or(0, str::len);
                    (r.ip(), host_len)
                })
            });
        }
        group.finish();
    }
}

/// Issue #14's request: five other headers, then `X-Forwarded-For`; the
/// default policy (context on) walks 5 hops over 10 trusted ranges, where
/// `client-ip` takes the rightmost entry with no trust check.
fn issue14_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=abc123"),
        ("x-forwarded-for", XFF_5),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn issue14(c: &mut Criterion, peer: SocketAddr, client: IpAddr) {
    let h = issue14_headers();
    let default = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    assert!(default.has_context());
    let r = default.resolve(peer, None, &h);
    assert_eq!((r.ip(), r.hops().len()), (client, 6));
    let off = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::XForwardedFor)
        .context(false)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("issue14_xff_5hop");
    group.bench_function("realip/default", |b| {
        b.iter(|| default.resolve(black_box(peer), None, black_box(&h)).ip())
    });
    group.bench_function("realip/context-off", |b| {
        b.iter(|| off.resolve(black_box(peer), None, black_box(&h)).ip())
    });
    group.bench_function("client-ip/rightmost", |b| {
        b.iter(|| client_ip::rightmost_x_forwarded_for(black_box(&h)).ok())
    });
    group.finish();
}

/// The resolve-side fast paths of #14, each beside the general path it
/// stands in for, on the same request in the same run.
fn fast_paths(c: &mut Criterion, peer: SocketAddr, client: IpAddr) {
    let mut group = c.benchmark_group("fastpath");
    // 1. The hand scan of the HeaderMap (what `lookup` does for maps of up
    // to 12 lines) against the hashed `get_all` it replaces.
    let name = HeaderName::from_static("x-forwarded-for");
    for (label, h) in [
        ("4-lines", headers("x-forwarded-for", XFF_5)),
        ("6-lines", issue14_headers()),
    ] {
        group.bench_function(BenchmarkId::new("header-scan", label), |b| {
            b.iter(|| {
                let mut found = None;
                for (k, v) in black_box(&h) {
                    if k == black_box(&name) {
                        found = Some(v.len());
                    }
                }
                found
            })
        });
        group.bench_function(BenchmarkId::new("header-get_all", label), |b| {
            b.iter(|| {
                black_box(&h)
                    .get_all(black_box(&name))
                    .iter()
                    .next_back()
                    .map(|v| v.len())
            })
        });
    }
    // 2. Static `Source` pointers: a built-in name records a pointer to a
    // shared `Source`; a custom name of the same length is cloned into
    // every resolution (and dropped), the general path.
    let custom = HeaderName::from_static("x-forwarded-fxr");
    let h_builtin = headers("x-forwarded-for", XFF_5);
    let h_custom = {
        let mut h = headers("x-forwarded-fxr", XFF_5);
        h.remove("x-forwarded-for");
        h
    };
    let shared = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::XForwardedFor)
        .context(false)
        .build()
        .unwrap();
    let owned = Policy::builder()
        .trust_all(ten_ranges())
        .header(HeaderSource::List(custom))
        .context(false)
        .build()
        .unwrap();
    assert_eq!(shared.resolve(peer, None, &h_builtin).ip(), client);
    assert_eq!(owned.resolve(peer, None, &h_custom).ip(), client);
    group.bench_function("source/static-pointer", |b| {
        b.iter(|| {
            shared
                .resolve(black_box(peer), None, black_box(&h_builtin))
                .ip()
        })
    });
    group.bench_function("source/cloned-name", |b| {
        b.iter(|| {
            owned
                .resolve(black_box(peer), None, black_box(&h_custom))
                .ip()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
