//! gRPC servers built with [tonic](https://docs.rs/tonic): the PROXY
//! listener as tonic's incoming stream, and the client in service methods.
//!
//! - [`incoming`] turns a [`ProxyProtocolListener`] into the stream
//!   `Server::serve_with_incoming` takes. Each connection is an
//!   [`Accepted`], whose tonic [`Connected`] info is its [`ProxiedAddr`]:
//!   tonic stores it in every request's extensions.
//! - [`RealIpLayer`](crate::RealIpLayer) in the server's stack
//!   (`Server::builder().layer(..)`) reads that `ProxiedAddr` (or tonic's
//!   own [`TcpConnectInfo`] on a plain TCP listener), resolves the client
//!   and stores [`RealIp`]; it also sets tonic's `TcpConnectInfo`, so that
//!   `request.remote_addr()` names the resolved client (port 0 when the
//!   forwarded header gave none).
//!
//! In a service method, the client is
//! `RealIp::from_extensions(request.extensions())` and the connection is
//! `request.extensions().get::<ProxiedAddr>()`:
//!
//! ```no_run
//! use realip::{io::ProxyProtocolListener, RealIpLayer};
//!
//! # async fn run<S>(service: S) -> Result<(), Box<dyn std::error::Error>>
//! # where
//! #     S: tower_service::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
//! #         + tonic::server::NamedService + Clone + Send + Sync + 'static,
//! #     S::Response: axum::response::IntoResponse,
//! #     S::Future: Send + 'static,
//! # {
//! // Only the balancer's subnet can send PROXY, and it must; anyone else
//! // sending a header is cut off.
//! let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:50051").await?)
//!     .require_from(["10.0.0.0/16".parse()?]);
//! tonic::transport::Server::builder()
//!     .layer(RealIpLayer::new())
//!     .add_service(service)
//!     .serve_with_incoming(realip::grpc::incoming(listener))
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! A server that reads headers itself with [`ProxyAcceptor`](crate::io::ProxyAcceptor)
//! can hand tonic the [`ProxiedStream`]s directly: they are [`Connected`]
//! too, with the same info.

use std::convert::Infallible;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use http::Extensions;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
pub use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::extract::RealIp;
use crate::io::{Handshake, Incoming, ProxiedAddr, ProxiedStream, ProxyProtocolListener};

/// The connections `listener` accepts, as the stream tonic's
/// `serve_with_incoming` takes.
///
/// The stream never ends and never yields an error: like
/// [`ProxyProtocolListener::accept`], it retries accept errors and closes
/// (and logs) a connection whose header fails, so one bad client never
/// stops the server. Handshakes still run concurrently, each under its own
/// deadline.
pub fn incoming<L, H>(
    listener: ProxyProtocolListener<L, H>,
) -> impl Stream<Item = Result<Accepted<H::Io>, Infallible>> + Send + 'static
where
    L: Incoming,
    H: Handshake<L::Io>,
{
    futures_util::stream::unfold(listener, |mut listener| async move {
        let (io, addr) = listener.accept().await;
        Some((Ok(Accepted { io, addr }), listener))
    })
}

pin_project! {
    /// A connection from [`incoming`]: the stream (after the PROXY header
    /// and any [`with_handshake`](ProxyProtocolListener::with_handshake)
    /// step) with its addresses. Reads and writes go to the stream; tonic
    /// gets the [`ProxiedAddr`] as the connection's info.
    #[derive(Debug)]
    pub struct Accepted<IO> {
        #[pin]
        io: IO,
        addr: ProxiedAddr,
    }
}

impl<IO> Accepted<IO> {
    /// The connection's addresses and PROXY header.
    pub fn addr(&self) -> &ProxiedAddr {
        &self.addr
    }

    /// The stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The stream and its addresses.
    pub fn into_inner(self) -> (IO, ProxiedAddr) {
        (self.io, self.addr)
    }
}

impl<IO> Connected for Accepted<IO> {
    type ConnectInfo = ProxiedAddr;

    fn connect_info(&self) -> ProxiedAddr {
        self.addr.clone()
    }
}

/// A stream [`ProxyAcceptor`](crate::io::ProxyAcceptor) returned: the
/// socket's addresses (from the inner stream's tonic info, e.g. a
/// `TcpStream`'s) with the accepted header. An address the socket cannot
/// report (it is already closed) reads as `0.0.0.0:0`.
impl<IO> Connected for ProxiedStream<IO>
where
    IO: Connected<ConnectInfo = TcpConnectInfo>,
{
    type ConnectInfo = ProxiedAddr;

    fn connect_info(&self) -> ProxiedAddr {
        let info = self.get_ref().connect_info();
        let none = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        ProxiedAddr::new(
            info.remote_addr.unwrap_or(none),
            info.local_addr.unwrap_or(none),
            self.proxy_header_arc().cloned(),
        )
    }
}

impl<IO: AsyncRead> AsyncRead for Accepted<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite> AsyncWrite for Accepted<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

/// The peer tonic recorded for a plain TCP connection, for
/// [`RealIpLayer`](crate::RealIpLayer). Read after an outer layer's
/// [`RealIp`], because [`set_remote_addr`] overwrites it.
pub(crate) fn tonic_peer(ext: &Extensions) -> Option<SocketAddr> {
    ext.get::<TcpConnectInfo>().and_then(|i| i.remote_addr)
}

/// Makes `request.remote_addr()` name the resolved client: tonic reads it
/// from its `TcpConnectInfo` and nothing else. Only where tonic put the
/// connection info (its `TcpConnectInfo`, or the `ProxiedAddr` of an
/// [`Accepted`]): axum requests carry `ConnectInfo` instead and are left
/// as they are, without an allocation more. The local address is kept (or
/// taken from the connection when tonic recorded none).
pub(crate) fn set_remote_addr(ext: &mut Extensions, real: &RealIp) {
    let local = match (ext.get::<TcpConnectInfo>(), ext.get::<ProxiedAddr>()) {
        (Some(tonic), _) => tonic.local_addr,
        (None, Some(conn)) => Some(conn.local()),
        (None, None) => return,
    };
    let client = SocketAddr::new(real.ip(), real.port().unwrap_or(0));
    ext.insert(TcpConnectInfo {
        local_addr: local,
        remote_addr: Some(client),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::OwnedHeader;
    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn incoming_yields_the_accepted_connection_with_its_header() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = tcp.local_addr().unwrap();
        let mut conns = Box::pin(incoming(ProxyProtocolListener::new(tcp)));

        // A bad client first: its malformed header closes it, the stream
        // goes on to the next one.
        let mut bad = TcpStream::connect(at).await.unwrap();
        bad.write_all(b"PROXY TCP4 nonsense\r\n").await.unwrap();
        let mut good = TcpStream::connect(at).await.unwrap();
        good.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\r\nhi")
            .await
            .unwrap();

        let Ok(mut conn) = conns.next().await.expect("the stream never ends");
        let info = conn.connect_info();
        assert_eq!(info.proxy_source(), Some(sa("203.0.113.7:4242")));
        assert_eq!(info.peer(), good.local_addr().unwrap());
        let mut got = [0u8; 2];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");
        let mut eof = [0u8; 1];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), bad.read(&mut eof));
        assert!(
            matches!(closed.await, Ok(Ok(0) | Err(_))),
            "the bad client's connection was not closed"
        );
    }

    #[tokio::test]
    async fn proxied_tcp_stream_reports_socket_addresses_and_header() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
        client
            .write_all(b"PROXY TCP4 198.51.100.9 10.0.0.1 5555 443\r\n")
            .await
            .unwrap();
        let (sock, peer) = tcp.accept().await.unwrap();
        let stream = crate::io::ProxyAcceptor::new()
            .accept(sock, peer)
            .await
            .unwrap();
        let info = stream.connect_info();
        assert_eq!(info.peer(), client.local_addr().unwrap());
        assert_eq!(info.local(), client.peer_addr().unwrap());
        assert_eq!(info.proxy_source(), Some(sa("198.51.100.9:5555")));
    }

    #[test]
    fn remote_addr_is_the_client_and_local_is_kept() {
        let policy = crate::Policy::new();
        let bytes = b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\r\n";
        let Ok(crate::proxy::Status::Complete(header, _)) = crate::proxy::parse(bytes) else {
            panic!("test header does not parse");
        };
        let header = std::sync::Arc::new(OwnedHeader::from(header));
        let peer = sa("10.0.0.2:1000");
        let resolution = policy.resolve(peer, header.source(), &http::HeaderMap::new());
        let real = RealIp::new(resolution, peer, Some(header));

        let mut ext = Extensions::new();
        ext.insert(ProxiedAddr::new(peer, sa("10.0.0.3:50051"), None));
        set_remote_addr(&mut ext, &real);
        let info = ext.get::<TcpConnectInfo>().unwrap();
        assert_eq!(info.remote_addr, Some(sa("203.0.113.7:4242")));
        assert_eq!(info.local_addr, Some(sa("10.0.0.3:50051")));
        assert_eq!(tonic_peer(&ext), Some(sa("203.0.113.7:4242")));

        // Not a tonic request (axum's ConnectInfo, a per-connection
        // service): nothing is added.
        let mut ext = Extensions::new();
        set_remote_addr(&mut ext, &real);
        assert!(ext.get::<TcpConnectInfo>().is_none());
    }
}
