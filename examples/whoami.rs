//! `whoami`: answers every request with what realip resolved, as JSON.
//!
//! ```sh
//! cargo run --example whoami
//! curl -s http://127.0.0.1:8080/                                   # socket peer
//! curl -s --haproxy-protocol http://127.0.0.1:8080/                # PROXY v1
//! curl -s -H 'X-Forwarded-For: 203.0.113.9' http://127.0.0.1:8080/ # trusted XFF
//! cargo run --example whoami -- --help                             # every flag
//! ```
//!
//! Put it behind your load balancer to see what the app would see, and
//! tune the flags until `client_ip` is right: they map one to one onto
//! `ProxyProtocolListener` and `RealIpLayer` settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::{Json, Router};
use http::HeaderName;
use ipnet::IpNet;
use realip::proxy::{kind, Command, Header, OwnedHeader, Version};
use realip::{
    HeaderSource, Mode, ProxyProtocolListener, RealIp, RealIpLayer, Source, Stop, TrustedProxies,
};
use serde_json::{json, Map, Value};

const USAGE: &str = "\
whoami: answers every request with the client realip resolves, as JSON

USAGE:
    cargo run --example whoami -- [FLAGS]

FLAGS:
    --listen ADDR              address to listen on [default: 127.0.0.1:8080]
    --proxy-protocol MODE      off | optional | required [default: optional]
                               (for peers in --proxy-from; a PROXY header from
                               any other peer closes the connection)
    --proxy-from CIDR          peers allowed to send a PROXY header
                               (repeatable) [default: loopback and private ranges]
    --trust CIDR|loopback|private
                               proxies whose forwarded headers are believed
                               (repeatable) [default: loopback and private ranges]
    --header NAME              the one header to read the client from:
                               x-forwarded-for, forwarded, x-real-ip, or any
                               single-address header name
                               [default: x-forwarded-for]
    --no-recursive             take at most one step left in the header
    --hops N                   N proxies stand in front (hop-count mode,
                               replaces the default trusted ranges)
    --proxy-timeout MS         deadline for the PROXY header [default: 5000,
                               at least 3000]
    --trust-url URL            also trust the CIDR list (one per line) at URL,
                               refreshed (repeatable)
    --trust-provider NAME[=URL]
                               also trust a provider's published ranges
                               (repeatable): cloudflare, cloudfront, gcp,
                               fastly; =URL reads that format from URL instead
                               of the official one
    --refresh SECS             time between list refreshes [default: 3600,
                               at least 1]
    --ranges-cache DIR         keep the last good lists in DIR and use them
                               when a provider is down at start
    --max-age SECS             warn while a list is older than this
                               [default: 86400]
    --help                     print this help

Given any --trust-url or --trust-provider, the default trusted ranges are not
added: only those lists and any --trust are believed. These flags need the
`fetch` feature (cargo run --example whoami --features fetch).
";

/// The built-in provider names of `--trust-provider`.
const PROVIDERS: [&str; 4] = ["cloudflare", "cloudfront", "gcp", "fastly"];

/// A refreshed list named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListArg {
    /// `--trust-url URL`: a plain CIDR list.
    Url(String),
    /// `--trust-provider NAME[=URL]`.
    Provider(String, Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyProtocol {
    Off,
    Optional,
    Required,
}

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    proxy_protocol: ProxyProtocol,
    proxy_from: Vec<IpNet>,
    trust: Option<TrustedProxies>,
    header: Option<HeaderSource>,
    recursive: bool,
    hops: Option<usize>,
    proxy_timeout: Option<Duration>,
    lists: Vec<ListArg>,
    refresh: Duration,
    ranges_cache: Option<PathBuf>,
    max_age: Option<Duration>,
}

/// `Ok(None)` means `--help` was printed.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: "127.0.0.1:8080".parse().expect("valid default"),
        proxy_protocol: ProxyProtocol::Optional,
        proxy_from: Vec::new(),
        trust: None,
        header: None,
        recursive: true,
        hops: None,
        proxy_timeout: None,
        lists: Vec::new(),
        refresh: Duration::from_secs(3600),
        ranges_cache: None,
        max_age: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--listen" => {
                let v = value()?;
                args.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: `{v}` is not ip:port"))?;
            }
            "--proxy-protocol" => {
                args.proxy_protocol = match value()?.as_str() {
                    "off" => ProxyProtocol::Off,
                    "optional" => ProxyProtocol::Optional,
                    "required" => ProxyProtocol::Required,
                    v => {
                        return Err(format!(
                            "--proxy-protocol: `{v}` is not off|optional|required"
                        ))
                    }
                }
            }
            "--proxy-from" => {
                let v = value()?;
                let set: TrustedProxies = v.parse().map_err(|e| format!("--proxy-from: {e}"))?;
                args.proxy_from.extend(set.iter().copied());
            }
            "--trust" => {
                let v = value()?;
                let set = match v.as_str() {
                    "loopback" => TrustedProxies::loopback(),
                    "private" => TrustedProxies::private(),
                    _ => v.parse().map_err(|e| format!("--trust: {e}"))?,
                };
                args.trust
                    .get_or_insert_with(TrustedProxies::new)
                    .merge(&set)
                    .map_err(|e| format!("--trust: {e}"))?;
            }
            "--header" => {
                let source = header_source(&value()?)?;
                if args.header.is_some() {
                    return Err("--header: given twice; a policy reads exactly one address \
                         header (several would let the client pick the one its proxy does \
                         not overwrite)"
                        .to_owned());
                }
                args.header = Some(source);
            }
            "--no-recursive" => args.recursive = false,
            "--hops" => {
                let v = value()?;
                args.hops = Some(
                    v.parse()
                        .map_err(|_| format!("--hops: `{v}` is not a number"))?,
                );
            }
            "--proxy-timeout" => {
                let v = value()?;
                let ms = v.parse().map_err(|_| {
                    format!("--proxy-timeout: `{v}` is not a number of milliseconds")
                })?;
                args.proxy_timeout = Some(Duration::from_millis(ms));
            }
            "--trust-url" => {
                let v = value()?;
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(format!("--trust-url: `{v}` is not an http(s) URL"));
                }
                args.lists.push(ListArg::Url(v));
            }
            "--trust-provider" => {
                let v = value()?;
                let (name, url) = match v.split_once('=') {
                    Some((n, u)) => (n.to_owned(), Some(u.to_owned())),
                    None => (v.clone(), None),
                };
                if !PROVIDERS.contains(&name.as_str()) {
                    return Err(format!(
                        "--trust-provider: `{name}` is none of {}",
                        PROVIDERS.join(", ")
                    ));
                }
                if args
                    .lists
                    .iter()
                    .any(|l| matches!(l, ListArg::Provider(n, _) if *n == name))
                {
                    return Err(format!("--trust-provider: `{name}` given twice"));
                }
                args.lists.push(ListArg::Provider(name, url));
            }
            "--refresh" => args.refresh = Duration::from_secs(secs(&flag, &value()?, 1)?),
            "--ranges-cache" => args.ranges_cache = Some(PathBuf::from(value()?)),
            "--max-age" => args.max_age = Some(Duration::from_secs(secs(&flag, &value()?, 1)?)),
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if args.proxy_from.is_empty() {
        args.proxy_from = TrustedProxies::private().iter().copied().collect();
    }
    Ok(Some(args))
}

/// A whole number of seconds, at least `min`.
fn secs(flag: &str, v: &str, min: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n >= min && n <= 1 << 30 => Ok(n),
        _ => Err(format!(
            "{flag}: `{v}` is not a number of seconds from {min}"
        )),
    }
}

fn header_source(name: &str) -> Result<HeaderSource, String> {
    let name = name.to_ascii_lowercase();
    Ok(match name.as_str() {
        "x-forwarded-for" => HeaderSource::XForwardedFor,
        "forwarded" => HeaderSource::Forwarded,
        "x-real-ip" => HeaderSource::XRealIp,
        "cf-connecting-ip" => HeaderSource::CfConnectingIp,
        "true-client-ip" => HeaderSource::TrueClientIp,
        "fly-client-ip" => HeaderSource::FlyClientIp,
        "x-envoy-external-address" => HeaderSource::XEnvoyExternalAddress,
        "cloudfront-viewer-address" => HeaderSource::CloudFrontViewerAddress,
        _ => HeaderSource::Single(
            HeaderName::try_from(name.as_str())
                .map_err(|_| format!("--header: `{name}` is not a header name"))?,
        ),
    })
}

/// The resolution policy the flags describe; configuration mistakes are
/// reported by `build`. With refreshed lists, `live` holds them (and any
/// `--trust` ranges as its base).
fn layer(args: &Args, live: Option<&lists::Live>) -> Result<RealIpLayer, String> {
    let mut b = RealIpLayer::builder();
    if let Some(live) = live {
        b = live.trust(b);
    } else {
        match (&args.trust, args.hops) {
            (Some(t), _) => b = b.trusted_proxies(t),
            // Hop counting replaces ranges; the default ranges only apply without it.
            (None, Some(_)) => {}
            (None, None) => b = b.trust_private(),
        }
    }
    if let Some(n) = args.hops {
        b = b.trusted_hops(n);
    }
    if !args.recursive {
        b = b.recursive(false);
    }
    b = b.header(args.header.clone().unwrap_or(HeaderSource::XForwardedFor));
    b.build().map_err(|e| format!("policy: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("whoami: {e}\nRun with --help for usage.");
            return ExitCode::from(2);
        }
    };
    // Refreshed lists are fetched (or read from the cache) before serving.
    let live = match lists::start(&args).await {
        Ok(live) => live,
        Err(e) => {
            eprintln!("whoami: {e}");
            return ExitCode::from(2);
        }
    };
    let layer = match layer(&args, live.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("whoami: {e}\nRun with --help for usage.");
            return ExitCode::from(2);
        }
    };
    let sources: Arc<dyn Fn() -> Value + Send + Sync> = match live {
        Some(live) => Arc::new(move || live.status_json()),
        None => Arc::new(|| json!([])),
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
        header = %args.header.as_ref().map_or(HeaderSource::XForwardedFor.name(), |h| h.name()),
        recursive = args.recursive,
        hops = ?args.hops,
        "whoami listening"
    );

    // One policy for the whole app: the layer goes around the router and
    // reads each connection's addresses once.
    let app = Router::new().fallback(move |real: RealIp| whoami(real, sources()));
    let served = axum::serve(listener, layer.into_make_service(app)).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whoami: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn whoami(real: RealIp, trust_sources: Value) -> Json<Value> {
    Json(json!({
        "client_ip": real.ip().to_string(),
        "client_port": real.port(),
        "source": match real.source() {
            Source::Socket => "socket",
            Source::ProxyProtocol => "proxy-protocol",
            Source::Header(name) => name.as_str(),
        },
        "peer": real.peer().to_string(),
        "stop": stop_name(real.stop()),
        "conclusive": real.is_conclusive(),
        "hops": real.hops().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        "proxy_protocol": real.proxy_header().map(proxy_json),
        "trust_sources": trust_sources,
    }))
}

/// `--trust-url` / `--trust-provider`: a `Refresher` feeding a `LiveTrust`.
#[cfg(feature = "fetch")]
mod lists {
    use super::{Args, ListArg};
    use realip::trust::fetch::{Refresher, Source, Startup};
    use realip::trust::live::LiveTrust;
    use realip::trust::providers::Format;
    use realip::RealIpLayerBuilder;
    use serde_json::{json, Value};
    use std::time::Duration;

    /// The running refresher and the set it writes.
    pub(super) struct Live {
        live: LiveTrust,
        refresher: Refresher,
    }

    impl Live {
        pub(super) fn trust(&self, b: RealIpLayerBuilder) -> RealIpLayerBuilder {
            b.live_trust(self.live.clone())
        }

        /// `"trust_sources"`: one object per list.
        pub(super) fn status_json(&self) -> Value {
            let all = self.refresher.status();
            Value::Array(
                all.iter()
                    .map(|s| {
                        json!({
                            "name": s.name,
                            "ranges": s.ranges,
                            "age_s": s.age.map(|a| a.as_secs()),
                            "error": s.error.as_ref().map(|e| e.to_string()),
                        })
                    })
                    .collect(),
            )
        }
    }

    /// A cache-file name for a URL list that stays the same across runs
    /// (FNV-1a of the URL), whatever order the flags come in.
    pub(super) fn url_name(url: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("url-{h:016x}")
    }

    pub(super) fn source(list: &ListArg) -> Result<Source, String> {
        match list {
            ListArg::Url(url) => Source::new(&url_name(url), url, Format::CidrList)
                .map_err(|e| format!("--trust-url: {e}")),
            ListArg::Provider(name, url) => {
                let preset =
                    Source::preset(name).ok_or_else(|| format!("--trust-provider: `{name}`"))?;
                match url {
                    Some(u) => preset
                        .with_url(u)
                        .map_err(|e| format!("--trust-provider: {e}")),
                    None => Ok(preset),
                }
            }
        }
    }

    /// Starts refreshing when any list is given: waits up to 30 s for
    /// each, then uses its cache; a list with neither stops whoami.
    pub(super) async fn start(args: &Args) -> Result<Option<Live>, String> {
        if args.lists.is_empty() {
            return Ok(None);
        }
        let live = LiveTrust::new(args.trust.clone().unwrap_or_default());
        let mut b = Refresher::builder(live.clone())
            .interval(args.refresh)
            .startup(Startup::Wait(Duration::from_secs(30)));
        for list in &args.lists {
            b = b.source(source(list)?);
        }
        if let Some(dir) = &args.ranges_cache {
            b = b.cache_dir(dir);
        }
        if let Some(age) = args.max_age {
            b = b.max_age(age);
        }
        let refresher = b.start().await.map_err(|e| format!("trusted lists: {e}"))?;
        Ok(Some(Live { live, refresher }))
    }
}

/// Without the `fetch` feature, refreshed lists are refused.
#[cfg(not(feature = "fetch"))]
mod lists {
    use super::Args;
    use realip::RealIpLayerBuilder;
    use serde_json::Value;

    pub(super) enum Live {}

    impl Live {
        pub(super) fn trust(&self, _: RealIpLayerBuilder) -> RealIpLayerBuilder {
            match *self {}
        }

        pub(super) fn status_json(&self) -> Value {
            match *self {}
        }
    }

    pub(super) async fn start(args: &Args) -> Result<Option<Live>, String> {
        if args.lists.is_empty() {
            Ok(None)
        } else {
            Err("--trust-url and --trust-provider need the `fetch` feature \
                 (cargo run --example whoami --features fetch)"
                .to_owned())
        }
    }
}

fn stop_name(stop: Stop) -> &'static str {
    match stop {
        Stop::UntrustedHop => "untrusted_hop",
        Stop::Malformed => "malformed",
        Stop::Exhausted => "exhausted",
        Stop::HopCap => "hop_cap",
        Stop::HeaderAbsent => "header_absent",
        Stop::Ambiguous => "ambiguous",
        Stop::SingleStep => "single_step",
        Stop::HopCount => "hop_count",
        Stop::TooShort => "too_short",
        _ => "other",
    }
}

fn proxy_json(owned: &OwnedHeader) -> Value {
    let h = owned.as_header();
    json!({
        "version": match h.version() { Version::V1 => 1, Version::V2 => 2 },
        "command": match h.command() { Command::Proxy => "proxy", Command::Local => "local" },
        "source": h.source().map(|a| a.to_string()),
        "destination": h.destination().map(|a| a.to_string()),
        "tlvs": tlvs_json(&h),
    })
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tlvs_json(h: &Header<'_>) -> Value {
    let mut t = Map::new();
    if let Some(v) = h.alpn() {
        t.insert("alpn".into(), text(v));
    }
    if let Some(v) = h.authority() {
        t.insert("authority".into(), text(v));
    }
    if let Some(v) = h.unique_id() {
        t.insert("unique_id".into(), hex(v).into());
    }
    if let Some(v) = h.crc32c() {
        t.insert("crc32c".into(), format!("{v:08x}").into());
    }
    if let Some(ssl) = h.ssl() {
        let field = |v: Option<&[u8]>| v.map_or(Value::Null, text);
        t.insert(
            "ssl".into(),
            json!({
                "version": field(ssl.version()),
                "cn": field(ssl.cn()),
                "cipher": field(ssl.cipher()),
                "sig_alg": field(ssl.sig_alg()),
                "key_alg": field(ssl.key_alg()),
                "verified": ssl.verified(),
            }),
        );
    }
    if let Some(v) = h.netns() {
        t.insert("netns".into(), text(v));
    }
    if let Some(v) = h.aws_vpce_id() {
        t.insert("aws_vpce_id".into(), text(v));
    }
    if let Some(v) = h.azure_link_id() {
        t.insert("azure_link_id".into(), v.into());
    }
    if let Some(v) = h.gcp_psc_id() {
        t.insert("gcp_psc_id".into(), v.into());
    }
    // Everything the typed accessors above do not cover, raw.
    let other: Vec<Value> = h
        .tlvs()
        .filter(|tlv| match tlv.kind {
            kind::ALPN | kind::AUTHORITY | kind::CRC32C | kind::NOOP | kind::UNIQUE_ID => false,
            kind::SSL | kind::NETNS => false,
            kind::AWS => tlv.value.first() != Some(&kind::AWS_VPCE_ID),
            kind::AZURE => !(tlv.value.len() == 5 && tlv.value[0] == kind::AZURE_LINK_ID),
            kind::GCP => tlv.value.len() != 8,
            _ => true,
        })
        .map(|tlv| json!({ "type": tlv.kind, "hex": hex(tlv.value) }))
        .collect();
    if !other.is_empty() {
        t.insert("other".into(), other.into());
    }
    Value::Object(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!(a.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.proxy_protocol, ProxyProtocol::Optional);
        assert!(a.proxy_from.contains(&"127.0.0.0/8".parse().unwrap()));
        assert!(a.proxy_from.contains(&"10.0.0.0/8".parse().unwrap()));
        assert_eq!(a.header, None, "x-forwarded-for is read when none is named");
        let l = layer(&a, None).unwrap();
        assert!(l
            .policy()
            .trusted_proxies()
            .contains("192.168.1.1".parse().unwrap()));
        assert!(!l
            .policy()
            .trusted_proxies()
            .contains("203.0.113.1".parse().unwrap()));
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
            "X-Real-IP",
            "--no-recursive",
            "--proxy-timeout",
            "4000",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.listen, "127.0.0.2:9000".parse().unwrap());
        assert_eq!(a.proxy_protocol, ProxyProtocol::Required);
        assert_eq!(a.proxy_from, ["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        let t = a.trust.as_ref().unwrap();
        assert!(
            t.contains("127.0.0.9".parse().unwrap()) && t.contains("192.0.2.1".parse().unwrap())
        );
        assert!(!t.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(a.header, Some(HeaderSource::XRealIp));
        assert_eq!(
            parse(&["--header", "x-client"]).unwrap().unwrap().header,
            Some(HeaderSource::Single(HeaderName::from_static("x-client")))
        );
        assert!(!a.recursive);
        assert_eq!(a.proxy_timeout, Some(Duration::from_millis(4000)));
        assert!(layer(&a, None).is_ok());
        assert!(parse(&["--help"]).unwrap().is_none());
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
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Contradictions surface when the policy is built.
        let a = parse(&["--hops", "2", "--trust", "private"])
            .unwrap()
            .unwrap();
        assert!(layer(&a, None).is_err());
        let a = parse(&["--hops", "2"]).unwrap().unwrap();
        assert!(layer(&a, None).is_ok());
    }

    #[test]
    fn list_flags() {
        let a = parse(&[
            "--trust-url",
            "https://lists.example/edge.txt",
            "--trust-provider",
            "cloudflare",
            "--trust-provider",
            "fastly=http://127.0.0.1:9000/fastly.json",
            "--refresh",
            "60",
            "--ranges-cache",
            "/tmp/ranges",
            "--max-age",
            "7200",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.lists,
            [
                ListArg::Url("https://lists.example/edge.txt".into()),
                ListArg::Provider("cloudflare".into(), None),
                ListArg::Provider(
                    "fastly".into(),
                    Some("http://127.0.0.1:9000/fastly.json".into())
                ),
            ]
        );
        assert_eq!(a.refresh, Duration::from_secs(60));
        assert_eq!(a.ranges_cache, Some(PathBuf::from("/tmp/ranges")));
        assert_eq!(a.max_age, Some(Duration::from_secs(7200)));
        assert_eq!(
            parse(&[]).unwrap().unwrap().refresh,
            Duration::from_secs(3600)
        );
        for bad in [
            &["--trust-provider", "akamai"][..],
            &[
                "--trust-provider",
                "gcp",
                "--trust-provider",
                "gcp=http://x/",
            ],
            &["--trust-url", "ftp://example.com/list"],
            &["--refresh", "0"],
            &["--refresh", "soon"],
            &["--max-age", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[cfg(feature = "fetch")]
    #[test]
    fn list_sources() {
        use realip::trust::providers::Format;
        let url = lists::source(&ListArg::Url("https://lists.example/a.txt".into())).unwrap();
        assert_eq!(url.format(), &Format::CidrList);
        // The cache name follows the URL, not the flag order.
        assert_eq!(url.name(), lists::url_name("https://lists.example/a.txt"));
        assert_ne!(url.name(), lists::url_name("https://lists.example/b.txt"));
        let cf = lists::source(&ListArg::Provider("cloudflare".into(), None)).unwrap();
        assert_eq!(
            cf.url().to_string(),
            "https://api.cloudflare.com/client/v4/ips"
        );
        let gcp = lists::source(&ListArg::Provider(
            "gcp".into(),
            Some("http://127.0.0.1:9/cloud.json".into()),
        ))
        .unwrap();
        assert_eq!((gcp.name(), gcp.format()), ("gcp", &Format::GoogleCloud));
        assert_eq!(gcp.url().to_string(), "http://127.0.0.1:9/cloud.json");
    }

    #[test]
    fn proxy_json_v1() {
        let bytes = b"PROXY TCP6 2001:db8::1 2001:db8::2 443 8443\r\n";
        let realip::proxy::Status::Complete(h, _) = realip::proxy::parse(bytes).unwrap() else {
            panic!("complete")
        };
        let v = proxy_json(&h.to_owned_header());
        assert_eq!(
            v,
            json!({
                "version": 1, "command": "proxy", "source": "[2001:db8::1]:443",
                "destination": "[2001:db8::2]:8443", "tlvs": {},
            })
        );
    }
}
