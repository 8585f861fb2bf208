//! What to do with the PROXY header, per source address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use crate::trust::{ConfigError, ConfigErrorKind};

use ipnet::{IpNet, Ipv4Net};

/// How a connection from one peer treats the PROXY protocol header.
///
/// Only the socket peer (the host that opened the TCP connection) chooses
/// the mode: the header itself is untrusted until the mode says to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// A valid header must come first; without one the connection is
    /// closed. This is what the PROXY protocol specification asks of a
    /// receiver, and the default. A LOCAL header (health checks) is
    /// accepted and gives no source address.
    Require,
    /// Use a header if the first bytes are a PROXY signature, otherwise
    /// serve the connection as it is, replaying every byte read.
    ///
    /// Weaker than the specification, which forbids guessing: a peer in
    /// this range can choose whether its connection carries a header, so
    /// only use it for peers that may send either (health checks, local
    /// testing, a migration), never for ranges where untrusted clients
    /// connect directly.
    Optional,
    /// Read a header if one is present and throw it away: the connection is
    /// served with the socket peer as its address. For peers whose header
    /// must not be believed but must not reach the application either.
    Ignore,
    /// A connection that starts with a PROXY signature is closed; any other
    /// is served as it is (every byte read is replayed).
    Reject,
    /// Do not read anything: the connection is handed over untouched.
    Skip,
}

impl Mode {
    /// Short lowercase name, used in tracing events.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Require => "require",
            Mode::Optional => "optional",
            Mode::Ignore => "ignore",
            Mode::Reject => "reject",
            Mode::Skip => "skip",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ConfigError;

    /// The names [`as_str`](Mode::as_str) gives: `require`, `optional`,
    /// `ignore`, `reject`, `skip` (exactly, for settings read from text).
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "require" => Mode::Require,
            "optional" => Mode::Optional,
            "ignore" => Mode::Ignore,
            "reject" => Mode::Reject,
            "skip" => Mode::Skip,
            _ => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidValue,
                    format!(
                        "`{s}` is not a PROXY protocol mode \
                         (require, optional, ignore, reject, skip)"
                    ),
                ))
            }
        })
    }
}

type PolicyFn = dyn Fn(SocketAddr) -> Mode + Send + Sync;

/// Chooses a [`Mode`] for every peer: CIDR rules (most specific range wins)
/// or one closure, with a fallback mode for peers no rule covers.
///
/// The fallback fails closed: with no rule at all, every peer must send a
/// header ([`Mode::Require`], the specification, right only when nothing
/// but the load balancer can reach the port); as soon as any rule names
/// ranges, a peer outside every named range is [`Mode::Reject`]: its
/// PROXY header closes the connection, and without one it is served as
/// itself. Naming the balancer's range with `require_from` must never leave
/// the rest of the internet able to send a header. [`otherwise`](Self::otherwise)
/// chooses another fallback explicitly.
///
/// Peers written as IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack
/// socket reports them) are matched as the IPv4 address, and mapped ranges
/// are converted to IPv4 ranges, so an `10.0.0.0/8` rule covers both.
#[derive(Clone)]
pub struct SourcePolicy {
    rules: Vec<(IpNet, Mode)>,
    func: Option<Arc<PolicyFn>>,
    /// `None`: [`Mode::Require`] without rules, [`Mode::Reject`] with rules.
    default: Option<Mode>,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SourcePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePolicy")
            .field("rules", &self.rules)
            .field("func", &self.func.as_ref().map(|_| ".."))
            .field("default", &self.default)
            .finish()
    }
}

impl SourcePolicy {
    /// No rules: every peer gets [`Mode::Require`] until a rule names
    /// ranges, then peers outside them get [`Mode::Reject`].
    pub fn new() -> Self {
        Self {
            rules: Vec::new(),
            func: None,
            default: None,
        }
    }

    /// Peers in `ranges` get `mode`. When ranges overlap, the most specific
    /// (longest prefix) wins; for the same range, the rule added last wins.
    #[must_use]
    pub fn with<I: IntoIterator<Item = IpNet>>(mut self, mode: Mode, ranges: I) -> Self {
        self.rules
            .extend(ranges.into_iter().map(|net| (unmap_net(net), mode)));
        self
    }

    /// Peers that no rule covers get `mode` (default: [`Mode::Require`]
    /// while there is no rule, [`Mode::Reject`] once a rule names ranges).
    #[must_use]
    pub fn otherwise(mut self, mode: Mode) -> Self {
        self.default = Some(mode);
        self
    }

    /// The mode of peers no rule covers, as it stands.
    pub fn fallback(&self) -> Mode {
        match self.default {
            Some(mode) => mode,
            None if self.rules.is_empty() => Mode::Require,
            None => Mode::Reject,
        }
    }

    /// Decide with a closure instead; when set, it alone decides (the CIDR
    /// rules and the fallback are not consulted). The peer it gets is
    /// already unmapped (`::ffff:a.b.c.d` arrives as `a.b.c.d`).
    #[must_use]
    pub fn with_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(SocketAddr) -> Mode + Send + Sync + 'static,
    {
        self.func = Some(Arc::new(f));
        self
    }

    /// The mode for a connection from `peer`.
    pub fn mode_for(&self, peer: SocketAddr) -> Mode {
        let peer = SocketAddr::new(unmap(peer.ip()), peer.port());
        if let Some(f) = &self.func {
            return f(peer);
        }
        let ip = peer.ip();
        let mut best: Option<(u8, Mode)> = None;
        for (net, mode) in &self.rules {
            if net.contains(&ip) && best.is_none_or(|(len, _)| net.prefix_len() >= len) {
                best = Some((net.prefix_len(), *mode));
            }
        }
        best.map_or_else(|| self.fallback(), |(_, m)| m)
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn unmap_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(n);
                }
            }
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_from_str_takes_every_as_str_name_and_nothing_else() {
        for mode in [
            Mode::Require,
            Mode::Optional,
            Mode::Ignore,
            Mode::Reject,
            Mode::Skip,
        ] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        for bad in ["required", "Require", "off", "", " skip"] {
            let err = bad.parse::<Mode>().unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::InvalidValue, "{bad:?}");
        }
    }

    fn p(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn default_is_require() {
        assert_eq!(SourcePolicy::new().mode_for(p("1.2.3.4:5")), Mode::Require);
    }

    /// Naming one range never leaves everyone else in `Require`: a peer
    /// outside every named range is `Reject` unless `otherwise` says so.
    #[test]
    fn any_named_range_makes_the_rest_reject() {
        for mode in [Mode::Require, Mode::Optional, Mode::Ignore, Mode::Skip] {
            let pol = SourcePolicy::new().with(mode, [n("10.0.0.0/8")]);
            assert_eq!(pol.mode_for(p("10.1.2.3:1")), mode);
            assert_eq!(pol.mode_for(p("8.8.8.8:1")), Mode::Reject, "{mode:?}");
            assert_eq!(pol.mode_for(p("[2001:db8::1]:1")), Mode::Reject);
            assert_eq!(pol.fallback(), Mode::Reject);
        }
        let pol = SourcePolicy::new()
            .with(Mode::Require, [n("10.0.0.0/8")])
            .otherwise(Mode::Optional);
        assert_eq!(pol.mode_for(p("8.8.8.8:1")), Mode::Optional);
        // The order of `otherwise` and the rules does not matter.
        let pol = SourcePolicy::new()
            .otherwise(Mode::Skip)
            .with(Mode::Require, [n("10.0.0.0/8")]);
        assert_eq!(pol.mode_for(p("8.8.8.8:1")), Mode::Skip);
    }

    #[test]
    fn longest_prefix_wins_regardless_of_order() {
        let pol = SourcePolicy::new()
            .with(Mode::Skip, [n("10.0.0.5/32")])
            .with(Mode::Require, [n("10.0.0.0/8")])
            .otherwise(Mode::Reject);
        assert_eq!(pol.mode_for(p("10.0.0.5:1")), Mode::Skip);
        assert_eq!(pol.mode_for(p("10.9.0.5:1")), Mode::Require);
        assert_eq!(pol.mode_for(p("11.0.0.1:1")), Mode::Reject);
    }

    #[test]
    fn same_range_last_rule_wins() {
        let pol = SourcePolicy::new()
            .with(Mode::Skip, [n("10.0.0.0/8")])
            .with(Mode::Optional, [n("10.0.0.0/8")]);
        assert_eq!(pol.mode_for(p("10.1.1.1:1")), Mode::Optional);
    }

    #[test]
    fn mapped_peers_and_ranges_match_ipv4() {
        let pol = SourcePolicy::new()
            .with(Mode::Optional, [n("10.0.0.0/8")])
            .with(Mode::Skip, [n("::ffff:192.168.0.0/112")])
            .otherwise(Mode::Reject);
        assert_eq!(pol.mode_for(p("[::ffff:10.1.2.3]:1")), Mode::Optional);
        assert_eq!(pol.mode_for(p("192.168.4.4:1")), Mode::Skip);
        assert_eq!(pol.mode_for(p("[2001:db8::1]:1")), Mode::Reject);
    }

    #[test]
    fn closure_decides_alone() {
        let pol = SourcePolicy::new()
            .with(Mode::Skip, [n("0.0.0.0/0")])
            .with_fn(|peer| {
                if peer.ip().is_loopback() {
                    Mode::Optional
                } else {
                    Mode::Require
                }
            });
        assert_eq!(pol.mode_for(p("[::ffff:127.0.0.1]:1")), Mode::Optional);
        assert_eq!(pol.mode_for(p("8.8.8.8:1")), Mode::Require);
    }
}
