//! End to end: the real `whoami` binary (`src/bin/whoami/`)
//! against real peers on loopback (curl, haproxy, nginx). Every test starts
//! its own `whoami --listen 127.0.0.1:<free port> ...`, sends requests from
//! its own 127.0.0.N and compares the JSON answer field by field with what
//! the peers really were (curl's `-w %{local_ip}:%{local_port}`, haproxy's
//! and nginx's bind addresses).
//!
//! Addresses: clients use 127.0.0.100 to 127.0.0.140, proxies (haproxy
//! `source`, nginx `proxy_bind`) 127.0.0.210 to 127.0.0.230, so they never
//! collide with the other test files' addresses.
//!
//! # Which binary runs
//!
//! The `whoami` binary (`src/bin/whoami/`, feature `cli`). When this test
//! is built with `cli` on (`--all-features`, what `scripts/check-all`
//! runs), cargo has built the binary for it and names it in
//! `CARGO_BIN_EXE_whoami`: that one runs (without `cli` cargo sets the
//! variable too, to a binary it did not build, so it is not used). Otherwise [`whoami_binary`] asks
//! cargo for it, once per test process: `$CARGO build --bin whoami` with
//! the features this test was built with plus `cli`, in the target dir
//! this test runs from (found from `std::env::current_exe()`:
//! `<target>/debug/deps/whoami_e2e-<hash>`), the path taken from cargo's
//! `--message-format=json` (`executable`). A missing `cargo` or a failed
//! build fails the tests (with cargo's output); they never skip.
//!
//! Every process (whoami, haproxy, nginx) is killed and reaped on drop,
//! also while a failed assertion unwinds; every wait has a deadline.

mod common;
mod e2e_util;

use std::fs::{self, File};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::examples::{bin_binary, wait_bounded, Server};
use common::{free_port, Curl, CurlOutput, Haproxy, Nginx, SelfSigned};
use e2e_util::lo;
use serde_json::{json, Value};
use tempfile::TempDir;

/// How long a bad-flag run gets to exit.
const STARTUP: Duration = Duration::from_secs(5);

/// The whoami server binary: cargo's own with `cli` on, else built by
/// the shared harness with `cli` added (see `common::examples`).
fn whoami_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    // Cargo names the binary in CARGO_BIN_EXE_whoami even when `cli` is
    // off and it did not build it (the path may hold a stale binary, or
    // none): only believe it with `cli` on.
    BINARY.get_or_init(|| match option_env!("CARGO_BIN_EXE_whoami") {
        Some(built) if cfg!(feature = "cli") => PathBuf::from(built),
        _ => bin_binary("whoami", &["cli"]),
    })
}

/// A running `whoami --listen 127.0.0.1:<port> <flags>` (or `--config
/// FILE`); killed and reaped on drop. Its stdout+stderr (tracing, at debug
/// for realip) go to a log shown in failure messages.
struct Whoami {
    server: Server,
    addr: SocketAddr,
    // The config file's directory, removed after the server is reaped.
    _config: Option<TempDir>,
}

impl Whoami {
    /// Starts whoami with `flags` (after `--listen`) and waits until it
    /// listens; fails at once if it exits.
    fn start(flags: &[&str]) -> Whoami {
        Self::start_in(None, flags)
    }

    /// Starts whoami with `--config FILE` (FILE holding `listen = "<free
    /// port>"` and then `config`) followed by `flags`, so the address comes
    /// from the file too.
    fn start_with_config(config: &str, flags: &[&str]) -> Whoami {
        Self::start_in(Some(config), flags)
    }

    fn start_in(config: Option<&str>, flags: &[&str]) -> Whoami {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
        let (mut args, dir): (Vec<String>, _) = match config {
            Some(config) => {
                let dir = tempfile::Builder::new()
                    .prefix("realip-whoami-config-")
                    .tempdir()
                    .expect("create config temp dir");
                let path = dir.path().join("whoami.toml");
                fs::write(&path, format!("listen = \"{addr}\"\n{config}"))
                    .expect("write config file");
                (
                    vec!["--config".into(), path.display().to_string()],
                    Some(dir),
                )
            }
            None => (vec!["--listen".into(), addr.to_string()], None),
        };
        args.extend(flags.iter().map(|f| f.to_string()));
        Whoami {
            server: Server::start("whoami", whoami_binary(), addr, &args),
            addr,
            _config: dir,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn log(&self) -> String {
        self.server.log()
    }

    /// Panics (with whoami's log) unless whoami is still running.
    fn assert_running(&mut self) {
        self.server.assert_running();
    }
}

/// `whoami <args>` that is expected to exit by itself: exit code, stdout, stderr.
fn run_whoami(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(whoami_binary())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .expect("spawn whoami");
    let status = wait_bounded(&mut child, STARTUP)
        .unwrap_or_else(|| panic!("whoami {args:?} did not exit within {STARTUP:?}"));
    (
        status.code().unwrap_or(-1),
        fs::read_to_string(&out_path).unwrap_or_default(),
        fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

/// curl from 127.0.0.`n` to `url` with header lines.
fn curl_from(n: u8, url: &str, headers: &[&str]) -> Curl {
    headers
        .iter()
        .fold(Curl::new(url).interface(lo(n)), |c, h| c.header(h))
}

/// A 200 `application/json` answer: (the JSON without its client-context
/// fields, curl's own source address). Those fields are checked for shape
/// here (a request without context headers); [`answer_full`] keeps them.
fn answer(out: &CurlOutput, whoami: &Whoami) -> (Value, SocketAddr) {
    let (mut body, client) = answer_full(out, whoami);
    let map = body.as_object_mut().expect("a JSON object");
    let context: Vec<(String, Value)> = ["scheme", "host", "port", "prefix", "context", "uri"]
        .iter()
        .map(|k| {
            let v = map
                .remove(*k)
                .unwrap_or_else(|| panic!("no {k:?} in {map:?}"));
            ((*k).to_owned(), v)
        })
        .collect();
    let get = |k: &str| &context.iter().find(|(n, _)| n == k).unwrap().1;
    assert!(
        matches!(get("scheme").as_str(), Some("http" | "https")),
        "{context:?}"
    );
    assert!(get("host").is_string(), "{context:?}");
    assert!(get("port").is_u64(), "{context:?}");
    assert!(get("prefix").is_null(), "{context:?}");
    assert_eq!(get("context")["stop"], "followed", "{context:?}");
    (body, client)
}

/// [`answer`] with every field.
fn answer_full(out: &CurlOutput, whoami: &Whoami) -> (Value, SocketAddr) {
    assert!(
        out.exit == 0 && out.status == 200,
        "expected HTTP 200, got exit {} status {}\n{}\n{}",
        out.exit,
        out.status,
        out.stderr,
        whoami.log()
    );
    assert_eq!(
        out.info["content_type"], "application/json",
        "content type\n{}",
        out.stderr
    );
    let client = out.local_addr().expect("curl reports its local address");
    let mut body: Value = serde_json::from_slice(&out.body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", out.text()));
    // Always present; without --trust-url/--trust-provider it is empty and
    // left out of the comparisons.
    let sources = body.get("trust_sources").cloned();
    assert!(sources.is_some(), "no trust_sources: {body}");
    if sources == Some(json!([])) {
        body.as_object_mut().map(|o| o.remove("trust_sources"));
    }
    (body, client)
}

/// Asserts curl got no HTTP response at all: the connection was closed
/// (empty reply) or reset before any byte of a response.
fn assert_closed_without_response(out: &CurlOutput, whoami: &Whoami) {
    assert!(
        matches!(out.exit, 52 | 56) && out.status == 0 && out.body.is_empty(),
        "expected the connection closed without a response (curl exit 52/56), \
         got exit {} status {} body {:?}\n{}\n{}",
        out.exit,
        out.status,
        out.text(),
        out.stderr,
        whoami.log()
    );
}

/// The `peer` field, parsed.
fn peer_of(body: &Value) -> SocketAddr {
    body["peer"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("peer is not ip:port in {body}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => panic!("IPv4 expected, got {v6}"),
    }
}

/// What haproxy's `unique-id-format %{+X}o\ %ci:%cp` makes of `client`:
/// address and port in upper-case hex.
fn haproxy_hex_id(client: SocketAddr) -> String {
    format!("{:08X}:{:04X}", u32::from(v4(client.ip())), client.port())
}

/// The answer to a request without forwarded headers, straight from curl
/// at `client`, whose address is trusted (loopback): the socket peer.
fn expected_socket(client: SocketAddr) -> Value {
    json!({
        "client_ip": client.ip().to_string(),
        "client_port": client.port(),
        "source": "socket",
        "peer": client.to_string(),
        "stop": "header_absent",
        "conclusive": true,
        "hops": [client.ip().to_string()],
        "proxy_protocol": null,
    })
}

/// The answer to `curl --haproxy-protocol` from `client` (a trusted
/// loopback address) to whoami on 127.0.0.1:`port`, without forwarded
/// headers: the v1 header's source, which is curl itself.
fn expected_curl_v1(client: SocketAddr, port: u16) -> Value {
    json!({
        "client_ip": client.ip().to_string(),
        "client_port": client.port(),
        "source": "proxy-protocol",
        "peer": client.to_string(),
        "stop": "header_absent",
        "conclusive": true,
        // The socket peer, then the PROXY source (both curl).
        "hops": [client.ip().to_string(), client.ip().to_string()],
        "proxy_protocol": {
            "version": 1,
            "command": "proxy",
            "source": client.to_string(),
            "destination": format!("127.0.0.1:{port}"),
            "tlvs": {},
        },
    })
}

/// (1) Defaults (only `--listen`): PROXY optional from loopback/private,
/// `X-Forwarded-For` believed from loopback/private. Without a header the
/// client is the socket peer; with one, the walk passes the trusted
/// loopback peer and the private 10.1.1.1 and stops at 203.0.113.9.
#[test]
fn defaults_socket_peer_then_trusted_x_forwarded_for() {
    let whoami = Whoami::start(&[]);

    let out = curl_from(100, &whoami.url(), &[]).run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(100));
    assert_eq!(body, expected_socket(client));
    assert_eq!(body["client_ip"], "127.0.0.100");

    let out = curl_from(
        101,
        &whoami.url(),
        &["X-Forwarded-For: 203.0.113.9, 10.1.1.1"],
    )
    .run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(101));
    assert_eq!(
        body,
        json!({
            "client_ip": "203.0.113.9",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "untrusted_hop",
            "conclusive": true,
            "hops": ["127.0.0.101", "10.1.1.1", "203.0.113.9"],
            "proxy_protocol": null,
        })
    );
}

/// (2) `curl --haproxy-protocol` (PROXY v1) with the default flags: the
/// header's source decides, and the header is reported as sent. The v1
/// source (loopback) is itself a trusted proxy, so an `X-Forwarded-For`
/// after it is walked next.
#[test]
fn curl_proxy_v1_header_decides() {
    let whoami = Whoami::start(&[]);
    let destination = format!("127.0.0.1:{}", whoami.port());

    let out = curl_from(102, &whoami.url(), &[]).haproxy_protocol().run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(102));
    assert_eq!(body, expected_curl_v1(client, whoami.port()));
    assert_eq!(body["client_ip"], "127.0.0.102");

    let out = curl_from(103, &whoami.url(), &["X-Forwarded-For: 198.51.100.7"])
        .haproxy_protocol()
        .run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(103));
    assert_eq!(
        body,
        json!({
            "client_ip": "198.51.100.7",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "untrusted_hop",
            "conclusive": true,
            "hops": ["127.0.0.103", "127.0.0.103", "198.51.100.7"],
            "proxy_protocol": {
                "version": 1,
                "command": "proxy",
                "source": client.to_string(),
                "destination": destination,
                "tlvs": {},
            },
        })
    );
}

/// The PROXY v2 header haproxy 2.6 writes for a plaintext TCP4 connection
/// with `proxy-v2-options crc32c,unique-id,authority` and no TLS (so no
/// ALPN and no AUTHORITY TLV), in haproxy's TLV order (CRC32C first, then
/// UNIQUE_ID), CRC field zeroed: the checksum whoami reports must be
/// CRC32C of exactly these bytes (PROXY spec 2.2.5).
fn haproxy_v2_crc(src: SocketAddr, dst: SocketAddr, unique_id: &[u8]) -> u32 {
    let mut tlvs = vec![0x03, 0x00, 0x04, 0, 0, 0, 0];
    tlvs.push(0x05);
    tlvs.extend_from_slice(&u16::try_from(unique_id.len()).unwrap().to_be_bytes());
    tlvs.extend_from_slice(unique_id);
    let mut header = realip::proxy::v2::SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&u16::try_from(12 + tlvs.len()).unwrap().to_be_bytes());
    header.extend_from_slice(&v4(src.ip()).octets());
    header.extend_from_slice(&v4(dst.ip()).octets());
    header.extend_from_slice(&src.port().to_be_bytes());
    header.extend_from_slice(&dst.port().to_be_bytes());
    header.extend_from_slice(&tlvs);
    crc32c::crc32c(&header)
}

/// (3) client → haproxy (`source 127.0.0.210`, `send-proxy-v2` with CRC32C,
/// UNIQUE_ID and AUTHORITY) → `whoami --proxy-protocol required
/// --proxy-from 127.0.0.210/32`: the client is curl, the peer is haproxy,
/// the TLVs are reported as haproxy wrote them.
#[test]
fn haproxy_send_proxy_v2_with_tlvs() {
    let whoami = Whoami::start(&[
        "--proxy-protocol",
        "required",
        "--proxy-from",
        "127.0.0.210/32",
    ]);
    let hp = free_port();
    let haproxy = Haproxy::start(&format!(
        "frontend fe\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   unique-id-format %{{+X}}o\\ %ci:%cp\n\
         \x20   default_backend whoami\n\
         backend whoami\n\
         \x20   server w1 {} source 127.0.0.210 send-proxy-v2 proxy-v2-options crc32c,unique-id,authority\n",
        whoami.addr
    ));

    for n in [104, 114] {
        let out = curl_from(n, &format!("http://127.0.0.1:{hp}/"), &[]).run();
        let (body, client) = answer(&out, &whoami);
        assert_eq!(client.ip(), lo(n));
        let peer = peer_of(&body);
        assert_eq!(peer.ip(), lo(210), "the socket peer is haproxy: {body}");
        let destination: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
        let unique_id = haproxy_hex_id(client);
        let crc = haproxy_v2_crc(client, destination, unique_id.as_bytes());
        assert_eq!(
            body,
            json!({
                "client_ip": client.ip().to_string(),
                "client_port": client.port(),
                "source": "proxy-protocol",
                "peer": peer.to_string(),
                "stop": "header_absent",
                "conclusive": true,
                "hops": ["127.0.0.210", client.ip().to_string()],
                "proxy_protocol": {
                    "version": 2,
                    "command": "proxy",
                    "source": client.to_string(),
                    "destination": destination.to_string(),
                    // No AUTHORITY: haproxy 2.6 takes it from TLS SNI
                    // (see the TLS test below).
                    "tlvs": {
                        "unique_id": hex(unique_id.as_bytes()),
                        "crc32c": format!("{crc:08x}"),
                    },
                },
            }),
            "haproxy log:\n{}",
            haproxy.log()
        );
    }
}

/// (3b) The same through a TLS frontend (haproxy terminates TLS, SNI
/// `whoami.test`, client certificate verified against its CA): ALPN,
/// AUTHORITY (the SNI) and the SSL TLV with version, client CN, cipher and
/// the frontend certificate's algorithms reach whoami's JSON.
#[test]
fn haproxy_tls_frontend_alpn_authority_ssl_tlvs() {
    let whoami = Whoami::start(&[
        "--proxy-protocol",
        "required",
        "--proxy-from",
        "127.0.0.211/32",
    ]);
    let server = SelfSigned::new("whoami.test", &["whoami.test"]);
    let client_cert = SelfSigned::new("whoami-client", &["whoami-client"]);
    let hp = free_port();
    let haproxy = Haproxy::start(&format!(
        "frontend fe\n\
         \x20   bind 127.0.0.1:{hp} ssl crt {crt} alpn http/1.1 ca-file {ca} verify optional\n\
         \x20   unique-id-format %{{+X}}o\\ %ci:%cp\n\
         \x20   default_backend whoami\n\
         backend whoami\n\
         \x20   server w1 {addr} source 127.0.0.211 send-proxy-v2 proxy-v2-options \
         crc32c,unique-id,authority,ssl,cert-cn,ssl-cipher,cert-sig,cert-key\n",
        crt = server.combined_path().display(),
        ca = client_cert.cert_path().display(),
        addr = whoami.addr,
    ));

    let out = Curl::new(format!("https://whoami.test:{hp}/"))
        .resolve("whoami.test", hp, lo(1))
        .interface(lo(105))
        .insecure()
        .client_cert(&client_cert.cert_path(), &client_cert.key_path())
        .run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(105));
    let (tls_version, cipher) = out.tls().expect("curl traces the TLS session");
    assert_eq!(out.alpn().as_deref(), Some("http/1.1"));
    let peer = peer_of(&body);
    assert_eq!(peer.ip(), lo(211), "the socket peer is haproxy: {body}");
    let tlvs = &body["proxy_protocol"]["tlvs"];
    let crc = tlvs["crc32c"].as_str().unwrap_or_default();
    assert!(
        crc.len() == 8
            && crc
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "crc32c is 8 lower-case hex digits (the header was accepted, so it matched): {body}"
    );
    assert_eq!(
        body,
        json!({
            "client_ip": "127.0.0.105",
            "client_port": client.port(),
            "source": "proxy-protocol",
            "peer": peer.to_string(),
            "stop": "header_absent",
            "conclusive": true,
            "hops": ["127.0.0.211", "127.0.0.105"],
            "proxy_protocol": {
                "version": 2,
                "command": "proxy",
                "source": client.to_string(),
                "destination": format!("127.0.0.1:{hp}"),
                "tlvs": {
                    "alpn": "http/1.1",
                    "authority": "whoami.test",
                    "unique_id": hex(haproxy_hex_id(client).as_bytes()),
                    "crc32c": crc,
                    "ssl": {
                        "version": tls_version,
                        "cn": "whoami-client",
                        "cipher": cipher,
                        // rcgen's default key: ECDSA P-256 with SHA-256,
                        // in OpenSSL's names.
                        "sig_alg": "ecdsa-with-SHA256",
                        "key_alg": "EC256",
                        "verified": true,
                    },
                },
            },
        }),
        "haproxy log:\n{}",
        haproxy.log()
    );
}

/// (4) `--proxy-protocol required`: a client without a header gets its
/// connection closed without a response; a client whose header never
/// comes is cut at `--proxy-timeout`; neither delays a client with a
/// header, which is served meanwhile.
#[test]
fn required_closes_clients_without_header_and_serves_others() {
    let mut whoami = Whoami::start(&["--proxy-protocol", "required", "--proxy-timeout", "3000"]);
    // A silent client (no byte at all) holds its handshake open.
    let started = Instant::now();
    let mut silent = TcpStream::connect_timeout(&whoami.addr, STARTUP).expect("connect");

    let out = curl_from(106, &whoami.url(), &[])
        .max_time(Duration::from_secs(5))
        .run();
    assert_closed_without_response(&out, &whoami);

    let out = curl_from(107, &whoami.url(), &[]).haproxy_protocol().run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(107));
    assert_eq!(body, expected_curl_v1(client, whoami.port()));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served while the silent client was still pending"
    );

    // The silent client is closed at the 3 s header deadline, not before.
    silent
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(&read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "silent client: expected EOF or reset at the deadline, got {read:?} after {waited:?}\n{}",
        whoami.log()
    );
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected at the 3 s --proxy-timeout"
    );
    whoami.assert_running();
}

/// (5) `--proxy-from 127.0.0.212/32` (PROXY optional): a header from any
/// other source closes the connection; the same source without a header
/// is served as itself, and 127.0.0.212 with a header is believed.
#[test]
fn proxy_header_from_outside_proxy_from_is_rejected() {
    let whoami = Whoami::start(&["--proxy-from", "127.0.0.212/32"]);

    let out = curl_from(108, &whoami.url(), &[])
        .haproxy_protocol()
        .max_time(Duration::from_secs(5))
        .run();
    assert_closed_without_response(&out, &whoami);

    let out = curl_from(108, &whoami.url(), &[]).run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(108));
    assert_eq!(body, expected_socket(client));

    let out = curl_from(212, &whoami.url(), &[]).haproxy_protocol().run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(212));
    assert_eq!(body, expected_curl_v1(client, whoami.port()));
}

/// `--proxy-protocol required --proxy-from 127.0.0.212/32`: naming the
/// balancer's range leaves every other peer in reject mode (the library's
/// default once a range is named, which whoami relies on): a forged header
/// from 127.0.0.109 closes the connection, the same client without a
/// header is served as itself, and 127.0.0.212 must send one.
#[test]
fn required_from_a_range_rejects_forged_headers_from_elsewhere() {
    let mut whoami = Whoami::start(&[
        "--proxy-protocol",
        "required",
        "--proxy-from",
        "127.0.0.212/32",
    ]);
    let out = curl_from(109, &whoami.url(), &[])
        .haproxy_protocol()
        .max_time(Duration::from_secs(5))
        .run();
    assert_closed_without_response(&out, &whoami);

    let out = curl_from(109, &whoami.url(), &[]).run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(109));
    assert_eq!(body, expected_socket(client));

    let out = curl_from(212, &whoami.url(), &[]).haproxy_protocol().run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(body, expected_curl_v1(client, whoami.port()));
    whoami.assert_running();
}

/// (6) client → nginx http (`proxy_bind 127.0.0.213`,
/// `$proxy_add_x_forwarded_for`) → `whoami --proxy-protocol off --trust
/// 127.0.0.213/32`: a forged `X-Forwarded-For: 6.6.6.6` reaches whoami
/// left of the client nginx appended, and never wins.
#[test]
fn nginx_x_forwarded_for_forgery_never_wins() {
    let whoami = Whoami::start(&["--proxy-protocol", "off", "--trust", "127.0.0.213/32"]);
    let (nginx, port) = Nginx::xff_proxy(whoami.addr, lo(213));

    for (n, forged) in [(110, "6.6.6.6"), (111, "6.6.6.6, 127.0.0.213")] {
        let out = curl_from(
            n,
            &format!("http://127.0.0.1:{port}/"),
            &[&format!("X-Forwarded-For: {forged}")],
        )
        .run();
        let (body, client) = answer(&out, &whoami);
        assert_eq!(client.ip(), lo(n));
        let peer = peer_of(&body);
        assert_eq!(peer.ip(), lo(213), "the socket peer is nginx: {body}");
        assert_eq!(
            body,
            json!({
                "client_ip": client.ip().to_string(),
                "client_port": null,
                "source": "x-forwarded-for",
                "peer": peer.to_string(),
                "stop": "untrusted_hop",
                "conclusive": true,
                "hops": ["127.0.0.213", client.ip().to_string()],
                "proxy_protocol": null,
            }),
            "forged {forged:?}\nnginx log:\n{}",
            nginx.log()
        );
    }
}

/// (7a) `--no-recursive` takes one step left: with loopback trusted and
/// `X-Forwarded-For: 203.0.113.9, 127.0.0.50`, the recursive walk passes
/// the trusted 127.0.0.50 to 203.0.113.9; the one-step walk stops at it.
#[test]
fn no_recursive_takes_one_step() {
    let header = "X-Forwarded-For: 203.0.113.9, 127.0.0.50";
    let recursive = Whoami::start(&["--proxy-protocol", "off", "--trust", "loopback"]);
    let out = curl_from(120, &recursive.url(), &[header]).run();
    let (body, client) = answer(&out, &recursive);
    assert_eq!(
        body,
        json!({
            "client_ip": "203.0.113.9",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "untrusted_hop",
            "conclusive": true,
            "hops": ["127.0.0.120", "127.0.0.50", "203.0.113.9"],
            "proxy_protocol": null,
        })
    );

    let one_step = Whoami::start(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "loopback",
        "--no-recursive",
    ]);
    let out = curl_from(121, &one_step.url(), &[header]).run();
    let (body, client) = answer(&out, &one_step);
    assert_eq!(
        body,
        json!({
            "client_ip": "127.0.0.50",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "single_step",
            "conclusive": true,
            "hops": ["127.0.0.121", "127.0.0.50"],
            "proxy_protocol": null,
        })
    );
}

/// (7b) `--hops 2` (two proxies in front, the socket peer first): the
/// client is the 2nd entry from the right, whatever the trusted ranges
/// say; a chain too short fails closed to the nearest hop.
#[test]
fn hops_two_counts_proxies() {
    let header = "X-Forwarded-For: 203.0.113.9, 198.51.100.1, 192.0.2.1";
    // Defaults (private + loopback trusted): 192.0.2.1 is not private.
    let ranges = Whoami::start(&["--proxy-protocol", "off"]);
    let out = curl_from(130, &ranges.url(), &[header]).run();
    let (body, _) = answer(&out, &ranges);
    assert_eq!(body["client_ip"], "192.0.2.1", "{body}");
    assert_eq!(body["stop"], "untrusted_hop", "{body}");

    let hops = Whoami::start(&["--proxy-protocol", "off", "--hops", "2"]);
    let out = curl_from(131, &hops.url(), &[header]).run();
    let (body, client) = answer(&out, &hops);
    assert_eq!(
        body,
        json!({
            "client_ip": "198.51.100.1",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "hop_count",
            "conclusive": true,
            "hops": ["127.0.0.131", "192.0.2.1", "198.51.100.1"],
            "proxy_protocol": null,
        })
    );

    // One entry: that is the second proxy's address, the client's entry
    // is missing: fail closed to the socket peer.
    let out = curl_from(132, &hops.url(), &["X-Forwarded-For: 198.51.100.1"]).run();
    let (body, client) = answer(&out, &hops);
    assert_eq!(
        body,
        json!({
            "client_ip": "127.0.0.132",
            "client_port": client.port(),
            "source": "socket",
            "peer": client.to_string(),
            "stop": "too_short",
            "conclusive": false,
            "hops": ["127.0.0.132", "198.51.100.1"],
            "proxy_protocol": null,
        })
    );

    // No header at all: too short a chain as well, fail closed to the peer.
    let out = curl_from(133, &hops.url(), &[]).run();
    let (body, client) = answer(&out, &hops);
    assert_eq!(
        body,
        json!({
            "client_ip": "127.0.0.133",
            "client_port": client.port(),
            "source": "socket",
            "peer": client.to_string(),
            "stop": "too_short",
            "conclusive": false,
            "hops": ["127.0.0.133"],
            "proxy_protocol": null,
        })
    );
}

/// (8) Bad flags exit 2 with a message on stderr naming the flag, before
/// listening (clap's messages for what clap checks, whoami's for the
/// policy it builds); `--help` exits 0 and lists every flag.
#[test]
fn bad_flags_exit_2_and_help_exits_0() {
    let listen = format!("127.0.0.1:{}", free_port());
    for (args, message) in [
        (&["--hops", "0"][..], "whoami: policy: "),
        (
            &["--trust", "nonsense"],
            "error: invalid value 'nonsense' for '--trust <CIDR|loopback|private>': ",
        ),
        (
            &["--proxy-protocol", "maybe"],
            "error: invalid value 'maybe' for '--proxy-protocol <MODE>'\n  \
             [possible values: off, optional, required]",
        ),
        (
            &["--hops", "two"],
            "error: invalid value 'two' for '--hops <N>'",
        ),
        (
            &["--listen", "nowhere"],
            "error: invalid value 'nowhere' for '--listen <ADDR>'",
        ),
        (&["--hops", "2", "--trust", "private"], "whoami: policy: "),
        (&["--nope"], "error: unexpected argument '--nope' found"),
        (
            &["--header"],
            "error: a value is required for '--header <NAME>'",
        ),
        (
            &["--header", "x-real-ip", "--header", "x-forwarded-for"],
            "error: the argument '--header <NAME>' cannot be used multiple times",
        ),
        (
            &["--trust-provider", "akamai"],
            "error: invalid value 'akamai' for '--trust-provider <NAME[=URL]>': \
             `akamai` is none of cloudflare, cloudfront, gcp, fastly",
        ),
        (
            &[
                "--trust-provider",
                "gcp",
                "--trust-provider",
                "gcp=http://127.0.0.1:9/",
            ],
            "whoami: --trust-provider: `gcp` given twice",
        ),
        (
            &["--trust-url", "ftp://127.0.0.1/list"],
            "error: invalid value 'ftp://127.0.0.1/list' for '--trust-url <URL>'",
        ),
        (
            &["--refresh", "0"],
            "error: invalid value '0' for '--refresh <SECS>'",
        ),
        (
            &["--max-age", "soon"],
            "error: invalid value 'soon' for '--max-age <SECS>'",
        ),
    ] {
        // A free port, so a flag wrongly accepted would show as listening.
        let mut full = if args.contains(&"--listen") {
            vec![]
        } else {
            vec!["--listen", &listen]
        };
        full.extend_from_slice(args);
        let (code, stdout, stderr) = run_whoami(&full);
        assert_eq!(
            code, 2,
            "{args:?}: exit code\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(
            stderr.starts_with(message)
                && (stderr.ends_with("Run with --help for usage.\n")
                    || stderr.ends_with("For more information, try '--help'.\n")),
            "{args:?}: stderr should start with {message:?}: {stderr:?}"
        );
        assert!(
            !stdout.contains("whoami listening"),
            "{args:?}: must not start: {stdout}"
        );
    }

    let (code, stdout, stderr) = run_whoami(&["--help"]);
    assert_eq!(code, 0, "--help: exit code\n{stderr}");
    assert!(stdout.starts_with("whoami: "), "{stdout}");
    for flag in [
        "--listen <ADDR>",
        "--proxy-protocol <MODE>",
        "- off:",
        "- optional:",
        "- required:",
        "--proxy-from <CIDR>",
        "--trust <CIDR|loopback|private>",
        "--header <NAME>",
        "--no-recursive",
        "--hops <N>",
        "--proxy-timeout <MS>",
        "--context <off|on>",
        "--symmetric",
        "--allowed-host <NAME>",
        "--rewrite-uri",
        "--trust-url <URL>",
        "--trust-provider <NAME[=URL]>",
        "--refresh <SECS>",
        "--ranges-cache <DIR>",
        "--max-age <SECS>",
        "--help",
    ] {
        assert!(stdout.contains(flag), "--help lacks {flag}:\n{stdout}");
    }
}

/// (9) The client context through nginx terminating TLS in front of
/// whoami: scheme, host, port and prefix from nginx's headers, the
/// client's forged ones never; `--context off`, `--allowed-host` and
/// `--rewrite-uri` change what whoami answers as they say.
#[test]
fn nginx_tls_context_and_flags() {
    let cert = SelfSigned::new("shop.example", &["shop.example"]);
    let forged = [
        "X-Forwarded-Proto: http",
        "X-Forwarded-Host: evil.example",
        "X-Forwarded-Port: 1",
        "X-Forwarded-Prefix: /evil",
    ];
    for (flags, bind) in [
        (
            &["--proxy-protocol", "off", "--trust", "127.0.0.214/32"][..],
            214u8,
        ),
        (
            &[
                "--proxy-protocol",
                "off",
                "--trust",
                "127.0.0.215/32",
                "--context",
                "off",
            ],
            215,
        ),
        (
            &[
                "--proxy-protocol",
                "off",
                "--trust",
                "127.0.0.216/32",
                "--allowed-host",
                "*.other.example",
            ],
            216,
        ),
        (
            &[
                "--proxy-protocol",
                "off",
                "--trust",
                "127.0.0.217/32",
                "--rewrite-uri",
                "--symmetric",
            ],
            217,
        ),
    ] {
        let whoami = Whoami::start(flags);
        let port = free_port();
        let nginx = Nginx::start(&format!(
            "http {{\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port} ssl;\n\
             \x20       ssl_certificate {cert};\n\
             \x20       ssl_certificate_key {key};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://{app};\n\
             \x20           proxy_bind 127.0.0.{bind};\n\
             \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             \x20           proxy_set_header X-Forwarded-Proto $scheme;\n\
             \x20           proxy_set_header X-Forwarded-Host $host;\n\
             \x20           proxy_set_header X-Forwarded-Port $server_port;\n\
             \x20           proxy_set_header X-Forwarded-Prefix /shop;\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n",
            cert = cert.cert_path().display(),
            key = cert.key_path().display(),
            app = whoami.addr,
        ));
        let n = bind - 214 + 134;
        let out = curl_from(n, &format!("https://shop.example:{port}/p?q=1"), &forged)
            .resolve("shop.example", port, lo(1))
            .insecure()
            .run();
        let (body, client) = answer_full(&out, &whoami);
        assert_eq!(client.ip(), lo(n));
        assert_eq!(body["client_ip"], client.ip().to_string(), "{body}");
        let context = &body["context"];
        let what = format!("{flags:?}: {body}\nnginx log:\n{}", nginx.log());
        match bind {
            215 => {
                for k in ["scheme", "host", "port", "prefix", "context"] {
                    assert_eq!(body[k], Value::Null, "{what}");
                }
                assert_eq!(body["uri"], "/p?q=1", "{what}");
            }
            216 => {
                // The forwarded host is refused: the request's own Host
                // (nginx's upstream address) stands; scheme and port are
                // still nginx's (its X-Forwarded-Port, not the host's).
                assert_eq!(body["scheme"], "https", "{what}");
                assert_eq!(body["host"], "127.0.0.1", "{what}");
                assert_eq!(body["port"], port, "{what}");
                assert_eq!(context["port_source"], "header (hop 1)", "{what}");
                assert_eq!(context["host_rejected"], true, "{what}");
                assert_eq!(context["host_source"], "request", "{what}");
            }
            _ => {
                assert_eq!(body["scheme"], "https", "{what}");
                assert_eq!(body["host"], "shop.example", "{what}");
                assert_eq!(body["port"], port, "{what}");
                assert_eq!(body["prefix"], "/shop", "{what}");
                assert_eq!(
                    context,
                    &json!({
                        "scheme_source": "header (hop 1)",
                        "host_source": "header (hop 1)",
                        "port_source": "header (hop 1)",
                        "prefix_source": "header (hop 1)",
                        "stop": "followed",
                        "ignored": [],
                        "host_rejected": false,
                        "base_url": format!("https://shop.example:{port}/shop"),
                    }),
                    "{what}"
                );
                let uri = if bind == 217 {
                    format!("https://shop.example:{port}/p?q=1")
                } else {
                    "/p?q=1".to_owned()
                };
                assert_eq!(body["uri"], uri, "{what}");
            }
        }
    }
}

/// `--trust-provider cloudflare=URL` and `--trust-url URL` against two
/// local origins (the real Cloudflare API snapshot plus one loopback
/// address; a one-line plain list): each list's ranges are trusted for
/// `CF-Connecting-IP`, the default private and loopback ranges are not,
/// `trust_sources` reports both, and a failing refresh is reported while
/// the last good list keeps deciding.
#[cfg(feature = "fetch")]
#[test]
fn trusted_lists_from_local_origins() {
    use common::{Answer, Origin};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut api: Value =
        serde_json::from_str(include_str!("fixtures/ranges/cloudflare-api-ips.json")).unwrap();
    api["result"]["ipv4_cidrs"]
        .as_array_mut()
        .unwrap()
        .push("127.0.0.101/32".into());
    let cf = rt.block_on(Origin::http(Answer::body(api.to_string())));
    let plain = rt.block_on(Origin::http(Answer::body("# ours\n127.0.0.102/32\n")));
    let cache = tempfile::tempdir().expect("cache dir");
    let provider = format!("cloudflare={}", cf.url("/client/v4/ips"));
    let list = plain.url("/ips.txt");
    let whoami = Whoami::start(&[
        "--header",
        "cf-connecting-ip",
        "--trust-provider",
        &provider,
        "--trust-url",
        &list,
        "--refresh",
        "1",
        "--ranges-cache",
        cache.path().to_str().unwrap(),
    ]);
    let ask = |n: u8| {
        let out = curl_from(n, &whoami.url(), &["CF-Connecting-IP: 203.0.113.9"]).run();
        answer(&out, &whoami).0
    };
    let body = ask(101);
    assert_eq!(body["client_ip"], "203.0.113.9", "{body}");
    assert_eq!(ask(102)["client_ip"], "203.0.113.9");
    // Loopback is not trusted by default once lists are given.
    assert_eq!(ask(103)["client_ip"], "127.0.0.103");
    let sources = body["trust_sources"].as_array().unwrap().clone();
    assert_eq!(sources.len(), 2, "{body}");
    assert_eq!(sources[0]["name"], "cloudflare");
    assert_eq!(sources[0]["ranges"], 23);
    assert_eq!(sources[0]["error"], Value::Null);
    assert!(sources[0]["age_s"].as_u64().unwrap() < 60);
    assert!(sources[1]["name"].as_str().unwrap().starts_with("url-"));
    assert_eq!(sources[1]["ranges"], 1);

    // The plain list's server fails: reported, and its last list stays.
    plain.set(Answer::Status(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = ask(102);
        assert_eq!(body["client_ip"], "203.0.113.9", "{body}");
        let s = &body["trust_sources"][1];
        if s["error"] == "server answered HTTP 500" {
            assert_eq!(s["ranges"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no error reported: {body}\n{}",
            whoami.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert!(cache.path().join("cloudflare.body").is_file());
}

/// Built without `fetch`, each list flag (and each of its options) exits
/// 2 before listening, saying how to build whoami with it: none is
/// silently ignored, so whoami never comes up trusting other proxies than
/// the ones asked for.
#[cfg(not(feature = "fetch"))]
#[test]
fn list_flags_without_fetch_exit_2_with_a_hint() {
    let listen = format!("127.0.0.1:{}", free_port());
    for args in [
        &["--trust-provider", "cloudflare"][..],
        &["--trust-url", "http://127.0.0.1:9/ips.txt"],
        &["--refresh", "60"],
        &["--ranges-cache", "/nonexistent"],
        &["--max-age", "60"],
    ] {
        let mut full = vec!["--listen", &listen];
        full.extend_from_slice(args);
        let (code, stdout, stderr) = run_whoami(&full);
        assert_eq!(code, 2, "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        assert!(
            stderr.starts_with("whoami: --trust-url, --trust-provider, ")
                && stderr.contains("need the `fetch` feature (cargo run --features cli,fetch"),
            "{args:?}: {stderr:?}"
        );
        assert!(!stdout.contains("whoami listening"), "{args:?}: {stdout}");
    }
}

/// The list keys from the file: `trust-provider` (`NAME=URL`) and
/// `trust-url` lists are trusted, `trust` becomes the live set's base,
/// loopback is not trusted by default, `ranges-cache` holds both lists,
/// and with `refresh = 1` a changed plain list replaces the old one.
#[cfg(feature = "fetch")]
#[test]
fn config_file_trusted_lists() {
    use common::{Answer, Origin};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut api: Value =
        serde_json::from_str(include_str!("fixtures/ranges/cloudflare-api-ips.json")).unwrap();
    api["result"]["ipv4_cidrs"]
        .as_array_mut()
        .unwrap()
        .push("127.0.0.136/32".into());
    let cf = rt.block_on(Origin::http(Answer::body(api.to_string())));
    let plain = rt.block_on(Origin::http(Answer::body("127.0.0.137/32\n")));
    let cache = tempfile::tempdir().expect("cache dir");
    let config = format!(
        "header = \"cf-connecting-ip\"\n\
         trust = [\"127.0.0.138/32\"]\n\
         trust-provider = [\"cloudflare={}\"]\n\
         trust-url = [\"{}\"]\n\
         refresh = 1\n\
         max-age = 3600\n\
         ranges-cache = '{}'\n",
        cf.url("/client/v4/ips"),
        plain.url("/ips.txt"),
        cache.path().display()
    );
    let whoami = Whoami::start_with_config(&config, &[]);
    let ask = |n: u8| {
        let out = curl_from(n, &whoami.url(), &["CF-Connecting-IP: 203.0.113.7"]).run();
        answer(&out, &whoami).0
    };
    for n in [136, 137, 138] {
        assert_eq!(ask(n)["client_ip"], "203.0.113.7", "127.0.0.{n}");
    }
    let body = ask(139);
    assert_eq!(body["client_ip"], "127.0.0.139", "{body}");
    let names: Vec<&str> = body["trust_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{body}");
    assert_eq!(names[0], "cloudflare");
    assert!(names[1].starts_with("url-"), "{body}");
    assert!(cache.path().join("cloudflare.body").is_file());
    assert!(cache.path().join(format!("{}.body", names[1])).is_file());

    // The next refresh (1 s) swaps the plain list: .139 in, .137 out.
    plain.set(Answer::body("127.0.0.139/32\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(139)["client_ip"] != "203.0.113.7" {
        assert!(
            Instant::now() < deadline,
            "list not refreshed\n{}",
            whoami.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ask(137)["client_ip"], "127.0.0.137");
}

/// `--config`: every flag as a file key, each run end to end. `listen`
/// comes from the file in every test below (see
/// [`Whoami::start_with_config`]). `proxy-protocol` + `proxy-from`: as in
/// (5)/(4), a header from outside the range closes the connection, a
/// client without one is closed under `required`, 127.0.0.214 with one is
/// believed.
#[test]
fn config_file_proxy_protocol_and_proxy_from() {
    let whoami = Whoami::start_with_config(
        "proxy-protocol = \"required\"\nproxy-from = [\"127.0.0.214/32\"]\n",
        &[],
    );
    let out = curl_from(134, &whoami.url(), &[])
        .haproxy_protocol()
        .max_time(Duration::from_secs(5))
        .run();
    assert_closed_without_response(&out, &whoami);

    let out = curl_from(214, &whoami.url(), &[])
        .max_time(Duration::from_secs(5))
        .run();
    assert_closed_without_response(&out, &whoami);

    let out = curl_from(214, &whoami.url(), &[]).haproxy_protocol().run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(client.ip(), lo(214));
    assert_eq!(body, expected_curl_v1(client, whoami.port()));
}

/// `trust` + `header` from the file: `X-Real-IP` is believed from the one
/// trusted address only; `proxy-protocol = "off"` lets a PROXY header
/// through unread (the request fails to parse, no PROXY source).
#[test]
fn config_file_trust_and_header() {
    let whoami = Whoami::start_with_config(
        "proxy-protocol = \"off\"\ntrust = [\"127.0.0.215/32\"]\nheader = \"x-real-ip\"\n",
        &[],
    );
    let header = "X-Real-IP: 203.0.113.5";
    let out = curl_from(215, &whoami.url(), &[header]).run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(
        body,
        json!({
            "client_ip": "203.0.113.5",
            "client_port": null,
            "source": "x-real-ip",
            "peer": client.to_string(),
            "stop": "untrusted_hop",
            "conclusive": true,
            "hops": ["127.0.0.215", "203.0.113.5"],
            "proxy_protocol": null,
        })
    );
    // Untrusted peer: the header is ignored, and X-Forwarded-For (the
    // default) is not read either.
    let out = curl_from(
        135,
        &whoami.url(),
        &[header, "X-Forwarded-For: 198.51.100.1"],
    )
    .run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(body["client_ip"], "127.0.0.135", "{body}");
    assert_eq!(body["source"], "socket", "{body}");
    assert_eq!(body["peer"], client.to_string(), "{body}");
    // PROXY off: the header is not read, so it reaches HTTP and fails there.
    let out = curl_from(215, &whoami.url(), &[])
        .haproxy_protocol()
        .max_time(Duration::from_secs(5))
        .run();
    assert!(
        out.status != 200,
        "a PROXY header must not be read: {}",
        out.text()
    );
}

/// `no-recursive = true` and `hops = 2` from the file, as in (7a)/(7b).
#[test]
fn config_file_no_recursive_and_hops() {
    let one_step = Whoami::start_with_config(
        "proxy-protocol = \"off\"\ntrust = [\"loopback\"]\nno-recursive = true\n",
        &[],
    );
    let out = curl_from(
        136,
        &one_step.url(),
        &["X-Forwarded-For: 203.0.113.9, 127.0.0.50"],
    )
    .run();
    let (body, _) = answer(&out, &one_step);
    assert_eq!(body["client_ip"], "127.0.0.50", "{body}");
    assert_eq!(body["stop"], "single_step", "{body}");

    let hops = Whoami::start_with_config("proxy-protocol = \"off\"\nhops = 2\n", &[]);
    let out = curl_from(
        137,
        &hops.url(),
        &["X-Forwarded-For: 203.0.113.9, 198.51.100.1, 192.0.2.1"],
    )
    .run();
    let (body, _) = answer(&out, &hops);
    assert_eq!(body["client_ip"], "198.51.100.1", "{body}");
    assert_eq!(body["stop"], "hop_count", "{body}");
}

/// `proxy-timeout = 3000` from the file: a silent client under `required`
/// is closed at 3 s, not at the 5 s default.
#[test]
fn config_file_proxy_timeout() {
    let mut whoami =
        Whoami::start_with_config("proxy-protocol = \"required\"\nproxy-timeout = 3000\n", &[]);
    let started = Instant::now();
    let mut silent = TcpStream::connect_timeout(&whoami.addr, STARTUP).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(&read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "silent client: expected EOF or reset, got {read:?} after {waited:?}\n{}",
        whoami.log()
    );
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_millis(4500),
        "closed after {waited:?}, expected at the 3 s proxy-timeout"
    );
    whoami.assert_running();
}

/// Flags on the command line win over the file's keys: `--proxy-protocol
/// off` over `required` (a client without a header is served), `--trust
/// loopback` replacing the file's list (loopback's X-Forwarded-For is
/// believed), `--header x-forwarded-for` over the file's `x-real-ip`
/// without a "given twice" error.
#[test]
fn config_file_command_line_wins() {
    let whoami = Whoami::start_with_config(
        "proxy-protocol = \"required\"\ntrust = [\"192.0.2.0/24\"]\nheader = \"x-real-ip\"\n",
        &[
            "--proxy-protocol",
            "off",
            "--trust",
            "loopback",
            "--header",
            "x-forwarded-for",
        ],
    );
    let out = curl_from(
        138,
        &whoami.url(),
        &["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 198.51.100.1"],
    )
    .run();
    let (body, client) = answer(&out, &whoami);
    assert_eq!(
        body,
        json!({
            "client_ip": "203.0.113.9",
            "client_port": null,
            "source": "x-forwarded-for",
            "peer": client.to_string(),
            "stop": "untrusted_hop",
            "conclusive": true,
            "hops": ["127.0.0.138", "203.0.113.9"],
            "proxy_protocol": null,
        })
    );
}

/// A bad config file exits 2 before listening, stderr naming the file and
/// the key (or the line, for a syntax error).
#[test]
fn bad_config_file_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let listen = format!("127.0.0.1:{}", free_port());
    for (text, message) in [
        ("trusts = [\"10.0.0.0/8\"]", "unknown key `trusts`"),
        (
            "trust = [\"nonsense\"]",
            "key `trust`: invalid value 'nonsense' for '--trust <CIDR|loopback|private>'",
        ),
        ("hops = \"two\"", "key `hops`: invalid value 'two'"),
        (
            "no-recursive = 1",
            "key `no-recursive`: expected true or false, found integer",
        ),
        (
            "proxy-protocol = \"maybe\"",
            "key `proxy-protocol`: invalid value 'maybe'",
        ),
        ("trust = [", "TOML parse error at line 1"),
    ] {
        let path = dir.path().join("bad.toml");
        fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let (code, stdout, stderr) = run_whoami(&["--listen", &listen, "--config", &path]);
        assert_eq!(
            code, 2,
            "{text:?}: exit code\nstdout: {stdout}\nstderr: {stderr}"
        );
        let expected = format!("whoami: {path}: {message}");
        assert!(
            stderr.starts_with(&expected) && stderr.ends_with("Run with --help for usage.\n"),
            "{text:?}: stderr should start with {expected:?}: {stderr:?}"
        );
        assert!(!stdout.contains("whoami listening"), "{text:?}: {stdout}");
    }
    let missing = dir.path().join("missing.toml").display().to_string();
    let (code, _, stderr) = run_whoami(&["--listen", &listen, "--config", &missing]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with(&format!("whoami: cannot read config file {missing}: ")),
        "{stderr:?}"
    );
}

/// The JSON body of a 200 answer. (Not [`answer`], which also wants the
/// `trust_sources` field.)
fn ok_json(out: &CurlOutput, whoami: &Whoami) -> Value {
    assert_eq!(
        out.status,
        200,
        "{}\n{}\n{}",
        out.text(),
        out.stderr,
        whoami.log()
    );
    serde_json::from_slice(&out.body).unwrap_or_else(|e| panic!("{e}: {}", out.text()))
}

/// The JSON body of a refusal.
fn refusal(out: &CurlOutput, status: u16) -> Value {
    assert_eq!(out.status, status, "{}\n{}", out.text(), out.stderr);
    serde_json::from_slice(&out.body).unwrap_or_else(|e| panic!("{e}: {}", out.text()))
}

/// `--allow` / `--deny` behind nginx appending `X-Forwarded-For`: a client
/// forging an allowed address is refused, a denied one is refused even
/// inside an allowed range, both with 403 and JSON naming the rule.
#[test]
fn allow_and_deny_refuse_with_403_naming_the_rule() {
    let whoami = Whoami::start(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "127.0.0.218/32",
        "--allow",
        "127.0.0.170/31",
        "--deny",
        "127.0.0.171/32",
    ]);
    let (nginx, port) = Nginx::xff_proxy(whoami.addr, lo(218));
    let url = format!("http://127.0.0.1:{port}/");
    let out = curl_from(170, &url, &["X-Forwarded-For: 203.0.113.9"]).run();
    let body = ok_json(&out, &whoami);
    assert_eq!(
        body["client_ip"],
        "127.0.0.170",
        "nginx log:\n{}",
        nginx.log()
    );
    let denied = refusal(&curl_from(171, &url, &[]).run(), 403);
    assert_eq!(denied["error"], "forbidden");
    assert_eq!(denied["rule"], "deny 127.0.0.171/32", "{denied}");
    let forged = refusal(
        &curl_from(172, &url, &["X-Forwarded-For: 127.0.0.170"]).run(),
        403,
    );
    assert_eq!(forged["rule"], "allow", "{forged}");
}

/// The value of response header `name` in curl's `-v` trace.
fn response_header(out: &CurlOutput, name: &str) -> Option<String> {
    out.stderr.lines().find_map(|l| {
        let (k, v) = l.strip_prefix("< ")?.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// `--rate-limit 1`: one request per second per client, then 429 with
/// `Retry-After`; IPv6 clients share a bucket per /64 unless
/// `--ipv6-prefix` says otherwise. The clients are named by a trusted
/// `X-Forwarded-For` (loopback plays the proxy).
#[test]
fn rate_limit_429_with_retry_after_per_client_and_ipv6_prefix() {
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}");
    let grouped = Whoami::start(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "loopback",
        "--rate-limit",
        "1",
    ]);
    let exact = Whoami::start(&[
        "--proxy-protocol",
        "off",
        "--trust",
        "loopback",
        "--rate-limit",
        "1",
        "--ipv6-prefix",
        "128",
    ]);
    let (a, b, other) = ("2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:3::a");
    // Each whoami: the first client's token, then its neighbour in the /64.
    let first = curl_from(180, &grouped.url(), &[&xff(a)]).run();
    let body = ok_json(&first, &grouped);
    assert_eq!(body["client_ip"], a);
    let limited = curl_from(180, &grouped.url(), &[&xff(b)]).run();
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry: u64 = response_header(&limited, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry <= 1, "Retry-After {retry}");
    ok_json(
        &curl_from(180, &grouped.url(), &[&xff(other)]).run(),
        &grouped,
    );

    ok_json(&curl_from(181, &exact.url(), &[&xff(a)]).run(), &exact);
    ok_json(&curl_from(181, &exact.url(), &[&xff(b)]).run(), &exact);
}
