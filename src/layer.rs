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
//!    servers using [`ProxyAcceptor`](crate::io::ProxyAcceptor), or any
//!    server that builds one with [`ProxiedAddr::new`](crate::io::ProxiedAddr::new));
//! 4. the [`RealIp`] an outer layer stored (its peer and PROXY header);
//! 5. with the `tonic` feature, tonic's `TcpConnectInfo` (tonic on a plain
//!    TCP listener; on [`grpc::incoming`](crate::grpc::incoming) the
//!    connection info is a `ProxiedAddr`, case 3). On a request from tonic
//!    (cases 3 and 5) the layer then sets `TcpConnectInfo` to the resolved
//!    client, for `request.remote_addr()`.
//!
//! A bare [`SocketAddr`] extension is never taken as the peer: any
//! middleware may insert one for its own reasons (an upstream address, a
//! value parsed from a header), and believing it would let that value
//! decide who the client is. The types above are only ever made by the
//! server from the accepted socket.
//!
//! A service made for one connection ([`RealIpLayer::into_make_service`],
//! [`RealIpService::for_connection`]) already holds its peer and reads
//! none of these: no connection info travels with each request.
//!
//! When none is present the layer stores nothing and the extractors reject
//! the request with a 500 naming the fix. Servers that keep the peer in
//! another type insert a [`ProxiedAddr`](crate::io::ProxiedAddr) built from
//! it in front of the layer, or serve each connection with
//! [`RealIpService::for_connection`].
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
use crate::resolve::{
    ClientContext, ConfigError, ConnectionView, ContextHeaders, HeaderSource, Policy, PolicyBuilder,
};
use crate::trace::HeaderWatch;
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
    /// Shared by every service the layer makes, connection left unset.
    state: Arc<State>,
}

/// What a [`RealIpService`] reads on each request, behind one `Arc`: axum
/// and hyper clone the service for every request, which then costs one
/// reference count whatever the layer holds.
#[derive(Debug, Default)]
struct State {
    policy: Policy,
    /// One count for every service a layer makes (see `crate::trace`).
    watch: Arc<HeaderWatch>,
    options: Options,
    /// Set for a service made for one connection.
    conn: Option<Conn>,
}

/// The layer's own settings, beside the policy.
#[derive(Clone, Copy, Debug, Default)]
struct Options {
    /// The listener runs TLS on every connection.
    tls: bool,
    /// Rewrite the request URI's scheme and authority to the client's view.
    rewrite_uri: bool,
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
            options: Options::default(),
        }
    }

    /// The policy this layer resolves with.
    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }

    /// Wraps `inner` for one connection whose addresses are known: the
    /// service resolves from `conn` instead of looking for connection info
    /// in each request (hyper-util servers, custom accept loops).
    pub fn layer_connection<S, A: ConnectionAddr>(&self, inner: S, conn: &A) -> RealIpService<S> {
        RealIpService::connected(inner, &self.state, conn)
    }

    /// Serves `app` with this layer around it, the peer read once per
    /// connection: `axum::serve(listener, layer.into_make_service(app))`.
    ///
    /// The fastest way to give a whole app one policy: the server inserts
    /// no `ConnectInfo` into every request and `Router::layer` does not
    /// wrap every route. Works with any [`Listener`](axum::serve::Listener)
    /// whose address is a [`ConnectionAddr`]: `TcpListener` and
    /// [`ProxyProtocolListener`](crate::io::ProxyProtocolListener). Handlers
    /// read the peer from [`RealIp::peer`] rather than `ConnectInfo`;
    /// layers inside `app` still resolve with their own policies. For a
    /// tower service that is not a `Router`, see
    /// [`IntoMakeServiceWithRealIp::new`].
    ///
    /// ```no_run
    /// use axum::{routing::get, Router};
    /// use realip::{ClientIp, HeaderSource, RealIpLayer};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Router::new()
    ///     .route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }));
    /// let layer = RealIpLayer::builder()
    ///     .trust_private()
    ///     .header(HeaderSource::XForwardedFor)
    ///     .build()?;
    /// let listener = realip::io::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, layer.into_make_service(app)).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "axum")]
    pub fn into_make_service(self, app: axum::Router) -> IntoMakeServiceWithRealIp<axum::Router> {
        // As `Router::into_make_service` does: turn the handlers into routes
        // once, not on every request.
        IntoMakeServiceWithRealIp::new(app.with_state(()), self)
    }
}

impl From<Policy> for RealIpLayer {
    fn from(policy: Policy) -> Self {
        Self {
            state: Arc::new(State {
                policy,
                ..State::default()
            }),
        }
    }
}

impl<S> Layer<S> for RealIpLayer {
    type Service = RealIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RealIpService {
            inner,
            state: self.state.clone(),
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
    options: Options,
}

impl RealIpLayerBuilder {
    fn map(self, f: impl FnOnce(PolicyBuilder) -> PolicyBuilder) -> Self {
        Self {
            inner: f(self.inner),
            options: self.options,
        }
    }

    /// Client context on or off ([`PolicyBuilder::context`]: on by
    /// default whenever an address header is configured).
    pub fn context(self, on: bool) -> Self {
        self.map(|b| b.context(on))
    }

    /// The context headers read ([`PolicyBuilder::context_headers`]).
    pub fn context_headers(self, headers: ContextHeaders) -> Self {
        self.map(|b| b.context_headers(headers))
    }

    /// Ignores context headers whose entry count differs from the address
    /// header's ([`PolicyBuilder::symmetric`]).
    pub fn symmetric(self, on: bool) -> Self {
        self.map(|b| b.symmetric(on))
    }

    /// Accepts forwarded hosts only from this list
    /// ([`PolicyBuilder::allowed_host`]; `*.example.com` for a suffix).
    pub fn allowed_host(self, name: impl Into<String>) -> Self {
        self.map(|b| b.allowed_host(name))
    }

    /// The listener in front of this layer terminates TLS on every
    /// connection, so the client's scheme starts as `https`.
    ///
    /// The layer cannot see the TLS handshake: the server wraps the stream
    /// before hyper reads a byte, and nothing in the request says whether
    /// it did. Set this on the layer of a server that serves TLS only
    /// (an app behind a TCP-mode balancer that terminates TLS itself). A
    /// per-connection service ([`RealIpLayer::into_make_service`]) also
    /// asks the listener's address ([`ConnectionAddr::is_tls`]).
    pub fn connection_tls(mut self, on: bool) -> Self {
        self.options.tls = on;
        self
    }

    /// Rewrites each request's URI scheme and authority to the client's
    /// view (Werkzeug `ProxyFix` style), for code that reads `req.uri()`
    /// to build links. Off by default: the request is left as the server
    /// received it and the view is read from [`RealIp::context`]. The path
    /// is never changed (the prefix is not prepended).
    pub fn rewrite_uri(mut self, on: bool) -> Self {
        self.options.rewrite_uri = on;
        self
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

    /// Trusts a live set, replaced while the app runs
    /// ([`PolicyBuilder::live_trust`]).
    #[cfg(feature = "live")]
    pub fn live_trust(self, live: crate::trust::live::LiveTrust) -> Self {
        self.map(|b| b.live_trust(live))
    }

    /// Trusts loopback ([`TrustedProxies::loopback`]).
    pub fn trust_loopback(self) -> Self {
        self.map(PolicyBuilder::trust_loopback)
    }

    /// Trusts RFC 1918, IPv6 ULA and loopback networks ([`TrustedProxies::private`]).
    pub fn trust_private(self) -> Self {
        self.map(PolicyBuilder::trust_private)
    }

    /// Trusts the CGNAT shared address space ([`PolicyBuilder::trust_cgnat`]).
    pub fn trust_cgnat(self) -> Self {
        self.map(PolicyBuilder::trust_cgnat)
    }

    /// Trusts link-local networks ([`PolicyBuilder::trust_link_local`]).
    pub fn trust_link_local(self) -> Self {
        self.map(PolicyBuilder::trust_link_local)
    }

    /// The header to read the client from: exactly one per layer (a
    /// second is a [`ConfigError`]; see [`PolicyBuilder::header`]).
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
        let policy = self.inner.build()?;
        if self.options.rewrite_uri && !policy.has_context() {
            return Err(ConfigError::new(
                crate::ConfigErrorKind::ContextOff,
                "rewrite_uri needs the client context, which is off: turn it on with `.context(true)`",
            ));
        }
        Ok(RealIpLayer {
            state: Arc::new(State {
                policy,
                options: self.options,
                ..State::default()
            }),
        })
    }
}

/// The addresses of a connection a service is made for: the socket peer
/// and the PROXY header accepted from it.
///
/// Implemented for [`SocketAddr`] (plain listeners) and
/// [`ProxiedAddr`](crate::io::ProxiedAddr); implement it for the address
/// type of a custom listener to use [`RealIpLayer::into_make_service`].
pub trait ConnectionAddr {
    /// The host that opened the TCP connection.
    fn peer(&self) -> SocketAddr;

    /// The PROXY header the listener accepted from [`peer`](Self::peer).
    fn proxy_header(&self) -> Option<&Arc<OwnedHeader>> {
        None
    }

    /// Whether this server ran TLS on the connection (the client context
    /// then starts as `https`). `false` unless the address type knows.
    fn is_tls(&self) -> bool {
        false
    }
}

impl ConnectionAddr for SocketAddr {
    fn peer(&self) -> SocketAddr {
        *self
    }
}

#[cfg(feature = "tokio")]
impl ConnectionAddr for crate::io::ProxiedAddr {
    fn peer(&self) -> SocketAddr {
        crate::io::ProxiedAddr::peer(self)
    }

    fn proxy_header(&self) -> Option<&Arc<OwnedHeader>> {
        self.header_arc()
    }
}

/// A connection's peer and PROXY header, held by a per-connection service.
#[derive(Clone, Debug)]
struct Conn {
    peer: SocketAddr,
    header: Option<Arc<OwnedHeader>>,
    tls: bool,
}

/// The service [`RealIpLayer`] wraps around `S`.
///
/// Touches only the request: the response and its future are `S`'s own.
#[derive(Clone)]
pub struct RealIpService<S> {
    inner: S,
    state: Arc<State>,
}

impl<S: fmt::Debug> fmt::Debug for RealIpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealIpService")
            .field("inner", &self.inner)
            .field("policy", &self.state.policy)
            .field("conn", &self.state.conn)
            .field("options", &self.state.options)
            .finish()
    }
}

impl<S> RealIpService<S> {
    /// Wraps `inner` with `policy`; the peer comes with each request (see
    /// the [module docs](crate::layer)).
    pub fn new(inner: S, policy: Policy) -> Self {
        RealIpLayer::from(policy).layer(inner)
    }

    /// Wraps `inner` with `policy` for one connection: every request is
    /// resolved from `conn`'s peer and PROXY header, and the request's own
    /// connection info is not consulted.
    pub fn for_connection<A: ConnectionAddr>(inner: S, policy: Policy, conn: &A) -> Self {
        RealIpLayer::from(policy).layer_connection(inner, conn)
    }

    /// A service for one connection with a layer's policy and options,
    /// sharing its header watch (see `crate::trace`), so its count runs
    /// across connections: one allocation per connection, none per request.
    fn connected<A: ConnectionAddr>(inner: S, layer: &State, conn: &A) -> Self {
        Self {
            inner,
            state: Arc::new(State {
                policy: layer.policy.clone(),
                watch: layer.watch.clone(),
                options: layer.options,
                conn: Some(Conn {
                    peer: conn.peer(),
                    header: conn.proxy_header().cloned(),
                    tls: conn.is_tls(),
                }),
            }),
        }
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
        &self.state.policy
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
        let state = &*self.state;
        let found = match &state.conn {
            Some(c) => Some((c.peer, c.header.clone(), c.tls)),
            None => peer_of(req.extensions()).map(|(p, h)| (p, h, false)),
        };
        match found {
            Some((peer, header, conn_tls)) => {
                let proxy_source = header.as_ref().and_then(|h| h.source());
                let resolution = if state.policy.has_context() {
                    let mut view = ConnectionView::new()
                        .tls(state.options.tls || conn_tls)
                        .request_authority(req.uri().authority());
                    if let Some(h) = &header {
                        view = view.proxy_header(h);
                    }
                    state
                        .policy
                        .resolve_with(peer, proxy_source, req.headers(), &view)
                } else {
                    state.policy.resolve(peer, proxy_source, req.headers())
                };
                crate::trace::observe(&state.watch, &resolution);
                if state.options.rewrite_uri {
                    if let Some(cx) = resolution.context() {
                        rewrite_uri(&mut req, cx);
                    }
                }
                if req.extensions().is_empty() {
                    *req.extensions_mut() = roomy_extensions();
                }
                let real = RealIp::new(resolution, peer, header);
                #[cfg(feature = "tonic")]
                crate::grpc::set_remote_addr(req.extensions_mut(), &real);
                req.extensions_mut().insert(real);
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

/// Sets the URI's scheme and authority to the client's view; the path
/// and query stay. Left as is when the view has no host.
fn rewrite_uri<B>(req: &mut Request<B>, cx: &ClientContext) {
    let Some(authority) = cx.authority() else {
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = cx.scheme().as_str().parse().ok();
    parts.authority = authority.parse().ok();
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// An empty extension map with room for seven entries.
///
/// A request's map is created on its first insert with room for three,
/// exactly what axum's router adds to every request (`OriginalUri`,
/// `MatchedPath`, `UrlParams`): one more entry, ours, would make it grow
/// (allocate, rehash, free) on every request. `http` has no way to reserve,
/// but a clone keeps the capacity of its original, so the first insert into
/// a request's map starts from a clone of this one: the same two
/// allocations as a fresh map, and no growth later.
fn roomy_extensions() -> Extensions {
    #[derive(Clone, Copy)]
    struct Pad<const N: u8>;

    static EMPTY: std::sync::OnceLock<Extensions> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| {
            let mut ext = Extensions::new();
            ext.insert(Pad::<0>);
            ext.insert(Pad::<1>);
            ext.insert(Pad::<2>);
            ext.insert(Pad::<3>);
            ext.clear();
            ext
        })
        .clone()
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
    if let Some(crate::testing::TestPeer(a)) = ext.get() {
        return Some((*a, None));
    }
    let outer = ext
        .get::<RealIp>()
        .map(|r| (r.peer(), r.proxy_header_arc().cloned()));
    // After the outer layer's result: that layer set it to the client.
    #[cfg(feature = "tonic")]
    let outer = outer.or_else(|| crate::grpc::tonic_peer(ext).map(|p| (p, None)));
    outer
}

/// Makes a [`RealIpService`] around a clone of the app for each accepted
/// connection; see [`RealIpLayer::into_make_service`].
#[cfg(feature = "axum")]
#[derive(Clone, Debug)]
#[must_use]
pub struct IntoMakeServiceWithRealIp<S> {
    app: S,
    layer: RealIpLayer,
}

#[cfg(feature = "axum")]
impl<S> IntoMakeServiceWithRealIp<S> {
    /// Makes a [`RealIpService`] around a clone of `service` for each
    /// connection `axum::serve` accepts. For an axum `Router`, use
    /// [`RealIpLayer::into_make_service`], which also readies its handlers.
    pub fn new(service: S, layer: RealIpLayer) -> Self {
        Self {
            app: service,
            layer,
        }
    }
}

#[cfg(feature = "axum")]
impl<L, S> Service<axum::serve::IncomingStream<'_, L>> for IntoMakeServiceWithRealIp<S>
where
    L: axum::serve::Listener,
    L::Addr: ConnectionAddr,
    S: Clone,
{
    type Response = RealIpService<S>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: axum::serve::IncomingStream<'_, L>) -> Self::Future {
        std::future::ready(Ok(self
            .layer
            .layer_connection(self.app.clone(), stream.remote_addr())))
    }
}
