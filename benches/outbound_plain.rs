//! A plain timing loop (no criterion) over the same pairs as `outbound`:
//! resolving a request and writing its next hop's header, each on a fresh
//! clone of the same headers. The clone alone is timed too and subtracted,
//! so the figures are the work itself. Seven rounds, the contenders
//! interleaved within each round; the median ns per call and the ratio
//! write/resolve are printed. Bounded: a few seconds.
//! `cargo bench --features outbound --bench outbound_plain`.
//!
//! `OUTBOUND_PLAIN_ONLY=xff_1hop/write` (or `/resolve`, `/resolve_read`,
//! `/real`, `/fresh`, `/floor`, `/clone`) runs that one routine alone,
//! `OUTBOUND_PLAIN_ITERS` times (default 100000), for
//! `valgrind --tool=callgrind`: instructions per call are the difference
//! between two runs of different lengths divided by the extra iterations.
//! `write` reuses one `RealIp`; `fresh` resolves a new one each call
//! (`fresh` minus `real` is the write from a fresh `RealIp`, to compare
//! with `resolve_read` minus `clone` on the context rows).

#[path = "common/plain.rs"]
mod plain;

use plain::median;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use http::{HeaderMap, HeaderValue};
use realip::outbound::{Format, ForwardHeaders};
use realip::resolve::{HeaderSource, Policy};
use realip::RealIp;

const ROUNDS: usize = 7;

const CASES: [(&str, Format, &str, bool); 6] = [
    ("xff_1hop", Format::XForwardedFor, "203.0.113.9", false),
    (
        "xff_5hop",
        Format::XForwardedFor,
        "203.0.113.9, 10.0.0.5, 192.168.1.4, 172.16.0.3, 10.1.2.3",
        false,
    ),
    ("fwd_1hop", Format::Forwarded, "for=203.0.113.9", false),
    (
        "fwd_5hop",
        Format::Forwarded,
        "for=203.0.113.9, for=10.0.0.5, for=192.168.1.4, for=172.16.0.3, for=10.1.2.3",
        false,
    ),
    ("xff_1hop_ctx", Format::XForwardedFor, "203.0.113.9", true),
    (
        "fwd_1hop_ctx",
        Format::Forwarded,
        "for=203.0.113.9;proto=https;host=shop.example",
        true,
    ),
];

struct Case {
    label: &'static str,
    policy: Policy,
    peer: SocketAddr,
    incoming: HeaderMap,
    real: RealIp,
    writer: ForwardHeaders,
    /// The address header's value as written, for the `floor` routine.
    written: Vec<u8>,
}

fn case(label: &'static str, format: Format, value: &'static str, context: bool) -> Case {
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
    let mut incoming = HeaderMap::new();
    incoming.insert("host", HeaderValue::from_static("example.com"));
    incoming.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    incoming.insert("accept", HeaderValue::from_static("*/*"));
    incoming.insert(name, HeaderValue::from_static(value));
    if context && format == Format::XForwardedFor {
        incoming.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        incoming.insert("x-forwarded-host", HeaderValue::from_static("shop.example"));
    }
    let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    let real = RealIp::new(policy.resolve(peer, None, &incoming), peer, None);
    assert_eq!(real.ip().to_string(), "203.0.113.9");
    let writer = ForwardHeaders::new(format);
    let mut out = incoming.clone();
    writer.write(Some(&real), &mut out);
    let written = out[name].as_bytes().to_vec();
    Case {
        label,
        policy,
        peer,
        incoming,
        real,
        writer,
        written,
    }
}

fn run(c: &Case, routine: &str, iters: u32) -> f64 {
    let start = Instant::now();
    match routine {
        "clone" => {
            for _ in 0..iters {
                black_box(black_box(&c.incoming).clone());
            }
        }
        // The least any writer pays: one HeaderValue from the exact bytes.
        "floor" => {
            for _ in 0..iters {
                let h = black_box(&c.incoming).clone();
                black_box(http::HeaderValue::from_bytes(black_box(&c.written)).ok());
                black_box(h);
            }
        }
        "resolve" => {
            for _ in 0..iters {
                let h = black_box(&c.incoming).clone();
                black_box(c.policy.resolve(black_box(c.peer), None, &h));
                black_box(h);
            }
        }
        // The resolution and its first context() read: what resolving did
        // for a writer that reads the context.
        "resolve_read" => {
            for _ in 0..iters {
                let h = black_box(&c.incoming).clone();
                let r = c.policy.resolve(black_box(c.peer), None, &h);
                black_box(r.context().map(|cx| cx.scheme()));
                black_box((r, h));
            }
        }
        // A fresh RealIp per request, unwritten: the baseline of `fresh`.
        "real" => {
            for _ in 0..iters {
                let h = black_box(&c.incoming).clone();
                let r = RealIp::new(c.policy.resolve(black_box(c.peer), None, &h), c.peer, None);
                black_box((black_box(r), h));
            }
        }
        // Writing from that fresh RealIp: nothing the writer reads was
        // computed by an earlier call.
        "fresh" => {
            for _ in 0..iters {
                let mut h = black_box(&c.incoming).clone();
                let r = RealIp::new(c.policy.resolve(black_box(c.peer), None, &h), c.peer, None);
                c.writer.write(Some(black_box(&r)), &mut h);
                black_box((r, h));
            }
        }
        _ => {
            for _ in 0..iters {
                let mut h = black_box(&c.incoming).clone();
                c.writer.write(Some(black_box(&c.real)), &mut h);
                black_box(h);
            }
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() {
    let cases: Vec<Case> = CASES
        .iter()
        .map(|&(l, f, v, cx)| case(l, f, v, cx))
        .collect();
    if let Ok(only) = std::env::var("OUTBOUND_PLAIN_ONLY") {
        let iters = std::env::var("OUTBOUND_PLAIN_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let (label, routine) = only.split_once('/').expect("CASE/ROUTINE");
        let c = cases.iter().find(|c| c.label == label).expect("a case");
        run(c, routine, iters);
        return;
    }
    let iters = 20_000;
    println!("case            resolve ns   write ns   write/resolve");
    for c in &cases {
        let mut t = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, r) in ["clone", "resolve", "write"].iter().enumerate() {
                t[i].push(run(c, r, iters));
            }
        }
        let [clone, resolve, write] = t.map(median);
        let (resolve, write) = (resolve - clone, write - clone);
        println!(
            "{:<14} {resolve:>10.1} {write:>10.1}   {:>6.2}",
            c.label,
            write / resolve
        );
    }
}
