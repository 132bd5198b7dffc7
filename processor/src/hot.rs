//! Events read from the bus and not yet committed to object storage, kept as Arrow batches so
//! queries scan them like a file and a flush sorts and encodes them without conversion.

use crate::error::Result;
use crate::pipeline::level::Level;
use crate::pipeline::plan::{Budget, Counts, Plans};
use arrow::array::AsArray;
use arrow::array::RecordBatch;
use logstream_bus::codec::decode;
use logstream_bus::{Labels, Record};
use logstream_store::Manifest;
use logstream_store::schema::{Processed, RowsBuilder};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Whose rows, stored under which retention class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowsKey {
    pub tenant: String,
    pub class: String,
}

impl RowsKey {
    pub fn new(tenant: &str, class: &str) -> Self {
        Self {
            tenant: tenant.into(),
            class: class.into(),
        }
    }
}

/// Per tenant and pipeline (`<name>@<generation>`): what the pipeline did in one chunk.
pub type PipelineCounts = HashMap<(String, String), (Counts, std::time::Duration)>;

/// One tenant's rows of one retention class from one read of the bus.
#[derive(Debug)]
pub struct TenantRows {
    pub batch: RecordBatch,
    pub streams: HashMap<u64, Labels>,
    pub line_bytes: u64,
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    /// For each record that added rows: its offset and the end (exclusive) of its rows, so the
    /// chunk can be cut at a record boundary.
    pub record_rows: Vec<(u64, usize)>,
}

impl TenantRows {
    /// The rows of records at or past `offset`, or `None` when there are none.
    fn since_offset(&self, offset: u64) -> Option<Self> {
        let cut = self.record_rows.partition_point(|(o, _)| *o < offset);
        if cut == 0 {
            return Some(self.clone_all());
        }
        let start = self.record_rows[cut - 1].1;
        let len = self.batch.num_rows() - start;
        if cut == self.record_rows.len() || len == 0 {
            return None;
        }
        let batch = self.batch.slice(start, len);
        let line_bytes = batch
            .column_by_name(logstream_store::schema::LINE)
            .map(|c| {
                let o = c.as_string::<i32>().value_offsets();
                (o[o.len() - 1] - o[0]) as u64
            })
            .unwrap_or(0);
        Some(Self {
            batch,
            streams: self.streams.clone(),
            line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows[cut..]
                .iter()
                .map(|(o, end)| (*o, end - start))
                .collect(),
        })
    }

    fn clone_all(&self) -> Self {
        Self {
            batch: self.batch.clone(),
            streams: self.streams.clone(),
            line_bytes: self.line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows.clone(),
        }
    }
}

/// The highest request seen per replaying sender ([`logstream_bus::Origin`]) in one
/// partition, as of some offset.
pub type Marks = HashMap<String, (u64, u32)>;

/// The rows of a contiguous range of bus offsets, by tenant.
#[derive(Debug)]
pub struct HotChunk {
    pub first_offset: u64,
    pub last_offset: u64,
    pub tenants: HashMap<RowsKey, TenantRows>,
    pub read_at: Instant,
    /// The senders' marks this chunk moved, in offset order: a commit of the chunk records
    /// them in the manifest.
    pub marks: Vec<(String, (u64, u32))>,
    /// Records left out as replays of requests already in the partition.
    pub replays: u64,
    /// What the tenants' pipelines did.
    pub pipelines: PipelineCounts,
}

impl HotChunk {
    /// Decodes bus records into rows, leaving out replays: a record whose origin is at or
    /// below its sender's mark in `marks`, which it then moves. Records must be in offset
    /// order, and `marks` must be the marks as of the first record, so that a redo of the
    /// same records decides the same way. Each tenant's pipelines in `plans` process its
    /// events (the whole chunk with this one version of them).
    pub fn from_records(
        records: &[Record],
        marks: &mut Marks,
        plans: &Plans,
    ) -> Result<Option<Self>> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(None);
        };
        let mut builders: HashMap<RowsKey, Builder> = HashMap::new();
        let mut budgets: HashMap<String, Budget> = HashMap::new();
        let mut counts = PipelineCounts::new();
        let mut moved = Vec::new();
        let mut replays = 0;
        let mut touched: Vec<RowsKey> = Vec::new();
        for record in records {
            let batch = decode(&record.payload)?;
            if let Some(origin) = &batch.origin {
                if marks
                    .get(&origin.source)
                    .is_some_and(|mark| !origin.is_after(*mark))
                {
                    replays += 1;
                    continue;
                }
                let new = (origin.seq, origin.part);
                marks.insert(origin.source.clone(), new);
                moved.push((origin.source.clone(), new));
            }
            touched.clear();
            let plan = plans.tenant(&batch.tenant);
            for stream in &batch.streams {
                match plan.and_then(|p| p.for_stream(&stream.labels)) {
                    None => {
                        let key = RowsKey::new(&batch.tenant, crate::pipeline::plan::DEFAULT_CLASS);
                        builders.entry(key.clone()).or_default().add(stream);
                        touched.push(key);
                    }
                    Some(sp) => {
                        let started = Instant::now();
                        let budget = budgets
                            .entry(batch.tenant.clone())
                            .or_insert_with(|| Budget::new(Budget::DEFAULT));
                        let (c, d) = counts
                            .entry((batch.tenant.clone(), sp.pipeline.tag.clone()))
                            .or_default();
                        process_stream(
                            &batch.tenant,
                            stream,
                            &sp,
                            budget,
                            c,
                            &mut builders,
                            &mut touched,
                        );
                        *d += started.elapsed();
                    }
                }
            }
            touched.sort();
            touched.dedup();
            for key in &touched {
                if let Some(b) = builders.get_mut(key)
                    && b.rows.len() > b.record_rows.last().map_or(0, |(_, end)| *end)
                {
                    b.record_rows.push((record.offset, b.rows.len()));
                }
            }
        }
        let mut tenants = HashMap::with_capacity(builders.len());
        for (key, b) in builders {
            if let Some(rows) = b.finish()? {
                tenants.insert(key, rows);
            }
        }
        Ok(Some(Self {
            first_offset: first.offset,
            last_offset: last.offset,
            tenants,
            read_at: Instant::now(),
            marks: moved,
            replays,
            pipelines: counts,
        }))
    }

    /// The part of this chunk at or past `offset` (what a manifest at `offset` does not
    /// cover), or `None` when nothing remains.
    pub fn since_offset(&self, offset: u64) -> Option<Self> {
        if self.last_offset < offset {
            return None;
        }
        let tenants: HashMap<RowsKey, TenantRows> = self
            .tenants
            .iter()
            .filter_map(|(t, rows)| rows.since_offset(offset).map(|r| (t.clone(), r)))
            .collect();
        Some(Self {
            first_offset: self.first_offset.max(offset),
            last_offset: self.last_offset,
            tenants,
            read_at: self.read_at,
            // Only a flush reads them, and a flush takes whole chunks.
            marks: self.marks.clone(),
            replays: self.replays,
            pipelines: self.pipelines.clone(),
        })
    }

    pub fn line_bytes(&self) -> u64 {
        self.tenants.values().map(|t| t.line_bytes).sum()
    }
}

#[derive(Debug, Default)]
struct Builder {
    rows: RowsBuilder,
    streams: HashMap<u64, Labels>,
    line_bytes: u64,
    min_ts_ns: i64,
    max_ts_ns: i64,
    record_rows: Vec<(u64, usize)>,
}

impl Builder {
    fn add(&mut self, stream: &logstream_bus::Stream) {
        if stream.entries.is_empty() {
            return;
        }
        let id = stream.labels.fingerprint();
        let canonical = stream.labels.to_string();
        self.streams
            .entry(id)
            .or_insert_with(|| stream.labels.clone());
        if self.rows.is_empty() {
            self.min_ts_ns = i64::MAX;
            self.max_ts_ns = i64::MIN;
        }
        for e in &stream.entries {
            self.line_bytes += e.line.len() as u64;
            self.min_ts_ns = self.min_ts_ns.min(e.ts_ns);
            self.max_ts_ns = self.max_ts_ns.max(e.ts_ns);
        }
        self.rows.append_stream(id, &canonical, stream);
    }

    /// Appends one processed row of the stream `labels`.
    fn add_processed(
        &mut self,
        id: u64,
        canonical: &str,
        labels: &Labels,
        metadata: &[(String, String)],
        p: &crate::pipeline::plan::Processed<'_>,
        tag: &str,
    ) {
        self.streams.entry(id).or_insert_with(|| labels.clone());
        if self.rows.is_empty() {
            self.min_ts_ns = i64::MAX;
            self.max_ts_ns = i64::MIN;
        }
        self.line_bytes += p.line.len() as u64;
        self.min_ts_ns = self.min_ts_ns.min(p.ts_ns);
        self.max_ts_ns = self.max_ts_ns.max(p.ts_ns);
        self.rows.append_entry(
            id,
            canonical,
            p.ts_ns,
            &p.line,
            metadata,
            Processed {
                attributes: Some(&p.attributes),
                level: p.level.map(Level::as_str),
                pipeline: Some(tag),
                time_parsed: p.time_parsed,
            },
        );
    }

    fn finish(self) -> Result<Option<TenantRows>> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(TenantRows {
            batch: self.rows.finish()?,
            streams: self.streams,
            line_bytes: self.line_bytes,
            min_ts_ns: self.min_ts_ns,
            max_ts_ns: self.max_ts_ns,
            record_rows: self.record_rows,
        }))
    }
}

/// Runs a stream's events through its pipeline into the builders of their classes.
fn process_stream(
    tenant: &str,
    stream: &logstream_bus::Stream,
    sp: &crate::pipeline::plan::StreamPlan<'_>,
    budget: &mut Budget,
    counts: &mut Counts,
    builders: &mut HashMap<RowsKey, Builder>,
    touched: &mut Vec<RowsKey>,
) {
    let pipeline = sp.pipeline;
    // The stream's labels with the pipeline's static labels it lacks (streams the agent
    // ships have them already).
    let missing: Vec<(&String, &String)> = pipeline
        .static_labels()
        .iter()
        .filter(|(k, _)| stream.labels.get(k).is_none())
        .collect();
    let base_labels = if missing.is_empty() {
        stream.labels.clone()
    } else {
        let mut pairs: Vec<(String, String)> = stream
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.extend(missing.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        Labels::new(pairs).unwrap_or_else(|_| stream.labels.clone())
    };
    let base_id = base_labels.fingerprint();
    let base_canonical = base_labels.to_string();
    // Label sets made by field labels, by their values.
    let mut split: HashMap<Vec<(String, String)>, (u64, String, Labels)> = HashMap::new();
    let mut class_key: Option<(String, RowsKey)> = None;
    for e in &stream.entries {
        let Some(p) = sp.process(&e.line, e.ts_ns, budget, counts) else {
            continue;
        };
        let key = match &class_key {
            Some((class, key)) if class == p.class => key.clone(),
            _ => {
                let key = RowsKey::new(tenant, p.class);
                class_key = Some((p.class.to_string(), key.clone()));
                key
            }
        };
        let b = builders.entry(key.clone()).or_default();
        if touched.last() != Some(&key) {
            touched.push(key);
        }
        if p.labels.is_empty() {
            b.add_processed(
                base_id,
                &base_canonical,
                &base_labels,
                &e.metadata,
                &p,
                &pipeline.tag,
            );
            continue;
        }
        let extra: Vec<(String, String)> = p
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let (id, canonical, labels) = split.entry(extra).or_insert_with_key(|extra| {
            let mut pairs: Vec<(String, String)> = base_labels
                .iter()
                .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            pairs.extend(extra.iter().cloned());
            let labels = Labels::new(pairs).unwrap_or_else(|_| base_labels.clone());
            (labels.fingerprint(), labels.to_string(), labels)
        });
        b.add_processed(*id, canonical, labels, &e.metadata, &p, &pipeline.tag);
    }
}

/// What a query sees at one instant: the committed files and the chunks read since, with no
/// overlap between the two (a flush swaps both in one step).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub manifest: Arc<Manifest>,
    pub hot: Arc<Vec<Arc<HotChunk>>>,
}

impl Snapshot {
    /// Hot rows of one tenant.
    pub fn hot_rows<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a TenantRows> + 'a {
        self.hot.iter().flat_map(move |c| {
            c.tenants
                .iter()
                .filter(move |(k, _)| k.tenant == tenant)
                .map(|(_, rows)| rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstream_bus::{Batch, Entry, Stream, codec};

    fn record(offset: u64, tenant: &str, lines: &[&str]) -> Record {
        let labels = Labels::new(vec![("app".into(), "a".into())]).unwrap();
        let batch = Batch {
            tenant: tenant.into(),
            streams: vec![Stream {
                labels,
                entries: lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| Entry {
                        ts_ns: offset as i64 * 100 + i as i64,
                        line: (*l).into(),
                        metadata: Vec::new(),
                    })
                    .collect(),
            }],
            origin: None,
        };
        Record {
            offset,
            payload: codec::encode(&batch).unwrap(),
        }
    }

    fn from(offset: u64, lines: &[&str], source: &str, seq: u64, part: u32) -> Record {
        let mut batch = codec::decode(&record(offset, "t", lines).payload).unwrap();
        batch.origin = Some(logstream_bus::Origin {
            source: source.into(),
            seq,
            part,
        });
        Record {
            offset,
            payload: codec::encode(&batch).unwrap(),
        }
    }

    #[test]
    fn replays_of_a_sender_are_left_out_and_marks_move() {
        let mut marks = Marks::new();
        marks.insert("n/old".into(), (50, 0));
        let records = vec![
            from(1, &["a1"], "n/a", 10, 0),
            from(2, &["a1-part2"], "n/a", 10, 1),
            from(3, &["a1"], "n/a", 10, 0),    // replay of offset 1
            from(4, &["b1"], "n/b", 7, 0),     // another sender
            from(5, &["a0"], "n/a", 5, 0),     // older than the mark: a late replay
            from(6, &["old"], "n/old", 50, 0), // replay of a request committed before
            record(7, "t", &["plain"]),        // no origin: always kept
            from(8, &["a2"], "n/a", 20, 0),
        ];
        let chunk = HotChunk::from_records(&records, &mut marks, &Plans::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            lines(&chunk.tenants[&key("t")]),
            ["a1", "a1-part2", "b1", "plain", "a2"]
        );
        assert_eq!(chunk.replays, 3);
        assert_eq!((chunk.first_offset, chunk.last_offset), (1, 8));
        let moved: Vec<(&str, (u64, u32))> =
            chunk.marks.iter().map(|(s, m)| (s.as_str(), *m)).collect();
        assert_eq!(
            moved,
            [
                ("n/a", (10, 0)),
                ("n/a", (10, 1)),
                ("n/b", (7, 0)),
                ("n/a", (20, 0))
            ]
        );
        assert_eq!(marks["n/a"], (20, 0));
        assert_eq!(marks["n/b"], (7, 0));
        assert_eq!(marks["n/old"], (50, 0));
    }

    fn key(tenant: &str) -> RowsKey {
        RowsKey::new(tenant, "default")
    }

    fn lines(rows: &TenantRows) -> Vec<String> {
        let col = rows
            .batch
            .column_by_name(logstream_store::schema::LINE)
            .unwrap()
            .as_string::<i32>();
        col.iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn a_chunk_is_cut_at_record_boundaries() {
        // Offsets with gaps, as Kafka transaction markers leave them.
        let records = vec![
            record(10, "t", &["a1", "a2"]),
            record(12, "u", &["x"]),
            record(14, "t", &["b1", "b2", "b3"]),
            record(16, "t", &["c1"]),
        ];
        let chunk = HotChunk::from_records(&records, &mut Marks::new(), &Plans::default())
            .unwrap()
            .unwrap();
        assert_eq!((chunk.first_offset, chunk.last_offset), (10, 16));
        assert_eq!(chunk.tenants[&key("t")].batch.num_rows(), 6);

        let cut = chunk.since_offset(13).unwrap();
        assert_eq!(cut.first_offset, 13);
        assert_eq!(lines(&cut.tenants[&key("t")]), ["b1", "b2", "b3", "c1"]);
        assert_eq!(cut.tenants[&key("t")].line_bytes, 8);
        assert!(
            !cut.tenants.contains_key(&key("u")),
            "tenant u ended before 13"
        );

        let cut = chunk.since_offset(16).unwrap();
        assert_eq!(lines(&cut.tenants[&key("t")]), ["c1"]);
        // Cutting again composes.
        let again = chunk.since_offset(13).unwrap().since_offset(16).unwrap();
        assert_eq!(lines(&again.tenants[&key("t")]), ["c1"]);

        assert!(chunk.since_offset(17).is_none());
        let all = chunk.since_offset(0).unwrap();
        assert_eq!(all.tenants[&key("t")].batch.num_rows(), 6);
        assert_eq!(all.tenants[&key("u")].batch.num_rows(), 1);
    }
}
