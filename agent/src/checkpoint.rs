//! Where each file was read and acknowledged up to, kept on disk so a restarted agent goes on
//! where the last one stopped: neither losing nor repeating a line.
//!
//! One small JSON file per agent, rewritten whole: written to a temporary file, fsync'd,
//! renamed over the old one and the directory fsync'd, so a crash at any instant leaves either
//! the old or the new checkpoint, never a torn one. It carries a format version; a newer
//! version than this build reads is refused rather than misread.
//!
//! A file's entry holds two offsets. `acked`: everything below is acknowledged by ingest.
//! `inflight`: the end of the request sent and not yet acknowledged, written *before* the
//! request is sent. After a crash the agent re-sends exactly `acked..inflight` as one request
//! with the same number, which ingest's processors recognise as a replay if the first one
//! arrived (see `logstream_bus::Origin`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format this build writes and the newest it reads.
pub const VERSION: u32 = 1;

const FILE_NAME: &str = "checkpoints.json";

/// What is known about one file, by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Where the file was last seen (it may have been renamed since).
    pub path: PathBuf,
    /// Every byte below is acknowledged.
    pub acked: u64,
    /// End of the request in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight: Option<u64>,
    /// The file's size when last read (what is lost if it disappears unread).
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub version: u32,
    /// Fingerprint (hex) → checkpoint.
    pub files: BTreeMap<String, FileCheckpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("read checkpoint {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "checkpoint {path} is not valid ({reason}); move it away to start over (files are then read from their beginning)"
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "checkpoint {path} has format version {found}, newer than this agent reads ({VERSION}): run the newer agent, or move the file away to start over"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("write checkpoint {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The checkpoint file in a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The last checkpoint written, or an empty one on a first start.
    pub fn load(&self) -> Result<Checkpoints, CheckpointError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoints {
                    version: VERSION,
                    files: BTreeMap::new(),
                });
            }
            Err(source) => return Err(CheckpointError::Read { path, source }),
        };
        let c: Checkpoints =
            serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if c.version > VERSION {
            return Err(CheckpointError::TooNew {
                path,
                found: c.version,
            });
        }
        Ok(c)
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn save(&self, c: &Checkpoints) -> Result<(), CheckpointError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let err = |source| CheckpointError::Write {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec(c).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(err)?;
        // The rename is durable once the directory is.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoints_load_back_and_a_first_start_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        assert!(store.load().unwrap().files.is_empty());
        let mut c = Checkpoints {
            version: VERSION,
            files: BTreeMap::new(),
        };
        c.files.insert(
            "00ff".into(),
            FileCheckpoint {
                path: "/var/log/pods/a_b_c/app/0.log".into(),
                acked: 100,
                inflight: Some(250),
                size: 300,
            },
        );
        store.save(&c).unwrap();
        assert_eq!(store.load().unwrap(), c);
        // Saving again replaces it whole.
        c.files.clear();
        store.save(&c).unwrap();
        assert!(store.load().unwrap().files.is_empty());
        assert!(!dir.path().join("state/checkpoints.json.tmp").exists());
    }

    #[test]
    fn unreadable_or_newer_checkpoints_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{\"version\":1,\"files\":").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("is not valid") && e.contains("move it away"),
            "{e}"
        );
        std::fs::write(store.path(), b"{\"version\":9,\"files\":{}}").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("format version 9, newer"), "{e}");
    }
}
