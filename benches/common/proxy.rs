//! Inputs and contenders shared by the PROXY parsing benches (criterion's
//! `proxy_parse` and the plain timing loop `proxy_plain`), so both make
//! every parser compute the same outputs from the same bytes.
#![allow(dead_code)]

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use proxy_header::{ParseConfig, ProxyHeader, Tlv};
use realip::proxy::{self, kind, Options, Status};

/// What every contender hands back: the client address, the header length
/// and (on the NLB header) the length of the VPC endpoint id it found.
pub(crate) type Out = (Option<SocketAddr>, usize, usize);

/// v2 PROXY, TCP over IPv4, no TLVs: 28 bytes.
pub(crate) fn v2_ipv4() -> Vec<u8> {
    let mut h = proxy::v2::SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&[192, 0, 2, 7, 10, 0, 0, 1]);
    h.extend_from_slice(&56324u16.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    assert_eq!(h.len(), 28);
    h
}

/// What an AWS Network Load Balancer sends to a target behind a VPC
/// endpoint, written out byte by byte (not through realip's encoder): v2
/// PROXY over IPv4, a CRC32C TLV, the `0xEA` TLV (subtype `0x01`, the VPC
/// endpoint id of AWS's documentation example) and a NOOP TLV padding the
/// header to 104 bytes. The CRC32C is computed over the finished header
/// with its field zeroed, as the specification says.
pub(crate) fn nlb() -> Vec<u8> {
    let mut h = proxy::v2::SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 88]);
    h.extend_from_slice(&[172, 31, 7, 113, 172, 31, 10, 31]);
    h.extend_from_slice(&47426u16.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    let crc_at = h.len() + 3;
    h.extend_from_slice(&[kind::CRC32C, 0, 4, 0, 0, 0, 0]);
    let vpce = b"vpce-08d2bf15fac5001c9";
    h.extend_from_slice(&[kind::AWS, 0, 1 + vpce.len() as u8, kind::AWS_VPCE_ID]);
    h.extend_from_slice(vpce);
    let pad = 104 - h.len() - 3;
    h.extend_from_slice(&[kind::NOOP, 0, pad as u8]);
    h.resize(104, 0);
    assert_eq!(
        usize::from(u16::from_be_bytes([h[14], h[15]])) + 16,
        h.len()
    );
    let crc = crc32c::crc32c(&h);
    h[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    h
}

// Each contender is compiled once per output set (`VPCE`) and, for realip,
// per option set (`CRC`), as a caller with fixed needs would compile it:
// none pays at run time for a branch to outputs it does not produce.

/// realip: source, length and (when asked) the VPC endpoint id; `CRC`:
/// whether the CRC32C is verified.
#[inline(never)]
pub(crate) fn realip<const CRC: bool, const VPCE: bool>(buf: &[u8]) -> Out {
    let (opts, vpce) = (Options::new().verify_crc32c(CRC), VPCE);
    let Ok(Status::Complete(h, n)) = proxy::parse_with(black_box(buf), opts) else {
        unreachable!()
    };
    (
        h.source(),
        n,
        if vpce {
            h.aws_vpce_id().map_or(0, <[u8]>::len)
        } else {
            0
        },
    )
}

/// ppp: the same outputs; the VPC endpoint id by walking its TLVs.
#[inline(never)]
pub(crate) fn ppp<const VPCE: bool>(buf: &[u8]) -> Out {
    let vpce = VPCE;
    let h = ppp::v2::Header::try_from(black_box(buf)).unwrap();
    let source = match h.addresses {
        ppp::v2::Addresses::IPv4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        ppp::v2::Addresses::IPv6(a) => {
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
        }
        _ => None,
    };
    let id = if vpce {
        h.tlvs()
            .filter_map(Result::ok)
            .find(|t| t.kind == kind::AWS && t.value.first() == Some(&kind::AWS_VPCE_ID))
            .map_or(0, |t| t.value.len() - 1)
    } else {
        0
    };
    (source, h.as_bytes().len(), id)
}

/// proxy-header: the same outputs; the VPC endpoint id by walking its TLVs.
#[inline(never)]
pub(crate) fn proxy_header<const VPCE: bool>(buf: &[u8]) -> Out {
    let vpce = VPCE;
    let (h, n) = ProxyHeader::parse(black_box(buf), ParseConfig::default()).unwrap();
    let source = h.proxied_address().map(|a| a.source);
    let id = if vpce {
        h.tlvs()
            .filter_map(Result::ok)
            .find_map(|t| match t {
                Tlv::Custom(k, v) if k == kind::AWS && v.first() == Some(&kind::AWS_VPCE_ID) => {
                    Some(v.len() - 1)
                }
                _ => None,
            })
            .unwrap_or(0)
    } else {
        0
    };
    (source, n, id)
}
