//! A bounded `curl` run: status, body, negotiated TLS facts, local address.

use std::ffi::OsString;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::peers::find_binary;

/// A `curl` command line under construction. Always added: `-q` (no
/// `~/.curlrc`), `--noproxy '*'` (never an environment proxy), `-sS -v`
/// (stderr carries the TLS/ALPN lines), `--max-time`, `-w '%{json}'`.
#[derive(Clone, Debug)]
pub struct Curl {
    url: String,
    args: Vec<OsString>,
    max_time: Duration,
}

/// What one curl run produced. Curl failing (exit code != 0) is not a
/// panic: tests that expect a refused or cut connection read `exit`.
#[derive(Clone, Debug)]
pub struct CurlOutput {
    /// curl's exit code (0 = success; 28 = timeout; 52 = empty reply; ...).
    pub exit: i32,
    /// HTTP status, 0 when no response arrived.
    pub status: u16,
    /// Response body.
    pub body: Vec<u8>,
    /// curl's stderr (`-v` trace and errors).
    pub stderr: String,
    /// `-w '%{json}'`: `local_ip`, `local_port`, `remote_ip`, `http_version`, ...
    pub info: serde_json::Value,
}

impl Curl {
    /// `curl <url>`, HTTP/1.1, 10 s max time.
    pub fn new(url: impl Into<String>) -> Curl {
        Curl {
            url: url.into(),
            args: vec!["--http1.1".into()],
            max_time: Duration::from_secs(10),
        }
    }

    /// `--interface <ip>`: the connection's source address (127.0.0.N).
    pub fn interface(self, ip: IpAddr) -> Curl {
        assert!(ip.is_loopback(), "curl may only use loopback, not {ip}");
        self.arg("--interface").arg(ip.to_string())
    }

    /// `--local-port <port>`: a fixed source port.
    pub fn local_port(self, port: u16) -> Curl {
        self.arg("--local-port").arg(port.to_string())
    }

    /// `--haproxy-protocol`: curl sends a PROXY v1 header first.
    pub fn haproxy_protocol(self) -> Curl {
        self.arg("--haproxy-protocol")
    }

    /// Offer h2 (ALPN `h2,http/1.1` over TLS) instead of HTTP/1.1 only.
    pub fn http2(mut self) -> Curl {
        self.args.retain(|a| a != "--http1.1");
        self.arg("--http2")
    }

    /// `-k`: accept the test's self-signed certificate.
    pub fn insecure(self) -> Curl {
        self.arg("-k")
    }

    /// `-H <line>`, e.g. `"X-Forwarded-For: 203.0.113.7"`.
    pub fn header(self, line: &str) -> Curl {
        self.arg("-H").arg(line)
    }

    /// `--resolve host:port:ip`, so a host name (TLS SNI, `Host`) reaches loopback.
    pub fn resolve(self, host: &str, port: u16, ip: IpAddr) -> Curl {
        let ip = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.arg("--resolve").arg(format!("{host}:{port}:{ip}"))
    }

    /// `--cert <pem> --key <pem>`: present a client certificate.
    pub fn client_cert(self, cert_pem: &std::path::Path, key_pem: &std::path::Path) -> Curl {
        self.arg("--cert")
            .arg(cert_pem.as_os_str())
            .arg("--key")
            .arg(key_pem.as_os_str())
    }

    /// `--max-time`; the process is also killed shortly after it.
    pub fn max_time(mut self, max_time: Duration) -> Curl {
        self.max_time = max_time;
        self
    }

    /// Any other curl argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Curl {
        self.args.push(arg.into());
        self
    }

    /// Runs curl to completion (bounded by `max_time` + 2 s).
    ///
    /// Blocks the calling thread: from an async test whose server runs on
    /// the same runtime, use [`Curl::run_async`] instead.
    pub fn run(self) -> CurlOutput {
        let binary = find_binary("curl");
        let dir = tempfile::Builder::new()
            .prefix("realip-curl-")
            .tempdir()
            .expect("create curl temp dir");
        let body_path = dir.path().join("body");
        let info_path = dir.path().join("info.json");
        let err_path = dir.path().join("stderr");
        let mut child = Command::new(binary)
            .arg("-q")
            .args(["--noproxy", "*", "-sS", "-v"])
            .arg("--max-time")
            .arg(format!("{:.3}", self.max_time.as_secs_f64()))
            .arg("-o")
            .arg(&body_path)
            .arg("-w")
            .arg("%{json}")
            .args(&self.args)
            .arg(&self.url)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&info_path).expect("create curl stdout file"))
            .stderr(fs::File::create(&err_path).expect("create curl stderr file"))
            .spawn()
            .expect("spawn curl");
        let deadline = Instant::now() + self.max_time + Duration::from_secs(2);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for curl") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "curl {} {:?} did not exit after --max-time\n{}",
                    self.url,
                    self.args,
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(5));
        };
        let info_text = fs::read_to_string(&info_path).unwrap_or_default();
        let info = serde_json::from_str(&info_text).unwrap_or(serde_json::Value::Null);
        CurlOutput {
            exit: status.code().unwrap_or(-1),
            status: info["http_code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(0),
            body: fs::read(&body_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            info,
        }
    }
}

impl Curl {
    /// [`Curl::run`] on tokio's blocking pool, so a server under test on a
    /// `current_thread` runtime keeps serving while curl waits for it.
    pub async fn run_async(self) -> CurlOutput {
        tokio::task::spawn_blocking(move || self.run())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

impl CurlOutput {
    /// Panics with curl's trace unless it exited 0 with HTTP `status`.
    pub fn expect_status(&self, status: u16) -> &CurlOutput {
        assert!(
            self.exit == 0 && self.status == status,
            "expected curl to get HTTP {status}, got exit {} status {}\n{}",
            self.exit,
            self.status,
            self.stderr
        );
        self
    }

    /// Body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The connection's local (source) address curl used.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.info["local_ip"].as_str()?.parse().ok()?;
        let port = u16::try_from(self.info["local_port"].as_u64()?).ok()?;
        Some(SocketAddr::new(ip, port))
    }

    /// `("TLSv1.3", "TLS_AES_256_GCM_SHA384")` from curl's
    /// `SSL connection using <version> / <cipher>` trace line (OpenSSL names,
    /// the same ones haproxy's OpenSSL reports).
    pub fn tls(&self) -> Option<(String, String)> {
        let rest = self
            .stderr
            .lines()
            .find_map(|l| l.split_once("SSL connection using ").map(|(_, r)| r))?;
        let (version, cipher) = rest.split_once(" / ")?;
        // curl >= 8 appends " / <group> / <sigalg>"; keep the cipher only.
        let cipher = cipher.split(" / ").next().unwrap_or(cipher);
        Some((version.trim().to_owned(), cipher.trim().to_owned()))
    }

    /// The request head curl sent (request line, headers, blank line),
    /// rebuilt from the `> ` lines of its `-v` trace with CRLF endings.
    /// HTTP/1 only: for h2 curl traces pseudo-headers, not wire bytes.
    pub fn request_head(&self) -> Option<Vec<u8>> {
        let mut head = Vec::new();
        let mut in_head = false;
        for line in self.stderr.lines() {
            let Some(rest) = line.strip_prefix('>') else {
                if in_head {
                    break;
                }
                continue;
            };
            in_head = true;
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            head.extend_from_slice(rest.trim_end_matches('\r').as_bytes());
            head.extend_from_slice(b"\r\n");
            if rest.trim().is_empty() {
                return Some(head);
            }
        }
        None
    }

    /// The ALPN protocol the server picked, from `ALPN: server accepted <p>`.
    pub fn alpn(&self) -> Option<String> {
        self.stderr.lines().find_map(|l| {
            l.split_once("ALPN: server accepted ")
                .or_else(|| l.split_once("ALPN, server accepted to use "))
                .map(|(_, p)| p.trim().to_owned())
        })
    }
}
