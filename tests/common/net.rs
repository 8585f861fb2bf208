//! Loopback ports: pick a free one, wait until one listens or accepts.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// How long a peer gets to open its ports before the test fails.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind `:0`, read, drop).
pub fn free_port() -> u16 {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A TCP port on `ip` (a loopback address, e.g. `::1` or `127.0.0.12`)
/// that was free a moment ago.
pub fn free_port_on(ip: IpAddr) -> u16 {
    assert!(ip.is_loopback(), "tests may only bind loopback, not {ip}");
    let listener = TcpListener::bind((ip, 0))
        .unwrap_or_else(|e| panic!("cannot bind {ip}:0 to find a free port: {e}"));
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

/// Waits until `addr` accepts a TCP connection, for at most
/// [`STARTUP_TIMEOUT`]; on timeout panics with `context()` (e.g. the peer's
/// log). The probe connection is real: do not use it on a proxy whose
/// backend records connections (see [`wait_for_listen`]).
pub fn wait_for_accept(addr: SocketAddr, context: impl Fn() -> String) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{addr} did not accept within {STARTUP_TIMEOUT:?}\n{}",
                context()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a socket is in LISTEN state on `addr`, read from
/// `/proc/net/tcp{,6}`: no connection is made, so a proxy in front of a
/// recording backend sees no probe. Panics with `context()` on timeout.
pub fn wait_for_listen(addr: SocketAddr, context: impl Fn() -> String) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !is_listening(addr) {
        if Instant::now() >= deadline {
            panic!(
                "nothing listened on {addr} within {STARTUP_TIMEOUT:?}\n{}",
                context()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this network namespace has a TCP socket listening on `addr`.
pub fn is_listening(addr: SocketAddr) -> bool {
    let table = match addr {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let Ok(text) = fs::read_to_string(table) else {
        return false;
    };
    text.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        state == Some("0A") && local.and_then(parse_proc_addr) == Some(addr)
    })
}

/// `0100007F:1F90` (each 32-bit word printed in host byte order) to an address.
fn parse_proc_addr(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip_hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses `127.0.0.1:80`, `[::1]:80`, `ipv4@127.0.0.1:80`, `ipv6@::1:80`.
pub fn parse_listen_addr(spec: &str) -> Option<SocketAddr> {
    let spec = spec.trim_end_matches(';');
    if let Ok(addr) = spec.parse() {
        return Some(addr);
    }
    let rest = spec
        .strip_prefix("ipv4@")
        .or_else(|| spec.strip_prefix("ipv6@"))?;
    let (ip, port) = rest.rsplit_once(':')?;
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

/// `TcpExtListenOverflows` of this network namespace, read with `nstat`
/// (absolute value, without touching nstat's history file).
pub fn listen_overflows() -> u64 {
    let out = Command::new("nstat")
        .args(["-asz", "TcpExtListenOverflows"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run nstat (package iproute2): {e}"));
    assert!(out.status.success(), "nstat failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("TcpExtListenOverflows"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TcpExtListenOverflows in nstat output:\n{text}"))
}

/// The backlog of the socket listening on `addr`, from `ss` (its Send-Q).
pub fn listen_backlog(addr: SocketAddr) -> u32 {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{}", addr.port())])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ss (package iproute2): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("{addr} not listening per ss:\n{text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}
