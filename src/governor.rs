//! [`RealIpKeyExtractor`]: `tower_governor` rate limits keyed on the
//! resolved client (feature `governor`).
//!
//! `tower_governor`'s own extractors either key on the socket peer (behind a
//! proxy every client shares the proxy's bucket) or, like
//! `SmartIpKeyExtractor`, take the first `X-Forwarded-For` value with no
//! trust check, so a client that writes a new value on every request is
//! never limited. This one keys on the [`RealIp`] a
//! [`RealIpLayer`](crate::RealIpLayer) stored ([`RateLimitKey`]: IPv6
//! grouped by `/64` unless told otherwise); only entries from trusted
//! proxies count.
//!
//! Put the `GovernorLayer` inside the `RealIpLayer` (or serve the app with
//! [`RealIpLayer::into_make_service`](crate::RealIpLayer::into_make_service)).
//! A request with no `RealIp` is answered `500` with a message naming the
//! fix: a misconfigured server fails closed rather than giving everyone
//! one bucket.
//!
//! The `GovernorLayer` answers axum with tower_governor's `axum` feature
//! (`tower_governor = { version = "0.8", features = ["axum"] }`); realip
//! itself needs only the trait. When `tower_governor`'s `tracing` feature
//! is on in the build, enable realip's `governor-tracing` too: that
//! feature adds methods to the `KeyExtractor` trait, which this crate then
//! implements.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use realip::governor::RealIpKeyExtractor;
//! use realip::{HeaderSource, RealIpLayer};
//! use tower_governor::{governor::GovernorConfigBuilder, GovernorLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let realip = RealIpLayer::builder()
//!     .trust_private()
//!     .header(HeaderSource::XForwardedFor)
//!     .build()?;
//! // 10 requests per second per client, in bursts of up to 10.
//! let config = GovernorConfigBuilder::default()
//!     .per_millisecond(100)
//!     .burst_size(10)
//!     .key_extractor(RealIpKeyExtractor::new())
//!     .finish()
//!     .ok_or("invalid rate limit")?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(GovernorLayer::new(Arc::new(config)))
//!     .layer(realip);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::net::IpAddr;

use http::{Request, StatusCode};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;

use crate::extract::RealIp;
use crate::rate_limit::RateLimitKey;
use crate::trust::ConfigError;

/// A `tower_governor` [`KeyExtractor`] keyed on the resolved client; see
/// the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RealIpKeyExtractor {
    key: RateLimitKey,
}

impl RealIpKeyExtractor {
    /// IPv6 clients grouped by `/64`.
    pub const fn new() -> Self {
        RealIpKeyExtractor {
            key: RateLimitKey::new(),
        }
    }

    /// IPv6 clients grouped by their first `len` bits.
    ///
    /// # Errors
    /// `len` above 128 ([`ConfigErrorKind::Ipv6Prefix`](crate::ConfigErrorKind::Ipv6Prefix)).
    pub fn with_ipv6_prefix(len: u8) -> Result<Self, ConfigError> {
        RateLimitKey::with_ipv6_prefix(len).map(Self::from)
    }

    /// The key function used.
    pub fn key(&self) -> RateLimitKey {
        self.key
    }
}

impl From<RateLimitKey> for RealIpKeyExtractor {
    fn from(key: RateLimitKey) -> Self {
        RealIpKeyExtractor { key }
    }
}

const NO_CLIENT: &str = "realip: RealIpKeyExtractor found no resolved client: put RealIpLayer \
    outside the GovernorLayer (the layer added after it), or serve the app with \
    layer.into_make_service(app)";

impl KeyExtractor for RealIpKeyExtractor {
    type Key = IpAddr;

    #[cfg(feature = "governor-tracing")]
    fn name(&self) -> &'static str {
        "realip client"
    }

    #[inline]
    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        match RealIp::from_extensions(req.extensions()) {
            Some(real) => Ok(self.key.key(real)),
            None => {
                tracing::error!(target: "realip::governor", "{NO_CLIENT}");
                Err(GovernorError::Other {
                    code: StatusCode::INTERNAL_SERVER_ERROR,
                    msg: Some(NO_CLIENT.to_owned()),
                    headers: None,
                })
            }
        }
    }

    #[cfg(feature = "governor-tracing")]
    fn key_name(&self, key: &Self::Key) -> Option<String> {
        Some(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn keys_on_the_stored_client_and_fails_closed_without_it() {
        let ex = RealIpKeyExtractor::new();
        let req = testing::with_client_ip(Request::new(()), "2001:db8:1:2::7".parse().unwrap());
        assert_eq!(
            ex.extract(&req).unwrap(),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        let exact = RealIpKeyExtractor::with_ipv6_prefix(128).unwrap();
        assert_eq!(
            exact.extract(&req).unwrap(),
            "2001:db8:1:2::7".parse::<IpAddr>().unwrap()
        );
        assert!(RealIpKeyExtractor::with_ipv6_prefix(129).is_err());

        // A bare SocketAddr or a forged header is not a client.
        let mut bare = Request::new(());
        bare.extensions_mut()
            .insert(std::net::SocketAddr::from(([192, 0, 2, 1], 80)));
        bare.headers_mut()
            .insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        match ex.extract(&bare) {
            Err(GovernorError::Other { code, msg, .. }) => {
                assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
                assert!(msg.unwrap().contains("RealIpLayer"));
            }
            other => panic!("expected a 500, got {other:?}"),
        }
    }
}
