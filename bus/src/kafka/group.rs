//! The processors' side of the Kafka bus: a consumer group on the topic that hands each
//! assigned partition to the processor as an [`Assignment`].
//!
//! The group uses the classic protocol with the `cooperative-sticky` assignor: a rebalance
//! revokes only the partitions that must move, and every member keeps reading (and keeps the
//! in-memory state it built) for the rest. With the eager protocol every rebalance would take
//! every partition from every member, and each processor would have to drop its unflushed
//! events and re-read them from its manifest's offset.
//!
//! Where a partition starts is the processor's decision, not the group's: on assignment the
//! consumer thread calls `start_offset(partition)` (the processor reads its manifest) before
//! anything is fetched, and assigns the partition at that offset. The group's committed offset
//! only follows what is stored ([`PartitionControl::stored_below`](crate::PartitionControl)),
//! for lag monitoring and for tools.

use super::fetch::{self, Command, FetchContext, Router};
use super::{KafkaConfig, KafkaMetrics, KafkaPartitionControl, KafkaPartitionReader, classify};
use crate::error::{Error, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where to start reading a newly assigned partition; runs on the consumer thread.
pub type StartOffset = Arc<dyn Fn(i32) -> Result<u64> + Send + Sync>;

const START_BACKOFF_MIN: Duration = Duration::from_millis(100);
const START_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A change of what this member reads.
#[derive(Debug)]
pub enum Assignment {
    /// The partition is now this member's, read from the offset `start_offset` returned.
    Assigned {
        partition: i32,
        /// The processor's manifest name of the partition ([`super::source_name`]).
        source: String,
        reader: KafkaPartitionReader,
        control: Arc<KafkaPartitionControl>,
    },
    /// The partition moved away (or the consumer is stopping). Stop reading it and drop what
    /// was not stored: the next owner reads it again from the manifest. (The reader may still
    /// yield records buffered before the revoke, then fails; nothing after the revoke.)
    Revoked { partition: i32 },
}

/// What rebalances need besides the router.
pub(crate) struct Hooks {
    start_offset: StartOffset,
    assignments: mpsc::UnboundedSender<Assignment>,
}

/// A member of the processors' consumer group. [`GroupConsumer::shutdown`] leaves the group;
/// dropping it stops the thread too, without waiting.
#[derive(Debug)]
pub struct GroupConsumer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GroupConsumer {
    /// Joins `group` on `cfg.topic`. `start_offset(partition)` runs on the consumer thread when a
    /// partition is assigned, before any fetch, and returns where to read from (the processor
    /// reads its manifest in object storage: it may block for a while; on `Err` it is retried
    /// with backoff and logged).
    pub fn start(
        cfg: &KafkaConfig,
        group: &str,
        start_offset: StartOffset,
        metrics: KafkaMetrics,
    ) -> Result<(GroupConsumer, mpsc::UnboundedReceiver<Assignment>)> {
        cfg.validate().map_err(Error::Rejected)?;
        let (assignments, events) = mpsc::unbounded_channel();
        let (commands, command_rx) = std_mpsc::channel();
        let router = Router::new(cfg.topic.clone(), Some(commands), metrics.clone());
        let hooks = Hooks {
            start_offset,
            assignments,
        };
        let ctx = FetchContext::new(router, Some(hooks), metrics);
        let stop = ctx.stop.clone();
        let consumer: BaseConsumer<FetchContext> = consumer_config(cfg, group)
            .create_with_context(ctx)
            .map_err(|e| Error::Rejected(format!("create Kafka consumer: {e}")))?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|e| classify("subscribe", &e))?;
        let thread = std::thread::Builder::new()
            .name("kafka-group".into())
            .spawn(move || consume_then_leave(consumer, &command_rx))
            .map_err(|e| Error::Kafka(format!("spawn consumer thread: {e}")))?;
        let member = GroupConsumer {
            stop,
            thread: Some(thread),
        };
        Ok((member, events))
    }

    /// Leaves the group cleanly (its partitions are revoked and move to other members at
    /// once) and joins the consumer thread. Blocks for up to a few seconds: from async code,
    /// call it in `spawn_blocking`.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the Kafka consumer thread panicked");
        }
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn consumer_config(cfg: &KafkaConfig, group: &str) -> rdkafka::ClientConfig {
    let mut config = cfg.client_config(&[
        // Reached only when retention dropped records before they were stored; counted and
        // logged by the context (`offset_resets`).
        ("auto.offset.reset", "earliest"),
        ("fetch.wait.max.ms", "50"),
        // A killed processor's partitions move after 10 s.
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "3000"),
        ("statistics.interval.ms", fetch::STATS_INTERVAL_MS),
    ]);
    config
        .set("group.id", group)
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        // End-of-partition offsets in the statistics tell when a reader has read everything
        // (see `Router::update_ends`).
        .set("enable.partition.eof", "true");
    config
}

/// The consumer thread: poll until stopped, then close the consumer, which revokes what is
/// assigned through the rebalance callback and leaves the group.
fn consume_then_leave(
    consumer: BaseConsumer<FetchContext>,
    commands: &std_mpsc::Receiver<Command>,
) {
    let ctx = consumer.context().clone();
    fetch::run(&consumer, commands);
    drop(consumer);
    for partition in ctx.router().close_all() {
        if let Some(hooks) = &ctx.group {
            let _ = hooks.assignments.send(Assignment::Revoked { partition });
        }
    }
}

/// The rebalance callback (runs inside `poll` on the consumer thread).
pub(crate) fn rebalance(
    ctx: &FetchContext,
    hooks: &Hooks,
    consumer: &BaseConsumer<FetchContext>,
    err: RDKafkaRespErr,
    tpl: &mut TopicPartitionList,
) {
    ctx.metrics.rebalances.inc();
    match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => assign(ctx, hooks, consumer, tpl),
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => revoke(ctx, hooks, consumer, tpl),
        other => {
            // librdkafka: on a rebalance error the application must drop its assignment; the
            // group then rebalances again.
            tracing::error!(error = ?other, "consumer group rebalance failed; dropping every partition");
            for partition in ctx.router().close_all() {
                let _ = hooks.assignments.send(Assignment::Revoked { partition });
            }
            if let Err(e) = consumer.unassign() {
                tracing::error!(error = %e, "could not clear the assignment");
            }
        }
    }
}

fn assign(
    ctx: &FetchContext,
    hooks: &Hooks,
    consumer: &BaseConsumer<FetchContext>,
    tpl: &mut TopicPartitionList,
) {
    let topic = ctx.router().topic().to_owned();
    let partitions: Vec<i32> = tpl
        .elements_for_topic(&topic)
        .iter()
        .map(|e| e.partition())
        .collect();
    let mut starts = Vec::new();
    for partition in partitions {
        // None only while stopping: the partition is assigned but never routed.
        if let Some(start) = start_offset(ctx, hooks, partition)
            && tpl
                .set_partition_offset(&topic, partition, Offset::Offset(start as i64))
                .is_ok()
        {
            starts.push((partition, start));
        }
    }
    if let Err(e) = consumer.incremental_assign(tpl) {
        tracing::error!(error = %e, "could not take the assigned partitions");
        return;
    }
    // A partition paused by an earlier assignment must fetch again.
    let _ = consumer.resume(tpl);
    tracing::info!(partitions = ?starts, "partitions assigned");
    let mut router = ctx.router();
    for (partition, start) in starts {
        let (reader, control) = router.open(partition, start);
        let _ = hooks.assignments.send(Assignment::Assigned {
            partition,
            source: super::source_name(&topic, partition),
            reader,
            control,
        });
    }
}

fn revoke(
    ctx: &FetchContext,
    hooks: &Hooks,
    consumer: &BaseConsumer<FetchContext>,
    tpl: &TopicPartitionList,
) {
    if consumer.assignment_lost() {
        tracing::warn!("partitions lost (session timed out): another member may own them already");
    }
    let partitions: Vec<i32> = {
        let mut router = ctx.router();
        let topic = router.topic().to_owned();
        tpl.elements_for_topic(&topic)
            .iter()
            .map(|e| e.partition())
            .filter(|p| router.close(*p))
            .collect()
    };
    tracing::info!(?partitions, "partitions revoked");
    for partition in partitions {
        let _ = hooks.assignments.send(Assignment::Revoked { partition });
    }
    if let Err(e) = consumer.incremental_unassign(tpl) {
        tracing::error!(error = %e, "could not release the revoked partitions");
    }
}

/// Asks the processor where `partition` starts, retrying with backoff until it answers or
/// the consumer stops.
fn start_offset(ctx: &FetchContext, hooks: &Hooks, partition: i32) -> Option<u64> {
    let mut backoff = START_BACKOFF_MIN;
    loop {
        match (hooks.start_offset)(partition) {
            Ok(offset) => return Some(offset),
            Err(e) => {
                tracing::warn!(partition, error = %e, retry_in = ?backoff, "start offset unknown; retrying")
            }
        }
        if ctx.stop.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(START_BACKOFF_MAX);
    }
}
