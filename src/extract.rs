//! What [`RealIpLayer`](crate::RealIpLayer) stores, and the axum extractors
//! that read it.
//!
//! - [`ClientIp`]: the client address;
//! - [`ClientAddr`]: the client address and its port, when the deciding
//!   source carried one;
//! - [`RealIp`]: the whole resolution (source, socket peer, hops, why the
//!   walk stopped, the PROXY header with its TLVs);
//! - [`ClientScheme`], [`ClientHost`], [`BaseUrl`]: the scheme, host and
//!   port, and `scheme://host[:port]/prefix` the client used, from the
//!   same walk (the policy's client context, [`RealIp::context`]; on by
//!   default whenever the layer reads an address header, `.context(false)`
//!   turns it off);
//! - [`Conclusive<T>`] around any of the first three: the same, but a request whose
//!   walk was inconclusive (a malformed entry, an ambiguous single-address
//!   header, the hop cap, too short a chain) is rejected with `400`.
//!
//! When to use which: the plain extractors always give an address, the
//! nearest one the policy can vouch for (a trusted proxy, when the walk was
//! inconclusive). That is right for logs and rate-limit keys (abusers share
//! the proxy's bucket, none escapes it). Anything that *grants* something on
//! the address (an allowlist, an admin route for internal ranges, audit
//! records that must name a client) takes `Conclusive<ClientIp>`: an
//! inconclusive walk resolves to an internal proxy, which such a check
//! would let in.
//!
//! Each is also an `Option<_>` extractor that gives `None` instead of
//! rejecting. Without the layer, or when the server passes no connection
//! info, the plain extractors reject with a [`RealIpRejection`] (500) whose
//! message names the fix: a misconfigured server should fail loudly, not
//! fall back to an address it cannot vouch for.
//!
//! Outside axum, read the extension directly with
//! [`RealIp::from_extensions`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Extensions;

use crate::proxy::OwnedHeader;
use crate::resolve::{ClientContext, Resolution, Scheme, Source, Stop};

/// Marker left by the layer when the request carried no peer address, so
/// the rejection can name the right fix.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoPeer;

/// The resolved client of a request, with everything that decided it.
///
/// Stored as a request extension by [`RealIpLayer`](crate::RealIpLayer);
/// with the `axum` feature it is also an extractor.
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{RealIp, RealIpLayer, Source};
///
/// async fn handler(real: RealIp) -> String {
///     let via = match real.source() {
///         Source::Socket => "socket".to_owned(),
///         Source::ProxyProtocol => "PROXY protocol".to_owned(),
///         Source::Header(name) => name.to_string(),
///     };
///     format!("{} (peer {}, via {via})", real.ip(), real.peer())
/// }
/// let app: Router = Router::new().route("/", get(handler)).layer(RealIpLayer::new());
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct RealIp {
    resolution: Resolution,
    peer: SocketAddr,
    header: Option<Arc<OwnedHeader>>,
}

impl RealIp {
    /// Puts a resolution together with the connection it was made for.
    pub fn new(resolution: Resolution, peer: SocketAddr, header: Option<Arc<OwnedHeader>>) -> Self {
        Self {
            resolution,
            peer,
            header,
        }
    }

    /// The value [`RealIpLayer`](crate::RealIpLayer) stored, for code that
    /// is not an axum handler (tower services, hyper handlers, middleware).
    pub fn from_extensions(extensions: &Extensions) -> Option<&RealIp> {
        extensions.get::<RealIp>()
    }

    /// The client address.
    pub fn ip(&self) -> IpAddr {
        self.resolution.ip()
    }

    /// The client port, when the deciding source carried one.
    pub fn port(&self) -> Option<u16> {
        self.resolution.port()
    }

    /// The client address and port, as [`ClientAddr`].
    pub fn client_addr(&self) -> ClientAddr {
        ClientAddr {
            ip: self.ip(),
            port: self.port(),
        }
    }

    /// Which input decided the address.
    pub fn source(&self) -> &Source {
        self.resolution.source()
    }

    /// Why the walk stopped.
    pub fn stop(&self) -> Stop {
        self.resolution.stop()
    }

    /// Whether the walk found the client ([`Stop::is_conclusive`]); when
    /// not, [`ip`](Self::ip) is the nearest trusted hop and must not grant
    /// access.
    pub fn is_conclusive(&self) -> bool {
        self.resolution.is_conclusive()
    }

    /// The addresses walked, nearest first (the socket peer first).
    pub fn hops(&self) -> crate::resolve::Hops<'_> {
        self.resolution.hops()
    }

    /// The client's scheme, host, port and prefix, each with where it came
    /// from and why the context walk stopped; `None` with context off.
    pub fn context(&self) -> Option<&ClientContext> {
        self.resolution.context()
    }

    /// The scheme the client used; `None` with context off.
    pub fn scheme(&self) -> Option<Scheme> {
        self.context().map(ClientContext::scheme)
    }

    /// The host (without port) and port the client asked for; `None` with
    /// context off or when no one named a host.
    pub fn host(&self) -> Option<ClientHost> {
        let cx = self.context()?;
        Some(ClientHost {
            host: cx.host()?.to_owned(),
            port: cx.port(),
            scheme: cx.scheme(),
        })
    }

    /// `scheme://host[:port]` and the prefix: the client-facing base URL;
    /// `None` with context off or without a host.
    pub fn base_url(&self) -> Option<BaseUrl> {
        self.context()?.base_url().map(BaseUrl)
    }

    /// The full resolution.
    pub fn resolution(&self) -> &Resolution {
        &self.resolution
    }

    /// The TCP peer: the host that opened the connection to this server.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The PROXY header the listener accepted from the peer, TLVs included
    /// (`proxy_header()?.as_header().ssl()`, `.aws_vpce_id()`, ...).
    pub fn proxy_header(&self) -> Option<&OwnedHeader> {
        self.header.as_deref()
    }

    /// The shared PROXY header, to keep it without copying.
    pub fn proxy_header_arc(&self) -> Option<&Arc<OwnedHeader>> {
        self.header.as_ref()
    }
}

/// The client address of a request.
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{ClientIp, RealIpLayer};
///
/// let app: Router = Router::new()
///     .route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
///     .layer(RealIpLayer::new());
/// # let _ = app;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The client address with its port, when the deciding source carried one
/// (the socket peer and a PROXY header always do; header entries only when
/// written as `ip:port`).
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{ClientAddr, RealIpLayer};
///
/// async fn handler(ClientAddr { ip, port }: ClientAddr) -> String {
///     match port {
///         Some(port) => format!("{ip} port {port}"),
///         None => ip.to_string(),
///     }
/// }
/// let app: Router = Router::new().route("/", get(handler)).layer(RealIpLayer::new());
/// # let _ = app;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr {
    /// The client address.
    pub ip: IpAddr,
    /// The client port, when known.
    pub port: Option<u16>,
}

impl ClientAddr {
    /// Address and port together, when the port is known.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.port.map(|p| SocketAddr::new(self.ip, p))
    }
}

impl fmt::Display for ClientAddr {
    /// `ip:port` (`[v6]:port`) when the port is known, else the address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.socket_addr() {
            Some(sa) => sa.fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

/// The scheme the client used (`https` behind a TLS-terminating proxy
/// the policy trusts), from [`RealIp::context`].
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{ClientScheme, HeaderSource, RealIpLayer};
///
/// async fn handler(ClientScheme(scheme): ClientScheme) -> String {
///     // Mark cookies `Secure` only when the client really used TLS.
///     format!("secure: {}", scheme.is_secure())
/// }
/// let layer = RealIpLayer::builder()
///     .trust_private()
///     .header(HeaderSource::XForwardedFor)
///     .build()?;
/// let app: Router = Router::new().route("/", get(handler)).layer(layer);
/// # let _ = app;
/// # Ok::<(), realip::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientScheme(pub Scheme);

/// The host and port the client asked for.
///
/// Displayed as `host` or `host:port`, the port written only when it is
/// not the scheme's default. The host is lowercase; an IPv6 literal keeps
/// its brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientHost {
    /// The host, without port.
    pub host: String,
    /// The port (the scheme's default when no one wrote one).
    pub port: u16,
    /// The scheme, which decides whether the port is written.
    pub scheme: Scheme,
}

impl fmt::Display for ClientHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == self.scheme.default_port() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The client-facing base URL: `scheme://host[:port]` followed by the
/// prefix a proxy strips (`https://shop.example/app`), without a trailing
/// slash. Absolute links, redirects and OAuth callbacks start with it.
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{BaseUrl, HeaderSource, RealIpLayer};
///
/// async fn login(BaseUrl(base): BaseUrl) -> String {
///     format!("{base}/oauth/callback")
/// }
/// let layer = RealIpLayer::builder()
///     .trust_private()
///     .header(HeaderSource::XForwardedFor)
///     .allowed_host("shop.example")
///     .build()?;
/// let app: Router = Router::new().route("/login", get(login)).layer(layer);
/// # let _ = app;
/// # Ok::<(), realip::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseUrl(pub String);

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any client extractor ([`ClientIp`], [`ClientAddr`], [`RealIp`]) that
/// only succeeds when the walk was conclusive; an inconclusive request is
/// rejected with `400 Bad Request` ([`RejectionReason::Inconclusive`]).
///
/// Use it wherever the address grants something: see the
/// [module docs](self) for when. `Option<Conclusive<T>>` gives `None`
/// instead of rejecting.
///
/// ```
/// use axum::{routing::get, Router};
/// use realip::{ClientIp, Conclusive, HeaderSource, RealIpLayer};
///
/// async fn admin(Conclusive(ClientIp(ip)): Conclusive<ClientIp>) -> String {
///     // Only here is `ip` known to be the client itself, never a proxy
///     // standing in for a request it could not vouch for.
///     format!("hello {ip}")
/// }
/// let layer = RealIpLayer::builder()
///     .trust_private()
///     .header(HeaderSource::XForwardedFor)
///     .build()?;
/// let app: Router = Router::new().route("/admin", get(admin)).layer(layer);
/// # let _ = app;
/// # Ok::<(), realip::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conclusive<T>(pub T);

/// What [`Conclusive`] can wrap: a value read from the stored [`RealIp`].
pub trait FromRealIp: Sized + sealed::Sealed {
    /// The value for `real`.
    fn from_real_ip(real: &RealIp) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ClientIp {}
    impl Sealed for super::ClientAddr {}
    impl Sealed for super::RealIp {}
}

impl FromRealIp for ClientIp {
    fn from_real_ip(real: &RealIp) -> Self {
        ClientIp(real.ip())
    }
}

impl FromRealIp for ClientAddr {
    fn from_real_ip(real: &RealIp) -> Self {
        real.client_addr()
    }
}

impl FromRealIp for RealIp {
    fn from_real_ip(real: &RealIp) -> Self {
        real.clone()
    }
}

#[cfg(feature = "axum")]
pub use self::axum_impls::{RealIpRejection, RejectionReason};

#[cfg(feature = "axum")]
mod axum_impls {
    use std::convert::Infallible;
    use std::fmt;

    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::StatusCode;

    use super::{BaseUrl, ClientAddr, ClientHost, ClientIp, ClientScheme, Conclusive, FromRealIp};
    use super::{NoPeer, RealIp};
    use crate::resolve::Stop;

    /// Why no client address was available.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum RejectionReason {
        /// No [`RealIpLayer`](crate::RealIpLayer) ran for this request.
        MissingLayer,
        /// The layer ran but the server passed no connection info.
        MissingConnectInfo,
        /// The walk was inconclusive (only [`Conclusive`] rejects for it).
        Inconclusive(Stop),
        /// The policy has client context off (`.context(false)`, or no
        /// address header; `.context(true)` turns it on; [`ClientScheme`],
        /// [`ClientHost`], [`BaseUrl`]).
        ContextOff,
        /// No one named a host: the request had no authority or `Host`,
        /// and no trusted proxy sent one ([`ClientHost`], [`BaseUrl`]).
        NoHost,
    }

    /// Rejection of [`ClientIp`], [`ClientAddr`], [`RealIp`] and
    /// [`Conclusive`]. A missing layer or connection info is a server
    /// configuration mistake, answered with `500 Internal Server Error` and
    /// a message naming the fix; an inconclusive walk (from
    /// [`Conclusive`] only) is the request's doing, answered with
    /// `400 Bad Request`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct RealIpRejection {
        reason: RejectionReason,
    }

    impl RealIpRejection {
        fn from_parts(parts: &Parts) -> Self {
            let reason = if parts.extensions.get::<NoPeer>().is_some() {
                RejectionReason::MissingConnectInfo
            } else {
                RejectionReason::MissingLayer
            };
            Self { reason }
        }

        /// What was missing.
        pub fn reason(&self) -> RejectionReason {
            self.reason
        }

        /// `500 Internal Server Error` for a server mistake (the client did
        /// nothing wrong), `400 Bad Request` for an inconclusive walk.
        pub fn status(&self) -> StatusCode {
            match self.reason {
                RejectionReason::Inconclusive(_) | RejectionReason::NoHost => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }

        /// The message sent as the response body.
        pub fn body_text(&self) -> &'static str {
            match self.reason {
                RejectionReason::MissingLayer => {
                    "realip: no client address for this request: add RealIpLayer to the \
                     router or service that serves this handler"
                }
                RejectionReason::MissingConnectInfo => {
                    "realip: RealIpLayer found no peer address: serve the app with \
                     layer.into_make_service(app), or with \
                     into_make_service_with_connect_info::<ProxiedAddr>() or \
                     ::<SocketAddr>() (or insert a ProxiedAddr request extension)"
                }
                RejectionReason::ContextOff => {
                    "realip: the client context is off for this policy (`.context(false)`, or no \
                     address header): turn it on with `.context(true)` on the RealIpLayer builder"
                }
                RejectionReason::NoHost => {
                    "realip: the request names no host (no authority, no Host header)"
                }
                RejectionReason::Inconclusive(Stop::Malformed) => {
                    "realip: the client address could not be determined: a forwarded \
                     header entry did not parse"
                }
                RejectionReason::Inconclusive(Stop::Ambiguous) => {
                    "realip: the client address could not be determined: the client \
                     address header was sent more than once"
                }
                RejectionReason::Inconclusive(Stop::HopCap) => {
                    "realip: the client address could not be determined: the forwarded \
                     chain is longer than the hop cap"
                }
                RejectionReason::Inconclusive(_) => {
                    "realip: the client address could not be determined: the forwarded \
                     chain is shorter than the trusted proxies"
                }
            }
        }
    }

    impl fmt::Display for RealIpRejection {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.body_text())
        }
    }

    impl std::error::Error for RealIpRejection {}

    impl IntoResponse for RealIpRejection {
        fn into_response(self) -> Response {
            if let RejectionReason::Inconclusive(stop) = self.reason {
                // The request's doing, and a client can repeat it at will.
                tracing::debug!(target: "realip::extract", %stop, "{}", self.body_text());
            } else if self.reason == RejectionReason::NoHost {
                tracing::debug!(target: "realip::extract", "{}", self.body_text());
            } else {
                tracing::error!(target: "realip::extract", reason = ?self.reason, "{}", self.body_text());
            }
            (self.status(), self.body_text()).into_response()
        }
    }

    fn get(parts: &Parts) -> Result<&RealIp, RealIpRejection> {
        parts
            .extensions
            .get::<RealIp>()
            .ok_or_else(|| RealIpRejection::from_parts(parts))
    }

    impl<S: Sync> FromRequestParts<S> for RealIp {
        type Rejection = RealIpRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            get(parts).cloned()
        }
    }

    impl<S: Sync> OptionalFromRequestParts<S> for RealIp {
        type Rejection = Infallible;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
            Ok(parts.extensions.get::<RealIp>().cloned())
        }
    }

    impl<S: Sync> FromRequestParts<S> for ClientIp {
        type Rejection = RealIpRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            get(parts).map(|r| ClientIp(r.ip()))
        }
    }

    impl<S: Sync> OptionalFromRequestParts<S> for ClientIp {
        type Rejection = Infallible;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
            Ok(parts.extensions.get::<RealIp>().map(|r| ClientIp(r.ip())))
        }
    }

    impl<S: Sync> FromRequestParts<S> for ClientAddr {
        type Rejection = RealIpRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            get(parts).map(RealIp::client_addr)
        }
    }

    impl<S: Sync> OptionalFromRequestParts<S> for ClientAddr {
        type Rejection = Infallible;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
            Ok(parts.extensions.get::<RealIp>().map(RealIp::client_addr))
        }
    }

    /// The context value `f` reads, or why there is none.
    fn context_value<T>(
        parts: &Parts,
        f: impl FnOnce(&RealIp) -> Option<T>,
    ) -> Result<T, RealIpRejection> {
        let real = get(parts)?;
        if real.context().is_none() {
            return Err(RealIpRejection {
                reason: RejectionReason::ContextOff,
            });
        }
        f(real).ok_or(RealIpRejection {
            reason: RejectionReason::NoHost,
        })
    }

    macro_rules! context_extractor {
        ($ty:ty, $f:expr) => {
            impl<S: Sync> FromRequestParts<S> for $ty {
                type Rejection = RealIpRejection;

                async fn from_request_parts(
                    parts: &mut Parts,
                    _: &S,
                ) -> Result<Self, Self::Rejection> {
                    context_value(parts, $f)
                }
            }

            impl<S: Sync> OptionalFromRequestParts<S> for $ty {
                type Rejection = Infallible;

                async fn from_request_parts(
                    parts: &mut Parts,
                    _: &S,
                ) -> Result<Option<Self>, Infallible> {
                    Ok(context_value(parts, $f).ok())
                }
            }
        };
    }

    context_extractor!(ClientScheme, |r: &RealIp| r.scheme().map(ClientScheme));
    context_extractor!(ClientHost, RealIp::host);
    context_extractor!(BaseUrl, RealIp::base_url);

    impl<S: Sync, T: FromRealIp> FromRequestParts<S> for Conclusive<T> {
        type Rejection = RealIpRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            let real = get(parts)?;
            if real.is_conclusive() {
                Ok(Conclusive(T::from_real_ip(real)))
            } else {
                Err(RealIpRejection {
                    reason: RejectionReason::Inconclusive(real.stop()),
                })
            }
        }
    }

    impl<S: Sync, T: FromRealIp> OptionalFromRequestParts<S> for Conclusive<T> {
        type Rejection = Infallible;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
            Ok(parts
                .extensions
                .get::<RealIp>()
                .filter(|r| r.is_conclusive())
                .map(|r| Conclusive(T::from_real_ip(r))))
        }
    }
}
