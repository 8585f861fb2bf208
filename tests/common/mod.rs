//! Real-peer test harness shared by every integration test (`mod common;`).
//!
//! Everything here is loopback-only, uses dynamic ports and private temp
//! dirs (tests run in parallel, in one process and across test binaries),
//! and is bounded by timeouts. Peers (haproxy, nginx) are killed and reaped
//! on `Drop`, also while a failing test unwinds.
//!
//! - [`net`]: free loopback ports, waiting for a port to listen or accept,
//!   a listener's backlog (`ss`) and the kernel's listen overflows (`nstat`).
//! - [`peers`]: [`Haproxy`] and [`Nginx`] started from a config body.
//! - [`curl`]: a bounded `curl` run returning status, body and TLS facts.
//! - [`capture`]: a raw loopback server recording the bytes each connection sent.
//! - [`examples`]: example binaries (edge_proxy) and binaries (whoami) built by cargo and run as servers.
//! - [`grpc`]: a tonic service and client without codegen, reporting what each call saw.
//! - [`tls`]: self-signed certificates for haproxy and rustls.
//! - [`raw`]: one exchange of exact bytes over loopback TCP.
//! - [`seeded`]: a deterministic generator for differential inputs.
//! - [`origin`]: a scripted HTTP/HTTPS origin serving provider range lists.

// Each test binary uses a different subset of this module, and its items
// are `pub` so sibling modules and tests can share them.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod capture;
pub mod curl;
pub mod examples;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod net;
pub mod origin;
pub mod peers;
pub mod raw;
pub mod seeded;
pub mod tls;

pub use capture::{Capture, Captured, Reply};
pub use curl::{Curl, CurlOutput};
pub use net::{free_port, free_port_on, wait_for_accept, wait_for_listen};
pub use origin::{Answer, Origin, TestCa};
pub use peers::{Haproxy, Nginx};
pub use raw::{exchange, exchange_from, Exchange};
pub use seeded::Seeded;
pub use tls::SelfSigned;
