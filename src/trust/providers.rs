//! Published provider range lists, parsed into [`TrustedProxies`].
//!
//! Sans-IO: each parser takes the body a provider serves and returns the
//! set, or a [`ListError`] naming the line (plain lists) or the field
//! (JSON) that is wrong. A list is taken whole or not at all: one bad
//! entry refuses the list, so a corrupted download can never trust less,
//! or more, than the provider published.
//!
//! - [`parse_cidr_list`]: one network or address per line, `#` comments and
//!   blank lines ignored (Cloudflare's `ips-v4` / `ips-v6`, any internal
//!   list). No dependency.
//! - With the `providers` feature (serde_json): AWS `ip-ranges.json`
//!   filtered by service and region ([`AwsFilter`]), Google Cloud
//!   `cloud.json`, Fastly `public-ip-list`, Cloudflare's API
//!   (`/client/v4/ips`).
//!
//! [`Format`] names one of them, so a refreshing source can be told which
//! parser its URL needs.
//!
//! ```
//! use realip::trust::providers::parse_cidr_list;
//!
//! let set = parse_cidr_list("# edge\n173.245.48.0/20\n\n2400:cb00::/32  # v6\n")?;
//! assert_eq!(set.len(), 2);
//! assert!(set.contains("173.245.48.9".parse().unwrap()));
//!
//! let err = parse_cidr_list("10.0.0.0/8\n10.0.0/8\n").unwrap_err();
//! assert_eq!(err.line(), Some(2));
//! # Ok::<(), realip::trust::providers::ListError>(())
//! ```

use super::{check, ConfigError, TrustedProxies};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// What kind of mistake a [`ListError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListErrorKind {
    /// The body is not UTF-8 text.
    NotText,
    /// A line of a plain list is not a network or an address.
    Line,
    /// The body is not the JSON document the format expects.
    Json,
    /// A JSON field holds a value that is not a network of its family.
    Field,
    /// The provider's API answered with an error (`"success": false`).
    Api,
    /// A network the set refuses (IPv4-mapped form, too many networks).
    Range,
}

/// A provider list that cannot be used, and where it is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListError {
    kind: ListErrorKind,
    line: Option<usize>,
    message: String,
}

impl ListError {
    fn new(kind: ListErrorKind, line: Option<usize>, message: impl Into<String>) -> Self {
        ListError {
            kind,
            line,
            message: message.into(),
        }
    }

    fn range(line: Option<usize>, where_: &str, e: ConfigError) -> Self {
        ListError::new(ListErrorKind::Range, line, format!("{where_}: {e}"))
    }

    /// What was wrong.
    pub fn kind(&self) -> ListErrorKind {
        self.kind
    }

    /// The 1-based line of the body the error is on, when known (plain
    /// lists always; JSON syntax errors from the JSON reader).
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ListError {}

/// A network (`a.b.c.d/n`, `x::/n`) or a single address (a host network).
fn parse_net(s: &str) -> Option<IpNet> {
    if let Some(n) = canonical_v4_net(s.as_bytes()) {
        return Some(IpNet::V4(n));
    }
    match s.parse::<IpNet>() {
        Ok(n) => Some(n),
        Err(_) => match s.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => Some(IpNet::V4(Ipv4Net::from(a))),
            IpAddr::V6(a) => Some(IpNet::V6(Ipv6Net::from(a))),
        },
    }
}

/// `parse_net` of raw bytes (a JSON string not checked for UTF-8: the
/// network parsers take ASCII only) kept only when of the family `v6`
/// names: an IPv6 field goes straight to the IPv6 parsers rather than
/// failing the IPv4 one first.
#[cfg(feature = "providers")]
fn parse_net_bytes(b: &[u8], v6: bool) -> Option<IpNet> {
    if !v6 {
        return canonical_v4_net(b)
            .map(IpNet::V4)
            .or_else(|| parse_net(std::str::from_utf8(b).ok()?))
            .filter(|n| matches!(n, IpNet::V4(_)));
    }
    let s = std::str::from_utf8(b).ok()?;
    match s.parse::<Ipv6Net>() {
        Ok(n) => Some(IpNet::V6(n)),
        Err(_) => Some(IpNet::V6(Ipv6Net::from(
            s.parse::<std::net::Ipv6Addr>().ok()?,
        ))),
    }
}

/// The common `a.b.c.d/n` written canonically (decimal, no leading
/// zeros, no sign), read without the general parser: most entries of a
/// provider list are that, and the general one costs several times more.
/// `None` for anything else, which then goes to the general parser, so
/// what a list may hold is unchanged.
fn canonical_v4_net(b: &[u8]) -> Option<Ipv4Net> {
    /// A decimal number up to `max` without a leading zero, and the rest.
    fn number(b: &[u8], max: u32) -> Option<(u32, &[u8])> {
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 3 || (digits > 1 && b[0] == b'0') {
            return None;
        }
        let v = b[..digits]
            .iter()
            .fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        (v <= max).then_some((v, &b[digits..]))
    }
    let mut octets = [0u8; 4];
    let mut rest = b;
    for (k, octet) in octets.iter_mut().enumerate() {
        let (v, after) = number(rest, 255)?;
        let (&sep, after) = after.split_first()?;
        if sep != if k < 3 { b'.' } else { b'/' } {
            return None;
        }
        *octet = v as u8;
        rest = after;
    }
    match number(rest, 32)? {
        (len, []) => Ipv4Net::new(Ipv4Addr::from(octets), len as u8).ok(),
        _ => None,
    }
}

fn text(body: &[u8]) -> Result<&str, ListError> {
    std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let line = body[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ListError::new(
            ListErrorKind::NotText,
            Some(line),
            format!("line {line}: not UTF-8 text (byte {at})"),
        )
    })
}

/// Parses a plain list: one network or address per line; `#` starts a
/// comment (whole line or trailing); blank lines and surrounding
/// whitespace (including `\r`) are ignored.
///
/// # Errors
/// The first line that holds anything but one network or address, or a
/// network the set refuses (IPv4-mapped form), naming its line.
pub fn parse_cidr_list(list: &str) -> Result<TrustedProxies, ListError> {
    let mut nets = Vec::new();
    for (i, raw) in list.lines().enumerate() {
        let line = i + 1;
        let item = raw.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        if item.split_whitespace().nth(1).is_some() {
            return Err(ListError::new(
                ListErrorKind::Line,
                Some(line),
                format!("line {line}: `{item}` holds more than one entry (one network per line)"),
            ));
        }
        let net = parse_net(item).ok_or_else(|| {
            ListError::new(
                ListErrorKind::Line,
                Some(line),
                format!("line {line}: `{item}` is neither a network (a.b.c.d/n) nor an address"),
            )
        })?;
        let net =
            check(net).map_err(|e| ListError::range(Some(line), &format!("line {line}"), e))?;
        nets.push(net);
    }
    TrustedProxies::from_nets(nets).map_err(|e| ListError::range(None, "list", e))
}

/// The published list formats, so a source can be told which parser its
/// body needs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One network per line ([`parse_cidr_list`]).
    CidrList,
    /// AWS `ip-ranges.json`, keeping the prefixes the filter selects
    /// ([`parse_aws`]).
    #[cfg(feature = "providers")]
    Aws(AwsFilter),
    /// Google Cloud `cloud.json` ([`parse_google_cloud`]).
    #[cfg(feature = "providers")]
    GoogleCloud,
    /// Fastly `public-ip-list` ([`parse_fastly`]).
    #[cfg(feature = "providers")]
    Fastly,
    /// Cloudflare's API `/client/v4/ips` ([`parse_cloudflare_api`]).
    #[cfg(feature = "providers")]
    CloudflareApi,
}

impl Format {
    /// Parses a body in this format.
    ///
    /// # Errors
    /// As the format's parser.
    pub fn parse(&self, body: &[u8]) -> Result<TrustedProxies, ListError> {
        match self {
            Format::CidrList => parse_cidr_list(text(body)?),
            #[cfg(feature = "providers")]
            Format::Aws(filter) => parse_aws(body, filter),
            #[cfg(feature = "providers")]
            Format::GoogleCloud => parse_google_cloud(body),
            #[cfg(feature = "providers")]
            Format::Fastly => parse_fastly(body),
            #[cfg(feature = "providers")]
            Format::CloudflareApi => parse_cloudflare_api(body),
        }
    }
}

#[cfg(feature = "providers")]
pub use json::{parse_aws, parse_cloudflare_api, parse_fastly, parse_google_cloud, AwsFilter};

#[cfg(feature = "providers")]
mod json {
    use super::{
        check, parse_net, parse_net_bytes, IpNet, ListError, ListErrorKind, TrustedProxies,
    };
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde::Deserialize;
    use std::borrow::Cow;
    use std::marker::PhantomData;

    /// Which AWS prefixes to keep: those whose `service` is one of
    /// `services` and whose `region` is one of `regions` (ASCII case
    /// ignored); an empty list keeps every value.
    ///
    /// The published list repeats most prefixes under the catch-all
    /// `AMAZON` service; select the service that actually connects to you
    /// (`CLOUDFRONT`, `CLOUDFRONT_ORIGIN_FACING`, `EC2`, ...).
    ///
    /// ```
    /// use realip::trust::providers::AwsFilter;
    ///
    /// let f = AwsFilter::service("CLOUDFRONT").with_region("GLOBAL");
    /// assert!(f.matches("cloudfront", "GLOBAL"));
    /// assert!(!f.matches("EC2", "GLOBAL"));
    /// ```
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct AwsFilter {
        services: Vec<String>,
        regions: Vec<String>,
    }

    impl AwsFilter {
        /// Keeps every prefix.
        pub fn all() -> Self {
            Self::default()
        }

        /// Keeps the prefixes of one service.
        pub fn service(name: impl Into<String>) -> Self {
            Self::default().with_service(name)
        }

        /// Also keeps the prefixes of `name`.
        #[must_use]
        pub fn with_service(mut self, name: impl Into<String>) -> Self {
            self.services.push(name.into());
            self
        }

        /// Keeps only prefixes of these regions (adds one to the list).
        #[must_use]
        pub fn with_region(mut self, name: impl Into<String>) -> Self {
            self.regions.push(name.into());
            self
        }

        /// Whether a prefix of `service` in `region` is kept.
        pub fn matches(&self, service: &str, region: &str) -> bool {
            self.matches_bytes(service.as_bytes(), region.as_bytes())
        }

        fn matches_bytes(&self, service: &[u8], region: &[u8]) -> bool {
            let any = |list: &[String], v: &[u8]| {
                list.is_empty() || list.iter().any(|s| s.as_bytes().eq_ignore_ascii_case(v))
            };
            any(&self.services, service) && any(&self.regions, region)
        }
    }

    fn json_error(format: &str, e: serde_json::Error) -> ListError {
        ListError::new(
            ListErrorKind::Json,
            Some(e.line()),
            format!("not a {format} document: {e}"),
        )
    }

    /// Parses `value` found at `field` as a network of the family the
    /// field names.
    fn net(value: &str, field: &dyn Fn() -> String, v6: bool) -> Result<IpNet, ListError> {
        let Some(n) = parse_net(value).filter(|n| matches!(n, IpNet::V6(_)) == v6) else {
            let family = if v6 { "IPv6" } else { "IPv4" };
            return Err(ListError::new(
                ListErrorKind::Field,
                None,
                format!("{}: `{value}` is not an {family} network", field()),
            ));
        };
        check(n).map_err(|e| ListError::range(None, &field(), e))
    }

    /// Networks each `net` already checked.
    fn build(nets: Vec<IpNet>) -> Result<TrustedProxies, ListError> {
        TrustedProxies::from_checked(nets).map_err(|e| ListError::range(None, "list", e))
    }

    /// [`net`] of a prefix read as raw bytes.
    fn net_bytes(value: &[u8], field: &dyn Fn() -> String, v6: bool) -> Result<IpNet, ListError> {
        match parse_net_bytes(value, v6) {
            Some(n) => check(n).map_err(|e| ListError::range(None, &field(), e)),
            // The general path words the error (and refuses non-UTF-8).
            None => net(&String::from_utf8_lossy(value), field, v6),
        }
    }

    #[derive(Deserialize)]
    struct AwsDoc<'a> {
        #[serde(borrow)]
        prefixes: Vec<AwsPrefix<'a, V4>>,
        #[serde(borrow, default)]
        ipv6_prefixes: Vec<AwsPrefix<'a, V6>>,
    }

    /// Which list an [`AwsPrefix`] is from: the name of its prefix field.
    trait Family {
        const FIELD: &'static str;
    }
    struct V4;
    struct V6;
    impl Family for V4 {
        const FIELD: &'static str = "ip_prefix";
    }
    impl Family for V6 {
        const FIELD: &'static str = "ipv6_prefix";
    }

    /// One element of `prefixes` or `ipv6_prefixes`, its three fields as
    /// raw bytes borrowed from the body. Read by hand rather than derived:
    /// derived fields match their keys as `str`, which checks every key
    /// and value for UTF-8 (a third of the parse, 13,344 entries with four
    /// keys each); the prefix is ASCII-parsed and the others compared as
    /// bytes, so neither needs it.
    struct AwsPrefix<'a, F> {
        prefix: Cow<'a, [u8]>,
        region: Cow<'a, [u8]>,
        service: Cow<'a, [u8]>,
        family: PhantomData<F>,
    }

    /// A key of an [`AwsPrefix`], matched as bytes.
    enum Key {
        Prefix,
        Region,
        Service,
        Other,
    }

    struct KeyVisitor<F>(PhantomData<F>);

    impl<F: Family> Visitor<'_> for KeyVisitor<F> {
        type Value = Key;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a field name")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key, E> {
            Ok(match v {
                b"region" => Key::Region,
                b"service" => Key::Service,
                _ if v == F::FIELD.as_bytes() => Key::Prefix,
                _ => Key::Other,
            })
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
            self.visit_bytes(v.as_bytes())
        }
    }

    struct KeySeed<F>(PhantomData<F>);

    impl<'de, F: Family> de::DeserializeSeed<'de> for KeySeed<F> {
        type Value = Key;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
            d.deserialize_bytes(KeyVisitor::<F>(PhantomData))
        }
    }

    struct PrefixVisitor<F>(PhantomData<F>);

    impl<'de, F: Family> Visitor<'de> for PrefixVisitor<F> {
        type Value = AwsPrefix<'de, F>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "an object with {}, region and service", F::FIELD)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut prefix, mut region, mut service) = (None, None, None);
            while let Some(key) = map.next_key_seed(KeySeed::<F>(PhantomData))? {
                let (slot, name) = match key {
                    Key::Prefix => (&mut prefix, F::FIELD),
                    Key::Region => (&mut region, "region"),
                    Key::Service => (&mut service, "service"),
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                if slot.is_some() {
                    return Err(de::Error::duplicate_field(name));
                }
                *slot = Some(map.next_value::<Bytes<'de>>()?.0);
            }
            Ok(AwsPrefix {
                prefix: prefix.ok_or_else(|| de::Error::missing_field(F::FIELD))?,
                region: region.ok_or_else(|| de::Error::missing_field("region"))?,
                service: service.ok_or_else(|| de::Error::missing_field("service"))?,
                family: PhantomData,
            })
        }
    }

    impl<'de: 'a, 'a, F: Family> Deserialize<'de> for AwsPrefix<'a, F> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(PrefixVisitor::<F>(PhantomData))
        }
    }

    /// A JSON string's bytes, borrowed when it holds no escape.
    struct Bytes<'a>(Cow<'a, [u8]>);

    impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Cow<'de, [u8]>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_bytes<E: de::Error>(
                    self,
                    v: &'de [u8],
                ) -> Result<Self::Value, E> {
                    Ok(Cow::Borrowed(v))
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                    Ok(Cow::Owned(v.to_vec()))
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Cow::Borrowed(v.as_bytes()))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Cow::Owned(v.as_bytes().to_vec()))
                }
            }
            d.deserialize_bytes(V).map(Bytes)
        }
    }

    /// Parses AWS `ip-ranges.json` (`prefixes[].ip_prefix`,
    /// `ipv6_prefixes[].ipv6_prefix`), keeping what `filter` selects.
    ///
    /// # Errors
    /// Not that document, or a prefix (even one the filter drops) that is
    /// not a network of its field's family, named by its index.
    pub fn parse_aws(body: &[u8], filter: &AwsFilter) -> Result<TrustedProxies, ListError> {
        let doc: AwsDoc<'_> = serde_json::from_slice(body).map_err(|e| json_error("AWS", e))?;
        let mut nets = Vec::with_capacity(doc.prefixes.len() + doc.ipv6_prefixes.len());
        for (i, p) in doc.prefixes.iter().enumerate() {
            let n = net_bytes(&p.prefix, &|| format!("prefixes[{i}].ip_prefix"), false)?;
            if filter.matches_bytes(&p.service, &p.region) {
                nets.push(n);
            }
        }
        for (i, p) in doc.ipv6_prefixes.iter().enumerate() {
            let n = net_bytes(
                &p.prefix,
                &|| format!("ipv6_prefixes[{i}].ipv6_prefix"),
                true,
            )?;
            if filter.matches_bytes(&p.service, &p.region) {
                nets.push(n);
            }
        }
        build(nets)
    }

    #[derive(Deserialize)]
    struct GoogleDoc<'a> {
        #[serde(borrow)]
        prefixes: Vec<GooglePrefix<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct GooglePrefix<'a> {
        #[serde(borrow, default)]
        ipv4_prefix: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        ipv6_prefix: Option<Cow<'a, str>>,
    }

    /// Parses Google Cloud `cloud.json` (`prefixes[].ipv4Prefix` or
    /// `.ipv6Prefix`).
    ///
    /// # Errors
    /// Not that document; an entry with neither or both prefixes, or one
    /// that is not a network of its field's family, named by its index.
    pub fn parse_google_cloud(body: &[u8]) -> Result<TrustedProxies, ListError> {
        let doc: GoogleDoc<'_> =
            serde_json::from_slice(body).map_err(|e| json_error("Google Cloud", e))?;
        let mut nets = Vec::with_capacity(doc.prefixes.len());
        for (i, p) in doc.prefixes.iter().enumerate() {
            let n = match (&p.ipv4_prefix, &p.ipv6_prefix) {
                (Some(v4), None) => net(v4, &|| format!("prefixes[{i}].ipv4Prefix"), false)?,
                (None, Some(v6)) => net(v6, &|| format!("prefixes[{i}].ipv6Prefix"), true)?,
                _ => {
                    return Err(ListError::new(
                        ListErrorKind::Field,
                        None,
                        format!("prefixes[{i}]: needs exactly one of ipv4Prefix and ipv6Prefix"),
                    ))
                }
            };
            nets.push(n);
        }
        build(nets)
    }

    #[derive(Deserialize)]
    struct FastlyDoc<'a> {
        #[serde(borrow)]
        addresses: Vec<Cow<'a, str>>,
        #[serde(borrow, default)]
        ipv6_addresses: Vec<Cow<'a, str>>,
    }

    /// Parses Fastly's `public-ip-list` (`addresses[]`, `ipv6_addresses[]`).
    ///
    /// # Errors
    /// Not that document, or an entry that is not a network of its
    /// array's family, named by its index.
    pub fn parse_fastly(body: &[u8]) -> Result<TrustedProxies, ListError> {
        let doc: FastlyDoc<'_> =
            serde_json::from_slice(body).map_err(|e| json_error("Fastly", e))?;
        two_lists(
            &doc.addresses,
            "addresses",
            &doc.ipv6_addresses,
            "ipv6_addresses",
        )
    }

    fn two_lists(
        v4: &[Cow<'_, str>],
        v4_field: &str,
        v6: &[Cow<'_, str>],
        v6_field: &str,
    ) -> Result<TrustedProxies, ListError> {
        let mut nets = Vec::with_capacity(v4.len() + v6.len());
        for (i, s) in v4.iter().enumerate() {
            nets.push(net(s, &|| format!("{v4_field}[{i}]"), false)?);
        }
        for (i, s) in v6.iter().enumerate() {
            nets.push(net(s, &|| format!("{v6_field}[{i}]"), true)?);
        }
        build(nets)
    }

    #[derive(Deserialize)]
    struct CloudflareDoc<'a> {
        success: bool,
        #[serde(borrow, default)]
        result: Option<CloudflareResult<'a>>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }

    #[derive(Deserialize)]
    struct CloudflareResult<'a> {
        #[serde(borrow)]
        ipv4_cidrs: Vec<Cow<'a, str>>,
        #[serde(borrow, default)]
        ipv6_cidrs: Vec<Cow<'a, str>>,
    }

    /// Parses Cloudflare's API answer (`result.ipv4_cidrs`,
    /// `result.ipv6_cidrs`; `success` must be `true`).
    ///
    /// # Errors
    /// Not that document, `"success": false` (the API's errors are
    /// quoted), or an entry that is not a network of its array's family.
    pub fn parse_cloudflare_api(body: &[u8]) -> Result<TrustedProxies, ListError> {
        let doc: CloudflareDoc<'_> =
            serde_json::from_slice(body).map_err(|e| json_error("Cloudflare API", e))?;
        let result = match doc.result {
            Some(r) if doc.success => r,
            _ => {
                let errors = serde_json::Value::Array(doc.errors);
                return Err(ListError::new(
                    ListErrorKind::Api,
                    None,
                    format!("Cloudflare API answered without a result: errors {errors}"),
                ));
            }
        };
        two_lists(
            &result.ipv4_cidrs,
            "result.ipv4_cidrs",
            &result.ipv6_cidrs,
            "result.ipv6_cidrs",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_crlf() {
        let t =
            parse_cidr_list("  # header\r\n\r\n10.0.0.0/8 # ours\r\n192.0.2.1\r\n#x\n").unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.contains("192.0.2.1".parse().unwrap()));
        assert!(!t.contains("192.0.2.2".parse().unwrap()));
        assert!(parse_cidr_list("").unwrap().is_empty());
    }

    /// The canonical IPv4 fast path reads what the general parser reads
    /// and nothing it would refuse: every dotted-quad it is shown, written
    /// as `Display` writes it, or altered around the edges.
    #[test]
    fn canonical_v4_fast_path_agrees_with_the_general_parser() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut cases: Vec<String> = Vec::new();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let addr = Ipv4Addr::from((x >> 16) as u32);
            let len = (x % 40) as u8;
            cases.push(format!("{addr}/{len}"));
            cases.push(format!("{addr}/0{len}"));
            cases.push(format!("{addr}"));
        }
        for odd in [
            "0.0.0.0/0",
            "255.255.255.255/32",
            "256.0.0.0/8",
            "1.2.3.4/33",
            "01.2.3.4/8",
            "1.2.3.04/8",
            "1.2.3.4/",
            "1.2.3/8",
            "+1.2.3.4/8",
            "1.2.3.4 /8",
            "1.2.3.4/8 ",
            "1.2.3.4/+8",
            "1.2.3.4.5/8",
            "1.2.3.4/1000",
            "1..3.4/8",
            "1.2.3.4//8",
            "",
            "1234.0.0.0/8",
            "1.2.3.4/-1",
            "::1/128",
        ] {
            cases.push(odd.to_owned());
        }
        let mut fast = 0;
        for s in &cases {
            let general = s.parse::<IpNet>().ok();
            if let Some(n) = canonical_v4_net(s.as_bytes()) {
                fast += 1;
                assert_eq!(Some(IpNet::V4(n)), general, "{s}");
            }
        }
        // Every canonical one took the fast path.
        assert!(fast > 1500, "{fast}");
        assert_eq!(
            canonical_v4_net(b"203.0.113.7/24"),
            Some("203.0.113.7/24".parse().unwrap())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_cidr_list("10.0.0.0/8\n\n# c\nnope\n").unwrap_err();
        assert_eq!((e.kind(), e.line()), (ListErrorKind::Line, Some(4)));
        assert!(e.to_string().starts_with("line 4: `nope`"), "{e}");
        let e = parse_cidr_list("10.0.0.0/8 10.1.0.0/16\n").unwrap_err();
        assert_eq!((e.kind(), e.line()), (ListErrorKind::Line, Some(1)));
        let e = parse_cidr_list("\n::ffff:10.0.0.0/104\n").unwrap_err();
        assert_eq!((e.kind(), e.line()), (ListErrorKind::Range, Some(2)));
        let e = Format::CidrList.parse(b"10.0.0.0/8\n\xff\n").unwrap_err();
        assert_eq!((e.kind(), e.line()), (ListErrorKind::NotText, Some(2)));
    }
}
