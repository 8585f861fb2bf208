//! [`OwnedHeader`]: a header that outlives the read buffer.

use std::net::SocketAddr;

use super::tlv::Index;
use super::Ips;
use super::{Command, Family, Header, Transport, Unaddressed, Version};

/// A PROXY header that owns its bytes, for connection info kept after the
/// read buffer is reused. Cloning copies the TLV bytes; share it behind an
/// `Arc` when many holders need it.
///
/// ```
/// use realip::proxy::{self, OwnedHeader, Status};
///
/// let owned: OwnedHeader = {
///     let buf = b"PROXY TCP4 192.0.2.7 10.0.0.1 1234 80\r\n".to_vec();
///     let Status::Complete(h, _) = proxy::parse(&buf)? else { unreachable!() };
///     h.to_owned_header()
/// }; // buf dropped here
/// assert_eq!(owned.source(), Some("192.0.2.7:1234".parse()?));
/// assert_eq!(owned.as_header().destination(), Some("10.0.0.1:80".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnedHeader {
    version: Version,
    command: Command,
    transport: Transport,
    family: Family,
    stored: Family,
    addr: Ips,
    unix: Box<[u8]>,
    tlvs: Box<[u8]>,
    index: Index,
}

impl OwnedHeader {
    pub(crate) fn from_header(h: &Header<'_>) -> Self {
        OwnedHeader {
            version: h.version,
            command: h.command,
            transport: h.transport,
            family: h.family,
            stored: h.stored,
            addr: h.addr,
            unix: h.unix.into(),
            tlvs: h.tlvs.into(),
            index: h.index,
        }
    }

    /// A borrowed view with every accessor of [`Header`] (TLVs included).
    pub fn as_header(&self) -> Header<'_> {
        Header {
            version: self.version,
            command: self.command,
            transport: self.transport,
            family: self.family,
            stored: self.stored,
            addr: self.addr,
            unix: &self.unix,
            tlvs: &self.tlvs,
            index: self.index,
        }
    }

    /// See [`Header::source`].
    pub fn source(&self) -> Option<SocketAddr> {
        self.as_header().source()
    }
    /// See [`Header::destination`].
    pub fn destination(&self) -> Option<SocketAddr> {
        self.as_header().destination()
    }
    /// See [`Header::unaddressed`].
    pub fn unaddressed(&self) -> Option<Unaddressed> {
        self.as_header().unaddressed()
    }
    /// See [`Header::version`].
    pub fn version(&self) -> Version {
        self.version
    }
    /// See [`Header::command`].
    pub fn command(&self) -> Command {
        self.command
    }
    /// See [`Header::transport`].
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

impl From<Header<'_>> for OwnedHeader {
    fn from(h: Header<'_>) -> Self {
        OwnedHeader::from_header(&h)
    }
}
