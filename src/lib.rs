#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod forwarded;
pub mod proxy;
pub mod resolve;
pub mod trust;

#[cfg(feature = "serde")]
pub mod config;
#[cfg(feature = "tokio")]
pub mod io;

#[cfg(feature = "tower")]
pub mod extract;
#[cfg(feature = "filter")]
pub mod filter;
#[cfg(feature = "governor")]
pub mod governor;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(feature = "tower")]
pub mod layer;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(feature = "tower")]
pub mod rate_limit;
#[cfg(feature = "tower")]
pub mod testing;
#[cfg(feature = "tower")]
pub mod trace;

#[cfg(feature = "tower")]
pub use extract::{
    BaseUrl, ClientAddr, ClientHost, ClientIp, ClientScheme, Conclusive, FromRealIp, RealIp,
};
#[cfg(feature = "axum")]
pub use extract::{RealIpRejection, RejectionReason};
#[cfg(feature = "tokio")]
pub use io::{Mode, ProxiedAddr, ProxiedStream, ProxyAcceptor, ProxyProtocolListener};
#[cfg(feature = "axum")]
pub use layer::IntoMakeServiceWithRealIp;
#[cfg(feature = "tower")]
pub use layer::{ConnectionAddr, RealIpLayer, RealIpLayerBuilder, RealIpService};
pub use resolve::{
    ClientContext, ConfigError, ConfigErrorKind, ConnectionView, ContextHeaders, ContextSource,
    ContextStop, HeaderSource, Policy, PolicyBuilder, Resolution, Scheme, Source, Stop,
};
pub use trust::TrustedProxies;
