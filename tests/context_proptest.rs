//! No context value is ever taken from left of the client.
//!
//! Each generated chain mixes trusted hops, untrusted addresses and
//! garbage; each context entry names its own position from the right
//! (`p3.example`, port `1003`, `/p3`), so the result says which entry it
//! came from. Context lists are shorter or longer than the chain and may
//! hold malformed values. Whatever the mix, every value taken comes from a
//! position the address walk believed: at or right of the client.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use realip::resolve::{ContextSource, HeaderSource, Policy};
use std::net::SocketAddr;

#[derive(Clone, Debug)]
enum Entry {
    Trusted(u8),
    Untrusted(u8),
    Garbage,
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => any::<u8>().prop_map(Entry::Trusted),
        2 => any::<u8>().prop_map(Entry::Untrusted),
        1 => Just(Entry::Garbage),
    ]
}

fn addr(e: &Entry) -> String {
    match e {
        Entry::Trusted(n) => format!("10.0.0.{n}"),
        Entry::Untrusted(n) => format!("198.51.100.{n}"),
        Entry::Garbage => "garbage".to_owned(),
    }
}

/// How far the context walk may go: the first untrusted entry (it is the
/// client, and its step is believed), or the entry before garbage.
fn bound(chain_right_to_left: &[Entry]) -> usize {
    for (i, e) in chain_right_to_left.iter().enumerate() {
        match e {
            Entry::Untrusted(_) => return i + 1,
            Entry::Garbage => return i,
            Entry::Trusted(_) => {}
        }
    }
    chain_right_to_left.len()
}

/// A context list of `len` entries whose entry `i` from the right is
/// `f(i)`, or a malformed value where `bad` says so.
fn list(len: usize, bad: &[bool], f: impl Fn(usize) -> String) -> String {
    let mut items: Vec<String> = (1..=len)
        .map(|i| {
            if bad.get(i - 1).copied().unwrap_or(false) {
                "bad value!".to_owned()
            } else {
                f(i)
            }
        })
        .collect();
    items.reverse();
    items.join(", ")
}

fn position(source: ContextSource, proxy: bool) -> Option<usize> {
    match source {
        ContextSource::Header { hop } => Some(hop - usize::from(proxy)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nothing_left_of_the_client(
        chain in prop::collection::vec(entry(), 0..10),
        lens in prop::array::uniform4(0usize..12),
        bad in prop::collection::vec(prop::bool::weighted(0.1), 12),
        forwarded in any::<bool>(),
        proxy in any::<bool>(),
        lines in 1usize..3,
    ) {
        let policy = Policy::builder()
            .trust_private()
            .header(if forwarded { HeaderSource::Forwarded } else { HeaderSource::XForwardedFor })
            .context(true)
            .build()
            .unwrap();
        // `chain` is right to left; headers are written left to right.
        let left_to_right: Vec<&Entry> = chain.iter().rev().collect();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("origin.internal:8080"));
        let n = chain.len();
        if forwarded {
            let elements: Vec<String> = left_to_right
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    let i = n - j; // position from the right
                    let host = if bad.get(i - 1).copied().unwrap_or(false) {
                        "\"bad host\"".to_owned()
                    } else {
                        format!("\"p{i}.example:{}\"", 1000 + i)
                    };
                    match e {
                        Entry::Garbage => "for=garbage".to_owned(),
                        e => format!("for={};host={host}", addr(e)),
                    }
                })
                .collect();
            if !elements.is_empty() {
                headers.insert("forwarded", HeaderValue::from_str(&elements.join(", ")).unwrap());
            }
        } else {
            // Split the chain over `lines` header lines.
            let items: Vec<String> = left_to_right.iter().map(|e| addr(e)).collect();
            let cut = items.len() / lines;
            let (a, b) = items.split_at(cut);
            for part in [a, b] {
                if !part.is_empty() {
                    headers.append("x-forwarded-for", HeaderValue::from_str(&part.join(", ")).unwrap());
                }
            }
            let lists = [
                ("x-forwarded-host", list(lens[0], &bad, |i| format!("p{i}.example"))),
                ("x-forwarded-port", list(lens[1], &bad, |i| format!("{}", 1000 + i))),
                ("x-forwarded-prefix", list(lens[2], &bad, |i| format!("/p{i}"))),
                ("x-forwarded-proto", list(lens[3], &bad, |i| if i % 2 == 0 { "https".into() } else { "http".into() })),
            ];
            for (name, value) in lists {
                if !value.is_empty() {
                    headers.insert(name, HeaderValue::from_str(&value).unwrap());
                }
            }
        }
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let proxy_source: Option<SocketAddr> = proxy.then(|| "10.9.9.9:5000".parse().unwrap());
        let r = policy.resolve(peer, proxy_source, &headers);
        let c = r.context().unwrap();
        let limit = bound(&chain);
        for (what, source) in [
            ("scheme", c.scheme_source()),
            ("host", c.host_source()),
            ("port", c.port_source()),
            ("prefix", c.prefix_source()),
        ] {
            if let Some(pos) = position(source, proxy) {
                prop_assert!(pos >= 1 && pos <= limit, "{what} from entry {pos}, client at {limit}: {r:?}");
            }
        }
        // The values themselves name their entry.
        if let Some(h) = c.host().and_then(|h| h.strip_prefix('p')) {
            let i: usize = h.trim_end_matches(".example").parse().unwrap();
            prop_assert!(i <= limit, "host from entry {i}, client at {limit}");
        }
        if (1001..=1020).contains(&c.port()) {
            prop_assert!(usize::from(c.port()) - 1000 <= limit);
        }
        if let Some(p) = c.prefix() {
            let i: usize = p.trim_start_matches("/p").parse().unwrap();
            prop_assert!(i <= limit);
        }
    }
}
