//! Fail closed at both entry points, over real TCP: with only
//! `.require_from([127.0.0.1/32])`, a forged PROXY header from 127.0.0.2
//! (outside the range) closes the connection before any request reaches
//! the application; 127.0.0.2 without a header is served as itself; the
//! load balancer at 127.0.0.1 is served as its header's source.

mod io_util;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::{extract::ConnectInfo, routing::get, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use io_util::*;
use realip::io::{ProxiedAddr, ProxyAcceptor, ProxyProtocolListener};
use tower::ServiceExt;

fn lb_range() -> ipnet::IpNet {
    "127.0.0.1/32".parse().unwrap()
}

const FORGED: &[u8] = b"PROXY TCP4 8.8.8.8 127.0.0.1 1234 80\r\n";

/// An app answering `peer=.. source=..` that counts the requests it sees.
fn counting_app(seen: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/",
        get(
            move |ConnectInfo(addr): ConnectInfo<ProxiedAddr>| async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let source = addr
                    .proxy_source()
                    .map_or_else(|| "-".to_owned(), |s| s.to_string());
                format!("peer={} source={source}", addr.peer())
            },
        ),
    )
}

async fn listener_server(seen: Arc<AtomicUsize>) -> SocketAddr {
    let listener = ProxyProtocolListener::new(tcp().await).require_from([lb_range()]);
    let addr = listener.local_addr().unwrap();
    let app = counting_app(seen).into_make_service_with_connect_info::<ProxiedAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The `ProxyAcceptor` path: a plain accept loop driving hyper itself.
async fn acceptor_server(seen: Arc<AtomicUsize>) -> SocketAddr {
    let tcp = tcp().await;
    let addr = tcp.local_addr().unwrap();
    let acceptor = ProxyAcceptor::new().require_from([lb_range()]);
    let app = counting_app(seen);
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tcp.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(sock, peer).await else {
                    return;
                };
                let info = ProxiedAddr::new(peer, addr, stream.proxy_header_arc().cloned());
                let svc = app.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(info.clone()));
                    req
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    addr
}

async fn check(addr: SocketAddr, seen: &AtomicUsize) {
    // Forged header from outside the range: closed, nothing reaches the app.
    let before = seen.load(Ordering::SeqCst);
    assert_eq!(
        get_with(connect_from(lo(2), addr).await, FORGED).await,
        None,
        "a forged header from outside the require range must close the connection"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        before,
        "a request reached the app"
    );

    // The same peer without a header: served as itself.
    let body = body_200(get_with(connect_from(lo(2), addr).await, b"").await);
    assert!(body.starts_with("peer=127.0.0.2:"), "{body}");
    assert!(body.ends_with(" source=-"), "{body}");

    // The load balancer's header is believed.
    let body = body_200(get_with(connect_from(lo(1), addr).await, FORGED).await);
    assert!(body.starts_with("peer=127.0.0.1:"), "{body}");
    assert!(body.ends_with(" source=8.8.8.8:1234"), "{body}");
    assert_eq!(seen.load(Ordering::SeqCst), before + 2);
}

#[tokio::test]
async fn listener_closes_a_forged_header_from_outside_the_range() {
    let seen = Arc::new(AtomicUsize::new(0));
    let addr = listener_server(seen.clone()).await;
    check(addr, &seen).await;
}

#[tokio::test]
async fn acceptor_closes_a_forged_header_from_outside_the_range() {
    let seen = Arc::new(AtomicUsize::new(0));
    let addr = acceptor_server(seen.clone()).await;
    check(addr, &seen).await;
}
