//! tonic servers see their clients: a real tonic client calls a real tonic
//! server through haproxy `send-proxy-v2` (TCP mode, HTTP/2 cleartext),
//! each client from its own 127.0.0.N, and directly with the listener's
//! per-source rules. Each call reports what its service method read:
//! `RealIp`, `request.remote_addr()` and the connection's `ProxiedAddr`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::grpc::{ask, channel_from, Seen, WhoAmI};
use common::{free_port, Haproxy};
use realip::io::ProxyProtocolListener;
use realip::{HeaderSource, RealIpLayer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::Connected;
use tonic::transport::Server;

fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

fn v1_from(src: &str) -> Vec<u8> {
    let src: SocketAddr = src.parse().unwrap();
    format!("PROXY TCP4 {} 127.0.0.1 {} 50051\r\n", src.ip(), src.port()).into_bytes()
}

/// Serves [`WhoAmI`] behind `layer` on `incoming` until the test ends.
fn serve<I, IO, IE>(layer: RealIpLayer, incoming: I) -> JoinHandle<()>
where
    I: futures_util::Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(WhoAmI)
            .serve_with_incoming(incoming)
            .await
            .expect("tonic server");
    })
}

/// A `ProxyProtocolListener` on 127.0.0.1, configured by `rules`, served.
async fn app(
    rules: impl FnOnce(ProxyProtocolListener<TcpListener>) -> ProxyProtocolListener<TcpListener>,
) -> (SocketAddr, JoinHandle<()>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = tcp.local_addr().unwrap();
    let listener = rules(ProxyProtocolListener::new(tcp));
    (
        at,
        serve(RealIpLayer::new(), realip::grpc::incoming(listener)),
    )
}

/// One channel from 127.0.0.`n` to `to` (after `prefix`), `calls` calls on
/// it; the calls' answers and the one local address it connected from.
async fn calls_from(
    n: u8,
    to: SocketAddr,
    prefix: Vec<u8>,
    calls: usize,
) -> (Vec<Seen>, SocketAddr) {
    let (channel, sources) = channel_from(lo(n), to, prefix).await.expect("connect");
    let mut seen = Vec::new();
    for _ in 0..calls {
        seen.push(ask(channel.clone(), &[]).await.expect("gRPC call"));
    }
    let sources = sources.lock().unwrap().clone();
    assert_eq!(sources.len(), 1, "one connection per channel: {sources:?}");
    (seen, sources[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grpc_call_through_haproxy_send_proxy_v2_sees_its_own_client() {
    // Only haproxy (127.0.0.1) may, and must, send PROXY.
    let (app, _server) = app(|l| l.require_from(["127.0.0.1/32".parse().unwrap()])).await;
    let hp = free_port();
    let _haproxy = Haproxy::start(&format!(
        "frontend grpc\n\
         \x20   bind 127.0.0.1:{hp}\n\
         \x20   default_backend app\n\
         backend app\n\
         \x20   server s1 {app} send-proxy-v2\n"
    ));
    let front: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();

    for n in [21, 22, 23] {
        let (seen, client) = calls_from(n, front, Vec::new(), 3).await;
        assert_eq!(client.ip(), lo(n));
        for call in seen {
            // The client's own address and port, as haproxy saw them.
            assert_eq!(call.client, client.to_string(), "{call:?}");
            assert_eq!(call.remote_addr, client.to_string(), "{call:?}");
            assert_eq!(call.proxy_source, client.to_string(), "{call:?}");
            assert!(call.conclusive, "{call:?}");
            // The connection itself came from haproxy.
            let peer: SocketAddr = call.peer.parse().unwrap();
            assert_eq!(peer.ip(), lo(1), "{call:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_client_outside_the_balancer_range_is_served_as_itself() {
    let (app, _server) = app(|l| l.require_from(["127.0.0.1/32".parse().unwrap()])).await;
    let (seen, client) = calls_from(31, app, Vec::new(), 2).await;
    for call in seen {
        assert_eq!(call.client, client.to_string(), "{call:?}");
        assert_eq!(call.remote_addr, client.to_string(), "{call:?}");
        assert_eq!(call.peer, client.to_string(), "{call:?}");
        assert_eq!(call.proxy_source, "", "{call:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_from_outside_the_balancer_range_closes_only_that_connection() {
    let (app, _server) = app(|l| l.require_from(["127.0.0.1/32".parse().unwrap()])).await;

    // 127.0.0.32 is not the balancer: its header (forging 203.0.113.9) is
    // refused and the connection closed before any call is served.
    let forged = match channel_from(lo(32), app, v1_from("203.0.113.9:4242")).await {
        Ok((channel, _)) => ask(channel, &[]).await,
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(forged.is_err(), "a forged header was served: {forged:?}");

    // The server goes on serving everyone else.
    let (seen, client) = calls_from(33, app, Vec::new(), 1).await;
    assert_eq!(seen[0].client, client.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_rule_takes_a_header_when_sent_and_the_socket_otherwise() {
    let (app, _server) = app(|l| l.optional_from(["127.0.0.0/8".parse().unwrap()])).await;

    let (seen, client) = calls_from(41, app, v1_from("203.0.113.9:4242"), 2).await;
    for call in seen {
        assert_eq!(call.client, "203.0.113.9:4242", "{call:?}");
        assert_eq!(call.remote_addr, "203.0.113.9:4242", "{call:?}");
        assert_eq!(call.proxy_source, "203.0.113.9:4242", "{call:?}");
        assert_eq!(call.peer, client.to_string(), "{call:?}");
    }

    let (seen, client) = calls_from(42, app, Vec::new(), 1).await;
    assert_eq!(seen[0].client, client.to_string());
    assert_eq!(seen[0].proxy_source, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_tonics_own_listener_the_layer_believes_metadata_only_from_a_trusted_peer() {
    // tonic's own TCP listener: the layer reads tonic's TcpConnectInfo.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = tcp.local_addr().unwrap();
    let layer = RealIpLayer::builder()
        .trust("127.0.0.51/32".parse().unwrap())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let _server = serve(layer, tonic::transport::server::TcpIncoming::from(tcp));
    let xff = [("x-forwarded-for", "198.51.100.4")];

    // From the trusted proxy: its X-Forwarded-For names the client (no
    // port: remote_addr() says 0).
    let (channel, _) = channel_from(lo(51), app, Vec::new()).await.unwrap();
    let call = ask(channel.clone(), &xff).await.unwrap();
    assert_eq!(call.client, "198.51.100.4", "{call:?}");
    assert_eq!(call.remote_addr, "198.51.100.4:0", "{call:?}");
    assert_eq!(
        call.peer, "",
        "no ProxiedAddr on tonic's listener: {call:?}"
    );
    let call = ask(channel, &[]).await.unwrap();
    assert!(call.client.starts_with("127.0.0.51:"), "{call:?}");

    // From anyone else the same metadata is a forgery, ignored.
    let (channel, sources) = channel_from(lo(52), app, Vec::new()).await.unwrap();
    let call = ask(channel, &xff).await.unwrap();
    let client = sources.lock().unwrap()[0];
    assert_eq!(call.client, client.to_string(), "{call:?}");
    assert_eq!(call.remote_addr, client.to_string(), "{call:?}");
}
