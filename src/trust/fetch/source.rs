//! What to fetch: a named list, its URL and its format, and the presets
//! for the providers' official URLs.

use super::RefreshError;
use crate::trust::providers::{AwsFilter, Format};
use http::Uri;

/// One published list: a name (for events, status and the cache file), a
/// URL and the format its body is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub(super) name: String,
    pub(super) url: Uri,
    pub(super) format: Format,
}

/// Cloudflare's API: both families in one JSON document.
pub const CLOUDFLARE_URL: &str = "https://api.cloudflare.com/client/v4/ips";
/// AWS `ip-ranges.json` (CloudFront, EC2, ...).
pub const AWS_URL: &str = "https://ip-ranges.amazonaws.com/ip-ranges.json";
/// Google Cloud's customer-usable external ranges.
pub const GOOGLE_CLOUD_URL: &str = "https://www.gstatic.com/ipranges/cloud.json";
/// Fastly's edge ranges.
pub const FASTLY_URL: &str = "https://api.fastly.com/public-ip-list";

impl Source {
    /// A source named `name` (letters, digits, `-`, `_`, `.`; it names the
    /// cache file) read from `url` (`http` or `https`) in `format`.
    ///
    /// # Errors
    /// [`RefreshError::InvalidSource`]: a bad name or URL.
    pub fn new(name: &str, url: &str, format: Format) -> Result<Source, RefreshError> {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok_name {
            return Err(RefreshError::InvalidSource(format!(
                "source name `{name}`: use 1-64 letters, digits, `-`, `_` or `.`"
            )));
        }
        Ok(Source {
            name: name.to_owned(),
            url: parse_url(url)?,
            format,
        })
    }

    /// Cloudflare ([`CLOUDFLARE_URL`], [`Format::CloudflareApi`]).
    pub fn cloudflare() -> Source {
        Self::preset_of("cloudflare", CLOUDFLARE_URL, Format::CloudflareApi)
    }

    /// CloudFront: the `CLOUDFRONT` service of [`AWS_URL`].
    pub fn cloudfront() -> Source {
        Self::preset_of(
            "cloudfront",
            AWS_URL,
            Format::Aws(AwsFilter::service("CLOUDFRONT")),
        )
    }

    /// Google Cloud ([`GOOGLE_CLOUD_URL`], [`Format::GoogleCloud`]).
    pub fn google_cloud() -> Source {
        Self::preset_of("gcp", GOOGLE_CLOUD_URL, Format::GoogleCloud)
    }

    /// Fastly ([`FASTLY_URL`], [`Format::Fastly`]).
    pub fn fastly() -> Source {
        Self::preset_of("fastly", FASTLY_URL, Format::Fastly)
    }

    /// A preset by name: `cloudflare`, `cloudfront`, `gcp`, `fastly`.
    pub fn preset(name: &str) -> Option<Source> {
        match name {
            "cloudflare" => Some(Self::cloudflare()),
            "cloudfront" => Some(Self::cloudfront()),
            "gcp" => Some(Self::google_cloud()),
            "fastly" => Some(Self::fastly()),
            _ => None,
        }
    }

    fn preset_of(name: &str, url: &'static str, format: Format) -> Source {
        Source {
            name: name.to_owned(),
            url: Uri::from_static(url),
            format,
        }
    }

    /// The same source read from another URL (a mirror, a test server).
    ///
    /// # Errors
    /// [`RefreshError::InvalidSource`]: not an `http`/`https` URL.
    pub fn with_url(mut self, url: &str) -> Result<Source, RefreshError> {
        self.url = parse_url(url)?;
        Ok(self)
    }

    /// The name used in events, status and the cache file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the list is fetched from.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The format the body is parsed as.
    pub fn format(&self) -> &Format {
        &self.format
    }
}

fn parse_url(url: &str) -> Result<Uri, RefreshError> {
    let bad = |why: &str| RefreshError::InvalidSource(format!("URL `{url}`: {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("does not parse"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("needs http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(uri)
}
