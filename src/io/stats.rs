//! [`ListenerStats`]: what happened to every connection, counted without a
//! `tracing` subscriber; and the rate limit on per-connection warnings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Live counters of a [`ProxyAcceptor`](super::ProxyAcceptor) and of the
/// [`ProxyProtocolListener`](super::ProxyProtocolListener) built on it.
///
/// A cheap handle (an `Arc` of atomics): clone it before the listener
/// moves into `axum::serve` and read it with [`snapshot`](Self::snapshot)
/// at any time. Clones of an acceptor share one set of counters.
#[derive(Clone, Debug, Default)]
pub struct ListenerStats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    accepted: AtomicU64,
    no_header: AtomicU64,
    missing: AtomicU64,
    rejected: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    timed_out: AtomicU64,
    closed: AtomicU64,
    shed: AtomicU64,
    handshake_failed: AtomicU64,
    accept_errors: AtomicU64,
}

/// One reading of [`ListenerStats`]: monotonic totals since the acceptor
/// was created.
///
/// Every connection is counted once in `connections` and, when its
/// handshake ends, once in exactly one outcome (`accepted` through
/// `handshake_failed`); the difference is the handshakes still running
/// (or, for [`ProxyAcceptor::accept`](super::ProxyAcceptor::accept),
/// dropped unfinished by its caller).
/// New fields may be added (the struct is `non_exhaustive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections taken from the inner listener (or handed to
    /// [`ProxyAcceptor::accept`](super::ProxyAcceptor::accept)).
    pub connections: u64,
    /// Handed to the application with a PROXY header in use (including
    /// LOCAL headers, which carry no address).
    pub accepted: u64,
    /// Handed to the application without a header in use: the peer sent
    /// none ([`Mode::Optional`](super::Mode::Optional),
    /// [`Mode::Reject`](super::Mode::Reject)), its header was dropped
    /// ([`Mode::Ignore`](super::Mode::Ignore)), or nothing was read
    /// ([`Mode::Skip`](super::Mode::Skip)).
    pub no_header: u64,
    /// Closed: [`Mode::Require`](super::Mode::Require) and no PROXY signature.
    pub missing: u64,
    /// Closed: [`Mode::Reject`](super::Mode::Reject) and a PROXY signature.
    pub rejected: u64,
    /// Closed: the header broke the specification.
    pub malformed: u64,
    /// Closed: the header was longer than the cap.
    pub too_large: u64,
    /// Closed: the deadline passed (header, or header and
    /// [`Handshake`](super::Handshake) together).
    pub timed_out: u64,
    /// Closed: the peer closed or reset, or reading failed, before the
    /// header was complete.
    pub closed: u64,
    /// Closed by the listener before its handshake ended: to make room for
    /// a newer connection from a peer outside the `require`/`optional`
    /// ranges (see [`ProxyProtocolListener`](super::ProxyProtocolListener)),
    /// or because the listener was dropped.
    pub shed: u64,
    /// Closed: the [`Handshake`](super::Handshake) step after the header
    /// (e.g. TLS) failed.
    pub handshake_failed: u64,
    /// Errors from the inner listener's `accept` (no connection; e.g.
    /// `EMFILE`), each followed by a pause.
    pub accept_errors: u64,
}

/// Which counter an event goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Accepted,
    NoHeader,
    Missing,
    Rejected,
    Malformed,
    TooLarge,
    TimedOut,
    Closed,
    Shed,
    HandshakeFailed,
}

impl ListenerStats {
    /// The counters as they stand.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &*self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            connections: get(&c.connections),
            accepted: get(&c.accepted),
            no_header: get(&c.no_header),
            missing: get(&c.missing),
            rejected: get(&c.rejected),
            malformed: get(&c.malformed),
            too_large: get(&c.too_large),
            timed_out: get(&c.timed_out),
            closed: get(&c.closed),
            shed: get(&c.shed),
            handshake_failed: get(&c.handshake_failed),
            accept_errors: get(&c.accept_errors),
        }
    }

    pub(crate) fn connection(&self) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn accept_error(&self) {
        self.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn outcome(&self, outcome: Outcome) {
        let c = &*self.counters;
        let counter = match outcome {
            Outcome::Accepted => &c.accepted,
            Outcome::NoHeader => &c.no_header,
            Outcome::Missing => &c.missing,
            Outcome::Rejected => &c.rejected,
            Outcome::Malformed => &c.malformed,
            Outcome::TooLarge => &c.too_large,
            Outcome::TimedOut => &c.timed_out,
            Outcome::Closed => &c.closed,
            Outcome::Shed => &c.shed,
            Outcome::HandshakeFailed => &c.handshake_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Warnings that are rate-limited, one slot each.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Warn {
    Missing,
    Rejected,
    Malformed,
    TooLarge,
    Handshake,
    AcceptError,
}

const WARN_KINDS: usize = 6;

/// How often one kind of per-connection warning is emitted at most.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// At most one `WARN` per kind per [`WARN_INTERVAL`]; the others are
/// counted and the next `WARN` of that kind reports how many it stands for.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last emitted warning, plus one
    /// (0: never).
    last: [AtomicU64; WARN_KINDS],
    suppressed: [AtomicU64; WARN_KINDS],
}

impl Default for WarnLimiter {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            last: Default::default(),
            suppressed: Default::default(),
        }
    }
}

impl WarnLimiter {
    /// `Some(n)`: emit this warning, standing for `n` suppressed since the
    /// last one; `None`: suppressed (and counted).
    pub(crate) fn admit(&self, kind: Warn) -> Option<u64> {
        let i = kind as usize;
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let interval = WARN_INTERVAL.as_millis() as u64;
        let last = self.last[i].load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < interval {
            self.suppressed[i].fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.last[i]
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // Another connection took this interval's warning.
            self.suppressed[i].fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed[i].swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_then_the_count() {
        let l = WarnLimiter::default();
        assert_eq!(l.admit(Warn::Missing), Some(0));
        for _ in 0..9 {
            assert_eq!(l.admit(Warn::Missing), None);
        }
        // Kinds are limited separately.
        assert_eq!(l.admit(Warn::Malformed), Some(0));
        std::thread::sleep(WARN_INTERVAL + Duration::from_millis(20));
        assert_eq!(l.admit(Warn::Missing), Some(9));
        assert_eq!(l.admit(Warn::Missing), None);
    }
}
