//! A tonic gRPC server behind an AWS Network Load Balancer (target type IP)
//! with "Proxy protocol v2" enabled on the target group: the NLB's TCP
//! connection carries the client in a PROXY header, which the listener
//! reads before HTTP/2 starts. Service methods read the client from the
//! request's extensions; `request.remote_addr()` names it too.
//!
//! ```sh
//! cargo run --example behind_nlb_grpc --features tonic
//! # in another shell: a call from loopback with a PROXY v1 header, as the
//! # NLB would send (v2), naming 203.0.113.7:4242 as the client
//! cargo run --example behind_nlb_grpc --features tonic -- call 127.0.0.1:50051
//! ```
//!
//! In production listen on `0.0.0.0:50051` (`LISTEN=0.0.0.0:50051`) and
//! set `VPC_CIDR` to your VPC's range: only the NLB's nodes live there.
//!
//! The service is written without protoc or codegen (a prost message by
//! hand, `tonic::server::Grpc`); with `tonic-build`, the generated server
//! is added the same way and its methods read the client the same way.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use realip::io::{Mode, ProxiedAddr, ProxyProtocolListener};
use realip::{RealIp, RealIpLayer};
use tonic::{body::Body, server::NamedService, Request, Response, Status};
use tonic_prost::ProstCodec;

const METHOD: &str = "/whoami.WhoAmI/Ask";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, server] = args.as_slice() {
        if cmd == "call" {
            return call(server.parse()?).await;
        }
    }
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:50051".into());
    // Loopback is included so the example can be tried locally.
    let vpc = std::env::var("VPC_CIDR").unwrap_or_else(|_| "10.0.0.0/16".into());

    let listener = ProxyProtocolListener::new(realip::io::bind(&listen).await?)
        // Every connection from the VPC must start with a PROXY header ...
        .require_from([vpc.parse()?, "127.0.0.0/8".parse()?])
        // ... and nobody else may send one (a forged header from outside
        // closes the connection; a plain one is served as itself).
        .otherwise(Mode::Reject);

    println!("gRPC on {listen}, PROXY v2 required from {vpc}");
    tonic::transport::Server::builder()
        // No forwarded header is trusted: the NLB adds none, so any
        // `x-forwarded-for` metadata was written by the client. The client
        // is the PROXY source.
        .layer(RealIpLayer::new())
        .add_service(WhoAmI)
        // Never ends on a bad client: a failed header closes only its
        // connection (logged with `tracing`, target `realip::io`).
        .serve_with_incoming(realip::grpc::incoming(listener))
        .await?;
    Ok(())
}

/// What the method tells its caller.
#[derive(Clone, PartialEq, prost::Message)]
struct Answer {
    /// The resolved client.
    #[prost(string, tag = "1")]
    client: String,
    /// The host that opened the TCP connection (the NLB).
    #[prost(string, tag = "2")]
    peer: String,
}

/// The empty request.
#[derive(Clone, PartialEq, prost::Message)]
struct Ask {}

/// The service method: where an application reads its client.
fn ask(request: &Request<Ask>) -> Result<Answer, Status> {
    let real = RealIp::from_extensions(request.extensions())
        .ok_or_else(|| Status::internal("RealIpLayer is not in the server's stack"))?;
    let conn = request.extensions().get::<ProxiedAddr>();
    Ok(Answer {
        // Also `request.remote_addr()`.
        client: real.client_addr().to_string(),
        peer: conn.map(|c| c.peer().to_string()).unwrap_or_default(),
    })
}

/// The server side of `whoami.WhoAmI`, what codegen would write.
#[derive(Clone, Debug)]
struct WhoAmI;

impl NamedService for WhoAmI {
    const NAME: &'static str = "whoami.WhoAmI";
}

impl tower::Service<http::Request<Body>> for WhoAmI {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != METHOD {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let method =
                tower::service_fn(|r: Request<Ask>| async move { ask(&r).map(Response::new) });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Answer, Ask>::default());
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// A client that writes a PROXY v1 header before HTTP/2, as a balancer
/// would, naming 203.0.113.7:4242.
async fn call(server: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    use tokio::io::AsyncWriteExt;
    let connector = tower::service_fn(move |_: http::Uri| async move {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        stream
            .write_all(
                format!(
                    "PROXY TCP4 203.0.113.7 {} 4242 {}\r\n",
                    server.ip(),
                    server.port()
                )
                .as_bytes(),
            )
            .await?;
        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{server}"))?
        .connect_with_connector(connector)
        .await?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await?;
    let answer: Response<Answer> = client
        .unary(
            Request::new(Ask {}),
            http::uri::PathAndQuery::from_static(METHOD),
            ProstCodec::<Ask, Answer>::default(),
        )
        .await?;
    let answer = answer.into_inner();
    println!("client {} (peer {})", answer.client, answer.peer);
    Ok(())
}
