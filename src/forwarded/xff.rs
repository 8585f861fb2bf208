//! `X-Forwarded-For` style lists, read right to left.
//!
//! Grammar accepted per entry: `ip`, `ip:port` (IPv4), `[v6]`, `[v6]:port`,
//! bare IPv6, each optionally with an IPv6 zone (`%eth0`); surrounding
//! spaces and tabs are ignored and empty items (`a,,b`, trailing commas)
//! are skipped. `unknown` and `_obfuscated` map to their [`Node`] variants
//! so that a resolver can name why it stopped; anything else is
//! [`Node::Malformed`].
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use realip::forwarded::{xff, X_FORWARDED_FOR};
//!
//! let mut headers = HeaderMap::new();
//! headers.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1, 10.0.0.1"));
//! headers.append(X_FORWARDED_FOR, HeaderValue::from_static("[2001:db8::2]:443"));
//! let ips: Vec<_> = xff::Entries::new(headers.get_all(X_FORWARDED_FOR))
//!     .map(|n| n.ip().unwrap().to_string())
//!     .collect();
//! assert_eq!(ips, ["2001:db8::2", "10.0.0.1", "198.51.100.1"]);
//! ```

use super::{is_ows, parse_node, parse_raw, trim_ows, Flavor, Node, Raw, MAPPED_PREFIX};
use std::iter::FusedIterator;

/// The entries of every line of a repeated header, nearest first: the last
/// line is read first, each line right to left. Nothing is joined or copied.
pub type Entries<'a> = super::Entries<'a, Line<'a>>;

/// Parses a single list item (spaces allowed around it).
pub fn parse_item(item: &[u8]) -> Node {
    parse_node(trim_ows(item), Flavor::List)
}

/// The entries of one header line, nearest (rightmost) first.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The part not yet read. Empty items are skipped, so an empty rest
    /// is the end of the line.
    rest: &'a [u8],
}

impl<'a> Line<'a> {
    /// Iterates `line` right to left.
    pub fn new(line: &'a [u8]) -> Self {
        Line { rest: line }
    }
}

impl<'a> Line<'a> {
    #[inline(always)]
    pub(crate) fn next_raw(&mut self) -> Option<Raw> {
        // The one fast path (it buys 15-40% of a whole resolution on the
        // lines proxies write; README "Fast paths"), inlined into the
        // resolver's walk: a plain `a.b.c.d` ending the rest of the line,
        // read right to left in one pass. It accepts only what the general
        // path parses to the same value (pinned by the tests below) and
        // leaves everything else (ports, spaces, IPv6, the line's end) to
        // the general path, kept out of line so that this one stays small.
        if let Some((v4, before)) = v4_plain_rev(self.rest) {
            if let Some(raw) = self.take_item(before, MAPPED_PREFIX | u128::from(v4)) {
                return Some(raw);
            }
        }
        self.next_raw_general()
    }

    /// Ends the item read, `before` being the line up to its first byte,
    /// if it is a whole item (only spaces before it, then a comma or the
    /// line's start).
    #[inline(always)]
    fn take_item(&mut self, before: &'a [u8], bits: u128) -> Option<Raw> {
        let len = before.len();
        // `, ` and `,` (what proxies write) and the line's start are
        // matched directly.
        self.rest = match before {
            [rest @ .., b',', b' '] | [rest @ .., b','] => rest,
            [] => &[],
            _ => {
                let mut i = len;
                while i > 0 && is_ows(before[i - 1]) {
                    i -= 1;
                }
                match i.checked_sub(1) {
                    None => &[],
                    Some(comma) if before[comma] == b',' => &before[..comma],
                    Some(_) => return None,
                }
            }
        };
        Some(Raw::Ip {
            bits,
            port: None,
            zoned: false,
        })
    }

    /// The general path: the rightmost item left, by the one grammar of
    /// every entry ([`parse_raw`]).
    #[inline(never)]
    fn next_raw_general(&mut self) -> Option<Raw> {
        while !self.rest.is_empty() {
            let item = match self.rest.iter().rposition(|&b| b == b',') {
                Some(comma) => {
                    let item = &self.rest[comma + 1..];
                    self.rest = &self.rest[..comma];
                    item
                }
                None => std::mem::take(&mut self.rest),
            };
            let item = trim_ows(item);
            if !item.is_empty() {
                return Some(parse_raw(item, Flavor::List));
            }
        }
        None
    }
}

/// A plain `a.b.c.d` (no port) ending `s`: the address and the bytes
/// before it, which the caller judges (a digit or dot there means this is
/// not a dotted quad). The common case, in one right-to-left pass without
/// the port handling of the general path; `None` for anything else.
#[inline(always)]
pub(super) fn v4_plain_rev(s: &[u8]) -> Option<(u32, &[u8])> {
    // A dotted quad and the byte before it span at most 16 bytes: read
    // them as one fixed window (zeros before a shorter line's start).
    let (v4, len) = match s.last_chunk::<16>() {
        Some(w) => v4_window_rev(w)?,
        None => v4_window_rev(&short_window(s)?)?,
    };
    // Every byte read as part of the address is one of `s` (the zeros
    // are neither digits nor dots), so `len <= s.len()`; checked anyway.
    Some((v4, s.get(..s.len().checked_sub(len)?)?))
}

/// The 16-byte window of a line shorter than that, zeros first; `None`
/// below 7 bytes, too short for a dotted quad. Built from two overlapping
/// reads of the line's first and last bytes (where they overlap they hold
/// the same bytes, so OR-ing them is exact), which costs less than copying
/// a variable length.
#[inline(always)]
fn short_window(s: &[u8]) -> Option<[u8; 16]> {
    let n = s.len();
    let w = match n {
        8..=15 => {
            let (first, last) = (s.first_chunk::<8>()?, s.last_chunk::<8>()?);
            u128::from(u64::from_be_bytes(*first)) << (8 * (n - 8))
                | u128::from(u64::from_be_bytes(*last))
        }
        7 => {
            let (first, last) = (s.first_chunk::<4>()?, s.last_chunk::<4>()?);
            u128::from(u32::from_be_bytes(*first)) << 24 | u128::from(u32::from_be_bytes(*last))
        }
        _ => return None,
    };
    Some(w.to_be_bytes())
}

/// The dotted quad ending `w`, read right to left: the address and how
/// many bytes it spans. Each of the three right octets reads at most four
/// bytes (three digits and their dot), the leftmost at most three, so no
/// index ever leaves the window. What ends the leftmost octet is the byte
/// before the address, left to the caller. The octets are read by four
/// calls, not a loop: as a loop (16 fewer instructions on the #14
/// request, the octets sharing their branches) the request took about
/// 10% more time against `client-ip` in the plain loop.
#[inline(always)]
fn v4_window_rev(w: &[u8; 16]) -> Option<(u32, usize)> {
    let (d, end) = dotted_octet_rev(w, 16)?;
    let (c, end) = dotted_octet_rev(w, end)?;
    let (b, end) = dotted_octet_rev(w, end)?;
    let (a, start) = first_octet_rev(w, end)?;
    Some((a << 24 | b << 16 | c << 8 | d, 16 - start))
}

/// Byte `j` of the window and its digit value (above 9 for anything but
/// a digit). Every caller's `j` is below 16: `j & 15` only tells the
/// compiler so, which drops the bounds checks.
#[inline(always)]
fn byte_at(w: &[u8; 16], j: usize) -> (u8, u32) {
    let b = w[j & 15];
    (b, u32::from(b).wrapping_sub(u32::from(b'0')))
}

/// The octet ending before `end` (at least 8) and the dot before it: its
/// value and where the dot is. Leading zeros (`01`, `001`) are not a
/// dotted quad; `v - 100 <= 155` is `100 <= v <= 255` in one test.
#[inline(always)]
fn dotted_octet_rev(w: &[u8; 16], end: usize) -> Option<(u32, usize)> {
    let (_, d0) = byte_at(w, end - 1);
    if d0 > 9 {
        return None;
    }
    let (b1, d1) = byte_at(w, end - 2);
    if b1 == b'.' {
        return Some((d0, end - 2));
    }
    if d1 > 9 {
        return None;
    }
    let (b2, d2) = byte_at(w, end - 3);
    if b2 == b'.' {
        return (d1 != 0).then_some((d1 * 10 + d0, end - 3));
    }
    if d2 > 9 || byte_at(w, end - 4).0 != b'.' {
        return None;
    }
    let v = d2 * 100 + d1 * 10 + d0;
    (v.wrapping_sub(100) <= 155).then_some((v, end - 4))
}

/// The leftmost octet, ending before `end` (at least 4): its value and
/// its first byte's index. A fourth digit before it is the caller's.
#[inline(always)]
fn first_octet_rev(w: &[u8; 16], end: usize) -> Option<(u32, usize)> {
    let (_, d0) = byte_at(w, end - 1);
    if d0 > 9 {
        return None;
    }
    let (_, d1) = byte_at(w, end - 2);
    if d1 > 9 {
        return Some((d0, end - 1));
    }
    let (_, d2) = byte_at(w, end - 3);
    if d2 > 9 {
        return (d1 != 0).then_some((d1 * 10 + d0, end - 2));
    }
    let v = d2 * 100 + d1 * 10 + d0;
    (v.wrapping_sub(100) <= 155).then_some((v, end - 3))
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
    #[inline(always)]
    fn next_raw(&mut self) -> Option<Raw> {
        Line::next_raw(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(line: &str) -> Vec<Option<String>> {
        Line::new(line.as_bytes())
            .map(|n| n.ip().map(|ip| ip.to_string()))
            .collect()
    }

    /// The fast path and the general path agree on every line.
    fn general(line: &[u8]) -> Vec<Raw> {
        let mut l = Line::new(line);
        std::iter::from_fn(|| l.next_raw_general()).collect()
    }

    fn fast(line: &[u8]) -> Vec<Raw> {
        let mut l = Line::new(line);
        std::iter::from_fn(|| l.next_raw()).collect()
    }

    /// The port-less fast path alone, where it accepts, gives the general
    /// path's first item.
    fn plain_agrees(line: &[u8]) {
        let mut end = line.len();
        while end > 0 && is_ows(line[end - 1]) {
            end -= 1;
        }
        let Some((v4, before)) = v4_plain_rev(&line[..end]) else {
            return;
        };
        // `next_raw` accepts it only as a whole item.
        let mut i = before.len();
        while i > 0 && is_ows(line[i - 1]) {
            i -= 1;
        }
        if i == 0 || line[i - 1] == b',' {
            let first = Line::new(line).next_raw_general();
            assert_eq!(
                first,
                Some(Raw::Ip {
                    bits: MAPPED_PREFIX | u128::from(v4),
                    port: None,
                    zoned: false
                }),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn fast_path_agrees_with_general_path() {
        for line in [
            &b"1.2.3.4"[..],
            b"1.2.3.4:80",
            b" 1.2.3.4:65535 ,\t9.9.9.9 ",
            b"1.2.3.4:65536",
            b"1.2.3.4:0080",
            b"01.2.3.4",
            b"1.2.3.04",
            b"1.2.3.4.5",
            b"5.1.2.3.4",
            b"x1.2.3.4",
            b"1.2.3.4 5.6.7.8",
            b"1.2.3.4,,5.6.7.8,",
            b"::1.2.3.4",
            b"[::1]:1.2.3.4",
            b"256.1.1.1",
            b"1.2.3.4:",
            b":1.2.3.4",
            b"1.2.3.4::80",
            b"1:1.2.3.4",
            b"11.2.3.4:123456",
            b"1.2.3.1000",
            b"0.0.0.0:0",
            b"0.0.0.0",
            b",",
            b"0.0.0.0 0.0.0.0",
            b"1.2.3.4\0",
            b"1.2.3.4 :80",
            b"1.2.3.4: 80",
            b"1.2.3.4:80 x",
            b"1.2.3.4:80\t, 1.2.3.4\t ",
            b"255.255.255.255",
            b"255.255.255.255:65535",
            b"1.2.3.4:00000",
            b"1.2.3.4:000001",
            b"\t,1.2.3.4",
            b"1.2.3.00",
            b"1.2.3.000",
            b"1.2.3.255",
            b"1.2.3.256",
            b"1.2.3.1234",
            b"1234.2.3.4",
            b"100.20.3.40",
            b"\x001.2.3.4",
            b",1.2.3.4",
            b" ,1.2.3.4",
            b"1.2.3.4, 5.6.7.8",
            b"1.2.3.4 ,5.6.7.8",
            b"1.2.3.4,\t5.6.7.8",
            b"9.9.9.9,  1.2.3.4",
            b"1.2.3.4x, 5.6.7.8",
            b"123.2.3.4",
            b"1234.2.3.4, 5.6.7.8",
        ] {
            plain_agrees(line);
            assert_eq!(
                fast(line),
                general(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    /// Every octet value in every position, with leading zeros and a
    /// fourth digit, in the shapes around an item that the fast path
    /// judges: separators, spaces, tabs, empty items, commas at both ends,
    /// three and five octets, trailing dots.
    #[test]
    fn fast_path_agrees_on_every_octet() {
        let mut spellings = Vec::new();
        for v in 0..=255u32 {
            spellings.push(v.to_string());
            spellings.push(format!("0{v}"));
            spellings.push(format!("{v:03}"));
        }
        spellings.extend(["1000", "2550", "256", "999", "0000", ""].map(String::from));
        let shapes: [fn(&str) -> String; 16] = [
            |o| format!("{o}.2.3.4"),
            |o| format!("1.{o}.3.4"),
            |o| format!("1.2.{o}.4"),
            |o| format!("1.2.3.{o}"),
            |o| format!("9.9.9.9, 1.2.3.{o}"),
            |o| format!("{o}.2.3.4, 9.9.9.9"),
            |o| format!(",{o}.2.3.4,"),
            |o| format!(" \t{o}.2.3.4\t ,, 1.2.3.{o} "),
            |o| format!("1.2.{o}"),
            |o| format!("1.2.3.4.{o}"),
            |o| format!("{o}.1.2.3.4"),
            |o| format!("1.2.3.{o}."),
            |o| format!(".{o}.2.3.4"),
            |o| format!("1.2.3.{o}:80"),
            |o| format!("x{o}.2.3.4"),
            |o| format!("1.2.3.4 {o}"),
        ];
        // Every canonical spelling takes the fast path itself.
        for v in 0..=255u32 {
            let line = format!("{v}.{v}.{v}.{v}");
            let want = u32::from_be_bytes([v as u8; 4]);
            assert_eq!(v4_plain_rev(line.as_bytes()), Some((want, &b""[..])));
        }
        for o in &spellings {
            for shape in shapes {
                let line = shape(o);
                plain_agrees(line.as_bytes());
                assert_eq!(fast(line.as_bytes()), general(line.as_bytes()), "{line:?}");
            }
        }
    }

    /// The window's two sources agree: every item shape after every
    /// length of line before it, so that the address ends a line shorter
    /// than the window (built from two overlapping reads), exactly as long
    /// or longer (read in place), with its first byte anywhere in the
    /// window and the byte before it at the window's start or outside.
    #[test]
    fn fast_path_agrees_at_every_window_position() {
        let items = [
            "1.2.3.4",
            "0.0.0.0",
            "9.99.199.255",
            "255.255.255.255",
            "100.200.10.1",
            "01.2.3.4",
            "1.2.3.256",
            "1234.5.6.7",
            "1.2.3.4.5",
            "1.2.3",
        ];
        let befores = ["", ",", ", ", " ", "\t,", "x", "9", ".", "\0", ":", "\t"];
        for item in items {
            for before in befores {
                for pad in 0..=18 {
                    let line = format!("{}{before}{item}", "7".repeat(pad));
                    plain_agrees(line.as_bytes());
                    assert_eq!(fast(line.as_bytes()), general(line.as_bytes()), "{line:?}");
                    let line = format!("{}{before}{item}", ", ".repeat(pad));
                    plain_agrees(line.as_bytes());
                    assert_eq!(fast(line.as_bytes()), general(line.as_bytes()), "{line:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_on_random_lines(line in "[0-9.:, \t\\[\\]a-f\0]{0,40}") {
            plain_agrees(line.as_bytes());
            proptest::prop_assert_eq!(fast(line.as_bytes()), general(line.as_bytes()));
        }

        /// Lines of near-dotted-quads, where the fast paths decide most
        /// items themselves: edge octets, leading zeros, long ports.
        #[test]
        fn fast_path_agrees_on_dotted_quads(
            line in "([ \t]?[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}(:[0-9]{0,7})?[ \t]?[,x.]?){1,5}"
        ) {
            plain_agrees(line.as_bytes());
            proptest::prop_assert_eq!(fast(line.as_bytes()), general(line.as_bytes()));
        }
    }

    #[test]
    fn right_to_left_with_whitespace_and_empties() {
        assert_eq!(
            ips(" 1.1.1.1 ,\t,2.2.2.2:80,, [::1]:9 ,\t"),
            [
                Some("::1".into()),
                Some("2.2.2.2".into()),
                Some("1.1.1.1".into())
            ]
        );
        assert!(ips("").is_empty());
        assert!(ips(" , ,\t").is_empty());
        assert_eq!(ips("x, 1.1.1.1"), [Some("1.1.1.1".into()), None]);
    }
}
