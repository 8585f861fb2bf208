//! Adversarial, table-driven resolution cases: every row is a request
//! (headers with repeated lines, socket peer, optional PROXY source) and a
//! policy, with the expected client, port, deciding source and stop reason.

use http::{HeaderMap, HeaderName, HeaderValue};
use realip::resolve::{HeaderSource, Policy, Source, Stop};
use realip::trust::ConfigErrorKind;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug)]
enum P {
    /// Secure default: trusts nobody.
    Default,
    /// Private ranges, X-Forwarded-For.
    Xff,
    /// Private ranges, Forwarded.
    Fwd,
    /// Private ranges, X-Forwarded-For, one step.
    NonRec,
    /// Private ranges, X-Forwarded-For, hop cap.
    Cap(usize),
    /// Hop-count mode over X-Forwarded-For.
    Count(usize),
    /// Private ranges and a single-address header.
    Single(HeaderSource),
    /// Only 10.0.0.0/8 trusted, X-Forwarded-For.
    Ten,
    /// Private and link-local ranges, X-Forwarded-For.
    XffLinkLocal,
}

fn policy(p: &P) -> Policy {
    let b = Policy::builder();
    let b = match p {
        P::Default => return Policy::default(),
        P::Xff => b.trust_private().header(HeaderSource::XForwardedFor),
        P::Fwd => b.trust_private().header(HeaderSource::Forwarded),
        P::NonRec => b
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .recursive(false),
        P::Cap(n) => b
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .hop_cap(*n),
        P::Count(n) => b.trusted_hops(*n).header(HeaderSource::XForwardedFor),
        P::Single(s) => b.trust_private().header(s.clone()),
        P::Ten => b
            .trust("10.0.0.0/8".parse().unwrap())
            .header(HeaderSource::XForwardedFor),
        P::XffLinkLocal => b
            .trust_private()
            .trust_link_local()
            .header(HeaderSource::XForwardedFor),
    };
    b.build().unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum S {
    Socket,
    Proxy,
    Hdr(&'static str),
}

struct Case {
    name: &'static str,
    policy: P,
    peer: &'static str,
    proxy: Option<&'static str>,
    headers: Vec<(String, String)>,
    ip: &'static str,
    port: Option<u16>,
    source: S,
    stop: Stop,
}

const XFF: &str = "x-forwarded-for";
const FWD: &str = "forwarded";
const PEER: &str = "10.0.0.1:1000";

fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn c(
    name: &'static str,
    policy: P,
    peer: &'static str,
    proxy: Option<&'static str>,
    headers: Vec<(String, String)>,
    ip: &'static str,
    port: Option<u16>,
    source: S,
    stop: Stop,
) -> Case {
    Case {
        name,
        policy,
        peer,
        proxy,
        headers,
        ip,
        port,
        source,
        stop,
    }
}

fn long_chain(n: usize, left: &str, right: &str) -> String {
    let mut s = String::from(left);
    for i in 0..n {
        s.push_str(&format!(", 10.{}.{}.1", (i / 256) % 256, i % 256));
    }
    s.push_str(right);
    s
}

fn cases() -> Vec<Case> {
    use Stop::*;
    use S::*;
    let xff = |v: &str| h(&[(XFF, v)]);
    let fwd = |v: &str| h(&[(FWD, v)]);
    let real = |v: &str| h(&[("x-real-ip", v)]);
    vec![
        // --- spoofing and trust of the peer -------------------------------
        c(
            "spoofed leftmost",
            P::Xff,
            PEER,
            None,
            xff("6.6.6.6, 203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "spoofed private-looking leftmost",
            P::Xff,
            PEER,
            None,
            xff("10.9.9.9, 203.0.113.5, 10.0.0.2"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "untrusted peer, forged header",
            P::Xff,
            "198.51.100.7:555",
            None,
            xff("1.1.1.1"),
            "198.51.100.7",
            Some(555),
            Socket,
            UntrustedHop,
        ),
        c(
            "untrusted peer, forged private chain",
            P::Xff,
            "198.51.100.7:555",
            None,
            xff("203.0.113.5, 10.0.0.3"),
            "198.51.100.7",
            Some(555),
            Socket,
            UntrustedHop,
        ),
        c(
            "default policy ignores headers",
            P::Default,
            PEER,
            None,
            xff("203.0.113.5"),
            "10.0.0.1",
            Some(1000),
            Socket,
            UntrustedHop,
        ),
        c(
            "default policy ignores headers from loopback",
            P::Default,
            "127.0.0.1:80",
            None,
            xff("203.0.113.5"),
            "127.0.0.1",
            Some(80),
            Socket,
            UntrustedHop,
        ),
        c(
            "narrow trust: 192.168 peer not trusted",
            P::Ten,
            "192.168.1.1:1",
            None,
            xff("203.0.113.5"),
            "192.168.1.1",
            Some(1),
            Socket,
            UntrustedHop,
        ),
        c(
            "narrow trust: 192.168 entry is the client",
            P::Ten,
            PEER,
            None,
            xff("203.0.113.5, 192.168.1.1"),
            "192.168.1.1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        // --- repeated lines ------------------------------------------------
        c(
            "three lines, last nearest",
            P::Xff,
            PEER,
            None,
            h(&[(XFF, "6.6.6.6"), (XFF, "203.0.113.5"), (XFF, "10.0.0.2")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "lines with several entries",
            P::Xff,
            PEER,
            None,
            h(&[(XFF, "203.0.113.5, 10.0.0.9"), (XFF, "10.0.0.2, 10.0.0.3")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "empty line between",
            P::Xff,
            PEER,
            None,
            h(&[(XFF, "203.0.113.5"), (XFF, ""), (XFF, "10.0.0.2")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "forged first line",
            P::Xff,
            PEER,
            None,
            h(&[(XFF, "10.0.0.99, 10.0.0.98"), (XFF, "203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        // --- malformed entries end the walk --------------------------------
        c(
            "garbage mid-chain",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, garbage, 10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(XFF),
            Malformed,
        ),
        c(
            "unknown mid-chain",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, unknown, 10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(XFF),
            Malformed,
        ),
        c(
            "_hidden mid-chain",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, _hidden, 10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(XFF),
            Malformed,
        ),
        c(
            "garbage nearest",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, garbage"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "garbage left of client is never reached",
            P::Xff,
            PEER,
            None,
            xff("garbage, 203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "octal-looking entry",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, 010.0.0.2"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "port out of range",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5:70000, 10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(XFF),
            Malformed,
        ),
        c(
            "garbage in the last line",
            P::Xff,
            PEER,
            None,
            h(&[(XFF, "203.0.113.5"), (XFF, "1.2.3")]),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        // --- all trusted / empty -------------------------------------------
        c(
            "all trusted: leftmost",
            P::Xff,
            PEER,
            None,
            xff("10.0.0.5, 192.168.1.1, 10.0.0.2"),
            "10.0.0.5",
            None,
            Hdr(XFF),
            Exhausted,
        ),
        c(
            "single trusted entry",
            P::Xff,
            PEER,
            None,
            xff("172.16.0.1:99"),
            "172.16.0.1",
            Some(99),
            Hdr(XFF),
            Exhausted,
        ),
        c(
            "empty value",
            P::Xff,
            PEER,
            None,
            xff(""),
            "10.0.0.1",
            Some(1000),
            Socket,
            Exhausted,
        ),
        c(
            "only separators",
            P::Xff,
            PEER,
            None,
            xff(" , ,\t,"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Exhausted,
        ),
        c(
            "tabs and spaces",
            P::Xff,
            PEER,
            None,
            xff("\t203.0.113.5 ,\t 10.0.0.2\t"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        // --- ports ---------------------------------------------------------
        c(
            "ipv4 port",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5:5678"),
            "203.0.113.5",
            Some(5678),
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "bracketed ipv6 port",
            P::Xff,
            PEER,
            None,
            xff("[2001:db8::1]:443"),
            "2001:db8::1",
            Some(443),
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "bracketed ipv6 no port",
            P::Xff,
            PEER,
            None,
            xff("[2001:db8::1]"),
            "2001:db8::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "bare ipv6",
            P::Xff,
            PEER,
            None,
            xff("2001:db8::1"),
            "2001:db8::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "trusted hop with port passes",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5:1, 10.0.0.2:8080"),
            "203.0.113.5",
            Some(1),
            Hdr(XFF),
            UntrustedHop,
        ),
        // --- IPv4-mapped ---------------------------------------------------
        c(
            "mapped entry normalized",
            P::Xff,
            PEER,
            None,
            xff("::ffff:203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "mapped trusted entry",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, [::ffff:10.0.0.2]:80"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "mapped trusted peer",
            P::Xff,
            "[::ffff:10.0.0.1]:1000",
            None,
            xff("203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "mapped untrusted peer normalized",
            P::Xff,
            "[::ffff:198.51.100.7]:9",
            None,
            xff("203.0.113.5"),
            "198.51.100.7",
            Some(9),
            Socket,
            UntrustedHop,
        ),
        // --- IPv6 zones ----------------------------------------------------
        c(
            "zoned link-local never trusted",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, fe80::1%eth0"),
            "fe80::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "zoned bracketed with port",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, [fe80::2%25en0]:80"),
            "fe80::2",
            Some(80),
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "same link-local without zone is trusted when link-local is",
            P::XffLinkLocal,
            PEER,
            None,
            xff("203.0.113.5, fe80::1"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "zoned link-local untrusted even when link-local is",
            P::XffLinkLocal,
            PEER,
            None,
            xff("203.0.113.5, fe80::1%eth0"),
            "fe80::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "link-local not trusted by private()",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, fe80::1"),
            "fe80::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "cgnat not trusted by private()",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, 100.64.0.9"),
            "100.64.0.9",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "empty zone is malformed",
            P::Xff,
            PEER,
            None,
            xff("203.0.113.5, fe80::1%"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        // --- underscore look-alikes ----------------------------------------
        c(
            "underscore xff never read",
            P::Xff,
            PEER,
            None,
            h(&[("x_forwarded_for", "203.0.113.5")]),
            "10.0.0.1",
            Some(1000),
            Socket,
            HeaderAbsent,
        ),
        c(
            "underscore xff beside the real one",
            P::Xff,
            PEER,
            None,
            h(&[("x_forwarded_for", "6.6.6.6"), (XFF, "203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "underscore x_real_ip never read",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            h(&[("x_real_ip", "203.0.113.5")]),
            "10.0.0.1",
            Some(1000),
            Socket,
            HeaderAbsent,
        ),
        // --- hop cap -------------------------------------------------------
        c(
            "hop cap reached",
            P::Cap(4),
            PEER,
            None,
            xff(&long_chain(10, "203.0.113.5", "")),
            "10.0.6.1",
            None,
            Hdr(XFF),
            HopCap,
        ),
        c(
            "hop cap exactly exhausted",
            P::Cap(4),
            PEER,
            None,
            xff("10.0.0.4, 10.0.0.3, 10.0.0.2, 10.0.0.1"),
            "10.0.0.4",
            None,
            Hdr(XFF),
            Exhausted,
        ),
        c(
            "client found at the cap",
            P::Cap(4),
            PEER,
            None,
            xff("203.0.113.5, 10.0.0.3, 10.0.0.2, 10.0.0.1"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "garbage after the cap is not read",
            P::Cap(2),
            PEER,
            None,
            xff("garbage, 10.0.0.3, 10.0.0.2"),
            "10.0.0.3",
            None,
            Hdr(XFF),
            HopCap,
        ),
        c(
            "10,000-entry trusted chain",
            P::Xff,
            PEER,
            None,
            xff(&long_chain(10_000, "203.0.113.5", "")),
            "10.38.240.1",
            None,
            Hdr(XFF),
            HopCap,
        ),
        c(
            "10,000-entry forged chain, real client near",
            P::Xff,
            PEER,
            None,
            xff(&long_chain(10_000, "1.1.1.1", ", 203.0.113.5, 10.0.0.2")),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "10,000 lines",
            P::Xff,
            PEER,
            None,
            (0..10_000)
                .map(|i| (XFF.to_string(), format!("10.0.{}.{}", i / 250, i % 250 + 1)))
                .collect(),
            "10.0.39.219",
            None,
            Hdr(XFF),
            HopCap,
        ),
        // --- recursion off -------------------------------------------------
        c(
            "non-recursive: one step onto trusted",
            P::NonRec,
            PEER,
            None,
            xff("203.0.113.5, 10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(XFF),
            SingleStep,
        ),
        c(
            "non-recursive: one step onto client",
            P::NonRec,
            PEER,
            None,
            xff("6.6.6.6, 203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "non-recursive: untrusted peer",
            P::NonRec,
            "198.51.100.7:1",
            None,
            xff("203.0.113.5"),
            "198.51.100.7",
            Some(1),
            Socket,
            UntrustedHop,
        ),
        c(
            "non-recursive: garbage",
            P::NonRec,
            PEER,
            None,
            xff("203.0.113.5, garbage"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        // --- hop count -----------------------------------------------------
        c(
            "count 1: rightmost",
            P::Count(1),
            "198.51.100.7:1",
            None,
            xff("6.6.6.6, 203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            HopCount,
        ),
        c(
            "count 2: second from right",
            P::Count(2),
            "198.51.100.7:1",
            None,
            xff("6.6.6.6, 203.0.113.5, 198.51.100.20"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            HopCount,
        ),
        c(
            "count 2 across lines",
            P::Count(2),
            "198.51.100.7:1",
            None,
            h(&[(XFF, "6.6.6.6, 203.0.113.5"), (XFF, "198.51.100.20")]),
            "203.0.113.5",
            None,
            Hdr(XFF),
            HopCount,
        ),
        c(
            "count 3: too short fails closed",
            P::Count(3),
            "198.51.100.7:1",
            None,
            xff("203.0.113.5, 198.51.100.20"),
            "198.51.100.7",
            Some(1),
            Socket,
            TooShort,
        ),
        c(
            "count 2: header absent is too short",
            P::Count(2),
            "198.51.100.7:1",
            None,
            vec![],
            "198.51.100.7",
            Some(1),
            Socket,
            TooShort,
        ),
        c(
            "count 1 with PROXY source: the NLB is the one proxy, forged xff unread",
            P::Count(1),
            PEER,
            Some("198.51.100.20:7000"),
            xff("6.6.6.6"),
            "198.51.100.20",
            Some(7000),
            Proxy,
            HopCount,
        ),
        c(
            "count 1 with PROXY source and no header",
            P::Count(1),
            PEER,
            Some("198.51.100.20:7000"),
            vec![],
            "198.51.100.20",
            Some(7000),
            Proxy,
            HopCount,
        ),
        c(
            "count 3: zoned entry ends the walk as the client",
            P::Count(3),
            "198.51.100.7:1",
            None,
            xff("6.6.6.6, 203.0.113.5, fe80::1%eth0"),
            "fe80::1",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "count 2: malformed before the client",
            P::Count(2),
            "198.51.100.7:1",
            None,
            xff("203.0.113.5, unknown"),
            "198.51.100.7",
            Some(1),
            Socket,
            Malformed,
        ),
        c(
            "count 2 with PROXY source: the PROXY sender counts as a hop",
            P::Count(2),
            PEER,
            Some("198.51.100.20:7000"),
            xff("6.6.6.6, 203.0.113.5, 192.0.2.9"),
            "192.0.2.9",
            None,
            Hdr(XFF),
            HopCount,
        ),
        c(
            "count 3 too short with PROXY source",
            P::Count(3),
            PEER,
            Some("198.51.100.20:7000"),
            xff("203.0.113.5"),
            "198.51.100.20",
            Some(7000),
            Proxy,
            TooShort,
        ),
        // --- PROXY protocol as trust anchor --------------------------------
        c(
            "internal LB as PROXY source continues",
            P::Xff,
            PEER,
            Some("10.0.0.9:5000"),
            xff("203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "public PROXY source stops",
            P::Xff,
            PEER,
            Some("198.51.100.3:4444"),
            xff("203.0.113.5"),
            "198.51.100.3",
            Some(4444),
            Proxy,
            UntrustedHop,
        ),
        c(
            "PROXY source under default policy",
            P::Default,
            PEER,
            Some("203.0.113.5:1234"),
            xff("6.6.6.6"),
            "203.0.113.5",
            Some(1234),
            Proxy,
            UntrustedHop,
        ),
        c(
            "PROXY source mapped",
            P::Default,
            PEER,
            Some("[::ffff:203.0.113.5]:1"),
            vec![],
            "203.0.113.5",
            Some(1),
            Proxy,
            UntrustedHop,
        ),
        c(
            "PROXY source from public peer still replaces it",
            P::Xff,
            "198.51.100.7:1",
            Some("10.0.0.9:5000"),
            xff("203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(XFF),
            UntrustedHop,
        ),
        c(
            "trusted PROXY source, header absent",
            P::Xff,
            PEER,
            Some("10.0.0.9:5000"),
            vec![],
            "10.0.0.9",
            Some(5000),
            Proxy,
            HeaderAbsent,
        ),
        // --- Forwarded -----------------------------------------------------
        c(
            "fwd: simple",
            P::Fwd,
            PEER,
            None,
            fwd("for=203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: spoofed leftmost with params",
            P::Fwd,
            PEER,
            None,
            fwd("for=6.6.6.6, for=203.0.113.5;proto=https, for=10.0.0.2;by=10.0.0.1"),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: quoted ipv6 with port",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="[2001:db8::1]:443""#),
            "2001:db8::1",
            Some(443),
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: quoted loopback with port, all trusted",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="[::1]:80""#),
            "::1",
            Some(80),
            Hdr(FWD),
            Exhausted,
        ),
        c(
            "fwd: quoted ipv4 with port",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="203.0.113.5:8443""#),
            "203.0.113.5",
            Some(8443),
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: quoted comma nearest",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for=203.0.113.5, for="10.0.0.3, 10.0.0.4""#),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: quoted comma mid-chain",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for=203.0.113.5, for="1.1.1.1,2.2.2.2", for=10.0.0.2"#),
            "10.0.0.2",
            None,
            Hdr(FWD),
            Malformed,
        ),
        c(
            "fwd: client's unmatched quote cannot swallow proxy entries",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="6.6.6.6, for=203.0.113.5"#),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: unmatched quote nearest",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for=203.0.113.5, for="10.0.0.2"#),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: escaped characters",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="\2\0\3.0.113.5""#),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: escaped quote in another param",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for=203.0.113.5;by="a\"b, for=6.6.6.6", for=10.0.0.2"#),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: mixed case names",
            P::Fwd,
            PEER,
            None,
            fwd("FoR=203.0.113.5;PROTO=https, For=10.0.0.2"),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: unknown mid-chain",
            P::Fwd,
            PEER,
            None,
            fwd("for=203.0.113.5, for=unknown, for=10.0.0.2"),
            "10.0.0.2",
            None,
            Hdr(FWD),
            Malformed,
        ),
        c(
            "fwd: obfuscated nearest",
            P::Fwd,
            PEER,
            None,
            fwd("for=203.0.113.5, for=_hidden"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: obfuscated port keeps address",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="203.0.113.5:_p1""#),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: unquoted ipv6 is malformed",
            P::Fwd,
            PEER,
            None,
            fwd("for=[2001:db8::1]"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: element without for",
            P::Fwd,
            PEER,
            None,
            fwd("for=203.0.113.5, by=10.0.0.2"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: duplicate for in one element",
            P::Fwd,
            PEER,
            None,
            fwd("for=203.0.113.5;for=10.0.0.2"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "fwd: several lines",
            P::Fwd,
            PEER,
            None,
            h(&[(FWD, "for=6.6.6.6, for=203.0.113.5"), (FWD, "for=10.0.0.2")]),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: mapped with port",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for="[::ffff:203.0.113.5]:8""#),
            "203.0.113.5",
            Some(8),
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd: zone never trusted",
            P::Fwd,
            PEER,
            None,
            fwd(r#"for=203.0.113.5, for="[fe80::1%25eth0]""#),
            "fe80::1",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        c(
            "fwd configured, only xff sent",
            P::Fwd,
            PEER,
            None,
            xff("203.0.113.5"),
            "10.0.0.1",
            Some(1000),
            Socket,
            HeaderAbsent,
        ),
        c(
            "xff configured, only fwd sent",
            P::Xff,
            PEER,
            None,
            fwd("for=203.0.113.5"),
            "10.0.0.1",
            Some(1000),
            Socket,
            HeaderAbsent,
        ),
        c(
            "fwd policy ignores a client's xff sent beside it",
            P::Fwd,
            PEER,
            None,
            h(&[(XFF, "6.6.6.6"), (FWD, "for=203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr(FWD),
            UntrustedHop,
        ),
        // --- single-address headers ----------------------------------------
        c(
            "x-real-ip from trusted peer",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            real("203.0.113.5"),
            "203.0.113.5",
            None,
            Hdr("x-real-ip"),
            UntrustedHop,
        ),
        c(
            "x-real-ip trusted value",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            real("10.0.0.7"),
            "10.0.0.7",
            None,
            Hdr("x-real-ip"),
            Exhausted,
        ),
        c(
            "x-real-ip from untrusted peer",
            P::Single(HeaderSource::XRealIp),
            "198.51.100.7:2",
            None,
            real("203.0.113.5"),
            "198.51.100.7",
            Some(2),
            Socket,
            UntrustedHop,
        ),
        c(
            "x-real-ip twice is ambiguous",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            h(&[("x-real-ip", "6.6.6.6"), ("x-real-ip", "203.0.113.5")]),
            "10.0.0.1",
            Some(1000),
            Socket,
            Ambiguous,
        ),
        c(
            "x-real-ip list is malformed",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            real("6.6.6.6, 203.0.113.5"),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "x-real-ip with port",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            real("[2001:db8::9]:123"),
            "2001:db8::9",
            Some(123),
            Hdr("x-real-ip"),
            UntrustedHop,
        ),
        c(
            "cf-connecting-ip ipv6",
            P::Single(HeaderSource::CfConnectingIp),
            PEER,
            None,
            h(&[("cf-connecting-ip", "2001:db8::7")]),
            "2001:db8::7",
            None,
            Hdr("cf-connecting-ip"),
            UntrustedHop,
        ),
        c(
            "true-client-ip twice",
            P::Single(HeaderSource::TrueClientIp),
            PEER,
            None,
            h(&[
                ("true-client-ip", "203.0.113.5"),
                ("true-client-ip", "203.0.113.5"),
            ]),
            "10.0.0.1",
            Some(1000),
            Socket,
            Ambiguous,
        ),
        c(
            "fly-client-ip",
            P::Single(HeaderSource::FlyClientIp),
            PEER,
            None,
            h(&[("fly-client-ip", "203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr("fly-client-ip"),
            UntrustedHop,
        ),
        c(
            "envoy external address",
            P::Single(HeaderSource::XEnvoyExternalAddress),
            PEER,
            None,
            h(&[("x-envoy-external-address", "203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr("x-envoy-external-address"),
            UntrustedHop,
        ),
        c(
            "cloudfront ipv6:port",
            P::Single(HeaderSource::CloudFrontViewerAddress),
            PEER,
            None,
            h(&[("cloudfront-viewer-address", "2001:db8::5:46532")]),
            "2001:db8::5",
            Some(46532),
            Hdr("cloudfront-viewer-address"),
            UntrustedHop,
        ),
        c(
            "cloudfront ipv4:port",
            P::Single(HeaderSource::CloudFrontViewerAddress),
            PEER,
            None,
            h(&[("cloudfront-viewer-address", "203.0.113.5:443")]),
            "203.0.113.5",
            Some(443),
            Hdr("cloudfront-viewer-address"),
            UntrustedHop,
        ),
        c(
            "cloudfront without port",
            P::Single(HeaderSource::CloudFrontViewerAddress),
            PEER,
            None,
            h(&[("cloudfront-viewer-address", "203.0.113.5")]),
            "10.0.0.1",
            Some(1000),
            Socket,
            Malformed,
        ),
        c(
            "custom single header",
            P::Single(HeaderSource::Single(HeaderName::from_static("x-client-ip"))),
            PEER,
            None,
            h(&[("x-client-ip", "203.0.113.5")]),
            "203.0.113.5",
            None,
            Hdr("x-client-ip"),
            UntrustedHop,
        ),
        c(
            "custom list header",
            P::Single(HeaderSource::List(HeaderName::from_static(
                "x-original-forwarded-for",
            ))),
            PEER,
            None,
            h(&[("x-original-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")]),
            "203.0.113.5",
            None,
            Hdr("x-original-forwarded-for"),
            UntrustedHop,
        ),
        c(
            "single header absent",
            P::Single(HeaderSource::XRealIp),
            PEER,
            None,
            xff("203.0.113.5"),
            "10.0.0.1",
            Some(1000),
            Socket,
            HeaderAbsent,
        ),
    ]
}

fn run(case: &Case) -> realip::resolve::Resolution {
    let mut headers = HeaderMap::new();
    for (k, v) in &case.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let peer: SocketAddr = case.peer.parse().unwrap();
    let proxy = case.proxy.map(|p| p.parse::<SocketAddr>().unwrap());
    policy(&case.policy).resolve(peer, proxy, &headers)
}

#[test]
fn adversarial_table() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let r = run(case);
        let want_ip: IpAddr = case.ip.parse().unwrap();
        let source = match r.source() {
            Source::Socket => S::Socket,
            Source::ProxyProtocol => S::Proxy,
            Source::Header(name) => match case.source {
                S::Hdr(want) if name == want => S::Hdr(want),
                _ => S::Hdr("<other header>"),
            },
        };
        if r.ip() != want_ip
            || r.port() != case.port
            || source != case.source
            || r.stop() != case.stop
        {
            failures.push(format!(
                "{} ({:?}): got {:?}, want ip={} port={:?} source={:?} stop={:?}",
                case.name, case.policy, r, case.ip, case.port, case.source, case.stop
            ));
        }
        // Invariants that hold on every row.
        assert_eq!(
            r.hops().next().unwrap(),
            case.peer.parse::<SocketAddr>().unwrap().ip().to_canonical(),
            "{}",
            case.name
        );
        if r.stop() != Stop::TooShort {
            assert_eq!(
                r.hops().next_back(),
                Some(r.ip()),
                "{}: last hop is the client",
                case.name
            );
        }
        assert!(
            r.hops().len() <= policy(&case.policy).hop_cap() + 2,
            "{}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hop_cap_bounds_hops_on_huge_chain() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "10,000-entry trusted chain")
        .unwrap();
    let r = run(&case);
    // Peer plus exactly 32 entries read.
    assert_eq!(r.hops().len(), 33);
    assert_eq!(
        r.hops().nth(1).unwrap(),
        "10.39.15.1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        r.hops().nth(32).unwrap(),
        "10.38.240.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn hops_record_the_walk_nearest_first() {
    let policy = policy(&P::Xff);
    let mut headers = HeaderMap::new();
    headers.append(XFF, HeaderValue::from_static("6.6.6.6, 203.0.113.5"));
    headers.append(XFF, HeaderValue::from_static("192.168.0.2"));
    let r = policy.resolve(
        "10.0.0.1:1".parse().unwrap(),
        Some("10.0.0.9:2".parse().unwrap()),
        &headers,
    );
    let want: Vec<IpAddr> = ["10.0.0.1", "10.0.0.9", "192.168.0.2", "203.0.113.5"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(r.hops().collect::<Vec<_>>(), want);
}

#[test]
fn config_errors_fail_at_build() {
    use ConfigErrorKind as K;
    let xff = HeaderSource::XForwardedFor;
    let b = Policy::builder;
    let cases: Vec<(K, Result<Policy, realip::trust::ConfigError>)> = vec![
        (
            K::ZeroHopCount,
            b().trusted_hops(0).header(xff.clone()).build(),
        ),
        (
            K::HopCountWithoutRecursion,
            b().trusted_hops(2)
                .recursive(false)
                .header(xff.clone())
                .build(),
        ),
        (
            K::HopCountWithRanges,
            b().trusted_hops(2)
                .trust_private()
                .header(xff.clone())
                .build(),
        ),
        (
            K::HopCountAboveCap,
            b().trusted_hops(5).hop_cap(4).header(xff.clone()).build(),
        ),
        (
            K::HopCap,
            b().trust_private().hop_cap(0).header(xff.clone()).build(),
        ),
        (
            K::HopCap,
            b().trust_private()
                .hop_cap(realip::resolve::MAX_HOP_CAP + 1)
                .header(xff.clone())
                .build(),
        ),
        (K::NoHeaderSource, b().trust_private().build()),
        (K::NoHeaderSource, b().trusted_hops(1).build()),
        (K::HeaderWithoutTrust, b().header(xff.clone()).build()),
        (
            K::UnderscoreHeaderName,
            b().trust_private()
                .header(HeaderSource::Single(HeaderName::from_static("x_real_ip")))
                .build(),
        ),
        (
            K::UnderscoreHeaderName,
            b().trust_private()
                .header(HeaderSource::List(HeaderName::from_static(
                    "x_forwarded_for",
                )))
                .build(),
        ),
        (
            K::SeveralHeaders,
            b().trust_private()
                .header(xff.clone())
                .header(xff.clone())
                .build(),
        ),
        (
            K::SeveralHeaders,
            b().trust_private()
                .header(HeaderSource::XRealIp)
                .header(xff.clone())
                .build(),
        ),
        (
            K::SeveralHeaders,
            b().trusted_hops(1)
                .header(HeaderSource::Forwarded)
                .header(xff.clone())
                .build(),
        ),
        (
            K::MappedRange,
            b().trust("::ffff:10.0.0.0/104".parse().unwrap())
                .header(xff.clone())
                .build(),
        ),
        (
            K::MappedRange,
            b().trust_all([
                "10.0.0.0/8".parse().unwrap(),
                "::ffff:0:0/96".parse().unwrap(),
            ])
            .header(xff.clone())
            .build(),
        ),
    ];
    for (kind, result) in cases {
        let err = result.expect_err(&format!("{kind:?} should be refused"));
        assert_eq!(err.kind(), kind, "{err}");
        assert!(!err.to_string().is_empty());
    }
    // The documented valid edges.
    assert!(b().build().is_ok(), "empty builder = secure default");
    assert!(b()
        .trust_private()
        .header(xff.clone())
        .hop_cap(realip::resolve::MAX_HOP_CAP)
        .build()
        .is_ok());
    assert!(b().trusted_hops(4).hop_cap(4).header(xff).build().is_ok());
}
