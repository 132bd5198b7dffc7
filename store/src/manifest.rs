//! The manifest: one small JSON object per bus source listing the committed files and the bus
//! offset below which everything is in them. Writing it is the commit point of a flush:
//!
//! 1. `pending` is set to the offset range about to be flushed and the manifest written, so a
//!    processor that restarts redoes exactly that range (same rows, same keys, same bytes).
//! 2. The data files are written (a crash here leaves objects no manifest names; queries never
//!    see them, the redo overwrites them).
//! 3. The manifest is written with the new files, `next_offset` past the range and no
//!    `pending`. Only now may the bus drop the range.
//!
//! Queries read files only through a manifest, so each committed event is seen exactly once.

use crate::error::{Error, Result};
use crate::layout;
use crate::store::Store;
use bytes::Bytes;
use logstream_bus::Labels;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

/// An inclusive range of bus offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRange {
    pub first: u64,
    pub last: u64,
}

/// What queries need to know about a file without opening it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub key: String,
    pub tenant: String,
    pub class: String,
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    pub rows: u64,
    /// Size of the Parquet object.
    pub size_bytes: u64,
    /// Bytes of log lines it holds (what compression is measured against).
    pub line_bytes: u64,
    pub offsets: OffsetRange,
    /// Every stream in the file.
    pub streams: Vec<Labels>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source: String,
    /// Every bus offset below this is in `files` (or was expired by retention).
    pub next_offset: u64,
    /// A flush that was started and not committed.
    pub pending: Option<OffsetRange>,
    pub files: Vec<FileMeta>,
}

impl Manifest {
    pub fn empty(source: &str) -> Self {
        Self {
            version: VERSION,
            source: source.to_string(),
            next_offset: 0,
            pending: None,
            files: Vec::new(),
        }
    }

    /// Reads the manifest of `source`, or an empty one when none was written yet.
    pub async fn load(store: &Store, source: &str) -> Result<Self> {
        let key = layout::manifest_key(source);
        let Some(bytes) = store.get(&key).await? else {
            return Ok(Self::empty(source));
        };
        let bad = |reason: String| Error::Manifest {
            key: key.to_string(),
            reason,
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if m.version > VERSION {
            return Err(bad(format!(
                "version {} is newer than this build understands ({VERSION})",
                m.version
            )));
        }
        Ok(m)
    }

    /// Writes the manifest durably (one atomic object put).
    pub async fn save(&self, store: &Store) -> Result<()> {
        let key = layout::manifest_key(&self.source);
        let json = serde_json::to_vec(self).map_err(|e| Error::Manifest {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        store.put(&key, Bytes::from(json)).await
    }

    /// Files of `tenant` that may hold events in `[start_ns, end_ns]`.
    pub fn files_overlapping<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: i64,
        end_ns: i64,
    ) -> impl Iterator<Item = &'a FileMeta> + 'a {
        self.files
            .iter()
            .filter(move |f| f.tenant == tenant && f.max_ts_ns >= start_ns && f.min_ts_ns <= end_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_manifest_is_empty_and_a_saved_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let m = Manifest::load(&store, "wal").await.unwrap();
        assert_eq!(m, Manifest::empty("wal"));

        let mut m = m;
        m.next_offset = 10;
        m.files.push(FileMeta {
            key: "data/t/default/2026-01-01/00/wal-0-9.parquet".into(),
            tenant: "t".into(),
            class: "default".into(),
            min_ts_ns: 1,
            max_ts_ns: 2,
            rows: 3,
            size_bytes: 4,
            line_bytes: 5,
            offsets: OffsetRange { first: 0, last: 9 },
            streams: vec![Labels::new(vec![("a".into(), "b".into())]).unwrap()],
        });
        m.save(&store).await.unwrap();
        assert_eq!(Manifest::load(&store, "wal").await.unwrap(), m);
        assert_eq!(m.files_overlapping("t", 2, 9).count(), 1);
        assert_eq!(m.files_overlapping("t", 3, 9).count(), 0);
        assert_eq!(m.files_overlapping("other", 0, 9).count(), 0);
    }

    #[tokio::test]
    async fn a_manifest_from_a_newer_version_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let mut m = Manifest::empty("wal");
        m.version = 99;
        m.save(&store).await.unwrap();
        let err = Manifest::load(&store, "wal").await.unwrap_err().to_string();
        assert!(err.contains("version 99 is newer"), "{err}");
    }
}
