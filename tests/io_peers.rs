//! Real peers in front of `ProxyProtocolListener` + an axum app that echoes
//! the address it sees: haproxy (`send-proxy`, `send-proxy-v2`, health
//! checks), nginx `stream` (`proxy_protocol on`), `curl --haproxy-protocol`,
//! and TLS passed through haproxy and terminated by tokio-rustls after the
//! PROXY header. Each client connects from its own 127.0.0.N.

mod common;
mod io_util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Curl, CurlOutput, Haproxy, Nginx, SelfSigned};
use io_util::*;
use realip::io::{ProxiedAddr, ProxyProtocolListener};
use tokio_rustls::rustls;

/// curl from 127.0.0.`n` to `url`, off the runtime's threads.
async fn curl_from(n: u8, url: String, extra: fn(Curl) -> Curl) -> CurlOutput {
    tokio::task::spawn_blocking(move || extra(Curl::new(url).interface(lo(n))).run())
        .await
        .unwrap()
}

/// The app answered with the exact address curl connected from.
fn sees_client(out: &CurlOutput, peer_ip: &str) {
    out.expect_status(200);
    let client = out.local_addr().expect("curl reports its local address");
    let body = out.text();
    assert!(body.starts_with(&format!("peer={peer_ip}:")), "{body}");
    assert!(
        body.ends_with(&format!(" source={client}")),
        "app saw {body}, curl was {client}"
    );
}

/// `show stat` over haproxy's stats socket: (status, check_status) of `srv`.
fn haproxy_server_state(sock: &std::path::Path, backend: &str, srv: &str) -> (String, String) {
    let mut s = UnixStream::connect(sock).expect("stats socket");
    s.write_all(b"show stat\n").unwrap();
    let mut csv = String::new();
    s.read_to_string(&mut csv).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (st, chk) = (col("status"), col("check_status"));
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[0] == backend && r[1] == srv)
        .unwrap_or_else(|| panic!("no {backend}/{srv} in\n{csv}"));
    (row[st].to_owned(), row[chk].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_v1_v2_health_checks_nginx_and_curl_are_each_seen_exactly() {
    let app = serve(ProxyProtocolListener::new(tcp().await));
    let (hp1, hp2) = (free_port(), free_port());
    let stats_dir = tempfile::tempdir().unwrap();
    let stats = stats_dir.path().join("stats.sock");
    let haproxy = Haproxy::start(&format!(
        "global\n\
         \x20   stats socket {stats} mode 600 level admin\n\
         frontend v1\n\
         \x20   bind 127.0.0.1:{hp1}\n\
         \x20   default_backend app_v1\n\
         frontend v2\n\
         \x20   bind 127.0.0.1:{hp2}\n\
         \x20   default_backend app_v2\n\
         backend app_v1\n\
         \x20   server s1 {app} send-proxy\n\
         backend app_v2\n\
         \x20   option httpchk GET /\n\
         \x20   server s2 {app} send-proxy-v2 check inter 100ms fall 2 rise 1\n",
        stats = stats.display(),
    ));
    let ngx = free_port();
    let nginx = Nginx::start(&format!(
        "stream {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{ngx};\n\
         \x20       proxy_pass {app};\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         }}\n"
    ));

    let out = curl_from(21, format!("http://127.0.0.1:{hp1}/"), |c| c).await;
    sees_client(&out, "127.0.0.1");
    let out = curl_from(22, format!("http://127.0.0.1:{hp2}/"), |c| c).await;
    sees_client(&out, "127.0.0.1");
    let out = curl_from(23, format!("http://127.0.0.1:{ngx}/"), |c| c).await;
    sees_client(&out, "127.0.0.1");
    // curl itself sends the v1 header: peer and source are both curl.
    let out = curl_from(24, format!("http://{app}/"), Curl::haproxy_protocol).await;
    sees_client(&out, "127.0.0.24");
    // Without the header curl is refused (the default mode requires one).
    let out = curl_from(25, format!("http://{app}/"), |c| c).await;
    assert_ne!(out.exit, 0, "plain request must be closed: {}", out.text());

    // haproxy's HTTP health checks send a v2 LOCAL header: several rounds
    // at 100 ms, two failures would mark the server DOWN.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, check) = haproxy_server_state(&stats, "app_v2", "s2");
    assert_eq!(status, "UP", "haproxy log:\n{}", haproxy.log());
    // A leading "* " means a new check is running right now; the status
    // after it is the last finished check's.
    assert_eq!(
        check.trim_start_matches("* "),
        "L7OK",
        "haproxy log:\n{}",
        haproxy.log()
    );
    drop(nginx);
}

fn tls_config(cert: &SelfSigned) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert_der.clone().into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_after_proxy_v2_through_haproxy_tcp_mode() {
    const DEADLINE: Duration = Duration::from_millis(1500);
    let cert = SelfSigned::new("localhost", &["localhost", "127.0.0.1"]);
    let tls = tokio_rustls::TlsAcceptor::from(tls_config(&cert));
    let listener = ProxyProtocolListener::new(tcp().await)
        .header_timeout_unclamped(DEADLINE)
        .with_handshake(move |stream, _addr| tls.accept(stream));
    let app: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            echo_app().into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap();
    });
    let hp = free_port();
    let haproxy = Haproxy::start(&format!(
        "frontend tls\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server s1 {app} send-proxy-v2\n"
    ));

    // A silent client holds a handshake open; TLS clients are not delayed.
    let _silent = connect_from(lo(30), app).await;
    let start = Instant::now();
    let out = curl_from(31, format!("https://127.0.0.1:{hp}/"), Curl::insecure).await;
    let took = start.elapsed();
    sees_client(&out, "127.0.0.1");
    assert!(out.tls().is_some(), "not TLS: {}", out.stderr);
    assert!(
        took < Duration::from_millis(800),
        "TLS client waited {took:?} behind a silent one"
    );

    // A client that sends the PROXY header but never starts TLS is cut at
    // the deadline, which covers the hook too.
    let mut stalled = connect_from(lo(32), app).await;
    tokio::io::AsyncWriteExt::write_all(
        &mut stalled,
        &v2(sa("203.0.113.1:1"), sa("10.0.0.1:443"), &[]),
    )
    .await
    .unwrap();
    let cut = closed_within(&mut stalled, Duration::from_secs(5)).await;
    assert!(cut < DEADLINE + Duration::from_secs(1), "{cut:?}");

    // Plain HTTP after the header fails the TLS handshake: closed at once,
    // long before the deadline.
    let mut plain = connect_from(lo(33), app).await;
    let mut msg = v2(sa("203.0.113.1:1"), sa("10.0.0.1:443"), &[]);
    msg.extend_from_slice(GET);
    tokio::io::AsyncWriteExt::write_all(&mut plain, &msg)
        .await
        .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    // At most a TLS alert comes back, then the close.
    let _ = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut got),
    )
    .await
    .expect("still open after 3 s");
    let failed = start.elapsed();
    assert!(!got.starts_with(b"HTTP"), "served plain HTTP: {got:?}");
    assert!(failed < Duration::from_millis(400), "{failed:?}");
    drop(haproxy);
}
