//! [`ProxyProtocolListener`]: accepts connections and runs their PROXY
//! handshakes concurrently, so no client can hold up another.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use super::acceptor::ProxyAcceptor;
use super::addr::ProxiedAddr;
use super::policy::{Mode, SourcePolicy};
use super::stream::ProxiedStream;

/// Error type a [`Handshake`] may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default cap on handshakes in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2048;

/// Where a [`ProxyProtocolListener`] gets its connections from: a socket
/// listener whose peers have IP addresses.
///
/// Implemented for tokio's [`TcpListener`] and, with the `axum` feature,
/// for `axum::serve::TapIo<TcpListener, F>` (what `ListenerExt::tap_io`
/// returns, e.g. to set `TCP_NODELAY`); any other axum listener with
/// `SocketAddr` peers fits through [`FromAxum`]. Or implement it.
pub trait Incoming: Send + 'static {
    /// The accepted stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Accept the next connection and its peer's address. Errors are
    /// handled by the caller (per-connection errors are skipped, others
    /// back off), so return them as they come.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;

    /// The address this listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// This end's address of one accepted connection. Only asked when the
    /// listener is bound to an unspecified address (`0.0.0.0`, `::`);
    /// defaults to [`local_addr`](Self::local_addr).
    fn connection_local_addr(&self, io: &Self::Io) -> io::Result<SocketAddr> {
        let _ = io;
        self.local_addr()
    }
}

impl Incoming for TcpListener {
    type Io = TcpStream;

    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    fn connection_local_addr(&self, io: &TcpStream) -> io::Result<SocketAddr> {
        io.local_addr()
    }
}

#[cfg(feature = "axum")]
impl<F> Incoming for axum::serve::TapIo<TcpListener, F>
where
    F: FnMut(&mut TcpStream) + Send + 'static,
{
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        // axum's own accept retries errors itself.
        Ok(axum::serve::Listener::accept(self).await)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        axum::serve::Listener::local_addr(self)
    }

    fn connection_local_addr(&self, io: &TcpStream) -> io::Result<SocketAddr> {
        io.local_addr()
    }
}

/// Any `axum::serve::Listener` with `SocketAddr` peers, as an [`Incoming`].
///
/// axum's listeners handle their own accept errors (they sleep 1 s on
/// errors such as `EMFILE`), so through this adapter the listener never
/// sees one. The local address of each connection is the bound address.
#[cfg(feature = "axum")]
#[derive(Debug)]
pub struct FromAxum<L>(pub L);

#[cfg(feature = "axum")]
impl<L> Incoming for FromAxum<L>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    type Io = L::Io;

    async fn accept(&mut self) -> io::Result<(L::Io, SocketAddr)> {
        Ok(self.0.accept().await)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A step run on each connection after its PROXY header, inside the same
/// concurrent, deadline-bounded handshake (typically a TLS handshake).
///
/// Set with [`ProxyProtocolListener::with_handshake`]; the default,
/// [`NoHandshake`], hands the [`ProxiedStream`] over as it is.
pub trait Handshake<IO>: Send + Sync + 'static {
    /// The stream handed to the application.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The handshake's future.
    type Future: Future<Output = Result<Self::Io, BoxError>> + Send + 'static;

    /// Run the handshake on a connection whose header has been read.
    fn handshake(&self, stream: ProxiedStream<IO>, addr: ProxiedAddr) -> Self::Future;
}

/// No further handshake: the application gets the [`ProxiedStream`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHandshake;

impl<IO> Handshake<IO> for NoHandshake
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = ProxiedStream<IO>;
    type Future = Ready<Result<ProxiedStream<IO>, BoxError>>;

    fn handshake(&self, stream: ProxiedStream<IO>, _: ProxiedAddr) -> Self::Future {
        ready(Ok(stream))
    }
}

/// A closure used as a [`Handshake`]; see
/// [`ProxyProtocolListener::with_handshake`].
#[derive(Clone, Copy)]
pub struct HandshakeFn<F>(F);

impl<F> fmt::Debug for HandshakeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeFn(..)")
    }
}

impl<IO, F, Fut, T, E> Handshake<IO> for HandshakeFn<F>
where
    F: Fn(ProxiedStream<IO>, ProxiedAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Into<BoxError>,
{
    type Io = T;
    type Future = HandshakeFuture<Fut>;

    fn handshake(&self, stream: ProxiedStream<IO>, addr: ProxiedAddr) -> Self::Future {
        HandshakeFuture {
            inner: (self.0)(stream, addr),
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of a [`HandshakeFn`]: the closure's future with its error boxed.
    pub struct HandshakeFuture<Fut> {
        #[pin]
        inner: Fut,
    }
}

impl<Fut> fmt::Debug for HandshakeFuture<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeFuture(..)")
    }
}

impl<Fut, T, E> Future for HandshakeFuture<Fut>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().inner.poll(cx).map_err(Into::into)
    }
}

type Finished<T> = Option<(T, ProxiedAddr)>;

/// A listener that reads the PROXY protocol header of each connection
/// before handing it over, without ever letting one client delay another.
///
/// `axum::serve` awaits `accept` one call at a time, so a listener that read
/// the header inside `accept` would let one silent client stall the whole
/// server. This one accepts from the inner listener while earlier
/// handshakes are still running: each runs in its own task under its own
/// deadline (at most [`max_in_flight`](Self::max_in_flight) at once), and
/// `accept` returns the first connection whose handshake is over. Failed
/// handshakes are closed and reported as `tracing` events (target
/// `realip::io`) with the peer, the reason and the time spent: protocol
/// violations (missing, rejected, malformed, oversized header; failed TLS)
/// at `WARN`, clients that time out, close or reset at `DEBUG`. Dropping
/// the listener aborts the handshakes still running.
///
/// ```no_run
/// use axum::{extract::ConnectInfo, routing::get, Router};
/// use realip::io::{ProxiedAddr, ProxyProtocolListener};
/// use tokio::net::TcpListener;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new().route(
///     "/",
///     get(|ConnectInfo(addr): ConnectInfo<ProxiedAddr>| async move {
///         format!("{:?}", addr.proxy_source().unwrap_or(addr.peer()))
///     }),
/// );
/// let listener = ProxyProtocolListener::new(TcpListener::bind("0.0.0.0:8080").await?)
///     .require_from(["10.0.0.0/8".parse()?])
///     .otherwise(realip::io::Mode::Reject);
/// axum::serve(listener, app.into_make_service_with_connect_info::<ProxiedAddr>()).await?;
/// # Ok(())
/// # }
/// ```
pub struct ProxyProtocolListener<L, H = NoHandshake>
where
    L: Incoming,
    H: Handshake<L::Io>,
{
    inner: L,
    bound: Option<SocketAddr>,
    acceptor: ProxyAcceptor,
    hook: Arc<H>,
    max_in_flight: usize,
    tasks: JoinSet<Finished<H::Io>>,
    backoff: Option<std::pin::Pin<Box<Sleep>>>,
    backoff_step: Duration,
}

impl<L, H> fmt::Debug for ProxyProtocolListener<L, H>
where
    L: Incoming + fmt::Debug,
    H: Handshake<L::Io> + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyProtocolListener")
            .field("inner", &self.inner)
            .field("acceptor", &self.acceptor)
            .field("handshake", &self.hook)
            .field("max_in_flight", &self.max_in_flight)
            .field("in_flight", &self.tasks.len())
            .finish()
    }
}

impl<L: Incoming> ProxyProtocolListener<L> {
    /// Wrap `inner`: header required from every peer, 5 s deadline, 4096-byte
    /// cap, [`DEFAULT_MAX_IN_FLIGHT`] handshakes at once.
    pub fn new(inner: L) -> Self {
        Self::from_parts(inner, ProxyAcceptor::new(), NoHandshake)
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl<L, H> ProxyProtocolListener<L, H>
where
    L: Incoming,
    H: Handshake<L::Io>,
{
    fn from_parts(inner: L, acceptor: ProxyAcceptor, hook: H) -> Self {
        let bound = inner.local_addr().ok();
        Self {
            inner,
            bound,
            acceptor,
            hook: Arc::new(hook),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            tasks: JoinSet::new(),
            backoff: None,
            backoff_step: BACKOFF_MIN,
        }
    }

    fn map_acceptor(mut self, f: impl FnOnce(ProxyAcceptor) -> ProxyAcceptor) -> Self {
        self.acceptor = f(self.acceptor);
        self
    }

    /// Use `acceptor`'s settings (policy, deadline, cap) for every connection.
    #[must_use]
    pub fn acceptor(self, acceptor: ProxyAcceptor) -> Self {
        self.map_acceptor(|_| acceptor)
    }

    /// Peers in `ranges` must send a header ([`Mode::Require`]).
    #[must_use]
    pub fn require_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.map_acceptor(|a| a.require_from(ranges))
    }

    /// Peers in `ranges` may send a header ([`Mode::Optional`], weaker
    /// than the specification: read its caveats).
    #[must_use]
    pub fn optional_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.map_acceptor(|a| a.optional_from(ranges))
    }

    /// A header from peers in `ranges` is read and dropped ([`Mode::Ignore`]).
    #[must_use]
    pub fn ignore_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.map_acceptor(|a| a.ignore_from(ranges))
    }

    /// A header from peers in `ranges` closes the connection ([`Mode::Reject`]).
    #[must_use]
    pub fn reject_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.map_acceptor(|a| a.reject_from(ranges))
    }

    /// Connections from peers in `ranges` are not read at all ([`Mode::Skip`]).
    #[must_use]
    pub fn skip_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.map_acceptor(|a| a.skip_from(ranges))
    }

    /// The mode for peers no range covers. Default: [`Mode::Require`] while
    /// no `*_from` rule names a range, [`Mode::Reject`] once one does (see
    /// [`SourcePolicy`](super::SourcePolicy)).
    #[must_use]
    pub fn otherwise(self, mode: Mode) -> Self {
        self.map_acceptor(|a| a.otherwise(mode))
    }

    /// Decide the mode with a closure over the socket peer; it replaces the
    /// range rules (see [`SourcePolicy::with_fn`]).
    #[must_use]
    pub fn policy_fn<F>(self, f: F) -> Self
    where
        F: Fn(SocketAddr) -> Mode + Send + Sync + 'static,
    {
        self.map_acceptor(|a| a.policy_fn(f))
    }

    /// Replace the whole per-source policy.
    #[must_use]
    pub fn policy(self, policy: SourcePolicy) -> Self {
        self.map_acceptor(|a| a.policy(policy))
    }

    /// Deadline for the header and any [`with_handshake`](Self::with_handshake)
    /// step together (default 5 s, at least 3 s: see
    /// [`ProxyAcceptor::header_timeout`]).
    #[must_use]
    pub fn header_timeout(self, timeout: Duration) -> Self {
        self.map_acceptor(|a| a.header_timeout(timeout))
    }

    /// The deadline without the 3 s floor; see
    /// [`ProxyAcceptor::header_timeout_unclamped`].
    #[must_use]
    pub fn header_timeout_unclamped(self, timeout: Duration) -> Self {
        self.map_acceptor(|a| a.header_timeout_unclamped(timeout))
    }

    /// Cap on the bytes read while looking for the header (default 4096;
    /// see [`ProxyAcceptor::max_header_len`]).
    #[must_use]
    pub fn max_header_len(self, len: usize) -> Self {
        self.map_acceptor(|a| a.max_header_len(len))
    }

    /// How many handshakes may run at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT`], at least 1). Finished connections not yet
    /// returned by `accept` count too. When full, the listener stops
    /// accepting from the inner listener until one finishes: new
    /// connections wait in the kernel's backlog instead of being dropped.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Run `f` on every connection after its header, inside the same
    /// concurrent handshake and under the same deadline, and hand its
    /// output to the application; an error closes the connection (with a
    /// `tracing` event). Typically a TLS handshake:
    ///
    /// ```no_run
    /// # async fn run(tls: tokio_rustls::TlsAcceptor) -> std::io::Result<()> {
    /// use realip::io::ProxyProtocolListener;
    ///
    /// let listener = ProxyProtocolListener::new(tokio::net::TcpListener::bind("0.0.0.0:443").await?)
    ///     .with_handshake(move |stream, _addr| tls.accept(stream));
    /// # let _ = listener;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_handshake<F, Fut, T, E>(self, f: F) -> ProxyProtocolListener<L, HandshakeFn<F>>
    where
        HandshakeFn<F>: Handshake<L::Io>,
        F: Fn(ProxiedStream<L::Io>, ProxiedAddr) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut out = ProxyProtocolListener::from_parts(self.inner, self.acceptor, HandshakeFn(f));
        out.max_in_flight = self.max_in_flight;
        out
    }

    /// The inner listener.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The settings every connection's header is read with.
    pub fn proxy_acceptor(&self) -> &ProxyAcceptor {
        &self.acceptor
    }

    /// Handshakes running or finished but not yet returned by `accept`.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// The address the inner listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection whose handshake succeeded, with its addresses.
    ///
    /// Never fails: accept errors are retried (after a growing pause, up to
    /// 1 s, when they are not about one connection, e.g. `EMFILE`) and
    /// failed handshakes are closed and logged. Cancel-safe: a connection
    /// is never lost when this future is dropped.
    pub async fn accept(&mut self) -> (H::Io, ProxiedAddr) {
        loop {
            let can_accept = self.backoff.is_none() && self.tasks.len() < self.max_in_flight;
            tokio::select! {
                biased;
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match joined {
                        Ok(Some(done)) => return done,
                        Ok(None) => {}
                        Err(e) if e.is_panic() => tracing::error!(
                            target: "realip::io", error = %e, "PROXY handshake task panicked"
                        ),
                        Err(_) => {}
                    }
                }
                res = self.inner.accept(), if can_accept => match res {
                    Ok((io, peer)) => {
                        self.backoff_step = BACKOFF_MIN;
                        self.spawn(io, peer);
                    }
                    Err(e) => self.accept_error(e),
                },
                () = pause(&mut self.backoff), if self.backoff.is_some() => {
                    self.backoff = None;
                }
            }
        }
    }

    fn accept_error(&mut self, e: io::Error) {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
        ) {
            // About one connection that is already gone: take the next.
            return;
        }
        // EMFILE, ENFILE, ENOBUFS...: retrying at once would spin. Pause,
        // longer each time, while finished handshakes are still returned.
        let pause = self.backoff_step;
        tracing::error!(target: "realip::io", error = %e, ?pause, "accept error, pausing");
        self.backoff = Some(Box::pin(tokio::time::sleep(pause)));
        self.backoff_step = (pause * 2).min(BACKOFF_MAX);
    }

    fn spawn(&mut self, io: L::Io, peer: SocketAddr) {
        let local = match self.bound {
            Some(b) if !b.ip().is_unspecified() => b,
            _ => self
                .inner
                .connection_local_addr(&io)
                .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
        };
        let started = Instant::now();
        let deadline = started + self.acceptor.timeout();
        let header = self.acceptor.accept_until(io, peer, deadline);
        let hook = Arc::clone(&self.hook);
        self.tasks.spawn(async move {
            let stream = header.await.ok()?;
            let addr = ProxiedAddr::new(peer, local, stream.proxy_header_arc().cloned());
            match tokio::time::timeout_at(deadline, hook.handshake(stream, addr.clone())).await {
                Ok(Ok(io)) => Some((io, addr)),
                Ok(Err(error)) => {
                    tracing::warn!(
                        target: "realip::io", %peer, reason = "handshake",
                        elapsed = ?started.elapsed(), %error,
                        "handshake after the PROXY header failed, closing"
                    );
                    None
                }
                Err(_) => {
                    tracing::debug!(
                        target: "realip::io", %peer, reason = "timeout",
                        elapsed = ?started.elapsed(),
                        "handshake after the PROXY header timed out, closing"
                    );
                    None
                }
            }
        });
    }
}

#[cfg(feature = "axum")]
impl<L, H> axum::serve::Listener for ProxyProtocolListener<L, H>
where
    L: Incoming,
    H: Handshake<L::Io>,
{
    type Io = H::Io;
    type Addr = ProxiedAddr;

    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Addr)> + Send {
        ProxyProtocolListener::accept(self)
    }

    /// The bound address as both `peer` and `local`, with no header.
    fn local_addr(&self) -> io::Result<ProxiedAddr> {
        let a = self.inner.local_addr()?;
        Ok(ProxiedAddr::new(a, a, None))
    }
}

async fn pause(backoff: &mut Option<std::pin::Pin<Box<Sleep>>>) {
    match backoff {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
