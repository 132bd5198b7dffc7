//! Ingest's side of the Kafka bus: a transactional producer with group commit.
//!
//! Each push request becomes one or more messages (see [`partitioning`](super::partitioning)).
//! A dedicated thread owns the producer, because librdkafka's transaction calls block: it
//! begins a transaction, produces every message of the requests waiting, keeps taking requests
//! for up to `linger_ms` (or until `max_transaction_bytes`), then flushes and commits. Every
//! request of the transaction is answered only after the coordinator committed it, so a
//! request is visible to `read_committed` consumers all together or never, however many
//! partitions it touched.
//!
//! The `transactional.id` is one per ingest replica (its StatefulSet pod name): a restarted
//! replica fences its predecessor, whose open transaction is then aborted.
//!
//! Failures: when the messages cannot be delivered within `request_timeout_ms`, the requests
//! are answered [`Error::Unavailable`] (503) and the transaction is aborted. From then on,
//! until the thread has recovered (the brokers answer again; retried in the background every
//! half second), new requests are answered `Unavailable` at once instead of queueing for the
//! whole timeout, and the first request after the brokers return succeeds. One window is
//! ambiguous in Kafka itself: when the coordinator stops answering after the commit request
//! was sent, the outcome is unknown; the requests are answered `Unavailable` (a retry may then
//! duplicate, never lose) and the producer is recreated, which settles the transaction. The
//! details are in the `committer` module.

use super::committer::Committer;
use super::partitioning::{self, Message};
use super::{KafkaConfig, KafkaMetrics};
use crate::error::{Error, Result};
use crate::event::Batch;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// `transaction.timeout.ms`: how long the coordinator lets a transaction of a killed ingest
/// replica block `read_committed` consumers before it aborts it.
const TRANSACTION_TIMEOUT_MS: &str = "10000";

/// Health of the producer thread as the caller side sees it.
pub(super) const STARTING: u8 = 0;
pub(super) const UP: u8 = 1;
/// Known down: pushes are refused at once.
pub(super) const DOWN: u8 = 2;
/// Fenced: pushes still reach the thread, which decides (see `Phase::Fenced`).
pub(super) const FENCED: u8 = 3;

/// Appends push requests to the Kafka topic, all or nothing each. Cheap to clone; the producer
/// thread stops (aborting nothing that was acknowledged) when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct KafkaProducer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: SyncSender<Request>,
    partitions: i32,
    max_message_bytes: usize,
    max_queued_bytes: usize,
    request_timeout: Duration,
    shared: Arc<Shared>,
}

/// What the caller side and the thread both see.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) health: AtomicU8,
    /// Why the producer is down, for the answers given without trying.
    pub(super) down_reason: Mutex<String>,
    pub(super) queued_bytes: AtomicUsize,
    pub(super) metrics: KafkaMetrics,
}

/// One push request on its way to a transaction.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) tenant: String,
    pub(super) messages: Vec<Message>,
    pub(super) bytes: usize,
    /// When the pusher stops waiting: `request_timeout_ms` after it was queued.
    pub(super) deadline: Instant,
    pub(super) done: oneshot::Sender<Result<()>>,
}

impl KafkaProducer {
    /// Starts the producer thread for `partitions` partitions of `cfg.topic`. Returns at once:
    /// the brokers are contacted in the background (`init_transactions`), and requests wait for
    /// that up to `request_timeout_ms`. Fails only on invalid settings.
    pub fn start(
        cfg: &KafkaConfig,
        transactional_id: String,
        partitions: i32,
        metrics: KafkaMetrics,
    ) -> Result<Self> {
        cfg.validate().map_err(Error::Rejected)?;
        if partitions < 1 {
            return Err(Error::Rejected(format!("{partitions} partitions")));
        }
        let config = producer_config(cfg, &transactional_id);
        // Fail now on a bad property rather than in the thread's first attempt.
        drop(super::committer::create(&config)?);
        let shared = Arc::new(Shared {
            health: AtomicU8::new(STARTING),
            down_reason: Mutex::new(String::new()),
            queued_bytes: AtomicUsize::new(0),
            metrics,
        });
        let (tx, rx) = mpsc::sync_channel(cfg.max_queued_requests);
        let committer = Committer::new(cfg.clone(), config, shared.clone(), rx);
        std::thread::Builder::new()
            .name(format!("kafka-txn-{transactional_id}"))
            .spawn(move || committer.run())
            .map_err(|e| Error::Kafka(format!("spawn producer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                partitions,
                max_message_bytes: cfg.max_message_bytes,
                max_queued_bytes: cfg.max_queued_bytes,
                request_timeout: cfg.request_timeout(),
                shared,
            }),
        })
    }

    /// True once the producer reached the brokers and has not failed since (readiness).
    pub fn is_available(&self) -> bool {
        self.inner.shared.health.load(Ordering::Relaxed) == UP
    }

    fn enqueue(&self, request: Request) -> Result<()> {
        let shared = &self.inner.shared;
        let queued = shared
            .queued_bytes
            .fetch_add(request.bytes, Ordering::Relaxed);
        let bytes = request.bytes;
        let refuse = |shared: &Shared| {
            shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            shared.metrics.rejected_full.inc();
        };
        // A request alone larger than the limit still goes through an empty queue.
        if queued > 0 && queued + bytes > self.inner.max_queued_bytes {
            refuse(shared);
            return Err(Error::Full {
                retained_bytes: queued as u64,
                limit_bytes: self.inner.max_queued_bytes as u64,
            });
        }
        match self.inner.tx.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                refuse(shared);
                Err(Error::Full {
                    retained_bytes: queued as u64,
                    limit_bytes: self.inner.max_queued_bytes as u64,
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                Err(Error::Kafka("the producer thread has stopped".into()))
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::Producer for KafkaProducer {
    async fn append(&self, batch: &Batch) -> Result<()> {
        let shared = &self.inner.shared;
        if shared.health.load(Ordering::Relaxed) == DOWN {
            shared.metrics.rejected_unavailable.inc();
            let reason = shared
                .down_reason
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default();
            return Err(Error::Unavailable(format!(
                "the Kafka producer is down ({reason}); retrying in the background"
            )));
        }
        let messages =
            partitioning::messages(batch, self.inner.partitions, self.inner.max_message_bytes)?;
        if messages.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.enqueue(Request {
            tenant: batch.tenant.clone(),
            bytes: messages.iter().map(|m| m.payload.len()).sum(),
            messages,
            deadline: Instant::now() + self.inner.request_timeout,
            done,
        })?;
        answer
            .await
            .map_err(|_| Error::Kafka("the producer thread has stopped".into()))?
    }
}

fn producer_config(cfg: &KafkaConfig, transactional_id: &str) -> rdkafka::ClientConfig {
    let max_message = super::TOPIC_MAX_MESSAGE_BYTES.to_string();
    let mut config = cfg.client_config(&[
        ("compression.type", "lz4"),
        ("linger.ms", "1"),
        ("message.max.bytes", &max_message),
        ("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS),
        // After an outage the brokers are found again within a second.
        ("reconnect.backoff.max.ms", "1000"),
        // Success reports carry nothing a committed transaction does not already say.
        ("delivery.report.only.error", "true"),
    ]);
    config
        .set("transactional.id", transactional_id)
        .set("enable.idempotence", "true")
        .set("acks", "all");
    config
}
