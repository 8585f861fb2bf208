//! One raw exchange over loopback TCP: send exact bytes (a PROXY header,
//! a hand-written request), read until the server closes, split the
//! answer. For differential tests, where any client library would
//! normalize the very bytes under test.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// What the server did with one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// This end of the connection (what the server saw as its peer).
    pub local: SocketAddr,
    /// The status of an HTTP answer; `None` when the server closed, reset
    /// or stayed silent without one.
    pub status: Option<u16>,
    /// The answer's body (empty without an answer).
    pub body: String,
}

impl Exchange {
    /// The body of a `200` answer.
    pub fn ok_body(&self) -> Option<&str> {
        (self.status == Some(200)).then_some(self.body.as_str())
    }
}

/// Connects to `to` (loopback only), writes `bytes`, reads until EOF,
/// a reset, or `deadline`; a server still silent at the deadline counts as
/// no answer (it is waiting for bytes that never come).
pub async fn exchange(to: SocketAddr, bytes: &[u8], deadline: Duration) -> Exchange {
    exchange_from(None, to, bytes, deadline).await
}

/// [`exchange`] from the loopback source `from` (e.g. `127.0.0.9`), or
/// from the kernel's choice with `None`.
pub async fn exchange_from(
    from: Option<IpAddr>,
    to: SocketAddr,
    bytes: &[u8],
    deadline: Duration,
) -> Exchange {
    assert!(
        to.ip().is_loopback(),
        "tests only connect to loopback, not {to}"
    );
    let connect = async {
        let sock = match to {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = from {
            assert!(ip.is_loopback(), "tests only bind loopback, not {ip}");
            sock.bind(SocketAddr::new(ip, 0))?;
        }
        sock.connect(to).await
    };
    let mut s = tokio::time::timeout(deadline, connect)
        .await
        .unwrap_or_else(|_| panic!("connect to {to} timed out"))
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
    s.set_nodelay(true).expect("set_nodelay");
    let local = s.local_addr().expect("local_addr of a connected socket");
    // A server that refused the header may close before all is written.
    let mut out = Vec::new();
    if s.write_all(bytes).await.is_ok() {
        let _ = tokio::time::timeout(deadline, s.read_to_end(&mut out)).await;
    }
    let text = String::from_utf8_lossy(&out);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok());
    let body = match (status, text.split_once("\r\n\r\n")) {
        (Some(_), Some((_, body))) => body.to_owned(),
        _ => String::new(),
    };
    Exchange {
        local,
        status,
        body,
    }
}
