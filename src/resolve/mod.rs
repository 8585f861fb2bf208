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
//! The same walk gives the client's scheme, host, port and prefix
//! ([`Resolution::context`], [`ClientContext`]): each step the address walk
//! believes may also take the matching entry of the context headers
//! (`X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix`) or the `Forwarded`
//! element's `proto` and `host`. It is on by default whenever an address
//! header is configured (it believes no one the address walk does not).
//! Validating and copying the context waits for the first read of
//! [`Resolution::context`] (the resolution keeps copies of what it needs);
//! resolving allocates nothing, but costs 1.2x to 1.4x the address walk's
//! instructions without context headers and 1.6x to 3.2x with them
//! (README, "The client context"); see [`PolicyBuilder::context`] and
//! [`Policy::resolve_with`].
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

mod context;
mod resolution;

pub use self::context::{
    ClientContext, ConnectionView, ContextHeaders, ContextSource, ContextStop, Field, Scheme,
    X_FORWARDED_HOST, X_FORWARDED_PORT, X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_FORWARDED_SSL,
};
use self::context::{
    ContextConfig, ContextRecord, Elements, Follow, HostPattern, Kept, OwnView, Reader, StepCount,
    Steps, Walk,
};
pub use self::resolution::{Hops, Resolution, Source, Stop};
use crate::forwarded::{self, bits_of, rfc7239, single, xff, Raw, RawEntries};
#[cfg(feature = "live")]
use crate::trust::live::LiveTrust;
use crate::trust::TrustedProxies;
pub use crate::trust::{ConfigError, ConfigErrorKind};
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

/// Default bound on the header entries read per request.
pub const DEFAULT_HOP_CAP: usize = 32;
/// Largest configurable hop cap; it bounds the hops a [`Resolution`] keeps.
pub const MAX_HOP_CAP: usize = 32;

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
    /// `Source::Header(name)`, cloned into each resolution that reads it.
    source: Source,
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
    /// Client-context settings; `None` with context off.
    context: Option<ContextConfig>,
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
/// - context options (context headers, symmetry, allowed hosts) with
///   context off, an allowed host that is neither a name nor `*.` and one,
///   a context header name with `_`: errors;
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
                context: None,
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

    /// Resolves the client of one request, with the client context from
    /// a plain connection ([`ConnectionView::new`]: `http`, host from the
    /// `Host` header); see [`resolve_with`](Self::resolve_with).
    ///
    /// `proxy_source` is the accepted PROXY header's source address (`None`
    /// when there was no header, or it was LOCAL/UNKNOWN/AF_UNSPEC).
    // Its own out-of-line copy of the address walk, so that a policy with
    // context off pays nothing for the context machinery.
    #[inline(never)]
    pub fn resolve(
        &self,
        peer: SocketAddr,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Resolution {
        // The walk is written into this frame's result directly (returning
        // `resolve_with`'s result would copy it). Both entry points spell
        // out the live branch: shared through an inlined helper, the live
        // set's thread-local read stopped being inlined (a 1-hop walk
        // through a live set took 1.13x a fixed set's instructions, 1.03x
        // written out).
        let view = &ConnectionView::new();
        let mut r = Resolution::new(peer);
        let inner = &*self.inner;
        #[cfg(feature = "live")]
        if let Some(live) = &inner.live {
            let walked = live.with_cached(|trusted| {
                Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view)
            });
            if walked.is_none() {
                live.with_guard(|trusted| {
                    Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view)
                });
            }
            return r;
        }
        let trusted = &inner.trusted;
        Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view);
        r
    }

    /// Resolves the client of one request and, unless context is off, its
    /// scheme, host, port and prefix, starting from what `view` says about
    /// the connection (TLS on the listener, the PROXY header's TLVs, the
    /// request's authority).
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use realip::resolve::{ConnectionView, ContextSource, HeaderSource, Policy, Scheme};
    ///
    /// let policy = Policy::builder()
    ///     .trust_private()
    ///     .header(HeaderSource::XForwardedFor)
    ///     .context(true)
    ///     .build()?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("host", HeaderValue::from_static("10.0.0.2:8080"));
    /// headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    /// headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    /// headers.insert("x-forwarded-host", HeaderValue::from_static("shop.example"));
    /// let peer = "10.0.0.2:40000".parse().unwrap();
    /// let r = policy.resolve_with(peer, None, &headers, &ConnectionView::new());
    /// let cx = r.context().unwrap();
    /// assert_eq!(cx.scheme(), Scheme::Https);
    /// assert_eq!(cx.host(), Some("shop.example"));
    /// assert_eq!(cx.port(), 443);
    /// assert_eq!(cx.host_source(), ContextSource::Header { hop: 1 });
    /// assert_eq!(cx.base_url().as_deref(), Some("https://shop.example"));
    /// # Ok::<(), realip::ConfigError>(())
    /// ```
    // Out of line, with the walk inlined into it: the result is set up
    // and filled in one frame (inlining it into callers cost more).
    #[inline(never)]
    pub fn resolve_with(
        &self,
        peer: SocketAddr,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
        view: &ConnectionView<'_>,
    ) -> Resolution {
        let mut r = Resolution::new(peer);
        let inner = &*self.inner;
        #[cfg(feature = "live")]
        if let Some(live) = &inner.live {
            let walked = live.with_cached(|trusted| {
                Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view)
            });
            if walked.is_none() {
                live.with_guard(|trusted| {
                    Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view)
                });
            }
            return r;
        }
        let trusted = &inner.trusted;
        Walker { inner, trusted }.resolve_into(&mut r, proxy_source, headers, view);
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
        view: &ConnectionView<'_>,
    ) {
        match &self.inner.context {
            None => self.resolve_address(r, proxy_source, headers),
            Some(cfg) => self.resolve_context(r, proxy_source, headers, view, cfg),
        }
    }

    /// The address walk alone (context off).
    #[inline(always)]
    fn resolve_address(
        &self,
        r: &mut Resolution,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
    ) {
        if let Some(spec) = self.prologue(r, proxy_source) {
            let found = lookup(headers, &spec.name);
            self.walk_found(r, spec, proxy_source, headers, found, &mut ());
        }
    }

    /// The PROXY step and the checks before any header is read; `None`
    /// when the walk ends there.
    #[inline(always)]
    fn prologue(&self, r: &mut Resolution, proxy_source: Option<SocketAddr>) -> Option<&Spec> {
        let inner = self.inner;
        if let Some(src) = proxy_source {
            r.step(bits_of(src.ip()), Some(src.port()));
            r.source = Source::ProxyProtocol;
        }
        let Some(spec) = &inner.spec else {
            r.stop = Stop::UntrustedHop;
            return None;
        };
        match inner.mode {
            Mode::Ranges { .. } if !self.trusted.contains_bits(r.ip) => {
                r.stop = Stop::UntrustedHop;
                return None;
            }
            // The PROXY source is the first counted hop: with one proxy in
            // front, it is the client and no header is read.
            Mode::Count(1) if proxy_source.is_some() => {
                r.stop = Stop::HopCount;
                return None;
            }
            _ => {}
        }
        Some(spec)
    }

    /// The address walk, recording what the context walk needs later.
    ///
    /// The context values are positional (the step to header entry *k*
    /// takes entry *k* of each context header, or the `proto`/`host` of the
    /// `Forwarded` element it came from), so the address walk decides all
    /// the context walk needs from it: how many steps it believed. The
    /// context headers themselves are kept as shared handles and walked on
    /// the first read of [`Resolution::context`].
    #[inline(never)]
    fn resolve_context(
        &self,
        r: &mut Resolution,
        proxy_source: Option<SocketAddr>,
        headers: &HeaderMap,
        view: &ConnectionView<'_>,
        cfg: &ContextConfig,
    ) {
        let Some(spec) = self.prologue(r, proxy_source) else {
            // No step is believed: the connection's values stand.
            r.set_context(ContextRecord::own(&OwnView::new(view, host_line(headers))));
            return;
        };
        let found = scan(headers, &spec.name, cfg);
        let own = OwnView::new(view, found.host);
        let proxy = proxy_source.is_some();
        if spec.kind == Kind::Forwarded {
            // The lexer hands each believed element's `proto` and `host` to
            // the walk: validated in this one pass.
            let mut walk = Elements::default();
            self.walk_found(r, spec, proxy_source, headers, found.address, &mut walk);
            r.set_context(match walk.believed() {
                None => ContextRecord::own(&own),
                Some(believed) => ContextRecord::believed(&own, cfg, proxy, believed, |_, v| {
                    match found.address {
                        Lookup::One(line) => Kept::of(v, [line]),
                        _ => Kept::of(v, headers.get_all(&spec.name)),
                    }
                }),
            });
            return;
        }
        if !found.any() {
            // No context header: the address walk alone, then the
            // connection's values (the common case costs no more).
            self.walk_found(r, spec, proxy_source, headers, found.address, &mut ());
            r.set_context(ContextRecord::own(&own));
            return;
        }
        let mut steps = StepCount::default();
        self.walk_found(r, spec, proxy_source, headers, found.address, &mut steps);
        if steps.0 == 0 && !cfg.symmetric {
            // No step believed, nothing to ignore: the connection's values.
            r.set_context(ContextRecord::own(&own));
            return;
        }
        r.set_context(self.context_lists(headers, spec, cfg, &found, &own, steps.0, proxy));
    }

    /// The context walk over list or single-address context headers, for
    /// the `steps` steps the address walk believed (the step to header
    /// entry *k* takes entry *k* of each context header), right after it
    /// over the borrowed headers; the record keeps what it took.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn context_lists(
        &self,
        headers: &HeaderMap,
        spec: &Spec,
        cfg: &ContextConfig,
        found: &Found<'_>,
        own: &OwnView<'_>,
        steps: u8,
        proxy: bool,
    ) -> ContextRecord {
        // (`Forwarded` returned above.)
        let follow = if spec.kind == Kind::List {
            Follow::List
        } else {
            Follow::Single
        };
        if !cfg.symmetric && !cfg.has_allowed() && !general_only() {
            // The common case: one line each, copied for the first read.
            let line = |i: usize| match found.context(i) {
                Lookup::Absent => Some(None),
                Lookup::One(v) => Some(Some(v.as_bytes())),
                Lookup::Many => None,
            };
            if let (Some(a), Some(b), Some(c), Some(d)) = (line(0), line(1), line(2), line(3)) {
                if let Some(rec) =
                    ContextRecord::copied(own, cfg, follow, [a, b, c, d], steps, proxy)
                {
                    return rec;
                }
            }
        }
        let count = |l: Lookup<'_>, name: &HeaderName| match l {
            Lookup::Absent => 0,
            Lookup::One(v) => forwarded::context::count_items(v.as_bytes()),
            Lookup::Many => headers
                .get_all(name)
                .iter()
                .map(|v| forwarded::context::count_items(v.as_bytes()))
                .sum(),
        };
        let symmetry = cfg.symmetric.then(|| {
            let address = match (found.address, spec.kind) {
                (Lookup::Absent, _) => 0,
                (_, Kind::Single | Kind::CloudFront) => 1,
                (l, _) => count(l, &spec.name),
            };
            let counts = [0, 1, 2, 3].map(|i| match &cfg.names[i] {
                Some(n) => count(found.context(i), n),
                None => 0,
            });
            (address, counts)
        });
        let reader = |i: usize| match (found.context(i), &cfg.names[i]) {
            (Lookup::One(v), _) => Reader::one(v),
            (Lookup::Many, Some(n)) => Reader::many(headers, n),
            _ => Reader::default(),
        };
        let readers = [reader(0), reader(1), reader(2), reader(3)];
        let mut walk = Walk::new(cfg.style(), follow, readers, symmetry);
        for _ in 0..steps {
            walk.step(rfc7239::Params::default());
        }
        let believed = walk.into_believed();
        ContextRecord::believed(own, cfg, proxy, &believed, |field, v| {
            let i = field as usize;
            match (found.context(i), &cfg.names[i]) {
                (Lookup::One(line), _) => Kept::of(v, [line]),
                (_, Some(n)) => Kept::of(v, headers.get_all(n)),
                (_, None) => Kept::of(v, []),
            }
        })
    }

    /// The walk over the address header's lines `found`.
    #[inline(always)]
    fn walk_found<'h>(
        &self,
        r: &mut Resolution,
        spec: &Spec,
        proxy_source: Option<SocketAddr>,
        headers: &'h HeaderMap,
        found: Lookup<'h>,
        steps: &mut impl Steps<'h>,
    ) {
        let inner = self.inner;
        let value = match found {
            Lookup::Absent => {
                r.stop = match inner.mode {
                    Mode::Ranges { .. } => Stop::HeaderAbsent,
                    Mode::Count(_) => Stop::TooShort,
                };
                return;
            }
            Lookup::One(value) => value.as_bytes(),
            Lookup::Many if matches!(spec.kind, Kind::Single | Kind::CloudFront) => {
                r.stop = Stop::Ambiguous;
                return;
            }
            Lookup::Many => {
                // Repeated lines: walk them in order, the last first.
                let lines = headers.get_all(&spec.name);
                if spec.kind == Kind::List {
                    self.walk(
                        r,
                        &spec.source,
                        proxy_source,
                        xff::Entries::new(lines),
                        steps,
                    );
                } else {
                    self.walk(
                        r,
                        &spec.source,
                        proxy_source,
                        rfc7239::Entries::new(lines),
                        steps,
                    );
                }
                return;
            }
        };
        match spec.kind {
            Kind::List => self.walk(r, &spec.source, proxy_source, xff::Line::new(value), steps),
            Kind::Forwarded => {
                self.walk(
                    r,
                    &spec.source,
                    proxy_source,
                    rfc7239::Line::new(value),
                    steps,
                );
            }
            Kind::Single | Kind::CloudFront => {
                let node = if spec.kind == Kind::Single {
                    single::parse_single_raw(value)
                } else {
                    single::parse_cloudfront_raw(value)
                };
                self.walk(r, &spec.source, proxy_source, Some(node), steps);
            }
        }
    }

    // Always inlined, as in the address-only build: with the context walk's
    // instantiations beside it, `#[inline]` left it (and `lookup`) out of
    // line, which cost the default, context-off walk about a fifth.
    #[inline(always)]
    fn walk<'h>(
        &self,
        r: &mut Resolution,
        source: &Source,
        proxy_source: Option<SocketAddr>,
        mut entries: impl RawEntries<'h>,
        steps: &mut impl Steps<'h>,
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
                    // A trusted hop handed this entry over: its context
                    // entries are believed too.
                    steps.step(entries.last_params());
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
                            steps.step(entries.last_params());
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
                steps.reset();
                r.ip = ip;
                r.port = port;
                r.source = anchor;
                r.stop = Stop::TooShort;
            }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: the general context path even where the copied one applies,
    /// to pin the two equal.
    static GENERAL_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn general_only() -> bool {
    GENERAL_ONLY.with(std::cell::Cell::get)
}

#[cfg(not(test))]
#[inline(always)]
fn general_only() -> bool {
    false
}

/// How many lines of one header a request carries.
#[derive(Clone, Copy)]
enum Lookup<'a> {
    Absent,
    One(&'a HeaderValue),
    Many,
}

/// Requests with at most this many header lines are searched by a scan.
const SCAN_MAX: usize = 12;

/// Finds the lines of `name`. `HeaderMap` hashes a non-standard name such
/// as `x-forwarded-for` byte by byte (FNV over the name plus length and
/// tag words) before probing, which costs more than comparing the names of
/// a typical request's few header lines, where the standard names differ
/// from a custom one by their tag alone. Larger maps use the hashed lookup.
#[inline(always)]
fn lookup<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Lookup<'a> {
    if headers.len() > SCAN_MAX {
        let mut lines = headers.get_all(name).into_iter();
        return match (lines.next(), lines.next()) {
            (None, _) => Lookup::Absent,
            (Some(v), None) => Lookup::One(v),
            (Some(_), Some(_)) => Lookup::Many,
        };
    }
    let mut found = Lookup::Absent;
    for (k, v) in headers {
        if k == name {
            if let Lookup::One(_) = found {
                return Lookup::Many;
            }
            found = Lookup::One(v);
        }
    }
    found
}

/// The `Host` line, when there is exactly one (two are a malformed request,
/// and neither is believed).
#[inline]
fn host_line(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut lines = headers.get_all(http::header::HOST).into_iter();
    match (lines.next(), lines.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// What one pass over a request's headers found for the context walk.
struct Found<'h> {
    address: Lookup<'h>,
    host: Option<&'h HeaderValue>,
    /// The first line of each context header, in [`Field`] order (a
    /// reference each, so that the common request writes little).
    context: [Option<&'h HeaderValue>; 4],
    /// Bit `i`: context header `i` came on several lines.
    many: u8,
}

impl<'h> Found<'h> {
    /// Whether any context header is present.
    #[inline(always)]
    fn any(&self) -> bool {
        self.context.iter().any(Option::is_some)
    }

    /// How context header `i` came.
    #[inline(always)]
    fn context(&self, i: usize) -> Lookup<'h> {
        match self.context[i] {
            None => Lookup::Absent,
            Some(_) if self.many & (1 << i) != 0 => Lookup::Many,
            Some(v) => Lookup::One(v),
        }
    }
}

/// Finds the address header, `Host` and the context headers in one pass
/// over a small map (see [`lookup`]); a large one is probed by name.
#[inline(always)]
fn scan<'h>(headers: &'h HeaderMap, name: &HeaderName, cfg: &'h ContextConfig) -> Found<'h> {
    if headers.len() > SCAN_MAX {
        let mut found = Found {
            address: lookup(headers, name),
            host: host_line(headers),
            context: [None; 4],
            many: 0,
        };
        for (i, n) in cfg.names.iter().enumerate() {
            let Some(n) = n else { continue };
            let mut lines = headers.get_all(n).into_iter();
            found.context[i] = lines.next();
            if lines.next().is_some() {
                found.many |= 1 << i;
            }
        }
        return found;
    }
    let mut address = Lookup::Absent;
    // The `Host` line and how many there were.
    let mut host: (Option<&'h HeaderValue>, u8) = (None, 0);
    let mut context = [None; 4];
    let mut many = 0;
    for (k, v) in headers {
        if k == name {
            bump(&mut address, v);
        } else if k == http::header::HOST {
            host = (Some(v), host.1.saturating_add(1));
        } else {
            let b = k.as_str().as_bytes();
            if cfg.lengths & context::length_bit(b.len()) != 0 {
                for (i, slot) in context.iter_mut().enumerate() {
                    if cfg.is_name(i, b) {
                        if slot.is_some() {
                            many |= 1 << i;
                        } else {
                            *slot = Some(v);
                        }
                    }
                }
            }
        }
    }
    Found {
        address,
        // Two `Host` lines are a malformed request: neither is believed.
        host: if host.1 == 1 { host.0 } else { None },
        context,
        many,
    }
}

/// One more line of a header.
#[inline(always)]
fn bump<'h>(l: &mut Lookup<'h>, v: &'h HeaderValue) {
    *l = match l {
        Lookup::Absent => Lookup::One(v),
        _ => Lookup::Many,
    };
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
    /// `None`: on exactly when an address header is configured.
    context: Option<bool>,
    context_headers: Option<ContextHeaders>,
    symmetric: bool,
    allowed_hosts: Vec<String>,
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

    /// Client context (scheme, host, port, prefix) on or off. On by
    /// default whenever an address header is configured; off without one.
    ///
    /// On by default because the context walk believes exactly the steps
    /// the address walk believes, so it trusts no one new, and an app
    /// behind a proxy that terminates TLS or routes by host otherwise sees
    /// `http` and an internal host and builds wrong redirects, callbacks and
    /// cookies. The values are validated and copied only when the context
    /// is first read (the resolution keeps short copies of what it needs,
    /// found in the one pass that finds the address header), so resolving
    /// allocates nothing, but it still costs 1.2x to 1.4x the address
    /// walk's instructions with no context header sent, and 1.6x to 3.2x
    /// with them (README, "The client context"). `.context(false)` opts
    /// out for an app that needs only the address: then
    /// [`Resolution::context`] is `None`, no context header is read, and
    /// the `ClientScheme`, `ClientHost` and `BaseUrl` extractors reject
    /// with a `500` naming `.context(true)`.
    pub fn context(mut self, on: bool) -> Self {
        self.context = Some(on);
        self
    }

    /// The context headers read with a list or single-address header
    /// (default [`ContextHeaders::default`]: `X-Forwarded-Proto`, `-Host`,
    /// `-Port`, `-Prefix`). A `Forwarded` policy reads its elements'
    /// `proto` and `host` instead.
    pub fn context_headers(mut self, headers: ContextHeaders) -> Self {
        self.context_headers = Some(headers);
        self
    }

    /// Ignores each context header whose entry count differs from the
    /// address header's (ASP.NET `RequireHeaderSymmetry`): a proxy that
    /// appended to one list but not another leaves entries that no longer
    /// line up with the hops. Off by default.
    pub fn symmetric(mut self, on: bool) -> Self {
        self.symmetric = on;
        self
    }

    /// Accepts a forwarded host only if it is `name` (exact, any case) or,
    /// written `*.example.com`, any name below `example.com`. May be called
    /// several times; with none, every valid host is accepted. A host not
    /// on the list is not used: the connection's host stands and
    /// [`ClientContext::host_rejected`] says so.
    pub fn allowed_host(mut self, name: impl Into<String>) -> Self {
        self.allowed_hosts.push(name.into());
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
            specs.push(Spec {
                source: Source::Header(name.clone()),
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
        let context = build_context(
            self.context.unwrap_or(!specs.is_empty()),
            self.context_headers,
            self.symmetric,
            self.allowed_hosts,
        )?;
        Ok(Policy {
            inner: Arc::new(Inner {
                trusted,
                #[cfg(feature = "live")]
                live: self.live,
                spec: specs.pop(),
                mode,
                cap,
                context,
            }),
        })
    }
}

/// Checks the context options.
fn build_context(
    on: bool,
    headers: Option<ContextHeaders>,
    symmetric: bool,
    allowed: Vec<String>,
) -> Result<Option<ContextConfig>, ConfigError> {
    use ConfigErrorKind as K;
    if !on {
        if headers.is_some() || symmetric || !allowed.is_empty() {
            return Err(ConfigError::new(
                K::ContextOff,
                "context headers, symmetry or allowed hosts are set but the client context is \
                 off: turn it on with `.context(true)`",
            ));
        }
        return Ok(None);
    }
    let headers = headers.unwrap_or_default();
    for f in [Field::Proto, Field::Host, Field::Port, Field::Prefix] {
        if let Some(n) = headers.name(f) {
            if n.as_str().contains('_') {
                return Err(ConfigError::new(
                    K::UnderscoreHeaderName,
                    format!(
                        "context header name `{n}` contains `_`; use dashes (underscore \
                         look-alikes are never read)"
                    ),
                ));
            }
        }
    }
    let mut patterns = Vec::with_capacity(allowed.len());
    for a in &allowed {
        patterns.push(HostPattern::parse(a).ok_or_else(|| {
            ConfigError::new(
                K::InvalidAllowedHost,
                format!("allowed host `{a}` is neither a host name nor `*.` and one"),
            )
        })?);
    }
    Ok(Some(ContextConfig::new(headers, symmetric, patterns)))
}

impl Policy {
    /// Whether the policy resolves the client context.
    pub fn has_context(&self) -> bool {
        self.inner.context.is_some()
    }

    /// The context headers read, when context is on.
    pub fn context_headers(&self) -> Option<&ContextHeaders> {
        self.inner.context.as_ref().map(|c| &c.headers)
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

    /// A resolution stays small: it is built per request and moved into
    /// the request's extensions (432 bytes with the context inline).
    #[test]
    fn resolution_stays_small() {
        assert!(std::mem::size_of::<Resolution>() <= 320);
    }

    #[test]
    fn policy_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
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

    /// The copied context path (one line per context header, walked on
    /// the first read) gives what the general path (the values taken while
    /// resolving) gives, whatever the chain, the values (malformed ones
    /// included), the mode and the connection.
    mod copied_equals_general {
        use super::*;
        use http::HeaderValue;
        use proptest::prelude::*;

        fn hop() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => (0u8..4).prop_map(|n| format!("10.0.0.{n}")),
                2 => (0u8..4).prop_map(|n| format!("198.51.100.{n}")),
                1 => Just("garbage".to_owned()),
            ]
        }

        fn value(field: usize) -> impl Strategy<Value = String> {
            let good: &[&str] = match field {
                0 => &["https", "http", "wss", "HTTPS", "on", "off"],
                1 => &[
                    "shop.example",
                    "Shop.Example:8443",
                    "[2001:db8::1]:9",
                    "a.b",
                    "x.example",
                ],
                2 => &["443", "8080", "1", "65535"],
                _ => &["/app", "/a/b", "/"],
            };
            let bad: &[&str] = &["", "bad value", "99999", "/a/../b", "user@host", "-x."];
            prop_oneof![
                6 => prop::sample::select(good.to_vec()),
                1 => prop::sample::select(bad.to_vec()),
            ]
            .prop_map(str::to_owned)
        }

        fn list(field: usize) -> impl Strategy<Value = Option<String>> {
            prop::option::weighted(0.7, prop::collection::vec(value(field), 1..5))
                .prop_map(|v| v.map(|v| v.join(", ")))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn copied_equals_general(
                chain in prop::collection::vec(hop(), 0..6),
                lists in (list(0), list(1), list(2), list(3)),
                host in prop::option::of(prop::sample::select(vec!["origin.internal:8080", "Origin", "bad host"])),
                mode in 0u8..4,
                ssl_flag in any::<bool>(),
                proxy in any::<bool>(),
                tls in any::<bool>(),
            ) {
                let mut b = Policy::builder();
                b = match mode {
                    0 => b.trust_private().header(HeaderSource::XForwardedFor),
                    1 => b.trust_private().header(HeaderSource::XRealIp),
                    2 => b.trust_private().header(HeaderSource::XForwardedFor).recursive(false),
                    _ => b.trusted_hops(3).header(HeaderSource::XForwardedFor),
                };
                if ssl_flag {
                    b = b.context_headers(ContextHeaders::default().ssl_flag(X_FORWARDED_PROTO));
                }
                let policy = b.build().unwrap();
                let mut headers = HeaderMap::new();
                if let Some(h) = host {
                    headers.insert("host", HeaderValue::from_static(h));
                }
                let address = if mode == 1 { "x-real-ip" } else { "x-forwarded-for" };
                if !chain.is_empty() {
                    let v = if mode == 1 { chain[0].clone() } else { chain.join(", ") };
                    headers.insert(address, HeaderValue::from_str(&v).unwrap());
                }
                let names = ["x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix"];
                let (a, b_, c, d) = lists;
                for (name, v) in names.into_iter().zip([a, b_, c, d]) {
                    if let Some(v) = v {
                        headers.insert(name, HeaderValue::from_str(&v).unwrap());
                    }
                }
                let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
                let proxy_source: Option<SocketAddr> = proxy.then(|| "10.9.9.9:5000".parse().unwrap());
                let view = ConnectionView::new().tls(tls);
                let copied = policy.resolve_with(peer, proxy_source, &headers, &view);
                GENERAL_ONLY.with(|g| g.set(true));
                let general = policy.resolve_with(peer, proxy_source, &headers, &view);
                GENERAL_ONLY.with(|g| g.set(false));
                prop_assert_eq!(format!("{copied:?}"), format!("{general:?}"));
            }
        }
    }
}
