//! The Kafka bus against a real Apache Kafka broker (`./e2e/env up`): topic creation, the
//! transactional producer, the consumer group with cooperative rebalancing and offset commits,
//! and the follower. The unreachable-broker test needs no broker.

use logstream_bus::kafka::partitioning::partition_for;
use logstream_bus::kafka::{
    Assignment, Follower, GroupConsumer, KafkaConfig, KafkaMetrics, KafkaPartitionControl,
    KafkaPartitionReader, KafkaProducer, StartOffset, delete_topic, ensure_topic,
};
use logstream_bus::{
    Batch, Entry, Error, Labels, PartitionControl, PartitionReader, Producer, Record, Stream, codec,
};
use logstream_e2e::kafka::TestKafka;
use logstream_e2e::{unique_name, wait_until};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(60);

/// The bus's and librdkafka's logs, shown for failing tests (`RUST_LOG` to tune).
fn logs() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn config(kafka: &TestKafka, topic: &str, partitions: i32) -> KafkaConfig {
    KafkaConfig {
        bootstrap: kafka.bootstrap().to_owned(),
        topic: topic.to_owned(),
        partitions,
        // The test broker shares two cores with builds: give it time rather than flake.
        request_timeout_ms: 30_000,
        // The broker listens on 127.0.0.1 only.
        client: [("broker.address.family".to_owned(), "v4".to_owned())].into(),
        ..KafkaConfig::default()
    }
}

async fn fresh_topic(kafka: &TestKafka, prefix: &str, partitions: i32) -> KafkaConfig {
    let cfg = config(kafka, &unique_name(prefix), partitions);
    let info = ensure_topic(&cfg).await.expect("create topic");
    assert_eq!(info.partitions, partitions);
    cfg
}

fn producer(cfg: &KafkaConfig) -> KafkaProducer {
    KafkaProducer::start(
        cfg,
        unique_name("ingest"),
        cfg.partitions,
        KafkaMetrics::default(),
    )
    .expect("start producer")
}

/// Appends like an agent does: a transient refusal (503/429) is retried after a pause. A
/// failed append must leave no trace, so retries never duplicate.
async fn append(producer: &KafkaProducer, batch: &Batch) {
    for attempt in 1.. {
        match producer.append(batch).await {
            Ok(()) => return,
            // The broker shares two cores with builds: it can stall for many seconds.
            Err(e) if e.is_transient() && attempt < 240 => {
                eprintln!("append attempt {attempt}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("append: {e}"),
        }
    }
}

/// Appends until the answer is final: transient failures (a loaded test broker timing a
/// transaction out) are retried, a refusal is returned.
async fn append_until_final(producer: &KafkaProducer, batch: &Batch) -> Result<(), Error> {
    loop {
        match producer.append(batch).await {
            Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(250)).await,
            other => return other,
        }
    }
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
    .unwrap()
}

/// Line `task:stream:seq` makes every event unique and its push order checkable.
fn entry(task: usize, stream: usize, seq: usize) -> Entry {
    Entry {
        ts_ns: seq as i64,
        line: format!("{task}:{stream}:{seq}"),
        metadata: vec![],
    }
}

/// A decoded record with where it was read.
#[derive(Debug, Clone)]
struct Seen {
    partition: i32,
    offset: u64,
    batch: Batch,
}

fn decode(partition: i32, records: Vec<Record>) -> Vec<Seen> {
    records
        .into_iter()
        .map(|r| Seen {
            partition,
            offset: r.offset,
            batch: codec::decode(&r.payload).expect("decode record"),
        })
        .collect()
}

fn event_total(seen: &[Seen]) -> usize {
    seen.iter().map(|s| s.batch.event_count()).sum()
}

/// Reads from `reader` until `done(all seen so far)` or the timeout.
async fn read_until(
    reader: &mut KafkaPartitionReader,
    partition: i32,
    mut done: impl FnMut(&[Seen]) -> bool,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let records = tokio::time::timeout(left, reader.next(1 << 20))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "partition {partition}: timed out after {} records",
                    seen.len()
                )
            })
            .expect("read");
        seen.extend(decode(partition, records));
    }
    seen
}

#[tokio::test]
async fn ensure_topic_creates_the_partitions_once_and_never_changes_them() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = config(&kafka, &unique_name("ensure"), 5);
    assert_eq!(ensure_topic(&cfg).await?.partitions, 5);
    assert_eq!(
        ensure_topic(&cfg).await?.partitions,
        5,
        "second call is a no-op"
    );
    let grown = KafkaConfig {
        partitions: 9,
        ..cfg.clone()
    };
    assert_eq!(
        ensure_topic(&grown).await?.partitions,
        5,
        "an existing topic keeps its partition count"
    );
    let unplaceable = KafkaConfig {
        topic: unique_name("ensure-rf"),
        replication_factor: 3,
        ..cfg.clone()
    };
    let err = ensure_topic(&unplaceable).await.unwrap_err();
    assert!(
        matches!(err, Error::Rejected(_)),
        "one broker cannot hold 3 replicas: {err}"
    );
    // The operator's uninstall: the topic goes; a topic that never existed is no error.
    assert!(delete_topic(&cfg).await?, "the topic existed");
    assert!(!delete_topic(&unplaceable).await?, "never created");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_batches_arrive_exactly_once_with_each_stream_in_one_partition_in_order()
-> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    const TASKS: usize = 8;
    const BATCHES_PER_TASK: usize = 250;
    const STREAMS_PER_TASK: usize = 10;
    let cfg = fresh_topic(&kafka, "exactly-once", 6).await;
    let metrics = KafkaMetrics::default();
    let producer = KafkaProducer::start(&cfg, unique_name("ingest"), 6, metrics.clone())?;

    let started = Instant::now();
    let mut pushers = Vec::new();
    for task in 0..TASKS {
        let producer = producer.clone();
        pushers.push(tokio::spawn(async move {
            let mut next_seq = [0usize; STREAMS_PER_TASK];
            let mut pushed = 0;
            for b in 0..BATCHES_PER_TASK {
                // 1-3 of the task's streams per batch, 1-5 entries each.
                let streams = (0..1 + b % 3)
                    .map(|k| {
                        let s = (b * 7 + k * 3) % STREAMS_PER_TASK;
                        let entries = (0..1 + (b + k) % 5)
                            .map(|_| {
                                next_seq[s] += 1;
                                entry(task, s, next_seq[s] - 1)
                            })
                            .collect();
                        Stream {
                            labels: labels(&[
                                ("app", format!("app-{s}")),
                                ("task", task.to_string()),
                            ]),
                            entries,
                        }
                    })
                    .collect::<Vec<_>>();
                let batch = Batch {
                    tenant: format!("tenant-{}", task % 3),
                    streams,
                    origin: None,
                };
                pushed += batch.event_count();
                append(&producer, &batch).await;
            }
            pushed
        }));
    }
    let mut expected = 0;
    for p in pushers {
        expected += p.await?;
    }
    let push_time = started.elapsed();
    let committed = metrics.transactions_committed.get();
    eprintln!(
        "pushed {} batches ({expected} events) in {push_time:?} with {committed} transactions",
        TASKS * BATCHES_PER_TASK
    );
    assert!(
        committed < (TASKS * BATCHES_PER_TASK) as u64,
        "concurrent requests share transactions (group commit)"
    );

    let offsets: StartOffset = Arc::new(|_| Ok(0));
    let (group, mut events) = GroupConsumer::start(
        &cfg,
        &unique_name("processors"),
        offsets,
        KafkaMetrics::default(),
    )?;
    let mut readers = Vec::new();
    while readers.len() < 6 {
        match tokio::time::timeout(WAIT, events.recv()).await? {
            Some(Assignment::Assigned {
                partition, reader, ..
            }) => readers.push((partition, reader)),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Each partition is read until the total is reached; counting across partitions needs a
    // shared tally.
    let total = Arc::new(Mutex::new(0usize));
    let mut readings = Vec::new();
    for (partition, mut reader) in readers {
        let total = total.clone();
        readings.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let deadline = Instant::now() + WAIT;
            while *total.lock().unwrap() < expected && Instant::now() < deadline {
                if let Ok(records) =
                    tokio::time::timeout(Duration::from_millis(200), reader.next(1 << 20)).await
                {
                    let seen = decode(partition, records.expect("read"));
                    *total.lock().unwrap() += event_total(&seen);
                    mine.extend(seen);
                }
            }
            mine
        }));
    }
    let mut seen = Vec::new();
    for r in readings {
        seen.extend(r.await?);
    }
    tokio::task::spawn_blocking(move || group.shutdown()).await?;

    assert_eq!(
        event_total(&seen),
        expected,
        "every event arrives, none twice"
    );
    let mut lines = BTreeSet::new();
    let mut stream_partition: HashMap<(String, Labels), i32> = HashMap::new();
    let mut order: BTreeMap<(String, Labels), Vec<usize>> = BTreeMap::new();
    for s in &seen {
        for stream in &s.batch.streams {
            let key = (s.batch.tenant.clone(), stream.labels.clone());
            let p = *stream_partition.entry(key.clone()).or_insert(s.partition);
            assert_eq!(
                p, s.partition,
                "stream {key:?} appears in partitions {p} and {}",
                s.partition
            );
            for e in &stream.entries {
                assert!(lines.insert(e.line.clone()), "{} arrived twice", e.line);
                order.entry(key.clone()).or_default().push(e.ts_ns as usize);
            }
        }
    }
    assert_eq!(order.len(), TASKS * STREAMS_PER_TASK);
    for (key, seqs) in order {
        // Per-partition reads are in offset order, so a stream's entries come in push order.
        let want: Vec<usize> = (0..seqs.len()).collect();
        assert_eq!(seqs, want, "stream {key:?} out of order");
    }
    Ok(())
}

/// One group member as the test drives it: its event stream and what it owns.
struct Member {
    name: &'static str,
    consumer: Option<GroupConsumer>,
    events: UnboundedReceiver<Assignment>,
    owned: BTreeMap<i32, (KafkaPartitionReader, Arc<KafkaPartitionControl>)>,
}

impl Member {
    fn start(cfg: &KafkaConfig, group: &str, name: &'static str, starts: StartOffset) -> Self {
        let (consumer, events) =
            GroupConsumer::start(cfg, group, starts, KafkaMetrics::default()).expect("join");
        Self {
            name,
            consumer: Some(consumer),
            events,
            owned: BTreeMap::new(),
        }
    }

    /// Applies the assignment changes received so far.
    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                Assignment::Assigned {
                    partition,
                    source,
                    reader,
                    control,
                } => {
                    assert!(source.ends_with(&format!("-{partition}")), "{source}");
                    assert_eq!(reader.partition(), partition);
                    let old = self.owned.insert(partition, (reader, control));
                    assert!(old.is_none(), "{}: {partition} assigned twice", self.name);
                }
                Assignment::Revoked { partition } => {
                    assert!(
                        self.owned.remove(&partition).is_some(),
                        "{}: {partition} revoked but not owned",
                        self.name
                    );
                }
            }
        }
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.owned.keys().copied().collect()
    }

    async fn shutdown(&mut self) {
        let consumer = self.consumer.take().expect("running");
        tokio::task::spawn_blocking(move || consumer.shutdown())
            .await
            .unwrap();
        self.drain();
    }
}

/// Start offsets the test dictates, with a log of every call.
#[derive(Clone, Default)]
struct Starts {
    offsets: Arc<Mutex<HashMap<i32, u64>>>,
    calls: Arc<Mutex<Vec<(i32, u64)>>>,
}

impl Starts {
    fn hook(&self) -> StartOffset {
        let me = self.clone();
        Arc::new(move |p| {
            let offset = me.offsets.lock().unwrap().get(&p).copied().unwrap_or(0);
            me.calls.lock().unwrap().push((p, offset));
            Ok(offset)
        })
    }
}

async fn push_numbered(producer: &KafkaProducer, batches: usize) {
    for b in 0..batches {
        append(producer, &one_event(b)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_the_survivor_resumes_at_the_start_offsets()
-> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = fresh_topic(&kafka, "rebalance", 6).await;
    let all: BTreeSet<i32> = (0..6).collect();
    push_numbered(&producer(&cfg), 120).await;
    let group = unique_name("processors");
    let starts = Starts::default();

    let mut a = Member::start(&cfg, &group, "a", starts.hook());
    wait_until("a owns every partition", WAIT, || {
        a.drain();
        let ok = a.partitions() == all;
        async move { Ok(ok.then_some(())) }
    })
    .await?;
    let mut b = Member::start(&cfg, &group, "b", starts.hook());
    wait_until("a and b split the partitions", WAIT, || {
        a.drain();
        b.drain();
        let (pa, pb) = (a.partitions(), b.partitions());
        let split = !pa.is_empty()
            && !pb.is_empty()
            && pa.is_disjoint(&pb)
            && pa.union(&pb).copied().collect::<BTreeSet<_>>() == all;
        async move { Ok(split.then_some(())) }
    })
    .await?;
    let moved = b.partitions();
    assert!(
        moved.len() >= 2,
        "cooperative-sticky balances 6 partitions 3/3: {moved:?}"
    );

    // b reads the first three records of each of its partitions and "stores" the first two:
    // the processor would now resume at the third record's offset.
    let mut resume_at = BTreeMap::new();
    for (&p, (reader, control)) in b.owned.iter_mut() {
        let seen = read_until(reader, p, |s| s.len() >= 3).await;
        assert_eq!(reader.position(), seen.last().unwrap().offset + 1);
        control.stored_below(seen[2].offset);
        resume_at.insert(p, seen[2].clone());
    }
    starts
        .offsets
        .lock()
        .unwrap()
        .extend(resume_at.iter().map(|(p, s)| (*p, s.offset)));

    b.shutdown().await;
    assert!(b.owned.is_empty(), "leaving revokes everything b had");
    wait_until("a takes over b's partitions", WAIT, || {
        a.drain();
        let ok = a.partitions() == all;
        async move { Ok(ok.then_some(())) }
    })
    .await?;
    let calls = starts.calls.lock().unwrap().clone();
    for (&p, want) in &resume_at {
        assert!(
            calls.contains(&(p, want.offset)),
            "start_offset({p}) was asked on take-over: {calls:?}"
        );
        let (reader, _) = a.owned.get_mut(&p).unwrap();
        assert_eq!(
            reader.position(),
            want.offset,
            "partition {p} starts at the stored offset"
        );
        let first = read_until(reader, p, |s| !s.is_empty()).await;
        assert_eq!(
            first[0].offset, want.offset,
            "partition {p} resumes exactly there"
        );
        assert_eq!(first[0].batch, want.batch);
    }
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_below_becomes_the_groups_committed_offset() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = fresh_topic(&kafka, "commits", 3).await;
    push_numbered(&producer(&cfg), 60).await;
    let group = unique_name("processors");
    let mut m = Member::start(&cfg, &group, "m", Starts::default().hook());
    wait_until("m owns every partition", WAIT, || {
        m.drain();
        let ok = m.owned.len() == 3;
        async move { Ok(ok.then_some(())) }
    })
    .await?;
    let mut want = vec![None; 3];
    for (&p, (reader, control)) in m.owned.iter_mut() {
        let seen = read_until(reader, p, |s| s.len() >= 4).await;
        assert!(seen.len() >= 4);
        control.stored_below(reader.position());
        want[p as usize] = Some(reader.position() as i64);
    }
    let topic = cfg.topic.clone();
    wait_until("the commits reach the broker", WAIT, || {
        let got = kafka.committed_offsets(&group, &topic, 3);
        let want = want.clone();
        async move { Ok((got? == want).then_some(())) }
    })
    .await?;
    m.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_reads_every_partition_from_the_given_offsets() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = fresh_topic(&kafka, "follow", 4).await;
    push_numbered(&producer(&cfg), 100).await;
    // Each batch is one record of one stream: the records per partition are known.
    let mut want = BTreeMap::new();
    for b in 0..100 {
        let l = labels(&[("app", format!("app-{}", b % 60))]);
        *want.entry(partition_for("tenant", &l, 4)).or_insert(0) += 1;
    }

    let from_zero = (0..4).map(|p| (p, 0)).collect();
    let (follower, parts) = Follower::start(&cfg, from_zero, KafkaMetrics::default())?;
    assert_eq!(parts.len(), 4);
    let mut per_partition = BTreeMap::new();
    for (p, mut reader, control) in parts {
        assert_eq!(reader.position(), 0);
        let n = want.get(&p).copied().unwrap_or(0);
        let seen = read_until(&mut reader, p, |s| s.len() >= n).await;
        assert_eq!(seen.len(), n, "partition {p}");
        // The last transaction's commit marker lies past the last record; once the consumer has
        // reached the end of the partition, a reader that read everything is exactly at the end
        // (no lag left over from the marker).
        wait_until(
            "a caught-up reader is at the end",
            Duration::from_secs(10),
            || {
                let ok = control.end() == reader.position();
                async move { Ok(ok.then_some(())) }
            },
        )
        .await?;
        control.stored_below(reader.position()); // a no-op without a group
        per_partition.insert(p, seen);
    }
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;

    // A second follower from the third record of each partition sees exactly the rest.
    let starts: Vec<(i32, u64)> = per_partition
        .iter()
        .filter(|(_, s)| s.len() >= 3)
        .map(|(p, s)| (*p, s[2].offset))
        .collect();
    assert!(!starts.is_empty());
    let (follower, parts) = Follower::start(&cfg, starts, KafkaMetrics::default())?;
    for (p, mut reader, _) in parts {
        let want = &per_partition[&p][2..];
        assert_eq!(reader.position(), want[0].offset);
        let seen = read_until(&mut reader, p, |s| s.len() >= want.len()).await;
        let offsets = |v: &[Seen]| v.iter().map(|s| s.offset).collect::<Vec<_>>();
        assert_eq!(offsets(&seen), offsets(want), "partition {p}");
    }
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;
    Ok(())
}

fn one_event(b: usize) -> Batch {
    Batch {
        tenant: "tenant".into(),
        streams: vec![Stream {
            labels: labels(&[("app", format!("app-{}", b % 60))]),
            entries: vec![entry(0, b % 60, b)],
        }],
        origin: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_producer_is_fenced_and_does_not_fight_back() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = fresh_topic(&kafka, "fencing", 2).await;
    let id = unique_name("ingest-0");
    // A tiny queue: requests answered without a transaction must leave it too.
    let small_queue = KafkaConfig {
        max_queued_bytes: 1_000,
        ..cfg.clone()
    };
    let old = KafkaProducer::start(&small_queue, id.clone(), 2, KafkaMetrics::default())?;
    old.append(&one_event(0)).await?;
    // The replica restarts: the new instance fences the old one.
    let new = KafkaProducer::start(&cfg, id, 2, KafkaMetrics::default())?;
    new.append(&one_event(1)).await?;
    let err = old.append(&one_event(2)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(!old.is_available());
    for b in 3..43 {
        let err = old.append(&one_event(b)).await.unwrap_err();
        assert!(err.to_string().contains("fenced"), "{err}");
    }
    // The old instance stays down instead of fencing the new one back.
    new.append(&one_event(4)).await?;
    assert!(new.is_available());

    let starts = (0..2).map(|p| (p, 0)).collect();
    let (follower, parts) = Follower::start(&cfg, starts, KafkaMetrics::default())?;
    let mut lines = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    let mut parts: Vec<_> = parts.into_iter().map(|(p, r, _)| (p, r)).collect();
    while lines.len() < 3 && Instant::now() < deadline {
        for (p, reader) in &mut parts {
            if let Ok(records) =
                tokio::time::timeout(Duration::from_millis(100), reader.next(1 << 20)).await
            {
                for seen in decode(*p, records?) {
                    lines.extend(
                        seen.batch
                            .streams
                            .into_iter()
                            .flat_map(|s| s.entries)
                            .map(|e| e.line),
                    );
                }
            }
        }
    }
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;
    let want: BTreeSet<String> = [0, 1, 4]
        .iter()
        .map(|b| entry(0, b % 60, *b).line)
        .collect();
    assert_eq!(lines, want, "only acknowledged pushes are visible");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_pauses_its_partition_and_loses_nothing() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    const BATCHES: usize = 300;
    let cfg = fresh_topic(&kafka, "pause", 1).await;
    let producer = producer(&cfg);
    let mut pushers = Vec::new();
    for task in 0..10 {
        let producer = producer.clone();
        pushers.push(tokio::spawn(async move {
            for b in (task..BATCHES).step_by(10) {
                append(&producer, &one_event(b)).await;
            }
        }));
    }
    for p in pushers {
        p.await?;
    }
    let metrics = KafkaMetrics::default();
    let (follower, mut parts) = Follower::start(&cfg, vec![(0, 0)], metrics.clone())?;
    let (_, mut reader, _) = parts.pop().unwrap();
    // Nobody reads: the channel fills and the partition is paused.
    wait_until("the partition is paused", WAIT, || {
        let paused = metrics.paused_partitions.get() == 1;
        async move { Ok(paused.then_some(())) }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = read_until(&mut reader, 0, |s| s.len() >= BATCHES).await;
    assert_eq!(seen.len(), BATCHES, "every record once");
    assert!(
        seen.windows(2).all(|w| w[0].offset < w[1].offset),
        "in offset order"
    );
    let lines: BTreeSet<String> = seen
        .iter()
        .flat_map(|s| &s.batch.streams)
        .flat_map(|s| &s.entries)
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(lines.len(), BATCHES);
    wait_until("the partition is resumed", WAIT, || {
        let resumed = metrics.paused_partitions.get() == 0;
        async move { Ok(resumed.then_some(())) }
    })
    .await?;
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_the_broker_does_not_hold_is_counted_and_reading_restarts_at_the_earliest()
-> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    let cfg = fresh_topic(&kafka, "reset", 1).await;
    push_numbered(&producer(&cfg), 5).await;
    let metrics = KafkaMetrics::default();
    let (follower, mut parts) = Follower::start(&cfg, vec![(0, 1_000_000)], metrics.clone())?;
    let (_, mut reader, _) = parts.pop().unwrap();
    let seen = read_until(&mut reader, 0, |s| s.len() >= 5).await;
    assert_eq!(seen[0].offset, 0, "restarted at the earliest offset");
    assert!(metrics.offset_resets.get() >= 1, "the reset is counted");
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_topic_refuses_is_rejected_and_leaves_no_trace() -> anyhow::Result<()> {
    logs();
    let Some(kafka) = TestKafka::connect().await else {
        return Ok(());
    };
    // A topic made without ensure_topic keeps the broker's 1 MiB message limit.
    let topic = kafka.fresh_topic("refused", 1).await?;
    let cfg = config(&kafka, &topic, 1);
    let producer = producer(&cfg);
    append(&producer, &one_event(0)).await;
    // ~3 MiB of hex digits: lz4 cannot bring it under 1 MiB.
    use rand::Rng;
    let mut rng = rand::rng();
    let big = Batch {
        tenant: "tenant".into(),
        streams: vec![Stream {
            labels: labels(&[("app", "big".into())]),
            entries: (0..3_000)
                .map(|i| Entry {
                    ts_ns: i,
                    line: (0..512)
                        .map(|_| format!("{:02x}", rng.random::<u8>()))
                        .collect(),
                    metadata: vec![],
                })
                .collect(),
        }],
        origin: None,
    };
    let err = append_until_final(&producer, &big).await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err:?}");
    // The refusal was about the data, not the brokers: the next push goes through at once.
    append(&producer, &one_event(1)).await;
    assert!(producer.is_available());
    // Sharing a transaction with the refused batch costs the others nothing.
    let lingering = KafkaProducer::start(
        &KafkaConfig {
            linger_ms: 300,
            ..cfg.clone()
        },
        unique_name("ingest"),
        1,
        KafkaMetrics::default(),
    )?;
    let (two, three) = (one_event(2), one_event(3));
    let (refused, (), ()) = tokio::join!(
        append_until_final(&lingering, &big),
        append(&lingering, &two),
        append(&lingering, &three),
    );
    assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
    let want: BTreeSet<String> = (0..4).map(|b| entry(0, b, b).line).collect();

    let (follower, mut parts) = Follower::start(&cfg, vec![(0, 0)], KafkaMetrics::default())?;
    let (_, mut reader, _) = parts.pop().unwrap();
    let seen = read_until(&mut reader, 0, |s| s.len() >= want.len()).await;
    let lines: BTreeSet<String> = seen
        .iter()
        .flat_map(|s| &s.batch.streams)
        .flat_map(|s| &s.entries)
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(lines, want);
    // Nothing else is readable: a short wait returns nothing.
    let more = tokio::time::timeout(Duration::from_secs(2), reader.next(1 << 20)).await;
    assert!(
        more.is_err(),
        "no part of the refused batch is visible: {more:?}"
    );
    tokio::task::spawn_blocking(move || follower.shutdown()).await?;
    Ok(())
}

#[tokio::test]
async fn unreachable_brokers_answer_unavailable_within_the_request_timeout() {
    logs();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = KafkaConfig {
        bootstrap: format!("127.0.0.1:{port}"),
        request_timeout_ms: 2_000,
        // One request may wait; a second one is refused as "full" (429).
        max_queued_requests: 1,
        ..KafkaConfig::default()
    };
    let metrics = KafkaMetrics::default();
    let producer = KafkaProducer::start(&cfg, unique_name("ingest"), 3, metrics.clone())
        .expect("start does not need the brokers");
    let batch = Batch {
        tenant: "t".into(),
        streams: vec![Stream {
            labels: labels(&[("app", "a".into())]),
            entries: vec![entry(0, 0, 0)],
        }],
        origin: None,
    };
    let started = Instant::now();
    let first = {
        let (producer, batch) = (producer.clone(), batch.clone());
        tokio::spawn(async move { producer.append(&batch).await })
    };
    // The first request waits in the queue while the thread looks for the brokers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let full = producer.append(&batch).await.unwrap_err();
    assert!(matches!(full, Error::Full { .. }), "{full}");
    assert!(full.is_transient());
    assert_eq!(metrics.rejected_full.get(), 1);
    let err = first.await.unwrap().unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    // Known down now: the next push is answered at once.
    let started = Instant::now();
    let err = producer.append(&batch).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert!(metrics.rejected_unavailable.get() >= 1);
    assert!(!producer.is_available());
}
