//! `ProxyProtocolListener` against a plain `TcpListener`, both serving the
//! same axum app over loopback in the same run, with identical settings.
//!
//! - `keepalive/*`: requests over 32 persistent connections (the proxied
//!   client sent one v2 header when it connected).
//! - `new_connection/*`: `Connection: close` requests, one connection each
//!   (the proxied client writes a v2 header then the request).
//! - head of line (printed, not a criterion group): latency of one good
//!   client while 500 clients stall without sending their header, next to
//!   `proxy-protocol-rs` 0.8, a listener that reads the header inside
//!   `accept`. Bounded: the wait is cut after a cap and reported as `> cap`.
//!
//! `cargo bench --bench listener` prints criterion's figures, then an
//! interleaved A/B run (plain and proxied alternating in half-second slices,
//! for ratios that background load cannot skew) and the head-of-line figures.
//! Under `cargo test` each part runs once, briefly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::{extract::ConnectInfo, routing::get, Router};
use criterion::{Criterion, Throughput};
use realip::io::{ProxiedAddr, ProxyProtocolListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;

const KEEPALIVE_CONNS: usize = 32;
const KEEPALIVE_REQS: usize = 16;
const NEW_CONN_TASKS: usize = 16;
const NEW_CONN_EACH: usize = 8;
const STALLED: usize = 500;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const REQUEST_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

fn v2_header(src: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(src) = src else {
        unreachable!("IPv4 loopback only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
    h.extend_from_slice(&src.ip().octets());
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

async fn serve_plain() -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(a): ConnectInfo<SocketAddr>| async move { a.port().to_string() }),
    );
    tokio::spawn(async move {
        axum::serve(tcp, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    addr
}

async fn serve_proxied() -> SocketAddr {
    let listener = ProxyProtocolListener::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(a): ConnectInfo<ProxiedAddr>| async move {
            a.proxy_source().unwrap_or(a.peer()).port().to_string()
        }),
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A client socket from 127.0.0.`n`, so that new-connection rounds spread
/// their ports (and the server's TIME_WAIT entries) over many addresses.
async fn connect_from(n: u8, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)), 0))
        .unwrap();
    let s = sock.connect(to).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])
                .unwrap()
                .to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "server closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return;
        }
    }
}

async fn open_keepalive(addr: SocketAddr, proxied: bool) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    for i in 0..KEEPALIVE_CONNS {
        let mut s = connect_from(2 + (i % 200) as u8, addr).await;
        if proxied {
            s.write_all(&v2_header(s.local_addr().unwrap()))
                .await
                .unwrap();
        }
        conns.push(s);
    }
    conns
}

/// One round: every connection sends `KEEPALIVE_REQS` requests in turn.
async fn keepalive_round(conns: Vec<TcpStream>) -> Vec<TcpStream> {
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(512);
                for _ in 0..KEEPALIVE_REQS {
                    s.write_all(REQUEST).await.unwrap();
                    read_response(&mut s, &mut buf).await;
                }
                s
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// One round: `NEW_CONN_TASKS` clients each open `NEW_CONN_EACH`
/// connections in turn, one request each.
async fn new_connection_round(addr: SocketAddr, proxied: bool, round: u64) {
    let tasks: Vec<_> = (0..NEW_CONN_TASKS)
        .map(|t| {
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(512);
                for i in 0..NEW_CONN_EACH {
                    let n = 2 + ((round as usize * 131 + t * NEW_CONN_EACH + i) % 250) as u8;
                    let mut s = connect_from(n, addr).await;
                    let mut msg = Vec::with_capacity(128);
                    if proxied {
                        msg.extend_from_slice(&v2_header(s.local_addr().unwrap()));
                    }
                    msg.extend_from_slice(REQUEST_CLOSE);
                    s.write_all(&msg).await.unwrap();
                    buf.clear();
                    s.read_to_end(&mut buf).await.unwrap();
                    assert!(buf.starts_with(b"HTTP/1.1 200"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn throughput(c: &mut Criterion, client: &Runtime, plain: SocketAddr, proxied: SocketAddr) {
    let mut g = c.benchmark_group("keepalive");
    g.throughput(Throughput::Elements(
        (KEEPALIVE_CONNS * KEEPALIVE_REQS) as u64,
    ));
    for (name, addr, is_proxied) in [("plain", plain, false), ("proxied_v2", proxied, true)] {
        let mut conns = Some(client.block_on(open_keepalive(addr, is_proxied)));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    conns = Some(client.block_on(keepalive_round(conns.take().unwrap())));
                }
                start.elapsed()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("new_connection");
    g.throughput(Throughput::Elements(
        (NEW_CONN_TASKS * NEW_CONN_EACH) as u64,
    ));
    let mut round = 0u64;
    for (name, addr, is_proxied) in [("plain", plain, false), ("proxied_v2", proxied, true)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    round += 1;
                    client.block_on(new_connection_round(addr, is_proxied, round));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// Plain and proxied in alternating slices of `slice` each (the order
/// flips every pair), so a change in background load hits both alike.
/// Prints the overall rates and the median of the per-pair ratios.
fn interleaved(
    client: &Runtime,
    plain: SocketAddr,
    proxied: SocketAddr,
    pairs: usize,
    slice: Duration,
) {
    println!("\ninterleaved A/B, {pairs} pairs of {slice:?} slices (proxied / plain):");
    let mut conns = [
        Some(client.block_on(open_keepalive(plain, false))),
        Some(client.block_on(open_keepalive(proxied, true))),
    ];
    let mut round = 1_000_000u64;
    for kind in ["keepalive", "new_connection"] {
        let mut totals = [(0u64, Duration::ZERO); 2];
        let mut ratios = Vec::with_capacity(pairs);
        for pair in 0..pairs {
            let mut rates = [0f64; 2];
            let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let addr = [plain, proxied][which];
                let start = Instant::now();
                let mut done = 0u64;
                while start.elapsed() < slice {
                    if kind == "keepalive" {
                        let c = conns[which].take().unwrap();
                        conns[which] = Some(client.block_on(keepalive_round(c)));
                        done += (KEEPALIVE_CONNS * KEEPALIVE_REQS) as u64;
                    } else {
                        round += 1;
                        client.block_on(new_connection_round(addr, which == 1, round));
                        done += (NEW_CONN_TASKS * NEW_CONN_EACH) as u64;
                    }
                }
                let took = start.elapsed();
                totals[which].0 += done;
                totals[which].1 += took;
                rates[which] = done as f64 / took.as_secs_f64();
            }
            ratios.push(rates[1] / rates[0]);
        }
        ratios.sort_by(f64::total_cmp);
        let rate = |i: usize| totals[i].0 as f64 / totals[i].1.as_secs_f64();
        println!(
            "  {kind:<15} plain {:>8.0}/s  proxied_v2 {:>8.0}/s  overall ratio {:.3}  median pair ratio {:.3}",
            rate(0),
            rate(1),
            rate(1) / rate(0),
            ratios[ratios.len() / 2]
        );
    }
}

/// A good client's latency (connect, v2 header, request, whole answer)
/// while `stalled` clients hold connections open without sending anything,
/// capped at `cap`. The stalled clients connect concurrently: past the
/// listen backlog their connects wait in the kernel, as real ones would.
async fn good_client_latency(addr: SocketAddr, stalled: usize, cap: Duration) -> Option<Duration> {
    let holders: Vec<_> = (0..stalled)
        .map(|i| {
            tokio::spawn(async move {
                let s = connect_from(2 + (i % 100) as u8, addr).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(s);
            })
        })
        .collect();
    // Let the server see them before the good client arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let good = async {
        let mut s = connect_from(200, addr).await;
        let mut msg = v2_header(s.local_addr().unwrap());
        msg.extend_from_slice(REQUEST_CLOSE);
        s.write_all(&msg).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        assert!(
            buf.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
    };
    let served = tokio::time::timeout(cap, good).await.is_ok();
    let took = start.elapsed();
    for h in holders {
        h.abort();
    }
    served.then_some(took)
}

async fn serve_naive() -> SocketAddr {
    use proxy_protocol_rs::{
        config::ProxyProtocolConfig, listener::ProxyProtocolListener as Naive,
    };
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    // Same 5 s header deadline as ours.
    let config = ProxyProtocolConfig::builder()
        .header_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let app = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(async move {
        axum::serve(Naive::new(tcp, config), app).await.unwrap();
    });
    addr
}

fn head_of_line(server: &Runtime, client: &Runtime, full: bool) {
    let (stalled, cap) = if full {
        (STALLED, Duration::from_secs(10))
    } else {
        (50, Duration::from_secs(1))
    };
    let ours = server.block_on(serve_proxied());
    let naive = server.block_on(serve_naive());
    println!("\nhead of line: good client's latency while {stalled} clients stall (5 s header deadline, cap {cap:?}):");
    for (name, addr) in [
        ("realip ProxyProtocolListener", ours),
        ("proxy-protocol-rs 0.8 (header read in accept)", naive),
    ] {
        let took = client.block_on(good_client_latency(addr, stalled, cap));
        match took {
            Some(t) => println!("  {name:<48} {t:?}"),
            None => println!("  {name:<48} > {cap:?} (not served within the cap)"),
        }
        if name.starts_with("realip") {
            assert!(
                took.is_some_and(|t| t < Duration::from_secs(1)),
                "realip stalled: {took:?}"
            );
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
        .configure_from_args();
    let plain = server.block_on(serve_plain());
    let proxied = server.block_on(serve_proxied());
    throughput(&mut c, &client, plain, proxied);
    c.final_summary();
    if full {
        interleaved(&client, plain, proxied, 20, Duration::from_millis(500));
    } else {
        println!("\n(smoke run under `cargo test`: the figures below are not measurements)");
        interleaved(&client, plain, proxied, 1, Duration::from_millis(50));
    }
    head_of_line(&server, &client, full);
}
