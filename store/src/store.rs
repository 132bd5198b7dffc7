//! The object store behind a storage URL: a local directory in standalone mode, S3, GCS or
//! Azure in distributed mode (see [`crate::location`] for how URLs are opened).
//!
//! Local puts are made durable: `object_store`'s local backend renames a temp file into place
//! but does not fsync, and the processor deletes WAL segments right after a commit, so without
//! the fsync a power cut could lose data the WAL no longer holds.
//!
//! Large objects go up as multipart uploads (S3 refuses single puts over 5 GiB and a failed
//! single put of a large file starts over from byte 0). Either way an object becomes visible
//! only complete: a multipart upload that fails is aborted, and one abandoned by a crash is
//! invisible until the bucket's abort-incomplete-uploads lifecycle rule removes its parts.

use crate::error::{Error, Result};
use crate::location;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD_BYTES: usize = 16 * 1024 * 1024;
/// Size of each uploaded part but the last. S3 requires at least 5 MiB.
pub const MULTIPART_PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once. Parts are slices of the object already in memory, so this costs
/// connections, not memory.
pub const MULTIPART_CONCURRENCY: usize = 4;

/// When and how puts switch to multipart uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multipart {
    /// Objects larger than this many bytes are uploaded in parts.
    pub threshold_bytes: usize,
    /// Bytes per part (the last part may be smaller).
    pub part_bytes: usize,
    /// Parts uploaded concurrently.
    pub concurrency: usize,
}

impl Default for Multipart {
    fn default() -> Self {
        Self {
            threshold_bytes: MULTIPART_THRESHOLD_BYTES,
            part_bytes: MULTIPART_PART_BYTES,
            concurrency: MULTIPART_CONCURRENCY,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Root directory when the store is local (for fsync).
    local_root: Option<PathBuf>,
    url: String,
    description: String,
    /// Key prefix inside the bucket (empty or `a/b/`); keys given to this store are below it.
    prefix: String,
    multipart: Multipart,
    /// Serializes conditional writes on a local store, whose backend cannot compare versions
    /// itself (see [`Store::put_if`]).
    local_cas: Arc<tokio::sync::Mutex<()>>,
}

/// The version of an object as its store reports it (ETag, and the generation on GCS):
/// what a conditional write expects to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion(UpdateVersion);

impl Store {
    /// Opens the store a URL names:
    /// - a plain directory path or `file:///abs/dir` (created if missing; `options` must be
    ///   empty),
    /// - `s3://bucket[/prefix]`, `gs://bucket[/prefix]`, `az://container[/prefix]` (also
    ///   `abfs[s]://container@account.dfs.core.windows.net[/prefix]`), configured by `options`
    ///   (object_store's config keys such as `aws_endpoint`, `aws_region`,
    ///   `google_service_account`, `azure_storage_account_name`) over the `AWS_*`, `GOOGLE_*`
    ///   and `AZURE_*` environment variables. All keys live under the prefix.
    pub fn from_url(url: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let Some((remote, parsed)) = location::remote_url(url)? else {
            if let Some(key) = options.keys().next() {
                return Err(Error::InvalidOption {
                    url: url.to_string(),
                    key: key.clone(),
                    reason: "a local directory takes no options".into(),
                });
            }
            return Self::local(url.strip_prefix("file://").unwrap_or(url));
        };
        let opened = location::open_remote(remote, &parsed, options)?;
        Ok(Self {
            inner: opened.store,
            local_root: None,
            url: opened.url,
            description: opened.description,
            prefix: opened.prefix,
            multipart: Multipart::default(),
            local_cas: Arc::default(),
        })
    }

    /// A store rooted at a local directory, created if missing.
    pub fn local(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let invalid = |reason: String| Error::InvalidUrl {
            url: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(&dir).map_err(|e| invalid(e.to_string()))?;
        let dir = dir.canonicalize().map_err(|e| invalid(e.to_string()))?;
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| invalid(e.to_string()))?;
        let url = format!("file://{}", dir.display());
        Ok(Self {
            inner: Arc::new(fs),
            description: format!("{url} (local directory)"),
            url,
            local_root: Some(dir),
            prefix: String::new(),
            multipart: Multipart::default(),
            local_cas: Arc::default(),
        })
    }

    /// The same store with other multipart settings (tests use small thresholds).
    pub fn with_multipart(mut self, multipart: Multipart) -> Self {
        self.multipart = Multipart {
            part_bytes: multipart.part_bytes.max(1),
            concurrency: multipart.concurrency.max(1),
            ..multipart
        };
        self
    }

    /// The URL the store was opened from, without password or query.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL and where requests go (endpoint, region, account), for logs. Never secrets.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The key prefix inside the bucket that the URL named: empty or ending in `/`. Lifecycle
    /// rules are written against `<prefix>data/...`.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    pub fn multipart(&self) -> Multipart {
        self.multipart
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// Writes an object; when this returns the object is durable and complete. Objects larger
    /// than the multipart threshold are uploaded in parts.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        if bytes.len() > self.multipart.threshold_bytes {
            self.put_multipart(key, bytes).await?;
        } else {
            self.inner
                .put(key, PutPayload::from_bytes(bytes))
                .await
                .map_err(|source| Error::ObjectStore {
                    op: "put",
                    key: key.to_string(),
                    source,
                })?;
        }
        if let Some(root) = &self.local_root {
            sync_local(root, key).await?;
        }
        Ok(())
    }

    async fn put_multipart(&self, key: &Path, bytes: Bytes) -> Result<()> {
        let err = |source| Error::ObjectStore {
            op: "multipart put",
            key: key.to_string(),
            source,
        };
        let upload = self.inner.put_multipart(key).await.map_err(err)?;
        let mut guard = AbortOnDrop(Some(upload));
        let sent = match guard.0.as_mut() {
            Some(upload) => send_parts(upload.as_mut(), bytes, self.multipart).await,
            None => Ok(()),
        };
        let Err(source) = sent else {
            guard.0 = None;
            return Ok(());
        };
        if let Some(mut upload) = guard.0.take()
            && let Err(abort) = upload.abort().await
        {
            tracing::warn!(key = %key, error = %abort, "aborting a failed multipart upload failed");
        }
        Err(err(source))
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>> {
        Ok(self.get_versioned(key).await?.map(|(bytes, _)| bytes))
    }

    /// Reads an object with its version; `None` when it does not exist.
    pub async fn get_versioned(&self, key: &Path) -> Result<Option<(Bytes, ObjectVersion)>> {
        let err = |source| Error::ObjectStore {
            op: "get",
            key: key.to_string(),
            source,
        };
        let got = match self.inner.get(key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(err(source)),
        };
        let version = ObjectVersion(UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        });
        match got.bytes().await {
            Ok(bytes) => Ok(Some((bytes, version))),
            // Deleted between the request and reading its body.
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(err(source)),
        }
    }

    /// Writes a small object only if it is still at `expected` (`None`: only if it does not
    /// exist yet), and returns the new version. [`Error::Conflict`] when another writer got
    /// there first, or when a retried request finds its own earlier attempt: the caller
    /// re-reads to tell the two apart.
    ///
    /// S3 (If-Match / If-None-Match), GCS (generation match) and Azure (If-Match) compare on
    /// the server. The local backend cannot, so a local store compares under a lock: safe for
    /// the one process a local directory serves, not for several sharing it.
    pub async fn put_if(
        &self,
        key: &Path,
        bytes: Bytes,
        expected: Option<&ObjectVersion>,
    ) -> Result<ObjectVersion> {
        let conflict = || Error::Conflict {
            key: key.to_string(),
        };
        let payload = PutPayload::from_bytes(bytes);
        let result = if let Some(root) = &self.local_root {
            let _serial = self.local_cas.lock().await;
            let current = match self.inner.head(key).await {
                Ok(meta) => Some(meta.e_tag),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(source) => {
                    return Err(Error::ObjectStore {
                        op: "head",
                        key: key.to_string(),
                        source,
                    });
                }
            };
            if current != expected.map(|v| v.0.e_tag.clone()) {
                return Err(conflict());
            }
            let put = self.inner.put(key, payload).await;
            if put.is_ok() {
                sync_local(root, key).await?;
            }
            put
        } else {
            let mode = match expected {
                Some(v) => PutMode::Update(v.0.clone()),
                None => PutMode::Create,
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            self.inner.put_opts(key, payload, opts).await
        };
        match result {
            Ok(put) => Ok(ObjectVersion(put.into())),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(conflict()),
            Err(source) => Err(Error::ObjectStore {
                op: "conditional put",
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Deletes an object; deleting a missing one is not an error.
    pub async fn delete(&self, key: &Path) -> Result<()> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::ObjectStore {
                op: "delete",
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Deletes objects in batches (one request per 1000 keys on S3); returns how many were
    /// deleted. Missing objects count as deleted.
    pub async fn delete_many(&self, keys: Vec<Path>) -> Result<usize> {
        let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.inner.delete_stream(stream);
        let mut count = 0;
        while let Some(res) = deleted.next().await {
            match res {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => count += 1,
                Err(source) => {
                    return Err(Error::ObjectStore {
                        op: "delete",
                        key: "(batch)".into(),
                        source,
                    });
                }
            }
        }
        Ok(count)
    }

    /// Every object below `prefix` (recursively), in no particular order.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        self.inner
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|source| Error::ObjectStore {
                op: "list",
                key: prefix.to_string(),
                source,
            })
    }

    /// The "directories" directly below `prefix` (common prefixes at the next `/`), sorted.
    pub async fn list_dirs(&self, prefix: &Path) -> Result<Vec<Path>> {
        let listed = self
            .inner
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(|source| Error::ObjectStore {
                op: "list",
                key: prefix.to_string(),
                source,
            })?;
        let mut dirs = listed.common_prefixes;
        dirs.sort();
        Ok(dirs)
    }

    /// On a local store, removes the directory `dir` if it is empty (the local backend leaves
    /// directories behind when their last file is deleted). Nothing on remote stores.
    pub(crate) async fn remove_dir_if_empty(&self, dir: &Path) {
        let Some(root) = &self.local_root else {
            return;
        };
        let path = root.join(dir.as_ref());
        // A put racing with this recreates the directory: the local backend creates missing
        // parents when it opens its staging file.
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir(path)).await;
    }

    #[cfg(test)]
    pub(crate) fn from_object_store(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            local_root: None,
            url: "memory://test".into(),
            description: "memory://test".into(),
            prefix: String::new(),
            multipart: Multipart::default(),
            local_cas: Arc::default(),
        }
    }
}

/// Uploads `bytes` in parts through `upload` and completes it.
async fn send_parts(
    upload: &mut dyn MultipartUpload,
    bytes: Bytes,
    multipart: Multipart,
) -> object_store::Result<()> {
    let part_bytes = multipart.part_bytes;
    // Each part future is created (and numbered) here; requests start when polled.
    let parts: Vec<_> = (0..bytes.len())
        .step_by(part_bytes)
        .map(|start| {
            let end = (start + part_bytes).min(bytes.len());
            upload.put_part(PutPayload::from_bytes(bytes.slice(start..end)))
        })
        .collect();
    futures::stream::iter(parts)
        .buffer_unordered(multipart.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    upload.complete().await.map(|_| ())
}

/// Aborts a multipart upload that neither completed nor was aborted, also when the put future
/// is dropped mid-way (a cancelled flush): the parts would otherwise be billed until the
/// lifecycle rule removes them.
struct AbortOnDrop(Option<Box<dyn MultipartUpload>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(mut upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "aborting a cancelled multipart upload failed");
                }
            });
        }
    }
}

/// fsyncs a file written under `root` and the directory that names it.
async fn sync_local(root: &std::path::Path, key: &Path) -> Result<()> {
    let file = root.join(key.as_ref());
    let shown = file.display().to_string();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&file)?.sync_all()?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Sync {
        path: shown.clone(),
        source: std::io::Error::other(e),
    })?
    .map_err(|source| Error::Sync {
        path: shown,
        source,
    })
}

#[cfg(test)]
mod tests;
