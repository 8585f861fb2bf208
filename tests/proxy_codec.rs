//! PROXY codec: the HAProxy specification's examples and every rejection rule,
//! one test per rule.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use realip::proxy::{
    self, detect, kind, v1, v2, Addresses, Command, Detected, EncodeError, Endpoint, Error, Family,
    Header, Options, Status, Tlv, Transport, Unaddressed, Version,
};

fn complete(buf: &[u8]) -> (Header<'_>, usize) {
    match proxy::parse(buf) {
        Ok(Status::Complete(h, n)) => (h, n),
        other => panic!(
            "expected Complete for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn err(buf: &[u8]) -> Error {
    match proxy::parse(buf) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn partial(buf: &[u8]) -> Option<NonZeroUsize> {
    match proxy::parse(buf) {
        Ok(Status::Partial(n)) => n,
        other => panic!(
            "expected Partial for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v4(src: &str, dst: &str) -> Addresses<'static> {
    match (sa(src), sa(dst)) {
        (SocketAddr::V4(source), SocketAddr::V4(destination)) => Addresses::Ipv4 {
            source,
            destination,
        },
        _ => unreachable!(),
    }
}

fn v6(src: &str, dst: &str) -> Addresses<'static> {
    match (sa(src), sa(dst)) {
        (SocketAddr::V6(source), SocketAddr::V6(destination)) => Addresses::Ipv6 {
            source,
            destination,
        },
        _ => unreachable!(),
    }
}

/// A raw v2 header: fixed part with `ver_cmd`, `fam`, then `body`.
fn raw_v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut b = v2::SIGNATURE.to_vec();
    b.push(ver_cmd);
    b.push(fam);
    b.extend_from_slice(&(body.len() as u16).to_be_bytes());
    b.extend_from_slice(body);
    b
}

const V4_BLOCK: [u8; 12] = [192, 0, 2, 7, 10, 0, 0, 1, 0xDC, 0x04, 0x01, 0xBB];

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

// ---------------------------------------------------------------- v1: spec examples

#[test]
fn v1_spec_example_tcp4() {
    let buf = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    let (h, n) = complete(buf);
    assert_eq!(n, 47);
    assert_eq!(h.version(), Version::V1);
    assert_eq!(h.command(), Command::Proxy);
    assert_eq!(h.transport(), Transport::Stream);
    assert_eq!(h.family(), Family::Inet);
    assert_eq!(h.source(), Some(sa("192.168.0.1:56324")));
    assert_eq!(h.destination(), Some(sa("192.168.0.11:443")));
    assert_eq!(h.tlvs().count(), 0);
}

#[test]
fn v1_spec_worst_case_tcp4_56_bytes() {
    let buf = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(buf.len(), 56);
    let (h, n) = complete(buf);
    assert_eq!(n, 56);
    assert_eq!(h.source(), Some(sa("255.255.255.255:65535")));
}

#[test]
fn v1_spec_worst_case_tcp6_104_bytes() {
    let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
    assert_eq!(line.len(), 104);
    let (h, n) = complete(line.as_bytes());
    assert_eq!(n, 104);
    assert_eq!(h.source(), Some(sa(&format!("[{a}]:65535"))));
    assert_eq!(h.destination(), Some(sa(&format!("[{a}]:65535"))));
}

#[test]
fn v1_spec_worst_case_unknown_107_bytes() {
    let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
    assert_eq!(line.len(), 107);
    let (h, n) = complete(line.as_bytes());
    assert_eq!(n, 107);
    assert_eq!(h.family(), Family::Unspec);
    assert_eq!(h.transport(), Transport::Unspec);
    assert_eq!(h.source(), None);
}

#[test]
fn v1_spec_shortest_unknown_15_bytes() {
    let (h, n) = complete(b"PROXY UNKNOWN\r\nrest");
    assert_eq!(n, 15);
    assert_eq!(h.source(), None);
    assert_eq!(h.destination(), None);
}

#[test]
fn v1_unknown_ignores_rest_of_line() {
    let buf = b"PROXY UNKNOWN anything at all, even garbage \x01\xff\r\nX";
    let (h, n) = complete(buf);
    assert_eq!(n, buf.len() - 1);
    assert_eq!(h.addresses(), Addresses::Unspec);
}

#[test]
fn v1_tcp6_compressed_and_embedded_ipv4_forms() {
    for (text, want) in [
        ("::1", "::1"),
        ("::", "::"),
        ("2001:DB8::1", "2001:db8::1"),
        ("1::", "1::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("0db8:0000::0001", "db8::1"),
    ] {
        let line = format!("PROXY TCP6 {text} ::1 1 2\r\n");
        let (h, _) = complete(line.as_bytes());
        let want: std::net::Ipv6Addr = want.parse().unwrap();
        assert_eq!(h.source().unwrap().ip(), want, "{text}");
    }
}

#[test]
fn v1_port_zero_and_octet_zero_are_allowed() {
    let (h, _) = complete(b"PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n");
    assert_eq!(h.source(), Some(sa("0.0.0.0:0")));
}

// ---------------------------------------------------------------- v1: rejections

#[test]
fn v1_rejects_wrong_prefix() {
    assert_eq!(err(b"PROXy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), Error::NotProxy);
    assert_eq!(err(b"PROXYTCP4"), Error::NotProxy);
    assert_eq!(err(b"GET / HTTP/1.1\r\n"), Error::NotProxy);
}

#[test]
fn v1_rejects_unknown_protocol() {
    assert_eq!(
        err(b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Protocol
    );
    assert_eq!(
        err(b"PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Protocol
    );
    assert_eq!(
        err(b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Protocol
    );
    assert_eq!(
        err(b"PROXY TCP44 1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Protocol
    );
    assert_eq!(err(b"PROXY UNKNOWNX\r\n"), Error::V1Protocol);
}

#[test]
fn v1_rejects_double_space() {
    assert_eq!(
        err(b"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Separator
    );
    assert_eq!(
        err(b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Separator
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n"),
        Error::V1Separator
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4  1 2\r\n"),
        Error::V1Separator
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1  2\r\n"),
        Error::V1Separator
    );
    assert_eq!(err(b"PROXY TCP6  ::1 ::1 1 2\r\n"), Error::V1Separator);
}

#[test]
fn v1_rejects_tab_as_separator() {
    assert_eq!(
        err(b"PROXY TCP4\t1.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Separator
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
}

#[test]
fn v1_rejects_octet_leading_zero() {
    assert_eq!(
        err(b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1AddressLeadingZero(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.00 1 2\r\n"),
        Error::V1AddressLeadingZero(Endpoint::Destination)
    );
    assert_eq!(
        err(b"PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n"),
        Error::V1AddressLeadingZero(Endpoint::Source)
    );
}

#[test]
fn v1_rejects_octet_above_255() {
    assert_eq!(
        err(b"PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.1000 1 2\r\n"),
        Error::V1Address(Endpoint::Destination)
    );
}

#[test]
fn v1_rejects_short_or_long_dotted_quad() {
    assert_eq!(
        err(b"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1..3.4 1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
}

#[test]
fn v1_rejects_family_mismatch() {
    assert_eq!(
        err(b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
        Error::V1Address(Endpoint::Destination)
    );
    assert_eq!(
        err(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
        Error::V1Address(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP6 ::1 10.0.0.1 1 2\r\n"),
        Error::V1Address(Endpoint::Destination)
    );
}

#[test]
fn v1_rejects_malformed_ipv6() {
    for bad in [
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "1::2::3",
        ":1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8::",
        "12345::",
        "fe80::1%eth0",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::1:",
        "g::1",
        "1:2:3:4:5:6:7:8:",
    ] {
        let line = format!("PROXY TCP6 {bad} ::1 1 2\r\n");
        assert_eq!(
            err(line.as_bytes()),
            Error::V1Address(Endpoint::Source),
            "{bad}"
        );
    }
}

#[test]
fn v1_rejects_port_leading_zero() {
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n"),
        Error::V1PortLeadingZero(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 00\r\n"),
        Error::V1PortLeadingZero(Endpoint::Destination)
    );
}

#[test]
fn v1_rejects_port_above_65535() {
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"),
        Error::V1PortRange(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 999999\r\n"),
        Error::V1PortRange(Endpoint::Destination)
    );
}

#[test]
fn v1_rejects_non_numeric_port() {
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 x 2\r\n"),
        Error::V1Port(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n"),
        Error::V1Port(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1x 2\r\n"),
        Error::V1Port(Endpoint::Source)
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 +2\r\n"),
        Error::V1Port(Endpoint::Destination)
    );
}

#[test]
fn v1_rejects_missing_fields() {
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), Error::V1Truncated);
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4\r\n"), Error::V1Truncated);
    assert_eq!(err(b"PROXY TCP4 1.2.3.4\r\n"), Error::V1Truncated);
    assert_eq!(err(b"PROXY TCP4\r\n"), Error::V1Truncated);
}

#[test]
fn v1_rejects_trailing_data_before_crlf() {
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n"), Error::V1Crlf);
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), Error::V1Crlf);
}

#[test]
fn v1_rejects_bare_lf_or_bare_cr() {
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), Error::V1Crlf);
    assert_eq!(err(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX"), Error::V1Crlf);
    assert_eq!(err(b"PROXY UNKNOWN\n"), Error::V1Crlf);
    assert_eq!(err(b"PROXY UNKNOWN abc\rd\r\n"), Error::V1Crlf);
}

#[test]
fn v1_rejects_107_bytes_without_crlf() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(107, b'a');
    assert_eq!(err(&line), Error::V1TooLong);
    // 106 bytes without CRLF may still end well.
    assert!(partial(&line[..106]).is_some());
    // A CR as byte 107 leaves no room for the LF.
    line[106] = b'\r';
    line.push(b'\n');
    assert_eq!(err(&line), Error::V1TooLong);
}

#[test]
fn v1_rejects_long_tcp6_line() {
    // Valid fields but 108 bytes in total.
    let a = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    let line = format!("PROXY TCP6 {a} {a} 65535 65535\r\n");
    assert!(line.len() > 107);
    assert_eq!(err(line.as_bytes()), Error::V1TooLong);
}

#[test]
fn v1_rejects_invalid_prefix_early() {
    // Each of these is incomplete but can no longer become valid.
    assert_eq!(
        err(b"PROXY TCP4 01"),
        Error::V1AddressLeadingZero(Endpoint::Source)
    );
    assert_eq!(err(b"PROXY TCP4 1.2.3.4  "), Error::V1Separator);
    assert_eq!(err(b"PROXY TCP4 300"), Error::V1Address(Endpoint::Source));
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999"),
        Error::V1PortRange(Endpoint::Source)
    );
    assert_eq!(err(b"PROXY TCP6 1.2.3"), Error::V1Address(Endpoint::Source));
    assert_eq!(err(b"PROXY X"), Error::V1Protocol);
    assert_eq!(err(b"PROXZ"), Error::NotProxy);
}

#[test]
fn v1_partial_prefixes_wait() {
    let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    for i in 0..line.len() {
        assert!(
            matches!(proxy::parse(&line[..i]), Ok(Status::Partial(Some(_)))),
            "prefix of {i} bytes"
        );
    }
    assert_eq!(partial(&line[..line.len() - 1]), NonZeroUsize::new(1));
    assert_eq!(partial(b""), NonZeroUsize::new(15));
}

// ---------------------------------------------------------------- detect

#[test]
fn detect_from_first_bytes() {
    assert_eq!(detect(b""), Detected::NeedMore);
    assert_eq!(detect(b"PROX"), Detected::NeedMore);
    assert_eq!(detect(b"PROXY "), Detected::V1);
    assert_eq!(detect(b"PROXY TCP4"), Detected::V1);
    assert_eq!(detect(b"POST / HTTP/1.1"), Detected::NotProxy);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQUI"), Detected::NeedMore);
    assert_eq!(detect(&v2::SIGNATURE), Detected::V2);
    assert_eq!(detect(b"\r\n\r\n\0\r\nQUIX"), Detected::NotProxy);
    assert_eq!(detect(b"\x16\x03\x01"), Detected::NotProxy);
}

// ---------------------------------------------------------------- v2

#[test]
fn v2_proxy_inet_stream() {
    let mut buf = raw_v2(0x21, 0x11, &V4_BLOCK);
    buf.extend_from_slice(b"payload");
    let (h, n) = complete(&buf);
    assert_eq!(n, 28);
    assert_eq!(h.version(), Version::V2);
    assert_eq!(h.command(), Command::Proxy);
    assert_eq!(h.transport(), Transport::Stream);
    assert_eq!(h.source(), Some(sa("192.0.2.7:56324")));
    assert_eq!(h.destination(), Some(sa("10.0.0.1:443")));
}

#[test]
fn v2_proxy_inet6_dgram() {
    let mut block = [0u8; 36];
    block[..16].copy_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    block[16..32].copy_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    block[32..34].copy_from_slice(&5353u16.to_be_bytes());
    block[34..36].copy_from_slice(&53u16.to_be_bytes());
    let buf = raw_v2(0x21, 0x22, &block);
    let (h, n) = complete(&buf);
    assert_eq!(n, 52);
    assert_eq!(h.transport(), Transport::Dgram);
    // A datagram flow's addresses: readable, but no client of this stream.
    assert_eq!(h.source(), None);
    assert_eq!(h.destination(), None);
    assert_eq!(h.unaddressed(), Some(Unaddressed::Dgram));
    assert_eq!(
        h.addresses(),
        v6("[2001:db8::7]:5353", "[::1]:53"),
        "the block stays readable"
    );
}

#[test]
fn v2_proxy_unix_has_paths_but_no_socket_address() {
    let mut block = [0u8; 216];
    block[..9].copy_from_slice(b"/tmp/a.sk");
    block[108..117].copy_from_slice(b"/tmp/b.sk");
    let buf = raw_v2(0x21, 0x31, &block);
    let (h, _) = complete(&buf);
    assert_eq!(h.source(), None);
    let Addresses::Unix {
        source,
        destination,
    } = h.addresses()
    else {
        panic!("unix")
    };
    assert!(source.starts_with(b"/tmp/a.sk\0"));
    assert!(destination.starts_with(b"/tmp/b.sk\0"));
}

#[test]
fn v2_proxy_unspec_keeps_peer() {
    let buf = raw_v2(0x21, 0x00, &[]);
    let (h, n) = complete(&buf);
    assert_eq!(n, 16);
    assert_eq!(h.source(), None);
    assert_eq!(h.family(), Family::Unspec);
}

#[test]
fn v2_local_skips_len_bytes_and_has_no_source() {
    // A LOCAL header whose block is too short for its family is skipped whole.
    let mut buf = raw_v2(0x20, 0x11, &[1, 2, 3, 4, 5]);
    buf.extend_from_slice(b"next");
    let (h, n) = complete(&buf);
    assert_eq!(n, 21);
    assert_eq!(h.command(), Command::Local);
    assert_eq!(h.source(), None);
    assert_eq!(h.destination(), None);
    // LOCAL with a full address block still reports no client.
    let buf = raw_v2(0x20, 0x11, &V4_BLOCK);
    let (h, n) = complete(&buf);
    assert_eq!(n, 28);
    assert_eq!(h.source(), None);
    assert!(matches!(h.addresses(), Addresses::Ipv4 { .. }));
}

#[test]
fn v2_local_health_check_like_nlb() {
    let buf = raw_v2(0x20, 0x00, &[]);
    let (h, n) = complete(&buf);
    assert_eq!((h.command(), n), (Command::Local, 16));
}

#[test]
fn v2_rejects_bad_signature() {
    let mut buf = raw_v2(0x21, 0x11, &V4_BLOCK);
    buf[11] = b'X';
    assert_eq!(err(&buf), Error::NotProxy);
    assert_eq!(err(b"\r\n\r\n\x01"), Error::NotProxy);
}

#[test]
fn v2_rejects_version_other_than_2() {
    for v in [0x0, 0x1, 0x3, 0xF] {
        let buf = raw_v2((v << 4) | 1, 0x11, &V4_BLOCK);
        assert_eq!(err(&buf), Error::V2Version(v));
    }
}

#[test]
fn v2_rejects_unknown_command() {
    for c in 2..=0xF {
        let buf = raw_v2(0x20 | c, 0x11, &V4_BLOCK);
        assert_eq!(err(&buf), Error::V2Command(c));
    }
}

#[test]
fn v2_rejects_unknown_family() {
    for f in 4..=0xF {
        let buf = raw_v2(0x21, (f << 4) | 1, &V4_BLOCK);
        assert_eq!(err(&buf), Error::V2Family(f));
    }
}

#[test]
fn v2_rejects_unknown_transport() {
    for t in 3..=0xF {
        let buf = raw_v2(0x21, 0x10 | t, &V4_BLOCK);
        assert_eq!(err(&buf), Error::V2Transport(t));
    }
}

#[test]
fn v2_rejects_fixed_fields_early_on_partial_input() {
    let buf = raw_v2(0x31, 0x11, &V4_BLOCK);
    assert_eq!(err(&buf[..13]), Error::V2Version(3));
    let buf = raw_v2(0x21, 0x51, &V4_BLOCK);
    assert_eq!(err(&buf[..14]), Error::V2Family(5));
}

#[test]
fn v2_rejects_address_block_longer_than_len() {
    let buf = raw_v2(0x21, 0x11, &V4_BLOCK[..11]);
    assert_eq!(
        err(&buf),
        Error::V2AddressLength {
            len: 11,
            needed: 12
        }
    );
    let buf = raw_v2(0x21, 0x21, &[0; 35]);
    assert_eq!(
        err(&buf),
        Error::V2AddressLength {
            len: 35,
            needed: 36
        }
    );
    let buf = raw_v2(0x21, 0x31, &[0; 215]);
    assert_eq!(
        err(&buf),
        Error::V2AddressLength {
            len: 215,
            needed: 216
        }
    );
    // Known from the 16 fixed bytes alone: no need to wait for the body.
    assert_eq!(
        err(&buf[..16]),
        Error::V2AddressLength {
            len: 215,
            needed: 216
        }
    );
}

#[test]
fn v2_partial_reports_exact_missing_bytes() {
    let buf = raw_v2(0x21, 0x11, &V4_BLOCK);
    assert_eq!(partial(&buf[..10]), NonZeroUsize::new(6));
    assert_eq!(partial(&buf[..16]), NonZeroUsize::new(12));
    assert_eq!(partial(&buf[..27]), NonZeroUsize::new(1));
}

// ------------------------------------- v2: family/transport byte, DGRAM, LOCAL

/// The only family/transport bytes a PROXY header may carry.
const LISTED: [u8; 7] = [0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32];

#[test]
fn v2_proxy_accepts_only_the_listed_family_transport_bytes() {
    // A body long enough for any family's block.
    let body = [0u8; 216];
    for b in 0..=255u8 {
        let buf = raw_v2(0x21, b, &body);
        let got = proxy::parse(&buf);
        if LISTED.contains(&b) {
            assert!(matches!(got, Ok(Status::Complete(..))), "{b:#04x}: {got:?}");
        } else {
            let want = if b >> 4 > 3 {
                Error::V2Family(b >> 4)
            } else if b & 0x0F > 2 {
                Error::V2Transport(b & 0x0F)
            } else {
                Error::V2FamilyTransport(b)
            };
            assert_eq!(got, Err(want), "{b:#04x}");
            // Known from the fixed byte alone.
            assert_eq!(proxy::parse(&buf[..14]), Err(want), "{b:#04x} early");
        }
    }
}

#[test]
fn v2_proxy_inet6_unspec_transport_is_not_the_client_unspecified_address() {
    // 0x20 used to parse as INET6 with an all-zero block: the client `[::]:0`.
    let buf = raw_v2(0x21, 0x20, &[0; 36]);
    assert_eq!(err(&buf), Error::V2FamilyTransport(0x20));
    assert_eq!(
        Error::V2FamilyTransport(0x20).to_string(),
        "v2 header: family/transport byte 0x20 is not a combination the specification lists"
    );
}

#[test]
fn v2_dgram_names_no_client_of_the_stream() {
    for fam in [0x12u8, 0x22, 0x32] {
        let buf = raw_v2(0x21, fam, &[7; 216][..block_of(fam)]);
        let (h, _) = complete(&buf);
        assert_eq!(h.transport(), Transport::Dgram);
        assert_eq!((h.source(), h.destination()), (None, None), "{fam:#04x}");
        assert!(h.unaddressed().is_some());
    }
    let buf = raw_v2(0x21, 0x12, &V4_BLOCK);
    let (h, _) = complete(&buf);
    assert_eq!(h.unaddressed(), Some(Unaddressed::Dgram));
    assert_eq!(h.addresses(), v4("192.0.2.7:56324", "10.0.0.1:443"));
    assert_eq!(h.to_owned_header().unaddressed(), Some(Unaddressed::Dgram));
    // The same block over STREAM is the client.
    let buf = raw_v2(0x21, 0x11, &V4_BLOCK);
    let (h, _) = complete(&buf);
    assert_eq!(h.source(), Some(sa("192.0.2.7:56324")));
    assert_eq!(h.unaddressed(), None);
}

#[test]
fn unaddressed_says_why_there_is_no_client() {
    let cases: [(&[u8], Option<Unaddressed>); 5] = [
        (&raw_v2(0x20, 0x11, &V4_BLOCK), Some(Unaddressed::Local)),
        (&raw_v2(0x21, 0x00, &[]), Some(Unaddressed::Unspec)),
        (b"PROXY UNKNOWN\r\n", Some(Unaddressed::Unspec)),
        (&raw_v2(0x21, 0x31, &[0; 216]), Some(Unaddressed::Unix)),
        (b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n", None),
    ];
    for (buf, want) in cases {
        let (h, _) = complete(buf);
        assert_eq!(h.unaddressed(), want, "{buf:02x?}");
        assert_eq!(h.source().is_none(), want.is_some());
    }
}

fn block_of(fam: u8) -> usize {
    match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    }
}

#[test]
fn v2_local_ignores_the_family_byte_whatever_it_holds() {
    // HAProxy 2.6 accepts these (family 0x03..0x3f and every other byte).
    for b in 0..=255u8 {
        for body in [&[][..], &[0xAB; 5][..], &V4_BLOCK[..]] {
            let mut buf = raw_v2(0x20, b, body);
            buf.extend_from_slice(b"GET");
            let (h, n) = complete(&buf);
            assert_eq!(n, 16 + body.len(), "{b:#04x}");
            assert_eq!(h.command(), Command::Local);
            assert_eq!(h.source(), None);
            assert_eq!(h.unaddressed(), Some(Unaddressed::Local));
        }
    }
    // Nibbles the specification does not name read as Unspec.
    let buf = raw_v2(0x20, 0x4F, &[]);
    let (h, _) = complete(&buf);
    assert_eq!(
        (h.family(), h.transport()),
        (Family::Unspec, Transport::Unspec)
    );
    let buf = raw_v2(0x20, 0x13, &V4_BLOCK);
    let (h, _) = complete(&buf);
    assert_eq!(
        (h.family(), h.transport()),
        (Family::Inet, Transport::Unspec)
    );
}

#[test]
fn v2_local_discards_a_body_that_is_not_valid_tlvs() {
    // After a whole block: one stray byte.
    let mut body = V4_BLOCK.to_vec();
    body.push(1);
    let buf = raw_v2(0x20, 0x11, &body);
    let (h, n) = complete(&buf);
    assert_eq!(n, 29);
    assert_eq!(h.addresses(), Addresses::Unspec, "discarded whole");
    assert_eq!(h.tlv_bytes(), b"");
    // No block (AF_UNSPEC): an overrunning TLV, a UNIQUE_ID over 128 bytes.
    for body in [
        vec![kind::ALPN, 0, 9, b'h'],
        tlv(kind::UNIQUE_ID, &[1; 129]),
        tlv(kind::CRC32C, &[0; 3]),
    ] {
        let buf = raw_v2(0x20, 0x00, &body);
        let (h, n) = complete(&buf);
        assert_eq!(n, 16 + body.len());
        assert_eq!(h.tlvs().count(), 0);
        assert_eq!((h.unique_id(), h.crc32c()), (None, None));
    }
    // The same bodies with PROXY are still refused.
    assert_eq!(
        err(&raw_v2(0x21, 0x00, &[kind::ALPN, 0, 9, b'h'])),
        Error::V2TlvOverrun { kind: kind::ALPN }
    );
}

#[test]
fn v2_local_exposes_valid_tlvs_and_verifies_their_crc32c() {
    // HAProxy's health check: LOCAL, AF_UNSPEC, TLVs right after the fixed part.
    let bytes = v2::Builder::local()
        .tlv(kind::UNIQUE_ID, b"hc-1")
        .crc32c()
        .to_vec()
        .unwrap();
    assert_eq!(&bytes[12..14], &[0x20, 0x00]);
    let (h, _) = complete(&bytes);
    assert_eq!(h.unique_id(), Some(&b"hc-1"[..]));
    assert!(h.crc32c().is_some());
    // A corrupted one is refused: its TLVs tile, so its CRC32C counts.
    let mut bad = bytes.clone();
    bad[19] ^= 1;
    assert!(matches!(err(&bad), Error::V2Crc32cMismatch { .. }));
    // A LOCAL header with a valid block: TLVs after it, CRC verified.
    let bytes = v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2"))
        .command(Command::Local)
        .tlv(kind::ALPN, b"h2")
        .crc32c()
        .to_vec()
        .unwrap();
    let (h, _) = complete(&bytes);
    assert_eq!(h.alpn(), Some(&b"h2"[..]));
    let mut bad = bytes.clone();
    bad[16] ^= 1;
    assert!(matches!(err(&bad), Error::V2Crc32cMismatch { .. }));
}

#[test]
fn encode_local_with_a_family_and_tlvs_reads_back() {
    // Used to write the TLVs where the parser expects the INET block.
    let bytes = v2::Builder::local()
        .family(Family::Inet)
        .tlv(kind::AUTHORITY, b"health.example")
        .crc32c()
        .to_vec()
        .unwrap();
    let (h, n) = complete(&bytes);
    assert_eq!(n, bytes.len());
    assert_eq!((h.command(), h.family()), (Command::Local, Family::Inet));
    assert_eq!(h.authority(), Some(&b"health.example"[..]));
    assert!(h.crc32c().is_some());
    assert_eq!(h.source(), None);
}

#[test]
fn encode_refuses_what_the_parser_refuses() {
    let a = v4("192.0.2.7:1", "10.0.0.1:2");
    assert_eq!(
        v2::Builder::proxy(Transport::Unspec, a).to_vec(),
        Err(EncodeError::TransportMismatch)
    );
    assert_eq!(
        v2::Builder::proxy(Transport::Stream, Addresses::Unspec).to_vec(),
        Err(EncodeError::TransportMismatch)
    );
    assert_eq!(
        v2::Builder::proxy(Transport::Stream, a)
            .tlv(kind::CRC32C, &[0; 3])
            .to_vec(),
        Err(EncodeError::InvalidTlv(Error::V2TlvLength {
            kind: kind::CRC32C,
            len: 3
        }))
    );
    assert_eq!(
        v2::Builder::local()
            .tlv(kind::CRC32C, &[0; 4])
            .tlv(kind::CRC32C, &[0; 4])
            .to_vec(),
        Err(EncodeError::InvalidTlv(Error::V2Crc32cDuplicate))
    );
    assert_eq!(
        v2::Builder::local()
            .tlv(kind::UNIQUE_ID, &[0; 129])
            .to_vec(),
        Err(EncodeError::InvalidTlv(Error::V2UniqueIdTooLong(129)))
    );
    assert_eq!(
        v2::Builder::local().raw_tlvs(&[1, 0]).to_vec(),
        Err(EncodeError::BadTlvs)
    );
    // LOCAL is free to pair UNSPEC with a transport.
    assert!(v2::Builder::local().to_vec().is_ok());
}

// ---------------------------------------------------------------- TLVs

fn with_tlvs(tlvs: &[u8]) -> Vec<u8> {
    let mut body = V4_BLOCK.to_vec();
    body.extend_from_slice(tlvs);
    raw_v2(0x21, 0x11, &body)
}

#[test]
fn tlv_iterator_yields_raw_tlvs_in_order() {
    let mut t = tlv(kind::ALPN, b"h2");
    t.extend(tlv(0x7F, b"custom"));
    t.extend(tlv(kind::NOOP, b""));
    let buf = with_tlvs(&t);
    let (h, _) = complete(&buf);
    let got: Vec<Tlv<'_>> = h.tlvs().collect();
    assert_eq!(
        got,
        [
            Tlv {
                kind: 1,
                value: b"h2"
            },
            Tlv {
                kind: 0x7F,
                value: b"custom"
            },
            Tlv {
                kind: 4,
                value: b""
            },
        ]
    );
}

#[test]
fn tlv_rejects_overrun() {
    let mut t = tlv(kind::ALPN, b"h2");
    t[2] = 3; // claims 3 bytes, 2 present
    assert_eq!(
        err(&with_tlvs(&t)),
        Error::V2TlvOverrun { kind: kind::ALPN }
    );
}

#[test]
fn tlv_rejects_trailing_bytes_that_do_not_tile() {
    let mut t = tlv(kind::ALPN, b"h2");
    t.extend_from_slice(&[0x04, 0x00]);
    assert_eq!(err(&with_tlvs(&t)), Error::V2TlvTrailing);
    assert_eq!(err(&with_tlvs(&[0x04])), Error::V2TlvTrailing);
}

#[test]
fn tlv_typed_accessors() {
    let mut t = tlv(kind::ALPN, b"h2");
    t.extend(tlv(kind::AUTHORITY, b"example.com"));
    t.extend(tlv(kind::NOOP, &[0; 3]));
    t.extend(tlv(kind::UNIQUE_ID, &[7; 128]));
    t.extend(tlv(kind::NETNS, b"blue"));
    t.extend(tlv(kind::AWS, b"\x01vpce-08d2bf15fac5001c9"));
    t.extend(tlv(kind::AZURE, &[0x01, 0x78, 0x56, 0x34, 0x12]));
    t.extend(tlv(kind::GCP, &0x0102_0304_0506_0708u64.to_be_bytes()));
    t.extend(tlv(0x99, b"unknown kept raw"));
    let buf = with_tlvs(&t);
    let (h, _) = complete(&buf);
    assert_eq!(h.alpn(), Some(&b"h2"[..]));
    assert_eq!(h.authority(), Some(&b"example.com"[..]));
    assert_eq!(h.unique_id(), Some(&[7u8; 128][..]));
    assert_eq!(h.netns(), Some(&b"blue"[..]));
    assert_eq!(h.aws_vpce_id(), Some(&b"vpce-08d2bf15fac5001c9"[..]));
    assert_eq!(h.azure_link_id(), Some(0x1234_5678));
    assert_eq!(h.gcp_psc_id(), Some(0x0102_0304_0506_0708));
    assert_eq!(h.crc32c(), None);
    assert_eq!(h.ssl(), None);
    assert_eq!(
        h.tlvs().find(|t| t.kind == 0x99).map(|t| t.value),
        Some(&b"unknown kept raw"[..])
    );
}

#[test]
fn tlv_aws_other_subtype_is_not_a_vpce_id() {
    let buf = with_tlvs(&tlv(kind::AWS, b"\x02something"));
    let (h, _) = complete(&buf);
    assert_eq!(h.aws_vpce_id(), None);
    assert_eq!(h.tlvs().count(), 1);
}

#[test]
fn tlv_rejects_unique_id_over_128_bytes() {
    assert_eq!(
        err(&with_tlvs(&tlv(kind::UNIQUE_ID, &[1; 129]))),
        Error::V2UniqueIdTooLong(129)
    );
}

#[test]
fn tlv_rejects_bad_fixed_lengths() {
    assert_eq!(
        err(&with_tlvs(&tlv(kind::GCP, &[0; 7]))),
        Error::V2TlvLength {
            kind: kind::GCP,
            len: 7
        }
    );
    assert_eq!(
        err(&with_tlvs(&tlv(kind::AZURE, &[1, 0, 0, 0]))),
        Error::V2TlvLength {
            kind: kind::AZURE,
            len: 4
        }
    );
    assert_eq!(
        err(&with_tlvs(&tlv(kind::SSL, &[1, 0, 0, 0]))),
        Error::V2TlvLength {
            kind: kind::SSL,
            len: 4
        }
    );
}

#[test]
fn tlv_ssl_with_sub_tlvs() {
    let mut v = vec![0x07, 0, 0, 0, 0];
    v.extend(tlv(kind::SSL_VERSION, b"TLSv1.3"));
    v.extend(tlv(kind::SSL_CN, b"client.example"));
    v.extend(tlv(kind::SSL_CIPHER, b"TLS_AES_128_GCM_SHA256"));
    v.extend(tlv(kind::SSL_SIG_ALG, b"SHA256"));
    v.extend(tlv(kind::SSL_KEY_ALG, b"RSA2048"));
    let buf = with_tlvs(&tlv(kind::SSL, &v));
    let (h, _) = complete(&buf);
    let ssl = h.ssl().unwrap();
    assert!(ssl.client_ssl() && ssl.client_cert_conn() && ssl.client_cert_sess());
    assert!(ssl.verified());
    assert_eq!(ssl.version(), Some(&b"TLSv1.3"[..]));
    assert_eq!(ssl.cn(), Some(&b"client.example"[..]));
    assert_eq!(ssl.cipher(), Some(&b"TLS_AES_128_GCM_SHA256"[..]));
    assert_eq!(ssl.sig_alg(), Some(&b"SHA256"[..]));
    assert_eq!(ssl.key_alg(), Some(&b"RSA2048"[..]));
    assert_eq!(ssl.tlvs().count(), 5);
}

#[test]
fn tlv_ssl_verify_zero_without_a_certificate_is_not_verified() {
    // What HAProxy sends for a TLS client that presented no certificate.
    let buf = with_tlvs(&tlv(kind::SSL, &[0x01, 0, 0, 0, 0]));
    let (h, _) = complete(&buf);
    let ssl = h.ssl().unwrap();
    assert_eq!(ssl.verify(), 0);
    assert!(!ssl.verified());
    // A certificate from earlier in the session counts.
    let buf = with_tlvs(&tlv(kind::SSL, &[0x05, 0, 0, 0, 0]));
    let (h, _) = complete(&buf);
    assert!(h.ssl().unwrap().verified());
}

#[test]
fn tlv_ssl_flags_and_failed_verify() {
    let buf = with_tlvs(&tlv(kind::SSL, &[0x01, 0, 0, 0, 9]));
    let (h, _) = complete(&buf);
    let ssl = h.ssl().unwrap();
    assert!(ssl.client_ssl());
    assert!(!ssl.client_cert_conn() && !ssl.client_cert_sess());
    assert_eq!(ssl.verify(), 9);
    assert!(!ssl.verified());
    assert_eq!(ssl.version(), None);
}

#[test]
fn tlv_rejects_ssl_sub_tlv_overrun() {
    let mut v = vec![0x01, 0, 0, 0, 0];
    v.extend_from_slice(&[kind::SSL_VERSION, 0, 9, b'T']);
    assert_eq!(err(&with_tlvs(&tlv(kind::SSL, &v))), Error::V2SslSubTlv);
    let v = [0x01, 0, 0, 0, 0, kind::SSL_CN];
    assert_eq!(err(&with_tlvs(&tlv(kind::SSL, &v))), Error::V2SslSubTlv);
}

// ---------------------------------------------------------------- CRC32C

#[test]
fn crc32c_is_verified() {
    let bytes = v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2"))
        .tlv(kind::ALPN, b"h2")
        .crc32c()
        .to_vec()
        .unwrap();
    let (h, _) = complete(&bytes);
    // Independent check: CRC32C of the header with the field zeroed.
    let mut zeroed = bytes.clone();
    let n = zeroed.len();
    zeroed[n - 4..].fill(0);
    assert_eq!(h.crc32c(), Some(crc32c::crc32c(&zeroed)));
}

#[test]
fn crc32c_is_verified_across_copy_chunks() {
    // The checksum is summed over 128-byte copies: headers within one, and
    // longer ones with the field inside the first (pad 90), across the
    // boundary (91, 93) and in the second (94).
    for pad in [0usize, 50, 90, 91, 93, 94, 100, 300] {
        let mut t = tlv(0x7F, &vec![0xA5; pad]);
        let at = 16 + 12 + t.len() + 3;
        t.extend(tlv(kind::CRC32C, &[0; 4]));
        let mut buf = with_tlvs(&t);
        let mut zeroed = buf.clone();
        zeroed[at..at + 4].fill(0);
        let crc = crc32c::crc32c(&zeroed);
        buf[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        let (h, _) = complete(&buf);
        assert_eq!(h.crc32c(), Some(crc), "pad {pad}");
        buf[20] ^= 1;
        assert!(
            matches!(err(&buf), Error::V2Crc32cMismatch { .. }),
            "pad {pad}"
        );
    }
}

#[test]
fn crc32c_rejects_mismatch() {
    let mut bytes = v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2"))
        .crc32c()
        .to_vec()
        .unwrap();
    bytes[16] ^= 1; // change the source address
    assert!(matches!(err(&bytes), Error::V2Crc32cMismatch { .. }));
}

#[test]
fn crc32c_can_be_skipped_by_option() {
    let mut bytes = v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2"))
        .crc32c()
        .to_vec()
        .unwrap();
    bytes[16] ^= 1;
    let opts = Options::new().verify_crc32c(false);
    assert!(matches!(
        v2::parse_with(&bytes, opts),
        Ok(Status::Complete(..))
    ));
    assert!(matches!(
        proxy::parse_with(&bytes, opts),
        Ok(Status::Complete(..))
    ));
}

#[test]
fn crc32c_rejects_length_other_than_4() {
    for len in [0usize, 3, 5] {
        let buf = with_tlvs(&tlv(kind::CRC32C, &vec![0; len]));
        assert_eq!(
            err(&buf),
            Error::V2TlvLength {
                kind: kind::CRC32C,
                len: len as u16
            }
        );
    }
}

#[test]
fn crc32c_rejects_duplicate() {
    let mut t = tlv(kind::CRC32C, &[0; 4]);
    t.extend(tlv(kind::CRC32C, &[0; 4]));
    assert_eq!(err(&with_tlvs(&t)), Error::V2Crc32cDuplicate);
}

// ---------------------------------------------------------------- encoder, owned

#[test]
fn encode_round_trips_every_family_and_local() {
    let unix_a = [b'a'; 108];
    let unix_b = [b'b'; 108];
    let cases = [
        v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2")),
        v2::Builder::proxy(Transport::Dgram, v6("[2001:db8::1]:1", "[::1]:2")),
        v2::Builder::proxy(
            Transport::Stream,
            Addresses::Unix {
                source: &unix_a,
                destination: &unix_b,
            },
        ),
        v2::Builder::proxy(Transport::Unspec, Addresses::Unspec),
        v2::Builder::local(),
        v2::Builder::local().family(Family::Inet6),
        v2::Builder::proxy(Transport::Stream, v4("192.0.2.7:1", "10.0.0.1:2"))
            .command(Command::Local)
            .tlv(kind::UNIQUE_ID, b"abc")
            .crc32c(),
    ];
    for b in cases {
        let bytes = b.to_vec().unwrap();
        let (h, n) = complete(&bytes);
        assert_eq!(n, bytes.len());
        let mut again = Vec::new();
        h.write_to(&mut again).unwrap();
        assert_eq!(again, bytes);
    }
}

#[test]
fn encode_v1_round_trips() {
    for line in [
        &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"[..],
        b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 1 65535\r\n",
        b"PROXY UNKNOWN\r\n",
    ] {
        let (h, _) = complete(line);
        let mut out = Vec::new();
        h.write_to(&mut out).unwrap();
        assert_eq!(out, line);
    }
}

#[test]
fn encode_rejects_what_v1_cannot_say() {
    let a = [0u8; 108];
    let unix = Addresses::Unix {
        source: &a,
        destination: &a,
    };
    assert_eq!(v1::write(&mut Vec::new(), &unix), Err(EncodeError::V1Unix));
    let big = vec![0; 70_000];
    assert_eq!(
        v2::Builder::local().tlv(0x99, &big).to_vec(),
        Err(EncodeError::TooLong)
    );
    let many = vec![0; 40_000];
    assert_eq!(
        v2::Builder::local()
            .tlv(0x99, &many)
            .tlv(0x98, &many)
            .to_vec(),
        Err(EncodeError::TooLong)
    );
}

#[test]
fn owned_header_outlives_buffer_and_matches() {
    let mut t = tlv(kind::ALPN, b"h2");
    t.extend(tlv(kind::AWS, b"\x01vpce-1"));
    let buf = with_tlvs(&t);
    let owned = {
        let copy = buf.clone();
        let (h, _) = complete(&copy);
        h.to_owned_header()
    };
    let (h, _) = complete(&buf);
    assert_eq!(owned.as_header(), h);
    assert_eq!(owned.source(), h.source());
    assert_eq!(owned.destination(), h.destination());
    assert_eq!(owned.version(), Version::V2);
    assert_eq!(owned.command(), Command::Proxy);
    assert_eq!(owned.as_header().aws_vpce_id(), Some(&b"vpce-1"[..]));
    fn send_sync<T: Send + Sync + 'static>(_: &T) {}
    send_sync(&owned);
}

// ---------------------------------------------------------------- errors

#[test]
fn error_is_copy_and_display_is_precise() {
    fn copy<T: Copy>(_: T) {}
    copy(Error::NotProxy);
    assert_eq!(
        Error::V1PortLeadingZero(Endpoint::Source).to_string(),
        "v1 header: source port has a leading zero"
    );
    assert_eq!(
        Error::V1AddressLeadingZero(Endpoint::Destination).to_string(),
        "v1 header: destination address has an octet with a leading zero"
    );
    assert_eq!(
        Error::V2Version(3).to_string(),
        "v2 header: version 3 (expected 2)"
    );
    assert_eq!(
        Error::V2TlvLength { kind: 0x03, len: 5 }.to_string(),
        "v2 header: CRC32C TLV (type 0x03) has invalid length 5"
    );
    let e: Box<dyn std::error::Error> = Box::new(Error::V1TooLong);
    assert_eq!(
        e.to_string(),
        "v1 header: no CRLF within the first 107 bytes"
    );
}
