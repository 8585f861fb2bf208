//! The JSON answer: what realip resolved for this request, every field
//! named as in the README.

use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use realip::proxy::{kind, Command, Header, OwnedHeader, Version};
use realip::resolve::{ClientContext, Field};
use realip::{RealIp, Source, Stop};
use serde_json::{json, Map, Value};

/// The handler for every path; `trust_sources` is the refreshed lists'
/// state (`[]` without any), `uri` the request URI the app sees (rewritten
/// with `--rewrite-uri`).
pub(crate) async fn whoami(real: RealIp, uri: http::Uri, trust_sources: Value) -> Response {
    let cx = real.context();
    let body = json!({
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
        "scheme": cx.map(|c| c.scheme().as_str()),
        "host": cx.and_then(|c| c.host()),
        "port": cx.map(|c| c.port()),
        "prefix": cx.and_then(|c| c.prefix()),
        "context": cx.map(context_json),
        "uri": uri.to_string(),
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
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

/// A refusal by `--allow`/`--deny` as JSON: `{"error": "forbidden",
/// "rule": "deny 192.0.2.0/24", "message": ...}`; any other response as is.
pub(crate) async fn denial(res: Response) -> Response {
    let Some(denial) = res.extensions().get::<realip::filter::Denial>().copied() else {
        return res;
    };
    let body = serde_json::json!({
        "error": "forbidden",
        "rule": denial.rule(),
        "message": denial.to_string(),
    });
    let mut out = Response::new(axum::body::Body::from(body.to_string()));
    *out.status_mut() = res.status();
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
