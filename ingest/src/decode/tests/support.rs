//! Fixture builders shared by the decode tests.

use crate::decode::loki_proto::{
    EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp,
};
use crate::decode::{DecodeError, Limits};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use logstream_bus::Stream;
use prost::Message;
use std::io::Write;

/// "Now" in every test: 2027-01-15T08:00:00Z.
pub(super) const NOW: i64 = 1_800_000_000_000_000_000;

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub(super) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub(super) fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

pub(super) fn snappy_framed(data: &[u8]) -> Vec<u8> {
    let mut enc = snap::write::FrameEncoder::new(Vec::new());
    enc.write_all(data).unwrap();
    enc.into_inner().unwrap()
}

/// A protobuf entry at `ts_ns` with metadata pairs.
pub(super) fn pb_entry(ts_ns: i64, line: &str, metadata: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(Timestamp {
            seconds: ts_ns.div_euclid(1_000_000_000),
            nanos: ts_ns.rem_euclid(1_000_000_000) as i32,
        }),
        line: line.as_bytes().to_vec(),
        structured_metadata: metadata
            .iter()
            .map(|(name, value)| LabelPairAdapter {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
    }
}

pub(super) fn pb_stream(labels: &str, entries: Vec<EntryAdapter>) -> StreamAdapter {
    StreamAdapter {
        labels: labels.to_owned(),
        entries,
        hash: 0,
    }
}

pub(super) fn pb_request(streams: Vec<StreamAdapter>) -> Vec<u8> {
    PushRequest { streams }.encode_to_vec()
}

/// The streams in a compact comparable form: (labels, [(ts, line, metadata)]).
pub(super) type Summary = Vec<(String, Vec<(i64, String, Vec<(String, String)>)>)>;

pub(super) fn summary(streams: &[Stream]) -> Summary {
    streams
        .iter()
        .map(|s| {
            let entries = s
                .entries
                .iter()
                .map(|e| (e.ts_ns, e.line.clone(), e.metadata.clone()))
                .collect();
            (s.labels.to_string(), entries)
        })
        .collect()
}

/// Asserts `result` failed with `status` and a message containing `want`.
pub(super) fn assert_error<T: std::fmt::Debug>(
    result: Result<T, DecodeError>,
    status: u16,
    want: &str,
) {
    let err = result.expect_err(want);
    let message = err.to_string();
    assert!(
        message.contains(want),
        "{message:?} does not contain {want:?}"
    );
    assert_eq!(err.status(), status, "{message}");
}

/// What every successful decode must satisfy, whatever the input.
pub(super) fn assert_valid(streams: &[Stream], limits: &Limits, now_ns: i64) {
    let mut seen = std::collections::HashSet::new();
    for stream in streams {
        assert!(!stream.entries.is_empty(), "empty stream {}", stream.labels);
        assert!(
            seen.insert(stream.labels.clone()),
            "duplicate stream {}",
            stream.labels
        );
        assert!(stream.labels.len() <= limits.max_labels_per_stream);
        for (name, value) in stream.labels.iter() {
            let first = name.bytes().next().unwrap();
            assert!(first.is_ascii_alphabetic() || first == b'_', "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{name}"
            );
            assert!(!value.is_empty() && value.len() <= limits.max_label_value_bytes);
        }
        for entry in &stream.entries {
            assert!(entry.ts_ns > 0 && entry.ts_ns <= now_ns + limits.max_future_ns);
            assert!(entry.line.len() <= limits.max_line_bytes);
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
