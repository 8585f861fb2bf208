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
use std::process::ExitCode;
use std::time::Duration;

use axum::{Json, Router};
use http::HeaderName;
use ipnet::IpNet;
use realip::proxy::{kind, Command, Header, OwnedHeader, Version};
use realip::resolve::Field;
use realip::{
    ClientContext, HeaderSource, Mode, ProxyProtocolListener, RealIp, RealIpLayer, Source, Stop,
    TrustedProxies,
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
    --context off|on           resolve the client's scheme, host, port and
                               prefix from the context headers that go with
                               --header (X-Forwarded-Proto/-Host/-Port/-Prefix;
                               proto= and host= for forwarded) [default: on]
    --symmetric                ignore a context header whose entry count
                               differs from the address header's
    --allowed-host NAME        accept only these forwarded hosts (repeatable;
                               *.example.com for any name below it)
    --rewrite-uri              rewrite the request URI's scheme and authority
                               to the client's (shown as `uri`)
    --help                     print this help
";

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
    context: bool,
    symmetric: bool,
    allowed_hosts: Vec<String>,
    rewrite_uri: bool,
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
        context: true,
        symmetric: false,
        allowed_hosts: Vec::new(),
        rewrite_uri: false,
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
            "--context" => {
                args.context = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("--context: `{v}` is not off|on")),
                }
            }
            "--symmetric" => args.symmetric = true,
            "--allowed-host" => args.allowed_hosts.push(value()?),
            "--rewrite-uri" => args.rewrite_uri = true,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if args.proxy_from.is_empty() {
        args.proxy_from = TrustedProxies::private().iter().copied().collect();
    }
    Ok(Some(args))
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
/// reported by `build`.
fn layer(args: &Args) -> Result<RealIpLayer, String> {
    let mut b = RealIpLayer::builder();
    match (&args.trust, args.hops) {
        (Some(t), _) => b = b.trusted_proxies(t),
        // Hop counting replaces ranges; the default ranges only apply without it.
        (None, Some(_)) => {}
        (None, None) => b = b.trust_private(),
    }
    if let Some(n) = args.hops {
        b = b.trusted_hops(n);
    }
    if !args.recursive {
        b = b.recursive(false);
    }
    b = b.header(args.header.clone().unwrap_or(HeaderSource::XForwardedFor));
    if !args.context {
        b = b.context(false);
    }
    if args.symmetric {
        b = b.symmetric(true);
    }
    for h in &args.allowed_hosts {
        b = b.allowed_host(h.clone());
    }
    if args.rewrite_uri {
        b = b.rewrite_uri(true);
    }
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
    let layer = match layer(&args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("whoami: {e}\nRun with --help for usage.");
            return ExitCode::from(2);
        }
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
        header = %args.header.as_ref().map_or(HeaderSource::XForwardedFor.name(), |h| h.name()),
        recursive = args.recursive,
        hops = ?args.hops,
        context = args.context,
        "whoami listening"
    );

    // One policy for the whole app: the layer goes around the router and
    // reads each connection's addresses once.
    let app = Router::new().fallback(whoami);
    let served = axum::serve(listener, layer.into_make_service(app)).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whoami: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn whoami(real: RealIp, uri: http::Uri) -> Json<Value> {
    let cx = real.context();
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
        "scheme": cx.map(|c| c.scheme().as_str()),
        "host": cx.and_then(|c| c.host()),
        "port": cx.map(|c| c.port()),
        "prefix": cx.and_then(|c| c.prefix()),
        "context": cx.map(context_json),
        "uri": uri.to_string(),
    }))
}

/// Where each context value came from and why the context walk stopped.
fn context_json(c: &ClientContext) -> Value {
    let ignored: Vec<&str> = [Field::Proto, Field::Host, Field::Port, Field::Prefix]
        .into_iter()
        .filter(|f| c.ignored(*f))
        .map(Field::as_str)
        .collect();
    json!({
        "scheme_source": c.scheme_source().to_string(),
        "host_source": c.host_source().to_string(),
        "port_source": c.port_source().to_string(),
        "prefix_source": c.prefix().map(|_| c.prefix_source().to_string()),
        "stop": c.stop().to_string(),
        "ignored": ignored,
        "host_rejected": c.host_rejected(),
        "base_url": c.base_url(),
    })
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
        let l = layer(&a).unwrap();
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
        assert!(layer(&a).is_ok());
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(a.context && !a.symmetric && !a.rewrite_uri);
        assert!(layer(&a).unwrap().policy().has_context());
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
        .unwrap()
        .unwrap();
        assert!(a.context && a.symmetric && a.rewrite_uri);
        assert_eq!(a.allowed_hosts, ["shop.example", "*.example.org"]);
        assert!(layer(&a).unwrap().policy().has_context());
        let off = parse(&["--context", "off"]).unwrap().unwrap();
        assert!(!layer(&off).unwrap().policy().has_context());
        // Context options with context off, or a bad host pattern: errors.
        let a = parse(&["--context", "off", "--symmetric"])
            .unwrap()
            .unwrap();
        assert!(layer(&a).is_err());
        let a = parse(&["--allowed-host", "user@host"]).unwrap().unwrap();
        assert!(layer(&a).is_err());
        assert!(parse(&["--context", "maybe"]).is_err());
        assert!(parse(&["--allowed-host"]).is_err());
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
        assert!(layer(&a).is_err());
        let a = parse(&["--hops", "2"]).unwrap().unwrap();
        assert!(layer(&a).is_ok());
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
