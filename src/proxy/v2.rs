//! PROXY protocol version 2: the binary header.
//!
//! 12-byte signature, version/command byte, family/transport byte, a
//! big-endian length, then the address block and TLVs. Everything after
//! the 16 fixed bytes is checked once: the address block against the
//! length, the TLVs for exact tiling and their typed rules, the CRC32C
//! (computed in place, field zeroed, without copying).
//!
//! ```
//! use realip::proxy::{v2, Addresses, Status, Transport};
//!
//! let bytes = v2::Builder::proxy(
//!     Transport::Stream,
//!     Addresses::Ipv4 { source: "192.0.2.7:56324".parse()?, destination: "10.0.0.1:443".parse()? },
//! )
//! .tlv(realip::proxy::kind::AUTHORITY, b"example.com")
//! .crc32c()
//! .to_vec()?;
//! let Status::Complete(h, n) = v2::parse(&bytes)? else { unreachable!() };
//! assert_eq!(n, bytes.len());
//! assert_eq!(h.source(), Some("192.0.2.7:56324".parse()?));
//! assert_eq!(h.authority(), Some(&b"example.com"[..]));
//! assert!(h.crc32c().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::num::NonZeroUsize;

use super::tlv::{self, kind, Index, Tlv};
use super::{
    Addresses, Command, EncodeError, Error, Family, Header, Options, Status, Transport, Version,
};

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport and length.
pub const FIXED_LEN: usize = 16;
/// Longest v2 header: the fixed part plus a `u16` length.
pub const MAX_LEN: usize = FIXED_LEN + 65535;

/// Address block size of each family.
const fn block_len(f: Family) -> usize {
    match f {
        Family::Unspec => 0,
        Family::Inet => 12,
        Family::Inet6 => 36,
        Family::Unix => 216,
    }
}

/// Parses a v2 header at the front of `buf`, verifying any CRC32C.
#[inline(always)]
pub fn parse(buf: &[u8]) -> Result<Status<'_>, Error> {
    parse_with(buf, Options::new())
}

#[inline(always)]
fn version_command(b: u8) -> Result<Command, Error> {
    if b >> 4 != 2 {
        return Err(Error::V2Version(b >> 4));
    }
    match b & 0x0F {
        0 => Ok(Command::Local),
        1 => Ok(Command::Proxy),
        c => Err(Error::V2Command(c)),
    }
}

#[inline(always)]
fn family_transport(b: u8) -> Result<(Family, Transport), Error> {
    let f = match b >> 4 {
        0 => Family::Unspec,
        1 => Family::Inet,
        2 => Family::Inet6,
        3 => Family::Unix,
        f => return Err(Error::V2Family(f)),
    };
    let t = match b & 0x0F {
        0 => Transport::Unspec,
        1 => Transport::Stream,
        2 => Transport::Dgram,
        t => return Err(Error::V2Transport(t)),
    };
    Ok((f, t))
}

/// [`parse`] with explicit [`Options`] (e.g. without CRC32C verification).
#[inline(always)]
pub fn parse_with(buf: &[u8], options: Options) -> Result<Status<'_>, Error> {
    let Some(fixed) = buf.first_chunk::<FIXED_LEN>() else {
        // Judge the prefix on what is there.
        let n = buf.len().min(SIGNATURE.len());
        if buf[..n] != SIGNATURE[..n] {
            return Err(Error::NotProxy);
        }
        if let Some(&b) = buf.get(12) {
            version_command(b)?;
        }
        if let Some(&b) = buf.get(13) {
            family_transport(b)?;
        }
        return Ok(Status::Partial(NonZeroUsize::new(FIXED_LEN - buf.len())));
    };
    if fixed[..12] != SIGNATURE {
        return Err(Error::NotProxy);
    }
    let command = version_command(fixed[12])?;
    let (family, transport) = family_transport(fixed[13])?;
    let len16 = u16::from_be_bytes([fixed[14], fixed[15]]);
    let len = usize::from(len16);
    let need = block_len(family);
    if command == Command::Proxy && len < need {
        return Err(Error::V2AddressLength {
            len: len16,
            needed: need as u16,
        });
    }
    let total = FIXED_LEN + len;
    let Some(whole) = buf.get(..total) else {
        return Ok(Status::Partial(NonZeroUsize::new(total - buf.len())));
    };
    let body = &whole[FIXED_LEN..];
    // LOCAL: the block is to be discarded; a block too short for its family
    // carries neither addresses nor TLVs.
    let mut addr = [0u8; 36];
    let mut unix: &[u8] = &[];
    let (stored, block_len, tlvs) = match body.split_at_checked(need) {
        Some((block, tlvs)) => {
            match family {
                Family::Inet => addr[..12].copy_from_slice(block),
                Family::Inet6 => addr.copy_from_slice(block),
                Family::Unix => unix = block,
                Family::Unspec => {}
            }
            (family, need, tlvs)
        }
        None => (Family::Unspec, 0, &[][..]),
    };
    let mut index = Index::default();
    let crc_at = if tlvs.is_empty() {
        None
    } else {
        tlv::validate(tlvs, &mut index)?
    };
    if let Some(at) = crc_at {
        if options.verify_crc32c {
            verify_crc(whole, FIXED_LEN + block_len + at)?;
        }
    }
    Ok(Status::Complete(
        Header {
            version: Version::V2,
            command,
            transport,
            family,
            stored,
            addr,
            unix,
            tlvs,
            index,
        },
        total,
    ))
}

/// CRC32C of `header` with the 4 bytes at `at` taken as zero.
fn crc_over(header: &[u8], at: usize) -> u32 {
    let c = crc32c::crc32c(&header[..at]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    match &header[at + 4..] {
        [] => c,
        rest => crc32c::crc32c_append(c, rest),
    }
}

fn verify_crc(header: &[u8], at: usize) -> Result<(), Error> {
    let expected = u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let actual = crc_over(header, at);
    if expected == actual {
        Ok(())
    } else {
        Err(Error::V2Crc32cMismatch { expected, actual })
    }
}

/// Builds a v2 header, e.g. to test a server or to relay a client to a
/// backend. TLVs are written in the order given; a CRC32C TLV, when asked
/// for, is appended last and computed over the finished header.
#[derive(Clone, Debug)]
#[must_use]
pub struct Builder<'a> {
    command: Command,
    transport: Transport,
    family: Family,
    addresses: Addresses<'a>,
    tlvs: Vec<u8>,
    crc32c: bool,
    too_long: bool,
}

impl<'a> Builder<'a> {
    /// A PROXY header for `addresses` (the family follows from them).
    pub fn proxy(transport: Transport, addresses: Addresses<'a>) -> Self {
        let family = match addresses {
            Addresses::Unspec => Family::Unspec,
            Addresses::Ipv4 { .. } => Family::Inet,
            Addresses::Ipv6 { .. } => Family::Inet6,
            Addresses::Unix { .. } => Family::Unix,
        };
        Builder {
            command: Command::Proxy,
            transport,
            family,
            addresses,
            tlvs: Vec::new(),
            crc32c: false,
            too_long: false,
        }
    }

    /// A LOCAL header (health check), AF_UNSPEC, no addresses.
    pub fn local() -> Self {
        Builder {
            command: Command::Local,
            ..Builder::proxy(Transport::Unspec, Addresses::Unspec)
        }
    }

    /// Sets the command (e.g. LOCAL with addresses, as some proxies send).
    pub fn command(mut self, command: Command) -> Self {
        self.command = command;
        self
    }

    /// Sets the family byte without addresses; only meaningful for LOCAL
    /// with [`Addresses::Unspec`], where the block is then empty.
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Appends one TLV.
    pub fn tlv(mut self, kind: u8, value: &[u8]) -> Self {
        let Ok(len) = u16::try_from(value.len()) else {
            self.too_long = true;
            return self;
        };
        self.tlvs.push(kind);
        self.tlvs.extend_from_slice(&len.to_be_bytes());
        self.tlvs.extend_from_slice(value);
        self
    }

    /// Appends already-encoded TLV bytes (e.g. a parsed header's
    /// [`tlv_bytes`](Header::tlv_bytes)).
    pub fn raw_tlvs(mut self, bytes: &[u8]) -> Self {
        self.tlvs.extend_from_slice(bytes);
        self
    }

    /// Appends an SSL TLV (0x20) with its sub-TLVs.
    pub fn ssl(self, client_flags: u8, verify: u32, sub: &[Tlv<'_>]) -> Self {
        let mut v = Vec::with_capacity(5 + sub.iter().map(|t| 3 + t.value.len()).sum::<usize>());
        v.push(client_flags);
        v.extend_from_slice(&verify.to_be_bytes());
        for t in sub {
            let len = u16::try_from(t.value.len()).unwrap_or(u16::MAX);
            v.push(t.kind);
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&t.value[..usize::from(len)]);
        }
        self.tlv(kind::SSL, &v)
    }

    /// Appends a CRC32C TLV, computed when the header is written.
    pub fn crc32c(mut self) -> Self {
        self.crc32c = true;
        self
    }

    /// Appends the header to `out`; returns its length.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        if self.too_long {
            return Err(EncodeError::TooLong);
        }
        write_raw(
            out,
            self.command,
            self.transport,
            self.family,
            &self.addresses,
            &self.tlvs,
            self.crc32c,
        )
    }

    /// The header as a new `Vec`.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }
}

/// Writes a whole v2 header. `tlvs` is copied as is; if it holds a CRC32C
/// TLV, that TLV's value is recomputed, else one is appended when
/// `add_crc` is set.
pub(crate) fn write_raw(
    out: &mut Vec<u8>,
    command: Command,
    transport: Transport,
    family: Family,
    addresses: &Addresses<'_>,
    tlvs: &[u8],
    add_crc: bool,
) -> Result<usize, EncodeError> {
    let block = match addresses {
        Addresses::Unspec => 0,
        _ => block_len(family),
    };
    let addr_family = match addresses {
        Addresses::Unspec => family,
        Addresses::Ipv4 { .. } => Family::Inet,
        Addresses::Ipv6 { .. } => Family::Inet6,
        Addresses::Unix { .. } => Family::Unix,
    };
    if addr_family != family {
        return Err(EncodeError::FamilyMismatch);
    }
    if command == Command::Proxy && block < block_len(family) {
        return Err(EncodeError::FamilyMismatch);
    }
    // Find an existing CRC TLV (its value is recomputed below).
    let mut existing = None;
    let mut pos = 0;
    for t in tlv::Tlvs::new(tlvs) {
        if t.kind == kind::CRC32C && t.value.len() == 4 && existing.is_none() {
            existing = Some(pos + 3);
        }
        pos += 3 + t.value.len();
    }
    if pos != tlvs.len() {
        return Err(EncodeError::BadTlvs);
    }
    let extra = if add_crc && existing.is_none() { 7 } else { 0 };
    let len = u16::try_from(block + tlvs.len() + extra).map_err(|_| EncodeError::TooLong)?;

    let start = out.len();
    out.reserve(FIXED_LEN + usize::from(len));
    out.extend_from_slice(&SIGNATURE);
    out.push(
        0x20 | match command {
            Command::Local => 0,
            Command::Proxy => 1,
        },
    );
    let f = match family {
        Family::Unspec => 0,
        Family::Inet => 1,
        Family::Inet6 => 2,
        Family::Unix => 3,
    };
    let t = match transport {
        Transport::Unspec => 0,
        Transport::Stream => 1,
        Transport::Dgram => 2,
    };
    out.push((f << 4) | t);
    out.extend_from_slice(&len.to_be_bytes());
    match addresses {
        Addresses::Unspec => {}
        Addresses::Ipv4 {
            source,
            destination,
        } => put_inet(
            out,
            &source.ip().octets(),
            &destination.ip().octets(),
            [source.port(), destination.port()],
        ),
        Addresses::Ipv6 {
            source,
            destination,
        } => put_inet(
            out,
            &source.ip().octets(),
            &destination.ip().octets(),
            [source.port(), destination.port()],
        ),
        Addresses::Unix {
            source,
            destination,
        } => {
            out.extend_from_slice(&source[..]);
            out.extend_from_slice(&destination[..]);
        }
    }
    let tlv_start = out.len();
    out.extend_from_slice(tlvs);
    let crc_at = match existing {
        Some(at) => Some(tlv_start + at),
        None if add_crc => {
            out.extend_from_slice(&[kind::CRC32C, 0, 4, 0, 0, 0, 0]);
            Some(out.len() - 4)
        }
        None => None,
    };
    if let Some(at) = crc_at {
        let crc = crc_over(&out[start..], at - start);
        out[at..at + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out.len() - start)
}

/// An INET/INET6 address block: both addresses, then both ports (big-endian).
fn put_inet(out: &mut Vec<u8>, source: &[u8], destination: &[u8], ports: [u16; 2]) {
    out.extend_from_slice(source);
    out.extend_from_slice(destination);
    out.extend_from_slice(&ports[0].to_be_bytes());
    out.extend_from_slice(&ports[1].to_be_bytes());
}
