//! The accept loop survives running out of descriptors (`EMFILE`) without
//! spinning, and serves again once descriptors free up.
//!
//! The server runs in a child process (this test binary, re-run with
//! `ulimit -n` lowered by `sh`), so the limit does not touch other tests.

mod io_util;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use io_util::*;
use realip::io::{ProxiedAddr, ProxyProtocolListener};

const CHILD_ENV: &str = "REALIP_EMFILE_CHILD";
const FD_LIMIT: u32 = 32;
const SILENT: usize = 80;

/// CPU time (user + system) the process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ = 100
}

/// Kills and reaps the child server however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "server half of `accept_loop_survives_emfile`, run in a child process"]
fn emfile_server_process() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        panic!("run by the tests of this file with {CHILD_ENV} set");
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = if mode == "ranges" {
            // Outsiders held far longer than the test runs: only shedding
            // gives their descriptors back.
            ProxyProtocolListener::new(tcp().await)
                .require_from(["127.0.0.1/32".parse().unwrap()])
                .header_timeout(Duration::from_secs(60))
        } else {
            ProxyProtocolListener::new(tcp().await)
                .header_timeout_unclamped(Duration::from_millis(300))
        };
        println!("LISTENING {}", listener.local_addr().unwrap());
        axum::serve(
            listener,
            echo_app().into_make_service_with_connect_info::<ProxiedAddr>(),
        )
        .await
        .unwrap();
    });
}

/// Starts the server half with `ulimit -n FD_LIMIT` in `mode`; returns it,
/// its pid, its stderr and its address.
fn start_child(mode: &str) -> (KillOnDrop, u32, std::process::ChildStderr, SocketAddr) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {FD_LIMIT} && exec \"$0\" --ignored --exact emfile_server_process --nocapture --test-threads=1"
        ))
        .arg(&exe)
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            // libtest may have printed `test emfile_server_process ... ` first.
            if let Some((_, a)) = line.unwrap_or_default().split_once("LISTENING ") {
                let _ = tx.send(a.trim().parse::<SocketAddr>().unwrap());
                return;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("child server did not start");
    (child, pid, stderr, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_loop_survives_emfile() {
    let (child, pid, mut stderr, addr) = start_child("plain");

    // Far more silent connections than the child has descriptors.
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(connect_from(lo(2), addr).await);
    }
    let cpu_before = cpu_time(pid);
    let start = Instant::now();
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let answer = get_with(connect_from(lo(3), addr).await, &header).await;
    let waited = start.elapsed();
    let cpu = cpu_time(pid) - cpu_before;
    drop(child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    println!("good client served after {waited:?}; server used {cpu:?} CPU meanwhile");

    let body = body_200(answer);
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
    assert!(
        log.contains("accept error"),
        "no EMFILE was hit; log:\n{log}"
    );
    // A loop retrying EMFILE at once would burn a whole core all along.
    assert!(
        cpu < waited / 4,
        "accept loop spun: {cpu:?} CPU in {waited:?}"
    );
    drop(silent);
}

/// Outsiders (outside the `require_from` range) that exhaust the
/// descriptors are shed, oldest first, so the load balancer's client is
/// still accepted long before their deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_at_the_descriptor_limit_are_shed_for_the_balancer() {
    let (child, _pid, mut stderr, addr) = start_child("ranges");
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(connect_from(lo(2), addr).await);
    }
    // Let the server take all it can and hit its limit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let header = v2(sa("203.0.113.9:1234"), sa("10.0.0.1:80"), &[]);
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        get_with(connect_from(lo(1), addr).await, &header),
    )
    .await;
    let waited = start.elapsed();
    drop(child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    println!("balancer's client served after {waited:?} with {SILENT} outsiders at the limit");
    let answer = answer.unwrap_or_else(|_| panic!("not served within 5 s; log:\n{log}"));
    let body = body_200(answer);
    assert!(body.ends_with("source=203.0.113.9:1234"), "{body}");
    assert!(
        log.contains("accept error"),
        "no EMFILE was hit; log:\n{log}"
    );
    // Each shed-and-retry hits EMFILE again; the ERROR is rate-limited.
    let errors = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("accept error"))
        .count();
    assert!(
        errors <= 2,
        "{errors} accept ERROR lines in {waited:?}:\n{log}"
    );
    drop(silent);
}
