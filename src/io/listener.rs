//! [`ProxyProtocolListener`]: accepts connections and runs their PROXY
//! handshakes concurrently, so no client can hold up another.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::{poll_fn, ready, Future, Ready};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::{Instant, Sleep};

use super::acceptor::{deadline_after, ProxyAcceptor};
use super::addr::ProxiedAddr;
use super::policy::{Mode, SourcePolicy};
use super::stats::{ListenerStats, Outcome, Warn};
use super::stream::ProxiedStream;

/// Error type a [`Handshake`] may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default cap on handshakes in flight at once from peers in a
/// [`Mode::Require`] or [`Mode::Optional`] range.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2048;

/// Default cap on handshakes in flight at once from every other peer.
pub const DEFAULT_MAX_IN_FLIGHT_UNTRUSTED: usize = 2048;

/// Connections taken from the inner listener per wakeup at most, while
/// they are ready and the budget allows: a burst leaves the kernel's
/// accept queue fast, without starving the finished handshakes.
const ACCEPT_BATCH: usize = 64;

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
/// `accept` returns the first connection whose handshake is over. Dropping
/// the listener aborts the handshakes still running.
///
/// # Budgets: outsiders cannot take the load balancer's slots
///
/// The mode of a connection is known from its peer address at accept, so
/// handshakes are held in two budgets:
///
/// - Peers whose mode is [`Mode::Require`] or [`Mode::Optional`] (the
///   load balancers) get [`max_in_flight`](Self::max_in_flight) handshakes
///   (default [`DEFAULT_MAX_IN_FLIGHT`]). When that budget is full the
///   listener stops accepting: new connections wait in the kernel's
///   accept queue, none is dropped.
/// - Every other peer ([`Mode::Reject`], [`Mode::Ignore`], [`Mode::Skip`])
///   gets [`max_in_flight_untrusted`](Self::max_in_flight_untrusted)
///   (default [`DEFAULT_MAX_IN_FLIGHT_UNTRUSTED`]). When that budget is
///   full, a new such connection sheds the oldest one still in its
///   handshake (closed, counted as `shed`): silent or trickling clients
///   from outside the ranges can neither stall `accept` nor hold more
///   than their budget of descriptors and memory, so they never delay a
///   load balancer's connection. A [`Mode::Skip`] peer is not read at all
///   and a [`Mode::Reject`] peer only until its first bytes, so honest
///   clients leave this budget at once.
///
/// When the process runs out of descriptors (`EMFILE`), the oldest
/// handshake of the second budget is shed too, and accepting resumes as
/// soon as its descriptor is closed: outsiders cannot hold the process at
/// its descriptor limit either (keep the budgets below `RLIMIT_NOFILE`
/// anyway). Through `FromAxum` and `TapIo`, axum handles accept errors
/// itself and this does not apply.
///
/// Without any `*_from` rule every peer is [`Mode::Require`] and shares the
/// first budget: name the balancers' ranges so that the rest of the
/// network is kept apart. Bind with [`bind`](super::bind) so that bursts
/// fit in the kernel's accept queue; `accept` takes up to 64 ready
/// connections per wakeup while the budget allows.
///
/// # Events and counters
///
/// Failed handshakes are closed and reported as `tracing` events (target
/// `realip::io`) with the peer, the reason and the time spent: protocol
/// violations (missing, rejected, malformed, oversized header; failed TLS)
/// at `WARN`, at most one per reason per second (the next one carries the
/// count folded into it in `suppressed`; the others go out at `DEBUG`),
/// clients that time out, close, reset or are shed at `DEBUG`. Every
/// outcome is counted in [`stats`](Self::stats), readable without a
/// subscriber.
///
/// ```no_run
/// use axum::{extract::ConnectInfo, routing::get, Router};
/// use realip::io::{ProxiedAddr, ProxyProtocolListener};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new().route(
///     "/",
///     get(|ConnectInfo(addr): ConnectInfo<ProxiedAddr>| async move {
///         format!("{:?}", addr.proxy_source().unwrap_or(addr.peer()))
///     }),
/// );
/// let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:8080").await?)
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
    max_in_flight_untrusted: usize,
    /// Handshakes of peers in a `Require`/`Optional` range.
    tasks: JoinSet<Finished<H::Io>>,
    /// Handshakes of every other peer.
    untrusted: JoinSet<Finished<H::Io>>,
    /// `untrusted` oldest first, for shedding; finished entries are pruned
    /// lazily, so it stays within twice the budget.
    untrusted_order: VecDeque<AbortHandle>,
    /// Shed tasks `untrusted` has not returned yet: the budget counts
    /// only the others.
    shed_pending: HashSet<tokio::task::Id>,
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
            .field("max_in_flight_untrusted", &self.max_in_flight_untrusted)
            .field("in_flight", &self.tasks.len())
            .field("in_flight_untrusted", &self.untrusted_live())
            .finish()
    }
}

impl<L: Incoming> ProxyProtocolListener<L> {
    /// Wrap `inner`: header required from every peer, 5 s deadline, 4096-byte
    /// cap, [`DEFAULT_MAX_IN_FLIGHT`] and [`DEFAULT_MAX_IN_FLIGHT_UNTRUSTED`]
    /// handshakes at once.
    pub fn new(inner: L) -> Self {
        Self::from_parts(inner, ProxyAcceptor::new(), NoHandshake)
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Pause after an accept error that shed a handshake to free its descriptor.
const SHED_PAUSE: Duration = Duration::from_millis(1);
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
            max_in_flight_untrusted: DEFAULT_MAX_IN_FLIGHT_UNTRUSTED,
            tasks: JoinSet::new(),
            untrusted: JoinSet::new(),
            untrusted_order: VecDeque::new(),
            shed_pending: HashSet::new(),
            backoff: None,
            backoff_step: BACKOFF_MIN,
        }
    }

    fn map_acceptor(mut self, f: impl FnOnce(ProxyAcceptor) -> ProxyAcceptor) -> Self {
        self.acceptor = f(self.acceptor);
        self
    }

    /// Use `acceptor`'s settings (policy, deadline, cap) for every
    /// connection, and its [`stats`](ProxyAcceptor::stats).
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

    /// How many handshakes of peers in a [`Mode::Require`] or
    /// [`Mode::Optional`] range may run at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT`]). Finished connections not yet returned by
    /// `accept` count too. When full, the listener stops accepting from the
    /// inner listener until one finishes: new connections wait in the
    /// kernel's backlog instead of being dropped.
    ///
    /// Clamped: 0 is raised to 1; [`in_flight_limit`](Self::in_flight_limit)
    /// tells the value in force.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// How many handshakes of every other peer ([`Mode::Reject`],
    /// [`Mode::Ignore`], [`Mode::Skip`]) may run at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT_UNTRUSTED`]). When full, a new such
    /// connection closes the oldest one still in its handshake (counted as
    /// `shed`), so they never stall `accept`.
    ///
    /// Clamped: 0 is raised to 1;
    /// [`in_flight_untrusted_limit`](Self::in_flight_untrusted_limit) tells
    /// the value in force.
    #[must_use]
    pub fn max_in_flight_untrusted(mut self, n: usize) -> Self {
        self.max_in_flight_untrusted = n.max(1);
        self
    }

    /// Run `f` on every connection after its header, inside the same
    /// concurrent handshake and under the same deadline, and hand its
    /// output to the application; an error closes the connection (with a
    /// `tracing` event). Typically a TLS handshake:
    ///
    /// ```no_run
    /// # async fn run(tls: tokio_rustls::TlsAcceptor) -> Result<(), Box<dyn std::error::Error>> {
    /// use realip::io::ProxyProtocolListener;
    ///
    /// // The balancer in 10.0.0.0/8 sends PROXY; a header from anyone else
    /// // closes the connection before TLS starts.
    /// let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:443").await?)
    ///     .require_from(["10.0.0.0/8".parse()?])
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
        out.max_in_flight_untrusted = self.max_in_flight_untrusted;
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

    /// Handshakes running or finished but not yet returned by `accept`,
    /// both budgets together.
    pub fn in_flight(&self) -> usize {
        self.tasks.len() + self.untrusted_live()
    }

    /// The cap on handshakes of `Require`/`Optional` peers in force (after
    /// the clamp of [`max_in_flight`](Self::max_in_flight)).
    pub fn in_flight_limit(&self) -> usize {
        self.max_in_flight
    }

    /// The cap on handshakes of every other peer in force (after the clamp
    /// of [`max_in_flight_untrusted`](Self::max_in_flight_untrusted)).
    pub fn in_flight_untrusted_limit(&self) -> usize {
        self.max_in_flight_untrusted
    }

    /// Counters of every connection's outcome (accepted, no header,
    /// missing, rejected, malformed, too large, timed out, closed, shed,
    /// handshake failed) and of accept errors: a handle that stays valid
    /// after the listener moves into `axum::serve`. They are the
    /// acceptor's counters, so take the handle after
    /// [`acceptor`](Self::acceptor), which brings its own.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use realip::io::ProxyProtocolListener;
    ///
    /// let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:8080").await?)
    ///     .require_from(["10.0.0.0/8".parse().unwrap()]);
    /// let stats = listener.stats();
    /// tokio::spawn(async move {
    ///     loop {
    ///         tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    ///         let s = stats.snapshot();
    ///         println!("accepted {} shed {} malformed {}", s.accepted, s.shed, s.malformed);
    ///     }
    /// });
    /// # let _ = listener;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> ListenerStats {
        self.acceptor.stats()
    }

    fn untrusted_live(&self) -> usize {
        self.untrusted.len().saturating_sub(self.shed_pending.len())
    }

    /// The address the inner listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The next connection whose handshake succeeded, with its addresses.
    ///
    /// Never fails: failed handshakes are closed and logged, and accept
    /// errors are retried. An error about one connection is skipped; any
    /// other (e.g. `EMFILE`) is logged at `ERROR` at most once a second and
    /// retried after shedding the oldest handshake of a peer outside the
    /// PROXY ranges and a 1 ms pause, or, with none to shed, after a
    /// growing pause of up to 1 s. Cancel-safe: a connection is never lost
    /// when this future is dropped.
    pub async fn accept(&mut self) -> (H::Io, ProxiedAddr) {
        loop {
            tokio::select! {
                biased;
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    if let Some(done) = self.joined(joined) {
                        return done;
                    }
                }
                Some(joined) = self.untrusted.join_next_with_id(), if !self.untrusted.is_empty() => {
                    if let Some(done) = self.joined(joined) {
                        return done;
                    }
                }
                res = self.inner.accept(), if self.can_accept() => {
                    self.accepted(res);
                    // Drain what else is ready now, in one wakeup.
                    for _ in 1..ACCEPT_BATCH {
                        if !self.can_accept() {
                            break;
                        }
                        let ready = {
                            let mut next = std::pin::pin!(self.inner.accept());
                            poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await
                        };
                        match ready {
                            Poll::Ready(res) => self.accepted(res),
                            Poll::Pending => break,
                        }
                    }
                }
                () = pause(&mut self.backoff), if self.backoff.is_some() => {
                    self.backoff = None;
                }
            }
        }
    }

    fn can_accept(&self) -> bool {
        self.backoff.is_none() && self.tasks.len() < self.max_in_flight
    }

    fn accepted(&mut self, res: io::Result<(L::Io, SocketAddr)>) {
        match res {
            Ok((io, peer)) => {
                self.backoff_step = BACKOFF_MIN;
                self.spawn(io, peer);
            }
            Err(e) => self.accept_error(e),
        }
    }

    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, Finished<H::Io>), JoinError>,
    ) -> Finished<H::Io> {
        match joined {
            Ok((id, done)) => {
                self.shed_pending.remove(&id);
                done
            }
            Err(e) => {
                self.shed_pending.remove(&e.id());
                if e.is_panic() {
                    tracing::error!(
                        target: "realip::io", error = %e, "PROXY handshake task panicked"
                    );
                }
                None
            }
        }
    }

    /// Makes room in the untrusted budget by aborting its oldest running
    /// handshake; `false` when every one has finished already.
    fn shed_oldest(&mut self) -> bool {
        while let Some(task) = self.untrusted_order.pop_front() {
            if task.is_finished() {
                continue;
            }
            task.abort();
            self.shed_pending.insert(task.id());
            return true;
        }
        false
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
        // EMFILE, ENFILE, ENOBUFS...: retrying at once would spin.
        self.acceptor.stats().accept_error();
        let shed = self.shed_oldest();
        // Out of descriptors or memory: the oldest handshake of a peer
        // outside the PROXY ranges gives its descriptor back first, so
        // outsiders cannot hold the process at its limit; retry as soon as
        // the runtime has closed it. Otherwise pause, longer each time,
        // while finished handshakes are still returned.
        let pause = if shed { SHED_PAUSE } else { self.backoff_step };
        match self.acceptor.warn_limiter().admit(Warn::AcceptError) {
            Some(suppressed) => tracing::error!(
                target: "realip::io", error = %e, ?pause, shed, suppressed,
                "accept error, pausing (`suppressed`: like errors since the last one, logged at DEBUG)"
            ),
            None => tracing::debug!(
                target: "realip::io", error = %e, ?pause, shed, "accept error, pausing"
            ),
        }
        self.backoff = Some(Box::pin(tokio::time::sleep(pause)));
        if !shed {
            self.backoff_step = (pause * 2).min(BACKOFF_MAX);
        }
    }

    fn spawn(&mut self, io: L::Io, peer: SocketAddr) {
        let local = match self.bound {
            Some(b) if !b.ip().is_unspecified() => b,
            _ => self
                .inner
                .connection_local_addr(&io)
                .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
        };
        let stats = self.acceptor.stats();
        stats.connection();
        let mode = self.acceptor.source_policy().mode_for(peer);
        let trusted = matches!(mode, Mode::Require | Mode::Optional);
        if !trusted && self.untrusted_live() >= self.max_in_flight_untrusted && !self.shed_oldest()
        {
            // Every handshake in the budget is over, waiting for `accept`:
            // nothing to shed but the newcomer.
            stats.outcome(Outcome::Shed);
            tracing::debug!(
                target: "realip::io", %peer, %mode, reason = "shed",
                "handshake budget for peers outside the PROXY ranges full, closing"
            );
            return;
        }
        let started = Instant::now();
        let deadline = deadline_after(started, self.acceptor.timeout());
        let header = self
            .acceptor
            .accept_inner(io, peer, mode, started, deadline, false);
        let hook = Arc::clone(&self.hook);
        let acceptor = self.acceptor.clone();
        let task = async move {
            // Counts the connection as shed if the task is dropped before
            // an outcome is counted (aborted, or the listener dropped).
            let mut guard = ShedGuard {
                stats: Some(acceptor.stats()),
                peer,
                started,
            };
            let stream = match header.await {
                Ok(stream) => stream,
                Err(_) => {
                    guard.stats = None; // counted by `Accept`
                    return None;
                }
            };
            let addr = ProxiedAddr::new(peer, local, stream.proxy_header_arc().cloned());
            let has_header = addr.header().is_some();
            let result =
                tokio::time::timeout_at(deadline, hook.handshake(stream, addr.clone())).await;
            let stats = guard.stats.take()?;
            match result {
                Ok(Ok(io)) => {
                    stats.outcome(if has_header {
                        Outcome::Accepted
                    } else {
                        Outcome::NoHeader
                    });
                    Some((io, addr))
                }
                Ok(Err(error)) => {
                    stats.outcome(Outcome::HandshakeFailed);
                    match acceptor.warn_limiter().admit(Warn::Handshake) {
                        Some(suppressed) => tracing::warn!(
                            target: "realip::io", %peer, reason = "handshake",
                            elapsed = ?started.elapsed(), %error, suppressed,
                            "handshake after the PROXY header failed, closing (`suppressed`: like events since the last warning, logged at DEBUG)"
                        ),
                        None => tracing::debug!(
                            target: "realip::io", %peer, reason = "handshake",
                            elapsed = ?started.elapsed(), %error,
                            "handshake after the PROXY header failed, closing"
                        ),
                    }
                    None
                }
                Err(_) => {
                    stats.outcome(Outcome::TimedOut);
                    tracing::debug!(
                        target: "realip::io", %peer, reason = "timeout",
                        elapsed = ?started.elapsed(),
                        "handshake after the PROXY header timed out, closing"
                    );
                    None
                }
            }
        };
        if trusted {
            self.tasks.spawn(task);
        } else {
            let handle = self.untrusted.spawn(task);
            self.untrusted_order.push_back(handle);
            if self.untrusted_order.len() > self.max_in_flight_untrusted.max(16).saturating_mul(2) {
                self.untrusted_order.retain(|t| !t.is_finished());
            }
        }
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

/// Counts a handshake task dropped before its outcome (aborted to shed it,
/// or the listener dropped) as `shed`.
struct ShedGuard {
    stats: Option<ListenerStats>,
    peer: SocketAddr,
    started: Instant,
}

impl Drop for ShedGuard {
    fn drop(&mut self) {
        if let Some(stats) = self.stats.take() {
            stats.outcome(Outcome::Shed);
            tracing::debug!(
                target: "realip::io", peer = %self.peer, reason = "shed",
                elapsed = ?self.started.elapsed(),
                "handshake shed to make room, closing"
            );
        }
    }
}

async fn pause(backoff: &mut Option<std::pin::Pin<Box<Sleep>>>) {
    match backoff {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
