//! Provider lists fetched over HTTPS and kept current (feature `fetch`).
//!
//! A [`Refresher`] fetches each [`Source`] on start and then on an
//! interval (with jitter, so a fleet does not hit the provider at once),
//! and swaps every good list into a [`LiveTrust`]. It never trusts less
//! because a download went wrong:
//!
//! - every fetch has a time-out and a size cap, and sends `If-None-Match`
//!   / `If-Modified-Since` when the last answer carried `ETag` /
//!   `Last-Modified` (a `304` confirms the list it has);
//! - a list that does not parse, is empty, or holds fewer than half the
//!   networks of the last good one (by default) is refused and the last
//!   good list stays;
//! - given a cache directory, each good body is kept on disk and read back
//!   at start when the provider cannot be reached;
//! - each refresh of each source emits one `tracing` event (target
//!   `realip::trust::fetch`) saying what happened, and a warning on every
//!   refresh while a source's list is older than the maximum age.
//!
//! Redirects are not followed (a `3xx` is a failed fetch): give the final
//! URL. [`Refresher::status`] reports each source's ranges, age and last
//! error.
//!
//! ```no_run
//! use realip::resolve::HeaderSource;
//! use realip::trust::fetch::{Refresher, Source};
//! use realip::trust::live::LiveTrust;
//! use realip::trust::TrustedProxies;
//! use realip::RealIpLayer;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let live = LiveTrust::new(TrustedProxies::new());
//! let refresher = Refresher::builder(live.clone())
//!     .source(Source::cloudflare())
//!     .interval(Duration::from_secs(3600))
//!     .cache_dir("/var/cache/myapp/ranges")
//!     .start()
//!     .await?;
//! let layer = RealIpLayer::builder()
//!     .live_trust(live)
//!     .header(HeaderSource::CfConnectingIp)
//!     .build()?;
//! // Keep `refresher` alive as long as the app: dropping it stops refreshing.
//! # drop((refresher, layer));
//! # Ok(())
//! # }
//! ```

use super::live::LiveTrust;
use super::providers::ListError;
use super::{ConfigError, TrustedProxies};
use client::Fetched;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

mod cache;
mod client;
mod source;

pub use source::{Source, AWS_URL, CLOUDFLARE_URL, FASTLY_URL, GOOGLE_CLOUD_URL};

/// Default time between refreshes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
/// Default deadline for one fetch (connect, TLS, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default size cap for one body: the AWS list is about 2 MB.
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
/// Default age past which a source's list is reported stale.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why a fetch, or a list, was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshError {
    /// A source name or URL that cannot be used.
    InvalidSource(String),
    /// Connecting, TLS or the HTTP exchange failed.
    Connect(String),
    /// The server answered with this status (not `200` or `304`).
    Status(u16),
    /// The fetch did not finish within the time-out.
    Timeout(Duration),
    /// The body is larger than the size cap.
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The body does not parse as the source's format.
    Parse(ListError),
    /// The list holds no network.
    Empty,
    /// The list holds far fewer networks than the last good one.
    Shrunk {
        /// Networks in the last good list.
        before: usize,
        /// Networks in the refused one.
        after: usize,
    },
    /// The networks do not fit in the live set.
    Range(ConfigError),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::InvalidSource(m) => f.write_str(m),
            RefreshError::Connect(m) => write!(f, "fetch failed: {m}"),
            RefreshError::Status(s) => write!(f, "server answered HTTP {s}"),
            RefreshError::Timeout(d) => write!(f, "no complete answer within {d:?}"),
            RefreshError::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            RefreshError::Parse(e) => write!(f, "list refused: {e}"),
            RefreshError::Empty => f.write_str("list refused: it holds no network"),
            RefreshError::Shrunk { before, after } => write!(
                f,
                "list refused: {after} networks where the last good list had {before}"
            ),
            RefreshError::Range(e) => write!(f, "list refused: {e}"),
        }
    }
}

impl std::error::Error for RefreshError {}

/// What [`RefresherBuilder::start`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Startup {
    /// Retry each source until a good list arrives or the deadline passes;
    /// then use its disk cache; a source with neither fails the start.
    Wait(Duration),
    /// Return at once with whatever the disk cache holds (a source without
    /// a cache starts empty) and fetch in the background right away.
    Cache,
}

/// Why the refresher did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// A setting that cannot work.
    Config(String),
    /// A source gave no good list before the deadline and has no cache.
    NoList {
        /// The source's name.
        source: String,
        /// Its last fetch error.
        error: RefreshError,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(m) => f.write_str(m),
            StartError::NoList { source, error } => write!(
                f,
                "source `{source}`: no good list and no cached one ({error})"
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// Configures a [`Refresher`].
#[derive(Debug)]
#[must_use]
pub struct RefresherBuilder {
    live: LiveTrust,
    sources: Vec<Source>,
    interval: Duration,
    jitter: f64,
    timeout: Duration,
    max_bytes: usize,
    max_age: Duration,
    min_kept: f64,
    cache_dir: Option<PathBuf>,
    roots: Vec<CertificateDer<'static>>,
    startup: Startup,
}

impl RefresherBuilder {
    /// Adds a source; its networks go into the live set under its name.
    pub fn source(mut self, source: Source) -> Self {
        self.sources.push(source);
        self
    }

    /// Time between refreshes ([`DEFAULT_INTERVAL`]); at least 10 ms.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// Each wait is the interval times a random factor in
    /// `1 ± fraction` (default 0.1, at most 0.5).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Deadline for one fetch ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest body accepted ([`DEFAULT_MAX_BYTES`]).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// A list older than this (since it was last fetched or confirmed) is
    /// reported stale on every refresh ([`DEFAULT_MAX_AGE`]).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// A new list with fewer than `fraction` times the networks of the
    /// last good one is refused (default 0.5; 0 turns the check off).
    pub fn min_kept(mut self, fraction: f64) -> Self {
        self.min_kept = fraction;
        self
    }

    /// Keeps each source's last good body in `dir` and reads it back at
    /// start when the provider cannot be reached.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Trusts this CA certificate (DER) for HTTPS instead of the bundled
    /// Mozilla roots (repeatable: every given one is trusted).
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(CertificateDer::from(der.into()));
        self
    }

    /// What start-up waits for (default: `Startup::Wait` of the fetch
    /// time-out).
    pub fn startup(mut self, startup: Startup) -> Self {
        self.startup = startup;
        self
    }

    /// Loads the caches, fetches as [`Startup`] says, then refreshes in
    /// the background until the [`Refresher`] is dropped. Needs a tokio
    /// runtime with the timer enabled.
    ///
    /// # Errors
    /// A setting that cannot work, or (with `Startup::Wait`) a source with
    /// no good list and no cache.
    pub async fn start(self) -> Result<Refresher, StartError> {
        let config = |m: String| Err(StartError::Config(m));
        if self.sources.is_empty() {
            return config("a refresher needs at least one source".into());
        }
        for (i, s) in self.sources.iter().enumerate() {
            if self.sources[..i].iter().any(|o| o.name == s.name) {
                return config(format!("source `{}` is given twice", s.name));
            }
        }
        if self.interval < Duration::from_millis(10) || self.interval > Duration::from_secs(1 << 30)
        {
            return config(format!("interval {:?} is out of range", self.interval));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return config(format!("jitter {} is not within 0..=0.5", self.jitter));
        }
        if !(0.0..=1.0).contains(&self.min_kept) {
            return config(format!("min_kept {} is not within 0..=1", self.min_kept));
        }
        if self.timeout.is_zero() || self.max_bytes == 0 {
            return config("timeout and max_bytes must be above zero".into());
        }
        let mut roots = RootCertStore::empty();
        if self.roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for der in self.roots {
            roots
                .add(der)
                .map_err(|e| StartError::Config(format!("root certificate refused: {e}")))?;
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StartError::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let state = Arc::new(State {
            live: self.live,
            sources: self
                .sources
                .into_iter()
                .map(|source| Entry {
                    source,
                    at: Mutex::new(SourceState::default()),
                })
                .collect(),
            tls: TlsConnector::from(Arc::new(tls)),
            timeout: self.timeout,
            max_bytes: self.max_bytes,
            max_age: self.max_age,
            min_kept: self.min_kept,
            cache_dir: self.cache_dir,
            running: tokio::sync::Mutex::new(()),
        });
        for entry in &state.sources {
            state.load_cache(entry).await;
        }
        let fetch_now = match self.startup {
            Startup::Wait(deadline) => {
                state.wait_for_lists(deadline).await?;
                false
            }
            Startup::Cache => true,
        };
        let (interval, jitter) = (self.interval, self.jitter);
        let task = tokio::spawn({
            let state = Arc::clone(&state);
            async move {
                if fetch_now {
                    state.refresh_all().await;
                }
                loop {
                    tokio::time::sleep(jittered(interval, jitter)).await;
                    state.refresh_all().await;
                }
            }
        });
        Ok(Refresher { state, task })
    }
}

/// Keeps provider lists current in a [`LiveTrust`]; refreshing stops
/// when it is dropped (the live set keeps its last lists).
#[derive(Debug)]
pub struct Refresher {
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One source's state as [`Refresher::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// Networks in its current list (0 before the first good one).
    pub ranges: usize,
    /// Time since the list was last fetched or confirmed (`None` before
    /// the first good one); read from the cache's record at start.
    pub age: Option<Duration>,
    /// Whether the list in use was read from the disk cache and not yet
    /// confirmed by the provider.
    pub from_cache: bool,
    /// The last refresh's error; `None` when it was good (or confirmed).
    pub error: Option<RefreshError>,
    /// Whether the list is older than the maximum age (or missing).
    pub stale: bool,
}

impl Refresher {
    /// Starts a configuration that writes into `live`.
    pub fn builder(live: LiveTrust) -> RefresherBuilder {
        RefresherBuilder {
            live,
            sources: Vec::new(),
            interval: DEFAULT_INTERVAL,
            jitter: 0.1,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: DEFAULT_MAX_AGE,
            min_kept: 0.5,
            cache_dir: None,
            roots: Vec::new(),
            startup: Startup::Wait(DEFAULT_TIMEOUT),
        }
    }

    /// The live set the lists go into.
    pub fn live(&self) -> &LiveTrust {
        &self.state.live
    }

    /// Every source's current state, in the order they were added.
    pub fn status(&self) -> Vec<SourceStatus> {
        self.state
            .sources
            .iter()
            .map(|e| {
                let st = e.state();
                let age = st.good_at.map(age_of);
                SourceStatus {
                    name: e.source.name.clone(),
                    ranges: st.good.as_ref().map_or(0, |g| g.len()),
                    age,
                    from_cache: st.from_cache,
                    error: st.error.clone(),
                    stale: age.is_none_or(|a| a > self.state.max_age),
                }
            })
            .collect()
    }

    /// Refreshes every source now (waiting for a timer-driven refresh in
    /// progress to finish first).
    pub async fn refresh_now(&self) {
        self.state.refresh_all().await;
    }
}

struct State {
    live: LiveTrust,
    sources: Vec<Entry>,
    tls: TlsConnector,
    timeout: Duration,
    max_bytes: usize,
    max_age: Duration,
    min_kept: f64,
    cache_dir: Option<PathBuf>,
    /// One refresh at a time (timer and `refresh_now`).
    running: tokio::sync::Mutex<()>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("sources", &self.sources)
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .field("max_age", &self.max_age)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Entry {
    source: Source,
    at: Mutex<SourceState>,
}

impl Entry {
    fn state(&self) -> MutexGuard<'_, SourceState> {
        // Every update replaces whole fields: a poisoned state is whole.
        self.at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Default)]
struct SourceState {
    good: Option<Arc<TrustedProxies>>,
    good_at: Option<SystemTime>,
    from_cache: bool,
    etag: Option<String>,
    last_modified: Option<String>,
    error: Option<RefreshError>,
}

fn age_of(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// A random factor from the standard library's per-process hash keys: no
/// random-number dependency for one number an hour.
fn jittered(interval: Duration, jitter: f64) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64,
    );
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 + jitter * (2.0 * unit - 1.0);
    Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(interval)
}

/// Outcome of one refresh of one source, for the event.
enum Outcome {
    Updated { before: usize, after: usize },
    Confirmed,
    Kept(RefreshError),
}

impl State {
    /// Start-up with `Startup::Wait`: every source without a fresh list
    /// is retried until the deadline, then falls back to its cache.
    async fn wait_for_lists(&self, deadline: Duration) -> Result<(), StartError> {
        let until = tokio::time::Instant::now() + deadline;
        for entry in &self.sources {
            loop {
                let outcome = self.refresh(entry).await;
                let kept = matches!(outcome, Outcome::Kept(_));
                let retry = Duration::from_millis(250)
                    .min(until.saturating_duration_since(tokio::time::Instant::now()));
                if !kept || retry.is_zero() {
                    break;
                }
                tokio::time::sleep(retry).await;
            }
            let st = entry.state();
            if st.good.is_none() {
                return Err(StartError::NoList {
                    source: entry.source.name.clone(),
                    error: st.error.clone().unwrap_or(RefreshError::Empty),
                });
            }
        }
        Ok(())
    }

    async fn refresh_all(&self) {
        let _one = self.running.lock().await;
        for entry in &self.sources {
            self.refresh(entry).await;
        }
    }

    /// Fetches one source, takes the list if it is good, emits the
    /// event, and warns when the list in use is stale.
    async fn refresh(&self, entry: &Entry) -> Outcome {
        let source = &entry.source;
        let name = source.name.as_str();
        let (etag, last_modified, before) = {
            let st = entry.state();
            (
                st.etag.clone(),
                st.last_modified.clone(),
                st.good.as_ref().map(|g| g.len()),
            )
        };
        let fetched = tokio::time::timeout(
            self.timeout,
            self.fetch(&source.url, etag.as_deref(), last_modified.as_deref()),
        )
        .await
        .unwrap_or(Err(RefreshError::Timeout(self.timeout)));
        let outcome = match fetched {
            Ok(Fetched::NotModified) if before.is_some() => {
                let record = {
                    let mut st = entry.state();
                    st.good_at = Some(SystemTime::now());
                    st.from_cache = false;
                    st.error = None;
                    SourceState {
                        good_at: st.good_at,
                        etag: st.etag.clone(),
                        last_modified: st.last_modified.clone(),
                        ..SourceState::default()
                    }
                };
                // A restart then counts the age from this confirmation.
                self.save_cache(source, None, &record).await;
                Outcome::Confirmed
            }
            Ok(Fetched::NotModified) => Outcome::Kept(RefreshError::Status(304)),
            Ok(Fetched::Body {
                body,
                etag,
                last_modified,
            }) => match self.accept(source, &body, before) {
                Ok(set) => {
                    let after = set.len();
                    let snapshot = {
                        let mut st = entry.state();
                        st.good = Some(set);
                        st.good_at = Some(SystemTime::now());
                        st.from_cache = false;
                        st.etag = etag;
                        st.last_modified = last_modified;
                        st.error = None;
                        SourceState {
                            good: None,
                            good_at: st.good_at,
                            from_cache: false,
                            etag: st.etag.clone(),
                            last_modified: st.last_modified.clone(),
                            error: None,
                        }
                    };
                    self.save_cache(source, Some(&body), &snapshot).await;
                    Outcome::Updated {
                        before: before.unwrap_or(0),
                        after,
                    }
                }
                Err(e) => Outcome::Kept(e),
            },
            Err(e) => Outcome::Kept(e),
        };
        let (ranges, age) = {
            let mut st = entry.state();
            if let Outcome::Kept(e) = &outcome {
                st.error = Some(e.clone());
            }
            (
                st.good.as_ref().map_or(0, |g| g.len()),
                st.good_at.map(age_of),
            )
        };
        let url = source.url.to_string();
        match &outcome {
            Outcome::Updated { before, after } => tracing::info!(
                target: "realip::trust::fetch", source = name, url, before, after, "list updated"
            ),
            Outcome::Confirmed => tracing::info!(
                target: "realip::trust::fetch", source = name, url, ranges, "list not modified"
            ),
            Outcome::Kept(e) => tracing::warn!(
                target: "realip::trust::fetch", source = name, url, ranges, error = %e,
                "refresh failed; last good list kept"
            ),
        }
        match age {
            Some(a) if a <= self.max_age => {}
            _ => tracing::warn!(
                target: "realip::trust::fetch", source = name, ranges,
                age_s = age.map(|a| a.as_secs()), max_age_s = self.max_age.as_secs(),
                "list older than its maximum age"
            ),
        }
        outcome
    }

    /// Parses and checks a new body against the last good list, and swaps
    /// it into the live set.
    fn accept(
        &self,
        source: &Source,
        body: &[u8],
        before: Option<usize>,
    ) -> Result<Arc<TrustedProxies>, RefreshError> {
        let set = source.format.parse(body).map_err(RefreshError::Parse)?;
        if set.is_empty() {
            return Err(RefreshError::Empty);
        }
        if let Some(before) = before {
            if (set.len() as f64) < before as f64 * self.min_kept {
                return Err(RefreshError::Shrunk {
                    before,
                    after: set.len(),
                });
            }
        }
        let set = Arc::new(set);
        self.live
            .set_source_shared(&source.name, Arc::clone(&set))
            .map_err(RefreshError::Range)?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::providers::Format;

    #[test]
    fn sources_validate_names_and_urls() {
        assert!(Source::new("ok-name_1.v4", "https://example.com/x", Format::CidrList).is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(
                Source::new(bad, "https://example.com/", Format::CidrList).is_err(),
                "{bad}"
            );
        }
        for bad in [
            "ftp://example.com/",
            "example.com/x",
            "https:///x",
            "http://",
        ] {
            assert!(Source::new("a", bad, Format::CidrList).is_err(), "{bad}");
        }
        for name in ["cloudflare", "cloudfront", "gcp", "fastly"] {
            let s = Source::preset(name).unwrap();
            assert_eq!(s.name(), name);
            assert_eq!(s.url().scheme_str(), Some("https"));
        }
        assert!(Source::preset("akamai").is_none());
        let s = Source::fastly()
            .with_url("http://127.0.0.1:9/list")
            .unwrap();
        assert_eq!((s.name(), s.format()), ("fastly", &Format::Fastly));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let base = Duration::from_secs(100);
        for _ in 0..200 {
            let d = jittered(base, 0.1);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(jittered(base, 0.0), base);
    }
}
