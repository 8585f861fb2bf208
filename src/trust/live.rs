//! Trusted sets replaced while the app runs (feature `live`).
//!
//! A [`LiveTrust`] is one trusted set made of a fixed base (your own
//! proxies) and any number of named sources (provider lists). Replacing a
//! source rebuilds the whole set once, off the request path, and swaps it
//! in atomically: each request reads one set, the old one or the new one,
//! never a mix.
//!
//! Reading is lock-free. A policy holding a live set compares the set's
//! current pointer with the one its thread read last and reuses that one
//! when they agree (one atomic load, no reference count touched); after a
//! swap, the first request on each thread takes the new set through
//! `arc-swap`. A thread therefore keeps the last few sets it read alive
//! until it reads again: memory for a replaced set is freed once every
//! thread that read it has moved on.
//!
//! ```
//! use realip::resolve::{HeaderSource, Policy};
//! use realip::trust::live::LiveTrust;
//! use realip::trust::TrustedProxies;
//!
//! // Our own load balancers, always trusted; the CDN's ranges come later.
//! let live = LiveTrust::new(TrustedProxies::private());
//! let policy = Policy::builder()
//!     .live_trust(live.clone())
//!     .header(HeaderSource::CfConnectingIp)
//!     .build()?;
//! assert!(!live.contains("173.245.48.9".parse().unwrap()));
//!
//! live.set_source("cloudflare", "173.245.48.0/20".parse()?)?;
//! assert!(live.contains("173.245.48.9".parse().unwrap()));
//! assert!(live.contains("10.0.0.1".parse().unwrap()));
//! # drop(policy);
//! # Ok::<(), realip::trust::ConfigError>(())
//! ```

use super::{ConfigError, TrustedProxies};
use arc_swap::cache::Cache;
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// A trusted set that can be replaced while policies read it. Cheap to
/// clone: clones share the set.
#[derive(Clone)]
pub struct LiveTrust {
    /// Shared with the thread-local caches, which keep it alive; held
    /// directly so a request reaches it in one pointer step.
    current: Arc<ArcSwap<TrustedProxies>>,
    /// What `current` is built from; only writers take this lock.
    parts: Arc<Mutex<Parts>>,
}

struct Parts {
    base: TrustedProxies,
    sources: BTreeMap<String, Arc<TrustedProxies>>,
}

impl Parts {
    fn merged(&self) -> Result<TrustedProxies, ConfigError> {
        let mut all = self.base.clone();
        for set in self.sources.values() {
            all.merge(set)?;
        }
        Ok(all)
    }
}

impl fmt::Debug for LiveTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = self.parts();
        f.debug_struct("LiveTrust")
            .field("base", &parts.base.len())
            .field(
                "sources",
                &parts
                    .sources
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Sets each thread read last, newest first: enough for a few live
/// policies in one process without reloading on every request.
const SLOTS: usize = 4;

/// A live set's current pointer and the set this thread read last.
type Seen = Cache<Arc<ArcSwap<TrustedProxies>>, Arc<TrustedProxies>>;

thread_local! {
    static SEEN: RefCell<[Option<Seen>; SLOTS]> = const { RefCell::new([None, None, None, None]) };
}

impl LiveTrust {
    /// A live set holding `base` (always trusted, whatever the sources
    /// hold) and no source yet.
    pub fn new(base: TrustedProxies) -> Self {
        LiveTrust {
            current: Arc::new(ArcSwap::from_pointee(base.clone())),
            parts: Arc::new(Mutex::new(Parts {
                base,
                sources: BTreeMap::new(),
            })),
        }
    }

    /// A poisoned lock only means a writer panicked between two complete
    /// states; the parts are replaced whole, so they are still consistent.
    fn parts(&self) -> MutexGuard<'_, Parts> {
        self.parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, parts: &Parts) -> Result<(), ConfigError> {
        self.current.store(Arc::new(parts.merged()?));
        Ok(())
    }

    /// Replaces (or adds) the source `name` and swaps the rebuilt set in.
    ///
    /// # Errors
    /// The base and the sources together exceed
    /// [`MAX_RANGES`](super::MAX_RANGES); nothing changes then.
    pub fn set_source(&self, name: &str, set: TrustedProxies) -> Result<(), ConfigError> {
        self.set_source_shared(name, Arc::new(set))
    }

    pub(crate) fn set_source_shared(
        &self,
        name: &str,
        set: Arc<TrustedProxies>,
    ) -> Result<(), ConfigError> {
        let mut parts = self.parts();
        let old = parts.sources.insert(name.to_owned(), set);
        if let Err(e) = self.publish(&parts) {
            match old {
                Some(o) => parts.sources.insert(name.to_owned(), o),
                None => parts.sources.remove(name),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Removes the source `name` (its ranges stop being trusted); `false`
    /// when there was none.
    pub fn remove_source(&self, name: &str) -> bool {
        let mut parts = self.parts();
        if parts.sources.remove(name).is_none() {
            return false;
        }
        // Fewer networks than before always fit.
        let _ = self.publish(&parts);
        true
    }

    /// The networks source `name` contributes now, if it was set.
    pub fn source_len(&self, name: &str) -> Option<usize> {
        self.parts().sources.get(name).map(|s| s.len())
    }

    /// The whole set as requests read it now.
    pub fn snapshot(&self) -> Arc<TrustedProxies> {
        self.current.load_full()
    }

    /// Whether `ip` is trusted by the current set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.current.load().contains(ip)
    }

    /// Runs `f` on the current set, through this thread's slots or, when
    /// they cannot be used, a guard (the two paths the resolver takes).
    #[cfg(test)]
    fn with<R>(&self, mut f: impl FnMut(&TrustedProxies) -> R) -> R {
        match self.with_cached(&mut f) {
            Some(r) => r,
            None => self.with_guard(f),
        }
    }

    /// Runs `f` on the current set as this thread's slots hold it: the one
    /// this thread read last when it is still current (`arc_swap::Cache`:
    /// one relaxed load and a pointer comparison), else a fresh load kept
    /// for next time. `None`, without running `f`, when the slots
    /// cannot be used (thread teardown, or a read nested in another), and
    /// the caller reads through [`with_guard`](Self::with_guard) instead.
    ///
    /// Two entry points rather than one taking `f` for both paths: `f`
    /// (a whole address walk) then has a single call site and is inlined
    /// into the caller's frame, next to the result it fills.
    #[inline(always)]
    pub(crate) fn with_cached<R>(&self, f: impl FnOnce(&TrustedProxies) -> R) -> Option<R> {
        let mine: &ArcSwap<TrustedProxies> = &self.current;
        SEEN.try_with(|seen| {
            let mut slots = seen.try_borrow_mut().ok()?;
            // The set read last sits first: one pointer comparison.
            let cache = match &mut *slots {
                [Some(c), ..] if std::ptr::eq(c.arc_swap(), mine) => c,
                slots => self.remember(slots),
            };
            Some(f(cache.load()))
        })
        .ok()
        .flatten()
    }

    /// This set is not the one this thread read last: move its slot (or a
    /// new one, dropping the oldest) to the front.
    #[cold]
    #[inline(never)]
    fn remember<'s>(&self, slots: &'s mut [Option<Seen>; SLOTS]) -> &'s mut Seen {
        let mine: &ArcSwap<TrustedProxies> = &self.current;
        match slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|c| std::ptr::eq(c.arc_swap(), mine)))
        {
            Some(i) => slots[..=i].rotate_right(1),
            None => {
                slots.rotate_right(1);
                slots[0] = Some(Cache::new(Arc::clone(&self.current)));
            }
        }
        slots[0].get_or_insert_with(|| Cache::new(Arc::clone(&self.current)))
    }

    /// No thread-local (thread teardown) or a nested call: read through a
    /// guard.
    #[cold]
    #[inline(never)]
    pub(crate) fn with_guard<R>(&self, f: impl FnOnce(&TrustedProxies) -> R) -> R {
        f(&self.current.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn sources_compose_with_the_base_and_swap_whole() {
        let live = LiveTrust::new(set("10.0.0.0/8"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        live.set_source("a", set("192.0.2.0/24")).unwrap();
        live.set_source("b", set("198.51.100.0/24")).unwrap();
        assert!(live.with(|t| t.contains(ip("10.1.1.1")) && t.contains(ip("192.0.2.9"))));
        live.set_source("a", set("203.0.113.0/24")).unwrap();
        assert!(!live.with(|t| t.contains(ip("192.0.2.9"))));
        assert!(live.with(|t| t.contains(ip("203.0.113.1")) && t.contains(ip("198.51.100.1"))));
        assert!(live.remove_source("b"));
        assert!(!live.remove_source("b"));
        assert!(!live.contains(ip("198.51.100.1")));
        assert_eq!(live.snapshot().len(), 2);
        assert_eq!(live.source_len("a"), Some(1));
    }

    #[test]
    fn more_sets_than_slots_each_read_their_own_current_set() {
        // Six sets on one thread: the slots move the last read to the
        // front and drop the oldest, and a swap is seen on the next read.
        let lives: Vec<LiveTrust> = (0..6)
            .map(|i| LiveTrust::new(set(&format!("10.{i}.0.0/16"))))
            .collect();
        let ip = |i: usize| IpAddr::from([10, i as u8, 0, 1]);
        for round in 0..3 {
            for (i, live) in lives
                .iter()
                .enumerate()
                .chain(lives.iter().enumerate().rev())
            {
                for j in 0..6 {
                    assert_eq!(
                        live.with(|t| t.contains(ip(j))),
                        i == j || (round > 0 && j == 5 - i)
                    );
                }
            }
            // From now on set i also holds set (5 - i)'s network.
            for (i, live) in lives.iter().enumerate() {
                live.set_source("other", set(&format!("10.{}.0.0/16", 5 - i)))
                    .unwrap();
            }
        }
    }

    #[test]
    fn nested_reads_fall_back_to_a_guard() {
        let a = LiveTrust::new(set("10.0.0.0/8"));
        let b = LiveTrust::new(set("192.0.2.0/24"));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(a.with(|_| b.with(|t| t.contains(ip))));
    }

    #[test]
    fn too_many_networks_leave_the_set_unchanged() {
        use ipnet::IpNet;
        use std::net::Ipv4Addr;
        let live = LiveTrust::new(set("10.0.0.0/8"));
        live.set_source("a", set("192.0.2.0/24")).unwrap();
        let hosts = (0..super::super::MAX_RANGES as u32)
            .map(|i| IpNet::from(IpAddr::from(Ipv4Addr::from(i))));
        let big = TrustedProxies::from_nets(hosts).unwrap();
        assert!(live.set_source("a", big).is_err());
        assert_eq!(live.source_len("a"), Some(1));
        assert!(live.contains("192.0.2.1".parse().unwrap()));
    }
}
