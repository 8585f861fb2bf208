//! Rate-limit keys from the resolved client, for any limiter.
//!
//! [`RateLimitKey`] turns the [`RealIp`] a [`RealIpLayer`](crate::RealIpLayer)
//! stored into the key of a client's bucket: its address, with IPv6 clients
//! grouped by their network prefix (`/64` by default, as Traefik's
//! `ipv6Subnet`). A host that is handed a `/64` can use any of its 2⁶⁴
//! addresses, so keying on the full IPv6 address would give it as many
//! buckets as it likes. IPv4 addresses are keyed whole, IPv4-mapped IPv6 as
//! IPv4.
//!
//! The key is the resolved address as is, also when the walk was
//! inconclusive ([`RealIp::is_conclusive`]): the address is then the nearest
//! trusted proxy, so abusers share the proxy's bucket and none escapes it.
//! A forged `X-Forwarded-For` cannot choose a bucket: only entries from
//! trusted proxies are ever read.
//!
//! For `tower_governor`, the `governor` feature wraps this in a
//! `KeyExtractor` (`realip::governor::RealIpKeyExtractor`).
//!
//! ```
//! use realip::rate_limit::RateLimitKey;
//!
//! let key = RateLimitKey::new();
//! let a = key.key_ip("2001:db8:1:2::a".parse().unwrap());
//! let b = key.key_ip("2001:db8:1:2:ffff::b".parse().unwrap());
//! assert_eq!(a, b);
//! assert_eq!(a, "2001:db8:1:2::".parse::<std::net::IpAddr>().unwrap());
//! assert_eq!(key.key_ip("::ffff:192.0.2.7".parse().unwrap()).to_string(), "192.0.2.7");
//!
//! // Per address, for limits where every IPv6 host counts alone.
//! let exact = RateLimitKey::with_ipv6_prefix(128)?;
//! assert_ne!(exact.key_ip("2001:db8::a".parse().unwrap()), exact.key_ip("2001:db8::b".parse().unwrap()));
//! # Ok::<(), realip::ConfigError>(())
//! ```

use std::net::{IpAddr, Ipv6Addr};

use crate::extract::RealIp;
use crate::trust::{ConfigError, ConfigErrorKind};

/// The IPv6 prefix length clients are grouped by unless told otherwise.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// How a resolved client maps to a rate-limit bucket; see the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimitKey {
    prefix: u8,
    mask: u128,
}

impl Default for RateLimitKey {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimitKey {
    /// IPv6 clients grouped by [`DEFAULT_IPV6_PREFIX`] (`/64`).
    pub const fn new() -> Self {
        RateLimitKey {
            prefix: DEFAULT_IPV6_PREFIX,
            mask: mask(DEFAULT_IPV6_PREFIX),
        }
    }

    /// IPv6 clients grouped by their first `len` bits: `128` keys each
    /// address alone, `48` a whole site.
    ///
    /// # Errors
    /// `len` above 128 ([`ConfigErrorKind::Ipv6Prefix`]).
    pub fn with_ipv6_prefix(len: u8) -> Result<Self, ConfigError> {
        if len > 128 {
            return Err(ConfigError::new(
                ConfigErrorKind::Ipv6Prefix,
                format!("IPv6 prefix /{len} is longer than 128 bits"),
            ));
        }
        Ok(RateLimitKey {
            prefix: len,
            mask: mask(len),
        })
    }

    /// The IPv6 prefix length clients are grouped by.
    pub fn ipv6_prefix(&self) -> u8 {
        self.prefix
    }

    /// The bucket key of a resolved client.
    #[inline]
    pub fn key(&self, real: &RealIp) -> IpAddr {
        self.key_ip(real.ip())
    }

    /// The bucket key of a client address: IPv4 as is (mapped forms as
    /// IPv4), IPv6 with the bits past the prefix cleared.
    #[inline]
    pub fn key_ip(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & self.mask)),
            v4 => v4,
        }
    }
}

const fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_grouped_by_prefix_ipv4_whole() {
        let k = RateLimitKey::new();
        assert_eq!(k.ipv6_prefix(), 64);
        assert_eq!(k.key_ip(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_ne!(
            k.key_ip(ip("2001:db8:1:2::1")),
            k.key_ip(ip("2001:db8:1:3::1"))
        );
        assert_eq!(k.key_ip(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(k.key_ip(ip("192.0.2.7")), k.key_ip(ip("192.0.2.8")));
        // Mapped forms are IPv4, not a /64 that every IPv4 client shares.
        assert_eq!(k.key_ip(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(
            k.key_ip(ip("::ffff:192.0.2.7")),
            k.key_ip(ip("::ffff:192.0.2.8"))
        );

        let site = RateLimitKey::with_ipv6_prefix(48).unwrap();
        assert_eq!(site.key_ip(ip("2001:db8:1:ffff::1")), ip("2001:db8:1::"));
        let whole = RateLimitKey::with_ipv6_prefix(128).unwrap();
        assert_eq!(whole.key_ip(ip("2001:db8::1")), ip("2001:db8::1"));
        let one = RateLimitKey::with_ipv6_prefix(0).unwrap();
        assert_eq!(one.key_ip(ip("2001:db8::1")), ip("::"));
        let odd = RateLimitKey::with_ipv6_prefix(57).unwrap();
        assert_eq!(odd.key_ip(ip("2001:db8:1:2ff::")), ip("2001:db8:1:280::"));
    }

    #[test]
    fn prefix_over_128_is_a_config_error() {
        for len in [129, 200, u8::MAX] {
            let err = RateLimitKey::with_ipv6_prefix(len).unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::Ipv6Prefix);
        }
    }
}
