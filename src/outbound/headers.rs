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
//! the policy read) is removed: this hop vouches for none of them.
//!
//! **Client context.** When the request's [`RealIp`] carries a
//! [`ClientContext`] (the policy resolves it), what this hop believed about
//! the scheme, host, port and prefix is written too: beside
//! `X-Forwarded-For` as `X-Forwarded-Proto`, `-Host` (when there is one),
//! `-Port` (when it is not the scheme's default, which the next hop infers
//! from the scheme) and `-Prefix` (when one was believed), one value each; in `Forwarded` as
//! `proto=` and `host=` on the client's element (the port with the host,
//! quoted, when it is not the scheme's default; `Forwarded` has no
//! prefix). The incoming context headers, whose entries left of the client
//! the client wrote, are removed (and `X-Forwarded-Ssl`, which `-Proto`
//! replaces). A next hop reads the single values on its first step, from
//! this hop, and keeps them through the chain: it believes the same
//! context. (A next hop that requires symmetric lists, see
//! [`PolicyBuilder::symmetric`](crate::resolve::PolicyBuilder::symmetric),
//! ignores single values beside a longer chain.) Without a context (the
//! policy has it off), the context headers pass on as they came from a
//! trusted peer, and are removed when the peer was not trusted.
//!
//! A next hop that trusts this hop and the proxies this hop trusts resolves
//! the same client again. When this hop's walk was inconclusive (a
//! malformed entry, the hop cap, ...), the chain starts with `unknown`, so
//! the next hop stops at the same address and knows it is inconclusive too:
//! a result never becomes more certain by being passed on.
//!
//! **Append mode** ([`ForwardHeaders::append`]): the incoming header is kept
//! as it is and the connection's address (PROXY source or socket peer) is
//! appended, as a plain proxy does; no other address header is removed.
//! The next hop must then do its own trusted walk. The context is appended
//! the same way, in lockstep with the address: each `X-Forwarded-*` list
//! gets this hop's value as its new last entry (the `Forwarded` element
//! appended carries `proto=` and `host=`), so a next hop walking through
//! this hop takes this hop's values on the step to the peer and the earlier
//! entries on the steps behind it, as this hop did. The incoming lists are
//! kept only when this hop believed them as far as its walk went: from an
//! untrusted peer (the client) they are dropped and this hop's values
//! stand alone, as they are after a malformed value, a refused host or a
//! list ignored for its length (a reader that takes the first entry of
//! `X-Forwarded-Proto`, as many frameworks do, must never find the
//! client's there).
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

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use http::header::{Entry, HeaderName, HeaderValue};
use http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::RealIp;
use crate::forwarded;
use crate::resolve::{
    ClientContext, ContextStop, Field, Source, Stop, X_FORWARDED_HOST, X_FORWARDED_PORT,
    X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_FORWARDED_SSL,
};

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

/// Address headers a believed chain replaces ([`kind`] spells them out).
#[cfg(test)]
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

/// Context headers, in the order [`ForwardHeaders`] writes them
/// (`X-Forwarded-Ssl` is only ever removed: `-Proto` says the same).
static CONTEXT_HEADERS: [HeaderName; 5] = [
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_FORWARDED_PREFIX,
    X_FORWARDED_SSL,
];

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
    /// that walks its trusted proxies itself will ignore them. The context
    /// lists get this hop's values appended in lockstep (an untrusted
    /// peer's are dropped); see the [module docs](self).
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
            strip_all(headers);
            return;
        };
        let cx = real.context();
        let (name, which) = match self.format {
            Format::XForwardedFor => (&forwarded::X_FORWARDED_FOR, Kind::Address(0)),
            Format::Forwarded => (&forwarded::FORWARDED, Kind::Address(1)),
        };
        let Some(value) = self.address_value(real, cx, name, headers) else {
            // Appended lines always were valid values, and everything this
            // module writes is visible ASCII: unreachable, but fail closed.
            strip_all(headers);
            return;
        };
        // `X-Forwarded-*` carry the context beside `X-Forwarded-For`; a
        // `Forwarded` element carries its own `proto` and `host`.
        let mut context = match (cx, self.format) {
            (Some(c), Format::XForwardedFor) => {
                Some(self.context_values(c, untrusted_peer(real), headers))
            }
            _ => None,
        };
        let edit = Edit {
            address: !self.append,
            // Only compared with names of no known kind: a built-in name
            // here is removed by its kind anyway, and costs no lookup.
            read: match real.source() {
                Source::Header(n) if !self.append => Some(n),
                _ => None,
            },
            // Incoming context headers go when this hop writes its own in
            // their place, and always when the peer was untrusted (the
            // client wrote them).
            context: match cx {
                Some(_) if !self.append || self.format == Format::XForwardedFor => true,
                _ => untrusted_peer(real),
            },
        };
        edit.apply(headers, name, which, value, context.as_mut());
    }

    /// The address header's whole value: the believed chain, or the
    /// incoming lines with the connection's address appended.
    fn address_value(
        &self,
        real: &RealIp,
        cx: Option<&ClientContext>,
        name: &HeaderName,
        headers: &HeaderMap,
    ) -> Option<HeaderValue> {
        // Composed on the stack when it fits (one allocation: the value's).
        let mut stack = Stack::new();
        self.compose(&mut stack, real, cx, name, headers);
        match stack.as_bytes() {
            Some(bytes) => to_value(bytes),
            None => {
                let mut spill = Spill(Vec::with_capacity(512));
                self.compose(&mut spill, real, cx, name, headers);
                to_value(&spill.0)
            }
        }
    }

    fn compose<S: Sink>(
        &self,
        out: &mut S,
        real: &RealIp,
        cx: Option<&ClientContext>,
        name: &HeaderName,
        headers: &HeaderMap,
    ) {
        if self.append {
            for line in headers.get_all(name) {
                out.put(line.as_bytes());
                out.put(b", ");
            }
            self.element(out, connection_addr(real), None, true, cx);
        } else {
            self.believed(out, real, cx);
        }
    }

    /// The believed chain, client first; the client's element carries the
    /// context (`Forwarded`).
    fn believed<S: Sink>(&self, out: &mut S, real: &RealIp, cx: Option<&ClientContext>) {
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
        self.element(out, real.ip(), real.port(), between == 0, cx);
        for (i, ip) in hops.skip(skip).take(between).rev().enumerate() {
            out.put(b", ");
            self.element(out, ip, None, i + 1 == between, None);
        }
    }

    /// One list element; `last` is the element this hop received from,
    /// which carries `by`; `cx` the context it carries (`Forwarded` only).
    /// Always inlined: a call per address cost more than writing it.
    #[inline(always)]
    fn element<S: Sink>(
        &self,
        out: &mut S,
        ip: IpAddr,
        port: Option<u16>,
        last: bool,
        cx: Option<&ClientContext>,
    ) {
        match self.format {
            Format::XForwardedFor => write_ip(out, ip),
            Format::Forwarded => {
                out.put(b"for=");
                match port {
                    Some(p) => write_node(out, &NodeKind::Addr(SocketAddr::new(ip, p))),
                    None => write_node(out, &NodeKind::Ip(ip)),
                }
                if let Some(c) = cx {
                    write_element_context(out, c);
                }
                if let (true, Some(by)) = (last, &self.by) {
                    out.put(b";by=");
                    write_node(out, &by.0);
                }
            }
        }
    }

    /// This hop's `X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix` values
    /// (in that order). Believed: the value alone, as bytes until it is
    /// placed (an equal incoming line is kept as it is). Append: the
    /// incoming lines with this hop's value appended, when this hop
    /// believed them (see below). `None`: no value (no host, no prefix);
    /// the header is removed.
    fn context_values<'c>(
        &self,
        c: &'c ClientContext,
        untrusted: bool,
        headers: &HeaderMap,
    ) -> [Option<Ctx<'c>>; 4] {
        // The incoming lists travel on only when this hop believed them as
        // far as its address walk went: what it stopped at (a malformed
        // value, a refused host, a list ignored for its length) or never
        // read (an untrusted peer's) must not be read past by the next hop.
        let keep = self.append
            && !untrusted
            && c.stop() == ContextStop::Followed
            && !c.host_rejected()
            && ![Field::Proto, Field::Host, Field::Port, Field::Prefix]
                .into_iter()
                .any(|f| c.ignored(f));
        // The scheme's default port goes unwritten (the next hop, taking
        // the scheme, infers it), unless a kept list needs this hop's entry
        // to stay in lockstep: one header fewer to add to the request.
        let port = (c.port() != c.scheme().default_port()
            || (keep && headers.contains_key(&X_FORWARDED_PORT)))
        .then(|| Ctx::digits(c.port()));
        let mut out = [
            Some(Ctx::Static(c.scheme().as_str())),
            c.host().map(|h| Ctx::Text(h.as_bytes())),
            port,
            c.prefix().map(|p| Ctx::Text(p.as_bytes())),
        ];
        if keep {
            for (slot, name) in out.iter_mut().zip(&CONTEXT_HEADERS) {
                let Some(ours) = slot.as_ref() else { continue };
                if !headers.contains_key(name) {
                    continue;
                }
                let mut line = Spill(Vec::with_capacity(64));
                for l in headers.get_all(name) {
                    line.put(l.as_bytes());
                    line.put(b", ");
                }
                line.put(ours.bytes());
                *slot = to_value(&line.0).map(Ctx::Value);
            }
        }
        out
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

/// Whether the hop that handed the request over (the socket peer or the
/// PROXY source) was not trusted: whatever context headers it sent, the
/// client wrote.
fn untrusted_peer(real: &RealIp) -> bool {
    real.stop() == Stop::UntrustedHop && !matches!(real.source(), Source::Header(_))
}

/// The address the connection came from: the PROXY source, else the peer.
fn connection_addr(real: &RealIp) -> IpAddr {
    match real.proxy_header().and_then(|h| h.source()) {
        Some(s) => forwarded::ip_of(forwarded::bits_of(s.ip())),
        None => forwarded::ip_of(forwarded::bits_of(real.peer().ip())),
    }
}

/// What a request header is to this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// [`ADDRESS_HEADERS`]`[i]`: the header written is told by its index,
    /// without comparing its name again.
    Address(usize),
    /// [`CONTEXT_HEADERS`]`[i]`.
    Context(usize),
    /// Anything else.
    Other,
}

/// A context header's new value, made into a [`HeaderValue`] only where
/// it is placed: an incoming line (or the request's `Host`) with the same
/// bytes is kept or shared instead, with no validation and no copy.
enum Ctx<'c> {
    /// A joined list, already a value.
    Value(HeaderValue),
    /// A scheme name.
    Static(&'static str),
    /// A host or prefix from the context.
    Text(&'c [u8]),
    /// A port's decimal digits (`len` of `buf` count, from the end).
    Digits { buf: [u8; 5], len: u8 },
}

impl Ctx<'_> {
    fn digits(n: u16) -> Self {
        let mut buf = [0u8; 5];
        let mut i = buf.len();
        let mut n = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Ctx::Digits {
            buf,
            len: (buf.len() - i) as u8,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Ctx::Value(v) => v.as_bytes(),
            Ctx::Static(s) => s.as_bytes(),
            Ctx::Text(t) => t,
            Ctx::Digits { buf, len } => &buf[buf.len() - usize::from(*len)..],
        }
    }

    /// The value, sharing `same` when it holds these very bytes.
    fn into_value(self, same: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            Ctx::Value(v) => Some(v),
            _ => match same {
                Some(s) if s.as_bytes() == self.bytes() => Some(s.clone()),
                _ => match self {
                    Ctx::Static(s) => Some(HeaderValue::from_static(s)),
                    _ => to_value(self.bytes()),
                },
            },
        }
    }

    /// Puts the value in `line`'s place (left as it is when it already
    /// holds these bytes); `false` when it is no valid value.
    fn place(self, line: &mut HeaderValue) -> bool {
        if !matches!(self, Ctx::Value(_)) && line.as_bytes() == self.bytes() {
            return true;
        }
        match self.into_value(None) {
            Some(v) => {
                *line = v;
                true
            }
            None => false,
        }
    }
}

/// Classifies `name` by its spelling: the length first, so the common
/// names (`host`, `accept`, `user-agent`, ...) are told apart without
/// comparing a byte. Pinned to [`ADDRESS_HEADERS`] and [`CONTEXT_HEADERS`]
/// by a test.
#[inline]
fn kind(name: &HeaderName) -> Kind {
    let s = name.as_str();
    if !matches!(s.len(), 9 | 13..=18 | 24 | 25) {
        return Kind::Other;
    }
    match s {
        "x-forwarded-for" => Kind::Address(0),
        "forwarded" => Kind::Address(1),
        "x-real-ip" => Kind::Address(2),
        "cf-connecting-ip" => Kind::Address(3),
        "true-client-ip" => Kind::Address(4),
        "fly-client-ip" => Kind::Address(5),
        "x-envoy-external-address" => Kind::Address(6),
        "cloudfront-viewer-address" => Kind::Address(7),
        "x-forwarded-proto" => Kind::Context(0),
        "x-forwarded-host" => Kind::Context(1),
        "x-forwarded-port" => Kind::Context(2),
        "x-forwarded-prefix" => Kind::Context(3),
        "x-forwarded-ssl" => Kind::Context(4),
        _ => Kind::Other,
    }
}

/// Which incoming lines a rewrite removes.
struct Edit<'a> {
    /// Every address header (the believed mode).
    address: bool,
    /// The header the policy read, when it is none of the built-in ones.
    read: Option<&'a HeaderName>,
    /// Every context header this rewrite does not set.
    context: bool,
}

impl Edit<'_> {
    fn removes(&self, k: &HeaderName, kind: Kind) -> bool {
        match kind {
            Kind::Address(_) => self.address,
            Kind::Context(_) => self.context,
            Kind::Other => self.read == Some(k),
        }
    }

    /// Sets `name` (of kind `which`) to `value` and, when `context` is given, each context
    /// header to its value (removing it for `None`), and removes the other
    /// lines this edit names. One scan of the request's few lines, each
    /// classified by its length; a header present once has its value
    /// replaced in place, without hashing its name. The values are taken
    /// out where they lie: nothing but a bit mask is copied around.
    fn apply(
        &self,
        headers: &mut HeaderMap,
        name: &HeaderName,
        which: Kind,
        value: HeaderValue,
        mut context: Option<&mut [Option<Ctx<'_>>; 4]>,
    ) {
        // The common case, on its own: no context to set, one line of
        // `name`, nothing to remove: the value replaced in place.
        if context.is_none() {
            let mut slot = None;
            let mut lines = 0u8;
            let mut others = false;
            for (k, v) in headers.iter_mut() {
                let kind = kind(k);
                if kind == which {
                    lines = lines.saturating_add(1);
                    slot.get_or_insert(v);
                } else {
                    others |= self.removes(k, kind);
                }
            }
            if let (1, false, Some(slot)) = (lines, others, slot) {
                *slot = value;
                return;
            }
        }
        // Target 0 is the address header, 1..=4 the context headers.
        let sets_context = context.is_some();
        let target = |kind: Kind| match kind {
            _ if kind == which => Some(0),
            Kind::Context(i) if sets_context && i < 4 => Some(i + 1),
            _ => None,
        };
        let mut value = Some(value);
        // Bit t: target t seen, seen more than once, given its value in place.
        let mut seen = 0u8;
        let mut many = 0u8;
        let mut placed = 0u8;
        let mut others = false;
        for (k, v) in headers.iter_mut() {
            let kind = kind(k);
            let Some(t) = target(kind) else {
                others |= self.removes(k, kind);
                continue;
            };
            let bit = 1 << t;
            if seen & bit != 0 {
                // A second line: replaced (or removed) as a whole below.
                many |= bit;
                continue;
            }
            seen |= bit;
            if t == 0 {
                if let Some(new) = value.take() {
                    *v = new;
                    placed |= bit;
                }
            } else if let Some(new) = context.as_deref_mut().and_then(|c| c[t - 1].take()) {
                // Not placed (no valid value): removed below.
                if new.place(v) {
                    placed |= bit;
                }
            }
        }
        if others {
            let found: Vec<HeaderName> = headers
                .keys()
                .filter(|k| {
                    let kind = kind(k);
                    target(kind).is_none() && self.removes(k, kind)
                })
                .cloned()
                .collect();
            for k in &found {
                headers.remove(k);
            }
        }
        // What the scan could not do in place: a name absent (inserted), a
        // name repeated (its first line holds the new value, the rest go),
        // a context header with no value (removed). Usually nothing.
        let mut left = u8::from(value.is_some());
        if let Some(c) = context.as_deref() {
            for (t, slot) in c.iter().enumerate() {
                left |= u8::from(slot.is_some()) << (t + 1);
            }
        }
        if left | (placed & many) | (seen & !placed) == 0 {
            return;
        }
        let finish = |headers: &mut HeaderMap, bit: u8, n: &HeaderName, v: Option<HeaderValue>| {
            if let Some(v) = v {
                headers.insert(n.clone(), v);
            } else if placed & bit != 0 {
                if many & bit != 0 {
                    // One probe: the entry's first line replaces them all.
                    if let Entry::Occupied(mut e) = headers.entry(n) {
                        let first = e.get().clone();
                        e.insert(first);
                    }
                }
            } else if seen & bit != 0 {
                headers.remove(n);
            }
        };
        finish(headers, 1, name, value);
        if let Some(c) = context {
            for (t, (slot, n)) in c.iter_mut().zip(&CONTEXT_HEADERS).enumerate() {
                // A value to add shares the request's `Host` line when it
                // is the same host (the connection's own view, usually).
                let v = slot.take().and_then(|new| {
                    let same = match new {
                        Ctx::Text(_) => headers.get(http::header::HOST),
                        _ => None,
                    };
                    new.into_value(same)
                });
                finish(headers, 1 << (t + 1), n, v);
            }
        }
    }
}

/// Removes every address and context header (nothing can be vouched for).
fn strip_all(headers: &mut HeaderMap) {
    let found: Vec<HeaderName> = headers
        .keys()
        .filter(|k| kind(k) != Kind::Other)
        .cloned()
        .collect();
    for k in &found {
        headers.remove(k);
    }
}

/// Bytes the per-thread buffer values are cut from grows by.
const ARENA_CHUNK: usize = 4096;

thread_local! {
    /// The buffer this thread's header values are cut from: a value is a
    /// shared slice of it, so writing one costs no allocation (a fresh
    /// chunk every few hundred values while older ones are still alive;
    /// none at all once they are all dropped, when the chunk is reused).
    /// Allocating each value on its own was most of the cost of writing.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `bytes` as a header value, cut from [`ARENA`] (or allocated on its own
/// when the thread is going away); `None` unless it is a valid value.
fn to_value(bytes: &[u8]) -> Option<HeaderValue> {
    let shared = ARENA
        .try_with(|arena| {
            let mut arena = arena.try_borrow_mut().ok()?;
            if arena.capacity() < bytes.len() {
                arena.reserve(ARENA_CHUNK.max(bytes.len()));
            }
            arena.extend_from_slice(bytes);
            Some(arena.split().freeze())
        })
        .ok()
        .flatten();
    match shared {
        Some(b) => HeaderValue::from_maybe_shared(b).ok(),
        None => HeaderValue::from_bytes(bytes).ok(),
    }
}

/// Where a header value is composed.
trait Sink: fmt::Write {
    fn put(&mut self, bytes: &[u8]);

    /// A dotted quad.
    fn put_v4(&mut self, octets: [u8; 4]) {
        let mut quad = [0u8; 16];
        let n = dotted_quad(&mut quad, octets);
        self.put(&quad[..n]);
    }
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

    /// Straight into the buffer: no scratch copy of variable length (a
    /// call into `memcpy` costs more than the digits).
    #[inline]
    fn put_v4(&mut self, octets: [u8; 4]) {
        match self
            .buf
            .get_mut(self.len..self.len + 16)
            .and_then(|dst| <&mut [u8; 16]>::try_from(dst).ok())
        {
            Some(dst) => self.len += dotted_quad(dst, octets),
            None => {
                let mut quad = [0u8; 16];
                let n = dotted_quad(&mut quad, octets);
                self.put(&quad[..n]);
            }
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

/// Writes `octets` as a dotted quad at the start of `dst` and returns its
/// length: four whole table entries, each advancing by its own length (no
/// branch per digit, fixed-size copies only).
#[inline]
fn dotted_quad(dst: &mut [u8; 16], octets: [u8; 4]) -> usize {
    let mut n = 0;
    for octet in octets {
        let (digits, len) = OCTETS[usize::from(octet)];
        // n <= 12 here, so the four bytes always fit.
        if let Some(d) = dst.get_mut(n..n + 4) {
            d.copy_from_slice(&digits);
        }
        n += usize::from(len);
    }
    // Without the last dot.
    n - 1
}

/// An address as `X-Forwarded-For` writes it: dotted quad or RFC 5952 IPv6.
#[inline]
fn write_ip<S: Sink>(out: &mut S, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out.put_v4(v4.octets()),
        IpAddr::V6(v6) => {
            // Formatting into a buffer cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// A port's decimal digits, without `fmt`.
fn write_u16<S: Sink>(out: &mut S, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&digits[i..]);
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
            out.put(b":");
            write_u16(out, a.port());
            out.put(b"\"");
        }
        NodeKind::Obfuscated(name) => out.put(name.as_bytes()),
    }
}

/// `;proto=https;host=shop.example` on a `Forwarded` element: the host
/// quoted when it holds `[`, `:` (an IPv6 literal, or the port when it is
/// not the scheme's default), which a token may not.
fn write_element_context<S: Sink>(out: &mut S, c: &ClientContext) {
    out.put(b";proto=");
    out.put(c.scheme().as_str().as_bytes());
    let Some(host) = c.host() else { return };
    let port = c.port();
    let with_port = port != c.scheme().default_port();
    let quoted = with_port || host.starts_with('[');
    out.put(b";host=");
    if quoted {
        out.put(b"\"");
    }
    out.put(host.as_bytes());
    if with_port {
        out.put(b":");
        write_u16(out, port);
    }
    if quoted {
        out.put(b"\"");
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

    /// Context off, explicitly: these tests pin what is written without a
    /// client context, whatever the default.
    fn private() -> Policy {
        Policy::builder()
            .trust_private()
            .header(HeaderSource::XForwardedFor)
            .context(false)
            .build()
            .unwrap()
    }

    fn with_context(header: HeaderSource) -> Policy {
        Policy::builder()
            .trust_private()
            .header(header)
            .context(true)
            .build()
            .unwrap()
    }

    fn map(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in lines {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn real(policy: &Policy, peer: &str, h: &HeaderMap) -> RealIp {
        let peer: SocketAddr = peer.parse().unwrap();
        RealIp::new(policy.resolve(peer, None, h), peer, None)
    }

    /// The one classifier is exactly the two lists, and leaves common
    /// names and near misses alone.
    #[test]
    fn kind_spells_the_lists() {
        for (i, n) in ADDRESS_HEADERS.iter().enumerate() {
            assert_eq!(kind(n), Kind::Address(i), "{n}");
        }
        for (i, n) in CONTEXT_HEADERS.iter().enumerate() {
            assert_eq!(kind(n), Kind::Context(i), "{n}");
        }
        for other in [
            "host",
            "accept",
            "user-agent",
            "x-forwarded-fo",
            "x-forwarded-forr",
            "x-forwarded-path",
            "forwarded-for",
            "x-real-ipv6",
        ] {
            let n = HeaderName::from_bytes(other.as_bytes()).unwrap();
            assert_eq!(kind(&n), Kind::Other, "{other}");
        }
    }

    /// Believed mode writes the context this hop believed, one value each,
    /// and drops the incoming lists (their entries left of the client were
    /// the client's).
    #[test]
    fn believed_context_written_for_xff() {
        let h = map(&[
            ("host", "10.0.0.2:8080"),
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-proto", "http, https"),
            ("x-forwarded-host", "evil.example, shop.example"),
            ("x-forwarded-port", "1, 8443"),
            ("x-forwarded-prefix", "/evil, /app"),
            ("x-forwarded-ssl", "off"),
        ]);
        let r = real(
            &with_context(HeaderSource::XForwardedFor),
            "10.0.0.2:4000",
            &h,
        );
        let mut out = h.clone();
        ForwardHeaders::x_forwarded_for().write(Some(&r), &mut out);
        assert_eq!(out["x-forwarded-for"], "203.0.113.9, 10.0.0.2");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "shop.example");
        assert_eq!(out["x-forwarded-port"], "8443");
        assert_eq!(out["x-forwarded-prefix"], "/app");
        assert!(out.get("x-forwarded-ssl").is_none(), "{out:?}");
        for name in ["x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"] {
            assert_eq!(out.get_all(name).iter().count(), 1, "{name}");
        }
    }

    /// An untrusted peer's context headers never pass on: what is written
    /// is the connection's own view (plain HTTP, its Host header).
    #[test]
    fn untrusted_peer_context_replaced_by_connection_view() {
        let h = map(&[
            ("host", "shop.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-prefix", "/evil"),
        ]);
        let r = real(
            &with_context(HeaderSource::XForwardedFor),
            "198.51.100.4:4000",
            &h,
        );
        for writer in [
            ForwardHeaders::x_forwarded_for(),
            ForwardHeaders::x_forwarded_for().append(),
        ] {
            let mut out = h.clone();
            writer.write(Some(&r), &mut out);
            assert_eq!(out["x-forwarded-proto"], "http", "{writer:?}");
            assert_eq!(out["x-forwarded-host"], "shop.example", "{writer:?}");
            // Port 80 is http's default: the next hop infers it.
            assert!(out.get("x-forwarded-port").is_none(), "{writer:?} {out:?}");
            assert!(
                out.get("x-forwarded-prefix").is_none(),
                "{writer:?} {out:?}"
            );
        }
    }

    /// `Forwarded` carries `proto` and `host` on the client's element; a
    /// port that is not the scheme's default goes with the host, quoted.
    #[test]
    fn forwarded_element_carries_context() {
        let h = map(&[
            ("host", "10.0.0.2"),
            (
                "forwarded",
                "for=6.6.6.6;proto=http, for=203.0.113.9;proto=https;host=\"shop.example:8443\"",
            ),
            ("x-forwarded-proto", "http"),
        ]);
        let r = real(&with_context(HeaderSource::Forwarded), "10.0.0.2:4000", &h);
        let mut out = h.clone();
        ForwardHeaders::forwarded()
            .by(Node::obfuscated("_edge").unwrap())
            .write(Some(&r), &mut out);
        assert_eq!(
            out["forwarded"],
            "for=203.0.113.9;proto=https;host=\"shop.example:8443\", for=10.0.0.2;by=_edge"
        );
        assert!(out.get("x-forwarded-proto").is_none(), "{out:?}");

        let h = map(&[("host", "[2001:db8::5]")]);
        let r = real(&with_context(HeaderSource::Forwarded), "10.0.0.2:4000", &h);
        let mut out = h.clone();
        ForwardHeaders::forwarded().write(Some(&r), &mut out);
        assert_eq!(
            out["forwarded"],
            "for=\"10.0.0.2:4000\";proto=http;host=\"[2001:db8::5]\""
        );
    }

    /// Append mode appends this hop's entry to each context list, in
    /// lockstep with the address it appends: a next hop trusting this hop
    /// reads it on the step to the peer, then the incoming entries as this
    /// hop did, and ends with the same context.
    #[test]
    fn append_context_stays_in_lockstep() {
        let h = map(&[
            ("host", "internal:8080"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.7"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "shop.example"),
        ]);
        let policy = with_context(HeaderSource::XForwardedFor);
        let r = real(&policy, "10.0.0.2:4000", &h);
        let cx = r.context().unwrap();
        assert_eq!(
            (cx.scheme().as_str(), cx.host(), cx.port()),
            ("https", Some("shop.example"), 443)
        );
        let mut out = h.clone();
        ForwardHeaders::x_forwarded_for()
            .append()
            .write(Some(&r), &mut out);
        assert_eq!(out["x-forwarded-for"], "203.0.113.9, 10.0.0.7, 10.0.0.2");
        assert_eq!(out["x-forwarded-proto"], "https, http, https");
        assert_eq!(out["x-forwarded-host"], "shop.example, shop.example");
        assert!(out.get("x-forwarded-port").is_none(), "{out:?}");
        let again = policy.resolve("10.0.0.3:1".parse().unwrap(), None, &out);
        let cy = again.context().unwrap();
        assert_eq!(again.ip(), r.ip());
        assert_eq!(
            (cy.scheme(), cy.host(), cy.port()),
            (cx.scheme(), cx.host(), cx.port())
        );
    }

    /// A context line that already holds the value written is kept, and a
    /// host added from the connection's own view shares the request's
    /// `Host` line: the same bytes, not a copy (nothing rebuilt).
    #[test]
    fn equal_context_values_are_shared_not_rebuilt() {
        let h = map(&[
            ("host", "10.0.0.2:8080"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example"),
        ]);
        let r = real(
            &with_context(HeaderSource::XForwardedFor),
            "10.0.0.2:4000",
            &h,
        );
        let mut out = h.clone();
        ForwardHeaders::x_forwarded_for().write(Some(&r), &mut out);
        assert_eq!(out["x-forwarded-host"], "shop.example");
        assert_eq!(
            out["x-forwarded-host"].as_bytes().as_ptr(),
            h["x-forwarded-host"].as_bytes().as_ptr()
        );
        assert_eq!(out["x-forwarded-proto"], "https");

        let h = map(&[
            ("host", "shop.example"),
            ("x-forwarded-host", "evil.example"),
        ]);
        let r = real(
            &with_context(HeaderSource::XForwardedFor),
            "198.51.100.4:4000",
            &h,
        );
        let mut out = h.clone();
        ForwardHeaders::x_forwarded_for().write(Some(&r), &mut out);
        assert_eq!(out["x-forwarded-host"], "shop.example");
        // Replaced in place from the context: equal bytes, a fresh value.
        let mut h2 = map(&[("host", "shop.example")]);
        ForwardHeaders::x_forwarded_for().write(Some(&r), &mut h2);
        assert_eq!(h2["x-forwarded-host"], "shop.example");
        assert_eq!(
            h2["x-forwarded-host"].as_bytes().as_ptr(),
            h2["host"].as_bytes().as_ptr()
        );
    }

    /// Values cut from the per-thread buffer stay intact while thousands
    /// of others are cut after them (and after chunks are replaced).
    #[test]
    fn arena_values_do_not_alias() {
        let values: Vec<(String, HeaderValue)> = (0..20_000u32)
            .map(|i| {
                let s = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
                let v = to_value(s.as_bytes()).unwrap();
                (s, v)
            })
            .collect();
        for (s, v) in &values {
            assert_eq!(v.as_bytes(), s.as_bytes());
        }
        assert!(to_value(b"bad\nvalue").is_none());
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

    /// Append mode with context off still never passes an untrusted
    /// peer's context headers on (the address list keeps its entries).
    #[test]
    fn append_drops_untrusted_context_without_a_context() {
        let real = resolve(&private(), "198.51.100.4:4000", Some("6.6.6.6"));
        assert!(real.context().is_none());
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-ssl", "on".parse().unwrap());
        ForwardHeaders::x_forwarded_for()
            .append()
            .write(Some(&real), &mut h);
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 198.51.100.4");
        assert_eq!(h.len(), 1, "{h:?}");
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
            Policy::builder().context(false).build().unwrap().resolve(
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
