#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod forwarded;
pub mod proxy;
pub mod resolve;
pub mod trust;

#[cfg(feature = "tokio")]
pub mod io;
