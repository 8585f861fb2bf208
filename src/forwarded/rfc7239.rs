//! RFC 7239 `Forwarded`, read right to left.
//!
//! Full grammar: elements separated by commas, pairs by semicolons,
//! `name=value` with a token or a quoted-string (quoted-pairs such as `\"`
//! are unescaped), case-insensitive parameter names, and at most one of
//! each of `for`, `by`, `host` and `proto` per element. Each element
//! yields the [`Node`] of its `for=` parameter: `192.0.2.1`,
//! `"192.0.2.1:80"`, `"[2001:db8::1]"`, `"[2001:db8::1]:443"`, `unknown`,
//! `_hidden`, obfuscated ports (`"1.2.3.4:_p"`, port dropped).
//!
//! Strictness fails closed: an element without `for`, an unquoted IPv6,
//! a quoted value holding several addresses (`for="1.1.1.1, 2.2.2.2"`) or
//! any syntax error yields [`Node::Malformed`], after which nothing more
//! of that line is read (the parser cannot tell where an attacker's text
//! ends). Because elements are lexed from the right, a stray quote written
//! by the client cannot swallow the well-formed elements that trusted
//! proxies appended after it.
//!
//! ```
//! use realip::forwarded::{rfc7239, Node};
//!
//! let line = br#"for=198.51.100.17;proto=https, For="[2001:db8:cafe::17]:4711";by=_lb"#;
//! let mut elements = rfc7239::Line::new(line);
//! assert_eq!(elements.next().unwrap().ip(), Some("2001:db8:cafe::17".parse().unwrap()));
//! assert_eq!(elements.next().unwrap().ip(), Some("198.51.100.17".parse().unwrap()));
//! assert_eq!(elements.next(), None);
//! assert_eq!(rfc7239::Line::new(b"for=unknown").next(), Some(Node::Unknown));
//! ```

use super::xff::v4_plain_rev;
use super::{is_ows, parse_raw, Flavor, Node, Raw, MAPPED_PREFIX};
use std::iter::FusedIterator;

/// Longest unescaped `for=` value worth parsing: `[` + 45-byte IPv6 +
/// zone + `]:65535` fits comfortably.
const MAX_NODE: usize = 80;

/// RFC 9110 `tchar` membership, one table load per byte.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

#[inline]
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// The elements of every line of a repeated `Forwarded` header, nearest
/// first: the last line is read first, each line right to left.
pub type Entries<'a> = super::Entries<'a, Line<'a>>;

/// The elements of one header line, nearest (rightmost) first.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    s: &'a [u8],
    end: usize,
    done: bool,
    /// The `proto` and `host` values of the element last read, found by
    /// the same lexing pass as its `for` (the client-context walk takes
    /// them from here rather than parsing the element again).
    last: Params<'a>,
}

/// The `proto` and `host` values of one `Forwarded` element: tokens as
/// written, quoted-strings without their quotes. A quoted-pair (`\"`) is
/// left escaped: no valid scheme or host contains a backslash, so such a
/// value fails validation as it stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Params<'a> {
    pub(crate) proto: Option<&'a [u8]>,
    pub(crate) host: Option<&'a [u8]>,
}

impl<'a> Line<'a> {
    /// Iterates `line` right to left.
    pub fn new(line: &'a [u8]) -> Self {
        Line {
            s: line,
            end: line.len(),
            done: false,
            last: Params::default(),
        }
    }
}

impl Line<'_> {
    #[inline]
    pub(crate) fn next_raw(&mut self) -> Option<Raw> {
        if self.done {
            return None;
        }
        let s = self.s;
        let mut i = self.end;
        // Skip empty elements (`#rule` allows them) and whitespace.
        loop {
            while i > 0 && is_ows(s[i - 1]) {
                i -= 1;
            }
            if i > 0 && s[i - 1] == b',' {
                i -= 1;
                continue;
            }
            break;
        }
        if i == 0 {
            self.done = true;
            return None;
        }
        if let Some((v4, start)) = for_v4_rev(s, i) {
            self.last = Params::default();
            self.end = start;
            self.done = start == 0;
            return Some(Raw::Ip {
                bits: MAPPED_PREFIX | u128::from(v4),
                port: None,
                zoned: false,
            });
        }
        self.element(i)
    }

    /// The general path: any element ending at `s[..i]`.
    fn element(&mut self, i: usize) -> Option<Raw> {
        match element_rev(self.s, i) {
            Some((start, node, params)) => {
                self.last = params;
                self.end = start;
                if start == 0 {
                    self.done = true;
                }
                Some(node)
            }
            None => {
                self.done = true;
                Some(Raw::Malformed)
            }
        }
    }
}

impl Iterator for Line<'_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        self.next_raw().map(Node::from)
    }
}

impl FusedIterator for Line<'_> {}

impl<'a> super::LineParser<'a> for Line<'a> {
    #[inline]
    fn from_line(line: &'a [u8]) -> Self {
        Line::new(line)
    }
}

impl<'a> super::RawEntries<'a> for Line<'a> {
    #[inline]
    fn next_raw(&mut self) -> Option<Raw> {
        Line::next_raw(self)
    }

    #[inline]
    fn last_params(&self) -> Params<'a> {
        self.last
    }
}

/// Fast path for the most common element, a lone lowercase
/// `for=a.b.c.d`, ending at `s[..i]`: the address and what
/// [`element_rev`] returns as the element's start. Anything else
/// (parameters, quotes, ports, IPv6, other case) is left to it.
#[inline]
fn for_v4_rev(s: &[u8], i: usize) -> Option<(u32, usize)> {
    let (v4, before) = v4_plain_rev(s.get(..i)?)?;
    let start = before.len();
    let mut j = start.checked_sub(4)?;
    if s.get(j..start)? != b"for=" {
        return None;
    }
    while j > 0 && is_ows(s[j - 1]) {
        j -= 1;
    }
    if j == 0 || s[j - 1] == b',' {
        Some((v4, j.saturating_sub(1)))
    } else {
        None
    }
}

/// Parses the element ending at `s[..i]` (non-empty, not ending in OWS
/// or a comma). Returns where the element started (the index of the
/// separating comma, or 0), its `for` node and its `proto` and `host`
/// values; `None` on a syntax error.
fn element_rev(s: &[u8], mut i: usize) -> Option<(usize, Raw, Params<'_>)> {
    let mut node = None;
    let mut params = Params::default();
    let mut seen = 0u8;
    loop {
        while i > 0 && is_ows(s[i - 1]) {
            i -= 1;
        }
        if i == 0 || s[i - 1] == b',' {
            break;
        }
        if s[i - 1] == b';' {
            i -= 1;
            continue;
        }
        // Value: quoted-string or token.
        let close = i - 1;
        let (start, quoted) = if s[close] == b'"' {
            (open_quote(s, close)?, true)
        } else {
            let mut j = i;
            while j > 0 && is_tchar(s[j - 1]) {
                j -= 1;
            }
            if j == i {
                return None;
            }
            (j, false)
        };
        let value = if quoted {
            &s[start + 1..close]
        } else {
            &s[start..i]
        };
        i = start;
        if i == 0 || s[i - 1] != b'=' {
            return None;
        }
        i -= 1;
        let mut j = i;
        while j > 0 && is_tchar(s[j - 1]) {
            j -= 1;
        }
        if j == i {
            return None;
        }
        let name = &s[j..i];
        i = j;
        let bit = if name.eq_ignore_ascii_case(b"for") {
            1
        } else if name.eq_ignore_ascii_case(b"by") {
            2
        } else if name.eq_ignore_ascii_case(b"host") {
            4
        } else if name.eq_ignore_ascii_case(b"proto") {
            8
        } else {
            0
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            1 => {
                node = Some(if quoted {
                    decode_quoted(value)
                } else {
                    parse_raw(value, Flavor::Rfc7239)
                });
            }
            4 => params.host = Some(value),
            8 => params.proto = Some(value),
            _ => {}
        }
        while i > 0 && is_ows(s[i - 1]) {
            i -= 1;
        }
        if i == 0 || s[i - 1] == b',' {
            break;
        }
        if s[i - 1] == b';' {
            i -= 1;
            continue;
        }
        return None;
    }
    Some((i.saturating_sub(1), node.unwrap_or(Raw::Malformed), params))
}

/// Finds the opening quote of the quoted-string closed at `s[close]`: the
/// nearest quote to the left not escaped by an odd run of backslashes.
fn open_quote(s: &[u8], close: usize) -> Option<usize> {
    let mut j = close;
    while j > 0 {
        j -= 1;
        if s[j] == b'"' {
            let run = s[..j].iter().rev().take_while(|&&b| b == b'\\').count();
            if run % 2 == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// Unescapes a quoted-string body into a stack buffer and parses it.
fn decode_quoted(raw: &[u8]) -> Raw {
    let mut buf = [0u8; MAX_NODE];
    let mut len = 0;
    let mut k = 0;
    while k < raw.len() {
        let mut b = raw[k];
        if b == b'\\' {
            k += 1;
            match raw.get(k) {
                Some(&e) => b = e,
                None => return Raw::Malformed,
            }
        } else if b == b'"' || (b < 0x20 && b != b'\t') || b == 0x7f {
            return Raw::Malformed;
        }
        if len == MAX_NODE {
            return Raw::Malformed;
        }
        buf[len] = b;
        len += 1;
        k += 1;
    }
    parse_raw(&buf[..len], Flavor::Rfc7239)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(line: &str) -> Vec<Node> {
        Line::new(line.as_bytes()).collect()
    }

    fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Every element through the general path only.
    fn general(line: &[u8]) -> Vec<Raw> {
        let mut l = Line::new(line);
        std::iter::from_fn(|| {
            if l.done {
                return None;
            }
            let mut i = l.end;
            loop {
                while i > 0 && is_ows(l.s[i - 1]) {
                    i -= 1;
                }
                if i > 0 && l.s[i - 1] == b',' {
                    i -= 1;
                    continue;
                }
                break;
            }
            if i == 0 {
                l.done = true;
                return None;
            }
            l.element(i)
        })
        .collect()
    }

    fn fast(line: &[u8]) -> Vec<Raw> {
        let mut l = Line::new(line);
        std::iter::from_fn(|| l.next_raw()).collect()
    }

    #[test]
    fn fast_path_agrees_with_general_path() {
        for line in [
            &b"for=1.2.3.4"[..],
            b"for=1.2.3.4, for=10.0.0.1",
            b" ,for=1.2.3.4 ,\t, for=5.6.7.8 , ",
            b",for=1.2.3.4",
            b"FOR=1.2.3.4",
            b"xfor=1.2.3.4",
            b"by=x;for=1.2.3.4",
            b"for=9.9.9.9;for=1.2.3.4",
            b"for=1.2.3.04",
            b"for=01.2.3.4",
            b"for=1.2.3.4:80",
            b"for=\"1.2.3.4\"",
            b"for=1.2.3.4.5",
            b"for= 1.2.3.4",
            b"for=\"evil, for=2.2.2.2",
            b"for=256.1.1.1",
            b"=1.2.3.4",
            b"1.2.3.4",
        ] {
            assert_eq!(
                fast(line),
                general(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_on_random_lines(
            line in "([ \t]?(for|FOR|by|x)=[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}[ \t]?[,;\"=]?){1,5}"
        ) {
            proptest::prop_assert_eq!(fast(line.as_bytes()), general(line.as_bytes()));
        }
    }

    #[test]
    fn grammar() {
        let n = nodes(r#"for=1.1.1.1 , ,FOR="[::1]:80";Proto=http;by="x\"y""#);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].ip(), ip("::1"));
        assert_eq!(n[1].ip(), ip("1.1.1.1"));
        assert_eq!(nodes(r#"for="\1\.\2.3.4""#)[0].ip(), ip("1.2.3.4"));
        assert_eq!(nodes("for=_abc")[0], Node::Obfuscated);
        assert_eq!(nodes("proto=https")[0], Node::Malformed);
        assert_eq!(nodes("for=1.1.1.1;for=2.2.2.2")[0], Node::Malformed);
        assert_eq!(nodes(r#"for="1.1.1.1, 2.2.2.2""#)[0], Node::Malformed);
        assert_eq!(nodes("for=[::1]")[0], Node::Malformed);
        assert_eq!(nodes(r#"for="2001:db8::1""#)[0], Node::Malformed);
        // Unmatched quote on the left does not hide the right element.
        let n = nodes(r#"for="evil, for=2.2.2.2"#);
        assert_eq!(n[0].ip(), ip("2.2.2.2"));
        assert_eq!(n[1], Node::Malformed);
        assert_eq!(n.len(), 2);
        // Unmatched quote on the right.
        assert_eq!(nodes(r#"for=1.1.1.1, for="2.2.2.2"#), [Node::Malformed]);
        assert!(nodes(" , ").is_empty());
    }
}
