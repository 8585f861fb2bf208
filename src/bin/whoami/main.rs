//! `whoami`: answers every request with what realip resolved, as JSON.
//!
//! ```sh
//! cargo run --features cli --bin whoami                            # or: cargo install realip --features cli
//! curl -s http://127.0.0.1:8080/                                   # socket peer
//! curl -s --haproxy-protocol http://127.0.0.1:8080/                # PROXY v1
//! curl -s -H 'X-Forwarded-For: 203.0.113.9' http://127.0.0.1:8080/ # trusted XFF
//! cargo run --features cli --bin whoami -- --help                  # every flag
//! cargo run --features cli,fetch --bin whoami -- --trust-provider cloudflare
//! ```
//!
//! The last one trusts refreshed provider lists (`trust_lists.rs`).
//!
//! Put it behind your load balancer to see what the app would see, and
//! tune the flags until `client_ip` is right: they map one to one onto
//! `ProxyProtocolListener` and `RealIpLayer` settings.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches, Parser, ValueEnum};
use ipnet::IpNet;
use realip::{ConfigError, HeaderSource, Mode, ProxyProtocolListener, RealIpLayer, TrustedProxies};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

mod config_file;
mod json;
mod limit;
mod trust_lists;

/// whoami: answers every request with the client realip resolves, as JSON.
///
/// Each flag maps onto one `ProxyProtocolListener` or `RealIpLayer`
/// setting.
// Every flag here is a `--config` key as well (config_file.rs); the unit
// test `every_flag_has_a_file_key_meaning_the_same` wants a sample of each
// in `tests::SAMPLES`. Defaults are applied in `Cli::settings`, so a flag
// left out stays `None`/empty and the file can fill it.
#[derive(Debug, Parser)]
#[command(name = "whoami", version)]
struct Cli {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// PROXY protocol for peers in --proxy-from; a PROXY header from any
    /// other peer closes the connection [default: optional].
    #[arg(long, value_name = "MODE")]
    proxy_protocol: Option<ProxyProtocol>,

    /// Peers allowed to send a PROXY header: CIDRs, addresses or a preset,
    /// as for --trust; repeatable [default: loopback and private ranges].
    #[arg(long, value_name = "CIDR", value_parser = trusted_set)]
    proxy_from: Vec<TrustedProxies>,

    /// Proxies whose forwarded headers are believed: CIDRs, addresses or a
    /// preset (loopback, private, cgnat, link-local); repeatable [default:
    /// loopback and private ranges].
    #[arg(long, value_name = "CIDR|loopback|private", value_parser = trusted_set)]
    trust: Vec<TrustedProxies>,

    /// The one header to read the client from: x-forwarded-for, forwarded,
    /// x-real-ip, or any single-address header name; given once (a policy
    /// reads exactly one address header, or the client would pick the one
    /// its proxy does not overwrite) [default: x-forwarded-for].
    #[arg(long, value_name = "NAME", value_parser = HeaderSource::from_str)]
    header: Option<HeaderSource>,

    /// Take at most one step left in the header.
    #[arg(long)]
    no_recursive: bool,

    /// N proxies stand in front (hop-count mode; replaces the default
    /// trusted ranges).
    #[arg(long, value_name = "N")]
    hops: Option<usize>,

    /// Deadline for the PROXY header, in milliseconds [default: 5000, at
    /// least 3000].
    #[arg(long, value_name = "MS")]
    proxy_timeout: Option<u64>,

    /// Resolve the client's scheme, host, port and prefix from the context
    /// headers that go with --header (X-Forwarded-Proto/-Host/-Port/-Prefix;
    /// proto= and host= for forwarded) [default: on, as in the library
    /// once an address header is configured].
    #[arg(long, value_name = "off|on")]
    context: Option<Switch>,

    /// Ignore a context header whose entry count differs from the address
    /// header's.
    #[arg(long)]
    symmetric: bool,

    /// Accept only these forwarded hosts (`*.example.com` for any name
    /// below it); repeatable [default: every valid host].
    #[arg(long, value_name = "NAME")]
    allowed_host: Vec<String>,

    /// Rewrite the request URI's scheme and authority to the client's
    /// (shown as `uri`).
    #[arg(long)]
    rewrite_uri: bool,

    /// Also trust the CIDR list (one per line, `#` comments) at URL,
    /// refreshed; repeatable. Given any --trust-url or --trust-provider,
    /// the default trusted ranges are not added: only the lists and any
    /// --trust are believed [needs the `fetch` feature].
    #[arg(long, value_name = "URL", value_parser = http_url)]
    trust_url: Vec<String>,

    /// Also trust a provider's published ranges: cloudflare, cloudfront,
    /// gcp, fastly; `NAME=URL` reads that format from URL instead of the
    /// official one; repeatable, each name once [needs the `fetch`
    /// feature].
    #[arg(long, value_name = "NAME[=URL]", value_parser = provider_arg)]
    trust_provider: Vec<ProviderArg>,

    /// Seconds between list refreshes [default: 3600, at least 1].
    #[arg(long, value_name = "SECS", value_parser = secs)]
    refresh: Option<u64>,

    /// Keep the last good lists in DIR and use them when a provider is
    /// down at start.
    #[arg(long, value_name = "DIR")]
    ranges_cache: Option<PathBuf>,

    /// Warn while a list is older than this many seconds [default: 86400].
    #[arg(long, value_name = "SECS", value_parser = secs)]
    max_age: Option<u64>,

    /// Read flags from a TOML file whose keys are the long flag names
    /// (`trust = ["127.0.0.0/8"]`, `proxy-protocol = "required"`,
    /// `no-recursive = true`); flags on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Answer only clients in CIDR (repeatable); with any --allow, every
    /// other client, and every client the walk could not find for sure,
    /// gets 403 with a JSON body naming the rule.
    #[arg(long, value_name = "CIDR")]
    allow: Vec<IpNet>,

    /// Refuse clients in CIDR (repeatable), whatever --allow says: 403
    /// with a JSON body naming the rule.
    #[arg(long, value_name = "CIDR")]
    deny: Vec<IpNet>,

    /// N requests per second per client, in bursts of up to N; the next
    /// gets 429 with Retry-After.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate_limit: Option<u32>,

    /// IPv6 clients share a --rate-limit bucket per prefix of LEN bits
    /// [default: 64].
    #[arg(long, value_name = "LEN", value_parser = clap::value_parser!(u8).range(0..=128))]
    ipv6_prefix: Option<u8>,
}

/// `--proxy-protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProxyProtocol {
    /// Never read a PROXY header.
    Off,
    /// Use a header when the peer sends one.
    Optional,
    /// Close connections from --proxy-from peers without one.
    Required,
}

/// `--context` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    /// Only the address: no context header is read.
    Off,
    /// The address and the client context.
    On,
}

/// The built-in provider names of `--trust-provider`.
const PROVIDERS: [&str; 4] = ["cloudflare", "cloudfront", "gcp", "fastly"];

/// `--trust-provider NAME[=URL]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProviderArg {
    name: String,
    url: Option<String>,
}

/// A refreshed list named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListArg {
    /// `--trust-url URL`: a plain CIDR list.
    Url(String),
    /// `--trust-provider NAME[=URL]`.
    Provider(ProviderArg),
}

/// The flags with their defaults applied: what the server runs with.
#[derive(Debug)]
struct Settings {
    listen: SocketAddr,
    proxy_protocol: ProxyProtocol,
    proxy_from: Vec<IpNet>,
    trust: Option<TrustedProxies>,
    header: HeaderSource,
    recursive: bool,
    hops: Option<usize>,
    proxy_timeout: Option<Duration>,
    context: bool,
    symmetric: bool,
    allowed_hosts: Vec<String>,
    rewrite_uri: bool,
    /// Providers in flag order, then URLs in flag order: the order of
    /// `"trust_sources"`.
    lists: Vec<ListArg>,
    /// `None`: the refresher's default, 3600 s.
    refresh: Option<Duration>,
    ranges_cache: Option<PathBuf>,
    max_age: Option<Duration>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    rate_limit: Option<u32>,
    ipv6_prefix: u8,
}

impl Cli {
    fn settings(self) -> Result<Settings, String> {
        let proxy_from = if self.proxy_from.is_empty() {
            TrustedProxies::private().iter().copied().collect()
        } else {
            self.proxy_from
                .iter()
                .flat_map(|set| set.iter().copied())
                .collect()
        };
        let trust = if self.trust.is_empty() {
            None
        } else {
            let mut all = TrustedProxies::new();
            for set in &self.trust {
                all.merge(set).map_err(|e| format!("--trust: {e}"))?;
            }
            Some(all)
        };
        let mut lists: Vec<ListArg> = Vec::new();
        for p in self.trust_provider {
            if lists
                .iter()
                .any(|l| matches!(l, ListArg::Provider(q) if q.name == p.name))
            {
                return Err(format!("--trust-provider: `{}` given twice", p.name));
            }
            lists.push(ListArg::Provider(p));
        }
        lists.extend(self.trust_url.into_iter().map(ListArg::Url));
        Ok(Settings {
            listen: self
                .listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            proxy_protocol: self.proxy_protocol.unwrap_or(ProxyProtocol::Optional),
            proxy_from,
            trust,
            header: self.header.unwrap_or(HeaderSource::XForwardedFor),
            recursive: !self.no_recursive,
            hops: self.hops,
            proxy_timeout: self.proxy_timeout.map(Duration::from_millis),
            // whoami shows what the app would see, context included.
            context: self.context != Some(Switch::Off),
            symmetric: self.symmetric,
            allowed_hosts: self.allowed_host,
            rewrite_uri: self.rewrite_uri,
            lists,
            refresh: self.refresh.map(Duration::from_secs),
            ranges_cache: self.ranges_cache,
            max_age: self.max_age.map(Duration::from_secs),
            allow: self.allow,
            deny: self.deny,
            rate_limit: self.rate_limit,
            ipv6_prefix: self
                .ipv6_prefix
                .unwrap_or(realip::rate_limit::DEFAULT_IPV6_PREFIX),
        })
    }
}

/// `--trust` / `--proxy-from`: a preset name, or networks and addresses.
fn trusted_set(v: &str) -> Result<TrustedProxies, ConfigError> {
    TrustedProxies::preset(v).map_or_else(|| v.parse(), Ok)
}

/// `--trust-url`: only http(s) URLs (the fetcher speaks nothing else).
fn http_url(v: &str) -> Result<String, String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_owned())
    } else {
        Err("not an http:// or https:// URL".to_owned())
    }
}

/// `--trust-provider`: a built-in name, optionally `=URL`.
fn provider_arg(v: &str) -> Result<ProviderArg, String> {
    let (name, url) = match v.split_once('=') {
        Some((n, u)) => (n, Some(http_url(u)?)),
        None => (v, None),
    };
    if !PROVIDERS.contains(&name) {
        return Err(format!("`{name}` is none of {}", PROVIDERS.join(", ")));
    }
    Ok(ProviderArg {
        name: name.to_owned(),
        url,
    })
}

/// `--refresh` / `--max-age`: whole seconds from 1 to 2^30 (about 34
/// years), so no `Duration` or timer arithmetic can overflow.
fn secs(v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (1..=1 << 30).contains(&n) => Ok(n),
        _ => Err("not a whole number of seconds from 1 to 1073741824".to_owned()),
    }
}

/// The resolution policy the flags describe; configuration mistakes are
/// reported by `build`. With refreshed lists, `live` holds them (and any
/// `--trust` ranges as its base), and the default ranges are not added.
fn layer(s: &Settings, live: Option<&trust_lists::Live>) -> Result<RealIpLayer, String> {
    let mut b = RealIpLayer::builder();
    if let Some(live) = live {
        b = live.trust(b);
    } else {
        match (&s.trust, s.hops) {
            (Some(t), _) => b = b.trusted_proxies(t),
            // Hop counting replaces ranges; the default ranges only apply without it.
            (None, Some(_)) => {}
            (None, None) => b = b.trust_private(),
        }
    }
    if let Some(n) = s.hops {
        b = b.trusted_hops(n);
    }
    if !s.recursive {
        b = b.recursive(false);
    }
    b = b.header(s.header.clone()).context(s.context);
    if s.symmetric {
        b = b.symmetric(true);
    }
    for h in &s.allowed_hosts {
        b = b.allowed_host(h.clone());
    }
    if s.rewrite_uri {
        b = b.rewrite_uri(true);
    }
    b.build().map_err(|e| format!("policy: {e}"))
}

/// `app` behind the --rate-limit governor and the --allow/--deny filter
/// (outermost, so a refused client spends no token).
fn guarded(mut app: Router, s: &Settings) -> Result<Router, String> {
    if let Some(n) = s.rate_limit {
        let key = realip::rate_limit::RateLimitKey::with_ipv6_prefix(s.ipv6_prefix)
            .map_err(|e| format!("--ipv6-prefix: {e}"))?;
        let limiter = std::sync::Arc::new(limit::Limiter::new(n, key));
        app = app.layer(axum::middleware::from_fn_with_state(limiter, limit::limit));
    }
    if !s.allow.is_empty() || !s.deny.is_empty() {
        let filter = realip::filter::IpFilterLayer::builder()
            .allow_all(s.allow.iter().copied())
            .deny_all(s.deny.iter().copied())
            .build()
            .map_err(|e| format!("--allow/--deny: {e}"))?;
        app = app
            .layer(filter)
            .layer(axum::middleware::map_response(json::denial));
    }
    Ok(app)
}

/// Why the flags cannot be used.
#[derive(Debug)]
enum CliError {
    /// A mistake clap found, or `--help` / `--version`: clap prints it.
    Clap(clap::Error),
    /// A config file that cannot be used.
    File(String),
}

/// Parses `args` (the program name first) and, with `--config`, the flags
/// `load` reads from the file, command-line flags winning.
fn parse_cli<F>(args: Vec<OsString>, load: F) -> Result<Cli, CliError>
where
    F: FnOnce(&Command, &ArgMatches, &Path) -> Result<Vec<OsString>, String>,
{
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(CliError::Clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(CliError::Clap)?;
    let Some(path) = &cli.config else {
        return Ok(cli);
    };
    let from_file = load(&command, &matches, path).map_err(CliError::File)?;
    let mut all = args;
    let rest = all.split_off(1.min(all.len()));
    all.extend(from_file);
    all.extend(rest);
    Cli::try_parse_from(all).map_err(CliError::Clap)
}

/// Parses the command line (and the config file); `Err` is the exit code
/// after clap or whoami has printed why (help and version exit 0,
/// mistakes 2).
fn settings_from(args: Vec<OsString>) -> Result<Settings, ExitCode> {
    let load = |command: &Command, matches: &ArgMatches, path: &Path| {
        config_file::flags_from_file(command, matches, path).map_err(|e| e.to_string())
    };
    match parse_cli(args, load) {
        Ok(cli) => cli.settings().map_err(|e| usage_error(&e)),
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            Err(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)))
        }
        Err(CliError::File(e)) => Err(usage_error(&e)),
    }
}

fn usage_error(e: &str) -> ExitCode {
    eprintln!("whoami: {e}\nRun with --help for usage.");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    // `Targets` reads RUST_LOG's `target=level` lists without EnvFilter's
    // regex machinery, which would double the build time of a first run.
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) => v.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("whoami: RUST_LOG `{v}` ignored ({e}); logging at info");
            Targets::new().with_default(Level::INFO)
        }),
        Err(_) => Targets::new().with_default(Level::INFO),
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();

    let args = match settings_from(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(code) => return code,
    };
    // Refreshed lists are fetched (or read from the cache) before serving.
    let live = match trust_lists::start(&args).await {
        Ok(live) => live,
        Err(e) => return usage_error(&e),
    };
    let layer = match layer(&args, live.as_ref()) {
        Ok(l) => l,
        Err(e) => return usage_error(&e),
    };
    let sources: Arc<dyn Fn() -> serde_json::Value + Send + Sync> = match live {
        Some(live) => Arc::new(move || live.status_json()),
        None => Arc::new(|| serde_json::Value::Array(Vec::new())),
    };

    let tcp = match realip::io::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("whoami: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let from = args.proxy_from.iter().copied();
    let mut listener = match args.proxy_protocol {
        ProxyProtocol::Off => ProxyProtocolListener::new(tcp).otherwise(Mode::Skip),
        // Peers outside `from` fall back to Mode::Reject: a header from
        // them closes the connection.
        ProxyProtocol::Optional => ProxyProtocolListener::new(tcp).optional_from(from),
        ProxyProtocol::Required => ProxyProtocolListener::new(tcp).require_from(from),
    };
    if let Some(t) = args.proxy_timeout {
        listener = listener.header_timeout(t);
    }

    tracing::info!(
        listen = %args.listen,
        proxy_protocol = ?args.proxy_protocol,
        proxy_from = ?args.proxy_from,
        proxy_timeout = ?listener.proxy_acceptor().timeout(),
        trust = ?layer.policy().trusted_proxies().iter().collect::<Vec<_>>(),
        trust_lists = ?args.lists,
        header = %args.header.name(),
        recursive = args.recursive,
        hops = ?args.hops,
        context = args.context,
        "whoami listening"
    );

    // One policy for the whole app: the layer goes around the router and
    // reads each connection's addresses once.
    let app = match guarded(
        Router::new().fallback(move |real, uri| json::whoami(real, uri, sources())),
        &args,
    ) {
        Ok(app) => app,
        Err(e) => return usage_error(&e),
    };
    let served = axum::serve(listener, layer.into_make_service(app)).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whoami: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("whoami")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(argv(args)).map_err(|e| e.to_string())?;
        cli.settings()
    }

    /// `args` plus `--config` with `toml` as the file's text.
    fn parse_with_file(args: &[&str], toml: &str) -> Result<Cli, String> {
        let mut args = argv(args);
        args.extend(["--config".into(), "whoami.toml".into()]);
        parse_cli(args, |command, matches, path| {
            assert_eq!(path, Path::new("whoami.toml"));
            config_file::flags_from_toml(command, matches, toml)
        })
        .map_err(|e| match e {
            CliError::Clap(e) => config_file::clap_message(&e),
            CliError::File(e) => e,
        })
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.proxy_protocol, ProxyProtocol::Optional);
        assert!(a.proxy_from.contains(&"127.0.0.0/8".parse().unwrap()));
        assert!(a.proxy_from.contains(&"10.0.0.0/8".parse().unwrap()));
        assert_eq!(a.header, HeaderSource::XForwardedFor);
        assert!(a.recursive && a.hops.is_none() && a.proxy_timeout.is_none());
        let l = layer(&a, None).unwrap();
        let trusted = l.policy().trusted_proxies();
        assert!(trusted.contains("192.168.1.1".parse().unwrap()));
        assert!(trusted.contains("127.0.0.1".parse().unwrap()));
        assert!(!trusted.contains("203.0.113.1".parse().unwrap()));
        assert!(!trusted.contains("100.64.0.1".parse().unwrap()));
        assert!(a.context && !a.symmetric && !a.rewrite_uri && a.allowed_hosts.is_empty());
        assert!(l.policy().has_context());
    }

    #[test]
    fn context_flags() {
        let a = parse(&[
            "--context",
            "on",
            "--symmetric",
            "--allowed-host",
            "shop.example",
            "--allowed-host",
            "*.example.org",
            "--rewrite-uri",
        ])
        .unwrap();
        assert!(a.context && a.symmetric && a.rewrite_uri);
        assert_eq!(a.allowed_hosts, ["shop.example", "*.example.org"]);
        assert!(layer(&a, None).unwrap().policy().has_context());
        let off = parse(&["--context", "off"]).unwrap();
        assert!(!off.context);
        assert!(!layer(&off, None).unwrap().policy().has_context());
        // Context options with context off, or a bad host pattern: errors
        // when the policy is built.
        for bad in [
            &["--context", "off", "--symmetric"][..],
            &["--context", "off", "--rewrite-uri"],
            &["--context", "off", "--allowed-host", "shop.example"],
            &["--allowed-host", "user@host"],
        ] {
            let a = parse(bad).unwrap();
            assert!(layer(&a, None).is_err(), "{bad:?}");
        }
        assert!(parse(&["--context", "maybe"]).is_err());
        assert!(parse(&["--allowed-host"]).is_err());
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "--listen",
            "127.0.0.2:9000",
            "--proxy-protocol",
            "required",
            "--proxy-from",
            "10.1.0.0/16",
            "--trust",
            "loopback",
            "--trust",
            "192.0.2.1",
            "--header",
            "X-Client",
            "--no-recursive",
            "--proxy-timeout",
            "4000",
        ])
        .unwrap();
        assert_eq!(a.listen, "127.0.0.2:9000".parse().unwrap());
        assert_eq!(a.proxy_protocol, ProxyProtocol::Required);
        assert_eq!(a.proxy_from, ["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        let t = a.trust.as_ref().unwrap();
        assert!(
            t.contains("127.0.0.9".parse().unwrap()) && t.contains("192.0.2.1".parse().unwrap())
        );
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(
            a.header,
            HeaderSource::Single(HeaderName::from_static("x-client"))
        );
        assert!(!a.recursive);
        assert_eq!(a.proxy_timeout, Some(Duration::from_millis(4000)));
        assert!(layer(&a, None).is_ok());
        let a = parse(&["--header", "X-Real-IP", "--proxy-protocol", "off"]).unwrap();
        assert_eq!(a.header, HeaderSource::XRealIp);
        assert_eq!(a.proxy_protocol, ProxyProtocol::Off);
        let a = parse(&["--trust", "cgnat", "--trust", "link-local"]).unwrap();
        let t = a.trust.unwrap();
        assert!(t.contains("100.64.0.1".parse().unwrap()));
        assert!(t.contains("fe80::1".parse().unwrap()));
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            &["--nope"][..],
            &["--listen", "nowhere"],
            &["--proxy-protocol", "maybe"],
            &["--trust", "10.0.0.0/40"],
            &["--hops", "two"],
            &["--header"],
            &["--header", "x-real-ip", "--header", "x-forwarded-for"],
            &["--header", "bad header"],
            &["--allow", "10.0.0.0/40"],
            &["--deny", "nowhere"],
            &["--rate-limit", "0"],
            &["--rate-limit", "-1"],
            &["--ipv6-prefix", "129"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Contradictions surface when the policy is built.
        let a = parse(&["--hops", "2", "--trust", "private"]).unwrap();
        assert!(layer(&a, None).is_err());
        let a = parse(&["--hops", "2"]).unwrap();
        assert!(layer(&a, None).is_ok());
    }

    #[test]
    fn list_flags() {
        let a = parse(&[
            "--trust-url",
            "https://lists.example/edge.txt",
            "--trust-provider",
            "cloudflare",
            "--trust-url",
            "http://127.0.0.1:9000/more.txt",
            "--trust-provider",
            "fastly=http://127.0.0.1:9000/fastly.json",
            "--refresh",
            "60",
            "--ranges-cache",
            "/tmp/ranges",
            "--max-age",
            "7200",
        ])
        .unwrap();
        let provider = |name: &str, url: Option<&str>| {
            ListArg::Provider(ProviderArg {
                name: name.into(),
                url: url.map(Into::into),
            })
        };
        // Providers first, then URLs, each in flag order.
        assert_eq!(
            a.lists,
            [
                provider("cloudflare", None),
                provider("fastly", Some("http://127.0.0.1:9000/fastly.json")),
                ListArg::Url("https://lists.example/edge.txt".into()),
                ListArg::Url("http://127.0.0.1:9000/more.txt".into()),
            ]
        );
        assert_eq!(a.refresh, Some(Duration::from_secs(60)));
        assert_eq!(a.ranges_cache, Some(PathBuf::from("/tmp/ranges")));
        assert_eq!(a.max_age, Some(Duration::from_secs(7200)));
        let a = parse(&[]).unwrap();
        assert!(a.lists.is_empty());
        assert_eq!((a.refresh, a.max_age), (None, None));
        for bad in [
            &["--trust-provider", "akamai"][..],
            &["--trust-provider", "gcp=ftp://x/"],
            &[
                "--trust-provider",
                "gcp",
                "--trust-provider",
                "gcp=http://x/",
            ],
            &["--trust-url", "ftp://example.com/list"],
            &["--refresh", "0"],
            &["--refresh", "soon"],
            &["--refresh", "1073741825"],
            &["--max-age", "-1"],
            &["--max-age", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Each flag, as a file key and as command-line flags meaning the same.
    const SAMPLES: [(&str, &str, &[&str]); 21] = [
        (
            "listen",
            r#""127.0.0.2:9000""#,
            &["--listen", "127.0.0.2:9000"],
        ),
        (
            "proxy-protocol",
            r#""required""#,
            &["--proxy-protocol", "required"],
        ),
        (
            "proxy-from",
            r#"["10.1.0.0/16", "loopback"]"#,
            &["--proxy-from", "10.1.0.0/16", "--proxy-from", "loopback"],
        ),
        (
            "trust",
            r#"["192.0.2.1", "private"]"#,
            &["--trust", "192.0.2.1", "--trust", "private"],
        ),
        ("header", r#""x-real-ip""#, &["--header", "x-real-ip"]),
        ("no-recursive", "true", &["--no-recursive"]),
        ("hops", "2", &["--hops", "2"]),
        ("proxy-timeout", "4000", &["--proxy-timeout", "4000"]),
        (
            "trust-url",
            r#"["https://lists.example/a.txt", "http://127.0.0.1:9/b.txt"]"#,
            &[
                "--trust-url",
                "https://lists.example/a.txt",
                "--trust-url",
                "http://127.0.0.1:9/b.txt",
            ],
        ),
        (
            "trust-provider",
            r#"["cloudflare", "gcp=http://127.0.0.1:9/cloud.json"]"#,
            &[
                "--trust-provider",
                "cloudflare",
                "--trust-provider",
                "gcp=http://127.0.0.1:9/cloud.json",
            ],
        ),
        ("refresh", "60", &["--refresh", "60"]),
        (
            "ranges-cache",
            r#""/var/cache/whoami""#,
            &["--ranges-cache", "/var/cache/whoami"],
        ),
        ("max-age", "7200", &["--max-age", "7200"]),
        (
            "allow",
            r#"["10.0.0.0/8", "2001:db8::/32"]"#,
            &["--allow", "10.0.0.0/8", "--allow", "2001:db8::/32"],
        ),
        ("deny", r#"["192.0.2.0/24"]"#, &["--deny", "192.0.2.0/24"]),
        ("rate-limit", "5", &["--rate-limit", "5"]),
        ("ipv6-prefix", "48", &["--ipv6-prefix", "48"]),
        ("context", r#""off""#, &["--context", "off"]),
        ("symmetric", "true", &["--symmetric"]),
        (
            "allowed-host",
            r#"["shop.example", "*.example.org"]"#,
            &[
                "--allowed-host",
                "shop.example",
                "--allowed-host",
                "*.example.org",
            ],
        ),
        ("rewrite-uri", "true", &["--rewrite-uri"]),
    ];

    fn debug(mut cli: Cli) -> String {
        cli.config = None;
        format!("{cli:?}")
    }

    #[test]
    fn every_flag_has_a_file_key_meaning_the_same() {
        let command = Cli::command();
        let mut sampled: Vec<_> = SAMPLES.iter().map(|(key, _, _)| *key).collect();
        let mut keys = config_file::keys(&command);
        sampled.sort_unstable();
        keys.sort_unstable();
        assert_eq!(sampled, keys, "a flag without a sample (or a stale sample)");
        let defaults = debug(Cli::try_parse_from(argv(&[])).unwrap());
        for (key, value, flags) in SAMPLES {
            let from_file = debug(parse_with_file(&[], &format!("{key} = {value}")).unwrap());
            let from_flags = debug(Cli::try_parse_from(argv(flags)).unwrap());
            assert_eq!(from_file, from_flags, "{key}");
            assert_ne!(
                from_file, defaults,
                "{key}: the sample must change something"
            );
        }
        // All at once, too.
        let file: String = SAMPLES
            .iter()
            .map(|(key, value, _)| format!("{key} = {value}\n"))
            .collect();
        let flags: Vec<&str> = SAMPLES
            .iter()
            .flat_map(|(_, _, f)| f.iter().copied())
            .collect();
        assert_eq!(
            debug(parse_with_file(&[], &file).unwrap()),
            debug(Cli::try_parse_from(argv(&flags)).unwrap())
        );
    }

    #[test]
    fn command_line_flags_win_over_the_file() {
        let file = r#"
            trust = ["10.0.0.0/8", "192.0.2.0/24"]
            header = "x-real-ip"
            proxy-protocol = "required"
            no-recursive = true
            listen = "127.0.0.3:1"
        "#;
        let cli = parse_with_file(
            &[
                "--trust",
                "loopback",
                "--header",
                "forwarded",
                "--listen",
                "127.0.0.4:2",
            ],
            file,
        )
        .unwrap();
        let s = cli.settings().unwrap();
        let t = s.trust.unwrap();
        // The command line's list replaces the file's, it does not extend it.
        assert!(t.contains("127.0.0.1".parse().unwrap()));
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        assert!(!t.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(s.header, HeaderSource::Forwarded);
        assert_eq!(s.listen, "127.0.0.4:2".parse().unwrap());
        // Keys the command line does not set still apply.
        assert_eq!(s.proxy_protocol, ProxyProtocol::Required);
        assert!(!s.recursive);
        // `false` leaves a flag off.
        let s = parse_with_file(&[], "no-recursive = false")
            .unwrap()
            .settings()
            .unwrap();
        assert!(s.recursive);
    }

    #[test]
    fn bad_files_name_the_key() {
        for (file, message) in [
            (
                "trusts = [\"x\"]",
                "unknown key `trusts`; the keys are the long flag names: listen, ",
            ),
            ("config = \"other.toml\"", "unknown key `config`"),
            ("help = true", "unknown key `help`"),
            (
                "trust = [\"nonsense\"]",
                "key `trust`: invalid value 'nonsense' for '--trust <CIDR|loopback|private>'",
            ),
            (
                "hops = \"two\"",
                "key `hops`: invalid value 'two' for '--hops <N>'",
            ),
            (
                "hops = -2",
                "key `hops`: invalid value '-2' for '--hops <N>'",
            ),
            (
                "hops = true",
                "key `hops`: expected a string or a number, found boolean",
            ),
            (
                "no-recursive = \"yes\"",
                "key `no-recursive`: expected true or false, found string",
            ),
            (
                "proxy-protocol = \"maybe\"",
                "key `proxy-protocol`: invalid value 'maybe' for '--proxy-protocol <MODE>'",
            ),
            (
                "header = [\"x-real-ip\", \"forwarded\"]",
                "key `header`: the argument '--header <NAME>' cannot be used multiple times",
            ),
            (
                "listen = { port = 1 }",
                "key `listen`: expected a string or a number, found table",
            ),
            (
                "trust = [[\"10.0.0.0/8\"]]",
                "key `trust`: expected a string or a number, found array",
            ),
            (
                "listen = \"--trust\"",
                "key `listen`: invalid value '--trust'",
            ),
            (
                "refresh = 0",
                "key `refresh`: invalid value '0' for '--refresh <SECS>'",
            ),
            (
                "trust-provider = \"akamai\"",
                "key `trust-provider`: invalid value 'akamai' for '--trust-provider <NAME[=URL]>'",
            ),
            ("trust = [", "TOML parse error at line 1"),
        ] {
            let err = parse_with_file(&[], file).unwrap_err();
            assert!(err.starts_with(message), "{file:?}: {err:?}");
        }
        // A bad key is reported even when the command line sets the flag.
        let err = parse_with_file(&["--hops", "2"], "hops = \"two\"").unwrap_err();
        assert!(err.starts_with("key `hops`: "), "{err}");
    }
}
