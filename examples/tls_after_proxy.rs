//! TLS terminated by the app behind a TCP load balancer that sends the
//! PROXY protocol: the header comes first, in clear, then the TLS
//! handshake. The listener reads the header, then runs the TLS handshake
//! in its `with_handshake` hook, concurrently with other connections and
//! under the same deadline, so a slow client holds up nobody.
//!
//! ```sh
//! cargo run --example tls_after_proxy
//! curl -k --haproxy-protocol https://127.0.0.1:8443/
//! ```
//!
//! The certificate is self-signed and generated at startup; load yours
//! with `rustls-pemfile` or `CertificateDer::from_pem_file` instead.

use std::sync::Arc;

use axum::{routing::get, Router};
use realip::{ClientAddr, ProxyProtocolListener, RealIpLayer};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::TlsAcceptor;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tls = TlsAcceptor::from(Arc::new(tls_config()?));

    let listener = ProxyProtocolListener::new(realip::io::bind("127.0.0.1:8443").await?)
        // The balancer (here: loopback, for curl) must send a header.
        .require_from(["127.0.0.0/8".parse()?, "10.0.0.0/8".parse()?])
        // After the header, the TLS handshake; a failure closes the
        // connection and is logged as a `realip::io` event.
        .with_handshake(move |stream, _addr| tls.accept(stream));

    let app = Router::new().route(
        "/",
        get(|client: ClientAddr| async move { format!("hello {client}\n") }),
    );

    println!("listening on https://127.0.0.1:8443 (PROXY header, then TLS)");
    // The listener's address is a `ProxiedAddr` whatever the handshake
    // produced; the layer reads it once per connection.
    axum::serve(listener, RealIpLayer::new().into_make_service(app)).await?;
    Ok(())
}

fn tls_config() -> Result<ServerConfig, Box<dyn std::error::Error>> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
        .self_signed(&key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
