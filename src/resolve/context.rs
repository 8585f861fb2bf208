//! The client's view of the request (scheme, host, port, prefix), taken
//! in the same walk as its address.
//!
//! The starting values come from the connection ([`ConnectionView`]):
//! `https` when the listener ran TLS or the accepted PROXY header's SSL TLV
//! has the client-SSL flag, else `http`; the host from the request's
//! authority, else its `Host` header, else the PROXY AUTHORITY TLV; the
//! port as written there, else the scheme's default.
//!
//! Then every step of the address walk that a trusted hop vouches for
//! (the step from a trusted hop to entry *i* of the address header) may
//! also take entry *i* of each context header, read right to left in
//! lockstep; a `Forwarded` element carries its own `proto` and `host`. A
//! missing entry keeps the value so far, the furthest believed step wins,
//! and nothing left of the client is read. An untrusted peer's context
//! headers are never read. A malformed value (see
//! [`crate::forwarded::context`]) ends the context walk: the values of the
//! steps before it stand, the stop is recorded
//! ([`ContextStop::Malformed`]), and the address walk goes on unaffected.

#[cfg(doc)]
use super::resolution::Resolution;
pub use crate::forwarded::context::Scheme;
use crate::forwarded::context::{
    parse_host, parse_port, parse_prefix, parse_scheme, parse_ssl_flag, ListRev,
};
use crate::forwarded::rfc7239::Params;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::sync::OnceLock;

/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`.
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// `X-Forwarded-Prefix`.
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
/// `X-Forwarded-Ssl` (`on`/`off`).
pub const X_FORWARDED_SSL: HeaderName = HeaderName::from_static("x-forwarded-ssl");

/// One value of the client context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The scheme (`X-Forwarded-Proto`, `proto=`).
    Proto,
    /// The host (`X-Forwarded-Host`, `host=`).
    Host,
    /// The port (`X-Forwarded-Port`).
    Port,
    /// The path prefix (`X-Forwarded-Prefix`).
    Prefix,
}

impl Field {
    const ALL: [Field; 4] = [Field::Proto, Field::Host, Field::Port, Field::Prefix];

    /// Lowercase name (`proto`, `host`, `port`, `prefix`).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Proto => "proto",
            Field::Host => "host",
            Field::Port => "port",
            Field::Prefix => "prefix",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one value of a [`ClientContext`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextSource {
    /// The connection itself: TLS on the listener (`https`), or plain
    /// (`http`).
    Connection,
    /// The accepted PROXY header: its SSL TLV (`https`) or AUTHORITY TLV.
    ProxyProtocol,
    /// The request: its URI authority or `Host` header.
    Request,
    /// No port was written anywhere: the scheme's default.
    Default,
    /// A context header entry (or a `Forwarded` element) taken on the
    /// step to this hop; `hop` indexes [`Resolution::hops`].
    Header {
        /// Index into [`Resolution::hops`] of the hop the value came with.
        hop: usize,
    },
}

impl fmt::Display for ContextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextSource::Connection => f.write_str("connection"),
            ContextSource::ProxyProtocol => f.write_str("proxy-protocol"),
            ContextSource::Request => f.write_str("request"),
            ContextSource::Default => f.write_str("default"),
            ContextSource::Header { hop } => write!(f, "header (hop {hop})"),
        }
    }
}

/// Why the context walk ended where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContextStop {
    /// It went as far as the address walk believed.
    Followed,
    /// A context value did not parse on the step to hop `hop` (an index
    /// into [`Resolution::hops`]); that step's values were not taken and
    /// none further left were read.
    Malformed {
        /// The value that did not parse.
        field: Field,
        /// The hop whose step carried it.
        hop: usize,
    },
}

impl fmt::Display for ContextStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextStop::Followed => f.write_str("followed"),
            ContextStop::Malformed { field, hop } => write!(f, "malformed {field} (hop {hop})"),
        }
    }
}

/// How a scheme header is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProtoStyle {
    /// `http`, `https`, `ws`, `wss` (`X-Forwarded-Proto`).
    Scheme,
    /// `on` / `off` (`X-Forwarded-Ssl`, `Front-End-Https`).
    Flag,
}

/// The context headers a policy reads alongside an `X-Forwarded-For`
/// style list or a single-address header (a `Forwarded` policy reads its
/// elements' `proto` and `host` instead).
///
/// The default is `X-Forwarded-Proto`, `-Host`, `-Port` and `-Prefix`.
///
/// ```
/// use http::HeaderName;
/// use realip::resolve::{ContextHeaders, Field};
///
/// // A balancer that says `X-Forwarded-Ssl: on` and sets no prefix.
/// let headers = ContextHeaders::default()
///     .ssl_flag(HeaderName::from_static("x-forwarded-ssl"))
///     .without(Field::Prefix);
/// # let _ = headers;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ContextHeaders {
    proto: Option<(HeaderName, ProtoStyle)>,
    host: Option<HeaderName>,
    port: Option<HeaderName>,
    prefix: Option<HeaderName>,
}

impl Default for ContextHeaders {
    fn default() -> Self {
        Self {
            proto: Some((X_FORWARDED_PROTO, ProtoStyle::Scheme)),
            host: Some(X_FORWARDED_HOST),
            port: Some(X_FORWARDED_PORT),
            prefix: Some(X_FORWARDED_PREFIX),
        }
    }
}

impl ContextHeaders {
    /// Reads none: only the connection's values.
    pub fn none() -> Self {
        Self {
            proto: None,
            host: None,
            port: None,
            prefix: None,
        }
    }

    /// The scheme header, with `http`/`https`/`ws`/`wss` values.
    pub fn proto(mut self, name: HeaderName) -> Self {
        self.proto = Some((name, ProtoStyle::Scheme));
        self
    }

    /// The scheme header, with `on`/`off` values (`X-Forwarded-Ssl`).
    pub fn ssl_flag(mut self, name: HeaderName) -> Self {
        self.proto = Some((name, ProtoStyle::Flag));
        self
    }

    /// The host header (`host` or `host:port`).
    pub fn host(mut self, name: HeaderName) -> Self {
        self.host = Some(name);
        self
    }

    /// The port header.
    pub fn port(mut self, name: HeaderName) -> Self {
        self.port = Some(name);
        self
    }

    /// The path prefix header.
    pub fn prefix(mut self, name: HeaderName) -> Self {
        self.prefix = Some(name);
        self
    }

    /// Reads no header for `field`.
    pub fn without(mut self, field: Field) -> Self {
        match field {
            Field::Proto => self.proto = None,
            Field::Host => self.host = None,
            Field::Port => self.port = None,
            Field::Prefix => self.prefix = None,
        }
        self
    }

    /// The header read for `field`, if any.
    pub fn name(&self, field: Field) -> Option<&HeaderName> {
        match field {
            Field::Proto => self.proto.as_ref().map(|(n, _)| n),
            Field::Host => self.host.as_ref(),
            Field::Port => self.port.as_ref(),
            Field::Prefix => self.prefix.as_ref(),
        }
    }
}

/// An allowed-host rule: `example.com` or `*.example.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum HostPattern {
    Exact(Box<str>),
    /// `.example.com`: any name ending so, with at least one label before.
    Suffix(Box<str>),
}

impl HostPattern {
    pub(super) fn parse(p: &str) -> Option<Self> {
        let lower = p.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("*.") {
            let (h, port) = parse_host(rest.as_bytes())?;
            if port.is_some() || h.first() == Some(&b'[') {
                return None;
            }
            Some(HostPattern::Suffix(format!(".{rest}").into()))
        } else {
            let (_, port) = parse_host(lower.as_bytes())?;
            if port.is_some() {
                return None;
            }
            Some(HostPattern::Exact(lower.into()))
        }
    }

    /// Whether the validated `host` (any case) matches; the pattern is
    /// lowercase.
    fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h.as_bytes()),
            HostPattern::Suffix(s) => {
                host.len() > s.len()
                    && host
                        .get(host.len() - s.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(s.as_bytes()))
            }
        }
    }
}

/// Client-context settings of a policy.
#[derive(Clone, Debug)]
pub(super) struct ContextConfig {
    pub(super) headers: ContextHeaders,
    pub(super) symmetric: bool,
    allowed: Box<[HostPattern]>,
    /// The context header names in [`Field`] order, and a bit per name
    /// length ([`length_bit`]): the scan compares a request header's name
    /// with them only when its length could match.
    pub(super) names: [Option<HeaderName>; 4],
    pub(super) lengths: u64,
    /// Each name's first and last eight bytes, compared before the rest.
    keys: [Option<(u64, u64)>; 4],
}

impl ContextConfig {
    pub(super) fn new(headers: ContextHeaders, symmetric: bool, allowed: Vec<HostPattern>) -> Self {
        let names = Field::ALL.map(|f| headers.name(f).cloned());
        let lengths = names
            .iter()
            .flatten()
            .fold(0, |m, n| m | length_bit(n.as_str().len()));
        let keys = names
            .each_ref()
            .map(|n| n.as_ref().and_then(|n| ends(n.as_str().as_bytes())));
        ContextConfig {
            headers,
            symmetric,
            allowed: allowed.into(),
            names,
            lengths,
            keys,
        }
    }

    /// Whether the request header name `b` is the name of field `i`. The
    /// context names share their `x-forwarded-` start, so comparing the
    /// last eight bytes as one word first rejects the other names without
    /// a byte-by-byte compare; for names of up to 16 bytes the first and
    /// last eight cover every byte.
    #[inline(always)]
    pub(super) fn is_name(&self, i: usize, b: &[u8]) -> bool {
        let Some(name) = &self.names[i] else {
            return false;
        };
        let n = name.as_str().as_bytes();
        if n.len() != b.len() {
            return false;
        }
        match (self.keys[i], ends(b)) {
            (Some(key), Some(ends)) => {
                key == ends && (b.len() <= 16 || b.get(8..b.len() - 8) == n.get(8..n.len() - 8))
            }
            _ => n == b,
        }
    }

    /// Whether the policy has an allowed-host list.
    #[inline]
    pub(super) fn has_allowed(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Whether the allowed hosts (if any) refuse the validated `host`.
    #[inline]
    fn refuses(&self, host: &[u8]) -> bool {
        !self.allowed.is_empty() && !self.allowed.iter().any(|p| p.matches(host))
    }

    /// How the scheme header is written.
    pub(super) fn style(&self) -> ProtoStyle {
        self.headers
            .proto
            .as_ref()
            .map_or(ProtoStyle::Scheme, |(_, s)| *s)
    }
}

/// The first and last eight bytes of `b` as words, if it has eight.
#[inline(always)]
fn ends(b: &[u8]) -> Option<(u64, u64)> {
    let head: [u8; 8] = b.get(..8)?.try_into().ok()?;
    let tail: [u8; 8] = b.get(b.len().checked_sub(8)?..)?.try_into().ok()?;
    Some((u64::from_le_bytes(head), u64::from_le_bytes(tail)))
}

/// One bit per header name length; lengths of 63 and more share a bit.
#[inline(always)]
pub(super) fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// What the connection says about the client's view, before any header:
/// the starting values of the context walk.
///
/// ```
/// use realip::resolve::ConnectionView;
///
/// // A listener that terminates TLS itself.
/// let view = ConnectionView::new().tls(true);
/// # let _ = view;
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct ConnectionView<'a> {
    tls: bool,
    proxy_ssl: bool,
    proxy_authority: Option<&'a [u8]>,
    authority: Option<&'a http::uri::Authority>,
}

impl<'a> ConnectionView<'a> {
    /// A plain connection: `http`, host from the `Host` header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this server's listener ran TLS on the connection.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The PROXY header the listener accepted: its SSL TLV with the
    /// client-SSL flag gives `https`, its AUTHORITY TLV the host when the
    /// request names none.
    pub fn proxy_header(mut self, header: &'a crate::proxy::OwnedHeader) -> Self {
        let h = header.as_header();
        self.proxy_ssl = h.ssl().is_some_and(|s| s.client_ssl());
        self.proxy_authority = h.authority();
        self
    }

    /// Whether the accepted PROXY header said the client used TLS (an SSL
    /// TLV with the client-SSL flag); [`proxy_header`](Self::proxy_header)
    /// sets it from the header.
    pub fn proxy_ssl(mut self, on: bool) -> Self {
        self.proxy_ssl = on;
        self
    }

    /// The accepted PROXY header's AUTHORITY TLV (the TLS SNI the client
    /// sent), used when the request names no host.
    pub fn proxy_authority(mut self, authority: Option<&'a [u8]>) -> Self {
        self.proxy_authority = authority;
        self
    }

    /// The request URI's authority (absolute-form, HTTP/2 `:authority`),
    /// which comes before the `Host` header.
    pub fn request_authority(mut self, authority: Option<&'a http::uri::Authority>) -> Self {
        self.authority = authority;
        self
    }
}

/// Bytes a host or prefix keeps inline, without a heap allocation.
const INLINE_TEXT: usize = 62;

/// A validated ASCII host or prefix: inline when short.
#[derive(Clone)]
enum Text {
    Inline { len: u8, buf: [u8; INLINE_TEXT] },
    Heap(Box<str>),
}

impl Text {
    /// `v` is validated ASCII; hosts are lowercased.
    fn new(v: &[u8], lower: bool) -> Self {
        if v.len() <= INLINE_TEXT {
            let mut buf = [0u8; INLINE_TEXT];
            // One pass, no call into `memcpy` for a dozen bytes.
            for (d, &b) in buf.iter_mut().zip(v) {
                *d = if lower { b.to_ascii_lowercase() } else { b };
            }
            Text::Inline {
                len: v.len() as u8,
                buf,
            }
        } else {
            let mut s = String::from_utf8_lossy(v).into_owned();
            if lower {
                s.make_ascii_lowercase();
            }
            Text::Heap(s.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Text::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Text::Heap(s) => s,
        }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_str().fmt(f)
    }
}

/// The client's scheme, host, port and prefix, each with where it came
/// from, and why the context walk stopped.
///
/// Hosts are lowercase; an IPv6 literal keeps its brackets (`[2001:db8::1]`).
#[derive(Clone)]
pub struct ClientContext {
    scheme: Scheme,
    scheme_source: ContextSource,
    host: Option<Text>,
    host_source: ContextSource,
    port: Option<u16>,
    port_source: ContextSource,
    prefix: Option<Text>,
    prefix_source: ContextSource,
    stop: ContextStop,
    ignored: u8,
    host_rejected: bool,
}

impl ClientContext {
    /// The scheme the client used.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Where [`scheme`](Self::scheme) came from.
    pub fn scheme_source(&self) -> ContextSource {
        self.scheme_source
    }

    /// The host the client asked for, without the port; `None` when the
    /// request named none (HTTP/1.0 without `Host`) and no proxy did.
    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().map(Text::as_str)
    }

    /// Where [`host`](Self::host) came from.
    pub fn host_source(&self) -> ContextSource {
        self.host_source
    }

    /// The port the client connected to: as written, else the scheme's
    /// default.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// Where [`port`](Self::port) came from ([`ContextSource::Default`]
    /// when no one wrote one).
    pub fn port_source(&self) -> ContextSource {
        self.port_source
    }

    /// The path prefix a proxy strips before forwarding (`/app`), if one
    /// said so.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_ref().map(Text::as_str)
    }

    /// Where [`prefix`](Self::prefix) came from.
    pub fn prefix_source(&self) -> ContextSource {
        self.prefix_source
    }

    /// Why the context walk stopped.
    pub fn stop(&self) -> ContextStop {
        self.stop
    }

    /// Whether `field`'s header was ignored because its entry count differs
    /// from the address header's (symmetry on).
    pub fn ignored(&self, field: Field) -> bool {
        self.ignored & field.bit() != 0
    }

    /// Whether a forwarded host was refused by the allowed-host list (the
    /// connection's host stands).
    pub fn host_rejected(&self) -> bool {
        self.host_rejected
    }

    /// `host` or `host:port`, the port written only when it is not the
    /// scheme's default; `None` without a host.
    pub fn authority(&self) -> Option<String> {
        let host = self.host()?;
        let port = self.port();
        Some(if port == self.scheme.default_port() {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        })
    }

    /// `scheme://authority` followed by the prefix (without a trailing
    /// `/`): the base every absolute link to this app starts with.
    pub fn base_url(&self) -> Option<String> {
        let authority = self.authority()?;
        let prefix = self.prefix().unwrap_or("").trim_end_matches('/');
        Some(format!("{}://{authority}{prefix}", self.scheme))
    }
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("scheme", &self.scheme)
            .field("scheme_source", &self.scheme_source)
            .field("host", &self.host)
            .field("host_source", &self.host_source)
            .field("port", &self.port())
            .field("port_source", &self.port_source)
            .field("prefix", &self.prefix)
            .field("prefix_source", &self.prefix_source)
            .field("stop", &self.stop)
            .field("ignored", &self.ignored)
            .field("host_rejected", &self.host_rejected)
            .finish()
    }
}

/// One context header's entries, nearest first, over all its lines,
/// borrowed from the request. Small and `Copy`: the walk keeps four.
#[derive(Clone, Copy, Default)]
pub(super) struct Reader<'h> {
    /// The unread part of the current line.
    rest: &'h [u8],
    /// Repeated lines: the map and the name to find the earlier ones by
    /// (rare, so they are looked up again rather than kept).
    many: Option<(&'h HeaderMap, &'h HeaderName)>,
    /// How many lines before the current one are still to be read.
    left: u32,
    /// Whether the header was sent at all.
    present: bool,
}

impl<'h> Reader<'h> {
    /// The entries of a header sent on one line.
    #[inline(always)]
    pub(super) fn one(line: &'h HeaderValue) -> Self {
        Reader::bytes(line.as_bytes())
    }

    /// The entries of one line's bytes.
    #[inline(always)]
    fn bytes(line: &'h [u8]) -> Self {
        Reader {
            rest: line,
            many: None,
            left: 0,
            present: true,
        }
    }

    /// The entries of header `name`, sent on several lines of `headers`.
    pub(super) fn many(headers: &'h HeaderMap, name: &'h HeaderName) -> Self {
        let lines = headers.get_all(name);
        let n = lines.iter().count();
        match lines.iter().next_back() {
            Some(last) => Reader {
                rest: last.as_bytes(),
                many: Some((headers, name)),
                left: u32::try_from(n - 1).unwrap_or(u32::MAX),
                present: true,
            },
            None => Reader::default(),
        }
    }

    #[inline]
    fn next(&mut self) -> Option<&'h [u8]> {
        loop {
            let mut list = ListRev::new(self.rest);
            if let Some(v) = list.next() {
                self.rest = list.rest();
                return Some(v);
            }
            self.rest = &[];
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            let (headers, name) = self.many?;
            let line = headers
                .get_all(name)
                .iter()
                .nth(usize::try_from(self.left).ok()?)?;
            self.rest = line.as_bytes();
        }
    }
}

/// How the address walk tells the context about the steps it believes: a
/// no-op when context is off or no context header was sent, so that path
/// compiles to the address walk alone.
pub(super) trait Steps<'h> {
    /// A believed step onto the next header entry; `params` are the
    /// `proto` and `host` of the `Forwarded` element it came from (none
    /// for other headers).
    fn step(&mut self, params: Params<'h>);
    /// The address walk fell back to its anchor: forget every step.
    fn reset(&mut self);
}

impl Steps<'_> for () {
    #[inline(always)]
    fn step(&mut self, _: Params<'_>) {}
    #[inline(always)]
    fn reset(&mut self) {}
}

/// The number of believed steps: all a list or single-address policy needs
/// at resolution time, as its context values are positional (the step to
/// header entry *k* takes entry *k* of each context header).
#[derive(Default)]
pub(super) struct StepCount(pub(super) u8);

impl Steps<'_> for StepCount {
    #[inline(always)]
    fn step(&mut self, _: Params<'_>) {
        self.0 = self.0.saturating_add(1);
    }
    #[inline(always)]
    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// The values the context walk believed, each with the (1-based) header
/// step it came with, and why the walk stopped. The values (`T`) are
/// borrowed: from the request during the walk, from the record's copies
/// on the first read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Believed<T> {
    scheme: Option<(Scheme, u8)>,
    host: Option<(T, Option<u16>, u8)>,
    port: Option<(u16, u8)>,
    prefix: Option<(T, u8)>,
    stop: ContextStop,
    ignored: u8,
}

impl<T> Believed<T> {
    fn new(ignored: u8) -> Self {
        Believed {
            scheme: None,
            host: None,
            port: None,
            prefix: None,
            stop: ContextStop::Followed,
            ignored,
        }
    }

    /// Whether no step gave a context value (and none was refused or
    /// ignored): the request's own view stands.
    pub(super) fn is_nothing(&self) -> bool {
        self.scheme.is_none()
            && self.host.is_none()
            && self.port.is_none()
            && self.prefix.is_none()
            && self.ignored == 0
            && self.stop == ContextStop::Followed
    }
}

impl Believed<&[u8]> {
    /// The result: the connection's values (`own`) with the believed ones
    /// on top. `refused` says whether the allowed hosts refused the
    /// believed host (decided at resolution, [`ContextConfig::refuses`]);
    /// `proxy` whether hop 1 is the PROXY source (so header entry `k` is
    /// hop `k + 1`).
    fn finish(&self, refused: bool, own: &Start<'_>, proxy: bool) -> ClientContext {
        if self.is_nothing() {
            return own.context();
        }
        let hop = |k: u8| ContextSource::Header {
            hop: usize::from(k) + usize::from(proxy),
        };
        // The request's own host is validated only when it is used.
        let mut c = own.without_host();
        // The walk counts header steps; the stop names a hop, as the
        // sources do.
        c.stop = match self.stop {
            ContextStop::Malformed { field, hop } => ContextStop::Malformed {
                field,
                hop: hop + usize::from(proxy),
            },
            followed => followed,
        };
        c.ignored = self.ignored;
        if let Some((s, k)) = self.scheme {
            c.scheme = s;
            c.scheme_source = hop(k);
        }
        if let Some((p, k)) = self.prefix {
            c.prefix = Some(Text::new(p, false));
            c.prefix_source = hop(k);
        }
        let mut port_from_host = false;
        if let Some((h, p, k)) = self.host {
            if !refused {
                c.host = Some(Text::new(h, true));
                c.host_source = hop(k);
            }
            // A host taken at a step replaces the port unless that step
            // also carries one.
            c.port = p;
            c.port_source = if p.is_some() {
                hop(k)
            } else {
                ContextSource::Default
            };
            port_from_host = true;
        }
        if let Some((p, k)) = self.port {
            // A port header wins over the host's own port on its step, and
            // over any nearer one.
            if self.host.is_none_or(|(_, _, hk)| k >= hk) {
                c.port = Some(p);
                c.port_source = hop(k);
                port_from_host = false;
            }
        }
        if self.host.is_none() || refused {
            // The connection's host stands (and its port, unless a port
            // header gave one).
            c.host_rejected = refused;
            c.host = None;
            c.host_source = ContextSource::Request;
            if let Some((h, p, source)) = own.host() {
                c.host = Some(h);
                c.host_source = source;
                if p.is_some() && (port_from_host || self.port.is_none()) {
                    c.port = p;
                    c.port_source = source;
                }
            }
            if refused && port_from_host && c.port_source != c.host_source {
                c.port = None;
                c.port_source = ContextSource::Default;
            }
        }
        c
    }
}

/// The context walk of one request: the readers and the values believed
/// so far, borrowed from the headers.
pub(super) struct Walk<'h> {
    readers: [Reader<'h>; 4],
    style: ProtoStyle,
    follow: Follow,
    steps: u8,
    done: bool,
    believed: Believed<&'h [u8]>,
}

/// The kind of address header the context lists follow (a `Forwarded`
/// policy reads its elements' own values instead: [`Elements`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Follow {
    /// A list (`X-Forwarded-For`): context lists in lockstep.
    List,
    /// A single-address header: one value each.
    Single,
}

impl<'h> Walk<'h> {
    /// `readers` in [`Field::ALL`] order; with symmetry on, `symmetry`
    /// is the address header's entry count and each context header's.
    pub(super) fn new(
        style: ProtoStyle,
        follow: Follow,
        mut readers: [Reader<'h>; 4],
        symmetry: Option<(usize, [usize; 4])>,
    ) -> Self {
        let mut ignored = 0;
        if let Some((n, counts)) = symmetry {
            for ((f, r), count) in Field::ALL.iter().zip(readers.iter_mut()).zip(counts) {
                if r.present && count != n {
                    *r = Reader::default();
                    ignored |= f.bit();
                }
            }
        }
        Walk {
            readers,
            style,
            follow,
            steps: 0,
            done: false,
            believed: Believed::new(ignored),
        }
    }

    fn next_value(&mut self, i: usize) -> Result<Option<&'h [u8]>, ()> {
        let single = self.follow == Follow::Single;
        let r = &mut self.readers[i];
        let v = r.next();
        if single && v.is_some() && (r.many.is_some() || r.next().is_some()) {
            // A single-address policy takes one value each; two are
            // ambiguous.
            return Err(());
        }
        Ok(v)
    }

    /// Parses this step's values; `Err(field)` on the first bad one.
    #[allow(clippy::type_complexity)]
    fn parse_step(
        &mut self,
    ) -> Result<
        (
            Option<Scheme>,
            Option<(&'h [u8], Option<u16>)>,
            Option<u16>,
            Option<&'h [u8]>,
        ),
        Field,
    > {
        let proto = self.next_value(0).map_err(|()| Field::Proto)?;
        let host = self.next_value(1).map_err(|()| Field::Host)?;
        let port = self.next_value(2).map_err(|()| Field::Port)?;
        let prefix = self.next_value(3).map_err(|()| Field::Prefix)?;
        let scheme = match proto {
            Some(v) => Some(
                match self.style {
                    ProtoStyle::Scheme => parse_scheme(v),
                    ProtoStyle::Flag => parse_ssl_flag(v),
                }
                .ok_or(Field::Proto)?,
            ),
            None => None,
        };
        let host = match host {
            Some(v) => Some(parse_host(v).ok_or(Field::Host)?),
            None => None,
        };
        let port = match port {
            Some(v) => Some(parse_port(v).ok_or(Field::Port)?),
            None => None,
        };
        let prefix = match prefix {
            Some(v) => Some(parse_prefix(v).ok_or(Field::Prefix)?),
            None => None,
        };
        Ok((scheme, host, port, prefix))
    }
}

impl<'h> Walk<'h> {
    /// What the walk believed.
    pub(super) fn into_believed(self) -> Believed<&'h [u8]> {
        self.believed
    }
}

impl<'h> Steps<'h> for Walk<'h> {
    fn step(&mut self, _: Params<'h>) {
        self.steps = self.steps.saturating_add(1);
        if self.done {
            return;
        }
        let k = self.steps;
        match self.parse_step() {
            Ok((scheme, host, port, prefix)) => {
                let b = &mut self.believed;
                if let Some(s) = scheme {
                    b.scheme = Some((s, k));
                }
                if let Some((h, p)) = host {
                    b.host = Some((h, p, k));
                }
                if let Some(p) = port {
                    b.port = Some((p, k));
                }
                if let Some(p) = prefix {
                    b.prefix = Some((p, k));
                }
            }
            Err(field) => {
                self.done = true;
                self.believed.stop = ContextStop::Malformed {
                    field,
                    hop: usize::from(k),
                };
            }
        }
    }

    fn reset(&mut self) {
        let b = &mut self.believed;
        b.scheme = None;
        b.host = None;
        b.port = None;
        b.prefix = None;
        b.stop = ContextStop::Followed;
    }
}

/// The context walk of a `Forwarded` policy, in step with the address
/// walk: each believed element's `proto` and `host`, as its lexer found
/// them in the pass that read its `for`, validated at once (the element is
/// not parsed again).
#[derive(Default)]
pub(super) struct Elements<'h> {
    steps: u8,
    done: bool,
    believed: Option<Believed<&'h [u8]>>,
}

impl<'h> Elements<'h> {
    /// What the walk believed; `None` when nothing.
    pub(super) fn believed(&self) -> Option<&Believed<&'h [u8]>> {
        self.believed.as_ref().filter(|b| !b.is_nothing())
    }
}

impl<'h> Steps<'h> for Elements<'h> {
    #[inline]
    fn step(&mut self, params: Params<'h>) {
        self.steps = self.steps.saturating_add(1);
        // Nothing to parse: an element without `proto`/`host` (the common
        // one, `for=` alone) keeps the values so far.
        if self.done || (params.proto.is_none() && params.host.is_none()) {
            return;
        }
        let k = self.steps;
        let b = self.believed.get_or_insert(Believed::new(0));
        let scheme = params.proto.map(|v| parse_scheme(v).ok_or(Field::Proto));
        let host = params.host.map(|v| parse_host(v).ok_or(Field::Host));
        match (scheme.transpose(), host.transpose()) {
            (Ok(scheme), Ok(host)) => {
                if let Some(s) = scheme {
                    b.scheme = Some((s, k));
                }
                if let Some((h, p)) = host {
                    b.host = Some((h, p, k));
                }
            }
            (Err(field), _) | (Ok(_), Err(field)) => {
                self.done = true;
                b.stop = ContextStop::Malformed {
                    field,
                    hop: usize::from(k),
                };
            }
        }
    }

    fn reset(&mut self) {
        self.believed = None;
    }
}

/// What the connection and the request say about the client's view,
/// before any context header: the starting values of the context walk.
/// (The view is referred to, not copied: the common record reads two of
/// its fields.)
pub(super) struct OwnView<'a> {
    view: &'a ConnectionView<'a>,
    host: Option<&'a HeaderValue>,
}

impl<'a> OwnView<'a> {
    /// `view` and the request's single `Host` line, if any.
    #[inline]
    pub(super) fn new(view: &'a ConnectionView<'a>, host: Option<&'a HeaderValue>) -> Self {
        OwnView { view, host }
    }

    /// Every candidate for the host, in order.
    fn start(&self) -> Start<'a> {
        Start {
            tls: self.view.tls,
            proxy_ssl: self.view.proxy_ssl,
            hosts: [
                (
                    self.view.authority.map(|a| a.as_str().as_bytes()),
                    ContextSource::Request,
                ),
                (self.host.map(HeaderValue::as_bytes), ContextSource::Request),
                (self.view.proxy_authority, ContextSource::ProxyProtocol),
            ],
        }
    }

    /// The request's own host candidate a record keeps, as sent: the URI's
    /// authority, else the `Host` line (the authority is validated here
    /// only when both were sent, so that the one kept is the one
    /// [`Start::host`] would pick). `None` when the PROXY AUTHORITY TLV
    /// could be needed: that view is computed at once.
    #[inline]
    fn kept_host(&self) -> Option<Kept> {
        Some(match self.candidate()? {
            Some(Candidate::Authority(a)) => Kept::authority(a),
            Some(Candidate::Line(h)) => Kept::line(h),
            None => Kept::None,
        })
    }

    /// The one host candidate a record keeps (see
    /// [`kept_host`](Self::kept_host)); `None` when the PROXY AUTHORITY TLV
    /// could be needed.
    #[inline(always)]
    fn candidate(&self) -> Option<Option<Candidate<'a>>> {
        if self.view.proxy_authority.is_some() {
            return None;
        }
        Some(match (self.view.authority, self.host) {
            (Some(a), Some(h)) if parse_host(a.as_str().as_bytes()).is_none() => {
                Some(Candidate::Line(h))
            }
            (Some(a), _) => Some(Candidate::Authority(a)),
            (None, Some(h)) => Some(Candidate::Line(h)),
            (None, None) => None,
        })
    }
}

/// Where the request's own host is written.
#[derive(Clone, Copy)]
enum Candidate<'a> {
    Authority(&'a http::uri::Authority),
    Line(&'a HeaderValue),
}

impl<'a> Candidate<'a> {
    fn as_bytes(self) -> &'a [u8] {
        match self {
            Candidate::Authority(a) => a.as_str().as_bytes(),
            Candidate::Line(h) => h.as_bytes(),
        }
    }
}

/// The starting values' inputs: the connection's TLS flags and the host
/// candidates, in order of preference.
struct Start<'a> {
    tls: bool,
    proxy_ssl: bool,
    hosts: [(Option<&'a [u8]>, ContextSource); 3],
}

impl Start<'_> {
    /// The starting values: validated, copied out of the request.
    fn context(&self) -> ClientContext {
        let mut c = self.without_host();
        if let Some((h, p, source)) = self.host() {
            c.host = Some(h);
            c.host_source = source;
            if p.is_some() {
                c.port = p;
                c.port_source = source;
            }
        }
        c
    }

    /// The scheme from TLS or the PROXY SSL TLV; no host yet.
    fn without_host(&self) -> ClientContext {
        let (scheme, scheme_source) = if self.tls {
            (Scheme::Https, ContextSource::Connection)
        } else if self.proxy_ssl {
            (Scheme::Https, ContextSource::ProxyProtocol)
        } else {
            (Scheme::Http, ContextSource::Connection)
        };
        ClientContext {
            scheme,
            scheme_source,
            host: None,
            host_source: ContextSource::Request,
            port: None,
            port_source: ContextSource::Default,
            prefix: None,
            prefix_source: ContextSource::Request,
            stop: ContextStop::Followed,
            ignored: 0,
            host_rejected: false,
        }
    }

    /// The host and port of the first candidate that is a valid authority:
    /// the URI's authority, the `Host` line, the PROXY AUTHORITY TLV.
    fn host(&self) -> Option<(Text, Option<u16>, ContextSource)> {
        self.hosts.into_iter().find_map(|(v, source)| {
            let (h, p) = v.and_then(parse_host)?;
            Some((Text::new(h, true), p, source))
        })
    }
}

/// Bytes of a host or prefix a record copies inline, as sent.
const KEPT_INLINE: usize = 46;

/// A host or prefix as the request sent it (validated, for a believed
/// one; the request's own host is validated on first read), kept without
/// borrowing the request: a short one is copied inline (no allocation, no
/// reference count to take and release), a longer one is kept as a
/// shared handle on its line (a reference-count bump for a hyper-parsed
/// value) and its span there.
#[derive(Clone)]
pub(super) enum Kept {
    None,
    Inline {
        len: u8,
        buf: [u8; KEPT_INLINE],
    },
    Line {
        line: HeaderValue,
        start: u32,
        len: u32,
    },
    Authority(http::uri::Authority),
}

impl Kept {
    /// `v` copied, if it is short.
    #[inline(always)]
    fn inline(v: &[u8]) -> Option<Self> {
        let len = u8::try_from(v.len())
            .ok()
            .filter(|&n| usize::from(n) <= KEPT_INLINE)?;
        let mut buf = [0; KEPT_INLINE];
        buf.get_mut(..v.len())?.copy_from_slice(v);
        Some(Kept::Inline { len, buf })
    }

    /// A whole header line.
    #[inline]
    fn line(line: &HeaderValue) -> Self {
        Kept::inline(line.as_bytes()).unwrap_or_else(|| Kept::Line {
            line: line.clone(),
            start: 0,
            len: u32::try_from(line.len()).unwrap_or(u32::MAX),
        })
    }

    /// The request URI's authority.
    #[inline]
    fn authority(a: &http::uri::Authority) -> Self {
        Kept::inline(a.as_str().as_bytes()).unwrap_or_else(|| Kept::Authority(a.clone()))
    }

    /// `v`, borrowed from one of `lines`: copied if short, else a handle
    /// on the line it lies in.
    pub(super) fn of<'a>(v: &[u8], lines: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        if let Some(k) = Kept::inline(v) {
            return k;
        }
        let at = v.as_ptr() as usize;
        for line in lines {
            let b = line.as_bytes();
            let Some(start) = at.checked_sub(b.as_ptr() as usize) else {
                continue;
            };
            if start.checked_add(v.len()).is_some_and(|end| end <= b.len()) {
                if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(v.len())) {
                    return Kept::Line {
                        line: line.clone(),
                        start,
                        len,
                    };
                }
            }
        }
        // Not reached (`v` was borrowed from one of the lines): a copy.
        HeaderValue::from_bytes(v).map_or(Kept::None, |line| Kept::line(&line))
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Kept::None => None,
            Kept::Inline { len, buf } => buf.get(..usize::from(*len)),
            Kept::Line { line, start, len } => {
                let start = usize::try_from(*start).ok()?;
                let end = start.checked_add(usize::try_from(*len).ok()?)?;
                line.as_bytes().get(start..end)
            }
            Kept::Authority(a) => Some(a.as_str().as_bytes()),
        }
    }
}

/// What a record took from the believed steps, compactly: each value's
/// (1-based) header step, the believed host's own port, the step whose
/// value did not parse.
#[derive(Clone, Copy, Default)]
struct Taken {
    tls: bool,
    proxy_ssl: bool,
    /// Whether hop 1 is the PROXY source.
    proxy: bool,
    /// Whether the allowed hosts refused the believed host.
    refused: bool,
    scheme: Option<(Scheme, u8)>,
    host: Option<(Option<u16>, u8)>,
    port: Option<(u16, u8)>,
    malformed: Option<(Field, u8)>,
    ignored: u8,
}

/// The client context as a [`Resolution`] records it: self-contained (no
/// borrow of the request, no reference count on it in the common cases),
/// its result computed on the first read and kept (`OnceLock`: repeated
/// reads and clones agree).
///
/// Three shapes, cheapest first:
/// - nothing believed (no context header, an untrusted peer's, no step):
///   the request's own host as sent ([`Kept`], copied when short), to be
///   validated on the first read;
/// - context lists with one line per header, for a policy without
///   symmetry or allowed hosts (the common case): the own host and those
///   lines copied ([`Copied`], a few dozen bytes) with the number of
///   believed steps, walked on the first read. Copying them costs less
///   than reading their entries now, and much less than the boxed
///   record of shared handles it replaces (a reference count per line,
///   one allocation);
/// - otherwise (repeated lines, symmetry, allowed hosts, `Forwarded`,
///   whose lexer validates the values in the pass that reads the address)
///   the values of the believed steps, taken right after the address walk
///   over the borrowed headers: the scheme and the port parsed, the host
///   validated and kept as sent, each with its step. Only one host is
///   kept: the believed one, or (none believed, or refused by the allowed
///   hosts, decided here) the request's own.
///
/// Nothing is allocated while resolving unless a value is too long to copy
/// inline (a handle on its line then), a prefix was taken on the general
/// path or the PROXY AUTHORITY TLV could be needed (both computed at once,
/// one allocation: the record has no room for a second value, and the
/// PROXY header outlives no resolution).
#[derive(Clone)]
pub(super) struct ContextRecord {
    body: Body,
    full: OnceLock<Box<ClientContext>>,
}

#[derive(Clone)]
enum Body {
    /// The values the believed steps gave, taken while resolving.
    Taken {
        /// The believed host, or the request's own (see [`Taken::host`]).
        host: Kept,
        taken: Taken,
    },
    /// The common case of context lists: copies of their lines, walked on
    /// the first read.
    Copied(Copied),
}

/// Bytes of the request's own host and the context header lines a record
/// copies for a walk on the first read.
const COPIED: usize = 72;

/// The request's own host and one line of each context header, copied
/// (a few dozen bytes: no allocation, no reference count), with what the
/// walk over them needs on the first read: the number of steps the address
/// walk believed. For a policy without symmetry or allowed hosts, a
/// request whose context headers came on one line each and fit.
#[derive(Clone, Copy)]
struct Copied {
    buf: [u8; COPIED],
    /// Where each part ends in `buf`: the own host, then the context lines
    /// in [`Field`] order.
    ends: [u8; 5],
    /// Bit `i` says part `i` was sent.
    present: u8,
    steps: u8,
    tls: bool,
    proxy_ssl: bool,
    /// Whether hop 1 is the PROXY source.
    proxy: bool,
    style: ProtoStyle,
    follow: Follow,
}

impl Copied {
    /// The parts copied, if they fit (one pass: a part that does not fit
    /// ends it).
    #[inline(always)]
    fn new(own: Option<&[u8]>, lines: [Option<&[u8]>; 4]) -> Option<Self> {
        let mut c = Copied {
            buf: [0; COPIED],
            ends: [0; 5],
            present: 0,
            steps: 0,
            tls: false,
            proxy_ssl: false,
            proxy: false,
            style: ProtoStyle::Scheme,
            follow: Follow::List,
        };
        let mut at = 0;
        for (i, part) in [own, lines[0], lines[1], lines[2], lines[3]]
            .into_iter()
            .enumerate()
        {
            if let Some(p) = part {
                let end = at + p.len();
                c.buf.get_mut(at..end)?.copy_from_slice(p);
                at = end;
                c.present |= 1 << i;
            }
            c.ends[i] = u8::try_from(at).ok()?;
        }
        Some(c)
    }

    fn part(&self, i: usize) -> Option<&[u8]> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(j) => usize::from(*self.ends.get(j)?),
            None => 0,
        };
        self.buf.get(start..usize::from(*self.ends.get(i)?))
    }

    /// The context walk over the copies.
    fn run(&self) -> ClientContext {
        let reader = |i: usize| self.part(i + 1).map_or_else(Reader::default, Reader::bytes);
        let readers = [reader(0), reader(1), reader(2), reader(3)];
        let mut walk = Walk::new(self.style, self.follow, readers, None);
        for _ in 0..self.steps {
            walk.step(Params::default());
        }
        let own = Start {
            tls: self.tls,
            proxy_ssl: self.proxy_ssl,
            hosts: [
                (self.part(0), ContextSource::Request),
                (None, ContextSource::Request),
                (None, ContextSource::ProxyProtocol),
            ],
        };
        walk.believed.finish(false, &own, self.proxy)
    }
}

impl ContextRecord {
    /// The request's own view, kept for later.
    #[inline(always)]
    pub(super) fn own(own: &OwnView<'_>) -> Self {
        let taken = Taken {
            tls: own.view.tls,
            proxy_ssl: own.view.proxy_ssl,
            ..Taken::default()
        };
        match own.kept_host() {
            Some(host) => ContextRecord {
                body: Body::Taken { host, taken },
                full: OnceLock::new(),
            },
            None => ContextRecord::computed(own.start().context(), taken),
        }
    }

    /// A record whose result is known now.
    #[cold]
    fn computed(c: ClientContext, taken: Taken) -> Self {
        ContextRecord {
            body: Body::Taken {
                host: Kept::None,
                taken,
            },
            full: OnceLock::from(Box::new(c)),
        }
    }

    /// What the context walk believed, its values borrowed from the
    /// request; `keep` keeps one of them (a host or prefix) without the
    /// borrow.
    #[inline]
    pub(super) fn believed(
        own: &OwnView<'_>,
        cfg: &ContextConfig,
        proxy: bool,
        b: &Believed<&[u8]>,
        keep: impl Fn(Field, &[u8]) -> Kept,
    ) -> Self {
        if b.is_nothing() {
            return Self::own(own);
        }
        let refused = b.host.is_some_and(|(h, _, _)| cfg.refuses(h));
        let taken = Taken {
            tls: own.view.tls,
            proxy_ssl: own.view.proxy_ssl,
            proxy,
            refused,
            scheme: b.scheme,
            host: b.host.map(|(_, p, k)| (p, k)),
            port: b.port,
            malformed: match b.stop {
                ContextStop::Followed => None,
                ContextStop::Malformed { field, hop } => {
                    Some((field, u8::try_from(hop).unwrap_or(u8::MAX)))
                }
            },
            ignored: b.ignored,
        };
        let host = match b.host {
            Some((h, _, _)) if !refused => keep(Field::Host, h),
            _ => match own.kept_host() {
                Some(host) if b.prefix.is_none() => host,
                _ => return Self::computed(b.finish(refused, &own.start(), proxy), taken),
            },
        };
        if b.prefix.is_some() {
            // No room for a second value: computed now (one allocation).
            return Self::computed(b.finish(refused, &own.start(), proxy), taken);
        }
        ContextRecord {
            body: Body::Taken { host, taken },
            full: OnceLock::new(),
        }
    }

    /// Context lists to walk `steps` steps on the first read, copied (see
    /// [`Copied`]): `lines` holds the one line of each context header sent,
    /// in [`Field`] order. `None` when they do not fit, or the PROXY
    /// AUTHORITY TLV could be needed.
    #[inline]
    pub(super) fn copied(
        own: &OwnView<'_>,
        cfg: &ContextConfig,
        follow: Follow,
        lines: [Option<&[u8]>; 4],
        steps: u8,
        proxy: bool,
    ) -> Option<Self> {
        let host = own.candidate()?.map(Candidate::as_bytes);
        let mut c = Copied::new(host, lines)?;
        c.steps = steps;
        c.tls = own.view.tls;
        c.proxy_ssl = own.view.proxy_ssl;
        c.proxy = proxy;
        c.style = cfg.style();
        c.follow = follow;
        Some(ContextRecord {
            body: Body::Copied(c),
            full: OnceLock::new(),
        })
    }

    /// The context, computed on first read.
    pub(super) fn get(&self) -> &ClientContext {
        self.full.get_or_init(|| {
            Box::new(match &self.body {
                Body::Taken { host, taken } => Self::run(host, *taken),
                Body::Copied(c) => c.run(),
            })
        })
    }

    fn run(host: &Kept, t: Taken) -> ClientContext {
        let kept = host.as_bytes();
        let believed_host = t.host.is_some() && !t.refused;
        let own = Start {
            tls: t.tls,
            proxy_ssl: t.proxy_ssl,
            hosts: [
                (kept.filter(|_| !believed_host), ContextSource::Request),
                (None, ContextSource::Request),
                (None, ContextSource::ProxyProtocol),
            ],
        };
        if t.scheme.is_none()
            && t.host.is_none()
            && t.port.is_none()
            && t.malformed.is_none()
            && t.ignored == 0
        {
            // Nothing believed: the request's own view, as `finish` would
            // give it, without building the rest.
            return own.context();
        }
        let b = Believed {
            scheme: t.scheme,
            host: t.host.map(|(p, k)| {
                let h = if believed_host { kept } else { None };
                (h.unwrap_or_default(), p, k)
            }),
            port: t.port,
            // A believed prefix is computed at once (`believed`).
            prefix: None,
            stop: t
                .malformed
                .map_or(ContextStop::Followed, |(field, k)| ContextStop::Malformed {
                    field,
                    hop: usize::from(k),
                }),
            ignored: t.ignored,
        };
        b.finish(t.refused, &own, t.proxy)
    }
}
