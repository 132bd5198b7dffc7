//! What the group consumer and the follower share: one OS thread polls a `BaseConsumer` and
//! routes each message to its partition's bounded channel, read by a [`KafkaPartitionReader`].
//!
//! Back-pressure per partition: when a partition's channel is full, the message just polled is
//! kept in that partition's stash and the partition is paused. librdkafka then drops what it
//! had prefetched for it and, on resume, fetches again from just after the stashed message, so
//! nothing is lost and one slow reader never stalls the others. Each loop iteration retries
//! the stashes and resumes the partitions whose stash went through.

use super::{KafkaMetrics, forward_log, group};
use crate::error::{Error, Result};
use crate::partition::Record;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// Records buffered per partition between the consumer thread and the reader (librdkafka
/// prefetches more behind them).
const CHANNEL_RECORDS: usize = 32;
/// `statistics.interval.ms`: how often librdkafka reports partition ends (see
/// [`KafkaPartitionControl::end`]).
pub(crate) const STATS_INTERVAL_MS: &str = "500";
const POLL: Duration = Duration::from_millis(100);
/// Poll timeout while some partition is paused, so its stash is retried soon.
const POLL_PAUSED: Duration = Duration::from_millis(5);

/// Reads one assigned partition. `next` fails once the partition is revoked or its consumer
/// stops; the owner then drops it.
#[derive(Debug)]
pub struct KafkaPartitionReader {
    partition: i32,
    position: u64,
    rx: mpsc::Receiver<Record>,
}

impl KafkaPartitionReader {
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

#[async_trait::async_trait]
impl crate::PartitionReader for KafkaPartitionReader {
    fn position(&self) -> u64 {
        self.position
    }

    async fn next(&mut self, max_bytes: usize) -> Result<Vec<Record>> {
        // `recv` is cancel-safe, and nothing below awaits: dropping the future loses nothing.
        let Some(first) = self.rx.recv().await else {
            return Err(Error::Kafka(format!(
                "partition {} was revoked or its consumer stopped",
                self.partition
            )));
        };
        let mut bytes = first.payload.len();
        let mut out = vec![first];
        while bytes < max_bytes {
            match self.rx.try_recv() {
                Ok(r) => {
                    bytes += r.payload.len();
                    out.push(r);
                }
                Err(_) => break,
            }
        }
        if let Some(last) = out.last() {
            self.position = last.offset + 1;
        }
        Ok(out)
    }
}

/// The bus side of one assigned partition: its end, and offset commits for the group.
#[derive(Debug)]
pub struct KafkaPartitionControl {
    partition: i32,
    assignment: u64,
    end: Arc<AtomicU64>,
    commands: Option<std_mpsc::Sender<Command>>,
}

impl KafkaPartitionControl {
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl crate::PartitionControl for KafkaPartitionControl {
    /// The partition's last stable offset as of librdkafka's latest statistics (every 500 ms),
    /// or just past the last record handed to the reader if that is further. With transactions
    /// the end lies past the last commit marker, so a reader that has read everything may
    /// stay a little below it until the next record arrives.
    fn end(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }

    /// Commits `offset` as the group's offset for the partition (asynchronously), if this
    /// process still owns the partition; a no-op for a follower.
    fn stored_below(&self, offset: u64) {
        let Some(commands) = &self.commands else {
            return;
        };
        let sent = commands.send(Command::Commit {
            partition: self.partition,
            assignment: self.assignment,
            offset,
        });
        if sent.is_err() {
            tracing::debug!(
                partition = self.partition,
                offset,
                "consumer stopped; offset not committed"
            );
        }
    }
}

/// Requests from controls to the consumer thread.
#[derive(Debug)]
pub(crate) enum Command {
    Commit {
        partition: i32,
        assignment: u64,
        offset: u64,
    },
}

/// The consumer thread's state of one assigned partition.
#[derive(Debug)]
struct Slot {
    /// Distinguishes this assignment from an earlier one of the same partition, so a stale
    /// control cannot commit for the new owner.
    assignment: u64,
    tx: mpsc::Sender<Record>,
    stash: VecDeque<Record>,
    paused: bool,
    end: Arc<AtomicU64>,
    /// Just past the last record handed on (the start offset before any).
    delivered: u64,
}

/// The assigned partitions of one consumer and their channels.
#[derive(Debug)]
pub(crate) struct Router {
    topic: String,
    slots: HashMap<i32, Slot>,
    next_assignment: u64,
    commands: Option<std_mpsc::Sender<Command>>,
    metrics: KafkaMetrics,
}

impl Router {
    pub(crate) fn new(
        topic: String,
        commands: Option<std_mpsc::Sender<Command>>,
        metrics: KafkaMetrics,
    ) -> Self {
        Self {
            topic,
            slots: HashMap::new(),
            next_assignment: 0,
            commands,
            metrics,
        }
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn assigned(&self) -> Vec<i32> {
        self.slots.keys().copied().collect()
    }

    /// Starts routing `partition` from `start`, replacing an earlier assignment of it.
    pub(crate) fn open(
        &mut self,
        partition: i32,
        start: u64,
    ) -> (KafkaPartitionReader, Arc<KafkaPartitionControl>) {
        self.close(partition);
        let (tx, rx) = mpsc::channel(CHANNEL_RECORDS);
        self.next_assignment += 1;
        let end = Arc::new(AtomicU64::new(start));
        self.slots.insert(
            partition,
            Slot {
                assignment: self.next_assignment,
                tx,
                stash: VecDeque::new(),
                paused: false,
                end: end.clone(),
                delivered: start,
            },
        );
        self.metrics.assigned_partitions.inc();
        let reader = KafkaPartitionReader {
            partition,
            position: start,
            rx,
        };
        let control = Arc::new(KafkaPartitionControl {
            partition,
            assignment: self.next_assignment,
            end,
            commands: self.commands.clone(),
        });
        (reader, control)
    }

    /// Stops routing `partition`: its reader sees the channel close. False if not assigned.
    pub(crate) fn close(&mut self, partition: i32) -> bool {
        let Some(slot) = self.slots.remove(&partition) else {
            return false;
        };
        self.metrics.assigned_partitions.dec();
        if slot.paused {
            self.metrics.paused_partitions.dec();
        }
        true
    }

    pub(crate) fn close_all(&mut self) -> Vec<i32> {
        let all = self.assigned();
        for p in &all {
            self.close(*p);
        }
        all
    }

    /// Hands a polled message to its partition's reader, or stashes it and pauses.
    fn route<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, msg: &BorrowedMessage) {
        let partition = msg.partition();
        let Some(slot) = self.slots.get_mut(&partition) else {
            return; // no longer assigned: the next owner reads it
        };
        let record = Record {
            offset: msg.offset().max(0) as u64,
            payload: msg.payload().unwrap_or_default().to_vec(),
        };
        slot.delivered = slot.delivered.max(record.offset + 1);
        slot.end.fetch_max(record.offset + 1, Ordering::Relaxed);
        if !slot.stash.is_empty() {
            // Only prefetched before the pause took effect; keep order.
            slot.stash.push_back(record);
            return;
        }
        match slot.tx.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                slot.stash.push_back(record);
                pause(&self.topic, consumer, partition, slot, &self.metrics);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The reader was dropped without the partition being revoked: stop fetching.
                pause(&self.topic, consumer, partition, slot, &self.metrics);
            }
        }
    }

    /// Moves stashed records into channels that have room again and resumes those partitions.
    /// True while some partition stays paused.
    fn retry_stashes<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> bool {
        let mut still_paused = false;
        for (&partition, slot) in self.slots.iter_mut().filter(|(_, s)| s.paused) {
            while let Some(record) = slot.stash.pop_front() {
                match slot.tx.try_send(record) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(record)) => {
                        slot.stash.push_front(record);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => slot.stash.clear(),
                }
            }
            if slot.stash.is_empty() && !slot.tx.is_closed() {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&self.topic, partition);
                match consumer.resume(&tpl) {
                    Ok(()) => {
                        slot.paused = false;
                        self.metrics.paused_partitions.dec();
                    }
                    Err(e) => tracing::warn!(partition, error = %e, "could not resume partition"),
                }
            }
            still_paused |= slot.paused;
        }
        still_paused
    }

    /// Commits for a control if its assignment is still current.
    fn commit<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, command: Command) {
        let Command::Commit {
            partition,
            assignment,
            offset,
        } = command;
        if self.slots.get(&partition).map(|s| s.assignment) != Some(assignment) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let added = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset as i64));
        if let Err(e) = added.and_then(|()| consumer.commit(&tpl, CommitMode::Async)) {
            self.metrics.offset_commit_failures.inc();
            tracing::warn!(partition, offset, error = %e, "offset commit failed; the next flush retries");
        }
    }

    /// Takes partition ends from librdkafka's statistics: the last stable offset, which is what
    /// a `read_committed` consumer can reach.
    /// Refreshes each partition's end from librdkafka's statistics. While the consumer has
    /// not reached the end, it is the last stable offset. Once it has (it fetched up to the
    /// last stable offset and holds nothing unread), everything there is has been handed on, so the end is
    /// just past the last record: the offsets between are transaction markers, which carry no
    /// record, and a reader that has read everything then sits exactly at the end (no lag).
    fn update_ends(&self, stats: &Statistics) {
        let Some(topic) = stats.topics.get(&self.topic) else {
            return;
        };
        for (p, slot) in &self.slots {
            let Some(s) = topic.partitions.get(p).filter(|s| s.ls_offset >= 0) else {
                continue;
            };
            // Fetched up to the last stable offset with nothing left in librdkafka's queue (or
            // end of partition signalled there): every record there is has been handed on.
            let fetched_all = s.next_offset >= s.ls_offset && s.fetchq_cnt == 0;
            if fetched_all || s.eof_offset >= s.ls_offset {
                slot.end.store(slot.delivered, Ordering::Relaxed);
            } else {
                slot.end.fetch_max(s.ls_offset as u64, Ordering::Relaxed);
            }
        }
    }
}

fn pause<C: ConsumerContext>(
    topic: &str,
    consumer: &BaseConsumer<C>,
    partition: i32,
    slot: &mut Slot,
    metrics: &KafkaMetrics,
) {
    if slot.paused {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    match consumer.pause(&tpl) {
        Ok(()) => {
            slot.paused = true;
            metrics.paused_partitions.inc();
        }
        // Without the pause librdkafka keeps delivering; the stash keeps them in order.
        Err(e) => tracing::warn!(partition, error = %e, "could not pause partition"),
    }
}

/// The consumer's context: the router, and for a group member what rebalances need.
pub(crate) struct FetchContext {
    router: Mutex<Router>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) group: Option<group::Hooks>,
    pub(crate) metrics: KafkaMetrics,
}

impl std::fmt::Debug for FetchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchContext")
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl FetchContext {
    pub(crate) fn new(router: Router, group: Option<group::Hooks>, metrics: KafkaMetrics) -> Self {
        Self {
            router: Mutex::new(router),
            stop: Arc::new(AtomicBool::new(false)),
            group,
            metrics,
        }
    }

    /// The router; only the consumer thread locks it, never across a `poll`.
    pub(crate) fn router(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for FetchContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "OFFSET" && message.contains("offset reset") {
            // Reached only when the position is no longer on the broker: retention dropped
            // records before they were stored, and reading resumes at the earliest offset.
            self.metrics.offset_resets.inc();
            tracing::error!(
                detail = message,
                "Kafka dropped records before LogStream stored them"
            );
            return;
        }
        forward_log(level, fac, message);
    }

    fn stats(&self, statistics: Statistics) {
        self.router().update_ends(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is how statistics learn a reader caught up, not a problem.
        if matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl ConsumerContext for FetchContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match &self.group {
            Some(hooks) => group::rebalance(self, hooks, consumer, err, tpl),
            None => tracing::warn!(?err, "rebalance event without a group; ignored"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.metrics.offset_commits.inc();
            }
            Err(e) => {
                self.metrics.offset_commit_failures.inc();
                tracing::warn!(error = %e, ?offsets, "offset commit failed; the next flush retries");
            }
        }
    }
}

/// The consumer thread's loop, until `stop` is set. The caller drops the consumer afterwards,
/// which leaves the group (revoking what is assigned).
pub(crate) fn run(consumer: &BaseConsumer<FetchContext>, commands: &std_mpsc::Receiver<Command>) {
    let ctx = consumer.context().clone();
    while !ctx.stop.load(Ordering::Relaxed) {
        let paused = {
            let mut router = ctx.router();
            while let Ok(command) = commands.try_recv() {
                router.commit(consumer, command);
            }
            router.retry_stashes(consumer)
        };
        match consumer.poll(if paused { POLL_PAUSED } else { POLL }) {
            None => {}
            Some(Ok(msg)) => ctx.router().route(consumer, &msg),
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                ctx.metrics.consumer_errors.inc();
                tracing::warn!(error = %e, "Kafka consumer error");
            }
        }
    }
}
