//! One GET per refresh: TCP or rustls, hyper's HTTP/1.1 client
//! connection, conditional headers, and the body read up to the cap.

use super::{RefreshError, State};
use http::header::{
    CONNECTION, CONTENT_LENGTH, ETAG, HOST, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
    USER_AGENT,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::fmt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// What one fetch brought back.
pub(super) enum Fetched {
    NotModified,
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

impl State {
    /// One GET over a fresh connection (one request an hour gains nothing
    /// from a pool), the body read up to the cap.
    pub(super) async fn fetch(
        &self,
        url: &Uri,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Fetched, RefreshError> {
        let connect = |e: &dyn fmt::Display| RefreshError::Connect(e.to_string());
        let https = url.scheme_str() == Some("https");
        let host = url.host().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((bare, port))
            .await
            .map_err(|e| connect(&e))?;
        let authority = url.authority().map_or(host, |a| a.as_str());
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, concat!("realip/", env!("CARGO_PKG_VERSION")))
            .header(CONNECTION, "close");
        if let Some(tag) = etag {
            req = req.header(IF_NONE_MATCH, tag);
        }
        if let Some(date) = last_modified {
            req = req.header(IF_MODIFIED_SINCE, date);
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| connect(&e))?;
        if https {
            let name = ServerName::try_from(bare.to_owned()).map_err(|e| connect(&e))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| connect(&e))?;
            self.exchange(TokioIo::new(tls), req).await
        } else {
            self.exchange(TokioIo::new(tcp), req).await
        }
    }

    pub(super) async fn exchange<IO>(
        &self,
        io: IO,
        req: Request<Empty<Bytes>>,
    ) -> Result<Fetched, RefreshError>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let connect = |e: &dyn fmt::Display| RefreshError::Connect(e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| connect(&e))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let resp = sender.send_request(req).await.map_err(|e| connect(&e))?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified),
            s => return Err(RefreshError::Status(s.as_u16())),
        }
        let limit = self.max_bytes;
        let declared = header(CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(RefreshError::TooLarge { limit });
        }
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| connect(&e))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(RefreshError::TooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        drop(driver);
        Ok(Fetched::Body {
            body: buf,
            etag,
            last_modified,
        })
    }
}

/// The connection task ends with the fetch, whatever way it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
