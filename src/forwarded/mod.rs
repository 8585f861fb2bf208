//! Forwarded-header parsers (sans-IO).
//!
//! Three header families carry the client address through HTTP proxies:
//!
//! - [`xff`]: `X-Forwarded-For` style comma lists (`ip`, `ip:port`, `[v6]`,
//!   `[v6]:port`, bare IPv6);
//! - [`rfc7239`]: the standard `Forwarded` header (`for=` parameters, tokens
//!   and quoted-strings, `unknown`, obfuscated `_ids`);
//! - [`single`]: single-address headers such as `X-Real-IP`,
//!   `CF-Connecting-IP` or `CloudFront-Viewer-Address`.
//!
//! Every parser borrows the header bytes, never allocates, and yields
//! entries **right to left** (nearest hop first) because a resolver must
//! only look as far left as trust allows: the left part of a chain is
//! written by whoever sent the request and may be forged. Repeated header
//! lines are read in order (the last line holds the nearest hop) without
//! being joined.
//!
//! Parsing does not decide trust; [`crate::resolve`] does.
//!
//! ```
//! use realip::forwarded::{xff, Node};
//! use std::net::IpAddr;
//!
//! let mut entries = xff::Line::new(b"203.0.113.7, 10.0.0.2:8080");
//! let nearest = entries.next().unwrap();
//! assert_eq!(nearest.ip(), Some("10.0.0.2".parse::<IpAddr>().unwrap()));
//! assert_eq!(entries.next().unwrap().ip(), Some("203.0.113.7".parse().unwrap()));
//! assert_eq!(entries.next(), None);
//! ```

use http::HeaderName;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod rfc7239;
pub mod single;
pub mod xff;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// RFC 7239 `Forwarded`.
pub const FORWARDED: HeaderName = http::header::FORWARDED;
/// `X-Real-IP` (nginx).
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// `CF-Connecting-IP` (Cloudflare).
pub const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
/// `True-Client-IP` (Akamai, Cloudflare Enterprise).
pub const TRUE_CLIENT_IP: HeaderName = HeaderName::from_static("true-client-ip");
/// `Fly-Client-IP` (Fly.io).
pub const FLY_CLIENT_IP: HeaderName = HeaderName::from_static("fly-client-ip");
/// `X-Envoy-External-Address` (Envoy).
pub const X_ENVOY_EXTERNAL_ADDRESS: HeaderName =
    HeaderName::from_static("x-envoy-external-address");
/// `CloudFront-Viewer-Address` (AWS CloudFront, `ip:port` with bare IPv6).
pub const CLOUDFRONT_VIEWER_ADDRESS: HeaderName =
    HeaderName::from_static("cloudfront-viewer-address");

/// One entry of a forwarded chain, as read from a header.
///
/// Only [`Node::Ip`] names a hop; every other variant ends a resolver's
/// walk, because skipping it would mean trusting entries written further
/// left by an unknown party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// An address, with its port when the entry carried one.
    Ip(NodeAddr),
    /// The RFC 7239 `unknown` identifier (or the same word in a list).
    Unknown,
    /// An RFC 7239 obfuscated identifier (`_hidden`).
    Obfuscated,
    /// Anything else: not an address, bad syntax, bad port.
    Malformed,
}

impl Node {
    /// The address if this entry is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Node::Ip(a) => Some(a.ip),
            _ => None,
        }
    }
}

/// An address parsed from a header entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// The address; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is already
    /// normalized to IPv4 so that it matches IPv4 trusted ranges.
    pub ip: IpAddr,
    /// The port, when the entry had a numeric one.
    pub port: Option<u16>,
    /// The entry carried an IPv6 zone id (`fe80::1%eth0`). The zone is
    /// dropped from `ip`; a zoned entry is never treated as trusted since
    /// a zone names an interface of some other host.
    pub zoned: bool,
}

/// Which entry grammar applies: lists accept bare IPv6, RFC 7239 does not
/// but allows obfuscated ports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    List,
    Rfc7239,
}

#[inline]
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ows(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ows(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parses one entry (already trimmed) into a [`Node`].
fn parse_node(s: &[u8], flavor: Flavor) -> Node {
    let Some(&first) = s.first() else {
        return Node::Malformed;
    };
    if first == b'_' {
        return if is_obf_id(&s[1..]) {
            Node::Obfuscated
        } else {
            Node::Malformed
        };
    }
    if s.eq_ignore_ascii_case(b"unknown") {
        return Node::Unknown;
    }
    if first == b'[' {
        let Some(close) = s.iter().position(|&b| b == b']') else {
            return Node::Malformed;
        };
        let Some((ip, zoned)) = parse_v6_zoned(&s[1..close]) else {
            return Node::Malformed;
        };
        return match &s[close + 1..] {
            [] => addr(ip, None, zoned),
            [b':', port @ ..] => with_port(ip, port, zoned, flavor),
            _ => Node::Malformed,
        };
    }
    if first.is_ascii_digit() {
        // Dotted quad, optionally with a port.
        let (host, port) = match s.iter().position(|&b| b == b':') {
            Some(colon) => (&s[..colon], Some(&s[colon + 1..])),
            None => (s, None),
        };
        if let Some(v4) = parse_v4(host) {
            return match port {
                None => addr(IpAddr::V4(v4), None, false),
                Some(p) => with_port(IpAddr::V4(v4), p, false, flavor),
            };
        }
    }
    if flavor == Flavor::List {
        if let Some((ip, zoned)) = parse_v6_zoned(s) {
            return addr(ip, None, zoned);
        }
    }
    Node::Malformed
}

#[inline]
fn addr(ip: IpAddr, port: Option<u16>, zoned: bool) -> Node {
    Node::Ip(NodeAddr {
        ip: ip.to_canonical(),
        port,
        zoned,
    })
}

fn with_port(ip: IpAddr, port: &[u8], zoned: bool, flavor: Flavor) -> Node {
    if let Some(p) = parse_port(port) {
        return addr(ip, Some(p), zoned);
    }
    // RFC 7239 `obfport`: the address is known, the port hidden.
    if flavor == Flavor::Rfc7239 && port.first() == Some(&b'_') && is_obf_id(&port[1..]) {
        return addr(ip, None, zoned);
    }
    Node::Malformed
}

/// `1*( ALPHA / DIGIT / "." / "_" / "-" )` after the leading underscore.
fn is_obf_id(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 1 to 5 digits, at most 65535.
#[inline]
fn parse_port(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    u16::try_from(v).ok()
}

/// Strict dotted quad: four decimal octets, no leading zeros (`010` could
/// mean octal to another parser, so it is refused), nothing else.
#[inline]
pub(crate) fn parse_v4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut idx = 0;
    let mut val: u16 = 0;
    let mut digits = 0;
    for &b in s {
        if b == b'.' {
            if digits == 0 || idx == 3 {
                return None;
            }
            octets[idx] = val as u8;
            idx += 1;
            val = 0;
            digits = 0;
            continue;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 || (digits == 1 && val == 0) {
            return None;
        }
        val = val * 10 + u16::from(d);
        digits += 1;
        if val > 255 {
            return None;
        }
    }
    if digits == 0 || idx != 3 {
        return None;
    }
    octets[3] = val as u8;
    Some(Ipv4Addr::from(octets))
}

/// IPv6 text, optionally followed by `%zone`. Returns the address and
/// whether a zone was present.
fn parse_v6_zoned(s: &[u8]) -> Option<(IpAddr, bool)> {
    let (host, zoned) = match s.iter().position(|&b| b == b'%') {
        Some(p) => {
            let zone = &s[p + 1..];
            let ok = !zone.is_empty()
                && zone
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
            if !ok {
                return None;
            }
            (&s[..p], true)
        }
        None => (s, false),
    };
    // The longest IPv6 text form is 45 bytes; refuse early so a long
    // attacker-written entry costs nothing.
    if host.len() < 2 || host.len() > 45 || !host.contains(&b':') {
        return None;
    }
    let text = std::str::from_utf8(host).ok()?;
    let v6: Ipv6Addr = text.parse().ok()?;
    Some((IpAddr::V6(v6), zoned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_strict() {
        assert_eq!(parse_v4(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(
            parse_v4(b"255.255.255.255"),
            Some(Ipv4Addr::new(255, 255, 255, 255))
        );
        assert_eq!(parse_v4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        for bad in [
            &b"01.2.3.4"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"256.1.1.1",
            b"1..2.3",
            b"1.2.3.",
            b".1.2.3",
            b"1.2.3.4 ",
            b"a.b.c.d",
            b"1.2.3.1000",
        ] {
            assert_eq!(parse_v4(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn v4_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "10.0.0.255",
            "192.168.1.1",
            "9.9.9.9",
            "100.64.0.1",
        ] {
            assert_eq!(parse_v4(s.as_bytes()), s.parse().ok());
        }
    }

    #[test]
    fn nodes() {
        let n = |s: &str| parse_node(s.as_bytes(), Flavor::List);
        assert_eq!(n("1.2.3.4:80").ip(), Some(ip("1.2.3.4")));
        assert_eq!(
            n("[2001:db8::1]:443"),
            Node::Ip(NodeAddr {
                ip: ip("2001:db8::1"),
                port: Some(443),
                zoned: false
            })
        );
        assert_eq!(n("::ffff:10.0.0.1").ip(), Some(ip("10.0.0.1")));
        assert_eq!(n("1.2.3.4:65536"), Node::Malformed);
        assert_eq!(n("1.2.3.4:"), Node::Malformed);
        assert_eq!(n("[::1]x"), Node::Malformed);
        assert_eq!(n("UnKnOwN"), Node::Unknown);
        assert_eq!(n("_x-1"), Node::Obfuscated);
        assert_eq!(n("_"), Node::Malformed);
        assert!(matches!(
            n("fe80::1%eth0"),
            Node::Ip(NodeAddr { zoned: true, .. })
        ));
        assert_eq!(n("fe80::1%"), Node::Malformed);
        // Bare IPv6 is list-only.
        assert_eq!(parse_node(b"2001:db8::1", Flavor::Rfc7239), Node::Malformed);
        assert_eq!(
            parse_node(b"1.2.3.4:_p", Flavor::Rfc7239).ip(),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(parse_node(b"1.2.3.4:_p", Flavor::List), Node::Malformed);
    }
}
