//! v2 Type-Length-Value extensions: raw iteration, validation and typed views.

use super::Error;

/// TLV type bytes from the HAProxy specification and the cloud vendors.
pub mod kind {
    /// Application-Layer Protocol Negotiation (e.g. `h2`).
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (TLS SNI or `Host`).
    pub const AUTHORITY: u8 = 0x02;
    /// CRC32C of the whole header, checksum field zeroed.
    pub const CRC32C: u8 = 0x03;
    /// Padding; ignored.
    pub const NOOP: u8 = 0x04;
    /// Opaque connection id, at most 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS details of the client connection, with sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// SSL sub-TLV: protocol version (`TLSv1.3`).
    pub const SSL_VERSION: u8 = 0x21;
    /// SSL sub-TLV: client certificate Common Name.
    pub const SSL_CN: u8 = 0x22;
    /// SSL sub-TLV: cipher (`ECDHE-RSA-AES128-GCM-SHA256`).
    pub const SSL_CIPHER: u8 = 0x23;
    /// SSL sub-TLV: certificate signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// SSL sub-TLV: certificate key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// Network namespace name.
    pub const NETNS: u8 = 0x30;
    /// Google Cloud Private Service Connect: connection id, big-endian u64.
    pub const GCP: u8 = 0xE0;
    /// AWS: subtype byte then value; subtype 0x01 is the VPC endpoint id.
    pub const AWS: u8 = 0xEA;
    /// Azure: subtype byte then value; subtype 0x01 is the Private Link id
    /// (little-endian u32).
    pub const AZURE: u8 = 0xEE;
    /// Subtype of [`AWS`] carrying the VPC endpoint id.
    pub const AWS_VPCE_ID: u8 = 0x01;
    /// Subtype of [`AZURE`] carrying the Private Link id.
    pub const AZURE_LINK_ID: u8 = 0x01;
}

/// Most bytes a UNIQUE_ID TLV may carry.
pub const UNIQUE_ID_MAX: usize = 128;

/// One raw TLV: its type byte and value, borrowed from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// Type byte (see [`kind`]).
    pub kind: u8,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Iterator over the TLVs of a header (or the sub-TLVs of an SSL TLV).
///
/// The region was validated when the header was parsed, so iteration cannot
/// fail: every TLV fits and they fill the region exactly.
#[derive(Clone, Debug)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Tlvs<'a> {
    /// Iterates a region already checked by `validate`/`check_tiling`.
    pub(crate) fn new(rest: &'a [u8]) -> Self {
        Tlvs { rest }
    }

    /// The bytes not yet iterated.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    #[inline]
    fn next(&mut self) -> Option<Tlv<'a>> {
        // Defensive even though validated: never panic on a bad region.
        let [kind, hi, lo, ref tail @ ..] = *self.rest else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > tail.len() {
            self.rest = &[];
            return None;
        }
        let (value, rest) = tail.split_at(len);
        self.rest = rest;
        Some(Tlv { kind, value })
    }
}

impl core::iter::FusedIterator for Tlvs<'_> {}

/// Offsets (plus one; 0 = absent) of the first TLV of each typed kind, filled
/// while validating so typed accessors are O(1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Index {
    pub(crate) alpn: u16,
    pub(crate) authority: u16,
    pub(crate) crc32c: u16,
    pub(crate) unique_id: u16,
    pub(crate) ssl: u16,
    pub(crate) netns: u16,
    pub(crate) aws: u16,
    pub(crate) azure: u16,
    pub(crate) gcp: u16,
}

impl Index {
    /// Value of the TLV recorded at `slot` in `tlvs`.
    #[inline]
    pub(crate) fn get(slot: u16, tlvs: &[u8]) -> Option<&[u8]> {
        if slot == 0 {
            return None;
        }
        let at = usize::from(slot - 1);
        let hdr = tlvs.get(at..at + 3)?;
        let len = usize::from(u16::from_be_bytes([hdr[1], hdr[2]]));
        tlvs.get(at + 3..at + 3 + len)
    }
}

/// Walks the TLV region once: checks tiling and the typed TLVs' rules,
/// records where each typed TLV is and where the CRC32C value sits.
///
/// Fills `idx` and returns the offset of the CRC32C value inside `tlvs`.
/// (An out-parameter: returning the index by value made the caller copy it
/// back through the stack, a measurable cost at these sizes.)
#[inline(always)]
pub(crate) fn validate(tlvs: &[u8], idx: &mut Index) -> Result<Option<usize>, Error> {
    let mut crc_at = None;
    // Offset of the next TLV. It only moves to the end of a TLV that fits,
    // so it never passes the region; every read goes through `get`.
    let mut pos = 0;
    while let Some(&[k, hi, lo]) = tlvs.get(pos..pos + 3).and_then(<[u8]>::first_chunk) {
        let len16 = u16::from_be_bytes([hi, lo]);
        let len = usize::from(len16);
        let start = pos + 3;
        let Some(value) = tlvs.get(start..start + len) else {
            return Err(Error::V2TlvOverrun { kind: k });
        };
        // Slot = offset + 1; the region is ≤ 65535 bytes so it fits a u16.
        let slot = (pos + 1) as u16;
        pos = start + len;
        match k {
            kind::ALPN => set(&mut idx.alpn, slot),
            kind::AUTHORITY => set(&mut idx.authority, slot),
            kind::CRC32C => {
                if len != 4 {
                    return Err(Error::V2TlvLength {
                        kind: k,
                        len: len16,
                    });
                }
                if crc_at.is_some() {
                    return Err(Error::V2Crc32cDuplicate);
                }
                crc_at = Some(start);
                idx.crc32c = slot;
            }
            kind::UNIQUE_ID => {
                if len > UNIQUE_ID_MAX {
                    return Err(Error::V2UniqueIdTooLong(len16));
                }
                set(&mut idx.unique_id, slot);
            }
            kind::SSL => {
                let Some(sub) = value.get(5..) else {
                    return Err(Error::V2TlvLength {
                        kind: k,
                        len: len16,
                    });
                };
                check_tiling(sub).map_err(|()| Error::V2SslSubTlv)?;
                set(&mut idx.ssl, slot);
            }
            kind::NETNS => set(&mut idx.netns, slot),
            kind::AWS if value.first() == Some(&kind::AWS_VPCE_ID) => set(&mut idx.aws, slot),
            kind::AZURE if value.first() == Some(&kind::AZURE_LINK_ID) => {
                if len != 5 {
                    return Err(Error::V2TlvLength {
                        kind: k,
                        len: len16,
                    });
                }
                set(&mut idx.azure, slot);
            }
            kind::GCP => {
                if len != 8 {
                    return Err(Error::V2TlvLength {
                        kind: k,
                        len: len16,
                    });
                }
                set(&mut idx.gcp, slot);
            }
            _ => {}
        }
    }
    if pos == tlvs.len() {
        Ok(crc_at)
    } else {
        Err(Error::V2TlvTrailing)
    }
}

#[inline]
fn set(slot: &mut u16, at: u16) {
    if *slot == 0 {
        *slot = at;
    }
}

/// Checks that `bytes` is exactly a sequence of TLVs.
fn check_tiling(bytes: &[u8]) -> Result<(), ()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let [_, hi, lo, ref tail @ ..] = *rest else {
            return Err(());
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        rest = tail.get(len..).ok_or(())?;
    }
    Ok(())
}

/// The SSL TLV (0x20): how the client connected to the proxy over TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ssl<'a> {
    client: u8,
    verify: u32,
    sub: &'a [u8],
}

impl<'a> Ssl<'a> {
    /// Client flag: the client connected over SSL/TLS.
    pub const CLIENT_SSL: u8 = 0x01;
    /// Client flag: the client gave a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// Client flag: the client gave a certificate at least once in the TLS session.
    pub const CLIENT_CERT_SESS: u8 = 0x04;

    /// Reads a validated SSL value (≥ 5 bytes, sub-TLVs tile).
    pub(crate) fn from_value(value: &'a [u8]) -> Option<Self> {
        let [client, a, b, c, d, ref sub @ ..] = *value else {
            return None;
        };
        Some(Ssl {
            client,
            verify: u32::from_be_bytes([a, b, c, d]),
            sub,
        })
    }

    /// The raw client flags byte.
    pub fn client_flags(&self) -> u8 {
        self.client
    }
    /// The client connected over SSL/TLS.
    pub fn client_ssl(&self) -> bool {
        self.client & Self::CLIENT_SSL != 0
    }
    /// The client presented a certificate on this connection.
    pub fn client_cert_conn(&self) -> bool {
        self.client & Self::CLIENT_CERT_CONN != 0
    }
    /// The client presented a certificate at least once in this TLS session.
    pub fn client_cert_sess(&self) -> bool {
        self.client & Self::CLIENT_CERT_SESS != 0
    }
    /// The raw verify field: 0 means the client certificate was verified.
    pub fn verify(&self) -> u32 {
        self.verify
    }
    /// A client certificate was presented (on this connection or earlier in
    /// the session) and verified. HAProxy sends `verify == 0` also when no
    /// certificate was presented at all, so the field alone would claim a
    /// verification that never happened.
    pub fn verified(&self) -> bool {
        self.verify == 0 && self.client & (Self::CLIENT_CERT_CONN | Self::CLIENT_CERT_SESS) != 0
    }
    /// The sub-TLVs, raw.
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.sub)
    }
    fn find(&self, k: u8) -> Option<&'a [u8]> {
        self.tlvs().find(|t| t.kind == k).map(|t| t.value)
    }
    /// TLS version (`TLSv1.3`), US-ASCII.
    pub fn version(&self) -> Option<&'a [u8]> {
        self.find(kind::SSL_VERSION)
    }
    /// Client certificate Common Name, UTF-8.
    pub fn cn(&self) -> Option<&'a [u8]> {
        self.find(kind::SSL_CN)
    }
    /// Cipher name, US-ASCII.
    pub fn cipher(&self) -> Option<&'a [u8]> {
        self.find(kind::SSL_CIPHER)
    }
    /// Certificate signature algorithm, US-ASCII.
    pub fn sig_alg(&self) -> Option<&'a [u8]> {
        self.find(kind::SSL_SIG_ALG)
    }
    /// Certificate key algorithm, US-ASCII.
    pub fn key_alg(&self) -> Option<&'a [u8]> {
        self.find(kind::SSL_KEY_ALG)
    }
}
