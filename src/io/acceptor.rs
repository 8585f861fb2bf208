//! [`ProxyAcceptor`]: reads the PROXY header off any stream, with a
//! deadline, a size cap and the per-source [`Mode`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use ipnet::IpNet;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::policy::{Mode, SourcePolicy};
use super::stats::{ListenerStats, Outcome, Warn, WarnLimiter};
use super::stream::ProxiedStream;
use crate::proxy::{self, Detected, Status};

/// Default time a client has to deliver its whole header.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Shortest header deadline [`ProxyAcceptor::header_timeout`] accepts.
///
/// The PROXY protocol specification asks receivers that time out to allow
/// at least 3 seconds, so that one lost segment (retransmitted after the
/// initial 1 s RTO, then backed off) does not cost a legitimate connection.
pub const MIN_HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// Default cap on the bytes read while looking for the header.
///
/// Room for any v1 header (107 bytes) and a v2 header with the TLVs load
/// balancers send (SSL, unique id, VPC endpoint ids) many times over.
pub const DEFAULT_MAX_HEADER_LEN: usize = 4096;

/// Smallest header cap: a v2 header carrying two AF_UNIX addresses
/// (16 + 216 bytes), the largest header without TLVs.
pub const MIN_MAX_HEADER_LEN: usize = 16 + 216;

/// The first read asks for at most this many bytes: any v1 header and the
/// usual v2 header fit, and a thousand idle handshakes stay cheap.
const FIRST_READ: usize = 256;

/// Why a connection was closed instead of handed to the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The header was not complete before the deadline.
    Timeout(Duration),
    /// The peer closed its side before the header was complete.
    Closed,
    /// Reading from the socket failed.
    Io(io::Error),
    /// The mode is [`Mode::Require`] and the first bytes are not a PROXY
    /// protocol signature.
    Missing,
    /// The mode is [`Mode::Reject`] and the connection starts with a PROXY
    /// protocol signature.
    Rejected,
    /// The header is (or would be) longer than the configured cap; nothing
    /// past the cap was read.
    TooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// The header does not follow the specification.
    Malformed(proxy::Error),
}

impl HandshakeError {
    /// The counter this failure goes to.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            HandshakeError::Timeout(_) => Outcome::TimedOut,
            HandshakeError::Closed | HandshakeError::Io(_) => Outcome::Closed,
            HandshakeError::Missing => Outcome::Missing,
            HandshakeError::Rejected => Outcome::Rejected,
            HandshakeError::TooLarge { .. } => Outcome::TooLarge,
            HandshakeError::Malformed(_) => Outcome::Malformed,
        }
    }

    /// The rate-limited warning this failure raises, if it is one.
    fn warning(&self) -> Option<Warn> {
        match self {
            HandshakeError::Timeout(_) | HandshakeError::Closed | HandshakeError::Io(_) => None,
            HandshakeError::Missing => Some(Warn::Missing),
            HandshakeError::Rejected => Some(Warn::Rejected),
            HandshakeError::TooLarge { .. } => Some(Warn::TooLarge),
            HandshakeError::Malformed(_) => Some(Warn::Malformed),
        }
    }

    /// Short stable name of the reason, used in tracing events.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout(_) => "timeout",
            HandshakeError::Closed => "closed",
            HandshakeError::Io(_) => "io",
            HandshakeError::Missing => "missing",
            HandshakeError::Rejected => "rejected",
            HandshakeError::TooLarge { .. } => "too_large",
            HandshakeError::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Timeout(d) => write!(f, "PROXY header not complete within {d:?}"),
            HandshakeError::Closed => {
                f.write_str("peer closed before the PROXY header was complete")
            }
            HandshakeError::Io(e) => write!(f, "reading the PROXY header: {e}"),
            HandshakeError::Missing => f.write_str("PROXY header required but missing"),
            HandshakeError::Rejected => f.write_str("PROXY header not allowed from this peer"),
            HandshakeError::TooLarge { limit } => {
                write!(f, "PROXY header longer than the {limit}-byte cap")
            }
            HandshakeError::Malformed(e) => write!(f, "malformed PROXY header: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Io(e) => Some(e),
            HandshakeError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HandshakeError> for io::Error {
    fn from(e: HandshakeError) -> Self {
        let kind = match &e {
            HandshakeError::Io(inner) => inner.kind(),
            HandshakeError::Timeout(_) => io::ErrorKind::TimedOut,
            HandshakeError::Closed => io::ErrorKind::UnexpectedEof,
            HandshakeError::Rejected => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) policy: SourcePolicy,
    pub(crate) header_timeout: Duration,
    pub(crate) max_header_len: usize,
}

/// Reads the PROXY protocol header from a freshly accepted stream.
///
/// For servers that drive `hyper_util::server::conn::auto` themselves, or
/// that terminate TLS after the PROXY header: accept the TCP connection,
/// hand it here with the peer address, then give the [`ProxiedStream`] to
/// hyper or to a TLS acceptor. Cheap to clone (the settings are shared).
///
/// ```no_run
/// use realip::io::ProxyAcceptor;
///
/// # async fn run() -> std::io::Result<()> {
/// let acceptor = ProxyAcceptor::new().require_from(["10.0.0.0/8".parse().unwrap()]);
/// let tcp = realip::io::bind("127.0.0.1:8080").await?;
/// loop {
///     let (socket, peer) = tcp.accept().await?;
///     let acceptor = acceptor.clone();
///     tokio::spawn(async move {
///         let Ok(stream) = acceptor.accept(socket, peer).await else { return };
///         let client = stream.proxy_header().and_then(|h| h.source()).unwrap_or(peer);
///         // serve `stream` (e.g. with hyper_util's `TokioIo`) knowing `client`
///         # let _ = client;
///     });
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ProxyAcceptor {
    settings: Arc<Settings>,
    stats: ListenerStats,
    warn: Arc<WarnLimiter>,
}

/// How far away a deadline that cannot be represented (`Instant::now()`
/// plus a huge timeout) is put instead: about 30 years, as tokio does.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `start + timeout`, saturated to a far deadline instead of overflowing:
/// no setting may panic inside the accept loop.
pub(crate) fn deadline_after(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}

impl Default for ProxyAcceptor {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyAcceptor {
    /// Header required from every peer, 5 s deadline, 4096-byte cap.
    pub fn new() -> Self {
        Self {
            settings: Arc::new(Settings {
                policy: SourcePolicy::new(),
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                max_header_len: DEFAULT_MAX_HEADER_LEN,
            }),
            stats: ListenerStats::default(),
            warn: Arc::default(),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    fn rule<I: IntoIterator<Item = IpNet>>(self, mode: Mode, ranges: I) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).with(mode, ranges))
    }

    /// Peers in `ranges` must send a header ([`Mode::Require`]).
    #[must_use]
    pub fn require_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.rule(Mode::Require, ranges)
    }

    /// Peers in `ranges` may send a header ([`Mode::Optional`], weaker
    /// than the specification: read its caveats).
    #[must_use]
    pub fn optional_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.rule(Mode::Optional, ranges)
    }

    /// A header from peers in `ranges` is read and dropped ([`Mode::Ignore`]).
    #[must_use]
    pub fn ignore_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.rule(Mode::Ignore, ranges)
    }

    /// A header from peers in `ranges` closes the connection ([`Mode::Reject`]).
    #[must_use]
    pub fn reject_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.rule(Mode::Reject, ranges)
    }

    /// Connections from peers in `ranges` are not read at all ([`Mode::Skip`]).
    #[must_use]
    pub fn skip_from<I: IntoIterator<Item = IpNet>>(self, ranges: I) -> Self {
        self.rule(Mode::Skip, ranges)
    }

    /// The mode for peers no range covers. Default: [`Mode::Require`] while
    /// no `*_from` rule names a range, [`Mode::Reject`] once one does (see
    /// [`SourcePolicy`](super::SourcePolicy)).
    #[must_use]
    pub fn otherwise(self, mode: Mode) -> Self {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).otherwise(mode))
    }

    /// Decide the mode with a closure over the socket peer; it replaces the
    /// range rules (see [`SourcePolicy::with_fn`]).
    #[must_use]
    pub fn policy_fn<F>(self, f: F) -> Self
    where
        F: Fn(SocketAddr) -> Mode + Send + Sync + 'static,
    {
        self.edit(|s| s.policy = std::mem::take(&mut s.policy).with_fn(f))
    }

    /// Replace the whole per-source policy.
    #[must_use]
    pub fn policy(self, policy: SourcePolicy) -> Self {
        self.edit(|s| s.policy = policy)
    }

    /// Time a client has to deliver its whole header, from accept (default
    /// 5 s).
    ///
    /// Clamped: values under [`MIN_HEADER_TIMEOUT`] (3 s, what the
    /// specification asks for) are raised to it, with a warning event;
    /// [`timeout`](Self::timeout) tells the value in force. Any larger
    /// value is taken, up to `Duration::MAX` (a deadline past what the
    /// clock can represent waits about 30 years: in effect, none).
    #[must_use]
    pub fn header_timeout(self, timeout: Duration) -> Self {
        let t = if timeout < MIN_HEADER_TIMEOUT {
            tracing::warn!(
                target: "realip::io",
                requested = ?timeout,
                used = ?MIN_HEADER_TIMEOUT,
                "PROXY header timeout raised to the 3 s the specification asks for"
            );
            MIN_HEADER_TIMEOUT
        } else {
            timeout
        };
        self.edit(|s| s.header_timeout = t)
    }

    /// Like [`header_timeout`](Self::header_timeout) without the 3 s floor:
    /// [`timeout`](Self::timeout) is exactly `timeout` (zero closes every
    /// connection that has not sent its header by the first read).
    ///
    /// For tests, and for senders on the same host or link where a lost
    /// segment cannot happen. Elsewhere a shorter deadline drops legitimate
    /// clients whose first segment needed a retransmit.
    #[must_use]
    pub fn header_timeout_unclamped(self, timeout: Duration) -> Self {
        self.edit(|s| s.header_timeout = timeout)
    }

    /// Cap on the bytes read while looking for the header (default 4096).
    ///
    /// Clamped to [`MIN_MAX_HEADER_LEN`]`..=16 + 65535` (the largest v2
    /// header); [`max_len`](Self::max_len) tells the value in force. A v2
    /// header that announces more is rejected as soon as its length field
    /// is read; nothing past the cap is ever read or allocated.
    #[must_use]
    pub fn max_header_len(self, len: usize) -> Self {
        let len = len.clamp(MIN_MAX_HEADER_LEN, proxy::v2::MAX_LEN);
        self.edit(|s| s.max_header_len = len)
    }

    /// The per-source policy in force.
    pub fn source_policy(&self) -> &SourcePolicy {
        &self.settings.policy
    }

    /// The header deadline in force (after the 3 s floor of
    /// [`header_timeout`](Self::header_timeout)).
    pub fn timeout(&self) -> Duration {
        self.settings.header_timeout
    }

    /// The header size cap in force (after the clamp of
    /// [`max_header_len`](Self::max_header_len)).
    pub fn max_len(&self) -> usize {
        self.settings.max_header_len
    }

    /// Counters of what happened to every connection read by this acceptor
    /// and its clones (and by the listener built on it); a handle to keep
    /// and read at any time.
    pub fn stats(&self) -> ListenerStats {
        self.stats.clone()
    }

    /// Read the header from `io`, a connection from `peer`, under this
    /// acceptor's mode for `peer`, deadline and cap.
    ///
    /// Failures are returned and also reported as a `tracing` event (target
    /// `realip::io`) with the peer, the reason and the time spent: clients
    /// that time out, close or reset at `DEBUG`; protocol violations at
    /// `WARN`, at most one per reason per second (the next one says how
    /// many were folded into it; the others go out at `DEBUG`). Every
    /// outcome is counted in [`stats`](Self::stats).
    pub fn accept<IO>(&self, io: IO, peer: SocketAddr) -> Accept<IO>
    where
        IO: AsyncRead + Unpin,
    {
        self.stats.connection();
        let mode = self.settings.policy.mode_for(peer);
        let start = Instant::now();
        let deadline = deadline_after(start, self.settings.header_timeout);
        self.accept_inner(io, peer, mode, start, deadline, true)
    }

    /// The warning limiter, shared with the listener's own events.
    pub(crate) fn warn_limiter(&self) -> &WarnLimiter {
        &self.warn
    }

    /// The header phase of one connection whose `mode` is known; counts
    /// its failure, and its success when `count_success` (the listener
    /// counts success after its handshake step instead).
    pub(crate) fn accept_inner<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        mode: Mode,
        started: Instant,
        deadline: Instant,
        count_success: bool,
    ) -> Accept<IO>
    where
        IO: AsyncRead + Unpin,
    {
        Accept {
            io: Some(io),
            peer,
            mode,
            buf: Vec::new(),
            filled: 0,
            want: 0,
            max: self.settings.max_header_len,
            timeout: self.settings.header_timeout,
            started,
            stats: self.stats.clone(),
            count_success,
            warn: Arc::clone(&self.warn),
            deadline: tokio::time::sleep_until(deadline),
        }
    }
}

pin_project! {
    /// Future returned by [`ProxyAcceptor::accept`]: resolves to the stream
    /// with its header read off, or to why the connection must be closed
    /// (the stream is dropped, which closes it).
    #[must_use = "futures do nothing unless polled"]
    pub struct Accept<IO> {
        io: Option<IO>,
        peer: SocketAddr,
        mode: Mode,
        buf: Vec<u8>,
        filled: usize,
        // Total bytes the header is known to need (v2 length field), or 0.
        want: usize,
        max: usize,
        timeout: Duration,
        started: Instant,
        stats: ListenerStats,
        // Whether success is counted here (else by the caller).
        count_success: bool,
        warn: Arc<WarnLimiter>,
        #[pin]
        deadline: Sleep,
    }
}

impl<IO> fmt::Debug for Accept<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept")
            .field("peer", &self.peer)
            .field("mode", &self.mode)
            .field("read", &self.filled)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

enum Step {
    Done(Option<Arc<proxy::OwnedHeader>>, usize),
    More,
}

/// What the bytes read so far mean under `mode`.
fn decide(mode: Mode, bytes: &[u8], max: usize, want: &mut usize) -> Result<Step, HandshakeError> {
    match proxy::detect(bytes) {
        Detected::NeedMore => return Ok(Step::More),
        Detected::NotProxy => {
            return match mode {
                Mode::Require => Err(HandshakeError::Missing),
                _ => Ok(Step::Done(None, 0)),
            }
        }
        Detected::V1 | Detected::V2 if mode == Mode::Reject => {
            return Err(HandshakeError::Rejected)
        }
        _ => {}
    }
    match proxy::parse(bytes) {
        Ok(Status::Complete(header, len)) => {
            let keep = matches!(mode, Mode::Require | Mode::Optional);
            Ok(Step::Done(
                keep.then(|| Arc::new(header.to_owned_header())),
                len,
            ))
        }
        Ok(Status::Partial(_)) => {
            if bytes.len() >= 16 && bytes.starts_with(&proxy::v2::SIGNATURE) {
                // The length field tells the total: refuse before reading it.
                let total = 16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
                if total > max {
                    return Err(HandshakeError::TooLarge { limit: max });
                }
                *want = total;
            }
            Ok(Step::More)
        }
        Err(e) => Err(HandshakeError::Malformed(e)),
    }
}

impl<IO: AsyncRead + Unpin> Future for Accept<IO> {
    type Output = Result<ProxiedStream<IO>, HandshakeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = poll_header(
            this.io,
            *this.mode,
            this.buf,
            this.filled,
            this.want,
            *this.max,
            *this.timeout,
            this.deadline,
            cx,
        );
        let res = ready!(res);
        match &res {
            Ok(stream) => {
                if *this.count_success {
                    this.stats.outcome(if stream.proxy_header().is_some() {
                        Outcome::Accepted
                    } else {
                        Outcome::NoHeader
                    });
                }
            }
            Err(e) => {
                this.stats.outcome(e.outcome());
                let elapsed = this.started.elapsed();
                match e.warning().and_then(|w| this.warn.admit(w)) {
                    Some(suppressed) => tracing::warn!(
                        target: "realip::io",
                        peer = %this.peer, mode = %this.mode, reason = e.reason(),
                        read = *this.filled, ?elapsed, error = %e, suppressed,
                        "PROXY handshake failed, closing (`suppressed`: like events since the last warning, logged at DEBUG)"
                    ),
                    None => tracing::debug!(
                        target: "realip::io",
                        peer = %this.peer, mode = %this.mode, reason = e.reason(),
                        read = *this.filled, ?elapsed, error = %e,
                        "PROXY handshake failed, closing"
                    ),
                }
            }
        }
        Poll::Ready(res)
    }
}

#[allow(clippy::too_many_arguments)]
fn poll_header<IO: AsyncRead + Unpin>(
    io: &mut Option<IO>,
    mode: Mode,
    buf: &mut Vec<u8>,
    filled: &mut usize,
    want: &mut usize,
    max: usize,
    timeout: Duration,
    deadline: Pin<&mut Sleep>,
    cx: &mut Context<'_>,
) -> Poll<Result<ProxiedStream<IO>, HandshakeError>> {
    let Some(stream) = io.as_mut() else {
        panic!("`Accept` polled after completion");
    };
    if mode == Mode::Skip {
        let stream = io.take().expect("checked above");
        return Poll::Ready(Ok(ProxiedStream::new(stream, None, Vec::new(), 0)));
    }
    loop {
        if *filled > 0 {
            match decide(mode, &buf[..*filled], max, want) {
                Ok(Step::Done(header, len)) => {
                    let stream = io.take().expect("checked above");
                    buf.truncate(*filled);
                    let buf = std::mem::take(buf);
                    return Poll::Ready(Ok(ProxiedStream::new(stream, header, buf, len)));
                }
                Ok(Step::More) => {}
                Err(e) => {
                    io.take();
                    return Poll::Ready(Err(e));
                }
            }
        }
        if *filled == buf.len() {
            if buf.len() >= max {
                io.take();
                return Poll::Ready(Err(HandshakeError::TooLarge { limit: max }));
            }
            let grow = (*want).max(buf.len() * 2).clamp(FIRST_READ.min(max), max);
            buf.resize(grow, 0);
        }
        let mut rb = ReadBuf::new(&mut buf[*filled..]);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    io.take();
                    return Poll::Ready(Err(HandshakeError::Closed));
                }
                *filled += n;
            }
            Poll::Ready(Err(e)) => {
                io.take();
                return Poll::Ready(Err(HandshakeError::Io(e)));
            }
            Poll::Pending => {
                if deadline.poll(cx).is_ready() {
                    io.take();
                    return Poll::Ready(Err(HandshakeError::Timeout(timeout)));
                }
                return Poll::Pending;
            }
        }
    }
}
