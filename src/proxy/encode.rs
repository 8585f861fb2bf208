//! Writing headers back: [`Header::write_to`] and the encoder's errors.

use core::fmt;

use super::{v1, v2, Command, Error, Header, Version};

/// A header that cannot be written.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// v1 has no UNIX family.
    V1Unix,
    /// v1 has no LOCAL command.
    V1Local,
    /// v1 carries no TLVs.
    V1Tlvs,
    /// The address block and TLVs exceed the 65535-byte v2 length.
    TooLong,
    /// The addresses do not match the family, or a PROXY header lacks them.
    FamilyMismatch,
    /// The raw TLV bytes do not form whole TLVs.
    BadTlvs,
    /// A PROXY header whose transport is UNSPEC while its family is not, or
    /// the other way round: the specification lists no such combination.
    TransportMismatch,
    /// A TLV breaks a rule the parser enforces (e.g. a CRC32C value that is
    /// not 4 bytes, two CRC32C TLVs, a UNIQUE_ID over 128 bytes).
    InvalidTlv(Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::V1Unix => "v1 header cannot carry UNIX socket addresses",
            EncodeError::V1Local => "v1 header cannot carry the LOCAL command",
            EncodeError::V1Tlvs => "v1 header cannot carry TLVs",
            EncodeError::TooLong => "v2 header: addresses and TLVs exceed 65535 bytes",
            EncodeError::FamilyMismatch => "v2 header: addresses do not match the address family",
            EncodeError::BadTlvs => "v2 header: TLV bytes do not form whole TLVs",
            EncodeError::TransportMismatch => {
                "v2 PROXY header: family and transport must both be UNSPEC or both be set"
            }
            EncodeError::InvalidTlv(e) => return write!(f, "v2 header: invalid TLV ({e})"),
        })
    }
}

impl std::error::Error for EncodeError {}

impl Header<'_> {
    /// Appends this header, encoded in its own version, to `out`; returns
    /// the number of bytes written. Parsing the output gives back an equal
    /// header. A CRC32C TLV is recomputed.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        match self.version {
            Version::V1 => {
                if self.command == Command::Local {
                    return Err(EncodeError::V1Local);
                }
                if !self.tlvs.is_empty() {
                    return Err(EncodeError::V1Tlvs);
                }
                v1::write(out, &self.addresses())
            }
            Version::V2 => v2::write_raw(
                out,
                self.command,
                self.transport,
                self.family,
                &self.addresses(),
                self.tlvs,
                false,
                false,
            ),
        }
    }
}
