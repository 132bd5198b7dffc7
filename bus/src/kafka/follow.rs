//! The query side of the Kafka bus: read given partitions from given offsets, outside any
//! consumer group, so queries see acknowledged events before processors put them in Parquet.
//!
//! Like the group consumer it reads `read_committed` (a push is visible once acknowledged, and
//! never if it failed) and routes through the same per-partition channels with pause and
//! resume. It never commits: [`PartitionControl::stored_below`](crate::PartitionControl) is a
//! no-op here.

use super::fetch::{self, FetchContext, Router};
use super::{KafkaConfig, KafkaMetrics, KafkaPartitionControl, KafkaPartitionReader, classify};
use crate::error::{Error, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

/// librdkafka needs a `group.id` to assign partitions; the follower never joins or commits,
/// so every follower can share this one.
const FOLLOWER_GROUP: &str = "logstream-follower";

/// A partition handed out by [`Follower::start`].
pub type FollowedPartition = (i32, KafkaPartitionReader, Arc<KafkaPartitionControl>);

/// Reads a fixed set of partitions until shut down.
#[derive(Debug)]
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts reading each `(partition, offset)` of `cfg.topic`; returns one reader and
    /// control per partition, in the order given.
    pub fn start(
        cfg: &KafkaConfig,
        starts: Vec<(i32, u64)>,
        metrics: KafkaMetrics,
    ) -> Result<(Follower, Vec<FollowedPartition>)> {
        cfg.validate().map_err(Error::Rejected)?;
        let router = Router::new(cfg.topic.clone(), None, metrics.clone());
        let ctx = FetchContext::new(router, None, metrics);
        let stop = ctx.stop.clone();
        let consumer: BaseConsumer<FetchContext> = consumer_config(cfg)
            .create_with_context(ctx)
            .map_err(|e| Error::Rejected(format!("create Kafka consumer: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        let mut out = Vec::with_capacity(starts.len());
        {
            let mut router = consumer.context().router();
            for (partition, offset) in starts {
                tpl.add_partition_offset(&cfg.topic, partition, Offset::Offset(offset as i64))
                    .map_err(|e| classify("assign", &e))?;
                let (reader, control) = router.open(partition, offset);
                out.push((partition, reader, control));
            }
        }
        consumer.assign(&tpl).map_err(|e| classify("assign", &e))?;
        let thread = std::thread::Builder::new()
            .name("kafka-follow".into())
            .spawn(move || {
                // No commands: a follower's controls never commit.
                let (_, commands) = std_mpsc::channel();
                let ctx = consumer.context().clone();
                fetch::run(&consumer, &commands);
                drop(consumer);
                ctx.router().close_all();
            })
            .map_err(|e| Error::Kafka(format!("spawn follower thread: {e}")))?;
        let follower = Follower {
            stop,
            thread: Some(thread),
        };
        Ok((follower, out))
    }

    /// Stops reading and joins the thread; every reader then ends.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the Kafka follower thread panicked");
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn consumer_config(cfg: &KafkaConfig) -> rdkafka::ClientConfig {
    let mut config = cfg.client_config(&[
        ("auto.offset.reset", "earliest"),
        ("fetch.wait.max.ms", "50"),
        ("statistics.interval.ms", fetch::STATS_INTERVAL_MS),
    ]);
    config
        .set("group.id", FOLLOWER_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        // End-of-partition offsets in the statistics tell when a reader has read everything
        // (see `Router::update_ends`).
        .set("enable.partition.eof", "true");
    config
}
