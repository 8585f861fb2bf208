//! Single-address headers: `X-Real-IP`, `CF-Connecting-IP`,
//! `True-Client-IP`, `Fly-Client-IP`, `X-Envoy-External-Address`,
//! `CloudFront-Viewer-Address` and custom names.
//!
//! A proxy that sets such a header *replaces* it, so a request carrying two
//! lines of one is ambiguous (one may be the client's forgery) and is
//! reported as [`Single::Ambiguous`] rather than guessed at.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use realip::forwarded::{single, X_REAL_IP};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(X_REAL_IP, HeaderValue::from_static("203.0.113.9"));
//! match single::read(headers.get_all(X_REAL_IP), single::parse) {
//!     single::Single::One(node) => assert_eq!(node.ip(), Some("203.0.113.9".parse().unwrap())),
//!     other => panic!("{other:?}"),
//! }
//! ```

use super::{
    parse_port, parse_raw, parse_v4, parse_v6_zoned, trim_ows, Flavor, Node, Raw, MAPPED_PREFIX,
};
use http::header::GetAll;
use http::HeaderValue;

/// What a single-address header held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Single {
    /// No line of the header.
    Absent,
    /// Exactly one line, parsed.
    One(Node),
    /// Two or more lines: refuse to choose.
    Ambiguous,
}

/// Reads a single-address header with the given value parser
/// ([`parse`] or [`parse_cloudfront`]).
pub fn read(lines: GetAll<'_, HeaderValue>, parser: fn(&[u8]) -> Node) -> Single {
    let mut it = lines.iter();
    match (it.next(), it.next()) {
        (None, _) => Single::Absent,
        (Some(v), None) => Single::One(parser(v.as_bytes())),
        (Some(_), Some(_)) => Single::Ambiguous,
    }
}

/// One address in list-entry syntax (`ip`, `ip:port`, `[v6]`, `[v6]:port`);
/// a comma makes the value malformed.
pub fn parse(value: &[u8]) -> Node {
    parse_single_raw(value).into()
}

pub(crate) fn parse_single_raw(value: &[u8]) -> Raw {
    let v = trim_ows(value);
    if v.contains(&b',') {
        return Raw::Malformed;
    }
    parse_raw(v, Flavor::List)
}

/// CloudFront's `ip:port`, where an IPv6 address is not bracketed
/// (`2001:db8::1:46532`): the port is whatever follows the last colon and
/// is required.
pub fn parse_cloudfront(value: &[u8]) -> Node {
    parse_cloudfront_raw(value).into()
}

pub(crate) fn parse_cloudfront_raw(value: &[u8]) -> Raw {
    let v = trim_ows(value);
    let Some(colon) = v.iter().rposition(|&b| b == b':') else {
        return Raw::Malformed;
    };
    let (host, port) = (&v[..colon], &v[colon + 1..]);
    let Some(port) = parse_port(port) else {
        return Raw::Malformed;
    };
    let bits = if let Some(v4) = parse_v4(host) {
        MAPPED_PREFIX | u128::from(v4)
    } else {
        // CloudFront never sends a zone; one here is not its format.
        match parse_v6_zoned(host) {
            Some((v6, false)) => v6,
            _ => return Raw::Malformed,
        }
    };
    Raw::Ip {
        bits,
        port: Some(port),
        zoned: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarded::NodeAddr;

    #[test]
    fn cloudfront() {
        let n = parse_cloudfront(b"2001:db8::1:46532");
        assert_eq!(n.ip(), Some("2001:db8::1".parse().unwrap()));
        assert!(matches!(
            n,
            Node::Ip(NodeAddr {
                port: Some(46532),
                ..
            })
        ));
        assert_eq!(
            parse_cloudfront(b"198.51.100.10:0").ip(),
            Some("198.51.100.10".parse().unwrap())
        );
        assert_eq!(parse_cloudfront(b"198.51.100.10"), Node::Malformed);
        assert_eq!(parse_cloudfront(b"fe80::1%eth0:443"), Node::Malformed);
        assert_eq!(parse(b"1.2.3.4, 5.6.7.8"), Node::Malformed);
        assert_eq!(parse(b" 1.2.3.4 ").ip(), Some("1.2.3.4".parse().unwrap()));
    }
}
