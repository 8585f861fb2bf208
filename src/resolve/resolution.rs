//! What a resolution records: the client, the hops walked, the source that
//! decided and why the walk stopped.

use super::context::{ClientContext, ContextRecord};
use super::MAX_HOP_CAP;
use crate::forwarded::{bits_of, ip_of};
use http::HeaderName;
use std::fmt;
use std::iter::FusedIterator;
use std::net::{IpAddr, SocketAddr};

/// Peer + PROXY source + header entries.
const HOPS: usize = MAX_HOP_CAP + 2;

/// Which input decided the client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The TCP peer.
    Socket,
    /// The source address of an accepted PROXY protocol header.
    ProxyProtocol,
    /// An entry of this request header.
    Header(HeaderName),
}

/// Why the walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stop {
    /// The current address is not a trusted proxy: it is the client. Also
    /// the reason when the peer itself is not trusted (the default).
    UntrustedHop,
    /// The next entry did not parse (or was `unknown`/obfuscated); the
    /// client is the last good hop.
    Malformed,
    /// Every entry was trusted; the leftmost is the client.
    Exhausted,
    /// The hop cap was reached with entries left; the client is the last
    /// hop read (fail closed: entries further left are never believed).
    HopCap,
    /// The peer is trusted but none of the configured headers was sent.
    HeaderAbsent,
    /// A single-address header had several lines; the client is the hop
    /// that sent them.
    Ambiguous,
    /// Non-recursive mode took its one step onto a trusted address.
    SingleStep,
    /// Hop-count mode reached the Nth entry from the right.
    HopCount,
    /// Hop-count mode: fewer entries than trusted proxies; the client is
    /// the nearest hop (the peer or PROXY source).
    TooShort,
}

impl Stop {
    /// Whether the walk found the client, rather than giving up at the
    /// nearest address it can vouch for.
    ///
    /// Conclusive: [`UntrustedHop`](Stop::UntrustedHop),
    /// [`Exhausted`](Stop::Exhausted), [`HeaderAbsent`](Stop::HeaderAbsent),
    /// [`SingleStep`](Stop::SingleStep), [`HopCount`](Stop::HopCount).
    /// Inconclusive: [`Malformed`](Stop::Malformed),
    /// [`Ambiguous`](Stop::Ambiguous), [`HopCap`](Stop::HopCap),
    /// [`TooShort`](Stop::TooShort): the address is then a trusted proxy
    /// (or the nearest hop), which is safe as a rate-limit key (abusers share
    /// the proxy's bucket) but must never grant access: an allowlist for
    /// internal ranges would let the request in.
    pub fn is_conclusive(self) -> bool {
        match self {
            Stop::UntrustedHop
            | Stop::Exhausted
            | Stop::HeaderAbsent
            | Stop::SingleStep
            | Stop::HopCount => true,
            Stop::Malformed | Stop::Ambiguous | Stop::HopCap | Stop::TooShort => false,
        }
    }

    /// Short lowercase name (`untrusted-hop`, `malformed`, ...), for logs
    /// and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::UntrustedHop => "untrusted-hop",
            Stop::Malformed => "malformed",
            Stop::Exhausted => "exhausted",
            Stop::HopCap => "hop-cap",
            Stop::HeaderAbsent => "header-absent",
            Stop::Ambiguous => "ambiguous",
            Stop::SingleStep => "single-step",
            Stop::HopCount => "hop-count",
            Stop::TooShort => "too-short",
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`Policy::resolve`](super::Policy::resolve).
///
/// Records the addresses walked: the socket peer, the PROXY source if any,
/// then each header entry read, nearest first. Except for
/// [`Stop::TooShort`], the last hop is the client.
///
/// Storage choice: the first eight hops are kept inline as
/// 128-bit slots (IPv4 kept in mapped form), which covers the peer, a PROXY
/// source and six header entries without touching the heap; a longer walk
/// moves the hops to one heap buffer sized for the hop cap. The value stays
/// small (320 bytes, context included), so building it and storing it in a
/// request's extensions copies little. The alternative, a count plus a re-walk of the
/// headers in [`Resolution::hops`], would make `hops` depend on the
/// request's headers staying unchanged after resolution; a self-contained
/// record was preferred for audit logs.
///
/// The client context ([`Resolution::context`]) is finished on the first
/// `context()` read (once; later reads and clones agree): most requests
/// never read it, and validating, lowercasing and copying it up front
/// cost more than the address walk itself. The address walk already
/// decides how far to believe the chain, and the context values are
/// positional (the step to header entry *k* takes entry *k* of each
/// context header), so the resolution keeps what the rest needs, inline
/// and self-contained (no borrow of the request: offsets into it would
/// make the record depend on the headers staying unchanged):
/// - with no context header believed, the request's own host as sent
///   (copied when short), validated on first read;
/// - with one line per context header (the common case, for a policy
///   without symmetry or allowed hosts), copies of those lines and of the
///   own host and the number of believed steps: the context walk runs on
///   first read over the copies;
/// - otherwise (repeated lines, symmetry, allowed hosts, `Forwarded`,
///   whose lexer validates each believed element's `proto` and `host` in
///   the pass that reads its `for`), the values the believed steps gave,
///   taken while resolving: scheme and port parsed, the host validated and
///   copied.
///
/// None of these allocates while resolving; a value too long to copy
/// inline is kept as a shared handle on its header line (a
/// reference-count bump for a hyper-parsed value; a `HeaderValue` built
/// from a `&str` or `Vec` is promoted by `bytes` on its first clone, one
/// allocation), and on the general path a prefix or a PROXY AUTHORITY TLV
/// makes the result computed at once (one allocation). The first read
/// allocates the result (one allocation) unless it was computed at once.
#[derive(Clone)]
pub struct Resolution {
    pub(super) ip: u128,
    /// 128-bit forms (IPv4 as mapped IPv6): aligned, tag-free storage.
    /// Holds the first `len` hops while `spill` is empty.
    inline: [u128; INLINE_HOPS],
    /// Every hop, once the walk outgrew `inline` (empty otherwise, which
    /// does not allocate).
    spill: Vec<u128>,
    pub(super) port: Option<u16>,
    len: u8,
    pub(super) stop: Stop,
    pub(super) source: Source,
    /// The client's scheme, host, port and prefix; `None` with context off.
    pub(super) context: Option<ContextRecord>,
}

/// Hops a [`Resolution`] keeps without a heap allocation: the socket peer,
/// a PROXY source and six header entries.
const INLINE_HOPS: usize = 8;

impl Resolution {
    #[inline]
    pub(super) fn new(peer: SocketAddr) -> Self {
        let ip = bits_of(peer.ip());
        let mut inline = [0; INLINE_HOPS];
        inline[0] = ip;
        Resolution {
            ip,
            inline,
            spill: Vec::new(),
            port: Some(peer.port()),
            len: 1,
            stop: Stop::UntrustedHop,
            source: Source::Socket,
            context: None,
        }
    }

    /// Records the client context. The slot is empty until then (only the
    /// walk sets it); matching on it lets the compiler see that, so the
    /// write drops nothing (a plain assignment calls the record's drop
    /// glue, and `Option::replace` moves the record twice: 10-20
    /// instructions per resolution).
    #[inline(always)]
    pub(super) fn set_context(&mut self, c: ContextRecord) {
        match &mut self.context {
            slot @ None => *slot = Some(c),
            slot => *slot = Some(c),
        }
    }

    /// A client known only by its address, for `realip::testing`.
    #[cfg(feature = "tower")]
    pub(crate) fn direct(ip: IpAddr, port: Option<u16>) -> Self {
        let mut r = Self::new(SocketAddr::new(ip, port.unwrap_or(0)));
        r.port = port;
        r
    }

    #[inline]
    pub(super) fn step(&mut self, bits: u128, port: Option<u16>) {
        self.ip = bits;
        self.port = port;
        self.push(bits);
    }

    /// Records a hop without making it the client (yet).
    #[inline]
    pub(super) fn push(&mut self, bits: u128) {
        match self.inline.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = bits;
                self.len += 1;
            }
            None => self.step_spilled(bits),
        }
    }

    /// A hop beyond the inline slots: long chains only.
    #[cold]
    #[inline(never)]
    fn step_spilled(&mut self, bits: u128) {
        if self.spill.is_empty() {
            self.spill.reserve_exact(HOPS);
            self.spill.extend_from_slice(&self.inline);
        }
        // The walk reads at most MAX_HOP_CAP entries, so this always fits.
        if self.spill.len() < HOPS {
            self.spill.push(bits);
        }
    }

    fn hop_bits(&self) -> &[u128] {
        if self.spill.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &self.spill
        }
    }

    /// The client address (IPv4-mapped IPv6 normalized to IPv4).
    #[inline]
    pub fn ip(&self) -> IpAddr {
        ip_of(self.ip)
    }

    /// The client address in its 128-bit form (IPv4 as mapped IPv6), for
    /// range lookups without a conversion.
    #[cfg(feature = "filter")]
    #[inline]
    pub(crate) fn ip_bits(&self) -> u128 {
        self.ip
    }

    /// The client port, when the deciding source carried one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The client address with its port, when the port is known.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.port.map(|p| SocketAddr::new(self.ip(), p))
    }

    /// Which input decided the address.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Why the walk stopped.
    pub fn stop(&self) -> Stop {
        self.stop
    }

    /// Whether the walk found the client ([`Stop::is_conclusive`]). An
    /// inconclusive result names the nearest address the policy can vouch
    /// for (a trusted proxy): fine for logs and rate-limit keys, never for
    /// granting access.
    pub fn is_conclusive(&self) -> bool {
        self.stop.is_conclusive()
    }

    /// The client's scheme, host, port and prefix, from the same walk;
    /// `None` when the policy has context off. The first read finishes
    /// what the resolution recorded (it runs the context walk over the
    /// copied lines, or validates and copies the host) and keeps the
    /// result, one allocation; later reads reuse it.
    pub fn context(&self) -> Option<&ClientContext> {
        self.context.as_ref().map(ContextRecord::get)
    }

    /// The addresses walked, nearest first (socket peer first).
    pub fn hops(&self) -> Hops<'_> {
        Hops {
            inner: self.hop_bits().iter(),
        }
    }
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolution")
            .field("ip", &self.ip())
            .field("port", &self.port)
            .field("source", self.source())
            .field("stop", &self.stop)
            .field("hops", &self.hops())
            .field("context", &self.context())
            .finish()
    }
}

/// Iterator over [`Resolution::hops`], nearest first.
#[derive(Clone)]
pub struct Hops<'a> {
    inner: std::slice::Iter<'a, u128>,
}

impl Iterator for Hops<'_> {
    type Item = IpAddr;

    #[inline]
    fn next(&mut self) -> Option<IpAddr> {
        self.inner.next().map(|&b| ip_of(b))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Hops<'_> {
    fn next_back(&mut self) -> Option<IpAddr> {
        self.inner.next_back().map(|&b| ip_of(b))
    }
}

impl ExactSizeIterator for Hops<'_> {}
impl FusedIterator for Hops<'_> {}

impl fmt::Debug for Hops<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}
