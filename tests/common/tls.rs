//! Self-signed certificates: one PEM file (cert + key) for haproxy's `crt`,
//! separate PEM/DER for curl and tokio-rustls.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use tempfile::TempDir;

/// A self-signed certificate and its key, also written to a temp dir.
#[derive(Debug)]
pub struct SelfSigned {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key (PKCS#8), PEM.
    pub key_pem: String,
    /// Certificate, DER (for `rustls::pki_types::CertificateDer`).
    pub cert_der: Vec<u8>,
    /// Private key, PKCS#8 DER (for `rustls::pki_types::PrivatePkcs8KeyDer`).
    pub key_der: Vec<u8>,
    dir: TempDir,
}

impl SelfSigned {
    /// A certificate for `names` (DNS names or IP literals as SANs) with
    /// subject CN `common_name`.
    pub fn new(common_name: &str, names: &[&str]) -> SelfSigned {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("certificate names");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let key = KeyPair::generate().expect("generate key pair");
        let cert = params.self_signed(&key).expect("self-sign certificate");
        let dir = tempfile::Builder::new()
            .prefix("realip-tls-")
            .tempdir()
            .expect("create tls temp dir");
        let ss = SelfSigned {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            dir,
        };
        fs::write(ss.cert_path(), &ss.cert_pem).expect("write cert pem");
        fs::write(ss.key_path(), &ss.key_pem).expect("write key pem");
        fs::write(ss.combined_path(), format!("{}{}", ss.cert_pem, ss.key_pem))
            .expect("write combined pem");
        ss
    }

    /// Certificate + key in one PEM file, as haproxy's `bind ... ssl crt` wants.
    pub fn combined_path(&self) -> PathBuf {
        self.dir.path().join("combined.pem")
    }

    /// Certificate alone, PEM (curl `--cert`/`--cacert`, haproxy `ca-file`).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Key alone, PEM (curl `--key`).
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The temp dir holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
