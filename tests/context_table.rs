//! The client context (scheme, host, port, prefix) against adversarial
//! inputs: forged, misaligned, malformed, oversized, IDN/punycode and
//! IPv6-literal hosts, mixed case, duplicates. Each row states the input
//! and what DESIGN.md "Client context" says the result must be.

use http::{HeaderMap, HeaderName, HeaderValue};
use realip::resolve::{ClientContext, ConnectionView, ContextHeaders, Field, HeaderSource, Policy};
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug)]
enum P {
    /// Private ranges trusted, `X-Forwarded-For`.
    Xff,
    Forwarded,
    RealIp,
    NonRecursive,
    Hops2,
    Hops3,
    Symmetric,
    Allowed,
    SslFlag,
}

fn policy(p: P) -> Policy {
    let b = Policy::builder().context(true);
    let b = match p {
        P::Hops2 => b.trusted_hops(2),
        P::Hops3 => b.trusted_hops(3),
        _ => b.trust_private(),
    };
    let b = match p {
        P::Forwarded => b.header(HeaderSource::Forwarded),
        P::RealIp => b.header(HeaderSource::XRealIp),
        _ => b.header(HeaderSource::XForwardedFor),
    };
    let b = match p {
        P::NonRecursive => b.recursive(false),
        P::Symmetric => b.symmetric(true),
        P::Allowed => b.allowed_host("shop.example").allowed_host("*.example.org"),
        P::SslFlag => b.context_headers(
            ContextHeaders::default().ssl_flag(HeaderName::from_static("x-forwarded-ssl")),
        ),
        _ => b,
    };
    b.build().unwrap()
}

struct Row {
    name: &'static str,
    policy: P,
    peer: &'static str,
    /// PROXY source, and whether its SSL TLV had the client-SSL flag.
    proxy: Option<(&'static str, bool)>,
    tls: bool,
    authority: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    /// `ip scheme://host:port[prefix] s=.. h=.. p=.. stop`
    want: &'static str,
}

const IN: &str = "10.0.0.1:4000";
const OUT: &str = "203.0.113.50:4000";

fn row(
    name: &'static str,
    policy: P,
    headers: &'static [(&'static str, &'static str)],
    want: &'static str,
) -> Row {
    Row {
        name,
        policy,
        peer: IN,
        proxy: None,
        tls: false,
        authority: None,
        headers,
        want,
    }
}

fn show(ip: std::net::IpAddr, c: &ClientContext) -> String {
    format!(
        "{ip} {}://{}:{}{} s={} h={} p={} {}",
        c.scheme(),
        c.host().unwrap_or("-"),
        c.port(),
        c.prefix().unwrap_or(""),
        c.scheme_source(),
        c.host_source(),
        c.port_source(),
        c.stop()
    )
}

fn rows() -> Vec<Row> {
    use P::*;
    const H: (&str, &str) = ("host", "app.internal:8080");
    let long_host: &'static str =
        Box::leak(format!("{}.example", "a".repeat(250)).into_boxed_str());
    let long_hdr: &'static [(&str, &str)] = Box::leak(Box::new([
        H,
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", long_host),
    ]));
    let long_label: &'static str =
        Box::leak(format!("{}.example", "b".repeat(64)).into_boxed_str());
    let label_hdr: &'static [(&str, &str)] = Box::leak(Box::new([
        H,
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", long_label),
    ]));
    let long_prefix: &'static str = Box::leak(format!("/{}", "p".repeat(300)).into_boxed_str());
    let prefix_hdr: &'static [(&str, &str)] = Box::leak(Box::new([
        H,
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-prefix", long_prefix),
    ]));
    let mut v = vec![
        // --- starting values from the connection
        row("plain connection", Xff, &[H, ("x-forwarded-for", "203.0.113.9")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        Row { tls: true, ..row("tls listener", Xff, &[H],
            "10.0.0.1 https://app.internal:8080 s=connection h=request p=request followed") },
        Row { proxy: Some(("10.0.0.9:1234", true)), ..row("proxy ssl tlv", Xff, &[("host", "shop.example")],
            "10.0.0.9 https://shop.example:443 s=proxy-protocol h=request p=default followed") },
        Row { proxy: Some(("10.0.0.9:1234", false)), ..row("proxy without ssl flag", Xff, &[("host", "shop.example")],
            "10.0.0.9 http://shop.example:80 s=connection h=request p=default followed") },
        Row { authority: Some("h2.example:8443"), ..row("request authority before Host", Xff, &[H],
            "10.0.0.1 http://h2.example:8443 s=connection h=request p=request followed") },
        row("no host at all", Xff, &[],
            "10.0.0.1 http://-:80 s=connection h=request p=default followed"),
        row("two Host lines: neither", Xff, &[("host", "a.example"), ("host", "b.example")],
            "10.0.0.1 http://-:80 s=connection h=request p=default followed"),
        row("invalid Host header ignored", Xff, &[("host", "bad host")],
            "10.0.0.1 http://-:80 s=connection h=request p=default followed"),
        row("Host IPv6 literal", Xff, &[("host", "[::1]:8080")],
            "10.0.0.1 http://[::1]:8080 s=connection h=request p=request followed"),
        row("Host mixed case lowercased", Xff, &[("host", "App.EXAMPLE")],
            "10.0.0.1 http://app.example:80 s=connection h=request p=default followed"),
        // --- one trusted proxy (ALB, nginx)
        row("alb proto", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("alb proto and port", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https"), ("x-forwarded-port", "443")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=header (hop 1) followed"),
        row("nginx proto host port", Xff, &[("host", "127.0.0.1:3000"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "shop.example"), ("x-forwarded-port", "443")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=header (hop 1) p=header (hop 1) followed"),
        row("forwarded host port, no port header", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop.example:8443")],
            "203.0.113.9 http://shop.example:8443 s=connection h=header (hop 1) p=header (hop 1) followed"),
        row("forwarded host without port resets the port", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop.example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        row("port header beats host port on one step", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop.example:8443"), ("x-forwarded-port", "9443")],
            "203.0.113.9 http://shop.example:9443 s=connection h=header (hop 1) p=header (hop 1) followed"),
        row("prefix", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/app")],
            "203.0.113.9 http://app.internal:8080/app s=connection h=request p=request followed"),
        row("wss", Xff, &[("host", "ws.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "wss")],
            "203.0.113.9 wss://ws.example:443 s=header (hop 1) h=request p=default followed"),
        row("proto mixed case", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "HtTpS")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("host mixed case lowercased", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "Shop.Example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        row("punycode host", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "xn--bcher-kva.example")],
            "203.0.113.9 http://xn--bcher-kva.example:80 s=connection h=header (hop 1) p=default followed"),
        row("IPv6 literal host with port", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "[2001:db8::1]:8443")],
            "203.0.113.9 http://[2001:db8::1]:8443 s=connection h=header (hop 1) p=header (hop 1) followed"),
        row("IPv4 host", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "192.0.2.1")],
            "203.0.113.9 http://192.0.2.1:80 s=connection h=header (hop 1) p=default followed"),
        row("empty items skipped", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https,, ")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("empty context value keeps the current one", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        // --- forged by the client
        row("forged proto left of the client", Xff, &[("host", "shop.example"), ("x-forwarded-for", "6.6.6.6, 203.0.113.9"), ("x-forwarded-proto", "http, https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("forged host left of the client", Xff, &[H, ("x-forwarded-for", "6.6.6.6, 203.0.113.9"), ("x-forwarded-host", "evil.example, shop.example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        row("forged malformed value left of the client is never read", Xff, &[H, ("x-forwarded-for", "6.6.6.6, 203.0.113.9"), ("x-forwarded-host", "user@evil, shop.example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        Row { peer: OUT, ..row("untrusted peer's context ignored", Xff, &[H, ("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")],
            "203.0.113.50 http://app.internal:8080 s=connection h=request p=request followed") },
        Row { peer: OUT, ..row("untrusted peer's malformed context ignored", Xff, &[H, ("x-forwarded-proto", "javascript")],
            "203.0.113.50 http://app.internal:8080 s=connection h=request p=request followed") },
        row("trusted peer without address header: no step", Xff, &[H, ("x-forwarded-proto", "https")],
            "10.0.0.1 http://app.internal:8080 s=connection h=request p=request followed"),
        row("context list longer than the chain: rightmost only", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "http, https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("underscore look-alike never read", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x_forwarded_proto", "https")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        // --- two tiers
        row("two tiers append", Xff, &[H, ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "https, http"), ("x-forwarded-host", "shop.example, inner.internal")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=header (hop 2) p=default followed"),
        row("two tiers, one value aligned to the nearest", Xff, &[H, ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "https")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 1) h=request p=request followed"),
        row("two tiers over repeated lines", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "10.0.0.2"), ("x-forwarded-proto", "https"), ("x-forwarded-proto", "http")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 2) h=request p=request followed"),
        row("host without port at a further step replaces a nearer port", Xff, &[H, ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-host", "shop.example, inner.internal"), ("x-forwarded-port", "8443")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 2) p=default followed"),
        // --- malformed values stop the context walk, never the address walk
        row("malformed proto at hop 2", Xff, &[H, ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "javascript, https")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 1) h=request p=request malformed proto (hop 2)"),
        row("malformed proto at hop 1", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "ftp")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed proto (hop 1)"),
        row("malformed step takes nothing", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https"), ("x-forwarded-port", "99999")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed port (hop 1)"),
        row("host with userinfo", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "user@evil.example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host with space", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evil example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host with tab", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evil\texample")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host with empty label", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop..example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host with trailing dot", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop.example.")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host raw UTF-8 IDN", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "b\u{fc}cher.example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host bare IPv6", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "2001:db8::1")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host IPv6 with zone", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "[fe80::1%25eth0]")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host with path", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evil.example/x")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host percent-encoded", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evil%2eexample")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("host port over 65535", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "shop.example:65536")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        ("oversized host", long_hdr).into_row(
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        ("label over 63 bytes", label_hdr).into_row(
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("port zero", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-port", "0")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed port (hop 1)"),
        row("port leading zero", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-port", "0443")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed port (hop 1)"),
        row("port signed", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-port", "+443")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed port (hop 1)"),
        row("prefix without slash", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "app")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix dot-dot", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/app/../admin")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix double slash", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "//evil.example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix backslash", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/\\evil.example")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix encoded dot-dot", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/%2e%2e/admin")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix encoded dot-dot upper case", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/%2E%2E/admin")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("prefix control byte", Xff, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-prefix", "/a\tb")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        ("oversized prefix", prefix_hdr).into_row(
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed prefix (hop 1)"),
        row("malformed address entry: context of earlier steps stands", Xff, &[H, ("x-forwarded-for", "garbage, 10.0.0.2"), ("x-forwarded-proto", "javascript, https")],
            "10.0.0.2 https://app.internal:8080 s=header (hop 1) h=request p=request followed"),
        row("zoned client entry: its step is believed", Xff, &[H, ("x-forwarded-for", "fe80::1%eth0"), ("x-forwarded-proto", "https")],
            "fe80::1 https://app.internal:8080 s=header (hop 1) h=request p=request followed"),
        // --- Forwarded
        row("forwarded proto host", Forwarded, &[H, ("forwarded", "for=203.0.113.9;proto=https;host=shop.example")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=header (hop 1) p=default followed"),
        row("forwarded forged element", Forwarded, &[H, ("forwarded", "for=6.6.6.6;proto=http;host=evil.example, for=203.0.113.9;proto=https;host=shop.example")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=header (hop 1) p=default followed"),
        row("forwarded two tiers", Forwarded, &[H, ("forwarded", "for=203.0.113.9;proto=https;host=shop.example, for=10.0.0.2;proto=http;host=inner.internal")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=header (hop 2) p=default followed"),
        row("forwarded quoted host with port", Forwarded, &[H, ("forwarded", "for=203.0.113.9;host=\"shop.example:8443\";proto=https")],
            "203.0.113.9 https://shop.example:8443 s=header (hop 1) h=header (hop 1) p=header (hop 1) followed"),
        row("forwarded IPv6 host", Forwarded, &[H, ("forwarded", "for=\"[2001:db8::9]\";host=\"[2001:db8::1]:8443\"")],
            "2001:db8::9 http://[2001:db8::1]:8443 s=connection h=header (hop 1) p=header (hop 1) followed"),
        row("forwarded element without proto keeps the scheme", Forwarded, &[("host", "shop.example"), ("forwarded", "for=203.0.113.9;proto=https, for=10.0.0.2")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=request p=default followed"),
        row("forwarded malformed proto", Forwarded, &[H, ("forwarded", "for=203.0.113.9;proto=gopher")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed proto (hop 1)"),
        row("forwarded host with userinfo", Forwarded, &[H, ("forwarded", "for=203.0.113.9;host=\"u@evil.example\"")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        row("forwarded policy ignores X-Forwarded-Proto", Forwarded, &[H, ("forwarded", "for=203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        row("forwarded repeated lines", Forwarded, &[H, ("forwarded", "for=203.0.113.9;proto=https"), ("forwarded", "for=10.0.0.2;proto=http")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 2) h=request p=request followed"),
        // The element's values as the RFC 7239 lexer reads them (one pass
        // with its `for`): empty pairs are allowed, a quoted-pair in another
        // parameter is no context value, one in `host` is malformed.
        row("forwarded empty pair before proto", Forwarded, &[H, ("forwarded", "for=203.0.113.9;;proto=https")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 1) h=request p=request followed"),
        row("forwarded quoted-pair in by", Forwarded, &[H, ("forwarded", "for=203.0.113.9;by=\"a\\\"b\";host=shop.example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        row("forwarded quoted-pair in host", Forwarded, &[H, ("forwarded", "for=203.0.113.9;proto=https;host=\"shop\\.example\"")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed host (hop 1)"),
        // --- single-address headers: one step, one value each
        row("x-real-ip with proto", RealIp, &[("host", "shop.example"), ("x-real-ip", "203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("x-real-ip with two proto values", RealIp, &[H, ("x-real-ip", "203.0.113.9"), ("x-forwarded-proto", "http, https")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed proto (hop 1)"),
        row("x-real-ip with two proto lines", RealIp, &[H, ("x-real-ip", "203.0.113.9"), ("x-forwarded-proto", "https"), ("x-forwarded-proto", "https")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request malformed proto (hop 1)"),
        // --- modes
        row("non-recursive: one step", NonRecursive, &[H, ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "https, http")],
            "10.0.0.2 http://app.internal:8080 s=header (hop 1) h=request p=request followed"),
        Row { peer: OUT, ..row("hop count 2", Hops2, &[H, ("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "http, https, http")],
            "203.0.113.9 https://app.internal:8080 s=header (hop 2) h=request p=request followed") },
        Row { peer: OUT, ..row("hop count too short: context back to the connection", Hops3, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.50 http://app.internal:8080 s=connection h=request p=request followed") },
        Row { proxy: Some(("10.0.0.9:1234", false)), ..row("PROXY source counts as hop 1", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=request p=default followed") },
        Row { proxy: Some(("10.0.0.9:1234", false)), ..row("PROXY source: a malformed value names its hop as the sources do", Xff, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "ftp, https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=request p=default malformed proto (hop 3)") },
        Row { proxy: Some(("10.0.0.9:1234", false)), ..row("PROXY source: a malformed Forwarded value names its hop", Forwarded, &[("host", "shop.example"), ("forwarded", "for=203.0.113.9;proto=gopher, for=10.0.0.2;proto=https")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=request p=default malformed proto (hop 3)") },
        // --- options
        row("symmetric: counts match", Symmetric, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "https, http")],
            "203.0.113.9 https://shop.example:443 s=header (hop 2) h=request p=default followed"),
        row("symmetric: count differs, header ignored", Symmetric, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9, 10.0.0.2"), ("x-forwarded-proto", "https")],
            "203.0.113.9 http://shop.example:80 s=connection h=request p=default followed"),
        row("allowed exact host", Allowed, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "SHOP.example")],
            "203.0.113.9 http://shop.example:80 s=connection h=header (hop 1) p=default followed"),
        row("allowed suffix", Allowed, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "a.b.example.org")],
            "203.0.113.9 http://a.b.example.org:80 s=connection h=header (hop 1) p=default followed"),
        row("suffix does not match the bare domain", Allowed, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "example.org")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        row("host not allowed: connection's host and port stand", Allowed, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evil.example:8443")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        row("look-alike suffix not allowed", Allowed, &[H, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-host", "evilexample.org")],
            "203.0.113.9 http://app.internal:8080 s=connection h=request p=request followed"),
        row("ssl flag on", SslFlag, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-ssl", "on")],
            "203.0.113.9 https://shop.example:443 s=header (hop 1) h=request p=default followed"),
        row("ssl flag style ignores X-Forwarded-Proto", SslFlag, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")],
            "203.0.113.9 http://shop.example:80 s=connection h=request p=default followed"),
        row("ssl flag malformed", SslFlag, &[("host", "shop.example"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-ssl", "yes")],
            "203.0.113.9 http://shop.example:80 s=connection h=request p=default malformed proto (hop 1)"),
    ];
    v.shrink_to_fit();
    v
}

trait IntoRow {
    fn into_row(self, want: &'static str) -> Row;
}

impl IntoRow for (&'static str, &'static [(&'static str, &'static str)]) {
    fn into_row(self, want: &'static str) -> Row {
        row(self.0, P::Xff, self.1, want)
    }
}

fn run(r: &Row) -> (realip::Resolution, String) {
    let mut headers = HeaderMap::new();
    for (k, v) in r.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let authority: Option<http::uri::Authority> = r.authority.map(|a| a.parse().unwrap());
    let mut view = ConnectionView::new()
        .tls(r.tls)
        .request_authority(authority.as_ref());
    let proxy = r.proxy.map(|(a, ssl)| {
        view = view.proxy_ssl(ssl);
        a.parse::<SocketAddr>().unwrap()
    });
    let res = policy(r.policy).resolve_with(r.peer.parse().unwrap(), proxy, &headers, &view);
    // The context walk is deferred to the first read: a copy taken before
    // it, read with the request gone, walks to the same values.
    let unread = res.clone();
    drop(headers);
    let c = res.context().expect("context is on");
    let shown = show(res.ip(), c);
    let later = unread.context().expect("context is on");
    assert_eq!(
        show(unread.ip(), later),
        shown,
        "{}: a copy read later",
        r.name
    );
    (res, shown)
}

#[test]
fn table() {
    let rows = rows();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let (_, got) = run(r);
        if got != r.want {
            failures.push(format!("{}:\n   got  {got}\n   want {}", r.name, r.want));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// The notes beside the values: which header symmetry ignored, which host
/// the allowed list refused.
#[test]
fn notes() {
    let rows = rows();
    let find = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    let (res, _) = run(find("symmetric: count differs, header ignored"));
    let c = res.context().unwrap();
    assert!(c.ignored(Field::Proto));
    assert!(!c.ignored(Field::Host));
    let (res, _) = run(find("host not allowed: connection's host and port stand"));
    assert!(res.context().unwrap().host_rejected());
    let (res, _) = run(find("allowed exact host"));
    assert!(!res.context().unwrap().host_rejected());
    // A malformed context value never changes the address walk.
    let (res, _) = run(find("malformed proto at hop 2"));
    assert_eq!(res.stop(), realip::Stop::UntrustedHop);
    assert_eq!(res.hops().len(), 3);
}

#[test]
fn base_url_and_authority() {
    let (res, _) = run(&row(
        "base",
        P::Xff,
        &[
            ("host", "10.0.0.1:3000"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example"),
            ("x-forwarded-prefix", "/app/"),
        ],
        "",
    ));
    let c = res.context().unwrap();
    assert_eq!(c.base_url().as_deref(), Some("https://shop.example/app"));
    assert_eq!(c.authority().as_deref(), Some("shop.example"));
    let (res, _) = run(&row(
        "base port",
        P::Xff,
        &[("host", "shop.example:8443")],
        "",
    ));
    let c = res.context().unwrap();
    assert_eq!(c.base_url().as_deref(), Some("http://shop.example:8443"));
}

#[test]
fn context_off_and_defaults() {
    let headers = HeaderMap::new();
    let peer: SocketAddr = IN.parse().unwrap();
    let off = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .context(false)
        .build()
        .unwrap();
    assert!(off.resolve(peer, None, &headers).context().is_none());
    // On by default once an address header is configured.
    let default = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    assert!(default.has_context());
    assert!(default.resolve(peer, None, &headers).context().is_some());
    // No header configured: off unless asked for.
    assert!(!Policy::default().has_context());
    assert!(Policy::default()
        .resolve(peer, None, &headers)
        .context()
        .is_none());
    let on = Policy::builder().context(true).build().unwrap();
    let r = on.resolve(peer, None, &headers);
    assert_eq!(r.context().unwrap().scheme(), realip::Scheme::Http);
    // Options without context are a configuration error naming the
    // switch, whether context was turned off or left off (no header).
    let off = || {
        Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .context(false)
    };
    for b in [off().symmetric(true), Policy::builder().symmetric(true)] {
        let err = b.build().unwrap_err();
        assert_eq!(err.kind(), realip::ConfigErrorKind::ContextOff);
        assert!(err.to_string().contains("`.context(true)`"), "{err}");
    }
    let err = off().allowed_host("shop.example").build().unwrap_err();
    assert_eq!(err.kind(), realip::ConfigErrorKind::ContextOff);
    for bad in ["", "*.", "user@host", "a..b", "*.*.example", "host:80"] {
        let err = Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .context(true)
            .allowed_host(bad)
            .build()
            .unwrap_err();
        assert_eq!(
            err.kind(),
            realip::ConfigErrorKind::InvalidAllowedHost,
            "{bad}"
        );
    }
    let err = Policy::builder()
        .trust_private()
        .header(HeaderSource::XForwardedFor)
        .context(true)
        .context_headers(ContextHeaders::default().proto(HeaderName::from_static("x_proto")))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), realip::ConfigErrorKind::UnderscoreHeaderName);
}
