//! A scripted origin for provider lists on 127.0.0.1: plain HTTP, or
//! HTTPS with a leaf certificate from a generated CA ([`TestCa`]). Each
//! request gets the current [`Answer`]; the requests' conditional headers
//! are recorded. The accept loop stops when the `Origin` is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate it signed for `127.0.0.1` and `localhost`.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (DER): what a client must trust.
    pub ca_der: Vec<u8>,
    config: Arc<ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("leaf params");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server certificate");
        TestCa {
            ca_der: ca.der().to_vec(),
            config: Arc::new(config),
        }
    }
}

/// What the origin answers with.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `200` with this body; with an ETag, a request whose
    /// `If-None-Match` equals it gets `304`.
    Body { body: Bytes, etag: Option<String> },
    /// This status and a short body.
    Status(u16),
    /// Waits this long, then answers as the inner answer.
    Delay(Duration, Box<Answer>),
    /// `len` zero bytes streamed in 64 KiB frames, with `Content-Length`
    /// when `declared`, chunked otherwise.
    Stream { len: usize, declared: bool },
}

impl Answer {
    pub fn body(body: impl Into<Bytes>) -> Answer {
        Answer::Body {
            body: body.into(),
            etag: None,
        }
    }

    pub fn tagged(body: impl Into<Bytes>, etag: &str) -> Answer {
        Answer::Body {
            body: body.into(),
            etag: Some(etag.to_owned()),
        }
    }
}

/// One request as the origin saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub if_none_match: Option<String>,
    pub status: u16,
}

#[derive(Debug)]
struct Shared {
    answer: Answer,
    seen: Vec<Seen>,
}

/// The running origin; dropping it stops accepting.
#[derive(Debug)]
pub struct Origin {
    addr: SocketAddr,
    https: bool,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    /// Plain HTTP on 127.0.0.1.
    pub async fn http(answer: Answer) -> Origin {
        Self::start(answer, None).await
    }

    /// HTTPS on 127.0.0.1 with a certificate `ca` signed.
    pub async fn https(answer: Answer, ca: &TestCa) -> Origin {
        Self::start(answer, Some(TlsAcceptor::from(Arc::clone(&ca.config)))).await
    }

    async fn start(answer: Answer, tls: Option<TlsAcceptor>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let shared = Arc::new(Mutex::new(Shared {
            answer,
            seen: Vec::new(),
        }));
        let https = tls.is_some();
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| respond(Arc::clone(&shared), req));
                        let http = hyper::server::conn::http1::Builder::new();
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                                }
                            }
                            None => {
                                let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                            }
                        }
                    });
                }
            }
        });
        Origin {
            addr,
            https,
            shared,
            task,
        }
    }

    /// `http(s)://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Answers every later request with `answer`.
    pub fn set(&self, answer: Answer) {
        self.shared.lock().unwrap().answer = answer;
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

async fn respond(shared: Arc<Mutex<Shared>>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut answer = shared.lock().unwrap().answer.clone();
    while let Answer::Delay(d, inner) = answer {
        tokio::time::sleep(d).await;
        answer = *inner;
    }
    let reply = match answer {
        Answer::Body { body, etag } => {
            if etag.is_some() && etag == if_none_match {
                Response::builder()
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::new(Bytes::new()).boxed())
            } else {
                let mut r = Response::builder();
                if let Some(tag) = &etag {
                    r = r.header("etag", tag.as_str());
                }
                r.body(Full::new(body).boxed())
            }
        }
        Answer::Status(code) => Response::builder()
            .status(code)
            .body(Full::new(Bytes::from_static(b"origin error\n")).boxed()),
        Answer::Stream { len, declared } => Response::builder().body(
            Zeros {
                left: len,
                declared,
            }
            .boxed(),
        ),
        Answer::Delay(..) => unreachable!("delays are unwrapped above"),
    }
    .expect("valid response");
    shared.lock().unwrap().seen.push(Seen {
        path: req.uri().path().to_owned(),
        if_none_match,
        status: reply.status().as_u16(),
    });
    Ok(reply)
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// `left` zero bytes in 64 KiB frames.
struct Zeros {
    left: usize,
    declared: bool,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.declared {
            SizeHint::with_exact(self.left as u64)
        } else {
            SizeHint::default()
        }
    }
}
