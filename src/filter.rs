//! [`IpFilterLayer`]: allow and deny CIDR sets on the resolved client.
//!
//! The filter reads the [`RealIp`] an outer [`RealIpLayer`](crate::RealIpLayer)
//! stored; it never looks at a forwarded header or the socket itself, so it
//! sees exactly the client the policy vouched for. The rules:
//!
//! - a client inside a **deny** range is refused, whatever the allow rules
//!   say (deny wins);
//! - once there is any **allow** range, every client outside all of them is
//!   refused;
//! - with allow rules, an **inconclusive** resolution is refused even when
//!   its address is allowed: its address is then the nearest trusted proxy,
//!   not the client ([`Stop::is_conclusive`]), and an allowlist for internal
//!   ranges would let it in. A deny-only filter lets inconclusive requests
//!   through unless [`IpFilterBuilder::deny_inconclusive`] says otherwise;
//! - addresses are compared in canonical form: `::ffff:a.b.c.d` is
//!   `a.b.c.d`. A range written in IPv4-mapped form is a [`ConfigError`]
//!   (it would never match).
//!
//! Lookups use the [`TrustedProxies`] index (merged intervals plus a bucket
//! index over the high bits), so ten thousand ranges cost what ten do.
//!
//! A refused request never reaches the inner service: it is answered with
//! the configured status (`403 Forbidden` by default) and a plain-text body
//! naming the rule, and the [`Denial`] is left in the response extensions
//! for middleware that wants to answer differently. A request with no
//! [`RealIp`] (no `RealIpLayer` outside the filter) is answered `500`: a
//! misconfigured server must fail closed, not let everyone in.
//!
//! Like the layer, it goes on any router: one filter per router gives each
//! its own rules.
//!
//! ```
//! use axum::{routing::get, Router};
//! use realip::filter::IpFilterLayer;
//! use realip::{HeaderSource, RealIpLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let realip = RealIpLayer::builder()
//!     .trust_private()
//!     .header(HeaderSource::XForwardedFor)
//!     .build()?;
//! // The office network, except one kiosk.
//! let office = IpFilterLayer::builder()
//!     .allow("198.51.100.0/24".parse()?)
//!     .deny("198.51.100.66/32".parse()?)
//!     .build()?;
//! let admin: Router = Router::new()
//!     .route("/admin", get(|| async { "hello, colleague" }))
//!     .layer(office);
//! // The layer added last runs first: RealIpLayer resolves, then the filter.
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello, world" }))
//!     .merge(admin)
//!     .layer(realip);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use ipnet::{IpNet, Ipv6Net};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::{NoPeer, RealIp};
use crate::resolve::Stop;
use crate::trust::{ConfigError, ConfigErrorKind, TrustedProxies};

/// One list of ranges: the shared index decides, a sorted copy names the
/// matching range on the (rare) refusal path.
#[derive(Clone, Debug, Default)]
struct RuleSet {
    index: TrustedProxies,
    /// Host bits cleared, sorted, deduplicated.
    sorted: Vec<IpNet>,
    /// Prefix lengths present, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
}

impl RuleSet {
    fn build(which: &str, nets: Vec<IpNet>) -> Result<Self, ConfigError> {
        let mapped = Ipv6Net::new(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
            .expect("valid prefix");
        if let Some(net) = nets.iter().find(|n| match n {
            IpNet::V6(v6) => mapped.contains(v6),
            IpNet::V4(_) => false,
        }) {
            return Err(ConfigError::new(
                ConfigErrorKind::MappedRange,
                format!(
                    "{which} range {net} is in IPv4-mapped IPv6 form; clients are compared \
                     as IPv4, so write the IPv4 range instead"
                ),
            ));
        }
        let index = TrustedProxies::from_nets(nets.iter().copied())
            .map_err(|e| ConfigError::new(e.kind(), format!("{which} list: {e}")))?;
        let mut sorted: Vec<IpNet> = nets.iter().map(IpNet::trunc).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let lens = |v4: bool| {
            let mut l: Vec<u8> = sorted
                .iter()
                .filter(|n| matches!(n, IpNet::V4(_)) == v4)
                .map(IpNet::prefix_len)
                .collect();
            l.sort_unstable_by(|a, b| b.cmp(a));
            l.dedup();
            l
        };
        Ok(RuleSet {
            v4_lens: lens(true),
            v6_lens: lens(false),
            index,
            sorted,
        })
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Lookup of the 128-bit form (IPv4 as mapped IPv6).
    #[inline]
    fn contains_bits(&self, bits: u128) -> bool {
        self.index.contains_bits(bits)
    }

    /// The most specific range holding `ip` (canonical form): one binary
    /// search per prefix length in use, whatever the number of ranges.
    fn matching(&self, ip: IpAddr) -> Option<IpNet> {
        let lens = match ip {
            IpAddr::V4(_) => &self.v4_lens,
            IpAddr::V6(_) => &self.v6_lens,
        };
        lens.iter().find_map(|&len| {
            let candidate = IpNet::new(ip, len).ok()?.trunc();
            self.sorted
                .binary_search(&candidate)
                .ok()
                .map(|_| candidate)
        })
    }
}

#[derive(Debug)]
struct Rules {
    allow: RuleSet,
    deny: RuleSet,
    status: StatusCode,
    deny_inconclusive: bool,
}

/// Allows or refuses each request on its resolved client; see the
/// [module docs](self) for the rules.
///
/// Built with [`IpFilterLayer::builder`]; cloning is cheap (the rules are
/// shared). Put it inside a [`RealIpLayer`](crate::RealIpLayer) (or serve
/// the app with [`RealIpLayer::into_make_service`](crate::RealIpLayer::into_make_service)).
#[derive(Clone, Debug)]
#[must_use]
pub struct IpFilterLayer {
    rules: Arc<Rules>,
}

impl IpFilterLayer {
    /// Starts a filter with no rules, answering refusals with `403`.
    pub fn builder() -> IpFilterBuilder {
        IpFilterBuilder::default()
    }

    /// Decides for one resolved client, as the service does.
    ///
    /// # Errors
    /// The [`Denial`] naming the rule that refused it.
    pub fn check(&self, real: &RealIp) -> Result<(), Denial> {
        self.rules.check(real.resolution().ip_bits(), real.stop())
    }

    /// The status refused requests get.
    pub fn status(&self) -> StatusCode {
        self.rules.status
    }
}

impl Rules {
    /// `bits`: the client's 128-bit form, in which `::ffff:a.b.c.d` and
    /// `a.b.c.d` are one value, so no other normalization is needed.
    #[inline]
    fn check(&self, bits: u128, stop: Stop) -> Result<(), Denial> {
        if self.deny.contains_bits(bits) {
            return Err(self.denied(bits));
        }
        let allow_rules = !self.allow.is_empty();
        if (allow_rules || self.deny_inconclusive) && !stop.is_conclusive() {
            return Err(Denial {
                reason: DenyReason::Inconclusive(stop),
            });
        }
        if allow_rules && !self.allow.contains_bits(bits) {
            return Err(Denial {
                reason: DenyReason::NotAllowed,
            });
        }
        Ok(())
    }

    /// The deny range that holds `bits`, named for the refusal.
    #[cold]
    fn denied(&self, bits: u128) -> Denial {
        let ip = crate::forwarded::ip_of(bits);
        // The index said yes, so a range matches; the host itself is named
        // should the two ever disagree.
        let net = self.deny.matching(ip).unwrap_or_else(|| IpNet::from(ip));
        Denial {
            reason: DenyReason::Denied(net),
        }
    }
}

impl<S> Layer<S> for IpFilterLayer {
    type Service = IpFilterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IpFilterService {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// Configures an [`IpFilterLayer`]; every mistake surfaces in
/// [`build`](Self::build).
///
/// ```
/// use http::StatusCode;
/// use realip::filter::IpFilterLayer;
/// use realip::ConfigErrorKind;
///
/// // Hide the route from everyone outside the VPN rather than refuse them.
/// let vpn = IpFilterLayer::builder()
///     .allow("10.8.0.0/16".parse().unwrap())
///     .status(StatusCode::NOT_FOUND)
///     .build();
/// assert!(vpn.is_ok());
///
/// // A mapped-form range would never match: clients are compared as IPv4.
/// let err = IpFilterLayer::builder()
///     .deny("::ffff:192.0.2.0/120".parse().unwrap())
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::MappedRange);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct IpFilterBuilder {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    status: StatusCode,
    deny_inconclusive: bool,
}

impl Default for IpFilterBuilder {
    fn default() -> Self {
        IpFilterBuilder {
            allow: Vec::new(),
            deny: Vec::new(),
            status: StatusCode::FORBIDDEN,
            deny_inconclusive: false,
        }
    }
}

impl IpFilterBuilder {
    /// Allows clients in `net`. With any allow rule, every other client is
    /// refused, and so is every inconclusive resolution.
    pub fn allow(mut self, net: IpNet) -> Self {
        self.allow.push(net);
        self
    }

    /// Allows clients in each of `nets`.
    pub fn allow_all<I: IntoIterator<Item = IpNet>>(mut self, nets: I) -> Self {
        self.allow.extend(nets);
        self
    }

    /// Refuses clients in `net`, whatever the allow rules say.
    pub fn deny(mut self, net: IpNet) -> Self {
        self.deny.push(net);
        self
    }

    /// Refuses clients in each of `nets`.
    pub fn deny_all<I: IntoIterator<Item = IpNet>>(mut self, nets: I) -> Self {
        self.deny.extend(nets);
        self
    }

    /// The status of a refusal: `403 Forbidden` by default; `404` hides
    /// the route instead. Must be a 4xx or 5xx status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Refuses inconclusive resolutions even without allow rules (with
    /// allow rules they are always refused). A deny list then also stops a
    /// request whose client is hidden behind a malformed chain, at the
    /// price of refusing clients behind a proxy that writes bad entries.
    pub fn deny_inconclusive(mut self, on: bool) -> Self {
        self.deny_inconclusive = on;
        self
    }

    /// Validates the rules and returns the layer.
    ///
    /// # Errors
    /// A range in IPv4-mapped form ([`ConfigErrorKind::MappedRange`]), more
    /// than [`MAX_RANGES`](crate::trust::MAX_RANGES) ranges in one list
    /// ([`ConfigErrorKind::TooManyRanges`]), or a status that is not a
    /// client or server error ([`ConfigErrorKind::RejectionStatus`]).
    pub fn build(self) -> Result<IpFilterLayer, ConfigError> {
        if !(self.status.is_client_error() || self.status.is_server_error()) {
            return Err(ConfigError::new(
                ConfigErrorKind::RejectionStatus,
                format!(
                    "ip filter status {} is not a 4xx or 5xx status: a refusal must not \
                     look like success",
                    self.status
                ),
            ));
        }
        Ok(IpFilterLayer {
            rules: Arc::new(Rules {
                allow: RuleSet::build("allow", self.allow)?,
                deny: RuleSet::build("deny", self.deny)?,
                status: self.status,
                deny_inconclusive: self.deny_inconclusive,
            }),
        })
    }
}

/// Why [`IpFilterLayer`] refused a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// The client is inside this deny range (the most specific one).
    Denied(IpNet),
    /// There are allow rules and the client is in none of them.
    NotAllowed,
    /// There are allow rules (or [`IpFilterBuilder::deny_inconclusive`])
    /// and the walk stopped without finding the client.
    Inconclusive(Stop),
}

/// A refusal by [`IpFilterLayer`]: the body of the response it sends
/// ([`Display`](fmt::Display)), also stored in that response's extensions.
///
/// The text names the rule, never the address: for an inconclusive walk
/// the address is an internal proxy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Denial {
    reason: DenyReason,
}

impl Denial {
    /// Which rule refused the client.
    pub fn reason(&self) -> DenyReason {
        self.reason
    }

    /// The rule in the words of the builder: `deny 192.0.2.0/24`,
    /// `allow` (no allow rule matched), `conclusive` (an allow list needs
    /// a conclusive resolution).
    pub fn rule(&self) -> String {
        match self.reason {
            DenyReason::Denied(net) => format!("deny {net}"),
            DenyReason::NotAllowed => "allow".to_owned(),
            DenyReason::Inconclusive(_) => "conclusive".to_owned(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DenyReason::Denied(net) => {
                write!(f, "realip: the client is refused by rule deny {net}")
            }
            DenyReason::NotAllowed => f.write_str("realip: the client is in no allow range"),
            DenyReason::Inconclusive(stop) => write!(
                f,
                "realip: the client address could not be determined ({stop}); the allow \
                 rules need a conclusive one"
            ),
        }
    }
}

impl std::error::Error for Denial {}

/// The service [`IpFilterLayer`] wraps around `S`.
#[derive(Clone)]
pub struct IpFilterService<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S: fmt::Debug> fmt::Debug for IpFilterService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpFilterService")
            .field("inner", &self.inner)
            .field("rules", &self.rules)
            .finish()
    }
}

impl<S> IpFilterService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

const NO_CLIENT: &str = "realip: IpFilterLayer found no resolved client: put RealIpLayer \
    outside the filter (the layer added after it), or serve the app with \
    layer.into_make_service(app)";

impl<S, B, ResBody> Service<Request<B>> for IpFilterService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let refused = match RealIp::from_extensions(req.extensions()) {
            Some(real) => match self.rules.check(real.resolution().ip_bits(), real.stop()) {
                Ok(()) => None,
                Err(denial) => Some(refuse(real, denial, self.rules.status)),
            },
            None => Some(no_client(req.extensions())),
        };
        match refused {
            None => ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            },
            Some(response) => ResponseFuture {
                kind: Kind::Refused {
                    response: Some(response),
                },
            },
        }
    }
}

#[cold]
#[inline(never)]
fn refuse<B: From<String>>(real: &RealIp, denial: Denial, status: StatusCode) -> Response<B> {
    tracing::debug!(target: "realip::filter", client = %real.ip(), "{denial}");
    refusal(status, denial.to_string(), Some(denial))
}

#[cold]
#[inline(never)]
fn no_client<B: From<String>>(ext: &http::Extensions) -> Response<B> {
    let no_peer = ext.get::<NoPeer>().is_some();
    tracing::error!(target: "realip::filter", no_peer, "{NO_CLIENT}");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        NO_CLIENT.to_owned(),
        None,
    )
}

fn refusal<B: From<String>>(
    status: StatusCode,
    body: String,
    denial: Option<Denial>,
) -> Response<B> {
    let mut res = Response::new(B::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(d) = denial {
        res.extensions_mut().insert(d);
    }
    res
}

pin_project_lite::pin_project! {
    /// The response future of [`IpFilterService`]: the inner service's, or
    /// the refusal.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = matches!(self.kind, Kind::Refused { .. });
        f.debug_struct("ResponseFuture")
            .field("refused", &refused)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{HeaderSource, Policy};
    use http::HeaderMap;
    use std::net::SocketAddr;

    fn filter(b: IpFilterBuilder) -> IpFilterLayer {
        b.build().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// The client `xff` names when a trusted loopback peer sends it.
    fn real(xff: &str) -> RealIp {
        let policy = Policy::builder()
            .trust_loopback()
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().unwrap());
        RealIp::new(policy.resolve(peer, None, &headers), peer, None)
    }

    fn direct(peer: &str) -> RealIp {
        let peer: SocketAddr = peer.parse().unwrap();
        RealIp::new(
            Policy::new().resolve(peer, None, &HeaderMap::new()),
            peer,
            None,
        )
    }

    #[test]
    fn deny_wins_over_allow_and_names_the_most_specific_range() {
        let f = filter(
            IpFilterLayer::builder()
                .allow(net("198.51.100.0/24"))
                .deny(net("198.51.100.0/25"))
                .deny(net("198.51.100.64/26"))
                .deny(net("198.51.0.0/16")),
        );
        let d = f.check(&real("198.51.100.70")).unwrap_err();
        assert_eq!(d.reason(), DenyReason::Denied(net("198.51.100.64/26")));
        assert_eq!(d.rule(), "deny 198.51.100.64/26");
        assert!(d.to_string().contains("deny 198.51.100.64/26"), "{d}");
        let d = f.check(&real("198.51.100.10")).unwrap_err();
        assert_eq!(d.reason(), DenyReason::Denied(net("198.51.100.0/25")));
        // Allowed by the /24, denied by the /16 all the same.
        let d = f.check(&real("198.51.100.200")).unwrap_err();
        assert_eq!(d.reason(), DenyReason::Denied(net("198.51.0.0/16")));
    }

    #[test]
    fn allow_rules_refuse_everyone_else() {
        let f = filter(IpFilterLayer::builder().allow(net("203.0.113.0/24")));
        assert_eq!(f.check(&real("203.0.113.9")), Ok(()));
        assert_eq!(
            f.check(&real("192.0.2.1")).unwrap_err().reason(),
            DenyReason::NotAllowed
        );
        assert_eq!(
            f.check(&direct("[2001:db8::1]:5")).unwrap_err().reason(),
            DenyReason::NotAllowed
        );
        // No rules at all: everyone passes.
        let open = filter(IpFilterLayer::builder());
        assert_eq!(open.check(&real("192.0.2.1")), Ok(()));
    }

    #[test]
    fn mapped_forms_are_compared_as_ipv4() {
        let f = filter(
            IpFilterLayer::builder()
                .allow(net("0.0.0.0/0"))
                .deny(net("192.0.2.7/32")),
        );
        for form in [
            "::ffff:192.0.2.7",
            "[::ffff:192.0.2.7]:443",
            "::FFFF:c000:207",
            "0:0:0:0:0:ffff:192.0.2.7",
        ] {
            let d = f.check(&real(form)).unwrap_err();
            assert_eq!(
                d.reason(),
                DenyReason::Denied(net("192.0.2.7/32")),
                "{form}"
            );
        }
        // A peer on a dual-stack socket shows up mapped.
        let d = f.check(&direct("[::ffff:192.0.2.7]:80")).unwrap_err();
        assert_eq!(d.reason(), DenyReason::Denied(net("192.0.2.7/32")));
        // An allow rule matches the mapped form of its addresses too.
        let allow = filter(IpFilterLayer::builder().allow(net("192.0.2.0/24")));
        assert_eq!(allow.check(&direct("[::ffff:192.0.2.9]:80")), Ok(()));
        // Ranges in mapped form are refused in both lists.
        for b in [
            IpFilterLayer::builder().allow(net("::ffff:192.0.2.0/120")),
            IpFilterLayer::builder().deny(net("::ffff:0:0/96")),
        ] {
            let err = b.build().unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::MappedRange);
        }
        // A v6 superset is fine and does not catch IPv4 clients.
        let v6 = filter(IpFilterLayer::builder().deny(net("::/0")));
        assert_eq!(v6.check(&direct("[::ffff:192.0.2.9]:80")), Ok(()));
        assert!(v6.check(&direct("[2001:db8::1]:80")).is_err());
    }

    #[test]
    fn inconclusive_is_refused_under_allow_rules_only() {
        // Malformed entry: the address is the trusted peer, which is allowed.
        let malformed = real("garbage");
        assert!(!malformed.is_conclusive());
        assert_eq!(malformed.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        let allow = filter(IpFilterLayer::builder().allow(net("127.0.0.0/8")));
        assert_eq!(
            allow.check(&malformed).unwrap_err().reason(),
            DenyReason::Inconclusive(Stop::Malformed)
        );
        assert_eq!(allow.check(&real("127.0.0.9")), Ok(()));
        let deny_only = filter(IpFilterLayer::builder().deny(net("192.0.2.0/24")));
        assert_eq!(deny_only.check(&malformed), Ok(()));
        let strict = filter(
            IpFilterLayer::builder()
                .deny(net("192.0.2.0/24"))
                .deny_inconclusive(true),
        );
        assert_eq!(
            strict.check(&malformed).unwrap_err().reason(),
            DenyReason::Inconclusive(Stop::Malformed)
        );
        // Deny still wins over an inconclusive result.
        let both = filter(
            IpFilterLayer::builder()
                .allow(net("0.0.0.0/0"))
                .deny(net("127.0.0.1/32")),
        );
        assert_eq!(
            both.check(&malformed).unwrap_err().reason(),
            DenyReason::Denied(net("127.0.0.1/32"))
        );
    }

    #[test]
    fn status_must_be_an_error() {
        for status in [StatusCode::OK, StatusCode::FOUND, StatusCode::CONTINUE] {
            let err = IpFilterLayer::builder().status(status).build().unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::RejectionStatus);
        }
        let f = filter(IpFilterLayer::builder().status(StatusCode::NOT_FOUND));
        assert_eq!(f.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            filter(IpFilterLayer::builder()).status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn naming_agrees_with_a_linear_scan() {
        // Nested and overlapping ranges of many lengths.
        let mut nets = Vec::new();
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = 8 + (x % 25) as u8;
            nets.push(
                IpNet::new(IpAddr::from(x.to_be_bytes()), len)
                    .unwrap()
                    .trunc(),
            );
        }
        let set = RuleSet::build("deny", nets.clone()).unwrap();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let ip = IpAddr::from(x.to_be_bytes());
            let linear = nets
                .iter()
                .filter(|n| n.contains(&ip))
                .max_by_key(|n| n.prefix_len())
                .copied();
            let bits = crate::forwarded::bits_of(ip);
            assert_eq!(set.contains_bits(bits), linear.is_some(), "{ip}");
            assert_eq!(set.matching(ip), linear, "{ip}");
        }
    }
}
