//! Property tests for the PROXY codec: encode → parse round trips for every
//! family, command and TLV mix; whatever the builder agrees to write parses
//! back as what it was given; no panic on arbitrary bytes; every strict
//! prefix of a valid header is `Partial`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use realip::proxy::{self, kind, v1, v2, Addresses, Command, Family, Status, Tlv, Transport};

/// Owned form of `Addresses` so strategies can produce it.
#[derive(Clone, Debug)]
enum Addr {
    Unspec,
    V4(SocketAddrV4, SocketAddrV4),
    V6(SocketAddrV6, SocketAddrV6),
    Unix(Box<[u8; 108]>, Box<[u8; 108]>),
}

impl Addr {
    fn as_addresses(&self) -> Addresses<'_> {
        match self {
            Addr::Unspec => Addresses::Unspec,
            Addr::V4(s, d) => Addresses::Ipv4 {
                source: *s,
                destination: *d,
            },
            Addr::V6(s, d) => Addresses::Ipv6 {
                source: *s,
                destination: *d,
            },
            Addr::Unix(s, d) => Addresses::Unix {
                source: s,
                destination: d,
            },
        }
    }
}

fn v4() -> impl Strategy<Value = SocketAddrV4> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, p)| SocketAddrV4::new(Ipv4Addr::from(ip), p))
}

fn v6() -> impl Strategy<Value = SocketAddrV6> {
    // Mix dense random addresses with ones full of zero groups (compressed
    // text forms) and IPv4-mapped ones (dotted text form).
    let ip = prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        (any::<[u16; 8]>(), any::<u8>()).prop_map(|(mut s, mask)| {
            for (i, g) in s.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *g = 0;
                }
            }
            Ipv6Addr::from(s)
        }),
        any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_ipv6_mapped()),
    ];
    (ip, any::<u16>()).prop_map(|(ip, p)| SocketAddrV6::new(ip, p, 0, 0))
}

fn unix_path() -> impl Strategy<Value = Box<[u8; 108]>> {
    proptest::collection::vec(any::<u8>(), 0..=108).prop_map(|v| {
        let mut a = [0u8; 108];
        a[..v.len()].copy_from_slice(&v);
        Box::new(a)
    })
}

fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        Just(Addr::Unspec),
        (v4(), v4()).prop_map(|(s, d)| Addr::V4(s, d)),
        (v6(), v6()).prop_map(|(s, d)| Addr::V6(s, d)),
        (unix_path(), unix_path()).prop_map(|(s, d)| Addr::Unix(s, d)),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

/// One TLV the parser accepts, any kind.
fn tlv() -> impl Strategy<Value = (u8, Vec<u8>)> {
    prop_oneof![
        bytes(16).prop_map(|v| (kind::ALPN, v)),
        bytes(40).prop_map(|v| (kind::AUTHORITY, v)),
        bytes(8).prop_map(|v| (kind::NOOP, v)),
        bytes(128).prop_map(|v| (kind::UNIQUE_ID, v)),
        bytes(12).prop_map(|v| (kind::NETNS, v)),
        bytes(24).prop_map(|mut v| {
            v.insert(0, kind::AWS_VPCE_ID);
            (kind::AWS, v)
        }),
        any::<u32>().prop_map(|id| {
            let mut v = vec![kind::AZURE_LINK_ID];
            v.extend_from_slice(&id.to_le_bytes());
            (kind::AZURE, v)
        }),
        any::<u64>().prop_map(|id| (kind::GCP, id.to_be_bytes().to_vec())),
        (
            any::<u8>(),
            any::<u32>(),
            proptest::collection::vec((0x21u8..=0x25, bytes(20)), 0..4)
        )
            .prop_map(|(flags, verify, sub)| {
                let mut v = vec![flags];
                v.extend_from_slice(&verify.to_be_bytes());
                for (k, val) in sub {
                    v.push(k);
                    v.extend_from_slice(&(val.len() as u16).to_be_bytes());
                    v.extend_from_slice(&val);
                }
                (kind::SSL, v)
            }),
        // Unknown kinds: kept raw.
        (0x40u8..=0xDF, bytes(30)).prop_map(|(k, v)| (k, v)),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![
        Just(Family::Unspec),
        Just(Family::Inet),
        Just(Family::Inet6),
        Just(Family::Unix)
    ]
}

/// Any TLV at all, valid or not: the builder must refuse or write what
/// parses.
fn any_tlv() -> impl Strategy<Value = (u8, Vec<u8>)> {
    prop_oneof![
        tlv(),
        (
            prop_oneof![
                Just(kind::CRC32C),
                Just(kind::UNIQUE_ID),
                Just(kind::SSL),
                Just(kind::AZURE),
                Just(kind::GCP),
                Just(kind::AWS),
                any::<u8>()
            ],
            bytes(140)
        ),
        bytes(4).prop_map(|v| (kind::CRC32C, v)),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![Just(Command::Local), Just(Command::Proxy)]
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::Unspec),
        Just(Transport::Stream),
        Just(Transport::Dgram)
    ]
}

/// A valid v2 header and what went into it: bytes, command, transport,
/// addresses, TLVs, whether a CRC32C was appended.
type V2Case = (Vec<u8>, Command, Transport, Addr, Vec<(u8, Vec<u8>)>, bool);

fn v2_case() -> impl Strategy<Value = V2Case> {
    (
        command(),
        transport(),
        addr(),
        proptest::collection::vec(tlv(), 0..6),
        any::<bool>(),
    )
        .prop_map(|(cmd, tr, addr, tlvs, crc)| {
            // PROXY pairs UNSPEC only with UNSPEC (the specification's list).
            let tr = match (cmd, &addr, tr) {
                (Command::Proxy, Addr::Unspec, _) => Transport::Unspec,
                (Command::Proxy, _, Transport::Unspec) => Transport::Stream,
                _ => tr,
            };
            let mut b = v2::Builder::proxy(tr, addr.as_addresses()).command(cmd);
            for (k, v) in &tlvs {
                b = b.tlv(*k, v);
            }
            if crc {
                b = b.crc32c();
            }
            let bytes = b.to_vec().expect("small header encodes");
            (bytes, cmd, tr, addr, tlvs, crc)
        })
}

fn v1_case() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Addr::Unspec),
        (v4(), v4()).prop_map(|(s, d)| Addr::V4(s, d)),
        (v6(), v6()).prop_map(|(s, d)| Addr::V6(s, d)),
    ]
    .prop_map(|a| {
        let mut out = Vec::new();
        v1::write(&mut out, &a.as_addresses()).unwrap();
        out
    })
}

/// (offset, kind, length) of each whole TLV in `region`.
fn tlv_walk(region: &[u8]) -> impl Iterator<Item = (usize, u8, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let [k, hi, lo] = *region.get(at..at + 3)? else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        region.get(at + 3..at + 3 + len)?;
        let this = (at, k, len);
        at += 3 + len;
        Some(this)
    })
}

fn complete(buf: &[u8]) -> (proxy::Header<'_>, usize) {
    match proxy::parse(buf) {
        Ok(Status::Complete(h, n)) => (h, n),
        other => panic!("not complete: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn v2_round_trip((bytes, cmd, tr, addr, tlvs, crc) in v2_case(), trailer in bytes(8)) {
        let mut buf = bytes.clone();
        buf.extend_from_slice(&trailer);
        let (h, n) = complete(&buf);
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(h.command(), cmd);
        prop_assert_eq!(h.transport(), tr);
        prop_assert_eq!(h.addresses(), addr.as_addresses());
        let want_source = match (cmd, tr, &addr) {
            (_, Transport::Dgram, _) => None,
            (Command::Proxy, _, Addr::V4(s, _)) => Some((*s).into()),
            (Command::Proxy, _, Addr::V6(s, _)) => Some((*s).into()),
            _ => None,
        };
        prop_assert_eq!(h.source(), want_source);
        let got: Vec<Tlv<'_>> = h.tlvs().collect();
        let n_tlvs = tlvs.len() + usize::from(crc);
        prop_assert_eq!(got.len(), n_tlvs);
        for (t, (k, v)) in got.iter().zip(&tlvs) {
            prop_assert_eq!(t.kind, *k);
            prop_assert_eq!(t.value, &v[..]);
        }
        // Typed accessors agree with the first TLV of each kind.
        let first = |k: u8| tlvs.iter().find(|t| t.0 == k).map(|t| &t.1[..]);
        prop_assert_eq!(h.alpn(), first(kind::ALPN));
        prop_assert_eq!(h.authority(), first(kind::AUTHORITY));
        prop_assert_eq!(h.unique_id(), first(kind::UNIQUE_ID));
        prop_assert_eq!(h.netns(), first(kind::NETNS));
        prop_assert_eq!(h.aws_vpce_id(), first(kind::AWS).map(|v| &v[1..]));
        prop_assert_eq!(h.azure_link_id(), first(kind::AZURE).map(|v| u32::from_le_bytes(v[1..5].try_into().unwrap())));
        prop_assert_eq!(h.gcp_psc_id(), first(kind::GCP).map(|v| u64::from_be_bytes(v.try_into().unwrap())));
        prop_assert_eq!(h.ssl().map(|s| s.verify()), first(kind::SSL).map(|v| u32::from_be_bytes(v[1..5].try_into().unwrap())));
        prop_assert_eq!(h.crc32c().is_some(), crc);
        if let Some(carried) = h.crc32c() {
            // Against an independent CRC32C (the `crc32c` crate) over the
            // header with the field zeroed: pins the parser's chunked copy
            // (one call up to 128 bytes, several beyond) for every size and
            // field position.
            let mut zeroed = bytes.clone();
            let n = zeroed.len();
            zeroed[n - 4..].fill(0);
            prop_assert_eq!(carried, crc32c::crc32c(&zeroed));
        }
        // Re-encoding gives the same bytes; the owned form the same header.
        let mut again = Vec::new();
        h.write_to(&mut again).unwrap();
        prop_assert_eq!(&again, &bytes);
        let owned = h.to_owned_header();
        prop_assert_eq!(owned.as_header(), h);
    }

    #[test]
    fn v2_builder_output_always_parses_back_as_given(
        cmd in command(),
        tr in transport(),
        addr in addr(),
        family in proptest::option::of(family()),
        tlvs in proptest::collection::vec(any_tlv(), 0..5),
        raw in proptest::option::of(bytes(12)),
        crc in any::<bool>(),
    ) {
        let mut b = v2::Builder::proxy(tr, addr.as_addresses()).command(cmd);
        if let Some(f) = family {
            b = b.family(f);
        }
        for (k, v) in &tlvs {
            b = b.tlv(*k, v);
        }
        if let Some(r) = &raw {
            b = b.raw_tlvs(r);
        }
        if crc {
            b = b.crc32c();
        }
        let Ok(bytes) = b.to_vec() else {
            // Refusing is allowed; what is written must read back.
            return Ok(());
        };
        let (h, n) = complete(&bytes);
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(h.command(), cmd);
        prop_assert_eq!(h.transport(), tr);
        let fam = family.unwrap_or(match addr {
            Addr::Unspec => Family::Unspec,
            Addr::V4(..) => Family::Inet,
            Addr::V6(..) => Family::Inet6,
            Addr::Unix(..) => Family::Unix,
        });
        prop_assert_eq!(h.family(), fam);
        match (&addr, fam) {
            // LOCAL with a family but no addresses: a zeroed block.
            (Addr::Unspec, Family::Inet) => prop_assert_eq!(h.addresses(), Addresses::Ipv4 {
                source: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                destination: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            }),
            (Addr::Unspec, Family::Inet6) => prop_assert_eq!(h.addresses(), Addresses::Ipv6 {
                source: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
                destination: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            }),
            (Addr::Unspec, Family::Unix) => {
                let zeroed = matches!(
                    h.addresses(),
                    Addresses::Unix { source, destination } if source == &[0; 108] && destination == &[0; 108]
                );
                prop_assert!(zeroed);
            }
            _ => prop_assert_eq!(h.addresses(), addr.as_addresses()),
        }
        // Every TLV given, in order, as given, except the CRC32C value,
        // which is computed; one is appended when asked for and none was
        // among them.
        let mut want = Vec::new();
        for (k, v) in &tlvs {
            want.push(*k);
            want.extend_from_slice(&(v.len() as u16).to_be_bytes());
            want.extend_from_slice(v);
        }
        if let Some(r) = &raw {
            want.extend_from_slice(r);
        }
        let given_crc = tlv_walk(&want).any(|(_, k, _)| k == kind::CRC32C);
        if crc && !given_crc {
            want.extend_from_slice(&[kind::CRC32C, 0, 4, 0, 0, 0, 0]);
        }
        let mut got = h.tlv_bytes().to_vec();
        let crcs: Vec<usize> = tlv_walk(&got).filter(|&(_, k, _)| k == kind::CRC32C).map(|(at, ..)| at).collect();
        prop_assert!(crcs.len() <= 1);
        prop_assert_eq!(h.crc32c().is_some(), !crcs.is_empty());
        for at in crcs {
            got[at + 3..at + 7].fill(0);
            want[at + 3..at + 7].fill(0);
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(h.source().is_some(), cmd == Command::Proxy && tr == Transport::Stream && matches!(addr, Addr::V4(..) | Addr::V6(..)));
        // And the parsed header writes back the same bytes.
        let mut again = Vec::new();
        h.write_to(&mut again).unwrap();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn v1_round_trip(line in v1_case(), trailer in bytes(8)) {
        let mut buf = line.clone();
        buf.extend_from_slice(&trailer);
        let (h, n) = complete(&buf);
        prop_assert_eq!(n, line.len());
        let mut again = Vec::new();
        h.write_to(&mut again).unwrap();
        prop_assert_eq!(again, line);
    }

    #[test]
    fn v2_every_prefix_is_partial((bytes, ..) in v2_case()) {
        for i in 0..bytes.len() {
            match proxy::parse(&bytes[..i]) {
                Ok(Status::Partial(Some(need))) => prop_assert!(i + need.get() <= bytes.len()),
                other => prop_assert!(false, "prefix {} of {}: {:?}", i, bytes.len(), other),
            }
        }
    }

    #[test]
    fn v1_every_prefix_is_partial(line in v1_case()) {
        for i in 0..line.len() {
            match proxy::parse(&line[..i]) {
                Ok(Status::Partial(Some(need))) => prop_assert!(i + need.get() <= line.len()),
                other => prop_assert!(false, "prefix {:?}: {:?}", String::from_utf8_lossy(&line[..i]), other),
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(buf in bytes(300)) {
        let _ = proxy::parse(&buf);
        let _ = v1::parse(&buf);
        let _ = v2::parse(&buf);
        let _ = proxy::detect(&buf);
    }

    #[test]
    fn never_panics_after_a_signature(v2_tail in bytes(300), v1_tail in bytes(120)) {
        let mut b = v2::SIGNATURE.to_vec();
        b.extend_from_slice(&v2_tail);
        check_invariants(&b);
        let mut b = b"PROXY ".to_vec();
        b.extend_from_slice(&v1_tail);
        check_invariants(&b);
    }

    #[test]
    fn mutated_valid_headers_never_panic((bytes, ..) in v2_case(), line in v1_case(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        for mut b in [bytes, line] {
            for (at, x) in &flips {
                let i = at % b.len();
                b[i] ^= x;
            }
            check_invariants(&b);
        }
    }
}

/// Whatever the input: a Complete header fits the input, re-encodes and
/// re-parses equal; a Partial's hint never claims past `MAX_LEN`.
fn check_invariants(buf: &[u8]) {
    match proxy::parse(buf) {
        Ok(Status::Complete(h, n)) => {
            assert!(n <= buf.len());
            let mut out = Vec::new();
            h.write_to(&mut out).unwrap();
            let (h2, n2) = complete(&out);
            assert_eq!(n2, out.len());
            assert_eq!(h2, h);
            let _ = h.tlvs().count();
            let _ = h.ssl().map(|s| s.tlvs().count());
            if h.family() != Family::Unspec && h.command() == Command::Proxy {
                assert!(!matches!(h.addresses(), Addresses::Unspec));
            }
        }
        Ok(Status::Partial(need)) => {
            if let Some(n) = need {
                assert!(buf.len() + n.get() <= v2::MAX_LEN);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
