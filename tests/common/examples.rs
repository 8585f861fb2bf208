//! Example and `[[bin]]` binaries as real processes: built (or found fresh) by cargo
//! once per test process, started on a loopback port, killed and reaped on
//! drop.
//!
//! Why cargo is asked each time (once per binary and process): `cargo test
//! --all-targets` builds examples only as test harnesses, plain `cargo test
//! --test X` does not build them at all, and a binary left by an earlier
//! build may be stale. `cargo build --example NAME` with this test's
//! features and target dir is a no-op when fresh. The path comes from
//! cargo's JSON messages (`executable`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::net::is_listening;

/// How long a started example gets to listen.
pub const STARTUP: Duration = Duration::from_secs(10);
/// Bound on building an example.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// The package features this test binary was compiled with.
fn features() -> Vec<&'static str> {
    [
        ("default", cfg!(feature = "default")),
        ("axum", cfg!(feature = "axum")),
        ("tokio", cfg!(feature = "tokio")),
        ("tower", cfg!(feature = "tower")),
        ("outbound", cfg!(feature = "outbound")),
        ("connect", cfg!(feature = "connect")),
        ("tonic", cfg!(feature = "tonic")),
        ("fetch", cfg!(feature = "fetch")),
        ("live", cfg!(feature = "live")),
        ("providers", cfg!(feature = "providers")),
        ("cli", cfg!(feature = "cli")),
        ("serde", cfg!(feature = "serde")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The executable of `examples/<name>.rs`, built for this test's features
/// and profile (once per process and name).
pub fn example_binary(name: &str) -> PathBuf {
    target_binary("--example", name, &[])
}

/// The executable of the `[[bin]]` target `name`, built with this test's
/// features plus `extra` (e.g. `cli` for whoami).
pub fn bin_binary(name: &str, extra: &[&str]) -> PathBuf {
    target_binary("--bin", name, extra)
}

fn target_binary(kind: &'static str, name: &str, extra: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    let path = build(kind, name, extra);
    map.insert(name.to_owned(), path.clone());
    path
}

fn build(kind: &str, name: &str, extra: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target> above <profile>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let dir = tempfile::tempdir().expect("build temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut cmd = Command::new(&cargo);
    // Drop what cargo set for this test process (CARGO_PKG_NAME,
    // CARGO_MANIFEST_DIR, ...): build scripts such as ring's rerun when
    // those differ from the outer cargo's environment, and the two builds
    // would keep rebuilding each other's dependencies.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_CFG_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || ["CARGO_TARGET_TMPDIR", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].contains(&&*key)
        {
            cmd.env_remove(&*key);
        }
    }
    let mut features = features();
    features.extend_from_slice(extra);
    cmd.args(["build", kind, name, "--no-default-features"])
        .arg("--features")
        .arg(features.join(","))
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--message-format=json-render-diagnostics");
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("cargo stdout file"))
        .stderr(File::create(&err_path).expect("cargo stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build example {name}: {e}"));
    let status = wait_bounded(&mut child, BUILD_TIMEOUT)
        .unwrap_or_else(|| panic!("cargo build --example {name} took over {BUILD_TIMEOUT:?}"));
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "cargo build --example {name} failed ({status})\n{stderr}"
    );
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let built = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| m["executable"].is_string())
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no {name} executable\n{stderr}"));
    assert!(built.is_file(), "{} is not a file", built.display());
    built
}

/// `child.wait()` with a deadline; `None` (child killed and reaped) on timeout.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A running server binary listening on `addr`; killed and reaped on drop.
/// stdout+stderr go to a log file shown by [`Server::log`].
#[derive(Debug)]
pub struct Server {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Starts `binary args` and waits until `addr` listens (from the listen
    /// table, no probe connection); fails at once if it exits.
    pub fn start(name: &str, binary: &Path, addr: SocketAddr, args: &[String]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("realip-{name}-"))
            .tempdir()
            .expect("server temp dir");
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("server log");
        let err = out.try_clone().expect("clone log handle");
        // If this thread dies without running Drop, the kernel kills it.
        let mut cmd = if Path::new("/usr/bin/setpriv").is_file() {
            let mut cmd = Command::new("/usr/bin/setpriv");
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(binary);
            cmd
        } else {
            Command::new(binary)
        };
        let child = cmd
            .args(args)
            .env("RUST_LOG", "info,realip=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Server {
            name: name.to_owned(),
            child,
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + STARTUP;
        while !is_listening(addr) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{name} {args:?} exited during startup with {status}\n{}",
                    server.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} {args:?} did not listen on {addr} within {STARTUP:?}\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Its log so far, labelled.
    pub fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"));
        format!("--- {} log ---\n{text}", self.name)
    }

    /// Panics (with the log) unless the process still runs.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}\n{}", self.name, self.log());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
