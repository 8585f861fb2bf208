//! Writing `X-Forwarded-For` / RFC 7239 `Forwarded` for the next hop.
//!
//! [`ForwardHeaders`] rewrites a request's forwarding headers from its
//! [`RealIp`]; [`ForwardHeadersLayer`] does it in a tower client stack for
//! every request that carries one.
//!
//! **Believed chain (the default).** The header written lists what this hop
//! believed, client first, then each trusted proxy the walk stepped over,
//! ending with the address that handed the request to this hop (the socket
//! peer, or the PROXY source when the listener accepted a header: the load
//! balancer that sent it relayed bytes and wrote no entry). Entries left of
//! the client, which the client wrote, are dropped. Every other
//! address header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`,
//! `CF-Connecting-IP`, `True-Client-IP`, `Fly-Client-IP`,
//! `X-Envoy-External-Address`, `CloudFront-Viewer-Address`, and the header
//! the policy read) is removed: this hop vouches for none of them. Context
//! headers (`X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix`) are removed when
//! the peer was not trusted (the client wrote them).
//!
//! A next hop that trusts this hop and the proxies this hop trusts resolves
//! the same client again. When this hop's walk was inconclusive (a
//! malformed entry, the hop cap, ...), the chain starts with `unknown`, so
//! the next hop stops at the same address and knows it is inconclusive too:
//! a result never becomes more certain by being passed on.
//!
//! **Append mode** ([`ForwardHeaders::append`]): the incoming header is kept
//! as it is and the connection's address (PROXY source or socket peer) is
//! appended, as a plain proxy does; nothing is removed. The next hop must
//! then do its own trusted walk.
//!
//! ```
//! use http::Request;
//! use realip::outbound::ForwardHeaders;
//! use realip::{testing, RealIp};
//!
//! // A request RealIpLayer resolved: the client connected from 203.0.113.9
//! // and forged an X-Forwarded-For entry.
//! let mut req = Request::builder()
//!     .header("x-forwarded-for", "6.6.6.6")
//!     .body(())?;
//! req = testing::with_client_addr(req, "203.0.113.9:5123".parse()?);
//! let (mut parts, ()) = req.into_parts();
//! let real = RealIp::from_extensions(&parts.extensions);
//! ForwardHeaders::x_forwarded_for().write(real, &mut parts.headers);
//! assert_eq!(parts.headers["x-forwarded-for"], "203.0.113.9");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::RealIp;
use crate::forwarded;
use crate::resolve::{Source, Stop};

/// The header a [`ForwardHeaders`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `X-Forwarded-For: client, proxy1, proxy2` (bare addresses, no ports).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1;by=this-hop`, with the
    /// client's port when known and IPv6 quoted and bracketed.
    Forwarded,
}

/// A `by=` node identifier for RFC 7239 `Forwarded`: an address, an
/// address and port, or an obfuscated name such as `_edge1`
/// (RFC 7239 §6.3), which names this hop without revealing its address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Node(NodeKind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum NodeKind {
    Ip(IpAddr),
    Addr(SocketAddr),
    Obfuscated(Box<str>),
}

/// An obfuscated identifier that RFC 7239 §6.3 does not allow: it must be
/// `_` followed by at least one of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidNode(());

impl fmt::Display for InvalidNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an obfuscated node is `_` followed by letters, digits, `.`, `_` or `-`")
    }
}

impl std::error::Error for InvalidNode {}

impl Node {
    /// This hop by address (`by=10.0.0.1`, `by="[2001:db8::1]"`).
    pub fn ip(ip: IpAddr) -> Node {
        Node(NodeKind::Ip(forwarded::ip_of(forwarded::bits_of(ip))))
    }

    /// This hop by address and port (`by="10.0.0.1:443"`).
    pub fn addr(addr: SocketAddr) -> Node {
        Node(NodeKind::Addr(SocketAddr::new(
            forwarded::ip_of(forwarded::bits_of(addr.ip())),
            addr.port(),
        )))
    }

    /// This hop by an obfuscated name (`by=_edge1`).
    ///
    /// # Errors
    /// [`InvalidNode`] unless `name` is `_` followed by at least one of
    /// `A-Z a-z 0-9 . _ -`.
    pub fn obfuscated(name: &str) -> Result<Node, InvalidNode> {
        match name.as_bytes() {
            [b'_', rest @ ..]
                if !rest.is_empty()
                    && rest
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
            {
                Ok(Node(NodeKind::Obfuscated(name.into())))
            }
            _ => Err(InvalidNode(())),
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Spill(Vec::new());
        write_node(&mut out, &self.0);
        f.write_str(&String::from_utf8_lossy(&out.0))
    }
}

/// Rewrites a request's forwarding headers from its [`RealIp`] before the
/// request is sent to the next hop; see the [module docs](self) for what is
/// written and removed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ForwardHeaders {
    format: Format,
    append: bool,
    by: Option<Node>,
}

/// Address headers a believed chain replaces.
static ADDRESS_HEADERS: [HeaderName; 8] = [
    forwarded::X_FORWARDED_FOR,
    forwarded::FORWARDED,
    forwarded::X_REAL_IP,
    forwarded::CF_CONNECTING_IP,
    forwarded::TRUE_CLIENT_IP,
    forwarded::FLY_CLIENT_IP,
    forwarded::X_ENVOY_EXTERNAL_ADDRESS,
    forwarded::CLOUDFRONT_VIEWER_ADDRESS,
];

/// Context headers dropped when they came from an untrusted peer.
static CONTEXT_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
];

/// Compared as names, not strings: a standard name (`host`, `accept`)
/// differs from these custom ones by its tag alone, without being spelled
/// out.
fn is_address_header(name: &HeaderName) -> bool {
    ADDRESS_HEADERS.iter().any(|a| a == name)
}

fn is_context_header(name: &HeaderName) -> bool {
    CONTEXT_HEADERS.iter().any(|c| c == name)
}

impl ForwardHeaders {
    /// Writes `X-Forwarded-For`.
    pub fn x_forwarded_for() -> Self {
        Self::new(Format::XForwardedFor)
    }

    /// Writes RFC 7239 `Forwarded`.
    pub fn forwarded() -> Self {
        Self::new(Format::Forwarded)
    }

    /// Writes `format`.
    pub fn new(format: Format) -> Self {
        ForwardHeaders {
            format,
            append: false,
            by: None,
        }
    }

    /// Append mode: keep the incoming header and append the connection's
    /// address (PROXY source or socket peer), as a plain proxy does. The
    /// client's own entries then travel on, left of it; only a next hop
    /// that walks its trusted proxies itself will ignore them.
    pub fn append(mut self) -> Self {
        self.append = true;
        self
    }

    /// Names this hop in `by=` on the element it writes (`Forwarded` only;
    /// `X-Forwarded-For` has no such field and ignores it).
    pub fn by(mut self, node: Node) -> Self {
        self.by = Some(node);
        self
    }

    /// The header written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether append mode is on.
    pub fn is_append(&self) -> bool {
        self.append
    }

    /// Rewrites `headers` for the next hop from `real`.
    ///
    /// Without a [`RealIp`] (the request did not pass through
    /// [`RealIpLayer`](crate::RealIpLayer)) nothing can be vouched for: every
    /// address and context header is removed and none is written, in both
    /// modes.
    pub fn write(&self, real: Option<&RealIp>, headers: &mut HeaderMap) {
        let Some(real) = real else {
            strip(headers, None, true);
            return;
        };
        let name = match self.format {
            Format::XForwardedFor => forwarded::X_FORWARDED_FOR,
            Format::Forwarded => forwarded::FORWARDED,
        };
        // Composed on the stack when it fits (one allocation: the value's).
        let mut stack = Stack::new();
        self.compose(&mut stack, real, &name, headers);
        let value = match stack.as_bytes() {
            Some(bytes) => HeaderValue::from_bytes(bytes),
            None => {
                let mut spill = Spill(Vec::with_capacity(512));
                self.compose(&mut spill, real, &name, headers);
                HeaderValue::from_bytes(&spill.0)
            }
        };
        let Ok(value) = value else {
            // Appended lines always were valid values, and everything this
            // module writes is visible ASCII: unreachable, but fail closed.
            strip(headers, None, true);
            return;
        };
        if self.append {
            place(headers, &name, value, |_| false, None, false);
        } else {
            let read = match real.source() {
                Source::Header(n) if !is_address_header(n) => Some(n),
                _ => None,
            };
            let untrusted_peer =
                real.stop() == Stop::UntrustedHop && !matches!(real.source(), Source::Header(_));
            place(
                headers,
                &name,
                value,
                |n| {
                    is_address_header(n)
                        || read == Some(n)
                        || (untrusted_peer && is_context_header(n))
                },
                read,
                untrusted_peer,
            );
        }
    }

    /// The whole header value: the believed chain, or the incoming lines
    /// with the connection's address appended.
    fn compose<S: Sink>(&self, out: &mut S, real: &RealIp, name: &HeaderName, headers: &HeaderMap) {
        if self.append {
            for line in headers.get_all(name) {
                out.put(line.as_bytes());
                out.put(b", ");
            }
            self.element(out, connection_addr(real), None, true);
        } else {
            self.believed(out, real);
        }
    }

    /// The believed chain, client first.
    fn believed<S: Sink>(&self, out: &mut S, real: &RealIp) {
        if !real.is_conclusive() {
            match self.format {
                Format::XForwardedFor => out.put(b"unknown, "),
                Format::Forwarded => out.put(b"for=unknown, "),
            }
        }
        let hops = real.hops();
        let len = hops.len();
        // The socket peer of a PROXY connection relayed bytes and wrote no
        // entry; the PROXY source handed the request over.
        let skip = usize::from(has_proxy_source(real));
        // Between the anchor and the client: the trusted proxies walked.
        // A too-short hop count fell back to the anchor: nothing between.
        let between = if real.stop() == Stop::TooShort {
            0
        } else {
            len.saturating_sub(skip + 1)
        };
        self.element(out, real.ip(), real.port(), between == 0);
        for (i, ip) in hops.skip(skip).take(between).rev().enumerate() {
            out.put(b", ");
            self.element(out, ip, None, i + 1 == between);
        }
    }

    /// One list element; `last` is the element this hop received from,
    /// which carries `by`.
    fn element<S: Sink>(&self, out: &mut S, ip: IpAddr, port: Option<u16>, last: bool) {
        match self.format {
            Format::XForwardedFor => write_ip(out, ip),
            Format::Forwarded => {
                out.put(b"for=");
                match port {
                    Some(p) => write_node(out, &NodeKind::Addr(SocketAddr::new(ip, p))),
                    None => write_node(out, &NodeKind::Ip(ip)),
                }
                if let (true, Some(by)) = (last, &self.by) {
                    out.put(b";by=");
                    write_node(out, &by.0);
                }
            }
        }
    }

    /// A layer applying this rewrite to every request of a client stack.
    pub fn layer(self) -> ForwardHeadersLayer {
        ForwardHeadersLayer {
            config: Arc::new(self),
        }
    }
}

/// Whether the resolution started from an accepted PROXY source (its
/// second hop is that source).
fn has_proxy_source(real: &RealIp) -> bool {
    real.proxy_header().and_then(|h| h.source()).is_some() && real.hops().len() >= 2
}

/// The address the connection came from: the PROXY source, else the peer.
fn connection_addr(real: &RealIp) -> IpAddr {
    match real.proxy_header().and_then(|h| h.source()) {
        Some(s) => forwarded::ip_of(forwarded::bits_of(s.ip())),
        None => forwarded::ip_of(forwarded::bits_of(real.peer().ip())),
    }
}

/// Sets `name` to `value` and removes every other line `remove` names. In
/// the common case (one line of `name`, nothing else to remove) the value
/// is replaced in place, found by the same scan of the request's few lines,
/// without hashing any name.
fn place(
    headers: &mut HeaderMap,
    name: &HeaderName,
    value: HeaderValue,
    remove: impl Fn(&HeaderName) -> bool,
    extra: Option<&HeaderName>,
    context: bool,
) {
    let mut slot = None;
    let mut lines = 0;
    let mut others = false;
    for (k, v) in headers.iter_mut() {
        if k == name {
            lines += 1;
            slot.get_or_insert(v);
        } else if remove(k) {
            others = true;
        }
    }
    if let (1, false, Some(slot)) = (lines, others, slot) {
        *slot = value;
        return;
    }
    if others {
        strip(headers, extra, context);
    }
    headers.insert(name.clone(), value);
}

/// Removes every address header (and `extra`), and the context headers
/// when `context` is set.
fn strip(headers: &mut HeaderMap, extra: Option<&HeaderName>, context: bool) {
    let found: Vec<HeaderName> = headers
        .keys()
        .filter(|key| {
            is_address_header(key) || extra == Some(*key) || (context && is_context_header(key))
        })
        .cloned()
        .collect();
    for key in &found {
        headers.remove(key);
    }
}

/// Where a header value is composed.
trait Sink: fmt::Write {
    fn put(&mut self, bytes: &[u8]);
}

/// Room for a chain of a few addresses, on the stack.
const STACK: usize = 192;

/// A fixed buffer that notes when a value did not fit.
struct Stack {
    buf: [u8; STACK],
    len: usize,
    overflow: bool,
}

impl Stack {
    fn new() -> Self {
        Stack {
            buf: [0; STACK],
            len: 0,
            overflow: false,
        }
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        (!self.overflow).then(|| &self.buf[..self.len])
    }
}

impl Sink for Stack {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflow = true,
        }
    }
}

impl fmt::Write for Stack {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// The heap buffer for values that outgrow [`Stack`].
struct Spill(Vec<u8>);

impl Sink for Spill {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

impl fmt::Write for Spill {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes());
        Ok(())
    }
}

/// Each octet's decimal digits, then `.`, and how many of the four bytes
/// count (digits plus the dot).
static OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        t[i] = if n >= 100 {
            ([b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + n / 10, b'0' + n % 10, b'.', 0], 3)
        } else {
            ([b'0' + n, b'.', 0, 0], 2)
        };
        i += 1;
    }
    t
};

/// An address as `X-Forwarded-For` writes it: dotted quad or RFC 5952 IPv6.
fn write_ip<S: Sink>(out: &mut S, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Four whole table entries, each advancing by its own length:
            // no branch per digit.
            let mut quad = [0u8; 16];
            let mut n = 0;
            for octet in v4.octets() {
                let (digits, len) = OCTETS[usize::from(octet)];
                if let Some(dst) = quad.get_mut(n..n + 4) {
                    dst.copy_from_slice(&digits);
                }
                n += usize::from(len);
            }
            // Without the last dot.
            out.put(&quad[..n - 1]);
        }
        IpAddr::V6(v6) => {
            // Formatting into a buffer cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// An RFC 7239 node: IPv4 bare, IPv6 bracketed and quoted, a port quoted
/// with its address, obfuscated names bare.
fn write_node<S: Sink>(out: &mut S, node: &NodeKind) {
    match node {
        NodeKind::Ip(ip @ IpAddr::V4(_)) => write_ip(out, *ip),
        NodeKind::Ip(ip @ IpAddr::V6(_)) => {
            out.put(b"\"[");
            write_ip(out, *ip);
            out.put(b"]\"");
        }
        NodeKind::Addr(a) => {
            out.put(b"\"");
            match a.ip() {
                ip @ IpAddr::V4(_) => write_ip(out, ip),
                ip @ IpAddr::V6(_) => {
                    out.put(b"[");
                    write_ip(out, ip);
                    out.put(b"]");
                }
            }
            let _ = write!(out, ":{}\"", a.port());
        }
        NodeKind::Obfuscated(name) => out.put(name.as_bytes()),
    }
}

/// Applies a [`ForwardHeaders`] rewrite to every request of a client stack
/// (the request about to be sent upstream must carry the incoming
/// request's [`RealIp`] extension).
///
/// ```
/// use realip::outbound::ForwardHeaders;
/// use tower::ServiceBuilder;
///
/// let client = ServiceBuilder::new()
///     .layer(ForwardHeaders::forwarded().layer())
///     .service(tower::service_fn(|req: http::Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(req.headers().clone())
///     }));
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ForwardHeadersLayer {
    config: Arc<ForwardHeaders>,
}

impl<S> Layer<S> for ForwardHeadersLayer {
    type Service = ForwardHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardHeadersService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`ForwardHeadersLayer`] wraps around a client `S`.
#[derive(Clone, Debug)]
pub struct ForwardHeadersService<S> {
    inner: S,
    config: Arc<ForwardHeaders>,
}

impl<S> ForwardHeadersService<S> {
    /// The wrapped client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped client, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped client.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ForwardHeadersService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        self.config
            .write(parts.extensions.get::<RealIp>(), &mut parts.headers);
        self.inner.call(Request::from_parts(parts, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{HeaderSource, Policy};

    fn resolve(policy: &Policy, peer: &str, xff: Option<&str>) -> RealIp {
        let mut h = HeaderMap::new();
        if let Some(x) = xff {
            h.insert("x-forwarded-for", x.parse().unwrap());
        }
        let peer: SocketAddr = peer.parse().unwrap();
        RealIp::new(policy.resolve(peer, None, &h), peer, None)
    }

    fn private() -> Policy {
        Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap()
    }

    #[test]
    fn believed_chain_drops_client_written_entries() {
        let real = resolve(
            &private(),
            "10.0.0.2:4000",
            Some("6.6.6.6, 203.0.113.9, 10.0.0.7"),
        );
        let mut h = HeaderMap::new();
        ForwardHeaders::x_forwarded_for().write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.7, 10.0.0.2");
        let mut h = HeaderMap::new();
        ForwardHeaders::forwarded()
            .by(Node::obfuscated("_edge").unwrap())
            .write(Some(&real), &mut h);
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=10.0.0.7, for=10.0.0.2;by=_edge"
        );
    }

    #[test]
    fn untrusted_peer_context_and_other_address_headers_removed() {
        let real = resolve(&private(), "198.51.100.4:4000", None);
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("accept", "*/*"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        ForwardHeaders::x_forwarded_for().write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "198.51.100.4");
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn trusted_peer_keeps_context_headers() {
        let real = resolve(&private(), "10.0.0.2:4000", Some("203.0.113.9"));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        ForwardHeaders::x_forwarded_for().write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn append_keeps_incoming_and_appends_peer() {
        let real = resolve(&private(), "198.51.100.4:4000", Some("6.6.6.6"));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.append("x-forwarded-for", "7.7.7.7".parse().unwrap());
        ForwardHeaders::x_forwarded_for()
            .append()
            .write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 7.7.7.7, 198.51.100.4");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn ipv6_and_ports_quoted_per_rfc7239() {
        let real = RealIp::new(
            Policy::default().resolve(
                "[2001:db8::1]:443".parse().unwrap(),
                None,
                &HeaderMap::new(),
            ),
            "[2001:db8::1]:443".parse().unwrap(),
            None,
        );
        let mut h = HeaderMap::new();
        ForwardHeaders::forwarded()
            .by(Node::ip("2001:db8::2".parse().unwrap()))
            .write(Some(&real), &mut h);
        assert_eq!(
            h["forwarded"],
            "for=\"[2001:db8::1]:443\";by=\"[2001:db8::2]\""
        );
        let mut h = HeaderMap::new();
        ForwardHeaders::x_forwarded_for().write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
    }

    #[test]
    fn inconclusive_stays_inconclusive() {
        let real = resolve(&private(), "10.0.0.2:4000", Some("garbage, 10.0.0.7"));
        assert!(!real.is_conclusive());
        let mut h = HeaderMap::new();
        ForwardHeaders::x_forwarded_for().write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "unknown, 10.0.0.7, 10.0.0.2");
        let again = Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .build()
            .unwrap()
            .resolve("10.0.0.3:1".parse().unwrap(), None, &h);
        assert_eq!(again.ip(), real.ip());
        assert!(!again.is_conclusive());
    }

    #[test]
    fn without_real_ip_everything_is_removed() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.insert("x-forwarded-host", "evil".parse().unwrap());
        ForwardHeaders::x_forwarded_for()
            .append()
            .write(None, &mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    /// The layer rewrites the request it passes on from the request's own
    /// RealIp, and strips everything from a request without one.
    #[test]
    fn layer_rewrites_each_request() {
        use tower::ServiceExt;
        let inner = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.into_parts().0.headers)
        });
        let svc = ForwardHeaders::x_forwarded_for().layer().layer(inner);
        let forged = || {
            Request::builder()
                .header("x-forwarded-for", "6.6.6.6")
                .body(())
                .unwrap()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let with_client =
            crate::testing::with_client_addr(forged(), "203.0.113.9:1".parse().unwrap());
        let h = rt.block_on(svc.clone().oneshot(with_client)).unwrap();
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        let h = rt.block_on(svc.oneshot(forged())).unwrap();
        assert!(h.get("x-forwarded-for").is_none(), "{h:?}");
    }

    /// The table-driven dotted quad is std's, for every octet value in
    /// every position.
    #[test]
    fn dotted_quad_matches_display() {
        for o in 0..=255u8 {
            for ip in [
                [o, 0, 9, 255],
                [1, o, 99, 100],
                [10, 200, o, 7],
                [255, 255, 0, o],
            ] {
                let ip = IpAddr::from(ip);
                let mut out = Spill(Vec::new());
                write_ip(&mut out, ip);
                assert_eq!(String::from_utf8(out.0).unwrap(), ip.to_string());
            }
        }
    }

    #[test]
    fn obfuscated_grammar() {
        for ok in ["_a", "_edge-1.x_y"] {
            assert!(Node::obfuscated(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_", "edge", "_a b", "_a;b", "_é"] {
            assert!(Node::obfuscated(bad).is_err(), "{bad}");
        }
    }
}
