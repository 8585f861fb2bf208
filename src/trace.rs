//! The resolved client in logs, spans and metrics.
//!
//! - [`RealIp`] and [`Source`] implement [`Display`](fmt::Display) for one
//!   log line: `203.0.113.7:5678 via x-forwarded-for from 10.0.0.2:41000
//!   (untrusted-hop)`;
//! - [`RealIpMakeSpan`] (feature `trace`) gives tower-http's `TraceLayer`
//!   spans with `client`, `source`, `peer` and `stop` fields;
//! - with the `metrics` feature, every [`RealIpLayer`](crate::RealIpLayer)
//!   counts its resolutions in `realip_resolutions_total`, labelled `stop`
//!   ([`Stop::as_str`]), through the [`metrics`] facade: the counts go to
//!   whichever recorder the app installs (Prometheus, StatsD, ...) and cost
//!   a check of an atomic when none is;
//! - every layer warns once (`tracing`, target `realip::layer`) when trusted
//!   peers send no address header on [`ABSENT_HEADER_WARN_AFTER`] requests
//!   in a row: every client is then resolved to the proxy's own address,
//!   which is a misconfiguration (the proxy does not set the header, or the
//!   policy reads another one).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::extract::RealIp;
use crate::resolve::{Resolution, Source, Stop};

impl fmt::Display for Source {
    /// `socket`, `proxy-protocol`, or the header name (`x-forwarded-for`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Socket => f.write_str("socket"),
            Source::ProxyProtocol => f.write_str("proxy-protocol"),
            Source::Header(name) => f.write_str(name.as_str()),
        }
    }
}

impl fmt::Display for RealIp {
    /// One line: the client (with its port when known), the source that
    /// decided it, the socket peer and why the walk stopped, marked when
    /// inconclusive:
    /// `203.0.113.7 via x-forwarded-for from 10.0.0.2:41000 (untrusted-hop)`,
    /// `10.0.0.2:41000 via socket from 10.0.0.2:41000 (malformed, inconclusive)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} from {} ({}",
            self.client_addr(),
            self.source(),
            self.peer(),
            self.stop()
        )?;
        if !self.is_conclusive() {
            f.write_str(", inconclusive")?;
        }
        f.write_str(")")
    }
}

/// Requests in a row from trusted peers without the address header after
/// which a layer warns, once.
pub const ABSENT_HEADER_WARN_AFTER: u32 = 100;

/// A layer's count of requests in a row whose trusted peer sent no address
/// header, and whether it has warned.
#[derive(Debug, Default)]
pub(crate) struct HeaderWatch {
    run: AtomicU32,
    warned: AtomicBool,
}

impl HeaderWatch {
    /// Counts one resolution; warns the first time the run reaches
    /// [`ABSENT_HEADER_WARN_AFTER`]. Costs two relaxed loads on a request
    /// that carried the header, one once the warning is out.
    #[inline]
    pub(crate) fn observe(&self, r: &Resolution) {
        if self.warned.load(Ordering::Relaxed) {
            return;
        }
        match r.stop() {
            Stop::HeaderAbsent => {
                let run = self.run.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                if run >= ABSENT_HEADER_WARN_AFTER && !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "realip::layer",
                        peer = %r.ip(),
                        "realip: {run} requests in a row came from trusted proxies without \
                         the configured address header, so each resolved to the proxy's \
                         own address: make the proxy set the header (nginx: \
                         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for), \
                         read the header it does send, or stop trusting its address. \
                         Warned once."
                    );
                }
            }
            // An untrusted peer (a direct client) or a hop-count walk says
            // nothing about whether the proxy sends the header.
            Stop::UntrustedHop if !matches!(r.source(), Source::Header(_)) => {}
            Stop::TooShort => {}
            // The header was there.
            _ => {
                if self.run.load(Ordering::Relaxed) != 0 {
                    self.run.store(0, Ordering::Relaxed);
                }
            }
        }
    }
}

/// What a layer does with each resolution besides storing it: counts it
/// (feature `metrics`) and watches for a proxy that sends no header.
#[inline]
pub(crate) fn observe(watch: &HeaderWatch, r: &Resolution) {
    #[cfg(feature = "metrics")]
    metrics::counter!(RESOLUTIONS, "stop" => r.stop().as_str()).increment(1);
    watch.observe(r);
}

#[cfg(feature = "metrics")]
pub use self::metrics_impl::{describe_metrics, RESOLUTIONS};

#[cfg(feature = "metrics")]
mod metrics_impl {
    /// Counter of resolutions made by every [`RealIpLayer`](crate::RealIpLayer),
    /// labelled `stop` with [`Stop::as_str`](crate::Stop::as_str)
    /// (`untrusted-hop`, `malformed`, ...): one increment per request.
    pub const RESOLUTIONS: &str = "realip_resolutions_total";

    /// Registers descriptions of realip's metrics with the installed
    /// recorder (the `# HELP` lines of a Prometheus exporter). Optional:
    /// counting works without it.
    pub fn describe_metrics() {
        metrics::describe_counter!(
            RESOLUTIONS,
            metrics::Unit::Count,
            "Client resolutions by RealIpLayer, by why the walk stopped (label stop)"
        );
    }
}

#[cfg(feature = "trace")]
pub use self::make_span::RealIpMakeSpan;

#[cfg(feature = "trace")]
mod make_span {
    use http::Request;
    use tracing::field::{display, Empty};
    use tracing::{Level, Span};

    use crate::extract::RealIp;

    /// A tower-http [`MakeSpan`](tower_http::trace::MakeSpan) whose spans
    /// carry the resolved client: `method`, `uri`, `version`, then
    /// `client` (address and port when known), `source`, `peer` and `stop`,
    /// empty when no [`RealIpLayer`](crate::RealIpLayer) ran before the
    /// `TraceLayer`.
    ///
    /// The `TraceLayer` must sit inside the `RealIpLayer` (or the app be
    /// served with [`RealIpLayer::into_make_service`](crate::RealIpLayer::into_make_service)).
    /// Spans are made at `DEBUG` unless [`level`](Self::level) says
    /// otherwise, as tower-http's own `DefaultMakeSpan`.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use realip::trace::RealIpMakeSpan;
    /// use realip::RealIpLayer;
    /// use tower_http::trace::TraceLayer;
    ///
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hello" }))
    ///     .layer(TraceLayer::new_for_http().make_span_with(RealIpMakeSpan::new()))
    ///     .layer(RealIpLayer::new());
    /// # let _ = app;
    /// ```
    #[derive(Clone, Copy, Debug)]
    #[must_use]
    pub struct RealIpMakeSpan {
        level: Level,
    }

    impl Default for RealIpMakeSpan {
        fn default() -> Self {
            Self::new()
        }
    }

    impl RealIpMakeSpan {
        /// Spans at `DEBUG`.
        pub fn new() -> Self {
            RealIpMakeSpan {
                level: Level::DEBUG,
            }
        }

        /// The level spans are made at.
        pub fn level(self, level: Level) -> Self {
            RealIpMakeSpan { level }
        }
    }

    macro_rules! request_span {
        ($level:expr, $req:expr) => {
            tracing::span!(
                $level,
                "request",
                method = %$req.method(),
                uri = %$req.uri(),
                version = ?$req.version(),
                client = Empty,
                source = Empty,
                peer = Empty,
                stop = Empty,
            )
        };
    }

    impl<B> tower_http::trace::MakeSpan<B> for RealIpMakeSpan {
        fn make_span(&mut self, req: &Request<B>) -> Span {
            let span = match self.level {
                Level::ERROR => request_span!(Level::ERROR, req),
                Level::WARN => request_span!(Level::WARN, req),
                Level::INFO => request_span!(Level::INFO, req),
                Level::DEBUG => request_span!(Level::DEBUG, req),
                Level::TRACE => request_span!(Level::TRACE, req),
            };
            if let Some(real) = RealIp::from_extensions(req.extensions()) {
                span.record("client", display(real.client_addr()));
                span.record("source", display(real.source()));
                span.record("peer", display(real.peer()));
                span.record("stop", display(real.stop()));
            }
            span
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{HeaderSource, Policy};
    use http::HeaderMap;
    use std::net::SocketAddr;

    fn resolve(peer: &str, xff: Option<&str>) -> RealIp {
        let policy = Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        let mut headers = HeaderMap::new();
        if let Some(v) = xff {
            headers.insert("x-forwarded-for", v.parse().unwrap());
        }
        RealIp::new(policy.resolve(peer, None, &headers), peer, None)
    }

    #[test]
    fn one_line_display() {
        assert_eq!(
            resolve("10.0.0.2:41000", Some("203.0.113.7:5678")).to_string(),
            "203.0.113.7:5678 via x-forwarded-for from 10.0.0.2:41000 (untrusted-hop)"
        );
        assert_eq!(
            resolve("10.0.0.2:41000", Some("2001:db8::7")).to_string(),
            "2001:db8::7 via x-forwarded-for from 10.0.0.2:41000 (untrusted-hop)"
        );
        assert_eq!(
            resolve("10.0.0.2:41000", Some("garbage")).to_string(),
            "10.0.0.2:41000 via socket from 10.0.0.2:41000 (malformed, inconclusive)"
        );
        assert_eq!(
            resolve("[2001:db8::1]:443", None).to_string(),
            "[2001:db8::1]:443 via socket from [2001:db8::1]:443 (untrusted-hop)"
        );
        assert_eq!(Source::ProxyProtocol.to_string(), "proxy-protocol");
    }

    #[test]
    fn watch_warns_after_a_run_of_absent_headers_only() {
        let w = HeaderWatch::default();
        let absent = resolve("10.0.0.2:1", None);
        assert_eq!(absent.stop(), Stop::HeaderAbsent);
        let present = resolve("10.0.0.2:1", Some("203.0.113.7"));
        let direct = resolve("203.0.113.9:1", None);
        for _ in 0..ABSENT_HEADER_WARN_AFTER - 1 {
            w.observe(absent.resolution());
            // Direct clients in between neither count nor reset.
            w.observe(direct.resolution());
        }
        assert!(!w.warned.load(Ordering::Relaxed));
        // One request with the header starts the run again.
        w.observe(present.resolution());
        assert_eq!(w.run.load(Ordering::Relaxed), 0);
        for _ in 0..ABSENT_HEADER_WARN_AFTER - 1 {
            w.observe(absent.resolution());
        }
        assert!(!w.warned.load(Ordering::Relaxed));
        w.observe(absent.resolution());
        assert!(w.warned.load(Ordering::Relaxed));
        // Once warned, it stops counting.
        let run = w.run.load(Ordering::Relaxed);
        w.observe(absent.resolution());
        assert_eq!(w.run.load(Ordering::Relaxed), run);
    }
}
