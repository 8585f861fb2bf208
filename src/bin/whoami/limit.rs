//! `--rate-limit N`: N requests per second per client, in bursts of up to
//! N, keyed by [`RateLimitKey`] (IPv6 grouped by `--ipv6-prefix`).
//!
//! The generic cell rate algorithm in a few lines, so the debugging tool's
//! first build stays small; apps use `tower_governor` with
//! `realip::governor::RealIpKeyExtractor` (the README recipe).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use realip::rate_limit::RateLimitKey;
use realip::RealIp;

/// Clients kept before expired entries are dropped.
const PRUNE_AT: usize = 10_000;

/// Per-client theoretical arrival times.
#[derive(Debug)]
pub(crate) struct Limiter {
    key: RateLimitKey,
    /// Time one request takes from a bucket.
    period: Duration,
    /// How far ahead of now a client may run: the burst.
    burst: Duration,
    clients: Mutex<HashMap<IpAddr, Instant>>,
}

impl Limiter {
    /// `n` requests per second (n ≥ 1), bursts of `n`.
    pub(crate) fn new(n: u32, key: RateLimitKey) -> Self {
        let period = Duration::from_secs(1) / n.max(1);
        Limiter {
            key,
            period,
            burst: period * n.max(1),
            clients: Mutex::default(),
        }
    }

    /// `Err(wait)` when `client` has used its burst.
    fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= PRUNE_AT {
            clients.retain(|_, tat| *tat > now);
        }
        let tat = clients.get(&client).map_or(now, |&t| t.max(now));
        let next = tat + self.period;
        if next.duration_since(now) > self.burst {
            return Err(next.duration_since(now) - self.burst);
        }
        clients.insert(client, next);
        Ok(())
    }
}

/// The middleware: 429 with `Retry-After` (whole seconds, rounded up)
/// once a client's burst is spent.
pub(crate) async fn limit(
    State(limiter): State<Arc<Limiter>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(real) = RealIp::from_extensions(req.extensions()) else {
        // whoami always resolves first; fail closed should that change.
        return (StatusCode::INTERNAL_SERVER_ERROR, "no resolved client\n").into_response();
    };
    match limiter.check(limiter.key.key(real), Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                format!("too many requests: wait {secs} s\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_of_n_then_one_per_period() {
        let l = Limiter::new(4, RateLimitKey::new());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        let wait = l.check(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(250));
        // Another client has its own bucket.
        assert_eq!(l.check(b, t0), Ok(()));
        // One token back after one period, not two.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(l.check(a, t1), Ok(()));
        assert!(l.check(a, t1).is_err());
        // A full burst back after a second.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..4 {
            assert_eq!(l.check(a, t2), Ok(()));
        }
        assert!(l.check(a, t2).is_err());
    }
}
