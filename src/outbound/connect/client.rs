//! [`UpstreamClient`]: hyper-util's client with a PROXY header on every
//! upstream connection, for one downstream client.

use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::{Builder, Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::{UpstreamHeader, UpstreamHeaderError};
use crate::extract::RealIp;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A hyper-util connector that writes one PROXY header on each connection
/// `C` opens, before hyper writes anything.
///
/// Only made inside an [`UpstreamClient`], for that client's header: see
/// [the module docs](super#one-downstream-connection-one-client) for why
/// there is no public constructor.
#[derive(Clone)]
pub struct ProxyConnector<C> {
    inner: C,
    header: Arc<[u8]>,
}

impl<C: fmt::Debug> fmt::Debug for ProxyConnector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConnector")
            .field("inner", &self.inner)
            .field("header_len", &self.header.len())
            .finish()
    }
}

impl<C> Service<Uri> for ProxyConnector<C>
where
    C: Service<Uri>,
    C::Response: hyper::rt::Write + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let header = self.header.clone();
        Box::pin(async move {
            let mut io = connecting.await.map_err(Into::into)?;
            write_all(&mut io, &header).await?;
            Ok(io)
        })
    }
}

/// `write_all` + `flush` over hyper's I/O traits.
async fn write_all<T: hyper::rt::Write + Unpin>(io: &mut T, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

/// Why an [`UpstreamClient`] request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The request carries no [`RealIp`], or one naming another client than
    /// the header: sending it would attribute it to the wrong client.
    /// Nothing was sent.
    OtherClient {
        /// The client the header names.
        bound: SocketAddr,
        /// The request's client (address, port or 0), if it had one.
        request: Option<SocketAddr>,
    },
    /// hyper-util's client failed (connect, header write, protocol).
    Upstream(hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// Whether the upstream could not be reached (connect or header write
    /// failed): a proxy answers 502 then.
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Upstream(e) if e.is_connect())
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::OtherClient { bound, request } => write!(
                f,
                "request of client {request:?} refused on the upstream connection of {bound}"
            ),
            UpstreamError::Upstream(e) => write!(f, "upstream: {e}"),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            UpstreamError::Upstream(e) => Some(e),
            UpstreamError::OtherClient { .. } => None,
        }
    }
}

/// hyper-util's pooled client for one downstream client: every upstream
/// connection it opens starts with that client's PROXY header.
///
/// Not `Clone`, and it refuses requests of any other client; make one per
/// downstream connection (see the
/// [module docs](super#one-downstream-connection-one-client)).
///
/// ```no_run
/// use realip::outbound::{ProxyVersion, UpstreamClient, UpstreamHeader};
/// use realip::RealIp;
/// use http_body_util::Empty;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::connect::HttpConnector;
///
/// # async fn per_connection(real: RealIp, local: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
/// // In the service made for one accepted connection:
/// let header = UpstreamHeader::for_client(ProxyVersion::V2, &real, local).crc32c();
/// let upstream: UpstreamClient<HttpConnector, Empty<Bytes>> =
///     UpstreamClient::new(HttpConnector::new(), &header)?;
/// let mut req = http::Request::get("http://127.0.0.1:9000/").body(Empty::new())?;
/// req.extensions_mut().insert(real); // the incoming request's RealIp
/// let res = upstream.request(req).await?;
/// # let _ = res;
/// # Ok(())
/// # }
/// ```
pub struct UpstreamClient<C, B> {
    client: Client<ProxyConnector<C>, B>,
    header: UpstreamHeader,
}

impl<C, B> fmt::Debug for UpstreamClient<C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<C, B> UpstreamClient<C, B>
where
    ProxyConnector<C>: Connect + Clone + Send + Sync + 'static,
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// A client on `connector` (e.g. `HttpConnector`) sending `header` first
    /// on each connection, with hyper-util's default settings on tokio.
    ///
    /// # Errors
    /// The header cannot be encoded ([`UpstreamHeader::encode`]).
    pub fn new(connector: C, header: &UpstreamHeader) -> Result<Self, UpstreamHeaderError> {
        Self::with_builder(&Client::builder(TokioExecutor::new()), connector, header)
    }

    /// [`new`](Self::new) with hyper-util client settings (pool idle
    /// timeout, HTTP/2, ...).
    ///
    /// # Errors
    /// The header cannot be encoded ([`UpstreamHeader::encode`]).
    pub fn with_builder(
        builder: &Builder,
        connector: C,
        header: &UpstreamHeader,
    ) -> Result<Self, UpstreamHeaderError> {
        let bytes = header.encode()?;
        let connector = ProxyConnector {
            inner: connector,
            header: bytes.into(),
        };
        Ok(UpstreamClient {
            client: builder.build(connector),
            header: header.clone(),
        })
    }

    /// The header every upstream connection starts with.
    pub fn header(&self) -> &UpstreamHeader {
        &self.header
    }

    /// Sends `req` (absolute URI), which must carry the [`RealIp`] of the
    /// client the header names.
    pub fn request(&self, req: Request<B>) -> UpstreamFuture {
        let real = RealIp::from_extensions(req.extensions());
        match real {
            Some(r) if self.header.names(r) => UpstreamFuture {
                state: Ok(self.client.request(req)),
            },
            _ => UpstreamFuture {
                state: Err(Some(UpstreamError::OtherClient {
                    bound: self.header.source(),
                    request: real.map(|r| SocketAddr::new(r.ip(), r.port().unwrap_or(0))),
                })),
            },
        }
    }
}

impl<C, B> Service<Request<B>> for UpstreamClient<C, B>
where
    ProxyConnector<C>: Connect + Clone + Send + Sync + 'static,
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Incoming>;
    type Error = UpstreamError;
    type Future = UpstreamFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.request(req)
    }
}

/// The response of [`UpstreamClient::request`].
#[must_use = "futures do nothing unless polled"]
pub struct UpstreamFuture {
    state: Result<ResponseFuture, Option<UpstreamError>>,
}

impl fmt::Debug for UpstreamFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamFuture").finish_non_exhaustive()
    }
}

impl Future for UpstreamFuture {
    type Output = Result<Response<Incoming>, UpstreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            Ok(f) => Pin::new(f).poll(cx).map_err(UpstreamError::Upstream),
            Err(e) => match e.take() {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}
