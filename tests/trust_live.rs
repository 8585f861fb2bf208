//! A policy reading a `LiveTrust`: its decisions follow each swap, every
//! request reads one whole set (never part of the old and part of the
//! new), and the builder refuses combinations that cannot work.
#![cfg(feature = "live")]

use http::{HeaderMap, HeaderValue};
use realip::resolve::{HeaderSource, Policy, Stop};
use realip::trust::live::LiveTrust;
use realip::trust::{ConfigErrorKind, TrustedProxies};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn set(s: &str) -> TrustedProxies {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn xff(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static(value));
    h
}

#[test]
fn decisions_follow_each_swap() {
    let live = LiveTrust::new(set("10.0.0.0/8"));
    let policy = Policy::builder()
        .live_trust(live.clone())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let h = xff("198.51.100.7, 173.245.48.9");
    // The CDN edge is not trusted yet: it is the client.
    let r = policy.resolve(peer, None, &h);
    assert_eq!((r.ip(), r.stop()), (ip("173.245.48.9"), Stop::UntrustedHop));

    live.set_source("cloudflare", set("173.245.48.0/20"))
        .unwrap();
    assert_eq!(policy.resolve(peer, None, &h).ip(), ip("198.51.100.7"));
    // A clone of the policy reads the same live set.
    assert_eq!(
        policy.clone().resolve(peer, None, &h).ip(),
        ip("198.51.100.7")
    );

    // The provider retires the range: it is no longer believed.
    live.set_source("cloudflare", set("104.16.0.0/13")).unwrap();
    assert_eq!(policy.resolve(peer, None, &h).ip(), ip("173.245.48.9"));
    // The base stays whatever the sources do.
    assert!(live.remove_source("cloudflare"));
    let r = policy.resolve(peer, None, &xff("192.0.2.1, 10.9.9.9"));
    assert_eq!(r.ip(), ip("192.0.2.1"));
}

#[test]
fn many_threads_each_see_their_swaps() {
    // Every thread keeps its own cache of the set it read last: each must
    // notice a swap made by another thread on its next request.
    let live = LiveTrust::new(set("10.0.0.0/8"));
    let policy = Policy::builder()
        .live_trust(live.clone())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let h = xff("198.51.100.7, 192.0.2.1");
    for round in 0..20 {
        let trusted = round % 2 == 1;
        if trusted {
            live.set_source("p", set("192.0.2.0/24")).unwrap();
        } else {
            live.set_source("p", set("203.0.113.0/24")).unwrap();
        }
        let want = if trusted { "198.51.100.7" } else { "192.0.2.1" };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| assert_eq!(policy.resolve(peer, None, &h).ip(), ip(want)));
            }
        });
        assert_eq!(
            policy.resolve(peer, None, &h).ip(),
            ip(want),
            "round {round}"
        );
    }
}

#[test]
fn requests_during_swaps_read_the_old_or_the_new_set_whole() {
    // Set A trusts 192.0.2.1 but not 198.51.100.1; set B the reverse.
    // Peer 10.0.0.2 is trusted by both. Chain: client, B-proxy, A-proxy.
    //   whole A: 192.0.2.1 trusted, 198.51.100.1 not -> 198.51.100.1
    //   whole B: 192.0.2.1 not trusted                -> 192.0.2.1
    //   mixed (A for one lookup, B for the next)      -> 203.0.113.5
    let a = set("10.0.0.0/8, 192.0.2.0/24");
    let b = set("10.0.0.0/8, 198.51.100.0/24");
    let live = LiveTrust::new(TrustedProxies::new());
    live.set_source("p", a.clone()).unwrap();
    let policy = Policy::builder()
        .live_trust(live.clone())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let h = xff("203.0.113.5, 198.51.100.1, 192.0.2.1");
    let stop = AtomicBool::new(false);
    let (saw_a, saw_b, total) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let got = policy.resolve(peer, None, &h).ip();
                    total.fetch_add(1, Ordering::Relaxed);
                    if got == ip("198.51.100.1") {
                        saw_a.fetch_add(1, Ordering::Relaxed);
                    } else if got == ip("192.0.2.1") {
                        saw_b.fetch_add(1, Ordering::Relaxed);
                    } else {
                        panic!("a request read parts of two sets: client {got}");
                    }
                }
            });
        }
        let mut swaps = 0;
        while swaps < 500 && Instant::now() < deadline {
            let next = if swaps % 2 == 0 { &b } else { &a };
            live.set_source("p", next.clone()).unwrap();
            swaps += 1;
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (na, nb) = (saw_a.load(Ordering::Relaxed), saw_b.load(Ordering::Relaxed));
    assert_eq!(na + nb, total.load(Ordering::Relaxed));
    assert!(
        na > 0 && nb > 0,
        "both sets were read during the swaps: {na} / {nb}"
    );
}

#[test]
fn builder_rules_for_live_sets() {
    let live = LiveTrust::new(TrustedProxies::private());
    let err = Policy::builder()
        .live_trust(live.clone())
        .trust_loopback()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::LiveWithRanges);
    let err = Policy::builder()
        .live_trust(live.clone())
        .trusted_hops(2)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::HopCountWithRanges);
    let err = Policy::builder()
        .live_trust(live.clone())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::NoHeaderSource);
    // An empty live set is still trust to come: the header is allowed.
    let empty = LiveTrust::new(TrustedProxies::new());
    let p = Policy::builder()
        .live_trust(empty.clone())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    assert_eq!(p.resolve(peer, None, &xff("192.0.2.1")).ip(), peer.ip());
    assert!(p.live_trust().is_some() && p.trusted_proxies().is_empty());
    let _ = Arc::new(p);
}
