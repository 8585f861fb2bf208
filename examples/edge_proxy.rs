//! `edge_proxy`: a small reverse proxy on hyper-util + realip that passes
//! the client on to its upstream.
//!
//! ```sh
//! cargo run --features cli --bin whoami -- --listen 127.0.0.1:9000 &
//! cargo run --example edge_proxy --features connect -- \
//!     --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 --send-proxy v2
//! curl -s http://127.0.0.1:8080/
//! cargo run --example edge_proxy --features connect -- --help   # every flag
//! ```
//!
//! The inbound side resolves the client as whoami does (same flags, same
//! defaults). Each request is forwarded with its body streamed both ways,
//! WebSocket upgrades included. With `--send-proxy`, every downstream
//! connection gets its own upstream connections (an
//! `UpstreamClient` per connection), each starting with a PROXY header
//! naming that connection's client: a PROXY header describes one client,
//! so upstream connections are never shared between clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use realip::outbound::{
    Format, ForwardHeaders, ProxyVersion, UpstreamClient, UpstreamError, UpstreamHeader,
};
use realip::{HeaderSource, Mode, ProxiedAddr, ProxyAcceptor, RealIp, RealIpLayer, TrustedProxies};
use tokio::net::TcpListener;

const USAGE: &str = "\
edge_proxy: a reverse proxy that passes the client realip resolved on

USAGE:
    cargo run --example edge_proxy --features connect -- --upstream HOST:PORT [FLAGS]

FLAGS:
    --listen ADDR              address to listen on [default: 127.0.0.1:8080]
    --upstream HOST:PORT       where requests go (plain HTTP/1.1) [required]
    --send-proxy v1|v2         start each upstream connection with a PROXY
                               header naming the client [default: off]
    --forwarded xff|rfc7239|off
                               header written for the upstream: X-Forwarded-For,
                               RFC 7239 Forwarded, or none (headers pass as
                               they came) [default: xff]
    --append                   keep the incoming header and append the peer
                               (default: write only what was believed)
  inbound side, as whoami:
    --proxy-protocol MODE      off | optional | required [default: optional]
    --proxy-from CIDR          peers allowed to send a PROXY header
                               (repeatable) [default: loopback and private ranges]
    --trust CIDR|loopback|private
                               proxies whose forwarded headers are believed
                               (repeatable) [default: loopback and private ranges]
    --header NAME              the one header to read the client from
                               [default: x-forwarded-for]
    --context on|off           resolve the client's scheme, host, port and
                               prefix, and pass them on (X-Forwarded-Proto,
                               -Host, -Port, -Prefix; proto= and host= in
                               Forwarded) [default: on]
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
    upstream: String,
    send_proxy: Option<ProxyVersion>,
    forwarded: Option<Format>,
    append: bool,
    proxy_protocol: ProxyProtocol,
    proxy_from: Vec<IpNet>,
    trust: Option<TrustedProxies>,
    header: Option<HeaderSource>,
    context: bool,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: "127.0.0.1:8080".parse().expect("valid default"),
        upstream: String::new(),
        send_proxy: None,
        forwarded: Some(Format::XForwardedFor),
        append: false,
        proxy_protocol: ProxyProtocol::Optional,
        proxy_from: Vec::new(),
        trust: None,
        header: None,
        context: true,
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
            "--upstream" => {
                let v = value()?;
                // HOST:PORT, nothing else: it becomes the URI authority.
                match v.parse::<http::uri::Authority>() {
                    Ok(a) if a.port_u16().is_some() && !v.contains('@') => args.upstream = v,
                    _ => return Err(format!("--upstream: `{v}` is not HOST:PORT")),
                }
            }
            "--send-proxy" => {
                args.send_proxy = match value()?.as_str() {
                    "v1" => Some(ProxyVersion::V1),
                    "v2" => Some(ProxyVersion::V2),
                    "off" => None,
                    v => return Err(format!("--send-proxy: `{v}` is not v1|v2|off")),
                }
            }
            "--forwarded" => {
                args.forwarded = match value()?.as_str() {
                    "xff" => Some(Format::XForwardedFor),
                    "rfc7239" => Some(Format::Forwarded),
                    "off" => None,
                    v => return Err(format!("--forwarded: `{v}` is not xff|rfc7239|off")),
                }
            }
            "--append" => args.append = true,
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
            "--context" => {
                args.context = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("--context: `{v}` is not on|off")),
                };
            }
            "--header" => {
                if args.header.is_some() {
                    return Err("--header: given twice; a policy reads exactly one".to_owned());
                }
                args.header = Some(header_source(&value()?)?);
            }
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if args.upstream.is_empty() {
        return Err("--upstream HOST:PORT is required".to_owned());
    }
    if args.append && args.forwarded.is_none() {
        return Err("--append needs a header to append to (--forwarded xff|rfc7239)".to_owned());
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
        _ => HeaderSource::Single(
            HeaderName::try_from(name.as_str())
                .map_err(|_| format!("--header: `{name}` is not a header name"))?,
        ),
    })
}

fn layer(args: &Args) -> Result<RealIpLayer, String> {
    let b = match &args.trust {
        Some(t) => RealIpLayer::builder().trusted_proxies(t),
        None => RealIpLayer::builder().trust_private(),
    };
    // Context on (as whoami): the scheme and host the client used travel
    // on with its address, so the upstream builds the right redirects.
    b.header(args.header.clone().unwrap_or(HeaderSource::XForwardedFor))
        .context(args.context)
        .build()
        .map_err(|e| format!("policy: {e}"))
}

fn acceptor(args: &Args) -> ProxyAcceptor {
    let from = args.proxy_from.iter().copied();
    match args.proxy_protocol {
        ProxyProtocol::Off => ProxyAcceptor::new().otherwise(Mode::Skip),
        // Peers outside `from` fall back to Mode::Reject.
        ProxyProtocol::Optional => ProxyAcceptor::new().optional_from(from),
        ProxyProtocol::Required => ProxyAcceptor::new().require_from(from),
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

/// What every connection shares.
struct Shared {
    /// `--upstream`, parsed once: each request's URI shares it.
    upstream: Authority,
    send_proxy: Option<ProxyVersion>,
    forward: Option<ForwardHeaders>,
    connector: HttpConnector,
    /// Without `--send-proxy` the upstream learns nothing from the
    /// connection, so one pool serves every client.
    pooled: Client<HttpConnector, Incoming>,
    next_id: AtomicU64,
}

/// One downstream connection.
struct Conn {
    shared: Arc<Shared>,
    local: SocketAddr,
    id: u64,
    /// With `--send-proxy`: this connection's own upstream client, made on
    /// its first request (whose Host becomes the AUTHORITY TLV).
    upstream: OnceLock<Result<UpstreamClient<HttpConnector, Incoming>, String>>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("edge_proxy: {e}\nRun with --help for usage.");
            return ExitCode::from(2);
        }
    };
    let layer = match layer(&args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edge_proxy: {e}\nRun with --help for usage.");
            return ExitCode::from(2);
        }
    };
    let acceptor = acceptor(&args);
    let tcp = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edge_proxy: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let forward = args.forwarded.map(|f| {
        let w = ForwardHeaders::new(f);
        if args.append {
            w.append()
        } else {
            w
        }
    });
    let shared = Arc::new(Shared {
        upstream: match args.upstream.parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("edge_proxy: --upstream: {e}");
                return ExitCode::from(2);
            }
        },
        send_proxy: args.send_proxy,
        forward,
        pooled: Client::builder(TokioExecutor::new()).build(connector.clone()),
        connector,
        next_id: AtomicU64::new(1),
    });
    tracing::info!(
        listen = %args.listen,
        upstream = %args.upstream,
        send_proxy = ?args.send_proxy,
        forwarded = ?args.forwarded,
        append = args.append,
        proxy_protocol = ?args.proxy_protocol,
        "edge_proxy listening"
    );

    loop {
        let (socket, peer) = match tcp.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: wait a moment instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Ok(local) = socket.local_addr() else {
            continue;
        };
        let (acceptor, layer, shared) = (acceptor.clone(), layer.clone(), shared.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(socket, peer).await else {
                return; // closed; the reason is a realip::io event
            };
            let addr = ProxiedAddr::new(peer, local, stream.proxy_header_arc().cloned());
            let conn = Arc::new(Conn {
                id: shared.next_id.fetch_add(1, Ordering::Relaxed),
                shared,
                local,
                upstream: OnceLock::new(),
            });
            let app = tower::service_fn(move |req| forward_request(conn.clone(), req));
            let service = layer.layer_connection(app, &addr);
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .await;
            if let Err(e) = served {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded as they are.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Removes hop-by-hop headers and those `Connection` names; an upgrade keeps
/// `Connection: upgrade` and its `Upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // One look at each name finds the hop-by-hop ones present (usually
    // none, or `Connection: keep-alive`); only those are removed, instead
    // of a lookup (a hash) per name that might be there.
    let mut gone: Vec<HeaderName> = Vec::new();
    for k in headers.keys() {
        let hop = HOP_BY_HOP.contains(k) || matches!(k.as_str(), "keep-alive" | "proxy-connection");
        if hop && !gone.contains(k) {
            gone.push(k.clone());
        }
    }
    if gone.is_empty() {
        return;
    }
    for token in headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        if let Ok(name) = HeaderName::try_from(token.trim()) {
            if !gone.contains(&name) && headers.contains_key(&name) {
                gone.push(name);
            }
        }
    }
    let kept = upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    for name in &gone {
        headers.remove(name);
    }
    if let Some(protocol) = kept {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut res = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

async fn forward_request(
    conn: Arc<Conn>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // The request's target on the upstream: parts shared, nothing parsed.
    let mut target = http::uri::Parts::default();
    target.scheme = Some(Scheme::HTTP);
    target.authority = Some(conn.shared.upstream.clone());
    target.path_and_query = Some(
        req.uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    let Ok(uri) = Uri::from_parts(target) else {
        return Ok(text(StatusCode::BAD_REQUEST, "bad request target\n"));
    };
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // Taken out, not cloned: the request it came with is consumed here.
    let Some(real) = parts.extensions.remove::<RealIp>() else {
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no client address\n",
        ));
    };
    // The upstream speaks HTTP/1.1 whatever the client spoke; an HTTP/2
    // request's authority becomes its Host.
    if !parts.headers.contains_key(header::HOST) {
        if let Some(Ok(host)) = parts
            .uri
            .authority()
            .map(|a| HeaderValue::from_str(a.as_str()))
        {
            parts.headers.insert(header::HOST, host);
        }
    }
    let client_http2 = parts.version == http::Version::HTTP_2;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if let Some(forward) = &conn.shared.forward {
        forward.write(Some(&real), &mut parts.headers);
    }
    let mut up = Request::new(body);
    *up.method_mut() = parts.method;
    *up.uri_mut() = uri;
    *up.headers_mut() = parts.headers;

    let sent = match conn.shared.send_proxy {
        None => conn
            .shared
            .pooled
            .request(up)
            .await
            .map_err(UpstreamError::Upstream),
        Some(version) => {
            let client = conn.upstream.get_or_init(|| {
                let mut header = UpstreamHeader::for_client(version, &real, conn.local);
                if version == ProxyVersion::V2 {
                    if let Some(host) = up.headers().get(header::HOST) {
                        header = header.authority(host.as_bytes());
                    }
                    header = header
                        .alpn(if client_http2 { "h2" } else { "http/1.1" })
                        .unique_id(format!("edge-{}-{}", std::process::id(), conn.id))
                        .crc32c();
                }
                UpstreamClient::new(conn.shared.connector.clone(), &header)
                    .map_err(|e| e.to_string())
            });
            // The client this connection's upstream client is bound to:
            // it refuses a request without it.
            up.extensions_mut().insert(real);
            match client {
                Ok(c) => c.request(up).await,
                Err(e) => {
                    tracing::warn!("PROXY header: {e}");
                    return Ok(text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "proxy header error\n",
                    ));
                }
            }
        }
    };
    let mut res = match sent {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!("upstream: {e}");
            return Ok(if e.is_connect() {
                text(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
            } else {
                text(StatusCode::BAD_GATEWAY, "bad gateway\n")
            });
        }
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut res);
            tokio::spawn(async move {
                if let (Ok(down), Ok(up)) = (downstream.await, upstream.await) {
                    let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
    } else {
        strip_hop_by_hop(res.headers_mut(), false);
    }
    Ok(res.map(|b| b.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_match_whoami() {
        let a = parse(&["--upstream", "127.0.0.1:9000"]).unwrap().unwrap();
        assert_eq!(a.send_proxy, None);
        assert_eq!(a.forwarded, Some(Format::XForwardedFor));
        assert!(!a.append);
        assert_eq!(a.proxy_protocol, ProxyProtocol::Optional);
        assert!(a.proxy_from.contains(&"10.0.0.0/8".parse().unwrap()));
        let l = layer(&a).unwrap();
        assert!(l
            .policy()
            .trusted_proxies()
            .contains("192.168.1.1".parse().unwrap()));
        // Context on, as whoami: the edge passes the scheme and host on.
        assert!(l.policy().has_context());
        let off = parse(&["--upstream", "127.0.0.1:9000", "--context", "off"])
            .unwrap()
            .unwrap();
        assert!(!layer(&off).unwrap().policy().has_context());
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            &[][..],
            &["--upstream", "nowhere"],
            &["--upstream", "127.0.0.1:9000", "--send-proxy", "v3"],
            &["--upstream", "127.0.0.1:9000", "--forwarded", "x"],
            &["--upstream", "127.0.0.1:9000", "--context", "yes"],
            &[
                "--upstream",
                "127.0.0.1:9000",
                "--forwarded",
                "off",
                "--append",
            ],
            &[
                "--upstream",
                "127.0.0.1:9000",
                "--header",
                "x-a",
                "--header",
                "x-b",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_removed_upgrade_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("upgrade, x-secret"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        let mut plain = h.clone();
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h.len(), 2);
        strip_hop_by_hop(&mut plain, false);
        assert!(plain.is_empty());
        // Nothing hop-by-hop: nothing changes.
        let mut end_to_end = HeaderMap::new();
        end_to_end.insert(header::HOST, HeaderValue::from_static("example.com"));
        end_to_end.insert("x-a", HeaderValue::from_static("1"));
        let before = end_to_end.clone();
        strip_hop_by_hop(&mut end_to_end, false);
        assert_eq!(end_to_end, before);
        // keep-alive alone is found too.
        let mut ka = before.clone();
        ka.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        strip_hop_by_hop(&mut ka, false);
        assert_eq!(ka, before);
    }
}
