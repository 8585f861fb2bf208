//! [`bind`]: a TCP listener whose accept queue holds a burst.
//!
//! `tokio::net::TcpListener::bind` asks the kernel for a small backlog
//! (128 with mio 1.x, the standard library's value; 1024 with older mio).
//! A load balancer that opens a few thousand connections at once (a
//! restart, a failover, a traffic spike) overflows such a queue before the
//! accept loop gets to it: Linux then drops the handshake's last ACK
//! (`TcpExtListenOverflows` in `nstat`), and the connections that the
//! balancer already considers open are reset or stall on retransmits.
//! Go's `net.Listen` asks for the system maximum instead; so does this.

use std::io;
use std::net::SocketAddr;

use tokio::net::{lookup_host, TcpListener, TcpSocket, ToSocketAddrs};

/// Backlog used where the system maximum cannot be read: the Linux
/// default of `net.core.somaxconn` since 5.4. Kernels clamp a larger
/// request to their own maximum, so asking for more is harmless.
pub const FALLBACK_BACKLOG: u32 = 4096;

/// The kernel's cap on a listen backlog: `/proc/sys/net/core/somaxconn`
/// on Linux, [`FALLBACK_BACKLOG`] where it cannot be read.
pub fn max_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .map_or(FALLBACK_BACKLOG, |n| n.min(i32::MAX as u32))
}

/// Bind a TCP listener on `addr` with the largest backlog the system
/// allows ([`max_backlog`]), for listeners behind load balancers that open
/// connections in bursts.
///
/// Otherwise like `tokio::net::TcpListener::bind`: every address `addr`
/// resolves to is tried in turn, `SO_REUSEADDR` is set on Unix, and the
/// result goes straight into [`ProxyProtocolListener::new`](super::ProxyProtocolListener::new):
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use realip::io::ProxyProtocolListener;
///
/// let listener = ProxyProtocolListener::new(realip::io::bind("0.0.0.0:8080").await?)
///     .require_from(["10.0.0.0/8".parse().unwrap()]);
/// # let _ = listener;
/// # Ok(())
/// # }
/// ```
pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
    bind_with_backlog(addr, max_backlog()).await
}

/// [`bind`] with an explicit `backlog` (the kernel clamps it to its own
/// maximum; 0 is raised to 1).
pub async fn bind_with_backlog<A: ToSocketAddrs>(addr: A, backlog: u32) -> io::Result<TcpListener> {
    let backlog = backlog.clamp(1, i32::MAX as u32);
    let mut last = None;
    for addr in lookup_host(addr).await? {
        match bind_one(addr, backlog) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // What std and tokio do on Unix: a restarted server can bind again
    // while old connections sit in TIME_WAIT. On Windows the same option
    // would let another process steal the port.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_backlog_is_what_the_kernel_allows() {
        let n = max_backlog();
        match std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
            Ok(s) => assert_eq!(n, s.trim().parse::<u32>().unwrap()),
            Err(_) => assert_eq!(n, FALLBACK_BACKLOG),
        }
    }

    #[tokio::test]
    async fn binds_every_family_and_reports_resolution_failure() {
        let l = bind("127.0.0.1:0").await.unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let l = bind_with_backlog("[::1]:0", 0).await;
        // IPv6 may be disabled on the host; when present it binds.
        if let Ok(l) = l {
            assert!(l.local_addr().unwrap().is_ipv6());
        }
        let taken = l_addr(&bind("127.0.0.1:0").await.unwrap());
        let held = bind(taken).await.unwrap();
        assert_eq!(
            bind(taken).await.unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(held);
    }

    fn l_addr(l: &TcpListener) -> SocketAddr {
        l.local_addr().unwrap()
    }
}
