//! Outbound cost: writing the next hop's `X-Forwarded-For` / `Forwarded`
//! from a resolved request, next to resolving that same request, in one
//! run (the bar: writing costs no more than resolving did). Both
//! routines get a fresh clone of the request's headers, made outside the
//! timing, so they differ only by the work measured. `floor` is the least
//! any writer pays: one `HeaderValue` made from the exact bytes written
//! (validated, allocated), nothing composed and nothing placed. The `_ctx`
//! rows resolve and write the client context too (`X-Forwarded-Proto` and
//! `-Host` present); there the writer is compared with `resolve_read`,
//! the resolution plus its first `context()` read, since the writer reads
//! the context and pays for it wherever the resolution defers it. Every
//! `write` gets a `RealIp` of its own, resolved outside the timing. Also the PROXY v2 header an upstream connection
//! starts with (once per connection).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, HeaderValue};
use realip::outbound::{Format, ForwardHeaders, ProxyVersion, UpstreamHeader};
use realip::resolve::{HeaderSource, Policy};
use realip::RealIp;
use std::hint::black_box;
use std::net::SocketAddr;

const XFF_1: &str = "203.0.113.9";
const XFF_5: &str = "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3";
const FWD_1: &str = "for=203.0.113.9";
const FWD_5: &str = "for=203.0.113.9, for=10.0.0.5, for=192.168.1.4, for=172.16.0.3, for=10.1.2.3";
const FWD_1_CTX: &str = "for=203.0.113.9;proto=https;host=shop.example";

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
    let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let mut g = c.benchmark_group("outbound");
    for (label, format, value, context) in [
        ("xff_1hop", Format::XForwardedFor, XFF_1, false),
        ("xff_5hop", Format::XForwardedFor, XFF_5, false),
        ("fwd_1hop", Format::Forwarded, FWD_1, false),
        ("fwd_5hop", Format::Forwarded, FWD_5, false),
        ("xff_1hop_ctx", Format::XForwardedFor, XFF_1, true),
        ("fwd_1hop_ctx", Format::Forwarded, FWD_1_CTX, true),
    ] {
        let (name, source) = match format {
            Format::XForwardedFor => ("x-forwarded-for", HeaderSource::XForwardedFor),
            _ => ("forwarded", HeaderSource::Forwarded),
        };
        let policy = Policy::builder()
            .trust_private()
            .header(source)
            .context(context)
            .build()
            .unwrap();
        let mut incoming = headers(name, value);
        if context && format == Format::XForwardedFor {
            incoming.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            incoming.insert("x-forwarded-host", HeaderValue::from_static("shop.example"));
        }
        let real = RealIp::new(policy.resolve(peer, None, &incoming), peer, None);
        assert_eq!(real.ip().to_string(), "203.0.113.9");
        let writer = ForwardHeaders::new(format);
        let appender = ForwardHeaders::new(format).append();

        g.bench_function(format!("resolve/{label}"), |b| {
            b.iter_batched_ref(
                || incoming.clone(),
                |h| black_box(policy.resolve(black_box(peer), None, h)),
                BatchSize::SmallInput,
            )
        });
        if context {
            // What resolving did, for a writer that reads the context: the
            // resolution and its first context() read (the walk, wherever
            // it runs).
            g.bench_function(format!("resolve_read/{label}"), |b| {
                b.iter_batched_ref(
                    || incoming.clone(),
                    |h| {
                        let r = policy.resolve(black_box(peer), None, h);
                        black_box(r.context().map(|c| c.scheme()));
                        r
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        // A fresh RealIp for every write, as each request has: nothing the
        // writer reads was computed by an earlier iteration.
        g.bench_function(format!("write/{label}"), |b| {
            b.iter_batched_ref(
                || {
                    let h = incoming.clone();
                    let r = RealIp::new(policy.resolve(peer, None, &h), peer, None);
                    (h, r)
                },
                |(h, r)| writer.write(Some(black_box(&*r)), h),
                BatchSize::SmallInput,
            )
        });
        let mut written = incoming.clone();
        writer.write(Some(&real), &mut written);
        let bytes = written[name].as_bytes().to_vec();
        g.bench_function(format!("floor/{label}"), |b| {
            b.iter_batched_ref(
                || incoming.clone(),
                |_| black_box(HeaderValue::from_bytes(black_box(&bytes))),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("append/{label}"), |b| {
            b.iter_batched_ref(
                || incoming.clone(),
                |h| appender.write(Some(black_box(&real)), h),
                BatchSize::SmallInput,
            )
        });
    }
    let header = UpstreamHeader::new(
        ProxyVersion::V2,
        "203.0.113.9:5123".parse().unwrap(),
        "10.0.0.1:443".parse().unwrap(),
    )
    .authority("example.com")
    .unique_id(b"edge-1-1".to_vec())
    .crc32c();
    g.bench_function("proxy_v2_header/encode", |b| {
        b.iter(|| black_box(&header).encode())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
