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
//!   a check of an atomic when none is; [`export_listener_stats`] (with
//!   the `tokio` feature too) publishes a listener's
//!   [`ListenerStats`](crate::io::ListenerStats) the same way;
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
    metrics_impl::count(r.stop());
    watch.observe(r);
}

#[cfg(feature = "metrics")]
pub use self::metrics_impl::{describe_metrics, RESOLUTIONS};
#[cfg(all(feature = "metrics", feature = "tokio"))]
pub use self::metrics_impl::{
    export_listener_stats, LISTENER_ACCEPT_ERRORS, LISTENER_CONNECTIONS, LISTENER_OUTCOMES,
};

#[cfg(feature = "metrics")]
mod metrics_impl {
    use metrics::{Key, Label, Level, Metadata};

    use crate::resolve::Stop;

    /// The counter key of each stop, built at compile time: `counter!` with
    /// a label value that is not a literal would build its label list on
    /// the heap on every request, recorder or not.
    pub(super) fn stop_key(stop: Stop) -> &'static Key {
        macro_rules! key {
            ($name:literal) => {{
                static LABELS: [Label; 1] = [Label::from_static_parts("stop", $name)];
                static KEY: Key = Key::from_static_parts(RESOLUTIONS, &LABELS);
                &KEY
            }};
        }
        match stop {
            Stop::UntrustedHop => key!("untrusted-hop"),
            Stop::Malformed => key!("malformed"),
            Stop::Exhausted => key!("exhausted"),
            Stop::HopCap => key!("hop-cap"),
            Stop::HeaderAbsent => key!("header-absent"),
            Stop::Ambiguous => key!("ambiguous"),
            Stop::SingleStep => key!("single-step"),
            Stop::HopCount => key!("hop-count"),
            Stop::TooShort => key!("too-short"),
        }
    }

    /// One resolution that stopped with `stop`.
    #[inline]
    pub(super) fn count(stop: Stop) {
        static METADATA: Metadata<'static> =
            Metadata::new("realip::layer", Level::INFO, Some(module_path!()));
        metrics::with_recorder(|r| r.register_counter(stop_key(stop), &METADATA).increment(1));
    }

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
        #[cfg(feature = "tokio")]
        {
            metrics::describe_counter!(
                LISTENER_CONNECTIONS,
                metrics::Unit::Count,
                "Connections taken by a PROXY protocol listener (label listener)"
            );
            metrics::describe_counter!(
                LISTENER_OUTCOMES,
                metrics::Unit::Count,
                "Finished PROXY handshakes by outcome (labels listener, outcome)"
            );
            metrics::describe_counter!(
                LISTENER_ACCEPT_ERRORS,
                metrics::Unit::Count,
                "Errors from the inner listener's accept (label listener)"
            );
        }
    }

    /// Counter of connections a listener took, labelled `listener`.
    #[cfg(feature = "tokio")]
    pub const LISTENER_CONNECTIONS: &str = "realip_listener_connections_total";
    /// Counter of finished handshakes, labelled `listener` and `outcome`:
    /// `accepted`, `no-header`, `missing`, `rejected`, `malformed`,
    /// `too-large`, `timed-out`, `closed`, `shed`, `handshake-failed`
    /// (the fields of [`StatsSnapshot`](crate::io::StatsSnapshot)).
    #[cfg(feature = "tokio")]
    pub const LISTENER_OUTCOMES: &str = "realip_listener_outcomes_total";
    /// Counter of errors from the inner listener's `accept`, labelled
    /// `listener`.
    #[cfg(feature = "tokio")]
    pub const LISTENER_ACCEPT_ERRORS: &str = "realip_listener_accept_errors_total";

    /// Publishes a listener's counters through the `metrics` facade, as
    /// counters set to the snapshot's totals (`Counter::absolute`: a value
    /// below the one already published is ignored), labelled `listener`
    /// with `name` so several listeners stay apart.
    ///
    /// The listener counts with plain atomics whatever the recorder; call
    /// this when the metrics are read (on scrape) or on a timer:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use realip::trace::export_listener_stats;
    /// use realip::ProxyProtocolListener;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:8080").await?)
    ///     .require_from(["10.0.0.0/16".parse().unwrap()]);
    /// let stats = listener.stats();
    /// tokio::spawn(async move {
    ///     let mut every = tokio::time::interval(Duration::from_secs(10));
    ///     loop {
    ///         every.tick().await;
    ///         export_listener_stats("public", &stats.snapshot());
    ///     }
    /// });
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn export_listener_stats(name: &str, stats: &crate::io::StatsSnapshot) {
        let listener = name.to_owned();
        metrics::counter!(LISTENER_CONNECTIONS, "listener" => listener.clone())
            .absolute(stats.connections);
        metrics::counter!(LISTENER_ACCEPT_ERRORS, "listener" => listener.clone())
            .absolute(stats.accept_errors);
        for (outcome, value) in [
            ("accepted", stats.accepted),
            ("no-header", stats.no_header),
            ("missing", stats.missing),
            ("rejected", stats.rejected),
            ("malformed", stats.malformed),
            ("too-large", stats.too_large),
            ("timed-out", stats.timed_out),
            ("closed", stats.closed),
            ("shed", stats.shed),
            ("handshake-failed", stats.handshake_failed),
        ] {
            metrics::counter!(
                LISTENER_OUTCOMES,
                "listener" => listener.clone(),
                "outcome" => outcome
            )
            .absolute(value);
        }
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

    #[cfg(all(feature = "metrics", feature = "tokio"))]
    #[test]
    fn every_listener_field_is_exported_under_its_own_label() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let stats = crate::io::StatsSnapshot {
            connections: 100,
            accepted: 1,
            no_header: 2,
            missing: 3,
            rejected: 4,
            malformed: 5,
            too_large: 6,
            timed_out: 7,
            closed: 8,
            shed: 9,
            handshake_failed: 10,
            accept_errors: 11,
        };
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || export_listener_stats("edge", &stats));
        let mut seen = std::collections::BTreeMap::new();
        for (key, _, _, value) in snap.snapshot().into_vec() {
            let key = key.key();
            let label = |name: &str| {
                key.labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
            };
            assert_eq!(label("listener").as_deref(), Some("edge"));
            let DebugValue::Counter(v) = value else {
                panic!("{} is a counter", key.name())
            };
            let outcome = label("outcome").unwrap_or_default();
            seen.insert(format!("{} {outcome}", key.name()), v);
        }
        let o = |name: &str| format!("{LISTENER_OUTCOMES} {name}");
        let expected = std::collections::BTreeMap::from([
            (format!("{LISTENER_CONNECTIONS} "), 100),
            (format!("{LISTENER_ACCEPT_ERRORS} "), 11),
            (o("accepted"), 1),
            (o("no-header"), 2),
            (o("missing"), 3),
            (o("rejected"), 4),
            (o("malformed"), 5),
            (o("too-large"), 6),
            (o("timed-out"), 7),
            (o("closed"), 8),
            (o("shed"), 9),
            (o("handshake-failed"), 10),
        ]);
        assert_eq!(seen, expected);
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn every_stop_key_is_labelled_with_its_name() {
        use Stop::*;
        for stop in [
            UntrustedHop,
            Malformed,
            Exhausted,
            HopCap,
            HeaderAbsent,
            Ambiguous,
            SingleStep,
            HopCount,
            TooShort,
        ] {
            let key = metrics_impl::stop_key(stop);
            assert_eq!(key.name(), RESOLUTIONS);
            let labels: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
            assert_eq!(labels, [("stop", stop.as_str())]);
        }
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
