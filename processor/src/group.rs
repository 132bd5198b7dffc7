//! A processor in a Kafka consumer group: one flushing [`PartitionWorker`] per partition the
//! group assigns to this process.
//!
//! Where a partition is read from is decided by its manifest in object storage, never by the
//! group's committed offset: the manifest is the record of what is stored, and the committed
//! offset (written after each manifest commit) only shows progress to Kafka tooling. So a
//! partition that moves — processor added, removed or killed — is picked up by its new owner
//! exactly where the last commit left it, and an interrupted flush is redone with the same
//! object keys. The old owner's worker is dropped on revocation, aborting any flush in flight,
//! and the new owner claims the manifest before reading, so a write of the old owner that was
//! still on its way (or of one that has not noticed it lost the partition) is refused.

use crate::error::{Error, Result};
use crate::hot::Snapshot;
use crate::lock;
use crate::metrics::ProcessorMetrics;
use crate::worker::{Mode, PartitionWorker, ProcessorConfig, start_offset};
use logstream_bus::kafka::{Assignment, GroupConsumer, KafkaConfig, KafkaMetrics, source_name};
use logstream_store::{Manifest, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Running {
    worker: PartitionWorker,
    stop: CancellationToken,
    task: JoinHandle<Result<()>>,
}

type Manifests = Arc<Mutex<HashMap<i32, Manifest>>>;

/// A consumer-group member processing the partitions it is assigned. Clone to share with
/// queries (its snapshots) and health checks.
#[derive(Clone)]
pub struct GroupProcessor {
    inner: Arc<Inner>,
}

struct Inner {
    topic: String,
    store: Store,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    workers: Mutex<BTreeMap<i32, Running>>,
    /// Manifests read when partitions were assigned, for their workers.
    manifests: Manifests,
    consumer: Mutex<Option<GroupConsumer>>,
    events: tokio::sync::Mutex<UnboundedReceiver<Assignment>>,
}

impl std::fmt::Debug for GroupProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupProcessor")
            .field("topic", &self.inner.topic)
            .field("partitions", &self.partitions())
            .finish()
    }
}

impl GroupProcessor {
    /// Joins `group` on the topic of `kafka`. Call from within a Tokio runtime.
    pub fn start(
        kafka: &KafkaConfig,
        group: &str,
        store: Store,
        config: ProcessorConfig,
        metrics: ProcessorMetrics,
        kafka_metrics: KafkaMetrics,
    ) -> Result<Self> {
        let manifests: Manifests = Arc::default();
        let resolve = {
            let (store, manifests) = (store.clone(), manifests.clone());
            let topic = kafka.topic.clone();
            let owner = config.instance.clone();
            let runtime = tokio::runtime::Handle::current();
            // Runs on the consumer's own thread, where blocking on the runtime is allowed.
            Arc::new(move |partition: i32| -> logstream_bus::Result<u64> {
                let source = source_name(&topic, partition);
                let manifest = runtime
                    .block_on(Manifest::claim(&store, &source, &owner))
                    .map_err(|e| {
                        logstream_bus::Error::Unavailable(format!(
                            "claim the manifest of {source}: {e}"
                        ))
                    })?;
                let offset = start_offset(&manifest);
                lock(&manifests).insert(partition, manifest);
                Ok(offset)
            })
        };
        let (consumer, events) =
            GroupConsumer::start(kafka, group, resolve, kafka_metrics).map_err(Error::Bus)?;
        Ok(Self {
            inner: Arc::new(Inner {
                topic: kafka.topic.clone(),
                store,
                config,
                metrics,
                workers: Mutex::default(),
                manifests,
                consumer: Mutex::new(Some(consumer)),
                events: tokio::sync::Mutex::new(events),
            }),
        })
    }

    /// Partitions this process works on now.
    pub fn partitions(&self) -> Vec<i32> {
        lock(&self.inner.workers).keys().copied().collect()
    }

    /// What queries see now: one snapshot per assigned partition.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        lock(&self.inner.workers)
            .values()
            .map(|r| r.worker.snapshot())
            .collect()
    }

    /// Processes assignments until `shutdown`; then every worker stores what it holds, and the
    /// member leaves the group.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let mut events = self.inner.events.lock().await;
        let mut check = tokio::time::interval(Duration::from_millis(500));
        let outcome = loop {
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                ev = events.recv() => match ev {
                    Some(ev) => self.apply(ev).await,
                    None => break Err(Error::Task("the Kafka consumer stopped".into())),
                },
                _ = check.tick() => {
                    if let Err(e) = self.check_workers().await {
                        break Err(e);
                    }
                }
            }
        };
        let mut running: Vec<Running> = std::mem::take(&mut *lock(&self.inner.workers))
            .into_values()
            .collect();
        for r in &running {
            r.stop.cancel();
        }
        for r in &mut running {
            match (&mut r.task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(source = r.worker.source(), error = %e, "worker ended with an error")
                }
                Err(e) => {
                    tracing::warn!(source = r.worker.source(), error = %e, "worker task failed")
                }
            }
        }
        for r in &running {
            self.inner.metrics.forget(r.worker.source());
        }
        self.inner.metrics.partitions.set(0);
        let consumer = lock(&self.inner.consumer).take();
        if let Some(c) = consumer {
            tokio::task::spawn_blocking(move || c.shutdown())
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
        }
        outcome
    }

    async fn apply(&self, ev: Assignment) {
        let inner = &self.inner;
        match ev {
            Assignment::Assigned {
                partition,
                source,
                reader,
                control,
            } => {
                let cached = lock(&inner.manifests).remove(&partition);
                let manifest = match cached {
                    Some(m) => m,
                    None => match Manifest::load(&inner.store, &source).await {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::error!(%source, error = %e, "cannot read the manifest of an assigned partition");
                            return;
                        }
                    },
                };
                tracing::info!(%source, next_offset = manifest.next_offset, "partition assigned");
                let worker = PartitionWorker::new(
                    &source,
                    Mode::Flush,
                    manifest,
                    control,
                    inner.store.clone(),
                    inner.config.clone(),
                    inner.metrics.clone(),
                );
                let stop = CancellationToken::new();
                let task = {
                    let (worker, stop) = (worker.clone(), stop.clone());
                    tokio::spawn(async move { worker.run(Box::new(reader), stop).await })
                };
                let old = lock(&inner.workers).insert(partition, Running { worker, stop, task });
                if let Some(old) = old {
                    old.task.abort();
                }
            }
            Assignment::Revoked { partition } => {
                if let Some(old) = lock(&inner.workers).remove(&partition) {
                    tracing::info!(source = old.worker.source(), "partition revoked");
                    // Abandon, don't flush: the new owner starts from the manifest.
                    old.task.abort();
                    inner.metrics.forget(old.worker.source());
                }
            }
        }
        inner.metrics.rebalances.inc();
        inner
            .metrics
            .partitions
            .set(lock(&inner.workers).len() as i64);
    }

    /// A worker that failed takes the process down: a restart re-reads from the manifests,
    /// which is the one recovery path there is. A worker fenced off by another processor's
    /// claim just goes: the partition is that processor's now, and the group's revocation
    /// follows.
    async fn check_workers(&self) -> Result<()> {
        let finished: Vec<(i32, Running)> = {
            let mut workers = lock(&self.inner.workers);
            let done: Vec<i32> = workers
                .iter()
                .filter(|(_, r)| r.task.is_finished())
                .map(|(p, _)| *p)
                .collect();
            done.into_iter()
                .filter_map(|p| workers.remove(&p).map(|r| (p, r)))
                .collect()
        };
        for (p, r) in finished {
            self.inner.metrics.forget(r.worker.source());
            match r.task.await {
                Ok(Err(e)) if e.is_fenced() => {
                    tracing::warn!(source = r.worker.source(), error = %e, "left a partition another processor claimed");
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) | Err(_) => {
                    return Err(Error::Task(format!(
                        "the worker of partition {p} of {} stopped",
                        self.inner.topic
                    )));
                }
            }
        }
        self.inner
            .metrics
            .partitions
            .set(lock(&self.inner.workers).len() as i64);
        Ok(())
    }
}
