//! PROXY protocol v1/v2 codec (sans-IO).
//!
//! A load balancer that speaks the PROXY protocol (HAProxy, AWS NLB, nginx
//! `stream`, Envoy, ...) prepends one header to the TCP stream that names the
//! client it accepted. This module parses that header from a byte slice and
//! writes it back: no sockets, no heap allocation while parsing, and every
//! returned [`Header`] borrows from the input.
//!
//! Incomplete input is a status, not an error: [`parse`] returns
//! [`Status::Partial`] until the header is complete (and rejects a prefix
//! as soon as it can no longer become a valid header), then
//! [`Status::Complete`] with the header and how many bytes it took. The bytes
//! after it belong to the application protocol.
//!
//! The grammar is the strict one of HAProxy's `doc/proxy-protocol.txt`;
//! each rejection is a distinct [`Error`] variant.
//!
//! ```
//! use realip::proxy::{self, Status, Version};
//!
//! let bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
//! let Status::Complete(header, consumed) = proxy::parse(bytes)? else {
//!     panic!("the header is complete");
//! };
//! assert_eq!(header.version(), Version::V1);
//! assert_eq!(header.source(), Some("192.0.2.7:56324".parse()?));
//! assert_eq!(&bytes[consumed..], b"GET / HTTP/1.1\r\n");
//!
//! // A prefix waits for more bytes instead of failing.
//! assert!(matches!(proxy::parse(&bytes[..20])?, Status::Partial(_)));
//!
//! // And a round trip through the encoder gives the same header.
//! let mut out = Vec::new();
//! header.write_to(&mut out)?;
//! assert_eq!(&out[..], &bytes[..consumed]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::num::NonZeroUsize;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

mod encode;
mod error;
mod owned;
mod tlv;
pub mod v1;
pub mod v2;

pub use encode::EncodeError;
pub use error::{Endpoint, Error};
pub use owned::OwnedHeader;
pub use tlv::{kind, Ssl, Tlv, Tlvs, UNIQUE_ID_MAX};

use tlv::Index;

/// Result of feeding bytes to a parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<'a> {
    /// A whole header, and the number of bytes it occupies at the front of
    /// the input.
    Complete(Header<'a>, usize),
    /// The input is a valid prefix of a header. `Some(n)`: at least `n` more
    /// bytes are needed (exact for v2 once its 16-byte fixed part is in).
    Partial(Option<NonZeroUsize>),
}

/// What the first bytes of a stream are, for listeners where the header is
/// optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detected {
    /// Starts with `PROXY ` (the v1 text header).
    V1,
    /// Starts with the 12-byte v2 signature.
    V2,
    /// Cannot be a PROXY header.
    NotProxy,
    /// A strict prefix of one of the signatures: read more.
    NeedMore,
}

/// Protocol version of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// Binary header.
    V2,
}

/// Whether the header carries a client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// The proxy's own connection (e.g. a health check): use the socket's
    /// endpoints.
    Local,
    /// A relayed connection: the header names the real endpoints (v1 always).
    Proxy,
}

/// Transport protocol of the relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Unspecified (v1 `UNKNOWN`, v2 LOCAL health checks).
    Unspec,
    /// TCP or another stream transport (v1 `TCP4`/`TCP6`).
    Stream,
    /// UDP or another datagram transport. Such a header names no client of
    /// the stream it arrived on: [`Header::source`] is `None`.
    Dgram,
}

/// Address family of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// No addresses (v1 `UNKNOWN`, v2 AF_UNSPEC).
    Unspec,
    /// IPv4 (v1 `TCP4`).
    Inet,
    /// IPv6 (v1 `TCP6`).
    Inet6,
    /// UNIX socket paths (v2 only).
    Unix,
}

/// Why a header names no client ([`Header::source`] is `None`), so the
/// socket's endpoints stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unaddressed {
    /// A v2 LOCAL header: the proxy's own connection (e.g. a health check).
    Local,
    /// v1 `UNKNOWN` or v2 AF_UNSPEC: the proxy did not say.
    Unspec,
    /// v2 AF_UNIX: socket paths, not addresses.
    Unix,
    /// v2 DGRAM: the addresses are those of a datagram flow, not of the
    /// stream this header arrived on. They stay readable through
    /// [`Header::addresses`] for a receiver that relays datagrams.
    Dgram,
}

/// The address block of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Addresses<'a> {
    /// No addresses: v1 `UNKNOWN`, v2 AF_UNSPEC, or a v2 LOCAL header whose
    /// block is shorter than its family's addresses or whose body was
    /// discarded.
    Unspec,
    /// IPv4 source and destination.
    Ipv4 {
        /// The client side.
        source: SocketAddrV4,
        /// The side the proxy accepted on.
        destination: SocketAddrV4,
    },
    /// IPv6 source and destination.
    Ipv6 {
        /// The client side.
        source: SocketAddrV6,
        /// The side the proxy accepted on.
        destination: SocketAddrV6,
    },
    /// UNIX socket paths, 108 bytes each, NUL-padded.
    Unix {
        /// The client side.
        source: &'a [u8; 108],
        /// The side the proxy accepted on.
        destination: &'a [u8; 108],
    },
}

/// A parsed PROXY header (v1 or v2), borrowing its TLVs and UNIX paths from
/// the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    pub(crate) version: Version,
    pub(crate) command: Command,
    pub(crate) transport: Transport,
    pub(crate) family: Family,
    /// Which addresses `addr`/`unix` hold (`Unspec`: none).
    pub(crate) stored: Family,
    /// The IP endpoints (zero unless `stored` is INET or INET6).
    pub(crate) addr: Ips,
    /// UNIX: the 216-byte block; otherwise empty.
    pub(crate) unix: &'a [u8],
    pub(crate) tlvs: &'a [u8],
    pub(crate) index: Index,
}

/// The IP endpoints of a header as numbers, an IPv4 address in the low 32
/// bits: scalars rather than a byte array, so a parsed header can stay in
/// registers instead of being copied piecewise through the stack. Each
/// address is two `u64` halves, not a `u128`, whose 16-byte alignment
/// would pad every header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Ips {
    src_hi: u64,
    src_lo: u64,
    dst_hi: u64,
    dst_lo: u64,
    src_port: u16,
    dst_port: u16,
}

impl Ips {
    #[inline(always)]
    pub(crate) fn new(src: u128, dst: u128, src_port: u16, dst_port: u16) -> Self {
        Ips {
            src_hi: (src >> 64) as u64,
            src_lo: src as u64,
            dst_hi: (dst >> 64) as u64,
            dst_lo: dst as u64,
            src_port,
            dst_port,
        }
    }
    #[inline(always)]
    fn v4(lo: u64, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(lo as u32), port)
    }
    #[inline(always)]
    fn v6(hi: u64, lo: u64, port: u16) -> SocketAddrV6 {
        let ip = (u128::from(hi) << 64) | u128::from(lo);
        SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
    }
}

impl<'a> Header<'a> {
    /// v1 or v2.
    #[inline]
    pub fn version(&self) -> Version {
        self.version
    }
    /// LOCAL or PROXY (v1 headers are always PROXY).
    #[inline]
    pub fn command(&self) -> Command {
        self.command
    }
    /// Transport of the relayed connection (for LOCAL, `Unspec` when the
    /// byte names none).
    #[inline]
    pub fn transport(&self) -> Transport {
        self.transport
    }
    /// Address family announced by the header. For LOCAL, whose family byte
    /// a receiver ignores, `Unspec` when the byte names no family.
    #[inline]
    pub fn family(&self) -> Family {
        self.family
    }
    /// The address block as sent (also for LOCAL, whose addresses must not be
    /// used as the client: see [`source`](Self::source)).
    #[inline]
    pub fn addresses(&self) -> Addresses<'a> {
        match self.stored {
            Family::Unspec => Addresses::Unspec,
            Family::Inet => Addresses::Ipv4 {
                source: Ips::v4(self.addr.src_lo, self.addr.src_port),
                destination: Ips::v4(self.addr.dst_lo, self.addr.dst_port),
            },
            Family::Inet6 => Addresses::Ipv6 {
                source: Ips::v6(self.addr.src_hi, self.addr.src_lo, self.addr.src_port),
                destination: Ips::v6(self.addr.dst_hi, self.addr.dst_lo, self.addr.dst_port),
            },
            Family::Unix => {
                let src = self.unix.get(..108).and_then(|s| s.try_into().ok());
                let dst = self.unix.get(108..216).and_then(|s| s.try_into().ok());
                match (src, dst) {
                    (Some(source), Some(destination)) => Addresses::Unix {
                        source,
                        destination,
                    },
                    _ => Addresses::Unspec,
                }
            }
        }
    }
    /// The client address of the stream this header arrived on: `None` for
    /// LOCAL, v1 `UNKNOWN`, AF_UNSPEC, AF_UNIX and DGRAM (see
    /// [`unaddressed`](Self::unaddressed)), where the socket peer stays the
    /// client.
    #[inline]
    pub fn source(&self) -> Option<SocketAddr> {
        // Tests, not a `match` (a jump table).
        if self.command == Command::Local || self.transport == Transport::Dgram {
            None
        } else if self.stored == Family::Inet {
            Some(SocketAddr::V4(Ips::v4(
                self.addr.src_lo,
                self.addr.src_port,
            )))
        } else if self.stored == Family::Inet6 {
            Some(SocketAddr::V6(Ips::v6(
                self.addr.src_hi,
                self.addr.src_lo,
                self.addr.src_port,
            )))
        } else {
            None
        }
    }
    /// The address the proxy accepted the client on; `None` when
    /// [`source`](Self::source) is.
    #[inline]
    pub fn destination(&self) -> Option<SocketAddr> {
        if self.command == Command::Local || self.transport == Transport::Dgram {
            return None;
        }
        match self.stored {
            Family::Inet => Some(SocketAddr::V4(Ips::v4(
                self.addr.dst_lo,
                self.addr.dst_port,
            ))),
            Family::Inet6 => Some(SocketAddr::V6(Ips::v6(
                self.addr.dst_hi,
                self.addr.dst_lo,
                self.addr.dst_port,
            ))),
            Family::Unspec | Family::Unix => None,
        }
    }
    /// Why [`source`](Self::source) is `None`; `None` when it names the
    /// client. What a listener records when it keeps the socket's endpoints.
    pub fn unaddressed(&self) -> Option<Unaddressed> {
        if self.command == Command::Local {
            return Some(Unaddressed::Local);
        }
        match self.stored {
            Family::Unspec => Some(Unaddressed::Unspec),
            Family::Unix => Some(Unaddressed::Unix),
            Family::Inet | Family::Inet6 if self.transport == Transport::Dgram => {
                Some(Unaddressed::Dgram)
            }
            Family::Inet | Family::Inet6 => None,
        }
    }
    /// All TLVs in order, raw (empty for v1). Validated at parse time, so the
    /// iterator never fails.
    #[inline]
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.tlvs)
    }
    /// The raw TLV region (everything after the address block).
    #[inline]
    pub fn tlv_bytes(&self) -> &'a [u8] {
        self.tlvs
    }
    /// ALPN (0x01), e.g. `h2`.
    #[inline]
    pub fn alpn(&self) -> Option<&'a [u8]> {
        Index::get(self.index.alpn, self.tlvs)
    }
    /// AUTHORITY (0x02): the host name the client asked for.
    #[inline]
    pub fn authority(&self) -> Option<&'a [u8]> {
        Index::get(self.index.authority, self.tlvs)
    }
    /// CRC32C (0x03) as carried; [`parse`] has already verified it.
    #[inline]
    pub fn crc32c(&self) -> Option<u32> {
        let v = Index::get(self.index.crc32c, self.tlvs)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }
    /// UNIQUE_ID (0x05), at most 128 bytes.
    #[inline]
    pub fn unique_id(&self) -> Option<&'a [u8]> {
        Index::get(self.index.unique_id, self.tlvs)
    }
    /// SSL (0x20) with its sub-TLVs.
    #[inline]
    pub fn ssl(&self) -> Option<Ssl<'a>> {
        Ssl::from_value(Index::get(self.index.ssl, self.tlvs)?)
    }
    /// NETNS (0x30): network namespace name.
    #[inline]
    pub fn netns(&self) -> Option<&'a [u8]> {
        Index::get(self.index.netns, self.tlvs)
    }
    /// AWS (0xEA, subtype 0x01): the VPC endpoint id (`vpce-...`) the client
    /// came through.
    #[inline]
    pub fn aws_vpce_id(&self) -> Option<&'a [u8]> {
        Index::get(self.index.aws, self.tlvs)?.get(1..)
    }
    /// Azure (0xEE, subtype 0x01): the Private Link id (little-endian u32).
    #[inline]
    pub fn azure_link_id(&self) -> Option<u32> {
        let v = Index::get(self.index.azure, self.tlvs)?;
        Some(u32::from_le_bytes(v.get(1..5)?.try_into().ok()?))
    }
    /// GCP (0xE0): the Private Service Connect connection id (big-endian u64).
    #[inline]
    pub fn gcp_psc_id(&self) -> Option<u64> {
        let v = Index::get(self.index.gcp, self.tlvs)?;
        Some(u64::from_be_bytes(v.try_into().ok()?))
    }
    /// A copy that owns its bytes, for connection info that outlives the
    /// read buffer.
    pub fn to_owned_header(&self) -> OwnedHeader {
        OwnedHeader::from_header(self)
    }
}

/// Parser knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    verify_crc32c: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// The defaults: CRC32C TLVs are verified.
    pub const fn new() -> Self {
        Options {
            verify_crc32c: true,
        }
    }
    /// Whether a CRC32C TLV is checked against the header (default `true`).
    /// Turning it off only makes sense when the transport already guarantees
    /// integrity, or to measure the cost of the check.
    #[must_use]
    pub const fn verify_crc32c(mut self, yes: bool) -> Self {
        self.verify_crc32c = yes;
        self
    }
}

/// Says whether `buf` starts a PROXY header, from its first bytes only.
///
/// ```
/// use realip::proxy::{detect, Detected};
/// assert_eq!(detect(b"PROXY TCP4 "), Detected::V1);
/// assert_eq!(detect(b"PRO"), Detected::NeedMore);
/// assert_eq!(detect(b"POST / HTTP/1.1"), Detected::NotProxy);
/// ```
pub fn detect(buf: &[u8]) -> Detected {
    fn against(buf: &[u8], sig: &[u8], hit: Detected) -> Detected {
        let n = buf.len().min(sig.len());
        if buf[..n] != sig[..n] {
            Detected::NotProxy
        } else if n == sig.len() {
            hit
        } else {
            Detected::NeedMore
        }
    }
    match buf.first() {
        None => Detected::NeedMore,
        Some(b'P') => against(buf, v1::PREFIX, Detected::V1),
        Some(b'\r') => against(buf, &v2::SIGNATURE, Detected::V2),
        Some(_) => Detected::NotProxy,
    }
}

/// Parses a v1 or v2 header at the front of `buf`, verifying any CRC32C.
#[inline(always)]
pub fn parse(buf: &[u8]) -> Result<Status<'_>, Error> {
    parse_with(buf, Options::new())
}

/// [`parse`] with explicit [`Options`].
#[inline(always)]
pub fn parse_with(buf: &[u8], options: Options) -> Result<Status<'_>, Error> {
    match buf.first() {
        Some(b'P') => v1::parse(buf),
        Some(b'\r') => v2::parse_with(buf, options),
        Some(_) => Err(Error::NotProxy),
        None => Ok(Status::Partial(NonZeroUsize::new(v1::MIN_LEN))),
    }
}
