//! Trusted proxy ranges.
//!
//! [`TrustedProxies`] is the set of networks whose forwarded headers are
//! believed. It starts empty (trusts nobody); ranges are added one by one,
//! from presets, or parsed from a list.
//!
//! Lookups cost about the same for ten ranges and for a cloud provider's
//! ten thousand: ranges are merged into sorted disjoint intervals, and a
//! bucket index over the high bits of the address narrows each lookup to
//! the few intervals of one bucket. The top table has about sixteen buckets
//! per interval (at least 1,024, at most 65,536: 256 KiB). A bucket that lies
//! wholly inside one interval, or outside all of them, records that
//! verdict in its entry: addresses of a whole `10.0.0.0/8`, say, are
//! answered by one index read. A bucket holding more than a few intervals
//! (a provider packs hundreds into one /24) gets a finer table of its own
//! over just the part they cover, so a lookup is a couple of index reads
//! and a scan of at most eight intervals (a binary search in the rare
//! bucket left coarse by the index's size budget). A prefix trie crate was not
//! needed: this is a page of code and a lookup touches a few cache lines.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as IPv4;
//! a range written in mapped form is refused, since it would silently
//! never match.
//!
//! ```
//! use realip::trust::TrustedProxies;
//!
//! let mut trusted = TrustedProxies::private();
//! trusted.add("203.0.113.0/24".parse().unwrap())?;
//! assert!(trusted.contains("10.1.2.3".parse().unwrap()));
//! assert!(trusted.contains("::ffff:203.0.113.7".parse().unwrap()));
//! assert!(!trusted.contains("198.51.100.1".parse().unwrap()));
//!
//! let parsed: TrustedProxies = "10.0.0.0/8, 2001:db8::/32 192.0.2.1".parse()?;
//! assert_eq!(parsed.len(), 3);
//! assert!("::ffff:10.0.0.0/104".parse::<TrustedProxies>().is_err());
//! # Ok::<(), realip::trust::ConfigError>(())
//! ```

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

#[cfg(feature = "fetch")]
pub mod fetch;
#[cfg(feature = "live")]
pub mod live;
pub mod providers;

/// What kind of configuration mistake a [`ConfigError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A trusted range is written in IPv4-mapped IPv6 form.
    MappedRange,
    /// A trusted range (or list) does not parse.
    InvalidRange,
    /// `trusted_hops(0)`.
    ZeroHopCount,
    /// Hop-count mode combined with recursion turned off.
    HopCountWithoutRecursion,
    /// Hop-count mode combined with trusted ranges.
    HopCountWithRanges,
    /// More trusted hops than the hop cap allows.
    HopCountAboveCap,
    /// `hop_cap(0)` or a cap above [`crate::resolve::MAX_HOP_CAP`].
    HopCap,
    /// Trust was configured but no header to read.
    NoHeaderSource,
    /// A header is configured but no proxy is trusted to send it.
    HeaderWithoutTrust,
    /// A header name contains `_` (a look-alike of a dashed name).
    UnderscoreHeaderName,
    /// More than one address header configured for one policy.
    SeveralHeaders,
    /// More than [`MAX_RANGES`] networks in one set.
    TooManyRanges,
    /// An allowed host that is neither a host name nor `*.` and one.
    InvalidAllowedHost,
    /// Context options (headers, symmetry, allowed hosts) with context off.
    ContextOff,
    /// A live set combined with fixed ranges on the same policy.
    LiveWithRanges,
    /// A setting's value does not parse or is out of range (a header name,
    /// a PROXY mode, a listener limit, a preset name).
    InvalidValue,
    /// An IP filter's refusal status is not a 4xx or 5xx status.
    RejectionStatus,
    /// A rate-limit key's IPv6 prefix is longer than 128 bits.
    Ipv6Prefix,
}

/// Most networks one [`TrustedProxies`] holds: far beyond any published
/// provider list (AWS publishes about ten thousand), and small enough that
/// interval numbers leave room for the lookup index's flag bits.
pub const MAX_RANGES: usize = 1 << 20;

/// The names [`TrustedProxies::preset`] knows.
pub const PRESETS: [&str; 4] = ["loopback", "private", "cgnat", "link-local"];

/// A policy or trusted-range configuration that cannot work, reported when
/// it is built rather than on each request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        ConfigError {
            kind,
            message: message.into(),
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// An address as an integer, bucketed by its high bits.
trait Key: Copy + Ord + Into<u128> + Default {
    /// Width of the key in bits.
    const BITS: u32;
    fn from_u128(v: u128) -> Self;
    /// The entry of `table` that holds `self`, if the table spans it.
    fn slot(self, table: &Table<Self>) -> Option<usize>;
}

impl Key for u32 {
    const BITS: u32 = 32;
    fn from_u128(v: u128) -> u32 {
        v as u32
    }
    #[inline(always)]
    fn slot(self, t: &Table<u32>) -> Option<usize> {
        let d = (self >> t.shift).wrapping_sub(t.base);
        (d < t.len).then_some(d as usize)
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    fn from_u128(v: u128) -> u128 {
        v
    }
    #[inline(always)]
    fn slot(self, t: &Table<u128>) -> Option<usize> {
        // Tables over IPv6 networks (all but the finest) bucket by the
        // high half alone: 64-bit arithmetic, half the instructions of a
        // 128-bit shift. `base < 2^64` there, and `len <= 2^16`.
        if t.shift >= 64 {
            let d = ((self >> 64) as u64 >> (t.shift - 64)).wrapping_sub(t.base as u64);
            return (d < t.len as u64).then_some(d as usize);
        }
        let d = (self >> t.shift).wrapping_sub(t.base);
        (d < t.len).then_some(d as usize)
    }
}

/// One level of the lookup index: `len` entries, one per aligned block
/// of `1 << shift` addresses, the first being block `base`.
#[derive(Clone, Copy, Default)]
struct Table<T> {
    base: T,
    len: T,
    shift: u32,
    /// Where its entries start in [`Intervals::index`].
    offset: u32,
}

/// Sorted disjoint intervals with a bucket index over the high bits.
///
/// An index entry says what its bucket holds: nothing ([`OUTSIDE`]), only
/// set addresses ([`INSIDE`]), a few intervals to scan ([`SEARCH`]: the
/// first and how many), or too many to scan: then a finer table of its
/// own ([`SUB`]) spanning just the part of the bucket they cover. A
/// provider's ranges pack hundreds of intervals into a few /24s; one
/// uniform table over its whole span would leave them in a handful of
/// buckets to binary-search, a second level splits those.
#[derive(Clone, Default)]
struct Intervals<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    /// Every table's entries, the top table's first.
    index: Vec<u32>,
    top: Table<T>,
    /// The finer tables [`SUB`] entries name.
    subs: Vec<Table<T>>,
}

/// Entry tag (top two bits): candidates to scan, the first interval in
/// bits 0..20, how many in bits 20..30.
const SEARCH: u32 = 0;
/// Entry tag: a finer table, its number in [`Intervals::subs`] below.
const SUB: u32 = 1 << 30;
/// Entry tag: no address of the bucket is in the set.
const OUTSIDE: u32 = 2 << 30;
/// Entry tag: every address of the bucket is in the set.
const INSIDE: u32 = 3 << 30;
const TAG: u32 = 3 << 30;
/// Bits of the first interval's number in a [`SEARCH`] entry; merged
/// intervals are at most the networks, which [`MAX_RANGES`] caps.
const FIRST_BITS: u32 = 20;
/// Most candidates a [`SEARCH`] entry can count.
const MAX_COUNT: usize = (1 << (30 - FIRST_BITS)) - 1;
/// A bucket with more candidates than this gets a finer table (while the
/// index stays within its size budget and [`MAX_DEPTH`]).
const SCAN: usize = 8;
/// Levels below the top table split for more than [`SCAN`] candidates;
/// deeper ones only for more than [`MAX_COUNT`].
const MAX_DEPTH: u32 = 3;
/// Fewest buckets the top table aims for: fine enough that the common wide
/// ranges (`10.0.0.0/8`, `127.0.0.0/8`, `100.64.0.0/10`) cover whole
/// buckets of the private preset, small enough (4 KiB) to stay cheap.
const MIN_BUCKETS: usize = 1 << 10;
/// Fewest buckets of a finer table.
const MIN_SUB_BUCKETS: usize = 1 << 4;

const _: () = assert!(MAX_RANGES <= 1 << FIRST_BITS);

/// Builds the index tables over the merged intervals.
struct IndexBuilder<'a, T> {
    starts: &'a [T],
    ends: &'a [T],
    index: Vec<u32>,
    subs: Vec<Table<T>>,
    /// Most entries the finer tables may add beyond the top table.
    budget: usize,
}

impl<T: Key> IndexBuilder<'_, T> {
    /// Buckets a table over `count` intervals aims for: about sixteen per
    /// interval, so that most buckets of a provider's set are decided by
    /// their entry alone (AWS's IPv6 lookups: 1.76x the instructions of a
    /// 10-network set, 1.90x with four per interval; sixteen for the top
    /// table alone gave 1.82x, for the finer ones alone 1.93x).
    fn target(count: usize, min: usize) -> usize {
        (count.next_power_of_two() * 16).clamp(min, 1 << 16)
    }

    /// A table over `lo..=hi` for the `count` intervals from `first`
    /// (those reaching into the range), finer tables for its crowded
    /// buckets appended after its own entries.
    fn table(&mut self, first: usize, count: usize, lo: u128, hi: u128, depth: u32) -> Table<T> {
        let min = if depth == 0 {
            MIN_BUCKETS
        } else {
            MIN_SUB_BUCKETS
        };
        let target = Self::target(count, min) as u128;
        // The smallest shift leaving fewer than `target` buckets: none
        // below the one that divides the span's width by `target`.
        let width_bits = 128 - (hi - lo).leading_zeros();
        let mut shift = width_bits.saturating_sub(target.trailing_zeros());
        while shift < T::BITS - 1 && (hi >> shift) - (lo >> shift) >= target {
            shift += 1;
        }
        let base = lo >> shift;
        let len = ((hi >> shift) - base + 1) as usize;
        let offset = self.index.len();
        self.index.resize(offset + len, OUTSIDE);
        let low_mask = (1u128 << shift) - 1;
        let end = first + count;
        // Bucket starts only grow, so the first interval reaching each one
        // is found by one sweep over the sorted ends.
        let mut j = first;
        for k in 0..len {
            let bucket_start = (base + k as u128) << shift;
            let bucket_end = bucket_start | low_mask;
            while j < end && self.ends[j].into() < bucket_start {
                j += 1;
            }
            let entry = if j == end || self.starts[j].into() > bucket_end {
                OUTSIDE
            } else if self.starts[j].into() <= bucket_start && self.ends[j].into() >= bucket_end {
                INSIDE
            } else {
                let c = self.starts[j..end]
                    .iter()
                    .take_while(|&&s| s.into() <= bucket_end)
                    .count();
                let wanted = c > MAX_COUNT
                    || (c > SCAN
                        && depth < MAX_DEPTH
                        && self.budget >= Self::target(c, MIN_SUB_BUCKETS));
                if wanted {
                    self.budget = self.budget.saturating_sub(Self::target(c, MIN_SUB_BUCKETS));
                    let sub_lo = bucket_start.max(self.starts[j].into());
                    let sub_hi = bucket_end.min(self.ends[j + c - 1].into());
                    let sub = self.table(j, c, sub_lo, sub_hi, depth + 1);
                    self.subs.push(sub);
                    SUB | (self.subs.len() - 1) as u32
                } else {
                    SEARCH | ((c as u32) << FIRST_BITS) | j as u32
                }
            };
            self.index[offset + k] = entry;
        }
        Table {
            base: T::from_u128(base),
            len: T::from_u128(len as u128),
            shift,
            offset: offset as u32,
        }
    }
}

impl<T: Key> Intervals<T> {
    fn build(mut raw: Vec<(T, T)>) -> Self {
        raw.sort_unstable();
        let mut starts: Vec<T> = Vec::with_capacity(raw.len());
        let mut ends: Vec<T> = Vec::with_capacity(raw.len());
        for (s, e) in raw {
            if let Some(last) = ends.last_mut() {
                // Merge overlapping or touching intervals.
                let last_u: u128 = (*last).into();
                if s.into() <= last_u.saturating_add(1) {
                    if e > *last {
                        *last = e;
                    }
                    continue;
                }
            }
            starts.push(s);
            ends.push(e);
        }
        let n = starts.len();
        if n == 0 {
            return Intervals::default();
        }
        let mut b = IndexBuilder {
            starts: &starts,
            ends: &ends,
            index: Vec::new(),
            subs: Vec::new(),
            // Finer tables may add eight entries per interval, plus
            // 256 KiB whatever the size (AWS's IPv6 set needs more than
            // the first alone); a crafted list cannot blow the index up.
            budget: 8 * n + (1 << 16),
        };
        let top = b.table(0, n, starts[0].into(), ends[n - 1].into(), 0);
        let (index, subs) = (b.index, b.subs);
        Intervals {
            starts,
            ends,
            index,
            top,
            subs,
        }
    }

    #[inline]
    fn contains(&self, x: T) -> bool {
        // The top table (at offset 0) in line: most lookups end at its
        // entry. An empty set has an empty top table, which spans nothing.
        let Some(b) = x.slot(&self.top) else {
            return false;
        };
        let Some(&entry) = self.index.get(b) else {
            return false;
        };
        // Decided entries sort above the others, and carry no number.
        if entry >= OUTSIDE {
            return entry == INSIDE;
        }
        self.below(x, entry)
    }

    /// The rest of a lookup whose top entry was not decided: a scan, or
    /// finer tables down to one.
    #[inline]
    fn below(&self, x: T, mut entry: u32) -> bool {
        loop {
            if entry & SUB == 0 {
                return self.search(x, entry);
            }
            let Some(table) = self.subs.get((entry & !TAG) as usize) else {
                return false;
            };
            let Some(b) = x.slot(table) else {
                return false;
            };
            let Some(&e) = self.index.get(table.offset as usize + b) else {
                return false;
            };
            if e >= OUTSIDE {
                return e == INSIDE;
            }
            entry = e;
        }
    }

    /// Whether `x` is in one of the few intervals a [`SEARCH`] entry names.
    #[inline]
    fn search(&self, x: T, entry: u32) -> bool {
        let first = (entry & ((1 << FIRST_BITS) - 1)) as usize;
        let count = ((entry & !TAG) >> FIRST_BITS) as usize;
        let Some(starts) = self.starts.get(first..first + count) else {
            return false;
        };
        // Last interval starting at or before x: scan short runs, search
        // the long ones a finer table was not built for.
        let k = if count <= SCAN {
            starts.iter().take_while(|&&s| s <= x).count()
        } else {
            starts.partition_point(|&s| s <= x)
        };
        k > 0 && self.ends.get(first + k - 1).is_some_and(|&e| e >= x)
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

/// A set of trusted proxy networks with sub-linear lookup.
///
/// Cheap to query, built once: adding a range rebuilds the lookup
/// structure, so add ranges in bulk with [`TrustedProxies::from_nets`] or
/// [`TrustedProxies::extend`] when there are many.
#[derive(Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    v4: Intervals<u32>,
    v6: Intervals<u128>,
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let mut d = f.debug_struct("TrustedProxies");
        d.field("len", &self.nets.len());
        if self.nets.len() <= SHOWN {
            d.field("nets", &self.nets);
        } else {
            d.field("first", &&self.nets[..SHOWN]);
        }
        d.finish()
    }
}

const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];
const PRIVATE: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];
const CGNAT: [&str; 1] = ["100.64.0.0/10"];
const LINK_LOCAL: [&str; 2] = ["169.254.0.0/16", "fe80::/10"];

fn preset(list: &'static [&'static str]) -> impl Iterator<Item = IpNet> {
    list.iter()
        .map(|s| s.parse().expect("preset ranges are valid"))
}

fn too_many() -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::TooManyRanges,
        format!("more than {MAX_RANGES} trusted networks in one set"),
    )
}

fn check(net: IpNet) -> Result<IpNet, ConfigError> {
    if let IpNet::V6(v6) = net {
        let mapped =
            Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96).expect("valid prefix");
        if mapped.contains(&v6) {
            return Err(ConfigError::new(
                ConfigErrorKind::MappedRange,
                format!(
                    "trusted range {net} is in IPv4-mapped IPv6 form; addresses are \
                     normalized to IPv4 before matching, so write the IPv4 range instead"
                ),
            ));
        }
    }
    Ok(net.trunc())
}

impl TrustedProxies {
    /// An empty set: trusts nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loopback: `127.0.0.0/8` and `::1`.
    pub fn loopback() -> Self {
        Self::from_valid(preset(&LOOPBACK))
    }

    /// Private networks: RFC 1918 (`10/8`, `172.16/12`, `192.168/16`),
    /// IPv6 ULA `fc00::/7`, and both loopbacks.
    ///
    /// CGNAT and link-local are not in it: a carrier's CGNAT range holds
    /// many subscribers, and link-local addresses are reachable by any host
    /// on the same link, so trusting either lets those clients forge
    /// headers. Add [`cgnat`](Self::cgnat) or [`link_local`](Self::link_local)
    /// only where your own proxies live there.
    pub fn private() -> Self {
        Self::from_valid(preset(&PRIVATE).chain(preset(&LOOPBACK)))
    }

    /// Shared address space (CGNAT, RFC 6598): `100.64.0.0/10`. Some
    /// platforms put their load balancers there; so do carriers, for their
    /// subscribers.
    pub fn cgnat() -> Self {
        Self::from_valid(preset(&CGNAT))
    }

    /// Link-local: `169.254.0.0/16` and `fe80::/10`.
    pub fn link_local() -> Self {
        Self::from_valid(preset(&LINK_LOCAL))
    }

    /// A preset by name: `loopback`, `private`, `cgnat` or `link-local`
    /// ([`PRESETS`]), for settings read from text. `None` for any other name.
    pub fn preset(name: &str) -> Option<Self> {
        Some(match name {
            "loopback" => Self::loopback(),
            "private" => Self::private(),
            "cgnat" => Self::cgnat(),
            "link-local" => Self::link_local(),
            _ => return None,
        })
    }

    fn from_valid(nets: impl Iterator<Item = IpNet>) -> Self {
        let mut t = Self::new();
        t.nets.extend(nets);
        t.rebuild();
        t
    }

    /// Builds a set from many networks at once.
    pub fn from_nets<I: IntoIterator<Item = IpNet>>(nets: I) -> Result<Self, ConfigError> {
        let mut t = Self::new();
        t.extend(nets)?;
        Ok(t)
    }

    /// A set of networks [`check`] already passed (a parsed provider list),
    /// built without checking each again.
    #[cfg(feature = "providers")]
    pub(crate) fn from_checked(nets: Vec<IpNet>) -> Result<Self, ConfigError> {
        if nets.len() > MAX_RANGES {
            return Err(too_many());
        }
        let mut t = Self::new();
        t.nets = nets;
        t.rebuild();
        Ok(t)
    }

    /// Adds one network (host bits are cleared: `10.1.2.3/8` is `10.0.0.0/8`).
    ///
    /// # Errors
    /// A range inside `::ffff:0:0/96` (IPv4-mapped form).
    pub fn add(&mut self, net: IpNet) -> Result<&mut Self, ConfigError> {
        self.extend([net])
    }

    /// Adds many networks, rebuilding the lookup structure once.
    ///
    /// # Errors
    /// As [`TrustedProxies::add`]; nothing is added if any range is refused.
    pub fn extend<I: IntoIterator<Item = IpNet>>(
        &mut self,
        nets: I,
    ) -> Result<&mut Self, ConfigError> {
        let start = self.nets.len();
        for net in nets {
            let checked = check(net).and_then(|n| {
                if self.nets.len() < MAX_RANGES {
                    Ok(n)
                } else {
                    Err(too_many())
                }
            });
            match checked {
                Ok(n) => self.nets.push(n),
                Err(e) => {
                    self.nets.truncate(start);
                    return Err(e);
                }
            }
        }
        self.rebuild();
        Ok(self)
    }

    /// Adds every network of `other`.
    ///
    /// # Errors
    /// The two sets together hold more than [`MAX_RANGES`] networks;
    /// nothing is added then.
    pub fn merge(&mut self, other: &TrustedProxies) -> Result<&mut Self, ConfigError> {
        if self.nets.len() + other.nets.len() > MAX_RANGES {
            return Err(too_many());
        }
        self.nets.extend_from_slice(&other.nets);
        self.rebuild();
        Ok(self)
    }

    fn rebuild(&mut self) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in &self.nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        self.v4 = Intervals::build(v4);
        self.v6 = Intervals::build(v6);
    }

    /// Whether `ip` is inside a trusted range. IPv4-mapped IPv6 is looked
    /// up as IPv4.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bits(crate::forwarded::bits_of(ip))
    }

    /// Lookup of the 128-bit form (IPv4 as mapped IPv6).
    #[inline]
    pub(crate) fn contains_bits(&self, bits: u128) -> bool {
        if crate::forwarded::is_v4_bits(bits) {
            self.v4.contains(bits as u32)
        } else {
            self.v6.contains(bits)
        }
    }

    /// Number of networks added (before merging overlaps).
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// Whether no network was added (the set trusts nobody).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Number of disjoint intervals after merging overlaps, IPv4 and IPv6.
    pub fn interval_count(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// The networks as added (host bits cleared).
    pub fn iter(&self) -> impl Iterator<Item = &IpNet> + '_ {
        self.nets.iter()
    }
}

impl FromStr for TrustedProxies {
    type Err = ConfigError;

    /// Parses networks or single addresses separated by commas and/or
    /// whitespace: `"10.0.0.0/8, 192.0.2.1 2001:db8::/32"`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mut nets = Vec::new();
        for part in s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let net = match part.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(IpAddr::V4(a)) => IpNet::V4(Ipv4Net::from(a)),
                    Ok(IpAddr::V6(a)) => IpNet::V6(Ipv6Net::from(a)),
                    Err(_) => {
                        return Err(ConfigError::new(
                            ConfigErrorKind::InvalidRange,
                            format!("`{part}` is neither a network (a.b.c.d/n) nor an address"),
                        ))
                    }
                },
            };
            nets.push(net);
        }
        Self::from_nets(nets)
    }
}

impl TryFrom<Vec<IpNet>> for TrustedProxies {
    type Error = ConfigError;

    fn try_from(nets: Vec<IpNet>) -> Result<Self, ConfigError> {
        Self::from_nets(nets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn set(list: &[&str]) -> TrustedProxies {
        TrustedProxies::from_nets(list.iter().map(|s| s.parse().unwrap())).unwrap()
    }

    fn has(t: &TrustedProxies, ip: &str) -> bool {
        t.contains(ip.parse().unwrap())
    }

    #[test]
    fn presets_by_name() {
        for name in PRESETS {
            let set = TrustedProxies::preset(name).unwrap();
            assert!(!set.is_empty(), "{name}");
        }
        let same = |name, set: TrustedProxies| {
            let by_name: Vec<_> = TrustedProxies::preset(name)
                .unwrap()
                .iter()
                .copied()
                .collect();
            assert_eq!(by_name, set.iter().copied().collect::<Vec<_>>(), "{name}");
        };
        same("loopback", TrustedProxies::loopback());
        same("private", TrustedProxies::private());
        same("cgnat", TrustedProxies::cgnat());
        same("link-local", TrustedProxies::link_local());
        for other in ["Private", "link_local", "", "10.0.0.0/8", "cloudflare"] {
            assert!(TrustedProxies::preset(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn empty_trusts_nobody() {
        let t = TrustedProxies::new();
        assert!(!has(&t, "127.0.0.1"));
        assert!(!has(&t, "::1"));
    }

    #[test]
    fn boundaries_and_merging() {
        let t = set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "0.0.0.0/32"]);
        assert_eq!(t.interval_count(), (2, 0));
        assert!(has(&t, "10.0.0.0"));
        assert!(has(&t, "10.0.1.255"));
        assert!(!has(&t, "10.0.2.0"));
        assert!(!has(&t, "9.255.255.255"));
        assert!(has(&t, "0.0.0.0"));
        assert!(!has(&t, "0.0.0.1"));
        let all = set(&["0.0.0.0/0", "::/0"]);
        assert!(has(&all, "255.255.255.255"));
        assert!(has(&all, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn presets() {
        let p = TrustedProxies::private();
        for ip in [
            "10.9.8.7",
            "172.31.255.255",
            "192.168.0.1",
            "fd00::1",
            "::1",
            "127.0.0.1",
        ] {
            assert!(has(&p, ip), "{ip}");
        }
        // CGNAT and link-local are opt-in: a carrier's subscribers and any
        // host on the link must not be able to forge headers by default.
        for ip in [
            "172.32.0.1",
            "100.64.0.1",
            "100.127.0.1",
            "169.254.1.1",
            "fe80::1",
            "8.8.8.8",
            "2001:db8::1",
        ] {
            assert!(!has(&p, ip), "{ip}");
        }
        let c = TrustedProxies::cgnat();
        assert!(has(&c, "100.64.0.1") && has(&c, "100.127.255.255"));
        assert!(!has(&c, "100.128.0.1") && !has(&c, "10.0.0.1") && c.len() == 1);
        let ll = TrustedProxies::link_local();
        assert!(has(&ll, "169.254.1.1") && has(&ll, "fe80::1") && ll.len() == 2);
        assert!(!has(&ll, "fd00::1"));
        let l = TrustedProxies::loopback();
        assert!(has(&l, "127.255.0.1") && has(&l, "::1") && !has(&l, "10.0.0.1"));
    }

    #[test]
    fn mapped_ranges_refused_and_mapped_addresses_normalized() {
        let mut t = TrustedProxies::new();
        let err = t.add("::ffff:10.0.0.0/104".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::MappedRange);
        assert!(err.to_string().contains("IPv4-mapped"));
        assert!(t.is_empty());
        t.add("10.0.0.0/8".parse().unwrap()).unwrap();
        assert!(has(&t, "::ffff:10.1.1.1"));
        // Supersets of the mapped block are allowed (and do not match mapped
        // addresses, which are IPv4 by then).
        let v6_all = TrustedProxies::from_nets(["::/0".parse().unwrap()]).unwrap();
        assert!(has(&v6_all, "2001:db8::1"));
        assert!(!has(&v6_all, "10.0.0.1"));
        assert!(!has(&v6_all, "::ffff:10.0.0.1"));
    }

    #[test]
    fn more_than_max_ranges_is_refused_and_adds_nothing() {
        let host = |i: usize| IpNet::from(IpAddr::from(Ipv4Addr::from(i as u32)));
        let mut t = TrustedProxies::from_nets(["10.0.0.0/8".parse().unwrap()]).unwrap();
        let err = t.extend((0..MAX_RANGES).map(host)).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::TooManyRanges);
        assert_eq!(t.iter().count(), 1);
        assert!(t.contains("10.1.2.3".parse().unwrap()));

        let full = TrustedProxies::from_nets((0..MAX_RANGES).map(host)).unwrap();
        let err = t.merge(&full).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::TooManyRanges);
        assert_eq!(t.iter().count(), 1);
    }

    /// Both edges of every bucket of every table of `iv`, as addresses.
    fn bucket_edges<T: Key>(iv: &Intervals<T>, v6: bool) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for t in std::iter::once(&iv.top).chain(&iv.subs) {
            let (base, len): (u128, u128) = (t.base.into(), t.len.into());
            for k in 0..len {
                let start = (base + k) << t.shift;
                let end = start | ((1u128 << t.shift) - 1);
                for v in [start.wrapping_sub(1), start, end, end.wrapping_add(1)] {
                    out.push(if v6 {
                        IpAddr::from(Ipv6Addr::from(v))
                    } else {
                        IpAddr::from(Ipv4Addr::from(v as u32))
                    });
                }
            }
        }
        out
    }

    /// `contains` agrees with a linear scan over `nets` at both edges of
    /// every bucket of every table, at each network's edges and one past
    /// them, and at `more`.
    fn agrees_at_edges(nets: &[IpNet], more: &[IpAddr]) -> TrustedProxies {
        let t = TrustedProxies::from_nets(nets.iter().copied()).unwrap();
        let linear = |ip: IpAddr| nets.iter().any(|n| n.contains(&ip));
        let mut probes = bucket_edges(&t.v4, false);
        probes.extend(bucket_edges(&t.v6, true));
        probes.extend_from_slice(more);
        for n in nets {
            for ip in [n.network(), n.broadcast()] {
                probes.push(ip);
                probes.push(match ip {
                    IpAddr::V4(a) => Ipv4Addr::from(u32::from(a).wrapping_add(1)).into(),
                    IpAddr::V6(a) => Ipv6Addr::from(u128::from(a).wrapping_add(1)).into(),
                });
            }
        }
        for ip in probes {
            let ip = match ip {
                IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            assert_eq!(t.contains(ip), linear(ip), "{ip}");
        }
        t
    }

    /// Buckets answered from the index alone (wholly inside or outside)
    /// agree with a linear scan at both edges of every bucket and of every
    /// network, for small sets whose few ranges span a wide space.
    #[test]
    fn decided_buckets_agree_with_linear_scan() {
        let sets: [&[&str]; 5] = [
            &[
                "10.0.0.0/8",
                "127.0.0.0/8",
                "192.168.0.0/16",
                "::1/128",
                "fc00::/7",
            ],
            &["0.0.0.0/1", "128.0.0.0/2", "255.255.255.255/32"],
            &["1.2.3.4/32", "200.0.0.0/5", "8000::/1"],
            &["0.0.0.0/0", "::/0"],
            &["10.0.0.0/9", "10.128.0.0/9", "11.0.0.0/8", "2001:db8::/32"],
        ];
        for list in sets {
            let mut nets: Vec<IpNet> = list.iter().map(|s| s.parse().unwrap()).collect();
            nets.extend(TrustedProxies::private().iter().copied());
            agrees_at_edges(&nets, &[]);
        }
    }

    /// Ranges packed the way a provider publishes them (hundreds of small
    /// prefixes inside a few /24s, far apart) get finer tables for their
    /// crowded buckets, and lookups through them agree with a linear scan
    /// at every bucket edge of every table and at random addresses inside
    /// the clusters.
    #[test]
    fn crowded_buckets_get_finer_tables_that_agree_with_linear_scan() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let clusters6: [u128; 3] = [0x2600_1f00 << 96, 0x2406_da00 << 96, 0x2a05_d000 << 96];
        let clusters4: [u32; 2] = [0x3400_0000, 0x0340_0000];
        let mut nets = Vec::new();
        let mut more = Vec::new();
        for i in 0..1000u64 {
            let r = next();
            // IPv6: /36 to /64 inside one of three /24s.
            let c = clusters6[(i % 3) as usize];
            let len6 = 36 + (r % 29) as u8;
            let addr = c | (u128::from(next()) << 40);
            nets.push(IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(addr), len6).unwrap().trunc(),
            ));
            more.push(IpAddr::V6(Ipv6Addr::from(c | (u128::from(next()) << 40))));
            // IPv4: /20 to /30 inside one of two /10s.
            let c4 = clusters4[(i % 2) as usize];
            let len4 = 20 + (r % 11) as u8;
            let a4 = c4 | ((next() as u32) >> 10);
            nets.push(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(a4), len4).unwrap().trunc(),
            ));
            more.push(IpAddr::V4(Ipv4Addr::from(c4 | ((next() as u32) >> 10))));
        }
        let t = agrees_at_edges(&nets, &more);
        assert!(!t.v6.subs.is_empty() && !t.v4.subs.is_empty());
        // The finer tables leave few candidates to scan per bucket.
        for iv in [&t.v4.index, &t.v6.index] {
            let most = iv
                .iter()
                .filter(|&&e| e & TAG == SEARCH)
                .map(|&e| (e & !TAG) >> FIRST_BITS)
                .max()
                .unwrap();
            assert!(most as usize <= SCAN, "{most}");
        }
    }

    #[test]
    fn agrees_with_linear_scan() {
        // Deterministic pseudo-random ranges of many lengths.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut nets = Vec::new();
        for _ in 0..3000 {
            let r = next();
            let len = 8 + (r % 25) as u8;
            nets.push(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from((r >> 32) as u32), len)
                    .unwrap()
                    .trunc(),
            ));
            let len6 = 16 + (r % 100) as u8;
            let hi = (u128::from(next()) << 64) | u128::from(next());
            nets.push(IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(hi | (1 << 127)), len6)
                    .unwrap()
                    .trunc(),
            ));
        }
        let t = TrustedProxies::from_nets(nets.clone()).unwrap();
        for _ in 0..3000 {
            let r = next();
            let v4 = IpAddr::V4(Ipv4Addr::from(r as u32));
            let v6 = IpAddr::V6(Ipv6Addr::from((u128::from(r) << 64) | u128::from(next())));
            for ip in [v4, v6] {
                assert_eq!(t.contains(ip), nets.iter().any(|n| n.contains(&ip)), "{ip}");
            }
        }
        // Every network's edges are inside.
        for n in &nets {
            assert!(t.contains(n.network()) && t.contains(n.broadcast()), "{n}");
        }
    }
}
