//! The object store behind a storage URL. Standalone uses a local directory; `s3://`, `gs://`
//! and `az://` come with distributed mode through the same `object_store` interface.
//!
//! Local puts are made durable: `object_store`'s local backend renames a temp file into place
//! but does not fsync, and the processor deletes WAL segments right after a commit, so without
//! the fsync a power cut could lose data the WAL no longer holds.

use crate::error::{Error, Result};
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Root directory when the store is local (for fsync).
    local_root: Option<PathBuf>,
    url: String,
}

impl Store {
    /// Opens the store a URL names: `file:///abs/dir` or a plain directory path.
    pub fn from_url(url: &str) -> Result<Self> {
        if let Some(path) = url.strip_prefix("file://") {
            return Self::local(path);
        }
        if url.contains("://") {
            return Err(Error::InvalidUrl {
                url: url.to_string(),
                reason: "only local directories (file://) are supported by this build".into(),
            });
        }
        Self::local(url)
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
        Ok(Self {
            inner: Arc::new(fs),
            url: format!("file://{}", dir.display()),
            local_root: Some(dir),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// Writes an object; when this returns the object is durable.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        self.inner
            .put(key, PutPayload::from_bytes(bytes))
            .await
            .map_err(|source| Error::ObjectStore {
                op: "put",
                key: key.to_string(),
                source,
            })?;
        if let Some(root) = &self.local_root {
            sync_local(root, key).await?;
        }
        Ok(())
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>> {
        let res = match self.inner.get(key).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        match res {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::ObjectStore {
                op: "get",
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_round_trip_on_a_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_url(&format!("file://{}", dir.path().display())).unwrap();
        let key = Path::from("data/t/c/x.parquet");
        assert_eq!(store.get(&key).await.unwrap(), None);
        store.put(&key, Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"abc"[..]));
        assert!(dir.path().join("data/t/c/x.parquet").exists());
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), None);
    }

    #[test]
    fn remote_urls_are_refused_with_a_reason_until_supported() {
        let err = Store::from_url("s3://bucket/prefix")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only local directories"), "{err}");
    }
}
