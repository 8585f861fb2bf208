//! [`UpstreamClient`]: an HTTP client with a PROXY header on every
//! upstream connection, for one downstream client.

use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::header::{HeaderValue, HOST};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::client::legacy::{Builder, Client, ResponseFuture};
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
    /// The request cannot be sent as it is (a URI without scheme and
    /// authority, an HTTP/2-only request on HTTP/1.1). Nothing was sent.
    InvalidRequest(&'static str),
    /// [`UpstreamClient::new`]'s connection could not be opened: the
    /// connector failed, or the PROXY header could not be written.
    Connect(BoxError),
    /// [`UpstreamClient::new`]'s HTTP/1.1 exchange failed (handshake,
    /// request, response).
    Http(hyper::Error),
    /// hyper-util's client failed (connect, header write, protocol): the
    /// client of [`UpstreamClient::with_builder`].
    Upstream(hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// Whether the upstream could not be reached (connect or header write
    /// failed): a proxy answers 502 then.
    pub fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Connect(_) => true,
            UpstreamError::Upstream(e) => e.is_connect(),
            _ => false,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::OtherClient { bound, request } => write!(
                f,
                "request of client {request:?} refused on the upstream connection of {bound}"
            ),
            UpstreamError::InvalidRequest(why) => write!(f, "upstream request: {why}"),
            UpstreamError::Connect(e) => write!(f, "upstream connect: {e}"),
            UpstreamError::Http(e) => write!(f, "upstream: {e}"),
            UpstreamError::Upstream(e) => write!(f, "upstream: {e}"),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(&**e),
            UpstreamError::Http(e) => Some(e),
            UpstreamError::Upstream(e) => Some(e),
            UpstreamError::OtherClient { .. } | UpstreamError::InvalidRequest(_) => None,
        }
    }
}

/// An HTTP client for one downstream client: every upstream connection it
/// opens starts with that client's PROXY header.
///
/// Not `Clone`, and it refuses requests of any other client; make one per
/// downstream connection (see the
/// [module docs](super#one-downstream-connection-one-client)).
///
/// [`new`](Self::new) keeps its own HTTP/1.1 connections: a request goes
/// on one of them that is idle, or on a new one, and the connections close
/// when the client and its last response are dropped. There is no shared
/// pool to look the connection up in: this client's connections serve only
/// this client, so a list of them is all the bookkeeping needed.
/// [`with_builder`](Self::with_builder) uses hyper-util's pooled client
/// instead, private to this `UpstreamClient`, for its settings (HTTP/2,
/// idle timeouts, ...).
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
    sender: Sender<C, B>,
    header: UpstreamHeader,
}

enum Sender<C, B> {
    Own(Arc<Own<C, B>>),
    Pooled(Box<Client<ProxyConnector<C>, B>>),
}

/// [`UpstreamClient::new`]'s connections.
struct Own<C, B> {
    connector: ProxyConnector<C>,
    /// Every open connection, idle or busy with a response; closed ones
    /// are dropped when a request looks for an idle one.
    conns: Mutex<Vec<OwnConn<B>>>,
}

struct OwnConn<B> {
    scheme: Scheme,
    authority: Authority,
    sender: http1::SendRequest<B>,
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
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// A client on `connector` (e.g. `HttpConnector`) sending `header` first
    /// on each connection it opens, speaking HTTP/1.1 on tokio.
    ///
    /// # Errors
    /// The header cannot be encoded ([`UpstreamHeader::encode`]).
    pub fn new(connector: C, header: &UpstreamHeader) -> Result<Self, UpstreamHeaderError> {
        Ok(UpstreamClient {
            sender: Sender::Own(Arc::new(Own {
                connector: ProxyConnector::for_header(connector, header)?,
                conns: Mutex::new(Vec::new()),
            })),
            header: header.clone(),
        })
    }

    /// A client on hyper-util's pooled client with `builder`'s settings
    /// (pool idle timeout, HTTP/2, ...), the pool private to this client.
    ///
    /// # Errors
    /// The header cannot be encoded ([`UpstreamHeader::encode`]).
    pub fn with_builder(
        builder: &Builder,
        connector: C,
        header: &UpstreamHeader,
    ) -> Result<Self, UpstreamHeaderError> {
        let connector = ProxyConnector::for_header(connector, header)?;
        Ok(UpstreamClient {
            sender: Sender::Pooled(Box::new(builder.build(connector))),
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
        let state = match real {
            Some(r) if self.header.names(r) => match &self.sender {
                Sender::Own(own) => State::Own(Box::pin(Own::send(own.clone(), req))),
                Sender::Pooled(client) => State::Pooled(client.request(req)),
            },
            _ => State::Refused(Some(UpstreamError::OtherClient {
                bound: self.header.source(),
                request: real.map(|r| SocketAddr::new(r.ip(), r.port().unwrap_or(0))),
            })),
        };
        UpstreamFuture { state }
    }
}

impl<C> ProxyConnector<C> {
    fn for_header(inner: C, header: &UpstreamHeader) -> Result<Self, UpstreamHeaderError> {
        Ok(ProxyConnector {
            inner,
            header: header.encode()?.into(),
        })
    }
}

/// The request as HTTP/1.1 sends it to an origin: `Host` from the URI when
/// missing, the target in origin form (authority form for `CONNECT`), as
/// hyper-util's client does.
fn origin_request<B>(
    req: &mut Request<B>,
    scheme: &Scheme,
    authority: &Authority,
) -> Result<(), UpstreamError> {
    if req.version() == Version::HTTP_2 {
        return Err(UpstreamError::InvalidRequest(
            "an HTTP/2 request on an HTTP/1.1 connection",
        ));
    }
    if !req.headers().contains_key(HOST) {
        let default = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        // No user info, and no port when it is the scheme's default.
        let host = match authority.port_u16() {
            Some(port) if Some(port) != default => {
                HeaderValue::try_from(format!("{}:{port}", authority.host()))
            }
            _ => HeaderValue::from_str(authority.host()),
        }
        .map_err(|_| UpstreamError::InvalidRequest("the authority is not a Host value"))?;
        req.headers_mut().insert(HOST, host);
    }
    let target = if req.method() == Method::CONNECT {
        Uri::from(authority.clone())
    } else {
        match req.uri().path_and_query() {
            Some(p) if p.as_str() != "/" => Uri::from(p.clone()),
            _ => Uri::default(),
        }
    };
    *req.uri_mut() = target;
    Ok(())
}

impl<C, B> Own<C, B>
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    async fn send(
        self: Arc<Self>,
        mut req: Request<B>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri = req.uri().clone();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(UpstreamError::InvalidRequest("the URI is not absolute"));
        };
        origin_request(&mut req, scheme, authority)?;
        let (mut sender, mut reused) = match self.idle(scheme, authority) {
            Some(s) => (s, true),
            None => (self.open(&uri).await?, false),
        };
        loop {
            match sender.try_send_request(req).await {
                Ok(res) => {
                    // Busy until the response body is read; listed now so
                    // that it is found idle as soon as it is.
                    self.list().push(OwnConn {
                        scheme: scheme.clone(),
                        authority: authority.clone(),
                        sender,
                    });
                    return Ok(res);
                }
                Err(mut e) => match e.take_message() {
                    // An idle connection closed before the request went out
                    // (the upstream's keep-alive ended): once more on a new
                    // one, as hyper-util's client retries.
                    Some(unsent) if reused => {
                        req = unsent;
                        sender = self.open(&uri).await?;
                        reused = false;
                    }
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<OwnConn<B>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes an idle connection to `scheme://authority`, dropping closed
    /// ones on the way.
    fn idle(&self, scheme: &Scheme, authority: &Authority) -> Option<http1::SendRequest<B>> {
        let mut conns = self.list();
        let mut i = conns.len();
        while i > 0 {
            i -= 1;
            let c = &conns[i];
            if c.sender.is_closed() {
                conns.swap_remove(i);
            } else if c.sender.is_ready()
                && c.authority.as_str() == authority.as_str()
                && c.scheme == *scheme
            {
                return Some(conns.swap_remove(i).sender);
            }
        }
        None
    }

    /// A new connection: the connector's, the PROXY header written first.
    async fn open(&self, uri: &Uri) -> Result<http1::SendRequest<B>, UpstreamError> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(UpstreamError::Connect)?;
        let io = connector
            .call(uri.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        if io.connected().is_negotiated_h2() {
            return Err(UpstreamError::Connect(
                "the connector negotiated HTTP/2; UpstreamClient::new speaks HTTP/1.1 \
                 (UpstreamClient::with_builder speaks both)"
                    .into(),
            ));
        }
        let (sender, conn) = http1::handshake(io).await.map_err(UpstreamError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection: {e}");
            }
        });
        Ok(sender)
    }
}

impl<C, B> Service<Request<B>> for UpstreamClient<C, B>
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
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

type OwnFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, UpstreamError>> + Send>>;

/// The response of [`UpstreamClient::request`].
#[must_use = "futures do nothing unless polled"]
pub struct UpstreamFuture {
    state: State,
}

enum State {
    Own(OwnFuture),
    Pooled(ResponseFuture),
    Refused(Option<UpstreamError>),
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
            State::Own(f) => f.as_mut().poll(cx),
            State::Pooled(f) => Pin::new(f).poll(cx).map_err(UpstreamError::Upstream),
            State::Refused(e) => match e.take() {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(method: Method, uri: &str, host: Option<&'static str>) -> Request<()> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(h) = host {
            req = req.header(HOST, h);
        }
        let mut req = req.body(()).unwrap();
        let uri = req.uri().clone();
        origin_request(&mut req, uri.scheme().unwrap(), uri.authority().unwrap()).unwrap();
        req
    }

    #[test]
    fn origin_form_and_host_from_the_uri() {
        for (uri, target, host) in [
            ("http://example.com:80/a?b=1", "/a?b=1", "example.com"),
            ("http://example.com/", "/", "example.com"),
            ("http://u:p@example.com:8080", "/", "example.com:8080"),
            ("https://[2001:db8::1]:443/x", "/x", "[2001:db8::1]"),
            ("https://[2001:db8::1]:8443/x", "/x", "[2001:db8::1]:8443"),
        ] {
            let req = sent(Method::GET, uri, None);
            assert_eq!(req.uri(), target, "{uri}");
            assert_eq!(req.headers()[HOST], host, "{uri}");
        }
        // A Host the request has is kept as it is.
        let req = sent(Method::GET, "http://127.0.0.1:9000/", Some("example.com"));
        assert_eq!(req.headers()[HOST], "example.com");
        // CONNECT names its authority.
        let req = sent(Method::CONNECT, "http://example.com:443", None);
        assert_eq!(req.uri(), "example.com:443");
    }

    #[test]
    fn an_http2_request_is_refused() {
        let mut req = Request::get("http://example.com/")
            .version(Version::HTTP_2)
            .body(())
            .unwrap();
        let uri = req.uri().clone();
        let err = origin_request(&mut req, uri.scheme().unwrap(), uri.authority().unwrap());
        assert!(matches!(err, Err(UpstreamError::InvalidRequest(_))));
    }
}
