//! The refreshing source against a scripted origin on 127.0.0.1 (HTTP,
//! and HTTPS with a generated CA) serving the real Cloudflare API snapshot
//! and altered copies: a change reaches a live app within one refresh;
//! every bad answer keeps the last good set and is reported; a restart
//! with the provider down uses the disk cache.
#![cfg(all(feature = "fetch", feature = "axum"))]

mod common;

use axum::routing::get;
use axum::Router;
use common::{Answer, Origin, TestCa};
use realip::resolve::HeaderSource;
use realip::trust::fetch::{RefreshError, Refresher, Source, StartError, Startup};
use realip::trust::live::LiveTrust;
use realip::trust::providers::Format;
use realip::trust::TrustedProxies;
use realip::{ClientIp, RealIpLayer};
use serde_json::Value;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CF_API: &str = include_str!("fixtures/ranges/cloudflare-api-ips.json");

/// The Cloudflare API document with its IPv4 list changed by `edit`.
fn cf_with(edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut v: Value = serde_json::from_str(CF_API).unwrap();
    let list = v["result"]["ipv4_cidrs"].as_array_mut().unwrap();
    edit(list);
    v.to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A tracing subscriber writing into a buffer, for this thread (the
/// tests run on tokio's current-thread runtime, so the refresher's task
/// logs here too).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let log = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || log.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An app answering with the client it resolved, trusting `live` for
/// `CF-Connecting-IP`.
async fn app(live: LiveTrust) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let layer = RealIpLayer::builder()
        .live_trust(live)
        .header(HeaderSource::CfConnectingIp)
        .build()
        .unwrap();
    let router = Router::new().route(
        "/",
        get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, layer.into_make_service(router)).await;
    });
    (addr, task)
}

/// One GET over loopback TCP with `CF-Connecting-IP: 198.51.100.7`; the
/// body (the client the app resolved).
async fn ask(app: SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(app).await.unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: app\r\nCF-Connecting-IP: 198.51.100.7\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

fn source(origin: &Origin) -> Source {
    Source::cloudflare()
        .with_url(&origin.url("/client/v4/ips"))
        .unwrap()
}

#[tokio::test]
async fn https_list_change_reaches_a_live_app_within_one_refresh() {
    let ca = TestCa::new();
    let origin = Origin::https(Answer::tagged(CF_API, "\"v1\""), &ca).await;
    let live = LiveTrust::new(TrustedProxies::new());
    let interval = Duration::from_millis(400);
    let refresher = Refresher::builder(live.clone())
        .source(source(&origin))
        .root_certificate(ca.ca_der.clone())
        .interval(interval)
        .startup(Startup::Wait(Duration::from_secs(5)))
        .start()
        .await
        .unwrap();
    let st = &refresher.status()[0];
    assert_eq!(
        (st.name.as_str(), st.ranges, &st.error),
        ("cloudflare", 22, &None)
    );
    assert!(live.contains(ip("173.245.48.1")));
    let (app, _serve) = app(live.clone()).await;
    // The app's peer (127.0.0.1) is not in the list: the header is ignored.
    assert_eq!(ask(app).await, "127.0.0.1");

    // Unchanged lists are revalidated with the ETag (304), not re-sent.
    tokio::time::sleep(interval * 3).await;
    let seen = origin.seen();
    assert!(
        seen.iter()
            .any(|s| s.if_none_match.as_deref() == Some("\"v1\"") && s.status == 304),
        "{seen:?}"
    );
    assert_eq!(refresher.status()[0].error, None);

    // The provider adds the address the app's peer connects from.
    origin.set(Answer::tagged(
        cf_with(|l| l.push("127.0.0.1/32".into())),
        "\"v2\"",
    ));
    let changed = Instant::now();
    let limit = interval.mul_f64(1.1) + Duration::from_secs(1);
    loop {
        if ask(app).await == "198.51.100.7" {
            break;
        }
        assert!(
            changed.elapsed() < limit,
            "no change after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refresher.status()[0].ranges, 23);
    assert!(seen.iter().all(|s| s.path == "/client/v4/ips"));
}

#[tokio::test]
async fn https_needs_the_given_root() {
    let ca = TestCa::new();
    let origin = Origin::https(Answer::body(CF_API), &ca).await;
    // Without the test CA, the bundled roots refuse the server.
    let err = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
        .source(source(&origin))
        .startup(Startup::Wait(Duration::ZERO))
        .start()
        .await
        .unwrap_err();
    match err {
        StartError::NoList {
            source,
            error: RefreshError::Connect(m),
        } => {
            assert_eq!(source, "cloudflare");
            assert!(m.contains("certificate"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn each_bad_answer_keeps_the_last_good_set_and_is_reported() {
    let log = Log::default();
    let _guard = log.install();
    let origin = Origin::http(Answer::body(CF_API)).await;
    let live = LiveTrust::new(TrustedProxies::new());
    let refresher = Refresher::builder(live.clone())
        .source(source(&origin))
        .interval(Duration::from_secs(3600))
        .timeout(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    assert_eq!(refresher.status()[0].ranges, 22);
    let fifty_mb = 50 << 20;
    type Case = (&'static str, Answer, fn(&RefreshError) -> bool);
    let cases: Vec<Case> = vec![
        ("HTTP 500", Answer::Status(500), |e| {
            *e == RefreshError::Status(500)
        }),
        (
            "timeout",
            Answer::Delay(Duration::from_secs(3), Box::new(Answer::body(CF_API))),
            |e| matches!(e, RefreshError::Timeout(_)),
        ),
        (
            "truncated body",
            Answer::body(&CF_API[..CF_API.len() / 2]),
            |e| matches!(e, RefreshError::Parse(_)),
        ),
        (
            "garbage body",
            Answer::body("<html><body>502 Bad Gateway</body></html>"),
            |e| matches!(e, RefreshError::Parse(_)),
        ),
        (
            "empty list",
            Answer::body(r#"{"result":{"ipv4_cidrs":[],"ipv6_cidrs":[]},"success":true}"#),
            |e| *e == RefreshError::Empty,
        ),
        (
            "90% shrink",
            Answer::body(
                r#"{"result":{"ipv4_cidrs":["173.245.48.0/20","103.21.244.0/22"],"ipv6_cidrs":[]},"success":true}"#,
            ),
            |e| {
                *e == RefreshError::Shrunk {
                    before: 22,
                    after: 2,
                }
            },
        ),
        (
            "50 MB body, chunked",
            Answer::Stream {
                len: fifty_mb,
                declared: false,
            },
            |e| matches!(e, RefreshError::TooLarge { .. }),
        ),
        (
            "50 MB body, Content-Length",
            Answer::Stream {
                len: fifty_mb,
                declared: true,
            },
            |e| matches!(e, RefreshError::TooLarge { .. }),
        ),
    ];
    for (i, (what, answer, expected)) in cases.into_iter().enumerate() {
        origin.set(answer);
        let started = Instant::now();
        refresher.refresh_now().await;
        let st = refresher.status().remove(0);
        let err = st
            .error
            .clone()
            .unwrap_or_else(|| panic!("{what}: not reported"));
        assert!(expected(&err), "{what}: {err:?}");
        assert_eq!(st.ranges, 22, "{what}");
        assert!(
            live.contains(ip("173.245.48.1")) && live.contains(ip("2606:4700::1")),
            "{what}"
        );
        assert_eq!(live.snapshot().len(), 22, "{what}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            log.count("refresh failed; last good list kept"),
            i + 1,
            "{what}"
        );
        assert!(
            log.text().contains(&err.to_string()),
            "{what}: {}",
            log.text()
        );
    }
    // A good list again: taken, and the error clears. Half the networks
    // is not "below half".
    let half = cf_with(|l| l.truncate(4));
    origin.set(Answer::body(half));
    refresher.refresh_now().await;
    let st = refresher.status().remove(0);
    assert_eq!((st.ranges, st.error), (11, None));
    assert!(live.contains(ip("173.245.48.1")) && !live.contains(ip("104.16.0.1")));
    assert!(log.text().contains("list updated"));
}

#[tokio::test]
async fn restart_with_the_provider_down_uses_the_disk_cache() {
    let cache = tempfile::tempdir().unwrap();
    let origin = Origin::http(Answer::tagged(
        cf_with(|l| l.push("127.0.0.1/32".into())),
        "\"c1\"",
    ))
    .await;
    let src = source(&origin);
    {
        let refresher = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
            .source(src.clone())
            .cache_dir(cache.path())
            .start()
            .await
            .unwrap();
        assert_eq!(refresher.status()[0].ranges, 23);
        // Age the cache's record by hand; a 304 confirmation renews it.
        let meta = cache.path().join("cloudflare.meta");
        let text = std::fs::read_to_string(&meta).unwrap();
        assert!(text.contains("etag=\"c1\""), "{text}");
        let aged: String = text
            .lines()
            .map(|l| {
                if l.starts_with("fetched_unix=") {
                    "fetched_unix=1000".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .map(|l| l + "\n")
            .collect();
        std::fs::write(&meta, aged).unwrap();
        refresher.refresh_now().await;
        assert_eq!(origin.seen().last().unwrap().status, 304);
    }
    drop(origin); // the provider is down: its port refuses connections.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let live = LiveTrust::new(TrustedProxies::new());
    let started = Instant::now();
    let refresher = Refresher::builder(live.clone())
        .source(src.clone())
        .cache_dir(cache.path())
        .startup(Startup::Wait(Duration::from_millis(600)))
        .start()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "waited for the provider first"
    );
    let st = refresher.status().remove(0);
    assert_eq!((st.ranges, st.from_cache), (23, true));
    assert!(
        matches!(st.error, Some(RefreshError::Connect(_))),
        "{:?}",
        st.error
    );
    assert!(st.age.unwrap() < Duration::from_secs(60));
    // The cached list decides for a live app.
    let (app, _serve) = app(live.clone()).await;
    assert_eq!(ask(app).await, "198.51.100.7");

    // Without a cache the start fails; with `Startup::Cache` it proceeds
    // empty at once.
    let err = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
        .source(src.clone())
        .startup(Startup::Wait(Duration::ZERO))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::NoList { .. }), "{err:?}");
    let r = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
        .source(src)
        .startup(Startup::Cache)
        .start()
        .await
        .unwrap();
    let st = r.status().remove(0);
    assert_eq!((st.ranges, st.stale), (0, true));
}

#[tokio::test]
async fn a_list_older_than_its_max_age_warns_on_every_refresh() {
    let log = Log::default();
    let _guard = log.install();
    let list = "173.245.48.0/20\n103.21.244.0/22\n";
    let origin = Origin::http(Answer::body(list)).await;
    let src = Source::new("edge", &origin.url("/ips-v4"), Format::CidrList).unwrap();
    let fresh = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
        .source(src.clone())
        .interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    fresh.refresh_now().await;
    assert_eq!(log.count("older than its maximum age"), 0);
    assert!(!fresh.status()[0].stale);

    let stale = Refresher::builder(LiveTrust::new(TrustedProxies::new()))
        .source(src)
        .interval(Duration::from_secs(3600))
        .max_age(Duration::from_nanos(1))
        .start()
        .await
        .unwrap();
    origin.set(Answer::Status(503));
    for n in 1..=3 {
        stale.refresh_now().await;
        // The start-up fetch warned once too.
        assert_eq!(log.count("older than its maximum age"), n + 1);
    }
    let st = stale.status().remove(0);
    assert!(st.stale && st.ranges == 2, "{st:?}");
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    let live = LiveTrust::new(TrustedProxies::new());
    let src = Source::new("a", "http://127.0.0.1:9/x", Format::CidrList).unwrap();
    let cases = [
        Refresher::builder(live.clone()),
        Refresher::builder(live.clone())
            .source(src.clone())
            .source(src.clone()),
        Refresher::builder(live.clone())
            .source(src.clone())
            .interval(Duration::ZERO),
        Refresher::builder(live.clone())
            .source(src.clone())
            .jitter(0.9),
        Refresher::builder(live.clone())
            .source(src.clone())
            .min_kept(1.5),
        Refresher::builder(live.clone())
            .source(src.clone())
            .max_bytes(0),
    ];
    for b in cases {
        let e = b.start().await.unwrap_err();
        assert!(matches!(e, StartError::Config(_)), "{e:?}");
    }
    assert!(live.snapshot().is_empty());
}
