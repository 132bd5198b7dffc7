//! Finding container log files and telling them apart.
//!
//! kubelet lays logs out as `<pods dir>/<namespace>_<pod>_<uid>/<container>/<restart>.log`
//! and rotates `N.log` by renaming it to `N.log.<timestamp>` (later gzip'd to `.gz`) and
//! starting a new `N.log`. A scan lists the live files and the uncompressed rotated ones (a
//! rotated file is read to its end before it is let go); compressed rotations are ignored.
//!
//! A file's identity is a fingerprint of its first line, not its path or inode: a rename keeps
//! it, a copy made by copytruncate has it too (so reading goes on in the copy where it stopped),
//! and a recycled inode with new content gets a new one. A file whose first line is not
//! complete yet has no identity and waits.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The most bytes of the first line the fingerprint covers.
pub const FINGERPRINT_BYTES: usize = 1024;

/// Where a container log file belongs, read from its path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodFile {
    pub path: PathBuf,
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    /// `N.log` (live) rather than `N.log.<timestamp>` (rotated).
    pub live: bool,
}

impl PodFile {
    /// Parses `<root>/<namespace>_<pod>_<uid>/<container>/<file>`; `None` for anything else
    /// (other files, compressed rotations).
    pub fn parse(root: &Path, path: &Path) -> Option<Self> {
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.iter().map(|p| p.to_str());
        let (Some(Some(pod_dir)), Some(Some(container)), Some(Some(file)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        // Namespaces and pod names cannot hold '_'; the uid is last.
        let mut fields = pod_dir.splitn(3, '_');
        let (Some(namespace), Some(pod), Some(uid)) = (fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        if namespace.is_empty() || pod.is_empty() || uid.is_empty() || container.is_empty() {
            return None;
        }
        let (stem, rotated) = match file.split_once(".log") {
            Some((stem, rest)) => (stem, rest),
            None => return None,
        };
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let live = rotated.is_empty();
        // `N.log.<timestamp>`; `.gz` (and `.tmp` while kubelet compresses) are not for us.
        if !live
            && (!rotated.starts_with('.') || rotated.ends_with(".gz") || rotated.ends_with(".tmp"))
        {
            return None;
        }
        Some(Self {
            path: path.to_path_buf(),
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            uid: uid.to_string(),
            container: container.to_string(),
            live,
        })
    }
}

/// Every container log file under `root`, sorted by path. Unreadable directories are skipped
/// (a pod being deleted), not an error.
pub fn scan(root: &Path) -> std::io::Result<Vec<PodFile>> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(root)?.flatten() {
        let Ok(containers) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for container in containers.flatten() {
            let Ok(files) = std::fs::read_dir(container.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Some(pf) = PodFile::parse(root, &f.path()) {
                    out.push(pf);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The fingerprint of an open file: xxh3 of its first line (with the newline), or of its first
/// [`FINGERPRINT_BYTES`] when the line is longer. `None` while the first line is incomplete.
/// Reads at offset 0 without moving the file's cursor.
pub fn fingerprint(file: &File) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(fingerprint_of(&buf[..n]))
}

/// The fingerprint of a file that starts with `head` (at least its first
/// [`FINGERPRINT_BYTES`], or all of it).
pub fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let end = match head.iter().position(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if head.len() == FINGERPRINT_BYTES => head.len(),
        None => return None,
    };
    Some(xxhash_rust::xxh3::xxh3_64(&head[..end]))
}

/// A fingerprint as it appears in checkpoints, metrics and origins.
pub fn hex(fp: u64) -> String {
    format!("{fp:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_parse_and_others_do_not() {
        let root = Path::new("/var/log/pods");
        let p = |s: &str| PodFile::parse(root, &root.join(s));
        let live = p("shop_api-7d9f_0a1b-2c3d/server/0.log").unwrap();
        assert_eq!(
            (
                live.namespace.as_str(),
                live.pod.as_str(),
                live.uid.as_str(),
                live.container.as_str(),
                live.live
            ),
            ("shop", "api-7d9f", "0a1b-2c3d", "server", true)
        );
        let rotated = p("shop_api-7d9f_0a1b/server/3.log.20240301-120000").unwrap();
        assert!(!rotated.live);
        for other in [
            "shop_api-7d9f_0a1b/server/0.log.20240301-120000.gz",
            "shop_api-7d9f_0a1b/server/0.log.20240301-120000.tmp",
            "shop_api-7d9f_0a1b/server/notes.txt",
            "shop_api-7d9f_0a1b/server/x.log",
            "shop_api/server/0.log",
            "shop_api-7d9f_0a1b/0.log",
            "shop_api-7d9f_0a1b/server/deeper/0.log",
        ] {
            assert_eq!(p(other), None, "{other}");
        }
        assert_eq!(
            PodFile::parse(root, Path::new("/elsewhere/a_b_c/d/0.log")),
            None
        );
    }

    #[test]
    fn scan_lists_container_logs_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "b_p_u/c/0.log",
            "a_p_u/c/1.log",
            "a_p_u/c/0.log.20240101-000000",
            "a_p_u/c/0.log.20231231-000000.gz",
            "a_p_u/other.txt",
        ] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x\n").unwrap();
        }
        let names: Vec<String> = scan(root)
            .unwrap()
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "a_p_u/c/0.log.20240101-000000",
                "a_p_u/c/1.log",
                "b_p_u/c/0.log"
            ]
        );
    }

    #[test]
    fn fingerprints_follow_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let open = |content: &[u8]| {
            std::fs::write(&path, content).unwrap();
            fingerprint(&File::open(&path).unwrap()).unwrap()
        };
        assert_eq!(open(b""), None);
        assert_eq!(open(b"partial first li"), None);
        let a = open(b"first line\n").unwrap();
        assert_eq!(open(b"first line\nsecond\n"), Some(a), "growth keeps it");
        assert_ne!(open(b"other line\n"), Some(a));
        let long = vec![b'x'; FINGERPRINT_BYTES + 10];
        assert!(open(&long).is_some(), "a long first line is cut");
        assert_eq!(hex(0xab), "00000000000000ab");
    }
}
