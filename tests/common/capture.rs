//! A raw loopback server that records the bytes each connection sent, PROXY
//! header and all, and optionally answers like a minimal HTTP/1.1 server.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The answer a capture sends once it has the request.
const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
/// No new bytes for this long ends a connection's recording.
const IDLE: Duration = Duration::from_millis(300);
/// A connection is recorded for at most this long.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// At most this many bytes are kept per connection.
const MAX_BYTES: usize = 1 << 20;
/// [`Capture::next`] waits this long for a connection before failing.
const NEXT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`Capture`] does after reading a connection's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer `200 OK` with body `ok` and close, so curl completes.
    Ok,
    /// Send nothing; close after the idle timeout (or when the peer closes).
    Silent,
}

/// One recorded connection.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The TCP peer (the proxy's outgoing address).
    pub peer: SocketAddr,
    /// Every byte received, from the first (the PROXY header) on.
    pub bytes: Vec<u8>,
}

/// A listening capture server on a loopback port; stops on drop.
///
/// Recording of a connection ends when an HTTP/1 request (headers plus
/// `Content-Length` body) is complete after any prefix, when the peer
/// closes, after [`IDLE`] without bytes, or at [`MAX_BYTES`].
#[derive(Debug)]
pub struct Capture {
    addr: SocketAddr,
    rx: Receiver<Captured>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// On 127.0.0.1, answering `200 OK`.
    pub fn bind() -> Capture {
        Capture::bind_on(IpAddr::V4(Ipv4Addr::LOCALHOST), Reply::Ok)
    }

    /// On ::1, answering `200 OK`.
    pub fn bind_v6() -> Capture {
        Capture::bind_on(IpAddr::V6(Ipv6Addr::LOCALHOST), Reply::Ok)
    }

    /// On `ip` (loopback), with the given reply behaviour.
    pub fn bind_on(ip: IpAddr, reply: Reply) -> Capture {
        assert!(ip.is_loopback(), "capture may only bind loopback, not {ip}");
        let listener = TcpListener::bind((ip, 0)).expect("bind capture listener");
        listener
            .set_nonblocking(true)
            .expect("non-blocking capture listener");
        let addr = listener.local_addr().expect("capture local_addr");
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = Arc::clone(&stop);
        let accept_thread = thread::Builder::new()
            .name(format!("capture-{addr}"))
            .spawn(move || accept_loop(&listener, &accept_stop, &tx, reply))
            .expect("spawn capture thread");
        Capture {
            addr,
            rx,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// The listening address (put it in the proxy's `server` line).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next finished connection; panics after 10 s without one.
    pub fn next(&self) -> Captured {
        self.next_timeout(NEXT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no connection captured on {} in {NEXT_TIMEOUT:?}",
                self.addr
            )
        })
    }

    /// The next finished connection, or `None` after `timeout`.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Captured> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, tx: &Sender<Captured>, reply: Reply) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let tx = tx.clone();
                // Each connection is bounded by CONNECTION_DEADLINE.
                let _ = thread::Builder::new()
                    .name(format!("capture-conn-{peer}"))
                    .spawn(move || {
                        let bytes = record(stream, reply);
                        let _ = tx.send(Captured { peer, bytes });
                    });
            }
            // WouldBlock (nothing pending) or a transient accept error.
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn record(mut stream: TcpStream, reply: Reply) -> Vec<u8> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(25)));
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    let mut bytes = Vec::new();
    let mut last_data = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                last_data = Instant::now();
                if bytes.len() >= MAX_BYTES || http_request_complete(&bytes) {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline || now - last_data >= IDLE {
            break;
        }
    }
    bytes.truncate(MAX_BYTES);
    if reply == Reply::Ok {
        let _ = stream.write_all(OK_RESPONSE);
        let _ = stream.flush();
    }
    let _ = stream.shutdown(Shutdown::Both);
    bytes
}

/// Whether `bytes` end with a whole HTTP/1 request (after any prefix such as
/// a PROXY header): request line, headers, and `Content-Length` body bytes.
fn http_request_complete(bytes: &[u8]) -> bool {
    let Some(version_at) = find(bytes, b" HTTP/1.") else {
        return false;
    };
    let Some(end) = find(&bytes[version_at..], b"\r\n\r\n").map(|i| version_at + i + 4) else {
        return false;
    };
    let headers = String::from_utf8_lossy(&bytes[version_at..end]);
    let body_len = headers
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + body_len
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
