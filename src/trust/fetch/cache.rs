//! The disk cache of each source's last good list: the body as served
//! and a record of when it was fetched or confirmed, with its validators.

use super::{Entry, Source, SourceState, State};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

impl State {
    pub(super) fn cache_paths(&self, source: &Source) -> Option<(PathBuf, PathBuf)> {
        let dir = self.cache_dir.as_deref()?;
        Some((
            dir.join(format!("{}.body", source.name)),
            dir.join(format!("{}.meta", source.name)),
        ))
    }

    pub(super) async fn load_cache(&self, entry: &Entry) {
        let Some((body_path, meta_path)) = self.cache_paths(&entry.source) else {
            return;
        };
        let name = entry.source.name.as_str();
        let (body, meta) = match (
            tokio::fs::read(&body_path).await,
            tokio::fs::read_to_string(&meta_path).await,
        ) {
            (Ok(b), Ok(m)) => (b, m),
            _ => {
                tracing::info!(target: "realip::trust::fetch", source = name, "no cached list");
                return;
            }
        };
        let set = match entry.source.format.parse(&body) {
            Ok(set) if !set.is_empty() => set,
            Ok(_) => {
                tracing::warn!(target: "realip::trust::fetch", source = name, "cached list is empty; ignored");
                return;
            }
            Err(e) => {
                tracing::warn!(target: "realip::trust::fetch", source = name, error = %e, "cached list does not parse; ignored");
                return;
            }
        };
        let mut fetched_at = None;
        let mut st = SourceState::default();
        for line in meta.lines() {
            match line.split_once('=') {
                Some(("fetched_unix", v)) => {
                    fetched_at = v.parse().ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
                }
                Some(("etag", v)) => st.etag = Some(v.to_owned()),
                Some(("last_modified", v)) => st.last_modified = Some(v.to_owned()),
                _ => {}
            }
        }
        let set = Arc::new(set);
        if let Err(e) = self.live.set_source_shared(name, Arc::clone(&set)) {
            tracing::warn!(target: "realip::trust::fetch", source = name, error = %e, "cached list refused");
            return;
        }
        let ranges = set.len();
        st.good = Some(set);
        st.good_at = Some(fetched_at.unwrap_or(UNIX_EPOCH));
        st.from_cache = true;
        *entry.state() = st;
        tracing::info!(target: "realip::trust::fetch", source = name, ranges, "cached list loaded");
    }

    /// Writes the body (when new) and the record of when the list was
    /// last fetched or confirmed, with its validators.
    pub(super) async fn save_cache(&self, source: &Source, body: Option<&[u8]>, st: &SourceState) {
        let Some((body_path, meta_path)) = self.cache_paths(source) else {
            return;
        };
        let fetched = st
            .good_at
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let mut meta = format!("fetched_unix={fetched}\n");
        for (k, v) in [("etag", &st.etag), ("last_modified", &st.last_modified)] {
            if let Some(v) = v {
                meta.push_str(&format!("{k}={v}\n"));
            }
        }
        let write = async {
            if let Some(dir) = body_path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            if let Some(body) = body {
                write_atomic(&body_path, body).await?;
            }
            write_atomic(&meta_path, meta.as_bytes()).await
        };
        if let Err(e) = write.await {
            tracing::warn!(target: "realip::trust::fetch", source = source.name.as_str(), error = %e, "cache not written");
        }
    }
}

/// Writes a file whole or not at all: a crash mid-write leaves the old
/// cache in place.
async fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, data).await?;
    tokio::fs::rename(&tmp, path).await
}
