//! Forwarded-header parsers (sans-IO).
//!
//! Three header families carry the client address through HTTP proxies:
//!
//! - [`xff`]: `X-Forwarded-For` style comma lists (`ip`, `ip:port`, `[v6]`,
//!   `[v6]:port`, bare IPv6);
//! - [`rfc7239`]: the standard `Forwarded` header (`for=` parameters, tokens
//!   and quoted-strings, `unknown`, obfuscated `_ids`);
//! - [`single`]: single-address headers such as `X-Real-IP`,
//!   `CF-Connecting-IP` or `CloudFront-Viewer-Address`;
//! - [`context`]: the client's scheme, host, port and prefix
//!   (`X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix`, `Forwarded`'s
//!   `proto` and `host`).
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

use http::header::{GetAll, ValueIter};
use http::{HeaderName, HeaderValue};
use std::iter::{FusedIterator, Rev};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod context;
pub mod rfc7239;
pub mod single;
pub mod xff;

/// Entries in the resolver's form, nearest first: what its walk reads.
pub(crate) trait RawEntries<'a> {
    fn next_raw(&mut self) -> Option<Raw>;

    /// The `proto` and `host` of the element the last entry came from,
    /// for parsers whose elements carry more than the address
    /// (`Forwarded`); none otherwise.
    #[inline(always)]
    fn last_params(&self) -> rfc7239::Params<'a> {
        rfc7239::Params::default()
    }
}

/// A single-address header: its one entry.
impl RawEntries<'_> for Option<Raw> {
    #[inline]
    fn next_raw(&mut self) -> Option<Raw> {
        self.take()
    }
}

/// A one-line parser read right to left ([`xff::Line`],
/// [`rfc7239::Line`]).
pub(crate) trait LineParser<'a>: RawEntries<'a> + Sized {
    fn from_line(line: &'a [u8]) -> Self;
}

/// The entries of every line of a repeated header, nearest first: the last
/// line is read first, each line right to left, with the line parser `L`.
/// Nothing is joined or copied. Named through [`xff::Entries`] and
/// [`rfc7239::Entries`].
#[derive(Debug)]
pub struct Entries<'a, L> {
    lines: Rev<ValueIter<'a, HeaderValue>>,
    line: L,
    present: bool,
}

#[allow(private_bounds)]
impl<'a, L: LineParser<'a>> Entries<'a, L> {
    /// Walks all lines of one header (`headers.get_all(name)`).
    pub fn new(lines: GetAll<'a, HeaderValue>) -> Self {
        let mut lines = lines.into_iter().rev();
        let (line, present) = match lines.next() {
            Some(v) => (L::from_line(v.as_bytes()), true),
            None => (L::from_line(&[]), false),
        };
        Entries {
            lines,
            line,
            present,
        }
    }

    /// Whether the header had at least one line.
    pub fn has_lines(&self) -> bool {
        self.present
    }
}

impl<'a, L: LineParser<'a>> RawEntries<'a> for Entries<'a, L> {
    #[inline]
    fn next_raw(&mut self) -> Option<Raw> {
        loop {
            if let Some(n) = self.line.next_raw() {
                return Some(n);
            }
            self.line = L::from_line(self.lines.next()?.as_bytes());
        }
    }

    #[inline(always)]
    fn last_params(&self) -> rfc7239::Params<'a> {
        self.line.last_params()
    }
}

#[allow(private_bounds)]
impl<'a, L: LineParser<'a>> Iterator for Entries<'a, L> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        self.next_raw().map(Node::from)
    }
}

#[allow(private_bounds)]
impl<'a, L: LineParser<'a>> FusedIterator for Entries<'a, L> {}

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

/// Register-friendly parse result used on the resolver's hot path. An
/// address is kept as 128 bits with IPv4 in its mapped form
/// (`::ffff:a.b.c.d`), which is also how mapped input is normalized: both
/// spellings become the same value, and IPv4 is recovered on output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Raw {
    Ip {
        bits: u128,
        port: Option<u16>,
        zoned: bool,
    },
    Unknown,
    Obfuscated,
    Malformed,
}

const MAPPED_PREFIX: u128 = 0xffff << 32;

/// The 128-bit form of an address (IPv4 as mapped IPv6).
#[inline]
pub(crate) fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => MAPPED_PREFIX | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Whether the 128-bit form holds an IPv4 address.
#[inline]
pub(crate) fn is_v4_bits(bits: u128) -> bool {
    // Spelled as one comparison with the mapped form of its low 32 bits,
    // which compiles to fewer instructions than `bits >> 32 == 0xffff`.
    bits == MAPPED_PREFIX | u128::from(bits as u32)
}

/// The address of a 128-bit form, IPv4 when mapped.
#[inline]
pub(crate) fn ip_of(bits: u128) -> IpAddr {
    if is_v4_bits(bits) {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

impl From<Raw> for Node {
    #[inline]
    fn from(raw: Raw) -> Node {
        match raw {
            Raw::Ip { bits, port, zoned } => Node::Ip(NodeAddr {
                ip: ip_of(bits),
                port,
                zoned,
            }),
            Raw::Unknown => Node::Unknown,
            Raw::Obfuscated => Node::Obfuscated,
            Raw::Malformed => Node::Malformed,
        }
    }
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

/// Parses one entry (already trimmed).
#[inline]
fn parse_raw(s: &[u8], flavor: Flavor) -> Raw {
    let Some(&first) = s.first() else {
        return Raw::Malformed;
    };
    if first.is_ascii_digit() {
        // Dotted quad, optionally with a port: the common case, first.
        if let Some((v4, used)) = parse_v4_prefix(s) {
            let bits = MAPPED_PREFIX | u128::from(v4);
            match s.get(used) {
                None => return ip_raw(bits, None, false),
                Some(b':') => return with_port(bits, &s[used + 1..], false, flavor),
                // `1.2.3.4x` or an IPv6 such as `1:2::3` starting with digits.
                Some(_) => {}
            }
        }
    }
    if first == b'[' {
        let Some(close) = s.iter().position(|&b| b == b']') else {
            return Raw::Malformed;
        };
        let Some((bits, zoned)) = parse_v6_zoned(&s[1..close]) else {
            return Raw::Malformed;
        };
        return match &s[close + 1..] {
            [] => ip_raw(bits, None, zoned),
            [b':', port @ ..] => with_port(bits, port, zoned, flavor),
            _ => Raw::Malformed,
        };
    }
    if first == b'_' {
        return if is_obf_id(&s[1..]) {
            Raw::Obfuscated
        } else {
            Raw::Malformed
        };
    }
    if s.eq_ignore_ascii_case(b"unknown") {
        return Raw::Unknown;
    }
    if flavor == Flavor::List {
        if let Some((bits, zoned)) = parse_v6_zoned(s) {
            return ip_raw(bits, None, zoned);
        }
    }
    Raw::Malformed
}

/// Parses one entry (already trimmed) into a [`Node`].
fn parse_node(s: &[u8], flavor: Flavor) -> Node {
    parse_raw(s, flavor).into()
}

#[inline]
fn ip_raw(bits: u128, port: Option<u16>, zoned: bool) -> Raw {
    Raw::Ip { bits, port, zoned }
}

fn with_port(bits: u128, port: &[u8], zoned: bool, flavor: Flavor) -> Raw {
    if let Some(p) = parse_port(port) {
        return ip_raw(bits, Some(p), zoned);
    }
    // RFC 7239 `obfport`: the address is known, the port hidden.
    if flavor == Flavor::Rfc7239 && port.first() == Some(&b'_') && is_obf_id(&port[1..]) {
        return ip_raw(bits, None, zoned);
    }
    Raw::Malformed
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

/// Strict dotted quad as a big-endian `u32`: four decimal octets, no
/// leading zeros (`010` could mean octal to another parser, so it is
/// refused), nothing else.
#[inline]
pub(crate) fn parse_v4(s: &[u8]) -> Option<u32> {
    match parse_v4_prefix(s) {
        Some((v4, used)) if used == s.len() => Some(v4),
        _ => None,
    }
}

/// A strict dotted quad at the start of `s`, and how many bytes it used.
/// A digit right after the last octet (`1.2.3.4444`, `1.2.3.04`) is
/// refused here; any other byte after it is left for the caller to judge.
#[inline]
fn parse_v4_prefix(s: &[u8]) -> Option<(u32, usize)> {
    let mut out: u32 = 0;
    let mut i = 0;
    for octet in 0..4 {
        if octet > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let d0 = s.get(i)?.wrapping_sub(b'0');
        if d0 > 9 {
            return None;
        }
        let mut v = u32::from(d0);
        i += 1;
        if d0 != 0 {
            for _ in 0..2 {
                match s.get(i) {
                    Some(&b) if b.is_ascii_digit() => {
                        v = v * 10 + u32::from(b - b'0');
                        i += 1;
                    }
                    _ => break,
                }
            }
            if v > 255 {
                return None;
            }
        }
        out = (out << 8) | v;
    }
    if s.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((out, i))
}

/// IPv6 text, optionally followed by `%zone`. Returns the 128-bit form and
/// whether a zone was present.
fn parse_v6_zoned(s: &[u8]) -> Option<(u128, bool)> {
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
    Some((u128::from(v6), zoned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_strict() {
        let v4 = |s: &[u8]| parse_v4(s).map(Ipv4Addr::from);
        assert_eq!(v4(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(v4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(v4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(v4(b"10.0.0.255"), Some(Ipv4Addr::new(10, 0, 0, 255)));
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
            b"1.2.3.04",
            b"1.2.3.4a",
            b"1.2.3.-4",
            b"1.2.3.256",
            b"1.2.3.4444",
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
            assert_eq!(parse_v4(s.as_bytes()).map(Ipv4Addr::from), s.parse().ok());
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
