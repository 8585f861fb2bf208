//! Property: whatever the chain and the trusted set, the client is never an
//! address left of the first untrusted hop (the part of the chain a client
//! could have forged), and the result matches a plain reference walk.

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use proptest::prelude::*;
use realip::resolve::{HeaderSource, Policy, Stop};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A chain entry: an address (rendered in one of several syntaxes) or junk.
#[derive(Clone, Debug)]
enum Entry {
    Ip(IpAddr, Option<u16>, u8),
    Junk(&'static str),
}

fn small_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        4 => (0u32..1024).prop_map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))),
        1 => (0u128..256).prop_map(|n| IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | n))),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        12 => (small_ip(), proptest::option::of(any::<u16>()), any::<u8>())
            .prop_map(|(ip, port, style)| Entry::Ip(ip, port, style)),
        1 => prop_oneof![Just("unknown"), Just("_hidden"), Just("garbage"), Just("1.2.3")]
            .prop_map(Entry::Junk),
    ]
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        4 => (0u32..1024, 22u8..=32).prop_map(|(n, len)| {
            IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)), len).unwrap().trunc()
        }),
        1 => (0u128..256, 120u8..=128).prop_map(|(n, len)| {
            IpNet::new(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | n)), len).unwrap().trunc()
        }),
    ]
}

fn render_xff(e: &Entry) -> String {
    match e {
        Entry::Junk(j) => j.to_string(),
        Entry::Ip(ip, port, style) => {
            let ws = if style & 1 == 1 { "\t" } else { " " };
            let text = match (ip, port) {
                (IpAddr::V4(v4), Some(p)) => format!("{v4}:{p}"),
                (IpAddr::V4(v4), None) if style & 2 == 2 => format!("::ffff:{v4}"),
                (IpAddr::V4(v4), None) => v4.to_string(),
                (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
                (IpAddr::V6(v6), None) if style & 2 == 2 => format!("[{v6}]"),
                (IpAddr::V6(v6), None) => v6.to_string(),
            };
            format!("{ws}{text}{ws}")
        }
    }
}

fn render_fwd(e: &Entry, style: u8) -> String {
    let name = if style & 4 == 4 { "FOR" } else { "for" };
    let value = match e {
        Entry::Junk(j) => j.to_string(),
        Entry::Ip(IpAddr::V4(v4), None, _) => v4.to_string(),
        Entry::Ip(IpAddr::V4(v4), Some(p), _) => format!("\"{v4}:{p}\""),
        Entry::Ip(IpAddr::V6(v6), None, _) => format!("\"[{v6}]\""),
        Entry::Ip(IpAddr::V6(v6), Some(p), _) => format!("\"[{v6}]:{p}\""),
    };
    if style & 8 == 8 {
        format!("{name}={value};proto=https")
    } else {
        format!("{name}={value}")
    }
}

/// Splits the rendered entries into header lines at the given cut points.
fn lines(parts: &[String], cuts: &[usize]) -> Vec<String> {
    let mut out = vec![String::new()];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            if cuts.contains(&i) {
                out.push(String::new());
            } else {
                out.last_mut().unwrap().push(',');
            }
        }
        out.last_mut().unwrap().push_str(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_left_of_first_untrusted_hop(
        nets in proptest::collection::vec(net(), 0..12),
        peer in small_ip(),
        chain in proptest::collection::vec(entry(), 0..40),
        cuts in proptest::collection::vec(1usize..40, 0..4),
        cap in 1usize..=realip::resolve::MAX_HOP_CAP,
        use_fwd in any::<bool>(),
        fwd_style in any::<u8>(),
    ) {
        let trusted = |ip: IpAddr| nets.iter().any(|n| n.contains(&ip));
        let source = if use_fwd { HeaderSource::Forwarded } else { HeaderSource::XForwardedFor };
        let policy = Policy::builder()
            .trust_all(nets.iter().copied())
            .header(source.clone())
            .hop_cap(cap)
            .build();
        let policy = match policy {
            Ok(p) => p,
            // No ranges and a header: refused by design.
            Err(e) => {
                prop_assert!(nets.is_empty(), "{e}");
                prop_assert_eq!(e.kind(), realip::trust::ConfigErrorKind::HeaderWithoutTrust);
                return Ok(());
            }
        };
        let parts: Vec<String> = chain
            .iter()
            .map(|e| if use_fwd { render_fwd(e, fwd_style) } else { render_xff(e) })
            .collect();
        let mut headers = HeaderMap::new();
        for line in lines(&parts, &cuts) {
            headers.append(source.name(), HeaderValue::from_str(&line).unwrap());
        }
        let peer_addr = SocketAddr::new(peer, 4242);
        let r = policy.resolve(peer_addr, None, &headers);

        // Positions nearest first: 0 = peer, 1 = rightmost entry, ...
        let nearest_first: Vec<&Entry> = chain.iter().rev().collect();
        // First untrusted hop (or junk) position.
        let mut stop_at = 0;
        let mut want_ip = peer;
        let mut want_stop = Stop::UntrustedHop;
        if trusted(peer) {
            want_stop = Stop::Exhausted;
            for (i, e) in nearest_first.iter().enumerate() {
                if i == cap { want_stop = Stop::HopCap; break; }
                match e {
                    Entry::Junk(_) => { want_stop = Stop::Malformed; break; }
                    Entry::Ip(ip, _, _) => {
                        stop_at = i + 1;
                        want_ip = *ip;
                        if !trusted(*ip) { want_stop = Stop::UntrustedHop; break; }
                    }
                }
            }
        }
        // The walk never went past the first untrusted hop.
        prop_assert!(r.hops().len() - 1 <= stop_at, "{:?} walked past position {}", r, stop_at);
        prop_assert_eq!(r.hops().len() - 1, stop_at);
        prop_assert_eq!(r.ip(), want_ip, "{:?}", r);
        prop_assert_eq!(r.stop(), want_stop, "{:?}", r);
        prop_assert_eq!(r.hops().next_back().unwrap(), r.ip());
        // Every hop before the client was trusted.
        for hop in r.hops().take(r.hops().len() - 1) {
            prop_assert!(trusted(hop), "{hop} passed without trust: {:?}", r);
        }
    }
}
