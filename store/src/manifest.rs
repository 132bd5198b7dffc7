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
//!
//! One processor at a time may write a source's manifest, and the bus's group protocol alone
//! cannot promise that: a processor whose partition moved may still have a write in flight, or
//! not have noticed yet. So ownership is fenced in the manifest itself. Taking a source over
//! ([`Manifest::claim`]) bumps its `epoch`, and every write is conditional on the version read
//! or last written (ETag / generation match). A deposed owner's next write then fails with
//! [`Error::Fenced`] instead of rolling the manifest back, and it stops.

use crate::error::{Error, Result};
use crate::layout;
use crate::store::{ObjectVersion, Store};
use bytes::Bytes;
use logstream_bus::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// The highest request of one sender seen in a source, and when it was (unix seconds): marks
/// of senders silent for longer than [`ORIGIN_MARK_TTL_S`] are forgotten at a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginMark {
    pub seq: u64,
    pub part: u32,
    pub seen_s: i64,
}

/// A week: far longer than any sender retries a request (the agent's checkpoint moves within
/// seconds of an acknowledgement), short enough that marks of rotated-away files go.
pub const ORIGIN_MARK_TTL_S: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source: String,
    /// Bumped by each [`Manifest::claim`]: writes of an owner with an older epoch are refused.
    #[serde(default)]
    pub epoch: u64,
    /// Who claimed the source last (a processor's instance name), for messages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Every bus offset below this is in `files` (or was expired by retention).
    pub next_offset: u64,
    /// A flush that was started and not committed.
    pub pending: Option<OffsetRange>,
    pub files: Vec<FileMeta>,
    /// For each replaying sender seen in this source (see [`logstream_bus::Origin`]): the
    /// highest request below `next_offset`. A processor that takes the source over continues
    /// from these marks, so a replay is dropped whoever reads it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origins: BTreeMap<String, OriginMark>,
    /// The stored object's version this manifest was read as or written as; `None` when
    /// there is none yet. The next save expects to replace exactly that version.
    #[serde(skip)]
    stored: Option<ObjectVersion>,
}

/// Equal content; where each copy came from does not matter.
impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.source == other.source
            && self.epoch == other.epoch
            && self.owner == other.owner
            && self.next_offset == other.next_offset
            && self.pending == other.pending
            && self.files == other.files
            && self.origins == other.origins
    }
}

impl Eq for Manifest {}

impl Manifest {
    pub fn empty(source: &str) -> Self {
        Self {
            version: VERSION,
            source: source.to_string(),
            epoch: 0,
            owner: String::new(),
            next_offset: 0,
            pending: None,
            files: Vec::new(),
            origins: BTreeMap::new(),
            stored: None,
        }
    }

    /// Reads the manifest of `source`, or an empty one when none was written yet.
    pub async fn load(store: &Store, source: &str) -> Result<Self> {
        let key = layout::manifest_key(source);
        let Some((bytes, stored)) = store.get_versioned(&key).await? else {
            return Ok(Self::empty(source));
        };
        let bad = |reason: String| Error::Manifest {
            key: key.to_string(),
            reason,
        };
        let mut m: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if m.version > VERSION {
            return Err(bad(format!(
                "version {} is newer than this build understands ({VERSION})",
                m.version
            )));
        }
        m.stored = Some(stored);
        Ok(m)
    }

    /// Takes `source` over for `owner`: reads its manifest and writes it back with the next
    /// epoch, after which writes of any earlier owner fail. Returns the claimed manifest, the
    /// state to continue from (a write that raced in before the claim is part of it).
    pub async fn claim(store: &Store, source: &str, owner: &str) -> Result<Self> {
        loop {
            let mut m = Self::load(store, source).await?;
            m.epoch += 1;
            m.owner = owner.to_string();
            match m.write(store).await {
                Ok(()) => return Ok(m),
                // Someone wrote between the read and the claim: read again.
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the manifest durably (one atomic object put), only over the version it was read
    /// or last written as. [`Error::Fenced`] when another owner has claimed the source since.
    pub async fn save(&mut self, store: &Store) -> Result<()> {
        match self.write(store).await {
            Err(Error::Conflict { .. }) => {}
            done => return done,
        }
        // Either another owner claimed the source, or this owner's own earlier write landed
        // without its answer arriving (a retried request, a flush dropped mid-write).
        let current = Self::load(store, &self.source).await?;
        if current.epoch != self.epoch {
            return Err(Error::Fenced {
                source_name: self.source.clone(),
                owner: current.owner,
                epoch: current.epoch,
            });
        }
        self.stored = current.stored;
        self.write(store).await.map_err(|e| match e {
            Error::Conflict { .. } => Error::Fenced {
                source_name: self.source.clone(),
                owner: "another writer".into(),
                epoch: self.epoch,
            },
            e => e,
        })
    }

    async fn write(&mut self, store: &Store) -> Result<()> {
        let key = layout::manifest_key(&self.source);
        let json = serde_json::to_vec(self).map_err(|e| Error::Manifest {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        let version = store
            .put_if(&key, Bytes::from(json), self.stored.as_ref())
            .await?;
        self.stored = Some(version);
        Ok(())
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

    #[tokio::test]
    async fn a_deposed_owner_cannot_write_after_a_claim() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let mut old = Manifest::claim(&store, "kafka-t-0", "processor-0")
            .await
            .unwrap();
        assert_eq!(old.epoch, 1);
        old.next_offset = 10;
        old.save(&store).await.unwrap();

        let mut new = Manifest::claim(&store, "kafka-t-0", "processor-1")
            .await
            .unwrap();
        assert_eq!((new.epoch, new.next_offset), (2, 10));

        // The old owner's late write is refused and names who holds the source now.
        old.next_offset = 20;
        let err = old.save(&store).await.unwrap_err();
        assert!(matches!(err, Error::Fenced { epoch: 2, .. }), "{err}");
        assert!(err.to_string().contains("claimed by processor-1"), "{err}");
        assert_eq!(
            Manifest::load(&store, "kafka-t-0")
                .await
                .unwrap()
                .next_offset,
            10
        );

        new.next_offset = 15;
        new.save(&store).await.unwrap();
        assert_eq!(
            Manifest::load(&store, "kafka-t-0")
                .await
                .unwrap()
                .next_offset,
            15
        );
    }

    #[tokio::test]
    async fn an_owner_whose_earlier_write_landed_unseen_writes_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let base = Manifest::claim(&store, "kafka-t-0", "processor-0")
            .await
            .unwrap();
        // A flush that wrote its intent and was then dropped: the worker still holds `base`.
        let mut dropped = base.clone();
        dropped.pending = Some(OffsetRange { first: 0, last: 9 });
        dropped.save(&store).await.unwrap();

        let mut retry = base.clone();
        retry.pending = Some(OffsetRange { first: 0, last: 9 });
        retry.save(&store).await.unwrap();
        retry.pending = None;
        retry.next_offset = 10;
        retry.save(&store).await.unwrap();
        assert_eq!(Manifest::load(&store, "kafka-t-0").await.unwrap(), retry);
    }

    #[tokio::test]
    async fn manifests_written_before_epochs_load_as_epoch_zero() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let key = layout::manifest_key("wal");
        let old = r#"{"version":1,"source":"wal","next_offset":7,"pending":null,"files":[]}"#;
        store.put(&key, Bytes::from(old)).await.unwrap();
        let m = Manifest::load(&store, "wal").await.unwrap();
        assert_eq!((m.epoch, m.next_offset, m.owner.as_str()), (0, 7, ""));
    }
}
