//! Sockets: read the PROXY protocol header off real connections.
//!
//! - [`ProxyProtocolListener`] wraps a listener (an `axum::serve::Listener`
//!   with the `axum` feature): handshakes run concurrently, each under its
//!   own deadline, and only finished connections come out of `accept`, with
//!   a [`ProxiedAddr`] (also axum's `ConnectInfo`).
//! - [`ProxyAcceptor`] reads the header off any `AsyncRead + AsyncWrite`
//!   and returns a [`ProxiedStream`], for servers that drive hyper
//!   themselves or put TLS after the PROXY header.
//!
//! Both read with the same limits: a per-source [`Mode`] (default
//! [`Mode::Require`]), a deadline (default 5 s, at least 3 s), and a size
//! cap (default 4096 bytes) that nothing is ever read or allocated past.
//! Bytes that arrive behind the header are replayed to the application.
//!
//! The listener keeps two handshake budgets, one for peers in `require` /
//! `optional` ranges and one for everyone else (which sheds its oldest
//! when full), so that clients outside the ranges cannot delay the load
//! balancer; [`bind`] gives the socket an accept queue sized for bursts.
//! Outcomes are counted in [`ListenerStats`]; warnings are rate-limited.

mod acceptor;
mod addr;
mod bind;
mod listener;
mod policy;
mod stats;
mod stream;

pub use acceptor::{
    Accept, HandshakeError, ProxyAcceptor, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_HEADER_LEN,
    MIN_HEADER_TIMEOUT, MIN_MAX_HEADER_LEN,
};
pub use addr::ProxiedAddr;
pub use bind::{bind, bind_with_backlog, max_backlog, FALLBACK_BACKLOG};
#[cfg(feature = "axum")]
pub use listener::FromAxum;
pub use listener::{
    BoxError, Handshake, HandshakeFn, HandshakeFuture, Incoming, NoHandshake,
    ProxyProtocolListener, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_UNTRUSTED,
};
pub use policy::{Mode, SourcePolicy};
pub use stats::{ListenerStats, StatsSnapshot};
pub use stream::ProxiedStream;
