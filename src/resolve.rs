//! Client-address resolution: the one decision point.
//!
//! A [`Policy`] is built once (invalid combinations are a [`ConfigError`]
//! then, not a surprise per request) and [`Policy::resolve`] turns a
//! request's socket peer, the accepted PROXY protocol source (if any) and its
//! headers into a [`Resolution`]: the client address, its port when known,
//! which source decided it, the hops walked and why the walk stopped.
//!
//! The pipeline peels one trusted hop at a time:
//!
//! 1. start from the socket peer;
//! 2. a PROXY protocol source replaces it;
//! 3. while the current address is a trusted proxy, step one entry left in
//!    the configured header (a policy reads exactly one). The first untrusted
//!    entry is the client. A malformed entry (`garbage`, `unknown`,
//!    `_hidden`) ends the walk at the last good hop; nothing is skipped.
//!    If every entry is trusted, the leftmost is the client.
//!
//! IPv4-mapped IPv6 is normalized to IPv4 everywhere; header entries with an
//! IPv6 zone (`fe80::1%eth0`) are never trusted. The socket peer's own scope
//! id is set by the kernel, not by the client, and does not affect trust.
//! The walk reads at most [`Policy::hop_cap`] entries (default 32), so the
//! work per request is bounded whatever the header holds.
//!
//! The default policy trusts no proxy: the client is the socket peer, or the
//! PROXY source when the listener accepted a header.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use realip::resolve::{HeaderSource, Policy, Source, Stop};
//! use std::net::SocketAddr;
//!
//! let policy = Policy::builder()
//!     .trust_private()
//!     .header(HeaderSource::XForwardedFor)
//!     .build()?;
//!
//! let mut headers = HeaderMap::new();
//! // The client forged the first entry; 10.0.0.7 is an internal proxy.
//! headers.insert(
//!     "x-forwarded-for",
//!     HeaderValue::from_static("6.6.6.6, 203.0.113.9:5123, 10.0.0.7"),
//! );
//! let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
//! let r = policy.resolve(peer, None, &headers);
//! assert_eq!(r.ip(), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
//! assert_eq!(r.port(), Some(5123));
//! assert_eq!(r.stop(), Stop::UntrustedHop);
//! assert!(matches!(r.source(), Source::Header(h) if h == "x-forwarded-for"));
//! assert_eq!(r.hops().len(), 3); // peer, 10.0.0.7, 203.0.113.9
//!
//! // Secure default: nothing is trusted, headers are ignored.
//! let r = Policy::default().resolve(peer, None, &headers);
//! assert_eq!(r.ip(), peer.ip());
//! # Ok::<(), realip::trust::ConfigError>(())
//! ```

use crate::forwarded::{self, bits_of, ip_of, rfc7239, single, xff, Raw, RawEntries};
#[cfg(feature = "live")]
use crate::trust::live::LiveTrust;
use crate::trust::TrustedProxies;
pub use crate::trust::{ConfigError, ConfigErrorKind};
use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use std::fmt;
use std::iter::FusedIterator;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// Default bound on the header entries read per request.
pub const DEFAULT_HOP_CAP: usize = 32;
/// Largest configurable hop cap; it bounds the hops a [`Resolution`] keeps.
pub const MAX_HOP_CAP: usize = 32;
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

/// Sources shared by every [`Resolution`]: recording one copies a pointer,
/// where cloning a custom [`HeaderName`] calls through its `Bytes` vtable
/// (and dropping it again). Only headers configured by a custom name
/// that is none of these are cloned.
static SOCKET: Source = Source::Socket;
static PROXY_PROTOCOL: Source = Source::ProxyProtocol;
static BUILTIN_HEADERS: [Source; 8] = [
    Source::Header(forwarded::X_FORWARDED_FOR),
    Source::Header(forwarded::FORWARDED),
    Source::Header(forwarded::X_REAL_IP),
    Source::Header(forwarded::CF_CONNECTING_IP),
    Source::Header(forwarded::TRUE_CLIENT_IP),
    Source::Header(forwarded::FLY_CLIENT_IP),
    Source::Header(forwarded::X_ENVOY_EXTERNAL_ADDRESS),
    Source::Header(forwarded::CLOUDFRONT_VIEWER_ADDRESS),
];

/// A [`Source`] as a [`Resolution`] records it.
#[derive(Debug)]
enum Recorded {
    /// One of the statics above.
    Shared(&'static Source),
    /// A custom header name.
    Owned(Source),
}

impl Clone for Recorded {
    /// A pointer copy for the shared ones, inlined into the walk.
    #[inline(always)]
    fn clone(&self) -> Self {
        match self {
            Recorded::Shared(s) => Recorded::Shared(s),
            Recorded::Owned(s) => Recorded::Owned(s.clone()),
        }
    }
}

impl std::ops::Deref for Recorded {
    type Target = Source;

    #[inline]
    fn deref(&self) -> &Source {
        match self {
            Recorded::Shared(s) => s,
            Recorded::Owned(s) => s,
        }
    }
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

/// The outcome of [`Policy::resolve`].
///
/// Records the addresses walked: the socket peer, the PROXY source if any,
/// then each header entry read, nearest first. Except for
/// [`Stop::TooShort`], the last hop is the client.
///
/// Storage choice: the first eight hops are kept inline as
/// 128-bit slots (IPv4 kept in mapped form), which covers the peer, a PROXY
/// source and six header entries without touching the heap; a longer walk
/// moves the hops to one heap buffer sized for the hop cap. The value stays
/// small (about 200 bytes), so building it and storing it in a request's
/// extensions copies little. The alternative, a count plus a re-walk of the
/// headers in [`Resolution::hops`], would make `hops` depend on the
/// request's headers staying unchanged after resolution; a self-contained
/// record was preferred for audit logs.
#[derive(Clone)]
pub struct Resolution {
    ip: u128,
    /// 128-bit forms (IPv4 as mapped IPv6): aligned, tag-free storage.
    /// Holds the first `len` hops while `spill` is empty.
    inline: [u128; INLINE_HOPS],
    /// Every hop, once the walk outgrew `inline` (empty otherwise, which
    /// does not allocate).
    spill: Vec<u128>,
    port: Option<u16>,
    len: u8,
    stop: Stop,
    source: Recorded,
}

/// Hops a [`Resolution`] keeps without a heap allocation: the socket peer,
/// a PROXY source and six header entries.
const INLINE_HOPS: usize = 8;

impl Resolution {
    #[inline]
    fn new(peer: SocketAddr) -> Self {
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
            source: Recorded::Shared(&SOCKET),
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
    fn step(&mut self, bits: u128, port: Option<u16>) {
        self.ip = bits;
        self.port = port;
        self.push(bits);
    }

    /// Records a hop without making it the client (yet).
    #[inline]
    fn push(&mut self, bits: u128) {
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

/// The header a policy reads the client from (exactly one per policy).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderSource {
    /// `X-Forwarded-For` list.
    XForwardedFor,
    /// RFC 7239 `Forwarded` list.
    Forwarded,
    /// `X-Real-IP` (single address).
    XRealIp,
    /// `CF-Connecting-IP` (single address).
    CfConnectingIp,
    /// `True-Client-IP` (single address).
    TrueClientIp,
    /// `Fly-Client-IP` (single address).
    FlyClientIp,
    /// `X-Envoy-External-Address` (single address).
    XEnvoyExternalAddress,
    /// `CloudFront-Viewer-Address` (`ip:port`, IPv6 unbracketed).
    CloudFrontViewerAddress,
    /// A custom single-address header.
    Single(HeaderName),
    /// A custom header in `X-Forwarded-For` list syntax.
    List(HeaderName),
}

impl HeaderSource {
    /// The header name read.
    pub fn name(&self) -> HeaderName {
        match self {
            HeaderSource::XForwardedFor => forwarded::X_FORWARDED_FOR,
            HeaderSource::Forwarded => forwarded::FORWARDED,
            HeaderSource::XRealIp => forwarded::X_REAL_IP,
            HeaderSource::CfConnectingIp => forwarded::CF_CONNECTING_IP,
            HeaderSource::TrueClientIp => forwarded::TRUE_CLIENT_IP,
            HeaderSource::FlyClientIp => forwarded::FLY_CLIENT_IP,
            HeaderSource::XEnvoyExternalAddress => forwarded::X_ENVOY_EXTERNAL_ADDRESS,
            HeaderSource::CloudFrontViewerAddress => forwarded::CLOUDFRONT_VIEWER_ADDRESS,
            HeaderSource::Single(n) | HeaderSource::List(n) => n.clone(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            HeaderSource::XForwardedFor | HeaderSource::List(_) => Kind::List,
            HeaderSource::Forwarded => Kind::Forwarded,
            HeaderSource::CloudFrontViewerAddress => Kind::CloudFront,
            _ => Kind::Single,
        }
    }
}

impl FromStr for HeaderSource {
    type Err = ConfigError;

    /// A header by name, case-insensitively: `x-forwarded-for`,
    /// `forwarded`, `x-real-ip`, `cf-connecting-ip`, `true-client-ip`,
    /// `fly-client-ip`, `x-envoy-external-address`,
    /// `cloudfront-viewer-address`; any other valid name is a custom
    /// single-address header ([`HeaderSource::Single`]). A custom list
    /// header ([`HeaderSource::List`]) has no text form.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::try_from(s).map_err(|_| {
            ConfigError::new(
                ConfigErrorKind::InvalidValue,
                format!("`{s}` is not a header name"),
            )
        })?;
        Ok(
            match [
                HeaderSource::XForwardedFor,
                HeaderSource::Forwarded,
                HeaderSource::XRealIp,
                HeaderSource::CfConnectingIp,
                HeaderSource::TrueClientIp,
                HeaderSource::FlyClientIp,
                HeaderSource::XEnvoyExternalAddress,
                HeaderSource::CloudFrontViewerAddress,
            ]
            .into_iter()
            .find(|known| known.name() == name)
            {
                Some(known) => known,
                None => HeaderSource::Single(name),
            },
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Forwarded,
    Single,
    CloudFront,
}

#[derive(Clone, Debug)]
struct Spec {
    name: HeaderName,
    kind: Kind,
    /// `Source::Header(name)`, shared when the name is a built-in one.
    source: Recorded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ranges { recursive: bool },
    Count(usize),
}

#[derive(Debug)]
struct Inner {
    trusted: TrustedProxies,
    /// Read instead of `trusted` when set: one set per request, swapped live.
    #[cfg(feature = "live")]
    live: Option<LiveTrust>,
    spec: Option<Spec>,
    mode: Mode,
    cap: usize,
}

/// A validated resolution policy. Cheap to clone (shared), `Send + Sync`.
///
/// Modes:
/// - **trusted ranges, recursive** (default once ranges are given): walk
///   left while the current address is trusted (nginx
///   `real_ip_recursive on`);
/// - **trusted ranges, non-recursive**: one step at most (nginx
///   `real_ip_recursive off`);
/// - **hop count** (`trusted_hops(n)`): `n` proxies stand in front of the
///   app. The chain is the socket peer (entry 0), then the PROXY source
///   when the listener accepted a header, then the header's entries right
///   to left; the client is entry `n`. A load balancer that sends PROXY is
///   one of the `n`. A shorter chain fails closed to the nearest hop
///   ([`Stop::TooShort`]); a zoned entry (`fe80::1%eth0`) ends the walk as
///   the client.
///
/// Configuration rules, checked by [`PolicyBuilder::build`]:
/// - trust (ranges or a hop count) without any header is an error, and so
///   is a header without any trust: such a header could never be believed,
///   which is almost always a forgotten `trust_*` call. The secure default
///   (no trust, no header) is [`Policy::default`];
/// - hop count 0, hop count with recursion off, hop count together with
///   trusted ranges, hop count above the hop cap: errors;
/// - hop cap 0 or above [`MAX_HOP_CAP`]: error;
/// - a header name containing `_` (look-alike of a dashed name, which some
///   servers conflate): error;
/// - more than one header: error. With two (say `X-Real-IP` and
///   `X-Forwarded-For` behind an nginx that appends the second but passes
///   the first through), the client picks the one its proxy does not
///   overwrite. Deployments with several kinds of proxy use one policy
///   (one layer) per router.
#[derive(Clone, Debug)]
pub struct Policy {
    inner: Arc<Inner>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            inner: Arc::new(Inner {
                trusted: TrustedProxies::new(),
                #[cfg(feature = "live")]
                live: None,
                spec: None,
                mode: Mode::Ranges { recursive: true },
                cap: DEFAULT_HOP_CAP,
            }),
        }
    }
}

impl Policy {
    /// The secure default: trusts no proxy and reads no header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a policy configuration.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// The trusted ranges (empty for a policy reading a live set).
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted
    }

    /// The live set the policy reads, if built with
    /// [`PolicyBuilder::live_trust`].
    #[cfg(feature = "live")]
    pub fn live_trust(&self) -> Option<&LiveTrust> {
        self.inner.live.as_ref()
    }

    /// The most header entries read per request.
    pub fn hop_cap(&self) -> usize {
        self.inner.cap
    }

    /// Resolves the client of one request.
    ///
    /// `proxy_source` is the accepted PROXY header's source address (`None`
    /// when there was no header, or it was LOCAL/UNKNOWN/AF_UNSPEC).
    // Out of line, with the walk inlined into it: the result is set up
    // and filled in one frame (inlining it into callers cost more).
    #[inline(never)]
    pub fn resolve(
        &self,
        peer: SocketAddr,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Resolution {
        let mut r = Resolution::new(peer);
        let inner = &*self.inner;
        #[cfg(feature = "live")]
        if let Some(live) = &inner.live {
            live.with(|trusted| {
                Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers)
            });
            return r;
        }
        let trusted = &inner.trusted;
        Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers);
        r
    }
}

/// One request's walk: the policy and the one trusted set it reads.
struct Walker<'a> {
    inner: &'a Inner,
    trusted: &'a TrustedProxies,
}

impl Walker<'_> {
    #[inline(always)]
    fn resolve_into(
        &self,
        r: &mut Resolution,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
    ) {
        let inner = self.inner;
        if let Some(src) = proxy_source {
            r.step(bits_of(src.ip()), Some(src.port()));
            r.source = Recorded::Shared(&PROXY_PROTOCOL);
        }
        let Some(spec) = &inner.spec else {
            r.stop = Stop::UntrustedHop;
            return;
        };
        match inner.mode {
            Mode::Ranges { .. } if !self.trusted.contains_bits(r.ip) => {
                r.stop = Stop::UntrustedHop;
                return;
            }
            // The PROXY source is the first counted hop: with one proxy in
            // front, it is the client and no header is read.
            Mode::Count(1) if proxy_source.is_some() => {
                r.stop = Stop::HopCount;
                return;
            }
            _ => {}
        }
        let value = match lookup(headers, &spec.name) {
            Lookup::Absent => {
                r.stop = match inner.mode {
                    Mode::Ranges { .. } => Stop::HeaderAbsent,
                    Mode::Count(_) => Stop::TooShort,
                };
                return;
            }
            Lookup::One(value) => value,
            Lookup::Many if matches!(spec.kind, Kind::Single | Kind::CloudFront) => {
                r.stop = Stop::Ambiguous;
                return;
            }
            Lookup::Many => {
                // Repeated lines: walk them in order, the last first.
                let lines = headers.get_all(&spec.name);
                if spec.kind == Kind::List {
                    self.walk(r, &spec.source, proxy_source, xff::Entries::new(lines));
                } else {
                    self.walk(r, &spec.source, proxy_source, rfc7239::Entries::new(lines));
                }
                return;
            }
        };
        match spec.kind {
            Kind::List => self.walk(r, &spec.source, proxy_source, xff::Line::new(value)),
            Kind::Forwarded => {
                self.walk(r, &spec.source, proxy_source, rfc7239::Line::new(value));
            }
            Kind::Single | Kind::CloudFront => {
                let node = if spec.kind == Kind::Single {
                    single::parse_single_raw(value)
                } else {
                    single::parse_cloudfront_raw(value)
                };
                self.walk(r, &spec.source, proxy_source, Some(node));
            }
        }
    }

    #[inline]
    fn walk(
        &self,
        r: &mut Resolution,
        source: &Recorded,
        proxy_source: Option<SocketAddr>,
        mut entries: impl RawEntries,
    ) {
        let inner = self.inner;
        match inner.mode {
            Mode::Ranges { recursive } => {
                // The client address and port are written once, when the
                // walk stops, rather than at each hop.
                let limit = if recursive { inner.cap } else { 1 };
                let mut read = 0;
                let mut last = (r.ip, r.port);
                let stop = loop {
                    let (bits, port, zoned) = match entries.next_raw() {
                        Some(Raw::Ip { bits, port, zoned }) => (bits, port, zoned),
                        Some(_) => break Stop::Malformed,
                        None => break Stop::Exhausted,
                    };
                    read += 1;
                    r.push(bits);
                    last = (bits, port);
                    if zoned || !self.trusted.contains_bits(bits) {
                        break Stop::UntrustedHop;
                    }
                    if read == limit {
                        break if !recursive {
                            Stop::SingleStep
                        } else if entries.next_raw().is_none() {
                            Stop::Exhausted
                        } else {
                            Stop::HopCap
                        };
                    }
                };
                if read > 0 {
                    (r.ip, r.port) = last;
                    r.source = source.clone();
                }
                r.stop = stop;
            }
            Mode::Count(n) => {
                // Entry 0 is the socket peer, entry 1 the PROXY source when
                // there is one: the header supplies the rest.
                let from_header = n - usize::from(proxy_source.is_some());
                let (ip, port) = (r.ip, r.port);
                let anchor = r.source.clone();
                for k in 1..=from_header {
                    match entries.next_raw() {
                        Some(Raw::Ip { bits, port, zoned }) => {
                            if k == 1 {
                                r.source = source.clone();
                            }
                            r.step(bits, port);
                            if k == from_header {
                                r.stop = Stop::HopCount;
                                return;
                            }
                            if zoned {
                                // A zoned address is never a proxy.
                                r.stop = Stop::UntrustedHop;
                                return;
                            }
                        }
                        Some(_) => {
                            r.stop = Stop::Malformed;
                            return;
                        }
                        None => break,
                    }
                }
                // Too short: back to the anchor (socket or PROXY source).
                r.ip = ip;
                r.port = port;
                r.source = anchor;
                r.stop = Stop::TooShort;
            }
        }
    }
}

/// How many lines of one header a request carries.
enum Lookup<'a> {
    Absent,
    One(&'a [u8]),
    Many,
}

/// Requests with at most this many header lines are searched by a scan.
const SCAN_MAX: usize = 12;

/// Finds the lines of `name`. `HeaderMap` hashes a non-standard name such
/// as `x-forwarded-for` byte by byte (FNV over the name plus length and
/// tag words) before probing, which costs more than comparing the names of
/// a typical request's few header lines, where the standard names differ
/// from a custom one by their tag alone. Larger maps use the hashed lookup.
#[inline]
fn lookup<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Lookup<'a> {
    if headers.len() > SCAN_MAX {
        let mut lines = headers.get_all(name).into_iter();
        return match (lines.next(), lines.next()) {
            (None, _) => Lookup::Absent,
            (Some(v), None) => Lookup::One(v.as_bytes()),
            (Some(_), Some(_)) => Lookup::Many,
        };
    }
    let mut found = Lookup::Absent;
    for (k, v) in headers {
        if k == name {
            if let Lookup::One(_) = found {
                return Lookup::Many;
            }
            found = Lookup::One(v.as_bytes());
        }
    }
    found
}

/// Builds a [`Policy`]; every mistake surfaces in [`PolicyBuilder::build`].
///
/// ```
/// use realip::resolve::{HeaderSource, Policy};
/// use realip::trust::ConfigErrorKind;
///
/// // A CDN in front of a load balancer: two proxies, count them.
/// let p = Policy::builder().trusted_hops(2).header(HeaderSource::XForwardedFor).build();
/// assert!(p.is_ok());
///
/// let err = Policy::builder().header(HeaderSource::XRealIp).build().unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::HeaderWithoutTrust);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct PolicyBuilder {
    /// Collected as given; the lookup index is built once, in `build`.
    nets: Vec<IpNet>,
    sources: Vec<HeaderSource>,
    recursive: Option<bool>,
    trusted_hops: Option<usize>,
    hop_cap: Option<usize>,
    #[cfg(feature = "live")]
    live: Option<LiveTrust>,
}

impl PolicyBuilder {
    /// Trusts one network (a mapped-form range fails at `build`). Calling
    /// it once per range costs no more than [`trust_all`](Self::trust_all):
    /// the lookup index is built once, by `build`.
    pub fn trust(mut self, net: IpNet) -> Self {
        self.nets.push(net);
        self
    }

    /// Trusts many networks.
    pub fn trust_all<I: IntoIterator<Item = IpNet>>(mut self, nets: I) -> Self {
        self.nets.extend(nets);
        self
    }

    /// Trusts every network of a prepared set.
    pub fn trusted_proxies(mut self, set: &TrustedProxies) -> Self {
        self.nets.extend(set.iter().copied());
        self
    }

    /// Trusts the CGNAT shared address space ([`TrustedProxies::cgnat`]),
    /// for platforms whose load balancers live there.
    pub fn trust_cgnat(self) -> Self {
        self.trusted_proxies(&TrustedProxies::cgnat())
    }

    /// Trusts link-local networks ([`TrustedProxies::link_local`]).
    pub fn trust_link_local(self) -> Self {
        self.trusted_proxies(&TrustedProxies::link_local())
    }

    /// Trusts the networks of a live set, read anew by each request
    /// ([`LiveTrust`]); your fixed ranges go in its base, so this cannot be
    /// combined with the other `trust*` calls.
    #[cfg(feature = "live")]
    pub fn live_trust(mut self, live: LiveTrust) -> Self {
        self.live = Some(live);
        self
    }

    /// Trusts loopback ([`TrustedProxies::loopback`]).
    pub fn trust_loopback(self) -> Self {
        self.trusted_proxies(&TrustedProxies::loopback())
    }

    /// Trusts RFC 1918, IPv6 ULA and loopback networks ([`TrustedProxies::private`]).
    pub fn trust_private(self) -> Self {
        self.trusted_proxies(&TrustedProxies::private())
    }

    /// The header to read the client from. A policy reads exactly one:
    /// a second call is an error at [`build`](Self::build)
    /// ([`ConfigErrorKind::SeveralHeaders`]).
    pub fn header(mut self, source: HeaderSource) -> Self {
        self.sources.push(source);
        self
    }

    /// Walks left while hops are trusted (`true`, the default) or takes at
    /// most one step (`false`).
    pub fn recursive(mut self, on: bool) -> Self {
        self.recursive = Some(on);
        self
    }

    /// Hop-count mode: `n` trusted proxies in front of the app.
    pub fn trusted_hops(mut self, n: usize) -> Self {
        self.trusted_hops = Some(n);
        self
    }

    /// Most header entries read per request (default
    /// [`DEFAULT_HOP_CAP`], at most [`MAX_HOP_CAP`]).
    pub fn hop_cap(mut self, cap: usize) -> Self {
        self.hop_cap = Some(cap);
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// See [`Policy`] for the rules.
    pub fn build(self) -> Result<Policy, ConfigError> {
        use ConfigErrorKind as K;
        let trusted = TrustedProxies::from_nets(self.nets)?;
        let cap = self.hop_cap.unwrap_or(DEFAULT_HOP_CAP);
        if cap == 0 || cap > MAX_HOP_CAP {
            return Err(ConfigError::new(
                K::HopCap,
                format!("hop cap must be between 1 and {MAX_HOP_CAP}, got {cap}"),
            ));
        }
        #[cfg(feature = "live")]
        if self.live.is_some() && !trusted.is_empty() {
            return Err(ConfigError::new(
                K::LiveWithRanges,
                "live_trust holds every trusted range: put fixed ranges in LiveTrust::new(base)",
            ));
        }
        #[cfg(feature = "live")]
        let has_ranges = !trusted.is_empty() || self.live.is_some();
        #[cfg(not(feature = "live"))]
        let has_ranges = !trusted.is_empty();
        let mode = match self.trusted_hops {
            Some(0) => {
                return Err(ConfigError::new(
                    K::ZeroHopCount,
                    "trusted_hops(0) trusts no proxy; use Policy::default() for that",
                ))
            }
            Some(_) if self.recursive == Some(false) => {
                return Err(ConfigError::new(
                    K::HopCountWithoutRecursion,
                    "trusted_hops counts proxies and cannot be combined with recursive(false)",
                ))
            }
            Some(_) if has_ranges => {
                return Err(ConfigError::new(
                    K::HopCountWithRanges,
                    "choose either trusted ranges or trusted_hops, not both",
                ))
            }
            Some(n) if n > cap => {
                return Err(ConfigError::new(
                    K::HopCountAboveCap,
                    format!("trusted_hops({n}) exceeds the hop cap ({cap})"),
                ))
            }
            Some(n) => Mode::Count(n),
            None => Mode::Ranges {
                recursive: self.recursive.unwrap_or(true),
            },
        };
        if self.sources.len() > 1 {
            let names: Vec<String> = self.sources.iter().map(|s| s.name().to_string()).collect();
            return Err(ConfigError::new(
                K::SeveralHeaders,
                format!(
                    "a policy reads exactly one address header, got {}: the client would \
                     pick whichever its proxy does not overwrite; use one policy (one \
                     RealIpLayer) per router for each kind of proxy",
                    names.join(", ")
                ),
            ));
        }
        let mut specs: Vec<Spec> = Vec::with_capacity(1);
        for source in &self.sources {
            let name = source.name();
            if name.as_str().contains('_') {
                return Err(ConfigError::new(
                    K::UnderscoreHeaderName,
                    format!(
                        "header name `{name}` contains `_`; use dashes (underscore \
                         look-alikes are never read)"
                    ),
                ));
            }
            let shared = BUILTIN_HEADERS
                .iter()
                .find(|s| matches!(s, Source::Header(n) if *n == name));
            specs.push(Spec {
                source: shared.map_or_else(
                    || Recorded::Owned(Source::Header(name.clone())),
                    Recorded::Shared,
                ),
                name,
                kind: source.kind(),
            });
        }
        let has_trust = has_ranges || self.trusted_hops.is_some();
        if specs.is_empty() && (has_trust || self.recursive.is_some()) {
            return Err(ConfigError::new(
                K::NoHeaderSource,
                "proxies are trusted but no header is configured to read the client from",
            ));
        }
        if !specs.is_empty() && !has_trust {
            return Err(ConfigError::new(
                K::HeaderWithoutTrust,
                "a header is configured but no proxy is trusted to send it; add trusted \
                 ranges (trust_private, trust) or trusted_hops",
            ));
        }
        Ok(Policy {
            inner: Arc::new(Inner {
                trusted,
                #[cfg(feature = "live")]
                live: self.live,
                spec: specs.pop(),
                mode,
                cap,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_source_from_str() {
        for known in [
            HeaderSource::XForwardedFor,
            HeaderSource::Forwarded,
            HeaderSource::XRealIp,
            HeaderSource::CfConnectingIp,
            HeaderSource::TrueClientIp,
            HeaderSource::FlyClientIp,
            HeaderSource::XEnvoyExternalAddress,
            HeaderSource::CloudFrontViewerAddress,
        ] {
            assert_eq!(
                known.name().as_str().parse::<HeaderSource>(),
                Ok(known.clone())
            );
            let upper = known.name().as_str().to_ascii_uppercase();
            assert_eq!(upper.parse::<HeaderSource>(), Ok(known));
        }
        assert_eq!(
            "X-Client".parse::<HeaderSource>(),
            Ok(HeaderSource::Single(HeaderName::from_static("x-client")))
        );
        for bad in ["", "bad header", "x-a\u{e9}", "a:b"] {
            let err = bad.parse::<HeaderSource>().unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::InvalidValue, "{bad:?}");
        }
    }

    #[test]
    fn policy_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + fmt::Debug>() {}
        check::<Policy>();
        check::<Resolution>();
    }

    /// The scan used for small header maps and the hashed lookup used for
    /// large ones decide alike: absent, one line, repeated lines.
    #[test]
    fn small_and_large_header_maps_resolve_alike() {
        use http::HeaderValue;
        let policies: Vec<Policy> = [
            HeaderSource::XRealIp,
            HeaderSource::Forwarded,
            HeaderSource::XForwardedFor,
        ]
        .into_iter()
        .map(|h| Policy::builder().trust_private().header(h).build().unwrap())
        .collect();
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("x-forwarded-for", "203.0.113.9, 10.0.0.5")],
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-for", "10.0.0.5"),
            ],
            &[
                ("forwarded", "for=203.0.113.9"),
                ("x-forwarded-for", "6.6.6.6"),
            ],
            &[
                ("forwarded", "for=198.51.100.1"),
                ("forwarded", "for=10.0.0.6"),
            ],
            &[("x-real-ip", "203.0.113.9")],
            &[("x-real-ip", "203.0.113.9"), ("x-real-ip", "198.51.100.1")],
        ];
        for case in cases {
            let mut small = HeaderMap::new();
            for (name, value) in *case {
                small.append(*name, HeaderValue::from_static(value));
            }
            let mut large = small.clone();
            for i in 0..=SCAN_MAX {
                let name = HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap();
                large.append(name, HeaderValue::from_static("x"));
            }
            assert!(small.len() <= SCAN_MAX && large.len() > SCAN_MAX);
            for policy in &policies {
                let (a, b) = (
                    policy.resolve(peer, None, &small),
                    policy.resolve(peer, None, &large),
                );
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{case:?}");
            }
        }
    }

    /// The conclusive/inconclusive split DESIGN.md decides, stop by stop.
    #[test]
    fn conclusive_stops() {
        use Stop::*;
        for stop in [UntrustedHop, Exhausted, HeaderAbsent, SingleStep, HopCount] {
            assert!(stop.is_conclusive(), "{stop}");
        }
        for stop in [Malformed, Ambiguous, HopCap, TooShort] {
            assert!(!stop.is_conclusive(), "{stop}");
        }
    }

    /// Trusting ranges one call at a time builds the index once: 10,000
    /// `/20`s through `trust` give the same set as `trust_all`.
    #[test]
    fn trust_one_by_one_equals_trust_all() {
        let nets: Vec<IpNet> = (0..10_000u32)
            .map(|i| IpNet::V4(ipnet::Ipv4Net::new((i << 12).into(), 20).unwrap()))
            .collect();
        let mut b = Policy::builder().header(HeaderSource::XForwardedFor);
        for n in &nets {
            b = b.trust(*n);
        }
        let one = b.build().unwrap();
        let all = Policy::builder()
            .trust_all(nets)
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap();
        assert_eq!(one.trusted_proxies().len(), 10_000);
        assert_eq!(
            one.trusted_proxies().interval_count(),
            all.trusted_proxies().interval_count()
        );
    }
}
