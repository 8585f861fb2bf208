//! Client-context header values (scheme, host, port, prefix), read right
//! to left and validated.
//!
//! These are the grammars of `X-Forwarded-Proto`, `X-Forwarded-Ssl`,
//! `X-Forwarded-Host`, `X-Forwarded-Port`, `X-Forwarded-Prefix` and the
//! `proto`/`host` parameters of a `Forwarded` element. Like the address
//! parsers they borrow the header bytes and never allocate; which values
//! are believed is decided by [`crate::resolve`], in the same walk as the
//! address.
//!
//! Validation is strict because every value ends up in redirects, cookies
//! and absolute links:
//!
//! - a scheme is `http`, `https`, `ws` or `wss` (any case);
//! - a host is a DNS name (letters, digits, `-`, `_`, labels of 1 to 63
//!   bytes, at most 253 bytes: no userinfo, spaces, control bytes, empty
//!   labels, trailing dot or percent-encoding; IDNs only as punycode),
//!   a dotted-quad IPv4 address, or an IPv6 literal in brackets without a
//!   zone, optionally followed by `:port`;
//! - a port is 1 to 65535, decimal, without sign or leading zeros;
//! - a prefix starts with `/`, is at most 255 bytes, holds only URI path
//!   characters, and never `..`, `//`, `\`, an encoded dot, slash or
//!   backslash (`%2e`, `%2f`, `%5c`, any case) or a control byte.
//!
//! ```
//! use realip::forwarded::context::{self, Scheme};
//!
//! assert_eq!(context::parse_scheme(b"HTTPS"), Some(Scheme::Https));
//! assert_eq!(context::parse_host(b"Example.COM:8443"), Some((&b"Example.COM"[..], Some(8443))));
//! assert_eq!(context::parse_host(b"user@example.com"), None);
//! assert_eq!(context::parse_prefix(b"/app/../admin"), None);
//!
//! let mut list = context::ListRev::new(b"https, http");
//! assert_eq!(list.next(), Some(&b"http"[..]));
//! assert_eq!(list.next(), Some(&b"https"[..]));
//! assert_eq!(list.next(), None);
//! ```

use super::{is_ows, parse_v4, trim_ows};
use std::fmt;
use std::net::Ipv6Addr;

/// The scheme the client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
    /// `ws`
    Ws,
    /// `wss`
    Wss,
}

impl Scheme {
    /// The lowercase name (`https`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// Whether the client's connection was encrypted (`https`, `wss`).
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        if self.is_secure() {
            443
        } else {
            80
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest host name (RFC 1035), without the port.
pub const MAX_HOST: usize = 253;
/// Longest prefix accepted.
pub const MAX_PREFIX: usize = 255;

/// `http`, `https`, `ws` or `wss`, any case, nothing around it.
pub fn parse_scheme(v: &[u8]) -> Option<Scheme> {
    if v.eq_ignore_ascii_case(b"https") {
        Some(Scheme::Https)
    } else if v.eq_ignore_ascii_case(b"http") {
        Some(Scheme::Http)
    } else if v.eq_ignore_ascii_case(b"wss") {
        Some(Scheme::Wss)
    } else if v.eq_ignore_ascii_case(b"ws") {
        Some(Scheme::Ws)
    } else {
        None
    }
}

/// An `X-Forwarded-Ssl` / `Front-End-Https` style flag: `on` is `https`,
/// `off` is `http` (any case).
pub fn parse_ssl_flag(v: &[u8]) -> Option<Scheme> {
    if v.eq_ignore_ascii_case(b"on") {
        Some(Scheme::Https)
    } else if v.eq_ignore_ascii_case(b"off") {
        Some(Scheme::Http)
    } else {
        None
    }
}

/// A port: 1 to 65535, decimal digits, no sign, no leading zero.
pub fn parse_port(v: &[u8]) -> Option<u16> {
    if v.is_empty() || v.len() > 5 || v[0] == b'0' {
        return None;
    }
    let mut n: u32 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    u16::try_from(n).ok()
}

/// An authority without userinfo: `host` or `host:port`, where the host
/// is a DNS name, a dotted-quad IPv4 address or a bracketed IPv6 literal
/// (returned with its brackets). See the [module docs](self) for the rules.
pub fn parse_host(v: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if v.first() == Some(&b'[') {
        let close = v.iter().position(|&b| b == b']')?;
        let rest = &v[close + 1..];
        let port = match rest {
            [] => None,
            [b':', p @ ..] => Some(parse_port(p)?),
            _ => return None,
        };
        let inner = std::str::from_utf8(&v[1..close]).ok()?;
        // `Ipv6Addr` refuses zones (`%eth0`) and anything but hex, colons
        // and an embedded dotted quad.
        inner.parse::<Ipv6Addr>().ok()?;
        (&v[..=close], port)
    } else {
        // One pass: the name's bytes are checked up to the first `:`.
        let end = dns_name_end(v)?;
        let (host, rest) = v.split_at(end);
        match rest {
            [] => (host, None),
            [b':', p @ ..] => (host, Some(parse_port(p)?)),
            _ => return None,
        }
    };
    Some((host, port))
}

/// Byte classes of a host name, for [`dns_name_end`].
const INVALID: u8 = 0;
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const HYPHEN: u8 = 3;
const DOT: u8 = 4;
/// Ends the name: the port follows.
const COLON: u8 = 5;

static HOST_CLASS: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' {
            LETTER
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'-' {
            HYPHEN
        } else if c == b'.' {
            DOT
        } else if c == b':' {
            COLON
        } else {
            INVALID
        };
        b += 1;
    }
    t
};

/// A DNS name or dotted quad: labels of 1 to 63 bytes of letters, digits,
/// `-` and `_`, not starting or ending with `-`, at most 253 bytes.
#[cfg(test)]
fn is_dns_name(h: &[u8]) -> bool {
    dns_name_end(h) == Some(h.len())
}

/// Where the DNS name or dotted quad `v` starts with ends: at its first
/// `:` or at the end; `None` when that part is not one: labels of 1 to
/// 63 bytes of letters, digits, `-` and `_`, not starting or ending with
/// `-`, at most 253 bytes. One pass over the bytes, one table load each.
fn dns_name_end(v: &[u8]) -> Option<usize> {
    let mut label_start = 0;
    let mut prev = DOT;
    let mut numeric = true;
    let mut end = v.len();
    for (i, &b) in v.iter().enumerate() {
        let c = HOST_CLASS[usize::from(b)];
        match c {
            LETTER => numeric = false,
            DIGIT => {}
            DOT => {
                if prev == DOT || prev == HYPHEN || i - label_start > 63 {
                    return None;
                }
                label_start = i + 1;
            }
            HYPHEN => {
                if prev == DOT {
                    return None;
                }
                numeric = false;
            }
            COLON => {
                end = i;
                break;
            }
            _ => return None,
        }
        prev = c;
    }
    if end == 0 || end > MAX_HOST || prev == DOT || prev == HYPHEN || end - label_start > 63 {
        return None;
    }
    // Looks numeric: only a valid dotted quad (no `1.2.3`, `010.0.0.1`).
    (!numeric || parse_v4(v.get(..end)?).is_some()).then_some(end)
}

/// A path prefix: see the [module docs](self) for what is refused.
pub fn parse_prefix(v: &[u8]) -> Option<&[u8]> {
    if v.first() != Some(&b'/') || v.len() > MAX_PREFIX {
        return None;
    }
    let mut prev = 0u8;
    for (i, &b) in v.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'%'
            );
        if !ok {
            return None;
        }
        if (b == b'/' && prev == b'/') || (b == b'.' && prev == b'.') {
            return None;
        }
        if b == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            // Encoded `.`, `/`, `\`: a decoder further on would turn
            // them into `..` or `//`.
            if hex.eq_ignore_ascii_case(b"2e")
                || hex.eq_ignore_ascii_case(b"2f")
                || hex.eq_ignore_ascii_case(b"5c")
            {
                return None;
            }
        }
        prev = b;
    }
    Some(v)
}

/// The items of one comma-separated header line, rightmost first, with
/// spaces and tabs around each trimmed. Empty items (`a,,b`) are skipped,
/// as in `X-Forwarded-For`, so both lists stay aligned.
#[derive(Clone, Debug)]
pub struct ListRev<'a> {
    rest: &'a [u8],
}

impl<'a> ListRev<'a> {
    /// Iterates `line` right to left.
    pub fn new(line: &'a [u8]) -> Self {
        ListRev { rest: line }
    }

    /// The part not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for ListRev<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (before, item) = match self.rest.iter().rposition(|&b| b == b',') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (&self.rest[..0], self.rest),
            };
            self.rest = before;
            let item = trim_ows(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

impl std::iter::FusedIterator for ListRev<'_> {}

/// Number of items [`ListRev`] yields for `line`.
pub fn count_items(line: &[u8]) -> usize {
    line.split(|&b| b == b',')
        .filter(|item| item.iter().any(|&b| !is_ows(b)))
        .count()
}

/// The `proto` and `host` parameters of one `Forwarded` element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElementContext<'a> {
    /// The `proto=` value (quotes removed), if present.
    pub proto: Option<&'a [u8]>,
    /// The `host=` value (quotes removed), if present.
    pub host: Option<&'a [u8]>,
}

/// Reads `proto` and `host` from one `Forwarded` element (`for=..;proto=..`,
/// without the separating commas). `None` when the element does not
/// parse, or a value of either uses a quoted-pair (`\"`): no valid scheme
/// or host contains one, so there is nothing to unescape.
///
/// A standalone reader for one element's text. The resolver does not call
/// it: it takes the values from the [`rfc7239`](super::rfc7239) lexer, in
/// the same pass that reads the element's `for`.
pub fn element_context(element: &[u8]) -> Option<ElementContext<'_>> {
    let mut out = ElementContext::default();
    let mut rest = element;
    loop {
        rest = trim_ows(rest);
        if rest.is_empty() {
            return Some(out);
        }
        let eq = rest.iter().position(|&b| b == b'=')?;
        let name = trim_ows(&rest[..eq]);
        let after = &rest[eq + 1..];
        let (value, next) = if after.first() == Some(&b'"') {
            let close = after[1..].iter().position(|&b| b == b'"')? + 1;
            let value = &after[1..close];
            if value.contains(&b'\\') {
                return None;
            }
            (value, &after[close + 1..])
        } else {
            let end = after.iter().position(|&b| b == b';').unwrap_or(after.len());
            (trim_ows(&after[..end]), &after[end..])
        };
        let next = trim_ows(next);
        rest = match next {
            [] => next,
            [b';', more @ ..] => more,
            _ => return None,
        };
        if name.eq_ignore_ascii_case(b"proto") {
            if out.proto.replace(value).is_some() {
                return None;
            }
        } else if name.eq_ignore_ascii_case(b"host") && out.host.replace(value).is_some() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {

    /// The table-driven [`is_dns_name`] decides as the rules read, written
    /// out branch by branch: every string over an alphabet of each byte
    /// class, up to 70 bytes (labels over 63 included), agrees.
    #[test]
    fn dns_name_table_agrees_with_the_rules() {
        fn by_the_rules(h: &[u8]) -> bool {
            if h.is_empty() || h.len() > MAX_HOST {
                return false;
            }
            let mut label = 0usize;
            let mut prev = b'.';
            let mut numeric = true;
            for &b in h {
                if b == b'.' {
                    if label == 0 || prev == b'-' {
                        return false;
                    }
                    label = 0;
                } else {
                    let ok = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
                    if !ok || (label == 0 && b == b'-') || label == 63 {
                        return false;
                    }
                    numeric &= b.is_ascii_digit();
                    label += 1;
                }
                prev = b;
            }
            if label == 0 || prev == b'-' {
                return false;
            }
            !numeric || parse_v4(h).is_some()
        }
        let alphabet = b"aZ_09.-: \x7f\xc3";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..300_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 71) as usize;
            let mut h: Vec<u8> = (0..len)
                .map(|i| alphabet[((x >> (i % 60)) as usize ^ i) % alphabet.len()])
                .collect();
            if n % 3 == 0 {
                // Mostly letters, so long labels and valid names occur.
                for b in h.iter_mut().filter(|b| **b != b'.') {
                    *b = b'a';
                }
            }
            assert_eq!(
                is_dns_name(&h),
                by_the_rules(&h),
                "{:?}",
                String::from_utf8_lossy(&h)
            );
        }
        for h in [
            "a".repeat(63),
            "a".repeat(64),
            format!("{}.b", "a".repeat(63)),
            "1.2.3.4".into(),
            "1.2.3".into(),
            "a-.b".into(),
            "-a".into(),
            "a..b".into(),
        ] {
            assert_eq!(is_dns_name(h.as_bytes()), by_the_rules(h.as_bytes()), "{h}");
        }
    }

    use super::*;

    #[test]
    fn schemes() {
        for (v, want) in [
            (&b"http"[..], Some(Scheme::Http)),
            (b"HTTPS", Some(Scheme::Https)),
            (b"Ws", Some(Scheme::Ws)),
            (b"wss", Some(Scheme::Wss)),
            (b"ftp", None),
            (b"https ", None),
            (b"", None),
            (b"javascript", None),
        ] {
            assert_eq!(parse_scheme(v), want, "{v:?}");
        }
        assert_eq!(parse_ssl_flag(b"ON"), Some(Scheme::Https));
        assert_eq!(parse_ssl_flag(b"off"), Some(Scheme::Http));
        assert_eq!(parse_ssl_flag(b"1"), None);
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port(b"443"), Some(443));
        assert_eq!(parse_port(b"65535"), Some(65535));
        for bad in [&b"65536"[..], b"0", b"0443", b"+80", b"", b"8o", b"123456"] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        let ok: &[(&[u8], &[u8], Option<u16>)] = &[
            (b"example.com", b"example.com", None),
            (b"a-b.example.com:8080", b"a-b.example.com", Some(8080)),
            (b"xn--bcher-kva.example", b"xn--bcher-kva.example", None),
            (b"[2001:db8::1]", b"[2001:db8::1]", None),
            (b"[::1]:443", b"[::1]", Some(443)),
            (b"192.0.2.1:80", b"192.0.2.1", None.or(Some(80))),
            (b"localhost", b"localhost", None),
        ];
        for (v, h, p) in ok {
            assert_eq!(parse_host(v), Some((*h, *p)), "{v:?}");
        }
        let bad: &[&[u8]] = &[
            b"",
            b"user@example.com",
            b"exa mple.com",
            b"example..com",
            b".example.com",
            b"example.com.",
            b"example.com:",
            b"example.com:99999",
            b"example.com\r\nx: y",
            b"b\xc3\xbccher.example",
            b"2001:db8::1",
            b"[2001:db8::1",
            b"[fe80::1%eth0]",
            b"[2001:db8::1]x",
            b"-a.example",
            b"exa%41mple.com",
            b"1.2.3",
            b"010.0.0.1",
        ];
        for v in bad {
            assert_eq!(parse_host(v), None, "{:?}", String::from_utf8_lossy(v));
        }
        let long = [b'a'; 64];
        assert_eq!(parse_host(&long), None);
    }

    #[test]
    fn prefixes() {
        for ok in [&b"/"[..], b"/app", b"/a/b-c_d.e~", b"/%41pp"] {
            assert_eq!(parse_prefix(ok), Some(ok));
        }
        for bad in [
            &b"app"[..],
            b"",
            b"/a/../b",
            b"//evil.example",
            b"/a\\b",
            b"/%2e%2e/x",
            b"/%2E%2e/x",
            b"/a%2fb",
            b"/a%5Cb",
            b"/a\x00",
            b"/a\tb",
            b"/a b",
            b"/a?x",
            b"/a#x",
            b"/%zz",
            b"/%4",
        ] {
            assert_eq!(parse_prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lists() {
        let items: Vec<&[u8]> = ListRev::new(b" a ,, b,\tc ,").collect();
        assert_eq!(items, [&b"c"[..], b"b", b"a"]);
        assert_eq!(count_items(b" a ,, b,\tc ,"), 3);
        assert_eq!(ListRev::new(b"").next(), None);
        assert_eq!(count_items(b" , "), 0);
    }

    #[test]
    fn elements() {
        let e = element_context(b"for=1.2.3.4;proto=https;host=\"example.com:8443\"").unwrap();
        assert_eq!(e.proto, Some(&b"https"[..]));
        assert_eq!(e.host, Some(&b"example.com:8443"[..]));
        let e = element_context(b"for=1.2.3.4").unwrap();
        assert_eq!(e, ElementContext::default());
        assert_eq!(element_context(b"for=1.2.3.4;proto=http;PROTO=https"), None);
        assert_eq!(element_context(b"for=1.2.3.4;host=\"a\\\"b\""), None);
        assert_eq!(element_context(b"for=1.2.3.4;host=\"unterminated"), None);
    }
}
