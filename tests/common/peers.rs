//! haproxy and nginx as real peers: config in a fresh temp dir, foreground
//! process, readiness from the listen table, kill + reap on `Drop`.

use std::fmt;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::net::{is_listening, parse_listen_addr, STARTUP_TIMEOUT};

const INSTALL_HINT: &str = "install the real peers with \
    `apt-get install -y haproxy nginx libnginx-mod-stream` (or run ./scripts/check-all)";

/// Where Debian puts the nginx stream module.
pub const NGINX_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Finds `name` on `PATH` or in the sbin dirs (a test's `PATH` may lack them).
/// Panics with the install hint when it is missing: a real-peer test fails,
/// it never skips.
pub fn find_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found: {INSTALL_HINT}"))
}

/// A started peer process; killed and reaped when dropped.
struct PeerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    config: PathBuf,
    // Removed only after `Drop::drop` has killed and reaped the child, so
    // the process never outlives its files.
    dir: TempDir,
}

impl PeerProcess {
    /// Spawns `program args` with stdout+stderr into `<dir>/<name>.log`.
    ///
    /// `setpriv --pdeathsig KILL` makes the kernel kill the peer if the
    /// spawning thread dies without running `Drop` (test binary killed), so
    /// no orphan survives. Start peers from the test's own thread.
    fn spawn(
        name: &'static str,
        dir: TempDir,
        config: PathBuf,
        program: &Path,
        args: &[&str],
    ) -> Self {
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("create peer log file");
        let err = out.try_clone().expect("clone peer log file handle");
        let mut cmd = if Path::new("/usr/bin/setpriv").is_file() {
            let mut cmd = Command::new("/usr/bin/setpriv");
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        let child = cmd
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        PeerProcess {
            name,
            child,
            log,
            config,
            dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    /// Log and config, for panic messages.
    fn report(&self) -> String {
        let config = fs::read_to_string(&self.config).unwrap_or_default();
        format!(
            "--- {} log ({}) ---\n{}\n--- {} config ({}) ---\n{config}",
            self.name,
            self.log.display(),
            self.log(),
            self.name,
            self.config.display(),
        )
    }

    /// Waits until every address listens; fails at once if the peer exits.
    fn wait_ready(&mut self, addrs: &[SocketAddr]) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited during startup with {status}\n{}",
                    self.name,
                    self.report()
                );
            }
            let waiting: Vec<_> = addrs.iter().filter(|a| !is_listening(**a)).collect();
            if waiting.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not listen on {waiting:?} within {STARTUP_TIMEOUT:?}\n{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl fmt::Debug for PeerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerProcess")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// Addresses after `keyword` at the start of a config statement
/// (`bind 127.0.0.1:8080 ssl ...`, `listen [::1]:80 proxy_protocol;`).
/// Statements end at a newline, `;`, `{` or `}`, so one-line nginx blocks work.
fn listen_addrs(config: &str, keyword: &str) -> Vec<SocketAddr> {
    let addrs: Vec<SocketAddr> = config
        .split(['\n', ';', '{', '}'])
        .filter_map(|statement| {
            let mut words = statement.split_whitespace();
            (words.next() == Some(keyword))
                .then(|| words.next().and_then(parse_listen_addr))
                .flatten()
        })
        .collect();
    assert!(
        !addrs.is_empty(),
        "no numeric `{keyword} <ip>:<port>` in the config: the harness waits \
         for those to listen\n{config}"
    );
    addrs
}

/// Runs a config check (`haproxy -c`, `nginx -t`); panics with its output.
fn check_config(name: &str, cmd: &mut Command, text: &str) {
    let check = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the {name} config check: {e}"));
    if !check.status.success() {
        panic!(
            "{name} rejected its config ({}):\n{}{}\n--- config ---\n{text}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
        );
    }
}

/// A running `haproxy -db`, killed on drop.
///
/// Start it on the test's own thread (in an async test: in the test body,
/// not in `spawn_blocking`): the peer is bound to the thread that spawned it.
///
/// The harness prepends a `global` section (single thread, log to stderr,
/// which lands in [`Haproxy::log`]) and a `defaults` section (`mode tcp`,
/// `option tcplog`, 5 s/10 s timeouts); the body adds frontends, backends
/// and may add its own `defaults` (later sections win). Readiness: every
/// numeric `bind` address is in LISTEN state; no probe connection is made.
#[derive(Debug)]
pub struct Haproxy {
    process: PeerProcess,
}

impl Haproxy {
    /// Validates (`haproxy -c`) and starts haproxy with `config_body`.
    pub fn start(config_body: &str) -> Haproxy {
        Haproxy::start_with_maxconn(config_body, 512)
    }

    /// [`Haproxy::start`] with another global `maxconn` (haproxy ignores a
    /// second one in the body), for load tests.
    pub fn start_with_maxconn(config_body: &str, maxconn: u32) -> Haproxy {
        let binary = find_binary("haproxy");
        let dir = tempfile::Builder::new()
            .prefix("realip-haproxy-")
            .tempdir()
            .expect("create haproxy temp dir");
        let config = dir.path().join("haproxy.cfg");
        let text = format!(
            "global\n\
             \x20   nbthread 1\n\
             \x20   maxconn {maxconn}\n\
             \x20   log stderr format raw local0 info\n\
             \n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   log global\n\
             \x20   option tcplog\n\
             \x20   timeout connect 5s\n\
             \x20   timeout client 10s\n\
             \x20   timeout server 10s\n\
             \n\
             {config_body}\n"
        );
        fs::write(&config, &text).expect("write haproxy config");

        check_config(
            "haproxy",
            Command::new(&binary).arg("-c").arg("-f").arg(&config),
            &text,
        );

        let config_arg = config.to_str().expect("utf-8 temp path").to_owned();
        let mut process =
            PeerProcess::spawn("haproxy", dir, config, &binary, &["-db", "-f", &config_arg]);
        process.wait_ready(&listen_addrs(config_body, "bind"));
        Haproxy { process }
    }

    /// haproxy's stderr so far: startup messages and one `tcplog` line per
    /// finished connection.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The temp dir holding config and log.
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// Process id (for diagnostics).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

/// A running single-process nginx (`master_process off`, `daemon off`),
/// killed on drop. Start it on the test's own thread, like [`Haproxy`].
///
/// The harness writes the main context (stream module, pid file, error log
/// to stderr, `events`) and then the body, which holds `stream { .. }` and/or
/// `http { .. }` blocks. Into each `http {` block it injects access log and
/// temp paths inside the temp dir. Readiness: every numeric `listen` address
/// is in LISTEN state; no probe connection is made.
#[derive(Debug)]
pub struct Nginx {
    process: PeerProcess,
}

impl Nginx {
    /// nginx as an HTTP reverse proxy on `127.0.0.1:<port>` to `upstream`,
    /// connecting from `bind` and appending the client to
    /// `X-Forwarded-For` (`$proxy_add_x_forwarded_for`); returns it and
    /// its port.
    pub fn xff_proxy(upstream: std::net::SocketAddr, bind: std::net::IpAddr) -> (Nginx, u16) {
        let port = super::free_port();
        let nginx = Nginx::start(&format!(
            "http {{\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port};\n\
             \x20       location / {{\n\
             \x20           proxy_pass http://{upstream};\n\
             \x20           proxy_bind {bind};\n\
             \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             \x20       }}\n\
             \x20   }}\n\
             }}\n"
        ));
        (nginx, port)
    }

    /// Starts nginx with `config_body`.
    pub fn start(config_body: &str) -> Nginx {
        let binary = find_binary("nginx");
        if !Path::new(NGINX_STREAM_MODULE).is_file() {
            panic!("nginx stream module not found at {NGINX_STREAM_MODULE}: {INSTALL_HINT}");
        }
        let dir = tempfile::Builder::new()
            .prefix("realip-nginx-")
            .tempdir()
            .expect("create nginx temp dir");
        let root = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let http_paths = format!(
            "http {{\n\
             \x20   access_log {root}/access.log;\n\
             \x20   client_body_temp_path {root}/client_body;\n\
             \x20   proxy_temp_path {root}/proxy;\n\
             \x20   fastcgi_temp_path {root}/fastcgi;\n\
             \x20   uwsgi_temp_path {root}/uwsgi;\n\
             \x20   scgi_temp_path {root}/scgi;\n"
        );
        let body: String = config_body
            .lines()
            .map(|line| {
                if line.trim() == "http {" {
                    http_paths.clone()
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let config = dir.path().join("nginx.conf");
        let text = format!(
            "load_module {NGINX_STREAM_MODULE};\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {root}/nginx.pid;\n\
             error_log stderr info;\n\
             events {{ worker_connections 256; }}\n\
             \n\
             {body}"
        );
        fs::write(&config, &text).expect("write nginx config");

        let config_arg = config.to_str().expect("utf-8 temp path").to_owned();
        check_config(
            "nginx",
            Command::new(&binary).args([
                "-t",
                "-q",
                "-p",
                &root,
                "-e",
                "stderr",
                "-c",
                &config_arg,
            ]),
            &text,
        );
        let mut process = PeerProcess::spawn(
            "nginx",
            dir,
            config,
            &binary,
            &[
                "-p",
                &root,
                "-e",
                "stderr",
                "-c",
                &config_arg,
                "-g",
                "daemon off;",
            ],
        );
        process.wait_ready(&listen_addrs(config_body, "listen"));
        Nginx { process }
    }

    /// nginx's error log (stderr) so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The temp dir holding config, logs and temp paths.
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// Process id (for diagnostics).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}
