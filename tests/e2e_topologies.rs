//! End to end: real haproxy and nginx topologies in front of an axum app
//! using `realip`, each client connecting from its own 127.0.0.N. The app
//! answers with the JSON of what it resolved (client ip and port, which
//! input decided, socket peer, PROXY version), and every test asserts the
//! exact client address curl (or the raw client) connected from.
//!
//! Loopback addresses used as proxy sources (`proxy_bind`, haproxy
//! `source`) are 127.0.0.200 and up, so a peer is never mistaken for a
//! client; clients use 127.0.0.11 to 127.0.0.99, a decade per test.

mod common;
mod e2e_util;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{free_port, Curl, CurlOutput, Haproxy, Nginx};
use e2e_util::*;
use realip::{HeaderSource, RealIpLayer};

/// curl from 127.0.0.`n` to `url` with `headers`, off the runtime's threads.
async fn curl_from(n: u8, url: String, headers: &[&str]) -> CurlOutput {
    let mut curl = Curl::new(url).interface(lo(n));
    for h in headers {
        curl = curl.header(h);
    }
    curl.run_async().await
}

/// What the app answered to curl, with curl's own source address.
fn seen(out: &CurlOutput) -> (Seen, SocketAddr) {
    out.expect_status(200);
    let client = out.local_addr().expect("curl reports its local address");
    (Seen::parse(&out.text()), client)
}

/// `show stat` over haproxy's stats socket: (status, check_status) of `backend/server`.
fn haproxy_server_state(sock: &Path, backend: &str, server: &str) -> (String, String) {
    let mut s = UnixStream::connect(sock).expect("connect to haproxy's stats socket");
    s.write_all(b"show stat\n").unwrap();
    let mut csv = String::new();
    s.read_to_string(&mut csv).unwrap();
    let mut lines = csv.lines();
    let columns: Vec<&str> = lines
        .next()
        .expect("stat header")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r.len() > 1 && r[0] == backend && r[1] == server)
        .unwrap_or_else(|| panic!("no {backend}/{server} in\n{csv}"));
    (
        row[col("status")].to_owned(),
        row[col("check_status")].to_owned(),
    )
}

/// A layer that believes `X-Forwarded-For` from exactly these proxies.
fn trust_xff_from(proxies: &[u8]) -> RealIpLayer {
    proxies
        .iter()
        .fold(RealIpLayer::builder(), |b, n| b.trust(host_net(lo(*n))))
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap()
}

/// 1. client → haproxy `send-proxy-v2` → app (the AWS NLB case); haproxy's
/// health checks (`check` with `send-proxy-v2`: a v2 LOCAL header) keep the
/// server UP and resolve to the socket peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nlb_haproxy_send_proxy_v2_to_app() {
    let (app, log) = echo_router(RealIpLayer::new());
    let app = serve_proxied(app);
    let hp = free_port();
    let stats_dir = tempfile::tempdir().unwrap();
    let stats = stats_dir.path().join("stats.sock");
    let haproxy = Haproxy::start(&format!(
        "global\n\
         \x20   stats socket {stats} mode 600 level admin\n\
         frontend nlb\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   option httpchk GET /health\n\
         \x20   server s1 {app} source 127.0.0.201 send-proxy-v2 check inter 100ms fall 2 rise 1\n",
        stats = stats.display(),
    ));

    for n in 11..=13 {
        let out = curl_from(n, format!("http://127.0.0.1:{hp}/"), &[]).await;
        let (seen, client) = seen(&out);
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.client_port, Some(client.port()), "{seen:?}");
        assert_eq!(seen.source, "proxy_protocol");
        assert_eq!(seen.proxy.as_deref(), Some("v2"));
        assert_eq!(seen.peer.ip(), lo(201), "the socket peer is haproxy");
    }

    // Checks every 100 ms; two failures would mark the server DOWN.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, check) = haproxy_server_state(&stats, "app", "s1");
    assert_eq!(status, "UP", "haproxy log:\n{}", haproxy.log());
    assert_eq!(check, "L7OK", "haproxy log:\n{}", haproxy.log());
    let checks: Vec<Seen> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path == "/health")
        .cloned()
        .collect();
    assert!(checks.len() >= 3, "health checks seen: {checks:?}");
    for c in &checks {
        // LOCAL: the header is accepted, the socket peer stays the client.
        assert_eq!(c.proxy.as_deref(), Some("v2"), "{c:?}");
        assert_eq!(c.source, "socket", "{c:?}");
        assert_eq!(c.client_ip, lo(201), "{c:?}");
    }
}

/// 2. client → nginx `stream` with `proxy_protocol on` → app (the classic
/// ELB case, PROXY v1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elb_nginx_stream_proxy_protocol_v1_to_app() {
    let (app, _) = echo_router(RealIpLayer::new());
    let app = serve_proxied(app);
    let ngx = free_port();
    let _nginx = Nginx::start(&format!(
        "stream {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{ngx};\n\
         \x20       proxy_pass {app};\n\
         \x20       proxy_bind 127.0.0.202;\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         }}\n"
    ));
    for n in 21..=23 {
        let out = curl_from(n, format!("http://127.0.0.1:{ngx}/"), &[]).await;
        let (seen, client) = seen(&out);
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.client_port, Some(client.port()), "{seen:?}");
        assert_eq!(seen.source, "proxy_protocol");
        assert_eq!(seen.proxy.as_deref(), Some("v1"));
        assert_eq!(seen.peer.ip(), lo(202), "the socket peer is nginx");
    }
}

/// 3. client → haproxy `send-proxy-v2` → nginx `listen … proxy_protocol`
/// (http) setting `X-Forwarded-For $proxy_protocol_addr` → app, whose plain
/// listener trusts nginx's source address (127.0.0.203) and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nlb_then_nginx_http_then_app_trusting_only_nginx() {
    let (app, _) = echo_router(trust_xff_from(&[203]));
    let app = serve_plain(app);
    let ngx = free_port();
    let _nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{ngx} proxy_protocol;\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{app};\n\
         \x20           proxy_bind 127.0.0.203;\n\
         \x20           proxy_set_header X-Forwarded-For $proxy_protocol_addr;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    ));
    let hp = free_port();
    let _haproxy = Haproxy::start(&format!(
        "frontend nlb\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   default_backend nginx\n\
         backend nginx\n\
         \x20   server n1 127.0.0.1:{ngx} send-proxy-v2\n"
    ));

    for n in 31..=33 {
        // A forged header is overwritten by nginx (`$proxy_protocol_addr`).
        let out = curl_from(
            n,
            format!("http://127.0.0.1:{hp}/"),
            &["X-Forwarded-For: 203.0.113.66"],
        )
        .await;
        let (seen, _) = seen(&out);
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.client_port, None, "XFF carries no port: {seen:?}");
        assert_eq!(seen.source, "header:x-forwarded-for");
        assert_eq!(seen.peer.ip(), lo(203), "the socket peer is nginx");
        assert_eq!(seen.proxy, None, "the app's listener reads no PROXY header");
        assert_eq!(seen.xff, Some(lo(n).to_string()));
    }

    // The same header sent straight to the app is not believed: 127.0.0.34
    // is not nginx.
    let out = curl_from(
        34,
        format!("http://{app}/"),
        &["X-Forwarded-For: 203.0.113.66"],
    )
    .await;
    let (seen, client) = seen(&out);
    assert_eq!(seen.xff.as_deref(), Some("203.0.113.66"));
    assert_eq!(seen.client_ip, lo(34), "{seen:?}");
    assert_eq!(seen.client_port, Some(client.port()));
    assert_eq!(seen.source, "socket");
}

/// 4a. Pass-through: client → nginx `stream` (`proxy_protocol on`) →
/// haproxy plain TCP (no `send-proxy`, the v1 header travels as payload) → app.
/// 4b. Re-emit: client → nginx `stream` → haproxy `accept-proxy` +
/// `send-proxy-v2` → app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_tier_pass_through_and_re_emit() {
    let (app, _) = echo_router(RealIpLayer::new());
    let app = serve_proxied(app);
    let (pass, reemit) = (free_port(), free_port());
    let _haproxy = Haproxy::start(&format!(
        "frontend pass\n\
         \x20   bind 127.0.0.1:{pass}\n\
         \x20   default_backend app_plain\n\
         frontend reemit\n\
         \x20   bind 127.0.0.1:{reemit} accept-proxy\n\
         \x20   default_backend app_v2\n\
         backend app_plain\n\
         \x20   server s1 {app} source 127.0.0.205\n\
         backend app_v2\n\
         \x20   server s2 {app} source 127.0.0.206 send-proxy-v2\n"
    ));
    let (ngx_pass, ngx_reemit) = (free_port(), free_port());
    let _nginx = Nginx::start(&format!(
        "stream {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{ngx_pass};\n\
         \x20       proxy_pass 127.0.0.1:{pass};\n\
         \x20       proxy_bind 127.0.0.204;\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{ngx_reemit};\n\
         \x20       proxy_pass 127.0.0.1:{reemit};\n\
         \x20       proxy_bind 127.0.0.204;\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         }}\n"
    ));

    for (n, port, version, peer) in [
        (41, ngx_pass, "v1", 205),
        (42, ngx_reemit, "v2", 206),
        (43, ngx_pass, "v1", 205),
        (44, ngx_reemit, "v2", 206),
    ] {
        let out = curl_from(n, format!("http://127.0.0.1:{port}/"), &[]).await;
        let (seen, client) = seen(&out);
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.client_port, Some(client.port()), "{seen:?}");
        assert_eq!(seen.source, "proxy_protocol");
        assert_eq!(seen.proxy.as_deref(), Some(version), "{seen:?}");
        assert_eq!(seen.peer.ip(), lo(peer), "the socket peer is haproxy");
    }
}

/// nginx http tiers, each appending its client with
/// `$proxy_add_x_forwarded_for`: one tier (`one`, source .207) and two
/// tiers (`edge` .208 → `mid` .209), all in front of `app`.
fn nginx_xff_tiers(app: SocketAddr) -> (Nginx, u16, u16) {
    let (one, edge, mid) = (free_port(), free_port(), free_port());
    let location = |upstream: String, bind: u8| {
        format!(
            "\x20       location / {{\n\
             \x20           proxy_pass http://{upstream};\n\
             \x20           proxy_bind 127.0.0.{bind};\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Upgrade $http_upgrade;\n\
             \x20           proxy_set_header Connection \"upgrade\";\n\
             \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             \x20       }}\n"
        )
    };
    let nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{one};\n\
         {l_one}\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{edge};\n\
         {l_edge}\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{mid};\n\
         {l_mid}\
         \x20   }}\n\
         }}\n",
        l_one = location(app.to_string(), 207),
        l_edge = location(format!("127.0.0.1:{mid}"), 208),
        l_mid = location(app.to_string(), 209),
    ));
    (nginx, one, edge)
}

/// 5. A client forges `X-Forwarded-For` through one and through two nginx
/// tiers; the app trusts exactly the nginx sources. The forged entries
/// reach the app, and never win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_x_forwarded_for_through_nginx_never_wins() {
    let (app, _) = echo_router(trust_xff_from(&[207, 208, 209]));
    let app = serve_plain(app);
    let (_nginx, one, edge) = nginx_xff_tiers(app);

    let forgeries = [
        "203.0.113.66",
        // The address of a trusted proxy.
        "127.0.0.208",
        "203.0.113.66, 127.0.0.209",
        "unknown, 10.0.0.1",
        "[2001:db8::1]:443",
    ];
    let mut n = 50;
    for forged in forgeries {
        for (port, tiers) in [(one, vec![207]), (edge, vec![208, 209])] {
            n += 1;
            let header = format!("X-Forwarded-For: {forged}");
            let out = curl_from(n, format!("http://127.0.0.1:{port}/"), &[&header]).await;
            let (seen, _) = seen(&out);
            // What nginx built: the forgery, the client, then each inner tier.
            let mut expected_xff = format!("{forged}, {}", lo(n));
            for t in &tiers[..tiers.len() - 1] {
                expected_xff.push_str(&format!(", {}", lo(*t)));
            }
            assert_eq!(seen.xff.as_deref(), Some(expected_xff.as_str()));
            assert_eq!(seen.peer.ip(), lo(*tiers.last().unwrap()));
            assert_eq!(seen.client_ip, lo(n), "forged {forged:?}: {seen:?}");
            assert_eq!(seen.source, "header:x-forwarded-for");
            assert_eq!(seen.stop, "UntrustedHop", "{seen:?}");
        }
    }
}

/// 6. A WebSocket upgrade through nginx (`proxy_http_version 1.1`, `Upgrade`,
/// `Connection "upgrade"`, `X-Forwarded-For`): the upgrade handler sees the
/// client, also when the client forged the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_through_nginx_sees_the_client() {
    let (app, _) = echo_router(trust_xff_from(&[207, 208, 209]));
    let app = serve_plain(app);
    let (_nginx, one, edge) = nginx_xff_tiers(app);
    for (n, port, extra) in [
        (61, one, ""),
        (62, one, "X-Forwarded-For: 203.0.113.66\r\n"),
        (63, edge, ""),
        (64, edge, "X-Forwarded-For: 127.0.0.209\r\n"),
    ] {
        let to = SocketAddr::new(lo(1), port);
        let (head, text) = websocket_text(lo(n), to, "/ws", extra).await;
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        let seen = Seen::parse(&text);
        assert_eq!(seen.path, "/ws");
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.source, "header:x-forwarded-for");
    }
}

/// 7. One request, several routers (nested and merged), each with its own
/// policy: each resolves as configured. Through two nginx tiers the app
/// gets `X-Forwarded-For: 203.0.113.66, 127.0.0.71, 127.0.0.208` from
/// 127.0.0.209.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_with_different_policies_resolve_differently() {
    let loopback: ipnet::IpNet = "127.0.0.0/8".parse().unwrap();
    let hops = |n| {
        RealIpLayer::builder()
            .trusted_hops(n)
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap()
    };
    let app = axum::Router::new()
        .nest("/none", echo_route("/probe", RealIpLayer::new()))
        .nest(
            "/one-step",
            echo_route(
                "/probe",
                RealIpLayer::builder()
                    .trust(loopback)
                    .recursive(false)
                    .header(HeaderSource::XForwardedFor)
                    .build()
                    .unwrap(),
            ),
        )
        .nest("/nginx", echo_route("/probe", trust_xff_from(&[208, 209])))
        .merge(echo_route("/hops2/probe", hops(2)))
        .merge(echo_route("/hops3/probe", hops(3)));
    let app = serve_plain(app);
    let (_nginx, _, edge) = nginx_xff_tiers(app);

    let n = 71;
    let expected: [(&str, IpAddr, &str, &str); 5] = [
        ("/none/probe", lo(209), "socket", "UntrustedHop"),
        (
            "/one-step/probe",
            lo(208),
            "header:x-forwarded-for",
            "SingleStep",
        ),
        (
            "/nginx/probe",
            lo(n),
            "header:x-forwarded-for",
            "UntrustedHop",
        ),
        ("/hops2/probe", lo(n), "header:x-forwarded-for", "HopCount"),
        // Declaring three proxies in front of the app believes the third
        // entry from the right, whoever wrote it: that is the configuration.
        (
            "/hops3/probe",
            "203.0.113.66".parse().unwrap(),
            "header:x-forwarded-for",
            "HopCount",
        ),
    ];
    for (path, ip, source, stop) in expected {
        let out = curl_from(
            n,
            format!("http://127.0.0.1:{edge}{path}"),
            &["X-Forwarded-For: 203.0.113.66"],
        )
        .await;
        let (seen, _) = seen(&out);
        assert_eq!(
            seen.xff.as_deref(),
            Some("203.0.113.66, 127.0.0.71, 127.0.0.208")
        );
        assert_eq!(seen.client_ip, ip, "{path}: {seen:?}");
        assert_eq!(seen.source, source, "{path}: {seen:?}");
        assert_eq!(seen.stop, stop, "{path}: {seen:?}");
    }
}

/// `layer.into_make_service(app)`, the per-connection form, in the NLB
/// case and behind nginx appending X-Forwarded-For to a forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_service_form_behind_haproxy_and_nginx() {
    let (routes, _) = echo_routes();
    let app = serve_made(routes, RealIpLayer::new(), true);
    let hp = free_port();
    let _haproxy = Haproxy::start(&format!(
        "frontend nlb\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server s1 {app} source 127.0.0.202 send-proxy-v2\n"
    ));
    for n in 91..=92 {
        let out = curl_from(n, format!("http://127.0.0.1:{hp}/"), &[]).await;
        let (seen, client) = seen(&out);
        assert_eq!(seen.client_ip, lo(n), "{seen:?}");
        assert_eq!(seen.client_port, Some(client.port()), "{seen:?}");
        assert_eq!(seen.source, "proxy_protocol");
        assert_eq!(seen.peer.ip(), lo(202), "the socket peer is haproxy");
    }

    // nginx at 127.0.0.203 appends the client to a forged header; the app
    // trusts exactly nginx.
    let (routes, _) = echo_routes();
    let app = serve_made(routes, trust_xff_from(&[203]), false);
    let (nginx, port) = Nginx::xff_proxy(app, lo(203));
    let out = curl_from(
        93,
        format!("http://127.0.0.1:{port}/"),
        &["X-Forwarded-For: 6.6.6.6"],
    )
    .await;
    let (seen, _) = seen(&out);
    assert_eq!(
        seen.client_ip,
        lo(93),
        "{seen:?}\nnginx log:\n{}",
        nginx.log()
    );
    assert_eq!(seen.source, "header:x-forwarded-for");
    assert_eq!(seen.peer.ip(), lo(203));
}
