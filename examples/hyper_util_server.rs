//! Without axum's `Router` or `serve`: a hyper-util server that reads the
//! PROXY header with `ProxyAcceptor` and wraps the application in a
//! `RealIpLayer` service made for each connection
//! (`RealIpLayer::layer_connection`), which resolves every request on it
//! from the connection's `ProxiedAddr`.
//!
//! ```sh
//! cargo run --example hyper_util_server
//! curl --haproxy-protocol http://127.0.0.1:8080/
//! curl http://127.0.0.1:8080/    # also fine: the header is optional from loopback
//! ```

use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use realip::{Mode, ProxiedAddr, ProxyAcceptor, RealIp, RealIpLayer};

/// The application: reads what the layer stored.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match RealIp::from_extensions(req.extensions()) {
        Some(real) => format!("hello {}\n", real.client_addr()),
        None => "no client address\n".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let acceptor = ProxyAcceptor::new()
        .optional_from(["127.0.0.0/8".parse()?])
        .otherwise(Mode::Reject);
    let layer = RealIpLayer::new();
    let tcp = realip::io::bind("127.0.0.1:8080").await?;
    println!("listening on 127.0.0.1:8080");

    loop {
        let (socket, peer) = tcp.accept().await?;
        let local = socket.local_addr()?;
        let (acceptor, layer) = (acceptor.clone(), layer.clone());
        // One task per connection: a slow header delays nobody else.
        tokio::spawn(async move {
            let stream = match acceptor.accept(socket, peer).await {
                Ok(stream) => stream,
                Err(_) => return, // closed; the reason is a `realip::io` event
            };
            let header = stream.proxy_header_arc().cloned();
            let addr = ProxiedAddr::new(peer, local, header);

            // A service for this connection: every request on it is
            // resolved from these addresses.
            let service = layer.layer_connection(tower::service_fn(handle), &addr);

            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
            if let Err(e) = served {
                eprintln!("connection from {peer}: {e}");
            }
        });
    }
}
