//! [`ProxiedAddr`]: what is known about a connection once its PROXY
//! handshake is over.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::proxy::OwnedHeader;

/// The addresses of one accepted connection: the socket peer, this end,
/// and the PROXY header accepted from the peer, if any.
///
/// This is the `Addr` of [`ProxyProtocolListener`](super::ProxyProtocolListener)
/// and, with the `axum` feature, the `ConnectInfo` type to ask axum for
/// (`into_make_service_with_connect_info::<ProxiedAddr>()`). It is complete
/// when the application first sees the connection. Cloning is cheap: the
/// header is shared.
///
/// Which address is *the client* is decided by [`crate::resolve`], which
/// takes [`peer`](Self::peer) and [`proxy_source`](Self::proxy_source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedAddr {
    peer: SocketAddr,
    local: SocketAddr,
    header: Option<Arc<OwnedHeader>>,
}

impl ProxiedAddr {
    /// Put together the addresses of a connection (useful for tests and
    /// for servers that read the header with [`ProxyAcceptor`](super::ProxyAcceptor)).
    pub fn new(peer: SocketAddr, local: SocketAddr, header: Option<Arc<OwnedHeader>>) -> Self {
        Self {
            peer,
            local,
            header,
        }
    }

    /// The socket peer: the host that opened the TCP connection (the load
    /// balancer, when there is one).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// This end of the connection, as the socket reports it.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The accepted PROXY header; `None` when the peer's mode did not read
    /// one, or dropped it.
    pub fn header(&self) -> Option<&OwnedHeader> {
        self.header.as_deref()
    }

    /// The shared header itself, to keep it without copying.
    pub fn header_arc(&self) -> Option<&Arc<OwnedHeader>> {
        self.header.as_ref()
    }

    /// The source address the header gives: `None` without a header and
    /// for LOCAL, `UNKNOWN`, AF_UNSPEC and AF_UNIX headers. This is the
    /// `proxy_source` [`crate::resolve`] takes.
    pub fn proxy_source(&self) -> Option<SocketAddr> {
        self.header.as_ref().and_then(|h| h.source())
    }
}

#[cfg(feature = "axum")]
impl<L, H>
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, super::ProxyProtocolListener<L, H>>,
    > for ProxiedAddr
where
    L: super::Incoming,
    H: super::Handshake<L::Io>,
{
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, super::ProxyProtocolListener<L, H>>,
    ) -> Self {
        stream.remote_addr().clone()
    }
}
