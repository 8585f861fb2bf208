//! Why a PROXY header was rejected.

use core::fmt;

/// Which address/port pair of a v1 header a [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The first address and port on the line: the client side.
    Source,
    /// The second address and port on the line: the proxy's listening side.
    Destination,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Source => "source",
            Endpoint::Destination => "destination",
        }
    }
}

/// A malformed PROXY protocol header.
///
/// Every variant names the one rule of the HAProxy specification the input
/// broke, so a log line says what the peer got wrong. Incomplete input is
/// never an error: it is [`Status::Partial`](super::Status::Partial).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The bytes start with neither `PROXY ` nor the 12-byte v2 signature.
    NotProxy,
    /// v1: 107 bytes arrived without a CRLF.
    V1TooLong,
    /// v1: the protocol word is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1Protocol,
    /// v1: a field separator is missing, doubled or not a single space.
    V1Separator,
    /// v1: an address is not valid for the announced protocol.
    V1Address(Endpoint),
    /// v1: an IPv4 octet has a leading zero (`010`), which is ambiguous (octal).
    V1AddressLeadingZero(Endpoint),
    /// v1: a port is not a decimal number.
    V1Port(Endpoint),
    /// v1: a port has a leading zero.
    V1PortLeadingZero(Endpoint),
    /// v1: a port is greater than 65535.
    V1PortRange(Endpoint),
    /// v1: the line ends before both addresses and both ports.
    V1Truncated,
    /// v1: something other than CRLF follows the destination port, or a CR is
    /// not followed by LF.
    V1Crlf,
    /// v2: the version nibble is not 2.
    V2Version(u8),
    /// v2: the command nibble is neither 0 (LOCAL) nor 1 (PROXY).
    V2Command(u8),
    /// v2: the address family nibble is not UNSPEC, INET, INET6 or UNIX.
    V2Family(u8),
    /// v2: the transport nibble is not UNSPEC, STREAM or DGRAM.
    V2Transport(u8),
    /// v2 PROXY: the family/transport byte (carried here) pairs UNSPEC with
    /// a named family or transport (`0x01`, `0x02`, `0x10`, `0x20`, `0x30`):
    /// the specification lists only `0x00`, `0x11`, `0x12`, `0x21`, `0x22`,
    /// `0x31` and `0x32`.
    V2FamilyTransport(u8),
    /// v2 PROXY: the length field is shorter than the family's address block.
    V2AddressLength {
        /// The header's length field.
        len: u16,
        /// Bytes the family's address block needs.
        needed: u16,
    },
    /// v2: a TLV's length runs past the end of the header.
    V2TlvOverrun {
        /// The TLV's type byte.
        kind: u8,
    },
    /// v2: 1 or 2 bytes are left after the last TLV: the TLVs do not tile
    /// the header.
    V2TlvTrailing,
    /// v2: a TLV with a fixed size has another length.
    V2TlvLength {
        /// The TLV's type byte.
        kind: u8,
        /// Its length field.
        len: u16,
    },
    /// v2: UNIQUE_ID TLV is longer than 128 bytes.
    V2UniqueIdTooLong(u16),
    /// v2: more than one CRC32C TLV.
    V2Crc32cDuplicate,
    /// v2: the CRC32C TLV does not match the header.
    V2Crc32cMismatch {
        /// Checksum carried by the TLV.
        expected: u32,
        /// Checksum computed over the header.
        actual: u32,
    },
    /// v2: an SSL TLV's sub-TLV runs past the end of the SSL TLV, or the
    /// sub-TLVs do not tile it.
    V2SslSubTlv,
}

fn tlv_name(kind: u8) -> &'static str {
    match kind {
        super::tlv::kind::ALPN => "ALPN",
        super::tlv::kind::AUTHORITY => "AUTHORITY",
        super::tlv::kind::CRC32C => "CRC32C",
        super::tlv::kind::NOOP => "NOOP",
        super::tlv::kind::UNIQUE_ID => "UNIQUE_ID",
        super::tlv::kind::SSL => "SSL",
        super::tlv::kind::NETNS => "NETNS",
        super::tlv::kind::AWS => "AWS",
        super::tlv::kind::AZURE => "Azure",
        super::tlv::kind::GCP => "GCP",
        _ => "TLV",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NotProxy => f.write_str("not a PROXY protocol header (no v1 or v2 signature)"),
            Error::V1TooLong => f.write_str("v1 header: no CRLF within the first 107 bytes"),
            Error::V1Protocol => {
                f.write_str("v1 header: protocol is not \"TCP4\", \"TCP6\" or \"UNKNOWN\"")
            }
            Error::V1Separator => f.write_str("v1 header: fields must be separated by one space"),
            Error::V1Address(e) => write!(
                f,
                "v1 header: {} address is not valid for the protocol",
                e.as_str()
            ),
            Error::V1AddressLeadingZero(e) => write!(
                f,
                "v1 header: {} address has an octet with a leading zero",
                e.as_str()
            ),
            Error::V1Port(e) => write!(f, "v1 header: {} port is not a number", e.as_str()),
            Error::V1PortLeadingZero(e) => {
                write!(f, "v1 header: {} port has a leading zero", e.as_str())
            }
            Error::V1PortRange(e) => {
                write!(f, "v1 header: {} port is greater than 65535", e.as_str())
            }
            Error::V1Truncated => {
                f.write_str("v1 header: line ends before both addresses and ports")
            }
            Error::V1Crlf => f.write_str("v1 header: destination port is not followed by CRLF"),
            Error::V2Version(v) => write!(f, "v2 header: version {v} (expected 2)"),
            Error::V2Command(c) => {
                write!(f, "v2 header: command {c} is neither LOCAL (0) nor PROXY (1)")
            }
            Error::V2Family(v) => write!(
                f,
                "v2 header: address family {v} is not UNSPEC, INET, INET6 or UNIX"
            ),
            Error::V2Transport(v) => {
                write!(f, "v2 header: transport {v} is not UNSPEC, STREAM or DGRAM")
            }
            Error::V2FamilyTransport(b) => write!(
                f,
                "v2 header: family/transport byte {b:#04x} is not a combination the specification lists"
            ),
            Error::V2AddressLength { len, needed } => write!(
                f,
                "v2 header: length {len} is shorter than the {needed}-byte address block"
            ),
            Error::V2TlvOverrun { kind } => write!(
                f,
                "v2 header: {} TLV (type {kind:#04x}) runs past the end of the header",
                tlv_name(kind)
            ),
            Error::V2TlvTrailing => {
                f.write_str("v2 header: 1 or 2 bytes after the last TLV (TLVs must fill the header)")
            }
            Error::V2TlvLength { kind, len } => write!(
                f,
                "v2 header: {} TLV (type {kind:#04x}) has invalid length {len}",
                tlv_name(kind)
            ),
            Error::V2UniqueIdTooLong(len) => write!(
                f,
                "v2 header: UNIQUE_ID TLV is {len} bytes long (at most 128)"
            ),
            Error::V2Crc32cDuplicate => f.write_str("v2 header: more than one CRC32C TLV"),
            Error::V2Crc32cMismatch { expected, actual } => write!(
                f,
                "v2 header: CRC32C mismatch (TLV says {expected:#010x}, header sums to {actual:#010x})"
            ),
            Error::V2SslSubTlv => {
                f.write_str("v2 header: SSL TLV's sub-TLVs overrun it or do not fill it")
            }
        }
    }
}

impl std::error::Error for Error {}
