//! Passing the client on to the next hop.
//!
//! A service in the middle of a chain (a gateway, a reverse proxy, a TCP
//! relay) must tell the service behind it who the client is, or every
//! service behind it sees the gateway. Two ways, both read from the
//! [`RealIp`](crate::RealIp) that [`RealIpLayer`](crate::RealIpLayer)
//! resolved (nothing here re-reads a forwarded header to decide anything):
//!
//! - [`headers`]: write `X-Forwarded-For` or RFC 7239 `Forwarded` on the
//!   request about to be forwarded ([`ForwardHeaders::write`], or
//!   [`ForwardHeadersLayer`] in a client stack). By default the written
//!   chain is what this hop believed, from the client to the hop that
//!   handed the request over: entries the client wrote are dropped. The
//!   client context this hop believed (scheme, host, port, prefix) goes
//!   with it: `X-Forwarded-Proto`/`-Host`/`-Port`/`-Prefix`, or `proto=`
//!   and `host=` on the client's `Forwarded` element.
//!   [`ForwardHeaders::append`] keeps the incoming header and appends the
//!   peer instead, as a plain proxy does.
//! - [`connect`]: a PROXY protocol header (v1, or v2 with TLVs) naming the
//!   resolved client, written once before any application byte: a builder
//!   ([`UpstreamHeader`]), a tokio helper on any `AsyncWrite` and, with the
//!   `connect` feature, an HTTP client for one downstream client whose every
//!   upstream connection starts with it (`UpstreamClient`). A PROXY header
//!   describes one downstream connection, so an upstream connection that
//!   carries one is never shared between clients (see [`connect`]).

pub mod connect;
pub mod headers;

#[cfg(feature = "tokio")]
pub use connect::write_header;
#[cfg(feature = "connect")]
pub use connect::{ProxyConnector, UpstreamClient, UpstreamError, UpstreamFuture};
pub use connect::{ProxyVersion, SslSummary, UpstreamHeader, UpstreamHeaderError};
pub use headers::{
    Format, ForwardHeaders, ForwardHeadersLayer, ForwardHeadersService, InvalidNode, Node,
};
