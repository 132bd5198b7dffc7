//! The checks every decoder shares, so one rule gives one message on every path: label sets,
//! entries (timestamp window, line size), structured metadata, and [`StreamSet`], which merges
//! entries of equal label sets into one stream in first-seen order.

use super::Limits;
use super::error::{Problem, clip};
use logstream_bus::{Entry, Labels, Stream};
use std::collections::HashMap;

/// Validates `pairs` as a stream's labels. Labels with an empty value are dropped first (in
/// Prometheus and LogQL an empty value means "no such label"); `require_any` then demands at
/// least one remaining label.
pub(crate) fn stream_labels(
    mut pairs: Vec<(String, String)>,
    limits: &Limits,
    require_any: bool,
) -> Result<Labels, Problem> {
    pairs.retain(|(_, value)| !value.is_empty());
    if require_any && pairs.is_empty() {
        return Err(Problem::NoLabels);
    }
    if pairs.len() > limits.max_labels_per_stream {
        return Err(Problem::TooManyLabels {
            count: pairs.len(),
            limit: limits.max_labels_per_stream,
        });
    }
    for (name, value) in &pairs {
        label_name(name, limits)?;
        if value.len() > limits.max_label_value_bytes {
            return Err(Problem::LabelValueTooLong {
                name: clip(name),
                len: value.len(),
                limit: limits.max_label_value_bytes,
            });
        }
    }
    Labels::new(pairs).map_err(Problem::Labels)
}

/// A label name: within the size limit and matching `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name(name: &str, limits: &Limits) -> Result<(), Problem> {
    if name.len() > limits.max_label_name_bytes {
        return Err(Problem::LabelNameTooLong {
            name: clip(name),
            len: name.len(),
            limit: limits.max_label_name_bytes,
        });
    }
    let mut bytes = name.bytes();
    let head_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if head_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(Problem::LabelName(clip(name)))
    }
}

/// An entry's timestamp window and line size.
pub(crate) fn entry(ts_ns: i64, line: &str, limits: &Limits, now_ns: i64) -> Result<(), Problem> {
    timestamp(ts_ns, limits, now_ns)?;
    if line.len() > limits.max_line_bytes {
        return Err(Problem::LineTooLong {
            len: line.len(),
            limit: limits.max_line_bytes,
        });
    }
    Ok(())
}

/// After the epoch, at most `max_future_ns` ahead of `now_ns` and, when set, at most
/// `max_age_ns` behind it.
fn timestamp(ts_ns: i64, limits: &Limits, now_ns: i64) -> Result<(), Problem> {
    if ts_ns <= 0 {
        return Err(Problem::TimestampNotPositive(ts_ns));
    }
    if ts_ns > now_ns.saturating_add(limits.max_future_ns) {
        return Err(Problem::TimestampInFuture {
            ts_ns,
            max_future_ns: limits.max_future_ns,
        });
    }
    match limits.max_age_ns {
        Some(max_age_ns) if ts_ns < now_ns.saturating_sub(max_age_ns) => {
            Err(Problem::TimestampTooOld { ts_ns, max_age_ns })
        }
        _ => Ok(()),
    }
}

/// One structured metadata pair: a non-empty name within the label-name size limit (any
/// characters: NDJSON field names like `@version` or `host.name` are fine) and a value within
/// the line size limit.
pub(crate) fn metadata(name: &str, value: &str, limits: &Limits) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(Problem::MetadataNameEmpty);
    }
    if name.len() > limits.max_label_name_bytes {
        return Err(Problem::MetadataNameTooLong {
            name: clip(name),
            len: name.len(),
            limit: limits.max_label_name_bytes,
        });
    }
    if value.len() > limits.max_line_bytes {
        return Err(Problem::MetadataValueTooLong {
            name: clip(name),
            len: value.len(),
            limit: limits.max_line_bytes,
        });
    }
    Ok(())
}

/// The streams of one request, one per distinct label set, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct StreamSet {
    streams: Vec<Stream>,
    index: HashMap<Labels, usize>,
}

impl StreamSet {
    /// The position of the stream with `labels`, created empty when new.
    pub(crate) fn index_of(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        self.index.insert(labels.clone(), self.streams.len());
        self.streams.push(Stream {
            labels,
            entries: Vec::new(),
        });
        self.streams.len() - 1
    }

    /// Appends `entries` to the stream with `labels`.
    pub(crate) fn extend(&mut self, labels: Labels, entries: Vec<Entry>) {
        let i = self.index_of(labels);
        let stream = &mut self.streams[i].entries;
        if stream.is_empty() {
            *stream = entries;
        } else {
            stream.extend(entries);
        }
    }

    /// Appends one entry to the stream at `index` (from [`Self::index_of`]).
    pub(crate) fn push(&mut self, index: usize, entry: Entry) {
        self.streams[index].entries.push(entry);
    }

    /// The streams that have entries.
    pub(crate) fn into_streams(mut self) -> Vec<Stream> {
        self.streams.retain(|s| !s.entries.is_empty());
        self.streams
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_rules_give_named_errors() {
        let limits = Limits::default();
        let long = "x".repeat(2049);
        let many: Vec<(String, String)> = (0..16).map(|i| (format!("l{i}"), "v".into())).collect();
        let cases: Vec<(Vec<(String, String)>, &str)> = vec![
            (
                pairs(&[("1abc", "v")]),
                r#"label name "1abc" is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)"#,
            ),
            (pairs(&[("a-b", "v")]), r#"label name "a-b" is invalid"#),
            (pairs(&[("", "v")]), r#"label name "" is invalid"#),
            (
                pairs(&[("a", &long)]),
                r#"label "a" has a value of 2049 bytes, over the limit of 2048"#,
            ),
            (
                pairs(&[(&"n".repeat(1025), "v")]),
                "is 1025 bytes, over the limit of 1024",
            ),
            (many, "stream has 16 labels, over the limit of 15"),
            (
                pairs(&[("a", "1"), ("a", "2")]),
                r#"duplicate label name "a""#,
            ),
            (pairs(&[("a", "")]), "stream has no labels"),
            (vec![], "stream has no labels"),
        ];
        for (input, want) in cases {
            let err = stream_labels(input, &limits, true).unwrap_err().to_string();
            assert!(err.contains(want), "{err} does not contain {want}");
        }
    }

    #[test]
    fn empty_values_are_dropped_and_names_sorted() {
        let labels = stream_labels(
            pairs(&[("b", "2"), ("_a", "1"), ("c", "")]),
            &Limits::default(),
            true,
        );
        assert_eq!(labels.unwrap().to_string(), r#"{_a="1", b="2"}"#);
        assert!(
            stream_labels(vec![], &Limits::default(), false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn timestamp_window_is_enforced() {
        let now = 1_800_000_000_000_000_000;
        let limits = Limits {
            max_age_ns: Some(3_600_000_000_000),
            ..Limits::default()
        };
        for ts in [now, now + limits.max_future_ns, now - 3_600_000_000_000] {
            assert_eq!(entry(ts, "l", &limits, now), Ok(()), "{ts}");
        }
        let cases = [
            (0, "timestamp 0 is not after the unix epoch"),
            (-3, "timestamp -3 is not after the unix epoch"),
            (
                now + 600_000_000_001,
                "timestamp 2027-01-15T08:10:00.000000001Z is more than 10m in the future",
            ),
            (
                now - 3_600_000_000_001,
                "timestamp 2027-01-15T06:59:59.999999999Z is more than 1h old",
            ),
        ];
        for (ts, want) in cases {
            assert_eq!(entry(ts, "l", &limits, now).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn line_and_metadata_sizes_are_bounded() {
        let limits = Limits {
            max_line_bytes: 4,
            ..Limits::default()
        };
        let err = entry(1, "12345", &limits, 10).unwrap_err().to_string();
        assert_eq!(err, "line is 5 bytes, over the limit of 4");
        let err = metadata("k", "12345", &limits).unwrap_err().to_string();
        assert_eq!(
            err,
            r#"structured metadata "k" has a value of 5 bytes, over the limit of 4"#
        );
        assert_eq!(
            metadata("", "v", &limits).unwrap_err(),
            Problem::MetadataNameEmpty
        );
        assert_eq!(metadata("@host.name", "v", &limits), Ok(()));
    }

    #[test]
    fn stream_set_merges_equal_label_sets_in_first_seen_order() {
        let limits = Limits::default();
        let labels = |p| stream_labels(pairs(p), &limits, true).unwrap();
        let e = |ts| Entry {
            ts_ns: ts,
            line: String::new(),
            metadata: Vec::new(),
        };
        let mut set = StreamSet::default();
        set.extend(labels(&[("a", "1"), ("b", "2")]), vec![e(1)]);
        set.extend(labels(&[("z", "9")]), vec![]);
        set.extend(labels(&[("c", "3")]), vec![e(2)]);
        set.extend(labels(&[("b", "2"), ("a", "1")]), vec![e(3)]);
        let streams = set.into_streams();
        let summary: Vec<(String, Vec<i64>)> = streams
            .iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.entries.iter().map(|e| e.ts_ns).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (r#"{a="1", b="2"}"#.to_string(), vec![1, 3]),
                (r#"{c="3"}"#.to_string(), vec![2])
            ]
        );
    }
}
