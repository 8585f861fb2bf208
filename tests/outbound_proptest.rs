//! Property: for any resolved chain, what `ForwardHeaders` writes, resolved
//! again by the next hop (which trusts this hop and the proxies this hop
//! trusts), gives the same client, and is exactly as conclusive: passing a
//! request on never makes a guess look certain, nor loses the client.
//! Holds in the believed mode (the default) and in append mode, for
//! `X-Forwarded-For` and `Forwarded`, with and without a PROXY source; the
//! port survives in `Forwarded`, which writes it. The client context
//! (scheme, host, port; and prefix beside `X-Forwarded-For`) survives too:
//! the next hop, reading what this hop wrote, believes the same values,
//! whatever context lists (aligned or not, with malformed entries) or
//! `Forwarded` parameters arrived.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use proptest::prelude::*;
use realip::outbound::{Format, ForwardHeaders, Node};
use realip::proxy::{self, Status};
use realip::resolve::{HeaderSource, Policy};
use realip::RealIp;

/// Trusted: 10.0.0.0/24 and 2001:db8::/120. Untrusted: everything else
/// drawn (10.0.1.x, 2001:db8::1xx).
fn trusted() -> Vec<IpNet> {
    vec![
        "10.0.0.0/24".parse().unwrap(),
        "2001:db8::/120".parse().unwrap(),
    ]
}

/// This hop, as the next hop sees it (inside the trusted set).
const THIS_HOP: &str = "10.0.0.254:40000";

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => (0u32..512).prop_map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))),
        1 => (0u128..512).prop_map(|n| IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | n))),
    ]
}

#[derive(Clone, Debug)]
enum Entry {
    Ip(IpAddr, Option<u16>),
    Junk(&'static str),
}

/// A `Forwarded` element's own `proto` and `host`, if any.
type ElementContext = (Option<&'static str>, Option<&'static str>);

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        10 => (ip(), proptest::option::of(1u16..)).prop_map(|(ip, p)| Entry::Ip(ip, p)),
        1 => prop_oneof![Just("unknown"), Just("garbage"), Just("_hidden")].prop_map(Entry::Junk),
    ]
}

/// Schemes, the last one malformed.
fn scheme() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => prop_oneof![Just("http"), Just("https"), Just("ws"), Just("wss")],
        1 => Just("ftp"),
    ]
}

/// Hosts as a list entry or `Host` writes them, with and without a port;
/// the last one malformed.
fn host() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => prop_oneof![
            Just("shop.example"),
            Just("api.example:8443"),
            Just("internal:80"),
            Just("[2001:db8::9]"),
            Just("[2001:db8::9]:444"),
            Just("10.0.0.9:443"),
        ],
        1 => Just("bad host"),
    ]
}

fn port() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => prop_oneof![Just("80"), Just("443"), Just("8443"), Just("1")],
        1 => Just("99999"),
    ]
}

fn prefix() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => prop_oneof![Just("/app"), Just("/a/b"), Just("/")],
        1 => Just("/../etc"),
    ]
}

/// One context list header (`None`: absent), 0 to 6 entries.
fn list(item: impl Strategy<Value = &'static str>) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::collection::vec(item, 1..6).prop_map(|v| v.join(", ")))
}

/// Every context input a request may carry: the `X-Forwarded-*` lists and,
/// per `Forwarded` element, its own parameters.
#[derive(Clone, Debug)]
struct Context {
    host_header: Option<&'static str>,
    proto: Option<String>,
    host: Option<String>,
    port: Option<String>,
    prefix: Option<String>,
    elements: Vec<ElementContext>,
}

fn context() -> impl Strategy<Value = Context> {
    (
        proptest::option::of(host()),
        list(scheme()),
        list(host()),
        list(port()),
        list(prefix()),
        proptest::collection::vec(
            (proptest::option::of(scheme()), proptest::option::of(host())),
            12,
        ),
    )
        .prop_map(
            |(host_header, proto, host, port, prefix, elements)| Context {
                host_header,
                proto,
                host,
                port,
                prefix,
                elements,
            },
        )
}

/// An element's parameters after its `for=`; a host with `:` or `[` quoted.
fn params((proto, host): ElementContext) -> String {
    let mut out = String::new();
    if let Some(p) = proto {
        out.push_str(";proto=");
        out.push_str(p);
    }
    if let Some(h) = host {
        if h.contains([':', '[', ' ']) {
            out.push_str(&format!(";host=\"{h}\""));
        } else {
            out.push_str(&format!(";host={h}"));
        }
    }
    out
}

fn render(format: Format, entries: &[Entry], cx: &Context) -> String {
    let items: Vec<String> = entries
        .iter()
        .zip(&cx.elements)
        .map(|(e, c)| match (format, e) {
            (Format::XForwardedFor, Entry::Ip(ip, None)) => ip.to_string(),
            (Format::XForwardedFor, Entry::Ip(ip, Some(p))) => SocketAddr::new(*ip, *p).to_string(),
            (Format::XForwardedFor, Entry::Junk(j)) => (*j).to_owned(),
            (_, Entry::Ip(IpAddr::V4(v4), None)) => format!("for={v4}{}", params(*c)),
            (_, Entry::Ip(IpAddr::V6(v6), None)) => format!("for=\"[{v6}]\"{}", params(*c)),
            (_, Entry::Ip(ip, Some(p))) => {
                format!("for=\"{}\"{}", SocketAddr::new(*ip, *p), params(*c))
            }
            (_, Entry::Junk(j)) => format!("for={j}{}", params(*c)),
        })
        .collect();
    items.join(", ")
}

fn policy(format: Format) -> Policy {
    let header = match format {
        Format::XForwardedFor => HeaderSource::XForwardedFor,
        _ => HeaderSource::Forwarded,
    };
    Policy::builder()
        .trust_all(trusted())
        .header(header)
        .context(true)
        .build()
        .unwrap()
}

fn name(format: Format) -> &'static str {
    match format {
        Format::XForwardedFor => "x-forwarded-for",
        _ => "forwarded",
    }
}

/// A PROXY v1 header from `source` (to a fixed destination of its family).
fn proxy_header(source: SocketAddr) -> Arc<proxy::OwnedHeader> {
    let line = match source {
        SocketAddr::V4(s) => format!("PROXY TCP4 {} 10.0.0.250 {} 443\r\n", s.ip(), s.port()),
        SocketAddr::V6(s) => format!("PROXY TCP6 {} 2001:db8::fa {} 443\r\n", s.ip(), s.port()),
    };
    match proxy::parse(line.as_bytes()).unwrap() {
        Status::Complete(h, _) => Arc::new(h.to_owned_header()),
        Status::Partial(_) => unreachable!("a whole line"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn written_then_resolved_again_gives_the_same_client(
        entries in proptest::collection::vec(entry(), 0..12),
        present in any::<bool>(),
        peer_ip in ip(),
        peer_port in 1u16..,
        source in proptest::option::of((ip(), 1u16..)),
        forwarded in any::<bool>(),
        append in any::<bool>(),
        by in any::<bool>(),
        cx in context(),
    ) {
        let format = if forwarded { Format::Forwarded } else { Format::XForwardedFor };
        let mut headers = HeaderMap::new();
        if present {
            headers.insert(name(format), HeaderValue::from_str(&render(format, &entries, &cx)).unwrap());
        }
        if let Some(h) = cx.host_header {
            headers.insert("host", HeaderValue::from_static(h));
        }
        for (n, v) in [
            ("x-forwarded-proto", &cx.proto),
            ("x-forwarded-host", &cx.host),
            ("x-forwarded-port", &cx.port),
            ("x-forwarded-prefix", &cx.prefix),
        ] {
            if let Some(v) = v {
                headers.insert(n, HeaderValue::from_str(v).unwrap());
            }
        }
        let peer = SocketAddr::new(peer_ip, peer_port);
        let header = source.map(|(ip, port)| proxy_header(SocketAddr::new(ip, port)));
        let proxy_source = header.as_ref().and_then(|h| h.source());
        let resolution = policy(format).resolve(peer, proxy_source, &headers);
        let real = RealIp::new(resolution, peer, header);

        let mut writer = ForwardHeaders::new(format);
        if append {
            writer = writer.append();
        }
        if by {
            writer = writer.by(Node::obfuscated("_this-hop").unwrap());
        }
        writer.write(Some(&real), &mut headers);

        let again = policy(format).resolve(THIS_HOP.parse().unwrap(), None, &headers);
        let written = headers.get(name(format)).map(|v| v.to_str().unwrap().to_owned());
        prop_assert_eq!(again.ip(), real.ip(), "{:?} wrote {:?}\n{:?}", real, written, again);
        prop_assert_eq!(again.is_conclusive(), real.is_conclusive(), "{:?} wrote {:?}\n{:?}", real, written, again);
        if format == Format::Forwarded && !append {
            prop_assert_eq!(again.port(), real.port(), "{:?} wrote {:?}\n{:?}", real, written, again);
        }
        // The same client context, in both modes and both formats.
        let (ours, theirs) = (real.context().unwrap(), again.context().unwrap());
        prop_assert_eq!(
            (theirs.scheme(), theirs.host(), theirs.port()),
            (ours.scheme(), ours.host(), ours.port()),
            "{:?}\nwrote {:?}\n{:?}", real, headers, again
        );
        if format == Format::XForwardedFor {
            prop_assert_eq!(theirs.prefix(), ours.prefix(), "{:?}\nwrote {:?}\n{:?}", real, headers, again);
        }
        // The believed chain never carries an address the client could
        // have written left of itself: every written entry is a hop walked.
        if !append {
            let walked: Vec<IpAddr> = real.hops().collect();
            for hop in again.hops().skip(1) {
                prop_assert!(walked.contains(&hop), "{:?} not walked by {:?}", hop, real);
            }
        }
    }
}
