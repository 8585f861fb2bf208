//! A real gRPC service and client for the tonic tests, without protoc or
//! codegen: prost messages written by hand, the server side through
//! `tonic::server::Grpc`, the client through `tonic::client::Grpc`, both
//! with tonic-prost's codec over HTTP/2 cleartext.
//!
//! The one method, `realip.test.WhoAmI/Ask`, answers with what the call
//! saw: the client [`RealIpLayer`](realip::RealIpLayer) resolved, tonic's
//! `request.remote_addr()`, and the connection's [`ProxiedAddr`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use realip::io::ProxiedAddr;
use realip::RealIp;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

const ASK: &str = "/realip.test.WhoAmI/Ask";

/// The request: empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ask {}

/// What one call saw; an empty string is "absent".
#[derive(Clone, PartialEq, prost::Message)]
pub struct Seen {
    /// `RealIp::ip` (and port, when known) the layer stored.
    #[prost(string, tag = "1")]
    pub client: String,
    /// tonic's `request.remote_addr()`.
    #[prost(string, tag = "2")]
    pub remote_addr: String,
    /// The connection's socket peer (`ProxiedAddr::peer`).
    #[prost(string, tag = "3")]
    pub peer: String,
    /// The accepted PROXY header's source (`ProxiedAddr::proxy_source`).
    #[prost(string, tag = "4")]
    pub proxy_source: String,
    /// `RealIp::is_conclusive`.
    #[prost(bool, tag = "5")]
    pub conclusive: bool,
}

/// The server side: route `Ask` to [`answer`], anything else is
/// `UNIMPLEMENTED`.
#[derive(Clone, Debug, Default)]
pub struct WhoAmI;

impl NamedService for WhoAmI {
    const NAME: &'static str = "realip.test.WhoAmI";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for WhoAmI {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != ASK {
                return Ok(Status::unimplemented(req.uri().path().to_owned()).into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Seen, Ask>::default());
            Ok(grpc.unary(Answer, req).await)
        })
    }
}

struct Answer;

impl tower::Service<Request<Ask>> for Answer {
    type Response = Response<Seen>;
    type Error = Status;
    type Future = std::future::Ready<Result<Response<Seen>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Ask>) -> Self::Future {
        std::future::ready(Ok(Response::new(answer(&request))))
    }
}

/// What a service method can read about its caller.
pub fn answer<T>(request: &Request<T>) -> Seen {
    let real = RealIp::from_extensions(request.extensions());
    let conn = request.extensions().get::<ProxiedAddr>();
    Seen {
        client: real
            .map(|r| r.client_addr().to_string())
            .unwrap_or_default(),
        remote_addr: request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        peer: conn.map(|c| c.peer().to_string()).unwrap_or_default(),
        proxy_source: conn
            .and_then(ProxiedAddr::proxy_source)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        conclusive: real.is_some_and(RealIp::is_conclusive),
    }
}

/// A gRPC channel to `to` whose TCP connections leave from `from` (tonic's
/// `Endpoint` cannot bind a source address), writing `prefix` (a PROXY
/// header, or nothing) before HTTP/2 starts. Every local address it
/// connected from is pushed to the returned list.
pub async fn channel_from(
    from: IpAddr,
    to: SocketAddr,
    prefix: Vec<u8>,
) -> Result<(Channel, Arc<Mutex<Vec<SocketAddr>>>), tonic::transport::Error> {
    let sources = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sources);
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let (prefix, seen) = (prefix.clone(), Arc::clone(&seen));
        async move {
            let socket = match from {
                IpAddr::V4(_) => TcpSocket::new_v4()?,
                IpAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(from, 0))?;
            let mut stream = socket.connect(to).await?;
            seen.lock().unwrap().push(stream.local_addr()?);
            stream.write_all(&prefix).await?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    let channel = Endpoint::from_shared(format!("http://{to}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await?;
    Ok((channel, sources))
}

/// One `Ask` call on `channel`, with `metadata` (name, value) pairs sent as
/// HTTP/2 headers.
pub async fn ask(channel: Channel, metadata: &[(&'static str, &str)]) -> Result<Seen, Status> {
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(Ask {});
    for (name, value) in metadata {
        request
            .metadata_mut()
            .append(*name, value.parse().expect("ASCII metadata"));
    }
    let path = PathAndQuery::from_static(ASK);
    let codec = ProstCodec::<Ask, Seen>::default();
    client
        .unary(request, path, codec)
        .await
        .map(Response::into_inner)
}
