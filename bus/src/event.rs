//! The event model every stage shares: a tenant's batch of streams, each stream a label set
//! with timestamped lines. A [`Batch`] is the unit the bus stores and acknowledges: one ingest
//! request becomes exactly one batch, so a request is durable all together or not at all.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stream's identity: label pairs sorted by name, names unique.
///
/// Construct through [`Labels::new`], which sorts and rejects duplicates, so two equal label sets
/// always have the same fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Labels(Vec<(String, String)>);

/// Why a label set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
}

impl Labels {
    /// Sorts `pairs` by name; fails when a name appears twice.
    pub fn new(mut pairs: Vec<(String, String)>) -> Result<Self, LabelsError> {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(LabelsError::Duplicate(w[0].0.clone()));
        }
        Ok(Self(pairs))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit identity of the label set (xxh3 of the canonical form). Stable across
    /// processes and versions: it is stored in Parquet files and used to sort and prune them.
    pub fn fingerprint(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.to_string().as_bytes())
    }
}

/// The canonical Loki form `{a="1", b="two"}`, values escaped like Go string literals.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// One log line with its timestamp and optional structured metadata (Loki's term for per-line
/// key/value pairs that are not part of the stream identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// Lines that share one label set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

/// What one ingest request appends to the bus: all of it or none of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub tenant: String,
    pub streams: Vec<Stream>,
    /// Where a sender that may replay the request numbered it (see [`Origin`]).
    pub origin: Option<Origin>,
}

/// A replayable sender's numbering of a request, so a replay is stored once.
///
/// The node agent sends a file's lines in requests numbered by the file offset they end at,
/// one at a time per file, and re-sends the same request after a crash or a lost answer. The
/// processor keeps, per bus partition, the highest `(seq, part)` seen for each `source` and
/// drops a record at or below it: a replay lands behind the original in the same partition, so
/// it is recognised however many times it comes. `part` numbers the pieces a request was split
/// into inside one partition (Kafka message size), so the pieces of one request are not taken
/// for replays of each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The sender's stable name for what it replays (the agent: node and file fingerprint).
    pub source: String,
    /// Increases with each new request of `source`.
    pub seq: u64,
    /// The piece of the request within one partition, from 0.
    pub part: u32,
}

impl Origin {
    /// Whether this record comes after `mark` (the highest seen): new, not a replay.
    pub fn is_after(&self, mark: (u64, u32)) -> bool {
        (self.seq, self.part) > mark
    }
}

impl Batch {
    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    /// Bytes of log lines carried (the figure quotas and metrics count as "bytes in").
    pub fn line_bytes(&self) -> usize {
        self.streams
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| e.line.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn labels_are_sorted_and_printed_in_loki_form() {
        let l = labels(&[("job", "api"), ("app", "a\"b\\c\nd")]);
        assert_eq!(l.to_string(), r#"{app="a\"b\\c\nd", job="api"}"#);
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(l.get("nope"), None);
    }

    #[test]
    fn duplicate_label_names_are_refused() {
        let err = Labels::new(vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert_eq!(err, Err(LabelsError::Duplicate("a".into())));
    }

    #[test]
    fn fingerprint_ignores_input_order_but_not_values() {
        let a = labels(&[("a", "1"), ("b", "2")]);
        let b = labels(&[("b", "2"), ("a", "1")]);
        let c = labels(&[("a", "1"), ("b", "3")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
