//! The resolved client in metrics, logs and spans: `realip_resolutions_total`
//! counted once per resolution with its stop (metrics-util's debugging
//! recorder), a listener's outcomes exported once per connection, the
//! one-time warning about a proxy that sends no header, and
//! `RealIpMakeSpan`'s fields on a real tower-http `TraceLayer`.

mod common;
mod e2e_util;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{Curl, Nginx};
use e2e_util::{lo, serve_made};
use http::{HeaderMap, Request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use realip::trace::{RealIpMakeSpan, ABSENT_HEADER_WARN_AFTER, RESOLUTIONS};
use realip::{testing, HeaderSource, RealIpLayer};
use tower::{Layer, Service, ServiceExt};
use tower_http::trace::TraceLayer;

/// `stop` label -> increments of `realip_resolutions_total` since the
/// last snapshot (the debugging recorder's snapshot takes the counts), the
/// labels that did not move left out.
fn moved(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    let mut m = stops(snapshotter);
    m.retain(|_, n| *n > 0);
    m
}

/// `stop` label -> count of `realip_resolutions_total`.
fn stops(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != RESOLUTIONS {
            continue;
        }
        let stop = key
            .key()
            .labels()
            .find(|l| l.key() == "stop")
            .map(|l| l.value().to_owned())
            .expect("every resolution is labelled with its stop");
        let DebugValue::Counter(n) = value else {
            panic!("{RESOLUTIONS} is a counter")
        };
        out.insert(stop, n);
    }
    out
}

fn layer(
    build: impl FnOnce(realip::RealIpLayerBuilder) -> realip::RealIpLayerBuilder,
) -> RealIpLayer {
    build(RealIpLayer::builder()).build().unwrap()
}

/// One request through `layer` from `peer` with `headers`; the layer
/// resolves (and counts) in `call`.
fn resolve_once(layer: &RealIpLayer, peer: &str, headers: &[(&str, &str)]) {
    let mut svc = layer.layer(tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(())
    }));
    let mut req = testing::with_peer(Request::new(()), peer.parse().unwrap());
    let map: &mut HeaderMap = req.headers_mut();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    drop(svc.call(req));
}

/// One request whose resolution stops a known way.
type Case<'a> = Box<dyn Fn() + 'a>;

#[test]
fn each_stop_is_counted_once_per_resolution() {
    let private_xff = layer(|b| b.trust_private().header(HeaderSource::XForwardedFor));
    let capped = layer(|b| {
        b.trust_private()
            .header(HeaderSource::XForwardedFor)
            .hop_cap(2)
    });
    let real_ip = layer(|b| b.trust_private().header(HeaderSource::XRealIp));
    let single = layer(|b| {
        b.trust_private()
            .header(HeaderSource::XForwardedFor)
            .recursive(false)
    });
    let counted = |n| layer(move |b| b.trusted_hops(n).header(HeaderSource::XForwardedFor));
    let (one, two) = (counted(1), counted(2));
    let xff = "x-forwarded-for";
    let cases: Vec<(&str, Case)> = vec![
        (
            "untrusted-hop",
            Box::new(|| resolve_once(&private_xff, "203.0.113.1:1", &[])),
        ),
        (
            "malformed",
            Box::new(|| resolve_once(&private_xff, "10.0.0.1:1", &[(xff, "garbage")])),
        ),
        (
            "exhausted",
            Box::new(|| resolve_once(&private_xff, "10.0.0.1:1", &[(xff, "10.0.0.5")])),
        ),
        (
            "hop-cap",
            Box::new(|| {
                resolve_once(
                    &capped,
                    "10.0.0.1:1",
                    &[(xff, "10.0.0.3, 10.0.0.4, 10.0.0.5")],
                )
            }),
        ),
        (
            "header-absent",
            Box::new(|| resolve_once(&private_xff, "10.0.0.1:1", &[])),
        ),
        (
            "ambiguous",
            Box::new(|| {
                resolve_once(
                    &real_ip,
                    "10.0.0.1:1",
                    &[("x-real-ip", "203.0.113.5"), ("x-real-ip", "203.0.113.6")],
                )
            }),
        ),
        (
            "single-step",
            Box::new(|| resolve_once(&single, "10.0.0.1:1", &[(xff, "10.0.0.5")])),
        ),
        (
            "hop-count",
            Box::new(|| resolve_once(&one, "10.0.0.1:1", &[(xff, "203.0.113.5")])),
        ),
        (
            "too-short",
            Box::new(|| resolve_once(&two, "10.0.0.1:1", &[(xff, "203.0.113.5")])),
        ),
    ];
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut seen = std::collections::BTreeSet::new();
    for round in 1..=2 {
        for (stop, run) in &cases {
            metrics::with_local_recorder(&recorder, run);
            // Each snapshot takes the counts since the last one: exactly
            // this stop moved, by one.
            let expected = BTreeMap::from([(stop.to_string(), 1)]);
            assert_eq!(moved(&snapshotter), expected, "{stop}, round {round}");
            seen.insert(*stop);
        }
    }
    assert_eq!(seen.len(), 9, "every Stop variant is exercised");
}

/// Keeps this thread's resolutions out of the global recorder that
/// [`a_served_app_counts_each_request_behind_nginx_once`] reads.
fn quiet() -> metrics::LocalRecorderGuard<'static> {
    metrics::set_default_local_recorder(&metrics::NoopRecorder)
}

/// A process-wide recorder for the one test that serves over TCP (its
/// requests are resolved on the runtime's threads).
fn global_snapshotter() -> &'static Snapshotter {
    static SNAP: OnceLock<Snapshotter> = OnceLock::new();
    SNAP.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("no other global recorder in this binary");
        snap
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_app_counts_each_request_behind_nginx_once() {
    let snap = global_snapshotter();
    // The app trusts nginx (127.0.0.231) and an inner proxy at 127.0.0.92.
    let layer = RealIpLayer::builder()
        .trust(e2e_util::host_net(lo(231)))
        .trust(e2e_util::host_net(lo(92)))
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let app = serve_made(
        Router::new().route("/", get(|| async { "ok" })),
        layer,
        false,
    );
    let (nginx, port) = Nginx::xff_proxy(app, lo(231));
    let via_nginx = format!("http://127.0.0.1:{port}/");
    moved(snap); // start counting from here
                 // A client behind nginx: `127.0.0.91`, untrusted.
    let curl = |n, url: &str| Curl::new(url.to_owned()).interface(lo(n));
    curl(91, &via_nginx).run_async().await.expect_status(200);
    // The inner proxy passing garbage: `garbage, 127.0.0.92`.
    curl(92, &via_nginx)
        .header("X-Forwarded-For: garbage")
        .run_async()
        .await
        .expect_status(200);
    // The inner proxy as its own client: `127.0.0.92`, every entry trusted.
    curl(92, &via_nginx).run_async().await.expect_status(200);
    // The inner proxy straight to the app, without a header.
    curl(92, &format!("http://{app}/"))
        .run_async()
        .await
        .expect_status(200);
    let expected = BTreeMap::from(
        [
            ("untrusted-hop", 1),
            ("malformed", 1),
            ("exhausted", 1),
            ("header-absent", 1),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let moved = moved(snap);
    assert_eq!(moved, expected, "nginx log:\n{}", nginx.log());
}

/// A `tracing` subscriber writing into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }
}

const WARNING: &str =
    "requests in a row came from trusted proxies without the configured address header";

#[test]
fn a_proxy_sending_no_header_is_warned_about_once() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::WARN));
    let _quiet = quiet();
    let xff = layer(|b| b.trust_private().header(HeaderSource::XForwardedFor));
    let n = ABSENT_HEADER_WARN_AFTER as usize;

    // 99 without, then one with the header, then 99 without: no warning.
    for _ in 0..n - 1 {
        resolve_once(&xff, "10.0.0.1:1", &[]);
    }
    resolve_once(&xff, "10.0.0.1:1", &[("x-forwarded-for", "203.0.113.7")]);
    for _ in 0..n - 1 {
        resolve_once(&xff, "10.0.0.1:1", &[]);
        // Direct clients in between neither count nor break the run.
        resolve_once(&xff, "203.0.113.9:1", &[]);
    }
    assert!(!captured.text().contains(WARNING), "{}", captured.text());
    // The 100th in a row warns; 300 more do not warn again.
    resolve_once(&xff, "10.0.0.1:1", &[]);
    for _ in 0..3 * n {
        resolve_once(&xff, "10.0.0.1:1", &[]);
    }
    let text = captured.text();
    assert_eq!(text.matches(WARNING).count(), 1, "{text}");
    assert!(
        text.contains("WARN") && text.contains("peer=10.0.0.1"),
        "{text}"
    );
}

#[test]
fn the_run_is_counted_across_connections_of_one_layer() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::WARN));
    let _quiet = quiet();
    let xff = layer(|b| b.trust_private().header(HeaderSource::XForwardedFor));
    let peer: SocketAddr = "10.0.0.1:1".parse().unwrap();
    // Ten connections of ten requests each, as `into_make_service` serves them.
    for _ in 0..10 {
        let mut svc = xff.layer_connection(
            tower::service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(()) }),
            &peer,
        );
        for _ in 0..10 {
            drop(svc.call(Request::new(())));
        }
    }
    assert_eq!(
        captured.text().matches(WARNING).count(),
        1,
        "{}",
        captured.text()
    );
}

/// `GET /` logging one line inside tower-http's `TraceLayer` span, made by
/// `RealIpMakeSpan`.
fn traced_hello() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                tracing::info!("in the handler");
                "ok"
            }),
        )
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RealIpMakeSpan::new().level(tracing::Level::INFO)),
        )
}

#[tokio::test(flavor = "current_thread")]
async fn trace_layer_spans_carry_the_resolved_client() {
    let _quiet = quiet();
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::INFO));
    let realip = layer(|b| b.trust_private().header(HeaderSource::XForwardedFor));
    let app = traced_hello().layer(realip);
    let req = Request::builder()
        .uri("/")
        .header("x-forwarded-for", "garbage")
        .body(Body::empty())
        .unwrap();
    let req = testing::with_peer(req, "10.0.0.2:41000".parse().unwrap());
    app.oneshot(req).await.unwrap();
    let text = captured.text();
    assert!(
        text.contains(
            "request{method=GET uri=/ version=HTTP/1.1 client=10.0.0.2:41000 source=socket \
             peer=10.0.0.2:41000 stop=malformed}: trace_metrics: in the handler"
        ),
        "{text}"
    );

    // Without a RealIpLayer, the fields stay empty: nothing is guessed.
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::INFO));
    let bare = traced_hello();
    let req = Request::builder()
        .header("x-forwarded-for", "203.0.113.7")
        .body(Body::empty())
        .unwrap();
    bare.oneshot(req).await.unwrap();
    let text = captured.text();
    assert!(
        text.contains("request{method=GET uri=/ version=HTTP/1.1}: trace_metrics: in the handler"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn span_fields_of_a_header_resolution() {
    let _quiet = quiet();
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::INFO));
    let realip = layer(|b| b.trust_private().header(HeaderSource::XForwardedFor));
    let app: Router = Router::new()
        .route(
            "/",
            get(|real: realip::RealIp| async move {
                tracing::info!(%real, "resolved");
                "ok"
            }),
        )
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RealIpMakeSpan::new().level(tracing::Level::INFO)),
        )
        .layer(realip);
    let req = Request::builder()
        .header("x-forwarded-for", "203.0.113.7:5678, 10.0.0.9")
        .body(Body::empty())
        .unwrap();
    let req = testing::with_peer(req, "10.0.0.2:41000".parse().unwrap());
    app.oneshot(req).await.unwrap();
    let text = captured.text();
    assert!(
        text.contains(
            "request{method=GET uri=/ version=HTTP/1.1 client=203.0.113.7:5678 \
             source=x-forwarded-for peer=10.0.0.2:41000 stop=untrusted-hop}: trace_metrics: \
             resolved real=203.0.113.7:5678 via x-forwarded-for from 10.0.0.2:41000 (untrusted-hop)"
        ),
        "{text}"
    );
}

// One thread, quiet: the request it serves is resolved on this thread, so
// its count stays out of the global recorder that
// `a_served_app_counts_each_request_behind_nginx_once` reads at the same
// time (on two worker threads it landed there now and then).
#[tokio::test]
async fn listener_outcomes_are_exported_once_per_connection() {
    use realip::trace::{export_listener_stats, LISTENER_CONNECTIONS, LISTENER_OUTCOMES};
    use realip::ProxyProtocolListener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let _quiet = quiet();

    // A PROXY header is required from every peer.
    let listener = ProxyProtocolListener::new(e2e_util::tcp());
    let addr = listener.local_addr().unwrap();
    let stats = listener.stats();
    let app = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(async move {
        axum::serve(listener, RealIpLayer::new().into_make_service(app))
            .await
            .unwrap();
    });
    // accepted: curl sends a PROXY v1 header.
    Curl::new(format!("http://{addr}/"))
        .interface(lo(93))
        .haproxy_protocol()
        .run_async()
        .await
        .expect_status(200);
    // missing, then malformed: each connection is closed by the listener.
    for bytes in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"PROXY TCP4 garbage\r\n"] {
        let mut s = e2e_util::connect_from(lo(94), addr).await;
        s.write_all(bytes).await.unwrap();
        let mut rest = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(rest.is_empty(), "the listener answered {rest:?}");
    }
    // Outcomes are counted when each handshake ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let snapshot = loop {
        let s = stats.snapshot();
        if s.accepted + s.missing + s.malformed == 3 || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || export_listener_stats("public", &snapshot));
    let mut outcomes = BTreeMap::new();
    let mut connections = None;
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let DebugValue::Counter(v) = value else {
            continue;
        };
        let key = key.key();
        if key.name() == LISTENER_CONNECTIONS {
            connections = Some(v);
        }
        if key.name() == LISTENER_OUTCOMES && v > 0 {
            let outcome = key.labels().find(|l| l.key() == "outcome").unwrap();
            outcomes.insert(outcome.value().to_owned(), v);
        }
    }
    assert_eq!(connections, Some(3));
    let expected = BTreeMap::from(
        [("accepted", 1), ("missing", 1), ("malformed", 1)].map(|(k, v)| (k.to_owned(), v)),
    );
    assert_eq!(outcomes, expected);
}
