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

use super::{parse_node, parse_raw, trim_ows, Flavor, Node, Raw};
use http::header::{GetAll, ValueIter};
use http::HeaderValue;
use std::iter::{FusedIterator, Rev};

/// Parses a single list item (spaces allowed around it).
pub fn parse_item(item: &[u8]) -> Node {
    parse_node(trim_ows(item), Flavor::List)
}

/// The entries of one header line, nearest (rightmost) first.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Line<'a> {
    /// Iterates `line` right to left.
    pub fn new(line: &'a [u8]) -> Self {
        Line {
            rest: line,
            done: false,
        }
    }
}

impl Line<'_> {
    #[inline]
    pub(crate) fn next_raw(&mut self) -> Option<Raw> {
        while !self.done {
            let item = match self.rest.iter().rposition(|&b| b == b',') {
                Some(comma) => {
                    let item = &self.rest[comma + 1..];
                    self.rest = &self.rest[..comma];
                    item
                }
                None => {
                    self.done = true;
                    self.rest
                }
            };
            let item = trim_ows(item);
            if !item.is_empty() {
                return Some(parse_raw(item, Flavor::List));
            }
        }
        None
    }
}

impl Iterator for Line<'_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        self.next_raw().map(Node::from)
    }
}

impl FusedIterator for Line<'_> {}

/// The entries of every line of a repeated header, nearest first: the last
/// line is read first, each line right to left. Nothing is joined or copied.
#[derive(Debug)]
pub struct Entries<'a> {
    lines: Rev<ValueIter<'a, HeaderValue>>,
    line: Line<'a>,
    present: bool,
}

impl<'a> Entries<'a> {
    /// Walks all lines of one header (`headers.get_all(name)`).
    pub fn new(lines: GetAll<'a, HeaderValue>) -> Self {
        let mut lines = lines.into_iter().rev();
        let (line, present) = match lines.next() {
            Some(v) => (Line::new(v.as_bytes()), true),
            None => (Line::new(&[]), false),
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

impl Entries<'_> {
    #[inline]
    pub(crate) fn next_raw(&mut self) -> Option<Raw> {
        loop {
            if let Some(n) = self.line.next_raw() {
                return Some(n);
            }
            self.line = Line::new(self.lines.next()?.as_bytes());
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        self.next_raw().map(Node::from)
    }
}

impl FusedIterator for Entries<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(line: &str) -> Vec<Option<String>> {
        Line::new(line.as_bytes())
            .map(|n| n.ip().map(|ip| ip.to_string()))
            .collect()
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
