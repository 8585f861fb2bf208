//! Settings from files and the environment (feature `serde`).
//!
//! [`PolicyConfig`] (the resolution policy) and [`ListenerConfig`] (the
//! PROXY protocol listener) deserialize from any serde format and are
//! validated when they are built, into the same [`ConfigError`]s the
//! builders give, wrapped in a [`ConfigFileError`] that names the key.
//! `Policy` itself deserializes through [`PolicyConfig`], so a bad file
//! fails while it loads. [`PolicyConfig::from_env`] reads the policy from
//! environment variables without any other crate.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use realip::config::{ListenerConfig, PolicyConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct AppConfig {
//!     realip: PolicyConfig,
//!     #[serde(default)]
//!     listener: ListenerConfig,
//! }
//!
//! let app: AppConfig = toml::from_str(
//!     r#"
//!     [realip]
//!     trust = ["private", "192.0.2.0/24"]
//!     header = "x-forwarded-for"
//!
//!     [listener.proxy-protocol]
//!     require = ["10.0.0.0/8"]
//!
//!     [listener]
//!     header-timeout-ms = 5000
//!     "#,
//! )?;
//! let layer = app.realip.layer()?;
//! assert!(layer.policy().trusted_proxies().contains("192.0.2.7".parse()?));
//! let acceptor = app.listener.acceptor()?;
//! assert_eq!(acceptor.timeout(), std::time::Duration::from_secs(5));
//!
//! // A mistake names its key.
//! let bad: PolicyConfig = toml::from_str(r#"trust = ["loopback", "10.0.0.0/33"]"#)?;
//! let err = bad.build().unwrap_err();
//! assert_eq!(err.key(), "trust[1]");
//! assert_eq!(err.error().kind(), realip::ConfigErrorKind::InvalidRange);
//! # Ok(())
//! # }
//! ```

use std::fmt;

use serde::Deserialize;

use crate::resolve::{ConfigError, ConfigErrorKind, HeaderSource, Policy};
use crate::trust::TrustedProxies;

/// A setting that cannot work, with the key that holds it (`trust[1]`,
/// `hops`, `proxy-protocol.require[0]`, or an environment variable's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    key: String,
    error: ConfigError,
}

impl ConfigFileError {
    fn new(key: impl Into<String>, error: ConfigError) -> Self {
        ConfigFileError {
            key: key.into(),
            error,
        }
    }

    /// The offending key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it, as the builders report it.
    pub fn error(&self) -> &ConfigError {
        &self.error
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.error)
    }
}

impl std::error::Error for ConfigFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A range list: each entry a preset name ([`TrustedProxies::preset`]) or
/// networks and addresses ([`TrustedProxies`]'s `FromStr`); an error is
/// keyed `key[i]`.
fn ranges(key: &str, entries: &[String]) -> Result<TrustedProxies, ConfigFileError> {
    let mut all = TrustedProxies::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = || format!("{key}[{i}]");
        let set = match TrustedProxies::preset(entry) {
            Some(set) => set,
            None => entry.parse().map_err(|e| ConfigFileError::new(key(), e))?,
        };
        all.merge(&set)
            .map_err(|e| ConfigFileError::new(key(), e))?;
    }
    Ok(all)
}

fn invalid(key: impl Into<String>, message: String) -> ConfigFileError {
    ConfigFileError::new(
        key,
        ConfigError::new(ConfigErrorKind::InvalidValue, message),
    )
}

/// The resolution policy as settings: what [`PolicyBuilder`](crate::PolicyBuilder)
/// takes, by name. Keys (kebab-case; unknown keys are an error):
///
/// | key | value | builder call |
/// |---|---|---|
/// | `trust` | list of presets (`loopback`, `private`, `cgnat`, `link-local`), networks, addresses | `trusted_proxies` |
/// | `header` | a header name (see [`HeaderSource`]'s `FromStr`) | `header` |
/// | `recursive` | `true` / `false` | `recursive` |
/// | `hops` | hop count | `trusted_hops` |
/// | `hop-cap` | most entries read | `hop_cap` |
///
/// Everything left out keeps the builder's default; the empty config is
/// the secure default (no proxy trusted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Trusted proxies.
    pub trust: Vec<String>,
    /// The one address header.
    pub header: Option<String>,
    /// Walk left while hops are trusted (default) or one step only.
    pub recursive: Option<bool>,
    /// Hop-count mode: this many proxies stand in front.
    pub hops: Option<usize>,
    /// Most header entries read per request.
    pub hop_cap: Option<usize>,
}

impl PolicyConfig {
    /// Validates the settings into a [`Policy`].
    ///
    /// # Errors
    /// The first setting that cannot work, with its key: a range or preset
    /// that does not parse, a header name that is not one, and every rule
    /// of [`Policy`] (the key of a rule between two settings is the one to
    /// change: `hops` for hop count with ranges, `trust` for a header
    /// nobody is trusted to send).
    pub fn build(&self) -> Result<Policy, ConfigFileError> {
        let mut b = Policy::builder();
        if !self.trust.is_empty() {
            b = b.trusted_proxies(&ranges("trust", &self.trust)?);
        }
        if let Some(header) = &self.header {
            let source: HeaderSource = header
                .parse()
                .map_err(|e| ConfigFileError::new("header", e))?;
            b = b.header(source);
        }
        if let Some(on) = self.recursive {
            b = b.recursive(on);
        }
        if let Some(n) = self.hops {
            b = b.trusted_hops(n);
        }
        if let Some(cap) = self.hop_cap {
            b = b.hop_cap(cap);
        }
        b.build().map_err(|e| {
            let key = match e.kind() {
                ConfigErrorKind::ZeroHopCount
                | ConfigErrorKind::HopCountWithoutRecursion
                | ConfigErrorKind::HopCountWithRanges
                | ConfigErrorKind::HopCountAboveCap => "hops",
                ConfigErrorKind::HopCap => "hop-cap",
                ConfigErrorKind::NoHeaderSource
                | ConfigErrorKind::UnderscoreHeaderName
                | ConfigErrorKind::SeveralHeaders => "header",
                _ => "trust",
            };
            ConfigFileError::new(key, e)
        })
    }

    /// Validates the settings into a [`RealIpLayer`](crate::RealIpLayer).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    #[cfg(feature = "tower")]
    pub fn layer(&self) -> Result<crate::RealIpLayer, ConfigFileError> {
        self.build().map(crate::RealIpLayer::from)
    }

    /// Reads the settings from the process environment: see
    /// [`from_env_vars`](Self::from_env_vars).
    ///
    /// # Errors
    /// As [`from_env_vars`](Self::from_env_vars).
    pub fn from_env(prefix: &str) -> Result<Self, ConfigFileError> {
        Self::from_env_vars(prefix, std::env::vars_os())
    }

    /// Reads the settings from environment variables named `prefix` +
    /// the key in upper snake case: with `prefix = "REALIP_"`,
    /// `REALIP_TRUST` (entries separated by commas or spaces),
    /// `REALIP_HEADER`, `REALIP_RECURSIVE` (`true` / `false`),
    /// `REALIP_HOPS`, `REALIP_HOP_CAP`. Other variables are not read,
    /// except those starting with `prefix`: each must be one of these, so a
    /// misspelt name is an error rather than a setting silently left out.
    ///
    /// ```
    /// use realip::config::PolicyConfig;
    ///
    /// let vars = [("REALIP_TRUST", "private, 192.0.2.1"), ("REALIP_HEADER", "x-real-ip")];
    /// let config = PolicyConfig::from_env_vars("REALIP_", vars)?;
    /// let policy = config.build()?;
    /// assert!(policy.trusted_proxies().contains("10.1.2.3".parse()?));
    ///
    /// let err = PolicyConfig::from_env_vars("REALIP_", [("REALIP_HOPS", "two")]).unwrap_err();
    /// assert_eq!(err.key(), "REALIP_HOPS");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A variable with the prefix that is not a key, a value that is not
    /// Unicode or does not parse as its key's type, named by the variable.
    /// Ranges and the policy's rules are checked by [`build`](Self::build).
    pub fn from_env_vars<I, K, V>(prefix: &str, vars: I) -> Result<Self, ConfigFileError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut config = PolicyConfig::default();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            let Some(name) = name.to_str().filter(|n| n.starts_with(prefix)) else {
                continue;
            };
            let value = value
                .to_str()
                .ok_or_else(|| invalid(name, "the value is not valid Unicode".to_owned()))?;
            let number = || {
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| invalid(name, format!("`{value}` is not a whole number")))
            };
            match &name[prefix.len()..] {
                "TRUST" => {
                    config.trust = value
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect();
                    // Entries are checked by `build` under the key `trust`;
                    // check them here so the variable is named.
                    ranges(name, &config.trust).map_err(|e| ConfigFileError::new(name, e.error))?;
                }
                "HEADER" => {
                    value
                        .parse::<HeaderSource>()
                        .map_err(|e| ConfigFileError::new(name, e))?;
                    config.header = Some(value.to_owned());
                }
                "RECURSIVE" => {
                    config.recursive = Some(match value.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(name, format!("`{value}` is not true or false"))),
                    });
                }
                "HOPS" => config.hops = Some(number()?),
                "HOP_CAP" => config.hop_cap = Some(number()?),
                _ => {
                    return Err(invalid(
                        name,
                        format!(
                            "not a setting; those starting with {prefix} are \
                             {prefix}TRUST, {prefix}HEADER, {prefix}RECURSIVE, \
                             {prefix}HOPS, {prefix}HOP_CAP"
                        ),
                    ))
                }
            }
        }
        Ok(config)
    }
}

/// Deserializes through [`PolicyConfig`] and validates at once: a file
/// holding a policy that cannot work fails to load, the message naming
/// the key.
impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PolicyConfig::deserialize(d)?
            .build()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "tokio")]
pub use listener::{ListenerConfig, ProxyProtocolConfig};

#[cfg(feature = "tokio")]
mod listener {
    use std::time::Duration;

    use serde::Deserialize;

    use super::{invalid, ranges, ConfigFileError};
    use crate::io::{
        Incoming, Mode, ProxyAcceptor, ProxyProtocolListener, SourcePolicy, MIN_HEADER_TIMEOUT,
        MIN_MAX_HEADER_LEN,
    };
    use crate::proxy;

    /// PROXY protocol modes per range: each key is a [`Mode`] name, each
    /// value the ranges (presets, networks, addresses) that get it. The
    /// most specific range wins ([`SourcePolicy`]).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[non_exhaustive]
    pub struct ProxyProtocolConfig {
        /// A valid header must come first.
        pub require: Vec<String>,
        /// A header is used when present.
        pub optional: Vec<String>,
        /// A header is read and thrown away.
        pub ignore: Vec<String>,
        /// A header closes the connection.
        pub reject: Vec<String>,
        /// Nothing is read.
        pub skip: Vec<String>,
    }

    /// The PROXY protocol listener as settings. Keys (kebab-case; unknown
    /// keys are an error):
    ///
    /// | key | value | builder call |
    /// |---|---|---|
    /// | `proxy-protocol` | table: mode name → ranges ([`ProxyProtocolConfig`]) | `require_from`, `optional_from`, ... |
    /// | `otherwise` | a [`Mode`] name, for peers no range names | `otherwise` |
    /// | `header-timeout-ms` | at least 3000 | `header_timeout` |
    /// | `max-header-len` | 232 to 65551 bytes | `max_header_len` |
    /// | `max-in-flight` | at least 1 | `max_in_flight` |
    ///
    /// Where the builders clamp a value (timeout, header length, in-flight
    /// count), a file value out of range is an error instead: a setting
    /// someone wrote down should not be quietly changed. Left out, each
    /// keeps the builder's default, and the fallback fails closed as in
    /// [`SourcePolicy`].
    #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    #[non_exhaustive]
    pub struct ListenerConfig {
        /// Modes per range.
        pub proxy_protocol: ProxyProtocolConfig,
        /// The mode of peers no range names.
        pub otherwise: Option<String>,
        /// Deadline for the whole header, in milliseconds.
        pub header_timeout_ms: Option<u64>,
        /// Cap on the bytes read while looking for the header.
        pub max_header_len: Option<usize>,
        /// Handshakes at once.
        pub max_in_flight: Option<usize>,
    }

    impl ListenerConfig {
        /// Validates the per-connection settings (modes, timeout, size
        /// cap) into a [`ProxyAcceptor`].
        ///
        /// # Errors
        /// The first setting that cannot work, with its key.
        pub fn acceptor(&self) -> Result<ProxyAcceptor, ConfigFileError> {
            let p = &self.proxy_protocol;
            let mut policy = SourcePolicy::new();
            for (mode, entries) in [
                (Mode::Require, &p.require),
                (Mode::Optional, &p.optional),
                (Mode::Ignore, &p.ignore),
                (Mode::Reject, &p.reject),
                (Mode::Skip, &p.skip),
            ] {
                let key = format!("proxy-protocol.{mode}");
                let set = ranges(&key, entries)?;
                policy = policy.with(mode, set.iter().copied());
            }
            if let Some(name) = &self.otherwise {
                let mode: Mode = name
                    .parse()
                    .map_err(|e| ConfigFileError::new("otherwise", e))?;
                policy = policy.otherwise(mode);
            }
            let mut acceptor = ProxyAcceptor::new().policy(policy);
            if let Some(ms) = self.header_timeout_ms {
                let timeout = Duration::from_millis(ms);
                if timeout < MIN_HEADER_TIMEOUT {
                    return Err(invalid(
                        "header-timeout-ms",
                        format!(
                            "{ms} ms is under the {} ms the PROXY specification asks for",
                            MIN_HEADER_TIMEOUT.as_millis()
                        ),
                    ));
                }
                acceptor = acceptor.header_timeout(timeout);
            }
            if let Some(len) = self.max_header_len {
                if !(MIN_MAX_HEADER_LEN..=proxy::v2::MAX_LEN).contains(&len) {
                    return Err(invalid(
                        "max-header-len",
                        format!(
                            "{len} is outside {MIN_MAX_HEADER_LEN}..={}",
                            proxy::v2::MAX_LEN
                        ),
                    ));
                }
                acceptor = acceptor.max_header_len(len);
            }
            Ok(acceptor)
        }

        /// Wraps `inner` in a [`ProxyProtocolListener`] with every
        /// setting, the in-flight count included.
        ///
        /// # Errors
        /// As [`acceptor`](Self::acceptor), and `max-in-flight = 0`.
        pub fn listener<L: Incoming>(
            &self,
            inner: L,
        ) -> Result<ProxyProtocolListener<L>, ConfigFileError> {
            let acceptor = self.acceptor()?;
            let mut listener = ProxyProtocolListener::new(inner).acceptor(acceptor);
            if let Some(n) = self.max_in_flight {
                if n == 0 {
                    return Err(invalid(
                        "max-in-flight",
                        "0 would accept nothing".to_owned(),
                    ));
                }
                listener = listener.max_in_flight(n);
            }
            Ok(listener)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml: &str) -> Result<Policy, ConfigFileError> {
        toml::from_str::<PolicyConfig>(toml).unwrap().build()
    }

    fn key_and_kind(toml: &str) -> (String, ConfigErrorKind) {
        let e = policy(toml).unwrap_err();
        (e.key().to_owned(), e.error().kind())
    }

    fn resolve(p: &Policy, peer: &str, xff: &str) -> String {
        let mut headers = http::HeaderMap::new();
        headers.insert(crate::forwarded::X_FORWARDED_FOR, xff.parse().unwrap());
        p.resolve(peer.parse().unwrap(), None, &headers)
            .ip()
            .to_string()
    }

    #[test]
    fn every_policy_key_reaches_the_policy() {
        let p = policy(
            r#"
            trust = ["loopback", "cgnat", "192.0.2.0/24, 198.51.100.1"]
            header = "X-Forwarded-For"
            recursive = false
            hop-cap = 4
            "#,
        )
        .unwrap();
        let t = p.trusted_proxies();
        for ip in ["127.0.0.5", "100.64.0.1", "192.0.2.9", "198.51.100.1"] {
            assert!(t.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(p.hop_cap(), 4);
        // Non-recursive: one step left of the trusted peer, even onto a
        // trusted address.
        assert_eq!(
            resolve(&p, "127.0.0.1:1", "203.0.113.9, 192.0.2.1"),
            "192.0.2.1"
        );
        let recursive = policy(
            r#"trust = ["loopback", "192.0.2.0/24"]
            header = "x-forwarded-for""#,
        )
        .unwrap();
        assert_eq!(
            resolve(&recursive, "127.0.0.1:1", "203.0.113.9, 192.0.2.1"),
            "203.0.113.9"
        );
        // Hop count: the second entry from the socket peer.
        let hops = policy("hops = 2\nheader = \"x-forwarded-for\"").unwrap();
        assert_eq!(
            resolve(&hops, "10.0.0.1:1", "203.0.113.9, 198.51.100.1, 192.0.2.1"),
            "198.51.100.1"
        );
        // The empty config is the secure default: nobody trusted.
        let none = policy("").unwrap();
        assert_eq!(resolve(&none, "127.0.0.1:1", "203.0.113.9"), "127.0.0.1");
    }

    #[test]
    fn each_mistake_names_its_key() {
        for (toml, key, kind) in [
            (
                r#"trust = ["nonsense"]"#,
                "trust[0]",
                ConfigErrorKind::InvalidRange,
            ),
            (
                r#"trust = ["loopback", "::ffff:10.0.0.0/104"]"#,
                "trust[1]",
                ConfigErrorKind::MappedRange,
            ),
            (
                r#"trust = ["private"]
                   header = "bad header""#,
                "header",
                ConfigErrorKind::InvalidValue,
            ),
            (
                r#"trust = ["private"]
                   header = "x_forwarded_for""#,
                "header",
                ConfigErrorKind::UnderscoreHeaderName,
            ),
            (
                r#"trust = ["private"]"#,
                "header",
                ConfigErrorKind::NoHeaderSource,
            ),
            (
                r#"header = "x-real-ip""#,
                "trust",
                ConfigErrorKind::HeaderWithoutTrust,
            ),
            (
                "hops = 0\nheader = \"x-forwarded-for\"",
                "hops",
                ConfigErrorKind::ZeroHopCount,
            ),
            (
                "hops = 2\ntrust = [\"private\"]\nheader = \"x-forwarded-for\"",
                "hops",
                ConfigErrorKind::HopCountWithRanges,
            ),
            (
                "hops = 2\nrecursive = false\nheader = \"x-forwarded-for\"",
                "hops",
                ConfigErrorKind::HopCountWithoutRecursion,
            ),
            (
                "hops = 9\nhop-cap = 8\nheader = \"x-forwarded-for\"",
                "hops",
                ConfigErrorKind::HopCountAboveCap,
            ),
            ("hop-cap = 0", "hop-cap", ConfigErrorKind::HopCap),
        ] {
            assert_eq!(key_and_kind(toml), (key.to_owned(), kind), "{toml}");
        }
        let e = toml::from_str::<PolicyConfig>("trusted = []").unwrap_err();
        assert!(e.to_string().contains("unknown field `trusted`"), "{e}");
    }

    #[test]
    fn policy_deserializes_validated() {
        #[derive(Deserialize)]
        struct App {
            realip: Policy,
        }
        let app: App =
            toml::from_str("[realip]\ntrust = [\"private\"]\nheader = \"forwarded\"").unwrap();
        assert!(app
            .realip
            .trusted_proxies()
            .contains("10.0.0.1".parse().unwrap()));
        let e =
            toml::from_str::<App>("[realip]\ntrust = [\"private\", \"x\"]\nheader = \"forwarded\"")
                .err()
                .unwrap();
        assert!(e.to_string().contains("trust[1]: `x` is neither"), "{e}");
    }

    #[test]
    fn env_vars_map_onto_the_keys() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("APP_TRUST", "loopback, 192.0.2.0/24 cgnat"),
            ("APP_HEADER", "x-real-ip"),
            ("APP_RECURSIVE", "false"),
            ("APP_HOP_CAP", "5"),
        ];
        let c = PolicyConfig::from_env_vars("APP_", vars).unwrap();
        let expected = PolicyConfig {
            trust: vec!["loopback".into(), "192.0.2.0/24".into(), "cgnat".into()],
            header: Some("x-real-ip".into()),
            recursive: Some(false),
            hop_cap: Some(5),
            ..PolicyConfig::default()
        };
        assert_eq!(c, expected);
        assert!(c.build().is_ok());
        let c = PolicyConfig::from_env_vars("APP_", [("APP_HOPS", "3")]).unwrap();
        assert_eq!(c.hops, Some(3));

        for (name, value, kind) in [
            (
                "APP_TRUST",
                "loopback, 10.0.0.0/33",
                ConfigErrorKind::InvalidRange,
            ),
            ("APP_HEADER", "bad header", ConfigErrorKind::InvalidValue),
            ("APP_RECURSIVE", "yes", ConfigErrorKind::InvalidValue),
            ("APP_HOPS", "two", ConfigErrorKind::InvalidValue),
            ("APP_HOP_CAP", "-1", ConfigErrorKind::InvalidValue),
            ("APP_TRSUT", "private", ConfigErrorKind::InvalidValue),
        ] {
            let e = PolicyConfig::from_env_vars("APP_", [(name, value)]).unwrap_err();
            assert_eq!((e.key(), e.error().kind()), (name, kind), "{name}={value}");
        }
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn every_listener_key_reaches_the_acceptor() {
        use crate::io::Mode;
        let c: ListenerConfig = toml::from_str(
            r#"
            otherwise = "ignore"
            header-timeout-ms = 4000
            max-header-len = 300
            max-in-flight = 7
            [proxy-protocol]
            require = ["10.0.0.0/8"]
            optional = ["loopback"]
            reject = ["10.1.0.0/16"]
            skip = ["192.0.2.1"]
            ignore = ["cgnat"]
            "#,
        )
        .unwrap();
        let a = c.acceptor().unwrap();
        let mode = |ip: &str| {
            a.source_policy()
                .mode_for(std::net::SocketAddr::new(ip.parse().unwrap(), 1))
        };
        assert_eq!(mode("10.2.0.1"), Mode::Require);
        assert_eq!(mode("10.1.0.1"), Mode::Reject);
        assert_eq!(mode("127.0.0.1"), Mode::Optional);
        assert_eq!(mode("192.0.2.1"), Mode::Skip);
        assert_eq!(mode("100.64.0.1"), Mode::Ignore);
        assert_eq!(mode("203.0.113.1"), Mode::Ignore, "otherwise");
        assert_eq!(a.timeout(), std::time::Duration::from_millis(4000));
        assert_eq!(a.max_len(), 300);

        // Left out: the fail-closed fallback and the defaults.
        let c: ListenerConfig =
            toml::from_str("proxy-protocol.require = [\"10.0.0.0/8\"]").unwrap();
        let a = c.acceptor().unwrap();
        assert_eq!(a.source_policy().fallback(), Mode::Reject);
        assert_eq!(a.timeout(), crate::io::DEFAULT_HEADER_TIMEOUT);
        assert_eq!(a.max_len(), crate::io::DEFAULT_MAX_HEADER_LEN);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn listener_takes_max_in_flight() {
        let c: ListenerConfig = toml::from_str("max-in-flight = 7").unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l = c.listener(tcp).unwrap();
        assert!(format!("{l:?}").contains("max_in_flight: 7"), "{l:?}");
        let c: ListenerConfig = toml::from_str("max-in-flight = 0").unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(c.listener(tcp).unwrap_err().key(), "max-in-flight");
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn each_listener_mistake_names_its_key() {
        for (toml, key) in [
            (
                "proxy-protocol.require = [\"x\"]",
                "proxy-protocol.require[0]",
            ),
            (
                "proxy-protocol.skip = [\"loopback\", \"::ffff:1.2.3.4\"]",
                "proxy-protocol.skip[1]",
            ),
            ("otherwise = \"required\"", "otherwise"),
            ("header-timeout-ms = 2999", "header-timeout-ms"),
            ("max-header-len = 10", "max-header-len"),
            ("max-header-len = 70000", "max-header-len"),
        ] {
            let c: ListenerConfig = toml::from_str(toml).unwrap();
            assert_eq!(c.acceptor().unwrap_err().key(), key, "{toml}");
        }
        for bad in ["proxy-protocol.maybe = []", "timeout = 1"] {
            assert!(toml::from_str::<ListenerConfig>(bad).is_err(), "{bad}");
        }
    }
}
