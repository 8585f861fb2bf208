//! End to end: `examples/edge_proxy.rs` passing the client on to real next
//! hops on loopback: haproxy `accept-proxy`, nginx `listen ... proxy_protocol`
//! and nginx as a plain HTTP proxy, the whoami binary as the last hop, and
//! raw captures for the exact bytes. Every client connects from its own
//! 127.0.0.N (clients use 127.0.0.150 to 127.0.0.199 and 127.0.1-4.x,
//! proxies 127.0.0.231 to 127.0.0.240, so they never collide with other
//! test files), and every assertion compares the last hop's answer with
//! the address curl really used.
//!
//! Every process is killed and reaped on drop; every wait has a deadline.

mod common;
mod e2e_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::examples::{bin_binary, example_binary, Server};
use common::{free_port, Capture, Curl, CurlOutput, Haproxy, Nginx};
use e2e_util::lo;
use realip::proxy::{self, Status};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How whoami is built and run: the one place that knows it is the `cli`
/// feature's `[[bin]]` (it was an example before).
fn whoami(flags: &[&str]) -> Server {
    let binary: PathBuf = bin_binary("whoami", &["cli"]);
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
    let mut args = vec!["--listen".to_owned(), addr.to_string()];
    args.extend(flags.iter().map(|s| (*s).to_owned()));
    Server::start("whoami", &binary, addr, &args)
}

/// `edge_proxy --listen 127.0.0.1:<free> --upstream <upstream> <flags>`.
fn edge(upstream: SocketAddr, flags: &[&str]) -> Server {
    let binary = example_binary("edge_proxy");
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
    let mut args = vec![
        "--listen".to_owned(),
        addr.to_string(),
        "--upstream".to_owned(),
        upstream.to_string(),
    ];
    args.extend(flags.iter().map(|s| (*s).to_owned()));
    Server::start("edge_proxy", &binary, addr, &args)
}

/// The JSON answer of a 200, and curl's own source address.
fn answer(out: &CurlOutput, servers: &[&Server]) -> (Value, SocketAddr) {
    let logs: String = servers.iter().map(|s| s.log()).collect();
    assert!(
        out.exit == 0 && out.status == 200,
        "expected 200, got exit {} status {} body {:?}\n{}\n{logs}",
        out.exit,
        out.status,
        out.text(),
        out.stderr
    );
    let body: Value = serde_json::from_slice(&out.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}\n{logs}", out.text()));
    (body, out.local_addr().expect("curl's local address"))
}

/// edge --send-proxy v2 → haproxy accept-proxy (re-sending v2 with the
/// received authority and unique id, and a CRC32C) → whoami: each client,
/// from its own 127.0.0.N, is the PROXY source at the last hop, port
/// included, and the TLVs the edge wrote arrive intact.
#[test]
fn send_proxy_v2_through_haproxy_reaches_whoami() {
    let who = whoami(&["--proxy-protocol", "required", "--trust", "127.0.0.250/32"]);
    let hport = free_port();
    let haproxy = Haproxy::start(&format!(
        "frontend fe\n\
         \x20   bind 127.0.0.1:{hport} accept-proxy\n\
         \x20   unique-id-format %[fc_pp_unique_id]\n\
         \x20   default_backend be\n\
         backend be\n\
         \x20   server who {} send-proxy-v2 proxy-v2-options authority,unique-id,crc32c source 127.0.0.231\n",
        who.addr()
    ));
    let up: SocketAddr = format!("127.0.0.1:{hport}").parse().unwrap();
    let edge = edge(up, &["--send-proxy", "v2", "--forwarded", "off"]);
    for n in 150..154 {
        let out = Curl::new(edge.url()).interface(lo(n)).run();
        let (body, client) = answer(&out, &[&edge, &who]);
        let ctx = format!("{body:#}\n{}", haproxy.log());
        assert_eq!(body["client_ip"], client.ip().to_string(), "{ctx}");
        assert_eq!(body["client_port"], client.port(), "{ctx}");
        assert_eq!(body["source"], "proxy-protocol", "{ctx}");
        assert_eq!(
            body["peer"].as_str().unwrap().split(':').next(),
            Some("127.0.0.231")
        );
        let tlvs = &body["proxy_protocol"]["tlvs"];
        // The Host curl sent, which the edge wrote as AUTHORITY.
        assert_eq!(tlvs["authority"], edge.addr().to_string(), "{ctx}");
        // "edge-<pid>-<connection>", hex: the edge's id, passed on by haproxy.
        let id = hex_text(tlvs["unique_id"].as_str().expect("unique id TLV"));
        assert!(id.starts_with("edge-"), "{id}\n{ctx}");
        assert!(tlvs["crc32c"].is_string(), "{ctx}");
    }
    // haproxy verified the edge's CRC32C (a bad one closes the connection)
    // and accepted every header.
    let log = haproxy.log();
    assert!(
        !log.contains("PROXY"),
        "haproxy complained about a PROXY header\n{log}"
    );
}

/// Walks the TLVs of an IPv4 v2 header by hand: `Some(valid)` for its
/// CRC32C TLV.
fn crc_in_header(header: &[u8]) -> Option<bool> {
    let mut at = 16 + 12;
    while at + 3 <= header.len() {
        let len = usize::from(u16::from_be_bytes([header[at + 1], header[at + 2]]));
        if header[at] == 0x03 && len == 4 {
            let stored = u32::from_be_bytes(header[at + 3..at + 7].try_into().unwrap());
            let mut zeroed = header.to_vec();
            zeroed[at + 3..at + 7].fill(0);
            return Some(crc32c(&zeroed) == stored);
        }
        at += 3 + len;
    }
    None
}

/// CRC32C (Castagnoli, reflected 0x82F63B78), bit by bit: independent of
/// the crate's own checksum code.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn hex_text(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// The exact bytes the edge sends upstream with --send-proxy v2: one v2
/// header, first, whose CRC32C an independent parser (`ppp`) verifies, with
/// every TLV the edge writes; then the request, with the believed XFF.
#[test]
fn send_proxy_v2_bytes_are_one_header_then_the_request() {
    let capture = Capture::bind();
    let edge = edge(
        capture.addr(),
        &["--send-proxy", "v2", "--trust", "127.0.0.250/32"],
    );
    let out = Curl::new(edge.url())
        .interface(lo(155))
        .header("X-Forwarded-For: 6.6.6.6")
        .run();
    assert_eq!(out.status, 200, "{}\n{}", out.stderr, edge.log());
    let client = out.local_addr().unwrap();
    let got = capture.next();
    let Status::Complete(h, n) = proxy::parse(&got.bytes).expect("a valid PROXY header") else {
        panic!("partial header: {:?}", got.bytes)
    };
    assert_eq!(h.source(), Some(client));
    assert_eq!(h.destination(), Some(edge.addr()));
    assert_eq!(h.alpn(), Some(&b"http/1.1"[..]));
    assert_eq!(h.authority(), Some(edge.addr().to_string().as_bytes()));
    assert!(h.unique_id().is_some_and(|id| id.starts_with(b"edge-")));
    assert!(h.crc32c().is_some());
    // An independent parser agrees on the header's extent and source...
    let independent = ppp::v2::Header::try_from(&got.bytes[..n]).expect("ppp parses the header");
    assert_eq!(independent.header.len(), n);
    // ...and the CRC32C, recomputed here over the header with its field
    // zeroed (the spec's definition), matches.
    assert_eq!(crc_in_header(&got.bytes[..n]), Some(true));
    let request = String::from_utf8_lossy(&got.bytes[n..]);
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains(&format!("x-forwarded-for: {}\r\n", client.ip())),
        "{request}"
    );
    assert!(!request.contains("6.6.6.6"), "{request}");
    assert!(!request.contains("\r\nPROXY") && !request[1..].contains("\r\n\r\n\0\r\nQUIT"));
}

/// edge --send-proxy v1 → nginx `listen ... proxy_protocol`, which writes
/// `$proxy_protocol_addr` into X-PP-Addr → whoami reading that header from
/// nginx only: the last hop sees each curl source.
#[test]
fn send_proxy_v1_through_nginx_proxy_protocol_addr() {
    let who = whoami(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "127.0.0.232/32",
        "--header",
        "x-pp-addr",
    ]);
    let nport = free_port();
    let nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{nport} proxy_protocol;\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://{};\n\
         \x20           proxy_bind 127.0.0.232;\n\
         \x20           proxy_set_header X-PP-Addr $proxy_protocol_addr;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        who.addr()
    ));
    let up: SocketAddr = format!("127.0.0.1:{nport}").parse().unwrap();
    let edge = edge(up, &["--send-proxy", "v1", "--forwarded", "off"]);
    for n in 156..160 {
        let out = Curl::new(edge.url()).interface(lo(n)).run();
        let (body, client) = answer(&out, &[&edge, &who]);
        assert_eq!(
            body["client_ip"],
            client.ip().to_string(),
            "{body:#}\n{}",
            nginx.log()
        );
        assert_eq!(body["source"], "x-pp-addr");
        assert_eq!(
            body["peer"].as_str().unwrap().split(':').next(),
            Some("127.0.0.232")
        );
    }
}

/// edge --forwarded xff in front of whoami trusting only the edge: a forged
/// X-Forwarded-For never reaches whoami's answer (nor the wire); with
/// --append it reaches the wire, left of the client, and whoami still
/// resolves the client.
#[test]
fn forged_xff_dropped_by_default_kept_left_with_append() {
    // The edge connects upstream from 127.0.0.1; whoami trusts only that.
    let who = whoami(&["--proxy-protocol", "off", "--trust", "127.0.0.1/32"]);
    for append in [false, true] {
        let flags: &[&str] = if append {
            &["--trust", "127.0.0.250/32", "--append"]
        } else {
            &["--trust", "127.0.0.250/32"]
        };
        let e = edge(who.addr(), flags);
        let out = Curl::new(e.url())
            .interface(lo(160))
            .header("X-Forwarded-For: 6.6.6.6")
            .run();
        let (body, client) = answer(&out, &[&e, &who]);
        assert_eq!(
            body["client_ip"],
            client.ip().to_string(),
            "append={append} {body:#}"
        );
        assert_eq!(body["source"], "x-forwarded-for");
        assert!(
            !body.to_string().contains("6.6.6.6"),
            "append={append} {body:#}"
        );

        // The same through a capture: what the wire carries.
        let capture = Capture::bind();
        let e = edge(capture.addr(), flags);
        let out = Curl::new(e.url())
            .interface(lo(161))
            .header("X-Forwarded-For: 6.6.6.6")
            .run();
        assert_eq!(out.status, 200, "{}", e.log());
        let request = String::from_utf8_lossy(&capture.next().bytes).into_owned();
        let expected = if append {
            "x-forwarded-for: 6.6.6.6, 127.0.0.161\r\n"
        } else {
            "x-forwarded-for: 127.0.0.161\r\n"
        };
        assert!(request.contains(expected), "append={append}\n{request}");
    }
}

/// edge --forwarded rfc7239 → nginx passing the header on → whoami reading
/// `Forwarded` and trusting only nginx (and, for the second edge, the
/// balancer in front of it): the client (with its port, which the edge
/// writes quoted), its scheme and its host are resolved. nginx rewrites
/// `Host` to the upstream's address, so the host whoami reports can only
/// have come from the edge's `host=`.
#[test]
fn rfc7239_through_nginx_resolves_client() {
    let who = whoami(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "127.0.0.233/32",
        "--trust",
        "127.0.0.168/32",
        "--header",
        "forwarded",
    ]);
    let (nginx, nport) = {
        let port = free_port();
        let nginx = Nginx::start(&format!(
            "http {{\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://{};\n\
             \x20           proxy_bind 127.0.0.233;\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n",
            who.addr()
        ));
        (nginx, port)
    };
    let up: SocketAddr = format!("127.0.0.1:{nport}").parse().unwrap();
    let edge1 = edge(up, &["--forwarded", "rfc7239", "--trust", "127.0.0.250/32"]);
    for n in 162..165 {
        // The client forges an element and a scheme; the edge believes
        // neither (the client is not trusted) and writes what it saw.
        let out = Curl::new(edge1.url())
            .interface(lo(n))
            .header("Host: shop.example:8080")
            .header("Forwarded: for=6.6.6.6;proto=https;host=evil.example")
            .header("X-Forwarded-Proto: https")
            .run();
        let (body, client) = answer(&out, &[&edge1, &who]);
        let ctx = format!("{body:#}\n{}", nginx.log());
        assert_eq!(body["client_ip"], client.ip().to_string(), "{ctx}");
        assert_eq!(body["client_port"], client.port(), "{ctx}");
        assert_eq!(body["source"], "forwarded", "{ctx}");
        assert!(!body.to_string().contains("6.6.6.6"), "{ctx}");
        assert!(!body.to_string().contains("evil"), "{ctx}");
        assert_eq!(body["scheme"], "http", "{ctx}");
        assert_eq!(body["host"], "shop.example", "{ctx}");
        assert_eq!(body["port"], 8080, "{ctx}");
        let from = body["context"]["host_source"].as_str().unwrap_or("");
        assert!(from.starts_with("header"), "{ctx}");
    }

    // A balancer at 127.0.0.168 that terminated TLS says so; the edge
    // trusts it and passes `proto=https` on, on the client's element.
    let edge2 = edge(up, &["--forwarded", "rfc7239", "--trust", "127.0.0.168/32"]);
    let out = Curl::new(edge2.url())
        .interface(lo(168))
        .header("Host: shop.example")
        .header("X-Forwarded-For: 203.0.113.7")
        .header("X-Forwarded-Proto: https")
        .run();
    let (body, _) = answer(&out, &[&edge2, &who]);
    let ctx = format!("{body:#}\n{}", nginx.log());
    assert_eq!(body["client_ip"], "203.0.113.7", "{ctx}");
    assert_eq!(body["scheme"], "https", "{ctx}");
    assert_eq!(body["host"], "shop.example", "{ctx}");
    assert_eq!(body["port"], 443, "{ctx}");
    assert_eq!(body["context"]["base_url"], "https://shop.example", "{ctx}");
}

/// edge --forwarded xff (the default) → whoami trusting only the edge: the
/// client's scheme, host and port arrive as `X-Forwarded-Proto`, `-Host`,
/// `-Port`; a forged `X-Forwarded-Prefix` from the (untrusted) client is
/// never passed on, in either mode.
#[test]
fn xff_context_headers_reach_whoami() {
    let who = whoami(&["--proxy-protocol", "off", "--trust", "127.0.0.1/32"]);
    for flags in [
        &["--trust", "127.0.0.250/32"][..],
        &["--trust", "127.0.0.250/32", "--append"],
    ] {
        let e = edge(who.addr(), flags);
        let out = Curl::new(e.url())
            .interface(lo(169))
            .header("Host: shop.example:8080")
            .header("X-Forwarded-Proto: https")
            .header("X-Forwarded-Prefix: /evil")
            .run();
        let (body, client) = answer(&out, &[&e, &who]);
        let ctx = format!("{flags:?} {body:#}");
        assert_eq!(body["client_ip"], client.ip().to_string(), "{ctx}");
        assert_eq!(body["scheme"], "http", "{ctx}");
        assert_eq!(body["host"], "shop.example", "{ctx}");
        assert_eq!(body["port"], 8080, "{ctx}");
        assert_eq!(body["prefix"], Value::Null, "{ctx}");
        let from = body["context"]["host_source"].as_str().unwrap_or("");
        assert!(from.starts_with("header"), "{ctx}");
    }
}

/// The upstream down: 502 with a short body, from the edge itself.
#[test]
fn upstream_down_is_502() {
    // A port nothing listens on: bound but never listening, so connects
    // are refused and no other server (the edge itself) can take it.
    let hold = tokio::net::TcpSocket::new_v4().expect("socket");
    hold.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let dead: SocketAddr = hold.local_addr().expect("local addr");
    for flags in [&[][..], &["--send-proxy", "v2"]] {
        let e = edge(dead, flags);
        let out = Curl::new(e.url()).interface(lo(165)).run();
        assert_eq!(out.status, 502, "{flags:?} {}\n{}", out.stderr, e.log());
        assert_eq!(out.text(), "upstream unavailable\n");
    }
    drop(hold);
}

/// Bodies stream both ways (a 4 MiB POST echoed back as it arrives, over
/// axum's 2 MiB buffered-body limit) and a WebSocket
/// upgrade passes through the edge with the PROXY header in front: the
/// upstream's `/ws` handler resolves the client from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_websocket_upgrades_pass_through() {
    use axum::routing::post;
    let (routes, _log) = e2e_util::echo_routes();
    let app = routes.merge(
        axum::Router::new().route("/echo", post(|body: axum::body::Body| async move { body })),
    );
    // PROXY required from everyone: the edge must send it.
    let up = e2e_util::serve_made(app, realip::RealIpLayer::new(), true);
    let e = edge(up, &["--send-proxy", "v2", "--forwarded", "off"]);

    let payload: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut s = e2e_util::connect_from(lo(166), e.addr()).await;
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&payload).await.unwrap();
    let (head, mut rest) = e2e_util::read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", e.log());
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
        .await
        .expect("echo within 20 s")
        .unwrap();
    assert!(
        rest == payload,
        "echoed {} bytes of {}",
        rest.len(),
        payload.len()
    );

    let (head, text) = e2e_util::websocket_text(lo(167), e.addr(), "/ws", "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let seen = e2e_util::Seen::parse(&text);
    assert_eq!(seen.client_ip, lo(167), "{text}");
    assert_eq!(seen.source, "proxy_protocol", "{text}");
}

/// 1,000 concurrent clients, each from its own 127.0.X.Y, through
/// edge --send-proxy v2 → whoami: every answer names its own client, port
/// included. Bounded: one request each, 60 s overall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_clients_zero_mismatches() {
    const CLIENTS: usize = 1000;
    let who = whoami(&["--proxy-protocol", "required", "--trust", "127.0.0.250/32"]);
    let e = edge(who.addr(), &["--send-proxy", "v2", "--forwarded", "off"]);
    let target = e.addr();
    let mismatches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        // 127.0.1.1 .. 127.0.4.250: own source address per client.
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            1 + (i / 250) as u8,
            1 + (i % 250) as u8,
        ));
        let mismatches = mismatches.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = e2e_util::connect_from(ip, target).await;
            let local = s.local_addr().unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf);
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if v["client_ip"] != local.ip().to_string() || v["client_port"] != local.port() {
                mismatches.fetch_add(1, Ordering::Relaxed);
                eprintln!("mismatch for {local}: {text}");
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.expect("client task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .unwrap_or_else(|_| panic!("1,000 clients did not finish in 60 s\n{}", e.log()));
    assert_eq!(mismatches.load(Ordering::Relaxed), 0, "{}", who.log());
}
