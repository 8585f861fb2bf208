//! PROXY protocol version 2: the binary header.
//!
//! 12-byte signature, version/command byte, family/transport byte, a
//! big-endian length, then the address block and TLVs. Everything after
//! the 16 fixed bytes is checked once: the address block against the
//! length, the TLVs for exact tiling and their typed rules, the CRC32C
//! (over an aligned stack copy with the field zeroed).
//!
//! With the PROXY command the family/transport byte must be one the
//! specification lists (`0x00`, `0x11`, `0x12`, `0x21`, `0x22`, `0x31`,
//! `0x32`). A DGRAM header is valid but names no client of a stream
//! ([`Header::source`] is `None`, [`Header::unaddressed`] says why).
//!
//! LOCAL headers (health checks) are never refused for their family byte or
//! their body, which a receiver is to discard: a body that reads as the
//! family's block plus valid TLVs (or, when shorter than the block, as
//! valid TLVs alone) is exposed, and a CRC32C among those TLVs is verified,
//! so a corrupted health check still fails; any other body is discarded
//! whole (no addresses, no TLVs).
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
    Addresses, Command, EncodeError, Error, Family, Header, Ips, Options, Status, Transport,
    Version,
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

/// The family/transport byte of a PROXY header: only the combinations the
/// specification lists (UNSPEC/UNSPEC, or INET/INET6/UNIX with STREAM or
/// DGRAM); `0x20` would otherwise name the client `[::]:0`.
#[inline(always)]
fn family_transport(b: u8) -> Result<(Family, Transport), Error> {
    match b {
        0x00 => Ok((Family::Unspec, Transport::Unspec)),
        0x11 => Ok((Family::Inet, Transport::Stream)),
        0x12 => Ok((Family::Inet, Transport::Dgram)),
        0x21 => Ok((Family::Inet6, Transport::Stream)),
        0x22 => Ok((Family::Inet6, Transport::Dgram)),
        0x31 => Ok((Family::Unix, Transport::Stream)),
        0x32 => Ok((Family::Unix, Transport::Dgram)),
        _ if b >> 4 > 3 => Err(Error::V2Family(b >> 4)),
        _ if b & 0x0F > 2 => Err(Error::V2Transport(b & 0x0F)),
        _ => Err(Error::V2FamilyTransport(b)),
    }
}

/// The family/transport byte of a LOCAL header, which a receiver ignores:
/// never an error. Each nibble is reported when the specification names it
/// (`Unspec` otherwise), and a named family still sizes the block that the
/// TLVs follow.
#[inline(always)]
fn family_transport_local(b: u8) -> (Family, Transport) {
    let f = match b >> 4 {
        1 => Family::Inet,
        2 => Family::Inet6,
        3 => Family::Unix,
        _ => Family::Unspec,
    };
    let t = match b & 0x0F {
        1 => Transport::Stream,
        2 => Transport::Dgram,
        _ => Transport::Unspec,
    };
    (f, t)
}

#[inline(always)]
fn fixed_fields(vc: u8, ft: u8) -> Result<(Command, Family, Transport), Error> {
    let command = version_command(vc)?;
    let (family, transport) = match command {
        Command::Proxy => family_transport(ft)?,
        Command::Local => family_transport_local(ft),
    };
    Ok((command, family, transport))
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
        if let Some(&vc) = buf.get(12) {
            version_command(vc)?;
            if let Some(&ft) = buf.get(13) {
                fixed_fields(vc, ft)?;
            }
        }
        return Ok(Status::Partial(NonZeroUsize::new(FIXED_LEN - buf.len())));
    };
    if fixed[..12] != SIGNATURE {
        return Err(Error::NotProxy);
    }
    let (command, family, transport) = fixed_fields(fixed[12], fixed[13])?;
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
    // LOCAL: a block too short for its family is absent, and the whole body
    // is the TLV region.
    let (block, tlvs) = body.split_at_checked(need).unwrap_or((&[], body));
    let mut index = Index::default();
    let crc_at = if tlvs.is_empty() {
        None
    } else {
        match tlv::validate(tlvs, &mut index) {
            Ok(at) => at,
            Err(e) if command == Command::Proxy => return Err(e),
            // LOCAL: a body that is not valid TLVs is discarded whole
            // (the specification ignores it, and so does HAProxy).
            Err(_) => {
                return Ok(Status::Complete(
                    Header::local_discarded(family, transport),
                    total,
                ))
            }
        }
    };
    if let Some(at) = crc_at {
        if options.verify_crc32c {
            verify_crc(whole, FIXED_LEN + block.len() + at)?;
        }
    }
    let mut addr = Ips::default();
    let mut unix: &[u8] = &[];
    // Tests, not a `match` (a jump table).
    let stored = if let (Family::Inet, Some(b)) = (family, block.first_chunk::<12>()) {
        let [s0, s1, s2, s3, d0, d1, d2, d3, sp0, sp1, dp0, dp1] = *b;
        addr = Ips::new(
            u32::from_be_bytes([s0, s1, s2, s3]).into(),
            u32::from_be_bytes([d0, d1, d2, d3]).into(),
            u16::from_be_bytes([sp0, sp1]),
            u16::from_be_bytes([dp0, dp1]),
        );
        family
    } else if let (Family::Inet6, Some(b)) = (family, block.first_chunk::<36>()) {
        let (mut s, mut d) = ([0; 16], [0; 16]);
        s.copy_from_slice(&b[..16]);
        d.copy_from_slice(&b[16..32]);
        addr = Ips::new(
            u128::from_be_bytes(s),
            u128::from_be_bytes(d),
            u16::from_be_bytes([b[32], b[33]]),
            u16::from_be_bytes([b[34], b[35]]),
        );
        family
    } else if family == Family::Unix && block.len() == need {
        unix = block;
        family
    } else {
        Family::Unspec
    };
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

impl Header<'_> {
    /// A LOCAL header whose body was discarded: no addresses, no TLVs.
    fn local_discarded(family: Family, transport: Transport) -> Self {
        Header {
            version: Version::V2,
            command: Command::Local,
            transport,
            family,
            stored: Family::Unspec,
            addr: Ips::default(),
            unix: &[],
            tlvs: &[],
            index: Index::default(),
        }
    }
}

/// Bytes the CRC32C is computed over per call.
const CRC_CHUNK: usize = 128;

/// An 8-byte-aligned copy buffer: the hardware CRC then runs on whole
/// 8-byte words, with no byte-wise head or tail.
#[repr(align(8))]
struct CrcChunk([u8; CRC_CHUNK]);

impl CrcChunk {
    /// Copies `part` (at most 128 bytes) to the front, inline, as two
    /// fixed-size copies that overlap: a `memcpy` call cost more than the
    /// CRC itself on an NLB header (its wide stores delay the CRC's loads;
    /// `benches/crc32c_small.rs`).
    #[inline(always)]
    fn fill_from(&mut self, part: &[u8]) -> &mut [u8] {
        let n = part.len().min(CRC_CHUNK);
        let (dst, src) = (&mut self.0[..n], &part[..n]);
        macro_rules! both_ends {
            ($k:literal) => {{
                dst[..$k].copy_from_slice(&src[..$k]);
                dst[n - $k..].copy_from_slice(&src[n - $k..]);
            }};
        }
        match n {
            64.. => both_ends!(64),
            32..=63 => both_ends!(32),
            16..=31 => both_ends!(16),
            8..=15 => both_ends!(8),
            _ => dst.copy_from_slice(src),
        }
        dst
    }

    /// Zeroes bytes `lo..hi` (at most 4) by rewriting each aligned 8-byte
    /// word that holds them whole, so each 8-byte load of the CRC reads
    /// one store.
    #[inline(always)]
    fn clear(&mut self, lo: usize, hi: usize) {
        if lo >= hi || hi - lo > 4 {
            return;
        }
        let w = lo / 8 * 8;
        // The bytes to clear, over the two words from `w`.
        let mask = ((1u128 << (8 * (hi - lo))) - 1) << (8 * (lo - w));
        for (i, m) in [mask as u64, (mask >> 64) as u64].into_iter().enumerate() {
            let at = w + 8 * i;
            if m == 0 {
                continue;
            }
            if let Some(word) = self.0.get_mut(at..at + 8) {
                let mut x = [0u8; 8];
                x.copy_from_slice(word);
                word.copy_from_slice(&(u64::from_le_bytes(x) & !m).to_le_bytes());
            }
        }
    }
}

/// CRC32C of `header` with the 4 bytes at `at` taken as zero.
///
/// The header is copied, 128 bytes at a time, into an aligned stack
/// buffer where the field is zeroed, and each copy is summed in one call:
/// a header up to 128 bytes (an NLB's is 104) costs one copy and one call.
/// Every copy-free way measured cost more with the crates at hand: three
/// calls around the field, or one call over the header as it is corrected
/// by the field's term, even with that term as one carry-less
/// multiplication in integer arithmetic (`benches/crc32c_small.rs`). In
/// line, like [`verify_crc`]: as calls they cost the parse 40 instructions.
#[inline(always)]
fn crc_over(header: &[u8], at: usize) -> u32 {
    if header.len() > CRC_CHUNK {
        return crc_over_chunks(header, at);
    }
    let mut buf = CrcChunk([0; CRC_CHUNK]);
    buf.fill_from(header);
    buf.clear(at, at + 4);
    crc_fast::crc32_iscsi(&buf.0[..header.len()])
}

/// [`crc_over`] for a header longer than one copy buffer (out of line: the
/// digest's state would otherwise enlarge every parse's stack frame).
#[cold]
#[inline(never)]
fn crc_over_chunks(header: &[u8], at: usize) -> u32 {
    let mut buf = CrcChunk([0; CRC_CHUNK]);
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    for (i, part) in header.chunks(CRC_CHUNK).enumerate() {
        let start = i * CRC_CHUNK;
        buf.fill_from(part);
        let lo = at.saturating_sub(start).min(part.len());
        let hi = (at + 4).saturating_sub(start).min(part.len());
        buf.clear(lo, hi);
        digest.update(&buf.0[..part.len()]);
    }
    digest.finalize() as u32
}

/// Checks the CRC32C value at `at` against the header with it zeroed.
#[inline(always)]
fn verify_crc(header: &[u8], at: usize) -> Result<(), Error> {
    let Some(&field) = header.get(at..).and_then(<[u8]>::first_chunk::<4>) else {
        return Err(Error::V2TlvOverrun { kind: kind::CRC32C });
    };
    let expected = u32::from_be_bytes(field);
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

    /// Sets the family byte of a LOCAL header built without addresses. The
    /// family's address block is then written as zeros, so the TLVs sit
    /// where every receiver looks for them (receivers discard the block).
    /// On a PROXY header the family must match the addresses.
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
            true,
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
/// `add_crc` is set. `fill_block`: a LOCAL header with a family but no
/// addresses gets a zeroed block (the builder); a parsed header is written
/// back as it came (its block, if any, is in `addresses`).
///
/// Refuses whatever the parser would refuse or read differently: a PROXY
/// family/transport pair outside the specification's list, TLVs that break
/// a rule of [`tlv::validate`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_raw(
    out: &mut Vec<u8>,
    command: Command,
    transport: Transport,
    family: Family,
    addresses: &Addresses<'_>,
    tlvs: &[u8],
    add_crc: bool,
    fill_block: bool,
) -> Result<usize, EncodeError> {
    let addr_family = match addresses {
        Addresses::Unspec => family,
        Addresses::Ipv4 { .. } => Family::Inet,
        Addresses::Ipv6 { .. } => Family::Inet6,
        Addresses::Unix { .. } => Family::Unix,
    };
    if addr_family != family {
        return Err(EncodeError::FamilyMismatch);
    }
    let block = match addresses {
        Addresses::Unspec if command == Command::Proxy && family != Family::Unspec => {
            return Err(EncodeError::FamilyMismatch);
        }
        Addresses::Unspec if fill_block => block_len(family),
        Addresses::Unspec => 0,
        _ => block_len(family),
    };
    if command == Command::Proxy && (family == Family::Unspec) != (transport == Transport::Unspec) {
        return Err(EncodeError::TransportMismatch);
    }
    // The parser's TLV rules, so what is written reads back the same; and
    // where an existing CRC TLV is (its value is recomputed below).
    let existing = match tlv::validate(tlvs, &mut Index::default()) {
        Ok(at) => at,
        Err(Error::V2TlvOverrun { .. } | Error::V2TlvTrailing) => return Err(EncodeError::BadTlvs),
        Err(e) => return Err(EncodeError::InvalidTlv(e)),
    };
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
        Addresses::Unspec => out.resize(out.len() + block, 0),
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

#[cfg(test)]
mod tests {
    use super::crc_over;

    /// The inline copy (its size classes: under 8, 8-15, 16-31, 32-63,
    /// 64-128 bytes, then 128-byte chunks) and the word-wise clearing of
    /// the field give the CRC32C of the zeroed header, for every length
    /// up to three chunks and every field position, against the `crc32c`
    /// crate over a zeroed copy.
    #[test]
    fn crc_over_matches_an_independent_crc32c_everywhere() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 4..=data.len() {
            let header = &data[..len];
            for at in 0..=len - 4 {
                let mut zeroed = header.to_vec();
                zeroed[at..at + 4].fill(0);
                assert_eq!(
                    crc_over(header, at),
                    crc32c::crc32c(&zeroed),
                    "len {len} at {at}"
                );
            }
        }
    }
}
