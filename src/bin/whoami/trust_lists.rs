//! `--trust-url` / `--trust-provider`: a `Refresher` feeding a `LiveTrust`,
//! and the `"trust_sources"` it reports. Without the `fetch` feature the
//! list flags are refused with a hint how to build whoami with it.

#[cfg(feature = "fetch")]
pub(crate) use with_fetch::{start, Live};
#[cfg(not(feature = "fetch"))]
pub(crate) use without_fetch::{start, Live};

#[cfg(feature = "fetch")]
mod with_fetch {
    use std::time::Duration;

    use realip::trust::fetch::{Refresher, Source, Startup};
    use realip::trust::live::LiveTrust;
    use realip::trust::providers::Format;
    use realip::RealIpLayerBuilder;
    use serde_json::{json, Value};

    use crate::{ListArg, Settings};

    /// How long start waits for each list before it uses its cache.
    const STARTUP_WAIT: Duration = Duration::from_secs(30);

    /// The running refresher and the set it writes.
    pub(crate) struct Live {
        live: LiveTrust,
        refresher: Refresher,
    }

    impl Live {
        /// `b` reading the live set.
        pub(crate) fn trust(&self, b: RealIpLayerBuilder) -> RealIpLayerBuilder {
            b.live_trust(self.live.clone())
        }

        /// `"trust_sources"`: one object per list, in `Settings::lists`
        /// order.
        pub(crate) fn status_json(&self) -> Value {
            Value::Array(
                self.refresher
                    .status()
                    .iter()
                    .map(|s| {
                        json!({
                            "name": s.name,
                            "ranges": s.ranges,
                            "age_s": s.age.map(|a| a.as_secs()),
                            "error": s.error.as_ref().map(ToString::to_string),
                        })
                    })
                    .collect(),
            )
        }
    }

    /// A cache-file name for a URL list that stays the same across runs
    /// (FNV-1a of the URL), whatever order the flags come in.
    pub(super) fn url_name(url: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in url.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("url-{h:016x}")
    }

    /// The refresher's source for one flag.
    pub(super) fn source(list: &ListArg) -> Result<Source, String> {
        match list {
            ListArg::Url(url) => Source::new(&url_name(url), url, Format::CidrList)
                .map_err(|e| format!("--trust-url: {e}")),
            ListArg::Provider(p) => {
                let preset = Source::preset(&p.name)
                    .ok_or_else(|| format!("--trust-provider: `{}` is no provider", p.name))?;
                match &p.url {
                    Some(u) => preset
                        .with_url(u)
                        .map_err(|e| format!("--trust-provider: {e}")),
                    None => Ok(preset),
                }
            }
        }
    }

    /// Starts refreshing when any list is given: waits up to
    /// [`STARTUP_WAIT`] for each, then uses its cache; a list with neither
    /// stops whoami.
    pub(crate) async fn start(s: &Settings) -> Result<Option<Live>, String> {
        if s.lists.is_empty() {
            return Ok(None);
        }
        // `--trust` ranges are the live set's base: a policy reads either
        // fixed ranges or a live set, not both.
        let live = LiveTrust::new(s.trust.clone().unwrap_or_default());
        let mut b = Refresher::builder(live.clone()).startup(Startup::Wait(STARTUP_WAIT));
        if let Some(every) = s.refresh {
            b = b.interval(every);
        }
        for list in &s.lists {
            b = b.source(source(list)?);
        }
        if let Some(dir) = &s.ranges_cache {
            b = b.cache_dir(dir);
        }
        if let Some(age) = s.max_age {
            b = b.max_age(age);
        }
        let refresher = b.start().await.map_err(|e| format!("trusted lists: {e}"))?;
        Ok(Some(Live { live, refresher }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::ProviderArg;

        #[test]
        fn list_sources() {
            let url = source(&ListArg::Url("https://lists.example/a.txt".into())).unwrap();
            assert_eq!(url.format(), &Format::CidrList);
            // The cache name follows the URL, not the flag order.
            assert_eq!(url.name(), url_name("https://lists.example/a.txt"));
            assert_ne!(url.name(), url_name("https://lists.example/b.txt"));
            let cf = source(&ListArg::Provider(ProviderArg {
                name: "cloudflare".into(),
                url: None,
            }))
            .unwrap();
            assert_eq!(
                cf.url().to_string(),
                "https://api.cloudflare.com/client/v4/ips"
            );
            let gcp = source(&ListArg::Provider(ProviderArg {
                name: "gcp".into(),
                url: Some("http://127.0.0.1:9/cloud.json".into()),
            }))
            .unwrap();
            assert_eq!((gcp.name(), gcp.format()), ("gcp", &Format::GoogleCloud));
            assert_eq!(gcp.url().to_string(), "http://127.0.0.1:9/cloud.json");
        }
    }
}

#[cfg(not(feature = "fetch"))]
mod without_fetch {
    use realip::RealIpLayerBuilder;
    use serde_json::Value;

    use crate::Settings;

    /// No lists without `fetch`: this type has no values.
    pub(crate) enum Live {}

    impl Live {
        pub(crate) fn trust(&self, _: RealIpLayerBuilder) -> RealIpLayerBuilder {
            match *self {}
        }

        pub(crate) fn status_json(&self) -> Value {
            match *self {}
        }
    }

    /// Refuses every list flag, so none is silently ignored (async as its
    /// `fetch` twin is).
    pub(crate) async fn start(s: &Settings) -> Result<Option<Live>, String> {
        let options = s.refresh.is_some() || s.ranges_cache.is_some() || s.max_age.is_some();
        if s.lists.is_empty() && !options {
            Ok(None)
        } else {
            Err(NEEDS_FETCH.to_owned())
        }
    }

    /// Why the flags are refused, and how to build whoami with them.
    pub(crate) const NEEDS_FETCH: &str =
        "--trust-url, --trust-provider, --refresh, --ranges-cache and --max-age \
         need the `fetch` feature (cargo run --features cli,fetch --bin whoami, \
         or cargo install realip --features cli,fetch)";
}
