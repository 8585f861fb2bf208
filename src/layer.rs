//! [`RealIpLayer`]: resolve the client of every request once, in any tower
//! stack.
//!
//! The layer reads the connection's addresses from the request extensions,
//! runs [`Policy::resolve`] and stores the outcome as a [`RealIp`]
//! extension, which the extractors ([`ClientIp`](crate::ClientIp),
//! [`ClientAddr`], [`RealIp`]) and any later service read. The peer is
//! taken from the first of these that is present:
//!
//! 1. `ConnectInfo<ProxiedAddr>` (axum served with
//!    `into_make_service_with_connect_info::<ProxiedAddr>()` on a
//!    [`ProxyProtocolListener`](crate::io::ProxyProtocolListener));
//! 2. `ConnectInfo<SocketAddr>` (axum on a plain listener);
//! 3. a [`ProxiedAddr`](crate::io::ProxiedAddr) extension (hyper-util
//!    servers using [`ProxyAcceptor`](crate::io::ProxyAcceptor));
//! 4. a [`SocketAddr`] extension (any other server).
//!
//! When none is present the layer stores nothing and the extractors reject
//! the request with a 500 naming the fix. Servers that keep the peer in
//! another type (tonic's `TcpConnectInfo`, for one) insert it as a
//! `SocketAddr` extension in front of the layer.
//!
//! Layers nest: each one resolves with its own policy and overwrites the
//! result, so the layer nearest the handler decides.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request};
use ipnet::IpNet;
use tower_layer::Layer;
use tower_service::Service;

#[cfg(doc)]
use crate::extract::ClientAddr;
use crate::extract::{NoPeer, RealIp};
use crate::proxy::OwnedHeader;
use crate::resolve::{ConfigError, HeaderSource, Policy, PolicyBuilder};
use crate::trust::TrustedProxies;

/// Resolves the real client of each request and stores it as a [`RealIp`]
/// request extension.
///
/// [`RealIpLayer::new`] is the secure default: it trusts no proxy, so the
/// client is the socket peer, or the source of a PROXY header the listener
/// accepted. Trusting forwarded headers is an explicit choice made with
/// [`RealIpLayer::builder`], validated once when built. Cloning is cheap
/// (the policy is shared).
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{ClientIp, HeaderSource, RealIpLayer};
///
/// # fn main() -> Result<(), realip::ConfigError> {
/// // Behind proxies on private networks that append X-Forwarded-For.
/// let layer = RealIpLayer::builder()
///     .trust_private()
///     .header(HeaderSource::XForwardedFor)
///     .build()?;
/// let app: Router = Router::new()
///     .route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
///     .layer(layer);
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RealIpLayer {
    policy: Policy,
}

impl RealIpLayer {
    /// The secure default: trusts no proxy and reads no header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a policy configuration; see [`RealIpLayerBuilder`].
    pub fn builder() -> RealIpLayerBuilder {
        RealIpLayerBuilder {
            inner: Policy::builder(),
        }
    }

    /// The policy this layer resolves with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl From<Policy> for RealIpLayer {
    fn from(policy: Policy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for RealIpLayer {
    type Service = RealIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RealIpService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Builds a [`RealIpLayer`]: the methods of [`PolicyBuilder`], with
/// [`build`](Self::build) returning the layer.
///
/// ```
/// use realip::{ConfigErrorKind, HeaderSource, RealIpLayer};
///
/// // nginx in front, with `real_ip_recursive off` semantics.
/// let layer = RealIpLayer::builder()
///     .trust("10.0.0.5/32".parse().unwrap())
///     .header(HeaderSource::XRealIp)
///     .recursive(false)
///     .build();
/// assert!(layer.is_ok());
///
/// // A header nobody is trusted to send is a mistake, caught here.
/// let err = RealIpLayer::builder().header(HeaderSource::XForwardedFor).build().unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::HeaderWithoutTrust);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RealIpLayerBuilder {
    inner: PolicyBuilder,
}

impl RealIpLayerBuilder {
    fn map(self, f: impl FnOnce(PolicyBuilder) -> PolicyBuilder) -> Self {
        Self {
            inner: f(self.inner),
        }
    }

    /// Trusts one network ([`PolicyBuilder::trust`]).
    pub fn trust(self, net: IpNet) -> Self {
        self.map(|b| b.trust(net))
    }

    /// Trusts many networks ([`PolicyBuilder::trust_all`]).
    pub fn trust_all<I: IntoIterator<Item = IpNet>>(self, nets: I) -> Self {
        self.map(|b| b.trust_all(nets))
    }

    /// Trusts every network of a prepared set.
    pub fn trusted_proxies(self, set: &TrustedProxies) -> Self {
        self.map(|b| b.trusted_proxies(set))
    }

    /// Trusts loopback ([`TrustedProxies::loopback`]).
    pub fn trust_loopback(self) -> Self {
        self.map(PolicyBuilder::trust_loopback)
    }

    /// Trusts private and internal networks ([`TrustedProxies::private`]).
    pub fn trust_private(self) -> Self {
        self.map(PolicyBuilder::trust_private)
    }

    /// Adds a header to read, tried after those already added: the first
    /// one present in a request decides.
    pub fn header(self, source: HeaderSource) -> Self {
        self.map(|b| b.header(source))
    }

    /// Walk left while hops are trusted (`true`, the default) or take at
    /// most one step (`false`, nginx `real_ip_recursive off`).
    pub fn recursive(self, on: bool) -> Self {
        self.map(|b| b.recursive(on))
    }

    /// Hop-count mode: `n` proxies stand in front of the app
    /// ([`PolicyBuilder::trusted_hops`]).
    pub fn trusted_hops(self, n: usize) -> Self {
        self.map(|b| b.trusted_hops(n))
    }

    /// Most header entries read per request ([`PolicyBuilder::hop_cap`]).
    pub fn hop_cap(self, cap: usize) -> Self {
        self.map(|b| b.hop_cap(cap))
    }

    /// Validates the policy and returns the layer.
    ///
    /// # Errors
    /// A configuration that cannot work; see [`Policy`] for the rules.
    pub fn build(self) -> Result<RealIpLayer, ConfigError> {
        self.inner.build().map(RealIpLayer::from)
    }
}

/// The service [`RealIpLayer`] wraps around `S`.
///
/// Touches only the request: the response and its future are `S`'s own.
#[derive(Clone)]
pub struct RealIpService<S> {
    inner: S,
    policy: Policy,
}

impl<S: fmt::Debug> fmt::Debug for RealIpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealIpService")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S> RealIpService<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: Policy) -> Self {
        Self { inner, policy }
    }

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

    /// The policy requests are resolved with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<S, B> Service<Request<B>> for RealIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match peer_of(req.extensions()) {
            Some((peer, header)) => {
                let proxy_source = header.as_ref().and_then(|h| h.source());
                let resolution = self.policy.resolve(peer, proxy_source, req.headers());
                req.extensions_mut()
                    .insert(RealIp::new(resolution, peer, header));
            }
            None => {
                // Say why the extractors will reject: the layer ran, the
                // server gave no address. An outer layer's result (same
                // connection, so also absent) cannot exist here.
                req.extensions_mut().insert(NoPeer);
            }
        }
        self.inner.call(req)
    }
}

/// The socket peer and the accepted PROXY header, from the first source of
/// connection info present (see the module docs for the order).
#[inline]
fn peer_of(ext: &Extensions) -> Option<(SocketAddr, Option<Arc<OwnedHeader>>)> {
    #[cfg(feature = "axum")]
    {
        use axum::extract::ConnectInfo;
        if let Some(ConnectInfo(a)) = ext.get::<ConnectInfo<crate::io::ProxiedAddr>>() {
            return Some((a.peer(), a.header_arc().cloned()));
        }
        if let Some(ConnectInfo(a)) = ext.get::<ConnectInfo<SocketAddr>>() {
            return Some((*a, None));
        }
    }
    #[cfg(feature = "tokio")]
    if let Some(a) = ext.get::<crate::io::ProxiedAddr>() {
        return Some((a.peer(), a.header_arc().cloned()));
    }
    ext.get::<SocketAddr>().map(|a| (*a, None))
}
