//! DESIGN.md rules that no other test pinned, one test per rule, each named
//! after its rule and quoting it. Rules about the listener run over real
//! loopback TCP (each client from its own 127.0.0.N); rules about the walk
//! call [`Policy::resolve`] directly.

mod io_util;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::{routing::get, Router};
use http::{HeaderMap, HeaderName, HeaderValue};
use io_util::*;
use realip::io::{Mode, ProxyAcceptor, ProxyProtocolListener};
use realip::resolve::{HeaderSource, Policy, Source, Stop};
use realip::{RealIp, RealIpLayer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn peer(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn xff(lines: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append("x-forwarded-for", HeaderValue::from_str(l).unwrap());
    }
    h
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Socket => "socket".into(),
        Source::ProxyProtocol => "proxy".into(),
        Source::Header(n) => n.to_string(),
    }
}

/// Serves an app answering `client=<ip> source=<source> stop=<stop>` from
/// the resolution `layer` made, as the README's Quick start serves it.
fn serve_layer(listener: ProxyProtocolListener<TcpListener>, layer: RealIpLayer) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|real: RealIp| async move {
            format!(
                "client={} source={} stop={}",
                real.ip(),
                source_name(real.source()),
                real.stop()
            )
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, layer.into_make_service(app))
            .await
            .unwrap()
    });
    addr
}

/// The balancer's range: 127.0.0.1 sends PROXY headers, other 127.0.0.N
/// are outsiders.
fn lb_net() -> ipnet::IpNet {
    "127.0.0.1/32".parse().unwrap()
}

/// From 127.0.0.`from`: `prefix`, then a GET carrying `x_forwarded_for`
/// when given; the answer, `None` when the server closed without one.
async fn ask(
    from: u8,
    to: SocketAddr,
    prefix: &[u8],
    x_forwarded_for: Option<&str>,
) -> Option<String> {
    let mut s = connect_from(lo(from), to).await;
    let mut msg = prefix.to_vec();
    msg.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n");
    if let Some(v) = x_forwarded_for {
        msg.extend_from_slice(format!("X-Forwarded-For: {v}\r\n").as_bytes());
    }
    msg.extend_from_slice(b"Connection: close\r\n\r\n");
    if s.write_all(&msg).await.is_err() {
        return None;
    }
    read_answer(s).await
}

// ---- step 2 of the pipeline ---------------------------------------------

/// DESIGN.md, Semantics, step 2: "LOCAL command, `UNKNOWN`, AF_UNSPEC: keep
/// the socket peer." — the v1 `UNKNOWN` part, through the listener and the
/// layer: the connection is served, the client is the balancer itself.
#[tokio::test]
async fn proxy_v1_unknown_keeps_the_socket_peer() {
    let listener = ProxyProtocolListener::new(tcp().await).require_from([lb_net()]);
    let addr = serve_layer(listener, RealIpLayer::new());
    let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let long = format!("PROXY UNKNOWN {a} {a} 65535 65535\r\n");
    for header in [&b"PROXY UNKNOWN\r\n"[..], long.as_bytes()] {
        let body = body_200(ask(1, addr, header, None).await);
        assert_eq!(body, "client=127.0.0.1 source=socket stop=untrusted-hop");
    }
    // Control: a TCP4 line from the same peer does replace it.
    let body = body_200(
        ask(
            1,
            addr,
            &v1(sa("203.0.113.9:1234"), sa("10.0.0.1:80")),
            None,
        )
        .await,
    );
    assert_eq!(body, "client=203.0.113.9 source=proxy stop=untrusted-hop");
}

/// DESIGN.md, Semantics, step 2: "LOCAL command, `UNKNOWN`, AF_UNSPEC: keep
/// the socket peer." — the v2 PROXY command with family AF_UNSPEC, through
/// the listener and the layer.
#[tokio::test]
async fn proxy_v2_af_unspec_keeps_the_socket_peer() {
    let listener = ProxyProtocolListener::new(tcp().await).require_from([lb_net()]);
    let addr = serve_layer(listener, RealIpLayer::new());
    let mut unspec = SIG.to_vec();
    unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]); // v2 PROXY, AF_UNSPEC, no body
    let body = body_200(ask(1, addr, &unspec, None).await);
    assert_eq!(body, "client=127.0.0.1 source=socket stop=untrusted-hop");
    // Control: the same command with an AF_INET block replaces the peer.
    let body = body_200(
        ask(
            1,
            addr,
            &v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]),
            None,
        )
        .await,
    );
    assert_eq!(body, "client=203.0.113.9 source=proxy stop=untrusted-hop");
}

// ---- step 3 --------------------------------------------------------------

/// DESIGN.md, Semantics, step 3: "Single-IP headers (`X-Real-IP`,
/// `CF-Connecting-IP`, `True-Client-IP`, `Fly-Client-IP`, custom): believed
/// only from a trusted peer" — every one of them, from a trusted and from
/// an untrusted peer.
#[test]
fn single_ip_headers_are_believed_only_from_a_trusted_peer() {
    let custom = HeaderName::from_static("x-client-address");
    for source in [
        HeaderSource::XRealIp,
        HeaderSource::CfConnectingIp,
        HeaderSource::TrueClientIp,
        HeaderSource::FlyClientIp,
        HeaderSource::XEnvoyExternalAddress,
        HeaderSource::Single(custom.clone()),
    ] {
        let name = source.name();
        let policy = Policy::builder()
            .trust("10.0.0.0/8".parse().unwrap())
            .header(source)
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_static("203.0.113.5"));
        let r = policy.resolve(peer("10.0.0.1:1000"), None, &headers);
        assert_eq!(r.ip(), ip("203.0.113.5"), "{name} from a trusted peer");
        assert_eq!(r.source(), &Source::Header(name.clone()));
        let r = policy.resolve(peer("198.51.100.7:1000"), None, &headers);
        assert_eq!(r.ip(), ip("198.51.100.7"), "{name} from an untrusted peer");
        assert_eq!(r.source(), &Source::Socket, "{name}");
        assert_eq!(r.stop(), Stop::UntrustedHop, "{name}");
    }
}

/// DESIGN.md, Semantics, step 3: "The walk is bounded (a configurable hop
/// cap); work per request is bounded whatever the header size." — 4 MB of
/// entries left of the cap, or 100,000 repeated lines, cost what a chain of
/// just the cap costs: nothing beyond the cap is even scanned. Timed as the
/// fastest of several runs, with a margin wide enough for a loaded machine
/// (a walk that scanned the whole header takes milliseconds per request).
#[test]
fn work_per_request_is_bounded_by_the_hop_cap_whatever_the_header_size() {
    fn fastest(policy: &Policy, headers: &HeaderMap) -> (Duration, IpAddr, Stop) {
        let p = peer("10.9.9.9:1000");
        let r = policy.resolve(p, None, headers);
        let best = (0..25)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(policy.resolve(p, None, std::hint::black_box(headers)));
                start.elapsed()
            })
            .min()
            .unwrap();
        (best, r.ip(), r.stop())
    }
    // The cap's worth of trusted hops, nearest last; one entry more on the
    // left of the small headers, so that both stop at the cap.
    let near: Vec<String> = (0..realip::resolve::DEFAULT_HOP_CAP)
        .map(|i| format!("10.0.{i}.1"))
        .collect();
    let near_xff = near.join(", ");
    let near_fwd: Vec<String> = near.iter().map(|a| format!("for={a}")).collect();
    let near_fwd = near_fwd.join(", ");
    let left_xff = "198.51.100.1, ".repeat(4 << 20 >> 4);
    let left_fwd = "for=198.51.100.1, ".repeat(4 << 20 >> 4);

    let xff_policy = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let fwd_policy = Policy::builder()
        .trust_private()
        .header(HeaderSource::Forwarded)
        .build()
        .unwrap();
    let one = |name: &str, v: String| {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
        h
    };
    let many_lines = |n: usize| {
        let mut h = HeaderMap::new();
        for i in 0..n {
            let v = format!("198.51.{}.{}", i / 250 % 250, i % 250 + 1);
            h.append("x-forwarded-for", HeaderValue::from_str(&v).unwrap());
        }
        for a in &near {
            h.append("x-forwarded-for", HeaderValue::from_str(a).unwrap());
        }
        h
    };
    let cases = [
        (
            "x-forwarded-for line",
            &xff_policy,
            one("x-forwarded-for", format!("198.51.100.1, {near_xff}")),
            one("x-forwarded-for", format!("{left_xff}{near_xff}")),
        ),
        (
            "forwarded line",
            &fwd_policy,
            one("forwarded", format!("for=198.51.100.1, {near_fwd}")),
            one("forwarded", format!("{left_fwd}{near_fwd}")),
        ),
        (
            "repeated lines",
            &xff_policy,
            many_lines(1),
            many_lines(100_000),
        ),
    ];
    for (what, policy, small, big) in cases {
        let (t_small, ip_small, stop_small) = fastest(policy, &small);
        let (t_big, ip_big, stop_big) = fastest(policy, &big);
        // Both stop at the cap, on the same hop: the left part is unread.
        assert_eq!(
            (ip_small, stop_small),
            (ip("10.0.0.1"), Stop::HopCap),
            "{what}"
        );
        assert_eq!((ip_big, stop_big), (ip_small, stop_small), "{what}");
        println!(
            "{what}: {t_small:?} with the cap's entries, {t_big:?} with 4 MB / 100,000 lines more"
        );
        assert!(
            t_big < t_small * 10 + Duration::from_micros(500),
            "{what}: {t_big:?} against {t_small:?}: the walk read past the cap"
        );
    }
}

// ---- semantics added after the first release -----------------------------

/// DESIGN.md, Trust defaults: "As soon as any `*_from` rule names ranges, a
/// peer outside every named range is `Reject` [...] unless `otherwise(..)`
/// says otherwise." — `otherwise` really replaces the fallback, on the
/// listener (real TCP) and on the acceptor.
#[tokio::test]
async fn otherwise_chooses_the_mode_of_peers_outside_every_range() {
    let forged = v2(sa("8.8.8.8:1234"), sa("127.0.0.1:80"), &[]);

    // otherwise(Optional): the outsider's header is read.
    let addr = serve(
        ProxyProtocolListener::new(tcp().await)
            .require_from([lb_net()])
            .otherwise(Mode::Optional),
    );
    let body = body_200(get_with(connect_from(lo(2), addr).await, &forged).await);
    assert!(body.starts_with("peer=127.0.0.2:"), "{body}");
    assert!(body.ends_with(" source=8.8.8.8:1234"), "{body}");
    let body = body_200(get_with(connect_from(lo(2), addr).await, b"").await);
    assert!(body.ends_with(" source=-"), "{body}");

    // otherwise(Require): the outsider without a header is closed.
    let addr = serve(
        ProxyProtocolListener::new(tcp().await)
            .require_from([lb_net()])
            .otherwise(Mode::Require)
            .header_timeout_unclamped(Duration::from_millis(500)),
    );
    assert_eq!(get_with(connect_from(lo(2), addr).await, b"").await, None);
    let body = body_200(get_with(connect_from(lo(2), addr).await, &forged).await);
    assert!(body.ends_with(" source=8.8.8.8:1234"), "{body}");

    // Without `otherwise`, the same rule leaves the outsider in Reject.
    let addr = serve(ProxyProtocolListener::new(tcp().await).require_from([lb_net()]));
    assert_eq!(
        get_with(connect_from(lo(2), addr).await, &forged).await,
        None
    );

    // The acceptor, with the same settings.
    let acceptor = ProxyAcceptor::new()
        .require_from([lb_net()])
        .otherwise(Mode::Optional);
    assert_eq!(acceptor.source_policy().fallback(), Mode::Optional);
    let (mut client, server) = tokio::io::duplex(256);
    client.write_all(&forged).await.unwrap();
    let stream = acceptor
        .accept(server, peer("127.0.0.2:5000"))
        .await
        .expect("the outsider's header is read under otherwise(Optional)");
    assert_eq!(
        stream.proxy_header().and_then(|h| h.source()),
        Some(peer("8.8.8.8:1234"))
    );
    let (mut client, server) = tokio::io::duplex(256);
    client.write_all(&forged).await.unwrap();
    assert!(ProxyAcceptor::new()
        .require_from([lb_net()])
        .accept(server, peer("127.0.0.2:5000"))
        .await
        .is_err());
}

/// DESIGN.md, Trust defaults: "Hop-count mode: the chain is the socket
/// peer, then the PROXY source when a header was accepted, then the
/// header's entries right to left; with `trusted_hops(n)` the client is
/// entry n of that chain (the socket peer is entry 0)." — every n over one
/// request, with and without a PROXY source.
#[test]
fn hop_count_chain_is_peer_then_proxy_source_then_entries_right_to_left() {
    let headers = xff(&["192.0.2.3, 192.0.2.2", "192.0.2.1"]);
    let p = peer("198.51.100.7:1000");
    let lb = peer("198.51.100.20:7000");
    let with_proxy = [
        "198.51.100.7",
        "198.51.100.20",
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ];
    let without = ["198.51.100.7", "192.0.2.1", "192.0.2.2", "192.0.2.3"];
    for (proxy, chain) in [(Some(lb), &with_proxy[..]), (None, &without[..])] {
        for n in 1..=6 {
            let policy = Policy::builder()
                .trusted_hops(n)
                .header(HeaderSource::XForwardedFor)
                .build()
                .unwrap();
            let r = policy.resolve(p, proxy, &headers);
            let want_hops: Vec<IpAddr> = chain.iter().take(n + 1).map(|s| ip(s)).collect();
            assert_eq!(
                r.hops().collect::<Vec<_>>(),
                want_hops,
                "n={n} proxy={proxy:?}"
            );
            match chain.get(n) {
                Some(client) => {
                    assert_eq!(r.ip(), ip(client), "n={n} proxy={proxy:?}");
                    assert_eq!(r.stop(), Stop::HopCount, "n={n} proxy={proxy:?}");
                    let want_source = if proxy.is_some() && n == 1 {
                        Source::ProxyProtocol
                    } else {
                        Source::Header(HeaderName::from_static("x-forwarded-for"))
                    };
                    assert_eq!(r.source(), &want_source, "n={n} proxy={proxy:?}");
                }
                // Too short: the nearest hop (the PROXY source, else the peer).
                None => {
                    assert_eq!(r.ip(), ip(chain[usize::from(proxy.is_some())]), "n={n}");
                    assert_eq!(r.stop(), Stop::TooShort, "n={n} proxy={proxy:?}");
                }
            }
        }
    }
}

/// DESIGN.md, Trust defaults: "An NLB that sends PROXY is one of the n." —
/// over real TCP: a balancer at 127.0.0.1 sends a v2 header for
/// 203.0.113.9, which forged `X-Forwarded-For: 6.6.6.6`; with
/// `trusted_hops(1)` the client is the PROXY source, the forged entry is
/// never read.
#[tokio::test]
async fn an_nlb_sending_proxy_is_one_of_the_counted_hops() {
    let hops = |n| {
        RealIpLayer::builder()
            .trusted_hops(n)
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap()
    };
    let header = v2(sa("203.0.113.9:4000"), sa("10.0.0.1:80"), &[]);
    let one = serve_layer(
        ProxyProtocolListener::new(tcp().await).require_from([lb_net()]),
        hops(1),
    );
    let body = body_200(ask(1, one, &header, Some("6.6.6.6")).await);
    assert_eq!(body, "client=203.0.113.9 source=proxy stop=hop-count");
    // An outsider (no PROXY, served as itself): one hop is the peer, so
    // the rightmost entry is the client.
    let body = body_200(ask(2, one, b"", Some("6.6.6.6")).await);
    assert_eq!(body, "client=6.6.6.6 source=x-forwarded-for stop=hop-count");

    // Two proxies: the NLB and the one that appended 198.51.100.1.
    let two = serve_layer(
        ProxyProtocolListener::new(tcp().await).require_from([lb_net()]),
        hops(2),
    );
    let body = body_200(ask(1, two, &header, Some("6.6.6.6, 198.51.100.1")).await);
    assert_eq!(
        body,
        "client=198.51.100.1 source=x-forwarded-for stop=hop-count"
    );
}

/// DESIGN.md, Trust defaults: "Zoned entries end the walk in every mode."
/// — recursive, non-recursive and hop-count, `X-Forwarded-For` and
/// `Forwarded`; each against the same chain without the zone, which the
/// walk passes (link-local is trusted here, so only the zone stops it).
#[test]
fn zoned_entries_end_the_walk_in_every_mode() {
    let builder = || {
        Policy::builder()
            .trust_private()
            .trust_link_local()
            .header(HeaderSource::XForwardedFor)
    };
    let recursive = builder().build().unwrap();
    let one_step = builder().recursive(false).build().unwrap();
    let count = Policy::builder()
        .trusted_hops(3)
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let forwarded = Policy::builder()
        .trust_private()
        .trust_link_local()
        .header(HeaderSource::Forwarded)
        .build()
        .unwrap();
    let fwd = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert("forwarded", HeaderValue::from_str(v).unwrap());
        h
    };
    type Row<'a> = (&'a str, &'a Policy, HeaderMap, HeaderMap, Stop, &'a str);
    let rows: [Row; 4] = [
        (
            "recursive",
            &recursive,
            xff(&["203.0.113.5, fe80::1%eth0, 10.0.0.2"]),
            xff(&["203.0.113.5, fe80::1, 10.0.0.2"]),
            Stop::UntrustedHop,
            "203.0.113.5",
        ),
        (
            "non-recursive",
            &one_step,
            xff(&["203.0.113.5, fe80::1%eth0"]),
            xff(&["203.0.113.5, fe80::1"]),
            Stop::SingleStep,
            "fe80::1",
        ),
        (
            "hop count",
            &count,
            xff(&["6.6.6.6, 203.0.113.5, fe80::1%eth0"]),
            xff(&["6.6.6.6, 203.0.113.5, fe80::1"]),
            Stop::HopCount,
            "6.6.6.6",
        ),
        (
            "forwarded",
            &forwarded,
            fwd(r#"for=203.0.113.5, for="[fe80::1%25eth0]", for=10.0.0.2"#),
            fwd(r#"for=203.0.113.5, for="[fe80::1]", for=10.0.0.2"#),
            Stop::UntrustedHop,
            "203.0.113.5",
        ),
    ];
    for (mode, policy, zoned, plain, plain_stop, plain_ip) in rows {
        let r = policy.resolve(peer("10.0.0.1:1000"), None, &zoned);
        assert_eq!(r.ip(), ip("fe80::1"), "{mode}: {r:?}");
        assert_eq!(
            r.stop(),
            Stop::UntrustedHop,
            "{mode}: the zone ends the walk"
        );
        assert!(r.is_conclusive(), "{mode}");
        let r = policy.resolve(peer("10.0.0.1:1000"), None, &plain);
        assert_eq!(
            (r.ip(), r.stop()),
            (ip(plain_ip), plain_stop),
            "{mode} without zone"
        );
    }
}

// ---- examples and documentation -------------------------------------------

/// Code units to check: each example file, each fenced block of the README,
/// each fenced block of a doc comment under `src/`.
fn code_units() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut units = Vec::new();
    let mut blocks = |origin: &str, lines: Vec<String>| {
        let mut current: Option<String> = None;
        for line in lines {
            if line.trim_start().starts_with("```") {
                match current.take() {
                    Some(block) => units.push((origin.to_owned(), block)),
                    None => current = Some(String::new()),
                }
            } else if let Some(block) = current.as_mut() {
                block.push_str(&line);
                block.push('\n');
            }
        }
    };
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    blocks("README.md", readme.lines().map(str::to_owned).collect());
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let docs = text
                    .lines()
                    .filter_map(|l| {
                        let l = l.trim_start();
                        l.strip_prefix("///")
                            .or_else(|| l.strip_prefix("//!"))
                            .map(|d| d.strip_prefix(' ').unwrap_or(d).to_owned())
                    })
                    .collect();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                blocks(&rel, docs);
            }
        }
    }
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            units.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
    units
}

/// Listeners or acceptors in `unit` that serve a bound socket without
/// naming who may send a header: each construction, read up to the end
/// of its statement, must name ranges (`*_from`), decide per peer
/// (`policy`, `policy_fn`), or read no header from anyone (`otherwise(Skip)`
/// with no rule); and no fallback may reopen the door (`otherwise` with
/// `Require` or `Optional`).
fn open_to_everyone(unit: &str) -> Vec<String> {
    if !unit.contains("bind(") {
        return Vec::new(); // not a server: a duplex or a parser demo
    }
    let mut found = Vec::new();
    for start in ["ProxyProtocolListener::new(", "ProxyAcceptor::new()"] {
        for (at, _) in unit.match_indices(start) {
            let statement = &unit[at..];
            let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
            let compact: String = statement.split_whitespace().collect();
            let names = ["_from(", ".policy(", ".policy_fn("]
                .iter()
                .any(|m| compact.contains(m));
            let skips = compact.contains("otherwise(Mode::Skip)")
                || compact.contains("otherwise(realip::io::Mode::Skip)");
            let reopens = compact.match_indices(".otherwise(").any(|(i, _)| {
                let arg = &compact[i..];
                let arg = &arg[..arg.find(')').unwrap_or(arg.len())];
                arg.contains("Require") || arg.contains("Optional")
            });
            if !(names || skips) || reopens {
                found.push(compact);
            }
        }
    }
    found
}

/// DESIGN.md, Trust defaults: "`ProxyProtocolListener::new(l)` with no
/// rule requires a header from everyone (the spec; right only when nothing
/// but the load balancer can reach the port [...]). As soon as any
/// `*_from` rule names ranges, a peer outside every named range is
/// `Reject` [...]. Every example and the README follow this." — the
/// README's blocks and every program under `examples/`.
#[test]
fn every_example_and_the_readme_name_who_may_send_a_header() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for (origin, unit) in code_units() {
        if origin.starts_with("src") {
            continue;
        }
        if unit.contains("ProxyProtocolListener::new(") || unit.contains("ProxyAcceptor::new()") {
            checked += 1;
        }
        bad.extend(
            open_to_everyone(&unit)
                .into_iter()
                .map(|s| format!("{origin}: {s}")),
        );
    }
    assert!(
        checked >= 6,
        "only {checked} units build a listener: is the scan broken?"
    );
    assert!(bad.is_empty(), "open to every peer:\n{}", bad.join("\n"));
    // The scan itself: it finds a listener left open, and one reopened.
    assert_eq!(
        open_to_everyone("let l = ProxyProtocolListener::new(bind(a).await?);").len(),
        1
    );
    assert_eq!(
        open_to_everyone(
            "ProxyProtocolListener::new(bind(a)).require_from(r).otherwise(Mode::Optional);"
        )
        .len(),
        1
    );
}

/// DESIGN.md, Trust defaults, the same rule for the doc examples under
/// `src/` (issue 9: "Fix the README, every example and every doc example").
#[test]
fn every_doc_example_names_who_may_send_a_header() {
    let mut bad = Vec::new();
    for (origin, unit) in code_units() {
        if origin.starts_with("src") {
            bad.extend(
                open_to_everyone(&unit)
                    .into_iter()
                    .map(|s| format!("{origin}: {s}")),
            );
        }
    }
    assert!(bad.is_empty(), "open to every peer:\n{}", bad.join("\n"));
}

/// DESIGN.md, Semantics, PROXY protocol: "\"Optional\" (mixed) mode exists
/// for health checks and local testing and is documented as weaker than
/// the spec." — and DESIGN.md, Trust defaults: the require-from-everyone
/// default is "right only when nothing but the load balancer can reach the
/// port, and the docs say so". Both statements, where users read them.
#[test]
fn optional_mode_and_the_require_everyone_default_are_documented_as_such() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| {
        let text = std::fs::read_to_string(root.join(p)).unwrap();
        text.split_whitespace()
            .map(|w| w.trim_start_matches("///").trim_start_matches("//!"))
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let policy = read("src/io/policy.rs");
    let readme = read("README.md");
    assert!(
        policy.contains("Weaker than the specification"),
        "Mode::Optional docs"
    );
    assert!(readme.contains("\"Optional\" is weaker than the specification"));
    for (name, text) in [("src/io/policy.rs", &policy), ("README.md", &readme)] {
        assert!(
            text.contains("nothing but the load balancer can reach the port"),
            "{name} says when the require-everyone default is right"
        );
    }
}

/// Issue #10, DESIGN.md "Client context": context "on by default when an
/// address header is configured: say in the docs why". Every kind of
/// address header, built without `.context(..)`, resolves the client's
/// scheme from a trusted proxy's `X-Forwarded-Proto` (or `proto=`);
/// `.context(false)` opts out; a policy with no address header has it off;
/// the layer builder follows the policy; the docs say why.
#[test]
fn client_context_is_on_by_default_whenever_an_address_header_is_configured() {
    use realip::resolve::ContextSource;
    let peer = peer("10.0.0.1:4000");
    let cases = [
        (
            HeaderSource::XForwardedFor,
            "x-forwarded-for",
            "203.0.113.9",
        ),
        (HeaderSource::XRealIp, "x-real-ip", "203.0.113.9"),
        (
            HeaderSource::Forwarded,
            "forwarded",
            "for=203.0.113.9;proto=https",
        ),
    ];
    for (source, name, value) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("host", HeaderValue::from_static("app.internal"));
        let default = Policy::builder()
            .trust_private()
            .header(source.clone())
            .build()
            .unwrap();
        assert!(default.has_context(), "{name}");
        let r = default.resolve(peer, None, &headers);
        let cx = r
            .context()
            .unwrap_or_else(|| panic!("{name}: context off by default"));
        assert_eq!(cx.scheme(), realip::Scheme::Https, "{name}");
        assert_eq!(
            cx.scheme_source(),
            ContextSource::Header { hop: 1 },
            "{name}"
        );
        assert_eq!(cx.host(), Some("app.internal"), "{name}");
        let off = Policy::builder()
            .trust_private()
            .header(source)
            .context(false)
            .build()
            .unwrap();
        assert!(!off.has_context());
        assert!(
            off.resolve(peer, None, &headers).context().is_none(),
            "{name}"
        );
    }
    assert!(!Policy::default().has_context());
    assert!(!Policy::builder().build().unwrap().has_context());
    let layer = RealIpLayer::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    assert!(layer.policy().has_context());
    assert!(!RealIpLayer::new().policy().has_context());

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let flat = |p: &str| {
        std::fs::read_to_string(root.join(p))
            .unwrap()
            .split_whitespace()
            .map(|w| w.trim_start_matches("///").trim_start_matches("//!"))
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let builder_docs = flat("src/resolve/mod.rs");
    assert!(builder_docs.contains("On by default whenever an address header is configured"));
    assert!(builder_docs.contains("so it trusts no one new"));
    let readme = flat("README.md");
    assert!(readme.contains("on by default whenever an address header is configured"));
}
