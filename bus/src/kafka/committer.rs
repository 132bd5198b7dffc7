//! The producer thread of [`KafkaProducer`](super::KafkaProducer): group commit into
//! transactions, and recovery when the brokers fail.
//!
//! A transaction's outcome is certain until the commit request is sent: a failure before it
//! (delivery timed out, a message refused) answers the requests at once and aborts afterwards,
//! and nothing of the transaction ever becomes visible. An abort that does not complete in two
//! seconds is not retried: the producer is recreated instead, and the new instance's
//! `init_transactions` (same `transactional.id`) makes the coordinator abort the old
//! transaction. That is also the quickest way back once the brokers return.

use super::partitioning::Message;
use super::producer::{DOWN, FENCED, Request, Shared, UP};
use super::{KafkaConfig, TracingContext, classify};
use crate::error::{Error, Result};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the idle thread serves the producer's events.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Pause between recovery attempts while the brokers stay unreachable (each attempt itself
/// waits up to `request_timeout_ms` for them).
const RECOVERY_BACKOFF: Duration = Duration::from_millis(500);
/// The least time the commit request gets, even when the requests' budget is spent: the
/// messages are delivered by then, and a commit that fails leaves an unknown outcome.
const MIN_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time delivery gets, for a request that waited long in the queue.
const MIN_FLUSH_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a flush checks whether librdkafka has delivered everything.
const FLUSH_STEP: Duration = Duration::from_millis(1);
/// Bound of the abort right after a failed transaction; past it the producer is recreated.
const ABORT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a fenced producer waits before it may take its `transactional.id` back.
const FENCED_RETRY: Duration = Duration::from_secs(10);

pub(super) fn create(config: &rdkafka::ClientConfig) -> Result<BaseProducer<TracingContext>> {
    config
        .create_with_context(TracingContext)
        .map_err(|e| Error::Rejected(format!("create Kafka producer: {e}")))
}

/// What the thread must do before it can run transactions again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// (Re)create the producer, then `init_transactions` (which fences an older instance and
    /// aborts its open transaction).
    Create,
    /// `init_transactions` timed out: call it again.
    Init,
    /// The last transaction failed for want of brokers: check they answer again.
    Probe,
    Ready,
    /// A newer producer with the same `transactional.id` took over (this replica was replaced
    /// and is a zombie), or the coordinator aborted a transaction that outlived the
    /// transaction timeout (an overloaded cluster). The two look alike, so the producer is
    /// recreated only when a request arrives at least [`FENCED_RETRY`] later: a replaced
    /// replica gets no traffic and never fences its successor back, an overloaded one
    /// recovers.
    Fenced,
}

/// The producer thread.
pub(super) struct Committer {
    cfg: KafkaConfig,
    config: rdkafka::ClientConfig,
    producer: Option<BaseProducer<TracingContext>>,
    phase: Phase,
    /// A transaction is open on `producer` and must be committed or aborted.
    open: bool,
    fenced_at: Instant,
    shared: Arc<Shared>,
    rx: Receiver<Request>,
}

impl Committer {
    pub(super) fn new(
        cfg: KafkaConfig,
        config: rdkafka::ClientConfig,
        shared: Arc<Shared>,
        rx: Receiver<Request>,
    ) -> Self {
        Self {
            cfg,
            config,
            producer: None,
            phase: Phase::Create,
            open: false,
            fenced_at: Instant::now(),
            shared,
            rx,
        }
    }

    /// Serves requests until every handle is dropped.
    pub(super) fn run(mut self) {
        let mut pending = None;
        loop {
            if self.phase == Phase::Fenced {
                match self.next_while_fenced() {
                    Ok(Some(req)) => pending = Some(req),
                    Ok(None) => continue,
                    Err(()) => return,
                }
            }
            if self.phase != Phase::Ready {
                if let Err(e) = self.recover() {
                    if self.mark_down(&e) {
                        tracing::warn!(error = %e, "Kafka producer unavailable; retrying in the background");
                    }
                    if let Some(req) = pending.take() {
                        self.answer(req, Err(copy_error(&e)));
                    }
                    if !self.refuse_for(RECOVERY_BACKOFF, &e) {
                        return;
                    }
                    continue;
                }
                self.set_up();
            }
            let next = match pending.take() {
                Some(req) => Ok(req),
                None => self.recv(IDLE_POLL),
            };
            match next {
                Ok(first) => self.transaction(first),
                Err(RecvTimeoutError::Timeout) => self.serve_events(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// While fenced: refuses requests, except that one arriving [`FENCED_RETRY`] after the
    /// fence is returned to try again with a new producer. `Err` when every handle is gone.
    fn next_while_fenced(&mut self) -> Result<Option<Request>, ()> {
        match self.recv(IDLE_POLL) {
            Ok(req) if self.fenced_at.elapsed() >= FENCED_RETRY => {
                self.phase = Phase::Create;
                Ok(Some(req))
            }
            Ok(req) => {
                self.shared.metrics.rejected_unavailable.inc();
                self.answer(req, Err(fenced()));
                Ok(None)
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }

    /// Brings the producer to a state where it can begin a transaction.
    fn recover(&mut self) -> Result<()> {
        let timeout = self.cfg.request_timeout();
        loop {
            match self.phase {
                Phase::Create => {
                    self.producer = Some(create(&self.config)?);
                    self.phase = Phase::Init;
                }
                Phase::Init => {
                    let result = self.producer()?.init_transactions(timeout);
                    self.settle(result, "init transactions")?;
                    self.phase = Phase::Ready;
                }
                Phase::Probe => {
                    self.producer()?
                        .client()
                        .fetch_metadata(Some(&self.cfg.topic), timeout)
                        .map_err(|e| classify("reach the brokers", &e))?;
                    self.phase = Phase::Ready;
                }
                Phase::Ready => return Ok(()),
                Phase::Fenced => return Err(fenced()),
            }
        }
    }

    fn producer(&self) -> Result<&BaseProducer<TracingContext>> {
        self.producer
            .as_ref()
            .ok_or_else(|| Error::Kafka("no producer".into()))
    }

    /// Maps the result of a transaction call, handling fatal errors.
    fn settle(&mut self, result: Result<(), KafkaError>, op: &str) -> Result<()> {
        result.map_err(|e| self.after_fatal(&e).unwrap_or_else(|| classify(op, &e)))
    }

    /// If `e` is fatal for this producer instance, drops the instance and returns the error to
    /// report.
    fn after_fatal(&mut self, e: &KafkaError) -> Option<Error> {
        if is_fenced(e) {
            tracing::error!(error = %e, "producer fenced: replaced by a newer instance with this transactional.id, or a transaction outlived the transaction timeout; taking it back only when requests still arrive");
            self.phase = Phase::Fenced;
            self.fenced_at = Instant::now();
            self.drop_producer();
            self.mark_down(&fenced());
            return Some(fenced());
        }
        if matches!(e, KafkaError::Transaction(t) if t.is_fatal()) {
            self.phase = Phase::Create;
            self.drop_producer();
            return Some(classify("producer failed fatally; recreating it", e));
        }
        None
    }

    /// Drops the producer instance; its open transaction, if any, is aborted by the
    /// coordinator when the next instance initializes (or on the transaction timeout).
    fn drop_producer(&mut self) {
        self.producer = None;
        self.open = false;
    }

    /// Records why the producer is down; true if it was up before.
    fn mark_down(&self, cause: &Error) -> bool {
        if let Ok(mut reason) = self.shared.down_reason.lock() {
            *reason = cause.to_string();
        }
        let health = if self.phase == Phase::Fenced {
            FENCED
        } else {
            DOWN
        };
        !matches!(
            self.shared.health.swap(health, Ordering::Relaxed),
            DOWN | FENCED
        )
    }

    fn set_up(&self) {
        let was = self.shared.health.swap(UP, Ordering::Relaxed);
        if matches!(was, DOWN | FENCED) {
            tracing::info!("Kafka producer recovered");
        }
    }

    /// Answers every request arriving during `wait` with `Unavailable`. False when every
    /// handle is gone.
    fn refuse_for(&mut self, wait: Duration, cause: &Error) -> bool {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(req) => {
                    self.shared.metrics.rejected_unavailable.inc();
                    self.answer(req, Err(Error::Unavailable(cause.to_string())));
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Serves a bounded number of the producer's queued events (error reports, which hold
    /// the messages they report on) without stalling the thread.
    fn serve_events(&self) {
        if let Some(p) = &self.producer {
            for _ in 0..64 {
                if p.in_flight_count() == 0 {
                    break;
                }
                p.poll(Duration::ZERO);
            }
        }
    }

    /// Runs one transaction starting with `first` and answers all its requests.
    fn transaction(&mut self, first: Request) {
        let Some(first) = self.admit(first) else {
            return;
        };
        let (requests, result) = self.attempt(first, true);
        match result {
            // The brokers refused data (too large for the topic, ...): only one request may be
            // at fault, and the others must not get a permanent refusal for it. Each is tried
            // again alone; the transaction was aborted, so nothing of it is visible.
            Err(e) if !e.is_transient() && requests.len() > 1 => {
                tracing::warn!(error = %e, requests = requests.len(), "transaction refused; retrying its requests one by one");
                self.shared.metrics.transactions_aborted.inc();
                self.clean_up(false);
                for req in requests {
                    if let Err(e) = self.recover() {
                        self.mark_down(&e);
                        self.answer(req, Err(e));
                        continue;
                    }
                    self.set_up();
                    let (alone, result) = self.attempt(req, false);
                    self.finish(alone, result);
                }
            }
            result => self.finish(requests, result),
        }
    }

    /// Begins a transaction with `first`, with the requests arriving within the linger time
    /// if `linger`, and commits it.
    fn attempt(&mut self, first: Request, linger: bool) -> (Vec<Request>, Result<()>) {
        if let Err(e) = self.begin() {
            return (vec![first], Err(e));
        }
        let mut failure = self.produce(&first).err();
        let mut bytes = first.bytes;
        let mut requests = vec![first];
        let linger_until = Instant::now() + Duration::from_millis(self.cfg.linger_ms);
        while linger && failure.is_none() && bytes < self.cfg.max_transaction_bytes {
            let left = linger_until.saturating_duration_since(Instant::now());
            let Ok(req) = self.recv(left) else {
                break;
            };
            let Some(req) = self.admit(req) else {
                continue;
            };
            failure = self.produce(&req).err();
            bytes += req.bytes;
            requests.push(req);
        }
        let deadline = requests.iter().map(|r| r.deadline).min();
        let result = match failure {
            Some(e) => Err(e),
            None => self.commit(deadline.unwrap_or_else(Instant::now)),
        };
        (requests, result)
    }

    fn begin(&mut self) -> Result<()> {
        let result = self.producer()?.begin_transaction();
        if let Err(e) = result {
            return Err(self.after_fatal(&e).unwrap_or_else(|| {
                // Not in a state to begin: start over with a new instance.
                self.phase = Phase::Create;
                self.drop_producer();
                classify("begin transaction", &e)
            }));
        }
        self.open = true;
        Ok(())
    }

    /// Takes the next request off the queue (which then no longer counts it).
    fn recv(&self, timeout: Duration) -> Result<Request, RecvTimeoutError> {
        let req = self.rx.recv_timeout(timeout)?;
        self.shared
            .queued_bytes
            .fetch_sub(req.bytes, Ordering::Relaxed);
        Ok(req)
    }

    /// Answers a request at once when it waited past its deadline.
    fn admit(&self, req: Request) -> Option<Request> {
        if Instant::now() >= req.deadline {
            let late =
                Error::Unavailable("the request waited too long for a Kafka transaction".into());
            self.answer(req, Err(late));
            return None;
        }
        Some(req)
    }

    /// Hands the request's messages to librdkafka, waiting while its local queue is full.
    fn produce(&self, req: &Request) -> Result<()> {
        let p = self.producer()?;
        for m in &req.messages {
            send(p, &self.cfg.topic, &req.tenant, m, req.deadline)?;
        }
        Ok(())
    }

    /// Delivers and commits; `deadline` is the earliest deadline of the requests in it.
    fn commit(&mut self, deadline: Instant) -> Result<()> {
        let started = Instant::now();
        let p = self.producer()?;
        // Delivery first, within the requests' budget: until the commit request is sent the
        // outcome is certain, so a timeout here is answered at once and aborted after.
        flush(p, deadline.max(started + MIN_FLUSH_TIMEOUT))
            .map_err(|e| classify("deliver the transaction's messages", &e))?;
        // Then the commit request itself, bounded: librdkafka's "infinite" (-1) is not capped
        // by the transaction timeout for commits and can wait forever on a stuck coordinator.
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_COMMIT_TIMEOUT);
        let result = p.commit_transaction(budget);
        self.shared
            .metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.open = false;
                Ok(())
            }
            // Refused for certain: aborted after the answers.
            Err(e) if requires_abort(&e) => Err(classify("commit transaction", &e)),
            Err(e) => Err(self.after_fatal(&e).unwrap_or_else(|| {
                // Unknown after the timeout: a new instance with the same transactional.id
                // settles it either way.
                tracing::error!(error = %e, "transaction commit did not complete; recreating the producer");
                self.phase = Phase::Create;
                self.drop_producer();
                classify("commit transaction", &e)
            })),
        }
    }

    /// Answers the requests, then cleans up after a failure.
    fn finish(&mut self, requests: Vec<Request>, result: Result<()>) {
        let m = &self.shared.metrics;
        match result {
            Ok(()) => {
                m.transactions_committed.inc();
                m.transaction_requests.observe(requests.len() as f64);
                let messages: usize = requests.iter().map(|r| r.messages.len()).sum();
                let bytes: usize = requests.iter().map(|r| r.bytes).sum();
                m.produced_messages.inc_by(messages as u64);
                m.produced_bytes.inc_by(bytes as u64);
                for r in requests {
                    self.answer(r, Ok(()));
                }
            }
            Err(e) => {
                m.transactions_aborted.inc();
                tracing::warn!(error = %e, requests = requests.len(), "Kafka transaction failed");
                if e.is_transient() {
                    // Refuse new pushes at once from here on, not after the abort.
                    self.mark_down(&e);
                }
                for r in requests {
                    self.answer(r, Err(copy_error(&e)));
                }
                self.clean_up(e.is_transient());
            }
        }
        self.serve_events();
    }

    /// After a failed transaction: aborts it, and recreates the producer if that does not
    /// work quickly or the brokers refused data. (librdkafka's idempotence layer then skips
    /// the refused message's sequence number and fails the next transaction too; a new
    /// instance starts clean.)
    fn clean_up(&mut self, brokers_failed: bool) {
        self.abort(brokers_failed);
        if !brokers_failed && self.phase == Phase::Ready {
            self.phase = Phase::Create;
            self.drop_producer();
        }
    }

    /// Aborts the open transaction, if any.
    fn abort(&mut self, brokers_failed: bool) {
        if !self.open {
            return;
        }
        let Ok(p) = self.producer() else {
            return;
        };
        match abort_serving_events(p, ABORT_TIMEOUT) {
            Ok(()) => {
                self.open = false;
                if brokers_failed {
                    // The coordinator answered, but the partitions' leaders did not: check
                    // before taking requests again.
                    self.phase = Phase::Probe;
                }
            }
            Err(e) => {
                if self.after_fatal(&e).is_none() {
                    tracing::warn!(error = %e, "abort did not complete; recreating the producer");
                    self.phase = Phase::Create;
                    self.drop_producer();
                }
            }
        }
    }

    fn answer(&self, req: Request, result: Result<()>) {
        // The pusher may have given up; nothing to do then.
        let _ = req.done.send(result);
    }
}

/// Queues one message, waiting while librdkafka's local queue is full.
fn send(
    p: &BaseProducer<TracingContext>,
    topic: &str,
    tenant: &str,
    m: &Message,
    deadline: Instant,
) -> Result<()> {
    let mut record = BaseRecord::to(topic)
        .partition(m.partition)
        .key(tenant.as_bytes())
        .payload(&m.payload);
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if Instant::now() < deadline =>
            {
                p.poll(Duration::from_millis(5));
                record = back;
            }
            Err((e, _)) => return Err(classify("produce", &e)),
        }
    }
}

/// Waits until librdkafka delivered every message or `deadline` passes. rdkafka's own
/// `flush` sleeps in 100 ms steps, which would be most of a transaction's latency; this asks
/// every millisecond (serving error reports meanwhile).
fn flush(p: &BaseProducer<TracingContext>, deadline: Instant) -> Result<(), KafkaError> {
    loop {
        match p.flush(Duration::ZERO) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline =>
            {
                p.poll(FLUSH_STEP);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Aborts the open transaction. The abort purges the undelivered messages and waits until
/// their failure reports are served, which only a poll does: a helper thread polls meanwhile.
fn abort_serving_events(
    p: &BaseProducer<TracingContext>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                p.poll(Duration::from_millis(10));
            }
        });
        let result = p.abort_transaction(timeout);
        done.store(true, Ordering::Relaxed);
        result
    })
}

fn requires_abort(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.txn_requires_abort())
}

/// Fenced: the epoch moved on without this instance. (A transaction the coordinator aborted
/// on timeout also bumps the epoch; librdkafka recovers from that when it can and reports it
/// as abortable, so only fatal errors count here.)
fn is_fenced(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(e, KafkaError::Transaction(t)
        if t.is_fatal() && matches!(t.code(), C::ProducerFenced | C::InvalidProducerEpoch | C::Fenced))
}

fn fenced() -> Error {
    Error::Unavailable(
        "the producer was fenced (a newer instance took its transactional.id, or a transaction \
         timed out)"
            .into(),
    )
}

/// A copy of `e` for each request of a failed transaction.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::Rejected(m) => Error::Rejected(m.clone()),
        other => Error::Kafka(other.to_string()),
    }
}
