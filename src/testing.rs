//! Helpers for unit-testing handlers and routers that read the client
//! address.
//!
//! Two ways in:
//!
//! - [`with_client_ip`] / [`with_client_addr`] set the *result* directly,
//!   for a handler or router tested without [`RealIpLayer`](crate::RealIpLayer);
//! - [`with_peer`] sets the *socket peer*, for a router tested with its
//!   layer, so the policy itself runs (forwarded headers included).
//!
//! ```
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use realip::{testing, ClientIp};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app: Router = Router::new().route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }));
//! let req = testing::with_client_ip(Request::new(Body::empty()), "203.0.113.9".parse().unwrap());
//! let res = app.oneshot(req).await.unwrap();
//! let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
//! assert_eq!(&body[..], b"203.0.113.9");
//! # }
//! ```

use std::net::{IpAddr, SocketAddr};

use http::Request;

use crate::extract::RealIp;
use crate::resolve::Resolution;

/// Sets the resolved client of `req` to `ip` (port unknown), as if it had
/// connected directly. A [`RealIpLayer`](crate::RealIpLayer) that runs
/// afterwards replaces it.
pub fn with_client_ip<B>(req: Request<B>, ip: IpAddr) -> Request<B> {
    insert(req, ip, None)
}

/// Sets the resolved client of `req` to `addr`, as if it had connected
/// directly from there.
pub fn with_client_addr<B>(req: Request<B>, addr: SocketAddr) -> Request<B> {
    insert(req, addr.ip(), Some(addr.port()))
}

/// Sets the socket peer of `req`, so a [`RealIpLayer`](crate::RealIpLayer)
/// in the stack resolves the request as if it arrived over a connection
/// from `peer`. The peer travels in a type only this module makes: a
/// plain `SocketAddr` extension is never believed by the layer.
pub fn with_peer<B>(mut req: Request<B>, peer: SocketAddr) -> Request<B> {
    req.extensions_mut().insert(TestPeer(peer));
    req
}

/// The peer [`with_peer`] sets; read by the layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TestPeer(pub(crate) SocketAddr);

fn insert<B>(mut req: Request<B>, ip: IpAddr, port: Option<u16>) -> Request<B> {
    let resolution = Resolution::direct(ip, port);
    let peer = SocketAddr::new(resolution.ip(), port.unwrap_or(0));
    req.extensions_mut()
        .insert(RealIp::new(resolution, peer, None));
    req
}
