//! Which partition a stream belongs to, and how one push request becomes Kafka messages.
//!
//! A stream's partition depends only on its tenant and label set, so every event of a stream
//! goes to one partition and keeps its order there. A request yields one message per partition
//! it touches, holding a [`Batch`] of that tenant's streams for the partition; a group larger
//! than the message limit is split, between streams where possible and inside a stream's
//! entries when one stream alone is too large (the pieces keep their order).
//!
//! Payloads are encoded through borrowed mirrors of [`Batch`] and [`Stream`] with the same
//! serde shape, so splitting copies no log lines; [`crate::codec::decode`] reads them as
//! ordinary batches. A request's [`Origin`] goes with every message, its `part` numbering the
//! pieces within a partition, so that dropping replays never drops a sibling piece.

use crate::error::{Error, Result};
use crate::event::{Batch, Entry, Labels, Origin, Stream};
use serde::Serialize;
use std::collections::BTreeMap;
use xxhash_rust::xxh3::Xxh3;

/// The partition of a stream: xxh3 of `tenant`, a zero byte and the little-endian
/// [`Labels::fingerprint`], modulo `partitions`. Stable across processes and versions, since
/// moving a stream to another partition would break its order.
pub fn partition_for(tenant: &str, labels: &Labels, partitions: i32) -> i32 {
    let mut h = Xxh3::new();
    h.update(tenant.as_bytes());
    h.update(&[0]);
    h.update(&labels.fingerprint().to_le_bytes());
    (h.digest() % partitions.max(1) as u64) as i32
}

/// One Kafka message of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub partition: i32,
    /// An encoded [`Batch`] of the request's tenant.
    pub payload: Vec<u8>,
}

/// Splits `batch` into messages of at most `max_payload` bytes each, in partition order and,
/// within a partition, in the request's order. Streams without entries are left out.
/// Fails with [`Error::Rejected`] when a single entry cannot fit in a message.
pub fn messages(batch: &Batch, partitions: i32, max_payload: usize) -> Result<Vec<Message>> {
    let mut groups: BTreeMap<i32, Vec<&Stream>> = BTreeMap::new();
    for stream in batch.streams.iter().filter(|s| !s.entries.is_empty()) {
        let p = partition_for(&batch.tenant, &stream.labels, partitions);
        groups.entry(p).or_default().push(stream);
    }
    let mut out = Vec::new();
    for (partition, streams) in groups {
        let mut packer = Packer::new(&batch.tenant, batch.origin.as_ref(), max_payload);
        for stream in streams {
            packer.add(stream)?;
        }
        for chunk in packer.finish() {
            let payload = postcard::to_allocvec(&chunk).map_err(Error::Encode)?;
            debug_assert_eq!(
                payload.len(),
                chunk.size(),
                "size arithmetic matches postcard"
            );
            out.push(Message { partition, payload });
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
struct BatchRef<'a> {
    tenant: &'a str,
    streams: Vec<StreamRef<'a>>,
    origin: Option<OriginRef<'a>>,
}

#[derive(Debug, Serialize)]
struct OriginRef<'a> {
    source: &'a str,
    seq: u64,
    part: u32,
}

#[derive(Debug, Serialize)]
struct StreamRef<'a> {
    labels: &'a Labels,
    entries: &'a [Entry],
}

impl BatchRef<'_> {
    fn size(&self) -> usize {
        str_size(self.tenant)
            + varint_size(self.streams.len() as u64)
            + self.streams.iter().map(StreamRef::size).sum::<usize>()
            + self.origin.as_ref().map_or(1, |o| {
                1 + str_size(o.source) + varint_size(o.seq) + varint_size(u64::from(o.part))
            })
    }
}

impl StreamRef<'_> {
    fn size(&self) -> usize {
        stream_head_size(self.labels, self.entries.len())
            + self.entries.iter().map(entry_size).sum::<usize>()
    }
}

/// Fills chunks greedily with exact encoded sizes.
#[derive(Debug)]
struct Packer<'a> {
    tenant: &'a str,
    origin: Option<&'a Origin>,
    /// Bytes the origin takes at most in a chunk (its part number's size not known yet).
    origin_size: usize,
    max: usize,
    done: Vec<BatchRef<'a>>,
    current: Vec<StreamRef<'a>>,
    current_size: usize,
}

impl<'a> Packer<'a> {
    fn new(tenant: &'a str, origin: Option<&'a Origin>, max: usize) -> Self {
        let origin_size = origin.map_or(1, |o| {
            1 + str_size(&o.source) + varint_size(o.seq) + varint_size(u64::from(u32::MAX))
        });
        Self {
            tenant,
            origin,
            origin_size,
            max,
            done: Vec::new(),
            current: Vec::new(),
            current_size: 0,
        }
    }

    /// Encoded size of the current chunk if it held `streams` streams of `size` bytes more.
    fn size_with(&self, streams: usize, size: usize) -> usize {
        let n = self.current.len() + streams;
        str_size(self.tenant) + varint_size(n as u64) + self.current_size + size + self.origin_size
    }

    fn add(&mut self, stream: &'a Stream) -> Result<()> {
        let whole = StreamRef {
            labels: &stream.labels,
            entries: &stream.entries,
        };
        let size = whole.size();
        if self.size_with(1, size) <= self.max {
            self.push(whole, size);
            return Ok(());
        }
        if !self.current.is_empty() {
            self.close();
            if self.size_with(1, size) <= self.max {
                self.push(whole, size);
                return Ok(());
            }
        }
        // Larger than a whole message: split between entries, closing chunks as they fill.
        let mut start = 0;
        while start < stream.entries.len() {
            let mut end = start;
            let mut size = stream_head_size(&stream.labels, 0);
            while end < stream.entries.len() {
                let grown = size + entry_size(&stream.entries[end])
                    - varint_size((end - start) as u64)
                    + varint_size((end - start + 1) as u64);
                if self.size_with(1, grown) > self.max {
                    break;
                }
                size = grown;
                end += 1;
            }
            if end == start {
                if self.current.is_empty() {
                    return Err(Error::Rejected(format!(
                        "an entry of {} bytes does not fit in a Kafka message of at most {} bytes",
                        stream.entries[start].line.len(),
                        self.max
                    )));
                }
                self.close();
                continue;
            }
            let piece = StreamRef {
                labels: &stream.labels,
                entries: &stream.entries[start..end],
            };
            self.push(piece, size);
            start = end;
            if start < stream.entries.len() {
                self.close();
            }
        }
        Ok(())
    }

    fn push(&mut self, stream: StreamRef<'a>, size: usize) {
        self.current.push(stream);
        self.current_size += size;
    }

    fn close(&mut self) {
        if !self.current.is_empty() {
            let part = u32::try_from(self.done.len()).unwrap_or(u32::MAX);
            self.done.push(BatchRef {
                tenant: self.tenant,
                streams: std::mem::take(&mut self.current),
                origin: self.origin.map(|o| OriginRef {
                    source: &o.source,
                    seq: o.seq,
                    part,
                }),
            });
            self.current_size = 0;
        }
    }

    fn finish(mut self) -> Vec<BatchRef<'a>> {
        self.close();
        self.done
    }
}

/// Bytes postcard uses for an unsigned varint.
fn varint_size(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn str_size(s: &str) -> usize {
    varint_size(s.len() as u64) + s.len()
}

fn stream_head_size(labels: &Labels, entries: usize) -> usize {
    let pairs: usize = labels.iter().map(|(k, v)| str_size(k) + str_size(v)).sum();
    varint_size(labels.len() as u64) + pairs + varint_size(entries as u64)
}

fn entry_size(e: &Entry) -> usize {
    let zigzag = ((e.ts_ns << 1) ^ (e.ts_ns >> 63)) as u64;
    let meta: usize = e
        .metadata
        .iter()
        .map(|(k, v)| str_size(k) + str_size(v))
        .sum();
    varint_size(zigzag) + str_size(&e.line) + varint_size(e.metadata.len() as u64) + meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn labels(app: &str) -> Labels {
        Labels::new(vec![
            ("app".into(), app.into()),
            ("namespace".into(), "prod".into()),
        ])
        .unwrap()
    }

    fn stream(app: &str, lines: usize, line_len: usize) -> Stream {
        Stream {
            labels: labels(app),
            entries: (0..lines)
                .map(|i| Entry {
                    ts_ns: 1_700_000_000_000_000_000 + i as i64,
                    line: format!("{i:08}-{}", "x".repeat(line_len)),
                    metadata: if i % 3 == 0 {
                        vec![("trace_id".into(), format!("t{i}"))]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        }
    }

    /// Decodes `messages` and joins each partition's pieces back into streams.
    fn reassemble(messages: &[Message]) -> BTreeMap<(i32, Labels), Vec<Entry>> {
        let mut out: BTreeMap<(i32, Labels), Vec<Entry>> = BTreeMap::new();
        for m in messages {
            let b = codec::decode(&m.payload).unwrap();
            for s in b.streams {
                out.entry((m.partition, s.labels))
                    .or_default()
                    .extend(s.entries);
            }
        }
        out
    }

    #[test]
    fn sizes_match_postcard_exactly() {
        for n in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let enc = postcard::to_allocvec(&n).unwrap();
            assert_eq!(varint_size(n), enc.len(), "{n}");
        }
        let b = Batch {
            tenant: "team-a".into(),
            streams: vec![stream("api", 300, 40), stream("db", 2, 200)],
            origin: Some(Origin {
                source: "node-a/0123456789abcdef".into(),
                seq: 1 << 40,
                part: 3,
            }),
        };
        let r = BatchRef {
            tenant: &b.tenant,
            streams: b
                .streams
                .iter()
                .map(|s| StreamRef {
                    labels: &s.labels,
                    entries: &s.entries,
                })
                .collect(),
            origin: b.origin.as_ref().map(|o| OriginRef {
                source: &o.source,
                seq: o.seq,
                part: o.part,
            }),
        };
        let enc = postcard::to_allocvec(&r).unwrap();
        assert_eq!(
            enc,
            codec::encode(&b).unwrap(),
            "borrowed form encodes like Batch"
        );
        assert_eq!(r.size(), enc.len());
    }

    #[test]
    fn a_stream_always_maps_to_the_same_partition() {
        let l = labels("api");
        let p = partition_for("team-a", &l, 12);
        assert!((0..12).contains(&p));
        assert_eq!(p, partition_for("team-a", &labels("api"), 12));
        // Tenants are part of the key: the same labels of many tenants spread out.
        let spread: std::collections::BTreeSet<i32> = (0..100)
            .map(|t| partition_for(&format!("tenant-{t}"), &l, 12))
            .collect();
        assert!(spread.len() > 8, "{spread:?}");
    }

    #[test]
    fn a_small_request_becomes_one_message_per_partition() {
        let batch = Batch {
            tenant: "team-a".into(),
            streams: (0..40)
                .map(|i| stream(&format!("app-{i}"), 3, 10))
                .collect(),
            origin: None,
        };
        let msgs = messages(&batch, 4, 4 << 20).unwrap();
        let parts: Vec<i32> = msgs.iter().map(|m| m.partition).collect();
        let mut unique = parts.clone();
        unique.dedup();
        assert_eq!(
            parts, unique,
            "one message per partition, in partition order"
        );
        let back = reassemble(&msgs);
        assert_eq!(back.len(), 40);
        for s in &batch.streams {
            let p = partition_for("team-a", &s.labels, 4);
            assert_eq!(back[&(p, s.labels.clone())], s.entries);
        }
    }

    #[test]
    fn large_groups_split_between_and_inside_streams_keeping_order() {
        let max = 64 * 1024;
        let batch = Batch {
            tenant: "team-b".into(),
            streams: vec![
                stream("small", 5, 100),
                stream("huge", 5_000, 90), // ~0.5 MB: many messages
                stream("medium", 400, 100),
                Stream {
                    labels: labels("empty"),
                    entries: vec![],
                },
            ],
            origin: None,
        };
        let msgs = messages(&batch, 1, max).unwrap();
        assert!(msgs.len() > 8, "{} messages", msgs.len());
        assert!(msgs.iter().all(|m| m.payload.len() <= max));
        // Messages are nearly full: splitting does not waste the limit.
        let total: usize = msgs.iter().map(|m| m.payload.len()).sum();
        assert!(
            total / msgs.len() > max * 3 / 4,
            "average {}",
            total / msgs.len()
        );
        let back = reassemble(&msgs);
        assert_eq!(back.len(), 3, "the empty stream is left out");
        for s in &batch.streams[..3] {
            assert_eq!(back[&(0, s.labels.clone())], s.entries);
        }
    }

    #[test]
    fn every_piece_carries_the_origin_numbered_within_its_partition() {
        let origin = Origin {
            source: "node-a/00ff".into(),
            seq: 123_456,
            part: 0,
        };
        let batch = Batch {
            tenant: "t".into(),
            streams: (0..6)
                .map(|i| stream(&format!("app-{i}"), 400, 100))
                .collect(),
            origin: Some(origin.clone()),
        };
        let max = 16 * 1024;
        let msgs = messages(&batch, 2, max).unwrap();
        assert!(msgs.iter().all(|m| m.payload.len() <= max));
        let mut parts: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for m in &msgs {
            let o = codec::decode(&m.payload).unwrap().origin.unwrap();
            assert_eq!((o.source.as_str(), o.seq), ("node-a/00ff", 123_456));
            parts.entry(m.partition).or_default().push(o.part);
        }
        assert_eq!(parts.len(), 2, "both partitions used: {parts:?}");
        for (p, seen) in parts {
            let expected: Vec<u32> = (0..seen.len() as u32).collect();
            assert_eq!(seen, expected, "partition {p}");
        }
    }

    #[test]
    fn an_entry_larger_than_a_message_is_rejected() {
        let batch = Batch {
            tenant: "t".into(),
            streams: vec![stream("big", 1, 70_000)],
            origin: None,
        };
        let err = messages(&batch, 3, 64 * 1024).unwrap_err();
        assert!(matches!(err, Error::Rejected(_)), "{err}");
    }

    #[test]
    fn random_requests_round_trip_within_the_limit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let max = rng.random_range(2_000..20_000);
            let batch = Batch {
                tenant: format!("t{}", rng.random_range(0..5)),
                streams: (0..rng.random_range(0..12))
                    .map(|i| {
                        stream(
                            &format!("s{i}"),
                            rng.random_range(0..60),
                            rng.random_range(0..300),
                        )
                    })
                    .collect(),
                origin: None,
            };
            let msgs = messages(&batch, 5, max).unwrap();
            assert!(msgs.iter().all(|m| m.payload.len() <= max));
            let back = reassemble(&msgs);
            for s in batch.streams.iter().filter(|s| !s.entries.is_empty()) {
                let p = partition_for(&batch.tenant, &s.labels, 5);
                assert_eq!(back[&(p, s.labels.clone())], s.entries);
            }
        }
    }
}
