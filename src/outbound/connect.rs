//! PROXY protocol to an upstream: the header naming the resolved client,
//! written once before any application byte.
//!
//! - [`UpstreamHeader`]: what to send (v1, or v2 with ALPN, AUTHORITY,
//!   UNIQUE_ID, an SSL summary and a CRC32C), encoded by the crate's own
//!   encoders ([`crate::proxy::v1::write`], [`crate::proxy::v2::Builder`]);
//! - [`write_header`] (feature `tokio`): writes it on any `AsyncWrite`, for
//!   TCP relays that open their own upstream socket per client;
//! - [`UpstreamClient`] (feature `connect`): an HTTP client whose every
//!   upstream connection starts with the header ([`ProxyConnector`]).
//!
//! # One downstream connection, one client
//!
//! A PROXY header describes the connection it starts; everything sent on
//! that connection is attributed to the header's client. An upstream
//! connection must therefore never carry requests of two clients, or the
//! second client is logged, rate-limited and allowed as the first. Pooling
//! clients together is the classic way to get that wrong, so the API does
//! not allow it:
//!
//! - a [`ProxyConnector`] is only made inside an [`UpstreamClient`], for the
//!   one header it was built with, and the connections it opens belong to
//!   that `UpstreamClient` (which is not `Clone`): its own list of HTTP/1.1
//!   connections, or with [`UpstreamClient::with_builder`] a hyper-util
//!   pool private to it;
//! - [`UpstreamClient::request`] refuses ([`UpstreamError::OtherClient`]) a
//!   request whose [`RealIp`] is missing or names another client than the
//!   header, before any byte is sent.
//!
//! Make one `UpstreamClient` per downstream connection (in the service built
//! for that connection), and drop it with the connection: its pooled
//! upstream connections close with it.
//!
//! ```
//! use realip::outbound::{ProxyVersion, UpstreamHeader};
//! use realip::proxy::{self, Status};
//!
//! let header = UpstreamHeader::new(
//!     ProxyVersion::V2,
//!     "203.0.113.9:5123".parse()?,
//!     "10.0.0.1:443".parse()?,
//! )
//! .authority("example.com")
//! .unique_id(b"req-1".to_vec())
//! .crc32c();
//! let bytes = header.encode()?;
//! let Status::Complete(parsed, n) = proxy::parse(&bytes)? else { unreachable!() };
//! assert_eq!(n, bytes.len());
//! assert_eq!(parsed.source(), Some("203.0.113.9:5123".parse()?));
//! assert_eq!(parsed.authority(), Some(&b"example.com"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::extract::RealIp;
use crate::forwarded::{bits_of, ip_of};
use crate::proxy::{kind, Tlv, UNIQUE_ID_MAX};
use crate::proxy::{v1, v2, Addresses, EncodeError, Transport};

/// The PROXY protocol version to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyVersion {
    /// The text header (`PROXY TCP4 ...`): addresses only, no TLVs.
    V1,
    /// The binary header, with TLVs.
    V2,
}

/// The SSL TLV (`0x20`): how the client reached this hop over TLS.
///
/// `client_ssl` is set by [`SslSummary::new`]; `verify` is 0 (success)
/// unless set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct SslSummary {
    flags: u8,
    verify: u32,
    sub: Vec<(u8, Box<[u8]>)>,
}

/// `PP2_CLIENT_SSL`, `PP2_CLIENT_CERT_CONN`, `PP2_CLIENT_CERT_SESS`.
const CLIENT_SSL: u8 = 0x01;
const CLIENT_CERT_CONN: u8 = 0x02;
const CLIENT_CERT_SESS: u8 = 0x04;

impl SslSummary {
    /// A client connected over TLS (`PP2_CLIENT_SSL`).
    pub fn new() -> Self {
        SslSummary {
            flags: CLIENT_SSL,
            ..Default::default()
        }
    }

    /// The client presented a certificate on this connection
    /// (`PP2_CLIENT_CERT_CONN`).
    pub fn cert_conn(mut self) -> Self {
        self.flags |= CLIENT_CERT_CONN;
        self
    }

    /// The client presented a certificate in this TLS session
    /// (`PP2_CLIENT_CERT_SESS`).
    pub fn cert_sess(mut self) -> Self {
        self.flags |= CLIENT_CERT_SESS;
        self
    }

    /// The verification result (0: the certificate was verified).
    pub fn verify(mut self, result: u32) -> Self {
        self.verify = result;
        self
    }

    fn sub(mut self, kind: u8, value: impl Into<Vec<u8>>) -> Self {
        self.sub.push((kind, value.into().into_boxed_slice()));
        self
    }

    /// The TLS version (`TLSv1.3`).
    pub fn version(self, v: impl Into<Vec<u8>>) -> Self {
        self.sub(kind::SSL_VERSION, v)
    }

    /// The cipher (`TLS_AES_128_GCM_SHA256`).
    pub fn cipher(self, v: impl Into<Vec<u8>>) -> Self {
        self.sub(kind::SSL_CIPHER, v)
    }

    /// The client certificate's Common Name.
    pub fn cn(self, v: impl Into<Vec<u8>>) -> Self {
        self.sub(kind::SSL_CN, v)
    }

    /// The certificate's signature algorithm.
    pub fn sig_alg(self, v: impl Into<Vec<u8>>) -> Self {
        self.sub(kind::SSL_SIG_ALG, v)
    }

    /// The certificate's key algorithm.
    pub fn key_alg(self, v: impl Into<Vec<u8>>) -> Self {
        self.sub(kind::SSL_KEY_ALG, v)
    }
}

/// A header that cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamHeaderError {
    /// TLVs were asked for on a v1 header, which has none.
    V1Tlvs,
    /// A UNIQUE_ID TLV longer than the spec's 128 bytes (the length given).
    UniqueIdTooLong(usize),
    /// The encoder refused the header (a TLV over 65535 bytes, ...).
    Encode(EncodeError),
}

impl fmt::Display for UpstreamHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamHeaderError::V1Tlvs => f.write_str("a PROXY v1 header carries no TLVs"),
            UpstreamHeaderError::UniqueIdTooLong(n) => {
                write!(f, "UNIQUE_ID is {n} bytes, at most {UNIQUE_ID_MAX} allowed")
            }
            UpstreamHeaderError::Encode(e) => write!(f, "PROXY header: {e}"),
        }
    }
}

impl std::error::Error for UpstreamHeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamHeaderError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

/// The PROXY header to send upstream for one downstream connection: the
/// resolved client as source, this hop's destination (the address the
/// client connected to) as destination.
///
/// IPv4-mapped addresses are written as IPv4; a client and destination of
/// different families are both written as IPv6 (the IPv4 one mapped), which
/// every receiver normalizes back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct UpstreamHeader {
    version: ProxyVersion,
    source: SocketAddr,
    destination: SocketAddr,
    alpn: Option<Box<[u8]>>,
    authority: Option<Box<[u8]>>,
    unique_id: Option<Box<[u8]>>,
    ssl: Option<SslSummary>,
    crc32c: bool,
}

/// `ip` with IPv4-mapped IPv6 turned into IPv4.
fn normal(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(ip_of(bits_of(a.ip())), a.port())
}

fn mapped(a: SocketAddr) -> SocketAddrV6 {
    let ip = match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    SocketAddrV6::new(ip, a.port(), 0, 0)
}

impl UpstreamHeader {
    /// A header naming `source` (the client) and `destination` (this hop's
    /// accepting address).
    pub fn new(version: ProxyVersion, source: SocketAddr, destination: SocketAddr) -> Self {
        UpstreamHeader {
            version,
            source: normal(source),
            destination: normal(destination),
            alpn: None,
            authority: None,
            unique_id: None,
            ssl: None,
            crc32c: false,
        }
    }

    /// A header for the client `real` resolved; `destination` is the
    /// address the downstream connection was accepted on. The source port
    /// is the client's when the deciding input carried one, else 0.
    pub fn for_client(version: ProxyVersion, real: &RealIp, destination: SocketAddr) -> Self {
        let source = SocketAddr::new(real.ip(), real.port().unwrap_or(0));
        Self::new(version, source, destination)
    }

    /// Adds an ALPN TLV (`h2`, `http/1.1`); v2 only.
    pub fn alpn(mut self, protocol: impl Into<Vec<u8>>) -> Self {
        self.alpn = Some(protocol.into().into_boxed_slice());
        self
    }

    /// Adds an AUTHORITY TLV (the host name the client asked for); v2 only.
    pub fn authority(mut self, host: impl Into<Vec<u8>>) -> Self {
        self.authority = Some(host.into().into_boxed_slice());
        self
    }

    /// Adds a UNIQUE_ID TLV (at most 128 bytes); v2 only.
    pub fn unique_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.unique_id = Some(id.into().into_boxed_slice());
        self
    }

    /// Adds an SSL TLV; v2 only.
    pub fn ssl(mut self, ssl: SslSummary) -> Self {
        self.ssl = Some(ssl);
        self
    }

    /// Adds a CRC32C TLV over the whole header, computed when encoded; v2
    /// only.
    pub fn crc32c(mut self) -> Self {
        self.crc32c = true;
        self
    }

    /// The version sent.
    pub fn version(&self) -> ProxyVersion {
        self.version
    }

    /// The client the header names.
    pub fn source(&self) -> SocketAddr {
        self.source
    }

    /// The destination the header names.
    pub fn destination(&self) -> SocketAddr {
        self.destination
    }

    fn has_tlvs(&self) -> bool {
        self.alpn.is_some()
            || self.authority.is_some()
            || self.unique_id.is_some()
            || self.ssl.is_some()
            || self.crc32c
    }

    fn addresses(&self) -> Addresses<'static> {
        match (self.source, self.destination) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Addresses::Ipv4 {
                source: SocketAddrV4::new(*s.ip(), s.port()),
                destination: SocketAddrV4::new(*d.ip(), d.port()),
            },
            (s, d) => Addresses::Ipv6 {
                source: mapped(s),
                destination: mapped(d),
            },
        }
    }

    /// Appends the encoded header to `out`; returns its length.
    ///
    /// # Errors
    /// [`UpstreamHeaderError`]: TLVs on v1, an over-long UNIQUE_ID or TLV.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<usize, UpstreamHeaderError> {
        let addresses = self.addresses();
        if self.version == ProxyVersion::V1 {
            if self.has_tlvs() {
                return Err(UpstreamHeaderError::V1Tlvs);
            }
            return v1::write(out, &addresses).map_err(UpstreamHeaderError::Encode);
        }
        let mut b = v2::Builder::proxy(Transport::Stream, addresses);
        if let Some(v) = &self.alpn {
            b = b.tlv(kind::ALPN, v);
        }
        if let Some(v) = &self.authority {
            b = b.tlv(kind::AUTHORITY, v);
        }
        if let Some(v) = &self.unique_id {
            if v.len() > UNIQUE_ID_MAX {
                return Err(UpstreamHeaderError::UniqueIdTooLong(v.len()));
            }
            b = b.tlv(kind::UNIQUE_ID, v);
        }
        if let Some(ssl) = &self.ssl {
            if ssl.sub.iter().any(|(_, v)| v.len() > usize::from(u16::MAX)) {
                return Err(UpstreamHeaderError::Encode(EncodeError::TooLong));
            }
            let sub: Vec<Tlv<'_>> = ssl
                .sub
                .iter()
                .map(|(kind, value)| Tlv { kind: *kind, value })
                .collect();
            b = b.ssl(ssl.flags, ssl.verify, &sub);
        }
        if self.crc32c {
            b = b.crc32c();
        }
        b.write_to(out).map_err(UpstreamHeaderError::Encode)
    }

    /// The encoded header.
    ///
    /// # Errors
    /// As [`encode_into`](Self::encode_into).
    pub fn encode(&self) -> Result<Vec<u8>, UpstreamHeaderError> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Whether `real` is the client this header names (address, and port
    /// or 0 when unknown).
    pub fn names(&self, real: &RealIp) -> bool {
        normal(SocketAddr::new(real.ip(), real.port().unwrap_or(0))) == self.source
    }
}

/// Writes `header` on `io` and flushes it: call it once, on a fresh
/// upstream connection, before any application byte.
///
/// ```no_run
/// use realip::outbound::{write_header, ProxyVersion, UpstreamHeader};
/// use tokio::net::TcpStream;
///
/// # async fn relay(client: TcpStream) -> std::io::Result<()> {
/// let mut client = client;
/// let header = UpstreamHeader::new(
///     ProxyVersion::V1,
///     client.peer_addr()?,
///     client.local_addr()?,
/// );
/// // One upstream connection for this one client.
/// let mut upstream = TcpStream::connect("127.0.0.1:9000").await?;
/// write_header(&mut upstream, &header).await?;
/// tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The write's I/O error, or `InvalidInput` when the header cannot be
/// encoded (see [`UpstreamHeader::encode_into`]).
#[cfg(feature = "tokio")]
pub async fn write_header<W>(io: &mut W, header: &UpstreamHeader) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::AsyncWriteExt;
    let bytes = header
        .encode()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    io.write_all(&bytes).await?;
    io.flush().await
}

#[cfg(feature = "connect")]
mod client;
#[cfg(feature = "connect")]
pub use client::{ProxyConnector, UpstreamClient, UpstreamError, UpstreamFuture};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{self, Status};
    use std::net::Ipv6Addr;

    fn parse(bytes: &[u8]) -> proxy::OwnedHeader {
        match proxy::parse(bytes).unwrap() {
            Status::Complete(h, n) => {
                assert_eq!(n, bytes.len());
                h.to_owned_header()
            }
            Status::Partial(_) => panic!("partial"),
        }
    }

    #[test]
    fn v2_with_every_tlv_parses_back() {
        let h = UpstreamHeader::new(
            ProxyVersion::V2,
            "[2001:db8::9]:5123".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        )
        .alpn("h2")
        .authority("example.com")
        .unique_id(vec![7; UNIQUE_ID_MAX])
        .ssl(
            SslSummary::new()
                .cert_conn()
                .version("TLSv1.3")
                .cipher("TLS_AES_128_GCM_SHA256")
                .cn("c"),
        )
        .crc32c();
        let bytes = h.encode().unwrap();
        let owned = parse(&bytes);
        let p = owned.as_header();
        assert_eq!(p.source(), Some(h.source()));
        assert_eq!(p.destination(), Some(h.destination()));
        assert_eq!(p.alpn(), Some(&b"h2"[..]));
        assert_eq!(p.authority(), Some(&b"example.com"[..]));
        assert_eq!(p.unique_id(), Some(&[7; UNIQUE_ID_MAX][..]));
        assert!(p.crc32c().is_some());
        let ssl = p.ssl().unwrap();
        assert!(ssl.client_ssl() && ssl.verified());
        assert_eq!(ssl.version(), Some(&b"TLSv1.3"[..]));
        assert_eq!(ssl.cn(), Some(&b"c"[..]));
        // A flipped bit anywhere fails the CRC.
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(proxy::parse(&bad).is_err());
    }

    #[test]
    fn v1_is_text_and_refuses_tlvs() {
        let h = UpstreamHeader::new(
            ProxyVersion::V1,
            "192.0.2.7:56324".parse().unwrap(),
            "198.51.100.1:443".parse().unwrap(),
        );
        assert_eq!(
            h.encode().unwrap(),
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
        );
        assert_eq!(h.crc32c().encode(), Err(UpstreamHeaderError::V1Tlvs));
    }

    #[test]
    fn mixed_families_are_written_as_ipv6_and_read_back_as_given() {
        let h = UpstreamHeader::new(
            ProxyVersion::V1,
            "192.0.2.7:1".parse().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        );
        let owned = parse(&h.encode().unwrap());
        let source = owned.source().unwrap();
        assert!(source.is_ipv6(), "{source}");
        assert_eq!(normal(source), "192.0.2.7:1".parse().unwrap());
        let mapped: SocketAddr = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207)),
            1,
        );
        assert_eq!(
            UpstreamHeader::new(ProxyVersion::V2, mapped, mapped).source(),
            "192.0.2.7:1".parse().unwrap()
        );
    }

    #[test]
    fn unique_id_over_128_is_refused() {
        let h = UpstreamHeader::new(
            ProxyVersion::V2,
            "192.0.2.7:1".parse().unwrap(),
            "192.0.2.8:2".parse().unwrap(),
        )
        .unique_id(vec![1; UNIQUE_ID_MAX + 1]);
        assert_eq!(
            h.encode(),
            Err(UpstreamHeaderError::UniqueIdTooLong(UNIQUE_ID_MAX + 1))
        );
    }
}
