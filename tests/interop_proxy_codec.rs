//! The codec against real senders: haproxy (v1, v2, v2 with CRC32C /
//! UNIQUE_ID / AUTHORITY / ALPN / SSL TLVs over a TLS frontend), nginx
//! stream (v1 over IPv4 and IPv6) and curl `--haproxy-protocol` write PROXY
//! headers into a raw loopback capture; `realip::proxy::parse` must decode
//! every field to what the client really was, and report exactly how many
//! bytes the header took so the HTTP request after it is replayed untouched.
//!
//! Expected values come from the peers, not from the codec: the source
//! address is what curl reports it bound (`-w %{local_ip}:%{local_port}`),
//! the destination is the proxy's listen address, TLS facts are what curl
//! negotiated, and the header length is read from the raw bytes (v1: first
//! CRLF; v2: 16 + the length field).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::{Capture, Captured, Curl, CurlOutput, Haproxy, Nginx, Reply, SelfSigned};
use realip::proxy::{self, Command, Header, Status, Transport, Version};

/// 127.0.0.n: each case connects from its own loopback source address.
fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

fn v4_listen(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// The header length as the raw bytes state it, independent of the codec.
fn raw_header_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"PROXY ") {
        let crlf = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a v1 line ends with CRLF");
        crlf + 2
    } else {
        assert!(
            bytes.len() >= 16 && bytes[..12] == proxy::v2::SIGNATURE,
            "neither v1 nor v2: {bytes:02x?}"
        );
        16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]))
    }
}

/// Parses the capture and checks `consumed` against the raw length.
fn parse_complete(captured: &Captured) -> (Header<'_>, &[u8]) {
    let bytes = &captured.bytes;
    match proxy::parse(bytes) {
        Ok(Status::Complete(header, consumed)) => {
            assert_eq!(consumed, raw_header_len(bytes), "consumed for {header:?}");
            (header, &bytes[consumed..])
        }
        other => panic!(
            "expected a complete header, got {other:?} from {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Fields every relayed TCP connection must carry.
fn assert_proxied(header: &Header<'_>, version: Version, curl: &CurlOutput, listen: SocketAddr) {
    assert_eq!(header.version(), version);
    assert_eq!(header.command(), Command::Proxy);
    assert_eq!(header.transport(), Transport::Stream);
    let client = curl.local_addr().expect("curl reports its local address");
    assert_eq!(header.source(), Some(client), "source = curl's socket");
    assert_eq!(
        header.destination(),
        Some(listen),
        "destination = proxy listener"
    );
    let owned = header.to_owned_header();
    assert_eq!(owned.source(), Some(client));
    assert_eq!(owned.destination(), Some(listen));
    assert_eq!(owned.as_header(), *header);
}

/// The bytes after the header are exactly the request curl traced.
fn assert_replayed(rest: &[u8], curl: &CurlOutput) {
    let head = curl.request_head().expect("curl -v traces its request");
    assert_eq!(
        String::from_utf8_lossy(rest),
        String::from_utf8_lossy(&head),
        "bytes after the header"
    );
}

/// One haproxy frontend on a fresh port relaying to `capture` with `server_opts`.
fn haproxy_to(
    capture: &Capture,
    bind_opts: &str,
    frontend_extra: &str,
    server_opts: &str,
) -> (Haproxy, u16) {
    let port = common::free_port();
    let haproxy = Haproxy::start(&format!(
        "frontend fe\n\
         \x20   bind 127.0.0.1:{port} {bind_opts}\n\
         {frontend_extra}\
         \x20   default_backend be\n\
         backend be\n\
         \x20   server capture {} {server_opts}\n",
        capture.addr()
    ));
    (haproxy, port)
}

#[test]
fn haproxy_send_proxy_v1() {
    let capture = Capture::bind();
    let (_haproxy, port) = haproxy_to(&capture, "", "", "send-proxy");
    let curl = Curl::new(format!("http://127.0.0.1:{port}/v1"))
        .interface(lo(11))
        .header("X-Case: haproxy-v1")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V1, &curl, v4_listen(port));
    assert_eq!(header.tlvs().count(), 0);
    assert_replayed(rest, &curl);
}

#[test]
fn haproxy_send_proxy_v2_without_options_has_no_tlvs() {
    let capture = Capture::bind();
    let (_haproxy, port) = haproxy_to(&capture, "", "", "send-proxy-v2");
    let curl = Curl::new(format!("http://127.0.0.1:{port}/v2"))
        .interface(lo(12))
        .header("X-Case: haproxy-v2")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V2, &curl, v4_listen(port));
    assert_eq!(header.tlvs().count(), 0, "plain send-proxy-v2 adds no TLV");
    assert_eq!(header.alpn(), None, "no ALPN on a plaintext frontend");
    assert_eq!(header.crc32c(), None);
    assert_replayed(rest, &curl);
}

#[test]
fn haproxy_v2_crc32c_unique_id_authority() {
    let capture = Capture::bind();
    // %{+X}o prints the client and frontend endpoints in hex, so the id
    // can be checked against the addresses the header carries.
    let (_haproxy, port) = haproxy_to(
        &capture,
        "",
        "    unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n",
        "send-proxy-v2 proxy-v2-options crc32c,unique-id,authority",
    );
    let curl = Curl::new(format!("http://127.0.0.1:{port}/tlvs"))
        .interface(lo(13))
        .header("X-Case: haproxy-v2-tlvs")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V2, &curl, v4_listen(port));

    // parse() verifies the CRC32C; the TLV was there and matched.
    assert!(header.crc32c().is_some(), "crc32c TLV decoded");
    let client = curl.local_addr().expect("curl local address");
    let id = header.unique_id().expect("unique-id TLV");
    assert!(id.len() <= proxy::UNIQUE_ID_MAX, "{} bytes", id.len());
    let IpAddr::V4(client_ip) = client.ip() else {
        panic!("IPv4 client expected")
    };
    let expected_prefix = format!(
        "{:08X}:{:04X}_{:08X}:{:04X}_",
        u32::from(client_ip),
        client.port(),
        u32::from(Ipv4Addr::LOCALHOST),
        port
    );
    assert!(
        id.starts_with(expected_prefix.as_bytes()),
        "unique id {:?} should start with {expected_prefix}",
        String::from_utf8_lossy(id)
    );
    // haproxy 2.6 takes AUTHORITY from TLS SNI (or an inbound PROXY header);
    // a plaintext client without one gives it nothing to send.
    assert_eq!(header.authority(), None);
    assert_replayed(rest, &curl);

    // The checksum is really checked: one flipped bit in the unique id
    // turns the same header into a CRC mismatch.
    let consumed = captured.bytes.len() - rest.len();
    let mut tampered = captured.bytes[..consumed].to_vec();
    let id_offset = find(&tampered, id).expect("id inside the header");
    tampered[id_offset] ^= 0x01;
    assert!(
        matches!(
            proxy::parse(&tampered),
            Err(proxy::Error::V2Crc32cMismatch { .. })
        ),
        "tampered header must fail its CRC: {:?}",
        proxy::parse(&tampered)
    );
}

#[test]
fn haproxy_v2_unique_id_without_format_is_empty_tlv() {
    // Without a frontend `unique-id-format`, haproxy 2.6 still writes the
    // UNIQUE_ID TLV, with length 0: the header must parse and say "empty".
    let capture = Capture::bind();
    let (_haproxy, port) = haproxy_to(&capture, "", "", "send-proxy-v2 proxy-v2-options unique-id");
    let curl = Curl::new(format!("http://127.0.0.1:{port}/empty-id"))
        .interface(lo(18))
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V2, &curl, v4_listen(port));
    assert_eq!(header.unique_id(), Some(&b""[..]));
    assert_replayed(rest, &curl);
}

/// Frontend options for the TLS cases: haproxy terminates TLS (certificate
/// for `realip.test`), offers h2 and http/1.1, asks for an optional client
/// certificate signed by `client`.
fn tls_frontend(server: &SelfSigned, client: &SelfSigned) -> String {
    format!(
        "ssl crt {} alpn h2,http/1.1 ca-file {} verify optional",
        server.combined_path().display(),
        client.cert_path().display()
    )
}

const TLS_SERVER_OPTS: &str =
    "send-proxy-v2-ssl-cn proxy-v2-options ssl,cert-cn,ssl-cipher,authority,crc32c";

#[test]
fn haproxy_tls_http1_client_cert_ssl_tlvs() {
    let server = SelfSigned::new("realip.test", &["realip.test"]);
    let client = SelfSigned::new("realip-client", &["realip-client"]);
    let capture = Capture::bind();
    let (_haproxy, port) = haproxy_to(
        &capture,
        &tls_frontend(&server, &client),
        "",
        TLS_SERVER_OPTS,
    );
    let curl = Curl::new(format!("https://realip.test:{port}/tls"))
        .resolve("realip.test", port, lo(1))
        .interface(lo(14))
        .insecure()
        .client_cert(&client.cert_path(), &client.key_path())
        .header("X-Case: haproxy-tls-h1")
        .run();
    curl.expect_status(200);
    let (tls_version, cipher) = curl.tls().expect("curl traces the TLS session");
    assert_eq!(curl.alpn().as_deref(), Some("http/1.1"));

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V2, &curl, v4_listen(port));
    assert!(header.crc32c().is_some(), "crc32c TLV decoded and verified");
    assert_eq!(header.alpn(), Some(&b"http/1.1"[..]));
    assert_eq!(header.authority(), Some(&b"realip.test"[..]), "SNI");

    let ssl = header.ssl().expect("SSL TLV");
    assert!(ssl.client_ssl());
    assert!(
        ssl.client_cert_conn(),
        "certificate presented on this connection"
    );
    assert!(
        ssl.client_cert_sess(),
        "certificate presented in this session"
    );
    assert_eq!(ssl.verify(), 0, "haproxy verified the client certificate");
    assert!(ssl.verified());
    assert_eq!(ssl.version(), Some(tls_version.as_bytes()));
    assert_eq!(ssl.cn(), Some(&b"realip-client"[..]));
    assert_eq!(ssl.cipher(), Some(cipher.as_bytes()));
    assert!(!cipher.is_empty());
    assert_replayed(rest, &curl);
}

#[test]
fn haproxy_tls12_h2_alpn_without_client_cert() {
    let server = SelfSigned::new("realip.test", &["realip.test"]);
    let client = SelfSigned::new("realip-client", &["realip-client"]);
    // haproxy relays h2 frames in TCP mode; the capture does not speak h2,
    // so it stays silent and closes once the client goes idle.
    let capture = Capture::bind_on(lo(1), Reply::Silent);
    let (_haproxy, port) = haproxy_to(
        &capture,
        &tls_frontend(&server, &client),
        "",
        TLS_SERVER_OPTS,
    );
    let curl = Curl::new(format!("https://realip.test:{port}/h2"))
        .resolve("realip.test", port, lo(1))
        .interface(lo(15))
        .insecure()
        .http2()
        .arg("--tls-max")
        .arg("1.2")
        .max_time(Duration::from_secs(5))
        .run();
    let (tls_version, cipher) = curl.tls().expect("curl traces the TLS session");
    assert_eq!(tls_version, "TLSv1.2");
    assert_eq!(curl.alpn().as_deref(), Some("h2"));

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V2, &curl, v4_listen(port));
    assert_eq!(header.alpn(), Some(&b"h2"[..]));
    assert_eq!(header.authority(), Some(&b"realip.test"[..]));

    let ssl = header.ssl().expect("SSL TLV");
    assert!(ssl.client_ssl());
    assert!(!ssl.client_cert_conn(), "no client certificate");
    assert!(!ssl.client_cert_sess());
    assert_eq!(ssl.verify(), 0, "haproxy sends 0 without a certificate too");
    assert!(!ssl.verified(), "no certificate, so nothing was verified");
    assert_eq!(ssl.cn(), None);
    assert_eq!(ssl.version(), Some(&b"TLSv1.2"[..]));
    assert_eq!(ssl.cipher(), Some(cipher.as_bytes()));
    assert!(
        rest.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        "h2 preface follows the header: {:?}",
        String::from_utf8_lossy(rest)
    );
}

/// nginx stream with `proxy_protocol on` for one listener, relaying to `capture`.
fn nginx_to(capture: &Capture, listen: SocketAddr) -> Nginx {
    Nginx::start(&format!(
        "stream {{\n\
         \x20   server {{\n\
         \x20       listen {listen};\n\
         \x20       proxy_pass {};\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         }}\n",
        capture.addr()
    ))
}

#[test]
fn nginx_stream_v1_tcp4() {
    let capture = Capture::bind();
    let listen = v4_listen(common::free_port());
    let _nginx = nginx_to(&capture, listen);
    let curl = Curl::new(format!("http://{listen}/nginx4"))
        .interface(lo(16))
        .header("X-Case: nginx-tcp4")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    assert!(captured.bytes.starts_with(b"PROXY TCP4 "));
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V1, &curl, listen);
    assert_replayed(rest, &curl);
}

#[test]
fn nginx_stream_v1_tcp6() {
    let capture = Capture::bind();
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let listen = SocketAddr::new(v6, common::free_port_on(v6));
    let _nginx = nginx_to(&capture, listen);
    let curl = Curl::new(format!("http://{listen}/nginx6"))
        .interface(v6)
        .header("X-Case: nginx-tcp6")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    assert!(captured.bytes.starts_with(b"PROXY TCP6 "));
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V1, &curl, listen);
    assert_replayed(rest, &curl);
}

#[test]
fn curl_haproxy_protocol_v1() {
    let capture = Capture::bind();
    let curl = Curl::new(format!("http://{}/curl", capture.addr()))
        .interface(lo(17))
        .haproxy_protocol()
        .header("X-Case: curl-v1")
        .run();
    curl.expect_status(200);

    let captured = capture.next();
    let (header, rest) = parse_complete(&captured);
    assert_proxied(&header, Version::V1, &curl, capture.addr());
    assert_replayed(rest, &curl);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
