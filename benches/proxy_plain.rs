//! A plain timing loop over the same contenders as `proxy_parse` (no
//! criterion): each parses the same bytes and hands back the same outputs
//! (client address, header length, VPC endpoint id on the NLB header),
//! black-boxed. 41 short rounds, contenders interleaved within each round;
//! printed: the median ns per parse, and how many times realip's time each
//! contender takes as the median of the per-round ratios (a round times
//! every contender within a few milliseconds, so load that comes and goes
//! on a shared machine falls on all of them alike). Bounded: a few seconds.
//! `cargo bench --bench proxy_plain`.

#[path = "common/proxy.rs"]
mod common;

#[path = "common/plain.rs"]
mod plain;

use plain::{median, ns_per_call};

use common::Out;

const ROUNDS: usize = 41;

fn group(name: &str, iters: u32, contenders: &[(&str, &dyn Fn() -> Out)]) {
    // `PROXY_PLAIN_ONLY=v2_nlb/ppp`: run that one contender alone (e.g. under
    // `valgrind --tool=callgrind` to count its instructions).
    if let Ok(only) = std::env::var("PROXY_PLAIN_ONLY") {
        for (n, f) in contenders {
            if format!("{name}/{n}") == only {
                ns_per_call(iters, *f);
            }
        }
        return;
    }
    // The outputs agree before anything is timed.
    let first = (contenders[0].1)();
    for (n, f) in contenders {
        assert_eq!(f(), first, "{name}: {n} computes something else");
    }
    let mut times = vec![Vec::new(); contenders.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in contenders.iter().enumerate() {
            times[i].push(ns_per_call(iters, *f));
        }
    }
    println!("{name} ({} bytes)", contenders[0].1().1);
    for ((n, _), t) in contenders.iter().zip(&times) {
        let ratios = t.iter().zip(&times[0]).map(|(x, r)| x / r).collect();
        println!(
            "  {n:<16} {:>7.2} ns   realip is {:.2}x",
            median(t.clone()),
            median(ratios)
        );
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a quick smoke run.
    let iters = if std::env::args().any(|a| a == "--bench") {
        200_000
    } else {
        1_000
    };
    let ipv4 = common::v2_ipv4();
    group(
        "v2_ipv4",
        iters,
        &[
            ("realip", &|| common::realip::<true, false>(&ipv4)),
            ("ppp", &|| common::ppp::<false>(&ipv4)),
            ("proxy-header", &|| common::proxy_header::<false>(&ipv4)),
        ],
    );
    let nlb = common::nlb();
    group(
        "v2_nlb",
        iters,
        &[
            ("realip", &|| common::realip::<true, true>(&nlb)),
            ("realip_no_crc", &|| common::realip::<false, true>(&nlb)),
            ("ppp", &|| common::ppp::<true>(&nlb)),
            ("proxy-header", &|| common::proxy_header::<true>(&nlb)),
        ],
    );
}
